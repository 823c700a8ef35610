package main

import (
	"bytes"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"math/big"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/spf13/cobra"
)

const (
	cliKidRSA = "v1-0123456789abcdef0123456789abcdef-x509.pem"
	cliKidEC  = "v1-fedcba9876543210fedcba9876543210-x509.pem"
)

// tokenFixture is an issuer of hand-assembled test tokens plus its key files
// and a key server.
type tokenFixture struct {
	rsa     *rsa.PrivateKey
	ec      *ecdsa.PrivateKey
	pemFile string // RSA key, named by its kid
	srv     *httptest.Server
}

func newTokenFixture(t *testing.T) *tokenFixture {
	t.Helper()
	rk, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	ek, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	f := &tokenFixture{rsa: rk, ec: ek}
	pemOf := func(pub crypto.PublicKey) []byte {
		der, err := x509.MarshalPKIXPublicKey(pub)
		if err != nil {
			t.Fatal(err)
		}
		return pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der})
	}
	f.pemFile = filepath.Join(t.TempDir(), cliKidRSA)
	if err := os.WriteFile(f.pemFile, pemOf(&rk.PublicKey), 0o600); err != nil {
		t.Fatal(err)
	}
	b64 := base64.RawURLEncoding.EncodeToString
	pt, _ := ek.PublicKey.Bytes()
	jwks, _ := json.Marshal(map[string]any{"keys": []any{
		map[string]string{"kty": "RSA", "kid": cliKidRSA, "alg": "RS256", "use": "sig", "n": b64(rk.N.Bytes()), "e": b64(big.NewInt(int64(rk.E)).Bytes())},
		map[string]string{"kty": "EC", "crv": "P-256", "kid": cliKidEC, "alg": "ES256", "use": "sig", "x": b64(pt[1:33]), "y": b64(pt[33:])},
	}})
	pems := map[string][]byte{cliKidRSA: pemOf(&rk.PublicKey), cliKidEC: pemOf(&ek.PublicKey)}
	f.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/.well-known/jwks.json" {
			w.Write(jwks)
			return
		}
		if p, ok := pems[strings.TrimPrefix(r.URL.Path, "/soracom-public-keys/")]; ok {
			w.Write(p)
			return
		}
		http.NotFound(w, r)
	}))
	t.Cleanup(f.srv.Close)
	return f
}

// token signs claims (merged over valid Endorse claims issued now) with the
// RSA key, or the EC key when alg is ES256.
func (f *tokenFixture) token(t *testing.T, alg string, over map[string]any) string {
	t.Helper()
	now := time.Now().Unix()
	c := map[string]any{
		"iss": "https://soracom.io", "aud": "soracom-endorse-audience", "exp": now + 600,
		"jti": "hkK7qNyXzEMVAXfTq1MBuA", "iat": now, "nbf": now - 60, "sub": "soracom-endorse",
		"soracom-endorse-claim": map[string]any{"imsi": "001010000000001", "imei": "356938035643809",
			"requestParameters": map[string]string{"nonce": "xyz"}},
	}
	for k, v := range over {
		c[k] = v
	}
	kid := cliKidRSA
	if alg == "ES256" {
		kid = cliKidEC
	}
	hb, _ := json.Marshal(map[string]string{"kid": kid, "alg": alg})
	cb, _ := json.Marshal(c)
	enc := base64.RawURLEncoding.EncodeToString
	input := enc(hb) + "." + enc(cb)
	d := sha256.Sum256([]byte(input))
	var sig []byte
	if alg == "ES256" {
		r, s, err := ecdsa.Sign(rand.Reader, f.ec, d[:])
		if err != nil {
			t.Fatal(err)
		}
		sig = make([]byte, 64)
		r.FillBytes(sig[:32])
		s.FillBytes(sig[32:])
	} else {
		var err error
		if sig, err = rsa.SignPKCS1v15(nil, f.rsa, crypto.SHA256, d[:]); err != nil {
			t.Fatal(err)
		}
	}
	return input + "." + enc(sig)
}

func TestTokenVerifyCmd(t *testing.T) {
	f := newTokenFixture(t)
	good := f.token(t, "RS256", nil)
	goodEC := f.token(t, "ES256", nil)
	tests := []struct {
		name string
		args []string
	}{
		{"key file", []string{"--key", f.pemFile, good}},
		{"jwks RS256", []string{"--jwks", f.srv.URL + "/.well-known/jwks.json", good}},
		{"jwks ES256", []string{"--jwks", f.srv.URL + "/.well-known/jwks.json", goodEC}},
		{"keys url", []string{"--keys-url", f.srv.URL, good}},
		{"keys url ES256", []string{"--keys-url", f.srv.URL + "/soracom-public-keys/", goodEC}},
		{"bindings", []string{"--key", f.pemFile, "--imsi", "001010000000001", "--imei", "356938035643809", "--param", "nonce=xyz", good}},
		{"surrounding white space", []string{"--key", f.pemFile, " " + good + "\n"}},
	}
	for _, tc := range tests {
		out, errs, code := runCmd(t, append([]string{"token", "verify"}, tc.args...)...)
		if code != 0 {
			t.Errorf("%s: code %d: %s", tc.name, code, errs)
			continue
		}
		var c struct {
			Iss     string `json:"iss"`
			Exp     int64  `json:"exp"`
			Endorse struct {
				IMSI   string            `json:"imsi"`
				Params map[string]string `json:"requestParameters"`
			} `json:"soracom-endorse-claim"`
		}
		if err := json.Unmarshal([]byte(out), &c); err != nil {
			t.Errorf("%s: output is not JSON: %v\n%s", tc.name, err, out)
			continue
		}
		if c.Iss != "https://soracom.io" || c.Exp == 0 || c.Endorse.IMSI != "001010000000001" || c.Endorse.Params["nonce"] != "xyz" {
			t.Errorf("%s: claims %s", tc.name, out)
		}
		if !strings.HasPrefix(out, "{\n  \"iss\"") {
			t.Errorf("%s: claims not in token order: %s", tc.name, out)
		}
	}
}

