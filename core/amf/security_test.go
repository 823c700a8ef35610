package amf

import (
	"crypto/aes"
	"crypto/cipher"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"testing"

	"github.com/free5gc/nas/ie"
	"github.com/free5gc/nas/message"

	"github.com/simgate/simgate/internal/vectors"
	"github.com/simgate/simgate/sim/kdf"
)

// An independent 128-NIA2 / 128-NEA2 (TS 33.501 D.4.4, D.4.5; TS 33.401
// B.2.3, B.1.3) built on crypto/aes, checked against the spec vectors, so
// that the AMF's use of the NAS library (which COUNT, BEARER, DIRECTION,
// which octets) is checked against something that is not the library.

// cmac is AES-CMAC (RFC 4493) over the first nbits bits of msg.
func cmac(key []byte, msg []byte, nbits int) [16]byte {
	c, _ := aes.NewCipher(key)
	var l [16]byte
	c.Encrypt(l[:], l[:])
	dbl := func(in [16]byte) (out [16]byte) {
		carry := in[0] >> 7
		for i := 0; i < 15; i++ {
			out[i] = in[i]<<1 | in[i+1]>>7
		}
		out[15] = in[15] << 1
		if carry == 1 {
			out[15] ^= 0x87
		}
		return out
	}
	k1 := dbl(l)
	k2 := dbl(k1)
	nbytes := (nbits + 7) / 8
	m := append([]byte(nil), msg[:nbytes]...)
	if r := nbits % 8; r != 0 {
		m[nbytes-1] &= 0xFF << (8 - r)
	}
	n := (nbits + 127) / 128
	complete := nbits > 0 && nbits%128 == 0
	if n == 0 {
		n = 1
	}
	var last [16]byte
	copy(last[:], m[(n-1)*16:])
	if complete {
		for i := range last {
			last[i] ^= k1[i]
		}
	} else {
		bit := nbits % 128
		last[bit/8] |= 0x80 >> (bit % 8)
		for i := range last {
			last[i] ^= k2[i]
		}
	}
	var x [16]byte
	for i := 0; i < n-1; i++ {
		for j := 0; j < 16; j++ {
			x[j] ^= m[i*16+j]
		}
		c.Encrypt(x[:], x[:])
	}
	for j := range x {
		x[j] ^= last[j]
	}
	c.Encrypt(x[:], x[:])
	return x
}

// nia2 is 128-NIA2: CMAC over COUNT || BEARER || DIRECTION || 0^26 ||
// MESSAGE, the first 32 bits.
func nia2(key []byte, count uint32, bearer, dir uint8, msg []byte, nbits int) [4]byte {
	m := make([]byte, 8, 8+len(msg))
	binary.BigEndian.PutUint32(m, count)
	m[4] = bearer<<3 | dir<<2
	m = append(m, msg...)
	t := cmac(key, m, 64+nbits)
	return [4]byte(t[:4])
}

// nea2 is 128-NEA2: AES-CTR with IV COUNT || BEARER || DIRECTION || 0.
func nea2(key []byte, count uint32, bearer, dir uint8, in []byte) []byte {
	var iv [16]byte
	binary.BigEndian.PutUint32(iv[:], count)
	iv[4] = bearer<<3 | dir<<2
	c, _ := aes.NewCipher(key)
	out := make([]byte, len(in))
	cipher.NewCTR(c, iv[:]).XORKeyStream(out, in)
	return out
}

type nasCase struct {
	Kind       string `json:"kind"`
	Name       string `json:"name"`
	Key        string `json:"key"`
	Count      string `json:"count"`
	Bearer     uint8  `json:"bearer"`
	Direction  uint8  `json:"direction"`
	LengthBits int    `json:"length_bits"`
	Message    string `json:"message"`
	MAC        string `json:"mac"`
	Plaintext  string `json:"plaintext"`
	Ciphertext string `json:"ciphertext"`
}

