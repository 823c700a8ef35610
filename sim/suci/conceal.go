package suci

import (
	"crypto/ecdh"
	"crypto/rand"
	"fmt"
)

// Params are what a USIM provisions for SUCI calculation (EF_SUCI_Calc_Info
// and EF_Routing_Indicator, TS 31.102 4.4.11.8, 4.4.11.11).
type Params struct {
	// RoutingIndicator is 1 to 4 digits; "" means "0".
	RoutingIndicator string
	Scheme           Scheme
	// KeyID is the home network public key identifier: 0 for the null
	// scheme, 1 to 255 for the others (TS 23.003 2.2B).
	KeyID uint8
	// HNPublicKey is the home network public key, of Scheme's profile;
	// unused with the null scheme.
	HNPublicKey *PublicKey
	// EphemeralKey, if set, is the 32-octet ephemeral private key to use
	// instead of a fresh one. Only tests should set it: a reused ephemeral
	// key makes SUCIs linkable (TS 33.501 C.3.2 wants a fresh one).
	EphemeralKey []byte
}

// Conceal computes a SUCI from a SUPI (TS 33.501 6.12.2, C.2, C.3.2). Only
// the subscription identifier part is concealed: the MSIN of an IMSI, BCD
// coded (C.3.1), or an NAI's username (null scheme only).
func Conceal(supi SUPI, p Params) (SUCI, error) {
	if err := supi.Validate(); err != nil {
		return SUCI{}, err
	}
	s := SUCI{
		SUPIType:         supi.Type,
		MCC:              supi.MCC,
		MNC:              supi.MNC,
		Realm:            supi.Realm,
		RoutingIndicator: p.RoutingIndicator,
		Scheme:           p.Scheme,
		KeyID:            p.KeyID,
	}
	if s.RoutingIndicator == "" {
		s.RoutingIndicator = DefaultRoutingIndicator
	}
	var plain []byte
	if supi.Type == SUPITypeIMSI {
		plain = appendBCD(nil, supi.MSIN)
	} else {
		plain = []byte(supi.Username)
	}
	switch {
	case p.Scheme == SchemeNull:
		// TS 33.501 C.2: the null scheme's output equals its input.
		s.SchemeOutput = plain
	case p.Scheme.ecies():
		if supi.Type != SUPITypeIMSI {
			return SUCI{}, fmt.Errorf("suci: conceal %v with %v: only the null scheme is implemented for NAIs: %w", supi, p.Scheme, ErrUnsupported)
		}
		out, err := concealECIES(p, plain)
		if err != nil {
			return SUCI{}, fmt.Errorf("suci: conceal %v: %w", supi, err)
		}
		s.SchemeOutput = out
	default:
		return SUCI{}, fmt.Errorf("suci: conceal with protection scheme %v: %w", p.Scheme, ErrUnsupported)
	}
	if err := s.validate(); err != nil {
		return SUCI{}, fmt.Errorf("suci: conceal %v: %w", supi, err)
	}
	return s, nil
}

func concealECIES(p Params, plain []byte) ([]byte, error) {
	if p.HNPublicKey == nil {
		return nil, fmt.Errorf("scheme %v needs a home network public key: %w", p.Scheme, ErrMalformed)
	}
	if p.HNPublicKey.scheme != p.Scheme {
		return nil, fmt.Errorf("home network public key is for %v, scheme is %v: %w", p.HNPublicKey.scheme, p.Scheme, ErrMalformed)
	}
	curve, _ := curveOf(p.Scheme) // an ECIES scheme has a curve
	var eph *ecdh.PrivateKey
	var err error
	if p.EphemeralKey != nil {
		if len(p.EphemeralKey) != privateKeyLen {
			return nil, fmt.Errorf("ephemeral private key: %d octets, want 32: %w", len(p.EphemeralKey), ErrMalformed)
		}
		if eph, err = curve.NewPrivateKey(p.EphemeralKey); err != nil {
			return nil, fmt.Errorf("ephemeral private key: %v: %w", err, ErrInvalidKey)
		}
	} else if eph, err = curve.GenerateKey(rand.Reader); err != nil {
		return nil, fmt.Errorf("ephemeral key pair: %w", err)
	}
	return eciesSeal(p.HNPublicKey, eph, plain)
}

// Deconceal recovers the SUPI from a SUCI, as the SIDF does (TS 33.501
// 6.12.5, C.2, C.3.3). key is the home network private key of the SUCI's
// key identifier; it may be nil for the null scheme. A key of another
// profile than the SUCI's scheme is an [ErrUnknownKey].
func Deconceal(s SUCI, key *PrivateKey) (SUPI, error) {
	if err := s.Validate(); err != nil {
		return SUPI{}, err
	}
	var plain []byte
	switch {
	case s.Scheme == SchemeNull:
		plain = s.SchemeOutput
	case s.Scheme.ecies():
		if key == nil {
			return SUPI{}, fmt.Errorf("suci: deconceal %s: no private key for key id %d: %w", s.describe(), s.KeyID, ErrUnknownKey)
		}
		if key.scheme != s.Scheme {
			return SUPI{}, fmt.Errorf("suci: deconceal %s: key id %d is a Profile %v key: %w", s.describe(), s.KeyID, key.scheme, ErrUnknownKey)
		}
		var err error
		if plain, err = eciesOpen(key, s.SchemeOutput); err != nil {
			return SUPI{}, fmt.Errorf("suci: deconceal %s: %w", s.describe(), err)
		}
	default:
		return SUPI{}, fmt.Errorf("suci: deconceal %s: %w", s.describe(), ErrUnsupported)
	}
	supi := SUPI{Type: s.SUPIType, MCC: s.MCC, MNC: s.MNC, Realm: s.Realm}
	if s.SUPIType == SUPITypeNAI {
		supi.Username = string(plain)
	} else {
		msin, err := decodeBCD(plain)
		if err != nil {
			return SUPI{}, fmt.Errorf("suci: deconceal %s: decrypted MSIN: %w", s.describe(), err)
		}
		supi.MSIN = msin
	}
	if err := supi.validate(); err != nil {
		return SUPI{}, fmt.Errorf("suci: deconceal %s: %w", s.describe(), err)
	}
	return supi, nil
}

// Keys are a home network's private keys by home network public key
// identifier (1 to 255), as the SIDF holds them. A Keys is safe for
// concurrent use as long as nobody modifies it.
type Keys map[uint8]*PrivateKey

// Deconceal recovers the SUPI from a SUCI with the key of its key
// identifier (see [Deconceal]). A SUCI whose key identifier has no key is an
// [ErrUnknownKey]. Null-scheme SUCIs need no key and are accepted; a home
// network that refuses them checks the scheme first.
func (k Keys) Deconceal(s SUCI) (SUPI, error) {
	if s.Scheme == SchemeNull {
		return Deconceal(s, nil)
	}
	key := k[s.KeyID]
	if key == nil && s.Scheme.ecies() {
		return SUPI{}, fmt.Errorf("suci: deconceal %s: %w", s.describe(), ErrUnknownKey)
	}
	return Deconceal(s, key)
}

// describe names a SUCI in errors without its scheme output.
func (s SUCI) describe() string {
	hn := s.MCC + "-" + s.MNC
	if s.SUPIType == SUPITypeNAI {
		hn = s.Realm
	}
	return fmt.Sprintf("SUCI of %s (scheme %v, key id %d)", hn, s.Scheme, s.KeyID)
}
