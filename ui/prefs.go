package ui

import (
	"encoding/json"
	"log/slog"
	"strconv"
	"sync"

	"fyne.io/fyne/v2"

	"github.com/chordphone/chordphone/app/sipadapter"
	"github.com/chordphone/chordphone/app/store"
)

// Preference keys. They live in the profile's settings (app/store) so that the phone, in GUI
// and headless mode alike, reads the same values; values are plain text (strconv), lists JSON.
const (
	PrefUser           = "user"                    // user name (phone.SetUser writes it)
	PrefOverlay        = "overlay"                 // overlay name; "" and no config: the local network's
	PrefConfig         = "config"                  // configuration document URL (phone.JoinOverlay writes it)
	PrefListenPort     = "network.listen_port"     // int; 0: any
	PrefAudioIn        = "audio.input"             // device name; "" = system default
	PrefAudioOut       = "audio.output"            // device name; "" = system default
	PrefEchoCancel     = "audio.echo_cancellation" // bool
	PrefNoiseSuppress  = "audio.noise_suppression" // bool
	PrefStoreForOthers = "peer.store_for_others"   // bool
	PrefStorageLimitMB = "peer.storage_limit_mb"   // int
	PrefSIPAdapter     = sipadapter.SettingListen  // "host:port" of the SIP adapter; "" = off
	PrefLastTab        = "ui.last_tab"
)

// storePrefs is fyne.Preferences kept in the profile database. Fyne's own preferences file is
// rewritten in place (truncate, then write), so a kill -9 at the wrong moment loses it; here
// every Set is one fsynced bbolt transaction (issue 12 point 5). Reads come from a cache.
type storePrefs struct {
	st  *store.Store
	log *slog.Logger

	mu        sync.RWMutex
	vals      map[string]string
	listeners []func()
}

var _ fyne.Preferences = (*storePrefs)(nil)

func newStorePrefs(st *store.Store, log *slog.Logger) (*storePrefs, error) {
	vals, err := st.Settings()
	if err != nil {
		return nil, err
	}
	if log == nil {
		log = slog.Default()
	}
	return &storePrefs{st: st, log: log, vals: vals}, nil
}

func (p *storePrefs) get(key string) (string, bool) {
	p.mu.RLock()
	defer p.mu.RUnlock()
	v, ok := p.vals[key]
	return v, ok
}

func (p *storePrefs) set(key, v string) {
	p.mu.Lock()
	if old, ok := p.vals[key]; ok && old == v {
		p.mu.Unlock()
		return
	}
	p.vals[key] = v
	ls := append([]func(){}, p.listeners...)
	p.mu.Unlock()
	if err := p.st.SetSetting(key, v); err != nil {
		p.log.Error("saving a preference", "key", key, "err", err)
	}
	for _, l := range ls {
		l()
	}
}

func (p *storePrefs) RemoveValue(key string) {
	p.mu.Lock()
	delete(p.vals, key)
	ls := append([]func(){}, p.listeners...)
	p.mu.Unlock()
	if err := p.st.DeleteSetting(key); err != nil {
		p.log.Error("removing a preference", "key", key, "err", err)
	}
	for _, l := range ls {
		l()
	}
}

func (p *storePrefs) AddChangeListener(f func()) {
	p.mu.Lock()
	p.listeners = append(p.listeners, f)
	p.mu.Unlock()
}

func (p *storePrefs) ChangeListeners() []func() {
	p.mu.RLock()
	defer p.mu.RUnlock()
	return append([]func(){}, p.listeners...)
}

func (p *storePrefs) Bool(key string) bool { return p.BoolWithFallback(key, false) }
func (p *storePrefs) BoolWithFallback(key string, fb bool) bool {
	if v, ok := p.get(key); ok {
		if b, err := strconv.ParseBool(v); err == nil {
			return b
		}
	}
	return fb
}
func (p *storePrefs) SetBool(key string, v bool) { p.set(key, strconv.FormatBool(v)) }

func (p *storePrefs) Float(key string) float64 { return p.FloatWithFallback(key, 0) }
func (p *storePrefs) FloatWithFallback(key string, fb float64) float64 {
	if v, ok := p.get(key); ok {
		if f, err := strconv.ParseFloat(v, 64); err == nil {
			return f
		}
	}
	return fb
}
func (p *storePrefs) SetFloat(key string, v float64) {
	p.set(key, strconv.FormatFloat(v, 'g', -1, 64))
}

func (p *storePrefs) Int(key string) int { return p.IntWithFallback(key, 0) }
func (p *storePrefs) IntWithFallback(key string, fb int) int {
	if v, ok := p.get(key); ok {
		if i, err := strconv.Atoi(v); err == nil {
			return i
		}
	}
	return fb
}
func (p *storePrefs) SetInt(key string, v int) { p.set(key, strconv.Itoa(v)) }

func (p *storePrefs) String(key string) string { return p.StringWithFallback(key, "") }
func (p *storePrefs) StringWithFallback(key, fb string) string {
	if v, ok := p.get(key); ok {
		return v
	}
	return fb
}
func (p *storePrefs) SetString(key, v string) { p.set(key, v) }

func getList[T any](p *storePrefs, key string, fb []T) []T {
	if v, ok := p.get(key); ok {
		var out []T
		if err := json.Unmarshal([]byte(v), &out); err == nil {
			return out
		}
	}
	return fb
}

func setList[T any](p *storePrefs, key string, v []T) {
	b, err := json.Marshal(v)
	if err != nil {
		return
	}
	p.set(key, string(b))
}

func (p *storePrefs) BoolList(key string) []bool { return getList[bool](p, key, []bool{}) }
func (p *storePrefs) BoolListWithFallback(key string, fb []bool) []bool {
	return getList(p, key, fb)
}
func (p *storePrefs) SetBoolList(key string, v []bool) { setList(p, key, v) }
func (p *storePrefs) FloatList(key string) []float64   { return getList[float64](p, key, []float64{}) }
func (p *storePrefs) FloatListWithFallback(key string, fb []float64) []float64 {
	return getList(p, key, fb)
}
func (p *storePrefs) SetFloatList(key string, v []float64) { setList(p, key, v) }
func (p *storePrefs) IntList(key string) []int             { return getList[int](p, key, []int{}) }
func (p *storePrefs) IntListWithFallback(key string, fb []int) []int {
	return getList(p, key, fb)
}
func (p *storePrefs) SetIntList(key string, v []int) { setList(p, key, v) }
func (p *storePrefs) StringList(key string) []string {
	return getList[string](p, key, []string{})
}
func (p *storePrefs) StringListWithFallback(key string, fb []string) []string {
	return getList(p, key, fb)
}
func (p *storePrefs) SetStringList(key string, v []string) { setList(p, key, v) }
