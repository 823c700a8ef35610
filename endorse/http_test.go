package endorse

import (
	"encoding/json"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/simgate/simgate/core/udr"
)

const (
	simAddr      = "10.45.0.2"   // a UE on the user plane
	inactiveAddr = "10.45.0.3"   // a UE whose SIM is inactive
	otherAddr    = "10.45.0.4"   // a UE in group "other"
	strangerAddr = "192.0.2.200" // no session
)

type env struct {
	clk   *clock
	store *memStore
	is    *Issuer
	h     *TokenHandler
}

func newEnv(t testing.TB, cfg Config) *env {
	t.Helper()
	clk := newClock()
	k, _ := newTestKeys(t, cfg, clk)
	is, err := NewIssuer(k, cfg, WithClock(clk.Now))
	if err != nil {
		t.Fatal(err)
	}
	st := newMemStore()
	st.attach(simAddr, udr.SIM{IMSI: "295050913244223", MSISDN: "818012345678", SIMID: "8981100001234567890"}, "867698047437580")
	st.attach(inactiveAddr, udr.SIM{IMSI: "295050913244224", Status: udr.StatusInactive}, "")
	st.attach(otherAddr, udr.SIM{IMSI: "295050913244225", Group: "other"}, "")
	return &env{clk: clk, store: st, is: is, h: NewTokenHandler(is, st.resolver(), st, nil)}
}

type req struct {
	method, target, from string
	body, ctype          string
	hdr                  map[string]string
}

func (e *env) do(t testing.TB, r req) *httptest.ResponseRecorder {
	t.Helper()
	if r.method == "" {
		r.method = http.MethodGet
	}
	if r.target == "" {
		r.target = "/"
	}
	if r.from == "" {
		r.from = simAddr
	}
	var body io.Reader
	if r.body != "" {
		body = strings.NewReader(r.body)
	}
	hr := httptest.NewRequest(r.method, "http://endorse.simgate"+r.target, body)
	hr.RemoteAddr = net.JoinHostPort(r.from, "40000")
	if r.ctype != "" {
		hr.Header.Set("Content-Type", r.ctype)
	}
	for k, v := range r.hdr {
		hr.Header.Set(k, v)
	}
	w := httptest.NewRecorder()
	e.h.ServeHTTP(w, hr)
	return w
}

// token checks a 200 {"token":...} answer and verifies the token.
func (e *env) token(t testing.TB, w *httptest.ResponseRecorder) decoded {
	t.Helper()
	if w.Code != http.StatusOK {
		t.Fatalf("status %d: %s", w.Code, w.Body)
	}
	if ct := w.Header().Get("Content-Type"); ct != "application/json" {
		t.Errorf("Content-Type %q", ct)
	}
	var out map[string]string
	dec := json.NewDecoder(w.Body)
	dec.DisallowUnknownFields()
	if err := dec.Decode(&out); err != nil || len(out) != 1 || out["token"] == "" {
		t.Fatalf("body is not {\"token\":...}: %v %v", out, err)
	}
	return verify(t, e.is.keys, out["token"], e.clk.Now())
}

func (e *env) enable(name string, f func(*udr.EndorseConfig)) {
	g := udr.DefaultEndorse()
	f(&g)
	e.store.setGroup(name, g)
}

func TestHTTPDefaultGroup(t *testing.T) {
	e := newEnv(t, testConfig(RS256))
	for _, m := range []string{http.MethodGet, http.MethodPost} {
		d := e.token(t, e.do(t, req{method: m}))
		// Out of the box: imsi and imei, 600 s.
		want := map[string]any{"imsi": "295050913244223", "imei": "867698047437580"}
		if !reflect.DeepEqual(d.claim, want) || d.claims["exp"].(float64)-d.claims["iat"].(float64) != 600 {
			t.Errorf("%s: claims %v", m, d.claims)
		}
	}
	// No IMEI known: left out.
	d := e.token(t, e.do(t, req{from: otherAddr}))
	if !reflect.DeepEqual(d.claim, map[string]any{"imsi": "295050913244225"}) {
		t.Errorf("claim without IMEI %v", d.claim)
	}
}

