package enrollcmd

import (
	"bufio"
	"context"
	"crypto/tls"
	"encoding/pem"
	"errors"
	"flag"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/chordphone/chordphone/overlay/config"
	"github.com/chordphone/chordphone/overlay/enroll"
	"github.com/chordphone/chordphone/overlay/identity"
)

// Operator runs the overlay-server command. The app wires StartPeer to run
// the bootstrap peer in the same process.
type Operator struct {
	Stdin          io.Reader
	Stdout, Stderr io.Writer
	// StartPeer, when set, runs a bootstrap peer of the overlay on listen
	// with identity id until ctx ends (issue 9: "a bootstrap peer in the
	// same process"); updates brings each newer configuration the operator
	// makes while it runs (the peer applies it and sends it on in
	// ConfigUpdates, RFC 6940 §6.5.4). Nil means the command serves only HTTPS.
	StartPeer func(ctx context.Context, cfg *config.Config, id *identity.Identity, listen string, updates <-chan *config.Config) error
	// WatchInterval is how often serve looks for a changed overlay.json (default 2 s).
	WatchInterval time.Duration
	// Ready is called with the HTTPS address once the server listens.
	Ready func(addr net.Addr)
	// BcryptCost overrides the password hashing cost (tests).
	BcryptCost int
}

// RunOperatorCommand runs "chordphone overlay-server ARGS" with standard
// input as the password source. It returns the process exit code.
func RunOperatorCommand(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	return (&Operator{Stdin: os.Stdin, Stdout: stdout, Stderr: stderr}).Run(ctx, args)
}

const operatorUsage = `usage: chordphone overlay-server [serve] --dir DIR [--name NAME] [--listen ADDR] [options]
       chordphone overlay-server init --dir DIR --name NAME [options]
       chordphone overlay-server user add|passwd NAME --dir DIR   (password on the first line of standard input)
       chordphone overlay-server user remove NAME --dir DIR
       chordphone overlay-server user list --dir DIR
       chordphone overlay-server config --dir DIR   (print the signed configuration document)
       chordphone overlay-server ca --dir DIR       (print the overlay CA certificate, PEM)
       chordphone overlay-server kind-limit KIND [--max-count N] [--max-size N] --dir DIR
                                                    (change a kind's limits; a running server sends the new document to every peer)
       chordphone overlay-server invite --dir DIR [--user NAME] [--config-url URL] [--qr FILE.png]
                                                    (print a join link that pins the CA; write it as a QR code)

Serves one RELOAD overlay (RFC 6940 §11): the signed configuration document at
https://NAME/.well-known/reload-config and the enrollment service at /enroll.
`

// Run runs the command; it returns the exit code (0 ok, 1 failure, 2 usage).
func (o *Operator) Run(ctx context.Context, args []string) int {
	cmd := "serve"
	if len(args) > 0 && !strings.HasPrefix(args[0], "-") {
		cmd, args = args[0], args[1:]
	}
	var err error
	switch cmd {
	case "serve":
		err = o.serve(ctx, args, false)
	case "init":
		err = o.serve(ctx, args, true)
	case "user":
		err = o.user(args)
	case "config", "ca":
		err = o.print(cmd, args)
	case "kind-limit":
		err = o.kindLimit(args)
	case "help", "-h", "--help":
		fmt.Fprint(o.Stdout, operatorUsage)
		return 0
	default:
		err = usageError(fmt.Sprintf("unknown command %q", cmd))
	}
	var ue usageError
	switch {
	case err == nil:
		return 0
	case errors.As(err, &ue):
		fmt.Fprintf(o.Stderr, "overlay-server: %s\n%s", err, operatorUsage)
		return 2
	default:
		fmt.Fprintf(o.Stderr, "overlay-server: %s\n", err)
		return 1
	}
}

type usageError string

func (u usageError) Error() string { return string(u) }

type listFlag []string

func (l *listFlag) String() string     { return strings.Join(*l, ",") }
func (l *listFlag) Set(s string) error { *l = append(*l, s); return nil }

type opFlags struct {
	fs                  *flag.FlagSet
	dir, name, listen   string
	enrollURL           string
	bootstrap, tlsHosts listFlag
	open                bool
	tlsCert, tlsKey     string
	peerListen          string
	identityKey         string
}

