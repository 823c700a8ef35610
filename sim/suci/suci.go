package suci

import (
	"encoding/hex"
	"fmt"
	"strconv"
	"strings"
)

// SUCI is a Subscription Concealed Identifier (TS 33.501 6.12.2, TS 23.003
// 2.2B).
type SUCI struct {
	SUPIType SUPIType

	// Home network identifier: MCC and MNC for type IMSI, the realm for
	// type NAI.
	MCC   string
	MNC   string
	Realm string

	// RoutingIndicator is 1 to 4 decimal digits, each significant ("012"
	// differs from "12"); "0" when none is provisioned (TS 23.003 2.2B).
	RoutingIndicator string

	Scheme Scheme
	// KeyID is the home network public key identifier: 0 with the null
	// scheme and only then (TS 23.003 2.2B).
	KeyID uint8

	// SchemeOutput is the scheme output as octets. Null scheme, IMSI: the
	// MSIN in BCD (TS 24.501 9.11.3.4); null scheme, NAI: the username;
	// ECIES: ephemeral public key || ciphertext || MAC tag (TS 33.501
	// C.3.2); other schemes: opaque.
	SchemeOutput []byte
}

// DefaultRoutingIndicator is the routing indicator of a USIM that has none
// provisioned (TS 23.003 2.2B).
const DefaultRoutingIndicator = "0"

// checkRoutingIndicator: TS 23.003 2.2B: 1 to 4 decimal digits.
func checkRoutingIndicator(ri string) error {
	if len(ri) < 1 || len(ri) > 4 || !isDigits(ri) {
		return fmt.Errorf("routing indicator %q: want 1 to 4 digits: %w", ri, ErrMalformed)
	}
	return nil
}

// Validate checks that the SUCI is well formed: home network identifier,
// routing indicator, scheme and key identifier, and the scheme output's
// shape (lengths, BCD, point encoding). It does not decrypt anything.
func (s SUCI) Validate() error {
	if err := s.validate(); err != nil {
		return fmt.Errorf("suci: %w", err)
	}
	return nil
}

func (s SUCI) validate() error {
	switch s.SUPIType {
	case SUPITypeIMSI:
		if err := checkPLMN(s.MCC, s.MNC); err != nil {
			return err
		}
	case SUPITypeNAI:
		if err := checkRealm(s.Realm); err != nil {
			return err
		}
		if s.Scheme != SchemeNull {
			return fmt.Errorf("NAI SUPI with scheme %v: only the null scheme is implemented for NAIs: %w", s.Scheme, ErrUnsupported)
		}
	default:
		return fmt.Errorf("SUPI type %d: %w", s.SUPIType, ErrUnsupported)
	}
	if err := checkRoutingIndicator(s.RoutingIndicator); err != nil {
		return err
	}
	if s.Scheme > maxScheme {
		return fmt.Errorf("protection scheme %d > 15: %w", s.Scheme, ErrMalformed)
	}
	// TS 23.003 2.2B: the key identifier is 0 if and only if the null
	// scheme is used.
	if (s.Scheme == SchemeNull) != (s.KeyID == 0) {
		return fmt.Errorf("scheme %v with home network public key identifier %d: want 0 exactly for the null scheme: %w",
			s.Scheme, s.KeyID, ErrMalformed)
	}
	return s.checkOutput()
}