// TestHTTPRequestParameters covers each way parameters arrive.
func TestHTTPRequestParameters(t *testing.T) {
	e := newEnv(t, testConfig(ES256))
	e.enable(udr.DefaultGroup, func(g *udr.EndorseConfig) { g.ParametersToEndorse.RequestParameters = true })
	tests := []struct {
		name string
		r    req
		want map[string]any
	}{
		{"none", req{}, map[string]any{}},
		{"GET query", req{target: "/?username=sora&sessionId=123"}, map[string]any{"username": "sora", "sessionId": "123"}},
		{"GET query, first value wins", req{target: "/?a=1&a=2"}, map[string]any{"a": "1"}},
		{"GET query escaped", req{target: "/?na%20me=v%26w+x"}, map[string]any{"na me": "v&w x"}},
		{"POST JSON", req{method: "POST", body: `{"username":"sora","sessionId":"123"}`, ctype: "application/json"},
			map[string]any{"username": "sora", "sessionId": "123"}},
		{"POST JSON scalars", req{method: "POST", body: ` {"n":12.50,"t":true,"f":false,"s":"x"} `, ctype: "application/json; charset=utf-8"},
			map[string]any{"n": "12.50", "t": "true", "f": "false", "s": "x"}},
		{"POST JSON duplicate keeps first", req{method: "POST", body: `{"a":"1","a":"2"}`, ctype: "application/json"}, map[string]any{"a": "1"}},
		{"POST form", req{method: "POST", body: "username=sora&x=%E6%97%A5", ctype: "application/x-www-form-urlencoded"},
			map[string]any{"username": "sora", "x": "日"}},
		{"POST form and query, body wins", req{method: "POST", target: "/?a=q&b=q", body: "a=body", ctype: "application/x-www-form-urlencoded"},
			map[string]any{"a": "body", "b": "q"}},
		{"POST empty body with a type", req{method: "POST", target: "/?a=1", ctype: "text/plain"}, map[string]any{"a": "1"}},
		{"GET ignores a body", req{body: "{", ctype: "application/json"}, map[string]any{}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d := e.token(t, e.do(t, tt.r))
			if got := d.claim["requestParameters"]; !reflect.DeepEqual(got, tt.want) {
				t.Fatalf("requestParameters %v, want %v", got, tt.want)
			}
		})
	}
	// Disabled: parameters are not copied.
	e.enable(udr.DefaultGroup, func(g *udr.EndorseConfig) {})
	d := e.token(t, e.do(t, req{target: "/?username=sora"}))
	if _, ok := d.claim["requestParameters"]; ok {
		t.Errorf("requestParameters present while disabled: %v", d.claim)
	}
}

func TestHTTPGroupSettings(t *testing.T) {
	e := newEnv(t, testConfig(ES256))
	e.store.setGroup("other", udr.EndorseConfig{
		Enabled:             true,
		ParametersToEndorse: udr.EndorseParams{SIMID: true, MSISDN: true},
		TokenTimeoutSeconds: 180,
	})
	e.store.attach("10.45.0.9", udr.SIM{IMSI: "295050913244229", MSISDN: "818000000009", SIMID: "8981100000000000009", Group: "other"}, "")
	d := e.token(t, e.do(t, req{from: "10.45.0.9"}))
	if !reflect.DeepEqual(d.claim, map[string]any{"simId": "8981100000000000009", "msisdn": "818000000009"}) {
		t.Errorf("claim %v", d.claim)
	}
	if d.claims["exp"].(float64)-d.claims["iat"].(float64) != 180 {
		t.Errorf("lifetime %v", d.claims)
	}
	// The default group is untouched by "other".
	d = e.token(t, e.do(t, req{}))
	if _, ok := d.claim["imei"]; !ok {
		t.Errorf("default group changed: %v", d.claim)
	}
}

