package udr

import (
	"errors"
	"fmt"
	"regexp"
	"strings"

	"github.com/simgate/simgate/sim/aka"
)

// DefaultAMF is the AMF given to SIMs provisioned without one: the
// "AMF separation bit" (bit 0) set, as TS 33.401 6.1.1 and TS 33.501 6.1.3.2
// require for vectors used in EPS and 5G.
var DefaultAMF = [2]byte{0x80, 0x00}

// MaxSQN is the largest SQN: TS 33.102 6.3.7, SQN is 48 bits.
const MaxSQN = 1<<48 - 1

// AnonymousSuffix on an IMEI lock still admits a session whose IMEI is not
// reported ("<IMEI>|ANONYMOUS", ../shared/spec/soracom-endorse-beam.md 3).
const AnonymousSuffix = "|ANONYMOUS"

var groupNameRE = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$`)
var simIDRE = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$`)

// ValidateGroupName checks a group name: 1-64 characters of letters, digits,
// '.', '_' or '-', starting with a letter or digit.
func ValidateGroupName(name string) error {
	if !groupNameRE.MatchString(name) {
		return fmt.Errorf("group name %q: want 1-64 of [A-Za-z0-9._-], starting with a letter or digit", name)
	}
	return nil
}

// ValidateIMSI checks an IMSI against TS 23.003 2.2: digits only, MCC of 3
// digits, an MNC of mncLen (2 or 3) digits, then a non-empty MSIN; 6 to 15
// digits in all.
func ValidateIMSI(imsi string, mncLen int) error {
	if imsi == "" {
		return errors.New("imsi: missing")
	}
	if !isDigits(imsi) {
		return fmt.Errorf("imsi %q: digits only", imsi)
	}
	if len(imsi) < 6 || len(imsi) > 15 {
		return fmt.Errorf("imsi %q: %d digits, want 6 to 15", imsi, len(imsi))
	}
	if mncLen != 2 && mncLen != 3 {
		return fmt.Errorf("imsi %q: MNC length %d, want 2 or 3", imsi, mncLen)
	}
	if len(imsi) <= 3+mncLen {
		return fmt.Errorf("imsi %q: no MSIN after MCC (3 digits) and MNC (%d digits)", imsi, mncLen)
	}
	return nil
}

// MCC returns the mobile country code, the first 3 digits of the IMSI.
func (s *SIM) MCC() string { return s.IMSI[:min(3, len(s.IMSI))] }

// MNC returns the mobile network code, MNCLen digits after the MCC.
func (s *SIM) MNC() string {
	if len(s.IMSI) < 3+s.MNCLen || s.MNCLen < 0 {
		return ""
	}
	return s.IMSI[3 : 3+s.MNCLen]
}

// Credentials returns the secrets the AuC shares with the USIM.
func (s *SIM) Credentials() aka.Credentials {
	return aka.Credentials{K: s.K, OPc: s.OPc, AMF: s.AMF}
}

// Normalize fills the defaults of a SIM about to be stored (MNC length 2,
// AMF 8000, group "default", status active), completes a 14-digit IMEI lock
// with its check digit, derives OPc from OP when only OP is given (TS 35.206
// 4.1: OPc = OP xor E_K(OP)) and then validates the record.
func (s *SIM) Normalize() error {
	if s.MNCLen == 0 {
		s.MNCLen = 2
	}
	if s.AMF == ([2]byte{}) {
		s.AMF = DefaultAMF
	}
	if s.Group == "" {
		s.Group = DefaultGroup
	}
	if s.Status == "" {
		s.Status = StatusActive
	}
	lock, err := NormalizeIMEILock(s.IMEILock)
	if err != nil {
		return fmt.Errorf("udr: sim %s: %w", s.IMSI, err)
	}
	s.IMEILock = lock
	if s.OP != nil {
		if *s.OP == ([16]byte{}) {
			return fmt.Errorf("udr: sim %s: op: all zero", s.IMSI)
		}
		opc, err := DeriveOPc(s.K, *s.OP)
		if err != nil {
			return fmt.Errorf("udr: sim %s: %w", s.IMSI, err)
		}
		switch {
		case s.OPc == ([16]byte{}):
			s.OPc = opc
		case s.OPc != opc:
			return fmt.Errorf("udr: sim %s: opc does not match the OPc derived from op and k", s.IMSI)
		}
	}
	return s.Validate()
}

