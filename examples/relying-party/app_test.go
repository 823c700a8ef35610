package main

import (
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/simgate/simgate/core/udr"
	"github.com/simgate/simgate/endorse"
)

// The upload gate: a token from the SIM session, then an upload over any
// link with the token as a Bearer credential.
func TestUploadGate(t *testing.T) {
	e := newEnv(t)
	tests := []struct {
		name   string
		h      handset
		status int
		code   string
		reason string
	}{
		{"registered pair", alicePhone, http.StatusCreated, "", ""},
		{"other registered pair", bobPhone, http.StatusCreated, "", ""},
		{"IMEISV of a registered handset", aliceIMEISV, http.StatusCreated, "", ""},
		{"stolen SIM in another handset", thief, http.StatusForbidden, "imei_mismatch", "IMEI " + thief.imei + " is not registered for IMSI " + thief.imsi},
		{"unregistered pair", stranger, http.StatusForbidden, "device_not_registered", "not registered"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			d := e.device(tc.h)
			body := "photo of " + tc.name
			a := d.upload(d.token(), body)
			wantStatus(t, "upload", a, tc.status, tc.code)
			if tc.status != http.StatusCreated {
				wantReason(t, "upload", a, tc.reason)
				return
			}
			sum := sha256.Sum256([]byte(body))
			if a.str("imsi") != tc.h.imsi || a.str("imei") != tc.h.imei || a.str("sha256") != hex.EncodeToString(sum[:]) || a.body["bytes"] != float64(len(body)) {
				t.Fatalf("upload answer %v", a.body)
			}
			u, data, ok := e.uploads.Get(a.str("id"))
			if !ok || string(data) != body || u.IMSI != tc.h.imsi || u.TokenID == "" {
				t.Fatalf("stored upload %+v %q %v", u, data, ok)
			}
		})
	}
}

// The token may also come as ?soracom_endorse_token=, and one token serves
// several uploads during its lifetime.
func TestUploadTokenInQueryAndReuse(t *testing.T) {
	e := newEnv(t)
	d := e.device(alicePhone)
	tok := d.token()
	for i := range 2 {
		a := d.post(e.appSrv.URL+PathUpload+"?soracom_endorse_token="+tok, "image/jpeg", strings.NewReader("jpeg"), nil)
		wantStatus(t, "upload "+string(rune('1'+i)), a, http.StatusCreated, "")
		if a.str("content_type") != "image/jpeg" {
			t.Fatalf("content type %v", a.body)
		}
	}
}

func TestUploadRefusals(t *testing.T) {
	e := newEnv(t)
	d := e.device(alicePhone)
	tok := d.token()

	a := d.upload("", "data")
	wantStatus(t, "no token", a, http.StatusUnauthorized, "missing_token")
	if !strings.HasPrefix(a.header.Get("WWW-Authenticate"), "Bearer") {
		t.Fatalf("no token: WWW-Authenticate %q", a.header.Get("WWW-Authenticate"))
	}

	a = d.upload(tok, strings.Repeat("x", 64<<10+1))
	wantStatus(t, "too large", a, http.StatusRequestEntityTooLarge, "too_large")
	a = d.upload(tok, strings.Repeat("x", 64<<10))
	wantStatus(t, "at the limit", a, http.StatusCreated, "")

	// The token in a form body would be the file: refused.
	a = d.post(e.appSrv.URL+PathUpload, "application/x-www-form-urlencoded", strings.NewReader("soracom_endorse_token="+tok), nil)
	wantStatus(t, "token in a form body", a, http.StatusUnauthorized, "missing_token")
	// With the token in the header, a form content type (curl's default)
	// is only a label: the body is stored as sent.
	a = d.post(e.appSrv.URL+PathUpload, "application/x-www-form-urlencoded", strings.NewReader("a=b&c"),
		map[string]string{"Authorization": "Bearer " + tok})
	wantStatus(t, "form-labelled upload", a, http.StatusCreated, "")
	if _, data, _ := e.uploads.Get(a.str("id")); string(data) != "a=b&c" {
		t.Fatalf("stored %q", data)
	}

	a = d.get(e.appSrv.URL + PathUpload)
	wantStatus(t, "GET", a, http.StatusMethodNotAllowed, "method_not_allowed")
	if a.header.Get("Allow") != "POST" {
		t.Fatalf("Allow %q", a.header.Get("Allow"))
	}

	a = d.get(e.appSrv.URL + "/nope")
	wantStatus(t, "unknown path", a, http.StatusNotFound, "not_found")
}

