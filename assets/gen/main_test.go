package main

import (
	"bytes"
	"fmt"
	"image/png"
	"os"
	"path/filepath"
	"testing"
)

// The committed PNGs are renderings of the committed SVG: a changed icon.svg needs
// `go generate ./assets`.
func TestIconsUpToDate(t *testing.T) {
	src, err := os.ReadFile(filepath.Join("..", "icon.svg"))
	if err != nil {
		t.Fatal(err)
	}
	for _, n := range Sizes {
		name := fmt.Sprintf("icon-%d.png", n)
		if n == 512 {
			name = "icon.png"
		}
		committed, err := os.ReadFile(filepath.Join("..", name))
		if err != nil {
			t.Fatal(err)
		}
		img, err := png.Decode(bytes.NewReader(committed))
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if b := img.Bounds(); b.Dx() != n || b.Dy() != n {
			t.Fatalf("%s is %v, want %dx%d", name, b, n, n)
		}
		want, err := Render(src, n)
		if err != nil {
			t.Fatal(err)
		}
		var buf bytes.Buffer
		png.Encode(&buf, want)
		if !bytes.Equal(buf.Bytes(), committed) {
			t.Errorf("%s differs from a rendering of icon.svg; run go generate ./assets", name)
		}
	}
}

func TestSoundsAreWAV(t *testing.T) {
	for _, name := range []string{"ringtone.wav", "ringback.wav"} {
		b, err := os.ReadFile(filepath.Join("..", "sounds", name))
		if err != nil {
			t.Fatal(err)
		}
		if len(b) < 44 || string(b[:4]) != "RIFF" || string(b[8:12]) != "WAVE" {
			t.Errorf("%s is not a WAV file", name)
		}
	}
}
