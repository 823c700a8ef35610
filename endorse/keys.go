package endorse

import (
	"bytes"
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/big"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"sync"
	"sync/atomic"
	"time"
)

// KeyDir is the directory under the data directory that holds the key ring.
const KeyDir = "endorse"

const (
	ringFile    = "keys.json"
	lockFile    = "lock"
	ringVersion = 1
)

// Key statuses in KeyInfo.
const (
	StatusSigning = "signing"
	StatusRetired = "retired"
)

// kidRE is the kid form of real tokens (spec 1.5): v1-<32 lowercase hex>-x509.pem.
var kidRE = regexp.MustCompile(`^v1-[0-9a-f]{32}-x509\.pem$`)

// ValidKID reports whether kid has the form v1-<32 lowercase hex>-x509.pem.
func ValidKID(kid string) bool { return kidRE.MatchString(kid) }

// KID computes the key id of a public key: "v1-" + hex of the first 16 bytes
// of SHA-256 over its SubjectPublicKeyInfo DER + "-x509.pem".
func KID(pub crypto.PublicKey) (string, error) {
	der, err := x509.MarshalPKIXPublicKey(pub)
	if err != nil {
		return "", fmt.Errorf("endorse: kid: %w", err)
	}
	return kidOfSPKI(der), nil
}

func kidOfSPKI(der []byte) string {
	sum := sha256.Sum256(der)
	return "v1-" + hex.EncodeToString(sum[:16]) + "-x509.pem"
}

// KeyInfo describes one published key.
type KeyInfo struct {
	KID       string    `json:"kid"`
	Algorithm string    `json:"alg"`
	Status    string    `json:"status"` // signing or retired
	CreatedAt time.Time `json:"created_at"`
	RetiredAt time.Time `json:"retired_at,omitzero"`
	// ExpiresAt is when a retired key stops being published: every token
	// it signed has expired by then.
	ExpiresAt time.Time `json:"expires_at,omitzero"`
}

// key is one key of the ring, with what serving it needs precomputed.
type key struct {
	info   KeyInfo
	pub    crypto.PublicKey
	pubPEM []byte
	jwk    []byte // RFC 7517 JSON of the public key

	// Signing key only.
	priv   crypto.Signer
	header []byte // base64url(`{"kid":"...","alg":"..."}`) + "."
}

// ringState is an immutable snapshot of the ring: the signer first, then the
// retired keys, newest first.
type ringState struct {
	keys  []*key
	stamp fileStamp
}

func (s *ringState) signer() *key { return s.keys[0] }

type fileStamp struct {
	mod  time.Time
	size int64
	sum  [32]byte
}

// Keys is the key ring in <data-dir>/endorse: one signing key and the retired
// keys whose tokens may still be valid. It is safe for concurrent use; reads
// take no lock.
type Keys struct {
	dir   string
	cfg   Config
	now   func() time.Time
	log   *slog.Logger
	mu    sync.Mutex // serialises Rotate and Reload within the process
	state atomic.Pointer[ringState]
}

// Option adjusts a Keys or an Issuer.
type Option func(*options)

type options struct {
	now func() time.Time
	log *slog.Logger
}

// WithClock replaces time.Now (tests).
func WithClock(now func() time.Time) Option { return func(o *options) { o.now = now } }

// WithLogger sets the logger; the default discards.
func WithLogger(l *slog.Logger) Option { return func(o *options) { o.log = l } }

func buildOptions(opts []Option) options {
	o := options{now: time.Now, log: slog.New(slog.DiscardHandler)}
	for _, f := range opts {
		f(&o)
	}
	return o
}

// OpenKeys opens the key ring in <dataDir>/endorse, creating the directory
// (0700) and a first signing key of cfg.Algorithm when there is none. Retired
// keys whose every token has expired are dropped; a signing key of another
// algorithm than cfg.Algorithm is rotated. Changes are written back (0600)
// under a lock shared with other processes.
func OpenKeys(dataDir string, cfg Config, opts ...Option) (*Keys, error) {
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("endorse: keys: %w", err)
	}
	o := buildOptions(opts)
	k := &Keys{dir: filepath.Join(dataDir, KeyDir), cfg: cfg, now: o.now, log: o.log}
	if err := os.MkdirAll(k.dir, 0o700); err != nil {
		return nil, fmt.Errorf("endorse: keys: %w", err)
	}
	if err := os.Chmod(k.dir, 0o700); err != nil {
		return nil, fmt.Errorf("endorse: keys: %w", err)
	}
	err := k.update(func(keys []*key) ([]*key, bool, error) {
		changed := false
		if len(keys) == 0 {
			nk, err := newKey(cfg, k.now())
			if err != nil {
				return nil, false, err
			}
			k.log.Info("endorse: created signing key", "kid", nk.info.KID, "alg", nk.info.Algorithm)
			return []*key{nk}, true, nil
		}
		if alg := keys[0].info.Algorithm; alg != cfg.Algorithm {
			var err error
			if keys, err = k.rotate(keys); err != nil {
				return nil, false, err
			}
			k.log.Info("endorse: algorithm changed, rotated the signing key", "from", alg, "to", cfg.Algorithm, "kid", keys[0].info.KID)
			changed = true
		}
		return keys, changed, nil
	})
	if err != nil {
		return nil, err
	}
	return k, nil
}

