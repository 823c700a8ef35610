// Command relying-party is an example server that trusts SIM-based
// authentication the way a customer's service would, with simgate's
// verifier (endorse/verify) and SORACOM Endorse tokens
// (../shared/spec/soracom-endorse-beam.md section 1). It owns the three
// uses Endorse was made for:
//
//   - an upload gate (Wi-Fi offload): POST /upload is accepted only with a
//     valid token whose IMSI+IMEI pair is registered with the app;
//   - a login: /login sends the device to Endorse with redirect_url, and the
//     callback turns the token into a session;
//   - a second factor: after a password, the same redirect flow with a
//     single-use nonce that the token must carry in requestParameters.
//
// Registered devices, users, sessions and pending logins live in memory (the
// first two are read from files at start); uploads go to --data-dir or stay
// in memory under a size cap. See README.md.
package main

import (
	"bufio"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"golang.org/x/crypto/bcrypt"

	"github.com/simgate/simgate/endorse/verify"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := run(ctx, os.Args[1:], os.Stdin, os.Stdout, os.Stderr)
	stop()
	switch {
	case errors.Is(err, flag.ErrHelp):
	case err != nil:
		fmt.Fprintln(os.Stderr, "relying-party:", err)
		os.Exit(1)
	}
}

// options are the command-line settings.
type options struct {
	listen     string
	jwks       string
	keysURL    string
	keyFile    string
	issuer     string
	leeway     time.Duration
	endorseURL string
	publicURL  string
	devices    string
	users      string
	dataDir    string
	maxUpload  int64
	maxStored  int64
	sessionTTL time.Duration
	pendingTTL time.Duration
	logLevel   slog.Level
}

const usageHead = `relying-party: an example service that trusts SORACOM Endorse tokens from simgate.

Usage:
  relying-party --devices FILE (--jwks URL | --keys-url URL | --key FILE.pem) [flags]
  relying-party hash-password [NAME] < password     print a bcrypt hash (NAME:hash) for --users

Endpoints: GET /healthz, POST /upload, GET /login, GET|POST /login/callback,
POST /2fa/password, GET|POST /2fa/callback, GET /whoami, POST /logout.

Flags:
`

// parseFlags reads args; it returns flag.ErrHelp after printing the usage
// for -h/--help.
func parseFlags(args []string, stderr io.Writer) (options, error) {
	var o options
	fs := flag.NewFlagSet("relying-party", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprint(stderr, usageHead)
		fs.PrintDefaults()
	}
	fs.StringVar(&o.listen, "listen", "127.0.0.1:8080", "address to listen on")
	fs.StringVar(&o.jwks, "jwks", "", "verify with the JWK Set at `URL`, e.g. http://<simgate>/.well-known/jwks.json")
	fs.StringVar(&o.keysURL, "keys-url", "", "verify with PEM keys at `URL`/soracom-public-keys/{kid} (real SORACOM: "+verify.SORACOMKeysURL+")")
	fs.StringVar(&o.keyFile, "key", "", "verify with the PEM public key(s) in `FILE` (simgate keys export)")
	fs.StringVar(&o.issuer, "issuer", verify.DefaultIssuer, "required iss of tokens (simgate: endorse.issuer)")
	fs.DurationVar(&o.leeway, "leeway", verify.DefaultLeeway, "clock skew tolerated on exp and nbf (at most 5m)")
	fs.StringVar(&o.endorseURL, "endorse-url", "http://endorse.soracom.io/", "Endorse endpoint `URL` devices are sent to for a token")
	fs.StringVar(&o.publicURL, "public-url", "", "this app's base `URL` as devices reach it, for redirect_url (default http://<listen>)")
	fs.StringVar(&o.devices, "devices", "", "registered devices `FILE`: JSON [{\"imsi\",\"imei\",\"user\"}] or lines imsi,imei[,user]")
	fs.StringVar(&o.users, "users", "", "password-step users `FILE`: lines name:bcrypt-hash (see hash-password)")
	fs.StringVar(&o.dataDir, "data-dir", "", "store uploads under `DIR`/<imsi>/ (default: in memory, at most --max-stored bytes)")
	fs.Int64Var(&o.maxUpload, "max-upload", DefaultMaxUpload, "largest upload in bytes")
	fs.Int64Var(&o.maxStored, "max-stored", 64<<20, "total bytes of uploads kept in memory without --data-dir")
	fs.DurationVar(&o.sessionTTL, "session-ttl", DefaultSessionTTL, "lifetime of a login session")
	fs.DurationVar(&o.pendingTTL, "pending-ttl", DefaultPendingTTL, "time from the password step to its second factor")
	fs.TextVar(&o.logLevel, "log-level", slog.LevelInfo, "log level: debug, info, warn, error")
	if err := fs.Parse(args); err != nil {
		return o, err
	}
	if fs.NArg() > 0 {
		return o, fmt.Errorf("unexpected argument %q (see --help)", fs.Arg(0))
	}
	n := 0
	for _, s := range []string{o.jwks, o.keysURL, o.keyFile} {
		if s != "" {
			n++
		}
	}
	if n != 1 {
		return o, errors.New("want exactly one of --jwks, --keys-url, --key")
	}
	if o.devices == "" {
		return o, errors.New("--devices is required: the IMSI+IMEI pairs this app accepts")
	}
	if o.maxUpload < 1 || o.maxStored < 1 {
		return o, errors.New("--max-upload and --max-stored must be positive")
	}
	if o.sessionTTL <= 0 || o.pendingTTL <= 0 {
		return o, errors.New("--session-ttl and --pending-ttl must be positive")
	}
	if o.publicURL == "" {
		o.publicURL = "http://" + o.listen
	}
	return o, nil
}

