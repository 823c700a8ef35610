package kdf

import (
	"bytes"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"strings"
	"testing"

	"github.com/simgate/simgate/internal/vectors"
)

// hexBytes decodes a lowercase-hex JSON string.
type hexBytes []byte

func (h *hexBytes) UnmarshalText(b []byte) error {
	d, err := hex.DecodeString(string(b))
	*h = d
	return err
}

func unhex(t testing.TB, s string) []byte {
	t.Helper()
	b, err := hex.DecodeString(s)
	if err != nil {
		t.Fatalf("bad hex %q: %v", s, err)
	}
	return b
}

// kdf5GCase is one case of kdf_5g.json; each kind fills some fields.
type kdf5GCase struct {
	Kind string `json:"kind"`
	Name string `json:"name"`

	// res_star_xres_star, hxres_star
	SNN      string   `json:"serving_network_name"`
	RAND     hexBytes `json:"rand"`
	RES      hexBytes `json:"res"`
	CK       hexBytes `json:"ck"`
	IK       hexBytes `json:"ik"`
	AK       hexBytes `json:"ak"`
	SQN      hexBytes `json:"sqn"`
	AUTN     hexBytes `json:"autn"`
	RESStar  hexBytes `json:"res_star"`
	XRESStar hexBytes `json:"xres_star"`
	HXRES    hexBytes `json:"hxres_star"`

	// kausf_kseaf
	SNNAsUsed string   `json:"serving_network_name_as_used"`
	SQNXorAK  hexBytes `json:"sqn_xor_ak"`
	KAUSF     hexBytes `json:"kausf"`
	KSEAF     hexBytes `json:"kseaf"`

	// algorithm_key_derivation_a8, lte_kdf_ts33401
	Key          hexBytes `json:"key"`
	AlgType      int      `json:"algorithm_type_distinguisher"`
	AlgID        int      `json:"algorithm_identity"`
	KDFOutput256 hexBytes `json:"kdf_output_256"`
	Key128       hexBytes `json:"key_128"`

	// ck_ik_prime
	KeyCKIK     hexBytes `json:"key_ck_ik"`
	AccessNet   string   `json:"p0_access_network_name"`
	P1SQNXorAK  hexBytes `json:"p1_sqn_xor_ak"`
	CKIKPrimeKA hexBytes `json:"output"`

	// k_ng_ran_star_nonconformant
	KgNB        hexBytes `json:"k_gnb"`
	P0Hex       hexBytes `json:"p0_hex"`
	P1HexAsUsed hexBytes `json:"p1_hex_as_used"`
	KNGRANStar  hexBytes `json:"k_ng_ran_star"`

	// lte_kdf_ts33401
	SNIDP0     hexBytes `json:"sn_id_p0"`
	KASME      hexBytes `json:"kasme"`
	ULNASCount hexBytes `json:"ul_nas_count"`
	KeNB       hexBytes `json:"kenb"`
	SCGCounter hexBytes `json:"scg_counter"`
	SKgNB      hexBytes `json:"s_kgnb"`
}

