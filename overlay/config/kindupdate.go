package config

import (
	"bytes"
	"encoding/base64"
	"fmt"
	"time"
)

// Kind-blocks in a ConfigUpdate of type kind (RFC 6940 §6.5.4.1): "One or more XML
// kind-block productions ... encoded with UTF-8 and assume a default namespace of
// urn:ietf:params:xml:ns:p2p:config-base".

// kindBlocksOpen is the wrapper that gives each kind-block that default namespace (and
// the prefixes Encode uses).
var kindBlocksOpen = fmt.Sprintf("<required-kinds xmlns=%q xmlns:chord=%q xmlns:sip=%q xmlns:cp=%q>", NSBase, NSChord, NSSIP, NSChordphone)

// ParseKindBlocks parses the kind-blocks of a ConfigUpdate. Each Kind keeps the bytes of its
// <kind> element and its kind-signature for VerifyKinds.
func ParseKindBlocks(blocks [][]byte) ([]Kind, error) {
	var out []Kind
	for _, b := range blocks {
		data := append(append([]byte(kindBlocksOpen), b...), "</required-kinds>"...)
		root, err := parseTree(data)
		if err != nil {
			return nil, err
		}
		for _, kb := range root.kids {
			if kb.name.Space != NSBase || kb.name.Local != "kind-block" {
				return nil, &Error{Element: kb.name.Local, Msg: "not a kind-block"}
			}
			k, _, err := parseKindBlock(kb, data)
			if err != nil {
				return nil, err
			}
			out = append(out, k)
		}
	}
	return out, nil
}

// EncodeKindBlock writes k as a kind-block with its kind-signature, for a ConfigUpdate.
func EncodeKindBlock(k Kind) []byte {
	var b bytes.Buffer
	b.WriteString("<kind-block>")
	b.Write(k.Raw)
	if k.Signature != nil {
		fmt.Fprintf(&b, "<kind-signature>%s</kind-signature>", base64.StdEncoding.EncodeToString(k.Signature))
	}
	b.WriteString("</kind-block>")
	return b.Bytes()
}

// VerifyKinds checks that every kind-block is signed by a kind-signer of c (RFC 6940
// §6.5.4.2: "signed by an acceptable Kind signer (i.e., one listed in the current
// configuration file)").
func (c *Config) VerifyKinds(ks []Kind, now time.Time) error {
	for _, k := range ks {
		if k.Signature == nil {
			return &Error{Element: k.label(), Msg: "kind-block has no kind-signature", Err: ErrUnsigned}
		}
		signer, others, err := VerifyBlob(k.Raw, k.Signature)
		if err != nil {
			return &Error{Element: k.label() + " kind-signature", Msg: "does not verify", Err: err}
		}
		if err := c.checkSigner(signer, others, c.KindSigners, "kind-signer", now); err != nil {
			return err
		}
	}
	return nil
}
