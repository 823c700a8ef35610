package beam

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"net/http"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/simgate/simgate/core/udr"
	"github.com/simgate/simgate/endorse"
	"github.com/simgate/simgate/internal/vectors"
)

// beamCase is one case of ../shared/vectors/beam.json.
type beamCase struct {
	Kind      string            `json:"kind"` // http or tcp
	PSK       string            `json:"psk"`
	Headers   map[string]string `json:"headers"`
	Signature string            `json:"signature"`
	Line      string            `json:"line"`
}

// independentHTTP recomputes a 20151001 signature the way a destination
// would write it by hand: pick the x-soracom-* names, sort the
// "name=value" strings, glue them behind the PSK and hash.
func independentHTTP(psk string, fields map[string]string) string {
	var parts []string
	for name, v := range fields {
		n := strings.ToLower(name)
		if !strings.HasPrefix(n, "x-soracom-") || n == "x-soracom-signature" || n == "x-soracom-signature-version" {
			continue
		}
		parts = append(parts, n+"="+v)
	}
	sort.Strings(parts)
	h := sha256.New()
	h.Write([]byte(psk))
	for _, p := range parts {
		h.Write([]byte(p))
	}
	return hex.EncodeToString(h.Sum(nil))
}

// independentTCP recomputes a TCP line's signature: SHA-256 of the PSK and
// the text before ';'.
func independentTCP(psk, line string) (want, got string) {
	before, after, _ := strings.Cut(strings.TrimRight(line, "\r\n"), ";")
	sum := sha256.Sum256([]byte(psk + before))
	return hex.EncodeToString(sum[:]), strings.TrimPrefix(after, "signature=")
}

func TestVectors(t *testing.T) {
	cases := vectors.Load[beamCase](t, "beam.json")
	var nHTTP, nTCP int
	for i, c := range cases {
		t.Run(c.Kind+"/"+strconv.Itoa(i), func(t *testing.T) {
			switch c.Kind {
			case "http":
				nHTTP++
				testHTTPVector(t, c)
			case "tcp":
				nTCP++
				testTCPVector(t, c)
			default:
				t.Fatalf("unknown kind %q", c.Kind)
			}
		})
	}
	if nHTTP == 0 || nTCP == 0 {
		t.Fatalf("beam.json: %d http and %d tcp cases; want both kinds", nHTTP, nTCP)
	}
}

func testHTTPVector(t *testing.T, c beamCase) {
	// The independent computation agrees with the published value.
	if got := independentHTTP(c.PSK, c.Headers); got != c.Signature {
		t.Fatalf("independent computation %s, vector %s", got, c.Signature)
	}
	h := http.Header{}
	for k, v := range c.Headers {
		h.Set(k, v)
	}
	if got := SignHTTP(c.PSK, h); got != c.Signature {
		t.Errorf("SignHTTP = %s, want %s", got, c.Signature)
	}
	// Lower-case map keys, as a hand-built header may have them, sign the same.
	raw := http.Header{}
	for k, v := range c.Headers {
		raw[k] = []string{v}
	}
	if got := SignHTTP(c.PSK, raw); got != c.Signature {
		t.Errorf("SignHTTP(non-canonical keys) = %s, want %s", got, c.Signature)
	}
	// A verifier accepts it with the version, and refuses tampering.
	h.Set(HeaderSignature, c.Signature)
	h.Set(HeaderSignatureVersion, SignatureVersion)
	if err := VerifyHTTP(c.PSK, h); err != nil {
		t.Errorf("VerifyHTTP: %v", err)
	}
	if err := VerifyHTTP(c.PSK+"x", h); !errors.Is(err, ErrBadSignature) {
		t.Errorf("VerifyHTTP(wrong psk) = %v, want ErrBadSignature", err)
	}
	h.Set(HeaderIMSI, "001010000000001")
	if err := VerifyHTTP(c.PSK, h); !errors.Is(err, ErrBadSignature) {
		t.Errorf("VerifyHTTP(changed IMSI) = %v, want ErrBadSignature", err)
	}

	// Beam itself, tagging a request for that SIM at that time with
	// IMSI+IMEI+signature, produces the published signature.
	ts, err := strconv.ParseInt(c.Headers["x-soracom-timestamp"], 10, 64)
	if err != nil {
		t.Fatal(err)
	}
	e := udr.BeamEntry{Enabled: true, AddSubscriberHeader: true, AddEquipmentHeader: true, AddSignature: true, PSK: c.PSK}
	id := endorse.Identity{IMSI: c.Headers["x-soracom-imsi"], IMEI: c.Headers["x-soracom-imei"], MSISDN: "819000000000", SIMID: "8981", Active: true}
	out := http.Header{"X-Soracom-Imsi": {"forged"}}
	if err := Tag(out, e, id, time.UnixMilli(ts)); err != nil {
		t.Fatal(err)
	}
	if got := out.Get(HeaderSignature); got != c.Signature {
		t.Errorf("Tag: X-Soracom-Signature = %s, want %s (header %v)", got, c.Signature, out)
	}
	for name, v := range c.Headers {
		if got := out.Get(name); got != v {
			t.Errorf("Tag: %s = %q, want %q", name, got, v)
		}
	}
	if out.Get(HeaderMSISDN) != "" || out.Get(HeaderSIMID) != "" {
		t.Errorf("Tag added fields that are off: %v", out)
	}
}

