package suci

import (
	"crypto/ecdh"
	"crypto/elliptic"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"strings"
)

// Key sizes of the ECIES profiles (TS 33.501 C.3.4).
const (
	privateKeyLen       = 32 // both profiles: an X25519 or a P-256 scalar
	x25519KeyLen        = 32 // Profile A public key (RFC 7748)
	p256CompressedLen   = 33 // Profile B public key, compressed (SEC 1 2.3.3)
	p256UncompressedLen = 65
)

// PrivateKey is a home network private key of one ECIES profile, held by the
// SIDF.
type PrivateKey struct {
	scheme Scheme
	key    *ecdh.PrivateKey
}

// PublicKey is a home network public key of one ECIES profile, provisioned
// on the USIM (EF_SUCI_Calc_Info, TS 31.102 4.4.11.8).
type PublicKey struct {
	scheme Scheme
	key    *ecdh.PublicKey
	enc    []byte // Profile A: 32 octets; Profile B: compressed, 33 octets
}

func curveOf(s Scheme) (ecdh.Curve, error) {
	switch s {
	case SchemeProfileA:
		return ecdh.X25519(), nil
	case SchemeProfileB:
		return ecdh.P256(), nil
	}
	return nil, fmt.Errorf("suci: scheme %v has no key pair (want Profile A or B): %w", s, ErrUnsupported)
}

// GenerateKey returns a new home network key pair for Profile A or B, from
// the operating system's secure random source.
func GenerateKey(s Scheme) (*PrivateKey, error) {
	c, err := curveOf(s)
	if err != nil {
		return nil, err
	}
	k, err := c.GenerateKey(rand.Reader)
	if err != nil {
		return nil, fmt.Errorf("suci: generate %v key: %w", s, err)
	}
	return &PrivateKey{scheme: s, key: k}, nil
}

// NewPrivateKey reads a 32-octet private key of Profile A (an X25519 scalar,
// RFC 7748 5) or Profile B (a P-256 scalar, big-endian, 0 < k < n).
func NewPrivateKey(s Scheme, b []byte) (*PrivateKey, error) {
	c, err := curveOf(s)
	if err != nil {
		return nil, err
	}
	if len(b) != privateKeyLen {
		return nil, fmt.Errorf("suci: %v private key: %d octets, want 32: %w", s, len(b), ErrMalformed)
	}
	k, err := c.NewPrivateKey(b)
	if err != nil {
		return nil, fmt.Errorf("suci: %v private key: %v: %w", s, err, ErrInvalidKey)
	}
	return &PrivateKey{scheme: s, key: k}, nil
}

// ParsePrivateKey reads a private key (see [NewPrivateKey]) from hex.
func ParsePrivateKey(s Scheme, hexKey string) (*PrivateKey, error) {
	b, err := decodeHex(hexKey)
	if err != nil {
		return nil, fmt.Errorf("suci: %v private key: %w", s, err)
	}
	return NewPrivateKey(s, b)
}

// Scheme returns the key's profile.
func (k *PrivateKey) Scheme() Scheme { return k.scheme }

// Bytes returns the 32-octet private key.
func (k *PrivateKey) Bytes() []byte { return k.key.Bytes() }

// Hex returns the private key in lowercase hex, as [ParsePrivateKey] reads it.
func (k *PrivateKey) Hex() string { return hex.EncodeToString(k.key.Bytes()) }

// PublicKey returns the key's public half.
func (k *PrivateKey) PublicKey() *PublicKey {
	pub := k.key.PublicKey()
	enc := pub.Bytes()
	if k.scheme == SchemeProfileB {
		enc = compressP256(enc)
	}
	return &PublicKey{scheme: k.scheme, key: pub, enc: enc}
}

