package pfcp

import (
	"bytes"
	"encoding/hex"
	"errors"
	"net/netip"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/wmnsk/go-pfcp/ie"
)

func unhex(t *testing.T, s string) []byte {
	t.Helper()
	b, err := hex.DecodeString(strings.ReplaceAll(s, " ", ""))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// wire marshals i and parses it back, as a receiver sees it.
func wire(t *testing.T, i *ie.IE) *ie.IE {
	t.Helper()
	b, err := i.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	p, err := ie.Parse(b)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// TestUserID: the User ID IE (TS 29.244 8.2.101) with TBCD digits as in
// TS 29.274 8.3: digit 1 in the low nibble, an 'f' filler in the last high
// nibble of an odd count. The expected octets are written out by hand.
func TestUserID(t *testing.T) {
	tests := []struct {
		name string
		u    UserID
		hex  string
	}{
		{"IMSI IMEI MSISDN NAI", UserID{IMSI: "001010123456789", IMEI: "490154203237518", MSISDN: "819012345678", NAI: "a@b"},
			"0f 08 00010121436587f9 08 94104502237315f8 06 180921436587 03 614062"},
		{"5-digit IMSI", UserID{IMSI: "00101"}, "01 03 00 01 f1"},
		{"15-digit IMSI", UserID{IMSI: "310260000000001"}, "01 08 13 20 06 00 00 00 00 f1"},
		{"IMEISV (16 digits)", UserID{IMEI: "4901542032375181"}, "02 08 9410450223731518"},
		{"MSISDN of even length", UserID{MSISDN: "81901234"}, "04 04 18092143"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			i, err := tc.u.IE()
			if err != nil {
				t.Fatal(err)
			}
			if want := unhex(t, tc.hex); !bytes.Equal(i.Payload, want) {
				t.Fatalf("encoded % x, want % x", i.Payload, want)
			}
			got, err := ParseUserID(wire(t, i))
			if err != nil {
				t.Fatal(err)
			}
			if got != tc.u {
				t.Errorf("decoded %+v, want %+v", got, tc.u)
			}
		})
	}
	if i, err := (UserID{}).IE(); i != nil || err != nil {
		t.Errorf("empty User ID: %v, %v; want no IE", i, err)
	}
	for _, bad := range []UserID{
		{IMSI: "0010"}, {IMSI: "0010101234567890"}, {IMSI: "00101a"},
		{IMEI: "49015420323751"}, {MSISDN: "8190123456789012"}, {MSISDN: "+8190"},
		{NAI: strings.Repeat("x", 256)},
	} {
		if _, err := bad.IE(); err == nil {
			t.Errorf("%+v encoded without error", bad)
		}
	}
}

func TestParseUserIDErrors(t *testing.T) {
	tests := []struct {
		name, hex string
	}{
		{"empty", ""},
		{"IMSI length missing", "01"},
		{"IMSI overruns", "01 05 0001"},
		{"non-digit nibble", "01 02 0a 10"},
		{"filler in the middle", "01 02 f0 10"},
		{"NAI overruns", "08 04 6162"},
		{"MSISDN after IMSI missing", "05 02 0010"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := ParseUserID(ie.New(ie.UserID, unhex(t, tc.hex)))
			var ie *IEError
			if !errors.As(err, &ie) || ie.Cause != CauseMandatoryIEIncorrect {
				t.Errorf("got %v, want an IEError (Mandatory IE incorrect)", err)
			}
		})
	}
}

// TestNodeID: Node ID encodings (TS 29.244 8.2.38).
func TestNodeID(t *testing.T) {
	tests := []struct {
		id, hex string
	}{
		{"192.0.2.1", "00 c0000201"},
		{"2001:db8::1", "01 20010db8000000000000000000000001"},
		{"upf.example.org", "02 03757066 076578616d706c65 036f7267"},
		{"smf", "02 03736d66"},
	}
	for _, tc := range tests {
		i, err := NodeIDIE(tc.id)
		if err != nil {
			t.Fatalf("%s: %v", tc.id, err)
		}
		if want := unhex(t, tc.hex); !bytes.Equal(i.Payload, want) {
			t.Errorf("%s: % x, want % x", tc.id, i.Payload, want)
		}
		got, err := ParseNodeID(wire(t, i))
		if err != nil || got != tc.id {
			t.Errorf("%s: decoded %q, %v", tc.id, got, err)
		}
	}
	if got, err := ParseNodeID(ie.New(ie.NodeID, unhex(t, "02 03757066 00"))); err != nil || got != "upf" {
		t.Errorf("FQDN with a root label: %q, %v", got, err)
	}
	for _, bad := range []string{"", "a..b", "-bad_label", strings.Repeat("a", 64) + ".org", "fe80::1%eth0"} {
		if _, err := NodeIDIE(bad); err == nil {
			t.Errorf("NodeIDIE(%q) accepted", bad)
		}
	}
	for _, bad := range []string{"", "00 c00002", "00 c000020101", "01 2001", "02", "02 05 6162", "02 00 61", "03 c0000201"} {
		if _, err := ParseNodeID(ie.New(ie.NodeID, unhex(t, bad))); err == nil {
			t.Errorf("ParseNodeID(% s) accepted", bad)
		}
	}
	if _, err := ParseNodeID(nil); err == nil {
		t.Error("nil Node ID accepted")
	}
}

