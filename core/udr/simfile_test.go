package udr

import (
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

func TestSIMFileRoundTrip(t *testing.T) {
	a := validSIM()
	a.SQN = 0x123456789abc
	a.MSISDN, a.SIMID, a.IMEILock = "819000000001", "8981100001234567890", "490154203237518|ANONYMOUS"
	b := simN(2)
	b.IMSI, b.MNCLen = "310410000000002", 3
	f := NewSIMFile([]SIM{a, b})

	path := filepath.Join(t.TempDir(), "sims.json")
	if err := WriteSIMFile(path, f); err != nil {
		t.Fatal(err)
	}
	if fi, err := os.Stat(path); err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("mode %v %v, want 0600 (the file holds keys)", fi.Mode(), err)
	}
	raw, _ := os.ReadFile(path)
	for _, want := range []string{`"version": 1`, `"k": "465b5ce8b199b49faa5f0a2ee238a6bc"`, `"opc": "cd63cb71954a9f4e48a5994e37a02baf"`,
		`"amf": "8000"`, `"sqn": "123456789abc"`, `"imei": "490154203237518"`, `"mnc_length": 3`} {
		if !strings.Contains(string(raw), want) {
			t.Errorf("SIM file lacks %s:\n%s", want, raw)
		}
	}
	back, err := ReadSIMFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(back, f) {
		t.Fatalf("round trip:\n got %+v\nwant %+v", back, f)
	}
	c, ok := back.Lookup(a.IMSI)
	if !ok || c.Credentials() != a.Credentials() || c.IMEI != "490154203237518" {
		t.Fatalf("lookup %+v %v", c, ok)
	}
	if _, ok := back.Lookup("001019999999999"); ok {
		t.Fatal("lookup of a missing IMSI succeeded")
	}
	if entries, _ := os.ReadDir(filepath.Dir(path)); len(entries) != 1 {
		t.Fatalf("temporary files left: %v", entries)
	}
}

func TestSIMFileErrors(t *testing.T) {
	card := func(fields string) string {
		return `{"version": 1, "sims": [{"imsi": "001010000000001", "mnc_length": 2, ` + fields + `}]}`
	}
	keys := `"k": "` + set1K + `", "opc": "` + set1OPc + `", "amf": "8000"`
	one := `{"imsi": "001010000000001", "mnc_length": 2, ` + keys + `}`
	tests := []struct{ name, text, want string }{
		{"version", `{"version": 2, "sims": []}`, "version 2"},
		{"unknown field", card(keys + `, "ki": "00"`), `unknown field "ki"`},
		{"short k", card(`"k": "00", "opc": "` + set1OPc + `", "amf": "8000"`), "k: want 16 bytes"},
		{"bad amf", card(`"k": "` + set1K + `", "opc": "` + set1OPc + `", "amf": "zz00"`), "amf: not hex"},
		{"bad sqn", card(keys + `, "sqn": "1000000000000"`), "sqn"},
		{"bad imei", card(keys + `, "imei": "490154203237519"`), "check digit"},
		{"bad imsi", `{"version": 1, "sims": [{"imsi": "1", "mnc_length": 2}]}`, "imsi"},
		{"duplicate", `{"version": 1, "sims": [` + one + `,` + one + `]}`, "twice"},
		{"not json", `sims: []`, "invalid character"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := DecodeSIMFile(strings.NewReader(tt.text))
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("error %v, want %q", err, tt.want)
			}
		})
	}
	if _, err := DecodeSIMFile(strings.NewReader(card(keys))); err != nil {
		t.Fatalf("valid card without sqn rejected: %v", err)
	}
	if _, err := ReadSIMFile(filepath.Join(t.TempDir(), "none.json")); err == nil {
		t.Fatal("missing file read")
	}
}

func FuzzDecodeSIMFile(f *testing.F) {
	f.Add(`{"version": 1, "sims": [{"imsi": "001010000000001", "mnc_length": 2, "k": "` + set1K + `", "opc": "` + set1OPc + `", "amf": "8000", "sqn": "000000000020", "imei": "490154203237518"}]}`)
	f.Fuzz(func(t *testing.T, text string) {
		sf, err := DecodeSIMFile(strings.NewReader(text))
		if err != nil {
			return
		}
		// Whatever decodes re-encodes and decodes to the same.
		var b strings.Builder
		if err := sf.Encode(&b); err != nil {
			t.Fatal(err)
		}
		again, err := DecodeSIMFile(strings.NewReader(b.String()))
		if err != nil || !reflect.DeepEqual(again, sf) {
			t.Fatalf("re-decode: %v\n%+v\n%+v", err, again, sf)
		}
	})
}
