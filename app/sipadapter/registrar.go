package sipadapter

import (
	"fmt"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/emiago/sipgo/sip"
)

// Registration limits (RFC 3261 §10.3): how long a binding may last, and bounds that keep a
// flood of REGISTERs from growing the adapter.
const (
	defaultExpires  = 3600
	maxExpires      = 3600
	minExpires      = 60
	maxBindings     = 5   // contacts per user
	maxBindingTotal = 500 // contacts of all users
)

// binding is one registered contact of a user agent (RFC 3261 §10.3 step 7).
type binding struct {
	contact   sip.Uri
	raw       string // the Contact URI as the UA sent it
	expires   time.Time
	callID    string
	cseq      uint32
	transport string
	source    string // where the REGISTER came from (host:port)
}

// registrar keeps the bindings of each user; changes says which users gained their first
// or lost their last binding.
type registrar struct {
	mu    sync.Mutex
	users map[string][]binding
	total int
	now   func() time.Time
	// changed is called (without the lock) with a user and whether it has bindings now,
	// when that changes.
	changed func(user string, registered bool)
}

func newRegistrar(changed func(string, bool)) *registrar {
	return &registrar{users: map[string][]binding{}, now: time.Now, changed: changed}
}

// regError is a REGISTER refused with a status code.
type regError struct {
	code   int
	reason string
}

func (e *regError) Error() string { return fmt.Sprintf("%d %s", e.code, e.reason) }

// register applies a REGISTER of user (authenticated) and returns the bindings in force.
func (r *registrar) register(user string, req *sip.Request) ([]binding, error) {
	expHdr := -1
	if h := req.GetHeader("Expires"); h != nil {
		v, err := strconv.Atoi(strings.TrimSpace(h.Value()))
		if err != nil || v < 0 {
			return nil, &regError{400, "Bad Expires"}
		}
		expHdr = v
	}
	callID := req.CallID().Value()
	cseq := req.CSeq().SeqNo
	contacts := req.GetHeaders("Contact")
	r.mu.Lock()
	before := len(r.users[user]) > 0
	list, err := r.apply(user, contacts, expHdr, callID, cseq, req)
	after := len(list) > 0
	r.mu.Unlock()
	if err == nil && before != after && r.changed != nil {
		r.changed(user, after)
	}
	return list, err
}

// apply is register under r.mu (RFC 3261 §10.3 steps 6-8).
func (r *registrar) apply(user string, contacts []sip.Header, expHdr int, callID string, cseq uint32, req *sip.Request) ([]binding, error) {
	cur := r.live(user)
	if len(contacts) == 1 && strings.TrimSpace(contacts[0].Value()) == "*" {
		// Step 6: "*" only with Expires: 0, and alone.
		if expHdr != 0 {
			return nil, &regError{400, "Wildcard Contact needs Expires: 0"}
		}
		r.set(user, nil)
		return nil, nil
	}
	next := append([]binding(nil), cur...)
	for _, h := range contacts {
		ch, ok := h.(*sip.ContactHeader)
		if !ok || ch.Address.Host == "" {
			return nil, &regError{400, "Bad Contact"}
		}
		exp := expHdr
		if v, ok := ch.Params.Get("expires"); ok {
			n, err := strconv.Atoi(v)
			if err != nil || n < 0 {
				return nil, &regError{400, "Bad Contact expires"}
			}
			exp = n
		}
		if exp < 0 {
			exp = defaultExpires
		}
		if exp > 0 && exp < minExpires {
			return nil, &regError{423, "Interval Too Brief"} // §10.3 step 7 (Min-Expires set by the caller)
		}
		exp = min(exp, maxExpires)
		raw := ch.Address.String()
		i := indexOf(next, raw)
		if i >= 0 && next[i].callID == callID && cseq <= next[i].cseq {
			return nil, &regError{500, "Out of Order"} // §10.3 step 7: an older request
		}
		if i >= 0 {
			next = append(next[:i], next[i+1:]...)
		}
		if exp == 0 {
			continue
		}
		b := binding{contact: ch.Address, raw: raw, expires: r.now().Add(time.Duration(exp) * time.Second),
			callID: callID, cseq: cseq, transport: req.Transport(), source: req.Source()}
		next = append(next, b)
	}
	if len(next) > maxBindings || r.total-len(cur)+len(next) > maxBindingTotal {
		return nil, &regError{403, "Too Many Registrations"}
	}
	r.set(user, next)
	return next, nil
}

func indexOf(list []binding, raw string) int {
	for i, b := range list {
		if b.raw == raw {
			return i
		}
	}
	return -1
}

// live returns user's unexpired bindings (r.mu held).
func (r *registrar) live(user string) []binding {
	now := r.now()
	var out []binding
	for _, b := range r.users[user] {
		if now.Before(b.expires) {
			out = append(out, b)
		}
	}
	return out
}

func (r *registrar) set(user string, list []binding) {
	r.total += len(list) - len(r.users[user])
	if len(list) == 0 {
		delete(r.users, user)
		return
	}
	r.users[user] = list
}

// bindings returns user's unexpired bindings.
func (r *registrar) bindings(user string) []binding {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.live(user)
}

// expire drops expired bindings and reports users that have none left.
func (r *registrar) expire() {
	r.mu.Lock()
	var gone []string
	for user := range r.users {
		live := r.live(user)
		if len(live) == 0 {
			gone = append(gone, user)
		}
		r.set(user, live)
	}
	r.mu.Unlock()
	sort.Strings(gone)
	for _, u := range gone {
		if r.changed != nil {
			r.changed(u, false)
		}
	}
}

// contactHeaders lists the bindings for a 200 OK to REGISTER (§10.3 step 8).
func contactHeaders(list []binding, now time.Time) []sip.Header {
	var out []sip.Header
	for _, b := range list {
		secs := int(b.expires.Sub(now).Round(time.Second) / time.Second)
		out = append(out, sip.NewHeader("Contact", fmt.Sprintf("<%s>;expires=%d", b.raw, max(secs, 0))))
	}
	return out
}
