package verify

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"
)

// MaxTokenLen bounds the compact serialisation accepted by Split. Endorse
// tokens are well under 2 KiB; request parameters can grow them, but never to
// this size, and the bound keeps decoding of hostile input cheap.
const MaxTokenLen = 16 << 10

// b64 is base64url without padding (RFC 7515 2: Base64url Encoding), strict:
// non-zero trailing bits are rejected.
var b64 = base64.RawURLEncoding.Strict()

// Header is the JOSE header of an Endorse token (spec 1.5:
// {"kid":"v1-<32 hex>-x509.pem","alg":"RS256"}).
type Header struct {
	KeyID     string `json:"kid"`
	Algorithm string `json:"alg"`
	Type      string `json:"typ,omitempty"`
	// Critical is the raw "crit" member (RFC 7515 4.1.11). This verifier
	// understands no extension, so a token carrying crit is rejected.
	Critical json.RawMessage `json:"crit,omitempty"`
}

// Claims are the claims of an Endorse token (spec 1.6). Fields are in the
// order real tokens serialise them.
type Claims struct {
	Issuer    string       `json:"iss,omitempty"`
	Audience  Audience     `json:"aud,omitempty"`
	ExpiresAt NumericDate  `json:"exp,omitempty"`
	ID        string       `json:"jti,omitempty"`
	IssuedAt  NumericDate  `json:"iat,omitempty"`
	NotBefore NumericDate  `json:"nbf,omitempty"`
	Subject   string       `json:"sub,omitempty"`
	Endorse   EndorseClaim `json:"soracom-endorse-claim"`
}

// EndorseClaim is the "soracom-endorse-claim" object: only the items enabled
// in the group's parametersToEndorse are present (spec 1.6, 1.7).
type EndorseClaim struct {
	IMSI              string            `json:"imsi,omitempty"`
	IMEI              string            `json:"imei,omitempty"`
	MSISDN            string            `json:"msisdn,omitempty"`
	SimID             string            `json:"simId,omitempty"`
	RequestParameters map[string]string `json:"requestParameters,omitempty"`
}

// NumericDate is a JWT time: seconds since the Unix epoch (RFC 7519 2).
// Zero means the claim is absent. Values lie in 0..MaxNumericDate.
type NumericDate int64

// MaxNumericDate is 9999-12-31T23:59:59Z; later dates are refused as
// malformed, which keeps time arithmetic away from overflow.
const MaxNumericDate = 253402300799

// String formats d as RFC 3339 UTC.
func (d NumericDate) String() string { return d.Time().Format(time.RFC3339) }

// Time returns d as a time.Time (the zero Time when d is zero).
func (d NumericDate) Time() time.Time {
	if d == 0 {
		return time.Time{}
	}
	return time.Unix(int64(d), 0).UTC()
}

// UnmarshalJSON accepts any JSON number; RFC 7519 2 allows non-integer
// values, which are truncated down to the second.
func (d *NumericDate) UnmarshalJSON(b []byte) error {
	s := string(b)
	if s == "null" {
		*d = 0
		return nil
	}
	if len(s) == 0 || (s[0] != '-' && (s[0] < '0' || s[0] > '9')) {
		return fmt.Errorf("NumericDate: not a number: %.20s", s)
	}
	f, err := strconv.ParseFloat(s, 64)
	if n, ierr := strconv.ParseInt(s, 10, 64); ierr == nil {
		f, err = float64(n), nil
	}
	if err != nil || math.IsNaN(f) || f < 0 || f > MaxNumericDate {
		return fmt.Errorf("NumericDate: %.20s is not a time in 0..%d", s, int64(MaxNumericDate))
	}
	*d = NumericDate(math.Floor(f))
	return nil
}

// Audience is the "aud" claim: one string or an array of strings
// (RFC 7519 4.1.3). Endorse uses a single string.
type Audience []string

// UnmarshalJSON accepts a string or an array of strings.
func (a *Audience) UnmarshalJSON(b []byte) error {
	if bytes.Equal(b, []byte("null")) {
		*a = nil
		return nil
	}
	if len(b) > 0 && b[0] == '"' {
		var s string
		if err := json.Unmarshal(b, &s); err != nil {
			return err
		}
		*a = Audience{s}
		return nil
	}
	var l []string
	if err := json.Unmarshal(b, &l); err != nil {
		return fmt.Errorf("aud: want a string or an array of strings: %w", err)
	}
	*a = l
	return nil
}

