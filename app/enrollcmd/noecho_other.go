//go:build !linux

package enrollcmd

import "os"

func noEcho(*os.File) (restore func(), ok bool) { return func() {}, false }