// TestOuterHeaderCreation: TS 29.244 8.2.56 for GTP-U/UDP/IPv4 and IPv6;
// other descriptions are refused, without the panic go-pfcp's decoder has
// on a C-TAG description with a short value.
func TestOuterHeaderCreation(t *testing.T) {
	v6 := "20010db8000000000000000000000002"
	tests := []struct {
		name, hex string
		want      FTEID
		err       bool
	}{
		{"GTP-U/UDP/IPv4", "0100 00001234 7f000004", FTEID{0x1234, netip.MustParseAddr("127.0.0.4")}, false},
		{"GTP-U/UDP/IPv6", "0200 00000001 " + v6, FTEID{1, netip.MustParseAddr("2001:db8::2")}, false},
		{"both", "0300 00000002 0a000001 " + v6, FTEID{2, netip.MustParseAddr("10.0.0.1")}, false},
		{"short TEID", "0100 000012", FTEID{}, true},
		{"short IPv4", "0100 00001234 7f00", FTEID{}, true},
		{"short IPv6", "0200 00001234 20010db8", FTEID{}, true},
		{"UDP/IPv4", "0400 0a000001 0868", FTEID{}, true},
		{"C-TAG", "0140 00001234 7f000004", FTEID{}, true},
		{"none", "0000", FTEID{}, true},
		{"empty", "", FTEID{}, true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := parseOuterHeaderCreation(unhex(t, tc.hex))
			if (err != nil) != tc.err || got != tc.want {
				t.Errorf("got %v, %v; want %v, error %v", got, err, tc.want, tc.err)
			}
		})
	}
}

// TestRulesRoundTrip: each rule survives encoding to the wire and back.
func TestRulesRoundTrip(t *testing.T) {
	ue4, ue6 := netip.MustParseAddr("10.45.0.7"), netip.MustParseAddr("2001:db8:45::7")
	gnb := FTEID{TEID: 0xdeadbeef, Addr: netip.MustParseAddr("192.0.2.9")}
	pdrs := []PDR{
		{ID: 1, Precedence: 255, Source: InterfaceAccess, ChooseFTEID: true, UEAddr: ue4, QFI: 9, RemoveOuterHeader: true, OuterHeaderRemoval: RemoveGTPUUDPIPv4, FARID: 1, QERIDs: []uint32{1, 2}},
		{ID: 2, Precedence: 255, Source: InterfaceCore, UEAddr: ue4, UEAddrIsDst: true, FARID: 2},
		{ID: 3, Precedence: 10, Source: InterfaceAccess, ChooseFTEID: true, ChooseID: 7, FARID: 1},
		{ID: 4, Precedence: 10, Source: InterfaceAccess, ChooseFTEID: true, ChooseIPv6: true, UEAddr: ue6, FARID: 1},
		{ID: 5, Precedence: 1, Source: InterfaceAccess, LocalFTEID: FTEID{TEID: 77, Addr: netip.MustParseAddr("127.0.0.3")}, FARID: 3},
		{ID: 6, Precedence: 1, Source: InterfaceAccess, LocalFTEID: FTEID{TEID: 78, Addr: netip.MustParseAddr("2001:db8::3")}, RemoveOuterHeader: true, OuterHeaderRemoval: RemoveGTPUUDPIPv6, FARID: 3},
	}
	for _, p := range pdrs {
		got, err := ParseCreatePDR(wire(t, p.CreateIE()))
		if err != nil || !reflect.DeepEqual(got, p) {
			t.Errorf("PDR %d: got %+v, %v\nwant %+v", p.ID, got, err, p)
		}
	}
	fars := []FAR{
		{ID: 1, Action: ActionForward, Forwarding: &Forwarding{Destination: InterfaceCore}},
		{ID: 2, Action: ActionForward, Forwarding: &Forwarding{Destination: InterfaceAccess, OuterHeader: gnb}},
		{ID: 3, Action: ActionForward, Forwarding: &Forwarding{Destination: InterfaceAccess, OuterHeader: FTEID{TEID: 5, Addr: netip.MustParseAddr("2001:db8::9")}}},
		{ID: 4, Action: ActionBuffer},
		{ID: 5, Action: ActionDrop},
	}
	for _, f := range fars {
		got, err := ParseCreateFAR(wire(t, f.CreateIE()))
		if err != nil || !reflect.DeepEqual(got, f) {
			t.Errorf("FAR %d: got %+v, %v\nwant %+v", f.ID, got, err, f)
		}
	}
	qers := []QER{
		{ID: 1, GateULOpen: true, GateDLOpen: true, MBRUplink: 100000, MBRDownlink: 1 << 39, QFI: 9},
		{ID: 2, GateULOpen: false, GateDLOpen: true},
		{ID: 3},
	}
	for _, q := range qers {
		got, err := ParseCreateQER(wire(t, q.CreateIE()))
		if err != nil || got != q {
			t.Errorf("QER %d: got %+v, %v\nwant %+v", q.ID, got, err, q)
		}
	}
	updates := []FARUpdate{
		{ID: 2, Action: ActionForward, Forwarding: &Forwarding{Destination: InterfaceAccess, OuterHeader: gnb}},
		{ID: 2, Action: ActionBuffer},
		{ID: 9},
	}
	for _, u := range updates {
		got, err := ParseUpdateFAR(wire(t, u.IE()))
		if err != nil || !reflect.DeepEqual(got, u) {
			t.Errorf("Update FAR %+v: got %+v, %v", u, got, err)
		}
	}
	// An Update Forwarding Parameters without a Destination Interface keeps
	// the old one.
	got, err := ParseUpdateFAR(wire(t, ie.NewUpdateFAR(ie.NewFARID(2), ie.NewUpdateForwardingParameters(
		ie.NewOuterHeaderCreation(CreateGTPUUDPIPv4, 9, "192.0.2.1", "", 0, 0, 0)))))
	if err != nil || !got.KeepDestination || got.Forwarding.OuterHeader.TEID != 9 {
		t.Errorf("Update FAR without destination: %+v, %v", got, err)
	}
	for _, f := range []FSEID{{SEID: 1, Addr: netip.MustParseAddr("127.0.0.1")}, {SEID: 1 << 63, Addr: netip.MustParseAddr("::1")}} {
		got, err := ParseFSEID(wire(t, f.IE()))
		if err != nil || got != f {
			t.Errorf("F-SEID %+v: %+v, %v", f, got, err)
		}
	}
}

