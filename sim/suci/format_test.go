package suci

import (
	"bytes"
	"encoding/hex"
	"errors"
	"reflect"
	"strings"
	"testing"
)

// Scheme outputs of TS 33.501 C.4.3.1 (Profile A) and C.4.4.1 (Profile B).
const (
	specOutputA = "b2e92f836055a255837debf850b528997ce0201cb82adfe4be1f587d07d8457dcb02352410cddd9e730ef3fa87"
	specOutputB = "039aab8376597021e855679a9778ea0b67396e68c66df32c0f41e9acca2da9b9d146a33fc2716ac7dae96aa30a4d"
)

func mustHex(s string) []byte {
	b, err := hex.DecodeString(s)
	if err != nil {
		panic(err)
	}
	return b
}

// formatCases are SUCIs with their string and NAS forms, the NAS octets
// assembled by hand from TS 24.501 Figure 9.11.3.4.3.
var formatCases = []struct {
	name string
	str  string
	nas  []byte
	suci SUCI
}{
	{
		name: "null, 3-digit MNC (C.4.2.1)",
		str:  "suci-0-274-012-0-0-0-001002086",
		nas:  mustHex("01" + "722410" + "f0ff" + "00" + "00" + "00012080f6"),
		suci: SUCI{MCC: "274", MNC: "012", RoutingIndicator: "0", SchemeOutput: mustHex("00012080f6")},
	},
	{
		name: "null, 2-digit MNC, 4-digit routing indicator",
		str:  "suci-0-208-93-1234-0-0-00007487",
		nas:  mustHex("01" + "02f839" + "2143" + "00" + "00" + "00004778"),
		suci: SUCI{MCC: "208", MNC: "93", RoutingIndicator: "1234", SchemeOutput: mustHex("00004778")},
	},
	{
		name: "Profile A (C.4.3.1), routing indicator 012",
		str:  "suci-0-274-012-012-1-1-" + specOutputA,
		nas:  mustHex("01" + "722410" + "10f2" + "01" + "01" + specOutputA),
		suci: SUCI{MCC: "274", MNC: "012", RoutingIndicator: "012", Scheme: SchemeProfileA, KeyID: 1, SchemeOutput: mustHex(specOutputA)},
	},
	{
		name: "Profile B (C.4.4.1), key id 255",
		str:  "suci-0-001-01-0-2-255-" + specOutputB,
		nas:  mustHex("01" + "00f110" + "f0ff" + "02" + "ff" + specOutputB),
		suci: SUCI{MCC: "001", MNC: "01", RoutingIndicator: "0", Scheme: SchemeProfileB, KeyID: 255, SchemeOutput: mustHex(specOutputB)},
	},
	{
		name: "HPLMN proprietary scheme 12, opaque output",
		str:  "suci-0-001-01-7-c-9-00ff",
		nas:  mustHex("01" + "00f110" + "f7ff" + "0c" + "09" + "00ff"),
		suci: SUCI{MCC: "001", MNC: "01", RoutingIndicator: "7", Scheme: 12, KeyID: 9, SchemeOutput: mustHex("00ff")},
	},
	{
		name: "NAI, null scheme (C.4.2.2)",
		str:  "suci-1-3gpp.com-0-0-0-verylongusername1",
		nas:  append([]byte{0x11}, "type1.rid0.schid0.useridverylongusername1@3gpp.com"...),
		suci: SUCI{SUPIType: SUPITypeNAI, Realm: "3gpp.com", RoutingIndicator: "0", SchemeOutput: []byte("verylongusername1")},
	},
	{
		name: "NAI with hyphens in realm and username",
		str:  "suci-1-my-net.example.org-42-0-0-a-0-0-b",
		nas:  append([]byte{0x11}, "type1.rid42.schid0.userida-0-0-b@my-net.example.org"...),
		suci: SUCI{SUPIType: SUPITypeNAI, Realm: "my-net.example.org", RoutingIndicator: "42", SchemeOutput: []byte("a-0-0-b")},
	},
}