func (o *Operator) flags(cmd string) *opFlags {
	f := &opFlags{fs: flag.NewFlagSet("overlay-server "+cmd, flag.ContinueOnError)}
	f.fs.SetOutput(io.Discard)
	def := ""
	if d, err := os.UserConfigDir(); err == nil {
		def = filepath.Join(d, "chordphone", "overlay-server")
	}
	f.fs.StringVar(&f.dir, "dir", def, "operator directory (keys, users, settings)")
	f.fs.StringVar(&f.name, "name", "", "overlay name (a DNS name whose HTTPS server this is)")
	f.fs.StringVar(&f.listen, "listen", ":443", "HTTPS listen address")
	f.fs.StringVar(&f.enrollURL, "enroll-url", "", "enrollment URL as phones reach it (default https://NAME/enroll)")
	f.fs.Var(&f.bootstrap, "bootstrap", "bootstrap peer IP:PORT to publish (repeatable)")
	f.fs.Var(&f.tlsHosts, "tls-host", "extra host name or IP for the HTTPS certificate (repeatable)")
	f.fs.BoolVar(&f.open, "open", false, "open registration: anybody may create an account by enrolling")
	f.fs.StringVar(&f.tlsCert, "tls-cert", "", "HTTPS certificate chain (PEM), e.g. from a public CA")
	f.fs.StringVar(&f.tlsKey, "tls-key", "", "HTTPS private key (PEM)")
	f.fs.StringVar(&f.peerListen, "peer-listen", "", "run the bootstrap peer on this link address")
	f.fs.StringVar(&f.identityKey, "identity-key", enroll.DefaultIdentityKey, "key type of the overlay's certificates, at init: rsa-2048 or ecdsa-p256")
	return f
}

// parse parses flags anywhere among the arguments and returns the positional ones.
func (f *opFlags) parse(args []string) ([]string, error) {
	var pos []string
	for {
		if err := f.fs.Parse(args); err != nil {
			return nil, usageError(err.Error())
		}
		args = f.fs.Args()
		if len(args) == 0 {
			return pos, nil
		}
		pos = append(pos, args[0])
		args = args[1:]
	}
}

func (f *opFlags) set(name string) bool {
	found := false
	f.fs.Visit(func(fl *flag.Flag) { found = found || fl.Name == name })
	return found
}

func firstOr(s, def string) string {
	if s == "" {
		return def
	}
	return s
}

func (o *Operator) logger() *slog.Logger {
	return slog.New(slog.NewTextHandler(o.Stderr, &slog.HandlerOptions{Level: slog.LevelInfo}))
}

func (o *Operator) serve(ctx context.Context, args []string, initOnly bool) error {
	f := o.flags("serve")
	pos, err := f.parse(args)
	if err != nil {
		return err
	}
	if len(pos) > 0 {
		return usageError(fmt.Sprintf("unexpected argument %q", pos[0]))
	}
	if f.dir == "" {
		return usageError("--dir is required")
	}
	if err := o.settingsFromFlags(f, initOnly); err != nil || initOnly {
		return err
	}
	srv, set, err := enroll.LoadServer(f.dir, o.logger())
	if err != nil {
		return err
	}
	if o.BcryptCost > 0 {
		srv.Users.Cost = o.BcryptCost
	}
	tlsCert, err := o.tlsCertificate(f, srv, set)
	if err != nil {
		return err
	}
	ln, err := net.Listen("tcp", f.listen)
	if err != nil {
		return fmt.Errorf("listen: %w", err)
	}
	if len(set.Bootstrap) == 0 {
		fmt.Fprintf(o.Stderr, "overlay-server: warning: the configuration names no bootstrap peer (--bootstrap IP:PORT or --peer-listen); "+
			"phones that find no one would each start a ring of their own\n")
	}
	fmt.Fprintf(o.Stdout, "overlay %s: configuration %s, enrollment %s, listening on %s\n",
		set.Overlay, config.URLFor(set.Overlay), srv.Config().EnrollmentServers[0], ln.Addr())
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	peerErr, err := o.startPeer(ctx, f, srv, set)
	if err != nil {
		_ = ln.Close()
		return err
	}
	if o.Ready != nil {
		o.Ready(ln.Addr())
	}
	srvErr := make(chan error, 1)
	go func() { srvErr <- srv.Serve(ctx, ln, tlsCert) }()
	select {
	case err = <-srvErr:
		cancel()
		if f.peerListen != "" {
			<-peerErr
		}
	case err = <-peerErr:
		cancel()
		<-srvErr
		if err != nil {
			err = fmt.Errorf("bootstrap peer: %w", err)
		}
	}
	return err
}