func (s SUCI) checkOutput() error {
	out := s.SchemeOutput
	switch {
	case s.Scheme == SchemeNull && s.SUPIType == SUPITypeIMSI:
		msin, err := decodeBCD(out)
		if err != nil {
			return fmt.Errorf("null-scheme output (MSIN): %w", err)
		}
		if err := checkMSIN(msin, len(s.MNC)); err != nil {
			return fmt.Errorf("null-scheme output: %w", err)
		}
	case s.Scheme == SchemeNull:
		if err := checkUsername(string(out)); err != nil {
			return fmt.Errorf("null-scheme output: %w", err)
		}
	case s.Scheme.ecies():
		n := ephemeralKeyLen(s.Scheme)
		if len(out) < n+1+macLen {
			return fmt.Errorf("%v scheme output of %d octets, want at least %d: %w", s.Scheme, len(out), n+1+macLen, ErrMalformed)
		}
		if s.Scheme == SchemeProfileB && out[0] != 0x02 && out[0] != 0x03 {
			return fmt.Errorf("B scheme output: ephemeral key prefix %02x, want compressed (02 or 03): %w", out[0], ErrMalformed)
		}
	default:
		if len(out) == 0 {
			return fmt.Errorf("scheme %v: empty scheme output: %w", s.Scheme, ErrMalformed)
		}
	}
	return nil
}

// String returns the SUCI's string form (see [SUCI.MarshalText]), or a
// description of what is wrong with it.
func (s SUCI) String() string {
	b, err := s.MarshalText()
	if err != nil {
		return fmt.Sprintf("<invalid SUCI: %v>", err)
	}
	return string(b)
}

// MarshalText returns the string form of TS 23.003 2.2B and TS 29.503:
//
//	suci-0-<mcc>-<mnc>-<routing>-<scheme>-<key id>-<output>   (type IMSI)
//	suci-1-<realm>-<routing>-0-0-<username>                  (type NAI, null scheme)
//
// The scheme is one hex digit, the key identifier decimal; the output is the
// MSIN's digits for the null scheme and lowercase hex otherwise.
func (s SUCI) MarshalText() ([]byte, error) {
	if err := s.Validate(); err != nil {
		return nil, err
	}
	b := make([]byte, 0, 32+2*len(s.SchemeOutput))
	b = append(b, "suci-"...)
	b = strconv.AppendUint(b, uint64(s.SUPIType), 10)
	b = append(b, '-')
	if s.SUPIType == SUPITypeNAI {
		b = append(b, s.Realm...)
	} else {
		b = append(b, s.MCC...)
		b = append(b, '-')
		b = append(b, s.MNC...)
	}
	b = append(b, '-')
	b = append(b, s.RoutingIndicator...)
	b = append(b, '-')
	b = strconv.AppendUint(b, uint64(s.Scheme), 16)
	b = append(b, '-')
	b = strconv.AppendUint(b, uint64(s.KeyID), 10)
	b = append(b, '-')
	switch {
	case s.Scheme == SchemeNull && s.SUPIType == SUPITypeIMSI:
		msin, _ := decodeBCD(s.SchemeOutput) // checked by Validate
		b = append(b, msin...)
	case s.Scheme == SchemeNull:
		b = append(b, s.SchemeOutput...)
	default:
		b = hex.AppendEncode(b, s.SchemeOutput)
	}
	return b, nil
}

// UnmarshalText parses the string form (see [Parse]) into s.
func (s *SUCI) UnmarshalText(b []byte) error {
	v, err := Parse(string(b))
	if err != nil {
		return err
	}
	*s = v
	return nil
}

// Parse reads the string form of a SUCI (see [SUCI.MarshalText]). Hex scheme
// outputs may be in either case. An NAI realm may contain hyphens: it ends at
// the first "-<routing>-<scheme>-<key id>-" that follows it.
func Parse(str string) (SUCI, error) {
	rest, ok := strings.CutPrefix(str, "suci-")
	if !ok || len(rest) < 2 || rest[1] != '-' {
		return SUCI{}, fmt.Errorf("suci: %q: want suci-<type>-...: %w", str, ErrMalformed)
	}
	var s SUCI
	var err error
	switch rest[0] {
	case '0':
		s, err = parseIMSIText(rest[2:])
	case '1':
		s, err = parseNAIText(rest[2:])
	default:
		err = fmt.Errorf("SUPI type %q: %w", rest[0], ErrUnsupported)
	}
	if err != nil {
		return SUCI{}, fmt.Errorf("suci: %q: %w", str, err)
	}
	if err := s.validate(); err != nil {
		return SUCI{}, fmt.Errorf("suci: %q: %w", str, err)
	}
	return s, nil
}

