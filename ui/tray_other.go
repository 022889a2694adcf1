//go:build !linux

package ui

// trayAvailable: Windows and macOS always have a tray (notification area, menu bar).
func trayAvailable() bool { return true }
