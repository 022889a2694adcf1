// Package link is Chordphone's overlay link layer (RFC 6940 §6.5, §6.6, §11.4): authenticated,
// encrypted links between RELOAD peers that carry RELOAD messages and fragments.
//
//   - DTLS-UDP-SR (pion/dtls): every message is a data frame (§6.6.2) acknowledged by an ack
//     frame; the sender retransmits after an RTO that starts at 500 ms and doubles, at most 5
//     transmissions (§6.6.3), then declares the link dead. Messages larger than the path MTU
//     are split into RELOAD fragments (§6.7); received fragments are delivered as they are
//     (only the final destination, the node, reassembles them).
//   - TLS-TCP-FH-NO-ICE (crypto/tls): the same framing over TCP; acks measure the RTT, whose
//     RTO takes a link with an unacknowledged frame out of routing (Link.OnStall) until it
//     is acknowledged; after Settings.TLSRetain (30 s) the link is dead (§6.6.5).
//   - Attach/AppAttach (§6.5.1, §6.5.2): full ICE with pion/ice (host, server-reflexive and
//     peer-reflexive candidates), then DTLS over the selected pair; the Attach sender is the
//     ICE controlling agent and the DTLS server (§6.5.1.9, §6.5.1.13).
//   - Bootstrap (§11.4): DTLS (or TLS with a "tls://" address) straight to a configured
//     address. A Transport with a ListenAddr accepts bootstrap links on that UDP and TCP port
//     and answers STUN Binding requests on the UDP port (demultiplexed by first byte, RFC 7983),
//     so peers learn their server-reflexive addresses from each other (§6.5.1.4).
//
// Both ends of every link present certificates; Settings.VerifyPeer maps a certificate to the
// Node-IDs it proves, and a link whose peer does not prove the expected Node-ID is refused.
//
// Between two Chordphone peers (ALPN "reload-sr-inorder"), a DTLS link also delivers
// in order and exactly once: retransmissions keep their sequence number, so the receiver can
// drop duplicates and hold back early frames. With any other peer the RFC's rule applies
// (every transmission takes a new sequence number; duplicates are possible and left to the
// end-to-end layer). Chordphone peers also send an ack frame as a keepalive on idle links, so a
// dead link is noticed within Settings.DeadAfter plus one Keepalive (2 s + 7 s by default).
package link
