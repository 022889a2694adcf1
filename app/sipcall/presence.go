package sipcall

import (
	"context"
	"encoding/xml"
	"errors"
	"fmt"
	"strconv"
	"strings"

	"github.com/emiago/sipgo/sip"
)

// Presence between phones that are connected (issue 19): SUBSCRIBE/NOTIFY (RFC 6665) of the
// presence event package (RFC 3856) with PIDF bodies (RFC 3863), over the AppAttach
// connections calls and messages opened. A subscription lives as long as its connection: it
// keeps no connection open (that would cost keepalives); when the connection goes, the
// subscriber hears PresenceUnknown and falls back on the overlay's registrations.

// Presence states.
const (
	PresenceOnline  = "online"
	PresenceInCall  = "in a call"
	PresenceOffline = "offline"
	PresenceUnknown = "" // the subscription ended with its connection
)

// presenceExpires is the subscription duration asked for and granted (RFC 6665 §4.1.2.1).
const presenceExpires = 3600

// pidfType is the content type of a presence document (RFC 3863 §4).
const pidfType = "application/pidf+xml"

// ErrNotConnected: no connection to that phone is open.
var ErrNotConnected = errors.New("sipcall: not connected to that phone")

// subscription is one presence subscription, as notifier (a subscriber's) or subscriber
// (ours).
type subscription struct {
	sc        *sipConn
	callID    string
	localTag  string
	remoteTag string
	remote    sip.Uri
	user      string // the other side's user name
	cseq      uint32 // our last CSeq in the dialog (notifier side)
}

// presence is the Endpoint's presence state (guarded by ep.mu).
type presence struct {
	state       string
	subscribers map[string]*subscription // by Call-ID: who watches us
	watching    map[string]*subscription // by Call-ID: whom we watch
	onSubscribe func(user, peer string) bool
	onPresence  func(user, peer, state string)
}

// OnPresence sets the handlers of presence: accept decides whether user (at Node-ID peer)
// may watch this phone; changed hears each state a watched phone notifies, and
// PresenceUnknown when its subscription ends. Both run on goroutines the Endpoint owns.
func (ep *Endpoint) OnPresence(accept func(user, peer string) bool, changed func(user, peer, state string)) {
	ep.mu.Lock()
	ep.pres.onSubscribe, ep.pres.onPresence = accept, changed
	ep.mu.Unlock()
}

// SetPresence sets this phone's state and notifies every subscriber whose connection lives
// (RFC 6665 §4.2.2), waiting at most until ctx ends.
func (ep *Endpoint) SetPresence(ctx context.Context, state string) {
	ep.mu.Lock()
	ep.pres.state = state
	subs := make([]*subscription, 0, len(ep.pres.subscribers))
	for _, s := range ep.pres.subscribers {
		subs = append(subs, s)
	}
	ep.mu.Unlock()
	done := make(chan struct{}, len(subs))
	for _, s := range subs {
		go func() { // owner: SetPresence; ends with the NOTIFY transaction
			defer func() { done <- struct{}{} }()
			ep.notify(ctx, s, state, state == PresenceOffline)
		}()
	}
	for range subs {
		<-done
	}
}

func (ep *Endpoint) presenceState() string {
	ep.mu.Lock()
	defer ep.mu.Unlock()
	if ep.pres.state == "" {
		return PresenceOnline
	}
	return ep.pres.state
}

// WatchPresence subscribes to the presence of user's phone peer (a Node-ID) over the
// connection already open to it; ErrNotConnected when there is none. The first state comes
// in the NOTIFY that follows (RFC 6665 §4.2.1.1).
func (ep *Endpoint) WatchPresence(ctx context.Context, peer, user string) error {
	sc := ep.connTo(peer)
	if sc == nil {
		return ErrNotConnected
	}
	req := ep.outOfDialog(sip.SUBSCRIBE, sip.Uri{Scheme: "sip", User: user, Host: ep.set.Overlay}, newCallID(), sc)
	req.AppendHeader(sip.NewHeader("Event", "presence"))
	req.AppendHeader(sip.NewHeader("Accept", pidfType))
	req.AppendHeader(sip.NewHeader("Expires", strconv.Itoa(presenceExpires)))
	req.AppendHeader(ep.contact())
	req.SetBody(nil) // Content-Length: 0
	tag, _ := req.From().Params.Get("tag")
	s := &subscription{sc: sc, callID: req.CallID().Value(), localTag: tag, user: user}
	ep.mu.Lock()
	if ep.pres.watching == nil {
		ep.pres.watching = map[string]*subscription{}
	}
	for _, w := range ep.pres.watching {
		if w.sc == sc && w.user == user {
			ep.mu.Unlock()
			return nil // already watching over this connection
		}
	}
	ep.pres.watching[s.callID] = s // before sending: the NOTIFY may overtake the 200
	ep.mu.Unlock()
	res, err := ep.transact(ctx, sc.self, req)
	if err == nil && !res.IsSuccess() {
		err = &StatusError{Code: int(res.StatusCode), Reason: res.Reason}
	}
	if err != nil {
		ep.mu.Lock()
		delete(ep.pres.watching, s.callID)
		ep.mu.Unlock()
		return fmt.Errorf("sipcall: SUBSCRIBE: %w", err)
	}
	if !ep.enter() {
		return ErrClosed
	}
	go func() { // owner: ep; ends when the connection dies or the Endpoint closes
		defer ep.wg.Done()
		select {
		case <-sc.dead:
		case <-ep.done:
			return
		}
		ep.mu.Lock()
		_, still := ep.pres.watching[s.callID]
		delete(ep.pres.watching, s.callID)
		f := ep.pres.onPresence
		ep.mu.Unlock()
		if still && f != nil {
			f(user, sc.peer, PresenceUnknown)
		}
	}()
	return nil
}

