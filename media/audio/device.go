package audio

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"time"

	"github.com/gordonklaus/portaudio"
)

// PortAudio is initialised while at least one device stream is open (and for
// the duration of Devices): every Open and Devices calls portaudio.Initialize
// and its Close (or end) the matching portaudio.Terminate. PortAudio counts
// Pa_Initialize calls and only the first one scans the host's devices, so a
// device plugged in while no stream is open is found by the next Open. The
// binding keeps its own count and device cache in unguarded globals: paMu
// serialises every call into it.
var paMu sync.Mutex

func paAcquire() error {
	paMu.Lock()
	defer paMu.Unlock()
	quietProbes()
	if err := portaudio.Initialize(); err != nil {
		return fmt.Errorf("portaudio: initialize: %w", err)
	}
	return nil
}

func paRelease() {
	paMu.Lock()
	defer paMu.Unlock()
	if err := portaudio.Terminate(); err != nil {
		slog.Warn("portaudio terminate", "err", err)
	}
}

// paDevices returns PortAudio's device table (in PortAudio index order: the
// binding fills Devices()[i] from Pa_GetDeviceInfo(i), so DeviceInfo.Index is
// both the position and the index paOpen takes) and the host's default input
// and output devices (nil when there is none). PortAudio must be initialised.
func paDevices() (devs []*portaudio.DeviceInfo, defIn, defOut *portaudio.DeviceInfo, err error) {
	paMu.Lock()
	defer paMu.Unlock()
	devs, err = portaudio.Devices()
	if err != nil {
		return nil, nil, nil, err
	}
	defIn, err = portaudio.DefaultInputDevice()
	if err != nil && !errors.Is(err, portaudio.NoDefaultInputDevice) {
		return nil, nil, nil, fmt.Errorf("default input: %w", err)
	}
	defOut, err = portaudio.DefaultOutputDevice()
	if err != nil && !errors.Is(err, portaudio.NoDefaultOutputDevice) {
		return nil, nil, nil, fmt.Errorf("default output: %w", err)
	}
	return devs, defIn, defOut, nil
}

// Device describes one PortAudio device.
type Device struct {
	Name              string
	HostAPI           string
	MaxInputChannels  int
	MaxOutputChannels int
	DefaultSampleRate float64
	DefaultInput      bool // the host's default input
	DefaultOutput     bool // the host's default output
}

// Devices lists the PortAudio devices of the host.
func Devices() ([]Device, error) {
	if err := paAcquire(); err != nil {
		return nil, err
	}
	defer paRelease()
	devs, defIn, defOut, err := paDevices()
	if err != nil {
		return nil, fmt.Errorf("portaudio: list devices: %w", err)
	}
	out := make([]Device, 0, len(devs))
	for _, d := range devs {
		dev := Device{
			Name:              d.Name,
			MaxInputChannels:  d.MaxInputChannels,
			MaxOutputChannels: d.MaxOutputChannels,
			DefaultSampleRate: d.DefaultSampleRate,
			DefaultInput:      d == defIn && d.MaxInputChannels > 0,
			DefaultOutput:     d == defOut && d.MaxOutputChannels > 0,
		}
		if d.HostApi != nil {
			dev.HostAPI = d.HostApi.Name
		}
		out = append(out, dev)
	}
	return out, nil
}

// DeviceConfig chooses a device.
type DeviceConfig struct {
	// Name of the device as listed by Devices; "" or "default" means the
	// host's default device. A name matches exactly, else as a unique
	// case-insensitive substring.
	Name string
	// Strict makes Open fail when the named device cannot be used instead of
	// falling back to the default device.
	Strict bool
	// Latency is the device buffering to ask for; default: the device's
	// low latency, at least 60 ms (fewer dropouts on a busy machine).
	Latency time.Duration
}

// ErrNoDevice means no device of the wanted direction exists.
var ErrNoDevice = errors.New("audio: no such device")

// ErrDeviceLost means a stream stopped working (device unplugged, sound
// server stopped) and the default device could not be opened instead.
var ErrDeviceLost = errors.New("audio: device lost (unplugged, or the sound server stopped)")