// settingsFromFlags sets up the operator directory (init) or checks it is the one named,
// and keeps the settings given on the command line; a change bumps the configuration
// sequence (RFC 6940 §11.1).
func (o *Operator) settingsFromFlags(f *opFlags, initOnly bool) error {
	s, err := enroll.ReadSettings(f.dir)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		if f.name == "" {
			return usageError("--name is required to set up a new overlay")
		}
		if _, err := identity.ParseKeyType(f.identityKey); err != nil {
			return usageError("--identity-key: " + err.Error())
		}
		if s, err = enroll.InitDir(f.dir, f.name, f.identityKey); err != nil {
			return fmt.Errorf("set up overlay: %w", err)
		}
		fmt.Fprintf(o.Stdout, "created overlay %s in %s\n", f.name, f.dir)
	case err != nil:
		return err
	case f.name != "" && !strings.EqualFold(f.name, s.Overlay):
		return fmt.Errorf("%s holds overlay %s, not %s", f.dir, s.Overlay, f.name)
	case initOnly:
		return fmt.Errorf("%s already holds overlay %s", f.dir, s.Overlay)
	case f.set("identity-key") && !strings.EqualFold(f.identityKey, s.IdentityKey):
		return fmt.Errorf("%s holds overlay %s with %s keys; the key type is chosen at init", f.dir, s.Overlay, firstOr(s.IdentityKey, "any"))
	}
	ns := *s
	if f.set("enroll-url") {
		ns.EnrollURL = f.enrollURL
	}
	if f.set("bootstrap") {
		for _, b := range f.bootstrap {
			if _, err := netip.ParseAddrPort(b); err != nil {
				return usageError(fmt.Sprintf("--bootstrap %q: want IP:PORT", b))
			}
		}
		ns.Bootstrap = f.bootstrap
	}
	if f.set("open") {
		ns.Open = f.open
	}
	if f.set("tls-host") {
		ns.TLSHosts = f.tlsHosts
	}
	if f.peerListen != "" && !f.set("bootstrap") {
		if ap, err := netip.ParseAddrPort(f.peerListen); err == nil && !ap.Addr().IsUnspecified() {
			ns.Bootstrap = []string{ap.String()}
		}
	}
	if ns.EnrollURL != s.EnrollURL || ns.Open != s.Open || !slices.Equal(ns.Bootstrap, s.Bootstrap) || !slices.Equal(ns.TLSHosts, s.TLSHosts) {
		ns.Sequence++
		if err := enroll.WriteSettings(f.dir, &ns); err != nil {
			return err
		}
	}
	return nil
}

// startPeer starts the overlay's bootstrap peer in this process when --peer-listen asks
// for it; its outcome comes on the channel.
func (o *Operator) startPeer(ctx context.Context, f *opFlags, srv *enroll.Server, set *enroll.Settings) (chan error, error) {
	peerErr := make(chan error, 1)
	if f.peerListen != "" {
		if o.StartPeer == nil {
			return nil, errors.New("--peer-listen: this build cannot run a peer in the overlay server")
		}
		boot, err := enroll.LoadPEMIdentity(f.dir, enroll.FileBootstrap)
		if err != nil {
			return nil, err
		}
		doc, err := srv.Document()
		if err != nil {
			return nil, err
		}
		cfg, err := config.ParseOverlay(doc, set.Overlay) // with Raw and Signature
		if err != nil {
			return nil, err
		}
		updates := make(chan *config.Config, 1)
		go o.watchSettings(ctx, f.dir, srv, updates)
		go func() { peerErr <- o.StartPeer(ctx, cfg, boot, f.peerListen, updates) }()
	}
	return peerErr, nil
}

