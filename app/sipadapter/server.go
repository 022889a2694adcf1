package sipadapter

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"strconv"
	"sync"
	"time"

	"github.com/emiago/sipgo"
	"github.com/emiago/sipgo/sip"
)

// SettingListen is the profile setting (Settings → Peer) with the adapter's address; "" or
// none runs no adapter unless --sip-adapter asks for one.
const SettingListen = "peer.sip_adapter"

// allowHeader lists what the adapter handles (RFC 3261 §20.5).
const allowHeader = "INVITE, ACK, CANCEL, BYE, OPTIONS, REGISTER, INFO"

// Config selects how the adapter runs.
type Config struct {
	// Listen is the SIP address for user agents, UDP and TCP on the same port ("host:port";
	// port 0 picks one, Addr says which).
	Listen string
	// TLSListen is the address of SIP over TLS ("" serves none; see TLSAddress). The
	// certificate is the profile's adapter-tls.pem, made self-signed when missing.
	TLSListen string
	// Profile is the profile directory: the accounts (adapter-users.json) and each user's
	// line profile (adapter/NAME) are kept there.
	Profile string
	// Lines starts a user's line into the overlay when its first user agent registers;
	// nil serves registrations only (tests of the registrar).
	Lines *LineConfig
	// RatePerSecond bounds the requests taken from one source address in a second; more
	// get 503 (RFC 3261 §21.5.4). 0 means 50.
	RatePerSecond int
	Logger        *slog.Logger
}

// Adapter is a SIP registrar and proxy for ordinary user agents in front of the overlay
// (RFC 7890 §3, §5.5).
type Adapter struct {
	cfg      Config
	log      *slog.Logger
	accounts *Accounts
	auth     *authenticator
	reg      *registrar
	limit    *limiter
	ua       *sipgo.UserAgent
	srv      *sipgo.Server
	cli      *sipgo.Client
	udp      net.PacketConn
	tcp      net.Listener
	tls      net.Listener // nil without Config.TLSListen
	lines    *lines       // nil without Config.Lines
	dsrv     *sipgo.DialogServerCache
	dcli     *sipgo.DialogClientCache
	contact  sip.ContactHeader

	mu      sync.Mutex
	bridges map[string]*bridge // bridged calls by their UA dialog's Call-ID

	wg sync.WaitGroup
}

// New opens the listening sockets; Run serves them.
func New(cfg Config) (*Adapter, error) {
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.RatePerSecond <= 0 {
		cfg.RatePerSecond = 50
	}
	a := &Adapter{cfg: cfg, log: cfg.Logger, accounts: OpenAccounts(cfg.Profile), limit: newLimiter(cfg.RatePerSecond),
		bridges: map[string]*bridge{}}
	a.auth = newAuthenticator(a.accounts)
	a.reg = newRegistrar(a.registrationChanged)
	udp, err := net.ListenPacket("udp", cfg.Listen)
	if err != nil {
		return nil, fmt.Errorf("SIP adapter: listening on UDP %s: %w", cfg.Listen, err)
	}
	host, _, _ := net.SplitHostPort(cfg.Listen)
	port := udp.LocalAddr().(*net.UDPAddr).Port
	tcp, err := net.Listen("tcp", net.JoinHostPort(host, strconv.Itoa(port)))
	if err != nil {
		udp.Close()
		return nil, fmt.Errorf("SIP adapter: listening on TCP %s: %w", cfg.Listen, err)
	}
	a.udp, a.tcp = udp, tcp
	if cfg.TLSListen != "" {
		if a.tls, err = listenTLS(cfg.Profile, cfg.TLSListen, cfg.Logger); err != nil {
			udp.Close()
			tcp.Close()
			return nil, err
		}
	}
	if err := a.startSIP(); err != nil {
		a.closeListeners()
		return nil, err
	}
	if cfg.Lines != nil {
		a.lines = newLines(a, *cfg.Lines)
	}
	return a, nil
}

