package smf

import (
	"encoding/binary"
	"errors"
	"net/netip"
	"testing"

	"github.com/free5gc/ngap/aper"
	"github.com/free5gc/ngap/ie"

	"github.com/simgate/simgate/gtp/pfcp"
)

// decodedSetup is what a gNB reads from a setup request transfer.
type decodedSetup struct {
	ambrUL, ambrDL int64
	uplink         pfcp.FTEID
	sessionType    aper.Enumerated
	qfi, fiveQI    int64
	arp            int64
	preCap, preVul aper.Enumerated
}

// decodeSetupRequestTransfer decodes b with the library, as a gNB does.
func decodeSetupRequestTransfer(t *testing.T, b []byte) (decodedSetup, []int64) {
	t.Helper()
	var tr ie.PDUSessionResourceSetupRequestTransfer
	if err := ie.UnmarshalBinary(b, &tr); err != nil {
		t.Fatalf("decode setup request transfer %x: %v", b, err)
	}
	var d decodedSetup
	var ids []int64
	for _, f := range tr.ProtocolIEs.List {
		ids = append(ids, f.Id().Value)
		switch {
		case f.PDUSessionAggregateMaximumBitRate != nil:
			d.ambrDL = f.PDUSessionAggregateMaximumBitRate.PDUSessionAggregateMaximumBitRateDL.Value
			d.ambrUL = f.PDUSessionAggregateMaximumBitRate.PDUSessionAggregateMaximumBitRateUL.Value
		case f.ULNGUUPTNLInformation != nil:
			tun, ok := f.ULNGUUPTNLInformation.Choice.(*ie.GTPTunnel)
			if !ok {
				t.Fatalf("UL NG-U UP TNL information is %T", f.ULNGUUPTNLInformation.Choice)
			}
			a, err := parseTransportLayerAddress(tun.TransportLayerAddress)
			if err != nil {
				t.Fatal(err)
			}
			d.uplink = pfcp.FTEID{TEID: binary.BigEndian.Uint32(tun.GTPTEID.Value), Addr: a}
		case f.PDUSessionType != nil:
			d.sessionType = f.PDUSessionType.Value
		case f.QosFlowSetupRequestList != nil:
			if n := len(f.QosFlowSetupRequestList.List); n != 1 {
				t.Fatalf("%d QoS flows", n)
			}
			q := f.QosFlowSetupRequestList.List[0]
			d.qfi = q.QosFlowIdentifier.Value
			nd, ok := q.QosFlowLevelQosParameters.QosCharacteristics.Choice.(*ie.NonDynamic5QIDescriptor)
			if !ok {
				t.Fatalf("QoS characteristics %T", q.QosFlowLevelQosParameters.QosCharacteristics.Choice)
			}
			d.fiveQI = nd.FiveQI.Value
			arp := q.QosFlowLevelQosParameters.AllocationAndRetentionPriority
			d.arp, d.preCap, d.preVul = arp.PriorityLevelARP.Value, arp.PreEmptionCapability.Value, arp.PreEmptionVulnerability.Value
		}
	}
	return d, ids
}

func TestSetupRequestTransferRoundTrip(t *testing.T) {
	tests := []struct {
		name string
		p    setupParams
	}{
		{"ipv4", setupParams{ambrULbps: 1e9, ambrDLbps: 2e9, uplink: pfcp.FTEID{TEID: 0x263f2591, Addr: netip.MustParseAddr("172.16.31.61")}, fiveQI: 9, arpPriority: 8}},
		{"ipv6", setupParams{ambrULbps: 1000, ambrDLbps: 4e12, uplink: pfcp.FTEID{TEID: 1, Addr: netip.MustParseAddr("2001:db8::5")}, fiveQI: 80, arpPriority: 1}},
		{"ipv4-mapped", setupParams{ambrULbps: 5e6, ambrDLbps: 5e6, uplink: pfcp.FTEID{TEID: 0xffffffff, Addr: netip.MustParseAddr("::ffff:127.0.0.1")}, fiveQI: 5, arpPriority: 15}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			b, err := buildSetupRequestTransfer(tc.p)
			if err != nil {
				t.Fatal(err)
			}
			d, ids := decodeSetupRequestTransfer(t, b)
			// TS 38.413 9.3.4.1: IE IDs 130, 139, 134, 136 in this order.
			wantIDs := []int64{ie.ProtocolIEIDPDUSessionAggregateMaximumBitRate, ie.ProtocolIEIDULNGUUPTNLInformation,
				ie.ProtocolIEIDPDUSessionType, ie.ProtocolIEIDQosFlowSetupRequestList}
			if len(ids) != 4 || ids[0] != 130 || ids[1] != 139 || ids[2] != 134 || ids[3] != 136 {
				t.Errorf("IE IDs %v, want %v", ids, wantIDs)
			}
			want := decodedSetup{
				ambrUL: tc.p.ambrULbps, ambrDL: tc.p.ambrDLbps,
				uplink:      pfcp.FTEID{TEID: tc.p.uplink.TEID, Addr: tc.p.uplink.Addr.Unmap()},
				sessionType: ie.PDUSessionTypePresentIpv4,
				qfi:         1, fiveQI: int64(tc.p.fiveQI), arp: int64(tc.p.arpPriority),
				preCap: ie.PreEmptionCapabilityPresentShallNotTriggerPreEmption,
				preVul: ie.PreEmptionVulnerabilityPresentNotPreEmptable,
			}
			if d != want {
				t.Errorf("decoded %+v\nwant    %+v", d, want)
			}
		})
	}
	if _, err := buildSetupRequestTransfer(setupParams{fiveQI: 9, arpPriority: 8}); err == nil {
		t.Error("no error without an uplink address")
	}
}

