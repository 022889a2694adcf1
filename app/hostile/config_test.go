package hostile

import (
	"errors"
	"testing"
	"time"

	"github.com/chordphone/chordphone/app/peer"
	"github.com/chordphone/chordphone/overlay/config"
	"github.com/chordphone/chordphone/overlay/wire"
)

// TestAoROutsideDomainsRefused: with RFC 7904 §3.4's <domain-restriction> in the overlay's
// document, a storing peer refuses a SIP-REGISTRATION at an AoR outside the allowed domains
// with Error_Forbidden (§3.3: "the Storing Peer MUST check that the AOR of the request is a
// valid Resource Name with respect to the namespaces defined in the overlay configuration
// document"), stores one inside them, and a phone does not even try (the §3.3 SHOULD).
func TestAoROutsideDomainsRefused(t *testing.T) {
	for _, tc := range []struct {
		name        string
		dr          config.DomainRestriction
		allowed     string
		refused     []string
		phoneUser   string
		phoneRefuse bool
	}{
		// enable false: only the overlay's own domain (hostile.test).
		{"OverlayDomainOnly", config.DomainRestriction{}, "alice", []string{"mallory@elsewhere.example", "mallory@sub.hostile.test"}, "carol@elsewhere.example", true},
		// enable true: the patterns (POSIX ERE over the domain).
		{"Patterns", config.DomainRestriction{Enable: true, Patterns: []string{`.*\.hostile\.test`, `dht\.example\.com`}},
			"alice@eu.hostile.test", []string{"mallory@hostile.test", "mallory@dht.example.com.evil"}, "carol", true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			doc := config.SelfSigned(overlayName)
			doc.DomainRestriction = &tc.dr
			storer := startPeersDoc(t, 1, doc)[0]
			good := newUserDoc(t, tc.allowed, doc)
			gl := good.dial(t, storer)
			sd := good.registration(t, good.aor(), good.NodeID, time.Now())
			expectOK(t, good.id.User()+" in an allowed domain", call(t, good, gl, good.storeMsg(good.aor(), wire.KindSIPRegistration, sd)), wire.CodeStoreAns)
			for _, name := range tc.refused {
				bad := newUserDoc(t, name, doc)
				bl := bad.dial(t, storer)
				sd := bad.registration(t, bad.aor(), bad.NodeID, time.Now())
				expectCode(t, name+" outside the allowed domains", call(t, bad, bl, bad.storeMsg(bad.aor(), wire.KindSIPRegistration, sd)), wire.ErrForbidden)
				if n := values(snapshot(t, bad, bl, bad.aor(), wire.KindSIPRegistration)); n != 0 {
					t.Errorf("%s: %d values stored", name, n)
				}
			}
			// A phone whose user is outside the domains does not register.
			ph, err := peer.New(peer.Config{Profile: t.TempDir(), User: tc.phoneUser, Overlay: overlayName, Document: doc,
				Listen: "127.0.0.1:0", Bootstrap: []string{storer.Addr().String()}, Logger: quiet()})
			if err != nil {
				t.Fatal(err)
			}
			defer ph.Close(testCtx(t, 3*time.Second))
			if err := ph.Join(testCtx(t, 30*time.Second)); err != nil {
				t.Fatal(err)
			}
			err = ph.Register(testCtx(t, 20*time.Second))
			if got := errors.Is(err, peer.ErrDomainNotAllowed); got != tc.phoneRefuse {
				t.Errorf("phone %s registering: %v", tc.phoneUser, err)
			}
		})
	}
}
