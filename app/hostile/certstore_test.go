package hostile

import (
	"testing"
	"time"

	"github.com/chordphone/chordphone/overlay/kinds"
	"github.com/chordphone/chordphone/overlay/link"
	"github.com/chordphone/chordphone/overlay/storage"
	"github.com/chordphone/chordphone/overlay/wire"
)

// TestSignerCertificateFetched: every peer stores its certificate (CERTIFICATE_BY_NODE and
// CERTIFICATE_BY_USER, RFC 6940 §8); a request signed by a node that stored its certificate
// but left it out of the message's security block (§6.3.4: it only SHOULD be there) is
// verified with the certificate fetched from the overlay (§11.3.1) and answered, at every
// peer, including those that never saw that certificate. A node that stored no certificate
// gets no answer (§6.3.4: dropped).
func TestSignerCertificateFetched(t *testing.T) {
	ps := startPeers(t, 3)
	// An observer checks the stores, so that carol signs only her Store (the peers cache the
	// certificates of the signers they verified).
	obs := newUser(t, "observer")
	ol := obs.dial(t, ps[0])
	carol := newUser(t, "carol")
	cl := carol.dial(t, ps[0])

	// The peers' own certificates are in the overlay.
	deadline := time.Now().Add(30 * time.Second)
	for _, p := range ps {
		for _, at := range []struct {
			rid  wire.ResourceID
			kind wire.KindID
		}{{kinds.NodeResourceID(p.NodeID()), wire.KindCertificateByNode}, {kinds.UserResourceID(p.User()), wire.KindCertificateByUser}} {
			for {
				s, err := fetchSnapshot(testCtx(t, 20*time.Second), obs, ol, at.rid, at.kind)
				if err == nil && values(s) == 1 {
					break
				}
				if time.Now().After(deadline) {
					t.Fatalf("peer %s: kind %d not stored: %v\n%s", p.NodeID(), at.kind, err, s)
				}
				time.Sleep(100 * time.Millisecond) // the peers store after joining; no event to wait on
			}
		}
	}

	// Carol stores her certificate, then pings each peer directly without it.
	rid := kinds.NodeResourceID(carol.NodeID)
	sd, err := storage.NewValue(rid, wire.KindCertificateByNode, wire.ArrayValue(0, carol.id.Cert().Raw), time.Now(), time.Hour, carol.creds())
	if err != nil {
		t.Fatal(err)
	}
	expectOK(t, "carol stores her certificate", call(t, carol, cl, carol.storeMsg(rid, wire.KindCertificateByNode, sd)), wire.CodeStoreAns)
	for i, p := range ps {
		l := cl
		if i > 0 {
			l = carol.dial(t, p)
		}
		expectOK(t, "ping without certificate to "+p.NodeID().String(), bareCall(t, carol, l, p.NodeID()), wire.CodePingAns)
	}
	// Dave never stored his certificate: nobody can verify him.
	dave := newUser(t, "dave")
	dl := dave.dial(t, ps[1])
	m := dave.Request(wire.CodePingReq, &wire.PingReq{}, wire.NodeDestination(ps[1].NodeID()))
	if err := dave.Sign(m); err != nil {
		t.Fatal(err)
	}
	m.Security.Certificates = nil
	raw, err := wire.Encode(m)
	if err != nil {
		t.Fatal(err)
	}
	// Unverifiable: dropped unanswered (RFC 6940 §6.3.4 SHOULD).
	expectDropped(t, "ping without a certificate stored anywhere", dave.Client, dl, raw, m.Header.TransactionID)
}

// bareCall sends u's Ping to target over l, signed but without any certificate in the
// message's security block (the signature does not cover the certificates, §6.3.4).
func bareCall(t *testing.T, u *user, l *link.Link, target wire.NodeID) *wire.Message {
	t.Helper()
	m := u.Request(wire.CodePingReq, &wire.PingReq{}, wire.NodeDestination(target))
	if err := u.Sign(m); err != nil {
		t.Fatal(err)
	}
	m.Security.Certificates = nil
	raw, err := wire.Encode(m)
	if err != nil {
		t.Fatal(err)
	}
	// Retransmitted like a node does (RFC 6940 §6.2.1): each transmission makes the peer
	// fetch the certificate again, so that a Fetch lost while the ring settles on a busy
	// machine does not fail the test.
	ans, _, err := u.ExchangeRetransmit(testCtx(t, 40*time.Second), l, raw, m.Header.TransactionID, 3*time.Second, 5)
	if err != nil {
		t.Fatalf("ping without certificate: %v", err)
	}
	return ans
}