func TestHTTPRedirect(t *testing.T) {
	cfg := testConfig(ES256)
	e := newEnv(t, cfg)
	e.enable(udr.DefaultGroup, func(g *udr.EndorseConfig) {
		g.AuthorizedRedirectURLs = []string{"https://soracom.io", "http://localhost:3000/login", "https://app.example/cb/"}
		g.ParametersToEndorse.RequestParameters = true
	})
	tests := []struct {
		name   string
		r      req
		status int
		prefix string // of Location, before the token
		params map[string]any
	}{
		{"GET", req{target: "/?redirect_url=" + url.QueryEscape("http://localhost:3000/login")}, 302,
			"http://localhost:3000/login?soracom_endorse_token=", map[string]any{}},
		{"GET, URL with a query", req{target: "/?username=sora&redirect_url=" + url.QueryEscape("http://localhost:3000/login?next=/a&x=1")}, 302,
			"http://localhost:3000/login?next=/a&x=1&soracom_endorse_token=", map[string]any{"username": "sora"}},
		{"GET, fragment kept", req{target: "/?redirect_url=" + url.QueryEscape("https://soracom.io/#top")}, 302,
			"https://soracom.io/?soracom_endorse_token=", map[string]any{}},
		{"GET, host case and default port", req{target: "/?redirect_url=" + url.QueryEscape("HTTPS://SORACOM.IO:443")}, 302,
			"https://SORACOM.IO:443?soracom_endorse_token=", map[string]any{}},
		{"POST form (spec 1.4)", req{method: "POST", target: "/?redirect_url=" + url.QueryEscape("https://app.example/cb/"),
			body: "username=sora", ctype: "application/x-www-form-urlencoded"}, 303,
			"https://app.example/cb/?soracom_endorse_token=", map[string]any{"username": "sora"}},
		{"POST JSON, redirect_url in body", req{method: "POST", body: `{"redirect_url":"https://soracom.io/","u":"1"}`, ctype: "application/json"}, 303,
			"https://soracom.io/?soracom_endorse_token=", map[string]any{"u": "1"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			w := e.do(t, tt.r)
			if w.Code != tt.status {
				t.Fatalf("status %d: %s", w.Code, w.Body)
			}
			loc := w.Header().Get("Location")
			tok, ok := strings.CutPrefix(loc, tt.prefix)
			if !ok {
				t.Fatalf("Location %s, want prefix %s", loc, tt.prefix)
			}
			tok, frag, _ := strings.Cut(tok, "#")
			if strings.Contains(tt.r.target, "%23top") && frag != "top" {
				t.Errorf("fragment lost: %s", loc)
			}
			lu, err := url.Parse(loc)
			if err != nil || lu.Query().Get(TokenParam) != tok {
				t.Fatalf("token not a query parameter of %s", loc)
			}
			d := verify(t, e.is.keys, tok, e.clk.Now())
			// redirect_url is never a request parameter.
			if got := d.claim["requestParameters"]; !reflect.DeepEqual(got, tt.params) {
				t.Errorf("requestParameters %v, want %v", got, tt.params)
			}
		})
	}
}

func TestHTTPRedirectStatusConfigurable(t *testing.T) {
	cfg := testConfig(ES256)
	cfg.RedirectStatusGET, cfg.RedirectStatusPOST = 307, 307
	e := newEnv(t, cfg)
	e.enable(udr.DefaultGroup, func(g *udr.EndorseConfig) { g.AuthorizedRedirectURLs = []string{"https://soracom.io/"} })
	for _, m := range []string{"GET", "POST"} {
		if w := e.do(t, req{method: m, target: "/?redirect_url=https://soracom.io/"}); w.Code != 307 {
			t.Errorf("%s: status %d", m, w.Code)
		}
	}
}

func TestMatchRedirect(t *testing.T) {
	allowed := []string{"https://soracom.io", "http://localhost:3000/app", "https://x.example:8443/a/", "::bad", "ftp://files.example/"}
	tests := []struct {
		url          string
		exact, prefx bool
	}{
		{"https://soracom.io", true, true},
		{"https://soracom.io/", true, true},
		{"https://soracom.io:443/", true, true},
		{"https://Soracom.IO/?a=b#c", true, true},
		{"https://soracom.io/login", false, true},
		{"http://soracom.io/", false, false},           // scheme differs
		{"https://soracom.io:8443/", false, false},     // port differs
		{"https://soracom.io.evil.com/", false, false}, // host differs
		{"https://evil.com/soracom.io", false, false},
		{"https://soracom.io@evil.com/", false, false},   // user information
		{"https://evil.com\\@soracom.io/", false, false}, // a browser's host is evil.com
		{"https://evil.com%5C@soracom.io/", false, false},
		{"https://soracom.io/a/../b", false, false}, // dot segments
		{"https://soracom.io/a/%2e%2e/b", false, false},
		{"https://soracom.io//evil.com", false, false},
		{"https://soracom.io/ x", false, false},
		{"//soracom.io/", false, false}, // not absolute
		{"/login", false, false},
		{"javascript:alert(1)", false, false},
		{"", false, false},
		{"http://localhost:3000/app", true, true},
		{"http://localhost:3000/app/", false, true},
		{"http://localhost:3000/app/x?y", false, true},
		{"http://localhost:3000/apple", false, false}, // not at a '/' boundary
		{"http://localhost:3000/", false, false},
		{"https://x.example:8443/a/", true, true},
		{"https://x.example:8443/a", false, false},
		{"https://x.example:8443/a/b", false, true},
		{"ftp://files.example/", false, false},
	}
	for _, tt := range tests {
		for mode, want := range map[string]bool{MatchExact: tt.exact, MatchPrefix: tt.prefx} {
			_, err := matchRedirect(tt.url, allowed, mode)
			if (err == nil) != want {
				t.Errorf("%s %q: accepted=%v, want %v (%v)", mode, tt.url, err == nil, want, err)
			}
		}
	}
	if _, err := matchRedirect("https://soracom.io/", nil, MatchExact); err == nil {
		t.Error("accepted with no authorised URLs")
	}
}

