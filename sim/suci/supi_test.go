package suci

import (
	"errors"
	"testing"
)

func TestParseSUPI(t *testing.T) {
	tests := []struct {
		in     string
		mncLen int
		want   SUPI
	}{
		{"imsi-001010000000001", 2, SUPI{Type: SUPITypeIMSI, MCC: "001", MNC: "01", MSIN: "0000000001"}},
		{"imsi-001010000000001", 3, SUPI{Type: SUPITypeIMSI, MCC: "001", MNC: "010", MSIN: "000000001"}},
		{"imsi-274012001002086", 3, SUPI{Type: SUPITypeIMSI, MCC: "274", MNC: "012", MSIN: "001002086"}},
		{"imsi-2089300007487", 2, SUPI{Type: SUPITypeIMSI, MCC: "208", MNC: "93", MSIN: "00007487"}},
		{"imsi-0010112", 2, SUPI{Type: SUPITypeIMSI, MCC: "001", MNC: "01", MSIN: "12"}},
		{"nai-verylongusername1@3gpp.com", 0, SUPI{Type: SUPITypeNAI, Username: "verylongusername1", Realm: "3gpp.com"}},
		{"nai-first.last@my-net.example.org", 0, SUPI{Type: SUPITypeNAI, Username: "first.last", Realm: "my-net.example.org"}},
	}
	for _, tc := range tests {
		got, err := ParseSUPI(tc.in, tc.mncLen)
		if err != nil {
			t.Errorf("ParseSUPI(%q, %d): %v", tc.in, tc.mncLen, err)
			continue
		}
		if got != tc.want {
			t.Errorf("ParseSUPI(%q, %d) = %+v, want %+v", tc.in, tc.mncLen, got, tc.want)
		}
		if got.String() != tc.in {
			t.Errorf("String() = %q, want %q", got.String(), tc.in)
		}
	}
}

func TestParseSUPIErrors(t *testing.T) {
	tests := []struct {
		in     string
		mncLen int
	}{
		{"", 2},
		{"001010000000001", 2},       // no prefix
		{"IMSI-001010000000001", 2},  // prefix is lowercase
		{"imsi-001010000000001", 1},  // MNC length
		{"imsi-001010000000001", 4},  // MNC length
		{"imsi-0010100000000012", 2}, // 16 digits
		{"imsi-00101", 2},            // no MSIN
		{"imsi-00101000000000a", 2},  // not a digit
		{"imsi-00101 000000001", 2},  // space
		{"imsi-", 2},                 // empty
		{"nai-user", 0},              // no realm
		{"nai-@3gpp.com", 0},         // empty username
		{"nai-user@", 0},             // empty realm
		{"nai-user@com", 0},          // single-label realm
		{"nai-us@er@3gpp.com", 0},    // @ in username
		{"nai-us er@3gpp.com", 0},    // space in username
		{"nai-user.@3gpp.com", 0},    // empty username label
		{"nai-user@-3gpp.com", 0},    // label starts with a hyphen
		{"nai-user@3gpp..com", 0},    // empty realm label
		{"nai-user@3gpp_x.com", 0},   // underscore in realm
		{"nai-\xff@3gpp.com", 0},     // not UTF-8
		{"gci-something@example", 0}, // unsupported SUPI type
		{"imsi-0010112345678901", 3}, // 16 digits
	}
	for _, tc := range tests {
		if got, err := ParseSUPI(tc.in, tc.mncLen); !errors.Is(err, ErrMalformed) {
			t.Errorf("ParseSUPI(%q, %d) = %+v, %v; want ErrMalformed", tc.in, tc.mncLen, got, err)
		}
	}
}

func TestSUPIValidateType(t *testing.T) {
	if err := (SUPI{Type: 2}).Validate(); !errors.Is(err, ErrUnsupported) {
		t.Errorf("SUPI type 2: %v, want ErrUnsupported", err)
	}
	if got := (SUPI{Type: SUPITypeNAI, Username: "u", Realm: "a.b"}).IMSI(); got != "" {
		t.Errorf("IMSI() of an NAI = %q", got)
	}
}

func TestBCD(t *testing.T) {
	tests := []struct {
		digits string
		bcd    []byte
	}{
		{"001002086", []byte{0x00, 0x01, 0x20, 0x80, 0xf6}}, // TS 33.501 C.4.2.1
		{"0000000001", []byte{0x00, 0x00, 0x00, 0x00, 0x10}},
		{"1", []byte{0xf1}},
		{"12", []byte{0x21}},
		{"9876543210", []byte{0x89, 0x67, 0x45, 0x23, 0x01}},
	}
	for _, tc := range tests {
		if got := appendBCD(nil, tc.digits); string(got) != string(tc.bcd) {
			t.Errorf("appendBCD(%s) = %x, want %x", tc.digits, got, tc.bcd)
		}
		if got, err := decodeBCD(tc.bcd); err != nil || got != tc.digits {
			t.Errorf("decodeBCD(%x) = %q, %v; want %s", tc.bcd, got, err, tc.digits)
		}
	}
	for _, bad := range [][]byte{
		nil,
		{0x0a},       // low nibble not a digit
		{0xa0},       // high nibble not a digit
		{0xf1, 0x00}, // filler before the last octet
		{0x1f},       // filler in the low nibble
		{0xff},       // all filler
	} {
		if got, err := decodeBCD(bad); !errors.Is(err, ErrMalformed) {
			t.Errorf("decodeBCD(%x) = %q, %v; want ErrMalformed", bad, got, err)
		}
	}
}

func TestParseScheme(t *testing.T) {
	tests := []struct {
		in   string
		want Scheme
	}{
		{"null", SchemeNull}, {"0", SchemeNull}, {"A", SchemeProfileA}, {"a", SchemeProfileA},
		{"profile-a", SchemeProfileA}, {"1", SchemeProfileA}, {"B", SchemeProfileB},
		{"Profile-B", SchemeProfileB}, {"2", SchemeProfileB}, {"15", 15},
	}
	for _, tc := range tests {
		if got, err := ParseScheme(tc.in); err != nil || got != tc.want {
			t.Errorf("ParseScheme(%q) = %v, %v; want %v", tc.in, got, err, tc.want)
		}
	}
	for _, bad := range []string{"", "C", "16", "-1", "0x1", "ecies"} {
		if got, err := ParseScheme(bad); !errors.Is(err, ErrMalformed) {
			t.Errorf("ParseScheme(%q) = %v, %v; want ErrMalformed", bad, got, err)
		}
	}
	for s, want := range map[Scheme]string{SchemeNull: "null", SchemeProfileA: "A", SchemeProfileB: "B", 12: "12"} {
		if s.String() != want {
			t.Errorf("Scheme(%d).String() = %q, want %q", s, s.String(), want)
		}
	}
}