// Dir is the directory holding the ring.
func (k *Keys) Dir() string { return k.dir }

// Signing describes the key that signs new tokens.
func (k *Keys) Signing() KeyInfo { return k.state.Load().signer().info }

// List describes the published keys, the signing key first.
func (k *Keys) List() []KeyInfo {
	ks := k.published()
	out := make([]KeyInfo, len(ks))
	for i, key := range ks {
		out[i] = key.info
	}
	return out
}

// published returns the keys a verifier may still need now.
func (k *Keys) published() []*key {
	st := k.state.Load()
	now := k.now()
	out := make([]*key, 0, len(st.keys))
	for _, key := range st.keys {
		if key.priv != nil || now.Before(key.info.ExpiresAt) {
			out = append(out, key)
		}
	}
	return out
}

func (k *Keys) find(kid string) *key {
	for _, key := range k.published() {
		if key.info.KID == kid {
			return key
		}
	}
	return nil
}

// PublicKey returns the published public key named kid.
func (k *Keys) PublicKey(kid string) (crypto.PublicKey, bool) {
	if key := k.find(kid); key != nil {
		return key.pub, true
	}
	return nil, false
}

// PublicKeyPEM returns the published key named kid as PEM
// SubjectPublicKeyInfo ("PUBLIC KEY"), as served at /soracom-public-keys/{kid}.
func (k *Keys) PublicKeyPEM(kid string) ([]byte, bool) {
	if key := k.find(kid); key != nil {
		return slices.Clone(key.pubPEM), true
	}
	return nil, false
}

// JWKS returns the published keys as a JWK Set (RFC 7517 5).
func (k *Keys) JWKS() []byte {
	var b bytes.Buffer
	b.WriteString(`{"keys":[`)
	for i, key := range k.published() {
		if i > 0 {
			b.WriteByte(',')
		}
		b.Write(key.jwk)
	}
	b.WriteString("]}")
	return b.Bytes()
}

// Rotate makes a new key of the configured algorithm the signer. The old
// signing key loses its private half and stays published until every token
// it can have signed has expired.
func (k *Keys) Rotate() (KeyInfo, error) {
	err := k.update(func(keys []*key) ([]*key, bool, error) {
		keys, err := k.rotate(keys)
		if err != nil {
			return nil, false, err
		}
		k.log.Info("endorse: rotated the signing key", "kid", keys[0].info.KID, "retired", keys[1].info.KID)
		return keys, true, nil
	})
	if err != nil {
		return KeyInfo{}, err
	}
	return k.Signing(), nil
}

// rotate returns keys with a new signer in front.
func (k *Keys) rotate(keys []*key) ([]*key, error) {
	now := k.now()
	nk, err := newKey(k.cfg, now)
	if err != nil {
		return nil, err
	}
	old := *keys[0]
	old.priv, old.header = nil, nil
	old.info.Status = StatusRetired
	old.info.RetiredAt = now.UTC().Truncate(time.Second)
	// Tokens signed up to now expire by now + the longest lifetime a
	// group may set.
	old.info.ExpiresAt = old.info.RetiredAt.Add(k.cfg.maxTimeout() + RetireGrace)
	out := append([]*key{nk, &old}, keys[1:]...)
	return out, nil
}

// update runs fn on the ring as stored, under the lock, writes the result if
// fn reports a change, and installs it.
func (k *Keys) update(fn func([]*key) ([]*key, bool, error)) error {
	k.mu.Lock()
	defer k.mu.Unlock()
	unlock, err := lockDir(filepath.Join(k.dir, lockFile))
	if err != nil {
		return fmt.Errorf("endorse: keys: %w", err)
	}
	defer unlock()
	keys, stamp, err := k.read()
	if err != nil {
		return err
	}
	n := len(keys)
	keys = k.prune(keys)
	changed := len(keys) != n
	keys, ch, err := fn(keys)
	if err != nil {
		return err
	}
	if changed || ch {
		if stamp, err = k.write(keys); err != nil {
			return err
		}
	}
	k.state.Store(&ringState{keys: keys, stamp: stamp})
	return nil
}

