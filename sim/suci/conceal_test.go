package suci

import (
	"bytes"
	"crypto/elliptic"
	"crypto/rand"
	"errors"
	"math/big"
	"testing"
)

// testKeys returns one home network key pair per ECIES profile.
func testKeys(t testing.TB) map[Scheme]*PrivateKey {
	t.Helper()
	keys := map[Scheme]*PrivateKey{}
	for _, s := range []Scheme{SchemeProfileA, SchemeProfileB} {
		k, err := GenerateKey(s)
		if err != nil {
			t.Fatal(err)
		}
		keys[s] = k
	}
	return keys
}

func mustSUPI(t testing.TB, imsi string, mncLen int) SUPI {
	t.Helper()
	s, err := NewIMSI(imsi, mncLen)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func TestRoundTrip(t *testing.T) {
	keys := testKeys(t)
	supis := []SUPI{
		mustSUPI(t, "001010000000001", 2), // 10-digit MSIN
		mustSUPI(t, "001010000000001", 3), // 9-digit MSIN
		mustSUPI(t, "31041098765432", 3),  // even MSIN
		mustSUPI(t, "0010112", 2),         // 2-digit MSIN
		mustSUPI(t, "0010101", 3),         // 1-digit MSIN
		mustSUPI(t, "999999999999999", 2), // all nines
	}
	for _, scheme := range []Scheme{SchemeNull, SchemeProfileA, SchemeProfileB} {
		for _, supi := range supis {
			for _, ri := range []string{"", "0", "0123", "99"} {
				p := Params{RoutingIndicator: ri, Scheme: scheme}
				var key *PrivateKey
				if scheme != SchemeNull {
					key = keys[scheme]
					p.KeyID = 17
					p.HNPublicKey = key.PublicKey()
				}
				suci, err := Conceal(supi, p)
				if err != nil {
					t.Fatalf("Conceal(%v, %v, ri %q): %v", supi, scheme, ri, err)
				}
				wantRI := ri
				if ri == "" {
					wantRI = "0"
				}
				if suci.MCC != supi.MCC || suci.MNC != supi.MNC || suci.RoutingIndicator != wantRI ||
					suci.Scheme != scheme || suci.KeyID != p.KeyID || suci.SUPIType != SUPITypeIMSI {
					t.Errorf("Conceal(%v, %v) = %+v", supi, scheme, suci)
				}
				bcd := appendBCD(nil, supi.MSIN)
				if scheme == SchemeNull {
					if !bytes.Equal(suci.SchemeOutput, bcd) {
						t.Errorf("null output %x, want %x", suci.SchemeOutput, bcd)
					}
				} else {
					if n := ephemeralKeyLen(scheme) + len(bcd) + macLen; len(suci.SchemeOutput) != n {
						t.Errorf("%v output of %d octets, want %d", scheme, len(suci.SchemeOutput), n)
					}
					if bytes.Contains(suci.SchemeOutput, bcd) && len(bcd) > 2 {
						t.Errorf("%v output %x contains the MSIN %x in clear", scheme, suci.SchemeOutput, bcd)
					}
				}
				checkBackToSUPI(t, suci, key, supi)
			}
		}
	}
}

func TestConcealFresh(t *testing.T) {
	keys := testKeys(t)
	supi := mustSUPI(t, "001010000000001", 2)
	for _, scheme := range []Scheme{SchemeProfileA, SchemeProfileB} {
		p := Params{Scheme: scheme, KeyID: 1, HNPublicKey: keys[scheme].PublicKey()}
		a, err := Conceal(supi, p)
		if err != nil {
			t.Fatal(err)
		}
		b, err := Conceal(supi, p)
		if err != nil {
			t.Fatal(err)
		}
		if bytes.Equal(a.SchemeOutput, b.SchemeOutput) {
			t.Errorf("%v: two SUCIs of one SUPI are equal: %x", scheme, a.SchemeOutput)
		}
		// A fixed ephemeral key gives a fixed output.
		p.EphemeralKey = bytes.Repeat([]byte{0x42}, 32)
		c, err := Conceal(supi, p)
		if err != nil {
			t.Fatal(err)
		}
		d, err := Conceal(supi, p)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(c.SchemeOutput, d.SchemeOutput) {
			t.Errorf("%v: fixed ephemeral key, outputs differ", scheme)
		}
	}
}

func TestNAIRoundTrip(t *testing.T) {
	supi, err := ParseSUPI("nai-alice.smith@corp-net.example.com", 0)
	if err != nil {
		t.Fatal(err)
	}
	suci, err := Conceal(supi, Params{RoutingIndicator: "12"})
	if err != nil {
		t.Fatal(err)
	}
	if suci.String() != "suci-1-corp-net.example.com-12-0-0-alice.smith" {
		t.Errorf("String() = %s", suci)
	}
	checkBackToSUPI(t, suci, nil, supi)
}

func TestConcealErrors(t *testing.T) {
	keys := testKeys(t)
	pubA, pubB := keys[SchemeProfileA].PublicKey(), keys[SchemeProfileB].PublicKey()
	imsi := mustSUPI(t, "001010000000001", 2)
	nai := SUPI{Type: SUPITypeNAI, Username: "u", Realm: "a.b"}
	lowOrder, err := NewPublicKey(SchemeProfileA, make([]byte, 32))
	if err != nil {
		t.Fatal(err)
	}
	n := elliptic.P256().Params().N.FillBytes(make([]byte, 32))
	tests := []struct {
		name string
		supi SUPI
		p    Params
		want error
	}{
		{"invalid SUPI", SUPI{Type: SUPITypeIMSI, MCC: "001", MNC: "01"}, Params{}, ErrMalformed},
		{"SUPI type 2", SUPI{Type: 2}, Params{}, ErrUnsupported},
		{"routing indicator", imsi, Params{RoutingIndicator: "12345"}, ErrMalformed},
		{"null with key id", imsi, Params{KeyID: 1}, ErrMalformed},
		{"A with key id 0", imsi, Params{Scheme: SchemeProfileA, HNPublicKey: pubA}, ErrMalformed},
		{"A without key", imsi, Params{Scheme: SchemeProfileA, KeyID: 1}, ErrMalformed},
		{"A with B key", imsi, Params{Scheme: SchemeProfileA, KeyID: 1, HNPublicKey: pubB}, ErrMalformed},
		{"B with A key", imsi, Params{Scheme: SchemeProfileB, KeyID: 1, HNPublicKey: pubA}, ErrMalformed},
		{"A with low-order key", imsi, Params{Scheme: SchemeProfileA, KeyID: 1, HNPublicKey: lowOrder}, ErrInvalidKey},
		{"ephemeral key short", imsi, Params{Scheme: SchemeProfileA, KeyID: 1, HNPublicKey: pubA, EphemeralKey: make([]byte, 31)}, ErrMalformed},
		{"ephemeral key empty", imsi, Params{Scheme: SchemeProfileB, KeyID: 1, HNPublicKey: pubB, EphemeralKey: []byte{}}, ErrMalformed},
		{"B ephemeral key 0", imsi, Params{Scheme: SchemeProfileB, KeyID: 1, HNPublicKey: pubB, EphemeralKey: make([]byte, 32)}, ErrInvalidKey},
		{"B ephemeral key n", imsi, Params{Scheme: SchemeProfileB, KeyID: 1, HNPublicKey: pubB, EphemeralKey: n}, ErrInvalidKey},
		{"scheme 3", imsi, Params{Scheme: 3, KeyID: 1}, ErrUnsupported},
		{"scheme 15", imsi, Params{Scheme: 15, KeyID: 1}, ErrUnsupported},
		{"NAI with A", nai, Params{Scheme: SchemeProfileA, KeyID: 1, HNPublicKey: pubA}, ErrUnsupported},
	}
	for _, tc := range tests {
		if got, err := Conceal(tc.supi, tc.p); !errors.Is(err, tc.want) {
			t.Errorf("%s: Conceal = %v, %v; want %v", tc.name, got, err, tc.want)
		}
	}
}

// concealed returns a SUCI of an ECIES scheme, key id 1, with its key.
func concealed(t *testing.T, scheme Scheme) (SUCI, *PrivateKey) {
	t.Helper()
	key, err := GenerateKey(scheme)
	if err != nil {
		t.Fatal(err)
	}
	s, err := Conceal(mustSUPI(t, "001010123456789", 2), Params{Scheme: scheme, KeyID: 1, HNPublicKey: key.PublicKey()})
	if err != nil {
		t.Fatal(err)
	}
	return s, key
}

func withOutput(s SUCI, out []byte) SUCI {
	s.SchemeOutput = out
	return s
}

func TestDeconcealTampered(t *testing.T) {
	for _, scheme := range []Scheme{SchemeProfileA, SchemeProfileB} {
		s, key := concealed(t, scheme)
		eph := ephemeralKeyLen(scheme)
		for i := range s.SchemeOutput {
			for _, bit := range []byte{0x01, 0x80} {
				out := bytes.Clone(s.SchemeOutput)
				out[i] ^= bit
				got, err := Deconceal(withOutput(s, out), key)
				switch {
				case i >= eph && !errors.Is(err, ErrMAC):
					t.Errorf("%v: bit %02x of octet %d flipped: %v, %v; want ErrMAC", scheme, bit, i, got, err)
				case i < eph && !(errors.Is(err, ErrMAC) || errors.Is(err, ErrInvalidKey) || errors.Is(err, ErrMalformed)):
					t.Errorf("%v: bit %02x of ephemeral key octet %d flipped: %v, %v", scheme, bit, i, got, err)
				}
			}
		}
		// Another key of the same profile.
		other, err := GenerateKey(scheme)
		if err != nil {
			t.Fatal(err)
		}
		if got, err := Deconceal(s, other); !errors.Is(err, ErrMAC) {
			t.Errorf("%v: wrong key: %v, %v; want ErrMAC", scheme, got, err)
		}
	}
}

func TestDeconcealTruncated(t *testing.T) {
	for _, scheme := range []Scheme{SchemeProfileA, SchemeProfileB} {
		s, key := concealed(t, scheme)
		for n := 0; n < len(s.SchemeOutput); n++ {
			got, err := Deconceal(withOutput(s, s.SchemeOutput[:n]), key)
			if n < ephemeralKeyLen(scheme)+1+macLen {
				if !errors.Is(err, ErrMalformed) {
					t.Errorf("%v: output cut to %d: %v, %v; want ErrMalformed", scheme, n, got, err)
				}
			} else if !errors.Is(err, ErrMAC) {
				t.Errorf("%v: output cut to %d: %v, %v; want ErrMAC", scheme, n, got, err)
			}
		}
		// Bytes added at the end move the MAC tag.
		if got, err := Deconceal(withOutput(s, append(bytes.Clone(s.SchemeOutput), 0)), key); !errors.Is(err, ErrMAC) {
			t.Errorf("%v: output extended: %v, %v; want ErrMAC", scheme, got, err)
		}
		// eciesOpen checks the length itself too.
		if _, err := eciesOpen(key, s.SchemeOutput[:ephemeralKeyLen(scheme)+macLen]); !errors.Is(err, ErrMalformed) {
			t.Errorf("%v: eciesOpen without ciphertext: %v", scheme, err)
		}
	}
}

func TestDeconcealKeys(t *testing.T) {
	sA, keyA := concealed(t, SchemeProfileA)
	sB, keyB := concealed(t, SchemeProfileB)
	want := mustSUPI(t, "001010123456789", 2)

	keys := Keys{1: keyA, 2: keyB}
	if got, err := keys.Deconceal(sA); err != nil || got != want {
		t.Errorf("A, key id 1: %v, %v", got, err)
	}
	// sB names key id 1, which holds the A key.
	if got, err := keys.Deconceal(sB); !errors.Is(err, ErrUnknownKey) {
		t.Errorf("B SUCI on an A key: %v, %v; want ErrUnknownKey", got, err)
	}
	sB.KeyID = 2
	if got, err := keys.Deconceal(sB); err != nil || got != want {
		t.Errorf("B, key id 2: %v, %v", got, err)
	}
	sA.KeyID = 3
	if got, err := keys.Deconceal(sA); !errors.Is(err, ErrUnknownKey) {
		t.Errorf("key id 3: %v, %v; want ErrUnknownKey", got, err)
	}
	if got, err := (Keys(nil)).Deconceal(sA); !errors.Is(err, ErrUnknownKey) {
		t.Errorf("nil Keys: %v, %v; want ErrUnknownKey", got, err)
	}
	if got, err := Deconceal(sA, nil); !errors.Is(err, ErrUnknownKey) {
		t.Errorf("nil key: %v, %v; want ErrUnknownKey", got, err)
	}
	if got, err := Deconceal(sA, keyB); !errors.Is(err, ErrUnknownKey) {
		t.Errorf("A SUCI, B key: %v, %v; want ErrUnknownKey", got, err)
	}
	// Null-scheme SUCIs need no key.
	null, err := Conceal(want, Params{})
	if err != nil {
		t.Fatal(err)
	}
	if got, err := (Keys{}).Deconceal(null); err != nil || got != want {
		t.Errorf("null scheme: %v, %v", got, err)
	}
	// A scheme this package does not implement.
	prop := SUCI{MCC: "001", MNC: "01", RoutingIndicator: "0", Scheme: 12, KeyID: 1, SchemeOutput: []byte{1, 2, 3}}
	if got, err := (Keys{1: keyA}).Deconceal(prop); !errors.Is(err, ErrUnsupported) {
		t.Errorf("scheme 12: %v, %v; want ErrUnsupported", got, err)
	}
	if got, err := Deconceal(prop, keyA); !errors.Is(err, ErrUnsupported) {
		t.Errorf("scheme 12: %v, %v; want ErrUnsupported", got, err)
	}
	// An invalid SUCI.
	if got, err := Deconceal(SUCI{}, nil); !errors.Is(err, ErrMalformed) {
		t.Errorf("zero SUCI: %v, %v; want ErrMalformed", got, err)
	}
}

// notOnCurveX returns a compressed P-256 encoding whose x has no y: x^3 -
// 3x + b is not a square mod p.
func notOnCurveX(t *testing.T) []byte {
	t.Helper()
	params := elliptic.P256().Params()
	for x := int64(1); x < 1000; x++ {
		bx := big.NewInt(x)
		rhs := new(big.Int).Exp(bx, big.NewInt(3), params.P)
		rhs.Sub(rhs, new(big.Int).Mul(big.NewInt(3), bx))
		rhs.Add(rhs, params.B)
		rhs.Mod(rhs, params.P)
		if big.Jacobi(rhs, params.P) == -1 {
			return append([]byte{0x02}, bx.FillBytes(make([]byte, 32))...)
		}
	}
	t.Fatal("no x off the curve below 1000")
	return nil
}

// x25519LowOrder are u-coordinates of points of order 1, 2, 4 or 8 on
// Curve25519 or its twist, and non-canonical encodings of them (RFC 7748
// 6.1 says to check the all-zero output these give).
var x25519LowOrder = []string{
	"0000000000000000000000000000000000000000000000000000000000000000", // 0
	"0100000000000000000000000000000000000000000000000000000000000000", // 1
	"e0eb7a7c3b41b8ae1656e3faf19fc46ada098deb9c32b1fd866205165f49b800", // order 8
	"5f9c95bca3508c24b1d0b1559c83ef5b04445cc4581c8e86d8224eddd09f1157", // order 8
	"ecffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f", // p-1
	"edffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f", // p, i.e. 0
	"eeffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f", // p+1, i.e. 1
}

func TestDeconcealInvalidPoints(t *testing.T) {
	sB, keyB := concealed(t, SchemeProfileB)
	rest := sB.SchemeOutput[p256CompressedLen:]
	p := elliptic.P256().Params().P
	for name, eph := range map[string][]byte{
		"x off the curve": notOnCurveX(t),
		"x = p":           append([]byte{0x03}, p.FillBytes(make([]byte, 32))...),
		"x = 2^256-1":     append([]byte{0x02}, bytes.Repeat([]byte{0xff}, 32)...),
	} {
		s := withOutput(sB, append(bytes.Clone(eph), rest...))
		if got, err := Deconceal(s, keyB); !errors.Is(err, ErrInvalidKey) {
			t.Errorf("B, %s: %v, %v; want ErrInvalidKey", name, got, err)
		}
	}
	// Profile B wants compressed points only.
	for _, prefix := range []byte{0x00, 0x04, 0x05} {
		eph := append([]byte{prefix}, sB.SchemeOutput[1:p256CompressedLen]...)
		s := withOutput(sB, append(eph, rest...))
		if got, err := Deconceal(s, keyB); !errors.Is(err, ErrMalformed) {
			t.Errorf("B, prefix %02x: %v, %v; want ErrMalformed", prefix, got, err)
		}
		if _, err := eciesOpen(keyB, s.SchemeOutput); !errors.Is(err, ErrMalformed) {
			t.Errorf("B, prefix %02x: eciesOpen: %v; want ErrMalformed", prefix, err)
		}
	}

	sA, keyA := concealed(t, SchemeProfileA)
	restA := sA.SchemeOutput[x25519KeyLen:]
	for _, h := range x25519LowOrder {
		s := withOutput(sA, append(mustHex(h), restA...))
		if got, err := Deconceal(s, keyA); !errors.Is(err, ErrInvalidKey) {
			t.Errorf("A, low-order point %s: %v, %v; want ErrInvalidKey", h, got, err)
		}
	}
}

// TestDeconcealBadPlaintext: a correctly MACed output whose plaintext is not
// an MSIN.
func TestDeconcealBadPlaintext(t *testing.T) {
	for _, scheme := range []Scheme{SchemeProfileA, SchemeProfileB} {
		key, err := GenerateKey(scheme)
		if err != nil {
			t.Fatal(err)
		}
		curve, _ := curveOf(scheme)
		eph, err := curve.GenerateKey(rand.Reader)
		if err != nil {
			t.Fatal(err)
		}
		for _, plain := range [][]byte{
			{0xab},                         // not BCD
			{0x1f},                         // filler in the low nibble
			appendBCD(nil, "123456789012"), // IMSI of 17 digits
		} {
			out, err := eciesSeal(key.PublicKey(), eph, plain)
			if err != nil {
				t.Fatal(err)
			}
			s := SUCI{MCC: "001", MNC: "01", RoutingIndicator: "0", Scheme: scheme, KeyID: 1, SchemeOutput: out}
			if got, err := Deconceal(s, key); !errors.Is(err, ErrMalformed) {
				t.Errorf("%v, plaintext %x: %v, %v; want ErrMalformed", scheme, plain, got, err)
			}
		}
	}
}

// TestKeysConcurrent: one Keys serves many goroutines, as in a UDM.
func TestKeysConcurrent(t *testing.T) {
	sA, keyA := concealed(t, SchemeProfileA)
	sB, keyB := concealed(t, SchemeProfileB)
	sB.KeyID = 2
	keys := Keys{1: keyA, 2: keyB}
	want := mustSUPI(t, "001010123456789", 2)
	errs := make(chan error, 8)
	for g := 0; g < cap(errs); g++ {
		go func() {
			var err error
			for i := 0; i < 10 && err == nil; i++ {
				s := sA
				if (g+i)%2 == 1 {
					s = sB
				}
				var got SUPI
				if got, err = keys.Deconceal(s); err == nil && got != want {
					err = errors.New("got " + got.String())
				}
			}
			errs <- err
		}()
	}
	for range cap(errs) {
		if err := <-errs; err != nil {
			t.Error(err)
		}
	}
}
