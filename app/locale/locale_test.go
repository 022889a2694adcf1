package locale

import "testing"

func TestFix(t *testing.T) {
	for _, c := range []struct {
		lcAll, lang, language string
		fixed                 bool
	}{
		{"", "C.UTF-8", "", true},
		{"C.UTF-8", "de_DE.UTF-8", "", true},
		{"", "POSIX.UTF-8", "", true},
		{"", "C", "", false},
		{"", "", "", false},
		{"", "en_GB.UTF-8", "", false},
		{"", "C.UTF-8", "fr", false},
	} {
		t.Setenv("LC_ALL", c.lcAll)
		t.Setenv("LC_MESSAGES", "")
		t.Setenv("LANG", c.lang)
		t.Setenv("LANGUAGE", c.language)
		if got := Fix(); got != c.fixed {
			t.Errorf("%+v: Fix() = %v", c, got)
		}
	}
}
