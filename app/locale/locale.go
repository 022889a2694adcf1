// Package locale gives Fyne a language it can parse before Fyne reads the environment.
//
// Fyne's lang package reads the user's locale in its init (LC_ALL, LC_MESSAGES, LANG, then
// LANGUAGE) and logs "Fyne error: Error parsing user locale C" with a stack location on stderr
// when the locale is C.UTF-8 or POSIX.UTF-8, which systemd and minimal systems set. That is
// noise on every start, headless too. When the locale is such a C locale and LANGUAGE is
// empty, this package sets LANGUAGE=en: Fyne then takes English (what it falls back to
// anyway), and nothing else changes: gettext ignores LANGUAGE under the C locale.
//
// Go initialises packages in the order of their import paths, each once its imports are
// initialised (Go spec "Package initialization", Go 1.21 and later): this package imports only
// os and strings, and "github.com/chordphone/..." sorts before "github.com/jeandeaual/go-locale",
// which Fyne's lang package imports, so this init runs before Fyne's. Import it for its
// effect (main does).
package locale

import (
	"os"
	"strings"
)

func init() { Fix() }

// Fix sets LANGUAGE=en when the effective locale is a C locale with a codeset (C.UTF-8) and
// LANGUAGE is unset; it reports whether it did.
func Fix() bool {
	loc := ""
	for _, k := range []string{"LC_ALL", "LC_MESSAGES", "LANG"} {
		if loc = os.Getenv(k); loc != "" {
			break
		}
	}
	base, _, _ := strings.Cut(loc, ".")
	base, _, _ = strings.Cut(base, "@")
	if loc == base || (base != "C" && base != "POSIX") || os.Getenv("LANGUAGE") != "" {
		return false // "C", "POSIX", "" and real locales: Fyne takes them without a word
	}
	return os.Setenv("LANGUAGE", "en") == nil
}