// MarshalJSON writes a single audience as a string, as Endorse does.
func (a Audience) MarshalJSON() ([]byte, error) {
	if len(a) == 1 {
		return json.Marshal(a[0])
	}
	return json.Marshal([]string(a))
}

// Contains reports whether aud is one of the audiences.
func (a Audience) Contains(aud string) bool {
	for _, s := range a {
		if s == aud {
			return true
		}
	}
	return false
}

// Parts are the three decoded segments of a JWS compact serialisation.
type Parts struct {
	Header    []byte // decoded JOSE header (JSON text)
	Payload   []byte // decoded payload
	Signature []byte
	// SigningInput is ASCII(BASE64URL(header) || '.' || BASE64URL(payload)),
	// the bytes the signature covers (RFC 7515 5.1 step 8).
	SigningInput string
}

// Split decodes a JWS compact serialisation (RFC 7515 7.1) without
// interpreting or verifying it: exactly three segments of unpadded base64url.
func Split(token string) (*Parts, error) {
	if len(token) == 0 {
		return nil, fmt.Errorf("%w: empty token", ErrMalformed)
	}
	if len(token) > MaxTokenLen {
		return nil, fmt.Errorf("%w: token is %d bytes, limit %d", ErrMalformed, len(token), MaxTokenLen)
	}
	// The base64 decoder skips CR and LF; refuse anything outside the
	// base64url alphabet and the two separators so that one token has one
	// spelling.
	for i := 0; i < len(token); i++ {
		c := token[i]
		if !(c >= 'A' && c <= 'Z' || c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '-' || c == '_' || c == '.') {
			return nil, fmt.Errorf("%w: byte 0x%02x at offset %d is not base64url", ErrMalformed, c, i)
		}
	}
	h, rest, ok1 := strings.Cut(token, ".")
	p, s, ok2 := strings.Cut(rest, ".")
	if !ok1 || !ok2 || strings.Contains(s, ".") {
		return nil, fmt.Errorf("%w: want 3 dot-separated segments, have %d", ErrMalformed, strings.Count(token, ".")+1)
	}
	var parts Parts
	var err error
	if parts.Header, err = decodeSegment("header", h); err != nil {
		return nil, err
	}
	if parts.Payload, err = decodeSegment("payload", p); err != nil {
		return nil, err
	}
	// An unsecured JWS (alg "none", RFC 7519 6.1) has an empty signature;
	// it splits, and the verifier rejects it by its alg.
	if s != "" {
		if parts.Signature, err = decodeSegment("signature", s); err != nil {
			return nil, err
		}
	}
	parts.SigningInput = token[:len(h)+1+len(p)]
	return &parts, nil
}

func decodeSegment(name, seg string) ([]byte, error) {
	if seg == "" {
		return nil, fmt.Errorf("%w: empty %s", ErrMalformed, name)
	}
	b, err := b64.DecodeString(seg)
	if err != nil {
		return nil, fmt.Errorf("%w: %s: %v", ErrMalformed, name, err)
	}
	return b, nil
}

// Token is a decoded, not yet verified, Endorse token.
type Token struct {
	Parts
	Header Header
	Claims Claims
}

// Parse decodes a token into its header and claims without verifying it:
// nothing Parse returns may be trusted. Verifier.Verify is the checked path.
func Parse(token string) (*Token, error) {
	parts, err := Split(token)
	if err != nil {
		return nil, err
	}
	t := &Token{Parts: *parts}
	if err := decodeHeader(parts.Header, &t.Header); err != nil {
		return nil, err
	}
	if err := decodeClaims(parts.Payload, &t.Claims); err != nil {
		return nil, err
	}
	return t, nil
}

func decodeHeader(b []byte, h *Header) error {
	if err := decodeObject(b, h); err != nil {
		return fmt.Errorf("%w: header: %v", ErrMalformed, err)
	}
	return nil
}

func decodeClaims(b []byte, c *Claims) error {
	if err := decodeObject(b, c); err != nil {
		return fmt.Errorf("%w: claims: %v", ErrMalformed, err)
	}
	return nil
}

// decodeObject requires b to be exactly one JSON object (RFC 7515 4,
// RFC 7519 7.2 step 10), with nothing after it.
func decodeObject(b []byte, v any) error {
	b = bytes.TrimSpace(b)
	if len(b) == 0 || b[0] != '{' {
		return fmt.Errorf("not a JSON object")
	}
	dec := json.NewDecoder(bytes.NewReader(b))
	if err := dec.Decode(v); err != nil {
		return err
	}
	if dec.InputOffset() != int64(len(b)) {
		return fmt.Errorf("trailing data after the JSON object")
	}
	return nil
}
