package suci

import (
	"fmt"
	"strings"
	"unicode/utf8"
)

// maxIMSIDigits is the IMSI's maximum length (TS 23.003 2.2).
const maxIMSIDigits = 15

// SUPI is a Subscription Permanent Identifier (TS 23.003 2.2A): an IMSI split
// into MCC, MNC and MSIN, or a network specific identifier username@realm.
type SUPI struct {
	Type SUPIType

	// Type IMSI.
	MCC  string // 3 digits
	MNC  string // 2 or 3 digits
	MSIN string // the rest, 15 digits in all at most

	// Type NAI (network specific identifier).
	Username string
	Realm    string
}

// NewIMSI splits an IMSI given as digits into MCC, MNC (mncLen digits, 2 or
// 3) and MSIN. The IMSI does not say how long its MNC is; the SIM does (EF_AD,
// TS 31.102 4.2.18), and so does the subscriber record.
func NewIMSI(imsi string, mncLen int) (SUPI, error) {
	if mncLen != 2 && mncLen != 3 {
		return SUPI{}, fmt.Errorf("suci: IMSI %q: MNC length %d, want 2 or 3: %w", imsi, mncLen, ErrMalformed)
	}
	if len(imsi) <= 3+mncLen {
		return SUPI{}, fmt.Errorf("suci: IMSI %q: too short for MCC, a %d-digit MNC and an MSIN: %w", imsi, mncLen, ErrMalformed)
	}
	s := SUPI{Type: SUPITypeIMSI, MCC: imsi[:3], MNC: imsi[3 : 3+mncLen], MSIN: imsi[3+mncLen:]}
	if err := s.Validate(); err != nil {
		return SUPI{}, err
	}
	return s, nil
}

// ParseSUPI reads the SUPI string form of TS 23.003 2.2A / TS 29.571:
// "imsi-<digits>" (split with an MNC of mncLen digits, see [NewIMSI]) or
// "nai-<username>@<realm>" (mncLen is then ignored).
func ParseSUPI(s string, mncLen int) (SUPI, error) {
	if d, ok := strings.CutPrefix(s, "imsi-"); ok {
		return NewIMSI(d, mncLen)
	}
	if n, ok := strings.CutPrefix(s, "nai-"); ok {
		i := strings.LastIndexByte(n, '@')
		if i < 0 {
			return SUPI{}, fmt.Errorf("suci: SUPI %q: NAI without @realm: %w", s, ErrMalformed)
		}
		supi := SUPI{Type: SUPITypeNAI, Username: n[:i], Realm: n[i+1:]}
		if err := supi.Validate(); err != nil {
			return SUPI{}, err
		}
		return supi, nil
	}
	return SUPI{}, fmt.Errorf("suci: SUPI %q: want imsi-<digits> or nai-<user>@<realm>: %w", s, ErrMalformed)
}

// IMSI returns MCC, MNC and MSIN as one string of digits; "" if the SUPI is
// not an IMSI.
func (s SUPI) IMSI() string {
	if s.Type != SUPITypeIMSI {
		return ""
	}
	return s.MCC + s.MNC + s.MSIN
}

// String returns "imsi-<digits>" or "nai-<username>@<realm>" (TS 23.003 2.2A).
func (s SUPI) String() string {
	switch s.Type {
	case SUPITypeIMSI:
		return "imsi-" + s.IMSI()
	case SUPITypeNAI:
		return "nai-" + s.Username + "@" + s.Realm
	}
	return fmt.Sprintf("supi-type-%d", s.Type)
}

// Validate checks the fields of the SUPI's type.
func (s SUPI) Validate() error {
	if err := s.validate(); err != nil {
		return fmt.Errorf("suci: %w", err)
	}
	return nil
}

func (s SUPI) validate() error {
	switch s.Type {
	case SUPITypeIMSI:
		if err := checkPLMN(s.MCC, s.MNC); err != nil {
			return fmt.Errorf("SUPI imsi-%s: %w", s.IMSI(), err)
		}
		if err := checkMSIN(s.MSIN, len(s.MNC)); err != nil {
			return fmt.Errorf("SUPI imsi-%s: %w", s.IMSI(), err)
		}
	case SUPITypeNAI:
		if err := checkUsername(s.Username); err != nil {
			return fmt.Errorf("SUPI %q: %w", s.String(), err)
		}
		if err := checkRealm(s.Realm); err != nil {
			return fmt.Errorf("SUPI %q: %w", s.String(), err)
		}
	default:
		return fmt.Errorf("SUPI type %d: %w", s.Type, ErrUnsupported)
	}
	return nil
}

