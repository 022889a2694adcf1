// Command gen renders assets/icon.svg to the PNG sizes the app, the tray and the desktop entry
// use, and writes a copy of the 512 px icon where FyneApp.toml expects it. Run from assets/:
// go generate ./assets (or go run ./assets/gen -dir assets).
package main

import (
	"bytes"
	"encoding/binary"
	"flag"
	"fmt"
	"image"
	"image/png"
	"log"
	"math"
	"os"
	"path/filepath"

	"github.com/fyne-io/oksvg"
	"github.com/srwiley/rasterx"
	"golang.org/x/image/draw"
)

// Sizes are the rendered square sizes in pixels (freedesktop icon theme sizes).
var Sizes = []int{16, 22, 24, 32, 48, 64, 128, 256, 512}

func main() {
	dir := flag.String("dir", ".", "the assets directory holding icon.svg")
	flag.Parse()
	if err := run(*dir); err != nil {
		log.Fatal(err)
	}
}

func run(dir string) error {
	src, err := os.ReadFile(filepath.Join(dir, "icon.svg"))
	if err != nil {
		return err
	}
	for _, n := range Sizes {
		img, err := Render(src, n)
		if err != nil {
			return err
		}
		var buf bytes.Buffer
		if err := png.Encode(&buf, img); err != nil {
			return err
		}
		name := fmt.Sprintf("icon-%d.png", n)
		if n == 512 {
			name = "icon.png"
		}
		if err := os.WriteFile(filepath.Join(dir, name), buf.Bytes(), 0o644); err != nil {
			return err
		}
	}
	sounds := map[string][]int16{
		// Two short bursts then a pause, 400+450 Hz: a ringtone that loops.
		"ringtone.wav": tone(SoundRate, []float64{400, 450}, []segment{{0.4, true}, {0.2, false}, {0.4, true}, {2.0, false}}),
		// The callee's phone rings: 440+480 Hz, 1 s on, 3 s off (ITU-T E.180 style).
		"ringback.wav": tone(SoundRate, []float64{440, 480}, []segment{{1.0, true}, {3.0, false}}),
	}
	for name, pcm := range sounds {
		if err := os.WriteFile(filepath.Join(dir, "sounds", name), wav(SoundRate, pcm), 0o644); err != nil {
			return err
		}
	}
	return nil
}

// SoundRate is the sample rate of the generated sounds (mono, 16-bit).
const SoundRate = 16000

type segment struct {
	seconds float64
	on      bool
}

// tone makes the sum of freqs, switched on and off by segs, with 10 ms ramps against clicks.
func tone(rate int, freqs []float64, segs []segment) []int16 {
	var out []int16
	t := 0
	for _, s := range segs {
		n := int(s.seconds * float64(rate))
		ramp := rate / 100
		for i := range n {
			v := 0.0
			if s.on {
				for _, f := range freqs {
					v += math.Sin(2 * math.Pi * f * float64(t) / float64(rate))
				}
				v *= 0.5 / float64(len(freqs)) // peak at half of full scale
				if i < ramp {
					v *= float64(i) / float64(ramp)
				} else if n-i < ramp {
					v *= float64(n-i) / float64(ramp)
				}
			}
			out = append(out, int16(v*32767))
			t++
		}
	}
	return out
}

// wav encodes mono 16-bit PCM as a RIFF WAVE file.
func wav(rate int, pcm []int16) []byte {
	var b bytes.Buffer
	le := binary.LittleEndian
	b.WriteString("RIFF")
	binary.Write(&b, le, uint32(36+2*len(pcm)))
	b.WriteString("WAVEfmt ")
	binary.Write(&b, le, uint32(16))
	binary.Write(&b, le, uint16(1)) // PCM
	binary.Write(&b, le, uint16(1)) // mono
	binary.Write(&b, le, uint32(rate))
	binary.Write(&b, le, uint32(2*rate))
	binary.Write(&b, le, uint16(2))
	binary.Write(&b, le, uint16(16))
	b.WriteString("data")
	binary.Write(&b, le, uint32(2*len(pcm)))
	binary.Write(&b, le, pcm)
	return b.Bytes()
}

// master is the size the SVG is rasterised at; smaller sizes are filtered down from it
// (oksvg does not scale stroke widths with the target, so small renderings are wrong).
const master = 512

// Render rasterises the SVG src to an n x n image.
func Render(src []byte, n int) (*image.RGBA, error) {
	icon, err := oksvg.ReadIconStream(bytes.NewReader(src), oksvg.StrictErrorMode)
	if err != nil {
		return nil, fmt.Errorf("parsing icon.svg: %w", err)
	}
	icon.SetTarget(0, 0, master, master)
	big := image.NewRGBA(image.Rect(0, 0, master, master))
	scanner := rasterx.NewScannerGV(master, master, big, big.Bounds())
	icon.Draw(rasterx.NewDasher(master, master, scanner), 1)
	if n == master {
		return big, nil
	}
	img := image.NewRGBA(image.Rect(0, 0, n, n))
	draw.CatmullRom.Scale(img, img.Bounds(), big, big.Bounds(), draw.Src, nil)
	return img, nil
}
