package netwatch

import (
	"context"
	"errors"
	"log/slog"
	"os"
	"sync"

	"golang.org/x/sys/unix"
)

// watchNetlink calls kick for every batch of rtnetlink messages about links and addresses
// until ctx ends. It returns nil when no netlink socket can be opened.
func watchNetlink(ctx context.Context, log *slog.Logger, kick func(), wg *sync.WaitGroup) func() {
	fd, err := unix.Socket(unix.AF_NETLINK, unix.SOCK_RAW|unix.SOCK_CLOEXEC|unix.SOCK_NONBLOCK, unix.NETLINK_ROUTE)
	if err != nil {
		log.Debug("netwatch: netlink socket", "err", err)
		return nil
	}
	sa := &unix.SockaddrNetlink{Family: unix.AF_NETLINK,
		Groups: unix.RTMGRP_LINK | unix.RTMGRP_IPV4_IFADDR | unix.RTMGRP_IPV6_IFADDR}
	if err := unix.Bind(fd, sa); err != nil {
		_ = unix.Close(fd)
		log.Debug("netwatch: netlink bind", "err", err)
		return nil
	}
	// A non-blocking descriptor in an os.File uses the runtime's poller, so Close ends
	// a pending Read.
	f := os.NewFile(uintptr(fd), "netlink")
	wg.Add(2)
	go func() { // owner: the Watcher; ends when ctx ends (the file is closed)
		defer wg.Done()
		<-ctx.Done()
		_ = f.Close()
	}()
	go func() { // owner: the Watcher; ends when the file is closed
		defer wg.Done()
		buf := make([]byte, 64<<10)
		for {
			if _, err := f.Read(buf); err != nil {
				if ctx.Err() != nil {
					return
				}
				if !errors.Is(err, unix.ENOBUFS) {
					log.Debug("netwatch: netlink read; rescanning every interval only", "err", err)
					return
				}
				// ENOBUFS: messages were lost; a rescan catches up all the same.
			}
			kick()
		}
	}()
	return func() { _ = f.Close() }
}