func (a *Adapter) startSIP() error {
	ua, err := sipgo.NewUA(sipgo.WithUserAgent("Chordphone-adapter"))
	if err != nil {
		return fmt.Errorf("SIP adapter: %w", err)
	}
	srv, err := sipgo.NewServer(ua, sipgo.WithServerLogger(a.log.With("layer", "sip-adapter")))
	if err != nil {
		return fmt.Errorf("SIP adapter: %w", err)
	}
	host, _, _ := net.SplitHostPort(a.Addr().String())
	cli, err := sipgo.NewClient(ua, sipgo.WithClientHostname(host), sipgo.WithClientPort(a.Addr().Port))
	if err != nil {
		return fmt.Errorf("SIP adapter: %w", err)
	}
	a.ua, a.srv, a.cli = ua, srv, cli
	a.contact = sip.ContactHeader{Address: sip.Uri{Scheme: "sip", User: "adapter", Host: a.mediaHost(), Port: a.Addr().Port}}
	a.dsrv = sipgo.NewDialogServerCache(cli, a.contact)
	a.dcli = sipgo.NewDialogClientCache(cli, a.contact)
	srv.OnRegister(a.limited(a.onRegister))
	srv.OnOptions(a.limited(a.onOptions))
	srv.OnInvite(a.limited(a.onInvite))
	srv.OnAck(a.onAck)
	srv.OnBye(a.limited(a.onBye))
	srv.OnCancel(a.limited(a.onCancel))
	srv.OnInfo(a.limited(a.onInfo))
	return nil
}

// listenTLS opens the TLS listener with the profile's certificate.
func listenTLS(profile, addr string, log *slog.Logger) (net.Listener, error) {
	host, _, _ := net.SplitHostPort(addr)
	cert, err := loadTLS(profile, host)
	if err != nil {
		return nil, err
	}
	l, err := tls.Listen("tcp", addr, &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12})
	if err != nil {
		return nil, fmt.Errorf("SIP adapter: listening on TLS %s: %w", addr, err)
	}
	log.Info("SIP adapter: TLS certificate (a phone that asks may be shown this fingerprint)", "sha256", fingerprint(cert))
	return l, nil
}

func (a *Adapter) closeListeners() {
	a.udp.Close()
	a.tcp.Close()
	if a.tls != nil {
		a.tls.Close()
	}
}

// TLSAddr is the TLS address the adapter listens on, nil without TLS.
func (a *Adapter) TLSAddr() net.Addr {
	if a.tls == nil {
		return nil
	}
	return a.tls.Addr()
}

// Addr is the UDP and TCP port the adapter listens on.
func (a *Adapter) Addr() *net.UDPAddr { return a.udp.LocalAddr().(*net.UDPAddr) }

// Run serves SIP until ctx ends, then closes everything.
func (a *Adapter) Run(ctx context.Context) error {
	a.log.Info("SIP adapter listening", "udp", a.udp.LocalAddr(), "tcp", a.tcp.Addr())
	a.wg.Add(3)
	go func() { // owner: Run; ends when the socket closes
		defer a.wg.Done()
		_ = a.srv.ServeUDP(a.udp)
	}()
	go func() { // owner: Run; ends when the listener closes
		defer a.wg.Done()
		_ = a.srv.ServeTCP(a.tcp)
	}()
	if a.tls != nil {
		a.wg.Add(1)
		go func() { // owner: Run; ends when the listener closes
			defer a.wg.Done()
			_ = a.srv.ServeTLS(a.tls)
		}()
	}
	go func() { // owner: Run; ends with ctx
		defer a.wg.Done()
		t := time.NewTicker(time.Second)
		defer t.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-t.C:
				a.reg.expire()
			}
		}
	}()
	<-ctx.Done()
	if a.lines != nil {
		a.lines.closeAll()
	}
	a.closeListeners()
	a.ua.Close()
	a.wg.Wait()
	return nil
}

// registrationChanged starts or stops user's line into the overlay.
func (a *Adapter) registrationChanged(user string, registered bool) {
	a.log.Info("SIP adapter: registration changed", "user", user, "registered", registered)
	if a.lines != nil {
		a.lines.set(user, registered)
	}
}

// limited answers 503 to a source that sends more than its share (RFC 3261 §21.5.4).
func (a *Adapter) limited(h sipgo.RequestHandler) sipgo.RequestHandler {
	return func(req *sip.Request, tx sip.ServerTransaction) {
		host, _, _ := net.SplitHostPort(req.Source())
		if !a.limit.allow(host) {
			res := sip.NewResponseFromRequest(req, 503, "Service Unavailable", nil)
			res.AppendHeader(sip.NewHeader("Retry-After", "5"))
			_ = tx.Respond(res)
			return
		}
		h(req, tx)
	}
}

