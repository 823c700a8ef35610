package udr

import (
	"encoding/hex"
	"strings"
	"testing"

	"github.com/simgate/simgate/internal/vectors"
)

type milenageCase struct {
	Name string `json:"name"`
	K    string `json:"k"`
	OP   string `json:"op"`
	OPc  string `json:"opc"`
}

func hex16(t testing.TB, s string) [16]byte {
	t.Helper()
	var out [16]byte
	if err := decodeHex(s, out[:]); err != nil {
		t.Fatalf("hex16 %q: %v", s, err)
	}
	return out
}

// TS 35.208 4.3: OPc = OP xor E_K(OP), through Normalize as provisioning uses it.
func TestNormalizeDerivesOPcFromOP(t *testing.T) {
	for _, c := range vectors.Load[milenageCase](t, "milenage.json") {
		t.Run(c.Name, func(t *testing.T) {
			op := hex16(t, c.OP)
			s := SIM{IMSI: "001010000000001", K: hex16(t, c.K), OP: &op}
			if err := s.Normalize(); err != nil {
				t.Fatal(err)
			}
			if got := hex.EncodeToString(s.OPc[:]); got != c.OPc {
				t.Fatalf("OPc %s, want %s", got, c.OPc)
			}
			// OP and a matching OPc together are accepted; a mismatch is not.
			s2 := SIM{IMSI: "001010000000001", K: hex16(t, c.K), OP: &op, OPc: hex16(t, c.OPc)}
			if err := s2.Normalize(); err != nil {
				t.Fatalf("matching op+opc rejected: %v", err)
			}
			s3 := s2
			s3.OPc[0] ^= 1
			if err := s3.Normalize(); err == nil || !strings.Contains(err.Error(), "does not match") {
				t.Fatalf("mismatching op+opc: %v", err)
			}
		})
	}
}

func validSIM() SIM {
	return SIM{
		IMSI: "001010000000001", MNCLen: 2,
		K:   [16]byte{0x46, 0x5b, 0x5c, 0xe8, 0xb1, 0x99, 0xb4, 0x9f, 0xaa, 0x5f, 0x0a, 0x2e, 0xe2, 0x38, 0xa6, 0xbc},
		OPc: [16]byte{0xcd, 0x63, 0xcb, 0x71, 0x95, 0x4a, 0x9f, 0x4e, 0x48, 0xa5, 0x99, 0x4e, 0x37, 0xa0, 0x2b, 0xaf},
		AMF: [2]byte{0x80, 0x00}, Group: DefaultGroup, Status: StatusActive,
	}
}

