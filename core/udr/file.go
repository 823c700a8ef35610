package udr

import (
	"bytes"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/csv"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"

	"go.yaml.in/yaml/v3"
)

// Format is a SIM import/export file format.
type Format string

const (
	FormatJSON Format = "json"
	FormatYAML Format = "yaml"
	FormatCSV  Format = "csv"
)

// ParseFormat accepts json, yaml (or yml) and csv.
func ParseFormat(s string) (Format, error) {
	switch strings.ToLower(s) {
	case "json":
		return FormatJSON, nil
	case "yaml", "yml":
		return FormatYAML, nil
	case "csv":
		return FormatCSV, nil
	}
	return "", fmt.Errorf("format %q: want json, yaml or csv", s)
}

// FormatOf returns the format named by a file's extension.
func FormatOf(path string) (Format, error) {
	ext := strings.TrimPrefix(filepath.Ext(path), ".")
	if ext == "" {
		return "", fmt.Errorf("%s: no extension; name the format (json, yaml or csv)", path)
	}
	f, err := ParseFormat(ext)
	if err != nil {
		return "", fmt.Errorf("%s: %w", path, err)
	}
	return f, nil
}

// ImportFile is a SIM import file, and what export writes. In YAML or JSON:
//
//	seed: "lab-seed"            # optional; for k/opc: derive
//	sims:
//	  - imsi: "001010000000001"
//	    k: 465b5ce8b199b49faa5f0a2ee238a6bc
//	    op: cdc202d5123e20f62b6d676ac72cb318   # or opc: <hex>
//	  - range: {first_imsi: "001010000001000", count: 1000, first_msisdn: "819000001000"}
//	    k: random                 # random | derive | <hex>
//	    opc: derive               # random | derive | <hex>; or op: <hex>
//	    group: fleet
//
// A bare list of entries is accepted too. CSV has a header row naming the
// columns (CSVColumns, any order, any subset with imsi); one SIM a row.
type ImportFile struct {
	Seed string  `json:"seed,omitempty" yaml:"seed,omitempty"`
	SIMs []Entry `json:"sims" yaml:"sims"`
}

// Entry is one SIM, or with Range a run of SIMs, in an import or export
// file. Byte strings are hex; SQN is hex (at most 12 digits, 48 bits).
type Entry struct {
	IMSI     string `json:"imsi,omitempty" yaml:"imsi,omitempty"`
	Range    *Range `json:"range,omitempty" yaml:"range,omitempty"`
	MNCLen   int    `json:"mnc_length,omitempty" yaml:"mnc_length,omitempty"`
	K        string `json:"k,omitempty" yaml:"k,omitempty"`     // hex, random or derive
	OP       string `json:"op,omitempty" yaml:"op,omitempty"`   // hex
	OPc      string `json:"opc,omitempty" yaml:"opc,omitempty"` // hex, random or derive
	AMF      string `json:"amf,omitempty" yaml:"amf,omitempty"` // hex, default 8000
	SQN      string `json:"sqn,omitempty" yaml:"sqn,omitempty"` // hex, default 0
	MSISDN   string `json:"msisdn,omitempty" yaml:"msisdn,omitempty"`
	SIMID    string `json:"sim_id,omitempty" yaml:"sim_id,omitempty"`
	IMEILock string `json:"imei_lock,omitempty" yaml:"imei_lock,omitempty"`
	Group    string `json:"group,omitempty" yaml:"group,omitempty"`
	Status   Status `json:"status,omitempty" yaml:"status,omitempty"`
}

// Range is a run of Count consecutive IMSIs from FirstIMSI. MSISDNs and SIM
// IDs, when given, count up alongside (decimal, keeping their width).
type Range struct {
	FirstIMSI   string `json:"first_imsi" yaml:"first_imsi"`
	Count       int    `json:"count" yaml:"count"`
	FirstMSISDN string `json:"first_msisdn,omitempty" yaml:"first_msisdn,omitempty"`
	FirstSIMID  string `json:"first_sim_id,omitempty" yaml:"first_sim_id,omitempty"`
}

// MaxRangeCount bounds one range, against a typo that would provision
// billions of SIMs.
const MaxRangeCount = 10_000_000

// Key modes of Entry.K and Entry.OPc.
const (
	KeyRandom = "random" // crypto/rand
	KeyDerive = "derive" // DerivedK / DerivedOPc from the seed
)

