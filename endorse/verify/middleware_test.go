package verify

import (
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"
)

func TestMiddleware(t *testing.T) {
	keys(t)
	ks := newKeyServer(t)
	v, err := New(WithKeysURL(ks.URL), WithClock(func() time.Time { return t0 }))
	if err != nil {
		t.Fatal(err)
	}
	// The protected handler echoes the verified IMSI and the form it sees.
	app := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c, ok := FromContext(r.Context())
		if !ok {
			t.Error("handler called without claims")
			http.Error(w, "no claims", 500)
			return
		}
		io.WriteString(w, c.Endorse.IMSI+" "+r.PostFormValue("username"))
	})
	srv := httptest.NewServer(v.Middleware(app))
	defer srv.Close()

	good := rsaToken(t, claimsAt(t0))
	expired := rsaToken(t, with(claimsAt(t0), "exp", t0.Unix()-3600))
	none := jws(t, hdr("none", kidRSA), claimsAt(t0), func(string) []byte { return nil })
	form := func(v url.Values) io.Reader { return strings.NewReader(v.Encode()) }
	const formCT = "application/x-www-form-urlencoded"

	tests := []struct {
		name      string
		method    string
		query     string
		header    map[string]string
		body      io.Reader
		status    int
		body200   string
		errCode   string
		reasonHas string
		challenge string
	}{
		{"bearer", "GET", "", map[string]string{"Authorization": "Bearer " + good}, nil, 200, "295050913244223 ", "", "", ""},
		{"bearer lower-case scheme", "GET", "", map[string]string{"Authorization": "bearer " + good}, nil, 200, "295050913244223 ", "", "", ""},
		{"query (redirect mode)", "GET", "?soracom_endorse_token=" + good, nil, nil, 200, "295050913244223 ", "", "", ""},
		{"form body (redirect POST)", "POST", "", map[string]string{"Content-Type": formCT},
			form(url.Values{"soracom_endorse_token": {good}, "username": {"sora"}}), 200, "295050913244223 sora", "", "", ""},
		{"no token", "GET", "", nil, nil, 401, "", "missing_token", "no token", `Bearer realm="soracom-endorse"`},
		{"basic auth", "GET", "", map[string]string{"Authorization": "Basic dTpw"}, nil, 401, "", "missing_token", "not a Bearer", ""},
		{"empty bearer", "GET", "", map[string]string{"Authorization": "Bearer "}, nil, 401, "", "missing_token", "", ""},
		{"form body with another content type", "POST", "", map[string]string{"Content-Type": "text/plain"},
			strings.NewReader("soracom_endorse_token=" + good), 401, "", "missing_token", "", ""},
		{"form body too large", "POST", "", map[string]string{"Content-Type": formCT},
			strings.NewReader("soracom_endorse_token=" + good + "&pad=" + strings.Repeat("x", maxFormBody)), 401, "", "missing_token", "form body", ""},
		{"expired", "GET", "", map[string]string{"Authorization": "Bearer " + expired}, nil, 401, "", "invalid_token", "token expired", `error="invalid_token"`},
		{"alg none", "GET", "?soracom_endorse_token=" + none, nil, nil, 401, "", "invalid_token", "algorithm not accepted", `error_description="algorithm not accepted`},
		{"garbage", "GET", "", map[string]string{"Authorization": "Bearer a.b"}, nil, 401, "", "invalid_token", "malformed token", ""},
	}
	for _, tc := range tests {
		req, err := http.NewRequest(tc.method, srv.URL+"/login"+tc.query, tc.body)
		if err != nil {
			t.Fatal(err)
		}
		for k, v := range tc.header {
			req.Header.Set(k, v)
		}
		resp, err := srv.Client().Do(req)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != tc.status {
			t.Errorf("%s: status %d, want %d (%s)", tc.name, resp.StatusCode, tc.status, b)
			continue
		}
		if tc.status == 200 {
			if string(b) != tc.body200 {
				t.Errorf("%s: body %q, want %q", tc.name, b, tc.body200)
			}
			continue
		}
		var e struct{ Error, Reason string }
		if err := json.Unmarshal(b, &e); err != nil || resp.Header.Get("Content-Type") != "application/json" {
			t.Errorf("%s: body %q not JSON: %v", tc.name, b, err)
		}
		if e.Error != tc.errCode || !strings.Contains(e.Reason, tc.reasonHas) {
			t.Errorf("%s: error %q reason %q, want %q containing %q", tc.name, e.Error, e.Reason, tc.errCode, tc.reasonHas)
		}
		if ch := resp.Header.Get("WWW-Authenticate"); !strings.HasPrefix(ch, "Bearer ") || !strings.Contains(ch, tc.challenge) {
			t.Errorf("%s: WWW-Authenticate %q, want it to contain %q", tc.name, ch, tc.challenge)
		}
	}
}

func TestMiddlewareExpectFrom(t *testing.T) {
	keys(t)
	v, err := New(WithKeySource(Keys{kidRSA: &testRSA.PublicKey}), WithClock(func() time.Time { return t0 }))
	if err != nil {
		t.Fatal(err)
	}
	// The nonce the server handed out travels in a cookie here.
	h := v.Middleware(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "ok") }),
		ExpectFrom(func(r *http.Request) (Expect, error) {
			c, err := r.Cookie("nonce")
			if err != nil {
				return Expect{}, errors.New("no login session")
			}
			return Expect{RequestParameters: map[string]string{"nonce": c.Value}}, nil
		}))
	tok := rsaToken(t, claimsAt(t0))
	for _, tc := range []struct {
		cookie string
		status int
		reason string
	}{
		{"n-0123", 200, ""},
		{"n-9999", 401, `request parameter \"nonce\" does not match`},
		{"", 401, "no login session"},
	} {
		req := httptest.NewRequest("GET", "/?soracom_endorse_token="+tok, nil)
		if tc.cookie != "" {
			req.AddCookie(&http.Cookie{Name: "nonce", Value: tc.cookie})
		}
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		if rec.Code != tc.status || !strings.Contains(rec.Body.String(), tc.reason) {
			t.Errorf("cookie %q: %d %s, want %d containing %q", tc.cookie, rec.Code, rec.Body, tc.status, tc.reason)
		}
	}
}

func TestMiddlewareKeySourceDown(t *testing.T) {
	keys(t)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(http.StatusInternalServerError)
	}))
	defer srv.Close()
	v, err := New(WithJWKS(srv.URL+"/jwks.json"), WithClock(func() time.Time { return t0 }))
	if err != nil {
		t.Fatal(err)
	}
	h := v.Middleware(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { t.Error("handler called") }))
	req := httptest.NewRequest("GET", "/", nil)
	req.Header.Set("Authorization", "Bearer "+rsaToken(t, claimsAt(t0)))
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	if rec.Code != http.StatusServiceUnavailable || !strings.Contains(rec.Body.String(), "temporarily_unavailable") {
		t.Errorf("key source down: %d %s", rec.Code, rec.Body)
	}
}

func TestChallengeText(t *testing.T) {
	got := challengeText("bad \"kid\" \\ \n\x7f é")
	for _, c := range []byte(got) {
		if c < 0x20 || c > 0x7e || c == '"' || c == '\\' {
			t.Fatalf("challengeText left %q in %q", c, got)
		}
	}
	if len(challengeText(strings.Repeat("x", 1000))) != 200 {
		t.Error("challengeText does not bound the length")
	}
}
