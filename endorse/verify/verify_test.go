package verify

import (
	"context"
	"crypto/x509"
	"errors"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

// keyServer serves the issuer's keys both ways the issuer does: PEM at
// /soracom-public-keys/{kid} and a JWK Set at /.well-known/jwks.json. It
// records every path asked for.
type keyServer struct {
	*httptest.Server
	mu    sync.Mutex
	paths []string
}

func newKeyServer(t *testing.T) *keyServer {
	t.Helper()
	keys(t)
	ks := &keyServer{}
	pems := map[string][]byte{
		kidRSA: pemPublic(t, &testRSA.PublicKey, nil),
		kidEC:  pemPublic(t, &testEC.PublicKey, nil),
	}
	set := jwksJSON(t, kidRSA, &testRSA.PublicKey, kidEC, &testEC.PublicKey)
	ks.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ks.mu.Lock()
		ks.paths = append(ks.paths, r.URL.EscapedPath())
		ks.mu.Unlock()
		if r.URL.Path == "/.well-known/jwks.json" {
			w.Header().Set("Content-Type", "application/json")
			w.Write(set)
			return
		}
		if kid, ok := strings.CutPrefix(r.URL.Path, "/soracom-public-keys/"); ok {
			if p, ok := pems[kid]; ok {
				w.Write(p)
				return
			}
		}
		http.NotFound(w, r)
	}))
	t.Cleanup(ks.Close)
	return ks
}

func (ks *keyServer) requested() []string {
	ks.mu.Lock()
	defer ks.mu.Unlock()
	return append([]string(nil), ks.paths...)
}

// sources returns one Verifier option per key source, all holding the
// issuer's RSA and EC keys.
func sources(t *testing.T) (map[string]Option, *keyServer) {
	t.Helper()
	ks := newKeyServer(t)
	pemFile := filepath.Join(t.TempDir(), "keys.pem")
	data := append(pemPublic(t, &testRSA.PublicKey, map[string]string{"kid": kidRSA}),
		pemPublic(t, &testEC.PublicKey, map[string]string{"kid": kidEC})...)
	if err := os.WriteFile(pemFile, data, 0o600); err != nil {
		t.Fatal(err)
	}
	return map[string]Option{
		"keys":    WithKeySource(Keys{kidRSA: &testRSA.PublicKey, kidEC: &testEC.PublicKey}),
		"jwks":    WithJWKS(ks.URL + "/.well-known/jwks.json"),
		"keysurl": WithKeysURL(ks.URL),
		"pemfile": WithPEMFile(pemFile),
	}, ks
}

