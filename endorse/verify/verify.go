// Package verify owns the checking of SORACOM Endorse tokens (JWS compact,
// RS256 or ES256) for the servers that receive them: the key sources (a JWK
// Set URL, the /soracom-public-keys/{kid} PEM layout of SORACOM and of the
// simgate issuer, a PEM file), the signature and claim checks, and the
// net/http middleware that puts verified claims in the request context.
//
// The JWS handling is written on crypto/rsa and crypto/ecdsa rather than a
// JWT library so that each guarantee is explicit: the algorithm is pinned to
// the key's type before anything else (no "none", no HMAC, no RSA/EC
// confusion), only one kid form reaches a key source, base64url is strict,
// and every failure maps to one of the sentinel errors below.
package verify

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/subtle"
	"errors"
	"fmt"
	"math/big"
	"net/http"
	"time"
)

// Errors a verification can fail with; each failure wraps exactly one.
var (
	// ErrMalformed: not a JWS compact serialisation with JSON header and claims.
	ErrMalformed = errors.New("malformed token")
	// ErrAlgorithm: alg is not the one pinned to the key type (or is none, HS256, ...).
	ErrAlgorithm = errors.New("algorithm not accepted")
	// ErrBadKID: the kid is not of the form v1-<32 lowercase hex>-x509.pem.
	ErrBadKID = errors.New("bad kid")
	// ErrUnknownKID: the key source has no key with this kid.
	ErrUnknownKID = errors.New("unknown kid")
	// ErrKeySource: the keys could not be fetched (not the token's fault).
	ErrKeySource = errors.New("key source unavailable")
	// ErrBadSignature: the signature does not verify with the kid's key.
	ErrBadSignature = errors.New("bad signature")
	// ErrExpired: now is past exp plus the leeway.
	ErrExpired = errors.New("token expired")
	// ErrNotYetValid: now is before nbf (or, without nbf, iat) minus the leeway.
	ErrNotYetValid = errors.New("token not yet valid")
	// ErrClaim: iss, aud or sub is wrong, or exp is missing.
	ErrClaim = errors.New("bad claim")
	// ErrBinding: the token is valid but not for the expected IMSI, IMEI or
	// request parameter.
	ErrBinding = errors.New("token not bound to the expected identity")
)

// Endorse's constant claims (spec 1.6).
const (
	DefaultIssuer   = "https://soracom.io"
	DefaultAudience = "soracom-endorse-audience"
	DefaultSubject  = "soracom-endorse"
	DefaultLeeway   = 30 * time.Second
	MaxLeeway       = 5 * time.Minute
)

// Expect binds a token to an identity: every non-empty field must match the
// token's soracom-endorse-claim exactly.
type Expect struct {
	IMSI string
	IMEI string
	// RequestParameters must each be present in requestParameters with this
	// value (for example a login nonce, spec 1.3).
	RequestParameters map[string]string
}

// Verifier checks Endorse tokens. It is safe for concurrent use.
type Verifier struct {
	src      KeySource
	issuer   string
	audience string
	subject  string
	leeway   time.Duration
	now      func() time.Time
	expect   Expect
}

// Option configures New.
type Option func(*options) error

type options struct {
	v       Verifier
	sources int
	mkSrc   func(HTTPConfig) (KeySource, error)
	http    HTTPConfig
}

// WithKeySource verifies against src.
func WithKeySource(src KeySource) Option {
	return func(o *options) error {
		if src == nil {
			return errors.New("nil key source")
		}
		o.sources++
		o.mkSrc = func(HTTPConfig) (KeySource, error) { return src, nil }
		return nil
	}
}

// WithJWKS verifies against the JWK Set at url (see JWKS).
func WithJWKS(url string) Option {
	return func(o *options) error {
		o.sources++
		o.mkSrc = func(c HTTPConfig) (KeySource, error) { return NewJWKS(url, c) }
		return nil
	}
}

// WithKeysURL verifies against PEM keys at <url>/soracom-public-keys/{kid}
// (see KeysURL; SORACOMKeysURL for real SORACOM tokens).
func WithKeysURL(url string) Option {
	return func(o *options) error {
		o.sources++
		o.mkSrc = func(c HTTPConfig) (KeySource, error) { return NewKeysURL(url, c) }
		return nil
	}
}

// WithPEMFile verifies against the keys in a PEM file (see PEMKeys).
func WithPEMFile(path string) Option {
	return func(o *options) error {
		o.sources++
		o.mkSrc = func(HTTPConfig) (KeySource, error) { return LoadPEMFile(path) }
		return nil
	}
}

// WithHTTPClient sets the client of the JWKS and keys-URL sources.
func WithHTTPClient(c *http.Client) Option {
	return func(o *options) error { o.http.Client = c; return nil }
}

// WithMinRefetch sets the least time between fetches that miss a kid
// (default DefaultMinRefetch).
func WithMinRefetch(d time.Duration) Option {
	return func(o *options) error {
		if d <= 0 {
			return fmt.Errorf("min refetch interval %s: must be positive", d)
		}
		o.http.MinRefetch = d
		return nil
	}
}

