//go:build linux

package e2e

/*
#cgo LDFLAGS: -lX11
#include <stdlib.h>
#include <X11/Xlib.h>

// requestClose sends WM_DELETE_WINDOW to win: what a window manager does when its close button
// is clicked (ICCCM §4.2.8.1). Xvfb runs no window manager, and xdotool's windowclose destroys
// the window instead of asking.
static int requestClose(const char *display, unsigned long win) {
	Display *d = XOpenDisplay(display);
	if (d == NULL) return 1;
	XEvent ev = {0};
	ev.xclient.type = ClientMessage;
	ev.xclient.window = win;
	ev.xclient.message_type = XInternAtom(d, "WM_PROTOCOLS", False);
	ev.xclient.format = 32;
	ev.xclient.data.l[0] = XInternAtom(d, "WM_DELETE_WINDOW", False);
	ev.xclient.data.l[1] = CurrentTime;
	Status ok = XSendEvent(d, win, False, NoEventMask, &ev);
	XSync(d, False);
	XCloseDisplay(d);
	return ok ? 0 : 2;
}
*/
import "C"

import (
	"fmt"
	"strconv"
	"unsafe"
)

// CloseWindow asks the window (an id as xdotool prints it) on display to close, as a window
// manager's close button does: the program's close handler runs.
func CloseWindow(display, window string) error {
	id, err := strconv.ParseUint(window, 10, 64)
	if err != nil {
		return fmt.Errorf("window id %q: %w", window, err)
	}
	cd := C.CString(display)
	defer C.free(unsafe.Pointer(cd))
	switch C.requestClose(cd, C.ulong(id)) {
	case 0:
		return nil
	case 1:
		return fmt.Errorf("cannot open X display %s", display)
	default:
		return fmt.Errorf("sending WM_DELETE_WINDOW to window %s failed", window)
	}
}
