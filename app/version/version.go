// Package version holds Chordphone's version: the one place it is defined.
// The packaging scripts read it from here (see packaging/build-package.sh).
package version

// Version is the release version, printed by --version and shown in About.
const Version = "0.1.0"

// Name is the product name.
const Name = "Chordphone"