func TestVerifyAttacks(t *testing.T) {
	keys(t)
	pubDER, err := x509.MarshalPKIXPublicKey(&testRSA.PublicKey)
	if err != nil {
		t.Fatal(err)
	}
	pubPEM := pemPublic(t, &testRSA.PublicKey, nil)
	c := claimsAt(t0)
	valid := rsaToken(t, c)
	segs := strings.Split(valid, ".")
	flip := func(s string, i int) string { // change one base64url character
		b := []byte(s)
		if b[i] == 'A' {
			b[i] = 'B'
		} else {
			b[i] = 'A'
		}
		return string(b)
	}
	rs := func(in string) []byte { return signRS256(t, testRSA, in) }
	es := func(in string) []byte { return signES256(t, testEC, in) }

	tests := []struct {
		name  string
		token string
		want  error // nil: must verify
	}{
		{"valid RS256", valid, nil},
		{"valid ES256", ecToken(t, c), nil},
		{"valid aud array", rsaToken(t, with(c, "aud", []string{"x", "soracom-endorse-audience"})), nil},
		{"valid fractional exp", rsaToken(t, with(c, "exp", float64(t0.Unix())+600.5)), nil},
		{"valid within leeway after exp", rsaToken(t, with(c, "exp", t0.Unix()-29)), nil},
		{"valid within leeway before nbf", rsaToken(t, with(c, "nbf", t0.Unix()+29)), nil},

		{"alg none", jws(t, hdr("none", kidRSA), c, func(string) []byte { return nil }), ErrAlgorithm},
		{"alg none with signature", jws(t, hdr("none", kidRSA), c, rs), ErrAlgorithm},
		{"alg None", jws(t, hdr("None", kidRSA), c, func(string) []byte { return nil }), ErrAlgorithm},
		{"alg missing", jws(t, `{"kid":"`+kidRSA+`"}`, c, rs), ErrAlgorithm},
		{"HS256 with PEM public key as secret", jws(t, hdr("HS256", kidRSA), c, func(in string) []byte { return signHS256(pubPEM, in) }), ErrAlgorithm},
		{"HS256 with DER public key as secret", jws(t, hdr("HS256", kidRSA), c, func(in string) []byte { return signHS256(pubDER, in) }), ErrAlgorithm},
		{"ES256 header on RSA key", jws(t, hdr("ES256", kidRSA), c, es), ErrAlgorithm},
		{"RS256 header on EC key", jws(t, hdr("RS256", kidEC), c, rs), ErrAlgorithm},
		{"PS256", jws(t, hdr("PS256", kidRSA), c, rs), ErrAlgorithm},
		{"RS512", jws(t, hdr("RS512", kidRSA), c, rs), ErrAlgorithm},
		{"unknown kid", jws(t, hdr("RS256", kidOther), c, rs), ErrUnknownKID},
		{"kid missing", jws(t, `{"alg":"RS256"}`, c, rs), ErrBadKID},
		{"kid path traversal", jws(t, hdr("RS256", "../../../etc/passwd"), c, rs), ErrBadKID},
		{"kid traversal after valid kid", jws(t, hdr("RS256", kidRSA+"/../x"), c, rs), ErrBadKID},
		{"kid slash", jws(t, hdr("RS256", "v1-0123456789abcdef0123456789abcd/f-x509.pem"), c, rs), ErrBadKID},
		{"kid percent-encoded", jws(t, hdr("RS256", "v1-0123456789abcdef0123456789ab%2f-x509.pem"), c, rs), ErrBadKID},
		{"kid query", jws(t, hdr("RS256", "v1-0123456789abcdef0123456789abcdef-x509.pem?x"), c, rs), ErrBadKID},
		{"kid uppercase hex", jws(t, hdr("RS256", "v1-0123456789ABCDEF0123456789abcdef-x509.pem"), c, rs), ErrBadKID},
		{"kid absolute URL", jws(t, hdr("RS256", "http://127.0.0.1/v1-0123456789abcdef0123456789abcdef-x509.pem"), c, rs), ErrBadKID},
		{"crit header", jws(t, `{"kid":"`+kidRSA+`","alg":"RS256","crit":["exp"],"exp":1}`, c, rs), ErrMalformed},

		{"expired", rsaToken(t, with(c, "exp", t0.Unix()-30)), ErrExpired},
		{"expired long ago", rsaToken(t, with(c, "exp", 1451116121)), ErrExpired},
		{"not yet valid", rsaToken(t, with(c, "nbf", t0.Unix()+31)), ErrNotYetValid},
		{"issued in the future", rsaToken(t, with(c, "iat", t0.Unix()+3600, "nbf", nil, "exp", t0.Unix()+7200)), ErrNotYetValid},
		{"no exp", rsaToken(t, with(c, "exp", nil)), ErrClaim},
		{"exp as string", rsaToken(t, with(c, "exp", "1679924190")), ErrMalformed},
		{"wrong iss", rsaToken(t, with(c, "iss", "https://evil.example")), ErrClaim},
		{"no iss", rsaToken(t, with(c, "iss", nil)), ErrClaim},
		{"wrong aud", rsaToken(t, with(c, "aud", "soracom-funk")), ErrClaim},
		{"aud array without ours", rsaToken(t, with(c, "aud", []string{"a", "b"})), ErrClaim},
		{"wrong sub", rsaToken(t, with(c, "sub", "funk.soracom.io")), ErrClaim},

		{"tampered header", enc([]byte(`{"kid":"`+kidRSA+`","alg":"RS256","x":1}`)) + "." + segs[1] + "." + segs[2], ErrBadSignature},
		{"tampered header byte", flip(segs[0], 5) + "." + segs[1] + "." + segs[2], ErrMalformed},
		{"tampered payload", segs[0] + "." + enc([]byte(mustJSON(t, with(c, "iss", "https://soracom.io ")))) + "." + segs[2], ErrBadSignature},
		{"tampered payload IMSI", segs[0] + "." + strings.Replace(segs[1], segs[1][len(segs[1])-40:len(segs[1])-30], flip(segs[1][len(segs[1])-40:len(segs[1])-30], 3), 1) + "." + segs[2], ErrBadSignature},
		{"tampered signature", segs[0] + "." + segs[1] + "." + flip(segs[2], 10), ErrBadSignature},
		{"signature of another token", segs[0] + "." + segs[1] + "." + strings.Split(rsaToken(t, with(c, "jti", "x")), ".")[2], ErrBadSignature},
		{"truncated signature", valid[:len(valid)-2], ErrBadSignature}, // 340 chars: 255 bytes
		{"signature one byte short", segs[0] + "." + segs[1] + "." + enc(signRS256(t, testRSA, segs[0]+"."+segs[1])[:255]), ErrBadSignature},
		{"signature one byte long", segs[0] + "." + segs[1] + "." + enc(append(signRS256(t, testRSA, segs[0]+"."+segs[1]), 0)), ErrBadSignature},
		{"truncated signature odd", valid[:len(valid)-1], ErrMalformed},
		{"truncated to two segments", segs[0] + "." + segs[1], ErrMalformed},
		{"truncated mid payload", valid[:len(segs[0])+10], ErrMalformed},
		{"empty", "", ErrMalformed},
		{"four segments", valid + ".AAAA", ErrMalformed},
		{"padding", valid + "=", ErrMalformed},
		{"newline inside", valid[:20] + "\n" + valid[20:], ErrMalformed},
		{"header not JSON", enc([]byte("kid")) + "." + segs[1] + "." + segs[2], ErrMalformed},
		{"payload not JSON object", jws(t, hdr("RS256", kidRSA), `["iss"]`, rs), ErrMalformed},
		{"payload with trailing data", jws(t, hdr("RS256", kidRSA), mustJSON(t, c)+"{}", rs), ErrMalformed},
		{"ES256 DER signature", jws(t, hdr("ES256", kidEC), c, func(in string) []byte {
			sig := signES256(t, testEC, in)
			return append([]byte{0x30, 0x44, 0x02, 0x20}, append(append(sig[:32:32], 0x02, 0x20), sig[32:]...)...)
		}), ErrBadSignature},
		{"ES256 zero signature", jws(t, hdr("ES256", kidEC), c, func(string) []byte { return make([]byte, 64) }), ErrBadSignature},

		{"another issuer's key, its own kid", jws(t, hdr("RS256", kidOther), c, func(in string) []byte { return signRS256(t, otherRSA, in) }), ErrUnknownKID},
		{"another issuer's RSA key, our kid", jws(t, hdr("RS256", kidRSA), c, func(in string) []byte { return signRS256(t, otherRSA, in) }), ErrBadSignature},
		{"another issuer's EC key, our kid", jws(t, hdr("ES256", kidEC), c, func(in string) []byte { return signES256(t, otherEC, in) }), ErrBadSignature},
	}
	srcs, ks := sources(t)
	for name, src := range srcs {
		t.Run(name, func(t *testing.T) {
			v, err := New(src, WithClock(func() time.Time { return t0 }), WithMinRefetch(time.Millisecond))
			if err != nil {
				t.Fatal(err)
			}
			for _, tc := range tests {
				got, err := v.Verify(context.Background(), tc.token)
				if tc.want == nil {
					if err != nil {
						t.Errorf("%s: %v", tc.name, err)
					} else if got.Endorse.IMSI != "295050913244223" || got.Endorse.RequestParameters["username"] != "foo" {
						t.Errorf("%s: claims %+v", tc.name, got)
					}
					continue
				}
				if !errors.Is(err, tc.want) {
					t.Errorf("%s: err = %v, want %v", tc.name, err, tc.want)
				}
				if got != nil {
					t.Errorf("%s: claims returned with an error", tc.name)
				}
			}
		})
	}
	// No kid that failed the pattern ever reached the key server.
	for _, p := range ks.requested() {
		if p != "/.well-known/jwks.json" && p != "/soracom-public-keys/"+kidRSA && p != "/soracom-public-keys/"+kidEC && p != "/soracom-public-keys/"+kidOther {
			t.Errorf("key server was asked for %q", p)
		}
	}
}

