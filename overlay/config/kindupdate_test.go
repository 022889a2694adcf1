package config

import (
	"strings"
	"testing"
	"time"
)

// TestKindBlocksOfAConfigUpdate: the kind-blocks a node sends in a ConfigUpdate of type kind
// (RFC 6940 §6.5.4.1, after Error_Unknown_Kind, §7.4.1.2) parse back with their signatures
// and verify against a configuration whose kind-signer signed them; an altered block, or one
// from a signer that is not a kind-signer of the receiver's configuration, does not.
func TestKindBlocksOfAConfigUpdate(t *testing.T) {
	ca := newTestCA(t, "Overlay CA")
	signer := ca.issue(t, "config-signer", "overlay.test")
	in := operatorConfig(t, ca, signer)
	doc, err := Encode(signer, in)
	if err != nil {
		t.Fatal(err)
	}
	c, err := ParseOverlay(doc, "overlay.test")
	if err != nil {
		t.Fatal(err)
	}
	var blocks [][]byte
	for _, k := range c.Kinds {
		blocks = append(blocks, EncodeKindBlock(k))
	}
	ks, err := ParseKindBlocks(blocks)
	if err != nil {
		t.Fatalf("%v\n%s", err, blocks[0])
	}
	if len(ks) != len(c.Kinds) || ks[1].MaxNodeMultiple != c.Kinds[1].MaxNodeMultiple {
		t.Fatalf("kinds %+v", ks)
	}
	if err := c.VerifyKinds(ks, time.Now()); err != nil {
		t.Fatalf("verify: %v", err)
	}
	altered := []byte(strings.Replace(string(blocks[0]), "<max-count>", "<max-count>9", 1))
	ks, err = ParseKindBlocks([][]byte{altered})
	if err != nil {
		t.Fatal(err)
	}
	if err := c.VerifyKinds(ks, time.Now()); err == nil {
		t.Error("an altered kind-block verified")
	}
	other := *c
	other.KindSigners = []string{"00112233445566778899aabbccddeeff"}
	ks, _ = ParseKindBlocks(blocks)
	if err := other.VerifyKinds(ks, time.Now()); err == nil {
		t.Error("a kind-block from a signer that is not a kind-signer verified")
	}
}