// TestDeriveVectors runs the generic KDF (TS 33.220 B.2.2) on every case of
// kdf_5g.json, including the flagged and the LTE ones: each is an exact KDF
// known answer for the inputs it records.
func TestDeriveVectors(t *testing.T) {
	cases := vectors.Load[kdf5GCase](t, "kdf_5g.json")
	ran := map[string]int{}
	for _, c := range cases {
		t.Run(c.Kind+"/"+c.Name, func(t *testing.T) {
			var (
				key    []byte
				fc     byte
				params [][]byte
				want   []byte
				cut    = func(b []byte) []byte { return b }
			)
			switch c.Kind {
			case "res_star_xres_star":
				key, fc = cat(c.CK, c.IK), 0x6B
				params = [][]byte{[]byte(c.SNN), c.RAND, c.RES}
				want, cut = c.RESStar, func(b []byte) []byte { return b[16:] }
			case "hxres_star":
				// Not a KDF: TS 33.501 A.5 is a bare SHA-256; checked here
				// so that every case of the file runs in this test.
				h := sha256.Sum256(cat(c.RAND, c.XRESStar))
				if !bytes.Equal(h[16:], c.HXRES) {
					t.Fatalf("SHA-256(RAND||XRES*)[16:] = %x, want %x", h[16:], c.HXRES)
				}
				ran[c.Kind]++
				return
			case "kausf_kseaf":
				kausf := derive(t, cat(c.CK, c.IK), 0x6A, []byte(c.SNNAsUsed), c.SQNXorAK)
				if !bytes.Equal(kausf[:], c.KAUSF) {
					t.Fatalf("KAUSF = %x, want %x", kausf, c.KAUSF)
				}
				key, fc, params, want = kausf[:], 0x6C, [][]byte{[]byte(c.SNNAsUsed)}, c.KSEAF
			case "algorithm_key_derivation_a8":
				key, fc = c.Key, 0x69
				params = [][]byte{{byte(c.AlgType)}, {byte(c.AlgID)}}
				want = c.KDFOutput256
				k := derive(t, key, fc, params...)
				if !bytes.Equal(k[16:], c.Key128) {
					t.Fatalf("128-bit key = %x, want %x", k[16:], c.Key128)
				}
			case "ck_ik_prime":
				key, fc = c.KeyCKIK, 0x20
				params = [][]byte{[]byte(c.AccessNet), c.P1SQNXorAK}
				want = c.CKIKPrimeKA
			case "k_ng_ran_star_nonconformant":
				// TS 33.501 A.11 (FC 0x70) with ARFCN-DL on 2 octets, as the
				// source used it; a KDF known answer, not an A.11 vector.
				key, fc = c.KgNB, 0x70
				params = [][]byte{c.P0Hex, c.P1HexAsUsed}
				want = c.KNGRANStar
			case "lte_kdf_ts33401":
				key, fc, params, want = lteInput(t, c)
			default:
				t.Fatalf("unknown kind %q", c.Kind)
			}
			got := derive(t, key, fc, params...)
			if g := cut(got[:]); !bytes.Equal(g, want) {
				t.Fatalf("KDF(FC=0x%02x) = %x, want %x", fc, g, want)
			}
			ran[c.Kind]++
		})
	}
	// Every kind the file documents must have run at least once.
	for _, k := range []string{"res_star_xres_star", "hxres_star", "kausf_kseaf", "algorithm_key_derivation_a8",
		"ck_ik_prime", "k_ng_ran_star_nonconformant", "lte_kdf_ts33401"} {
		if ran[k] == 0 {
			t.Errorf("no passing case of kind %s", k)
		}
	}
}

// lteInput builds the TS 33.401 Annex A input of an lte_kdf_ts33401 case.
func lteInput(t *testing.T, c kdf5GCase) (key []byte, fc byte, params [][]byte, want []byte) {
	t.Helper()
	switch {
	case c.CK != nil: // A.2 KASME: P0 = SN id, P1 = SQN xor AK
		return cat(c.CK, c.IK), 0x10, [][]byte{c.SNIDP0, xor(c.SQN, c.AK)}, c.KASME
	case c.SCGCounter != nil: // E.2.4 S-KgNB: P0 = SCG counter
		return c.KeNB, 0x1C, [][]byte{c.SCGCounter}, c.SKgNB
	case c.ULNASCount != nil: // A.3 KeNB: P0 = uplink NAS COUNT
		return c.KASME, 0x11, [][]byte{c.ULNASCount}, c.KeNB
	case c.KeNB != nil: // A.7 RRC/UP keys
		return c.KeNB, 0x15, [][]byte{{byte(c.AlgType)}, {byte(c.AlgID)}}, c.KDFOutput256
	case c.KASME != nil && strings.HasPrefix(c.Name, "KNASint 128-EIA1"): // A.7 NAS-int, EIA1
		return c.KASME, 0x15, [][]byte{{0x02}, {0x01}}, c.KDFOutput256
	}
	t.Fatalf("unrecognised LTE case %q", c.Name)
	return nil, 0, nil, nil
}