// FuzzMatchRedirect: whatever is accepted has an authorised scheme and host,
// no user information, and survives a browser-like reparse unchanged.
func FuzzMatchRedirect(f *testing.F) {
	for _, s := range []string{"https://soracom.io/", "https://soracom.io@evil/", "https://evil\\@soracom.io/", "http://localhost:3000/app/x", "https://soracom.io/%2e%2e/"} {
		f.Add(s)
	}
	allowed := []string{"https://soracom.io/", "http://localhost:3000/app"}
	f.Fuzz(func(t *testing.T, s string) {
		for _, mode := range []string{MatchExact, MatchPrefix} {
			u, err := matchRedirect(s, allowed, mode)
			if err != nil {
				continue
			}
			if u.User != nil || strings.ContainsAny(s, "\\ \t\r\n") {
				t.Fatalf("%s accepted %q", mode, s)
			}
			h := hostPort(u)
			if !(u.Scheme == "https" && h == "soracom.io") && !(u.Scheme == "http" && h == "localhost:3000") {
				t.Fatalf("%s accepted %q with host %s", mode, s, h)
			}
			back, err := url.Parse(u.String())
			if err != nil || hostPort(back) != h || back.Scheme != u.Scheme {
				t.Fatalf("%q reparses as %v", s, back)
			}
		}
	})
}

func TestHTTPCORS(t *testing.T) {
	e := newEnv(t, testConfig(ES256))
	e.enable(udr.DefaultGroup, func(g *udr.EndorseConfig) { g.AllowOrigin = "https://soracom.io" })
	w := e.do(t, req{hdr: map[string]string{"Origin": "https://soracom.io"}})
	e.token(t, w)
	if got := w.Header().Get("Access-Control-Allow-Origin"); got != "https://soracom.io" {
		t.Errorf("Allow-Origin %q", got)
	}
	// Preflight.
	w = e.do(t, req{method: "OPTIONS", hdr: map[string]string{
		"Origin": "https://soracom.io", "Access-Control-Request-Method": "POST", "Access-Control-Request-Headers": "content-type",
	}})
	h := w.Header()
	if w.Code != http.StatusNoContent || h.Get("Access-Control-Allow-Origin") != "https://soracom.io" ||
		!strings.Contains(h.Get("Access-Control-Allow-Methods"), "POST") || h.Get("Access-Control-Allow-Headers") != "content-type" ||
		h.Get("Access-Control-Max-Age") != "600" || w.Body.Len() != 0 {
		t.Errorf("preflight: %d %v %q", w.Code, h, w.Body)
	}
	// Errors to the group's SIMs carry it too, so that a page can read them.
	w = e.do(t, req{method: "POST", body: "{", ctype: "application/json"})
	if w.Code != 400 || w.Header().Get("Access-Control-Allow-Origin") != "https://soracom.io" {
		t.Errorf("error answer: %d %v", w.Code, w.Header())
	}
	// A group without allowOrigin sends no CORS headers.
	w = e.do(t, req{from: otherAddr, hdr: map[string]string{"Origin": "https://soracom.io"}})
	e.token(t, w)
	if w.Header().Get("Access-Control-Allow-Origin") != "" {
		t.Error("CORS header without allowOrigin")
	}
	w = e.do(t, req{method: "OPTIONS", from: otherAddr})
	if w.Code != http.StatusNoContent || w.Header().Get("Access-Control-Allow-Origin") != "" || w.Header().Get("Allow") == "" {
		t.Errorf("preflight without allowOrigin: %d %v", w.Code, w.Header())
	}
}

