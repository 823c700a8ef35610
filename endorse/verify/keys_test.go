package verify

import (
	"bytes"
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"math/big"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

func TestCheckKID(t *testing.T) {
	tests := []struct {
		kid string
		ok  bool
	}{
		{"v1-f2fea060b93f510bfb722f2cd4b3774e-x509.pem", true}, // real, spec 1.5
		{"v1-abcdef00000000000000000012345678-x509.pem", true}, // docs sample
		{"", false},
		{"v1-f2fea060b93f510bfb722f2cd4b3774-x509.pem", false},   // 31 hex
		{"v1-f2fea060b93f510bfb722f2cd4b3774e0-x509.pem", false}, // 33 hex
		{"v1-F2FEA060B93F510BFB722F2CD4B3774E-x509.pem", false},
		{"v2-f2fea060b93f510bfb722f2cd4b3774e-x509.pem", false},
		{"v1-f2fea060b93f510bfb722f2cd4b3774e-x509.pem.", false},
		{"v1-f2fea060b93f510bfb722f2cd4b3774e-x509.der", false},
		{"v1-f2fea060b93f510bfb722f2cd4b3774e-x509xpem", false},
		{"v1-../../../../../../../../../../../x509.pem", false},
		{"v1-f2fea060b93f510bfb722f2cd4b377/e-x509.pem", false},
		{"v1-f2fea060b93f510bfb722f2cd4b3774g-x509.pem", false},
		{" v1-f2fea060b93f510bfb722f2cd4b3774e-x509.pem", false},
	}
	for _, tc := range tests {
		err := CheckKID(tc.kid)
		if (err == nil) != tc.ok || (err != nil && !errors.Is(err, ErrBadKID)) {
			t.Errorf("CheckKID(%q) = %v, want ok=%v", tc.kid, err, tc.ok)
		}
	}
}

func TestAlgorithm(t *testing.T) {
	keys(t)
	small, err := rsa.GenerateKey(rand.Reader, 1024)
	if err != nil {
		t.Fatal(err)
	}
	p384, err := ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	edPub, _, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		key  crypto.PublicKey
		want string
	}{
		{"rsa 2048", &testRSA.PublicKey, "RS256"},
		{"p-256", &testEC.PublicKey, "ES256"},
		{"rsa 1024", &small.PublicKey, ""},
		{"rsa even exponent", &rsa.PublicKey{N: testRSA.N, E: 65536}, ""},
		{"rsa nil modulus", &rsa.PublicKey{E: 65537}, ""},
		{"p-384", &p384.PublicKey, ""},
		{"ed25519", edPub, ""},
		{"private key", testRSA, ""},
		{"nil", nil, ""},
	}
	for _, tc := range tests {
		got, err := Algorithm(tc.key)
		if got != tc.want || (tc.want == "") != errors.Is(err, ErrAlgorithm) {
			t.Errorf("%s: Algorithm = %q, %v; want %q", tc.name, got, err, tc.want)
		}
	}
}

