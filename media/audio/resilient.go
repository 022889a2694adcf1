package audio

import (
	"context"
	"errors"
	"fmt"
	"sync"
)

// DeviceStatus says which device a Mic or Speaker uses and, when it is not the one
// wanted, why.
type DeviceStatus struct {
	Dir    string // "capture" or "playback"
	Device string // device in use; "" when there is none (silence sent, sound dropped)
	// Err is nil when the wanted device is in use; else why it is not (a *DeviceError,
	// or an error wrapping ErrNoDevice or ErrDeviceLost).
	Err error
}

// NoDevice reports whether no device is in use.
func (s DeviceStatus) NoDevice() bool { return s.Device == "" }

// device is what a Mic or a Speaker holds: a *Capture or a *Playback.
type device interface {
	comparable
	Device() string
	Fallback() error
	Close() error
}

// slot is what a Mic and a Speaker share: the device in use (or none, and a Pacer that
// keeps the pace a device would), its status, and the changes of device (lost, switched).
type slot[D device] struct {
	dir    string // "capture" or "playback"
	notify func(DeviceStatus)

	mu     sync.Mutex // a Mic holds it across a device read (20 ms) so Switch waits for it
	dev    D          // zero: none (silence sent, sound dropped)
	pacer  *Pacer     // paces frames when there is no device
	status DeviceStatus
	closed bool
}

// use starts the slot with dev, or with none when opening it failed with err.
func (s *slot[D]) use(dir string, notify func(DeviceStatus), dev D, err error) {
	s.dir, s.notify = dir, notify
	if err != nil {
		s.pacer, s.status = NewPacer(), DeviceStatus{Dir: dir, Err: err}
		return
	}
	s.dev, s.status = dev, DeviceStatus{Dir: dir, Device: dev.Device(), Err: dev.Fallback()}
}

// none reports whether there is no device (s.mu held).
func (s *slot[D]) none() bool {
	var zero D
	return s.dev == zero
}

// lose closes the device, which failed with err, and goes on without one; s.mu is held
// on entry and released.
func (s *slot[D]) lose(err error) {
	var zero D
	s.dev.Close()
	s.dev, s.pacer = zero, NewPacer()
	s.status = DeviceStatus{Dir: s.dir, Err: err}
	st := s.status
	s.mu.Unlock()
	s.tell(st)
}

// switchTo uses dev from the next frame on and closes the old one.
func (s *slot[D]) switchTo(dev D) error {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		dev.Close()
		return ErrClosed
	}
	old, had := s.dev, !s.none()
	s.dev, s.pacer = dev, nil
	s.status = DeviceStatus{Dir: s.dir, Device: dev.Device()}
	st := s.status
	s.mu.Unlock()
	if had {
		old.Close()
	}
	s.tell(st)
	return nil
}

func (s *slot[D]) tell(st DeviceStatus) {
	if s.notify != nil {
		s.notify(st)
	}
}

// Status is the device in use and why it is not the wanted one.
func (s *slot[D]) Status() DeviceStatus {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.status
}

// Close closes the device (a Speaker's after its queued sound has played).
func (s *slot[D]) Close() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return nil
	}
	s.closed = true
	if !s.none() {
		return s.dev.Close()
	}
	return nil
}

// Mic is a microphone that never stops a call: it reads the chosen capture device
// (or the default one, see OpenCapture), and when there is none, or the device is
// lost, it gives silence paced like a device would. Switch changes the device
// while it runs. It implements Source.
type Mic struct {
	slot[*Capture]
}

// OpenMic opens the capture device cfg chooses; with none it gives silence. notify (may
// be nil) is called with each later change of device (lost, switched), never with mu held.
func OpenMic(cfg DeviceConfig, notify func(DeviceStatus)) *Mic {
	m := &Mic{}
	c, err := OpenCapture(cfg)
	m.use("capture", notify, c, err)
	return m
}

// ReadFrame implements Source: a frame from the device, or silence when there is none.
func (m *Mic) ReadFrame(ctx context.Context, frame []int16) error {
	if len(frame) != FrameSamples {
		return ErrFrameSize
	}
	m.mu.Lock()
	if m.closed {
		m.mu.Unlock()
		return ErrClosed
	}
	if m.none() {
		p := m.pacer
		m.mu.Unlock()
		clear(frame)
		return p.Wait(ctx)
	}
	err := m.dev.ReadFrame(ctx, frame)
	if err == nil || ctx.Err() != nil {
		m.mu.Unlock()
		return err
	}
	// Lost with no default device to switch to (the Capture closed itself): silence.
	clear(frame)
	m.lose(err)
	return nil
}

// Switch opens the device cfg chooses and uses it from the next frame on; the old one is
// closed. When it cannot be opened the current device (or silence) stays and the error
// says why.
func (m *Mic) Switch(cfg DeviceConfig) error {
	cfg.Strict = true // the person chose this one: no silent fallback to another
	c, err := OpenCapture(cfg)
	if err != nil {
		return fmt.Errorf("switching the microphone: %w", err)
	}
	return m.switchTo(c)
}

// Speaker is a speaker that never stops a call: it plays on the chosen playback device
// (or the default one, see OpenPlayback), and when there is none, or the device is lost,
// it drops what it is given, at the pace a device would take it. It is Clocked either
// way. Switch changes the device while it runs. It implements Sink.
type Speaker struct {
	slot[*Playback]
}

// OpenSpeaker opens the playback device cfg chooses; with none it drops the sound. notify
// is as for OpenMic.
func OpenSpeaker(cfg DeviceConfig, notify func(DeviceStatus)) *Speaker {
	s := &Speaker{}
	p, err := OpenPlayback(cfg)
	s.use("playback", notify, p, err)
	return s
}

// Clocked implements Clocked: the device, or a timer when there is none, paces WriteFrame.
func (s *Speaker) Clocked() bool { return true }

// WriteFrame implements Sink: plays frame, or drops it when there is no device.
func (s *Speaker) WriteFrame(frame []int16) error {
	if len(frame) != FrameSamples {
		return ErrFrameSize
	}
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return ErrClosed
	}
	if s.none() {
		p := s.pacer
		s.mu.Unlock()
		return p.Wait(context.Background())
	}
	err := s.dev.WriteFrame(frame)
	if err == nil || errors.Is(err, ErrFrameSize) {
		s.mu.Unlock()
		return err
	}
	s.lose(err)
	return nil
}

// Switch opens the device cfg chooses and plays on it from the next frame on; the old one
// is closed. When it cannot be opened the current device (or none) stays and the error
// says why.
func (s *Speaker) Switch(cfg DeviceConfig) error {
	cfg.Strict = true
	p, err := OpenPlayback(cfg)
	if err != nil {
		return fmt.Errorf("switching the speaker: %w", err)
	}
	return s.switchTo(p)
}
