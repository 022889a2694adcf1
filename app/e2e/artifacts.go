package e2e

import (
	"fmt"
	"image"
	_ "image/png" // screenshots are PNG
	"os"
	"os/exec"
	"path/filepath"
	"testing"
)

// ArtifactsDir is where tests save screenshots and captures: $CHORDPHONE_ARTIFACTS when set
// (the test command sets it to build/artifacts), else a temporary directory of the test.
func ArtifactsDir(t testing.TB) string {
	if d := os.Getenv("CHORDPHONE_ARTIFACTS"); d != "" {
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatalf("artifacts dir: %v", err)
		}
		return d
	}
	return t.TempDir()
}

// Screenshot saves the X screen (or one window id) of display as a PNG at path.
func Screenshot(display, window, path string) error {
	if window == "" {
		window = "root"
	}
	cmd := exec.Command("import", "-display", display, "-window", window, path)
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("import -window %s: %v: %s", window, err, out)
	}
	return nil
}

// ImageColours counts the distinct colours of a PNG file (capped at limit): a blank picture has 1.
func ImageColours(path string, limit int) (int, error) {
	f, err := os.Open(filepath.Clean(path))
	if err != nil {
		return 0, err
	}
	defer f.Close()
	img, _, err := image.Decode(f)
	if err != nil {
		return 0, fmt.Errorf("decoding %s: %w", path, err)
	}
	seen := map[[4]uint32]struct{}{}
	b := img.Bounds()
	for y := b.Min.Y; y < b.Max.Y; y++ {
		for x := b.Min.X; x < b.Max.X; x++ {
			r, g, bl, a := img.At(x, y).RGBA()
			seen[[4]uint32{r, g, bl, a}] = struct{}{}
			if len(seen) >= limit {
				return len(seen), nil
			}
		}
	}
	return len(seen), nil
}
