package milenage

import (
	"encoding/hex"
	"runtime"
	"testing"

	"github.com/simgate/simgate/internal/vectors"
)

// milenageCase is one TS 35.208 4.3 test set from milenage.json.
type milenageCase struct {
	Name   string `json:"name"`
	K      string `json:"k"`
	RAND   string `json:"rand"`
	SQN    string `json:"sqn"`
	AMF    string `json:"amf"`
	OP     string `json:"op"`
	OPc    string `json:"opc"`
	F1     string `json:"f1"`
	F1Star string `json:"f1star"`
	F2     string `json:"f2"`
	F3     string `json:"f3"`
	F4     string `json:"f4"`
	F5     string `json:"f5"`
	F5Star string `json:"f5star"`
}

// gsmCase is one TS 55.205 test set from gsm_milenage.json.
type gsmCase struct {
	Name  string `json:"name"`
	Ki    string `json:"ki"`
	RAND  string `json:"rand"`
	OPc   string `json:"opc"`
	SRES1 string `json:"sres1"`
	SRES2 string `json:"sres2"`
	Kc    string `json:"kc"`
}

// unhex decodes the hex field s, which must be n bytes long.
func unhex(t testing.TB, field, s string, n int) []byte {
	t.Helper()
	b, err := hex.DecodeString(s)
	if err != nil {
		t.Fatalf("%s: %v", field, err)
	}
	if len(b) != n {
		t.Fatalf("%s: %d bytes, want %d", field, len(b), n)
	}
	return b
}

func TestMilenageTS35208(t *testing.T) {
	cases := vectors.Load[milenageCase](t, "milenage.json")
	for _, c := range cases {
		t.Run(c.Name, func(t *testing.T) {
			k := [16]byte(unhex(t, "k", c.K, 16))
			op := [16]byte(unhex(t, "op", c.OP, 16))
			rand := [16]byte(unhex(t, "rand", c.RAND, 16))
			sqn := [6]byte(unhex(t, "sqn", c.SQN, 6))
			amf := [2]byte(unhex(t, "amf", c.AMF, 2))
			wantOPc := [16]byte(unhex(t, "opc", c.OPc, 16))

			opc, err := OPc(k, op)
			if err != nil {
				t.Fatal(err)
			}
			if opc != wantOPc {
				t.Errorf("OPc = %x, want %x", opc, wantOPc)
			}

			// Once built from OPc, once from OP: both must give every output.
			fromOPc, err := New(k, wantOPc)
			if err != nil {
				t.Fatal(err)
			}
			fromOP, err := NewOP(k, op)
			if err != nil {
				t.Fatal(err)
			}
			if got := fromOP.OPc(); got != wantOPc {
				t.Errorf("NewOP: OPc = %x, want %x", got, wantOPc)
			}
			for name, m := range map[string]*Milenage{"New": fromOPc, "NewOP": fromOP} {
				// Call order varies so the TEMP cache is exercised both ways.
				akStar := m.F5Star(rand)
				macA, macS := m.F1(rand, sqn, amf)
				res, ck, ik, ak := m.F2345(rand)
				check := []struct {
					what string
					got  []byte
					want string
				}{
					{"f1", macA[:], c.F1},
					{"f1*", macS[:], c.F1Star},
					{"f2", res[:], c.F2},
					{"f3", ck[:], c.F3},
					{"f4", ik[:], c.F4},
					{"f5", ak[:], c.F5},
					{"f5*", akStar[:], c.F5Star},
				}
				for _, x := range check {
					if got := hex.EncodeToString(x.got); got != x.want {
						t.Errorf("%s: %s = %s, want %s", name, x.what, got, x.want)
					}
				}
			}
		})
	}
}

