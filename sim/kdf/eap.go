package kdf

import (
	"crypto/sha1"
	"encoding/binary"
	"fmt"
	"math/bits"
)

// EAPAKAPrimeKeys are the keys of an EAP-AKA' full authentication
// (RFC 9048 3.3, RFC 5448 3.3), cut in order from
// MK = PRF'(IK'||CK', "EAP-AKA'"||Identity).
type EAPAKAPrimeKeys struct {
	KEncr [16]byte // K_encr, for AT_ENCR_DATA
	KAut  [32]byte // K_aut, for AT_MAC (HMAC-SHA-256-128)
	KRe   [32]byte // K_re, for fast re-authentication
	MSK   [64]byte
	EMSK  [64]byte
}

// KAUSF returns KAUSF when EAP-AKA' is the 5G authentication method:
// the 256 most significant bits of EMSK (TS 33.501 6.1.3.1).
func (k *EAPAKAPrimeKeys) KAUSF() [32]byte {
	return [32]byte(k.EMSK[:32])
}

// EAPAKAPrime derives the EAP-AKA' keys from CK', IK' (see CKIKPrime) and
// the peer identity (RFC 9048 3.3): MK = PRF'(IK'||CK', "EAP-AKA'"||Identity);
// K_encr = MK[0..127], K_aut = MK[128..383], K_re = MK[384..639],
// MSK = MK[640..1151], EMSK = MK[1152..1663] (bits).
func EAPAKAPrime(ckPrime, ikPrime [16]byte, identity []byte) EAPAKAPrimeKeys {
	var key [32]byte
	copy(key[:16], ikPrime[:]) // RFC 9048 3.3: the key is IK' || CK'
	copy(key[16:], ckPrime[:])
	var buf [264]byte
	s := append(append(buf[:0], "EAP-AKA'"...), identity...)
	var mk [16 + 32 + 32 + 64 + 64]byte
	prfPrime(key[:], s, mk[:])
	var k EAPAKAPrimeKeys
	rest := mk[:]
	rest = rest[copy(k.KEncr[:], rest):]
	rest = rest[copy(k.KAut[:], rest):]
	rest = rest[copy(k.KRe[:], rest):]
	rest = rest[copy(k.MSK[:], rest):]
	copy(k.EMSK[:], rest)
	return k
}

// EAPAKAPrimeReauth derives MSK and EMSK of an EAP-AKA' fast
// re-authentication (RFC 9048 3.3, RFC 5448 3.3):
// MK = PRF'(K_re, "EAP-AKA' re-auth"||Identity||counter||NONCE_S),
// MSK = MK[0..511], EMSK = MK[512..1023] (bits); counter is the 16-bit
// AT_COUNTER value.
func EAPAKAPrimeReauth(kRe [32]byte, identity []byte, counter uint16, nonceS [16]byte) (msk, emsk [64]byte) {
	var buf [320]byte
	s := append(append(buf[:0], "EAP-AKA' re-auth"...), identity...)
	s = binary.BigEndian.AppendUint16(s, counter)
	s = append(s, nonceS[:]...)
	var mk [128]byte
	prfPrime(kRe[:], s, mk[:])
	return [64]byte(mk[:64]), [64]byte(mk[64:])
}

// PRFPrime fills out with PRF'(key, s) of RFC 9048 3.4.1 (RFC 5448 3.4):
// T1 = HMAC-SHA-256(key, s || 0x01), Tn = HMAC-SHA-256(key, Tn-1 || s || n),
// PRF' = T1 || T2 || ... . The 1-octet counter limits out to 255*32 octets.
func PRFPrime(key, s, out []byte) error {
	if len(out) > 255*32 {
		return fmt.Errorf("kdf: PRF': %d octets asked, at most %d", len(out), 255*32)
	}
	prfPrime(key, s, out)
	return nil
}

// prfPrime is PRFPrime for len(out) <= 255*32.
func prfPrime(key, s, out []byte) {
	var t [32]byte
	var prev []byte
	for n := 1; len(out) > 0; n++ {
		t = hmacSHA256(key, prev, s, []byte{byte(n)})
		prev = t[:]
		out = out[copy(out, t[:]):]
	}
}

// EAPKeys are the keys of an EAP-AKA (RFC 4187 7) or EAP-SIM (RFC 4186 7)
// full authentication, cut in order from the FIPS 186-2 PRF output seeded
// with MK.
type EAPKeys struct {
	KEncr [16]byte // K_encr, for AT_ENCR_DATA
	KAut  [16]byte // K_aut, for AT_MAC (HMAC-SHA1-128)
	MSK   [64]byte
	EMSK  [64]byte
}

// EAPAKAMasterKey returns the EAP-AKA master key (RFC 4187 7):
// MK = SHA1(Identity|IK|CK). Note the order IK then CK.
func EAPAKAMasterKey(identity []byte, ck, ik [16]byte) [20]byte {
	var buf [256]byte
	m := append(append(append(buf[:0], identity...), ik[:]...), ck[:]...)
	return sha1.Sum(m)
}

