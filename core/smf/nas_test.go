package smf

import (
	"bytes"
	"encoding/hex"
	"net/netip"
	"strings"
	"testing"

	"github.com/free5gc/nas/ie"
	"github.com/free5gc/nas/message"
)

func unhex(t testing.TB, s string) []byte {
	t.Helper()
	b, err := hex.DecodeString(strings.ReplaceAll(s, " ", ""))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// TestNASBitRate: TS 24.501 9.11.4.14 units are 1, 4, 16, 64, 256 times
// Kbps, Mbps, Gbps, Tbps and Pbps; the encoding is exact when it can be.
func TestNASBitRate(t *testing.T) {
	units := []struct {
		u    ie.BitRateType
		kbps uint64
	}{
		{ie.Rate_1Kbps, 1}, {ie.Rate_4Kbps, 4}, {ie.Rate_16Kbps, 16}, {ie.Rate_64Kbps, 64}, {ie.Rate_256Kbps, 256},
		{ie.Rate_1Mbps, 1000}, {ie.Rate_4Mbps, 4000}, {ie.Rate_256Mbps, 256000},
		{ie.Rate_1Gbps, 1_000_000}, {ie.Rate_1Tbps, 1_000_000_000}, {ie.Rate_1Pbps, 1_000_000_000_000},
		{ie.Rate_256Pbps, 256_000_000_000_000},
	}
	for _, u := range units {
		if got := nasUnitKbps(u.u); got != u.kbps {
			t.Errorf("unit %#x = %d kbit/s, want %d", u.u, got, u.kbps)
		}
	}
	tests := []struct {
		kbps  uint64
		want  nasBitRate
		exact bool
	}{
		{1, nasBitRate{ie.Rate_1Kbps, 1}, true},
		{65535, nasBitRate{ie.Rate_1Kbps, 65535}, true},
		{65536, nasBitRate{ie.Rate_4Kbps, 16384}, true},
		{1_000_000, nasBitRate{ie.Rate_16Kbps, 62500}, true}, // 1 Gbit/s
		{100_000, nasBitRate{ie.Rate_4Kbps, 25000}, true},
		{65537, nasBitRate{ie.Rate_4Kbps, 16385}, false}, // rounded up: 65540
		{4_000_000_000, nasBitRate{ie.Rate_64Mbps, 62500}, true},
	}
	for _, tc := range tests {
		got := toNASBitRate(tc.kbps)
		if got != tc.want {
			t.Errorf("toNASBitRate(%d) = %+v, want %+v", tc.kbps, got, tc.want)
		}
		if back := got.kbps(); tc.exact && back != tc.kbps || !tc.exact && back < tc.kbps {
			t.Errorf("toNASBitRate(%d) decodes to %d", tc.kbps, back)
		}
	}
}

func testAccept() acceptParams {
	return acceptParams{
		psi: 1, pti: 1,
		ueAddr: netip.MustParseAddr("10.45.0.1"),
		dnn:    "internet",
		slice:  snssai{sst: 1}, sliceKnown: true,
		ambrUL: toNASBitRate(1_000_000), ambrDL: toNASBitRate(1_000_000),
		fiveQI: 9,
	}
}

// TestEstablishmentAcceptBytes checks the accept octet by octet against
// the layout of TS 24.501 8.3.2.1 and its IEs, assembled by hand.
func TestEstablishmentAcceptBytes(t *testing.T) {
	const (
		header = "2e 01 01 c2" // EPD 5GSM, PSI 1, PTI 1, type 0xc2
		// Selected SSC mode 1 (high nibble) | selected PDU session type IPv4.
		types = "11"
		// QoS rules, LV-E (9.11.4.13): rule ID 1, length 6, create (001) +
		// DQR + 1 packet filter = 0x31; filter bidirectional (11) ID 1 =
		// 0x31, length 1, match-all 0x01; precedence 255; QFI 1.
		rules = "0009 01 0006 31 31 01 01 ff 01"
		// Session-AMBR, LV (9.11.4.14): 62500 x 16 Kbps down and up.
		ambr = "06 03 f424 03 f424"
		// PDU address, TLV IEI 0x29 (9.11.4.10): IPv4 10.45.0.1.
		pduAddr = "29 05 01 0a2d0001"
		// S-NSSAI, TLV IEI 0x22 (9.11.2.8): SST 1.
		nssai = "22 01 01"
		// Authorized QoS flow descriptions, TLV-E IEI 0x79 (9.11.4.12): QFI
		// 1, create (001), E=1 with 1 parameter: 5QI (01) length 1 value 9.
		qfd = "79 0006 01 20 41 01 01 09"
		// DNN, TLV IEI 0x25 (9.11.2.1B): "internet" as one label.
		dnn = "25 09 08 696e7465726e6574"
	)
	got, err := buildEstablishmentAccept(testAccept())
	if err != nil {
		t.Fatal(err)
	}
	want := unhex(t, header+types+rules+ambr+pduAddr+nssai+qfd+dnn)
	if !bytes.Equal(got, want) {
		t.Fatalf("accept\n got %x\nwant %x", got, want)
	}

	// With cause #50 (TV IEI 0x59) after the AMBR and an S-NSSAI with SD.
	p := testAccept()
	p.cause = causeIPv4OnlyAllowed
	p.slice = snssai{sst: 1, sd: [3]byte{0x01, 0x02, 0x03}, hasSD: true}
	got, err = buildEstablishmentAccept(p)
	if err != nil {
		t.Fatal(err)
	}
	want = unhex(t, header+types+rules+ambr+"59 32"+pduAddr+"22 04 01 010203"+qfd+dnn)
	if !bytes.Equal(got, want) {
		t.Fatalf("accept with cause\n got %x\nwant %x", got, want)
	}
}

// TestEstablishmentAcceptRoundTrip decodes the accept with the library, as
// the UE does.
func TestEstablishmentAcceptRoundTrip(t *testing.T) {
	p := testAccept()
	p.psi, p.pti = 15, 254
	p.ueAddr = netip.MustParseAddr("10.45.3.7")
	p.dnn = "iot.example"
	p.slice = snssai{sst: 2, sd: [3]byte{0xab, 0xcd, 0xef}, hasSD: true}
	p.ambrUL, p.ambrDL = toNASBitRate(50_000), toNASBitRate(2_000_000)
	p.fiveQI = 8
	b, err := buildEstablishmentAccept(p)
	if err != nil {
		t.Fatal(err)
	}
	m, err := message.ParseGSM(b)
	if err != nil {
		t.Fatalf("ParseGSM: %v", err)
	}
	a, ok := m.(*message.PDUSessEstAccept)
	if !ok {
		t.Fatalf("decoded %T", m)
	}
	checkAccept(t, a, p)
}

// checkAccept compares a decoded accept with what was meant.
func checkAccept(t *testing.T, a *message.PDUSessEstAccept, p acceptParams) {
	t.Helper()
	if a.PDUSessId != p.psi || a.PTI != p.pti {
		t.Errorf("PSI/PTI %d/%d, want %d/%d", a.PDUSessId, a.PTI, p.psi, p.pti)
	}
	if a.SelectedPDUSessType.Value != ie.PDUSessType_IPv4 || a.SelectedSSCMode.Mode != ie.SSCMODE1 {
		t.Errorf("PDU session type %d SSC mode %d", a.SelectedPDUSessType.Value, a.SelectedSSCMode.Mode)
	}
	if len(a.AuthoQosRules.Rules) != 1 {
		t.Fatalf("QoS rules %+v", a.AuthoQosRules.Rules)
	}
	r := a.AuthoQosRules.Rules[0]
	if r.RuleId != 1 || !r.IsDefaultDQR || r.QFI != 1 || r.Precedence != 255 || r.OpCode != ie.OpCode_CreateNewQosRule ||
		len(r.PktFilterList) != 1 || !r.PktFilterList[0].Contents.MatchAll || r.PktFilterList[0].Dir != ie.PFD_BiDir {
		t.Errorf("default QoS rule %+v", r)
	}
	ul := nasBitRate{a.SessAMBR.UnitUplink, a.SessAMBR.ValueUplink}.kbps()
	dl := nasBitRate{a.SessAMBR.UnitDownlink, a.SessAMBR.ValueDownlink}.kbps()
	if ul != p.ambrUL.kbps() || dl != p.ambrDL.kbps() {
		t.Errorf("session AMBR %d/%d kbit/s, want %d/%d", ul, dl, p.ambrUL.kbps(), p.ambrDL.kbps())
	}
	if a.PDUAddr == nil {
		t.Fatal("no PDU address")
	}
	if got, _ := netip.AddrFromSlice(a.PDUAddr.IPv4); got != p.ueAddr {
		t.Errorf("PDU address %v, want %s", got, p.ueAddr)
	}
	if p.sliceKnown {
		want := nasSNSSAI(p.slice)
		if a.SNSSAI == nil || a.SNSSAI.SST != want.SST || a.SNSSAI.SD != want.SD {
			t.Errorf("S-NSSAI %+v, want %+v", a.SNSSAI, want)
		}
	} else if a.SNSSAI != nil {
		t.Errorf("S-NSSAI %+v, want none", a.SNSSAI)
	}
	if a.DNN == nil || a.DNN.Value != p.dnn {
		t.Errorf("DNN %+v, want %q", a.DNN, p.dnn)
	}
	if a.AuthoQosFlowDescs == nil || len(a.AuthoQosFlowDescs.Descs) != 1 ||
		a.AuthoQosFlowDescs.Descs[0].QFI != 1 || a.AuthoQosFlowDescs.Descs[0].FiveQI != p.fiveQI {
		t.Errorf("QoS flow descriptions %+v", a.AuthoQosFlowDescs)
	}
	switch {
	case p.cause == 0 && a.Cause5GSM != nil:
		t.Errorf("5GSM cause %d, want none", a.Cause5GSM.Value)
	case p.cause != 0 && (a.Cause5GSM == nil || a.Cause5GSM.Value != p.cause):
		t.Errorf("5GSM cause %+v, want %d", a.Cause5GSM, p.cause)
	}
}

// TestShortMessagesBytes: rejects and the release command are the header
// and a 5GSM cause (TS 24.501 8.3.3, 8.3.13, 8.3.14).
func TestShortMessagesBytes(t *testing.T) {
	tests := []struct {
		name  string
		build func(psi, pti, cause uint8) ([]byte, error)
		want  string
	}{
		{"establishment reject #27", buildEstablishmentReject, "2e 05 07 c3 1b"},
		{"release command #36", buildReleaseCommand, "2e 05 07 d3 24"},
		{"release reject #43", buildReleaseReject, "2e 05 07 d2 2b"},
	}
	causes := []uint8{causeUnknownDNN, causeRegularDeactivation, causeInvalidPSI}
	for i, tc := range tests {
		got, err := tc.build(5, 7, causes[i])
		if err != nil {
			t.Fatal(err)
		}
		if want := unhex(t, tc.want); !bytes.Equal(got, want) {
			t.Errorf("%s: got %x, want %x", tc.name, got, want)
		}
	}
}

func TestParseGSMRejects(t *testing.T) {
	for _, b := range [][]byte{
		nil,
		{0x2e},
		{0x7e, 0x00, 0x41, 0x01},    // 5GMM registration request
		{0x2e, 0x01, 0x01, 0x00},    // unknown 5GSM message type
		{0x2e, 0x01, 0x01, 0xc1},    // establishment request without its mandatory IE
		{0x2e, 0x01, 0x01, 0xc1, 1}, // ... truncated
	} {
		if _, err := parseGSM(b); err == nil {
			t.Errorf("parseGSM(%x): no error", b)
		}
	}
}

// TestParseGSMIgnoresUndecodedIEs: an optional IE the library does not
// decode (PDU session pair ID, TS 24.501 9.11.4.32) does not make the
// request unusable (TS 24.501 7.6.1).
func TestParseGSMIgnoresUndecodedIEs(t *testing.T) {
	b := append(estReq(t, 4, 9, ie.PDUSessType_IPv4), 0x34, 0x01, 0x00)
	if _, err := message.ParseGSM(b); err == nil {
		t.Fatal("the library decodes the PDU session pair ID now: pick another IE for this test")
	}
	m, err := parseGSM(b)
	if err != nil {
		t.Fatalf("parseGSM: %v", err)
	}
	req, ok := m.(*message.PDUSessEstReq)
	if !ok || req.PDUSessId != 4 || req.PTI != 9 || req.PDUSessType.Value != ie.PDUSessType_IPv4 {
		t.Fatalf("decoded %+v", m)
	}
}
