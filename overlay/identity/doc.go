// Package identity keeps a profile's RELOAD identity: its key pair and the
// certificate that binds the key to one or more Node-IDs and to a user name
// (RFC 6940 §11.3), in a profile directory.
//
// A certificate is either self-signed (RFC 6940 §11.3.1: the Node-ID is the
// digest of the public key) or issued by an overlay's enrollment server (the
// Node-ID is the one the server chose and signed). In both cases the
// subjectAltName carries
//
//   - one uniformResourceIdentifier per Node-ID, a RELOAD URI (RFC 6940 §14.15)
//     whose destination list is a single node_id: reload://0110<hex>@OVERLAY/
//   - one rfc822Name with the user name, user@OVERLAY (the SIP AoR without
//     "sip:").
//
// The profile directory holds one file, identity.pem (mode 0600), with the
// private key (PKCS#8) followed by the certificate chain, leaf first. It is
// replaced atomically (temporary file, fsync, rename), so a failed enrollment
// or a crash never leaves a key without its certificate.
//
// The package also keeps the certificate pins of contacts (PinStore): in
// self-signed mode anybody can claim a name, so the phone remembers the key
// first seen for each user and reports when it changes.
package identity