// CSVColumns are the column names a CSV import may use (imsi is required)
// and the columns export writes, in this order.
var CSVColumns = []string{"imsi", "mnc_length", "k", "op", "opc", "amf", "sqn", "msisdn", "sim_id", "imei_lock", "group", "status"}

// ReadImportFile reads a whole import file. JSON and YAML reject unknown
// keys; CSV rejects unknown columns.
func ReadImportFile(r io.Reader, f Format) (*ImportFile, error) {
	var (
		out *ImportFile
		err error
	)
	switch f {
	case FormatJSON:
		out, err = readJSONImport(r)
	case FormatYAML:
		out, err = readYAMLImport(r)
	case FormatCSV:
		out, err = readCSVImport(r)
	default:
		err = fmt.Errorf("format %q: want json, yaml or csv", f)
	}
	if err != nil {
		// One line: YAML lists its errors on several.
		return nil, fmt.Errorf("udr: import %s: %s", f, oneLine(err.Error()))
	}
	return out, nil
}

// LoadImportFile reads the file at path; format "" means by its extension.
func LoadImportFile(path string, format Format) (*ImportFile, error) {
	if format == "" {
		var err error
		if format, err = FormatOf(path); err != nil {
			return nil, fmt.Errorf("udr: import: %w", err)
		}
	}
	fh, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("udr: import: %w", err)
	}
	defer fh.Close()
	out, err := ReadImportFile(fh, format)
	if err != nil {
		return nil, fmt.Errorf("%w (%s)", err, path)
	}
	return out, nil
}

func readJSONImport(r io.Reader) (*ImportFile, error) {
	b, err := io.ReadAll(r)
	if err != nil {
		return nil, err
	}
	b = bytes.TrimSpace(b)
	strict := func(v any) error {
		d := json.NewDecoder(bytes.NewReader(b))
		d.DisallowUnknownFields()
		if err := d.Decode(v); err != nil {
			return err
		}
		if d.More() {
			return errors.New("data after the top-level value")
		}
		return nil
	}
	var out ImportFile
	if len(b) > 0 && b[0] == '[' {
		err = strict(&out.SIMs)
	} else {
		err = strict(&out)
	}
	if err != nil {
		return nil, err
	}
	return &out, nil
}

func readYAMLImport(r io.Reader) (*ImportFile, error) {
	b, err := io.ReadAll(r)
	if err != nil {
		return nil, err
	}
	// Look at the top-level node first: a mapping or a bare list.
	var doc yaml.Node
	if err := yaml.Unmarshal(b, &doc); err != nil {
		return nil, err
	}
	var out ImportFile
	if len(doc.Content) == 0 {
		return &out, nil
	}
	d := yaml.NewDecoder(bytes.NewReader(b))
	d.KnownFields(true)
	if doc.Content[0].Kind == yaml.SequenceNode {
		err = d.Decode(&out.SIMs)
	} else {
		err = d.Decode(&out)
	}
	if err != nil {
		return nil, err
	}
	if err := d.Decode(new(yaml.Node)); !errors.Is(err, io.EOF) {
		return nil, errors.New("more than one YAML document")
	}
	return &out, nil
}

func readCSVImport(r io.Reader) (*ImportFile, error) {
	cr := csv.NewReader(r)
	cr.Comment = '#'
	cr.TrimLeadingSpace = true
	header, err := cr.Read()
	if errors.Is(err, io.EOF) {
		return nil, errors.New("no header row")
	}
	if err != nil {
		return nil, err
	}
	seen := map[string]bool{}
	for i, h := range header {
		h = strings.ToLower(strings.TrimSpace(strings.TrimPrefix(h, "\ufeff")))
		if !slices.Contains(CSVColumns, h) {
			return nil, fmt.Errorf("header: unknown column %q; columns are %s", h, strings.Join(CSVColumns, ","))
		}
		if seen[h] {
			return nil, fmt.Errorf("header: column %q twice", h)
		}
		seen[h] = true
		header[i] = h
	}
	if !seen["imsi"] {
		return nil, errors.New("header: no imsi column")
	}
	out := &ImportFile{}
	for {
		rec, err := cr.Read()
		if errors.Is(err, io.EOF) {
			return out, nil
		}
		if err != nil {
			return nil, err
		}
		line, _ := cr.FieldPos(0)
		var e Entry
		for i, v := range rec {
			v = strings.TrimSpace(v)
			switch header[i] {
			case "imsi":
				e.IMSI = v
			case "mnc_length":
				if v != "" {
					if e.MNCLen, err = strconv.Atoi(v); err != nil {
						return nil, fmt.Errorf("line %d: mnc_length %q: not a number", line, v)
					}
				}
			case "k":
				e.K = v
			case "op":
				e.OP = v
			case "opc":
				e.OPc = v
			case "amf":
				e.AMF = v
			case "sqn":
				e.SQN = v
			case "msisdn":
				e.MSISDN = v
			case "sim_id":
				e.SIMID = v
			case "imei_lock":
				e.IMEILock = v
			case "group":
				e.Group = v
			case "status":
				e.Status = Status(v)
			}
		}
		out.SIMs = append(out.SIMs, e)
	}
}