func TestGSMMilenageTS55205(t *testing.T) {
	cases := vectors.Load[gsmCase](t, "gsm_milenage.json")
	for _, c := range cases {
		t.Run(c.Name, func(t *testing.T) {
			m, err := New([16]byte(unhex(t, "ki", c.Ki, 16)), [16]byte(unhex(t, "opc", c.OPc, 16)))
			if err != nil {
				t.Fatal(err)
			}
			rand := [16]byte(unhex(t, "rand", c.RAND, 16))
			sres, kc := m.GSM(rand)
			if got := hex.EncodeToString(sres[:]); got != c.SRES1 {
				t.Errorf("GSM SRES = %s, want SRES#1 %s", got, c.SRES1)
			}
			if got := hex.EncodeToString(kc[:]); got != c.Kc {
				t.Errorf("GSM Kc = %s, want %s", got, c.Kc)
			}
			res, ck, ik, _ := m.F2345(rand)
			if got := SRES2(res); hex.EncodeToString(got[:]) != c.SRES2 {
				t.Errorf("SRES2 = %x, want %s", got, c.SRES2)
			}
			if got := SRES1(res); hex.EncodeToString(got[:]) != c.SRES1 {
				t.Errorf("SRES1 = %x, want %s", got, c.SRES1)
			}
			if got := Kc(ck, ik); got != kc {
				t.Errorf("Kc(CK, IK) = %x, GSM gave %x", got, kc)
			}
		})
	}
}

// TestTempCache checks that alternating RANDs never reuse a stale TEMP.
func TestTempCache(t *testing.T) {
	cases := vectors.Load[milenageCase](t, "milenage.json")
	if len(cases) < 2 {
		t.Fatal("need two test sets")
	}
	// Same K and OPc for both RANDs: take set 1's K/OPc and compare with fresh
	// instances, one per RAND.
	k := [16]byte(unhex(t, "k", cases[0].K, 16))
	opc := [16]byte(unhex(t, "opc", cases[0].OPc, 16))
	rands := [][16]byte{
		[16]byte(unhex(t, "rand", cases[0].RAND, 16)),
		[16]byte(unhex(t, "rand", cases[1].RAND, 16)),
	}
	shared, err := New(k, opc)
	if err != nil {
		t.Fatal(err)
	}
	for i := range 6 {
		rand := rands[i%2]
		fresh, err := New(k, opc)
		if err != nil {
			t.Fatal(err)
		}
		wantRES, wantCK, wantIK, wantAK := fresh.F2345(rand)
		res, ck, ik, ak := shared.F2345(rand)
		if res != wantRES || ck != wantCK || ik != wantIK || ak != wantAK {
			t.Fatalf("round %d: cached TEMP gave different f2..f5", i)
		}
	}
}

func BenchmarkMilenage(b *testing.B) {
	k := [16]byte{0x46, 0x5b, 0x5c, 0xe8, 0xb1, 0x99, 0xb4, 0x9f, 0xaa, 0x5f, 0x0a, 0x2e, 0xe2, 0x38, 0xa6, 0xbc}
	opc := [16]byte{0xcd, 0x63, 0xcb, 0x71, 0x95, 0x4a, 0x9f, 0x4e, 0x48, 0xa5, 0x99, 0x4e, 0x37, 0xa0, 0x2b, 0xaf}
	sqn := [6]byte{0xff, 0x9b, 0xb4, 0xd0, 0xb6, 0x07}
	amf := [2]byte{0xb9, 0xb9}
	m, err := New(k, opc)
	if err != nil {
		b.Fatal(err)
	}
	var rand [16]byte
	var sink byte
	// One full f1, f1*, f2, f3, f4, f5, f5* computation for a new RAND per
	// iteration: 6 AES block encryptions.
	b.Run("f1-f5star", func(b *testing.B) {
		b.ReportAllocs()
		for i := 0; b.Loop(); i++ {
			rand[0], rand[1], rand[2] = byte(i), byte(i>>8), byte(i>>16)
			macA, macS := m.F1(rand, sqn, amf)
			res, ck, ik, ak := m.F2345(rand)
			akStar := m.F5Star(rand)
			sink ^= macA[0] ^ macS[0] ^ res[0] ^ ck[0] ^ ik[0] ^ ak[0] ^ akStar[0]
		}
		reportOpsPerSec(b)
	})
	b.Run("gsm", func(b *testing.B) {
		b.ReportAllocs()
		for i := 0; b.Loop(); i++ {
			rand[0], rand[1], rand[2] = byte(i), byte(i>>8), byte(i>>16)
			sres, kc := m.GSM(rand)
			sink ^= sres[0] ^ kc[0]
		}
		reportOpsPerSec(b)
	})
	b.Run("new", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			m, err := New(k, opc)
			if err != nil {
				b.Fatal(err)
			}
			sink ^= m.opc[0]
		}
	})
	runtime.KeepAlive(sink)
}

func reportOpsPerSec(b *testing.B) {
	if s := b.Elapsed().Seconds(); s > 0 {
		b.ReportMetric(float64(b.N)/s, "ops/s")
	}
}