func TestVerifyClaims(t *testing.T) {
	keys(t)
	v, err := New(WithKeySource(Keys{kidRSA: &testRSA.PublicKey}), WithClock(func() time.Time { return t0 }))
	if err != nil {
		t.Fatal(err)
	}
	got, err := v.Verify(context.Background(), rsaToken(t, claimsAt(t0)))
	if err != nil {
		t.Fatal(err)
	}
	if got.Issuer != DefaultIssuer || !got.Audience.Contains(DefaultAudience) || got.Subject != DefaultSubject ||
		got.ExpiresAt != NumericDate(t0.Unix()+600) || got.IssuedAt != NumericDate(t0.Unix()) ||
		got.NotBefore != NumericDate(t0.Unix()-60) || got.ID != "ndP1Kau31s2dUBjIYbymGQ" ||
		got.Endorse.IMSI != "295050913244223" || got.Endorse.IMEI != "867698047437580" ||
		got.Endorse.RequestParameters["nonce"] != "n-0123" || got.Endorse.MSISDN != "" || got.Endorse.SimID != "" {
		t.Errorf("claims = %+v", got)
	}
}

func TestVerifyExpirationBoundaries(t *testing.T) {
	keys(t)
	exp := t0.Add(600 * time.Second)
	tok := rsaToken(t, claimsAt(t0))
	tests := []struct {
		now    time.Time
		leeway time.Duration
		want   error
	}{
		{exp.Add(-time.Nanosecond), 0, nil},
		{exp, 0, ErrExpired}, // RFC 7519 4.1.4: "on or after"
		{exp.Add(29 * time.Second), 30 * time.Second, nil},
		{exp.Add(30 * time.Second), 30 * time.Second, ErrExpired},
		{t0.Add(-60 * time.Second), 0, nil}, // nbf = iat-60
		{t0.Add(-60*time.Second - time.Nanosecond), 0, ErrNotYetValid},
		{t0.Add(-90 * time.Second), 30 * time.Second, nil},
		{t0.Add(-91 * time.Second), 30 * time.Second, ErrNotYetValid},
	}
	for _, tc := range tests {
		v, err := New(WithKeySource(Keys{kidRSA: &testRSA.PublicKey}), WithLeeway(tc.leeway), WithClock(func() time.Time { return tc.now }))
		if err != nil {
			t.Fatal(err)
		}
		if _, err := v.Verify(context.Background(), tok); !errors.Is(err, tc.want) {
			t.Errorf("now %s leeway %s: err = %v, want %v", tc.now.Sub(t0), tc.leeway, err, tc.want)
		}
	}
}

