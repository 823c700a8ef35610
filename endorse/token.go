package endorse

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/simgate/simgate/core/udr"
)

// Identity is what the network knows of the SIM behind a request. It comes
// from the session (a Resolver), never from the client.
type Identity struct {
	IMSI   string
	IMEI   string // "" when the session reported none
	MSISDN string
	SIMID  string
	Group  string // "" is udr.DefaultGroup
	Active bool
}

// Reasons a token is refused. Errors returned by Issue and resolvers wrap one
// of these; the token endpoint maps each to its status and code.
var (
	ErrUnknownSource = errors.New("request does not come from a SIM session")
	ErrInactive      = errors.New("SIM is not active")
	ErrDisabled      = errors.New("Endorse is disabled for the SIM's group")
	ErrGroupSettings = errors.New("group settings out of range")
	ErrIdentity      = errors.New("invalid SIM identity")
)

// Issuer signs Endorse tokens with the signing key of a key ring. It is safe
// for concurrent use.
type Issuer struct {
	keys    *Keys
	cfg     Config
	now     func() time.Time
	issJSON []byte // the iss value, JSON-quoted
	bufs    sync.Pool
}

// NewIssuer returns an issuer signing with keys under cfg.
func NewIssuer(keys *Keys, cfg Config, opts ...Option) (*Issuer, error) {
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("endorse: issuer: %w", err)
	}
	o := buildOptions(opts)
	return &Issuer{
		keys:    keys,
		cfg:     cfg,
		now:     o.now,
		issJSON: appendJSONString(nil, cfg.Issuer),
		bufs:    sync.Pool{New: func() any { b := make([]byte, 0, 1024); return &b }},
	}, nil
}

// Config returns the issuer's configuration.
func (is *Issuer) Config() Config { return is.cfg }

// Keys returns the issuer's key ring.
func (is *Issuer) Keys() *Keys { return is.keys }

// Issue signs a token for id under the group settings g. params are the
// request parameters; they go into the token only when g enables
// requestParameters. The HTTP endpoint and `simgate token issue` both come
// here.
func (is *Issuer) Issue(id Identity, g udr.EndorseConfig, params map[string]string) (string, error) {
	tok, err := is.AppendToken(nil, id, g, params)
	return string(tok), err
}

// lifetime is the token lifetime g asks for.
func (is *Issuer) lifetime(g udr.EndorseConfig) (int64, error) {
	t := g.TokenTimeoutSeconds
	if t == 0 {
		t = udr.DefaultEndorse().TokenTimeoutSeconds
	}
	if t < 1 || t > is.cfg.MaxTokenTimeout {
		return 0, fmt.Errorf("endorse: tokenTimeoutSeconds %d is not between 1 and endorse.max_token_timeout (%d): %w",
			g.TokenTimeoutSeconds, is.cfg.MaxTokenTimeout, ErrGroupSettings)
	}
	return int64(t), nil
}

// check applies the group's and the SIM's state to a request for a token.
func (is *Issuer) check(id Identity, g udr.EndorseConfig) error {
	if !validIMSI(id.IMSI) {
		return fmt.Errorf("endorse: imsi %q: want 6 to 15 digits: %w", id.IMSI, ErrIdentity)
	}
	if !g.Enabled {
		return fmt.Errorf("endorse: %s: %w", id.IMSI, ErrDisabled)
	}
	if !id.Active {
		return fmt.Errorf("endorse: %s: %w", id.IMSI, ErrInactive)
	}
	return nil
}

// AppendToken appends the compact JWS (RFC 7515 7.1) of a new token to dst.
func (is *Issuer) AppendToken(dst []byte, id Identity, g udr.EndorseConfig, params map[string]string) ([]byte, error) {
	if err := is.check(id, g); err != nil {
		return dst, err
	}
	ttl, err := is.lifetime(g)
	if err != nil {
		return dst, err
	}
	k := is.keys.state.Load().signer()

	bp := is.bufs.Get().(*[]byte)
	defer is.bufs.Put(bp)
	payload := is.appendClaims((*bp)[:0], id, g.ParametersToEndorse, params, is.now().Unix(), ttl)
	*bp = payload

	start := len(dst)
	dst = append(dst, k.header...)
	dst = base64.RawURLEncoding.AppendEncode(dst, payload)
	// RFC 7515 5.1: the signature covers ASCII(header '.' payload).
	digest := sha256.Sum256(dst[start:])
	var sig [512]byte
	raw, err := k.sign(sig[:0], digest[:])
	if err != nil {
		return dst[:start], fmt.Errorf("endorse: sign with %s: %w", k.info.KID, err)
	}
	dst = append(dst, '.')
	return base64.RawURLEncoding.AppendEncode(dst, raw), nil
}