// NewPublicKey reads a home network public key: for Profile A the 32-octet
// X25519 u-coordinate; for Profile B a P-256 point, compressed (33 octets)
// or uncompressed (65 octets, SEC 1 2.3.3), which must lie on the curve.
func NewPublicKey(s Scheme, b []byte) (*PublicKey, error) {
	switch s {
	case SchemeProfileA:
		if len(b) != x25519KeyLen {
			return nil, fmt.Errorf("suci: A public key: %d octets, want 32: %w", len(b), ErrMalformed)
		}
		pub, err := ecdh.X25519().NewPublicKey(b)
		if err != nil {
			return nil, fmt.Errorf("suci: A public key: %v: %w", err, ErrInvalidKey)
		}
		return &PublicKey{scheme: s, key: pub, enc: pub.Bytes()}, nil
	case SchemeProfileB:
		var unc []byte
		switch len(b) {
		case p256CompressedLen:
			var err error
			if unc, err = decompressP256(b); err != nil {
				return nil, fmt.Errorf("suci: B public key: %w", err)
			}
		case p256UncompressedLen:
			unc = b
		default:
			return nil, fmt.Errorf("suci: B public key: %d octets, want 33 (compressed) or 65: %w", len(b), ErrMalformed)
		}
		pub, err := ecdh.P256().NewPublicKey(unc)
		if err != nil {
			return nil, fmt.Errorf("suci: B public key: %v: %w", err, ErrInvalidKey)
		}
		return &PublicKey{scheme: s, key: pub, enc: compressP256(pub.Bytes())}, nil
	}
	_, err := curveOf(s)
	return nil, err
}

// ParsePublicKey reads a public key (see [NewPublicKey]) from hex.
func ParsePublicKey(s Scheme, hexKey string) (*PublicKey, error) {
	b, err := decodeHex(hexKey)
	if err != nil {
		return nil, fmt.Errorf("suci: %v public key: %w", s, err)
	}
	return NewPublicKey(s, b)
}

// Scheme returns the key's profile.
func (k *PublicKey) Scheme() Scheme { return k.scheme }

// Bytes returns the key as a USIM holds it: 32 octets for Profile A, the
// compressed point (33 octets) for Profile B.
func (k *PublicKey) Bytes() []byte { return append([]byte(nil), k.enc...) }

// Hex returns [PublicKey.Bytes] in lowercase hex.
func (k *PublicKey) Hex() string { return hex.EncodeToString(k.enc) }

// Equal reports whether k and o are the same key of the same profile.
func (k *PublicKey) Equal(o *PublicKey) bool {
	return k != nil && o != nil && k.scheme == o.scheme && k.key.Equal(o.key)
}

func decodeHex(s string) ([]byte, error) {
	b, err := hex.DecodeString(strings.TrimSpace(s))
	if err != nil {
		return nil, fmt.Errorf("hex: %v: %w", err, ErrMalformed)
	}
	return b, nil
}

// compressP256 turns an uncompressed point 04||X||Y into 02/03||X (SEC 1
// 2.3.3; TS 33.501 C.3.4.2 uses point compression for Profile B).
func compressP256(unc []byte) []byte {
	out := make([]byte, p256CompressedLen)
	out[0] = 0x02 | unc[p256UncompressedLen-1]&1
	copy(out[1:], unc[1:1+32])
	return out
}

// decompressP256 turns 02/03||X into 04||X||Y, checking that the point is
// on the curve (SEC 1 2.3.4).
func decompressP256(b []byte) ([]byte, error) {
	if len(b) != p256CompressedLen || (b[0] != 0x02 && b[0] != 0x03) {
		return nil, fmt.Errorf("P-256 point: want 33 octets starting 02 or 03 (compressed): %w", ErrMalformed)
	}
	x, y := elliptic.UnmarshalCompressed(elliptic.P256(), b)
	if x == nil {
		return nil, fmt.Errorf("P-256 point %x is not on the curve: %w", b, ErrInvalidKey)
	}
	out := make([]byte, p256UncompressedLen)
	out[0] = 0x04
	x.FillBytes(out[1:33])
	y.FillBytes(out[33:])
	return out, nil
}
