package wire

import (
	"encoding/binary"
	"io"
)

// pcapWriter writes a classic libpcap file (LINKTYPE_ETHERNET) of IPv4/UDP
// packets, by hand, for the independent tshark check.
type pcapWriter struct {
	w   io.Writer
	err error
	n   uint32
}

func newPcapWriter(w io.Writer) *pcapWriter {
	p := &pcapWriter{w: w}
	var h [24]byte
	binary.LittleEndian.PutUint32(h[0:], 0xa1b2c3d4) // magic, microsecond timestamps
	binary.LittleEndian.PutUint16(h[4:], 2)          // version 2.4
	binary.LittleEndian.PutUint16(h[6:], 4)
	binary.LittleEndian.PutUint32(h[16:], 65535) // snaplen
	binary.LittleEndian.PutUint32(h[20:], 1)     // LINKTYPE_ETHERNET
	_, p.err = w.Write(h[:])
	return p
}

func ipChecksum(b []byte) uint16 {
	var s uint32
	for i := 0; i+1 < len(b); i += 2 {
		s += uint32(binary.BigEndian.Uint16(b[i:]))
	}
	for s > 0xffff {
		s = s>>16 + s&0xffff
	}
	return ^uint16(s)
}

// writeUDP appends one Ethernet/IPv4/UDP packet from src to dst carrying payload.
func (p *pcapWriter) writeUDP(src, dst [4]byte, sport, dport uint16, payload []byte) {
	if p.err != nil {
		return
	}
	p.n++
	eth := []byte{0x02, 0, 0, 0, 0, dst[3], 0x02, 0, 0, 0, 0, src[3], 0x08, 0x00}
	ip := make([]byte, 20)
	ip[0] = 0x45
	binary.BigEndian.PutUint16(ip[2:], uint16(20+8+len(payload)))
	binary.BigEndian.PutUint16(ip[4:], uint16(p.n))
	ip[8] = 64 // ttl
	ip[9] = 17 // UDP
	copy(ip[12:], src[:])
	copy(ip[16:], dst[:])
	binary.BigEndian.PutUint16(ip[10:], ipChecksum(ip))
	udp := make([]byte, 8)
	binary.BigEndian.PutUint16(udp[0:], sport)
	binary.BigEndian.PutUint16(udp[2:], dport)
	binary.BigEndian.PutUint16(udp[4:], uint16(8+len(payload)))
	// UDP checksum 0: none (allowed for IPv4).
	pkt := append(append(append(eth, ip...), udp...), payload...)
	var rec [16]byte
	binary.LittleEndian.PutUint32(rec[0:], 1700000000+p.n) // ts_sec
	binary.LittleEndian.PutUint32(rec[8:], uint32(len(pkt)))
	binary.LittleEndian.PutUint32(rec[12:], uint32(len(pkt)))
	if _, p.err = p.w.Write(rec[:]); p.err == nil {
		_, p.err = p.w.Write(pkt)
	}
}
