// Package turn lets publicly reachable Chordphone peers serve TURN relays to the rest of the
// overlay (RFC 6940 §9, TURN Server Usage), and lets peers behind NATs find and use them.
//
//   - Server runs a TURN server (RFC 5766, pion/turn) on its own UDP port. It caps the number
//     of allocations per user and the bandwidth of every allocation (ServerConfig), and frees
//     an allocation's relay port the moment the client deletes it (a Refresh with lifetime 0,
//     which pion/ice and pion/webrtc send when an ICE agent closes) or it expires.
//   - Publicly tells whether this host may serve: RFC 6940 §9 says a peer whose reflexive
//     address differs from its own, or whose address is private (RFC 1918), SHOULD NOT.
//   - Advertiser stores the TURN-SERVICE records (Kind 2): for d in 1..turn-density, a
//     TurnServer{iteration d, server_address} at H(Node-ID || d), signed by this peer, refreshed
//     before they expire, and withdrawn (a nonexistent value, RFC 6940 §7.4.1.3) on Stop.
//   - Discover finds servers as §9 says: a Find for TURN-SERVICE at a random Resource-ID, then
//     a Fetch at the closest Resource-ID the answering peer holds; and, since the records sit at
//     H(Node-ID || d), a Fetch at those resources of the peers this node already knows.
//
// # Credentials
//
// A TURN server must authenticate allocations (RFC 5766 §6.2: the long-term credential
// mechanism, RFC 5389 §10.2). Chordphone uses the ephemeral "TURN REST API" credentials
// (draft-uberti-behave-turn-rest-00 §2.2), which need no exchange with the server:
//
//	username = "<expiry unix seconds>:<Node-ID hex>"
//	password = base64(HMAC-SHA1(secret, username))
//
// The server recomputes the password from the username, refuses expired ones, and counts
// allocations against the Node-ID in the username (the quota RFC 5766 §6.2 step 7 asks to key
// on the username). The secret is derived from the overlay configuration (OverlaySecret): from
// its shared-secret element (RFC 6940 §11.1) when the operator sets one, otherwise from the
// overlay name and its root certificates.
//
// Why this scheme: it needs no exchange with the serving peer. A phone gathers relayed
// candidates for every Attach, AppAttach and call; with REST credentials it can do so for any
// server it finds, at once, without first opening a connection to that server and without
// keeping per-server state. The TURN-SERVICE record's format is fixed by §9 (an iteration and
// an address), so it cannot carry a per-server key, and the overlay's configuration is what
// every member already has. What the credentials prove is "has the overlay's configuration"
// (with shared-secret: "was given the secret"); in a self-signed overlay, where anyone may
// join, that is all membership means. The server also refuses the Node-IDs the configuration
// lists as bad-node (ServerConfig.Refuse). The per-user caps bound what any one Node-ID can
// take, and the per-allocation bandwidth cap bounds each relay.
//
// Limits: in an enrolled overlay without shared-secret, anyone holding the (public)
// configuration document can mint credentials, and a member can claim another Node-ID in the
// username. The stronger scheme is a per-server secret handed out over a connection that the
// overlay's certificates authenticate (an AppAttach to the serving peer; a public server is
// reachable by ICE without a relay); only NewCredentials' caller and Server.auth would change.
package turn