func derive(t *testing.T, key []byte, fc byte, params ...[]byte) [32]byte {
	t.Helper()
	k, err := Derive(key, fc, params...)
	if err != nil {
		t.Fatalf("Derive: %v", err)
	}
	return k
}

func cat(bs ...[]byte) []byte {
	var out []byte
	for _, b := range bs {
		out = append(out, b...)
	}
	return out
}

func xor(a, b []byte) []byte {
	out := make([]byte, len(a))
	for i := range a {
		out[i] = a[i] ^ b[i]
	}
	return out
}

// refKDF is TS 33.220 B.2.2 written plainly on crypto/hmac.
func refKDF(key []byte, fc byte, params ...[]byte) []byte {
	m := hmac.New(sha256.New, key)
	m.Write([]byte{fc})
	for _, p := range params {
		m.Write(p)
		m.Write(binary.BigEndian.AppendUint16(nil, uint16(len(p))))
	}
	return m.Sum(nil)
}

func TestDeriveEncoding(t *testing.T) {
	long := bytes.Repeat([]byte{0xa5}, 1000) // past the stack buffers
	tests := []struct {
		name   string
		key    []byte
		params [][]byte
	}{
		{"no params", make([]byte, 32), nil},
		{"empty param", make([]byte, 32), [][]byte{{}}},
		{"empty key", nil, [][]byte{{1, 2, 3}}},
		{"key of 64", bytes.Repeat([]byte{7}, 64), [][]byte{{1}}},
		{"key longer than the SHA-256 block", bytes.Repeat([]byte{7}, 65), [][]byte{{1}}},
		{"long params", long, [][]byte{long, long[:300], {9}}},
		{"max param", make([]byte, 16), [][]byte{make([]byte, maxParam)}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := derive(t, tt.key, 0x6A, tt.params...)
			if want := refKDF(tt.key, 0x6A, tt.params...); !bytes.Equal(got[:], want) {
				t.Fatalf("Derive = %x, want %x", got, want)
			}
		})
	}
	// The order and the lengths are part of S: swapping or re-cutting
	// parameters must change the key.
	a := derive(t, nil, 1, []byte("ab"), []byte("c"))
	b := derive(t, nil, 1, []byte("a"), []byte("bc"))
	c := derive(t, nil, 1, []byte("c"), []byte("ab"))
	d := derive(t, nil, 2, []byte("ab"), []byte("c"))
	if a == b || a == c || a == d {
		t.Fatal("distinct KDF inputs gave the same key")
	}
}

func TestDeriveTooLong(t *testing.T) {
	_, err := Derive(nil, 0x6A, []byte{1}, make([]byte, maxParam+1))
	if err == nil || !strings.Contains(err.Error(), "P1") {
		t.Fatalf("Derive with a 65536-octet P1: err = %v, want an error naming P1", err)
	}
}

// TestHMACSHA256 checks the stack HMAC against RFC 4231 test cases 1, 2 and
// 6 (long key) and against crypto/hmac.
func TestHMACSHA256(t *testing.T) {
	tests := []struct{ key, data, want string }{
		{"0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b", hex.EncodeToString([]byte("Hi There")),
			"b0344c61d8db38535ca8afceaf0bf12b881dc200c9833da726e9376c2e32cff7"},
		{hex.EncodeToString([]byte("Jefe")), hex.EncodeToString([]byte("what do ya want for nothing?")),
			"5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"},
		{strings.Repeat("aa", 131), hex.EncodeToString([]byte("Test Using Larger Than Block-Size Key - Hash Key First")),
			"60e431591ee0b67f0d8a26aacbf5b77f8e0bc6213728c5140546040f0ee37f54"},
	}
	for i, tt := range tests {
		key, data := unhex(t, tt.key), unhex(t, tt.data)
		// Split the data to check that parts are concatenated.
		got := hmacSHA256(key, data[:3], nil, data[3:])
		if hex.EncodeToString(got[:]) != tt.want {
			t.Errorf("RFC 4231 case %d: %x, want %s", i, got, tt.want)
		}
	}
}