func (o *Operator) tlsCertificate(f *opFlags, srv *enroll.Server, set *enroll.Settings) (tls.Certificate, error) {
	if f.tlsCert != "" || f.tlsKey != "" {
		c, err := tls.LoadX509KeyPair(f.tlsCert, f.tlsKey)
		if err != nil {
			return c, fmt.Errorf("HTTPS certificate: %w", err)
		}
		return c, nil
	}
	hosts := append([]string{set.Overlay}, set.TLSHosts...)
	if id, err := enroll.LoadPEMIdentity(f.dir, enroll.FileTLS); err == nil && slices.Equal(id.Cert().DNSNames, dnsOnly(hosts)) &&
		time.Now().Add(24*time.Hour).Before(id.Cert().NotAfter) {
		return id.TLSCertificate(), nil
	}
	id, err := srv.CA.IssueTLS(hosts, 365*24*time.Hour)
	if err != nil {
		return tls.Certificate{}, err
	}
	data, err := id.Encode()
	if err != nil {
		return tls.Certificate{}, err
	}
	if err := identity.WriteFileAtomic(filepath.Join(f.dir, enroll.FileTLS), data, 0o600); err != nil {
		return tls.Certificate{}, err
	}
	fmt.Fprintf(o.Stderr, "overlay-server: the HTTPS certificate is issued by the overlay's own CA; give people an invitation "+
		"that pins it (chordphone overlay-server invite --dir %s --user NAME), or give --tls-cert/--tls-key from a public CA\n", f.dir)
	return id.TLSCertificate(), nil
}

func dnsOnly(hosts []string) []string {
	var out []string
	for _, h := range hosts {
		if net.ParseIP(h) == nil {
			out = append(out, h)
		}
	}
	return out
}

func (o *Operator) user(args []string) error {
	if len(args) == 0 {
		return usageError("user: want add, passwd, remove or list")
	}
	sub := args[0]
	f := o.flags("user " + sub)
	pos, err := f.parse(args[1:])
	if err != nil {
		return err
	}
	if _, err := enroll.ReadSettings(f.dir); err != nil {
		return fmt.Errorf("%s is not an overlay-server directory: %w", f.dir, err)
	}
	users, err := enroll.OpenUsers(filepath.Join(f.dir, enroll.FileUsers))
	if err != nil {
		return err
	}
	if o.BcryptCost > 0 {
		users.Cost = o.BcryptCost
	}
	if sub == "list" {
		for _, n := range users.Names() {
			fmt.Fprintln(o.Stdout, n)
		}
		return nil
	}
	if len(pos) != 1 {
		return usageError(fmt.Sprintf("user %s: want one NAME", sub))
	}
	name := pos[0]
	switch sub {
	case "add", "passwd":
		if slices.Contains(enroll.ReservedNames, strings.ToLower(name)) {
			return fmt.Errorf("%q is reserved for the server", name)
		}
		pw, err := o.password()
		if err != nil {
			return err
		}
		if sub == "add" {
			err = users.Add(name, pw)
		} else {
			err = users.SetPassword(name, pw)
		}
		if err != nil {
			return err
		}
		fmt.Fprintf(o.Stdout, "user %s: %s\n", name, map[string]string{"add": "added", "passwd": "password changed"}[sub])
	case "remove":
		if err := users.Remove(name); err != nil {
			return err
		}
		fmt.Fprintf(o.Stdout, "user %s: removed\n", name)
	default:
		return usageError(fmt.Sprintf("user: unknown subcommand %q", sub))
	}
	return nil
}

func (o *Operator) password() (string, error) { return ReadPassword(o.Stdin, o.Stderr) }

// ReadPassword reads a password from the first line of in; when in is a terminal it asks on
// prompt and does not echo what is typed.
func ReadPassword(in io.Reader, prompt io.Writer) (string, error) {
	if in == nil {
		return "", errors.New("no password: give it on standard input")
	}
	if f, ok := in.(*os.File); ok {
		if restore, tty := noEcho(f); tty {
			fmt.Fprint(prompt, "Password (not shown): ")
			defer func() { restore(); fmt.Fprintln(prompt) }()
		}
	}
	line, err := bufio.NewReader(in).ReadString('\n')
	if err != nil && !(errors.Is(err, io.EOF) && line != "") {
		return "", errors.New("no password: give it on the first line of standard input")
	}
	return strings.TrimRight(line, "\r\n"), nil
}