// EAPSIMMasterKey returns the EAP-SIM master key (RFC 4186 7):
// MK = SHA1(Identity|n*Kc|NONCE_MT|Version List|Selected Version), for
// n = 2 or 3 Kc values in the order of the RANDs. versionList is the
// version list of AT_VERSION_LIST as sent (2 octets per version, without
// the actual length field).
func EAPSIMMasterKey(identity []byte, kc [][8]byte, nonceMT [16]byte, versionList []byte, selectedVersion uint16) ([20]byte, error) {
	if len(kc) != 2 && len(kc) != 3 {
		return [20]byte{}, fmt.Errorf("kdf: EAP-SIM MK: %d Kc values, want 2 or 3", len(kc))
	}
	if len(versionList) < 2 || len(versionList)%2 != 0 {
		return [20]byte{}, fmt.Errorf("kdf: EAP-SIM MK: version list is %d octets, want a non-zero multiple of 2", len(versionList))
	}
	var buf [320]byte
	m := append(buf[:0], identity...)
	for i := range kc {
		m = append(m, kc[i][:]...)
	}
	m = append(m, nonceMT[:]...)
	m = append(m, versionList...)
	m = binary.BigEndian.AppendUint16(m, selectedVersion)
	return sha1.Sum(m), nil
}

// EAPKeysFromMK derives K_encr, K_aut, MSK and EMSK from an EAP-AKA or
// EAP-SIM master key with the FIPS 186-2 PRF (RFC 4187 7, RFC 4186 7).
func EAPKeysFromMK(mk [20]byte) EAPKeys {
	var out [16 + 16 + 64 + 64]byte
	fips186PRF(mk, out[:])
	var k EAPKeys
	rest := out[:]
	rest = rest[copy(k.KEncr[:], rest):]
	rest = rest[copy(k.KAut[:], rest):]
	rest = rest[copy(k.MSK[:], rest):]
	copy(k.EMSK[:], rest)
	return k
}

// EAPReauthKeys derives MSK and EMSK of an EAP-AKA or EAP-SIM fast
// re-authentication (RFC 4187 7, RFC 4186 7):
// XKEY' = SHA1(Identity|counter|NONCE_S|MK), then the FIPS 186-2 PRF seeded
// with XKEY' gives MSK then EMSK. identity is the re-authentication identity
// and counter the 16-bit AT_COUNTER value. K_encr and K_aut stay those of the
// full authentication.
func EAPReauthKeys(identity []byte, counter uint16, nonceS [16]byte, mk [20]byte) (msk, emsk [64]byte) {
	var buf [320]byte
	m := append(buf[:0], identity...)
	m = binary.BigEndian.AppendUint16(m, counter)
	m = append(m, nonceS[:]...)
	m = append(m, mk[:]...)
	var out [128]byte
	fips186PRF(sha1.Sum(m), out[:])
	return [64]byte(out[:64]), [64]byte(out[64:])
}

// fips186PRF fills out with the pseudo-random generator of FIPS 186-2
// change notice 1, Appendix 3.1, as RFC 4186 Appendix B specifies it: b = 160,
// XSEED_j = 0, and G(t, c) the SHA-1 compression function with
// t = the SHA-1 initial value and c = XVAL padded with zeros (no SHA-1
// padding). Each step gives w_i = G(t, XKEY), then
// XKEY = (1 + XKEY + w_i) mod 2^160; the output is w_0 | w_1 | ... .
func fips186PRF(xkey [20]byte, out []byte) {
	for len(out) > 0 {
		var block [64]byte
		copy(block[:], xkey[:])                                                    // XVAL = XKEY + XSEED_j, XSEED_j = 0
		h := [5]uint32{0x67452301, 0xEFCDAB89, 0x98BADCFE, 0x10325476, 0xC3D2E1F0} // t: SHA-1 H(0), FIPS 180-4 5.3.1
		sha1Block(&h, &block)
		var w [20]byte
		for i, v := range h {
			binary.BigEndian.PutUint32(w[4*i:], v)
		}
		carry := uint(1)
		for i := len(xkey) - 1; i >= 0; i-- {
			sum := uint(xkey[i]) + uint(w[i]) + carry
			xkey[i] = byte(sum)
			carry = sum >> 8
		}
		out = out[copy(out, w[:]):]
	}
}

// sha1Block applies the SHA-1 compression function (FIPS 180-4 6.1.2,
// steps 1 to 4) to one 512-bit block, updating h. crypto/sha1 does not
// expose it, and FIPS 186-2 needs it without SHA-1's message padding.
func sha1Block(h *[5]uint32, block *[64]byte) {
	var w [80]uint32
	for i := 0; i < 16; i++ {
		w[i] = binary.BigEndian.Uint32(block[4*i:])
	}
	for i := 16; i < 80; i++ {
		w[i] = bits.RotateLeft32(w[i-3]^w[i-8]^w[i-14]^w[i-16], 1)
	}
	a, b, c, d, e := h[0], h[1], h[2], h[3], h[4]
	for i := 0; i < 80; i++ {
		var f, k uint32
		switch {
		case i < 20:
			f, k = (b&c)|(^b&d), 0x5A827999
		case i < 40:
			f, k = b^c^d, 0x6ED9EBA1
		case i < 60:
			f, k = (b&c)|(b&d)|(c&d), 0x8F1BBCDC
		default:
			f, k = b^c^d, 0xCA62C1D6
		}
		t := bits.RotateLeft32(a, 5) + f + e + k + w[i]
		e, d, c, b, a = d, c, bits.RotateLeft32(b, 30), a, t
	}
	h[0] += a
	h[1] += b
	h[2] += c
	h[3] += d
	h[4] += e
}