func TestFormats(t *testing.T) {
	for _, tc := range formatCases {
		t.Run(tc.name, func(t *testing.T) {
			got, err := Parse(tc.str)
			if err != nil {
				t.Fatalf("Parse: %v", err)
			}
			if !reflect.DeepEqual(got, tc.suci) {
				t.Errorf("Parse = %+v\nwant %+v", got, tc.suci)
			}
			if s := tc.suci.String(); s != tc.str {
				t.Errorf("String = %s\nwant %s", s, tc.str)
			}
			nas, err := tc.suci.MarshalBinary()
			if err != nil {
				t.Fatalf("MarshalBinary: %v", err)
			}
			if !bytes.Equal(nas, tc.nas) {
				t.Errorf("MarshalBinary = %x\nwant %x", nas, tc.nas)
			}
			var fromNAS SUCI
			if err := fromNAS.UnmarshalBinary(tc.nas); err != nil {
				t.Fatalf("UnmarshalBinary: %v", err)
			}
			if !reflect.DeepEqual(fromNAS, tc.suci) {
				t.Errorf("UnmarshalBinary = %+v\nwant %+v", fromNAS, tc.suci)
			}
			prefix := []byte{0x7e, 0x00}
			app, err := tc.suci.AppendBinary(bytes.Clone(prefix))
			if err != nil || !bytes.Equal(app, append(prefix, tc.nas...)) {
				t.Errorf("AppendBinary = %x, %v", app, err)
			}
			var fromText SUCI
			if err := fromText.UnmarshalText([]byte(tc.str)); err != nil || !reflect.DeepEqual(fromText, tc.suci) {
				t.Errorf("UnmarshalText = %+v, %v", fromText, err)
			}
		})
	}
}

func TestParseUppercaseHex(t *testing.T) {
	got, err := Parse("suci-0-274-012-0-1-1-" + strings.ToUpper(specOutputA))
	if err != nil {
		t.Fatal(err)
	}
	if hex.EncodeToString(got.SchemeOutput) != specOutputA || got.Scheme != SchemeProfileA {
		t.Errorf("Parse upper case = %+v", got)
	}
	if got, err := Parse("suci-0-001-01-0-C-1-00"); err != nil || got.Scheme != 12 {
		t.Errorf("scheme C: %+v, %v", got, err)
	}
}

func TestParseErrors(t *testing.T) {
	a := "-" + specOutputA
	tests := []struct {
		in   string
		want error
	}{
		{"", ErrMalformed},
		{"suci", ErrMalformed},
		{"suci-", ErrMalformed},
		{"suci-0", ErrMalformed},
		{"SUCI-0-274-012-0-0-0-001002086", ErrMalformed},
		{"imsi-274012001002086", ErrMalformed},
		{"suci-00-274-012-0-0-0-001002086", ErrMalformed},
		{"suci-0-274-012-0-0-0", ErrMalformed},                     // 5 fields
		{"suci-0-274-012-0-0-0-001002086-1", ErrMalformed},         // 7 fields
		{"suci-0-27-012-0-0-0-001002086", ErrMalformed},            // MCC
		{"suci-0-27a-012-0-0-0-001002086", ErrMalformed},           // MCC
		{"suci-0-274-0123-0-0-0-001002086", ErrMalformed},          // MNC
		{"suci-0-274-1-0-0-0-001002086", ErrMalformed},             // MNC
		{"suci-0-274-012--0-0-001002086", ErrMalformed},            // routing indicator
		{"suci-0-274-012-12345-0-0-001002086", ErrMalformed},       // routing indicator
		{"suci-0-274-012-1a-0-0-001002086", ErrMalformed},          // routing indicator
		{"suci-0-274-012-0--0-001002086", ErrMalformed},            // scheme
		{"suci-0-274-012-0-10-1-00", ErrMalformed},                 // scheme: one hex digit
		{"suci-0-274-012-0-g-1-00", ErrMalformed},                  // scheme
		{"suci-0-274-012-0-1--" + specOutputA, ErrMalformed},       // key id
		{"suci-0-274-012-0-1-256" + a, ErrMalformed},               // key id
		{"suci-0-274-012-0-1-01" + a, ErrMalformed},                // key id leading zero
		{"suci-0-274-012-0-1-+1" + a, ErrMalformed},                // key id sign
		{"suci-0-274-012-0-1-0" + a, ErrMalformed},                 // ECIES with key id 0
		{"suci-0-274-012-0-0-1-001002086", ErrMalformed},           // null with key id 1
		{"suci-0-274-012-0-0-0-", ErrMalformed},                    // null: empty MSIN
		{"suci-0-274-012-0-0-0-00100208a", ErrMalformed},           // null: not digits
		{"suci-0-274-012-0-0-0-0010020861", ErrMalformed},          // null: IMSI of 16 digits
		{"suci-0-274-012-0-1-1-" + specOutputA[1:], ErrMalformed},  // odd hex
		{"suci-0-274-012-0-1-1-" + specOutputA[:80], ErrMalformed}, // A: no ciphertext
		{"suci-0-274-012-0-1-1-zz", ErrMalformed},
		{"suci-0-274-012-0-2-1-" + specOutputA, ErrMalformed}, // B: prefix b2
		{"suci-0-274-012-0-2-1-04" + specOutputB[2:], ErrMalformed},
		{"suci-0-274-012-0-2-1-" + specOutputB[:82], ErrMalformed}, // B: no ciphertext
		{"suci-0-274-012-0-c-1-", ErrMalformed},                    // proprietary: empty
		{"suci-1-3gpp.com-0-0-0-", ErrMalformed},                   // NAI: empty username
		{"suci-1-3gpp.com-0-0-0-a@b", ErrMalformed},                // NAI: @ in username
		{"suci-1-3gpp-0-0-0-user", ErrMalformed},                   // NAI: one-label realm
		{"suci-1-3gpp.com", ErrMalformed},
		{"suci-1-3gpp.com-0-0-1-user", ErrMalformed}, // NAI null with key id 1
		{"suci-1-3gpp.com-0-1-1-abcdef", ErrUnsupported},
		{"suci-2-3gpp.com-0-0-0-user", ErrUnsupported},
		{"suci-7-x", ErrUnsupported},
	}
	for _, tc := range tests {
		got, err := Parse(tc.in)
		if !errors.Is(err, tc.want) {
			t.Errorf("Parse(%q) = %+v, %v; want %v", tc.in, got, err, tc.want)
		}
		var s SUCI
		if err := s.UnmarshalText([]byte(tc.in)); err == nil {
			t.Errorf("UnmarshalText(%q) succeeded", tc.in)
		}
	}
}

