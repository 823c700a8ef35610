package suci

import (
	"bytes"
	"crypto/ecdh"
	"encoding/hex"
	"regexp"
	"strconv"
	"testing"

	"github.com/simgate/simgate/internal/vectors"
)

// vectorCase is one case of suci.json: TS 33.501 Annex C.4.
type vectorCase struct {
	Kind             string `json:"kind"`
	Name             string `json:"name"`
	Clause           string `json:"clause"`
	ProtectionScheme string `json:"protection_scheme"`
	SUPI             struct {
		Type   string `json:"type"`
		MCCMNC string `json:"mcc_mnc"`
		MCC    string `json:"mcc"`
		MNC    string `json:"mnc"`
		MSIN   string `json:"msin"`
		IMSI   string `json:"imsi"`
		NAI    string `json:"nai"`
	} `json:"supi"`
	SchemeInput        string `json:"scheme_input"`
	SchemeOutput       string `json:"scheme_output"`
	SchemeOutputString string `json:"scheme_output_string"`

	HNPriv            string `json:"home_network_private_key"`
	HNPub             string `json:"home_network_public_key"`
	HNPubUncompressed string `json:"home_network_public_key_uncompressed"`
	HNPubCompressed   string `json:"home_network_public_key_compressed"`
	EphPriv           string `json:"eph_private_key"`
	EphPub            string `json:"eph_public_key"`
	EphPubCompressed  string `json:"eph_public_key_compressed"`
	EphPubUncompr     string `json:"eph_public_key_uncompressed"`
	EphShared         string `json:"eph_shared_key"`
	EphEnc            string `json:"eph_enc_key"`
	ICB               string `json:"icb"`
	Plaintext         string `json:"scheme_input_plaintext_block"`
	Ciphertext        string `json:"ciphertext"`
	EphMAC            string `json:"eph_mac_key"`
	MACTag            string `json:"mac_tag"`
}

var schemeInName = regexp.MustCompile(`\(0x([0-9a-fA-F])\)`)

func (c vectorCase) scheme(t *testing.T) Scheme {
	m := schemeInName.FindStringSubmatch(c.ProtectionScheme)
	if m == nil {
		t.Fatalf("protection_scheme %q: no (0xN)", c.ProtectionScheme)
	}
	v, _ := strconv.ParseUint(m[1], 16, 8)
	return Scheme(v)
}

