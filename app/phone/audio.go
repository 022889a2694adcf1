package phone

import (
	"errors"
	"fmt"
	"strings"

	"github.com/chordphone/chordphone/media/audio"
	"github.com/chordphone/chordphone/media/dsp"
)

// openAudio opens the call's microphone and speaker once per call (shared by forked
// branches): WAV files when --audio-in/--audio-out are given, else the sound devices with
// echo cancellation and noise suppression as Settings chose. A missing sound device fails
// nothing: the call sends silence or drops what it cannot play, and c gets a warning.
func (p *Phone) openAudio(c *call) (audio.Source, audio.Sink, *dsp.Processor, error) {
	p.audioMu.Lock()
	defer p.audioMu.Unlock()
	if p.src != nil {
		return p.src, p.sink, p.proc, nil
	}
	if p.cfg.Audio != nil {
		src, sink, err := p.cfg.Audio()
		if err != nil {
			return nil, nil, nil, fmt.Errorf("opening the call's audio: %w", err)
		}
		p.src, p.sink = src, sink
		return src, sink, nil, nil
	}
	notify := func(st audio.DeviceStatus) { p.deviceChanged(c, st) }
	var src audio.Source
	var sink audio.Sink
	var opened []audio.DeviceStatus
	if p.cfg.AudioIn != "" {
		w, err := audio.OpenWAVSource(p.cfg.AudioIn, audio.WAVSourceOptions{Loop: true})
		if err != nil {
			return nil, nil, nil, fmt.Errorf("opening the microphone: %w", err)
		}
		src = w
	} else {
		p.mic = audio.OpenMic(audio.DeviceConfig{Name: p.deviceSetting(settingAudioIn)}, notify)
		src = p.mic
		opened = append(opened, p.mic.Status())
	}
	if p.cfg.AudioOut != "" {
		w, err := audio.CreateWAVSink(p.cfg.AudioOut)
		if err != nil {
			src.Close()
			p.mic = nil
			return nil, nil, nil, fmt.Errorf("opening the speaker: %w", err)
		}
		sink = w
	} else {
		p.speaker = audio.OpenSpeaker(audio.DeviceConfig{Name: p.deviceSetting(settingAudioOut)}, notify)
		sink = p.speaker
		opened = append(opened, p.speaker.Status())
	}
	p.src, p.sink = src, sink
	// Echo and noise come from a room, not from a file; with no microphone or no speaker
	// there is neither (and SpeexDSP's canceller would complain of the unsynchronised
	// pace of two clocks it cannot see).
	if p.mic != nil && p.speaker != nil && !p.mic.Status().NoDevice() && !p.speaker.Status().NoDevice() {
		ec, ns := p.boolSetting(settingEchoCancel, true), p.boolSetting(settingNoiseSuppress, true)
		if ec || ns {
			var err error
			if p.proc, err = dsp.New(dsp.Config{EchoCancel: ec, NoiseSuppress: ns}); err != nil {
				p.log.Warn("no echo cancellation or noise suppression", "err", err)
				p.proc = nil
			}
		}
	}
	for _, st := range opened {
		p.deviceChanged(c, st)
	}
	return src, sink, p.proc, nil
}

func (p *Phone) closeAudio() {
	p.audioMu.Lock()
	defer p.audioMu.Unlock()
	if p.src != nil {
		p.src.Close()
		p.sink.Close()
		p.src, p.sink, p.mic, p.speaker = nil, nil, nil, nil
	}
	if p.proc != nil {
		p.proc.Close()
		p.proc = nil
	}
}

// deviceChanged records which sound device c uses and warns when it is not the wanted one.
func (p *Phone) deviceChanged(c *call, st audio.DeviceStatus) {
	code, msg := deviceWarning(st)
	p.mu.Lock()
	if c.audioWarn == nil {
		c.audioWarn = map[string]string{}
	}
	if msg == "" {
		delete(c.audioWarn, st.Dir)
	} else {
		c.audioWarn[st.Dir] = msg
	}
	var warns []string
	for _, dir := range []string{"capture", "playback"} {
		if w := c.audioWarn[dir]; w != "" {
			warns = append(warns, w)
		}
	}
	c.info.AudioWarning = strings.Join(warns, " ")
	p.mu.Unlock()
	if code == "" {
		p.log.Info("sound device in use", "dir", st.Dir, "device", st.Device, "call", c.info.ID)
		return
	}
	p.log.Warn("sound device trouble", "code", code, "call", c.info.ID, "err", st.Err)
	p.emit(Event{Kind: EventWarning, CallID: c.info.ID, Peer: c.info.Peer, Code: code, Message: msg})
}

// deviceWarning is the warning code and message for a device status ("" when all is well).
func deviceWarning(st audio.DeviceStatus) (code, msg string) {
	why := "none was found"
	var de *audio.DeviceError
	switch {
	case errors.Is(st.Err, audio.ErrDeviceLost):
		why = "it was unplugged, or the sound server stopped"
	case errors.As(st.Err, &de) && errors.Is(st.Err, audio.ErrNoDevice) && (de.Name == "" || strings.EqualFold(de.Name, "default")):
		why = "no sound device found"
	case errors.As(st.Err, &de) && errors.Is(st.Err, audio.ErrNoDevice):
		why = fmt.Sprintf("%q is not connected", de.Name)
	case st.Err != nil:
		why = st.Err.Error()
	}
	switch {
	case st.Dir == "capture" && st.NoDevice():
		return CodeNoCaptureDevice, fmt.Sprintf("No microphone (%s): the other side hears silence. Connect one: the next call uses it.", why)
	case st.NoDevice():
		return CodeNoPlaybackDevice, fmt.Sprintf("No speaker (%s): you cannot hear the other side. Connect one: the next call uses it.", why)
	case st.Err == nil:
		return "", ""
	case st.Dir == "capture":
		return CodeCaptureDeviceFallback, fmt.Sprintf("The chosen microphone is not available (%s); using %q.", why, st.Device)
	default:
		return CodePlaybackDeviceFallback, fmt.Sprintf("The chosen speaker is not available (%s); using %q.", why, st.Device)
	}
}

// switchDevices moves the current call to the devices now chosen in Settings (only those
// that changed, or that are not in use as wanted).
func (p *Phone) switchDevices(oldIn, oldOut, in, out string) error {
	p.audioMu.Lock()
	defer p.audioMu.Unlock()
	var errs []error
	if m := p.mic; m != nil && (in != oldIn || m.Status().Err != nil) {
		errs = append(errs, m.Switch(audio.DeviceConfig{Name: in}))
	}
	if s := p.speaker; s != nil && (out != oldOut || s.Status().Err != nil) {
		errs = append(errs, s.Switch(audio.DeviceConfig{Name: out}))
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("the call keeps its sound devices: %w", err)
	}
	return nil
}
