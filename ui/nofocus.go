//go:build !js && !wasm && !android && !ios

package ui

import (
	"fyne.io/fyne/v2"
	"github.com/go-gl/glfw/v3.3/glfw"
)

// showWithoutFocus shows w on top of other windows without taking keyboard focus (GLFW's
// FocusOnShow and Floating hints, read when the window is created). Only for the desktop
// (GLFW) driver; Run uses it for the incoming-call window.
func showWithoutFocus(w fyne.Window) {
	glfw.WindowHint(glfw.FocusOnShow, glfw.False)
	glfw.WindowHint(glfw.Floating, glfw.True)
	w.Show()
	glfw.WindowHint(glfw.FocusOnShow, glfw.True)
	glfw.WindowHint(glfw.Floating, glfw.False)
}