// ExpandOptions tune ImportFile.Expand.
type ExpandOptions struct {
	// Seed for k/opc: derive; overrides the file's seed when set.
	Seed []byte
	// Rand for k/opc: random; crypto/rand.Reader when nil.
	Rand io.Reader
}

// Expand turns the file's entries into SIM records, expanding ranges and
// generating or deriving keys. The records are normalized and validated
// (SIM.Normalize); errors name the entry.
func (f *ImportFile) Expand(o ExpandOptions) ([]SIM, error) {
	seed := o.Seed
	if seed == nil && f.Seed != "" {
		seed = []byte(f.Seed)
	}
	if o.Rand == nil {
		o.Rand = rand.Reader
	}
	total := 0
	for _, e := range f.SIMs {
		if e.Range != nil && e.Range.Count > 0 {
			total += min(e.Range.Count, MaxRangeCount)
		} else {
			total++
		}
	}
	out := make([]SIM, 0, min(total, 1<<20)) // entries are not validated yet
	for i, e := range f.SIMs {
		var err error
		if out, err = e.expand(out, seed, o.Rand); err != nil {
			id := e.IMSI
			if e.Range != nil {
				id = "range " + e.Range.FirstIMSI
			}
			return nil, fmt.Errorf("udr: import: entry %d (%s): %w", i+1, id, err)
		}
	}
	return out, nil
}

func (e *Entry) expand(out []SIM, seed []byte, rnd io.Reader) ([]SIM, error) {
	first, count := e.IMSI, 1
	msisdn, simID := e.MSISDN, e.SIMID
	if r := e.Range; r != nil {
		if e.IMSI != "" {
			return out, errors.New("imsi: give imsi or range, not both")
		}
		if e.MSISDN != "" || e.SIMID != "" || e.IMEILock != "" {
			return out, errors.New("msisdn, sim_id and imei_lock are per SIM; in a range use range.first_msisdn and range.first_sim_id")
		}
		if r.Count < 1 || r.Count > MaxRangeCount {
			return out, fmt.Errorf("range.count %d: want 1..%d", r.Count, MaxRangeCount)
		}
		first, count, msisdn, simID = r.FirstIMSI, r.Count, r.FirstMSISDN, r.FirstSIMID
	}
	mncLen := e.MNCLen
	if mncLen == 0 {
		mncLen = 2
	}
	if err := ValidateIMSI(first, mncLen); err != nil {
		return out, err
	}
	last, err := addDecimal(first, count-1)
	if err != nil || last[:3+mncLen] != first[:3+mncLen] {
		return out, fmt.Errorf("range: %d IMSIs from %s run past the MSIN range of MCC+MNC %s", count, first, first[:3+mncLen])
	}
	for _, v := range []struct{ name, first string }{{"msisdn", msisdn}, {"sim_id", simID}} {
		if e.Range != nil && v.first != "" {
			if _, err := addDecimal(v.first, count-1); err != nil {
				return out, fmt.Errorf("range.first_%s %q: %w", v.name, v.first, err)
			}
		}
	}

	var base SIM
	base.MNCLen, base.Group, base.Status = e.MNCLen, e.Group, e.Status
	if e.AMF != "" {
		if err := decodeHex(e.AMF, base.AMF[:]); err != nil {
			return out, fmt.Errorf("amf: %w", err)
		}
	}
	if e.SQN != "" {
		sqn, err := ParseSQN(e.SQN)
		if err != nil {
			return out, err
		}
		base.SQN = sqn
	}
	if e.OP != "" {
		base.OP = new([16]byte)
		if err := decodeHex(e.OP, base.OP[:]); err != nil {
			return out, fmt.Errorf("op: %w", err)
		}
	}
	kMode, opcMode := keyMode(e.K), keyMode(e.OPc)
	if kMode == "" {
		if e.K == "" {
			return out, errors.New("k: missing (hex, random or derive)")
		}
		if err := decodeHex(e.K, base.K[:]); err != nil {
			return out, fmt.Errorf("k: %w", err)
		}
	}
	switch {
	case opcMode != "" && e.OP != "":
		return out, fmt.Errorf("opc: %s conflicts with op; give one", e.OPc)
	case opcMode == "" && e.OPc != "":
		if err := decodeHex(e.OPc, base.OPc[:]); err != nil {
			return out, fmt.Errorf("opc: %w", err)
		}
	case e.OPc == "" && e.OP == "":
		return out, errors.New("opc: missing; give op or opc (hex, random or derive)")
	}
	if (kMode == KeyDerive || opcMode == KeyDerive) && len(seed) == 0 {
		return out, errors.New("derive needs a seed (seed: in the file, or --seed)")
	}

	for i := 0; i < count; i++ {
		s := base
		s.IMSI, _ = addDecimal(first, i)
		s.IMEILock = e.IMEILock
		s.MSISDN, s.SIMID = msisdn, simID
		if e.Range != nil { // first values checked above: they count up without overflow
			if msisdn != "" {
				s.MSISDN, _ = addDecimal(msisdn, i)
			}
			if simID != "" {
				s.SIMID, _ = addDecimal(simID, i)
			}
		}
		switch kMode {
		case KeyRandom:
			if _, err := io.ReadFull(rnd, s.K[:]); err != nil {
				return out, fmt.Errorf("k: random: %w", err)
			}
		case KeyDerive:
			s.K = DerivedK(seed, s.IMSI)
		}
		switch opcMode {
		case KeyRandom:
			if _, err := io.ReadFull(rnd, s.OPc[:]); err != nil {
				return out, fmt.Errorf("opc: random: %w", err)
			}
		case KeyDerive:
			s.OPc = DerivedOPc(seed, s.IMSI)
		}
		if s.OP != nil {
			op := *s.OP
			s.OP = &op
		}
		if err := s.Normalize(); err != nil {
			return out, err
		}
		out = append(out, s)
	}
	return out, nil
}

