package suci

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
)

// Scheme is a protection scheme identifier, 0 to 15 (TS 33.501 Annex C.1,
// TS 24.501 9.11.3.4).
type Scheme uint8

// The protection schemes of TS 33.501 Annex C. Values 3 to 11 are reserved
// and 12 to 15 are HPLMN proprietary; they parse but cannot be (de)concealed.
const (
	SchemeNull     Scheme = 0x0 // null-scheme (C.2)
	SchemeProfileA Scheme = 0x1 // ECIES Profile A, X25519 (C.3.4.1)
	SchemeProfileB Scheme = 0x2 // ECIES Profile B, secp256r1 (C.3.4.2)
)

// maxScheme is the largest protection scheme identifier: it is 4 bits wide.
const maxScheme Scheme = 0xf

// String returns "null", "A", "B" or, for others, the identifier in decimal.
func (s Scheme) String() string {
	switch s {
	case SchemeNull:
		return "null"
	case SchemeProfileA:
		return "A"
	case SchemeProfileB:
		return "B"
	}
	return strconv.Itoa(int(s))
}

// ParseScheme reads a scheme name as a CLI or configuration gives it:
// "null", "A", "B", "profile-a", "profile-b" (any case) or an identifier
// 0 to 15 in decimal.
func ParseScheme(s string) (Scheme, error) {
	switch strings.ToLower(s) {
	case "null", "null-scheme":
		return SchemeNull, nil
	case "a", "profile-a", "profilea":
		return SchemeProfileA, nil
	case "b", "profile-b", "profileb":
		return SchemeProfileB, nil
	}
	n, err := strconv.ParseUint(s, 10, 8)
	if err != nil || Scheme(n) > maxScheme {
		return 0, fmt.Errorf("suci: protection scheme %q: want null, A, B or 0..15: %w", s, ErrMalformed)
	}
	return Scheme(n), nil
}

// ecies reports whether s is one of the ECIES profiles this package
// implements.
func (s Scheme) ecies() bool { return s == SchemeProfileA || s == SchemeProfileB }

// SUPIType is the type of the SUPI concealed in a SUCI (TS 23.003 2.2B), which
// is also the "SUPI format" of the NAS 5GS mobile identity (TS 24.501
// 9.11.3.4).
type SUPIType uint8

// SUPI types (TS 23.003 2.2B). Types 2 and 3 (GLI, GCI) and 4 to 7 (spare)
// are not supported.
const (
	SUPITypeIMSI SUPIType = 0 // IMSI
	SUPITypeNAI  SUPIType = 1 // network specific identifier, an NAI
)

// String returns "imsi" or "nai" (the SUPI prefixes of TS 23.003 2.2A) or
// the type in decimal.
func (t SUPIType) String() string {
	switch t {
	case SUPITypeIMSI:
		return "imsi"
	case SUPITypeNAI:
		return "nai"
	}
	return strconv.Itoa(int(t))
}

// Errors callers may test with errors.Is. Every error about bad input wraps
// one of them.
var (
	// ErrMalformed: the input (a SUPI, a SUCI in either form, a key, a
	// parameter) is not well formed.
	ErrMalformed = errors.New("malformed")
	// ErrUnsupported: a valid protection scheme or SUPI type this package
	// does not implement.
	ErrUnsupported = errors.New("not supported")
	// ErrUnknownKey: no home network private key has the SUCI's key
	// identifier, or the key there belongs to another scheme.
	ErrUnknownKey = errors.New("unknown home network public key identifier")
	// ErrInvalidKey: a public key is not a valid point (P-256 point not on
	// the curve, X25519 point of low order giving an all-zero secret) or a
	// private key is not a valid scalar.
	ErrInvalidKey = errors.New("invalid key")
	// ErrMAC: the ECIES MAC tag does not verify.
	ErrMAC = errors.New("MAC tag mismatch")
)