func TestSIMValidate(t *testing.T) {
	tests := []struct {
		name string
		mod  func(*SIM)
		want string // "" = valid
	}{
		{"valid", func(*SIM) {}, ""},
		{"imsi 6 digits mnc 2", func(s *SIM) { s.IMSI = "001011" }, ""},
		{"imsi 15 digits mnc 3", func(s *SIM) { s.IMSI = "310410123456789"; s.MNCLen = 3 }, ""},
		{"imsi empty", func(s *SIM) { s.IMSI = "" }, "imsi: missing"},
		{"imsi letters", func(s *SIM) { s.IMSI = "00101000000000a" }, "digits only"},
		{"imsi space", func(s *SIM) { s.IMSI = "00101 000000001" }, "digits only"},
		{"imsi 16 digits", func(s *SIM) { s.IMSI = "0010100000000012" }, "16 digits, want 6 to 15"},
		{"imsi 5 digits", func(s *SIM) { s.IMSI = "00101" }, "5 digits"},
		{"imsi no msin", func(s *SIM) { s.IMSI = "001010"; s.MNCLen = 3 }, "no MSIN"},
		{"mnc length 1", func(s *SIM) { s.MNCLen = 1 }, "MNC length 1"},
		{"mnc length 4", func(s *SIM) { s.MNCLen = 4 }, "MNC length 4"},
		{"zero k", func(s *SIM) { s.K = [16]byte{} }, "k: missing"},
		{"zero opc", func(s *SIM) { s.OPc = [16]byte{} }, "opc: missing"},
		{"sqn 48 bits", func(s *SIM) { s.SQN = MaxSQN }, ""},
		{"sqn 49 bits", func(s *SIM) { s.SQN = MaxSQN + 1 }, "more than 48 bits"},
		{"msisdn", func(s *SIM) { s.MSISDN = "819012345678" }, ""},
		{"msisdn plus", func(s *SIM) { s.MSISDN = "+819012345678" }, "msisdn"},
		{"msisdn 16 digits", func(s *SIM) { s.MSISDN = "1234567890123456" }, "msisdn"},
		{"sim id iccid", func(s *SIM) { s.SIMID = "8981100001234567890" }, ""},
		{"sim id space", func(s *SIM) { s.SIMID = "89 81" }, "sim_id"},
		{"imei lock", func(s *SIM) { s.IMEILock = "490154203237518" }, ""},
		{"imei lock anonymous", func(s *SIM) { s.IMEILock = "490154203237518|ANONYMOUS" }, ""},
		{"imei lock bad luhn", func(s *SIM) { s.IMEILock = "490154203237519" }, "check digit 9, want 8"},
		{"imei lock 14 digits unnormalized", func(s *SIM) { s.IMEILock = "49015420323751" }, "want 15 digits"},
		{"imei lock bad suffix", func(s *SIM) { s.IMEILock = "490154203237518|anon" }, "want 15 digits"},
		{"imei lock only suffix", func(s *SIM) { s.IMEILock = "|ANONYMOUS" }, "want 15 digits"},
		{"group", func(s *SIM) { s.Group = "fleet-1.a_b" }, ""},
		{"group empty", func(s *SIM) { s.Group = "" }, "group name"},
		{"group slash", func(s *SIM) { s.Group = "a/b" }, "group name"},
		{"group leading dash", func(s *SIM) { s.Group = "-a" }, "group name"},
		{"group 65 chars", func(s *SIM) { s.Group = strings.Repeat("g", 65) }, "group name"},
		{"status inactive", func(s *SIM) { s.Status = StatusInactive }, ""},
		{"status bad", func(s *SIM) { s.Status = "suspended" }, `status "suspended"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := validSIM()
			tt.mod(&s)
			err := s.Validate()
			switch {
			case tt.want == "" && err != nil:
				t.Fatalf("rejected: %v", err)
			case tt.want != "" && err == nil:
				t.Fatalf("accepted, want error with %q", tt.want)
			case tt.want != "" && !strings.Contains(err.Error(), tt.want):
				t.Fatalf("error %q does not mention %q", err, tt.want)
			}
		})
	}
}

func TestNormalizeDefaults(t *testing.T) {
	s := SIM{IMSI: "001010000000001", K: validSIM().K, OPc: validSIM().OPc, IMEILock: "49015420323751|ANONYMOUS"}
	if err := s.Normalize(); err != nil {
		t.Fatal(err)
	}
	if s.MNCLen != 2 || s.AMF != DefaultAMF || s.Group != DefaultGroup || s.Status != StatusActive {
		t.Fatalf("defaults not filled: %+v", s)
	}
	if s.IMEILock != "490154203237518|ANONYMOUS" {
		t.Fatalf("14-digit lock not completed: %q", s.IMEILock)
	}
	if s.MCC() != "001" || s.MNC() != "01" {
		t.Fatalf("MCC %q MNC %q", s.MCC(), s.MNC())
	}
	zeroOP := [16]byte{}
	s.OP = &zeroOP
	if err := s.Normalize(); err == nil {
		t.Fatal("all-zero OP accepted")
	}
}

func TestIMEICheckDigit(t *testing.T) {
	tests := []struct {
		payload string
		digit   int
	}{
		{"49015420323751", 8}, // TS 23.003 Annex B example
		{"35967507001953", 0}, // Beam sample IMEI 359675070019530
		{"86769804743758", 0}, // Endorse 2023 token IMEI 867698047437580
		{"86000001234567", 3}, // docs placeholder 860000012345678 is not Luhn-valid
		{"00000000000000", 0},
		{"00000000000001", 8},
		{"99999999999999", 4},
	}
	for _, tt := range tests {
		if got := IMEICheckDigit(tt.payload); got != tt.digit {
			t.Errorf("IMEICheckDigit(%s) = %d, want %d", tt.payload, got, tt.digit)
		}
		good := tt.payload + string(rune('0'+tt.digit))
		if err := ValidateIMEI(good); err != nil {
			t.Errorf("ValidateIMEI(%s): %v", good, err)
		}
		bad := tt.payload + string(rune('0'+(tt.digit+1)%10))
		if err := ValidateIMEI(bad); err == nil {
			t.Errorf("ValidateIMEI(%s) accepted a wrong check digit", bad)
		}
	}
	for _, bad := range []string{"", "49015420323751", "4901542032375180", "49015420323751x"} {
		if err := ValidateIMEI(bad); err == nil {
			t.Errorf("ValidateIMEI(%q) accepted", bad)
		}
	}
}

func TestIMEILockPermits(t *testing.T) {
	tests := []struct {
		lock, imei string
		want       bool
	}{
		{"", "", true},
		{"", "490154203237518", true},
		{"490154203237518", "490154203237518", true},
		{"490154203237518", "490154203237510", true},  // check digit not sent over the air
		{"490154203237518", "4901542032375101", true}, // IMEISV: TAC+SNR+SVN
		{"490154203237518", "490154203237528", false}, // other SNR
		{"490154203237518", "", false},                // no IMEI reported
		{"490154203237518|ANONYMOUS", "", true},       // ... allowed with ANONYMOUS
		{"490154203237518|ANONYMOUS", "359675070019530", false},
		{"490154203237518", "4901542032", false},
	}
	for _, tt := range tests {
		l, err := ParseIMEILock(tt.lock)
		if err != nil {
			t.Fatalf("%q: %v", tt.lock, err)
		}
		if l.String() != tt.lock {
			t.Errorf("String() = %q, want %q", l.String(), tt.lock)
		}
		if got := l.Permits(tt.imei); got != tt.want {
			t.Errorf("lock %q permits %q = %v, want %v", tt.lock, tt.imei, got, tt.want)
		}
	}
}