// DeviceError explains why a device could not be used.
type DeviceError struct {
	Name string // device asked for
	Dir  string // "capture" or "playback"
	Err  error
}

func (e *DeviceError) Error() string {
	name := e.Name
	if name == "" {
		name = "default"
	}
	return fmt.Sprintf("%s device %q: %v", e.Dir, name, e.Err)
}

func (e *DeviceError) Unwrap() error { return e.Err }

func findDevice(name string, input bool) (*portaudio.DeviceInfo, error) {
	devs, defIn, defOut, err := paDevices()
	if err != nil {
		return nil, err
	}
	usable := func(d *portaudio.DeviceInfo) bool {
		if input {
			return d.MaxInputChannels > 0
		}
		return d.MaxOutputChannels > 0
	}
	if name == "" {
		def := defOut
		if input {
			def = defIn
		}
		if def == nil || !usable(def) {
			return nil, fmt.Errorf("no default device: %w", ErrNoDevice)
		}
		return def, nil
	}
	var matches []*portaudio.DeviceInfo
	for _, d := range devs {
		if d.Name == name && usable(d) {
			return d, nil
		}
		if strings.Contains(strings.ToLower(d.Name), strings.ToLower(name)) && usable(d) {
			matches = append(matches, d)
		}
	}
	switch len(matches) {
	case 1:
		return matches[0], nil
	case 0:
		if strings.EqualFold(name, "default") {
			return findDevice("", input)
		}
		return nil, fmt.Errorf("not found (unplugged?): %w", ErrNoDevice)
	default:
		names := make([]string, len(matches))
		for i, d := range matches {
			names[i] = d.Name
		}
		return nil, fmt.Errorf("ambiguous, matches %s: %w", strings.Join(names, ", "), ErrNoDevice)
	}
}

// openStream opens a blocking 48 kHz mono int16 stream on the device chosen by
// cfg, falling back to the default device unless cfg.Strict. It returns the
// stream, the device used and, after a fallback, why the chosen one was not.
func openStream(cfg DeviceConfig, input bool) (*paStream, string, error, error) {
	dir := "playback"
	if input {
		dir = "capture"
	}
	try := func(name string) (*paStream, string, error) {
		d, err := findDevice(name, input)
		if err != nil {
			return nil, "", err
		}
		lat := cfg.Latency
		if lat <= 0 {
			lat = d.DefaultLowOutputLatency
			if input {
				lat = d.DefaultLowInputLatency
			}
			lat = max(lat, 60*time.Millisecond)
		}
		s, err := paOpen(d.Index, input, lat)
		if err != nil {
			return nil, d.Name, fmt.Errorf("open (busy?): %w", err)
		}
		return s, d.Name, nil
	}
	s, used, err := try(cfg.Name)
	if err == nil {
		return s, used, nil, nil
	}
	derr := &DeviceError{Name: cfg.Name, Dir: dir, Err: err}
	if cfg.Strict || cfg.Name == "" || strings.EqualFold(cfg.Name, "default") {
		return nil, "", nil, derr
	}
	s, used, err2 := try("")
	if err2 != nil {
		return nil, "", nil, fmt.Errorf("%w; default device: %v", derr, err2)
	}
	slog.Warn("audio device unavailable, using the default", "dir", dir, "wanted", cfg.Name, "using", used, "err", err)
	return s, used, derr, nil
}

// Capture is a PortAudio microphone: a Source paced by the sound card.
type Capture struct {
	mu       sync.Mutex
	stream   *paStream
	name     string
	fallback error
	closed   bool
	overruns int
}

// OpenCapture opens an input device at 48 kHz mono with 20 ms buffers. When
// the named device is missing or busy it opens the default one instead (see
// Fallback) unless cfg.Strict; when no device can be opened the error says why.
func OpenCapture(cfg DeviceConfig) (*Capture, error) {
	if err := paAcquire(); err != nil {
		return nil, err
	}
	c := &Capture{}
	s, name, fb, err := openStream(cfg, true)
	if err != nil {
		paRelease()
		return nil, err
	}
	c.stream, c.name, c.fallback = s, name, fb
	return c, nil
}

