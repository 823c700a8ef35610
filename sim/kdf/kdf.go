// Package kdf owns key derivation for 5G and EAP-AKA/AKA': the generic KDF
// of TS 33.220 Annex B.2, the 5G key hierarchy of TS 33.501 Annex A (RES*,
// HXRES*, KAUSF, KSEAF, KAMF, algorithm keys, KgNB), CK'/IK' (TS 33.402 A.2),
// the serving network name (TS 24.501 9.12.1), the EAP-AKA' keys and PRF'
// (RFC 9048, RFC 5448) and the EAP-AKA / EAP-SIM keys with the FIPS 186-2 PRF
// (RFC 4187, RFC 4186).
//
// Fixed-size keys are passed and returned as arrays; the functions do not
// allocate for inputs of ordinary size and keep no state, so they are safe
// for concurrent use.
package kdf

import (
	"crypto/sha256"
	"encoding/binary"
	"fmt"
)

// maxParam is the largest KDF parameter: TS 33.220 B.2.2 encodes each
// length Li in two octets.
const maxParam = 0xFFFF

// Derive is the generic key derivation function of TS 33.220 B.2.2:
//
//	derived key = HMAC-SHA-256(key, S), S = FC || P0 || L0 || P1 || L1 || ...
//
// where each Li is the length of Pi in octets as a 2-octet big-endian number.
// It fails if a parameter is longer than 65535 octets.
func Derive(key []byte, fc byte, params ...[]byte) ([32]byte, error) {
	var buf [192]byte
	s := append(buf[:0], fc)
	for i, p := range params {
		if len(p) > maxParam {
			return [32]byte{}, fmt.Errorf("kdf: FC 0x%02x: parameter P%d is %d octets, longer than %d", fc, i, len(p), maxParam)
		}
		s = appendParam(s, p)
	}
	return hmacSHA256(key, s), nil
}

// appendParam appends Pi || Li (TS 33.220 B.2.2) to s. The caller checks
// that len(p) <= maxParam.
func appendParam[T []byte | string](s []byte, p T) []byte {
	s = append(s, p...)
	return binary.BigEndian.AppendUint16(s, uint16(len(p)))
}

// hmacSHA256 is HMAC (RFC 2104) with SHA-256 over the concatenation of
// parts. It works on stack buffers so that the short inputs of the KDFs here
// cost no allocation; crypto/hmac allocates on every call. Its output is
// checked against crypto/hmac by the tests and FuzzHMACSHA256.
func hmacSHA256(key []byte, parts ...[]byte) [32]byte {
	const blockSize = sha256.BlockSize
	var k [blockSize]byte
	if len(key) > blockSize {
		// RFC 2104 2: keys longer than B bytes are first hashed.
		h := sha256.Sum256(key)
		copy(k[:], h[:])
	} else {
		copy(k[:], key)
	}

	var ibuf [blockSize + 256]byte
	in := ibuf[:blockSize]
	for i := range k {
		in[i] = k[i] ^ 0x36
	}
	for _, p := range parts {
		in = append(in, p...)
	}
	inner := sha256.Sum256(in)

	var outer [blockSize + sha256.Size]byte
	for i := range k {
		outer[i] = k[i] ^ 0x5c
	}
	copy(outer[blockSize:], inner[:])
	return sha256.Sum256(outer[:])
}