func TestParsePEMKeys(t *testing.T) {
	keys(t)
	rsaPEM := pemPublic(t, &testRSA.PublicKey, nil)
	ecPEM := pemPublic(t, &testEC.PublicKey, nil)
	small, _ := rsa.GenerateKey(rand.Reader, 1024)
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "endorse"},
		NotBefore: t0, NotAfter: t0.Add(time.Hour)}
	certDER, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &testEC.PublicKey, testEC)
	if err != nil {
		t.Fatal(err)
	}
	certPEM := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: certDER})
	pkcs1 := pem.EncodeToMemory(&pem.Block{Type: "RSA PUBLIC KEY", Bytes: x509.MarshalPKCS1PublicKey(&testRSA.PublicKey)})
	privDER, _ := x509.MarshalPKCS8PrivateKey(testRSA)
	privPEM := pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: privDER})
	cat := func(b ...[]byte) []byte { return bytes.Join(b, nil) }

	type lookup struct {
		kid  string
		want crypto.PublicKey // nil: ErrUnknownKID
	}
	tests := []struct {
		name    string
		data    []byte
		file    string
		wantErr bool
		lookups []lookup
	}{
		{"single key answers any kid", rsaPEM, "issuer.pem", false,
			[]lookup{{kidRSA, &testRSA.PublicKey}, {kidEC, &testRSA.PublicKey}}},
		{"single key named by its kid", rsaPEM, kidRSA, false,
			[]lookup{{kidRSA, &testRSA.PublicKey}, {kidEC, nil}}},
		{"kid headers", cat(pemPublic(t, &testRSA.PublicKey, map[string]string{"kid": kidRSA}), pemPublic(t, &testEC.PublicKey, map[string]string{"Kid": kidEC})), "k.pem", false,
			[]lookup{{kidRSA, &testRSA.PublicKey}, {kidEC, &testEC.PublicKey}, {kidOther, nil}}},
		{"one labelled key", pemPublic(t, &testEC.PublicKey, map[string]string{"kid": kidEC}), "k.pem", false,
			[]lookup{{kidEC, &testEC.PublicKey}, {kidRSA, nil}}},
		{"certificate", certPEM, "c.pem", false, []lookup{{kidEC, &testEC.PublicKey}}},
		{"pkcs1", pkcs1, "c.pem", false, []lookup{{kidEC, &testRSA.PublicKey}}},
		{"two keys without kid", cat(rsaPEM, ecPEM), "k.pem", true, nil},
		{"labelled and unlabelled", cat(pemPublic(t, &testRSA.PublicKey, map[string]string{"kid": kidRSA}), ecPEM), "k.pem", true, nil},
		{"duplicate kid", cat(pemPublic(t, &testRSA.PublicKey, map[string]string{"kid": kidRSA}), pemPublic(t, &testEC.PublicKey, map[string]string{"kid": kidRSA})), "k.pem", true, nil},
		{"bad kid header", pemPublic(t, &testRSA.PublicKey, map[string]string{"kid": "../x"}), "k.pem", true, nil},
		{"private key", privPEM, "k.pem", true, nil},
		{"small RSA", pemPublic(t, &small.PublicKey, nil), "k.pem", true, nil},
		{"not PEM", []byte("hello"), "k.pem", true, nil},
		{"empty", nil, "k.pem", true, nil},
		{"trailing text", cat(rsaPEM, []byte("junk")), "k.pem", true, nil},
		{"corrupt DER", pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: []byte{0x30, 0x03, 1, 2, 3}}), "k.pem", true, nil},
	}
	for _, tc := range tests {
		p, err := ParsePEMKeys(tc.data, tc.file)
		if (err != nil) != tc.wantErr {
			t.Errorf("%s: err = %v, wantErr %v", tc.name, err, tc.wantErr)
			continue
		}
		for _, l := range tc.lookups {
			got, err := p.Key(context.Background(), l.kid)
			switch {
			case l.want == nil && !errors.Is(err, ErrUnknownKID):
				t.Errorf("%s: Key(%s) = %v, want ErrUnknownKID", tc.name, l.kid, err)
			case l.want != nil && (err != nil || !l.want.(interface{ Equal(crypto.PublicKey) bool }).Equal(got)):
				t.Errorf("%s: Key(%s) = %v, %v", tc.name, l.kid, got, err)
			}
		}
	}

	// LoadPEMFile binds a single key to the kid in the file name.
	path := filepath.Join(t.TempDir(), kidEC)
	if err := os.WriteFile(path, ecPEM, 0o600); err != nil {
		t.Fatal(err)
	}
	p, err := LoadPEMFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := p.Key(context.Background(), kidRSA); !errors.Is(err, ErrUnknownKID) {
		t.Errorf("file named by kid answered another kid: %v", err)
	}
}