// Fallback is nil when the chosen device is in use, else the reason it is not
// (a *DeviceError) and the default device is used instead: it was missing or
// busy at open, or it was lost during use.
func (c *Capture) Fallback() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.fallback
}

// Device is the name of the device in use.
func (c *Capture) Device() string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.name
}

// Overruns counts frames the sound card dropped because they were read late.
func (c *Capture) Overruns() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.overruns
}

// ReadFrame implements Source; it blocks until the sound card has 20 ms.
func (c *Capture) ReadFrame(ctx context.Context, frame []int16) error {
	if len(frame) != FrameSamples {
		return ErrFrameSize
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed {
		return ErrClosed
	}
	if err := c.stream.read(frame); err != nil {
		if errors.Is(err, portaudio.InputOverflowed) {
			c.overruns++
			return nil
		}
		// The device went away: switch to the default device if possible.
		c.stream.close(true)
		s, name, _, rerr := openStream(DeviceConfig{}, true)
		if rerr != nil {
			c.closed = true
			paRelease()
			return fmt.Errorf("capture device %q: %w: %v; default device: %v", c.name, ErrDeviceLost, err, rerr)
		}
		slog.Warn("capture device lost, using the default", "lost", c.name, "using", name, "err", err)
		c.fallback = &DeviceError{Name: c.name, Dir: "capture", Err: fmt.Errorf("%w: %v", ErrDeviceLost, err)}
		c.stream, c.name = s, name
		clear(frame)
	}
	return nil
}

// Close stops the stream.
func (c *Capture) Close() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed {
		return nil
	}
	c.closed = true
	err := c.stream.close(true)
	paRelease()
	if err != nil {
		return fmt.Errorf("capture device %q: close: %w", c.name, err)
	}
	return nil
}

// Playback is a PortAudio speaker: a Sink paced (Clocked) by the sound card.
type Playback struct {
	mu        sync.Mutex
	stream    *paStream
	name      string
	fallback  error
	closed    bool
	underruns int
}

// OpenPlayback opens an output device at 48 kHz mono with 20 ms buffers, with
// the same fallback rules as OpenCapture.
func OpenPlayback(cfg DeviceConfig) (*Playback, error) {
	if err := paAcquire(); err != nil {
		return nil, err
	}
	p := &Playback{}
	s, name, fb, err := openStream(cfg, false)
	if err != nil {
		paRelease()
		return nil, err
	}
	p.stream, p.name, p.fallback = s, name, fb
	return p, nil
}

// Device is the name of the device in use.
func (p *Playback) Device() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.name
}

// Fallback is nil when the chosen device is in use, else why it is not.
func (p *Playback) Fallback() error {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.fallback
}

// Underruns counts times the sound card ran dry before a frame was written.
func (p *Playback) Underruns() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.underruns
}

// Clocked implements Clocked: WriteFrame blocks in step with the sound card.
func (p *Playback) Clocked() bool { return true }

// WriteFrame implements Sink.
func (p *Playback) WriteFrame(frame []int16) error {
	if len(frame) != FrameSamples {
		return ErrFrameSize
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed {
		return ErrClosed
	}
	if err := p.stream.write(frame); err != nil {
		if errors.Is(err, portaudio.OutputUnderflowed) {
			p.underruns++
			return nil
		}
		p.stream.close(true)
		s, name, _, rerr := openStream(DeviceConfig{}, false)
		if rerr != nil {
			p.closed = true
			paRelease()
			return fmt.Errorf("playback device %q: %w: %v; default device: %v", p.name, ErrDeviceLost, err, rerr)
		}
		slog.Warn("playback device lost, using the default", "lost", p.name, "using", name, "err", err)
		p.fallback = &DeviceError{Name: p.name, Dir: "playback", Err: fmt.Errorf("%w: %v", ErrDeviceLost, err)}
		p.stream, p.name = s, name
	}
	return nil
}

// Close stops the stream after the queued audio has played.
func (p *Playback) Close() error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed {
		return nil
	}
	p.closed = true
	err := p.stream.close(false)
	paRelease()
	if err != nil {
		return fmt.Errorf("playback device %q: close: %w", p.name, err)
	}
	return nil
}
