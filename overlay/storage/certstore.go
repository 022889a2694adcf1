package storage

import (
	"context"
	"crypto/x509"
	"errors"
	"fmt"
	"time"

	"github.com/chordphone/chordphone/overlay/kinds"
	"github.com/chordphone/chordphone/overlay/wire"
)

// DefaultCertificateLifetime is the lifetime of the certificates PublishCertificates stores;
// they are stored again at half of it.
const DefaultCertificateLifetime = time.Hour

// PublishCertificates stores this peer's certificate in the Certificate Store usage (RFC 6940
// §8: "each node stores its certificate"): CERTIFICATE_BY_NODE at the resource of each of
// its Node-IDs and CERTIFICATE_BY_USER at its user name's, both as array entry 0, so that a
// node that gets a message signed by this peer without the certificate can fetch it (§6.3.4,
// §11.3.1). It stores once and returns that result, then keeps the values stored, refreshed
// at half their lifetime, until the node closes.
func (s *Service) PublishCertificates(ctx context.Context) error {
	cred := s.s.Credentials
	if cred == nil {
		return ErrNoCredentials
	}
	err := s.storeCertificates(ctx, cred)
	s.n.Go(func(nctx context.Context) {
		for {
			wait := DefaultCertificateLifetime / 2
			if err != nil {
				wait = retryDelay(DefaultCertificateLifetime)
			}
			t := time.NewTimer(wait)
			select {
			case <-nctx.Done():
				t.Stop()
				return
			case <-t.C:
			}
			sctx, cancel := context.WithTimeout(nctx, s.s.PushTimeout*4)
			err = s.storeCertificates(sctx, cred)
			cancel()
			if err != nil && nctx.Err() == nil {
				s.log.Warn("storing this peer's certificate failed", "err", err)
			}
		}
	})
	return err
}

func (s *Service) storeCertificates(ctx context.Context, cred *Credentials) error {
	cert := cred.Cert()
	life := DefaultCertificateLifetime
	if left := time.Until(cert.NotAfter); left < life {
		life = max(left, time.Second)
	}
	now := time.Now()
	type target struct {
		rid  wire.ResourceID
		kind wire.KindID
	}
	var targets []target
	signer := kinds.SignerFromCert(cert)
	for _, id := range signer.NodeIDs {
		targets = append(targets, target{kinds.NodeResourceID(id), wire.KindCertificateByNode})
	}
	if signer.User != "" {
		targets = append(targets, target{kinds.UserResourceID(signer.User), wire.KindCertificateByUser})
	}
	var errs []error
	for _, t := range targets {
		sd, err := NewValue(t.rid, t.kind, wire.ArrayValue(0, cert.Raw), now, life, cred)
		if err != nil {
			return err
		}
		if _, err := s.Store(ctx, t.rid, t.kind, sd); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// FetchNodeCertificates fetches the certificates stored for Node-ID id (CERTIFICATE_BY_NODE,
// RFC 6940 §8); each value has been verified (signature, access control: NODE-MATCH means
// the node itself stored it) and parses as a certificate.
func (s *Service) FetchNodeCertificates(ctx context.Context, id wire.NodeID) ([]*x509.Certificate, error) {
	res, err := s.Fetch(ctx, kinds.NodeResourceID(id), wire.StoredDataSpecifier{Kind: wire.KindCertificateByNode,
		Model: wire.DataModelArray, Indices: []wire.ArrayRange{{First: 0, Last: 0xffffffff}}})
	if err != nil {
		return nil, err
	}
	var out []*x509.Certificate
	for _, kr := range res.Kinds {
		for i := range kr.Values {
			v := kr.Values[i].Value.Data()
			if !v.Exists {
				continue
			}
			if c, err := x509.ParseCertificate(v.Value); err == nil {
				out = append(out, c)
			}
		}
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("storage: no certificate stored for Node-ID %s", id)
	}
	return out, nil
}