func TestUploadStoreFull(t *testing.T) {
	e := newEnv(t, withAppConfig(func(c *Config) { c.Uploads = NewMemoryUploads(10) }))
	d := e.device(alicePhone)
	tok := d.token()
	wantStatus(t, "first", d.upload(tok, "0123456789"), http.StatusCreated, "")
	wantStatus(t, "second", d.upload(tok, "x"), http.StatusInsufficientStorage, "store_full")
}

// Tokens that must not pass, whatever their device.
func TestForgedTokens(t *testing.T) {
	e := newEnv(t)
	thiefDev := e.device(thief)
	stolen := thiefDev.token() // a genuine token naming the thief's IMEI
	parts := strings.Split(stolen, ".")

	// The thief edits the IMEI to alice's registered one.
	payload, err := base64.RawURLEncoding.DecodeString(parts[1])
	if err != nil {
		t.Fatal(err)
	}
	edited := strings.Replace(string(payload), thief.imei, alicePhone.imei, 1)
	if edited == string(payload) {
		t.Fatal("the payload does not contain the thief's IMEI")
	}
	tampered := parts[0] + "." + base64.RawURLEncoding.EncodeToString([]byte(edited)) + "." + parts[2]

	// An attacker with its own simgate: a valid token under another key.
	cfg := endorse.DefaultConfig()
	cfg.Algorithm = endorse.ES256
	otherKeys, err := endorse.OpenKeys(t.TempDir(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	other, err := endorse.NewIssuer(otherKeys, cfg)
	if err != nil {
		t.Fatal(err)
	}
	own, err := other.Issue(endorse.Identity{IMSI: alicePhone.imsi, IMEI: alicePhone.imei, Active: true}, udr.DefaultEndorse(), nil)
	if err != nil {
		t.Fatal(err)
	}
	ownParts := strings.Split(own, ".")
	// ... and the same token claiming the real key's kid.
	realHeader := base64.RawURLEncoding.EncodeToString([]byte(`{"kid":"` + e.keys.Signing().KID + `","alg":"ES256"}`))
	// A token signed by the real key but for another issuer.
	wrongIssCfg := endorse.DefaultConfig()
	wrongIssCfg.Issuer = "https://evil.example"
	wrongIss, err := endorse.NewIssuer(e.keys, wrongIssCfg)
	if err != nil {
		t.Fatal(err)
	}
	evil, err := wrongIss.Issue(endorse.Identity{IMSI: alicePhone.imsi, IMEI: alicePhone.imei, Active: true}, udr.DefaultEndorse(), nil)
	if err != nil {
		t.Fatal(err)
	}
	none := base64.RawURLEncoding.EncodeToString([]byte(`{"kid":"`+e.keys.Signing().KID+`","alg":"none"}`)) + "." + base64.RawURLEncoding.EncodeToString([]byte(edited)) + "."

	tests := []struct {
		name, tok, reason string
	}{
		{"IMEI edited", tampered, "bad signature"},
		{"signature of another token", parts[0] + "." + parts[1] + "." + strings.Split(e.device(alicePhone).token(), ".")[2], "bad signature"},
		{"another issuer's key", own, "unknown kid"},
		{"another key under the real kid", realHeader + "." + ownParts[1] + "." + ownParts[2], "algorithm"},
		{"wrong iss", evil, "bad claim"},
		{"alg none", none, "algorithm"},
		{"not a JWS", "hello", "malformed"},
		{"truncated", stolen[:len(stolen)-10], "bad signature"},
	}
	dev := e.device(alicePhone)
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			a := dev.upload(tc.tok, "data")
			wantStatus(t, "upload", a, http.StatusUnauthorized, "invalid_token")
			wantReason(t, "upload", a, tc.reason)
			a = dev.get(e.appSrv.URL + PathLoginCallback + "?soracom_endorse_token=" + url.QueryEscape(tc.tok))
			wantStatus(t, "login", a, http.StatusUnauthorized, "invalid_token")
		})
	}
	// The untouched token is genuine: refused only for its device.
	wantStatus(t, "genuine", dev.upload(stolen, "data"), http.StatusForbidden, "imei_mismatch")
}