// TestRulesMissingIEs: a rule without a mandatory IE names it.
func TestRulesMissingIEs(t *testing.T) {
	pdi := ie.NewPDI(ie.NewSourceInterface(InterfaceAccess))
	tests := []struct {
		name  string
		parse func(*ie.IE) error
		in    *ie.IE
		ie    uint16
		cause uint8
	}{
		{"PDR ID", pdr, ie.NewCreatePDR(ie.NewPrecedence(1), pdi), ie.PDRID, CauseMandatoryIEMissing},
		{"Precedence", pdr, ie.NewCreatePDR(ie.NewPDRID(1), pdi), ie.Precedence, CauseMandatoryIEMissing},
		{"PDI", pdr, ie.NewCreatePDR(ie.NewPDRID(1), ie.NewPrecedence(1)), ie.PDI, CauseMandatoryIEMissing},
		{"Source Interface", pdr, ie.NewCreatePDR(ie.NewPDRID(1), ie.NewPrecedence(1), ie.NewPDI(ie.NewQFI(1))), ie.SourceInterface, CauseMandatoryIEMissing},
		{"short PDR ID", pdr, ie.NewCreatePDR(ie.New(ie.PDRID, []byte{1}), ie.NewPrecedence(1), pdi), ie.PDRID, CauseMandatoryIEIncorrect},
		{"F-TEID CH without V4/V6", pdr, ie.NewCreatePDR(ie.NewPDRID(1), ie.NewPrecedence(1), ie.NewPDI(ie.NewSourceInterface(0), ie.New(ie.FTEID, []byte{0x04}))), ie.FTEID, CauseMandatoryIEIncorrect},
		{"FAR ID", far, ie.NewCreateFAR(ie.NewApplyAction(ActionDrop)), ie.FARID, CauseMandatoryIEMissing},
		{"Apply Action", far, ie.NewCreateFAR(ie.NewFARID(1)), ie.ApplyAction, CauseMandatoryIEMissing},
		{"Forwarding Parameters of FORW", far, ie.NewCreateFAR(ie.NewFARID(1), ie.NewApplyAction(ActionForward)), ie.ForwardingParameters, CauseConditionalIEMissing},
		{"Destination Interface", far, ie.NewCreateFAR(ie.NewFARID(1), ie.NewApplyAction(ActionForward), ie.NewForwardingParameters(ie.NewQFI(1))), ie.DestinationInterface, CauseMandatoryIEMissing},
		{"GTP-U outer header", far, ie.NewCreateFAR(ie.NewFARID(1), ie.NewApplyAction(ActionForward), ie.NewForwardingParameters(ie.NewDestinationInterface(0), ie.New(ie.OuterHeaderCreation, unhex(t, "0400 0a000001 0868")))), ie.OuterHeaderCreation, CauseMandatoryIEIncorrect},
		{"QER ID", qer, ie.NewCreateQER(ie.NewGateStatus(0, 0)), ie.QERID, CauseMandatoryIEMissing},
		{"Gate Status", qer, ie.NewCreateQER(ie.NewQERID(1)), ie.GateStatus, CauseMandatoryIEMissing},
		{"short MBR", qer, ie.NewCreateQER(ie.NewQERID(1), ie.NewGateStatus(0, 0), ie.New(ie.MBR, []byte{1, 2, 3})), ie.MBR, CauseMandatoryIEIncorrect},
		{"Update FAR ID", upd, ie.NewUpdateFAR(ie.NewApplyAction(ActionDrop)), ie.FARID, CauseMandatoryIEMissing},
		{"Remove PDR ID", func(i *ie.IE) error { _, err := ParseRemovePDR(i); return err }, ie.NewGroupedIE(ie.RemovePDR, ie.NewFARID(1)), ie.PDRID, CauseMandatoryIEMissing},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.parse(wire(t, tc.in))
			var e *IEError
			if !errors.As(err, &e) || e.IE != tc.ie || e.Cause != tc.cause {
				t.Errorf("got %v, want IE %d with %s", err, tc.ie, CauseName(tc.cause))
			}
		})
	}
}