func TestTokenVerifyCmdRejects(t *testing.T) {
	f := newTokenFixture(t)
	good := f.token(t, "RS256", nil)
	keyFlag := []string{"--key", f.pemFile}
	// The same RSA key in a file not named by a kid answers every kid.
	anyKid := filepath.Join(t.TempDir(), "issuer.pem")
	if b, err := os.ReadFile(f.pemFile); err != nil || os.WriteFile(anyKid, b, 0o600) != nil {
		t.Fatal("copying the key file")
	}
	segs := strings.Split(good, ".")
	none := base64.RawURLEncoding.EncodeToString([]byte(`{"kid":"`+cliKidRSA+`","alg":"none"}`)) + "." + segs[1] + "."
	tests := []struct {
		name string
		args []string
		want string
	}{
		{"expired", append(keyFlag, f.token(t, "RS256", map[string]any{"exp": time.Now().Unix() - 3600})), "token expired"},
		{"not yet valid", append(keyFlag, f.token(t, "RS256", map[string]any{"nbf": time.Now().Unix() + 3600})), "token not yet valid"},
		{"wrong iss", append(keyFlag, f.token(t, "RS256", map[string]any{"iss": "https://evil.example"})), "bad claim: iss"},
		{"wrong aud", []string{"--key", f.pemFile, "--aud", "mine", good}, "bad claim: aud"},
		{"tampered", append(keyFlag, segs[0]+"."+segs[1]+"."+strings.Repeat("A", len(segs[2])-2)+"AA"), "bad signature"},
		{"alg none", append(keyFlag, none), "algorithm not accepted"},
		{"ES256 on RSA key file", []string{"--key", anyKid, f.token(t, "ES256", nil)}, "algorithm not accepted"},
		{"unknown kid from JWKS", []string{"--jwks", f.srv.URL + "/.well-known/jwks.json", strings.Replace(good, segs[0], base64.RawURLEncoding.EncodeToString([]byte(`{"kid":"v1-00000000000000000000000000000000-x509.pem","alg":"RS256"}`)), 1)}, "unknown kid"},
		{"imsi binding", []string{"--key", f.pemFile, "--imsi", "001010000000002", good}, "not bound"},
		{"nonce binding", []string{"--key", f.pemFile, "--param", "nonce=abc", good}, `request parameter "nonce" does not match`},
		{"bad param flag", []string{"--key", f.pemFile, "--param", "nonce", good}, "want name=value"},
		{"bad imsi flag", []string{"--key", f.pemFile, "--imsi", "12ab", good}, "IMSI"},
		{"bad leeway", []string{"--key", f.pemFile, "--leeway", "1h", good}, "leeway"},
		{"no key source", []string{good}, "jwks"},
		{"two key sources", []string{"--key", f.pemFile, "--jwks", "http://127.0.0.1:1/", good}, "none of the others"},
		{"missing key file", []string{"--key", filepath.Join(t.TempDir(), "x.pem"), good}, "no such file"},
		{"jwks ftp", []string{"--jwks", "ftp://127.0.0.1/", good}, "scheme"},
		{"malformed", append(keyFlag, "not-a-token"), "malformed token"},
		{"empty", append(keyFlag, "  "), "empty token"},
		{"no token", keyFlag, "accepts 1 arg"},
	}
	for _, tc := range tests {
		out, errs, code := runCmd(t, append([]string{"token", "verify"}, tc.args...)...)
		if code == 0 {
			t.Errorf("%s: accepted: %s", tc.name, out)
			continue
		}
		if out != "" {
			t.Errorf("%s: printed claims on failure: %s", tc.name, out)
		}
		if !strings.Contains(errs, tc.want) || strings.Count(strings.TrimSpace(errs), "\n") != 0 {
			t.Errorf("%s: stderr %q, want one line containing %q", tc.name, errs, tc.want)
		}
	}
}

