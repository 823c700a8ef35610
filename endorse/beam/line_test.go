package beam

import (
	"errors"
	"strings"
	"testing"

	"github.com/simgate/simgate/core/udr"
	"github.com/simgate/simgate/endorse"
)

const vecLine = "imsi=440101234567890 timestamp=1608251959862;signature=9b7c3587a10b94453127aa614bac55ca0d953f4a98f428a086114f67120a850b"

func TestParseLine(t *testing.T) {
	sig := strings.Repeat("0a", 32)
	tests := []struct {
		in      string
		items   []Item
		sig     string
		wantErr bool
	}{
		{in: vecLine, items: []Item{{"imsi", "440101234567890"}, {"timestamp", "1608251959862"}}, sig: "9b7c3587a10b94453127aa614bac55ca0d953f4a98f428a086114f67120a850b"},
		{in: vecLine + "\n", items: []Item{{"imsi", "440101234567890"}, {"timestamp", "1608251959862"}}, sig: "9b7c3587a10b94453127aa614bac55ca0d953f4a98f428a086114f67120a850b"},
		{in: vecLine + "\r\n", items: []Item{{"imsi", "440101234567890"}, {"timestamp", "1608251959862"}}, sig: "9b7c3587a10b94453127aa614bac55ca0d953f4a98f428a086114f67120a850b"},
		{in: "imei=1 imsi=2 msisdn=3 simId=4 timestamp=5", items: []Item{{"imei", "1"}, {"imsi", "2"}, {"msisdn", "3"}, {"simId", "4"}, {"timestamp", "5"}}},
		{in: "timestamp=5;signature=" + sig, items: []Item{{"timestamp", "5"}}, sig: sig},
		{in: "", wantErr: true},
		{in: "\n", wantErr: true},
		{in: "imsi=1", wantErr: true},                                   // no timestamp
		{in: "timestamp=5 imsi=1", wantErr: true},                       // out of order
		{in: "imsi=1 imsi=2 timestamp=5", wantErr: true},                // repeated
		{in: "iccid=1 timestamp=5", wantErr: true},                      // unknown key
		{in: "IMSI=1 timestamp=5", wantErr: true},                       // keys are case-sensitive
		{in: "imsi=1  timestamp=5", wantErr: true},                      // two spaces
		{in: " imsi=1 timestamp=5", wantErr: true},                      // leading space
		{in: "imsi=1 timestamp=5 ", wantErr: true},                      // trailing space
		{in: "imsi=1 timestamp=5 ;signature=" + sig, wantErr: true},     // space before ';'
		{in: "imsi= timestamp=5", wantErr: true},                        // empty value
		{in: "imsi=1 timestamp=5x", wantErr: true},                      // timestamp not decimal
		{in: "imsi=1\r timestamp=5", wantErr: true},                     // control character
		{in: "imsi=1 timestamp=5;signature=" + sig[:62], wantErr: true}, // short signature
		{in: "imsi=1 timestamp=5;signature=" + strings.ToUpper(sig), wantErr: true},
		{in: "imsi=1 timestamp=5;signature=" + sig + " version=20150901", wantErr: true},
		{in: "imsi=1 timestamp=5;sig=" + sig, wantErr: true},
		{in: "imsi=1 timestamp=5;", wantErr: true},
		{in: "imsi=1 timestamp=5\n\n", wantErr: true},
		{in: "imsi=" + strings.Repeat("1", 65) + " timestamp=5", wantErr: true},
		{in: strings.Repeat("x", MaxLineLen+1), wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			l, err := ParseLine(tt.in)
			if tt.wantErr {
				if !errors.Is(err, ErrLine) {
					t.Fatalf("ParseLine = %+v, %v; want ErrLine", l, err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if len(l.Items) != len(tt.items) || l.Signature != tt.sig {
				t.Fatalf("ParseLine = %+v, want items %v signature %q", l, tt.items, tt.sig)
			}
			for i := range tt.items {
				if l.Items[i] != tt.items[i] {
					t.Errorf("item %d = %v, want %v", i, l.Items[i], tt.items[i])
				}
			}
		})
	}
}

func TestIdentityLine(t *testing.T) {
	id := endorse.Identity{IMSI: sim1.IMSI, IMEI: imei1, MSISDN: sim1.MSISDN, SIMID: sim1.SIMID, Active: true}
	const ts = "1445587157992"
	tests := []struct {
		name  string
		entry udr.BeamEntry
		id    endorse.Identity
		want  string // before ';'
		psk   string // signed under this PSK when not ""
	}{
		{"nothing enabled: no line", udr.BeamEntry{Enabled: true}, id, "", ""},
		{"imsi", udr.BeamEntry{AddSubscriberHeader: true}, id, "imsi=" + sim1.IMSI + " timestamp=" + ts, ""},
		{"all, spec order", udr.BeamEntry{AddSubscriberHeader: true, AddEquipmentHeader: true, AddMsisdnHeader: true, AddSimIDHeader: true},
			id, "imei=" + imei1 + " imsi=" + sim1.IMSI + " msisdn=" + sim1.MSISDN + " simId=" + sim1.SIMID + " timestamp=" + ts, ""},
		{"signed", udr.BeamEntry{AddSubscriberHeader: true, AddEquipmentHeader: true, AddSignature: true, PSK: "topsecret"},
			id, "imei=" + imei1 + " imsi=" + sim1.IMSI + " timestamp=" + ts, "topsecret"},
		{"unknown IMEI left out", udr.BeamEntry{AddSubscriberHeader: true, AddEquipmentHeader: true, AddSignature: true, PSK: "k"},
			endorse.Identity{IMSI: sim1.IMSI}, "imsi=" + sim1.IMSI + " timestamp=" + ts, "k"},
		{"signature alone", udr.BeamEntry{AddSignature: true, PSK: "k"}, id, "timestamp=" + ts, "k"},
		{"addSignature without psk", udr.BeamEntry{AddSubscriberHeader: true, AddSignature: true}, id, "imsi=" + sim1.IMSI + " timestamp=" + ts, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := IdentityLine(tt.entry, tt.id, testNow)
			if err != nil {
				t.Fatal(err)
			}
			want := tt.want
			if tt.psk != "" {
				sigWant, _ := independentTCP(tt.psk, tt.want)
				want += ";signature=" + sigWant
			}
			if got != want {
				t.Fatalf("IdentityLine = %q, want %q", got, want)
			}
			if got == "" {
				return
			}
			// What Beam writes, a destination parses and verifies.
			l, err := ParseLine(got + LineTerminator)
			if err != nil {
				t.Fatalf("ParseLine(IdentityLine) = %v", err)
			}
			if tt.psk != "" {
				if err := l.Verify(tt.psk); err != nil {
					t.Errorf("Verify: %v", err)
				}
			} else if err := l.Verify("k"); !errors.Is(err, ErrNoSignature) {
				t.Errorf("Verify(unsigned) = %v, want ErrNoSignature", err)
			}
		})
	}
}

// FuzzParseLine: ParseLine never panics, and what it accepts re-serialises
// to the same text and passes the same checks again.
func FuzzParseLine(f *testing.F) {
	f.Add(vecLine)
	f.Add(vecLine + "\r\n")
	f.Add("imei=1 imsi=2 msisdn=3 simId=4 timestamp=5")
	f.Add("timestamp=5;signature=" + strings.Repeat("ab", 32))
	f.Add("imsi=1  timestamp=5 ;")
	f.Fuzz(func(t *testing.T, s string) {
		l, err := ParseLine(s)
		if err != nil {
			if !errors.Is(err, ErrLine) {
				t.Fatalf("error %v does not wrap ErrLine", err)
			}
			return
		}
		text := strings.TrimSuffix(strings.TrimSuffix(s, "\n"), "\r")
		if l.String() != text {
			t.Fatalf("String() = %q, input text %q", l.String(), text)
		}
		again, err := ParseLine(l.String())
		if err != nil || again.String() != l.String() {
			t.Fatalf("re-parse: %+v, %v", again, err)
		}
		if l.Get(KeyTimestamp) == "" {
			t.Fatalf("accepted a line without timestamp: %q", s)
		}
		if l.Signature != "" {
			// Signing the parsed text reproduces a verifiable line.
			signed := Line{Items: l.Items, Signature: SignTCP("k", l.StringToSign())}
			if err := signed.Verify("k"); err != nil {
				t.Fatal(err)
			}
		}
	})
}
