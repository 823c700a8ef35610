package smf

import (
	"encoding/binary"
	"errors"
	"fmt"
	"net/netip"

	"github.com/free5gc/ngap/aper"
	"github.com/free5gc/ngap/ie"

	"github.com/simgate/simgate/gtp/pfcp"
)

// setupParams is what a PDU Session Resource Setup Request Transfer
// carries.
type setupParams struct {
	ambrULbps, ambrDLbps int64      // bit/s
	uplink               pfcp.FTEID // the UPF's N3 F-TEID
	fiveQI               uint8
	arpPriority          uint8
}

// transportLayerAddress encodes an IP address as a Transport Layer Address
// (TS 38.414 5.1: a BIT STRING of 32 bits for IPv4, 128 for IPv6).
func transportLayerAddress(a netip.Addr) (ie.TransportLayerAddress, error) {
	a = a.Unmap()
	switch {
	case a.Is4():
		b := a.As4()
		return ie.TransportLayerAddress{Value: aper.BitString{Bytes: b[:], BitLength: 32}}, nil
	case a.Is6():
		b := a.As16()
		return ie.TransportLayerAddress{Value: aper.BitString{Bytes: b[:], BitLength: 128}}, nil
	}
	return ie.TransportLayerAddress{}, fmt.Errorf("no transport layer address: %v", a)
}

// parseTransportLayerAddress decodes a Transport Layer Address: IPv4 (32
// bits), IPv6 (128) or both (160, IPv4 first; TS 38.414 5.1), in which case
// the IPv4 address is taken.
func parseTransportLayerAddress(t *ie.TransportLayerAddress) (netip.Addr, error) {
	if t == nil {
		return netip.Addr{}, errors.New("transport layer address missing")
	}
	b := t.Value.Bytes
	n := t.Value.BitLength
	if uint64(len(b))*8 < n {
		return netip.Addr{}, fmt.Errorf("transport layer address of %d bits in %d octets", n, len(b))
	}
	switch n {
	case 32, 160:
		return netip.AddrFrom4([4]byte(b[:4])), nil
	case 128:
		return netip.AddrFrom16([16]byte(b[:16])), nil
	}
	return netip.Addr{}, fmt.Errorf("transport layer address of %d bits (want 32, 128 or 160)", n)
}

// buildSetupRequestTransfer encodes a PDU Session Resource Setup Request
// Transfer (TS 38.413 9.3.4.1): session AMBR, the UPF's N3 GTP tunnel,
// PDU session type IPv4 and the default QoS flow (QFI 1, non-dynamic 5QI,
// ARP not pre-empting and not pre-emptable).
func buildSetupRequestTransfer(p setupParams) ([]byte, error) {
	tla, err := transportLayerAddress(p.uplink.Addr)
	if err != nil {
		return nil, fmt.Errorf("smf: encode setup request transfer: %w", err)
	}
	var teid [4]byte
	binary.BigEndian.PutUint32(teid[:], p.uplink.TEID)
	t := &ie.PDUSessionResourceSetupRequestTransfer{
		ProtocolIEs: &ie.ProtocolIEContainerPDUSessionResourceSetupRequestTransferIEs{
			List: []ie.PDUSessionResourceSetupRequestTransferIEs{
				{PDUSessionAggregateMaximumBitRate: &ie.PDUSessionAggregateMaximumBitRate{
					PDUSessionAggregateMaximumBitRateDL: &ie.BitRate{Value: p.ambrDLbps},
					PDUSessionAggregateMaximumBitRateUL: &ie.BitRate{Value: p.ambrULbps},
				}},
				{ULNGUUPTNLInformation: &ie.UPTransportLayerInformation{Choice: &ie.GTPTunnel{
					TransportLayerAddress: &tla,
					GTPTEID:               &ie.GTPTEID{Value: aper.OctetString(teid[:])},
				}}},
				{PDUSessionType: &ie.PDUSessionType{Value: ie.PDUSessionTypePresentIpv4}},
				{QosFlowSetupRequestList: &ie.QosFlowSetupRequestList{List: []ie.QosFlowSetupRequestItem{{
					QosFlowIdentifier: &ie.QosFlowIdentifier{Value: defaultQFI},
					QosFlowLevelQosParameters: &ie.QosFlowLevelQosParameters{
						QosCharacteristics: &ie.QosCharacteristics{Choice: &ie.NonDynamic5QIDescriptor{
							FiveQI: &ie.FiveQI{Value: int64(p.fiveQI)},
						}},
						AllocationAndRetentionPriority: &ie.AllocationAndRetentionPriority{
							PriorityLevelARP:        &ie.PriorityLevelARP{Value: int64(p.arpPriority)},
							PreEmptionCapability:    &ie.PreEmptionCapability{Value: ie.PreEmptionCapabilityPresentShallNotTriggerPreEmption},
							PreEmptionVulnerability: &ie.PreEmptionVulnerability{Value: ie.PreEmptionVulnerabilityPresentNotPreEmptable},
						},
					},
				}}}},
			},
		},
	}
	b, err := ie.MarshalBinary(t)
	if err != nil {
		return nil, fmt.Errorf("smf: encode setup request transfer: %w", err)
	}
	return b, nil
}