func pdr(i *ie.IE) error { _, err := ParseCreatePDR(i); return err }
func far(i *ie.IE) error { _, err := ParseCreateFAR(i); return err }
func qer(i *ie.IE) error { _, err := ParseCreateQER(i); return err }
func upd(i *ie.IE) error { _, err := ParseUpdateFAR(i); return err }

// TestRecoveryTimeStamp: NTP seconds (TS 29.244 8.2.65): 1970-01-01 is
// 2208988800 s after 1900-01-01 (RFC 5905).
func TestRecoveryTimeStamp(t *testing.T) {
	if got := ntpSeconds(time.Unix(0, 0)); got != 2208988800 {
		t.Errorf("Unix epoch = %d NTP seconds, want 2208988800", got)
	}
	ts := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	if got, want := recoveryIE(ntpSeconds(ts)).Payload, ie.NewRecoveryTimeStamp(ts).Payload; !bytes.Equal(got, want) {
		t.Errorf("% x, go-pfcp encodes % x", got, want)
	}
	if got := ntpTime(ntpSeconds(ts.Add(400 * time.Millisecond))); !got.Equal(ts) {
		t.Errorf("round trip %v, want %v", got, ts)
	}
	if _, err := parseRecovery(ie.New(ie.RecoveryTimeStamp, []byte{1, 2})); err == nil {
		t.Error("short Recovery Time Stamp accepted")
	}
}

// TestParseHeader: the header checks that run before go-pfcp sees a message
// (TS 29.244 7.2.2).
func TestParseHeader(t *testing.T) {
	tests := []struct {
		name, hex string
		want      header
		err       error
	}{
		{"heartbeat", "20 01 0004 abcdef 00", header{version: 1, typ: 1, seq: 0xabcdef, size: 8}, nil},
		{"session", "21 32 000c 0102030405060708 000001 00", header{version: 1, s: true, typ: 50, seid: 0x0102030405060708, seq: 1, size: 16}, nil},
		{"FO", "24 01 0004 000001 00 20010004000002 00", header{version: 1, fo: true, typ: 1, seq: 1, size: 8}, nil},
		{"short", "20 01 0004 0000", header{}, errShort},
		{"short session", "21 32 000c 01020304 000001 00", header{}, errShort},
		{"length too small", "20 01 0002 000001 00", header{}, errLength},
		{"length too large", "20 01 0008 000001 00", header{}, errLength},
		{"S on node message", "21 01 000c 0102030405060708 000001 00", header{}, errSEIDFlag},
		{"no S on session message", "20 32 0004 000001 00", header{}, errSEIDFlag},
		{"version 2", "40 01 0004 000007 00", header{}, errBadVersion},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := parseHeader(unhex(t, tc.hex))
			if err != tc.err {
				t.Fatalf("err %v, want %v", err, tc.err)
			}
			if err == nil && got != tc.want {
				t.Errorf("got %+v, want %+v", got, tc.want)
			}
		})
	}
}

func TestCauseError(t *testing.T) {
	e := &CauseError{Message: "Session Establishment Response", Cause: CauseMandatoryIEMissing, OffendingIE: ie.CreateFAR}
	if got := e.Error(); got != "Session Establishment Response: Mandatory IE missing (66), offending IE type 3" {
		t.Errorf("Error() = %q", got)
	}
	if CauseName(200) != "cause 200" {
		t.Error(CauseName(200))
	}
}