// parseIMSIText reads <mcc>-<mnc>-<routing>-<scheme>-<key id>-<output>.
func parseIMSIText(rest string) (SUCI, error) {
	f := strings.Split(rest, "-")
	if len(f) != 6 {
		return SUCI{}, fmt.Errorf("%d fields after the SUPI type, want 6 (mcc, mnc, routing indicator, scheme, key id, output): %w", len(f), ErrMalformed)
	}
	s := SUCI{SUPIType: SUPITypeIMSI, MCC: f[0], MNC: f[1], RoutingIndicator: f[2]}
	var err error
	if s.Scheme, err = parseSchemeDigit(f[3]); err != nil {
		return SUCI{}, err
	}
	if s.KeyID, err = parseKeyID(f[4]); err != nil {
		return SUCI{}, err
	}
	if s.Scheme == SchemeNull {
		// The null-scheme output is the MSIN itself (TS 33.501 C.2).
		if f[5] == "" || !isDigits(f[5]) {
			return SUCI{}, fmt.Errorf("null-scheme output %q: want the MSIN's digits: %w", f[5], ErrMalformed)
		}
		s.SchemeOutput = appendBCD(nil, f[5])
		return s, nil
	}
	if s.SchemeOutput, err = hex.DecodeString(f[5]); err != nil || len(f[5]) == 0 {
		return SUCI{}, fmt.Errorf("scheme output %q: want hex: %w", f[5], ErrMalformed)
	}
	return s, nil
}

// parseNAIText reads <realm>-<routing>-<scheme>-<key id>-<username>. Realm
// and username may both contain hyphens; the first split that gives a valid
// SUCI wins, else the first split's error is returned.
func parseNAIText(rest string) (SUCI, error) {
	var firstErr error
	for i := 1; i < len(rest); i++ {
		if rest[i] != '-' {
			continue
		}
		f := strings.SplitN(rest[i+1:], "-", 4)
		if len(f) != 4 || checkRoutingIndicator(f[0]) != nil {
			continue
		}
		scheme, err1 := parseSchemeDigit(f[1])
		keyID, err2 := parseKeyID(f[2])
		if err1 != nil || err2 != nil {
			continue
		}
		s := SUCI{SUPIType: SUPITypeNAI, Realm: rest[:i], RoutingIndicator: f[0], Scheme: scheme, KeyID: keyID, SchemeOutput: []byte(f[3])}
		err := s.validate()
		if err == nil {
			return s, nil
		}
		if firstErr == nil {
			firstErr = err
		}
	}
	if firstErr != nil {
		return SUCI{}, firstErr
	}
	return SUCI{}, fmt.Errorf("NAI SUCI: want <realm>-<routing>-<scheme>-<key id>-<username>: %w", ErrMalformed)
}

// parseSchemeDigit reads the protection scheme as one hex digit (TS 29.503).
func parseSchemeDigit(f string) (Scheme, error) {
	if len(f) == 1 {
		if v, err := strconv.ParseUint(f, 16, 8); err == nil {
			return Scheme(v), nil
		}
	}
	return 0, fmt.Errorf("protection scheme %q: want one hex digit: %w", f, ErrMalformed)
}

// parseKeyID reads the home network public key identifier: decimal 0 to 255
// without leading zeros (TS 29.503).
func parseKeyID(f string) (uint8, error) {
	v, err := strconv.ParseUint(f, 10, 8)
	if err != nil || len(f) > 1 && f[0] == '0' {
		return 0, fmt.Errorf("home network public key identifier %q: want 0 to 255: %w", f, ErrMalformed)
	}
	return uint8(v), nil
}
