package suci

import (
	"crypto/aes"
	"crypto/ecdh"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/binary"
	"fmt"
)

// ECIES parameters shared by Profiles A and B (TS 33.501 C.3.4.1, C.3.4.2).
const (
	encKeyLen = 16 // AES-128
	icbLen    = 16 // initial counter block
	macKeyLen = 32 // HMAC-SHA-256 key
	macLen    = 8  // MAC tag: the 8 most significant octets of HMAC-SHA-256
)

// ephemeralKeyLen is the length of the ephemeral public key at the start of
// the scheme output: X25519 has no prefix (C.3.4.0), Profile B is compressed.
func ephemeralKeyLen(s Scheme) int {
	if s == SchemeProfileB {
		return p256CompressedLen
	}
	return x25519KeyLen
}

// eciesKeys are the keys the KDF derives: EK || ICB || MK (C.3.2).
type eciesKeys struct {
	enc [encKeyLen]byte
	icb [icbLen]byte
	mac [macKeyLen]byte
}

// deriveKeys is the ANSI X9.63 KDF with SHA-256 (SEC 1 3.6.1):
// K = Hash(Z || Counter || SharedInfo1) for Counter = 1, 2, ... (32 bits,
// big-endian), SharedInfo1 being the ephemeral public key octet string.
// TS 33.501 C.3.2: the leftmost 16 octets are EK, the middle 16 the ICB, the
// rightmost 32 MK.
func deriveKeys(z, sharedInfo []byte) eciesKeys {
	var k [encKeyLen + icbLen + macKeyLen]byte
	var ctr [4]byte
	h := sha256.New()
	for i := 0; i*sha256.Size < len(k); i++ {
		binary.BigEndian.PutUint32(ctr[:], uint32(i+1))
		h.Reset()
		h.Write(z)
		h.Write(ctr[:])
		h.Write(sharedInfo)
		h.Sum(k[i*sha256.Size : i*sha256.Size])
	}
	var out eciesKeys
	copy(out.enc[:], k[:encKeyLen])
	copy(out.icb[:], k[encKeyLen:encKeyLen+icbLen])
	copy(out.mac[:], k[encKeyLen+icbLen:])
	return out
}

// ctr32 is AES-128 in CTR mode whose counter blocks follow the ICB by the
// standard incrementing function with m = 32 (NIST SP 800-38A B.1; TS 33.501
// C.3.4.0): only the low 32 bits count, wrapping without carry. It returns
// in XORed with the key stream, in a new slice.
func ctr32(key *[encKeyLen]byte, icb *[icbLen]byte, in []byte) []byte {
	blk, _ := aes.NewCipher(key[:]) // cannot fail: the key is 16 octets
	out := make([]byte, len(in))
	ctr := *icb
	var ks [aes.BlockSize]byte
	for off := 0; off < len(in); off += aes.BlockSize {
		blk.Encrypt(ks[:], ctr[:])
		n := min(aes.BlockSize, len(in)-off)
		for i := 0; i < n; i++ {
			out[off+i] = in[off+i] ^ ks[i]
		}
		c := binary.BigEndian.Uint32(ctr[12:])
		binary.BigEndian.PutUint32(ctr[12:], c+1)
	}
	return out
}

// macTag is HMAC-SHA-256 over the ciphertext, truncated to its 8 most
// significant octets (C.3.4.0; SharedInfo2 is empty).
func macTag(mk *[macKeyLen]byte, ciphertext []byte) []byte {
	m := hmac.New(sha256.New, mk[:])
	m.Write(ciphertext)
	return m.Sum(nil)[:macLen]
}

// ephemeralBytes is the ephemeral public key as the scheme output carries it
// and as SharedInfo1: raw for X25519, compressed for P-256 (C.3.4.0).
func ephemeralBytes(s Scheme, pub *ecdh.PublicKey) []byte {
	if s == SchemeProfileB {
		return compressP256(pub.Bytes())
	}
	return pub.Bytes()
}

// eciesSeal is the UE side (C.3.2): ECDH of the ephemeral private key with
// the home network public key, KDF, AES-128-CTR, HMAC. It returns the scheme
// output: ephemeral public key || ciphertext || MAC tag.
func eciesSeal(hn *PublicKey, eph *ecdh.PrivateKey, plaintext []byte) ([]byte, error) {
	z, err := eph.ECDH(hn.key)
	if err != nil {
		return nil, fmt.Errorf("%v ECDH: %v: %w", hn.scheme, err, ErrInvalidKey)
	}
	ephPub := ephemeralBytes(hn.scheme, eph.PublicKey())
	k := deriveKeys(z, ephPub)
	ct := ctr32(&k.enc, &k.icb, plaintext)
	out := make([]byte, 0, len(ephPub)+len(ct)+macLen)
	out = append(out, ephPub...)
	out = append(out, ct...)
	return append(out, macTag(&k.mac, ct)...), nil
}

// eciesOpen is the home network side (C.3.3): it splits the scheme output,
// checks the ephemeral key, derives the keys, verifies the MAC tag and only
// then decrypts.
func eciesOpen(hn *PrivateKey, output []byte) ([]byte, error) {
	s := hn.scheme
	n := ephemeralKeyLen(s)
	if len(output) < n+1+macLen {
		return nil, fmt.Errorf("%v scheme output of %d octets, want at least %d (key %d, ciphertext 1+, MAC %d): %w",
			s, len(output), n+1+macLen, n, macLen, ErrMalformed)
	}
	ephRaw, ct, tag := output[:n], output[n:len(output)-macLen], output[len(output)-macLen:]
	var eph *ecdh.PublicKey
	var err error
	switch s {
	case SchemeProfileA:
		eph, err = ecdh.X25519().NewPublicKey(ephRaw)
	case SchemeProfileB:
		var unc []byte
		if unc, err = decompressP256(ephRaw); err != nil {
			return nil, fmt.Errorf("B ephemeral public key: %w", err)
		}
		eph, err = ecdh.P256().NewPublicKey(unc)
	}
	if err != nil {
		return nil, fmt.Errorf("%v ephemeral public key: %v: %w", s, err, ErrInvalidKey)
	}
	z, err := hn.key.ECDH(eph)
	if err != nil {
		// X25519: a low-order point gives the all-zero secret (RFC 7748 6.1).
		return nil, fmt.Errorf("%v ECDH with ephemeral key %x: %v: %w", s, ephRaw, err, ErrInvalidKey)
	}
	k := deriveKeys(z, ephRaw)
	if !hmac.Equal(macTag(&k.mac, ct), tag) {
		return nil, fmt.Errorf("%v scheme output: %w", s, ErrMAC)
	}
	return ctr32(&k.enc, &k.icb, ct), nil
}