func TestUnmarshalBinary(t *testing.T) {
	// Spare bits (octet 4 bits 4 and 8, octet 10 bits 5-8) are ignored.
	spare := mustHex("89" + "722410" + "f0ff" + "f1" + "01" + specOutputA)
	var s SUCI
	if err := s.UnmarshalBinary(spare); err != nil {
		t.Fatal(err)
	}
	want := SUCI{MCC: "274", MNC: "012", RoutingIndicator: "0", Scheme: SchemeProfileA, KeyID: 1, SchemeOutput: mustHex(specOutputA)}
	if !reflect.DeepEqual(s, want) {
		t.Errorf("UnmarshalBinary with spare bits = %+v", s)
	}
	// The result does not alias the input.
	spare[len(spare)-1] ^= 0xff
	if s.SchemeOutput[len(s.SchemeOutput)-1] == spare[len(spare)-1] {
		t.Error("SchemeOutput aliases the input")
	}
}

func TestUnmarshalBinaryErrors(t *testing.T) {
	hdr := "01" + "722410" + "f0ff"
	tests := []struct {
		name string
		in   []byte
		want error
	}{
		{"empty", nil, ErrMalformed},
		{"5G-GUTI", mustHex("02" + "722410" + "f0ff" + "0000" + "00012080f6"), ErrMalformed},
		{"no identity", mustHex("00"), ErrMalformed},
		{"SUPI format GCI", mustHex("21" + "722410" + "f0ff" + "0000" + "00012080f6"), ErrUnsupported},
		{"header only", mustHex(hdr + "0000"), ErrMalformed},
		{"truncated header", mustHex("01" + "7224"), ErrMalformed},
		{"type octet only", mustHex("01"), ErrMalformed},
		{"MCC not BCD", mustHex("01" + "7a2410" + "f0ff" + "0000" + "00012080f6"), ErrMalformed},
		{"MNC digit 1 filler", mustHex("01" + "72241f" + "f0ff" + "0000" + "00012080f6"), ErrMalformed},
		{"routing indicator absent", mustHex("01" + "722410" + "ffff" + "0000" + "00012080f6"), ErrMalformed},
		{"routing indicator gap", mustHex("01" + "722410" + "f1f2" + "0000" + "00012080f6"), ErrMalformed},
		{"routing indicator not BCD", mustHex("01" + "722410" + "fa" + "ff" + "0000" + "00012080f6"), ErrMalformed},
		{"null output not BCD", mustHex(hdr + "0000" + "0a"), ErrMalformed},
		{"null output filler inside", mustHex(hdr + "0000" + "f000"), ErrMalformed},
		{"null output IMSI too long", mustHex(hdr + "0000" + "000000000000"), ErrMalformed},
		{"null with key id", mustHex(hdr + "0001" + "00012080f6"), ErrMalformed},
		{"A with key id 0", mustHex(hdr + "0100" + specOutputA), ErrMalformed},
		{"A output short", mustHex(hdr + "0101" + specOutputA[:80]), ErrMalformed},
		{"B output short", mustHex(hdr + "0201" + specOutputB[:82]), ErrMalformed},
		{"B uncompressed prefix", mustHex(hdr + "0201" + "04" + specOutputB[2:]), ErrMalformed},
		{"NAI not UTF-8", append([]byte{0x11}, "type1.rid0.schid0.userid\xff@3gpp.com"...), ErrMalformed},
		{"NAI no realm", append([]byte{0x11}, "type1.rid0.schid0.useridx"...), ErrMalformed},
		{"NAI bad prefix", append([]byte{0x11}, "type1.schid0.useridx@3gpp.com"...), ErrMalformed},
		{"NAI no userid", append([]byte{0x11}, "type1.rid0.schid0.x@3gpp.com"...), ErrMalformed},
		{"NAI empty userid", append([]byte{0x11}, "type1.rid0.schid0.userid@3gpp.com"...), ErrMalformed},
		{"NAI rid too long", append([]byte{0x11}, "type1.rid12345.schid0.useridx@3gpp.com"...), ErrMalformed},
		{"NAI bad realm", append([]byte{0x11}, "type1.rid0.schid0.useridx@3gpp"...), ErrMalformed},
		{"NAI IMSI type", append([]byte{0x11}, "type0.rid0.schid0.userid0123@5gc.mnc012.mcc274.3gppnetwork.org"...), ErrUnsupported},
		{"NAI ECIES", append([]byte{0x11}, "type1.rid0.schid1.hnkey1.ecckey00.cip00.mac00@3gpp.com"...), ErrUnsupported},
	}
	for _, tc := range tests {
		var s SUCI
		if err := s.UnmarshalBinary(tc.in); !errors.Is(err, tc.want) {
			t.Errorf("%s: UnmarshalBinary(%x) = %+v, %v; want %v", tc.name, tc.in, s, err, tc.want)
		}
		if !reflect.DeepEqual(s, SUCI{}) {
			t.Errorf("%s: failed UnmarshalBinary modified the SUCI: %+v", tc.name, s)
		}
	}
}