// handleSubscribe answers a SUBSCRIBE (RFC 6665 §4.2.1): 489 for an event package other
// than presence, 403 when the handler refuses, else 200 and at once a NOTIFY of the state.
func (ep *Endpoint) handleSubscribe(sc *sipConn, req *sip.Request, tx sip.ServerTransaction) {
	if ev := req.GetHeader("Event"); ev == nil || !strings.EqualFold(strings.TrimSpace(strings.Split(ev.Value(), ";")[0]), "presence") {
		res := sip.NewResponseFromRequest(req, 489, "Bad Event", nil)
		res.AppendHeader(sip.NewHeader("Allow-Events", "presence"))
		_ = tx.Respond(res)
		return
	}
	from := req.From()
	fromTag, _ := from.Params.Get("tag")
	if validUser(from.Address.User) != nil || fromTag == "" {
		_ = tx.Respond(sip.NewResponseFromRequest(req, 400, "Bad From", nil))
		return
	}
	ep.mu.Lock()
	accept := ep.pres.onSubscribe
	ep.mu.Unlock()
	if accept == nil || !accept(from.Address.User, sc.peer) {
		_ = tx.Respond(sip.NewResponseFromRequest(req, 403, "Forbidden", nil))
		return
	}
	expires := presenceExpires
	if h := req.GetHeader("Expires"); h != nil {
		if n, err := strconv.Atoi(strings.TrimSpace(h.Value())); err == nil && n >= 0 {
			expires = min(n, presenceExpires)
		}
	}
	s := &subscription{sc: sc, callID: req.CallID().Value(), localTag: newTag(), remoteTag: fromTag,
		remote: from.Address, user: from.Address.User}
	res := sip.NewResponseFromRequest(req, 200, "OK", nil)
	res.To().Params.Add("tag", s.localTag)
	res.AppendHeader(sip.NewHeader("Expires", strconv.Itoa(expires)))
	res.AppendHeader(ep.contact())
	_ = tx.Respond(res)
	ep.mu.Lock()
	if ep.pres.subscribers == nil {
		ep.pres.subscribers = map[string]*subscription{}
	}
	if expires > 0 {
		ep.pres.subscribers[s.callID] = s
	}
	ep.mu.Unlock()
	ctx, cancel := context.WithTimeout(context.Background(), 64*sip.T1)
	defer cancel()
	ep.notify(ctx, s, ep.presenceState(), expires == 0) // RFC 6665 §4.2.1.1: at once
}