func TestExpiredToken(t *testing.T) {
	e := newEnv(t)
	d := e.device(alicePhone)
	// Issued 11 minutes ago with the 600 s lifetime: expired a minute ago,
	// past the verifier's 30 s leeway.
	e.issClock.Advance(-11 * time.Minute)
	tok := d.token()
	a := d.upload(tok, "data")
	wantStatus(t, "upload", a, http.StatusUnauthorized, "invalid_token")
	wantReason(t, "upload", a, "token expired")

	a = d.get(e.appSrv.URL + PathLoginCallback + "?soracom_endorse_token=" + tok)
	wantStatus(t, "login", a, http.StatusUnauthorized, "invalid_token")
	wantReason(t, "login", a, "token expired")

	// Through the whole redirect flow too.
	a = d.get(e.appSrv.URL + PathLogin)
	wantStatus(t, "login flow", a, http.StatusUnauthorized, "invalid_token")
	wantReason(t, "login flow", a, "token expired")

	// The same token shortly before its exp is still good.
	e.appClock.Set(e.issClock.Now().Add(590 * time.Second))
	wantStatus(t, "before exp", d.upload(tok, "data"), http.StatusCreated, "")
}

// The business-system login: /login -> Endorse -> /login/callback.
func TestLoginFlow(t *testing.T) {
	e := newEnv(t)
	d := e.device(alicePhone)

	wantStatus(t, "whoami before", d.get(e.appSrv.URL+PathWhoami), http.StatusUnauthorized, "no_session")

	a := d.get(e.appSrv.URL + PathLogin)
	wantStatus(t, "login", a, http.StatusOK, "")
	if a.str("status") != "logged_in" || a.str("imsi") != alicePhone.imsi || a.str("imei") != alicePhone.imei || a.str("method") != "endorse" {
		t.Fatalf("login answer %v", a.body)
	}
	if a.finalURL.Path != PathLoginCallback || a.finalURL.Query().Get("soracom_endorse_token") == "" {
		t.Fatalf("the flow ended at %s", a.finalURL)
	}
	if a.header.Get("Referrer-Policy") != "no-referrer" {
		t.Fatalf("Referrer-Policy %q", a.header.Get("Referrer-Policy"))
	}

	a = d.get(e.appSrv.URL + PathWhoami)
	wantStatus(t, "whoami", a, http.StatusOK, "")
	if a.str("imsi") != alicePhone.imsi || a.str("imei") != alicePhone.imei || a.str("user") != "" {
		t.Fatalf("whoami %v", a.body)
	}

	wantStatus(t, "logout", d.post(e.appSrv.URL+PathLogout, "", nil, nil), http.StatusOK, "")
	wantStatus(t, "whoami after logout", d.get(e.appSrv.URL+PathWhoami), http.StatusUnauthorized, "no_session")
}

func TestLoginRedirect(t *testing.T) {
	e := newEnv(t, withAppConfig(func(c *Config) { c.EndorseURL = "https://endorse.example/?lang=ja" }))
	d := e.device(alicePhone)
	d.c.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	a := d.get(e.appSrv.URL + PathLogin)
	wantStatus(t, "login", a, http.StatusFound, "")
	loc, err := url.Parse(a.header.Get("Location"))
	if err != nil {
		t.Fatal(err)
	}
	q := loc.Query()
	if loc.Scheme != "https" || loc.Host != "endorse.example" || loc.Path != "/" || q.Get("lang") != "ja" ||
		q.Get("redirect_url") != e.appSrv.URL+PathLoginCallback || len(q) != 2 {
		t.Fatalf("Location %s", loc)
	}
	if a.str("redirect") != loc.String() {
		t.Fatalf("body %v", a.body)
	}
}