func TestMarshalInvalid(t *testing.T) {
	valid := formatCases[0].suci
	tests := []struct {
		name string
		mod  func(*SUCI)
		want error
	}{
		{"MCC", func(s *SUCI) { s.MCC = "27" }, ErrMalformed},
		{"MNC", func(s *SUCI) { s.MNC = "x1" }, ErrMalformed},
		{"routing indicator empty", func(s *SUCI) { s.RoutingIndicator = "" }, ErrMalformed},
		{"scheme 16", func(s *SUCI) { s.Scheme = 16; s.KeyID = 1 }, ErrMalformed},
		{"null key id", func(s *SUCI) { s.KeyID = 3 }, ErrMalformed},
		{"SUPI type 3", func(s *SUCI) { s.SUPIType = 3 }, ErrUnsupported},
		{"null output", func(s *SUCI) { s.SchemeOutput = nil }, ErrMalformed},
		{"NAI with ECIES", func(s *SUCI) { *s = formatCases[5].suci; s.Scheme = SchemeProfileA; s.KeyID = 1 }, ErrUnsupported},
	}
	for _, tc := range tests {
		s := valid
		tc.mod(&s)
		if _, err := s.MarshalBinary(); !errors.Is(err, tc.want) {
			t.Errorf("%s: MarshalBinary: %v, want %v", tc.name, err, tc.want)
		}
		if _, err := s.MarshalText(); !errors.Is(err, tc.want) {
			t.Errorf("%s: MarshalText: %v, want %v", tc.name, err, tc.want)
		}
		if str := s.String(); !strings.HasPrefix(str, "<invalid SUCI: ") {
			t.Errorf("%s: String() = %q", tc.name, str)
		}
	}
}
