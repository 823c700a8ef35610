package verify

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/hmac"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"math/big"
	"sync"
	"testing"
	"time"
)

// Test keys are generated once per test binary (RSA generation is slow).
var (
	testKeysOnce sync.Once
	testRSA      *rsa.PrivateKey // the issuer's RSA key
	testEC       *ecdsa.PrivateKey
	otherRSA     *rsa.PrivateKey // another issuer's key
	otherEC      *ecdsa.PrivateKey
)

const (
	kidRSA   = "v1-0123456789abcdef0123456789abcdef-x509.pem"
	kidEC    = "v1-fedcba9876543210fedcba9876543210-x509.pem"
	kidOther = "v1-00000000000000000000000000000bad-x509.pem"
)

// t0 is the fixed "now" of the tests: the iat of the real 2023 token (spec 1.6).
var t0 = time.Unix(1679923590, 0)

func keys(t testing.TB) {
	t.Helper()
	testKeysOnce.Do(func() {
		var err error
		if testRSA, err = rsa.GenerateKey(rand.Reader, 2048); err != nil {
			panic(err)
		}
		if otherRSA, err = rsa.GenerateKey(rand.Reader, 2048); err != nil {
			panic(err)
		}
		if testEC, err = ecdsa.GenerateKey(elliptic.P256(), rand.Reader); err != nil {
			panic(err)
		}
		if otherEC, err = ecdsa.GenerateKey(elliptic.P256(), rand.Reader); err != nil {
			panic(err)
		}
	})
}

func enc(b []byte) string { return base64.RawURLEncoding.EncodeToString(b) }

func mustJSON(t testing.TB, v any) string {
	t.Helper()
	if s, ok := v.(string); ok {
		return s
	}
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// signRS256 is RSASSA-PKCS1-v1_5 SHA-256 (RFC 7518 3.3).
func signRS256(t testing.TB, k *rsa.PrivateKey, input string) []byte {
	t.Helper()
	d := sha256.Sum256([]byte(input))
	sig, err := rsa.SignPKCS1v15(nil, k, crypto.SHA256, d[:])
	if err != nil {
		t.Fatal(err)
	}
	return sig
}

// signES256 is ECDSA P-256 SHA-256 as R || S (RFC 7518 3.4).
func signES256(t testing.TB, k *ecdsa.PrivateKey, input string) []byte {
	t.Helper()
	d := sha256.Sum256([]byte(input))
	r, s, err := ecdsa.Sign(rand.Reader, k, d[:])
	if err != nil {
		t.Fatal(err)
	}
	sig := make([]byte, 64)
	r.FillBytes(sig[:32])
	s.FillBytes(sig[32:])
	return sig
}

func signHS256(secret []byte, input string) []byte {
	m := hmac.New(sha256.New, secret)
	m.Write([]byte(input))
	return m.Sum(nil)
}

// jws assembles a compact JWS from header and claims (JSON text or values)
// and the signature sign returns over the signing input.
func jws(t testing.TB, header, claims any, sign func(input string) []byte) string {
	t.Helper()
	input := enc([]byte(mustJSON(t, header))) + "." + enc([]byte(mustJSON(t, claims)))
	return input + "." + enc(sign(input))
}

// claimsAt are Endorse claims issued at iat with a 600 s lifetime, in the
// shape of the real 2023 token (spec 1.6).
func claimsAt(iat time.Time) map[string]any {
	return map[string]any{
		"iss": "https://soracom.io",
		"aud": "soracom-endorse-audience",
		"exp": iat.Unix() + 600,
		"jti": "ndP1Kau31s2dUBjIYbymGQ",
		"iat": iat.Unix(),
		"nbf": iat.Unix() - 60,
		"sub": "soracom-endorse",
		"soracom-endorse-claim": map[string]any{
			"imsi":              "295050913244223",
			"imei":              "867698047437580",
			"requestParameters": map[string]string{"username": "foo", "nonce": "n-0123"},
		},
	}
}

func with(c map[string]any, kv ...any) map[string]any {
	out := map[string]any{}
	for k, v := range c {
		out[k] = v
	}
	for i := 0; i < len(kv); i += 2 {
		if kv[i+1] == nil {
			delete(out, kv[i].(string))
		} else {
			out[kv[i].(string)] = kv[i+1]
		}
	}
	return out
}

func hdr(alg, kid string) string {
	return fmt.Sprintf(`{"kid":%q,"alg":%q}`, kid, alg)
}

func rsaToken(t testing.TB, claims any) string {
	t.Helper()
	keys(t)
	return jws(t, hdr("RS256", kidRSA), claims, func(in string) []byte { return signRS256(t, testRSA, in) })
}

func ecToken(t testing.TB, claims any) string {
	t.Helper()
	keys(t)
	return jws(t, hdr("ES256", kidEC), claims, func(in string) []byte { return signES256(t, testEC, in) })
}

func pemPublic(t testing.TB, pub crypto.PublicKey, headers map[string]string) []byte {
	t.Helper()
	der, err := x509.MarshalPKIXPublicKey(pub)
	if err != nil {
		t.Fatal(err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Headers: headers, Bytes: der})
}

// jwkJSON renders pub as a JWK (RFC 7517/7518 6).
func jwkJSON(t testing.TB, kid string, pub crypto.PublicKey) map[string]any {
	t.Helper()
	switch k := pub.(type) {
	case *rsa.PublicKey:
		return map[string]any{"kty": "RSA", "kid": kid, "alg": "RS256", "use": "sig",
			"n": enc(k.N.Bytes()), "e": enc(big.NewInt(int64(k.E)).Bytes())}
	case *ecdsa.PublicKey:
		b, err := k.Bytes()
		if err != nil {
			t.Fatal(err)
		}
		return map[string]any{"kty": "EC", "crv": "P-256", "kid": kid, "alg": "ES256", "use": "sig",
			"x": enc(b[1:33]), "y": enc(b[33:])}
	}
	t.Fatalf("jwk: %T", pub)
	return nil
}

func jwksJSON(t testing.TB, keys ...any) []byte {
	t.Helper()
	var l []any
	for i := 0; i < len(keys); i += 2 {
		l = append(l, jwkJSON(t, keys[i].(string), keys[i+1]))
	}
	return []byte(mustJSON(t, map[string]any{"keys": l}))
}

// clock is a settable test clock, safe for concurrent use.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *clock) Add(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}