// SIM converts a single-SIM entry with hex keys (no range, no random or
// derive) to a normalized, validated SIM.
func (e Entry) SIM() (SIM, error) {
	if e.Range != nil {
		return SIM{}, errors.New("udr: sim: a range is not one SIM")
	}
	for name, v := range map[string]string{"k": e.K, "opc": e.OPc} {
		if keyMode(v) != "" {
			return SIM{}, fmt.Errorf("udr: sim %s: %s: %s keys are generated by import only; give hex", e.IMSI, name, v)
		}
	}
	sims, err := e.expand(nil, nil, nil)
	if err != nil {
		return SIM{}, fmt.Errorf("udr: sim %s: %w", e.IMSI, err)
	}
	return sims[0], nil
}

func keyMode(s string) string {
	switch strings.ToLower(s) {
	case KeyRandom:
		return KeyRandom
	case KeyDerive:
		return KeyDerive
	}
	return ""
}

// ParseSQN parses an SQN given as hex, at most 12 digits (48 bits).
func ParseSQN(s string) (uint64, error) {
	if s == "" || len(s) > 12 {
		return 0, fmt.Errorf("sqn %q: want 1 to 12 hex digits (48 bits)", s)
	}
	v, err := strconv.ParseUint(s, 16, 64)
	if err != nil {
		return 0, fmt.Errorf("sqn %q: not hex", s)
	}
	return v, nil
}

// FormatSQN formats an SQN as 12 lowercase hex digits (6 bytes).
func FormatSQN(sqn uint64) string { return fmt.Sprintf("%012x", sqn) }

// addDecimal adds n to a decimal digit string, keeping its width.
func addDecimal(s string, n int) (string, error) {
	if !isDigits(s) {
		return "", fmt.Errorf("%q is not decimal digits", s)
	}
	b := []byte(s)
	carry := n
	for i := len(b) - 1; i >= 0 && carry > 0; i-- {
		d := int(b[i]-'0') + carry
		b[i] = byte('0' + d%10)
		carry = d / 10
	}
	if carry > 0 {
		return "", fmt.Errorf("%s + %d overflows %d digits", s, n, len(s))
	}
	return string(b), nil
}

