package verify

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rsa"
	"crypto/x509"
	"encoding/pem"
	"fmt"
	"os"
	"path/filepath"
	"strings"
)

// KeySource finds the public key a token names by its kid. Implementations
// must be safe for concurrent use. They return an error wrapping
// ErrUnknownKID when the source has no such key, ErrBadKID when the kid is
// not of the expected form, and ErrKeySource when the keys could not be
// fetched.
type KeySource interface {
	Key(ctx context.Context, kid string) (crypto.PublicKey, error)
}

// RSA key sizes accepted. SORACOM does not publish its modulus size
// (spec 1.6); 2048 bits is the floor of current practice, and the ceiling
// keeps a hostile key from making each verification expensive.
const (
	MinRSABits = 2048
	MaxRSABits = 8192
)

// CheckKID reports whether kid has the only form Endorse uses,
// ^v1-[0-9a-f]{32}-x509\.pem$ (spec 1.5, 1.9). The kid becomes a URL path
// segment, so nothing else may pass: no '/', '.', '%', '?' tricks.
func CheckKID(kid string) error {
	const prefix, suffix = "v1-", "-x509.pem"
	ok := len(kid) == len(prefix)+32+len(suffix) &&
		strings.HasPrefix(kid, prefix) && strings.HasSuffix(kid, suffix)
	if ok {
		for _, c := range []byte(kid[len(prefix) : len(prefix)+32]) {
			if !(c >= '0' && c <= '9' || c >= 'a' && c <= 'f') {
				ok = false
				break
			}
		}
	}
	if !ok {
		return fmt.Errorf("%w: %.80q does not match v1-<32 lowercase hex>-x509.pem", ErrBadKID, kid)
	}
	return nil
}

// Algorithm names the one JWS algorithm a key may verify (RFC 7518 3.1):
// RS256 for an RSA key, ES256 for an EC P-256 key. Any other key, or an RSA
// key outside MinRSABits..MaxRSABits, is refused. Pinning the algorithm to
// the key, not to the token's "alg", is what defeats algorithm confusion.
func Algorithm(key crypto.PublicKey) (string, error) {
	switch k := key.(type) {
	case *rsa.PublicKey:
		if k == nil || k.N == nil {
			return "", fmt.Errorf("%w: empty RSA key", ErrAlgorithm)
		}
		if n := k.N.BitLen(); n < MinRSABits || n > MaxRSABits {
			return "", fmt.Errorf("%w: RSA key of %d bits (accepted %d..%d)", ErrAlgorithm, n, MinRSABits, MaxRSABits)
		}
		if k.E < 3 || k.E%2 == 0 {
			return "", fmt.Errorf("%w: RSA public exponent %d", ErrAlgorithm, k.E)
		}
		return "RS256", nil
	case *ecdsa.PublicKey:
		if k == nil || k.Curve != elliptic.P256() {
			return "", fmt.Errorf("%w: EC key not on P-256", ErrAlgorithm)
		}
		return "ES256", nil
	default:
		return "", fmt.Errorf("%w: unsupported key type %T", ErrAlgorithm, key)
	}
}

// Keys is a fixed set of public keys by kid, for keys held in process (for
// example the issuer's own). A missing kid is ErrUnknownKID.
type Keys map[string]crypto.PublicKey

// Key implements KeySource.
func (k Keys) Key(_ context.Context, kid string) (crypto.PublicKey, error) {
	if key, ok := k[kid]; ok {
		return key, nil
	}
	return nil, fmt.Errorf("%w: %q", ErrUnknownKID, kid)
}

// PEMKeys is a KeySource read from PEM text (a file of "PUBLIC KEY",
// "CERTIFICATE" or "RSA PUBLIC KEY" blocks).
//
// Which kid a key answers to:
//   - a block header "kid: v1-...-x509.pem" binds that block to that kid;
//   - otherwise, a file holding a single key whose base name is a valid kid
//     (the way SORACOM names them, spec 1.8) is bound to that kid;
//   - otherwise a single key answers to every kid (the verifier still checks
//     the kid's form and the signature). Several keys need kid headers.
type PEMKeys struct {
	byKID map[string]crypto.PublicKey
	any   crypto.PublicKey // the single key when it is bound to no kid
}

