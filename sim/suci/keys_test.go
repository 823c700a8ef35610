package suci

import (
	"bytes"
	"crypto/aes"
	"crypto/cipher"
	"crypto/elliptic"
	"encoding/hex"
	"errors"
	"strings"
	"testing"
)

func TestGenerateKey(t *testing.T) {
	for _, tc := range []struct {
		scheme          Scheme
		privHex, pubHex int
	}{
		{SchemeProfileA, 64, 64},
		{SchemeProfileB, 64, 66},
	} {
		k, err := GenerateKey(tc.scheme)
		if err != nil {
			t.Fatal(err)
		}
		k2, err := GenerateKey(tc.scheme)
		if err != nil {
			t.Fatal(err)
		}
		if bytes.Equal(k.Bytes(), k2.Bytes()) {
			t.Errorf("%v: two generated keys are equal", tc.scheme)
		}
		if k.Scheme() != tc.scheme || k.PublicKey().Scheme() != tc.scheme {
			t.Errorf("%v: key schemes %v, %v", tc.scheme, k.Scheme(), k.PublicKey().Scheme())
		}
		if len(k.Hex()) != tc.privHex || len(k.PublicKey().Hex()) != tc.pubHex {
			t.Errorf("%v: hex lengths %d, %d; want %d, %d", tc.scheme, len(k.Hex()), len(k.PublicKey().Hex()), tc.privHex, tc.pubHex)
		}
		// Hex round trips, with surrounding space and upper case.
		back, err := ParsePrivateKey(tc.scheme, " "+strings.ToUpper(k.Hex())+"\n")
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(back.Bytes(), k.Bytes()) || !back.PublicKey().Equal(k.PublicKey()) {
			t.Errorf("%v: private key hex round trip differs", tc.scheme)
		}
		pub, err := ParsePublicKey(tc.scheme, k.PublicKey().Hex())
		if err != nil {
			t.Fatal(err)
		}
		if !pub.Equal(k.PublicKey()) || pub.Hex() != k.PublicKey().Hex() {
			t.Errorf("%v: public key hex round trip differs", tc.scheme)
		}
		if pub.Equal(k2.PublicKey()) {
			t.Errorf("%v: different keys Equal", tc.scheme)
		}
		// Bytes is a copy.
		b := pub.Bytes()
		b[1] ^= 0xff
		if pub.Hex() != k.PublicKey().Hex() {
			t.Errorf("%v: PublicKey.Bytes aliases the key", tc.scheme)
		}
	}
	for _, s := range []Scheme{SchemeNull, 3, 12} {
		if _, err := GenerateKey(s); !errors.Is(err, ErrUnsupported) {
			t.Errorf("GenerateKey(%v): %v, want ErrUnsupported", s, err)
		}
	}
}