func TestParseJWKS(t *testing.T) {
	keys(t)
	rsaJWK := jwkJSON(t, kidRSA, &testRSA.PublicKey)
	ecJWK := jwkJSON(t, kidEC, &testEC.PublicKey)
	set := func(ks ...map[string]any) []byte { return []byte(mustJSON(t, map[string]any{"keys": ks})) }
	mod := func(k map[string]any, kv ...any) map[string]any { return with(k, kv...) }
	small, _ := rsa.GenerateKey(rand.Reader, 1024)

	tests := []struct {
		name    string
		data    []byte
		want    []string // kids in the result
		wantErr bool
	}{
		{"rsa and ec", set(rsaJWK, ecJWK), []string{kidRSA, kidEC}, false},
		{"empty set", []byte(`{"keys":[]}`), nil, false},
		{"null keys", set(), nil, true},
		{"no alg or use", set(mod(rsaJWK, "alg", nil, "use", nil)), []string{kidRSA}, false},
		{"use enc skipped", set(mod(rsaJWK, "use", "enc"), ecJWK), []string{kidEC}, false},
		{"alg mismatch skipped", set(mod(rsaJWK, "alg", "PS256"), mod(ecJWK, "alg", "RS256")), nil, false},
		{"oct skipped", set(map[string]any{"kty": "oct", "kid": kidOther, "k": "c2VjcmV0"}, ecJWK), []string{kidEC}, false},
		{"OKP skipped", set(map[string]any{"kty": "OKP", "crv": "Ed25519", "kid": kidOther, "x": "AAAA"}), nil, false},
		{"P-384 skipped", set(mod(ecJWK, "crv", "P-384")), nil, false},
		{"bad kid skipped", set(mod(rsaJWK, "kid", "../x"), mod(ecJWK, "kid", nil)), nil, false},
		{"duplicate kid", set(rsaJWK, mod(ecJWK, "kid", kidRSA)), nil, true},
		{"bad n", set(mod(rsaJWK, "n", "!!")), nil, true},
		{"padded n", set(mod(rsaJWK, "n", rsaJWK["n"].(string)+"=")), nil, true},
		{"empty e", set(mod(rsaJWK, "e", "")), nil, true},
		{"huge e", set(mod(rsaJWK, "e", enc([]byte{1, 0, 0, 0, 1}))), nil, true},
		{"small rsa", set(jwkJSON(t, kidRSA, &small.PublicKey)), nil, true},
		{"short x", set(mod(ecJWK, "x", enc(make([]byte, 31)))), nil, true},
		{"point off curve", set(mod(ecJWK, "y", enc(append(make([]byte, 31), 1)))), nil, true},
		{"not an object", []byte(`[]`), nil, true},
		{"no keys member", []byte(`{}`), nil, true},
		{"keys not array", []byte(`{"keys":{}}`), nil, true},
		{"key not object", []byte(`{"keys":[1]}`), nil, true},
		{"trailing data", append(set(ecJWK), '}'), nil, true},
	}
	for _, tc := range tests {
		got, err := ParseJWKS(tc.data)
		if (err != nil) != tc.wantErr {
			t.Errorf("%s: err = %v, wantErr %v", tc.name, err, tc.wantErr)
			continue
		}
		if len(got) != len(tc.want) {
			t.Errorf("%s: %d keys, want %v", tc.name, len(got), tc.want)
		}
		for _, kid := range tc.want {
			if _, ok := got[kid]; !ok {
				t.Errorf("%s: kid %s missing", tc.name, kid)
			}
		}
	}
	got, _ := ParseJWKS(set(rsaJWK, ecJWK))
	if !testRSA.PublicKey.Equal(got[kidRSA]) || !testEC.PublicKey.Equal(got[kidEC]) {
		t.Error("JWK Set keys differ from the originals")
	}
}

// countingServer answers with handler and counts requests.
type countingServer struct {
	*httptest.Server
	n atomic.Int64
}