func TestLoginRefusals(t *testing.T) {
	e := newEnv(t)
	for _, tc := range []struct {
		h    handset
		code string
	}{
		{thief, "imei_mismatch"},
		{stranger, "device_not_registered"},
	} {
		d := e.device(tc.h)
		wantStatus(t, tc.code, d.get(e.appSrv.URL+PathLogin), http.StatusForbidden, tc.code)
		wantStatus(t, tc.code+" whoami", d.get(e.appSrv.URL+PathWhoami), http.StatusUnauthorized, "no_session")
	}
	d := e.device(alicePhone)
	a := d.get(e.appSrv.URL + PathLoginCallback)
	wantStatus(t, "no token", a, http.StatusUnauthorized, "missing_token")

	// A group without IMEI in its tokens cannot prove the handset.
	e.setGroup(func(g *udr.EndorseConfig) { g.ParametersToEndorse.IMEI = false })
	a = d.get(e.appSrv.URL + PathLogin)
	wantStatus(t, "no IMEI", a, http.StatusForbidden, "device_not_registered")
	wantReason(t, "no IMEI", a, "parametersToEndorse")
}

// A token opens one session: whoever replays the callback URL (from a log,
// a proxy, browser history) is refused.
func TestLoginTokenReplay(t *testing.T) {
	e := newEnv(t)
	d := e.device(alicePhone)
	at := d.stopAt(PathLoginCallback)
	d.get(e.appSrv.URL + PathLogin)
	cb := at()
	if cb == nil {
		t.Fatal("the device never reached the callback")
	}
	d.follow()
	wantStatus(t, "first use", d.get(cb.String()), http.StatusOK, "")
	wantStatus(t, "same device again", d.get(cb.String()), http.StatusUnauthorized, "token_used")
	other := e.device(stranger)
	wantStatus(t, "replayed elsewhere", other.get(cb.String()), http.StatusUnauthorized, "token_used")
	wantStatus(t, "replayer whoami", other.get(e.appSrv.URL+PathWhoami), http.StatusUnauthorized, "no_session")
}

// EN guide (spec 1.4): the token in a POST form body.
func TestLoginCallbackPOST(t *testing.T) {
	e := newEnv(t)
	d := e.device(bobPhone)
	tok := d.token()
	a := d.post(e.appSrv.URL+PathLoginCallback, "application/x-www-form-urlencoded",
		strings.NewReader(url.Values{"soracom_endorse_token": {tok}, "username": {"sora"}}.Encode()), nil)
	wantStatus(t, "POST callback", a, http.StatusOK, "")
	if a.str("imsi") != bobPhone.imsi {
		t.Fatalf("answer %v", a.body)
	}
	wantStatus(t, "whoami", d.get(e.appSrv.URL+PathWhoami), http.StatusOK, "")
}

func TestSessionExpiry(t *testing.T) {
	e := newEnv(t, withAppConfig(func(c *Config) { c.SessionTTL = time.Hour }))
	d := e.device(alicePhone)
	wantStatus(t, "login", d.get(e.appSrv.URL+PathLogin), http.StatusOK, "")
	e.appClock.Advance(59 * time.Minute)
	wantStatus(t, "within", d.get(e.appSrv.URL+PathWhoami), http.StatusOK, "")
	e.appClock.Advance(time.Minute)
	wantStatus(t, "expired", d.get(e.appSrv.URL+PathWhoami), http.StatusUnauthorized, "no_session")
}

