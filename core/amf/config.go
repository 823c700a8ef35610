package amf

import (
	"encoding/hex"
	"errors"
	"fmt"
	"github.com/simgate/simgate/internal/plmn"
	"strconv"
	"strings"
	"time"

	"github.com/simgate/simgate/core/n2"
	"github.com/simgate/simgate/sim/kdf"
)

// Config is the AMF's section of the configuration. Every leaf is a YAML
// key (amf.<path>) and a flag.
type Config struct {
	Name     string         `yaml:"name" doc:"AMF name sent in NG Setup Response (1 to 150 printable characters)"`
	PLMN     PLMNConfig     `yaml:"plmn" doc:"the PLMN this AMF serves"`
	TACs     []string       `yaml:"tacs" doc:"tracking area codes served, 6 hex digits each (e.g. 000001)"`
	GUAMI    GUAMIConfig    `yaml:"guami" doc:"AMF identifier parts of the GUAMI (TS 23.003 2.10.1)"`
	Slices   []string       `yaml:"slices" doc:"S-NSSAIs served: SST, or SST:SD with SD as 6 hex digits (e.g. 1 or 1:000001)"`
	Security SecurityConfig `yaml:"security" doc:"NAS security algorithm preference"`
	// DefaultDNN is used when the UE's UL NAS Transport names none.
	DefaultDNN string       `yaml:"default_dnn" doc:"DNN used when the UE requests a PDU session without one"`
	N2         n2.Config    `yaml:"n2" doc:"N2 (NGAP) transport"`
	Timers     TimersConfig `yaml:"timers" doc:"NAS timers (TS 24.501 10.2) and internal time limits"`
	Workers    int          `yaml:"workers" doc:"UE procedure steps processed at once (bounds concurrency, not UEs)"`
}

// PLMNConfig is a PLMN identity.
type PLMNConfig struct {
	MCC string `yaml:"mcc" doc:"mobile country code, 3 digits"`
	MNC string `yaml:"mnc" doc:"mobile network code, 2 or 3 digits"`
}

// GUAMIConfig holds the AMF Region ID, AMF Set ID and AMF Pointer.
type GUAMIConfig struct {
	RegionID uint8  `yaml:"region_id" doc:"AMF Region ID, 0..255"`
	SetID    uint16 `yaml:"set_id" doc:"AMF Set ID, 0..1023"`
	Pointer  uint8  `yaml:"pointer" doc:"AMF Pointer, 0..63"`
}

// SecurityConfig lists the NAS algorithms the AMF may select, most
// preferred first (TS 33.501 6.7.1).
type SecurityConfig struct {
	Integrity []string `yaml:"integrity" doc:"NAS integrity algorithms by preference: NIA1, NIA2, NIA3"`
	Ciphering []string `yaml:"ciphering" doc:"NAS ciphering algorithms by preference: NEA0, NEA1, NEA2, NEA3"`
}

// TimersConfig are the AMF's NAS timers and limits.
type TimersConfig struct {
	T3550 time.Duration `yaml:"t3550" doc:"REGISTRATION ACCEPT retransmission timer"`
	T3560 time.Duration `yaml:"t3560" doc:"AUTHENTICATION REQUEST / SECURITY MODE COMMAND retransmission timer"`
	T3570 time.Duration `yaml:"t3570" doc:"IDENTITY REQUEST retransmission timer"`
	T3522 time.Duration `yaml:"t3522" doc:"DEREGISTRATION REQUEST (network-initiated) retransmission timer"`
	// MaxRetransmissions is how often a NAS message is resent before the
	// procedure is aborted (TS 24.501: on the fifth expiry).
	MaxRetransmissions int           `yaml:"max_retransmissions" doc:"retransmissions of a NAS message before the procedure is aborted"`
	Release            time.Duration `yaml:"release" doc:"wait for UE Context Release Complete before dropping the context anyway"`
	Call               time.Duration `yaml:"call" doc:"time limit of one call to the UDM, AUSF or SMF"`
}

// Defaults of the contract between core and RAN simulator (flow.md).
const (
	DefaultName   = "simgate-amf"
	DefaultMCC    = "001"
	DefaultMNC    = "01"
	DefaultTAC    = "000001"
	DefaultDNN    = "internet"
	DefaultSlice  = "1"
	DefaultRegion = 0xCA
	DefaultSetID  = 0x3F8
)

