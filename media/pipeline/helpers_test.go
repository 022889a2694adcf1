package pipeline_test

import (
	"github.com/chordphone/chordphone/media/audio"
	"github.com/chordphone/chordphone/media/jitter"
)

func jitterPacket(i int, payload []byte) jitter.Packet {
	return jitter.Packet{Seq: uint16(i), Timestamp: uint32(i * audio.FrameSamples), Payload: payload}
}