func testTCPVector(t *testing.T, c beamCase) {
	want, published := independentTCP(c.PSK, c.Line)
	if want != published {
		t.Fatalf("independent computation %s, line carries %s", want, published)
	}
	l, err := ParseLine(c.Line)
	if err != nil {
		t.Fatal(err)
	}
	if err := l.Verify(c.PSK); err != nil {
		t.Errorf("Verify: %v", err)
	}
	if err := l.Verify("not" + c.PSK); !errors.Is(err, ErrBadSignature) {
		t.Errorf("Verify(wrong psk) = %v, want ErrBadSignature", err)
	}
	before, _, _ := strings.Cut(c.Line, ";")
	if got := SignTCP(c.PSK, before); got != published {
		t.Errorf("SignTCP = %s, want %s", got, published)
	}
	if l.String() != c.Line {
		t.Errorf("String() = %q, want %q", l.String(), c.Line)
	}

	// Beam itself writes exactly this line for an entry with the items the
	// line holds, for that SIM at that time.
	ts, err := strconv.ParseInt(l.Get(KeyTimestamp), 10, 64)
	if err != nil {
		t.Fatal(err)
	}
	e := udr.BeamEntry{
		Enabled:             true,
		AddEquipmentHeader:  l.Get(KeyIMEI) != "",
		AddSubscriberHeader: l.Get(KeyIMSI) != "",
		AddMsisdnHeader:     l.Get(KeyMSISDN) != "",
		AddSimIDHeader:      l.Get(KeySIMID) != "",
		AddSignature:        true,
		PSK:                 c.PSK,
	}
	id := endorse.Identity{IMEI: l.Get(KeyIMEI), IMSI: l.Get(KeyIMSI), MSISDN: l.Get(KeyMSISDN), SIMID: l.Get(KeySIMID), Active: true}
	got, err := IdentityLine(e, id, time.UnixMilli(ts))
	if err != nil {
		t.Fatal(err)
	}
	if got != c.Line {
		t.Errorf("IdentityLine = %q, want %q", got, c.Line)
	}
}