// newApp builds the app the options describe.
func newApp(o options, log *slog.Logger) (*App, error) {
	vopts := []verify.Option{verify.WithIssuer(o.issuer), verify.WithLeeway(o.leeway)}
	switch {
	case o.jwks != "":
		vopts = append(vopts, verify.WithJWKS(o.jwks))
	case o.keysURL != "":
		vopts = append(vopts, verify.WithKeysURL(o.keysURL))
	default:
		vopts = append(vopts, verify.WithPEMFile(o.keyFile))
	}
	v, err := verify.New(vopts...)
	if err != nil {
		return nil, err
	}
	b, err := os.ReadFile(o.devices)
	if err != nil {
		return nil, err
	}
	devices, err := ParseDevices(b)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", o.devices, err)
	}
	var users *Users
	if o.users != "" {
		b, err := os.ReadFile(o.users)
		if err != nil {
			return nil, err
		}
		if users, err = ParseUsers(b); err != nil {
			return nil, fmt.Errorf("%s: %w", o.users, err)
		}
	}
	var store UploadStore = NewMemoryUploads(o.maxStored)
	if o.dataDir != "" {
		if store, err = NewDiskUploads(o.dataDir); err != nil {
			return nil, err
		}
	}
	return NewApp(Config{
		Verifier: v, Devices: devices, Users: users,
		EndorseURL: o.endorseURL, PublicURL: o.publicURL,
		Uploads: store, MaxUpload: o.maxUpload,
		SessionTTL: o.sessionTTL, PendingTTL: o.pendingTTL,
		Log: log,
	})
}

// run is the program; it serves until ctx is done.
func run(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) error {
	if len(args) > 0 && args[0] == "hash-password" {
		return hashPassword(args[1:], stdin, stdout)
	}
	o, err := parseFlags(args, stderr)
	if err != nil {
		return err
	}
	log := slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: o.logLevel}))
	app, err := newApp(o, log)
	if err != nil {
		return err
	}
	ln, err := net.Listen("tcp", o.listen)
	if err != nil {
		return err
	}
	return serve(ctx, ln, app, log)
}

// serve runs an HTTP server on ln until ctx is done, then shuts it down.
func serve(ctx context.Context, ln net.Listener, h http.Handler, log *slog.Logger) error {
	srv := &http.Server{
		Handler:           h,
		ReadHeaderTimeout: 10 * time.Second,
		ReadTimeout:       5 * time.Minute, // uploads over slow links
		WriteTimeout:      5 * time.Minute,
		IdleTimeout:       2 * time.Minute,
		MaxHeaderBytes:    64 << 10,
		ErrorLog:          slog.NewLogLogger(log.Handler(), slog.LevelWarn),
	}
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	log.Info("relying-party: listening", "addr", ln.Addr().String())
	select {
	case err := <-errc:
		return fmt.Errorf("serve: %w", err)
	case <-ctx.Done():
	}
	sctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	err := srv.Shutdown(sctx)
	<-errc // Serve has returned ErrServerClosed
	if err != nil {
		return fmt.Errorf("shutdown: %w", err)
	}
	return nil
}

// hashPassword prints "NAME:hash" (or the hash alone) for the first line
// of stdin, with bcrypt at its default cost.
func hashPassword(args []string, stdin io.Reader, stdout io.Writer) error {
	if len(args) > 1 {
		return errors.New("hash-password: want at most one argument, the user name")
	}
	name := ""
	if len(args) == 1 {
		name = args[0]
		if err := checkUsername(name); err != nil {
			return fmt.Errorf("hash-password: %w", err)
		}
	}
	line, err := bufio.NewReader(io.LimitReader(stdin, 1024)).ReadString('\n')
	if err != nil && !errors.Is(err, io.EOF) {
		return fmt.Errorf("hash-password: reading the password: %w", err)
	}
	pw := strings.TrimRight(line, "\r\n")
	if pw == "" {
		return errors.New("hash-password: empty password on standard input")
	}
	h, err := bcrypt.GenerateFromPassword([]byte(pw), bcrypt.DefaultCost)
	if err != nil {
		return fmt.Errorf("hash-password: %w", err) // e.g. longer than 72 bytes
	}
	if name != "" {
		_, err = fmt.Fprintf(stdout, "%s:%s\n", name, h)
	} else {
		_, err = fmt.Fprintf(stdout, "%s\n", h)
	}
	return err
}