func respond(tx sip.ServerTransaction, req *sip.Request, code int, reason string, hdrs ...sip.Header) {
	res := sip.NewResponseFromRequest(req, code, reason, nil)
	for _, h := range hdrs {
		res.AppendHeader(h)
	}
	_ = tx.Respond(res)
}

func (a *Adapter) onOptions(req *sip.Request, tx sip.ServerTransaction) {
	respond(tx, req, 200, "OK", sip.NewHeader("Allow", allowHeader))
}

// authenticate checks req's credentials; when they do not do, it answers req and returns
// false.
func (a *Adapter) authenticate(req *sip.Request, tx sip.ServerTransaction) (string, bool) {
	user, res, err := a.auth.check(req)
	switch res {
	case authOK:
		return user, true
	case authMissing:
		_ = tx.Respond(a.auth.challenge(req, false))
	case authStale:
		_ = tx.Respond(a.auth.challenge(req, true))
	case authMalformed:
		a.log.Info("SIP adapter: malformed credentials", "from", req.Source(), "err", err)
		respond(tx, req, 400, "Bad Authorization")
	default:
		if err != nil {
			a.log.Error("SIP adapter: reading the accounts", "err", err)
			respond(tx, req, 500, "Server Internal Error")
			return "", false
		}
		a.log.Info("SIP adapter: wrong credentials", "from", req.Source(), "user", user)
		respond(tx, req, 403, "Forbidden")
	}
	return "", false
}

// onRegister is the registrar (RFC 3261 §10.3): an authenticated user registers its own
// name only.
func (a *Adapter) onRegister(req *sip.Request, tx sip.ServerTransaction) {
	to := req.To()
	if to == nil || to.Address.User == "" {
		respond(tx, req, 400, "Missing To user")
		return
	}
	user, ok := a.authenticate(req, tx)
	if !ok {
		return
	}
	if user != to.Address.User {
		respond(tx, req, 403, "Forbidden: register your own name")
		return
	}
	list, err := a.reg.register(user, req)
	var re *regError
	if errors.As(err, &re) {
		var hdrs []sip.Header
		if re.code == 423 {
			hdrs = append(hdrs, sip.NewHeader("Min-Expires", strconv.Itoa(minExpires)))
		}
		respond(tx, req, re.code, re.reason, hdrs...)
		return
	}
	respond(tx, req, 200, "OK", contactHeaders(list, time.Now())...)
}

// limiter counts requests per source address in one-second windows.
type limiter struct {
	mu     sync.Mutex
	per    int
	window time.Time
	counts map[string]int
}

func newLimiter(per int) *limiter { return &limiter{per: per, counts: map[string]int{}} }

func (l *limiter) allow(src string) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	if now := time.Now(); now.Sub(l.window) >= time.Second {
		l.window, l.counts = now, map[string]int{}
	}
	l.counts[src]++
	return l.counts[src] <= l.per
}

// Start makes an adapter and runs it until ctx ends or stop is called; stop waits for the
// end.
func Start(ctx context.Context, cfg Config) (stop func(), err error) {
	a, err := New(cfg)
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() { // owner: the caller of Start, through stop
		defer close(done)
		_ = a.Run(ctx)
	}()
	return func() { cancel(); <-done }, nil
}

// mediaHost is the address the adapter gives user agents for RTP and its Contact: the
// listening address, or when that is unspecified the host's address towards others.
func (a *Adapter) mediaHost() string {
	host, _, _ := net.SplitHostPort(a.cfg.Listen)
	if ip := net.ParseIP(host); ip != nil && !ip.IsUnspecified() {
		return host
	}
	if c, err := net.Dial("udp", "192.0.2.1:9"); err == nil { // no packet is sent
		defer c.Close()
		return c.LocalAddr().(*net.UDPAddr).IP.String()
	}
	return "127.0.0.1"
}

// overlayName is the domain of the AoRs the adapter shows user agents.
func (a *Adapter) overlayName() string {
	if a.lines != nil {
		if o := a.lines.cfg.Phone.Status().Overlay; o != "" {
			return o
		}
	}
	return Realm
}
