package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/netip"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/crypto/bcrypt"

	"github.com/simgate/simgate/core/udr"
	"github.com/simgate/simgate/endorse"
	"github.com/simgate/simgate/endorse/verify"
)

// clock is a settable test clock.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func newClock() *clock { return &clock{t: time.Now()} }

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *clock) Set(t time.Time) {
	c.mu.Lock()
	c.t = t
	c.mu.Unlock()
}

func (c *clock) Advance(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

// A handset with a SIM, reaching the network from its own loopback address
// (its user-plane address: the issuer's resolver maps it to the session's
// IMSI and IMEI, as the real network does).
type handset struct {
	addr string
	imsi string
	imei string
}

// The test population. alice's phone and bob's phone are registered; the
// thief has alice's SIM in another handset; the stranger is not registered.
var (
	alicePhone = handset{"127.0.0.11", "001010000000001", "490154203237518"}
	bobPhone   = handset{"127.0.0.12", "001010000000002", "356938035643809"}
	thief      = handset{"127.0.0.13", alicePhone.imsi, "352099001761481"}
	stranger   = handset{"127.0.0.14", "001010000000009", "490154203237526"}
	// alice's SIM in her phone, as a network that reports the IMEISV
	// (TAC+SNR+SVN) would see it.
	aliceIMEISV = handset{"127.0.0.15", alicePhone.imsi, alicePhone.imei[:14] + "07"}
)

const devicesFile = `# imsi,imei[,user]
001010000000001,490154203237518,alice
001010000000002,356938035643809,bob
`

var (
	testUsersOnce sync.Once
	testUsers     []byte
)

// usersFile hashes the test passwords once, at bcrypt's least cost.
func usersFile(t testing.TB) []byte {
	testUsersOnce.Do(func() {
		var b strings.Builder
		for _, u := range [][2]string{{"alice", "alice-pw"}, {"bob", "bob-pw"}} {
			h, err := bcrypt.GenerateFromPassword([]byte(u[1]), bcrypt.MinCost)
			if err != nil {
				panic(err)
			}
			fmt.Fprintf(&b, "%s:%s\n", u[0], h)
		}
		testUsers = []byte(b.String())
	})
	return testUsers
}

// env is a simgate issuer (token endpoint and key endpoints) and the
// relying party, each on its own loopback server.
type env struct {
	t         testing.TB
	issClock  *clock // the issuer's clock
	appClock  *clock // the app's and its verifier's clock
	keys      *endorse.Keys
	issuer    *endorse.Issuer
	endorse   *httptest.Server // the device-facing token endpoint
	keysSrv   *httptest.Server // JWKS and PEM keys
	appSrv    *httptest.Server
	app       *App
	uploads   *MemoryUploads
	mu        sync.Mutex
	group     udr.EndorseConfig
	sessions  map[netip.Addr]handset
	appConfig func(*Config)
	alg       string
}

type envOption func(*env)

// withAlgorithm makes the issuer sign with alg (default RS256, as SORACOM).
func withAlgorithm(alg string) envOption { return func(e *env) { e.alg = alg } }

// withAppConfig changes the app's Config before it is built.
func withAppConfig(f func(*Config)) envOption { return func(e *env) { e.appConfig = f } }

func newEnv(t testing.TB, opts ...envOption) *env {
	t.Helper()
	e := &env{t: t, issClock: newClock(), appClock: newClock(), sessions: map[netip.Addr]handset{}}
	for _, o := range opts {
		o(e)
	}
	cfg := endorse.DefaultConfig()
	if e.alg != "" {
		cfg.Algorithm = e.alg
	}
	keys, err := endorse.OpenKeys(t.TempDir(), cfg, endorse.WithClock(e.issClock.Now))
	if err != nil {
		t.Fatal(err)
	}
	e.keys = keys
	e.issuer, err = endorse.NewIssuer(keys, cfg, endorse.WithClock(e.issClock.Now))
	if err != nil {
		t.Fatal(err)
	}
	for _, h := range []handset{alicePhone, bobPhone, thief, stranger, aliceIMEISV} {
		e.sessions[netip.MustParseAddr(h.addr)] = h
	}
	res := endorse.StoreResolver{
		Session: func(_ context.Context, src netip.Addr) (string, string, error) {
			e.mu.Lock()
			defer e.mu.Unlock()
			h, ok := e.sessions[src]
			if !ok {
				return "", "", fmt.Errorf("no session at %s: %w", src, endorse.ErrUnknownSource)
			}
			return h.imsi, h.imei, nil
		},
		SIM: func(imsi string) (udr.SIM, error) {
			return udr.SIM{IMSI: imsi, Group: udr.DefaultGroup, Status: udr.StatusActive}, nil
		},
	}
	groups := endorse.GroupsFunc(func(name string) (udr.Group, error) {
		e.mu.Lock()
		defer e.mu.Unlock()
		return udr.Group{Name: name, Endorse: e.group}, nil
	})
	e.endorse = httptest.NewServer(endorse.NewTokenHandler(e.issuer, res, groups, nil))
	t.Cleanup(e.endorse.Close)
	e.keysSrv = httptest.NewServer(endorse.NewKeysHandler(keys, cfg))
	t.Cleanup(e.keysSrv.Close)

	v, err := verify.New(verify.WithJWKS(e.keysSrv.URL+endorse.JWKSPath), verify.WithClock(e.appClock.Now))
	if err != nil {
		t.Fatal(err)
	}
	devices, err := ParseDevices([]byte(devicesFile))
	if err != nil {
		t.Fatal(err)
	}
	users, err := ParseUsers(usersFile(t))
	if err != nil {
		t.Fatal(err)
	}
	e.appSrv = httptest.NewUnstartedServer(nil)
	e.uploads = NewMemoryUploads(1 << 20)
	appCfg := Config{
		Verifier: v, Devices: devices, Users: users,
		EndorseURL: e.endorse.URL + "/",
		PublicURL:  "http://" + e.appSrv.Listener.Addr().String(),
		Uploads:    e.uploads, MaxUpload: 64 << 10,
		Now: e.appClock.Now,
	}
	if e.appConfig != nil {
		e.appConfig(&appCfg)
	}
	e.app, err = NewApp(appCfg)
	if err != nil {
		t.Fatal(err)
	}
	e.appSrv.Config.Handler = e.app
	e.appSrv.Start()
	t.Cleanup(e.appSrv.Close)

	// The group of a customer using all three flows: IMSI and IMEI in the
	// token, request parameters on (the nonce), and the app's two
	// callbacks authorised.
	e.setGroup(func(g *udr.EndorseConfig) {
		*g = udr.DefaultEndorse()
		g.ParametersToEndorse.RequestParameters = true
		g.AuthorizedRedirectURLs = []string{e.appSrv.URL + PathLoginCallback, e.appSrv.URL + Path2FACallback}
	})
	return e
}

func (e *env) setGroup(f func(*udr.EndorseConfig)) {
	e.mu.Lock()
	defer e.mu.Unlock()
	f(&e.group)
}

// device is an HTTP client (cookie jar, redirects followed) dialling from
// the handset's address.
type device struct {
	e  *env
	h  handset
	c  *http.Client
	tr *http.Transport
}

func (e *env) device(h handset) *device {
	e.t.Helper()
	local := &net.TCPAddr{IP: net.ParseIP(h.addr)}
	// Linux routes all of 127.0.0.0/8 to loopback; elsewhere the address
	// may not exist.
	if ln, err := net.ListenTCP("tcp", local); err != nil {
		e.t.Skipf("cannot use loopback address %s: %v", h.addr, err)
	} else {
		ln.Close()
	}
	jar, err := cookiejar.New(nil)
	if err != nil {
		e.t.Fatal(err)
	}
	tr := &http.Transport{DialContext: (&net.Dialer{LocalAddr: local, Timeout: 5 * time.Second}).DialContext}
	e.t.Cleanup(tr.CloseIdleConnections)
	return &device{e: e, h: h, tr: tr, c: &http.Client{Jar: jar, Transport: tr, Timeout: 10 * time.Second}}
}

// answer is a decoded JSON answer.
type answer struct {
	status   int
	body     map[string]any
	header   http.Header
	finalURL *url.URL
}

func (a answer) str(k string) string {
	s, _ := a.body[k].(string)
	return s
}

func (d *device) do(req *http.Request) answer {
	d.e.t.Helper()
	resp, err := d.c.Do(req)
	if err != nil {
		d.e.t.Fatalf("%s %s: %v", req.Method, req.URL, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		d.e.t.Fatal(err)
	}
	a := answer{status: resp.StatusCode, header: resp.Header, finalURL: resp.Request.URL}
	if len(b) > 0 {
		if err := json.Unmarshal(b, &a.body); err != nil {
			d.e.t.Fatalf("%s %s: answer %d is not a JSON object: %v: %q", req.Method, req.URL, resp.StatusCode, err, b)
		}
	}
	return a
}

func (d *device) get(rawURL string) answer {
	d.e.t.Helper()
	req, err := http.NewRequest(http.MethodGet, rawURL, nil)
	if err != nil {
		d.e.t.Fatal(err)
	}
	return d.do(req)
}

func (d *device) post(rawURL, contentType string, body io.Reader, hdr map[string]string) answer {
	d.e.t.Helper()
	req, err := http.NewRequest(http.MethodPost, rawURL, body)
	if err != nil {
		d.e.t.Fatal(err)
	}
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	return d.do(req)
}

func (d *device) password(user, pass string) answer {
	d.e.t.Helper()
	return d.post(d.e.appSrv.URL+PathPassword, "application/x-www-form-urlencoded",
		strings.NewReader(url.Values{"username": {user}, "password": {pass}}.Encode()), nil)
}

// token asks Endorse for a token (JSON mode), as a device on its SIM
// session does.
func (d *device) token() string {
	d.e.t.Helper()
	a := d.get(d.e.endorse.URL + "/")
	if a.status != http.StatusOK || a.str("token") == "" {
		d.e.t.Fatalf("endorse: %d %v", a.status, a.body)
	}
	return a.str("token")
}

// stopAt makes the device stop following redirects at the first request to
// path, and returns a function giving that request's URL.
func (d *device) stopAt(path string) func() *url.URL {
	var mu sync.Mutex
	var at *url.URL
	d.c.CheckRedirect = func(req *http.Request, via []*http.Request) error {
		if req.URL.Path == path {
			mu.Lock()
			at = req.URL
			mu.Unlock()
			return http.ErrUseLastResponse
		}
		if len(via) >= 10 {
			return fmt.Errorf("too many redirects")
		}
		return nil
	}
	return func() *url.URL {
		mu.Lock()
		defer mu.Unlock()
		return at
	}
}

// follow makes the device follow redirects again.
func (d *device) follow() { d.c.CheckRedirect = nil }

func (d *device) upload(tok string, body string) answer {
	d.e.t.Helper()
	hdr := map[string]string{}
	if tok != "" {
		hdr["Authorization"] = "Bearer " + tok
	}
	return d.post(d.e.appSrv.URL+PathUpload, "application/octet-stream", strings.NewReader(body), hdr)
}

func wantStatus(t testing.TB, what string, a answer, status int, code string) {
	t.Helper()
	if a.status != status || (code != "" && a.str("error") != code) {
		t.Fatalf("%s: got %d %v, want %d %s", what, a.status, a.body, status, code)
	}
}

func wantReason(t testing.TB, what string, a answer, substr string) {
	t.Helper()
	if !strings.Contains(a.str("reason"), substr) {
		t.Fatalf("%s: reason %q does not contain %q", what, a.str("reason"), substr)
	}
}