// Key derivation for "derive" (documented, stable: a UE simulator or a
// test can recompute the keys from the seed):
//
//	K   = first 16 bytes of HMAC-SHA-256(seed, "simgate/k:"   || IMSI)
//	OPc = first 16 bytes of HMAC-SHA-256(seed, "simgate/opc:" || IMSI)
//
// where seed is the seed's bytes as written and IMSI its ASCII digits.
func derive(seed []byte, label, imsi string) [16]byte {
	m := hmac.New(sha256.New, seed)
	m.Write([]byte(label))
	m.Write([]byte(imsi))
	var out [16]byte
	copy(out[:], m.Sum(nil))
	return out
}

// DerivedK is the K that "k: derive" gives the IMSI under seed.
func DerivedK(seed []byte, imsi string) [16]byte { return derive(seed, "simgate/k:", imsi) }

// DerivedOPc is the OPc that "opc: derive" gives the IMSI under seed.
func DerivedOPc(seed []byte, imsi string) [16]byte { return derive(seed, "simgate/opc:", imsi) }

// EntryOf is the export form of a SIM. Without withKeys, K, OP and OPc are
// left out (the AMF and SQN are not secret and stay).
func EntryOf(s SIM, withKeys bool) Entry {
	e := Entry{
		IMSI: s.IMSI, MNCLen: s.MNCLen, AMF: hex.EncodeToString(s.AMF[:]), SQN: FormatSQN(s.SQN),
		MSISDN: s.MSISDN, SIMID: s.SIMID, IMEILock: s.IMEILock, Group: s.Group, Status: s.Status,
	}
	if withKeys {
		e.K = hex.EncodeToString(s.K[:])
		e.OPc = hex.EncodeToString(s.OPc[:])
		if s.OP != nil {
			e.OP = hex.EncodeToString(s.OP[:])
		}
	}
	return e
}

// WriteExport writes entries as an import file in format f: JSON or YAML
// {"sims": [...]}, or CSV with a header row.
func WriteExport(w io.Writer, f Format, entries []Entry) error {
	if entries == nil {
		entries = []Entry{}
	}
	var err error
	switch f {
	case FormatJSON:
		enc := json.NewEncoder(w)
		enc.SetIndent("", "  ")
		err = enc.Encode(ImportFile{SIMs: entries})
	case FormatYAML:
		enc := yaml.NewEncoder(w)
		enc.SetIndent(2)
		if err = enc.Encode(ImportFile{SIMs: entries}); err == nil {
			err = enc.Close()
		}
	case FormatCSV:
		err = writeCSV(w, entries)
	default:
		err = fmt.Errorf("format %q: want json, yaml or csv", f)
	}
	if err != nil {
		return fmt.Errorf("udr: export: %w", err)
	}
	return nil
}

func writeCSV(w io.Writer, entries []Entry) error {
	cols := slices.Clone(CSVColumns)
	withKeys := slices.ContainsFunc(entries, func(e Entry) bool { return e.K != "" })
	if !withKeys {
		cols = slices.DeleteFunc(cols, func(c string) bool { return c == "k" || c == "op" || c == "opc" })
	}
	cw := csv.NewWriter(w)
	if err := cw.Write(cols); err != nil {
		return err
	}
	row := make([]string, len(cols))
	for _, e := range entries {
		for i, c := range cols {
			switch c {
			case "imsi":
				row[i] = e.IMSI
			case "mnc_length":
				row[i] = strconv.Itoa(e.MNCLen)
			case "k":
				row[i] = e.K
			case "op":
				row[i] = e.OP
			case "opc":
				row[i] = e.OPc
			case "amf":
				row[i] = e.AMF
			case "sqn":
				row[i] = e.SQN
			case "msisdn":
				row[i] = e.MSISDN
			case "sim_id":
				row[i] = e.SIMID
			case "imei_lock":
				row[i] = e.IMEILock
			case "group":
				row[i] = e.Group
			case "status":
				row[i] = string(e.Status)
			}
		}
		if err := cw.Write(row); err != nil {
			return err
		}
	}
	cw.Flush()
	return cw.Error()
}

// oneLine joins a multi-line message (YAML lists errors one a line).
func oneLine(s string) string {
	var b strings.Builder
	for line := range strings.Lines(s) {
		line = strings.TrimSpace(line)
		if line == "" {
			continue
		}
		if b.Len() > 0 {
			if strings.HasSuffix(b.String(), ":") {
				b.WriteString(" ")
			} else {
				b.WriteString("; ")
			}
		}
		b.WriteString(line)
	}
	return b.String()
}