func mustHex(t *testing.T, s string) []byte {
	t.Helper()
	b, err := hex.DecodeString(s)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// firstBits compares the first n bits of a and b.
func firstBits(a, b []byte, n int) bool {
	for i := 0; i < n; i++ {
		if (a[i/8]>>(7-i%8))&1 != (b[i/8]>>(7-i%8))&1 {
			return false
		}
	}
	return true
}

func TestReferenceNIA2NEA2Vectors(t *testing.T) {
	nIA, nEA := 0, 0
	for _, c := range vectors.Load[nasCase](t, "nas_security.json") {
		count := binary.BigEndian.Uint32(mustHex(t, c.Count))
		switch c.Kind {
		case "nia2":
			got := nia2(mustHex(t, c.Key), count, c.Bearer, c.Direction, mustHex(t, c.Message), c.LengthBits)
			if hex.EncodeToString(got[:]) != c.MAC {
				t.Errorf("%s: MAC %x, want %s", c.Name, got, c.MAC)
			}
			nIA++
		case "nea2":
			got := nea2(mustHex(t, c.Key), count, c.Bearer, c.Direction, mustHex(t, c.Plaintext))
			if !firstBits(got, mustHex(t, c.Ciphertext), c.LengthBits) {
				t.Errorf("%s: ciphertext %x", c.Name, got)
			}
			nEA++
		}
	}
	if nIA != 8 || nEA != 6 {
		t.Fatalf("%d NIA2 and %d NEA2 vectors, want 8 and 6", nIA, nEA)
	}
}

// TestProtectMatchesReference: the AMF's downlink NAS (KNASint/KNASenc
// from KAMF per A.8, BEARER 1, DIRECTION 1, COUNT from 0, MAC over the
// sequence number and the ciphered message) equals the reference
// computation; and the reference's uplink message is accepted.
func TestProtectMatchesReference(t *testing.T) {
	kamf := [32]byte{0x01, 0x02, 0x03}
	s, err := newNASSecurity(kamf, 0, 2, 2)
	if err != nil {
		t.Fatal(err)
	}
	kint, _ := kdf.AlgorithmKey(kamf, kdf.NASInt, 2)
	kenc, _ := kdf.AlgorithmKey(kamf, kdf.NASEnc, 2)
	for count := uint32(0); count < 3; count++ {
		plain, _ := (&message.RegRej{Cause5GMM: &ie.Cause5GMM{Value: 7}}).MarshalBinary()
		b, err := s.protect(&message.RegRej{Cause5GMM: &ie.Cause5GMM{Value: 7}}, message.SecHdrTypeIntegrityProtectedAndCiphered)
		if err != nil {
			t.Fatal(err)
		}
		ct := nea2(kenc[:], count, 1, 1, plain)
		want := append([]byte{byte(count)}, ct...)
		mac := nia2(kint[:], count, 1, 1, want, 8*len(want))
		want = append(append([]byte{epd5GMM, 0x02}, mac[:]...), want...)
		if hex.EncodeToString(b) != hex.EncodeToString(want) {
			t.Fatalf("DL count %d:\n got %x\nwant %x", count, b, want)
		}
	}
	// Uplink built by the reference.
	plain := []byte{epd5GMM, 0x00, byte(message.MsgTypeRegComplete)}
	ct := nea2(kenc[:], 0, 1, 0, plain)
	body := append([]byte{0}, ct...)
	mac := nia2(kint[:], 0, 1, 0, body, 8*len(body))
	ul := append(append([]byte{epd5GMM, 0x02}, mac[:]...), body...)
	got, n, err := s.unprotect(ul, false)
	if err != nil || n != 0 || hex.EncodeToString(got) != hex.EncodeToString(plain) {
		t.Fatalf("unprotect reference uplink: %x %d %v", got, n, err)
	}
}

// ueSide builds the UE's copy of a security context.
func ueSide(t *testing.T, kamf [32]byte, integ, ciph uint8) *message.SecCtx {
	kint, _ := kdf.AlgorithmKey(kamf, kdf.NASInt, integ)
	kenc, _ := kdf.AlgorithmKey(kamf, kdf.NASEnc, ciph)
	return message.NewSecCtx(message.UESide, message.Bearer3GPP, ie.AlgCiphering(ciph), ie.AlgIntegrity(integ), kenc[:], kint[:])
}

func TestUnprotectCounts(t *testing.T) {
	kamf := [32]byte{9}
	// The counting is the same for every algorithm: 600 messages (two NAS
	// overflow steps) with NIA2; SNOW 3G and ZUC are slow under -race, so
	// fewer with those.
	for _, alg := range [][3]int{{2, 2, 600}, {1, 0, 20}, {3, 1, 20}, {1, 3, 20}} {
		s, _ := newNASSecurity(kamf, 0, uint8(alg[0]), uint8(alg[1]))
		ue := ueSide(t, kamf, uint8(alg[0]), uint8(alg[1]))
		var sent [][]byte
		n := alg[2]
		for i := 0; i < n; i++ {
			b, err := message.Marshal(&message.RegComplete{}, ue, message.SecHdrTypeIntegrityProtectedAndCiphered)
			if err != nil {
				t.Fatal(err)
			}
			sent = append(sent, b)
			if i%7 == 3 {
				continue // lost on the way
			}
			if _, c, err := s.unprotect(b, false); err != nil || c != uint32(i) {
				t.Fatalf("NIA%d/NEA%d: message %d: count %d, %v", alg[0], alg[1], i, c, err)
			}
		}
		// Every earlier message is now a replay, lost ones too.
		for _, i := range []int{0, 3, 255, 256, 500, 598} {
			if i >= n {
				continue
			}
			if _, _, err := s.unprotect(sent[i], false); !errors.Is(err, errNASReplay) && !errors.Is(err, errNASMAC) {
				t.Errorf("replay of %d: %v", i, err)
			}
		}
		if _, _, err := s.unprotect(sent[n-1], false); !errors.Is(err, errNASReplay) {
			t.Errorf("replay of the last message: %v, want errNASReplay", err)
		}
		// Tampering anywhere fails the MAC.
		b, _ := message.Marshal(&message.RegComplete{}, ue, message.SecHdrTypeIntegrityProtectedAndCiphered)
		for _, pos := range []int{2, 5, 6, 7, len(b) - 1} {
			bad := append([]byte(nil), b...)
			bad[pos] ^= 0x04
			if _, _, err := s.unprotect(bad, false); err == nil {
				t.Errorf("NIA%d: tampered octet %d accepted", alg[0], pos)
			}
		}
		if _, _, err := s.unprotect(b, false); err != nil {
			t.Errorf("genuine message after tampered copies: %v", err)
		}
	}
}

func TestUnprotectHeaders(t *testing.T) {
	kamf := [32]byte{7}
	s, _ := newNASSecurity(kamf, 0, 2, 0)
	ue := ueSide(t, kamf, 2, 0)
	newCtx, _ := message.Marshal(&message.SecModeComplete{}, ue, message.SecHdrTypeIntegrityProtectedAndCipheredWithNew5gNasSecCtx)
	if _, _, err := s.unprotect(newCtx, false); !errors.Is(err, errNASHeader) {
		t.Errorf("new-context header outside SMC: %v", err)
	}
	if _, c, err := s.unprotect(newCtx, true); err != nil || c != 0 {
		t.Errorf("SMC complete: %d %v", c, err)
	}
	normal, _ := message.Marshal(&message.RegComplete{}, ue, message.SecHdrTypeIntegrityProtectedAndCiphered)
	if _, _, err := s.unprotect(normal, true); !errors.Is(err, errNASHeader) {
		t.Errorf("old-context header where a new context is expected: %v", err)
	}
	for _, b := range [][]byte{nil, {0x7e}, {0x7e, 0x02, 1, 2, 3, 4, 5}, {0x2e, 0x02, 1, 2, 3, 4, 5, 6, 7, 8}, {0x7e, 0x05, 1, 2, 3, 4, 5, 6, 7, 8}} {
		if _, _, err := s.unprotect(b, false); err == nil {
			t.Errorf("unprotect(%x) accepted", b)
		}
	}
}

func TestSelectAlgorithms(t *testing.T) {
	all := &ie.UESecCapability{EA05G: true, EA1_128_5G: true, EA2_128_5G: true, EA3_128_5G: true, IA1_128_5G: true, IA2_128_5G: true, IA3_128_5G: true}
	tests := []struct {
		cap          *ie.UESecCapability
		integ, ciph  []uint8
		wantI, wantC uint8
		ok           bool
	}{
		{all, []uint8{2, 1, 3}, []uint8{0, 2, 1, 3}, 2, 0, true},
		{all, []uint8{3}, []uint8{1}, 3, 1, true},
		{&ie.UESecCapability{EA2_128_5G: true, IA1_128_5G: true}, []uint8{2, 1}, []uint8{0, 2}, 1, 2, true},
		{&ie.UESecCapability{EA05G: true, IA05G: true}, []uint8{2, 1, 3}, []uint8{0}, 0, 0, false},
		{&ie.UESecCapability{IA2_128_5G: true}, []uint8{2}, []uint8{0, 1, 2, 3}, 0, 0, false},
	}
	for i, tc := range tests {
		gi, gc, ok := selectAlgorithms(tc.cap, tc.integ, tc.ciph)
		if ok != tc.ok || (ok && (gi != tc.wantI || gc != tc.wantC)) {
			t.Errorf("case %d: NIA%d NEA%d %v", i, gi, gc, ok)
		}
	}
}