// Validate checks a SIM record as stored; it does not fill defaults (see
// Normalize).
func (s *SIM) Validate() error {
	if err := ValidateIMSI(s.IMSI, s.MNCLen); err != nil {
		return fmt.Errorf("udr: %w", err)
	}
	fail := func(format string, args ...any) error {
		return fmt.Errorf("udr: sim %s: "+format, append([]any{s.IMSI}, args...)...)
	}
	if s.K == ([16]byte{}) {
		return fail("k: missing (all zero)")
	}
	if s.OPc == ([16]byte{}) {
		return fail("opc: missing (all zero); give op or opc")
	}
	if s.SQN > MaxSQN {
		return fail("sqn %#x: more than 48 bits", s.SQN)
	}
	if s.MSISDN != "" && (!isDigits(s.MSISDN) || len(s.MSISDN) > 15) {
		// ITU-T E.164: at most 15 digits.
		return fail("msisdn %q: want 1-15 digits", s.MSISDN)
	}
	if s.SIMID != "" && !simIDRE.MatchString(s.SIMID) {
		return fail("sim_id %q: want 1-64 of [A-Za-z0-9._-]", s.SIMID)
	}
	if _, err := ParseIMEILock(s.IMEILock); err != nil {
		return fail("%w", err)
	}
	if err := ValidateGroupName(s.Group); err != nil {
		return fail("%w", err)
	}
	if err := s.Status.Validate(); err != nil {
		return fail("%w", err)
	}
	return nil
}

// Validate checks that st is active or inactive.
func (st Status) Validate() error {
	switch st {
	case StatusActive, StatusInactive:
		return nil
	}
	return fmt.Errorf("status %q: want active or inactive", string(st))
}

// IMEILock is a parsed SIM IMEI lock.
type IMEILock struct {
	IMEI      string // 15 digits; "" means no lock
	Anonymous bool   // a session that reports no IMEI is still admitted
}

// ParseIMEILock parses "", "<IMEI>" or "<IMEI>|ANONYMOUS", where IMEI is 15
// digits with a valid check digit (TS 23.003 6.2.1, Annex B).
func ParseIMEILock(s string) (IMEILock, error) {
	if s == "" {
		return IMEILock{}, nil
	}
	imei, anon := strings.CutSuffix(s, AnonymousSuffix)
	if err := ValidateIMEI(imei); err != nil {
		return IMEILock{}, fmt.Errorf("imei_lock %q: %w", s, err)
	}
	return IMEILock{IMEI: imei, Anonymous: anon}, nil
}

// NormalizeIMEILock accepts what ParseIMEILock does and also a 14-digit IMEI
// (TAC and SNR), to which it appends the Luhn check digit.
func NormalizeIMEILock(s string) (string, error) {
	imei, anon := strings.CutSuffix(s, AnonymousSuffix)
	if len(imei) == 14 && isDigits(imei) {
		s = imei + string(rune('0'+IMEICheckDigit(imei)))
		if anon {
			s += AnonymousSuffix
		}
	}
	if _, err := ParseIMEILock(s); err != nil {
		return "", err
	}
	return s, nil
}

// String formats the lock as stored.
func (l IMEILock) String() string {
	if l.IMEI != "" && l.Anonymous {
		return l.IMEI + AnonymousSuffix
	}
	return l.IMEI
}

// Permits reports whether a session reporting imei (15-digit IMEI, 16-digit
// IMEISV, or "" when the UE reported none) satisfies the lock. Only TAC and
// SNR (the first 14 digits) are compared: the check digit is not sent over
// the air (TS 23.003 6.2.1) and an IMEISV carries an SVN instead.
func (l IMEILock) Permits(imei string) bool {
	switch {
	case l.IMEI == "":
		return true
	case imei == "":
		return l.Anonymous
	case len(imei) < 14:
		return false
	}
	return imei[:14] == l.IMEI[:14]
}

// ValidateIMEI checks a 15-digit IMEI and its Luhn check digit
// (TS 23.003 Annex B).
func ValidateIMEI(imei string) error {
	if len(imei) != 15 || !isDigits(imei) {
		return fmt.Errorf("IMEI %q: want 15 digits", imei)
	}
	if want := IMEICheckDigit(imei[:14]); int(imei[14]-'0') != want {
		return fmt.Errorf("IMEI %q: check digit %c, want %d", imei, imei[14], want)
	}
	return nil
}

// IMEICheckDigit computes the Luhn check digit over 14 IMEI digits
// (TS 23.003 Annex B): double every second digit from the right of the
// payload, sum the digits of the products, and take the complement mod 10.
// The argument must hold decimal digits only.
func IMEICheckDigit(digits string) int {
	sum := 0
	for i := len(digits) - 1; i >= 0; i-- {
		d := int(digits[i] - '0')
		if (len(digits)-1-i)%2 == 0 {
			d *= 2
			if d > 9 {
				d -= 9
			}
		}
		sum += d
	}
	return (10 - sum%10) % 10
}

func isDigits(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return len(s) > 0
}
