package suci

import (
	"errors"
	"reflect"
	"testing"
)

// classified fails unless err wraps one of the package's sentinel errors.
func classified(t *testing.T, what string, err error) {
	t.Helper()
	for _, e := range []error{ErrMalformed, ErrUnsupported, ErrUnknownKey, ErrInvalidKey, ErrMAC} {
		if errors.Is(err, e) {
			return
		}
	}
	t.Errorf("%s: unclassified error %v", what, err)
}

// FuzzParse: the string form parser never panics, classifies its errors,
// and what it accepts formats back to itself in both forms.
func FuzzParse(f *testing.F) {
	for _, tc := range formatCases {
		f.Add(tc.str)
	}
	for _, s := range []string{
		"suci-0-274-012-0-1-1-" + specOutputA[:80],
		"suci-0-274-012-0-2-1-04" + specOutputB[2:],
		"suci-1-a-1-0-0-b.com-0-0-0-u",
		"suci-0-001-01-0-C-1-AB",
		"suci-1--0-0-0-",
		"suci-0-----",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, in string) {
		s, err := Parse(in)
		if err != nil {
			classified(t, "Parse", err)
			return
		}
		if err := s.Validate(); err != nil {
			t.Fatalf("Parse(%q) returned an invalid SUCI: %v", in, err)
		}
		back, err := Parse(s.String())
		if err != nil || !reflect.DeepEqual(back, s) {
			t.Fatalf("Parse(%q) = %+v; its String %q parses to %+v, %v", in, s, s.String(), back, err)
		}
		nas, err := s.MarshalBinary()
		if err != nil {
			t.Fatalf("MarshalBinary of parsed %q: %v", in, err)
		}
		var fromNAS SUCI
		if err := fromNAS.UnmarshalBinary(nas); err != nil || !reflect.DeepEqual(fromNAS, s) {
			t.Fatalf("NAS round trip of %q: %+v, %v", in, fromNAS, err)
		}
	})
}

// FuzzUnmarshalBinary: the NAS form parser never panics, classifies its
// errors, and what it accepts encodes back to an equal SUCI.
func FuzzUnmarshalBinary(f *testing.F) {
	for _, tc := range formatCases {
		f.Add(tc.nas)
	}
	f.Add(mustHex("89" + "722410" + "f0ff" + "f1" + "01" + specOutputA))
	f.Add(mustHex("01" + "722410" + "f1f2" + "0000" + "00012080f6"))
	f.Add([]byte("\x11type1.rid0.schid0.userid@"))
	f.Add([]byte{0x01})
	f.Fuzz(func(t *testing.T, b []byte) {
		var s SUCI
		if err := s.UnmarshalBinary(b); err != nil {
			classified(t, "UnmarshalBinary", err)
			return
		}
		if err := s.Validate(); err != nil {
			t.Fatalf("UnmarshalBinary(%x) returned an invalid SUCI: %v", b, err)
		}
		nas, err := s.MarshalBinary()
		if err != nil {
			t.Fatalf("MarshalBinary of %+v: %v", s, err)
		}
		var back SUCI
		if err := back.UnmarshalBinary(nas); err != nil || !reflect.DeepEqual(back, s) {
			t.Fatalf("NAS round trip of %x: %x gives %+v, %v", b, nas, back, err)
		}
		str, err := s.MarshalText()
		if err != nil {
			t.Fatalf("MarshalText of %+v: %v", s, err)
		}
		fromStr, err := Parse(string(str))
		if err != nil {
			t.Fatalf("Parse(%q): %v", str, err)
		}
		// An NAI realm and username may both hold "-<digits>-<x>-<digits>-",
		// which makes the string form ambiguous; IMSI SUCIs are not.
		if s.SUPIType == SUPITypeIMSI && !reflect.DeepEqual(fromStr, s) {
			t.Fatalf("string round trip of %x: %q gives %+v", b, str, fromStr)
		}
	})
}

// FuzzDeconceal: de-concealing any scheme output with the TS 33.501 C.4
// keys never panics and fails with a classified error unless the MAC
// verifies.
func FuzzDeconceal(f *testing.F) {
	f.Add(false, mustHex(specOutputA))
	f.Add(true, mustHex(specOutputB))
	f.Add(false, mustHex(specOutputA[:82]))
	f.Add(true, mustHex("04"+specOutputB[2:]))
	f.Add(false, append(mustHex(x25519LowOrder[2]), make([]byte, 9)...))
	keyA, err := ParsePrivateKey(SchemeProfileA, "c53c22208b61860b06c62e5406a7b330c2b577aa5558981510d128247d38bd1d")
	if err != nil {
		f.Fatal(err)
	}
	keyB, err := ParsePrivateKey(SchemeProfileB, "f1ab1074477ebcc7f554ea1c5fc368b1616730155e0041ac447d6301975fecda")
	if err != nil {
		f.Fatal(err)
	}
	keys := Keys{1: keyA, 2: keyB}
	f.Fuzz(func(t *testing.T, profileB bool, out []byte) {
		s := SUCI{MCC: "274", MNC: "012", RoutingIndicator: "0", Scheme: SchemeProfileA, KeyID: 1, SchemeOutput: out}
		if profileB {
			s.Scheme, s.KeyID = SchemeProfileB, 2
		}
		supi, err := keys.Deconceal(s)
		if err != nil {
			classified(t, "Deconceal", err)
			return
		}
		if err := supi.Validate(); err != nil || supi.MCC != "274" || supi.MNC != "012" {
			t.Fatalf("Deconceal(%x) = %+v (%v)", out, supi, err)
		}
	})
}
