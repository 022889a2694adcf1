package config

import (
	"os"
	"testing"
	"time"
)

// FuzzParse feeds arbitrary documents to the parser and to signature
// verification: errors are fine, panics are not.
func FuzzParse(f *testing.F) {
	if b, err := os.ReadFile("testdata/rfc6940-example.xml"); err == nil {
		f.Add(b)
	}
	if b, err := Encode(nil, SelfSigned("lan.example")); err == nil {
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		cs, err := Parse(data)
		if err != nil {
			if cs != nil {
				t.Fatal("configs with error")
			}
			return
		}
		for _, c := range cs {
			_ = c.Verify(VerifyOptions{Now: time.Unix(0, 0)})
			_ = c.Supported()
			doc, err := Encode(nil, c)
			if err != nil {
				t.Fatalf("re-encode: %v", err)
			}
			if _, err := Parse(doc); err != nil {
				t.Fatalf("re-encoded document does not parse: %v\n%s", err, doc)
			}
		}
	})
}