// prune drops retired keys past their expiry.
func (k *Keys) prune(keys []*key) []*key {
	now := k.now()
	return slices.DeleteFunc(keys, func(key *key) bool {
		if key.priv == nil && !now.Before(key.info.ExpiresAt) {
			k.log.Info("endorse: dropped expired key", "kid", key.info.KID, "expired", key.info.ExpiresAt)
			return true
		}
		return false
	})
}

// Reload rereads the ring if another process (simgate keys rotate) changed
// it, and reports whether it did.
func (k *Keys) Reload() (bool, error) {
	k.mu.Lock()
	defer k.mu.Unlock()
	fi, err := os.Stat(filepath.Join(k.dir, ringFile))
	if err != nil {
		return false, fmt.Errorf("endorse: keys: %w", err)
	}
	cur := k.state.Load()
	if fi.ModTime().Equal(cur.stamp.mod) && fi.Size() == cur.stamp.size {
		return false, nil
	}
	keys, stamp, err := k.read()
	if err != nil {
		return false, err
	}
	if len(keys) == 0 {
		return false, fmt.Errorf("endorse: keys: %s has no keys", filepath.Join(k.dir, ringFile))
	}
	if stamp.sum == cur.stamp.sum {
		k.state.Store(&ringState{keys: cur.keys, stamp: stamp})
		return false, nil
	}
	k.state.Store(&ringState{keys: keys, stamp: stamp})
	k.log.Info("endorse: reloaded keys", "signing", keys[0].info.KID)
	return true, nil
}

// Watch calls Reload every interval until ctx ends, so that a server picks
// up a rotation made by another process.
func (k *Keys) Watch(ctx context.Context, every time.Duration) {
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			if _, err := k.Reload(); err != nil {
				k.log.Error("endorse: reload keys", "err", err)
			}
		}
	}
}

// The stored form of the ring, <dir>/keys.json.
type storedRing struct {
	Version int         `json:"version"`
	Keys    []storedKey `json:"keys"` // signing key first
}

type storedKey struct {
	KID        string     `json:"kid"`
	Algorithm  string     `json:"alg"`
	CreatedAt  time.Time  `json:"created_at"`
	RetiredAt  *time.Time `json:"retired_at,omitempty"`
	ExpiresAt  *time.Time `json:"expires_at,omitempty"`
	PublicKey  string     `json:"public_key"`            // PEM SubjectPublicKeyInfo
	PrivateKey string     `json:"private_key,omitempty"` // PEM PKCS #8, signing key only
}

// read loads the ring file; a missing file is an empty ring.
func (k *Keys) read() ([]*key, fileStamp, error) {
	path := filepath.Join(k.dir, ringFile)
	f, err := os.Open(path)
	if errors.Is(err, os.ErrNotExist) {
		return nil, fileStamp{}, nil
	}
	if err != nil {
		return nil, fileStamp{}, fmt.Errorf("endorse: keys: %w", err)
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return nil, fileStamp{}, fmt.Errorf("endorse: keys: %w", err)
	}
	if fi.Mode().Perm()&0o077 != 0 {
		if err := f.Chmod(0o600); err != nil {
			return nil, fileStamp{}, fmt.Errorf("endorse: keys: %s is readable by others and cannot be restricted: %w", path, err)
		}
		k.log.Warn("endorse: key file was readable by others; restricted to 0600", "path", path)
	}
	b, err := io.ReadAll(io.LimitReader(f, 16<<20))
	if err != nil {
		return nil, fileStamp{}, fmt.Errorf("endorse: keys: %w", err)
	}
	keys, err := decodeRing(b)
	if err != nil {
		return nil, fileStamp{}, fmt.Errorf("endorse: keys: %s: %w", path, err)
	}
	return keys, fileStamp{mod: fi.ModTime(), size: fi.Size(), sum: sha256.Sum256(b)}, nil
}

