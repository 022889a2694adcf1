package config

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"time"
)

// CacheDir is the directory, in a profile, holding the last verified configuration
// document fetched from each source.
const CacheDir = "overlay-config"

// ErrNotCached is returned by LoadCached when no copy is kept for the source.
var ErrNotCached = errors.New("no cached configuration")

func cachePath(profile, src string) string {
	sum := sha256.Sum256([]byte(strings.TrimSpace(src)))
	return filepath.Join(profile, CacheDir, hex.EncodeToString(sum[:8])+".xml")
}

// SaveCached keeps the document c was parsed from (c.Document) in profile as the last
// verified copy for src (the URL or overlay name it was fetched from), so that a phone
// started while the configuration server cannot be reached can still join its overlay
// (issue 16). Call it only with a configuration that Fetch verified.
func SaveCached(profile, src string, c *Config) error {
	if len(c.Document) == 0 {
		return errors.New("config: no document to cache")
	}
	p := cachePath(profile, src)
	if err := os.MkdirAll(filepath.Dir(p), 0o700); err != nil {
		return fmt.Errorf("config cache: %w", err)
	}
	tmp, err := os.CreateTemp(filepath.Dir(p), ".tmp-*")
	if err != nil {
		return fmt.Errorf("config cache: %w", err)
	}
	_, werr := tmp.Write(c.Document)
	cerr := tmp.Close()
	if err := errors.Join(werr, cerr); err != nil {
		_ = os.Remove(tmp.Name())
		return fmt.Errorf("config cache: %w", err)
	}
	if err := os.Rename(tmp.Name(), p); err != nil {
		_ = os.Remove(tmp.Name())
		return fmt.Errorf("config cache: %w", err)
	}
	return nil
}

// LoadCached returns the configuration of overlay ("" for the document's only one) from
// the copy SaveCached kept for src, and when it was saved. The copy is parsed and
// verified again (signature, expiry: RFC 6940 §11.1), so a tampered or expired copy is
// refused; ErrNotCached when there is none.
func LoadCached(profile, src, overlay string) (*Config, time.Time, error) {
	p := cachePath(profile, src)
	data, err := readFileLimited(p)
	if errors.Is(err, os.ErrNotExist) {
		return nil, time.Time{}, ErrNotCached
	}
	if err != nil {
		return nil, time.Time{}, fmt.Errorf("config cache: %w", err)
	}
	st, err := os.Stat(p)
	if err != nil {
		return nil, time.Time{}, fmt.Errorf("config cache: %w", err)
	}
	if overlay == "" {
		overlay = cachedName(src, data)
	}
	c, err := ParseOverlay(data, overlay)
	if err != nil {
		return nil, time.Time{}, fmt.Errorf("cached configuration %s: %w", p, err)
	}
	if err := c.Verify(VerifyOptions{}); err != nil {
		return nil, time.Time{}, fmt.Errorf("cached configuration %s: %w", p, err)
	}
	return c, st.ModTime(), nil
}

// cachedName is the configuration Fetch chose from src when no overlay was given: an
// overlay name's own, or a well-known URL's host's (RFC 6940 §11.2).
func cachedName(src string, data []byte) string {
	if !strings.HasPrefix(src, "https://") {
		if isFile(src) {
			return ""
		}
		return src
	}
	u, err := url.Parse(src)
	if err != nil || u.Path != WellKnownPath {
		return ""
	}
	cs, err := Parse(data)
	if err != nil || len(cs) < 2 {
		return ""
	}
	for _, c := range cs {
		if strings.EqualFold(c.InstanceName, u.Hostname()) {
			return c.InstanceName
		}
	}
	return ""
}