// WithIssuer sets the required iss (default DefaultIssuer; the simgate
// issuer's is configurable).
func WithIssuer(iss string) Option {
	return func(o *options) error {
		if iss == "" {
			return errors.New("empty issuer")
		}
		o.v.issuer = iss
		return nil
	}
}

// WithAudience sets the audience aud must contain (default DefaultAudience).
func WithAudience(aud string) Option {
	return func(o *options) error {
		if aud == "" {
			return errors.New("empty audience")
		}
		o.v.audience = aud
		return nil
	}
}

// WithSubject sets the required sub (default DefaultSubject).
func WithSubject(sub string) Option {
	return func(o *options) error {
		if sub == "" {
			return errors.New("empty subject")
		}
		o.v.subject = sub
		return nil
	}
}

// WithLeeway sets the clock skew tolerated on exp, nbf and iat
// (default DefaultLeeway, at most MaxLeeway).
func WithLeeway(d time.Duration) Option {
	return func(o *options) error {
		if d < 0 || d > MaxLeeway {
			return fmt.Errorf("leeway %s: want 0..%s", d, MaxLeeway)
		}
		o.v.leeway = d
		return nil
	}
}

// WithClock sets the time source (tests).
func WithClock(now func() time.Time) Option {
	return func(o *options) error {
		if now == nil {
			return errors.New("nil clock")
		}
		o.v.now = now
		o.http.Now = now
		return nil
	}
}

// WithIMSI requires the token's IMSI to be imsi (TS 23.003 2.2: up to 15
// digits).
func WithIMSI(imsi string) Option {
	return func(o *options) error {
		if !digits(imsi, 6, 15) {
			return fmt.Errorf("IMSI %q: want 6 to 15 digits", imsi)
		}
		o.v.expect.IMSI = imsi
		return nil
	}
}

// WithIMEI requires the token's IMEI to be imei (TS 23.003 6.2: 15 digits,
// or 16 for an IMEISV).
func WithIMEI(imei string) Option {
	return func(o *options) error {
		if !digits(imei, 15, 16) {
			return fmt.Errorf("IMEI %q: want 15 or 16 digits", imei)
		}
		o.v.expect.IMEI = imei
		return nil
	}
}

// WithRequestParameter requires requestParameters[name] == value.
func WithRequestParameter(name, value string) Option {
	return func(o *options) error {
		if name == "" {
			return errors.New("empty request parameter name")
		}
		if o.v.expect.RequestParameters == nil {
			o.v.expect.RequestParameters = map[string]string{}
		}
		o.v.expect.RequestParameters[name] = value
		return nil
	}
}

func digits(s string, min, max int) bool {
	if len(s) < min || len(s) > max {
		return false
	}
	for _, c := range []byte(s) {
		if c < '0' || c > '9' {
			return false
		}
	}
	return true
}

// New builds a Verifier. Exactly one key source option is required.
func New(opts ...Option) (*Verifier, error) {
	o := options{v: Verifier{
		issuer:   DefaultIssuer,
		audience: DefaultAudience,
		subject:  DefaultSubject,
		leeway:   DefaultLeeway,
		now:      time.Now,
	}}
	for _, opt := range opts {
		if err := opt(&o); err != nil {
			return nil, fmt.Errorf("verify: %w", err)
		}
	}
	if o.sources != 1 {
		return nil, fmt.Errorf("verify: want exactly one key source (JWKS URL, keys URL, PEM file or KeySource), have %d", o.sources)
	}
	src, err := o.mkSrc(o.http)
	if err != nil {
		return nil, err
	}
	v := o.v
	v.src = src
	return &v, nil
}

// Verify checks token and returns its claims. The order follows RFC 7515
// 5.2 and RFC 7519 7.2, with the hardening of spec 1.9: header, algorithm
// and kid form first, then the key, the signature, and only then the claims.
func (v *Verifier) Verify(ctx context.Context, token string) (*Claims, error) {
	return v.VerifyExpect(ctx, token, Expect{})
}

// VerifyExpect is Verify that also requires e (in addition to the
// Verifier's own expectations), for bindings that change per request such
// as a login nonce.
func (v *Verifier) VerifyExpect(ctx context.Context, token string, e Expect) (*Claims, error) {
	parts, err := Split(token)
	if err != nil {
		return nil, err
	}
	var h Header
	if err := decodeHeader(parts.Header, &h); err != nil {
		return nil, err
	}
	// RFC 7515 4.1.11: extensions we do not understand must be rejected.
	if h.Critical != nil {
		return nil, fmt.Errorf("%w: header has \"crit\", no extension is supported", ErrMalformed)
	}
	if h.Algorithm != "RS256" && h.Algorithm != "ES256" {
		return nil, fmt.Errorf("%w: alg %.20q (want RS256 or ES256)", ErrAlgorithm, h.Algorithm)
	}
	if err := CheckKID(h.KeyID); err != nil {
		return nil, err
	}
	key, err := v.src.Key(ctx, h.KeyID)
	if err != nil {
		return nil, err
	}
	alg, err := Algorithm(key)
	if err != nil {
		return nil, fmt.Errorf("key %s: %w", h.KeyID, err)
	}
	if h.Algorithm != alg {
		return nil, fmt.Errorf("%w: alg %s but key %s is for %s", ErrAlgorithm, h.Algorithm, h.KeyID, alg)
	}
	if err := verifySignature(key, parts.SigningInput, parts.Signature); err != nil {
		return nil, err
	}
	c := new(Claims)
	if err := decodeClaims(parts.Payload, c); err != nil {
		return nil, err
	}
	if err := v.checkClaims(c); err != nil {
		return nil, err
	}
	if err := checkExpect(c, v.expect); err != nil {
		return nil, err
	}
	if err := checkExpect(c, e); err != nil {
		return nil, err
	}
	return c, nil
}

