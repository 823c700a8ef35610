package endorse

import (
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"time"
)

// Algorithms a key ring can sign with (RFC 7518 3.1).
const (
	RS256 = "RS256" // RSASSA-PKCS1-v1_5 with SHA-256, as SORACOM signs
	ES256 = "ES256" // ECDSA P-256 with SHA-256, much faster to sign
)

// Redirect matching modes (endorse.redirect_match).
const (
	MatchExact  = "exact"
	MatchPrefix = "prefix"
)

// Fixed token values (spec 1.6).
const (
	DefaultIssuer = "https://soracom.io"
	Audience      = "soracom-endorse-audience"
	Subject       = "soracom-endorse"
	// NotBeforeSkew is iat-nbf in every real token.
	NotBeforeSkew = 60 * time.Second
	// RetireGrace is added to a retired key's publication beyond the longest
	// token lifetime: room for verifier clock skew and for a running server
	// that has not yet reloaded a ring rotated by another process.
	RetireGrace = 60 * time.Second
)

// Config is the endorse section of simgate.yaml.
type Config struct {
	Issuer             string `yaml:"issuer" doc:"iss claim of every token"`
	Algorithm          string `yaml:"algorithm" doc:"signing algorithm: RS256 (RSA, as SORACOM) or ES256 (ECDSA P-256, faster); a change rotates the key at the next start"`
	RSABits            int    `yaml:"rsa_bits" doc:"RSA modulus size in bits for new RS256 keys: 2048, 3072 or 4096"`
	MaxTokenTimeout    int    `yaml:"max_token_timeout" doc:"largest tokenTimeoutSeconds a group may set, in seconds; a retired key stays published this long (plus 60 s)"`
	MaxBodyBytes       int64  `yaml:"max_body_bytes" doc:"largest POST body the token endpoint reads; more is refused with 413"`
	RedirectStatusGET  int    `yaml:"redirect_status_get" doc:"HTTP status of a redirect_url answer to GET: 302, 303 or 307"`
	RedirectStatusPOST int    `yaml:"redirect_status_post" doc:"HTTP status of a redirect_url answer to POST: 302, 303 or 307"`
	RedirectMatch      string `yaml:"redirect_match" doc:"how redirect_url is checked against authorizedRedirectUrls: exact (same scheme, host and path) or prefix (path at or below)"`
	PublicBaseURL      string `yaml:"public_base_url" doc:"URL the key endpoints are reached at, for jwks_uri in the discovery document; empty: taken from each request"`
}

// DefaultConfig is the endorse configuration with nothing set.
func DefaultConfig() Config {
	return Config{
		Issuer:             DefaultIssuer,
		Algorithm:          RS256,
		RSABits:            2048,
		MaxTokenTimeout:    365 * 86400,
		MaxBodyBytes:       64 << 10,
		RedirectStatusGET:  http.StatusFound,
		RedirectStatusPOST: http.StatusSeeOther,
		RedirectMatch:      MatchExact,
	}
}

// Validate checks c; each error names its YAML key.
func (c Config) Validate() error {
	var errs []error
	bad := func(format string, args ...any) { errs = append(errs, fmt.Errorf("endorse."+format, args...)) }
	if strings.TrimSpace(c.Issuer) == "" {
		bad("issuer: must not be empty")
	}
	switch c.Algorithm {
	case RS256, ES256:
	default:
		bad("algorithm: %q is not RS256 or ES256", c.Algorithm)
	}
	switch c.RSABits {
	case 2048, 3072, 4096:
	default:
		bad("rsa_bits: %d is not 2048, 3072 or 4096", c.RSABits)
	}
	if c.MaxTokenTimeout < 1 || c.MaxTokenTimeout > 365*86400 {
		bad("max_token_timeout: %d is not between 1 and 31536000 seconds", c.MaxTokenTimeout)
	}
	if c.MaxBodyBytes < 1 || c.MaxBodyBytes > 16<<20 {
		bad("max_body_bytes: %d is not between 1 and 16777216", c.MaxBodyBytes)
	}
	for _, s := range []struct {
		key string
		v   int
	}{{"redirect_status_get", c.RedirectStatusGET}, {"redirect_status_post", c.RedirectStatusPOST}} {
		switch s.v {
		case http.StatusFound, http.StatusSeeOther, http.StatusTemporaryRedirect:
		default:
			bad("%s: %d is not 302, 303 or 307", s.key, s.v)
		}
	}
	if c.RedirectMatch != MatchExact && c.RedirectMatch != MatchPrefix {
		bad("redirect_match: %q is not exact or prefix", c.RedirectMatch)
	}
	if c.PublicBaseURL != "" {
		u, err := url.Parse(c.PublicBaseURL)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.RawQuery != "" || u.Fragment != "" {
			bad("public_base_url: %q is not an http or https URL without query", c.PublicBaseURL)
		}
	}
	if len(errs) == 0 {
		return nil
	}
	msgs := make([]string, len(errs))
	for i, e := range errs {
		msgs[i] = e.Error()
	}
	return errors.New(strings.Join(msgs, "; "))
}

// maxTimeout is the longest token lifetime the configuration allows.
func (c Config) maxTimeout() time.Duration { return time.Duration(c.MaxTokenTimeout) * time.Second }