// sign appends the JWS signature of a SHA-256 digest to dst.
func (k *key) sign(dst, digest []byte) ([]byte, error) {
	switch p := k.priv.(type) {
	case *rsa.PrivateKey:
		// RFC 7518 3.3: RSASSA-PKCS1-v1_5 with SHA-256.
		s, err := rsa.SignPKCS1v15(nil, p, crypto.SHA256, digest)
		return append(dst, s...), err
	case *ecdsa.PrivateKey:
		// RFC 7518 3.4: R || S, each 32 bytes big-endian, not ASN.1.
		r, s, err := ecdsa.Sign(rand.Reader, p, digest)
		if err != nil {
			return dst, err
		}
		var rs [64]byte
		r.FillBytes(rs[:32])
		s.FillBytes(rs[32:])
		return append(dst, rs[:]...), nil
	}
	return dst, fmt.Errorf("no private key for %s", k.info.Algorithm)
}

// appendClaims appends the payload JSON in the member order of real tokens
// (spec 1.6): iss, aud, exp, jti, iat, nbf, sub, soracom-endorse-claim.
func (is *Issuer) appendClaims(b []byte, id Identity, p udr.EndorseParams, params map[string]string, iat, ttl int64) []byte {
	var jti [16]byte
	_, _ = rand.Read(jti[:]) // crypto/rand.Read never fails (Go 1.24)
	b = append(b, `{"iss":`...)
	b = append(b, is.issJSON...)
	b = append(b, `,"aud":"`+Audience+`","exp":`...)
	b = strconv.AppendInt(b, iat+ttl, 10)
	b = append(b, `,"jti":"`...)
	b = base64.RawURLEncoding.AppendEncode(b, jti[:])
	b = append(b, `","iat":`...)
	b = strconv.AppendInt(b, iat, 10)
	b = append(b, `,"nbf":`...)
	b = strconv.AppendInt(b, iat-int64(NotBeforeSkew/time.Second), 10)
	b = append(b, `,"sub":"`+Subject+`","soracom-endorse-claim":{`...)
	n := 0
	item := func(name, v string) {
		if n > 0 {
			b = append(b, ',')
		}
		n++
		b = append(b, '"')
		b = append(b, name...)
		b = append(b, `":`...)
		b = appendJSONString(b, v)
	}
	if p.IMSI {
		item("imsi", id.IMSI)
	}
	// Unknown values are left out, never null.
	if p.IMEI && id.IMEI != "" {
		item("imei", id.IMEI)
	}
	if p.MSISDN && id.MSISDN != "" {
		item("msisdn", id.MSISDN)
	}
	if p.SIMID && id.SIMID != "" {
		item("simId", id.SIMID)
	}
	if p.RequestParameters {
		if n > 0 {
			b = append(b, ',')
		}
		b = append(b, `"requestParameters":{`...)
		names := make([]string, 0, len(params))
		for k := range params {
			names = append(names, k)
		}
		slices.Sort(names)
		for i, k := range names {
			if i > 0 {
				b = append(b, ',')
			}
			b = appendJSONString(b, k)
			b = append(b, ':')
			b = appendJSONString(b, params[k])
		}
		b = append(b, '}')
	}
	return append(b, "}}"...)
}

func validIMSI(s string) bool {
	if len(s) < 6 || len(s) > 15 {
		return false
	}
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}

const hexDigits = "0123456789abcdef"

// appendJSONString appends s as a JSON string (RFC 8259 7), byte for byte
// as encoding/json writes it: invalid UTF-8 becomes U+FFFD, and <, >, &,
// U+2028 and U+2029 are escaped, so a token never carries markup.
func appendJSONString(b []byte, s string) []byte {
	b = append(b, '"')
	start := 0
	for i := 0; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf {
			if c >= 0x20 && c != '"' && c != '\\' && c != '<' && c != '>' && c != '&' {
				i++
				continue
			}
			b = append(b, s[start:i]...)
			switch c {
			case '"', '\\':
				b = append(b, '\\', c)
			case '\n':
				b = append(b, '\\', 'n')
			case '\r':
				b = append(b, '\\', 'r')
			case '\t':
				b = append(b, '\\', 't')
			case '\b':
				b = append(b, '\\', 'b')
			case '\f':
				b = append(b, '\\', 'f')
			default:
				b = append(b, '\\', 'u', '0', '0', hexDigits[c>>4], hexDigits[c&0xf])
			}
			i++
			start = i
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && size == 1 {
			b = append(b, s[start:i]...)
			b = append(b, `\ufffd`...)
			i += size
			start = i
			continue
		}
		// U+2028 and U+2029 are valid JSON but break JavaScript source.
		if r == '\u2028' || r == '\u2029' {
			b = append(b, s[start:i]...)
			b = append(b, '\\', 'u', '2', '0', '2', hexDigits[r&0xf])
			i += size
			start = i
			continue
		}
		i += size
	}
	b = append(b, s[start:]...)
	return append(b, '"')
}
