package audio

import (
	"bufio"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"os"
	"sync"
)

// DecodeWAV parses a RIFF/WAVE file of 16-bit PCM (any channel count, any
// sample rate) and returns its signal as mono 48 kHz samples: channels are
// averaged and other rates are resampled linearly.
func DecodeWAV(data []byte) ([]int16, error) {
	if len(data) < 12 || string(data[0:4]) != "RIFF" || string(data[8:12]) != "WAVE" {
		return nil, errors.New("wav: not a RIFF/WAVE file")
	}
	var (
		haveFmt          bool
		format, channels uint16
		rate             uint32
		bits             uint16
		pcm              []byte
		haveData         bool
	)
	p := data[12:]
	for len(p) >= 8 {
		id := string(p[0:4])
		size := binary.LittleEndian.Uint32(p[4:8])
		p = p[8:]
		n := int(size)
		if uint64(size) > uint64(len(p)) {
			if id != "data" {
				return nil, fmt.Errorf("wav: chunk %q of %d bytes runs past the end of the file", id, size)
			}
			n = len(p) // truncated data chunk (writer killed): use what is there
		}
		body := p[:n]
		switch id {
		case "fmt ":
			if n < 16 {
				return nil, fmt.Errorf("wav: fmt chunk too short (%d bytes)", n)
			}
			format = binary.LittleEndian.Uint16(body[0:2])
			channels = binary.LittleEndian.Uint16(body[2:4])
			rate = binary.LittleEndian.Uint32(body[4:8])
			bits = binary.LittleEndian.Uint16(body[14:16])
			if format == 0xFFFE && n >= 26 { // WAVE_FORMAT_EXTENSIBLE: sub-format GUID starts at 24
				format = binary.LittleEndian.Uint16(body[24:26])
			}
			haveFmt = true
		case "data":
			pcm = body
			haveData = true
		}
		if n%2 == 1 && n < len(p) {
			n++ // chunks are padded to even sizes
		}
		p = p[n:]
	}
	switch {
	case !haveFmt:
		return nil, errors.New("wav: no fmt chunk")
	case !haveData:
		return nil, errors.New("wav: no data chunk")
	case format != 1:
		return nil, fmt.Errorf("wav: format %d is not supported (only 16-bit PCM)", format)
	case bits != 16:
		return nil, fmt.Errorf("wav: %d-bit samples are not supported (only 16-bit PCM)", bits)
	case channels == 0:
		return nil, errors.New("wav: zero channels")
	case rate < 1000 || rate > 384000:
		return nil, fmt.Errorf("wav: sample rate %d Hz is out of range", rate)
	}
	ch := int(channels)
	frames := len(pcm) / (2 * ch)
	mono := make([]int16, frames)
	for i := range frames {
		var sum int
		for c := range ch {
			off := 2 * (i*ch + c)
			sum += int(int16(binary.LittleEndian.Uint16(pcm[off:])))
		}
		mono[i] = int16(sum / ch)
	}
	if rate == SampleRate {
		return mono, nil
	}
	return Resample(mono, int(rate), SampleRate), nil
}

// Resample converts samples from rate from to rate to by linear interpolation.
func Resample(in []int16, from, to int) []int16 {
	if from == to || len(in) == 0 {
		return append([]int16(nil), in...)
	}
	n := int(int64(len(in)) * int64(to) / int64(from))
	out := make([]int16, n)
	for i := range out {
		pos := float64(i) * float64(from) / float64(to)
		j := int(pos)
		frac := pos - float64(j)
		a := float64(in[j])
		b := a
		if j+1 < len(in) {
			b = float64(in[j+1])
		}
		out[i] = int16(a + (b-a)*frac)
	}
	return out
}

// LoadWAV reads a WAV file as mono 48 kHz samples (see DecodeWAV).
func LoadWAV(path string) ([]int16, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("wav: %w", err)
	}
	s, err := DecodeWAV(data)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return s, nil
}

// SaveWAV writes samples as a mono 48 kHz 16-bit WAV file.
func SaveWAV(path string, samples []int16) error {
	f, err := os.Create(path)
	if err != nil {
		return fmt.Errorf("wav: %w", err)
	}
	w := bufio.NewWriter(f)
	hdr := wavHeader(uint32(2 * len(samples)))
	w.Write(hdr[:])
	binary.Write(w, binary.LittleEndian, samples)
	if err := w.Flush(); err != nil {
		f.Close()
		return fmt.Errorf("wav: write %s: %w", path, err)
	}
	return f.Close()
}

// wavHeader returns the 44-byte header of a mono 48 kHz 16-bit PCM file.
func wavHeader(dataBytes uint32) [44]byte {
	var h [44]byte
	copy(h[0:], "RIFF")
	binary.LittleEndian.PutUint32(h[4:], 36+dataBytes)
	copy(h[8:], "WAVEfmt ")
	binary.LittleEndian.PutUint32(h[16:], 16)
	binary.LittleEndian.PutUint16(h[20:], 1) // PCM
	binary.LittleEndian.PutUint16(h[22:], 1) // mono
	binary.LittleEndian.PutUint32(h[24:], SampleRate)
	binary.LittleEndian.PutUint32(h[28:], SampleRate*2)
	binary.LittleEndian.PutUint16(h[32:], 2)
	binary.LittleEndian.PutUint16(h[34:], 16)
	copy(h[36:], "data")
	binary.LittleEndian.PutUint32(h[40:], dataBytes)
	return h
}

