package enroll

import (
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"net/netip"
	"os"
	"path/filepath"
	"time"

	"github.com/chordphone/chordphone/overlay/config"
	"github.com/chordphone/chordphone/overlay/identity"
)

// Files of an operator directory.
const (
	FileSettings  = "overlay.json"  // Settings
	FileCA        = "ca.pem"        // CA key and certificate (the overlay's root-cert)
	FileSigner    = "signer.pem"    // configuration signer
	FileTLS       = "tls.pem"       // HTTPS key and certificate issued by the CA
	FileBootstrap = "bootstrap.pem" // identity of the bootstrap peer
	FileUsers     = "users.json"    // accounts (bcrypt hashes)
)

// ReservedNames are account names nobody may take: the server's own identities.
var ReservedNames = []string{"bootstrap", "config-signer", "admin", "operator", "root"}

// Settings are the operator's choices for the overlay, kept in overlay.json.
type Settings struct {
	Overlay   string   `json:"overlay"`
	EnrollURL string   `json:"enroll_url,omitempty"`
	Bootstrap []string `json:"bootstrap,omitempty"` // IP:PORT of bootstrap peers
	Sequence  int      `json:"sequence"`            // configuration sequence, bumped on change
	Open      bool     `json:"open,omitempty"`      // open registration
	TLSHosts  []string `json:"tls_hosts,omitempty"` // extra names/IPs for the HTTPS certificate
	// IdentityKey is the key type of the overlay's certificates (identity-key in the
	// document): "rsa-2048" (default) or "ecdsa-p256"; "" in directories made before it.
	IdentityKey string `json:"identity_key,omitempty"`
	// Kinds overrides the default kind-blocks' limits (kind-limit command).
	Kinds []config.Kind `json:"kinds,omitempty"`
}

// DefaultIdentityKey is the key type of a new overlay's certificates: RSA-2048, because
// RSASSA-PKCS1-v1_5 with SHA-256 is the one signature algorithm every RELOAD
// implementation must support (RFC 6940 §6.3.4); ECDSA P-256 is faster to sign and
// smaller but optional, for overlays of Chordphones only (--identity-key ecdsa-p256).
const DefaultIdentityKey = identity.KeyNameRSA2048

// ReadSettings reads the Settings of an operator directory.
func ReadSettings(dir string) (*Settings, error) {
	data, err := os.ReadFile(filepath.Join(dir, FileSettings))
	if err != nil {
		return nil, err
	}
	var s Settings
	if err := json.Unmarshal(data, &s); err != nil {
		return nil, fmt.Errorf("%s: %w", FileSettings, err)
	}
	return &s, nil
}

// WriteSettings writes the Settings of an operator directory.
func WriteSettings(dir string, s *Settings) error {
	data, _ := json.MarshalIndent(s, "", "  ")
	return identity.WriteFileAtomic(filepath.Join(dir, FileSettings), append(data, '\n'), 0o600)
}

// initDir creates the operator directory state for overlay.
func InitDir(dir, overlay, keyName string) (*Settings, error) {
	if err := identity.ValidOverlayName(overlay); err != nil {
		return nil, err
	}
	if keyName == "" {
		keyName = DefaultIdentityKey
	}
	kt, err := identity.ParseKeyType(keyName)
	if err != nil {
		return nil, fmt.Errorf("identity key: %w", err)
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, err
	}
	ca, err := NewCA(overlay, kt)
	if err != nil {
		return nil, err
	}
	signer, err := ca.IssueIdentity("config-signer", overlay, 10*365*24*time.Hour)
	if err != nil {
		return nil, err
	}
	boot, err := ca.IssueIdentity("bootstrap", overlay, 10*365*24*time.Hour)
	if err != nil {
		return nil, err
	}
	for name, id := range map[string]*identity.Identity{
		FileCA:        {Key: ca.Key, Chain: []*x509.Certificate{ca.Cert}},
		FileSigner:    signer,
		FileBootstrap: boot,
	} {
		data, err := id.Encode()
		if err != nil {
			return nil, err
		}
		if err := identity.WriteFileAtomic(filepath.Join(dir, name), data, 0o600); err != nil {
			return nil, err
		}
	}
	s := &Settings{Overlay: overlay, Sequence: 1, IdentityKey: kt.String()}
	return s, WriteSettings(dir, s)
}

// LoadPEMIdentity reads one of the identities of an operator directory (FileCA, ...).
func LoadPEMIdentity(dir, name string) (*identity.Identity, error) {
	data, err := os.ReadFile(filepath.Join(dir, name))
	if err != nil {
		return nil, err
	}
	id, err := identity.Decode(data)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	return id, nil
}

// LoadServer builds the Server of an operator directory made by
// "overlay-server init".
func LoadServer(dir string, logger *slog.Logger) (*Server, *Settings, error) {
	s, err := ReadSettings(dir)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil, fmt.Errorf("%s is not an overlay-server directory (run: chordphone overlay-server init --dir %s --name NAME)", dir, dir)
	}
	if err != nil {
		return nil, nil, err
	}
	caID, err := LoadPEMIdentity(dir, FileCA)
	if err != nil {
		return nil, nil, err
	}
	signer, err := LoadPEMIdentity(dir, FileSigner)
	if err != nil {
		return nil, nil, err
	}
	users, err := OpenUsers(filepath.Join(dir, FileUsers))
	if err != nil {
		return nil, nil, err
	}
	base, err := baseConfig(s)
	if err != nil {
		return nil, nil, err
	}
	srv := &Server{
		Base: base, EnrollURL: s.EnrollURL, CA: &CA{Key: caID.Key, Cert: caID.Cert()},
		Signer: signer, Users: users, Open: s.Open, Reserved: ReservedNames, Logger: logger,
	}
	return srv, s, nil
}

// OperatorMaxMessageSize is the max-message-size of an operator's overlay (RFC 6940
// §11.1; the default is 5000): its signed document (root-cert, and the signer's
// certificate in the configuration's and each kind-block's signature) is about 9.5 kB with
// RSA-2048 keys, and a ConfigUpdate must carry it whole (§6.5.4).
const OperatorMaxMessageSize = 16384

// baseConfig is the overlay configuration the settings describe.
func baseConfig(s *Settings) (*config.Config, error) {
	base := config.New(s.Overlay)
	base.Sequence = s.Sequence
	base.IdentityKey = s.IdentityKey
	base.MaxMessageSize = OperatorMaxMessageSize
	if len(s.Kinds) > 0 {
		base.Kinds = s.Kinds
	}
	for _, b := range s.Bootstrap {
		ap, err := netip.ParseAddrPort(b)
		if err != nil {
			return nil, fmt.Errorf("%s: bootstrap %q: %w", FileSettings, b, err)
		}
		base.BootstrapNodes = append(base.BootstrapNodes, ap)
	}
	return base, nil
}

// reloadSettings puts a newer configuration from overlay.json in force on srv and returns
// its signed form, or nil when the sequence did not go up.
func ReloadSettings(dir string, srv *Server) (*config.Config, error) {
	set, err := ReadSettings(dir)
	if err != nil {
		return nil, err
	}
	base, err := baseConfig(set)
	if err != nil {
		return nil, err
	}
	if base.Sequence <= srv.base().Sequence {
		return nil, nil
	}
	srv.SetBase(base)
	doc, err := srv.Document()
	if err != nil {
		return nil, err
	}
	return config.ParseOverlay(doc, set.Overlay)
}