// notify sends one NOTIFY in subscription s (RFC 6665 §4.2.2); terminated ends it.
func (ep *Endpoint) notify(ctx context.Context, s *subscription, state string, terminated bool) {
	ep.mu.Lock()
	s.cseq++
	seq := s.cseq
	ep.mu.Unlock()
	req := sip.NewRequest(sip.NOTIFY, s.remote)
	from := sip.FromHeader{DisplayName: ep.set.User, Address: ep.aor, Params: sip.NewParams()}
	from.Params.Add("tag", s.localTag)
	to := sip.ToHeader{Address: s.remote, Params: sip.NewParams()}
	to.Params.Add("tag", s.remoteTag)
	cid := sip.CallIDHeader(s.callID)
	cseq := sip.CSeqHeader{SeqNo: seq, MethodName: sip.NOTIFY}
	maxf := sip.MaxForwardsHeader(70)
	ctype := sip.ContentTypeHeader(pidfType)
	req.AppendHeader(ep.newVia(s.sc))
	req.AppendHeader(&from)
	req.AppendHeader(&to)
	req.AppendHeader(&cid)
	req.AppendHeader(&cseq)
	req.AppendHeader(&maxf)
	req.AppendHeader(ep.contact())
	req.AppendHeader(sip.NewHeader("Event", "presence"))
	sub := "active;expires=" + strconv.Itoa(presenceExpires)
	if terminated {
		sub = "terminated;reason=noresource"
		ep.mu.Lock()
		delete(ep.pres.subscribers, s.callID)
		ep.mu.Unlock()
	}
	req.AppendHeader(sip.NewHeader("Subscription-State", sub))
	req.AppendHeader(&ctype)
	req.SetBody(PIDF(ep.AoR(), state))
	ep.route(req, s.sc)
	res, err := ep.transact(ctx, s.sc.self, req)
	if err != nil || res.StatusCode == 481 {
		// The subscriber or its connection is gone (RFC 6665 §4.2.2: 481 ends it).
		ep.mu.Lock()
		delete(ep.pres.subscribers, s.callID)
		ep.mu.Unlock()
	}
}

// handleNotify takes a NOTIFY of a subscription of ours: 481 for none, 400 for a body that
// is not a presence document.
func (ep *Endpoint) handleNotify(sc *sipConn, req *sip.Request, tx sip.ServerTransaction) {
	tag, _ := req.To().Params.Get("tag")
	ep.mu.Lock()
	s := ep.pres.watching[req.CallID().Value()]
	f := ep.pres.onPresence
	ep.mu.Unlock()
	if s == nil || s.localTag != tag || s.sc != sc {
		_ = tx.Respond(sip.NewResponseFromRequest(req, 481, "Subscription Does Not Exist", nil))
		return
	}
	state, err := ParsePIDF(req.Body())
	if err != nil {
		_ = tx.Respond(sip.NewResponseFromRequest(req, 400, "Bad Presence Document", nil))
		return
	}
	_ = tx.Respond(sip.NewResponseFromRequest(req, 200, "OK", nil))
	if h := req.GetHeader("Subscription-State"); h != nil && strings.HasPrefix(strings.TrimSpace(h.Value()), "terminated") {
		ep.mu.Lock()
		delete(ep.pres.watching, s.callID)
		ep.mu.Unlock()
	}
	if f != nil {
		f(s.user, sc.peer, state)
	}
}

// pidf is the part of a presence document (RFC 3863 §4) this phone writes and reads.
type pidf struct {
	XMLName xml.Name `xml:"urn:ietf:params:xml:ns:pidf presence"`
	Entity  string   `xml:"entity,attr"`
	Tuples  []struct {
		ID     string `xml:"id,attr"`
		Status struct {
			Basic string `xml:"basic"`
		} `xml:"status"`
		Note string `xml:"note"`
	} `xml:"tuple"`
}

// PIDF is the presence document of entity in state.
func PIDF(entity, state string) []byte {
	basic, note := "open", state
	if state == PresenceOffline {
		basic, note = "closed", ""
	}
	var b strings.Builder
	b.WriteString(`<?xml version="1.0" encoding="UTF-8"?>` + "\n")
	b.WriteString(`<presence xmlns="urn:ietf:params:xml:ns:pidf" entity="`)
	_ = xml.EscapeText(&b, []byte(entity))
	b.WriteString(`"><tuple id="phone"><status><basic>` + basic + `</basic></status>`)
	if note != "" {
		b.WriteString("<note>")
		_ = xml.EscapeText(&b, []byte(note))
		b.WriteString("</note>")
	}
	b.WriteString("</tuple></presence>\n")
	return []byte(b.String())
}

// ParsePIDF reads a presence document: PresenceOffline for basic closed, PresenceInCall
// when the note says so, else PresenceOnline.
func ParsePIDF(b []byte) (string, error) {
	if len(b) > MaxMessageBody {
		return "", errors.New("presence document too large")
	}
	var p pidf
	if err := xml.Unmarshal(b, &p); err != nil {
		return "", fmt.Errorf("presence document: %w", err)
	}
	if len(p.Tuples) == 0 {
		return "", errors.New("presence document without a tuple")
	}
	t := p.Tuples[0]
	switch strings.TrimSpace(t.Status.Basic) {
	case "closed":
		return PresenceOffline, nil
	case "open":
		if strings.TrimSpace(t.Note) == PresenceInCall {
			return PresenceInCall, nil
		}
		return PresenceOnline, nil
	}
	return "", fmt.Errorf("presence document: basic status %q", t.Status.Basic)
}
