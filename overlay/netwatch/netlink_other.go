//go:build !linux

package netwatch

import (
	"context"
	"log/slog"
	"sync"
)

// watchNetlink is Linux only; elsewhere the Watcher rescans every interval.
func watchNetlink(context.Context, *slog.Logger, func(), *sync.WaitGroup) func() { return nil }