// LoadPEMFile reads a PEM key file; see PEMKeys for how kids are bound.
func LoadPEMFile(path string) (*PEMKeys, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("verify: key file: %w", err)
	}
	k, err := ParsePEMKeys(b, filepath.Base(path))
	if err != nil {
		return nil, fmt.Errorf("verify: key file %s: %w", path, err)
	}
	return k, nil
}

// ParsePEMKeys parses PEM text; name is the file's base name, used as the kid
// of a single unlabelled key when it is a valid kid ("" for none).
func ParsePEMKeys(data []byte, name string) (*PEMKeys, error) {
	p := &PEMKeys{byKID: map[string]crypto.PublicKey{}}
	var unlabelled []crypto.PublicKey
	rest := data
	for {
		var block *pem.Block
		block, rest = pem.Decode(rest)
		if block == nil {
			break
		}
		key, err := parsePEMBlock(block)
		if err != nil {
			return nil, err
		}
		kid := block.Headers["kid"]
		if kid == "" {
			kid = block.Headers["Kid"]
		}
		if kid == "" {
			unlabelled = append(unlabelled, key)
			continue
		}
		if err := CheckKID(kid); err != nil {
			return nil, err
		}
		if _, dup := p.byKID[kid]; dup {
			return nil, fmt.Errorf("duplicate kid %q", kid)
		}
		p.byKID[kid] = key
	}
	if len(strings.TrimSpace(string(rest))) != 0 {
		return nil, fmt.Errorf("text that is not a PEM block after the keys")
	}
	switch {
	case len(p.byKID)+len(unlabelled) == 0:
		return nil, fmt.Errorf("no PEM public key found")
	case len(unlabelled) == 0:
	case len(unlabelled) == 1 && len(p.byKID) == 0:
		if CheckKID(name) == nil {
			p.byKID[name] = unlabelled[0]
		} else {
			p.any = unlabelled[0]
		}
	default:
		return nil, fmt.Errorf("%d keys without a \"kid\" PEM header; with several keys, each needs one", len(unlabelled))
	}
	return p, nil
}

// Key implements KeySource.
func (p *PEMKeys) Key(_ context.Context, kid string) (crypto.PublicKey, error) {
	if k, ok := p.byKID[kid]; ok {
		return k, nil
	}
	if p.any != nil {
		return p.any, nil
	}
	return nil, fmt.Errorf("%w: %q is not in the key file", ErrUnknownKID, kid)
}

// ParsePublicKeyPEM parses exactly one PEM public key, as served at
// <base>/soracom-public-keys/{kid} (spec 1.8: SPKI "PUBLIC KEY"; a
// certificate or a PKCS #1 "RSA PUBLIC KEY" is accepted too).
func ParsePublicKeyPEM(data []byte) (crypto.PublicKey, error) {
	block, rest := pem.Decode(data)
	if block == nil {
		return nil, fmt.Errorf("no PEM block")
	}
	if len(strings.TrimSpace(string(rest))) != 0 {
		return nil, fmt.Errorf("more than one PEM block")
	}
	return parsePEMBlock(block)
}

func parsePEMBlock(block *pem.Block) (crypto.PublicKey, error) {
	var key crypto.PublicKey
	var err error
	switch block.Type {
	case "PUBLIC KEY":
		key, err = x509.ParsePKIXPublicKey(block.Bytes)
	case "CERTIFICATE":
		var cert *x509.Certificate
		if cert, err = x509.ParseCertificate(block.Bytes); err == nil {
			key = cert.PublicKey
		}
	case "RSA PUBLIC KEY":
		key, err = x509.ParsePKCS1PublicKey(block.Bytes)
	default:
		if strings.Contains(block.Type, "PRIVATE KEY") {
			return nil, fmt.Errorf("PEM block %q holds a private key; give the public key", block.Type)
		}
		return nil, fmt.Errorf("PEM block %q is not a public key", block.Type)
	}
	if err != nil {
		return nil, fmt.Errorf("PEM %s: %w", block.Type, err)
	}
	if _, err := Algorithm(key); err != nil {
		return nil, fmt.Errorf("PEM %s: %w", block.Type, err)
	}
	return key, nil
}
