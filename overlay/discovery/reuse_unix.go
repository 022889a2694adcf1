//go:build unix

package discovery

import (
	"syscall"

	"golang.org/x/sys/unix"
)

// reuse lets several mDNS sockets (this and other programs, e.g. avahi)
// share port 5353 (RFC 6762 §15.1).
func reuse(_, _ string, c syscall.RawConn) error {
	var serr error
	err := c.Control(func(fd uintptr) {
		serr = unix.SetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_REUSEADDR, 1)
		if serr == nil {
			serr = unix.SetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_REUSEPORT, 1)
		}
	})
	if err != nil {
		return err
	}
	return serr
}
