package udm

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/simgate/simgate/sim/suci"
)

// Where the home network keys live inside the data directory.
const (
	// KeysDir is the UDM's directory inside the data directory.
	KeysDir = "udm"
	// KeysFile is the home network key file inside KeysDir (0600).
	KeysFile = "hn-keys.json"
)

// Key identifiers given to the keys made on first start. TS 23.003 2.2B:
// the home network public key identifier is 1..255 for the ECIES schemes (0
// means the null scheme).
const (
	DefaultKeyIDProfileA uint8 = 1
	DefaultKeyIDProfileB uint8 = 2
)

// StoredKey is one home network key pair as the key file holds it.
type StoredKey struct {
	// ID is the home network public key identifier, 1..255.
	ID uint8 `json:"id"`
	// Scheme is "A" (ECIES Profile A, X25519) or "B" (Profile B, P-256).
	Scheme string `json:"scheme"`
	// PrivateKey is the 32-octet private key in hex.
	PrivateKey string `json:"private_key"`
	// PublicKey is the public key as a USIM holds it, in hex (32 octets for
	// A, the compressed point for B). Written for operators; on reading it
	// must match the private key if given.
	PublicKey string `json:"public_key,omitempty"`
}

type keyFile struct {
	Keys []StoredKey `json:"keys"`
}

// PublicKey is a home network public key as a UE (EF_SUCI_Calc_Info,
// TS 31.102 4.4.11.8) is provisioned with it.
type PublicKey struct {
	ID     uint8
	Scheme suci.Scheme
	Key    *suci.PublicKey
}

// Keys are the home network private keys of the SIDF, by home network
// public key identifier. A Keys is immutable and safe for concurrent use.
type Keys struct {
	priv suci.Keys
	ids  []uint8 // sorted
}

// NewKeys builds Keys from stored key pairs, checking each: identifier
// 1..255 and unique, scheme A or B, valid private key, public key matching.
func NewKeys(stored []StoredKey) (*Keys, error) {
	k := &Keys{priv: make(suci.Keys, len(stored))}
	for i, s := range stored {
		if s.ID == 0 {
			return nil, fmt.Errorf("udm: key %d: id 0 is the null scheme's; want 1..255", i)
		}
		if _, dup := k.priv[s.ID]; dup {
			return nil, fmt.Errorf("udm: key id %d given twice", s.ID)
		}
		scheme, err := suci.ParseScheme(s.Scheme)
		if err != nil || (scheme != suci.SchemeProfileA && scheme != suci.SchemeProfileB) {
			return nil, fmt.Errorf("udm: key id %d: scheme %q: want A or B", s.ID, s.Scheme)
		}
		pk, err := suci.ParsePrivateKey(scheme, s.PrivateKey)
		if err != nil {
			return nil, fmt.Errorf("udm: key id %d: %w", s.ID, err)
		}
		if s.PublicKey != "" {
			pub, err := suci.ParsePublicKey(scheme, s.PublicKey)
			if err != nil {
				return nil, fmt.Errorf("udm: key id %d: public_key: %w", s.ID, err)
			}
			if !pub.Equal(pk.PublicKey()) {
				return nil, fmt.Errorf("udm: key id %d: public_key does not belong to private_key", s.ID)
			}
		}
		k.priv[s.ID] = pk
		k.ids = append(k.ids, s.ID)
	}
	slices.Sort(k.ids)
	return k, nil
}

// GenerateKeys returns fresh keys: a Profile A key with identifier
// DefaultKeyIDProfileA and a Profile B key with DefaultKeyIDProfileB.
func GenerateKeys() (*Keys, error) {
	a, err := suci.GenerateKey(suci.SchemeProfileA)
	if err != nil {
		return nil, fmt.Errorf("udm: %w", err)
	}
	b, err := suci.GenerateKey(suci.SchemeProfileB)
	if err != nil {
		return nil, fmt.Errorf("udm: %w", err)
	}
	return &Keys{
		priv: suci.Keys{DefaultKeyIDProfileA: a, DefaultKeyIDProfileB: b},
		ids:  []uint8{DefaultKeyIDProfileA, DefaultKeyIDProfileB},
	}, nil
}

// Public returns the public keys in identifier order, for provisioning UEs.
func (k *Keys) Public() []PublicKey {
	out := make([]PublicKey, 0, len(k.ids))
	for _, id := range k.ids {
		p := k.priv[id]
		out = append(out, PublicKey{ID: id, Scheme: p.Scheme(), Key: p.PublicKey()})
	}
	return out
}

// PublicKey returns the public key with the identifier.
func (k *Keys) PublicKey(id uint8) (PublicKey, bool) {
	p, ok := k.priv[id]
	if !ok {
		return PublicKey{}, false
	}
	return PublicKey{ID: id, Scheme: p.Scheme(), Key: p.PublicKey()}, true
}