func TestVerifyBinding(t *testing.T) {
	keys(t)
	tok := rsaToken(t, claimsAt(t0))
	src := WithKeySource(Keys{kidRSA: &testRSA.PublicKey})
	clk := WithClock(func() time.Time { return t0 })
	tests := []struct {
		name   string
		opts   []Option
		expect Expect
		want   error
	}{
		{"imsi", []Option{WithIMSI("295050913244223")}, Expect{}, nil},
		{"imsi mismatch", []Option{WithIMSI("295050913244224")}, Expect{}, ErrBinding},
		{"imei", []Option{WithIMEI("867698047437580")}, Expect{}, nil},
		{"imei mismatch", []Option{WithIMEI("867698047437581")}, Expect{}, ErrBinding},
		{"nonce", []Option{WithRequestParameter("nonce", "n-0123")}, Expect{}, nil},
		{"nonce mismatch", []Option{WithRequestParameter("nonce", "n-0124")}, Expect{}, ErrBinding},
		{"nonce prefix", []Option{WithRequestParameter("nonce", "n-012")}, Expect{}, ErrBinding},
		{"parameter missing", []Option{WithRequestParameter("session", "")}, Expect{}, ErrBinding},
		{"per call nonce", nil, Expect{RequestParameters: map[string]string{"nonce": "n-0123"}}, nil},
		{"per call nonce mismatch", nil, Expect{RequestParameters: map[string]string{"nonce": "other"}}, ErrBinding},
		{"per call imsi and configured imei", []Option{WithIMEI("867698047437580")}, Expect{IMSI: "295050913244223"}, nil},
		{"configured binding still applies per call", []Option{WithIMEI("867698047437581")}, Expect{IMSI: "295050913244223"}, ErrBinding},
	}
	for _, tc := range tests {
		v, err := New(append([]Option{src, clk}, tc.opts...)...)
		if err != nil {
			t.Fatalf("%s: %v", tc.name, err)
		}
		if _, err := v.VerifyExpect(context.Background(), tok, tc.expect); !errors.Is(err, tc.want) {
			t.Errorf("%s: err = %v, want %v", tc.name, err, tc.want)
		}
	}
	// A token without the claim cannot satisfy a binding.
	bare := rsaToken(t, with(claimsAt(t0), "soracom-endorse-claim", map[string]any{}))
	v, _ := New(src, clk, WithIMSI("295050913244223"))
	if _, err := v.Verify(context.Background(), bare); !errors.Is(err, ErrBinding) {
		t.Errorf("token without imsi: err = %v", err)
	}
}