// The second factor: password, then Endorse with a nonce bound to the
// pending login.
func TestSecondFactorFlow(t *testing.T) {
	e := newEnv(t)
	d := e.device(alicePhone)
	a := d.password("alice", "alice-pw")
	wantStatus(t, "2fa", a, http.StatusOK, "")
	if a.str("status") != "logged_in" || a.str("user") != "alice" || a.str("method") != "password+endorse" || a.str("imsi") != alicePhone.imsi {
		t.Fatalf("2fa answer %v", a.body)
	}
	if a.finalURL.Path != Path2FACallback {
		t.Fatalf("the flow ended at %s", a.finalURL)
	}
	a = d.get(e.appSrv.URL + PathWhoami)
	if a.status != http.StatusOK || a.str("user") != "alice" {
		t.Fatalf("whoami %d %v", a.status, a.body)
	}

	// JSON credentials work too.
	d2 := e.device(bobPhone)
	a = d2.post(e.appSrv.URL+PathPassword, "application/json", strings.NewReader(`{"username":"bob","password":"bob-pw"}`), nil)
	wantStatus(t, "2fa JSON", a, http.StatusOK, "")
	if a.str("user") != "bob" {
		t.Fatalf("2fa answer %v", a.body)
	}
}

// The redirect to Endorse carries the nonce, and the token carries it back.
func TestSecondFactorRedirect(t *testing.T) {
	e := newEnv(t)
	d := e.device(alicePhone)
	d.c.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	a := d.password("alice", "alice-pw")
	wantStatus(t, "password", a, http.StatusSeeOther, "")
	loc, err := url.Parse(a.header.Get("Location"))
	if err != nil {
		t.Fatal(err)
	}
	nonce := loc.Query().Get(NonceParam)
	if !strings.HasPrefix(loc.String(), e.endorse.URL+"/?") || loc.Query().Get("redirect_url") != e.appSrv.URL+Path2FACallback || len(nonce) < 26 {
		t.Fatalf("Location %s", loc)
	}
	var pendingCookie *http.Cookie
	for _, ck := range (&http.Response{Header: a.header}).Cookies() {
		if ck.Name == PendingCookie {
			pendingCookie = ck
		}
	}
	if pendingCookie == nil || !pendingCookie.HttpOnly || pendingCookie.Path != "/2fa/" || pendingCookie.SameSite != http.SameSiteLaxMode {
		t.Fatalf("pending cookie %+v", pendingCookie)
	}

	a = d.get(loc.String())
	cb, err := url.Parse(a.header.Get("Location"))
	if err != nil || cb.Path != Path2FACallback {
		t.Fatalf("endorse answered %d %v %s", a.status, a.body, a.header.Get("Location"))
	}
	var claims struct {
		C struct {
			RP map[string]string `json:"requestParameters"`
		} `json:"soracom-endorse-claim"`
	}
	payload, err := base64.RawURLEncoding.DecodeString(strings.Split(cb.Query().Get("soracom_endorse_token"), ".")[1])
	if err != nil || json.Unmarshal(payload, &claims) != nil {
		t.Fatalf("token payload %q: %v", payload, err)
	}
	if claims.C.RP[NonceParam] != nonce || len(claims.C.RP) != 1 {
		t.Fatalf("requestParameters %v, want only the nonce %s", claims.C.RP, nonce)
	}
}

func TestSecondFactorRefusals(t *testing.T) {
	e := newEnv(t)
	tests := []struct {
		name       string
		h          handset
		user, pass string
		status     int
		code       string
		reason     string
	}{
		{"wrong password", alicePhone, "alice", "bob-pw", http.StatusUnauthorized, "invalid_credentials", ""},
		{"unknown user", alicePhone, "mallory", "alice-pw", http.StatusUnauthorized, "invalid_credentials", ""},
		{"another user's device", bobPhone, "alice", "alice-pw", http.StatusForbidden, "device_not_registered", "not registered to the user alice"},
		{"stolen SIM", thief, "alice", "alice-pw", http.StatusForbidden, "imei_mismatch", "not registered for IMSI"},
		{"unregistered device", stranger, "alice", "alice-pw", http.StatusForbidden, "device_not_registered", "not registered"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			d := e.device(tc.h)
			a := d.password(tc.user, tc.pass)
			wantStatus(t, "2fa", a, tc.status, tc.code)
			wantReason(t, "2fa", a, tc.reason)
			wantStatus(t, "whoami", d.get(e.appSrv.URL+PathWhoami), http.StatusUnauthorized, "no_session")
		})
	}

	d := e.device(alicePhone)
	a := d.post(e.appSrv.URL+PathPassword, "application/x-www-form-urlencoded", strings.NewReader("username=alice"), nil)
	wantStatus(t, "no password", a, http.StatusBadRequest, "bad_request")
	a = d.post(e.appSrv.URL+PathPassword, "text/plain", strings.NewReader("alice:alice-pw"), nil)
	wantStatus(t, "text body", a, http.StatusBadRequest, "bad_request")
	a = d.post(e.appSrv.URL+PathPassword, "application/json", strings.NewReader(`{"username":"alice","password":"alice-pw"} {}`), nil)
	wantStatus(t, "trailing JSON", a, http.StatusBadRequest, "bad_request")
	a = d.get(e.appSrv.URL + Path2FACallback)
	wantStatus(t, "callback without token", a, http.StatusUnauthorized, "missing_token")
}