// verifySignature checks sig over input with key (RFC 7518 3.3, 3.4).
func verifySignature(key crypto.PublicKey, input string, sig []byte) error {
	digest := sha256.Sum256([]byte(input))
	switch k := key.(type) {
	case *rsa.PublicKey:
		// RSASSA-PKCS1-v1_5 with SHA-256; the signature is k octets long.
		if len(sig) != k.Size() {
			return fmt.Errorf("%w: RS256 signature is %d bytes, key needs %d", ErrBadSignature, len(sig), k.Size())
		}
		if err := rsa.VerifyPKCS1v15(k, crypto.SHA256, digest[:], sig); err != nil {
			return fmt.Errorf("%w: RS256", ErrBadSignature)
		}
	case *ecdsa.PublicKey:
		// RFC 7518 3.4: R || S, each 32 octets, not DER.
		if len(sig) != 64 {
			return fmt.Errorf("%w: ES256 signature is %d bytes, want 64", ErrBadSignature, len(sig))
		}
		r := new(big.Int).SetBytes(sig[:32])
		s := new(big.Int).SetBytes(sig[32:])
		if !ecdsa.Verify(k, digest[:], r, s) {
			return fmt.Errorf("%w: ES256", ErrBadSignature)
		}
	default:
		return fmt.Errorf("%w: key type %T", ErrAlgorithm, key)
	}
	return nil
}

// checkClaims applies RFC 7519 4.1.1-4.1.5 and spec 1.9 step 4.
func (v *Verifier) checkClaims(c *Claims) error {
	if c.Issuer != v.issuer {
		return fmt.Errorf("%w: iss %.80q, want %q", ErrClaim, c.Issuer, v.issuer)
	}
	if !c.Audience.Contains(v.audience) {
		return fmt.Errorf("%w: aud %.80q does not include %q", ErrClaim, []string(c.Audience), v.audience)
	}
	if c.Subject != v.subject {
		return fmt.Errorf("%w: sub %.80q, want %q", ErrClaim, c.Subject, v.subject)
	}
	if c.ExpiresAt == 0 {
		return fmt.Errorf("%w: no exp", ErrClaim)
	}
	now := v.now()
	// RFC 7519 4.1.4: not accepted on or after exp.
	if exp := c.ExpiresAt.Time().Add(v.leeway); !now.Before(exp) {
		return fmt.Errorf("%w: exp %s, now %s (leeway %s)", ErrExpired, c.ExpiresAt, stamp(now), v.leeway)
	}
	// RFC 7519 4.1.5: not accepted before nbf.
	if c.NotBefore != 0 && now.Before(c.NotBefore.Time().Add(-v.leeway)) {
		return fmt.Errorf("%w: nbf %s, now %s (leeway %s)", ErrNotYetValid, c.NotBefore, stamp(now), v.leeway)
	}
	// Without nbf, a token issued in the future comes from a skewed clock.
	// (Endorse sets nbf = iat-60 precisely to absorb skew, so with nbf the
	// iat is not checked.)
	if c.NotBefore == 0 && c.IssuedAt != 0 && now.Before(c.IssuedAt.Time().Add(-v.leeway)) {
		return fmt.Errorf("%w: iat %s is in the future, now %s (leeway %s)", ErrNotYetValid, c.IssuedAt, stamp(now), v.leeway)
	}
	return nil
}

func stamp(t time.Time) string { return t.UTC().Format(time.RFC3339) }

func checkExpect(c *Claims, e Expect) error {
	if e.IMSI != "" && c.Endorse.IMSI != e.IMSI {
		return fmt.Errorf("%w: imsi %.20q, want %q", ErrBinding, c.Endorse.IMSI, e.IMSI)
	}
	if e.IMEI != "" && c.Endorse.IMEI != e.IMEI {
		return fmt.Errorf("%w: imei %.20q, want %q", ErrBinding, c.Endorse.IMEI, e.IMEI)
	}
	for name, want := range e.RequestParameters {
		got, ok := c.Endorse.RequestParameters[name]
		if !ok {
			return fmt.Errorf("%w: request parameter %q missing", ErrBinding, name)
		}
		// The expected value may be a secret nonce: compare in constant time.
		if subtle.ConstantTimeCompare([]byte(got), []byte(want)) != 1 {
			return fmt.Errorf("%w: request parameter %q does not match", ErrBinding, name)
		}
	}
	return nil
}