// WAVSourceOptions tune a WAVSource.
type WAVSourceOptions struct {
	// Loop restarts the file at its end; otherwise the source plays silence
	// (or returns io.EOF when EOF is set) after the last sample.
	Loop bool
	// EOF makes ReadFrame return io.EOF at the end instead of silence.
	EOF bool
	// Unpaced returns frames as fast as they are read (benchmarks, offline
	// processing); by default ReadFrame releases one frame every 20 ms.
	Unpaced bool
}

// WAVSource plays samples (usually a WAV file) as a Source, in real time.
type WAVSource struct {
	opts    WAVSourceOptions
	samples []int16

	mu     sync.Mutex
	pos    int
	pacer  *Pacer
	closed bool
}

// OpenWAVSource loads a WAV file (see DecodeWAV) as a Source.
func OpenWAVSource(path string, opts WAVSourceOptions) (*WAVSource, error) {
	s, err := LoadWAV(path)
	if err != nil {
		return nil, err
	}
	return NewSampleSource(s, opts), nil
}

// NewSampleSource returns a Source playing samples (mono 48 kHz).
func NewSampleSource(samples []int16, opts WAVSourceOptions) *WAVSource {
	return &WAVSource{opts: opts, samples: samples}
}

// ReadFrame implements Source.
func (s *WAVSource) ReadFrame(ctx context.Context, frame []int16) error {
	if len(frame) != FrameSamples {
		return ErrFrameSize
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return ErrClosed
	}
	if !s.opts.Unpaced {
		if s.pacer == nil {
			s.pacer = NewPacer()
		}
		if err := s.pacer.Wait(ctx); err != nil {
			return err
		}
	} else if err := ctx.Err(); err != nil {
		return err
	}
	n := 0
	for n < len(frame) {
		if s.pos >= len(s.samples) {
			if s.opts.Loop && len(s.samples) > 0 {
				s.pos = 0
				continue
			}
			if s.opts.EOF && n == 0 {
				return io.EOF
			}
			clear(frame[n:])
			return nil
		}
		c := copy(frame[n:], s.samples[s.pos:])
		n += c
		s.pos += c
	}
	return nil
}

// Close implements Source.
func (s *WAVSource) Close() error {
	s.mu.Lock()
	s.closed = true
	s.mu.Unlock()
	return nil
}

// WAVSink writes frames to a mono 48 kHz 16-bit WAV file. The header is
// rewritten every second and on Close, so the file stays valid even if the
// process is killed. It is not Clocked: the pipeline paces it.
type WAVSink struct {
	mu      sync.Mutex
	f       *os.File
	w       *bufio.Writer
	path    string
	bytes   uint32
	frames  int
	closed  bool
	scratch []byte
}

// CreateWAVSink creates (or truncates) path and writes a header.
func CreateWAVSink(path string) (*WAVSink, error) {
	f, err := os.Create(path)
	if err != nil {
		return nil, fmt.Errorf("wav sink: %w", err)
	}
	h := wavHeader(0)
	if _, err := f.Write(h[:]); err != nil {
		f.Close()
		return nil, fmt.Errorf("wav sink %s: %w", path, err)
	}
	return &WAVSink{f: f, w: bufio.NewWriterSize(f, 64<<10), path: path, scratch: make([]byte, 2*FrameSamples)}, nil
}

// WriteFrame implements Sink.
func (s *WAVSink) WriteFrame(frame []int16) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return ErrClosed
	}
	buf := s.scratch[:0]
	for _, v := range frame {
		buf = binary.LittleEndian.AppendUint16(buf, uint16(v))
	}
	if _, err := s.w.Write(buf); err != nil {
		return fmt.Errorf("wav sink %s: %w", s.path, err)
	}
	s.bytes += uint32(len(buf))
	s.frames++
	if s.frames%50 == 0 {
		return s.syncHeader()
	}
	return nil
}

func (s *WAVSink) syncHeader() error {
	if err := s.w.Flush(); err != nil {
		return fmt.Errorf("wav sink %s: %w", s.path, err)
	}
	h := wavHeader(s.bytes)
	if _, err := s.f.WriteAt(h[:], 0); err != nil {
		return fmt.Errorf("wav sink %s: %w", s.path, err)
	}
	return nil
}

// Close writes the final header and closes the file.
func (s *WAVSink) Close() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return nil
	}
	s.closed = true
	err := s.syncHeader()
	if cerr := s.f.Close(); err == nil && cerr != nil {
		err = fmt.Errorf("wav sink %s: %w", s.path, cerr)
	}
	return err
}

// Discard is a Sink that drops every frame (paced by the pipeline).
type Discard struct{}

// WriteFrame implements Sink.
func (Discard) WriteFrame([]int16) error { return nil }

// Close implements Sink.
func (Discard) Close() error { return nil }