func TestTokenDecodeCmd(t *testing.T) {
	f := newTokenFixture(t)
	enc := base64.RawURLEncoding.EncodeToString
	// The header of the docs sample and the payload of the real 2023 token
	// (spec 1.5, 1.6), with a made-up signature: decode must show it all.
	soracom := enc([]byte(`{"kid":"v1-f2fea060b93f510bfb722f2cd4b3774e-x509.pem","alg":"RS256"}`)) + "." +
		enc([]byte(`{"iss":"https://soracom.io","aud":"soracom-endorse-audience","exp":1679929590,"jti":"ndP1Kau31s2dUBjIYbymGQ","iat":1679923590,"nbf":1679923530,"sub":"soracom-endorse","soracom-endorse-claim":{"imsi":"295050913244223","imei":"867698047437580","requestParameters":{"username":"foo"}}}`)) +
		"." + enc(make([]byte, 256))
	tests := []struct {
		name  string
		token string
		want  []string
	}{
		{"real SORACOM token shape", soracom, []string{`"status": "UNVERIFIED"`, `"kid": "v1-f2fea060b93f510bfb722f2cd4b3774e-x509.pem"`,
			`"imsi": "295050913244223"`, `"exp": "2023-03-27T15:06:30Z"`, `"nbf": "2023-03-27T13:25:30Z"`, `"signature_bytes": 256`}},
		{"expired and forged still decodes", strings.Join(strings.Split(f.token(t, "RS256", map[string]any{"exp": 1}), ".")[:2], ".") + "." + enc([]byte{1, 2, 3}),
			[]string{`"exp": 1`, `"exp": "1970-01-01T00:00:01Z"`, `"signature_bytes": 3`}},
		{"text payload", enc([]byte(`{"alg":"HS256"}`)) + "." + enc([]byte("hello")) + "." + enc([]byte{1}), []string{`"payload": "hello"`, `"alg": "HS256"`}},
		{"binary payload", enc([]byte(`{"alg":"none"}`)) + "." + enc([]byte{0xff, 0xfe}) + ".", []string{`"payload": "base64url:__4"`, `"signature_bytes": 0`}},
	}
	for _, tc := range tests {
		out, errs, code := runCmd(t, "token", "decode", tc.token)
		if code != 0 {
			t.Errorf("%s: code %d: %s", tc.name, code, errs)
			continue
		}
		if !json.Valid([]byte(out)) || !strings.HasPrefix(out, "{\n  \"status\": \"UNVERIFIED\"") {
			t.Errorf("%s: output not labelled JSON:\n%s", tc.name, out)
		}
		if !strings.Contains(errs, "UNVERIFIED") {
			t.Errorf("%s: no UNVERIFIED warning on stderr: %q", tc.name, errs)
		}
		for _, w := range tc.want {
			if !strings.Contains(out, w) {
				t.Errorf("%s: output lacks %s:\n%s", tc.name, w, out)
			}
		}
	}
	for _, bad := range []string{"abc", "a.b", enc([]byte("not json")) + "." + enc([]byte("{}")) + ".", ""} {
		if out, _, code := runCmd(t, "token", "decode", bad); code == 0 {
			t.Errorf("decode %q succeeded: %s", bad, out)
		}
	}
}

func TestTokenArgStdin(t *testing.T) {
	cmd := &cobra.Command{}
	cmd.SetIn(bytes.NewBufferString("  tok.en.x \n"))
	if got, err := tokenArg(cmd, "-"); got != "tok.en.x" || err != nil {
		t.Errorf("tokenArg(-) = %q, %v", got, err)
	}
	cmd.SetIn(bytes.NewBufferString("\n"))
	if _, err := tokenArg(cmd, "-"); err == nil {
		t.Error("empty stdin accepted")
	}
}

// TestTokenIssueThenVerify runs the two halves end to end through the CLI:
// `token issue` signs with the data dir's key, `keys export` publishes it,
// and `token verify --key` accepts the token, then refuses it for another
// IMSI.
func TestTokenIssueThenVerify(t *testing.T) {
	dir := t.TempDir()
	tok, errs, code := runCmd(t, "token", "issue", "--data-dir", dir, "--imsi", "001010000000001", "--param", "nonce=n1")
	if code != 0 {
		t.Fatalf("token issue: %s", errs)
	}
	pemOut, errs, code := runCmd(t, "keys", "export", "--data-dir", dir)
	if code != 0 {
		t.Fatalf("keys export: %s", errs)
	}
	keyFile := filepath.Join(t.TempDir(), "issuer.pem")
	if err := os.WriteFile(keyFile, []byte(pemOut), 0o600); err != nil {
		t.Fatal(err)
	}
	out, errs, code := runCmd(t, "token", "verify", "--key", keyFile, "--imsi", "001010000000001", strings.TrimSpace(tok))
	if code != 0 || !strings.Contains(out, `"imsi": "001010000000001"`) {
		t.Fatalf("token verify: code %d %s\n%s", code, errs, out)
	}
	if _, errs, code := runCmd(t, "token", "verify", "--key", keyFile, "--imsi", "001010000000002", strings.TrimSpace(tok)); code == 0 || !strings.Contains(errs, "not bound") {
		t.Errorf("token verify for another IMSI: code %d %s", code, errs)
	}
}