func TestHTTPErrors(t *testing.T) {
	cfg := testConfig(ES256)
	cfg.MaxBodyBytes = 64
	e := newEnv(t, cfg)
	e.enable(udr.DefaultGroup, func(g *udr.EndorseConfig) { g.AuthorizedRedirectURLs = []string{"https://soracom.io/"} })
	e.store.setGroup("other", udr.EndorseConfig{Enabled: false, TokenTimeoutSeconds: 600})
	e.store.attach("10.45.0.10", udr.SIM{IMSI: "295050913244230", Group: "broken"}, "")
	e.store.attach("10.45.0.11", udr.SIM{IMSI: "295050913244231", Group: "toolong"}, "")
	e.store.setGroup("toolong", udr.EndorseConfig{Enabled: true, TokenTimeoutSeconds: cfg.MaxTokenTimeout + 1})
	tests := []struct {
		name   string
		r      req
		status int
		code   string
	}{
		{"unknown source", req{from: strangerAddr}, 403, "END0001"},
		{"unknown source POST", req{method: "POST", from: strangerAddr, body: "a=b", ctype: "application/x-www-form-urlencoded"}, 403, "END0001"},
		{"unknown source preflight", req{method: "OPTIONS", from: strangerAddr}, 403, "END0001"},
		{"inactive SIM", req{from: inactiveAddr}, 403, "END0002"},
		{"Endorse disabled", req{from: otherAddr}, 403, "END0003"},
		{"unauthorised redirect", req{target: "/?redirect_url=https://evil.example/"}, 400, "END0004"},
		{"redirect not a URL", req{target: "/?redirect_url=%25zz"}, 400, "END0004"},
		{"relative redirect", req{target: "/?redirect_url=/x"}, 400, "END0004"},
		{"malformed query", req{target: "/?a=%zz"}, 400, "END0005"},
		{"malformed JSON", req{method: "POST", body: `{"a":`, ctype: "application/json"}, 400, "END0005"},
		{"JSON array", req{method: "POST", body: `["a"]`, ctype: "application/json"}, 400, "END0005"},
		{"JSON nested", req{method: "POST", body: `{"a":{"b":"c"}}`, ctype: "application/json"}, 400, "END0005"},
		{"JSON null", req{method: "POST", body: `{"a":null}`, ctype: "application/json"}, 400, "END0005"},
		{"JSON trailing data", req{method: "POST", body: `{"a":"b"} {}`, ctype: "application/json"}, 400, "END0005"},
		{"malformed form", req{method: "POST", body: "a=%zz", ctype: "application/x-www-form-urlencoded"}, 400, "END0005"},
		{"oversized body", req{method: "POST", body: "a=" + strings.Repeat("x", 63), ctype: "application/x-www-form-urlencoded"}, 413, "END0006"},
		{"PUT", req{method: "PUT"}, 405, "END0007"},
		{"DELETE", req{method: "DELETE"}, 405, "END0007"},
		{"HEAD", req{method: "HEAD"}, 405, "END0007"},
		{"text body", req{method: "POST", body: "hello", ctype: "text/plain"}, 415, "END0008"},
		{"body without type", req{method: "POST", body: "a=b"}, 415, "END0008"},
		{"store failure", req{from: "10.45.0.10"}, 500, "END0009"},
		{"lifetime over the maximum", req{from: "10.45.0.11"}, 500, "END0009"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			w := e.do(t, tt.r)
			if w.Code != tt.status {
				t.Fatalf("status %d, want %d: %s", w.Code, tt.status, w.Body)
			}
			if tt.status == 405 && w.Header().Get("Allow") != "GET, POST, OPTIONS" {
				t.Errorf("Allow %q", w.Header().Get("Allow"))
			}
			if w.Header().Get("Location") != "" {
				t.Error("error answer redirects")
			}
			if tt.r.method == "HEAD" {
				return
			}
			var body map[string]string
			if err := json.Unmarshal(w.Body.Bytes(), &body); err != nil || body["code"] != tt.code || body["message"] == "" || len(body) != 2 {
				t.Fatalf("body %s, want code %s", w.Body, tt.code)
			}
			if strings.Contains(w.Body.String(), "eyJ") {
				t.Error("error answer carries a token")
			}
		})
	}
	// The body limit admits exactly max_body_bytes.
	if w := e.do(t, req{method: "POST", body: "a=" + strings.Repeat("x", 62), ctype: "application/x-www-form-urlencoded"}); w.Code != 200 {
		t.Errorf("body of max_body_bytes refused: %d", w.Code)
	}
}