func (o *Operator) print(what string, args []string) error {
	f := o.flags(what)
	if _, err := f.parse(args); err != nil {
		return err
	}
	srv, _, err := enroll.LoadServer(f.dir, o.logger())
	if err != nil {
		return err
	}
	if what == "ca" {
		return pem.Encode(o.Stdout, &pem.Block{Type: "CERTIFICATE", Bytes: srv.CA.Cert.Raw})
	}
	doc, err := srv.Document()
	if err != nil {
		return err
	}
	_, err = o.Stdout.Write(doc)
	return err
}

// watchSettings reloads overlay.json when it changes (the kind-limit command, or an edit)
// and, when the configuration sequence went up, publishes the new document and hands it to
// the bootstrap peer, which sends it through the overlay (RFC 6940 §6.5.4).
func (o *Operator) watchSettings(ctx context.Context, dir string, srv *enroll.Server, updates chan *config.Config) {
	every := o.WatchInterval
	if every <= 0 {
		every = 2 * time.Second
	}
	path := filepath.Join(dir, enroll.FileSettings)
	var last time.Time
	if fi, err := os.Stat(path); err == nil {
		last = fi.ModTime()
	}
	tick := time.NewTicker(every)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
		fi, err := os.Stat(path)
		if err != nil || fi.ModTime().Equal(last) {
			continue
		}
		last = fi.ModTime()
		cfg, err := enroll.ReloadSettings(dir, srv)
		if err != nil {
			srv.Logger.Warn("overlay settings changed but cannot be used", "err", err)
			continue
		}
		if cfg == nil {
			continue
		}
		srv.Logger.Info("configuration updated", "overlay", cfg.InstanceName, "sequence", cfg.Sequence)
		select { // only the newest matters
		case <-updates:
		default:
		}
		updates <- cfg
	}
}

// kindLimit runs "overlay-server kind-limit NAME [--max-count N] [--max-size N]": it
// changes a kind-block of the overlay's configuration (RFC 6940 §11.1) and bumps the
// configuration sequence; a running server picks it up and its peer sends the new document
// through the overlay.
func (o *Operator) kindLimit(args []string) error {
	f := o.flags("kind-limit")
	maxCount := f.fs.Int("max-count", -1, "the kind's max-count")
	maxSize := f.fs.Int("max-size", -1, "the kind's max-size in bytes")
	pos, err := f.parse(args)
	if err != nil {
		return err
	}
	if len(pos) != 1 {
		return usageError("kind-limit needs one kind name, e.g. SIP-REGISTRATION")
	}
	if *maxCount < 0 && *maxSize < 0 {
		return usageError("kind-limit needs --max-count or --max-size")
	}
	s, err := enroll.ReadSettings(f.dir)
	if err != nil {
		return err
	}
	if len(s.Kinds) == 0 {
		s.Kinds = enroll.DefaultKinds()
	}
	i := slices.IndexFunc(s.Kinds, func(k config.Kind) bool { return strings.EqualFold(k.Name, pos[0]) })
	if i < 0 {
		return fmt.Errorf("the overlay has no kind %q", pos[0])
	}
	if *maxCount >= 0 {
		s.Kinds[i].MaxCount = *maxCount
	}
	if *maxSize >= 0 {
		s.Kinds[i].MaxSize = *maxSize
	}
	s.Kinds[i].Raw, s.Kinds[i].Signature = nil, nil
	s.Sequence = (s.Sequence + 1) % 65535 // RFC 6940 §6.3.2.1: 65535 is reserved
	if err := enroll.WriteSettings(f.dir, s); err != nil {
		return err
	}
	fmt.Fprintf(o.Stdout, "%s: max-count %d, max-size %d; configuration sequence %d\n", s.Kinds[i].Name, s.Kinds[i].MaxCount, s.Kinds[i].MaxSize, s.Sequence)
	return nil
}