// Stored returns the key pairs in the key file's form.
func (k *Keys) Stored() []StoredKey {
	out := make([]StoredKey, 0, len(k.ids))
	for _, id := range k.ids {
		p := k.priv[id]
		out = append(out, StoredKey{ID: id, Scheme: p.Scheme().String(), PrivateKey: p.Hex(), PublicKey: p.PublicKey().Hex()})
	}
	return out
}

// Deconceal is the SIDF (TS 33.501 6.12.5): it recovers the SUPI from a
// SUCI with the private key of the SUCI's key identifier. The null scheme
// needs no key. Errors wrap the suci package's (suci.ErrUnknownKey,
// suci.ErrMAC, ...).
func (k *Keys) Deconceal(s suci.SUCI) (suci.SUPI, error) {
	return k.priv.Deconceal(s)
}

// KeysPath returns <dataDir>/udm/hn-keys.json.
func KeysPath(dataDir string) string { return filepath.Join(dataDir, KeysDir, KeysFile) }

// OpenKeys reads the home network keys from <dataDir>/udm/hn-keys.json.
// If the file does not exist it makes a Profile A and a Profile B key and
// writes them (directory 0700, file 0600) so that they survive restarts. A
// key file readable by others is restricted to 0600 with a warning. log may
// be nil.
func OpenKeys(dataDir string, log *slog.Logger) (*Keys, error) {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	path := KeysPath(dataDir)
	k, err := ReadKeys(path, log)
	if err == nil || !errors.Is(err, fs.ErrNotExist) {
		return k, err
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return nil, fmt.Errorf("udm: keys: %w", err)
	}
	k, err = GenerateKeys()
	if err != nil {
		return nil, err
	}
	created, err := writeKeysExclusive(path, k)
	if err != nil {
		return nil, err
	}
	if !created {
		// Another process made the file first: use its keys.
		return ReadKeys(path, log)
	}
	for _, p := range k.Public() {
		log.Info("udm: created home network key", "path", path, "key_id", p.ID, "scheme", p.Scheme.String(), "public_key", p.Key.Hex())
	}
	return k, nil
}

// ReadKeys reads a key file (see OpenKeys). A missing file is an error
// wrapping fs.ErrNotExist.
func ReadKeys(path string, log *slog.Logger) (*Keys, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("udm: keys: %w", err)
	}
	defer f.Close()
	if fi, err := f.Stat(); err == nil && fi.Mode().Perm()&0o077 != 0 {
		if err := f.Chmod(0o600); err != nil {
			return nil, fmt.Errorf("udm: keys: %s is readable by others and cannot be restricted: %w", path, err)
		}
		if log != nil {
			log.Warn("udm: home network key file was readable by others; restricted to 0600", "path", path)
		}
	}
	dec := json.NewDecoder(f)
	dec.DisallowUnknownFields()
	var kf keyFile
	if err := dec.Decode(&kf); err != nil {
		return nil, fmt.Errorf("udm: keys: %s: %w", path, err)
	}
	if len(kf.Keys) == 0 {
		return nil, fmt.Errorf("udm: keys: %s holds no keys", path)
	}
	k, err := NewKeys(kf.Keys)
	if err != nil {
		return nil, fmt.Errorf("%w (in %s)", err, path)
	}
	return k, nil
}

// WriteKeys writes k to path (0600), replacing any file there atomically.
func WriteKeys(path string, k *Keys) error {
	tmp, err := writeTemp(path, k)
	if err != nil {
		return err
	}
	if err := os.Rename(tmp, path); err != nil {
		os.Remove(tmp)
		return fmt.Errorf("udm: keys: %w", err)
	}
	return nil
}

// writeKeysExclusive writes k to path unless a file is already there; it
// reports whether it created the file.
func writeKeysExclusive(path string, k *Keys) (bool, error) {
	tmp, err := writeTemp(path, k)
	if err != nil {
		return false, err
	}
	defer os.Remove(tmp)
	// A hard link fails if path exists, so two first starts cannot
	// overwrite each other's keys.
	if err := os.Link(tmp, path); err != nil {
		if errors.Is(err, fs.ErrExist) {
			return false, nil
		}
		return false, fmt.Errorf("udm: keys: %w", err)
	}
	return true, nil
}

func writeTemp(path string, k *Keys) (string, error) {
	b, err := json.MarshalIndent(keyFile{Keys: k.Stored()}, "", "  ")
	if err != nil {
		return "", fmt.Errorf("udm: keys: %w", err)
	}
	f, err := os.CreateTemp(filepath.Dir(path), ".hn-keys-*.tmp") // mode 0600
	if err != nil {
		return "", fmt.Errorf("udm: keys: %w", err)
	}
	name := f.Name()
	_, err = f.Write(append(b, '\n'))
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		os.Remove(name)
		return "", fmt.Errorf("udm: keys: %w", err)
	}
	return name, nil
}

// String describes the key identifiers and schemes, never the keys.
func (k *Keys) String() string {
	parts := make([]string, 0, len(k.ids))
	for _, id := range k.ids {
		parts = append(parts, fmt.Sprintf("%d:%v", id, k.priv[id].Scheme()))
	}
	return "udm.Keys{" + strings.Join(parts, " ") + "}"
}