func decodeRing(b []byte) ([]*key, error) {
	var sr storedRing
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&sr); err != nil {
		return nil, fmt.Errorf("not a key ring: %w", err)
	}
	if sr.Version != ringVersion {
		return nil, fmt.Errorf("version %d, want %d", sr.Version, ringVersion)
	}
	if len(sr.Keys) == 0 {
		return nil, nil
	}
	keys := make([]*key, 0, len(sr.Keys))
	seen := map[string]bool{}
	for i, s := range sr.Keys {
		key, err := decodeKey(s, i == 0)
		if err != nil {
			return nil, fmt.Errorf("key %d (%s): %w", i, s.KID, err)
		}
		if seen[key.info.KID] {
			return nil, fmt.Errorf("key %s listed twice", key.info.KID)
		}
		seen[key.info.KID] = true
		keys = append(keys, key)
	}
	return keys, nil
}

func decodeKey(s storedKey, signing bool) (*key, error) {
	blk, _ := pem.Decode([]byte(s.PublicKey))
	if blk == nil || blk.Type != "PUBLIC KEY" {
		return nil, errors.New("public_key: not a PEM PUBLIC KEY")
	}
	pub, err := x509.ParsePKIXPublicKey(blk.Bytes)
	if err != nil {
		return nil, fmt.Errorf("public_key: %w", err)
	}
	if kid := kidOfSPKI(blk.Bytes); kid != s.KID {
		return nil, fmt.Errorf("kid does not match the public key (computed %s)", kid)
	}
	if err := checkAlg(s.Algorithm, pub); err != nil {
		return nil, err
	}
	info := KeyInfo{KID: s.KID, Algorithm: s.Algorithm, CreatedAt: s.CreatedAt}
	var priv crypto.Signer
	switch {
	case signing:
		if s.PrivateKey == "" || s.RetiredAt != nil {
			return nil, errors.New("the first key must be the signing key, with private_key and no retired_at")
		}
		pblk, _ := pem.Decode([]byte(s.PrivateKey))
		if pblk == nil || pblk.Type != "PRIVATE KEY" {
			return nil, errors.New("private_key: not a PEM PRIVATE KEY (PKCS #8)")
		}
		p, err := x509.ParsePKCS8PrivateKey(pblk.Bytes)
		if err != nil {
			return nil, fmt.Errorf("private_key: %w", err)
		}
		signer, ok := p.(crypto.Signer)
		if !ok {
			return nil, fmt.Errorf("private_key: unsupported key type %T", p)
		}
		if eq, ok := signer.Public().(interface{ Equal(crypto.PublicKey) bool }); !ok || !eq.Equal(pub) {
			return nil, errors.New("private_key does not match public_key")
		}
		priv = signer
		info.Status = StatusSigning
	default:
		if s.PrivateKey != "" {
			return nil, errors.New("a retired key keeps no private_key")
		}
		if s.RetiredAt == nil || s.ExpiresAt == nil {
			return nil, errors.New("a retired key needs retired_at and expires_at")
		}
		info.Status = StatusRetired
		info.RetiredAt, info.ExpiresAt = *s.RetiredAt, *s.ExpiresAt
	}
	return buildKey(info, pub, priv)
}

// checkAlg checks that pub is a key for alg (RFC 7518 3.3, 3.4).
func checkAlg(alg string, pub crypto.PublicKey) error {
	switch p := pub.(type) {
	case *rsa.PublicKey:
		if alg != RS256 {
			return fmt.Errorf("alg %s for an RSA key", alg)
		}
		if p.N.BitLen() < 2048 {
			return fmt.Errorf("RSA key of %d bits; RFC 7518 3.3 wants 2048 or more", p.N.BitLen())
		}
	case *ecdsa.PublicKey:
		if alg != ES256 || p.Curve != elliptic.P256() {
			return fmt.Errorf("alg %s for an ECDSA key on %s", alg, p.Curve.Params().Name)
		}
	default:
		return fmt.Errorf("unsupported key type %T", pub)
	}
	return nil
}

// write stores keys atomically: a temporary file, synced, renamed over the
// ring, and the directory synced.
func (k *Keys) write(keys []*key) (fileStamp, error) {
	sr := storedRing{Version: ringVersion, Keys: make([]storedKey, len(keys))}
	for i, key := range keys {
		s := storedKey{KID: key.info.KID, Algorithm: key.info.Algorithm, CreatedAt: key.info.CreatedAt, PublicKey: string(key.pubPEM)}
		if key.priv != nil {
			der, err := x509.MarshalPKCS8PrivateKey(key.priv)
			if err != nil {
				return fileStamp{}, fmt.Errorf("endorse: keys: %w", err)
			}
			s.PrivateKey = string(pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}))
		} else {
			r, e := key.info.RetiredAt, key.info.ExpiresAt
			s.RetiredAt, s.ExpiresAt = &r, &e
		}
		sr.Keys[i] = s
	}
	b, err := json.MarshalIndent(sr, "", "  ")
	if err != nil {
		return fileStamp{}, fmt.Errorf("endorse: keys: %w", err)
	}
	b = append(b, '\n')
	path := filepath.Join(k.dir, ringFile)
	if err := writeFileAtomic(path, b); err != nil {
		return fileStamp{}, fmt.Errorf("endorse: keys: %w", err)
	}
	fi, err := os.Stat(path)
	if err != nil {
		return fileStamp{}, fmt.Errorf("endorse: keys: %w", err)
	}
	return fileStamp{mod: fi.ModTime(), size: fi.Size(), sum: sha256.Sum256(b)}, nil
}

