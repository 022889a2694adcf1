//go:build linux

package enrollcmd

import (
	"os"

	"golang.org/x/sys/unix"
)

// noEcho turns off terminal echo on f when it is a terminal and returns
// the function that restores it; ok is false when f is not a terminal.
func noEcho(f *os.File) (restore func(), ok bool) {
	fd := int(f.Fd())
	t, err := unix.IoctlGetTermios(fd, unix.TCGETS)
	if err != nil {
		return func() {}, false
	}
	old := *t
	t.Lflag &^= unix.ECHO
	t.Lflag |= unix.ICANON | unix.ISIG
	if err := unix.IoctlSetTermios(fd, unix.TCSETS, t); err != nil {
		return func() {}, false
	}
	return func() { _ = unix.IoctlSetTermios(fd, unix.TCSETS, &old) }, true
}
