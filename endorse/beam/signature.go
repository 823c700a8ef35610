package beam

import (
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strings"
)

// SignatureVersion is the X-Soracom-Signature-Version of the signature
// scheme implemented here (spec 2.3; 20150901 was removed from Beam).
const SignatureVersion = "20151001"

// Fields Beam adds to HTTP requests (spec 2.2), in canonical form.
const (
	HeaderIMSI             = "X-Soracom-Imsi"
	HeaderIMEI             = "X-Soracom-Imei"
	HeaderMSISDN           = "X-Soracom-Msisdn"
	HeaderSIMID            = "X-Soracom-Sim-Id"
	HeaderTimestamp        = "X-Soracom-Timestamp"
	HeaderSignature        = "X-Soracom-Signature"
	HeaderSignatureVersion = "X-Soracom-Signature-Version"
)

// soracomPrefix is the lower-case prefix of every Beam field.
const soracomPrefix = "x-soracom-"

// Errors of signature verification.
var (
	ErrNoSignature  = errors.New("no signature")
	ErrBadSignature = errors.New("signature does not match")
)

// isSoracom reports whether name (any case) is an X-Soracom-* field name.
func isSoracom(name string) bool {
	return len(name) >= len(soracomPrefix) && strings.EqualFold(name[:len(soracomPrefix)], soracomPrefix)
}

// signed reports whether the Beam field name (any case) is covered by the
// signature: all but the signature and its version (spec 2.3).
func signed(name string) bool {
	return !strings.EqualFold(name, HeaderSignature) && !strings.EqualFold(name, HeaderSignatureVersion)
}

// CanonicalString is the 20151001 string to sign of h without the PSK
// (spec 2.3): every X-Soracom-* field except X-Soracom-Signature and
// X-Soracom-Signature-Version, written lowercase-name=value, sorted by name
// and concatenated with no separator. A field given several times has its
// values joined with ", " (RFC 9110 5.3); Beam never sends one twice.
func CanonicalString(h http.Header) string {
	return string(appendCanonical(nil, h))
}

func appendCanonical(b []byte, h http.Header) []byte {
	var names [8]string // Beam adds at most six
	keys := names[:0]
	for k := range h {
		if isSoracom(k) && signed(k) {
			keys = append(keys, k)
		}
	}
	// Sort by the lower-case name; keys differing only in case (a
	// hand-built, non-canonical Header) are merged in a fixed order.
	slices.SortFunc(keys, func(a, b string) int {
		if c := compareFold(a, b); c != 0 {
			return c
		}
		return strings.Compare(a, b)
	})
	for i, k := range keys {
		if i == 0 || !strings.EqualFold(k, keys[i-1]) {
			b = appendLower(b, k)
			b = append(b, '=')
		} else if len(h[k]) > 0 {
			b = append(b, ", "...)
		}
		for j, v := range h[k] {
			if j > 0 {
				b = append(b, ", "...)
			}
			b = append(b, v...)
		}
	}
	return b
}

func lower(c byte) byte {
	if 'A' <= c && c <= 'Z' {
		return c + 'a' - 'A'
	}
	return c
}

// compareFold compares ASCII-lower-cased a and b.
func compareFold(a, b string) int {
	for i := 0; i < len(a) && i < len(b); i++ {
		if x, y := lower(a[i]), lower(b[i]); x != y {
			return int(x) - int(y)
		}
	}
	return len(a) - len(b)
}

func appendLower(b []byte, s string) []byte {
	for i := 0; i < len(s); i++ {
		b = append(b, lower(s[i]))
	}
	return b
}

// SignHTTP returns the 20151001 signature of h under psk: lowercase hex
// SHA-256(psk || CanonicalString(h)) (spec 2.3).
func SignHTTP(psk string, h http.Header) string {
	var buf [512]byte
	b := append(buf[:0], psk...)
	b = appendCanonical(b, h)
	return hexSum(b)
}

// SignTCP returns the signature of a TCP identity line: lowercase hex
// SHA-256(psk || stringToSign), where stringToSign is the line's text before
// ';' (spec 2.4).
func SignTCP(psk, stringToSign string) string {
	var buf [256]byte
	b := append(buf[:0], psk...)
	b = append(b, stringToSign...)
	return hexSum(b)
}

func hexSum(b []byte) string {
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:])
}

// VerifyHTTP checks the Beam signature of a request's header h under psk, as
// a destination does: X-Soracom-Signature-Version must be 20151001 and
// X-Soracom-Signature must equal SignHTTP(psk, h). The comparison takes
// constant time.
func VerifyHTTP(psk string, h http.Header) error {
	if v := h.Values(HeaderSignatureVersion); len(v) != 1 || v[0] != SignatureVersion {
		return fmt.Errorf("beam: %s %q: want %s", HeaderSignatureVersion, v, SignatureVersion)
	}
	got := h.Values(HeaderSignature)
	if len(got) != 1 {
		return fmt.Errorf("beam: %s: %w", HeaderSignature, ErrNoSignature)
	}
	return compareSig(got[0], SignHTTP(psk, h))
}

func compareSig(got, want string) error {
	if subtle.ConstantTimeCompare([]byte(got), []byte(want)) != 1 {
		return fmt.Errorf("beam: %w", ErrBadSignature)
	}
	return nil
}