func writeFileAtomic(path string, b []byte) error {
	dir := filepath.Dir(path)
	f, err := os.CreateTemp(dir, ".keys-*.tmp") // mode 0600
	if err != nil {
		return err
	}
	tmp := f.Name()
	defer os.Remove(tmp) // no-op after the rename
	if _, err := f.Write(b); err != nil {
		f.Close()
		return err
	}
	if err := f.Chmod(0o600); err != nil {
		f.Close()
		return err
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	if err := os.Rename(tmp, path); err != nil {
		return err
	}
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	return d.Sync()
}

// newKey generates a signing key of cfg.Algorithm.
func newKey(cfg Config, now time.Time) (*key, error) {
	var priv crypto.Signer
	var err error
	switch cfg.Algorithm {
	case RS256:
		priv, err = rsa.GenerateKey(rand.Reader, cfg.RSABits)
	case ES256:
		priv, err = ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	default:
		err = fmt.Errorf("algorithm %q", cfg.Algorithm)
	}
	if err != nil {
		return nil, fmt.Errorf("endorse: keys: generate: %w", err)
	}
	kid, err := KID(priv.Public())
	if err != nil {
		return nil, err
	}
	info := KeyInfo{KID: kid, Algorithm: cfg.Algorithm, Status: StatusSigning, CreatedAt: now.UTC().Truncate(time.Second)}
	return buildKey(info, priv.Public(), priv)
}

// buildKey precomputes the PEM, the JWK and, for a signer, the header.
func buildKey(info KeyInfo, pub crypto.PublicKey, priv crypto.Signer) (*key, error) {
	der, err := x509.MarshalPKIXPublicKey(pub)
	if err != nil {
		return nil, fmt.Errorf("endorse: keys: %w", err)
	}
	jwk, err := marshalJWK(info, pub)
	if err != nil {
		return nil, err
	}
	k := &key{
		info:   info,
		pub:    pub,
		pubPEM: pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der}),
		jwk:    jwk,
		priv:   priv,
	}
	if priv != nil {
		if r, ok := priv.(*rsa.PrivateKey); ok {
			r.Precompute() // CRT values; a no-op if already done
		}
		// Spec 1.5: exactly these two members, kid then alg, no typ.
		hdr := `{"kid":"` + info.KID + `","alg":"` + info.Algorithm + `"}`
		k.header = append(base64.RawURLEncoding.AppendEncode(nil, []byte(hdr)), '.')
	}
	return k, nil
}

// jwk is a public JSON Web Key (RFC 7517 4, RFC 7518 6.2 and 6.3).
type jwk struct {
	Kty string `json:"kty"`
	Use string `json:"use"`
	Alg string `json:"alg"`
	Kid string `json:"kid"`
	Crv string `json:"crv,omitempty"`
	X   string `json:"x,omitempty"`
	Y   string `json:"y,omitempty"`
	N   string `json:"n,omitempty"`
	E   string `json:"e,omitempty"`
}

func marshalJWK(info KeyInfo, pub crypto.PublicKey) ([]byte, error) {
	j := jwk{Use: "sig", Alg: info.Algorithm, Kid: info.KID}
	enc := base64.RawURLEncoding
	switch p := pub.(type) {
	case *rsa.PublicKey:
		j.Kty = "RSA"
		j.N = enc.EncodeToString(p.N.Bytes())
		j.E = enc.EncodeToString(big.NewInt(int64(p.E)).Bytes())
	case *ecdsa.PublicKey:
		pt, err := p.Bytes() // 0x04 || X || Y, each 32 bytes for P-256
		if err != nil {
			return nil, fmt.Errorf("endorse: keys: %w", err)
		}
		j.Kty, j.Crv = "EC", "P-256"
		j.X = enc.EncodeToString(pt[1:33])
		j.Y = enc.EncodeToString(pt[33:65])
	default:
		return nil, fmt.Errorf("endorse: keys: unsupported key type %T", pub)
	}
	return json.Marshal(j)
}
