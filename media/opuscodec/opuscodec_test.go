package opuscodec_test

import (
	"errors"
	"testing"

	"github.com/chordphone/chordphone/media/analysis"
	"github.com/chordphone/chordphone/media/audio"
	"github.com/chordphone/chordphone/media/opuscodec"
)

func encodeAll(t *testing.T, cfg opuscodec.Config, sig []int16) [][]byte {
	t.Helper()
	enc, err := opuscodec.NewEncoder(cfg)
	if err != nil {
		t.Fatal(err)
	}
	var pkts [][]byte
	for i := 0; i+audio.FrameSamples <= len(sig); i += audio.FrameSamples {
		p, err := enc.Encode(sig[i : i+audio.FrameSamples])
		if err != nil {
			t.Fatal(err)
		}
		pkts = append(pkts, append([]byte(nil), p...))
	}
	return pkts
}

// decode plays pkts, losing every lossEvery-th packet and recovering it with
// FEC (from the next packet) or PLC.
func decode(t *testing.T, pkts [][]byte, lossEvery int, fec bool) []int16 {
	t.Helper()
	dec, err := opuscodec.NewDecoder()
	if err != nil {
		t.Fatal(err)
	}
	var out []int16
	f := make([]int16, audio.FrameSamples)
	for i, p := range pkts {
		switch {
		case lossEvery > 0 && i%lossEvery == lossEvery-1 && fec && i+1 < len(pkts):
			err = dec.DecodeFEC(pkts[i+1], f)
		case lossEvery > 0 && i%lossEvery == lossEvery-1:
			err = dec.Conceal(f)
		default:
			err = dec.Decode(p, f)
		}
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, f...)
	}
	return out
}

func corr(sig, out []int16) float64 {
	c, _ := analysis.WindowCorrelations(sig, out, audio.SampleRate/2, audio.SampleRate/2, 2000)
	return analysis.Median(c)
}

func TestSpeechBitrateAndFECBeatsConcealment(t *testing.T) {
	sig := analysis.TestSignal(6*audio.SampleRate, audio.SampleRate, 4)
	pkts := encodeAll(t, opuscodec.Config{}, sig)
	bytes := 0
	for _, p := range pkts {
		bytes += len(p)
	}
	kbps := float64(bytes*8) / 6 / 1000
	clean := corr(sig, decode(t, pkts, 0, false))
	plc := corr(sig, decode(t, pkts, 5, false)) // 20% loss
	fec := corr(sig, decode(t, pkts, 5, true))
	t.Logf("%.1f kbit/s; corr clean %.3f, 20%% loss with PLC %.3f, with FEC %.3f", kbps, clean, plc, fec)
	if kbps < 16 || kbps > 40 {
		t.Fatalf("bitrate %.1f kbit/s is not a speech bitrate", kbps)
	}
	if clean < 0.95 {
		t.Fatalf("clean correlation %.3f", clean)
	}
	if fec <= plc {
		t.Fatalf("FEC (%.3f) does not beat concealment (%.3f)", fec, plc)
	}
}

func TestDTXShrinksSilence(t *testing.T) {
	silence := make([]int16, 2*audio.SampleRate)
	pkts := encodeAll(t, opuscodec.Config{DTX: true}, silence)
	small := 0
	for _, p := range pkts {
		if len(p) <= 2 {
			small++
		}
	}
	if small < len(pkts)/2 {
		t.Fatalf("only %d of %d silent frames were DTX packets", small, len(pkts))
	}
}

func TestBadInput(t *testing.T) {
	if _, err := opuscodec.NewEncoder(opuscodec.Config{Bitrate: 1}); err == nil {
		t.Fatal("bitrate 1 accepted")
	}
	enc, _ := opuscodec.NewEncoder(opuscodec.Config{})
	if _, err := enc.Encode(make([]int16, 100)); !errors.Is(err, audio.ErrFrameSize) {
		t.Fatalf("short frame: %v", err)
	}
	dec, _ := opuscodec.NewDecoder()
	f := make([]int16, audio.FrameSamples)
	for _, p := range [][]byte{{0xff}, {0x03}, {0x4b, 0x41, 0x42}} {
		if err := dec.Decode(p, f); !errors.Is(err, opuscodec.ErrBadPacket) {
			t.Errorf("packet %x: %v", p, err)
		}
	}
}

func FuzzDecode(f *testing.F) {
	sig := analysis.TestSignal(audio.FrameSamples*3, audio.SampleRate, 1)
	enc, _ := opuscodec.NewEncoder(opuscodec.Config{})
	for i := 0; i < len(sig); i += audio.FrameSamples {
		p, _ := enc.Encode(sig[i : i+audio.FrameSamples])
		f.Add(append([]byte(nil), p...))
	}
	f.Add([]byte{0xff, 0xff})
	dec, _ := opuscodec.NewDecoder()
	frame := make([]int16, audio.FrameSamples)
	f.Fuzz(func(t *testing.T, pkt []byte) {
		_ = dec.Decode(pkt, frame)
		_ = dec.DecodeFEC(pkt, frame)
	})
}
