package udr

import (
	"bytes"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

// Set 1 of TS 35.208 4.3, used across these tests.
const (
	set1K   = "465b5ce8b199b49faa5f0a2ee238a6bc"
	set1OP  = "cdc202d5123e20f62b6d676ac72cb318"
	set1OPc = "cd63cb71954a9f4e48a5994e37a02baf"
)

func TestImportFormats(t *testing.T) {
	// The same two SIMs in each format.
	files := map[Format]string{
		FormatYAML: `
sims:
  - imsi: 001010000000001
    k: ` + set1K + `
    op: ` + set1OP + `
    amf: b9b9
    sqn: 0000000000ff
    msisdn: "819000000001"
    sim_id: "8981100001234567890"
    imei_lock: 490154203237518|ANONYMOUS
    group: fleet
  - imsi: "310410000000002"
    mnc_length: 3
    k: ` + strings.ToUpper(set1K) + `
    opc: ` + set1OPc + `
    status: inactive
`,
		FormatJSON: `{"sims": [
 {"imsi": "001010000000001", "k": "` + set1K + `", "op": "` + set1OP + `", "amf": "b9b9", "sqn": "ff",
  "msisdn": "819000000001", "sim_id": "8981100001234567890", "imei_lock": "490154203237518|ANONYMOUS", "group": "fleet"},
 {"imsi": "310410000000002", "mnc_length": 3, "k": "` + set1K + `", "opc": "` + set1OPc + `", "status": "inactive"}]}`,
		FormatCSV: "# comment line\nimsi,k,op,opc,amf,sqn,msisdn,sim_id,imei_lock,group,status,mnc_length\n" +
			"001010000000001," + set1K + "," + set1OP + ",,b9b9,0000000000ff,819000000001,8981100001234567890,490154203237518|ANONYMOUS,fleet,,\n" +
			"310410000000002," + set1K + ",," + set1OPc + ",,,,,,,inactive,3\n",
	}
	op := hex16(t, set1OP)
	want := []SIM{
		{IMSI: "001010000000001", MNCLen: 2, K: hex16(t, set1K), OP: &op, OPc: hex16(t, set1OPc), AMF: [2]byte{0xb9, 0xb9}, SQN: 0xff,
			MSISDN: "819000000001", SIMID: "8981100001234567890", IMEILock: "490154203237518|ANONYMOUS", Group: "fleet", Status: StatusActive},
		{IMSI: "310410000000002", MNCLen: 3, K: hex16(t, set1K), OPc: hex16(t, set1OPc), AMF: DefaultAMF, Group: DefaultGroup, Status: StatusInactive},
	}
	for f, text := range files {
		t.Run(string(f), func(t *testing.T) {
			file, err := ReadImportFile(strings.NewReader(text), f)
			if err != nil {
				t.Fatal(err)
			}
			sims, err := file.Expand(ExpandOptions{})
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(sims, want) {
				t.Fatalf("got  %+v\nwant %+v", sims, want)
			}
		})
	}
}

func TestImportBareList(t *testing.T) {
	for f, text := range map[Format]string{
		FormatYAML: "- {imsi: '001010000000001', k: " + set1K + ", opc: " + set1OPc + "}\n",
		FormatJSON: `[{"imsi": "001010000000001", "k": "` + set1K + `", "opc": "` + set1OPc + `"}]`,
	} {
		file, err := ReadImportFile(strings.NewReader(text), f)
		if err != nil || len(file.SIMs) != 1 || file.SIMs[0].IMSI != "001010000000001" {
			t.Fatalf("%s: %+v %v", f, file, err)
		}
	}
}

// countingReader yields 0x01, 0x02, ... so "random" keys are predictable.
type countingReader struct{ n byte }

func (c *countingReader) Read(p []byte) (int, error) {
	for i := range p {
		c.n++
		p[i] = c.n
	}
	return len(p), nil
}

func TestImportRanges(t *testing.T) {
	text := `
seed: lab-seed
sims:
  - range: {first_imsi: "001010000000998", count: 3, first_msisdn: "819000000099", first_sim_id: "8981000000000000998"}
    k: derive
    opc: derive
    group: fleet
  - range: {first_imsi: "001010000002000", count: 2}
    k: random
    op: ` + set1OP + `
  - range: {first_imsi: "001010000003000", count: 2}
    k: ` + set1K + `
    opc: random
`
	file, err := ReadImportFile(strings.NewReader(text), FormatYAML)
	if err != nil {
		t.Fatal(err)
	}
	sims, err := file.Expand(ExpandOptions{Rand: &countingReader{}})
	if err != nil {
		t.Fatal(err)
	}
	var imsis []string
	for _, s := range sims {
		imsis = append(imsis, s.IMSI)
	}
	if got := strings.Join(imsis, " "); got != "001010000000998 001010000000999 001010000001000 001010000002000 001010000002001 001010000003000 001010000003001" {
		t.Fatalf("IMSIs %s", got)
	}
	// derive: HMAC-SHA-256(seed, label || IMSI), first 16 bytes, computed here independently.
	mac := func(label, imsi string) [16]byte {
		m := hmac.New(sha256.New, []byte("lab-seed"))
		m.Write([]byte(label + imsi))
		var out [16]byte
		copy(out[:], m.Sum(nil))
		return out
	}
	for i, s := range sims[:3] {
		if s.K != mac("simgate/k:", s.IMSI) || s.OPc != mac("simgate/opc:", s.IMSI) {
			t.Fatalf("%s: derived keys differ from HMAC-SHA-256", s.IMSI)
		}
		if s.Group != "fleet" || s.MSISDN != []string{"819000000099", "819000000100", "819000000101"}[i] ||
			s.SIMID != []string{"8981000000000000998", "8981000000000000999", "8981000000000001000"}[i] {
			t.Fatalf("range fields: %+v", s)
		}
	}
	if sims[0].K == sims[1].K || sims[0].K == sims[0].OPc {
		t.Fatal("derived keys repeat")
	}
	// A different seed gives different keys; the same seed the same keys.
	again, _ := file.Expand(ExpandOptions{Seed: []byte("other")})
	if again[0].K == sims[0].K {
		t.Fatal("--seed did not override the file's seed")
	}
	// random: K from the reader, OPc from OP and that K (TS 35.206).
	var k0 [16]byte
	for i := range k0 {
		k0[i] = byte(i + 1)
	}
	wantOPc, _ := DeriveOPc(k0, hex16(t, set1OP))
	if sims[3].K != k0 || sims[3].OPc != wantOPc || sims[4].K == k0 {
		t.Fatalf("random K with OP: %+v", sims[3:5])
	}
	if sims[5].K != hex16(t, set1K) || sims[5].OPc == sims[6].OPc {
		t.Fatalf("shared K, random OPc: %+v", sims[5:7])
	}
}

func TestImportErrors(t *testing.T) {
	entry := func(extra string) string {
		return "sims:\n  - {" + extra + "}\n"
	}
	ok := "k: " + set1K + ", opc: " + set1OPc
	tests := []struct {
		name, text string
		f          Format
		want       string
	}{
		{"unknown yaml key", entry("imsi: '001010000000001', " + ok + ", colour: red"), FormatYAML, "field colour not found"},
		{"unknown json key", `{"sims": [{"imsi": "001010000000001", "kk": "00"}]}`, FormatJSON, `unknown field "kk"`},
		{"unknown top key", "sim: []\n", FormatYAML, "field sim not found"},
		{"json trailing", `{"sims": []} {}`, FormatJSON, "after the top-level value"},
		{"two yaml docs", "sims: []\n---\nsims: []\n", FormatYAML, "more than one YAML document"},
		{"bad yaml", "sims: [\n", FormatYAML, "yaml"},
		{"csv unknown column", "imsi,kay\n1,2\n", FormatCSV, `unknown column "kay"`},
		{"csv no imsi", "k,opc\n", FormatCSV, "no imsi column"},
		{"csv empty", "", FormatCSV, "no header row"},
		{"csv short row", "imsi,k\n001010000000001\n", FormatCSV, "wrong number of fields"},
		{"csv twice", "imsi,imsi\n", FormatCSV, `column "imsi" twice`},
		{"csv mnc", "imsi,mnc_length\n001010000000001,two\n", FormatCSV, "line 2: mnc_length"},
		{"bad format", "", "xml", `format "xml"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := ReadImportFile(strings.NewReader(tt.text), tt.f)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("error %v, want %q", err, tt.want)
			}
			if strings.Contains(err.Error(), "\n") {
				t.Fatalf("error not one line: %q", err)
			}
		})
	}

	expand := []struct{ name, entry, want string }{
		{"no k", "imsi: '001010000000001', opc: " + set1OPc, "entry 1 (001010000000001): k: missing"},
		{"short k", "imsi: '001010000000001', k: 0011, opc: " + set1OPc, "k: want 16 bytes (32 hex digits), got 4"},
		{"non-hex k", "imsi: '001010000000001', opc: " + set1OPc + ", k: " + strings.Repeat("zz", 16), "k: not hex"},
		{"no opc", "imsi: '001010000000001', k: " + set1K, "give op or opc"},
		{"op and opc random", "imsi: '001010000000001', k: " + set1K + ", op: " + set1OP + ", opc: random", "conflicts with op"},
		{"derive no seed", "imsi: '001010000000001', k: derive, opc: " + set1OPc, "needs a seed"},
		{"bad amf", "imsi: '001010000000001', " + ok + ", amf: 800", "amf: want 2 bytes"},
		{"bad sqn", "imsi: '001010000000001', " + ok + ", sqn: 1000000000000", "want 1 to 12 hex digits"},
		{"sqn not hex", "imsi: '001010000000001', " + ok + ", sqn: xyz", "not hex"},
		{"bad imsi", "imsi: '00101x', " + ok, "digits only"},
		{"bad status", "imsi: '001010000000001', " + ok + ", status: on", `status "on"`},
		{"bad imei", "imsi: '001010000000001', " + ok + ", imei_lock: '490154203237510'", "check digit"},
		{"imsi and range", "imsi: '001010000000001', range: {first_imsi: '001010000000001', count: 2}, " + ok, "imsi or range"},
		{"range count 0", "range: {first_imsi: '001010000000001', count: 0}, " + ok, "range.count 0"},
		{"range too big", "range: {first_imsi: '001010000000001', count: 10000001}, " + ok, "range.count"},
		{"range overflows msin", "range: {first_imsi: '001019999999999', count: 2}, " + ok, "run past the MSIN range of MCC+MNC 00101"},
		{"range overflow msisdn", "range: {first_imsi: '001010000000001', count: 2, first_msisdn: '99'}, " + ok, "first_msisdn"},
		{"bad msisdn", "imsi: '001010000000001', msisdn: '+81', " + ok, `msisdn "+81"`},
		{"range sim id letters", "range: {first_imsi: '001010000000001', count: 2, first_sim_id: 'A1'}, " + ok, "first_sim_id"},
		{"range with msisdn", "range: {first_imsi: '001010000000001', count: 2}, msisdn: '1', " + ok, "per SIM"},
	}
	for _, tt := range expand {
		t.Run(tt.name, func(t *testing.T) {
			file, err := ReadImportFile(strings.NewReader(entry(tt.entry)), FormatYAML)
			if err != nil {
				t.Fatal(err)
			}
			_, err = file.Expand(ExpandOptions{})
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("error %v, want %q", err, tt.want)
			}
		})
	}
}

// Export with keys, in each format, imports back to the same records.
func TestExportImportRoundTrip(t *testing.T) {
	file, err := ReadImportFile(strings.NewReader(`
seed: s
sims:
  - imsi: "001010000000001"
    k: `+set1K+`
    op: `+set1OP+`
    sqn: "123456789abc"
    msisdn: "819000000001"
    sim_id: A-1
    imei_lock: "490154203237518"
  - range: {first_imsi: "310410000000001", count: 50}
    mnc_length: 3
    k: derive
    opc: random
    group: g1
    status: inactive
`), FormatYAML)
	if err != nil {
		t.Fatal(err)
	}
	sims, err := file.Expand(ExpandOptions{})
	if err != nil {
		t.Fatal(err)
	}
	entries := make([]Entry, len(sims))
	for i, s := range sims {
		entries[i] = EntryOf(s, true)
	}
	for _, f := range []Format{FormatJSON, FormatYAML, FormatCSV} {
		t.Run(string(f), func(t *testing.T) {
			var buf bytes.Buffer
			if err := WriteExport(&buf, f, entries); err != nil {
				t.Fatal(err)
			}
			back, err := ReadImportFile(&buf, f)
			if err != nil {
				t.Fatal(err)
			}
			got, err := back.Expand(ExpandOptions{})
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got, sims) {
				t.Fatalf("round trip changed records:\n got %+v\nwant %+v", got[0], sims[0])
			}
		})
	}
	// Without keys nothing secret is written, in any format.
	for _, f := range []Format{FormatJSON, FormatYAML, FormatCSV} {
		var buf bytes.Buffer
		redacted := make([]Entry, len(sims))
		for i, s := range sims {
			redacted[i] = EntryOf(s, false)
		}
		if err := WriteExport(&buf, f, redacted); err != nil {
			t.Fatal(err)
		}
		for _, s := range sims {
			for _, secret := range [][]byte{s.K[:], s.OPc[:]} {
				if bytes.Contains(bytes.ToLower(buf.Bytes()), []byte(hex.EncodeToString(secret))) {
					t.Fatalf("%s export without keys contains a key of %s", f, s.IMSI)
				}
			}
		}
		if !strings.Contains(buf.String(), "001010000000001") {
			t.Fatalf("%s export lacks the IMSI", f)
		}
	}
}

func TestFormatOf(t *testing.T) {
	for path, want := range map[string]Format{"a.yaml": FormatYAML, "b.YML": FormatYAML, "/x/c.json": FormatJSON, "d.csv": FormatCSV} {
		if got, err := FormatOf(path); err != nil || got != want {
			t.Errorf("%s: %v %v", path, got, err)
		}
	}
	for _, path := range []string{"a", "b.txt", filepath.Join("dir.json", "x")} {
		if _, err := FormatOf(path); err == nil {
			t.Errorf("%s: accepted", path)
		}
	}
}

func FuzzReadImportFile(f *testing.F) {
	f.Add(byte(0), "sims:\n  - {imsi: '001010000000001', k: "+set1K+", opc: "+set1OPc+"}\n")
	f.Add(byte(0), "seed: x\nsims:\n  - {range: {first_imsi: '001010000000001', count: 3}, k: derive, op: "+set1OP+"}\n")
	f.Add(byte(1), `[{"imsi": "001010000000001", "k": "`+set1K+`", "opc": "random"}]`)
	f.Add(byte(2), "imsi,k,opc,sqn\n001010000000001,"+set1K+","+set1OPc+",ff\n")
	formats := []Format{FormatYAML, FormatJSON, FormatCSV}
	f.Fuzz(func(t *testing.T, which byte, text string) {
		file, err := ReadImportFile(strings.NewReader(text), formats[int(which)%len(formats)])
		if err != nil {
			return
		}
		total := 0
		for _, e := range file.SIMs {
			if e.Range != nil {
				total += max(e.Range.Count, 0)
			}
		}
		if total > 1000 {
			return // valid but slow to expand; not what the fuzzer is for
		}
		sims, err := file.Expand(ExpandOptions{Seed: []byte("fuzz"), Rand: &countingReader{}})
		if err != nil {
			return
		}
		for _, s := range sims {
			if err := s.Validate(); err != nil {
				t.Fatalf("Expand returned an invalid SIM: %v", err)
			}
		}
	})
}
