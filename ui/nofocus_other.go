//go:build js || wasm || android || ios

package ui

import "fyne.io/fyne/v2"

// showWithoutFocus shows w; platforms without GLFW have no focus-on-show choice.
func showWithoutFocus(w fyne.Window) { w.Show() }