// FuzzTokenRequest sends arbitrary query strings and bodies: the answer is a
// verifiable token, a redirect with one, or a JSON error; never a panic.
func FuzzTokenRequest(f *testing.F) {
	f.Add("GET", "", "", "")
	f.Add("POST", "a=b", `{"username":"sora","n":1}`, "application/json")
	f.Add("POST", "redirect_url=https://soracom.io/", "x=%41&y", "application/x-www-form-urlencoded")
	f.Add("POST", "a=%zz", `{"a":[1]}`, "application/json;charset=x")
	f.Add("OPTIONS", "", "", "")
	e := newEnv(f, testConfig(ES256))
	e.enable(udr.DefaultGroup, func(g *udr.EndorseConfig) {
		g.ParametersToEndorse.RequestParameters = true
		g.AuthorizedRedirectURLs = []string{"https://soracom.io/"}
	})
	f.Fuzz(func(t *testing.T, method, query, body, ctype string) {
		if method != "GET" && method != "POST" && method != "OPTIONS" {
			method = "GET"
		}
		hr := httptest.NewRequest(method, "http://endorse.simgate/", strings.NewReader(body))
		hr.URL.RawQuery = query
		hr.RemoteAddr = simAddr + ":1"
		hr.Header.Set("Content-Type", ctype)
		w := httptest.NewRecorder()
		e.h.ServeHTTP(w, hr)
		switch {
		case w.Code == 200:
			var out map[string]string
			if err := json.Unmarshal(w.Body.Bytes(), &out); err != nil {
				t.Fatalf("200 with %s", w.Body)
			}
			if _, err := verifyErr(e.is.keys, out["token"], e.clk.Now()); err != nil {
				t.Fatal(err)
			}
		case w.Code == 204 && method == "OPTIONS":
		case w.Code >= 300 && w.Code < 400:
			lu, err := url.Parse(w.Header().Get("Location"))
			if err != nil || lu.Host != "soracom.io" {
				t.Fatalf("redirect to %q", w.Header().Get("Location"))
			}
			if _, err := verifyErr(e.is.keys, lu.Query().Get(TokenParam), e.clk.Now()); err != nil {
				t.Fatal(err)
			}
		default:
			var out map[string]string
			if err := json.Unmarshal(w.Body.Bytes(), &out); err != nil || out["code"] == "" || w.Code < 400 || w.Code == 500 {
				t.Fatalf("%d %s", w.Code, w.Body)
			}
		}
	})
}

// TestHTTPLoopback runs the endpoint and the key endpoints on real loopback
// sockets; the resolver knows the client by its source address (127.0.0.2),
// and 127.0.0.3 has no session.
func TestHTTPLoopback(t *testing.T) {
	e := newEnv(t, testConfig(RS256))
	e.store.attach("127.0.0.2", udr.SIM{IMSI: "001010000000001"}, "490154203237518")
	tokSrv := httptest.NewServer(e.h)
	defer tokSrv.Close()
	keySrv := httptest.NewServer(NewKeysHandler(e.is.keys, e.is.cfg))
	defer keySrv.Close()

	client := func(src string) *http.Client {
		d := &net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(src)}, Timeout: 5 * time.Second}
		return &http.Client{Transport: &http.Transport{DialContext: d.DialContext}, Timeout: 10 * time.Second}
	}
	resp, err := client("127.0.0.2").Get(tokSrv.URL + "/?username=x")
	if err != nil {
		t.Fatal(err)
	}
	var out struct{ Token string }
	err = json.NewDecoder(resp.Body).Decode(&out)
	resp.Body.Close()
	if err != nil || resp.StatusCode != 200 {
		t.Fatalf("%d %v", resp.StatusCode, err)
	}
	d := verify(t, e.is.keys, out.Token, e.clk.Now())
	if d.claim["imsi"] != "001010000000001" || d.claim["imei"] != "490154203237518" {
		t.Errorf("claim %v", d.claim)
	}
	// The key is fetched as a verifier would (spec 1.9).
	resp, err = http.Get(keySrv.URL + PublicKeysPath + d.kid)
	if err != nil {
		t.Fatal(err)
	}
	pemBytes, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if want, _ := e.is.keys.PublicKeyPEM(d.kid); resp.StatusCode != 200 || string(pemBytes) != string(want) {
		t.Errorf("key endpoint: %d %s", resp.StatusCode, pemBytes)
	}

	resp, err = client("127.0.0.3").Get(tokSrv.URL + "/")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 403 {
		t.Errorf("unknown source: %d", resp.StatusCode)
	}
}