func newCountingServer(t *testing.T, h http.HandlerFunc) *countingServer {
	cs := &countingServer{}
	cs.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		n := cs.n.Add(1)
		h(w, r.WithContext(context.WithValue(r.Context(), countKey{}, n)))
	}))
	t.Cleanup(cs.Close)
	return cs
}

func TestJWKSCacheAndRefetch(t *testing.T) {
	keys(t)
	var mu sync.Mutex
	body := jwksJSON(t, kidRSA, &testRSA.PublicKey)
	status := http.StatusOK
	srv := newCountingServer(t, func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		defer mu.Unlock()
		w.WriteHeader(status)
		w.Write(body)
	})
	set := func(s int, b []byte) { mu.Lock(); status, body = s, b; mu.Unlock() }
	clk := &clock{t: t0}
	src, err := NewJWKS(srv.URL+"/.well-known/jwks.json", HTTPConfig{MinRefetch: time.Minute, Now: clk.Now})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	expect := func(step, kid string, want error, fetches int64) {
		t.Helper()
		_, err := src.Key(ctx, kid)
		if !errors.Is(err, want) || (want == nil && err != nil) {
			t.Errorf("%s: Key(%s) = %v, want %v", step, kid, err, want)
		}
		if n := srv.n.Load(); n != fetches {
			t.Errorf("%s: %d fetches, want %d", step, n, fetches)
		}
	}
	expect("first use fetches", kidRSA, nil, 1)
	expect("cached", kidRSA, nil, 1)
	expect("bad kid never fetches", "../x", ErrBadKID, 1)
	expect("unknown kid refetches", kidOther, ErrUnknownKID, 2)
	expect("unknown kid again is rate-limited", kidOther, ErrUnknownKID, 2)
	set(http.StatusOK, jwksJSON(t, kidRSA, &testRSA.PublicKey, kidEC, &testEC.PublicKey))
	expect("rotated-in kid waits for the cool-down", kidEC, ErrUnknownKID, 2)
	clk.Add(time.Minute)
	expect("after the cool-down the new kid is fetched", kidEC, nil, 3)
	expect("known kid still cached", kidRSA, nil, 3)
	set(http.StatusInternalServerError, []byte("oops"))
	expect("server error is a key source failure", kidOther, ErrKeySource, 4)
	expect("old set kept after a failed fetch", kidEC, nil, 4)
	clk.Add(time.Minute)
	set(http.StatusOK, []byte(`{"keys":`))
	expect("bad JSON is a key source failure", kidOther, ErrKeySource, 5)
	clk.Add(time.Minute)
	set(http.StatusOK, make([]byte, maxJWKSBody+1))
	expect("oversized body is a key source failure", kidOther, ErrKeySource, 6)
	clk.Add(time.Minute)
	set(http.StatusOK, jwksJSON(t, kidEC, &testEC.PublicKey))
	expect("a refetch replaces the set (revocation)", kidOther, ErrUnknownKID, 7)
	expect("revoked kid is gone", kidRSA, ErrUnknownKID, 7)
}

func TestJWKSUnreachable(t *testing.T) {
	srv := httptest.NewServer(http.NotFoundHandler())
	url := srv.URL
	srv.Close()
	src, err := NewJWKS(url+"/jwks.json", HTTPConfig{})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := src.Key(context.Background(), kidRSA); !errors.Is(err, ErrKeySource) {
		t.Errorf("closed server: %v", err)
	}
}