func isDigits(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}

// checkPLMN: TS 23.003 2.2: MCC of 3 digits, MNC of 2 or 3.
func checkPLMN(mcc, mnc string) error {
	if len(mcc) != 3 || !isDigits(mcc) {
		return fmt.Errorf("MCC %q: want 3 digits: %w", mcc, ErrMalformed)
	}
	if (len(mnc) != 2 && len(mnc) != 3) || !isDigits(mnc) {
		return fmt.Errorf("MNC %q: want 2 or 3 digits: %w", mnc, ErrMalformed)
	}
	return nil
}

// checkMSIN: TS 23.003 2.2: the IMSI has 15 digits at most.
func checkMSIN(msin string, mncLen int) error {
	if msin == "" || !isDigits(msin) {
		return fmt.Errorf("MSIN %q: want decimal digits: %w", msin, ErrMalformed)
	}
	if 3+mncLen+len(msin) > maxIMSIDigits {
		return fmt.Errorf("MSIN %q: IMSI longer than %d digits: %w", msin, maxIMSIDigits, ErrMalformed)
	}
	return nil
}

// checkUsername accepts an RFC 7542 2.2 username: dot-separated non-empty
// runs of characters other than controls, space and ()<>[]\,;:@".
func checkUsername(u string) error {
	if u == "" || !utf8.ValidString(u) {
		return fmt.Errorf("NAI username %q: empty or not UTF-8: %w", u, ErrMalformed)
	}
	for _, label := range strings.Split(u, ".") {
		if label == "" {
			return fmt.Errorf("NAI username %q: empty dot-separated part: %w", u, ErrMalformed)
		}
	}
	for _, r := range u {
		if r <= ' ' || r == 0x7f || strings.ContainsRune(`()<>[]\,;:@"`, r) {
			return fmt.Errorf("NAI username %q: character %q not allowed: %w", u, r, ErrMalformed)
		}
	}
	return nil
}

// checkRealm accepts an RFC 7542 2.2 realm restricted to ASCII: two or more
// dot-separated labels of letters, digits and inner hyphens.
func checkRealm(r string) error {
	labels := strings.Split(r, ".")
	if len(labels) < 2 {
		return fmt.Errorf("NAI realm %q: want two labels or more: %w", r, ErrMalformed)
	}
	for _, l := range labels {
		if l == "" || len(l) > 63 || l[0] == '-' || l[len(l)-1] == '-' {
			return fmt.Errorf("NAI realm %q: bad label %q: %w", r, l, ErrMalformed)
		}
		for i := 0; i < len(l); i++ {
			c := l[i]
			if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '-') {
				return fmt.Errorf("NAI realm %q: character %q not allowed: %w", r, c, ErrMalformed)
			}
		}
	}
	return nil
}

// appendBCD packs decimal digits two to an octet, the first digit of each
// pair in bits 1-4, and fills an odd last octet's bits 5-8 with 1111
// (TS 24.501 Figure 9.11.3.4.3a; TS 33.501 C.3.1). digits must be decimal.
func appendBCD(dst []byte, digits string) []byte {
	for i := 0; i < len(digits); i += 2 {
		b := digits[i] - '0'
		if i+1 < len(digits) {
			b |= (digits[i+1] - '0') << 4
		} else {
			b |= 0xf0
		}
		dst = append(dst, b)
	}
	return dst
}

// decodeBCD is the inverse of appendBCD: every nibble must be a decimal
// digit except the last octet's bits 5-8, which may be the filler 1111.
func decodeBCD(b []byte) (string, error) {
	if len(b) == 0 {
		return "", fmt.Errorf("BCD: no octets: %w", ErrMalformed)
	}
	out := make([]byte, 0, 2*len(b))
	for i, o := range b {
		lo, hi := o&0x0f, o>>4
		if lo > 9 {
			return "", fmt.Errorf("BCD: octet %d (%02x): nibble %x is not a digit: %w", i, o, lo, ErrMalformed)
		}
		out = append(out, '0'+lo)
		if hi == 0xf && i == len(b)-1 {
			break
		}
		if hi > 9 {
			return "", fmt.Errorf("BCD: octet %d (%02x): nibble %x is not a digit: %w", i, o, hi, ErrMalformed)
		}
		out = append(out, '0'+hi)
	}
	return string(out), nil
}
