package sim

import (
	"crypto"
	"crypto/rand"
	"crypto/x509"
	"fmt"
	"sync"
	"time"

	"github.com/chordphone/chordphone/overlay/identity"
	"github.com/chordphone/chordphone/overlay/node"
	"github.com/chordphone/chordphone/overlay/wire"
)

// Security settings of Params.Security: every message is signed and verified as on a
// network (RFC 6940 §6.3.4) with a per-peer certificate naming its Node-ID, or not at all.
const (
	SecurityECDSA = identity.KeyNameECDSAP256 // default
	SecurityRSA   = identity.KeyNameRSA2048
	SecurityNone  = "none"
)

// rsaKey is the RSA-2048 key all simulated peers share under SecurityRSA: making a key
// per peer would take minutes for 1,000 peers, and the cost measured, signing and
// verifying, is the same with one key.
var rsaKey = sync.OnceValues(func() (crypto.Signer, error) { return identity.GenerateKey(identity.KeyRSA2048) })

// Security returns the node Security of a new peer with Node-ID id, as the cluster's
// peers have: a node added to the cluster by hand must sign the same way to be heard.
func (c *Cluster) Security(id wire.NodeID) (node.Security, error) {
	var key crypto.Signer
	var err error
	switch c.p.Security {
	case SecurityNone:
		return node.NoSecurity{}, nil
	case SecurityECDSA:
		key, err = identity.GenerateKey(identity.KeyECDSAP256)
	case SecurityRSA:
		key, err = rsaKey()
	default:
		return nil, fmt.Errorf("sim: security %q (want %s, %s or %s)", c.p.Security, SecurityECDSA, SecurityRSA, SecurityNone)
	}
	if err != nil {
		return nil, err
	}
	tmpl, err := identity.CertTemplate([]wire.NodeID{id}, "peer@"+simOverlay, simOverlay, 24*time.Hour)
	if err != nil {
		return nil, err
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, key.Public(), key)
	if err != nil {
		return nil, err
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, err
	}
	// Trust is left nil: any certificate is accepted with the Node-IDs it names.
	return &node.CertSecurity{NodeID: id, Key: key, Chain: []*x509.Certificate{cert}}, nil
}

// simOverlay is the overlay name of the simulation.
const simOverlay = "sim.chordphone"