func TestCanonicalString(t *testing.T) {
	tests := []struct {
		name string
		h    http.Header
		want string
	}{
		{"empty", http.Header{}, ""},
		{"sorted, lower-cased, others ignored", http.Header{
			"X-Soracom-Timestamp": {"3"}, "X-Soracom-Imsi": {"2"}, "X-Soracom-Imei": {"1"},
			"Content-Type": {"text/plain"}, "X-Soracom": {"no dash after"}, "X-Soracomx-Imsi": {"not beam"},
		}, "x-soracom-imei=1x-soracom-imsi=2x-soracom-timestamp=3"},
		{"signature and version excluded", http.Header{
			"X-Soracom-Signature": {"ab"}, "X-Soracom-Signature-Version": {"20151001"}, "X-Soracom-Timestamp": {"5"},
		}, "x-soracom-timestamp=5"},
		{"all identity fields in documented order", http.Header{
			"X-Soracom-Sim-Id": {"S"}, "X-Soracom-Msisdn": {"M"}, "X-Soracom-Imsi": {"I"}, "X-Soracom-Imei": {"E"}, "X-Soracom-Timestamp": {"T"},
		}, "x-soracom-imei=Ex-soracom-imsi=Ix-soracom-msisdn=Mx-soracom-sim-id=Sx-soracom-timestamp=T"},
		{"repeated field joined", http.Header{"X-Soracom-Imsi": {"a", "b"}}, "x-soracom-imsi=a, b"},
		{"keys differing in case merged", http.Header{"X-Soracom-Imsi": {"a"}, "x-soracom-imsi": {"b"}}, "x-soracom-imsi=a, b"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := CanonicalString(tt.h); got != tt.want {
				t.Errorf("CanonicalString = %q, want %q", got, tt.want)
			}
		})
	}
}

func TestVerifyHTTPRefusals(t *testing.T) {
	base := func() http.Header {
		h := http.Header{"X-Soracom-Imsi": {"295000012345678"}, "X-Soracom-Timestamp": {"1"}}
		h.Set(HeaderSignature, SignHTTP("k", h))
		h.Set(HeaderSignatureVersion, SignatureVersion)
		return h
	}
	if err := VerifyHTTP("k", base()); err != nil {
		t.Fatalf("valid: %v", err)
	}
	tests := []struct {
		name   string
		modify func(http.Header)
		want   error
	}{
		{"no signature", func(h http.Header) { h.Del(HeaderSignature) }, ErrNoSignature},
		{"two signatures", func(h http.Header) { h.Add(HeaderSignature, h.Get(HeaderSignature)) }, ErrNoSignature},
		{"upper-case hex", func(h http.Header) { h.Set(HeaderSignature, strings.ToUpper(h.Get(HeaderSignature))) }, ErrBadSignature},
		{"added field", func(h http.Header) { h.Set(HeaderIMEI, "1") }, ErrBadSignature},
		{"changed timestamp", func(h http.Header) { h.Set(HeaderTimestamp, "2") }, ErrBadSignature},
		{"no version", func(h http.Header) { h.Del(HeaderSignatureVersion) }, nil},
		{"old version", func(h http.Header) { h.Set(HeaderSignatureVersion, "20150901") }, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := base()
			tt.modify(h)
			err := VerifyHTTP("k", h)
			if err == nil || (tt.want != nil && !errors.Is(err, tt.want)) {
				t.Errorf("VerifyHTTP = %v, want %v", err, tt.want)
			}
		})
	}
}