// TestConcurrentFirstUse starts many verifications while the key server
// holds its answer: exactly one fetch must happen and all must succeed.
func TestConcurrentFirstUse(t *testing.T) {
	keys(t)
	set := jwksJSON(t, kidRSA, &testRSA.PublicKey, kidEC, &testEC.PublicKey)
	pem := pemPublic(t, &testRSA.PublicKey, nil)
	tok := rsaToken(t, claimsAt(t0))
	for _, name := range []string{"jwks", "keysurl"} {
		release := make(chan struct{})
		srv := newCountingServer(t, func(w http.ResponseWriter, r *http.Request) {
			<-release
			if strings.HasSuffix(r.URL.Path, "jwks.json") {
				w.Write(set)
			} else {
				w.Write(pem)
			}
		})
		opt := WithJWKS(srv.URL + "/jwks.json")
		if name == "keysurl" {
			opt = WithKeysURL(srv.URL)
		}
		v, err := New(opt, WithClock(func() time.Time { return t0 }))
		if err != nil {
			t.Fatal(err)
		}
		const n = 32
		var wg sync.WaitGroup
		errs := make(chan error, n)
		for range n {
			wg.Go(func() {
				_, err := v.Verify(context.Background(), tok)
				errs <- err
			})
		}
		for srv.n.Load() == 0 {
			time.Sleep(time.Millisecond)
		}
		time.Sleep(20 * time.Millisecond) // let the others queue behind the fetch
		close(release)
		wg.Wait()
		close(errs)
		for err := range errs {
			if err != nil {
				t.Errorf("%s: %v", name, err)
			}
		}
		if got := srv.n.Load(); got != 1 {
			t.Errorf("%s: %d fetches, want 1", name, got)
		}
	}
}

// A caller whose context ends while waiting gets its context error; the
// fetch goes on for the others.
func TestFetchCallerCancel(t *testing.T) {
	keys(t)
	release := make(chan struct{})
	pem := pemPublic(t, &testRSA.PublicKey, nil)
	srv := newCountingServer(t, func(w http.ResponseWriter, r *http.Request) {
		<-release
		w.Write(pem)
	})
	src, err := NewKeysURL(srv.URL, HTTPConfig{})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error)
	go func() {
		_, err := src.Key(ctx, kidRSA)
		done <- err
	}()
	for srv.n.Load() == 0 {
		time.Sleep(time.Millisecond)
	}
	cancel()
	if err := <-done; !errors.Is(err, context.Canceled) {
		t.Errorf("cancelled caller: %v", err)
	}
	close(release)
	if _, err := src.Key(context.Background(), kidRSA); err != nil {
		t.Errorf("after the detached fetch: %v", err)
	}
	if n := srv.n.Load(); n != 1 {
		t.Errorf("%d fetches, want 1", n)
	}
}

