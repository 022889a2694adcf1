package peer_test

// Issue 9 point 8, at the peer level: an operator's server with its own CA
// runs on loopback; phones enroll, join and store; a peer whose certificate
// comes from another CA cannot join.

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chordphone/chordphone/app/peer"
	"github.com/chordphone/chordphone/overlay/config"
	"github.com/chordphone/chordphone/overlay/enroll"
	"github.com/chordphone/chordphone/overlay/node"
	"github.com/chordphone/chordphone/overlay/wire"
)

type operator struct {
	srv    *enroll.Server
	client *http.Client
}

// startOperator runs an overlay-server (as "chordphone overlay-server init" makes it) for
// overlay on loopback.
func startOperator(t *testing.T, overlay string) *operator {
	t.Helper()
	dir := t.TempDir()
	if _, err := enroll.InitDir(dir, overlay, ""); err != nil {
		t.Fatalf("overlay-server init: %v", err)
	}
	srv, _, err := enroll.LoadServer(dir, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		t.Fatal(err)
	}
	srv.Users.Cost = 4 // bcrypt.MinCost
	tlsID, err := srv.CA.IssueTLS([]string{overlay}, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ctx, ln, tlsID.TLSCertificate()) }()
	t.Cleanup(func() { cancel(); <-done })
	pool := x509.NewCertPool()
	pool.AddCert(srv.CA.Cert)
	addr := ln.Addr().String()
	client := &http.Client{Transport: &http.Transport{
		TLSClientConfig: &tls.Config{RootCAs: pool},
		DialContext: func(ctx context.Context, network, _ string) (net.Conn, error) {
			return (&net.Dialer{}).DialContext(ctx, network, addr) // DNS of the overlay name
		},
	}}
	return &operator{srv: srv, client: client}
}

func (o *operator) config(t *testing.T, overlay string) *config.Config {
	t.Helper()
	cfg, err := (&config.Fetcher{Client: o.client, NoSRV: true}).Fetch(context.Background(), overlay, "")
	if err != nil {
		t.Fatal(err)
	}
	return cfg
}

// enrolledPeer enrolls user with o in a new profile and starts a peer on
// loopback in the overlay that run describes.
func enrolledPeer(t *testing.T, o *operator, cfg, run *config.Config, user string, boot []string) *peer.Peer {
	t.Helper()
	return profilePeer(t, enrolledProfile(t, o, cfg, user), run, boot)
}

// enrolledProfile enrolls user with o in a new profile.
func enrolledProfile(t *testing.T, o *operator, cfg *config.Config, user string) string {
	t.Helper()
	if err := o.srv.Users.Add(user, user+"-password"); err != nil {
		t.Fatal(err)
	}
	profile := filepath.Join(t.TempDir(), user)
	if _, err := enroll.Ensure(context.Background(), profile, cfg, user,
		enroll.Request{Password: user + "-password", HTTPClient: o.client}); err != nil {
		t.Fatal(err)
	}
	return profile
}

// profilePeer starts a peer of profile on loopback in the overlay that run describes
// (fetched by its name: the source of the profile's configuration cache).
func profilePeer(t *testing.T, profile string, run *config.Config, boot []string) *peer.Peer {
	t.Helper()
	p, err := peer.New(peer.Config{Profile: profile, Document: run, ConfigSource: run.InstanceName,
		Listen: "127.0.0.1:0", Bootstrap: boot, Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
		defer cancel()
		_ = p.Close(ctx)
	})
	return p
}