// buildReleaseCommandTransfer encodes a PDU Session Resource Release Command
// Transfer (TS 38.413 9.3.4.12) with cause nas normal-release.
func buildReleaseCommandTransfer() ([]byte, error) {
	t := &ie.PDUSessionResourceReleaseCommandTransfer{
		Cause: &ie.Cause{Choice: &ie.CauseNas{Value: ie.CauseNasPresentNormalRelease}},
	}
	b, err := ie.MarshalBinary(t)
	if err != nil {
		return nil, fmt.Errorf("smf: encode release command transfer: %w", err)
	}
	return b, nil
}

// unmarshalNGAP decodes an APER transfer, turning a decoder panic into an
// error.
func unmarshalNGAP(b []byte, v interface {
	Write(*aper.PerBitData) error
	Read(*aper.PerBitData) error
}) (err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("decoder panic: %v", r)
		}
	}()
	return ie.UnmarshalBinary(b, v)
}

// parseSetupResponseTransfer decodes a PDU Session Resource Setup Response
// Transfer (TS 38.413 9.3.4.2) and returns the gNB's N3 F-TEID for
// downlink. The QoS flow qfi must be among the flows the gNB set up.
func parseSetupResponseTransfer(b []byte, qfi uint8) (pfcp.FTEID, error) {
	fail := func(format string, args ...any) (pfcp.FTEID, error) {
		return pfcp.FTEID{}, fmt.Errorf("%w: setup response transfer: %s", ErrMalformed, fmt.Sprintf(format, args...))
	}
	if len(b) == 0 {
		return fail("empty")
	}
	var t ie.PDUSessionResourceSetupResponseTransfer
	if err := unmarshalNGAP(b, &t); err != nil {
		return fail("%v", err)
	}
	dl := t.DLQosFlowPerTNLInformation
	if dl == nil || dl.UPTransportLayerInformation == nil {
		return fail("no DL QoS flow per TNL information")
	}
	tun, ok := dl.UPTransportLayerInformation.Choice.(*ie.GTPTunnel)
	if !ok || tun == nil {
		return fail("UP transport layer information is not a GTP tunnel")
	}
	addr, err := parseTransportLayerAddress(tun.TransportLayerAddress)
	if err != nil {
		return fail("%v", err)
	}
	if tun.GTPTEID == nil || len(tun.GTPTEID.Value) != 4 {
		return fail("GTP-TEID is not 4 octets")
	}
	f := pfcp.FTEID{TEID: binary.BigEndian.Uint32(tun.GTPTEID.Value), Addr: addr}
	if f.TEID == 0 {
		// TS 29.281 5.1: TEID 0 is not a tunnel.
		return fail("GTP-TEID 0")
	}
	found := false
	if dl.AssociatedQosFlowList != nil {
		for _, q := range dl.AssociatedQosFlowList.List {
			if q.QosFlowIdentifier != nil && q.QosFlowIdentifier.Value == int64(qfi) {
				found = true
			}
		}
	}
	if !found {
		return fail("QoS flow %d is not among the associated QoS flows", qfi)
	}
	return f, nil
}
