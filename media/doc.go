// Package media is Chordphone's audio engine; it knows nothing of overlays
// or windows. Its sub-packages each do one job:
//
//	audio      frames (20 ms, 48 kHz mono int16), Source/Sink, PortAudio devices, WAV files
//	opuscodec  Opus encoder/decoder for speech: VoIP mode, in-band FEC, PLC, DTX
//	jitter     adaptive jitter buffer (20-200 ms) with FEC recovery and concealment
//	dsp        SpeexDSP echo canceller and noise suppressor (cgo), switchable
//	tones      ringtone, ringback, busy and DTMF tones generated in code
//	pipeline   Source -> DSP -> Opus and packets -> jitter -> Opus -> Sink
//	rtc        the media session of a call: pion/webrtc, SDP offer/answer, hold, DTMF, stats
//	analysis   Goertzel, tone SNR, aligned cross-correlation (tests and benchmarks)
//	netsim     virtual-time lossy network for deterministic pipeline tests
//	pulsetest  a private PulseAudio daemon with null sinks for tests
package media
