//go:build race

package e2e

// raceEnabled is true when the tests run with the race detector; the chordphone binary under
// test is then built with it too, and a reported data race fails the test.
const raceEnabled = true