func (c vectorCase) supi(t *testing.T) SUPI {
	t.Helper()
	switch c.SUPI.Type {
	case "imsi":
		s, err := NewIMSI(c.SUPI.IMSI, len(c.SUPI.MNC))
		if err != nil {
			t.Fatal(err)
		}
		if s.MCC != c.SUPI.MCC || s.MNC != c.SUPI.MNC || s.MSIN != c.SUPI.MSIN || s.MCC+s.MNC != c.SUPI.MCCMNC {
			t.Fatalf("NewIMSI(%s) = %+v, want MCC %s MNC %s MSIN %s", c.SUPI.IMSI, s, c.SUPI.MCC, c.SUPI.MNC, c.SUPI.MSIN)
		}
		return s
	case "nai":
		s, err := ParseSUPI("nai-"+c.SUPI.NAI, 0)
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	t.Fatalf("SUPI type %q", c.SUPI.Type)
	return SUPI{}
}

func unhex(t *testing.T, s string) []byte {
	t.Helper()
	b, err := hex.DecodeString(s)
	if err != nil {
		t.Fatalf("vector hex %q: %v", s, err)
	}
	return b
}

func eqHex(t *testing.T, what string, got []byte, want string) {
	t.Helper()
	if w := unhex(t, want); !bytes.Equal(got, w) {
		t.Errorf("%s = %x, want %s", what, got, want)
	}
}

// TestVectors runs every TS 33.501 C.4 case of suci.json: the scheme input,
// each ECIES intermediate value, the scheme output, de-concealment, and the
// case's SUCI in string and NAS form.
func TestVectors(t *testing.T) {
	cases := vectors.Load[vectorCase](t, "suci.json")
	seen := map[Scheme]bool{}
	for _, c := range cases {
		t.Run(c.Clause+" "+c.Name, func(t *testing.T) {
			if c.Kind != "ecies_scheme_output" {
				t.Fatalf("unknown kind %q", c.Kind)
			}
			scheme := c.scheme(t)
			seen[scheme] = true
			supi := c.supi(t)
			switch scheme {
			case SchemeNull:
				testNullVector(t, c, supi)
			case SchemeProfileA, SchemeProfileB:
				testECIESVector(t, c, scheme, supi)
			default:
				t.Fatalf("scheme %v in vectors", scheme)
			}
		})
	}
	for _, s := range []Scheme{SchemeNull, SchemeProfileA, SchemeProfileB} {
		if !seen[s] {
			t.Errorf("suci.json has no case for scheme %v", s)
		}
	}
}

func testNullVector(t *testing.T, c vectorCase, supi SUPI) {
	suci, err := Conceal(supi, Params{Scheme: SchemeNull})
	if err != nil {
		t.Fatal(err)
	}
	if supi.Type == SUPITypeIMSI {
		// C.3.1 / C.4.2.1: the scheme input is the MSIN in BCD; the
		// null scheme outputs it unchanged.
		eqHex(t, "BCD(MSIN)", appendBCD(nil, supi.MSIN), c.SchemeInput)
		eqHex(t, "scheme output", suci.SchemeOutput, c.SchemeOutput)
		wantStr := "suci-0-" + c.SUPI.MCC + "-" + c.SUPI.MNC + "-0-0-0-" + c.SUPI.MSIN
		if got := suci.String(); got != wantStr {
			t.Errorf("String() = %s, want %s", got, wantStr)
		}
		nas, err := suci.MarshalBinary()
		if err != nil {
			t.Fatal(err)
		}
		// TS 24.501 9.11.3.4: type | PLMN | routing indicator "0" | scheme 0 | key 0 | output.
		wantNAS := append(appendPLMN([]byte{0x01}, c.SUPI.MCC, c.SUPI.MNC), 0xf0, 0xff, 0x00, 0x00)
		wantNAS = append(wantNAS, unhex(t, c.SchemeOutput)...)
		if !bytes.Equal(nas, wantNAS) {
			t.Errorf("NAS = %x, want %x", nas, wantNAS)
		}
	} else {
		// C.4.2.2: the scheme input is the username; the NAI form of the
		// SUCI carries the output as "userid<username>".
		eqHex(t, "username", []byte(supi.Username), c.SchemeInput)
		if !bytes.Equal(suci.SchemeOutput, []byte(supi.Username)) {
			t.Errorf("scheme output %q, want the username %q", suci.SchemeOutput, supi.Username)
		}
		nas, err := suci.MarshalBinary()
		if err != nil {
			t.Fatal(err)
		}
		want := "\x11type1.rid0.schid0." + c.SchemeOutputString + "@" + supi.Realm
		if string(nas) != want {
			t.Errorf("NAS = %q, want %q", nas, want)
		}
	}
	checkBackToSUPI(t, suci, nil, supi)
}

func testECIESVector(t *testing.T, c vectorCase, scheme Scheme, supi SUPI) {
	curve, _ := curveOf(scheme)
	hnPriv, err := ParsePrivateKey(scheme, c.HNPriv)
	if err != nil {
		t.Fatal(err)
	}
	if hnPriv.Hex() != c.HNPriv {
		t.Errorf("private key hex = %s, want %s", hnPriv.Hex(), c.HNPriv)
	}
	hnPub := hnPriv.PublicKey()
	ephPriv, err := curve.NewPrivateKey(unhex(t, c.EphPriv))
	if err != nil {
		t.Fatal(err)
	}
	ephPub := ephemeralBytes(scheme, ephPriv.PublicKey())
	if scheme == SchemeProfileA {
		eqHex(t, "HN public key", hnPub.Bytes(), c.HNPub)
		eqHex(t, "eph public key", ephPub, c.EphPub)
	} else {
		eqHex(t, "HN public key", hnPub.Bytes(), c.HNPubCompressed)
		eqHex(t, "eph public key", ephPub, c.EphPubCompressed)
		eqHex(t, "eph public key uncompressed", ephPriv.PublicKey().Bytes(), c.EphPubUncompr)
		// The uncompressed and compressed encodings are the same key.
		for _, enc := range []string{c.HNPubUncompressed, c.HNPubCompressed} {
			k, err := ParsePublicKey(scheme, enc)
			if err != nil {
				t.Fatal(err)
			}
			if !k.Equal(hnPub) || k.Hex() != c.HNPubCompressed {
				t.Errorf("ParsePublicKey(%s) = %s, want %s", enc, k.Hex(), c.HNPubCompressed)
			}
		}
	}

	// ECDH on both sides.
	z, err := ephPriv.ECDH(hnPub.key)
	if err != nil {
		t.Fatal(err)
	}
	eqHex(t, "UE shared key", z, c.EphShared)
	ephKey, err := ephemeralPublic(scheme, ephPub)
	if err != nil {
		t.Fatal(err)
	}
	zHN, err := hnPriv.key.ECDH(ephKey)
	if err != nil {
		t.Fatal(err)
	}
	eqHex(t, "HN shared key", zHN, c.EphShared)

	// KDF, AES-CTR, HMAC.
	k := deriveKeys(z, ephPub)
	eqHex(t, "enc key", k.enc[:], c.EphEnc)
	eqHex(t, "ICB", k.icb[:], c.ICB)
	eqHex(t, "mac key", k.mac[:], c.EphMAC)
	plain := appendBCD(nil, supi.MSIN)
	eqHex(t, "plaintext block", plain, c.Plaintext)
	ct := ctr32(&k.enc, &k.icb, plain)
	eqHex(t, "ciphertext", ct, c.Ciphertext)
	eqHex(t, "MAC tag", macTag(&k.mac, ct), c.MACTag)

	// The whole UE side.
	keyID := uint8(scheme) // any of 1..255
	suci, err := Conceal(supi, Params{Scheme: scheme, KeyID: keyID, HNPublicKey: hnPub, EphemeralKey: unhex(t, c.EphPriv)})
	if err != nil {
		t.Fatal(err)
	}
	eqHex(t, "scheme output", suci.SchemeOutput, c.SchemeOutput)

	// The whole SUCI as a string: TS 23.003 2.2B with the C.4 PLMN.
	wantStr := "suci-0-" + c.SUPI.MCC + "-" + c.SUPI.MNC + "-0-" + strconv.Itoa(int(scheme)) + "-" + strconv.Itoa(int(keyID)) + "-" + c.SchemeOutput
	if got := suci.String(); got != wantStr {
		t.Errorf("String() = %s\nwant %s", got, wantStr)
	}
	checkBackToSUPI(t, suci, hnPriv, supi)
}

// ephemeralPublic reads a transmitted ephemeral public key.
func ephemeralPublic(s Scheme, b []byte) (*ecdh.PublicKey, error) {
	if s == SchemeProfileB {
		unc, err := decompressP256(b)
		if err != nil {
			return nil, err
		}
		return ecdh.P256().NewPublicKey(unc)
	}
	return ecdh.X25519().NewPublicKey(b)
}

// checkBackToSUPI de-conceals suci directly, after a trip through its
// string form and after a trip through its NAS form, expecting want.
func checkBackToSUPI(t *testing.T, suci SUCI, key *PrivateKey, want SUPI) {
	t.Helper()
	forms := map[string]SUCI{"struct": suci}
	parsed, err := Parse(suci.String())
	if err != nil {
		t.Fatalf("Parse(%s): %v", suci, err)
	}
	forms["string"] = parsed
	nas, err := suci.MarshalBinary()
	if err != nil {
		t.Fatal(err)
	}
	var fromNAS SUCI
	if err := fromNAS.UnmarshalBinary(nas); err != nil {
		t.Fatalf("UnmarshalBinary(%x): %v", nas, err)
	}
	forms["NAS"] = fromNAS
	keys := Keys{}
	if key != nil {
		keys[suci.KeyID] = key
	}
	for name, s := range forms {
		got, err := Deconceal(s, key)
		if err != nil {
			t.Errorf("%s: Deconceal: %v", name, err)
			continue
		}
		if got != want {
			t.Errorf("%s: Deconceal = %v, want %v", name, got, want)
		}
		if got, err := keys.Deconceal(s); err != nil || got != want {
			t.Errorf("%s: Keys.Deconceal = %v, %v, want %v", name, got, err, want)
		}
	}
}