// A token without the nonce (requestParameters off in the group) cannot be
// a second factor.
func TestSecondFactorNeedsRequestParameters(t *testing.T) {
	e := newEnv(t)
	e.setGroup(func(g *udr.EndorseConfig) { g.ParametersToEndorse.RequestParameters = false })
	d := e.device(alicePhone)
	a := d.password("alice", "alice-pw")
	wantStatus(t, "2fa", a, http.StatusUnauthorized, "invalid_token")
	wantReason(t, "2fa", a, `request parameter "nonce" missing`)
}

// A nonce is single use and bound to its pending login.
func TestSecondFactorNonceReplay(t *testing.T) {
	e := newEnv(t)

	t.Run("callback replayed after success", func(t *testing.T) {
		d := e.device(alicePhone)
		at := d.stopAt(Path2FACallback)
		d.password("alice", "alice-pw")
		cb := at()
		if cb == nil {
			t.Fatal("never reached the callback")
		}
		d.follow()
		wantStatus(t, "first", d.get(cb.String()), http.StatusOK, "")
		a := d.get(cb.String())
		wantStatus(t, "replay", a, http.StatusUnauthorized, "no_pending_login")
	})

	t.Run("nonce used again with a fresh token", func(t *testing.T) {
		// The device keeps the pending cookie and asks Endorse again with
		// the same nonce: a new token (new jti) bound to a used nonce.
		d := e.device(alicePhone)
		d.c.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
		a := d.password("alice", "alice-pw")
		wantStatus(t, "password", a, http.StatusSeeOther, "")
		toEndorse := a.header.Get("Location")
		var pc *http.Cookie
		for _, ck := range (&http.Response{Header: a.header}).Cookies() {
			if ck.Name == PendingCookie {
				pc = ck
			}
		}
		if pc == nil {
			t.Fatal("no pending cookie")
		}
		d.follow()
		wantStatus(t, "first", d.get(toEndorse), http.StatusOK, "")

		again := e.device(alicePhone)
		cbURL, _ := url.Parse(e.appSrv.URL + Path2FACallback)
		again.c.Jar.SetCookies(cbURL, []*http.Cookie{{Name: pc.Name, Value: pc.Value, Path: pc.Path}})
		a = again.get(toEndorse)
		if a.finalURL.Path != Path2FACallback {
			t.Fatalf("ended at %s", a.finalURL)
		}
		wantStatus(t, "nonce again", a, http.StatusUnauthorized, "no_pending_login")
		wantStatus(t, "whoami", again.get(e.appSrv.URL+PathWhoami), http.StatusUnauthorized, "no_session")
	})

	t.Run("old nonce against a new password step", func(t *testing.T) {
		d := e.device(alicePhone)
		at := d.stopAt(Path2FACallback)
		d.password("alice", "alice-pw")
		old := at() // a token bound to the first step's nonce
		if old == nil {
			t.Fatal("never reached the callback")
		}
		// A second password step makes a new pending login and nonce.
		d.c.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
		wantStatus(t, "second password", d.password("alice", "alice-pw"), http.StatusSeeOther, "")
		d.follow()
		a := d.get(old.String())
		wantStatus(t, "old token", a, http.StatusUnauthorized, "invalid_token")
		wantReason(t, "old token", a, `request parameter "nonce" does not match`)
		// The attempt used up the second step too.
		wantStatus(t, "whoami", d.get(e.appSrv.URL+PathWhoami), http.StatusUnauthorized, "no_session")
	})

	t.Run("callback from a device without the pending login", func(t *testing.T) {
		d := e.device(alicePhone)
		at := d.stopAt(Path2FACallback)
		d.password("alice", "alice-pw")
		cb := at()
		if cb == nil {
			t.Fatal("never reached the callback")
		}
		other := e.device(alicePhone) // no pending cookie
		a := other.get(cb.String())
		wantStatus(t, "other", a, http.StatusUnauthorized, "no_pending_login")
	})

	t.Run("token of one user's pending login at another's", func(t *testing.T) {
		// bob completes the Endorse step of his own password login but
		// hands the token to alice's pending login (same handset model
		// of attack: a token minted for one nonce, used at another).
		bob := e.device(bobPhone)
		at := bob.stopAt(Path2FACallback)
		bob.password("bob", "bob-pw")
		bobCB := at()
		if bobCB == nil {
			t.Fatal("never reached the callback")
		}
		alice := e.device(alicePhone)
		alice.c.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
		wantStatus(t, "alice password", alice.password("alice", "alice-pw"), http.StatusSeeOther, "")
		a := alice.get(bobCB.String())
		wantStatus(t, "cross", a, http.StatusUnauthorized, "invalid_token")
		wantReason(t, "cross", a, `"nonce" does not match`)
	})
}