func TestKeyErrors(t *testing.T) {
	params := elliptic.P256().Params()
	n := params.N.FillBytes(make([]byte, 32))
	gen, err := GenerateKey(SchemeProfileB)
	if err != nil {
		t.Fatal(err)
	}
	unc := append([]byte{0x04}, make([]byte, 64)...)
	copy(unc[1:], mustHex("72da71976234ce833a6907425867b82e074d44ef907dfb4b3e21c1c2256ebcd15a7ded52fcbb097a4ed250e036c7b9c8c7004c4eedc4f068cd7bf8d3f900e3b4"))
	offCurve := bytes.Clone(unc)
	offCurve[64] ^= 1

	privTests := []struct {
		name   string
		scheme Scheme
		hex    string
		want   error
	}{
		{"not hex", SchemeProfileA, "zz", ErrMalformed},
		{"odd hex", SchemeProfileA, "abc", ErrMalformed},
		{"31 octets", SchemeProfileA, strings.Repeat("11", 31), ErrMalformed},
		{"33 octets", SchemeProfileB, strings.Repeat("11", 33), ErrMalformed},
		{"empty", SchemeProfileB, "", ErrMalformed},
		{"B zero", SchemeProfileB, strings.Repeat("00", 32), ErrInvalidKey},
		{"B n", SchemeProfileB, hex.EncodeToString(n), ErrInvalidKey},
		{"B all ones", SchemeProfileB, strings.Repeat("ff", 32), ErrInvalidKey},
		{"null scheme", SchemeNull, strings.Repeat("11", 32), ErrUnsupported},
	}
	for _, tc := range privTests {
		if k, err := ParsePrivateKey(tc.scheme, tc.hex); !errors.Is(err, tc.want) {
			t.Errorf("ParsePrivateKey %s: %v, %v; want %v", tc.name, k, err, tc.want)
		}
	}

	pubTests := []struct {
		name   string
		scheme Scheme
		b      []byte
		want   error
	}{
		{"A 31 octets", SchemeProfileA, make([]byte, 31), ErrMalformed},
		{"A 33 octets", SchemeProfileA, make([]byte, 33), ErrMalformed},
		{"B 32 octets", SchemeProfileB, make([]byte, 32), ErrMalformed},
		{"B 64 octets", SchemeProfileB, unc[1:], ErrMalformed},
		{"B compressed prefix 04", SchemeProfileB, append([]byte{0x04}, gen.PublicKey().Bytes()[1:]...), ErrMalformed},
		{"B compressed off the curve", SchemeProfileB, notOnCurveX(t), ErrInvalidKey},
		{"B uncompressed off the curve", SchemeProfileB, offCurve, ErrInvalidKey},
		{"B uncompressed prefix 05", SchemeProfileB, append([]byte{0x05}, unc[1:]...), ErrInvalidKey},
		{"B uncompressed infinity", SchemeProfileB, make([]byte, 65), ErrInvalidKey},
		{"null scheme", SchemeNull, make([]byte, 32), ErrUnsupported},
	}
	for _, tc := range pubTests {
		if k, err := NewPublicKey(tc.scheme, tc.b); !errors.Is(err, tc.want) {
			t.Errorf("NewPublicKey %s: %v, %v; want %v", tc.name, k, err, tc.want)
		}
	}
	if _, err := ParsePublicKey(SchemeProfileA, "xyz"); !errors.Is(err, ErrMalformed) {
		t.Errorf("ParsePublicKey bad hex: %v", err)
	}
	if k, err := NewPublicKey(SchemeProfileB, unc); err != nil || k.Hex() != "0272da71976234ce833a6907425867b82e074d44ef907dfb4b3e21c1c2256ebcd1" {
		t.Errorf("NewPublicKey uncompressed C.4.4.1 key: %v, %v", k, err)
	}
}

// TestCTR32 checks the counter function of TS 33.501 C.3.4.0 (NIST SP
// 800-38A B.1, m = 32): like a 128-bit counter until the low 32 bits wrap,
// then without carry into the upper 96.
func TestCTR32(t *testing.T) {
	var key [16]byte
	copy(key[:], "0123456789abcdef")
	blk, err := aes.NewCipher(key[:])
	if err != nil {
		t.Fatal(err)
	}
	msg := bytes.Repeat([]byte("simgate!"), 7) // 56 octets: 3.5 blocks
	var icb [16]byte
	copy(icb[:], mustHex("e2622cb0cdd08204e721c8ea00000001"))
	want := make([]byte, len(msg))
	cipher.NewCTR(blk, icb[:]).XORKeyStream(want, msg)
	if got := ctr32(&key, &icb, msg); !bytes.Equal(got, want) {
		t.Errorf("ctr32 without wrap = %x, want %x", got, want)
	}
	if got := ctr32(&key, &icb, ctr32(&key, &icb, msg)); !bytes.Equal(got, msg) {
		t.Error("ctr32 is not its own inverse")
	}
	if got := ctr32(&key, &icb, nil); len(got) != 0 {
		t.Errorf("ctr32 of nothing = %x", got)
	}

	// Low 32 bits at ffffffff: the second block's counter is ...00000000
	// with the upper 96 bits unchanged.
	copy(icb[:], mustHex("00112233445566778899aabbffffffff"))
	got := ctr32(&key, &icb, make([]byte, 32))
	var ks0, ks1 [16]byte
	blk.Encrypt(ks0[:], icb[:])
	blk.Encrypt(ks1[:], mustHex("00112233445566778899aabb00000000"))
	if !bytes.Equal(got[:16], ks0[:]) || !bytes.Equal(got[16:], ks1[:]) {
		t.Errorf("ctr32 at wrap = %x, want %x%x", got, ks0, ks1)
	}
	carry := make([]byte, 32)
	cipher.NewCTR(blk, icb[:]).XORKeyStream(carry, make([]byte, 32))
	if bytes.Equal(got, carry) {
		t.Error("ctr32 carried into the upper 96 bits")
	}
}
