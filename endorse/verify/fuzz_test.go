package verify

import (
	"bytes"
	"context"
	"strings"
	"testing"
	"time"
)

// FuzzParse feeds arbitrary strings to the token parser and the verifier.
// Neither may panic; Parse must be consistent with Split; and the verifier
// may accept only the two genuinely signed seeds, byte for byte.
func FuzzParse(f *testing.F) {
	keys(f)
	c := claimsAt(t0)
	good := []string{rsaToken(f, c), ecToken(f, c)}
	for _, s := range good {
		f.Add(s)
		f.Add(s[:len(s)-1])
		f.Add(strings.Replace(s, ".", "..", 1))
	}
	f.Add(jws(f, hdr("none", kidRSA), c, func(string) []byte { return nil }))
	f.Add(jws(f, `{"kid":"`+kidRSA+`","alg":"RS256","crit":[]}`, c, func(string) []byte { return []byte{1} }))
	f.Add(jws(f, hdr("RS256", kidRSA), `{"exp":1e308,"aud":["a",1]}`, func(string) []byte { return []byte{1} }))
	f.Add("")
	f.Add("..")
	f.Add("e30.e30.")

	v, err := New(WithKeySource(Keys{kidRSA: &testRSA.PublicKey, kidEC: &testEC.PublicKey}),
		WithClock(func() time.Time { return t0 }))
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, s string) {
		parts, splitErr := Split(s)
		tok, err := Parse(s)
		if err == nil {
			if splitErr != nil {
				t.Fatalf("Parse accepted what Split refused: %v", splitErr)
			}
			if !bytes.Equal(tok.Payload, parts.Payload) || tok.SigningInput != parts.SigningInput ||
				!strings.HasPrefix(s, tok.SigningInput+".") {
				t.Fatalf("Parse and Split disagree on %q", s)
			}
		}
		claims, err := v.Verify(context.Background(), s)
		if err == nil {
			if s != good[0] && s != good[1] {
				t.Fatalf("verifier accepted a token it was never given: %q", s)
			}
			if claims.Endorse.IMSI != "295050913244223" {
				t.Fatalf("claims %+v", claims)
			}
		}
	})
}

// FuzzParseJWKS checks that no JWK Set, however malformed, panics the
// parser, and that every key it returns is usable (pinned to an algorithm).
func FuzzParseJWKS(f *testing.F) {
	keys(f)
	f.Add(jwksJSON(f, kidRSA, &testRSA.PublicKey, kidEC, &testEC.PublicKey))
	f.Add([]byte(`{"keys":[{"kty":"RSA","kid":"` + kidRSA + `","n":"AQAB","e":"AQAB"}]}`))
	f.Add([]byte(`{"keys":[{"kty":"EC","crv":"P-256","kid":"` + kidEC + `","x":"","y":""}]}`))
	f.Add([]byte(`{"keys":null}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		set, err := ParseJWKS(b)
		if err != nil {
			return
		}
		for kid, k := range set {
			if CheckKID(kid) != nil {
				t.Fatalf("kid %q accepted", kid)
			}
			if _, err := Algorithm(k); err != nil {
				t.Fatalf("unusable key for %s: %v", kid, err)
			}
		}
	})
}

// FuzzParsePEM checks the PEM key parsers on arbitrary text.
func FuzzParsePEM(f *testing.F) {
	keys(f)
	f.Add(pemPublic(f, &testRSA.PublicKey, nil))
	f.Add(pemPublic(f, &testEC.PublicKey, map[string]string{"kid": kidEC}))
	f.Add([]byte("-----BEGIN PUBLIC KEY-----\nMAA=\n-----END PUBLIC KEY-----\n"))
	f.Fuzz(func(t *testing.T, b []byte) {
		if k, err := ParsePublicKeyPEM(b); err == nil {
			if _, err := Algorithm(k); err != nil {
				t.Fatalf("unusable key accepted: %v", err)
			}
		}
		_, _ = ParsePEMKeys(b, kidRSA)
	})
}