func TestSecondFactorPendingExpiry(t *testing.T) {
	e := newEnv(t, withAppConfig(func(c *Config) { c.PendingTTL = 2 * time.Minute }))
	d := e.device(alicePhone)
	at := d.stopAt(Path2FACallback)
	d.password("alice", "alice-pw")
	cb := at()
	if cb == nil {
		t.Fatal("never reached the callback")
	}
	d.follow()
	e.appClock.Advance(2 * time.Minute)
	wantStatus(t, "late", d.get(cb.String()), http.StatusUnauthorized, "no_pending_login")
}

func TestHealth(t *testing.T) {
	e := newEnv(t)
	a := e.device(alicePhone).get(e.appSrv.URL + PathHealth)
	wantStatus(t, "healthz", a, http.StatusOK, "")
	if a.str("status") != "ok" || a.body["devices"] != float64(2) || a.body["users"] != float64(2) {
		t.Fatalf("healthz %v", a.body)
	}
}

func TestNewAppConfig(t *testing.T) {
	e := newEnv(t)
	base := Config{Verifier: e.app.v, Devices: e.app.devices, EndorseURL: "http://endorse.soracom.io/", PublicURL: "https://app.example/rp"}
	a, err := NewApp(base)
	if err != nil {
		t.Fatal(err)
	}
	if a.public != "https://app.example/rp" || a.cookiePath != "/rp/" || !a.secure {
		t.Fatalf("public %q cookie path %q secure %v", a.public, a.cookiePath, a.secure)
	}
	if got := a.endorseRedirect(Path2FACallback, url.Values{"nonce": {"N"}}); got != "http://endorse.soracom.io/?nonce=N&redirect_url=https%3A%2F%2Fapp.example%2Frp%2F2fa%2Fcallback" {
		t.Fatalf("redirect %s", got)
	}
	bad := []func(*Config){
		func(c *Config) { c.Verifier = nil },
		func(c *Config) { c.Devices = nil },
		func(c *Config) { c.EndorseURL = "endorse.soracom.io" },
		func(c *Config) { c.EndorseURL = "ftp://endorse.soracom.io/" },
		func(c *Config) { c.PublicURL = "http://app.example/?x=1" },
		func(c *Config) { c.PublicURL = "http://user@app.example/" },
		func(c *Config) { c.PublicURL = "http:///path" },
		func(c *Config) { c.MaxUpload = -1 },
		func(c *Config) { c.SessionTTL = -time.Second },
	}
	for i, f := range bad {
		c := base
		f(&c)
		if _, err := NewApp(c); err == nil {
			t.Errorf("bad config %d accepted", i)
		}
	}
}
