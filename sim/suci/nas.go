package suci

import (
	"fmt"
	"github.com/simgate/simgate/internal/plmn"
	"strconv"
	"strings"
	"unicode/utf8"
)

// TS 24.501 9.11.3.4: octet 4 of the 5GS mobile identity.
const (
	identityTypeSUCI = 0x01 // type of identity, bits 1-3
	identityTypeMask = 0x07
	supiFormatShift  = 4 // SUPI format, bits 5-7
	supiFormatMask   = 0x07
)

// imsiHeaderLen is octets 4 to 11 of the 5GS mobile identity for a SUCI of
// SUPI format IMSI: type, PLMN (3), routing indicator (2), scheme, key id.
const imsiHeaderLen = 8

// MarshalBinary returns the SUCI as the value of a 5GS mobile identity IE
// (TS 24.501 9.11.3.4), from octet 4 on: without the IEI and the length,
// which the NAS message encoding adds.
func (s SUCI) MarshalBinary() ([]byte, error) { return s.AppendBinary(nil) }

// AppendBinary appends the encoding [SUCI.MarshalBinary] returns to b.
func (s SUCI) AppendBinary(b []byte) ([]byte, error) {
	if err := s.Validate(); err != nil {
		return nil, err
	}
	b = append(b, byte(s.SUPIType)<<supiFormatShift|identityTypeSUCI)
	if s.SUPIType == SUPITypeNAI {
		// TS 24.501 9.11.3.4: "SUCI in NAI format" (TS 23.003 28.7.3).
		return append(b, s.naiForm()...), nil
	}
	b = appendPLMN(b, s.MCC, s.MNC)
	b = appendRoutingIndicator(b, s.RoutingIndicator)
	b = append(b, byte(s.Scheme), s.KeyID) // octet 10: spare bits 5-8 zero
	return append(b, s.SchemeOutput...), nil
}

// UnmarshalBinary reads the value of a 5GS mobile identity IE of type SUCI
// from octet 4 on (see [SUCI.MarshalBinary]). Spare bits are ignored
// (TS 24.007 11.2.4).
func (s *SUCI) UnmarshalBinary(b []byte) error {
	v, err := parseNAS(b)
	if err != nil {
		return fmt.Errorf("suci: NAS 5GS mobile identity: %w", err)
	}
	if err := v.validate(); err != nil {
		return fmt.Errorf("suci: NAS 5GS mobile identity: %w", err)
	}
	*s = v
	return nil
}

func parseNAS(b []byte) (SUCI, error) {
	if len(b) == 0 {
		return SUCI{}, fmt.Errorf("empty: %w", ErrMalformed)
	}
	if t := b[0] & identityTypeMask; t != identityTypeSUCI {
		return SUCI{}, fmt.Errorf("type of identity %d, want %d (SUCI): %w", t, identityTypeSUCI, ErrMalformed)
	}
	switch f := SUPIType(b[0] >> supiFormatShift & supiFormatMask); f {
	case SUPITypeIMSI:
		return parseNASIMSI(b)
	case SUPITypeNAI:
		return parseNAIForm(b[1:])
	default:
		return SUCI{}, fmt.Errorf("SUPI format %d: %w", f, ErrUnsupported)
	}
}

func parseNASIMSI(b []byte) (SUCI, error) {
	if len(b) <= imsiHeaderLen {
		return SUCI{}, fmt.Errorf("SUPI format IMSI: %d octets, want more than %d: %w", len(b), imsiHeaderLen, ErrMalformed)
	}
	mcc, mnc, err := decodePLMN(b[1:4])
	if err != nil {
		return SUCI{}, err
	}
	ri, err := decodeRoutingIndicator(b[4:6])
	if err != nil {
		return SUCI{}, err
	}
	return SUCI{
		SUPIType:         SUPITypeIMSI,
		MCC:              mcc,
		MNC:              mnc,
		RoutingIndicator: ri,
		Scheme:           Scheme(b[6] & 0x0f), // bits 5-8 spare
		KeyID:            b[7],
		SchemeOutput:     append([]byte(nil), b[imsiHeaderLen:]...),
	}, nil
}

// appendPLMN appends the PLMN identity (TS 24.008 10.5.1.13) of checked
// digits.
func appendPLMN(b []byte, mcc, mnc string) []byte { return plmn.Append(b, mcc, mnc) }

