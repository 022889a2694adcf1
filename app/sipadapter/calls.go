package sipadapter

import "github.com/emiago/sipgo/sip"

// onInvite: a user agent calls (RFC 3261 §16: the adapter authenticates its own users'
// requests, §22.3).
func (a *Adapter) onInvite(req *sip.Request, tx sip.ServerTransaction) {
	if _, ok := a.authenticate(req, tx); !ok {
		return
	}
	respond(tx, req, 480, "Temporarily Unavailable")
}

func (a *Adapter) onAck(req *sip.Request, tx sip.ServerTransaction) {}

func (a *Adapter) onBye(req *sip.Request, tx sip.ServerTransaction) {
	respond(tx, req, 481, "Call/Transaction Does Not Exist")
}

func (a *Adapter) onCancel(req *sip.Request, tx sip.ServerTransaction) {
	respond(tx, req, 481, "Call/Transaction Does Not Exist")
}

func (a *Adapter) onInfo(req *sip.Request, tx sip.ServerTransaction) {
	respond(tx, req, 481, "Call/Transaction Does Not Exist")
}
