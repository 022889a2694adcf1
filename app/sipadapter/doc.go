// Package sipadapter makes a Chordphone peer the adapter peer of RFC 7890 §3 and §5.5: a SIP
// registrar and proxy (RFC 3261) in front of the overlay, so that ordinary SIP user agents
// (desk phones, Linphone, baresip, a door intercom) that speak no RELOAD register by user
// name, call Chordphone users by name and are called by them.
//
// Design:
//
//   - Accounts. The adapter keeps its own accounts in the profile (adapter-users.json, mode
//     0600): `chordphone adapter user add NAME` (password on stdin), `list`, `remove`. Only
//     the digest hashes H(NAME:chordphone:password) are stored, one per algorithm of RFC 8760
//     (SHA-256, and MD5 for older phones). Requests are challenged with both, SHA-256 first
//     (RFC 8760 §2.4); nonces are stateless (a time stamp and its HMAC) and live 5 minutes.
//     Unknown users and wrong passwords get the same 403; malformed credentials 400; a source
//     that sends more than its share in a second 503 with Retry-After.
//
//   - Registrar. A UA registers its own name only (the digest user must be the To user);
//     bindings live in memory, at most 1 hour, 5 per user, 500 in all (RFC 3261 §10.3).
//
//   - Lines. When a user's first binding appears the adapter starts that user's line: a
//     headless Chordphone (app/phone) with its own profile (PROFILE/adapter/NAME), running
//     as a RELOAD client (RFC 6940 §4.2) of the same overlay, with the identity of NAME. The
//     line stores NAME's SIP-REGISTRATION with its own Node-ID, so RFC 7904 access control
//     (USER-NODE-MATCH: the user name and Node-ID of the signing certificate) holds exactly
//     as for any phone, and callees see NAME's certificate on the AppAttach connection. In a
//     self-signed overlay the line makes NAME's identity itself; in an enrolled overlay the
//     line's profile must hold NAME's certificate from the enrollment server: `chordphone
//     adapter user add NAME --invite LINK` (or --config, --overlay) enrolls it, with the
//     same password, when it adds the account (the line logs when it is missing). When the
//     last binding goes (un-REGISTER or expiry) the line stops, which removes the
//     registration from the overlay.
//
//   - Calls. A line's phone gets its audio from the adapter (phone.Config.Audio): the UA's
//     plain RTP (G.711 PCMU or PCMA) is decoded to the phone's 48 kHz frames and the phone's
//     frames encoded back, so the overlay side is an ordinary Chordphone call (AppAttach, ICE,
//     DTLS-SRTP, Opus) and the adapter transcodes G.711 <-> Opus. A UA's INVITE to NAME or
//     sip:NAME@OVERLAY becomes the line's call to NAME; a call to the line rings the user's
//     registered UAs.
package sipadapter