func decodePLMN(b []byte) (mcc, mnc string, err error) {
	if mcc, mnc, err = plmn.Decode(b); err != nil {
		return "", "", fmt.Errorf("%w: %v", ErrMalformed, err)
	}
	return mcc, mnc, nil
}

// appendRoutingIndicator: TS 24.501 9.11.3.4: four BCD digits in octets 8-9,
// digit 1 in bits 1-4 of octet 8; digits not used are 1111.
func appendRoutingIndicator(b []byte, ri string) []byte {
	var d [4]byte
	for i := range d {
		d[i] = 0xf
		if i < len(ri) {
			d[i] = ri[i] - '0'
		}
	}
	return append(b, d[1]<<4|d[0], d[3]<<4|d[2])
}

func decodeRoutingIndicator(b []byte) (string, error) {
	d := [4]byte{b[0] & 0xf, b[0] >> 4, b[1] & 0xf, b[1] >> 4}
	n := 0
	for n < 4 && d[n] != 0xf {
		n++
	}
	if n == 0 {
		return "", fmt.Errorf("routing indicator %x: digit 1 is 1111: %w", b, ErrMalformed)
	}
	out := make([]byte, n)
	for i := range d {
		switch {
		case i < n && d[i] <= 9:
			out[i] = '0' + d[i]
		case i >= n && d[i] == 0xf:
		default:
			return "", fmt.Errorf("routing indicator %x: nibble %d is %x: %w", b, i+1, d[i], ErrMalformed)
		}
	}
	return string(out), nil
}

// naiForm returns the SUCI in NAI format (TS 23.003 28.7.3), null scheme:
// type<supi type>.rid<routing indicator>.schid<scheme>.userid<username>@<realm>.
func (s SUCI) naiForm() string {
	return "type" + strconv.Itoa(int(s.SUPIType)) +
		".rid" + s.RoutingIndicator +
		".schid" + strconv.Itoa(int(s.Scheme)) +
		".userid" + string(s.SchemeOutput) +
		"@" + s.Realm
}

// parseNAIForm reads the SUCI in NAI format of a network specific identifier
// SUPI with the null scheme (TS 23.003 28.7.3).
func parseNAIForm(b []byte) (SUCI, error) {
	if !utf8.Valid(b) {
		return SUCI{}, fmt.Errorf("SUCI NAI: not UTF-8: %w", ErrMalformed)
	}
	nai := string(b)
	at := strings.LastIndexByte(nai, '@')
	if at < 0 {
		return SUCI{}, fmt.Errorf("SUCI NAI %q: no @realm: %w", nai, ErrMalformed)
	}
	user, realm := nai[:at], nai[at+1:]
	typ, user, ok1 := cutField(user, "type")
	ri, user, ok2 := cutField(user, "rid")
	sch, user, ok3 := cutField(user, "schid")
	if !ok1 || !ok2 || !ok3 {
		return SUCI{}, fmt.Errorf("SUCI NAI %q: want type<n>.rid<n>.schid<n>.: %w", nai, ErrMalformed)
	}
	if typ != "1" {
		return SUCI{}, fmt.Errorf("SUCI NAI %q: SUPI type %s: only type 1 (network specific identifier) is implemented: %w", nai, typ, ErrUnsupported)
	}
	if sch != "0" {
		return SUCI{}, fmt.Errorf("SUCI NAI %q: scheme %s: only the null scheme is implemented for NAIs: %w", nai, sch, ErrUnsupported)
	}
	username, ok := strings.CutPrefix(user, "userid")
	if !ok {
		return SUCI{}, fmt.Errorf("SUCI NAI %q: null scheme without userid: %w", nai, ErrMalformed)
	}
	return SUCI{SUPIType: SUPITypeNAI, Realm: realm, RoutingIndicator: ri, SchemeOutput: []byte(username)}, nil
}

// cutField cuts "<name><digits>." from the front of s.
func cutField(s, name string) (value, rest string, ok bool) {
	s, ok = strings.CutPrefix(s, name)
	if !ok {
		return "", "", false
	}
	value, rest, ok = strings.Cut(s, ".")
	if !ok || value == "" || !isDigits(value) {
		return "", "", false
	}
	return value, rest, true
}
