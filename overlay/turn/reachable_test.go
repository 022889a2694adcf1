package turn

import (
	"context"
	"net"
	"net/netip"
	"testing"
	"time"

	"github.com/pion/stun"
)

// stunServer answers Binding requests on loopback; with fake set it reports that address
// instead of the real source (a NAT in between).
func stunServer(t *testing.T, fake netip.Addr) string {
	t.Helper()
	pc, err := net.ListenPacket("udp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { pc.Close() })
	go func() { // owner: the test; ends when the socket closes
		buf := make([]byte, 1500)
		for {
			n, from, err := pc.ReadFrom(buf)
			if err != nil {
				return
			}
			m := &stun.Message{Raw: append([]byte(nil), buf[:n]...)}
			if m.Decode() != nil || m.Type != stun.BindingRequest {
				continue
			}
			ua := from.(*net.UDPAddr)
			ip := ua.IP
			if fake.IsValid() {
				ip = net.IP(fake.AsSlice())
			}
			resp := stun.MustBuild(m, stun.BindingSuccess, &stun.XORMappedAddress{IP: ip, Port: ua.Port}, stun.Fingerprint)
			_, _ = pc.WriteTo(resp.Raw, from)
		}
	}()
	return pc.LocalAddr().String()
}

// TestPublicly (RFC 6940 §9): an address serves when a peer's STUN answer shows the same
// address; not when the answer shows another one (a NAT); with no STUN server known (the
// overlay's first peer), a public interface address is taken as it is.
func TestPublicly(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	lo := netip.MustParseAddr("127.0.0.1")
	r, err := Reflexive(ctx, "127.0.0.1:0", stunServer(t, netip.Addr{}))
	if err != nil || r.Addr() != lo || r.Port() == 0 {
		t.Fatalf("reflexive %v, %v", r, err)
	}
	if a, ok := publicly(ctx, []netip.Addr{lo}, []string{stunServer(t, netip.Addr{})}); !ok || a != lo {
		t.Fatalf("same reflexive address: %v %v", a, ok)
	}
	if a, ok := publicly(ctx, []netip.Addr{lo}, []string{stunServer(t, netip.MustParseAddr("203.0.113.9"))}); ok {
		t.Fatalf("behind a NAT, yet serving on %v", a)
	}
	if a, ok := publicly(ctx, []netip.Addr{lo}, nil); !ok || a != lo {
		t.Fatalf("no STUN server: %v %v", a, ok)
	}
	if _, ok := publicly(ctx, nil, nil); ok {
		t.Fatal("no public address, yet serving")
	}
}