func TestReleaseCommandTransferRoundTrip(t *testing.T) {
	b, err := buildReleaseCommandTransfer()
	if err != nil {
		t.Fatal(err)
	}
	var tr ie.PDUSessionResourceReleaseCommandTransfer
	if err := ie.UnmarshalBinary(b, &tr); err != nil {
		t.Fatal(err)
	}
	c, ok := tr.Cause.Choice.(*ie.CauseNas)
	if !ok || c.Value != ie.CauseNasPresentNormalRelease {
		t.Fatalf("cause %T %+v, want nas normal-release", tr.Cause.Choice, tr.Cause.Choice)
	}
}

// gnbTransfer builds a setup response transfer as a gNB would.
type gnbTransfer struct {
	tla  aper.BitString
	teid []byte
	qfis []int64
}

func (g gnbTransfer) encode(t testing.TB) []byte {
	t.Helper()
	up := ie.UPTransportLayerInformation{Choice: &ie.GTPTunnel{
		TransportLayerAddress: &ie.TransportLayerAddress{Value: g.tla},
		GTPTEID:               &ie.GTPTEID{Value: g.teid},
	}}
	list := &ie.AssociatedQosFlowList{}
	for _, q := range g.qfis {
		list.List = append(list.List, ie.AssociatedQosFlowItem{QosFlowIdentifier: &ie.QosFlowIdentifier{Value: q}})
	}
	tr := &ie.PDUSessionResourceSetupResponseTransfer{
		DLQosFlowPerTNLInformation: &ie.QosFlowPerTNLInformation{
			UPTransportLayerInformation: &up,
			AssociatedQosFlowList:       list,
		},
	}
	b, err := ie.MarshalBinary(tr)
	if err != nil {
		t.Fatalf("encode setup response transfer: %v", err)
	}
	return b
}

func gnbResponse(t testing.TB, f pfcp.FTEID) []byte {
	t.Helper()
	tla, err := transportLayerAddress(f.Addr)
	if err != nil {
		t.Fatal(err)
	}
	var teid [4]byte
	binary.BigEndian.PutUint32(teid[:], f.TEID)
	return gnbTransfer{tla: tla.Value, teid: teid[:], qfis: []int64{1}}.encode(t)
}

func TestParseSetupResponseTransfer(t *testing.T) {
	v4 := []byte{192, 0, 2, 9}
	v6 := netip.MustParseAddr("2001:db8::9").As16()
	teid := []byte{0, 0, 0x12, 0x34}
	tests := []struct {
		name string
		in   gnbTransfer
		want pfcp.FTEID // zero: an error
	}{
		{"ipv4", gnbTransfer{tla: aper.BitString{Bytes: v4, BitLength: 32}, teid: teid, qfis: []int64{1}},
			pfcp.FTEID{TEID: 0x1234, Addr: netip.MustParseAddr("192.0.2.9")}},
		{"ipv6", gnbTransfer{tla: aper.BitString{Bytes: v6[:], BitLength: 128}, teid: teid, qfis: []int64{1}},
			pfcp.FTEID{TEID: 0x1234, Addr: netip.MustParseAddr("2001:db8::9")}},
		{"both: ipv4 taken", gnbTransfer{tla: aper.BitString{Bytes: append(append([]byte{}, v4...), v6[:]...), BitLength: 160}, teid: teid, qfis: []int64{5, 1}},
			pfcp.FTEID{TEID: 0x1234, Addr: netip.MustParseAddr("192.0.2.9")}},
		{"qfi 1 not set up", gnbTransfer{tla: aper.BitString{Bytes: v4, BitLength: 32}, teid: teid, qfis: []int64{2}}, pfcp.FTEID{}},
		{"teid 0", gnbTransfer{tla: aper.BitString{Bytes: v4, BitLength: 32}, teid: []byte{0, 0, 0, 0}, qfis: []int64{1}}, pfcp.FTEID{}},
		{"address of 40 bits", gnbTransfer{tla: aper.BitString{Bytes: []byte{1, 2, 3, 4, 5}, BitLength: 40}, teid: teid, qfis: []int64{1}}, pfcp.FTEID{}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			b := tc.in.encode(t)
			got, err := parseSetupResponseTransfer(b, 1)
			if tc.want.IsZero() {
				if err == nil || !errors.Is(err, ErrMalformed) {
					t.Fatalf("got %v, %v: want ErrMalformed", got, err)
				}
				return
			}
			if err != nil || got != tc.want {
				t.Fatalf("got %v, %v: want %v", got, err, tc.want)
			}
		})
	}
	for _, b := range [][]byte{nil, {0}, {0xff, 0xff, 0xff}} {
		if _, err := parseSetupResponseTransfer(b, 1); !errors.Is(err, ErrMalformed) {
			t.Errorf("parse %x: %v, want ErrMalformed", b, err)
		}
	}
}