func TestEnrolledPeersJoinAndStore(t *testing.T) {
	const overlay = "overlay.test"
	op := startOperator(t, overlay)
	cfg := op.config(t, overlay)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()

	alice := enrolledPeer(t, op, cfg, cfg, "alice", nil)
	if err := alice.Join(ctx); err != nil {
		t.Fatal(err)
	}
	bob := enrolledPeer(t, op, cfg, cfg, "bob", []string{alice.Addr().String()})
	if err := bob.Join(ctx); err != nil {
		t.Fatalf("enrolled peer cannot join: %v", err)
	}
	if bob.User() != "bob@overlay.test" || bob.Identity().SelfSigned() {
		t.Errorf("bob's identity %q", bob.User())
	}
	if err := bob.Register(ctx); err != nil {
		t.Fatalf("store: %v", err)
	}
	// The two-peer ring converges asynchronously after bob's join (alice learns of bob from
	// his Update): look up until it has, within a generous deadline.
	deadline := time.Now().Add(15 * time.Second)
	for {
		regs, err := alice.Lookup(ctx, "bob")
		if err == nil && len(regs) > 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("alice cannot find bob's registration: %v", err)
		}
		time.Sleep(100 * time.Millisecond) // no event says "converged"
	}

	// A peer enrolled by another operator's CA for the same overlay name,
	// joining with the real overlay's configuration.
	rogueOp := startOperator(t, overlay)
	mallory := enrolledPeer(t, rogueOp, rogueOp.config(t, overlay), cfg, "mallory", []string{alice.Addr().String()})
	if _, err := config.VerifyPeerCert(cfg, mallory.Identity().Cert()); err == nil {
		t.Fatal("overlay accepts the other CA's certificate")
	}
	jctx, jcancel := context.WithTimeout(ctx, 20*time.Second)
	defer jcancel()
	err := mallory.Join(jctx)
	if err == nil {
		t.Fatal("a peer with another CA's certificate joined")
	}
	if !strings.Contains(strings.ToLower(err.Error()), "certificate") {
		t.Errorf("intruder refused for another reason: %v", err)
	}
	st := alice.Status()
	for _, n := range append(append(st.Predecessors, st.Successors...), st.Fingers...) {
		if n == mallory.NodeID().String() {
			t.Errorf("alice keeps the intruder %s as a neighbour", n)
		}
	}
}