// DefaultConfig is the contract's network: PLMN 001/01, TAC 000001, GUAMI
// CA/3F8/0, SST 1, NIA2 then NIA1, NIA3 and NEA0 first (so that traces read
// in Wireshark), N2 on 127.0.0.1, and the timer values of TS 24.501 10.2.
func DefaultConfig() Config {
	n := n2.Config{Transport: n2.TransportAuto, LocalAddr: "127.0.0.1"}
	return Config{
		Name:       DefaultName,
		PLMN:       PLMNConfig{MCC: DefaultMCC, MNC: DefaultMNC},
		TACs:       []string{DefaultTAC},
		GUAMI:      GUAMIConfig{RegionID: DefaultRegion, SetID: DefaultSetID, Pointer: 0},
		Slices:     []string{DefaultSlice},
		Security:   SecurityConfig{Integrity: []string{"NIA2", "NIA1", "NIA3"}, Ciphering: []string{"NEA0", "NEA2", "NEA1", "NEA3"}},
		DefaultDNN: DefaultDNN,
		N2:         n,
		Timers: TimersConfig{
			T3550: 6 * time.Second, T3560: 6 * time.Second, T3570: 6 * time.Second, T3522: 6 * time.Second,
			MaxRetransmissions: 4, Release: 5 * time.Second, Call: 10 * time.Second,
		},
		Workers: 256,
	}
}

// Validate checks the configuration; errors name the YAML keys.
func (c Config) Validate() error {
	_, err := c.parse()
	return err
}

// snssai is an S-NSSAI (TS 23.003 28.4.2).
type snssai struct {
	sst   uint8
	sd    [3]byte
	hasSD bool
}

// sdString is the SD as the SMF takes it: 6 hex digits, or "".
func (s snssai) sdString() string {
	if !s.hasSD {
		return ""
	}
	return hex.EncodeToString(s.sd[:])
}

// parsedConfig is the checked, decoded configuration.
type parsedConfig struct {
	plmn      [3]byte
	mcc, mnc  string
	snn       string
	tacs      [][3]byte
	slices    []snssai
	integrity []uint8
	ciphering []uint8
}

func (c Config) parse() (*parsedConfig, error) {
	var errs []error
	bad := func(key, format string, args ...any) {
		errs = append(errs, fmt.Errorf("amf: %s: "+format, append([]any{key}, args...)...))
	}
	p := &parsedConfig{mcc: c.PLMN.MCC, mnc: c.PLMN.MNC}
	if n := len(c.Name); n < 1 || n > 150 || !printable(c.Name) {
		bad("name", "%q: want 1 to 150 printable characters (ASN.1 PrintableString)", c.Name)
	}
	if len(c.PLMN.MCC) != 3 || !digits(c.PLMN.MCC) {
		bad("plmn.mcc", "%q: want 3 digits", c.PLMN.MCC)
	}
	if (len(c.PLMN.MNC) != 2 && len(c.PLMN.MNC) != 3) || !digits(c.PLMN.MNC) {
		bad("plmn.mnc", "%q: want 2 or 3 digits", c.PLMN.MNC)
	}
	if len(errs) == 0 {
		p.plmn = encodePLMN(c.PLMN.MCC, c.PLMN.MNC)
		p.snn, _ = kdf.ServingNetworkName(c.PLMN.MCC, c.PLMN.MNC)
	}
	if len(c.TACs) == 0 {
		bad("tacs", "at least one TAC is needed")
	}
	for _, t := range c.TACs {
		b, err := hex.DecodeString(t)
		if err != nil || len(b) != 3 {
			bad("tacs", "%q: want 6 hex digits", t)
			continue
		}
		p.tacs = append(p.tacs, [3]byte(b))
	}
	if c.GUAMI.SetID > 0x3FF {
		bad("guami.set_id", "%d: want 0..1023 (10 bits)", c.GUAMI.SetID)
	}
	if c.GUAMI.Pointer > 0x3F {
		bad("guami.pointer", "%d: want 0..63 (6 bits)", c.GUAMI.Pointer)
	}
	if len(c.Slices) == 0 || len(c.Slices) > 8 {
		bad("slices", "%d slices: want 1 to 8 (allowed NSSAI)", len(c.Slices))
	}
	for _, s := range c.Slices {
		sl, err := parseSNSSAI(s)
		if err != nil {
			bad("slices", "%v", err)
			continue
		}
		p.slices = append(p.slices, sl)
	}
	var err error
	if p.integrity, err = parseAlgorithms(c.Security.Integrity, "NIA", 1); err != nil {
		bad("security.integrity", "%v", err)
	}
	if p.ciphering, err = parseAlgorithms(c.Security.Ciphering, "NEA", 0); err != nil {
		bad("security.ciphering", "%v", err)
	}
	if c.DefaultDNN == "" || len(c.DefaultDNN) > 100 {
		bad("default_dnn", "%q: want 1 to 100 characters", c.DefaultDNN)
	}
	if err := c.N2.Validate(); err != nil {
		errs = append(errs, fmt.Errorf("amf: n2: %w", err))
	}
	for _, t := range []struct {
		key string
		d   time.Duration
	}{
		{"timers.t3550", c.Timers.T3550}, {"timers.t3560", c.Timers.T3560}, {"timers.t3570", c.Timers.T3570},
		{"timers.t3522", c.Timers.T3522}, {"timers.release", c.Timers.Release}, {"timers.call", c.Timers.Call},
	} {
		if t.d <= 0 {
			bad(t.key, "%v: want a positive duration", t.d)
		}
	}
	if c.Timers.MaxRetransmissions < 0 || c.Timers.MaxRetransmissions > 10 {
		bad("timers.max_retransmissions", "%d: want 0..10", c.Timers.MaxRetransmissions)
	}
	if c.Workers < 1 {
		bad("workers", "%d: want at least 1", c.Workers)
	}
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	return p, nil
}

