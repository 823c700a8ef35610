package verify

import (
	"context"
	"crypto"
	"fmt"
	"net/http"
	"strings"
	"sync"
)

// SORACOMKeysURL is where SORACOM publishes its token keys (spec 1.8).
const SORACOMKeysURL = "https://s3-ap-northeast-1.amazonaws.com/soracom-public-keys/"

// KeysURL is a KeySource fetching one PEM public key per kid from
// <base>/soracom-public-keys/{kid}, the layout of SORACOM's key bucket and of
// the simgate issuer (spec 1.8, 1.9). A kid's key never changes, so a fetched
// key is kept for the life of the source; a kid the server does not have
// (404, or 403 as S3 answers for a missing object) is ErrUnknownKID, and
// after such a miss no fetch happens for MinRefetch.
type KeysURL struct {
	base string // ends in "/soracom-public-keys/"
	cfg  HTTPConfig
	gate gate

	mu   sync.RWMutex
	keys map[string]crypto.PublicKey
}

// NewKeysURL returns a source for the keys under rawURL: either the
// directory itself (".../soracom-public-keys/", as SORACOMKeysURL) or the
// base it lives in (the issuer's URL), to which "/soracom-public-keys/" is
// appended.
func NewKeysURL(rawURL string, cfg HTTPConfig) (*KeysURL, error) {
	u, err := checkURL("keys", rawURL)
	if err != nil {
		return nil, err
	}
	p := strings.TrimSuffix(u.Path, "/")
	if !strings.HasSuffix(p, "/soracom-public-keys") {
		p += "/soracom-public-keys"
	}
	u.Path, u.RawPath = p+"/", ""
	cfg = cfg.withDefaults()
	return &KeysURL{base: u.String(), cfg: cfg, gate: gate{cfg: cfg}, keys: map[string]crypto.PublicKey{}}, nil
}

// URL returns the address the key for kid is fetched from.
func (s *KeysURL) URL(kid string) (string, error) {
	if err := CheckKID(kid); err != nil {
		return "", err
	}
	// CheckKID admits only [0-9a-fvx.-], so appending is a safe join.
	return s.base + kid, nil
}

// Key implements KeySource.
func (s *KeysURL) Key(ctx context.Context, kid string) (crypto.PublicKey, error) {
	u, err := s.URL(kid)
	if err != nil {
		return nil, err
	}
	return s.gate.lookupOrFetch(ctx, kid, s.lookup, func(ctx context.Context) (bool, error) {
		body, status, err := httpGet(ctx, s.cfg.Client, u, maxKeyBody)
		if err != nil {
			return false, fmt.Errorf("keys: %w", err)
		}
		switch status {
		case http.StatusOK:
		case http.StatusNotFound, http.StatusForbidden:
			return false, nil
		default:
			return false, fmt.Errorf("keys: GET %s: status %d", u, status)
		}
		key, err := ParsePublicKeyPEM(body)
		if err != nil {
			return false, fmt.Errorf("keys: %s: %w", u, err)
		}
		s.mu.Lock()
		s.keys[kid] = key
		s.mu.Unlock()
		return true, nil
	})
}

func (s *KeysURL) lookup(kid string) (crypto.PublicKey, bool) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	k, ok := s.keys[kid]
	return k, ok
}