// operatorPeer starts the overlay-server's bootstrap peer, the first of the overlay.
func operatorPeer(ctx context.Context, t *testing.T, op *operator, cfg *config.Config) *peer.Peer {
	t.Helper()
	bootID, err := op.srv.CA.IssueIdentity("bootstrap", cfg.InstanceName, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	boot, err := peer.New(peer.Config{Identity: bootID, Document: cfg, Overlay: cfg.InstanceName, Listen: "127.0.0.1:0", First: true,
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		cctx, ccancel := context.WithTimeout(context.Background(), 3*time.Second)
		defer ccancel()
		_ = boot.Close(cctx)
	})
	if err := boot.Join(ctx); err != nil {
		t.Fatal(err)
	}
	return boot
}

// TestConfigUpdateAppliedWithoutRestart: the operator changes the overlay's document (a new
// kind limit, RFC 6940 §11.1) while phones run; the overlay-server's bootstrap peer applies
// it and sends it in ConfigUpdates (§6.5.4); every peer verifies it (signed by the
// configuration-signer of the document in force), applies it with its new sequence and
// enforces the new limit, without a restart.
func TestConfigUpdateAppliedWithoutRestart(t *testing.T) {
	const overlay = "update.test"
	op := startOperator(t, overlay)
	cfg := op.config(t, overlay)
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	boot := operatorPeer(ctx, t, op, cfg)
	var phones []*peer.Peer
	aliceProfile := enrolledProfile(t, op, cfg, "alice")
	for _, u := range []string{"alice", "bob", "carol"} {
		var p *peer.Peer
		if u == "alice" {
			p = profilePeer(t, aliceProfile, cfg, []string{boot.Addr().String()})
		} else {
			p = enrolledPeer(t, op, cfg, cfg, u, []string{boot.Addr().String()})
		}
		if err := p.Join(ctx); err != nil {
			t.Fatalf("%s: %v", u, err)
		}
		phones = append(phones, p)
	}
	if err := phones[0].Register(ctx); err != nil {
		t.Fatalf("register before the update: %v", err)
	}

	// The operator lowers SIP-REGISTRATION's max-size below a registration's size.
	base := *op.srv.Config()
	base.Sequence = cfg.Sequence + 1
	base.Kinds = enroll.DefaultKinds()
	base.Kinds[0].MaxSize = 8
	op.srv.SetBase(&base)
	next := op.config(t, overlay)
	if next.Sequence != cfg.Sequence+1 {
		t.Fatalf("published sequence %d", next.Sequence)
	}
	if err := boot.UpdateConfig(next); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(30 * time.Second)
	for _, p := range append(phones, boot) {
		for p.Configuration().Sequence != next.Sequence {
			if time.Now().After(deadline) {
				t.Fatalf("%s still has configuration %d, want %d", p.User(), p.Configuration().Sequence, next.Sequence)
			}
			time.Sleep(50 * time.Millisecond) // no event for it
		}
		if k, _ := p.Configuration().Kind("SIP-REGISTRATION"); k.MaxSize != 8 {
			t.Errorf("%s: SIP-REGISTRATION max-size %d", p.User(), k.MaxSize)
		}
	}
	// Enforced by whichever peer is responsible for bob's AoR.
	if err := phones[1].Register(ctx); !node.IsCode(err, wire.ErrDataTooLarge) {
		t.Fatalf("register after the update: %v, want Error_Data_Too_Large", err)
	}
	// A document not signed by the configuration-signer is refused.
	forged := next.Document
	forged = []byte(strings.Replace(string(forged), `sequence="`+fmt.Sprint(next.Sequence)+`"`, `sequence="`+fmt.Sprint(next.Sequence+1)+`"`, 1))
	fc, err := config.ParseOverlay(forged, overlay)
	if err != nil {
		t.Fatal(err)
	}
	if err := boot.UpdateConfig(fc); !errors.Is(err, peer.ErrConfigRefused) && !node.IsCode(err, wire.ErrForbidden) {
		t.Fatalf("altered document: %v, want refused", err)
	}
	if boot.Configuration().Sequence != next.Sequence {
		t.Fatal("an altered document was applied")
	}

	// The applied document was kept in alice's profile (the cache overlay/config LoadCached
	// reads when the server cannot be reached), and a start with the document fetched
	// before (as from a server that does not publish the new one yet) runs with it.
	kept, _, err := config.LoadCached(aliceProfile, overlay, overlay)
	if err != nil {
		t.Fatalf("no kept configuration: %v", err)
	}
	if kept.Sequence != next.Sequence {
		t.Fatalf("kept configuration %d, want %d", kept.Sequence, next.Sequence)
	}
	if err := phones[0].Close(ctx); err != nil {
		t.Fatal(err)
	}
	again := profilePeer(t, aliceProfile, cfg, []string{boot.Addr().String()})
	if got := again.Configuration().Sequence; got != next.Sequence {
		t.Fatalf("started again with configuration %d, want the kept %d", got, next.Sequence)
	}
	// A kept copy with a newer sequence that the overlay's configuration-signer did not
	// sign (another operator's document for the same name) is not used (§11.1).
	if err := again.Close(ctx); err != nil {
		t.Fatal(err)
	}
	rogue := startOperator(t, overlay)
	rbase := *rogue.srv.Config()
	rbase.Sequence = next.Sequence + 5
	rogue.srv.SetBase(&rbase)
	if err := config.SaveCached(aliceProfile, overlay, rogue.config(t, overlay)); err != nil {
		t.Fatal(err)
	}
	third := profilePeer(t, aliceProfile, next, []string{boot.Addr().String()})
	if got := third.Configuration().Sequence; got != next.Sequence {
		t.Fatalf("started with another signer's kept configuration %d, want %d", got, next.Sequence)
	}
}