func TestTag(t *testing.T) {
	id := endorse.Identity{IMSI: sim1.IMSI, IMEI: imei1, MSISDN: sim1.MSISDN, SIMID: sim1.SIMID, Active: true}
	ts := strconv.FormatInt(testNow.UnixMilli(), 10)
	tests := []struct {
		name  string
		entry udr.BeamEntry
		id    endorse.Identity
		in    http.Header
		want  http.Header // exactly the resulting header
	}{
		{
			name:  "nothing enabled: timestamp only, client fields stripped",
			entry: udr.BeamEntry{Enabled: true},
			id:    id,
			in:    http.Header{"X-Soracom-Imsi": {"forged"}, "x-soracom-signature": {"forged"}, "Accept": {"*/*"}},
			want:  http.Header{"Accept": {"*/*"}, HeaderTimestamp: {ts}},
		},
		{
			name:  "all four, unsigned",
			entry: udr.BeamEntry{AddSubscriberHeader: true, AddEquipmentHeader: true, AddMsisdnHeader: true, AddSimIDHeader: true},
			id:    id,
			in:    http.Header{},
			want: http.Header{HeaderIMSI: {sim1.IMSI}, HeaderIMEI: {imei1}, HeaderMSISDN: {sim1.MSISDN},
				HeaderSIMID: {sim1.SIMID}, HeaderTimestamp: {ts}},
		},
		{
			name:  "unknown IMEI left out, signature over what is sent",
			entry: udr.BeamEntry{AddSubscriberHeader: true, AddEquipmentHeader: true, AddSignature: true, PSK: "p"},
			id:    endorse.Identity{IMSI: sim1.IMSI},
			in:    http.Header{},
			want: http.Header{HeaderIMSI: {sim1.IMSI}, HeaderTimestamp: {ts},
				HeaderSignature:        {independentHTTP("p", map[string]string{"x-soracom-imsi": sim1.IMSI, "x-soracom-timestamp": ts})},
				HeaderSignatureVersion: {SignatureVersion}},
		},
		{
			name:  "addSignature without psk does not sign",
			entry: udr.BeamEntry{AddSubscriberHeader: true, AddSignature: true},
			id:    id,
			in:    http.Header{},
			want:  http.Header{HeaderIMSI: {sim1.IMSI}, HeaderTimestamp: {ts}},
		},
		{
			name: "custom headers: append, replace, delete; X-Soracom ones and bad values skipped",
			entry: udr.BeamEntry{AddSubscriberHeader: true, CustomHeaders: map[string]udr.CustomHeader{
				"a": {Action: "append", HeaderKey: "X-Multi", HeaderValue: "second"},
				"b": {Action: "replace", HeaderKey: "Authorization", HeaderValue: "Bearer device-key"},
				"c": {Action: "delete", HeaderKey: "Cookie"},
				"d": {Action: "replace", HeaderKey: "X-Soracom-Imsi", HeaderValue: "001019999999999"},
				"e": {Action: "append", HeaderKey: "X-Soracom-Extra", HeaderValue: "x"},
				"f": {Action: "replace", HeaderKey: "X-Split", HeaderValue: "a\r\nX-Injected: 1"},
				"g": {Action: "replace", HeaderKey: "", HeaderValue: "by-map-key"},
			}},
			id: id,
			in: http.Header{"X-Multi": {"first"}, "Authorization": {"Basic old"}, "Cookie": {"c=1"}},
			want: http.Header{"X-Multi": {"first", "second"}, "Authorization": {"Bearer device-key"},
				"G": {"by-map-key"}, HeaderIMSI: {sim1.IMSI}, HeaderTimestamp: {ts}},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := tt.in.Clone()
			if err := Tag(h, tt.entry, tt.id, testNow); err != nil {
				t.Fatal(err)
			}
			if !equalHeader(h, tt.want) {
				t.Errorf("header\n got %v\nwant %v", h, tt.want)
			}
		})
	}
}

func TestTagInvalidIdentity(t *testing.T) {
	for _, id := range []endorse.Identity{
		{IMSI: "2950\r\nX-Evil: 1"},
		{IMSI: "295000012345678", IMEI: "86 0000"},
		{IMSI: "295000012345678", SIMID: strings.Repeat("9", 65)},
	} {
		e := udr.BeamEntry{AddSubscriberHeader: true, AddEquipmentHeader: true, AddSimIDHeader: true}
		h := http.Header{"X-Soracom-Imsi": {"forged"}}
		if err := Tag(h, e, id, testNow); !errors.Is(err, endorse.ErrIdentity) {
			t.Errorf("Tag(%+v) = %v, want ErrIdentity", id, err)
		}
		if h.Get(HeaderIMSI) != "forged" || len(h) != 1 {
			t.Errorf("Tag(%+v) changed the header on error: %v", id, h)
		}
		if _, err := IdentityLine(e, id, testNow); !errors.Is(err, endorse.ErrIdentity) {
			t.Errorf("IdentityLine(%+v) = %v, want ErrIdentity", id, err)
		}
	}
	// A value of a field that is off is not checked: it is not sent.
	if err := Tag(http.Header{}, udr.BeamEntry{AddSubscriberHeader: true}, endorse.Identity{IMSI: "1", IMEI: "bad value"}, testNow); err != nil {
		t.Errorf("Tag with an unsent bad IMEI: %v", err)
	}
}

func equalHeader(a, b http.Header) bool {
	if len(a) != len(b) {
		return false
	}
	for k, av := range a {
		bv, ok := b[k]
		if !ok || strings.Join(av, "\x00") != strings.Join(bv, "\x00") {
			return false
		}
	}
	return true
}
