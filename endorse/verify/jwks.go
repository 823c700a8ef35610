package verify

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rsa"
	"encoding/json"
	"fmt"
	"math/big"
	"net/http"
	"sync/atomic"
)

// JWKS is a KeySource reading a JWK Set (RFC 7517 5), such as the issuer's
// /.well-known/jwks.json. The set is fetched on first use and fetched again
// when a token names a kid it lacks, at most once per MinRefetch after a
// fetch that did not find the wanted kid. A failed fetch keeps the last set.
type JWKS struct {
	url  string
	cfg  HTTPConfig
	keys atomic.Pointer[Keys]
	gate gate
}

// NewJWKS returns a source for the JWK Set at rawURL. Nothing is fetched
// until the first Key call.
func NewJWKS(rawURL string, cfg HTTPConfig) (*JWKS, error) {
	u, err := checkURL("JWKS", rawURL)
	if err != nil {
		return nil, err
	}
	cfg = cfg.withDefaults()
	return &JWKS{url: u.String(), cfg: cfg, gate: gate{cfg: cfg}}, nil
}

// Key implements KeySource.
func (s *JWKS) Key(ctx context.Context, kid string) (crypto.PublicKey, error) {
	if err := CheckKID(kid); err != nil {
		return nil, err
	}
	return s.gate.lookupOrFetch(ctx, kid, s.lookup, func(ctx context.Context) (bool, error) {
		body, status, err := httpGet(ctx, s.cfg.Client, s.url, maxJWKSBody)
		if err != nil {
			return false, fmt.Errorf("jwks: %w", err)
		}
		if status != http.StatusOK {
			return false, fmt.Errorf("jwks: GET %s: status %d", s.url, status)
		}
		set, err := ParseJWKS(body)
		if err != nil {
			return false, fmt.Errorf("jwks: %s: %w", s.url, err)
		}
		s.keys.Store(&set)
		_, found := set[kid]
		return found, nil
	})
}

func (s *JWKS) lookup(kid string) (crypto.PublicKey, bool) {
	set := s.keys.Load()
	if set == nil {
		return nil, false
	}
	k, ok := (*set)[kid]
	return k, ok
}

// jwk holds the members of a JSON Web Key this verifier reads
// (RFC 7517 4, RFC 7518 6).
type jwk struct {
	Kty string `json:"kty"`
	Kid string `json:"kid"`
	Use string `json:"use"`
	Alg string `json:"alg"`
	N   string `json:"n"`
	E   string `json:"e"`
	Crv string `json:"crv"`
	X   string `json:"x"`
	Y   string `json:"y"`
}

// ParseJWKS reads a JWK Set into keys by kid. Keys this verifier cannot use
// are skipped, as RFC 7517 5 asks: another kty or curve, "use" other than
// "sig", an "alg" other than the one pinned to the key type, or a kid not of
// the Endorse form. A usable key that is malformed, or two keys with one
// kid, fail the whole set.
func ParseJWKS(data []byte) (Keys, error) {
	var doc struct {
		Keys []json.RawMessage `json:"keys"`
	}
	if err := decodeObject(data, &doc); err != nil {
		return nil, fmt.Errorf("JWK Set: %w", err)
	}
	if doc.Keys == nil {
		return nil, fmt.Errorf("JWK Set: no \"keys\" member")
	}
	set := Keys{}
	for i, raw := range doc.Keys {
		var k jwk
		if err := decodeObject(raw, &k); err != nil {
			return nil, fmt.Errorf("JWK Set: key %d: %w", i, err)
		}
		if CheckKID(k.Kid) != nil || (k.Use != "" && k.Use != "sig") {
			continue
		}
		key, alg, err := k.publicKey()
		if err != nil {
			return nil, fmt.Errorf("JWK Set: key %q: %w", k.Kid, err)
		}
		if key == nil || (k.Alg != "" && k.Alg != alg) {
			continue
		}
		if _, dup := set[k.Kid]; dup {
			return nil, fmt.Errorf("JWK Set: duplicate kid %q", k.Kid)
		}
		set[k.Kid] = key
	}
	return set, nil
}

// publicKey returns the key and its pinned algorithm, or a nil key when the
// kty or curve is not one this verifier uses.
func (k *jwk) publicKey() (crypto.PublicKey, string, error) {
	var key crypto.PublicKey
	switch {
	case k.Kty == "RSA":
		// RFC 7518 6.3.1: n and e are unsigned big-endian base64url.
		n, err := b64.DecodeString(k.N)
		if err != nil || len(n) == 0 {
			return nil, "", fmt.Errorf("bad RSA modulus \"n\"")
		}
		e, err := b64.DecodeString(k.E)
		if err != nil || len(e) == 0 || len(e) > 4 {
			return nil, "", fmt.Errorf("bad RSA exponent \"e\"")
		}
		var exp int64
		for _, b := range e {
			exp = exp<<8 | int64(b)
		}
		if exp > 1<<31-1 {
			return nil, "", fmt.Errorf("RSA exponent too large")
		}
		key = &rsa.PublicKey{N: new(big.Int).SetBytes(n), E: int(exp)}
	case k.Kty == "EC" && k.Crv == "P-256":
		// RFC 7518 6.2.1.2: x and y are the full 32 octets.
		x, errX := b64.DecodeString(k.X)
		y, errY := b64.DecodeString(k.Y)
		if errX != nil || errY != nil || len(x) != 32 || len(y) != 32 {
			return nil, "", fmt.Errorf("bad P-256 coordinates")
		}
		pub, err := ecdsa.ParseUncompressedPublicKey(elliptic.P256(), append(append([]byte{4}, x...), y...))
		if err != nil {
			return nil, "", fmt.Errorf("P-256 point: %w", err)
		}
		key = pub
	default:
		return nil, "", nil
	}
	alg, err := Algorithm(key)
	if err != nil {
		return nil, "", err
	}
	return key, alg, nil
}