// parseSNSSAI reads "SST" or "SST:SD".
func parseSNSSAI(s string) (snssai, error) {
	sstStr, sdStr, hasSD := strings.Cut(s, ":")
	sst, err := strconv.ParseUint(sstStr, 10, 8)
	if err != nil {
		return snssai{}, fmt.Errorf("%q: SST %q is not 0..255", s, sstStr)
	}
	out := snssai{sst: uint8(sst)}
	if hasSD {
		b, err := hex.DecodeString(sdStr)
		if err != nil || len(b) != 3 {
			return snssai{}, fmt.Errorf("%q: SD %q is not 6 hex digits", s, sdStr)
		}
		if string(b) == "\xff\xff\xff" {
			return snssai{}, fmt.Errorf("%q: SD FFFFFF means no SD (TS 23.003 28.4.2); leave it out", s)
		}
		out.sd, out.hasSD = [3]byte(b), true
	}
	return out, nil
}

// parseAlgorithms reads "NIA2"-style names (any case; "128-NIA2" too) into
// identities, keeping order; min is the lowest identity allowed.
func parseAlgorithms(names []string, prefix string, minID int) ([]uint8, error) {
	if len(names) == 0 {
		return nil, errors.New("empty: at least one algorithm is needed")
	}
	seen := map[uint8]bool{}
	var out []uint8
	for _, n := range names {
		s := strings.TrimPrefix(strings.ToUpper(strings.TrimSpace(n)), "128-")
		rest, ok := strings.CutPrefix(s, prefix)
		id, err := strconv.Atoi(rest)
		if !ok || err != nil || id < minID || id > 3 || len(rest) != 1 {
			return nil, fmt.Errorf("%q: want one of %s%d..%s3", n, prefix, minID, prefix)
		}
		if seen[uint8(id)] {
			return nil, fmt.Errorf("%q listed twice", n)
		}
		seen[uint8(id)] = true
		out = append(out, uint8(id))
	}
	return out, nil
}

// encodePLMN encodes a validated MCC and MNC as the 3-octet PLMN identity.
func encodePLMN(mcc, mnc string) [3]byte { return [3]byte(plmn.Append(nil, mcc, mnc)) }

// decodePLMN is the inverse of encodePLMN; it fails on non-BCD digits.
func decodePLMN(b []byte) (mcc, mnc string, err error) { return plmn.Decode(b) }

func digits(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return s != ""
}

// printable reports whether s is an ASN.1 PrintableString (X.680 41.4).
func printable(s string) bool {
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9':
		case strings.IndexByte(" '()+,-./:=?", c) >= 0:
		default:
			return false
		}
	}
	return true
}