func TestKeysURL(t *testing.T) {
	keys(t)
	tests := []struct{ base, want string }{
		{"http://127.0.0.1:8080", "http://127.0.0.1:8080/soracom-public-keys/" + kidRSA},
		{"http://127.0.0.1:8080/", "http://127.0.0.1:8080/soracom-public-keys/" + kidRSA},
		{"http://127.0.0.1:8080/endorse", "http://127.0.0.1:8080/endorse/soracom-public-keys/" + kidRSA},
		{"http://127.0.0.1:8080/soracom-public-keys", "http://127.0.0.1:8080/soracom-public-keys/" + kidRSA},
		{SORACOMKeysURL, SORACOMKeysURL + kidRSA},
	}
	for _, tc := range tests {
		s, err := NewKeysURL(tc.base, HTTPConfig{})
		if err != nil {
			t.Fatal(err)
		}
		if got, err := s.URL(kidRSA); got != tc.want || err != nil {
			t.Errorf("URL(%s) = %s, %v; want %s", tc.base, got, err, tc.want)
		}
		if _, err := s.URL("../../x"); !errors.Is(err, ErrBadKID) {
			t.Errorf("URL(../../x) = %v", err)
		}
	}

	var mu sync.Mutex
	var paths []string
	pems := map[string][]byte{kidRSA: pemPublic(t, &testRSA.PublicKey, nil), kidEC: pemPublic(t, &testEC.PublicKey, nil)}
	broken := "v1-00000000000000000000000000000500-x509.pem"
	garbage := "v1-0000000000000000000000000000dead-x509.pem"
	forbidden := "v1-00000000000000000000000000000403-x509.pem"
	srv := newCountingServer(t, func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		paths = append(paths, r.URL.Path)
		mu.Unlock()
		kid := strings.TrimPrefix(r.URL.Path, "/soracom-public-keys/")
		switch kid {
		case broken:
			w.WriteHeader(http.StatusBadGateway)
		case garbage:
			w.Write([]byte("<html>not a key</html>"))
		case forbidden:
			w.WriteHeader(http.StatusForbidden) // S3, for a missing object
		default:
			if p, ok := pems[kid]; ok {
				w.Write(p)
			} else {
				http.NotFound(w, r)
			}
		}
	})
	clk := &clock{t: t0}
	src, err := NewKeysURL(srv.URL, HTTPConfig{MinRefetch: time.Minute, Now: clk.Now})
	if err != nil {
		t.Fatal(err)
	}
	steps := []struct {
		kid     string
		want    error
		fetches int64
		advance bool
	}{
		{kidRSA, nil, 1, false},
		{kidRSA, nil, 1, false},
		{kidEC, nil, 2, false}, // a found key starts no cool-down
		{kidOther, ErrUnknownKID, 3, false},
		{kidOther, ErrUnknownKID, 3, false}, // cooling down
		{forbidden, ErrUnknownKID, 3, true},
		{forbidden, ErrUnknownKID, 4, true},
		{broken, ErrKeySource, 5, true},
		{garbage, ErrKeySource, 6, false},
		{kidEC, nil, 6, false}, // cached keys unaffected by the cool-down
		{"v1-0123456789abcdef0123456789abcdef-x509.pem/..", ErrBadKID, 6, false},
	}
	for i, s := range steps {
		_, err := src.Key(context.Background(), s.kid)
		if !errors.Is(err, s.want) || (s.want == nil && err != nil) {
			t.Errorf("step %d: Key(%s) = %v, want %v", i, s.kid, err, s.want)
		}
		if n := srv.n.Load(); n != s.fetches {
			t.Errorf("step %d: %d fetches, want %d", i, n, s.fetches)
		}
		if s.advance {
			clk.Add(time.Minute)
		}
	}
	for _, p := range paths {
		if !strings.HasPrefix(p, "/soracom-public-keys/v1-") || CheckKID(strings.TrimPrefix(p, "/soracom-public-keys/")) != nil {
			t.Errorf("fetched %q", p)
		}
	}
}

// While a refetch for an unknown kid hangs, tokens of cached kids keep
// verifying without waiting for it.
func TestCachedKeysDuringRefetch(t *testing.T) {
	keys(t)
	set := jwksJSON(t, kidRSA, &testRSA.PublicKey)
	block := make(chan struct{})
	srv := newCountingServer(t, func(w http.ResponseWriter, r *http.Request) {
		if srvCount(r) > 1 {
			<-block
		}
		w.Write(set)
	})
	v, err := New(WithJWKS(srv.URL+"/jwks.json"), WithClock(func() time.Time { return t0 }))
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	good := rsaToken(t, claimsAt(t0))
	if _, err := v.Verify(ctx, good); err != nil {
		t.Fatal(err)
	}
	unknown := jws(t, hdr("RS256", kidOther), claimsAt(t0), func(in string) []byte { return signRS256(t, testRSA, in) })
	done := make(chan error)
	go func() {
		_, err := v.Verify(ctx, unknown)
		done <- err
	}()
	for srv.n.Load() < 2 {
		time.Sleep(time.Millisecond)
	}
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() {
			for range 20 {
				if _, err := v.Verify(ctx, good); err != nil {
					t.Error(err)
					return
				}
			}
		})
	}
	wg.Wait() // would hang if cached lookups waited for the refetch
	close(block)
	if err := <-done; !errors.Is(err, ErrUnknownKID) {
		t.Errorf("unknown kid: %v", err)
	}
}

// srvCount reads the request number the counting server assigned.
func srvCount(r *http.Request) int64 { return r.Context().Value(countKey{}).(int64) }

type countKey struct{}
