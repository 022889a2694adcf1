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

// Mic is a microphone that never stops a call: it reads the chosen capture device
// (or the default one, see OpenCapture), and when there is none, or the device is
// lost, it gives silence paced like a device would. Switch changes the device
// while it runs. It implements Source.
type Mic struct {
	notify func(DeviceStatus)

	mu     sync.Mutex // held across a device read (20 ms) so Switch waits for it
	dev    *Capture   // nil: silence
	pacer  *Pacer     // paces silence when dev is nil
	status DeviceStatus
	closed bool
}

// OpenMic opens the capture device cfg chooses; with none it gives silence. notify (may
// be nil) is called with each later change of device (lost, switched), never with mu held.
func OpenMic(cfg DeviceConfig, notify func(DeviceStatus)) *Mic {
	m := &Mic{notify: notify}
	m.dev, m.status = openCaptureStatus(cfg)
	if m.dev == nil {
		m.pacer = NewPacer()
	}
	return m
}

func openCaptureStatus(cfg DeviceConfig) (*Capture, DeviceStatus) {
	c, err := OpenCapture(cfg)
	if err != nil {
		return nil, DeviceStatus{Dir: "capture", Err: err}
	}
	return c, DeviceStatus{Dir: "capture", Device: c.Device(), Err: c.Fallback()}
}

// Status is the device in use and why it is not the wanted one.
func (m *Mic) Status() DeviceStatus {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.status
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
	if m.dev == nil {
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
	m.dev.Close()
	m.dev, m.pacer = nil, NewPacer()
	m.status = DeviceStatus{Dir: "capture", Err: err}
	st := m.status
	m.mu.Unlock()
	clear(frame)
	m.tell(st)
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
	m.mu.Lock()
	if m.closed {
		m.mu.Unlock()
		c.Close()
		return ErrClosed
	}
	old := m.dev
	m.dev, m.pacer = c, nil
	m.status = DeviceStatus{Dir: "capture", Device: c.Device()}
	st := m.status
	m.mu.Unlock()
	if old != nil {
		old.Close()
	}
	m.tell(st)
	return nil
}

func (m *Mic) tell(st DeviceStatus) {
	if m.notify != nil {
		m.notify(st)
	}
}

// Close closes the device.
func (m *Mic) Close() error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.closed {
		return nil
	}
	m.closed = true
	if m.dev != nil {
		return m.dev.Close()
	}
	return nil
}

// Speaker is a speaker that never stops a call: it plays on the chosen playback device
// (or the default one, see OpenPlayback), and when there is none, or the device is lost,
// it drops what it is given, at the pace a device would take it. It is Clocked either
// way. Switch changes the device while it runs. It implements Sink.
type Speaker struct {
	notify func(DeviceStatus)

	mu     sync.Mutex
	dev    *Playback // nil: frames are dropped
	pacer  *Pacer
	status DeviceStatus
	closed bool
}

// OpenSpeaker opens the playback device cfg chooses; with none it drops the sound. notify
// is as for OpenMic.
func OpenSpeaker(cfg DeviceConfig, notify func(DeviceStatus)) *Speaker {
	s := &Speaker{notify: notify}
	s.dev, s.status = openPlaybackStatus(cfg)
	if s.dev == nil {
		s.pacer = NewPacer()
	}
	return s
}

func openPlaybackStatus(cfg DeviceConfig) (*Playback, DeviceStatus) {
	p, err := OpenPlayback(cfg)
	if err != nil {
		return nil, DeviceStatus{Dir: "playback", Err: err}
	}
	return p, DeviceStatus{Dir: "playback", Device: p.Device(), Err: p.Fallback()}
}

// Status is the device in use and why it is not the wanted one.
func (s *Speaker) Status() DeviceStatus {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.status
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
	if s.dev == nil {
		p := s.pacer
		s.mu.Unlock()
		return p.Wait(context.Background())
	}
	err := s.dev.WriteFrame(frame)
	if err == nil || errors.Is(err, ErrFrameSize) {
		s.mu.Unlock()
		return err
	}
	s.dev.Close()
	s.dev, s.pacer = nil, NewPacer()
	s.status = DeviceStatus{Dir: "playback", Err: err}
	st := s.status
	s.mu.Unlock()
	s.tell(st)
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
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		p.Close()
		return ErrClosed
	}
	old := s.dev
	s.dev, s.pacer = p, nil
	s.status = DeviceStatus{Dir: "playback", Device: p.Device()}
	st := s.status
	s.mu.Unlock()
	if old != nil {
		old.Close()
	}
	s.tell(st)
	return nil
}

func (s *Speaker) tell(st DeviceStatus) {
	if s.notify != nil {
		s.notify(st)
	}
}

// Close closes the device after its queued sound has played.
func (s *Speaker) Close() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return nil
	}
	s.closed = true
	if s.dev != nil {
		return s.dev.Close()
	}
	return nil
}
