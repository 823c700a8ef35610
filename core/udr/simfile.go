package udr

import (
	"bytes"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"

	"github.com/simgate/simgate/sim/aka"
)

// SIMFileVersion is the version of the SIM file format written by WriteSIMFile.
const SIMFileVersion = 1

// SIMFile is what a UE simulator loads to act as the USIMs of provisioned
// subscribers: every SIM with its secrets, as JSON:
//
//	{"version": 1, "sims": [{"imsi": "001010000000001", "mnc_length": 2,
//	  "k": "<32 hex>", "opc": "<32 hex>", "amf": "8000", "sqn": "000000000000",
//	  "msisdn": "...", "sim_id": "...", "imei": "<15 digits>"}]}
//
// sqn is the SIM's initial SQN (12 hex digits); imei is the IMEI the SIM is
// locked to, if any, so that the simulated device reports it. The file holds
// keys: it is written 0600.
type SIMFile struct {
	Version int       `json:"version"`
	SIMs    []SIMCard `json:"sims"`
}

// SIMCard is one USIM in a SIMFile.
type SIMCard struct {
	IMSI   string
	MNCLen int
	K      [16]byte
	OPc    [16]byte
	AMF    [2]byte
	SQN    uint64
	MSISDN string
	SIMID  string
	IMEI   string
}

type simCardJSON struct {
	IMSI   string `json:"imsi"`
	MNCLen int    `json:"mnc_length"`
	K      string `json:"k"`
	OPc    string `json:"opc"`
	AMF    string `json:"amf"`
	SQN    string `json:"sqn"`
	MSISDN string `json:"msisdn,omitempty"`
	SIMID  string `json:"sim_id,omitempty"`
	IMEI   string `json:"imei,omitempty"`
}

// CardOf is the SIM file form of a SIM: the IMEI is that of its IMEI lock.
func CardOf(s SIM) SIMCard {
	lock, _ := ParseIMEILock(s.IMEILock) // validated when stored
	return SIMCard{IMSI: s.IMSI, MNCLen: s.MNCLen, K: s.K, OPc: s.OPc, AMF: s.AMF, SQN: s.SQN,
		MSISDN: s.MSISDN, SIMID: s.SIMID, IMEI: lock.IMEI}
}

// NewSIMFile builds the SIM file of sims.
func NewSIMFile(sims []SIM) *SIMFile {
	f := &SIMFile{Version: SIMFileVersion, SIMs: make([]SIMCard, len(sims))}
	for i, s := range sims {
		f.SIMs[i] = CardOf(s)
	}
	return f
}

// Credentials returns the card's long-term secrets.
func (c SIMCard) Credentials() aka.Credentials {
	return aka.Credentials{K: c.K, OPc: c.OPc, AMF: c.AMF}
}

// MarshalJSON writes the card with lowercase hex byte strings.
func (c SIMCard) MarshalJSON() ([]byte, error) {
	return json.Marshal(simCardJSON{
		IMSI: c.IMSI, MNCLen: c.MNCLen, K: hex.EncodeToString(c.K[:]), OPc: hex.EncodeToString(c.OPc[:]),
		AMF: hex.EncodeToString(c.AMF[:]), SQN: FormatSQN(c.SQN), MSISDN: c.MSISDN, SIMID: c.SIMID, IMEI: c.IMEI,
	})
}

// UnmarshalJSON reads and validates a card.
func (c *SIMCard) UnmarshalJSON(b []byte) error {
	var j simCardJSON
	d := json.NewDecoder(bytes.NewReader(b))
	d.DisallowUnknownFields()
	if err := d.Decode(&j); err != nil {
		return err
	}
	out := SIMCard{IMSI: j.IMSI, MNCLen: j.MNCLen, MSISDN: j.MSISDN, SIMID: j.SIMID, IMEI: j.IMEI}
	if err := ValidateIMSI(j.IMSI, j.MNCLen); err != nil {
		return err
	}
	for _, f := range []struct {
		name string
		s    string
		dst  []byte
	}{{"k", j.K, out.K[:]}, {"opc", j.OPc, out.OPc[:]}, {"amf", j.AMF, out.AMF[:]}} {
		if err := decodeHex(f.s, f.dst); err != nil {
			return fmt.Errorf("sim %s: %s: %w", j.IMSI, f.name, err)
		}
	}
	if j.SQN != "" { // absent: 0
		sqn, err := ParseSQN(j.SQN)
		if err != nil {
			return fmt.Errorf("sim %s: %w", j.IMSI, err)
		}
		out.SQN = sqn
	}
	if j.IMEI != "" {
		if err := ValidateIMEI(j.IMEI); err != nil {
			return fmt.Errorf("sim %s: %w", j.IMSI, err)
		}
	}
	*c = out
	return nil
}

// Lookup returns the card with the IMSI.
func (f *SIMFile) Lookup(imsi string) (SIMCard, bool) {
	for _, c := range f.SIMs {
		if c.IMSI == imsi {
			return c, true
		}
	}
	return SIMCard{}, false
}

// Encode writes the file as indented JSON.
func (f *SIMFile) Encode(w io.Writer) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	if err := enc.Encode(f); err != nil {
		return fmt.Errorf("udr: sim file: %w", err)
	}
	return nil
}

// DecodeSIMFile reads and validates a SIM file.
func DecodeSIMFile(r io.Reader) (*SIMFile, error) {
	d := json.NewDecoder(r)
	d.DisallowUnknownFields()
	var f SIMFile
	if err := d.Decode(&f); err != nil {
		return nil, fmt.Errorf("udr: sim file: %w", err)
	}
	if f.Version != SIMFileVersion {
		return nil, fmt.Errorf("udr: sim file: version %d, want %d", f.Version, SIMFileVersion)
	}
	seen := make(map[string]bool, len(f.SIMs))
	for _, c := range f.SIMs {
		if seen[c.IMSI] {
			return nil, fmt.Errorf("udr: sim file: imsi %s twice", c.IMSI)
		}
		seen[c.IMSI] = true
	}
	return &f, nil
}

// ReadSIMFile reads the SIM file at path.
func ReadSIMFile(path string) (*SIMFile, error) {
	fh, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("udr: sim file: %w", err)
	}
	defer fh.Close()
	f, err := DecodeSIMFile(fh)
	if err != nil {
		return nil, fmt.Errorf("%w (%s)", err, path)
	}
	return f, nil
}

// WriteSIMFile writes f to path (mode 0600) through a temporary file and a
// rename, so a reader never sees half a file.
func WriteSIMFile(path string, f *SIMFile) (err error) {
	tmp, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".*")
	if err != nil {
		return fmt.Errorf("udr: sim file: %w", err)
	}
	defer func() {
		if err != nil {
			tmp.Close()
			os.Remove(tmp.Name())
		}
	}()
	if err := tmp.Chmod(0o600); err != nil {
		return fmt.Errorf("udr: sim file: %w", err)
	}
	if err := f.Encode(tmp); err != nil {
		return err
	}
	if err := tmp.Sync(); err != nil {
		return fmt.Errorf("udr: sim file: %w", err)
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("udr: sim file: %w", err)
	}
	if err := os.Rename(tmp.Name(), path); err != nil {
		return fmt.Errorf("udr: sim file: %w", err)
	}
	return nil
}
