package wire_test

import (
	"fmt"

	"github.com/chordphone/chordphone/overlay/wire"
)

// A peer builds a Fetch for Bob's SIP-REGISTRATION, encodes it, and the
// responsible peer decodes it and parses the typed body.
func Example() {
	res := wire.ResourceIDFromName("sip:bob@example.org")
	m, err := wire.NewMessage(wire.CodeFetchReq, &wire.FetchReq{
		Resource:   res,
		Specifiers: []wire.StoredDataSpecifier{{Kind: wire.KindSIPRegistration}}, // all dictionary keys
	})
	if err != nil {
		panic(err)
	}
	m.Header.OverlayHash = wire.OverlayHash("chordphone.example")
	m.Header.TransactionID = 42
	m.Header.DestinationList = []wire.Destination{wire.ResourceDestination(res)}
	raw, err := wire.Encode(m)
	if err != nil {
		panic(err)
	}

	// Forwarding peers look at the header only.
	h, _, err := wire.DecodeHeader(raw)
	if err != nil {
		panic(err)
	}
	fmt.Println("to", h.DestinationList[0])

	// The destination decodes everything.
	got, err := wire.Decode(raw, wire.DefaultMaxMessageSize)
	if err != nil {
		fmt.Println("answer with", wire.CodeOf(err))
		return
	}
	body, err := wire.ParseBody(got, nil)
	if err != nil {
		panic(err)
	}
	req := body.(*wire.FetchReq)
	fmt.Println(got.Code, req.Specifiers[0].Kind, req.Specifiers[0].Model)
	// Output:
	// to resource:16868d1c5589d6e4a5d20c9c7abd0b36
	// fetch_req 1 DICTIONARY
}