func TestVerifyCustomIssuer(t *testing.T) {
	keys(t)
	c := with(claimsAt(t0), "iss", "http://127.0.0.1:8080")
	v, err := New(WithKeySource(Keys{kidRSA: &testRSA.PublicKey}), WithIssuer("http://127.0.0.1:8080"), WithClock(func() time.Time { return t0 }))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := v.Verify(context.Background(), rsaToken(t, c)); err != nil {
		t.Errorf("custom issuer: %v", err)
	}
	if _, err := v.Verify(context.Background(), rsaToken(t, claimsAt(t0))); !errors.Is(err, ErrClaim) {
		t.Errorf("default issuer against custom verifier: %v", err)
	}
	v, _ = New(WithKeySource(Keys{kidRSA: &testRSA.PublicKey}), WithAudience("a"), WithSubject("s"), WithClock(func() time.Time { return t0 }))
	if _, err := v.Verify(context.Background(), rsaToken(t, with(claimsAt(t0), "aud", "a", "sub", "s"))); err != nil {
		t.Errorf("custom aud/sub: %v", err)
	}
}

func TestNewOptions(t *testing.T) {
	src := WithKeySource(Keys{})
	tests := []struct {
		name string
		opts []Option
		ok   bool
	}{
		{"one source", []Option{src}, true},
		{"no source", nil, false},
		{"two sources", []Option{src, WithJWKS("http://127.0.0.1/jwks")}, false},
		{"nil source", []Option{WithKeySource(nil)}, false},
		{"jwks ftp", []Option{WithJWKS("ftp://127.0.0.1/jwks")}, false},
		{"jwks no host", []Option{WithJWKS("http:///jwks")}, false},
		{"keys url with credentials", []Option{WithKeysURL("http://u:p@127.0.0.1/")}, false},
		{"keys url with query", []Option{WithKeysURL("http://127.0.0.1/?kid=")}, false},
		{"pem file missing", []Option{WithPEMFile(filepath.Join(t.TempDir(), "none.pem"))}, false},
		{"leeway negative", []Option{src, WithLeeway(-time.Second)}, false},
		{"leeway too large", []Option{src, WithLeeway(time.Hour)}, false},
		{"leeway zero", []Option{src, WithLeeway(0)}, true},
		{"imsi letters", []Option{src, WithIMSI("29505091324422x")}, false},
		{"imsi too long", []Option{src, WithIMSI("2950509132442231")}, false},
		{"imei short", []Option{src, WithIMEI("86769804743758")}, false},
		{"imeisv", []Option{src, WithIMEI("8676980474375801")}, true},
		{"empty parameter name", []Option{src, WithRequestParameter("", "x")}, false},
		{"empty issuer", []Option{src, WithIssuer("")}, false},
		{"zero refetch", []Option{src, WithMinRefetch(0)}, false},
		{"nil clock", []Option{src, WithClock(nil)}, false},
	}
	for _, tc := range tests {
		_, err := New(tc.opts...)
		if (err == nil) != tc.ok {
			t.Errorf("%s: err = %v, want ok=%v", tc.name, err, tc.ok)
		}
	}
}

func TestParse(t *testing.T) {
	keys(t)
	tok, err := Parse(rsaToken(t, claimsAt(t0)))
	if err != nil {
		t.Fatal(err)
	}
	if tok.Header.KeyID != kidRSA || tok.Header.Algorithm != "RS256" || tok.Claims.Endorse.IMEI != "867698047437580" || len(tok.Signature) != 256 {
		t.Errorf("Parse = %+v", tok)
	}
	// The documented sample header (spec 1.5) and the real 2023 payload (1.6).
	sample := enc([]byte(`{"kid":"v1-abcdef00000000000000000012345678-x509.pem","alg":"RS256"}`)) + "." +
		enc([]byte(`{"iss":"https://soracom.io","aud":"soracom-endorse-audience","exp":1679929590,"jti":"ndP1Kau31s2dUBjIYbymGQ","iat":1679923590,"nbf":1679923530,"sub":"soracom-endorse","soracom-endorse-claim":{"imsi":"295050913244223","imei":"867698047437580","requestParameters":{"username":"foo"}}}`)) +
		"." + enc(make([]byte, 256))
	tok, err = Parse(sample)
	if err != nil {
		t.Fatal(err)
	}
	if tok.Claims.ExpiresAt.Time() != time.Unix(1679929590, 0).UTC() || tok.Claims.NotBefore != 1679923530 || tok.Claims.Endorse.RequestParameters["username"] != "foo" {
		t.Errorf("sample claims = %+v", tok.Claims)
	}
	for _, bad := range []string{`{"exp":-1}`, `{"exp":1e300}`, `{"exp":"x"}`, `{"aud":5}`, `{"soracom-endorse-claim":{"requestParameters":{"a":1}}}`} {
		if _, err := Parse(enc([]byte(hdr("RS256", kidRSA))) + "." + enc([]byte(bad)) + ".AAAA"); !errors.Is(err, ErrMalformed) {
			t.Errorf("Parse(%s): err = %v, want ErrMalformed", bad, err)
		}
	}
}
