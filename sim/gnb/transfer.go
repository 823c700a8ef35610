package gnb

import (
	"errors"
	"fmt"
	"net/netip"

	"github.com/free5gc/ngap/aper"
	"github.com/free5gc/ngap/ie"
)

// setupRequest is what the gNB needs from a
// PDUSessionResourceSetupRequestTransfer (TS 38.413 9.3.4.1).
type setupRequest struct {
	upf     netip.Addr // UL NG-U UP TNL information: the UPF's N3 address
	teid    uint32     // and its uplink TEID
	pduType uint8
	qfis    []uint8
}

// decodeSetupRequestTransfer decodes and checks the transfer the SMF built:
// the UL NG-U tunnel, the PDU session type and the QoS flows are mandatory.
func decodeSetupRequestTransfer(b []byte) (req setupRequest, err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("decoder panic: %v", r)
		}
	}()
	var tr ie.PDUSessionResourceSetupRequestTransfer
	if err := ie.UnmarshalBinary(b, &tr); err != nil {
		return req, fmt.Errorf("setup request transfer: %w", err)
	}
	if tr.ProtocolIEs == nil {
		return req, errors.New("setup request transfer: no IEs")
	}
	var haveTunnel, haveType, haveFlows bool
	for _, f := range tr.ProtocolIEs.List {
		switch {
		case f.ULNGUUPTNLInformation != nil:
			gt, ok := f.ULNGUUPTNLInformation.Choice.(*ie.GTPTunnel)
			if !ok || gt == nil {
				return req, errors.New("setup request transfer: UL NG-U UP TNL information is not a GTP tunnel")
			}
			if req.upf, err = parseTransportAddr(gt.TransportLayerAddress); err != nil {
				return req, fmt.Errorf("setup request transfer: UL NG-U tunnel: %w", err)
			}
			if req.teid, err = parseTEID(gt.GTPTEID); err != nil {
				return req, fmt.Errorf("setup request transfer: UL NG-U tunnel: %w", err)
			}
			haveTunnel = true
		case f.PDUSessionType != nil:
			if f.PDUSessionType.Value > ie.PDUSessionTypePresentUnstructured {
				return req, fmt.Errorf("setup request transfer: PDU session type %d", f.PDUSessionType.Value)
			}
			req.pduType, haveType = uint8(f.PDUSessionType.Value), true
		case f.QosFlowSetupRequestList != nil:
			for _, q := range f.QosFlowSetupRequestList.List {
				if q.QosFlowIdentifier == nil || q.QosFlowIdentifier.Value < 0 || q.QosFlowIdentifier.Value > 63 {
					return req, errors.New("setup request transfer: QoS flow without a valid QFI")
				}
				req.qfis = append(req.qfis, uint8(q.QosFlowIdentifier.Value))
			}
			haveFlows = len(req.qfis) > 0
		}
	}
	switch {
	case !haveTunnel:
		return req, errors.New("setup request transfer: UL NG-U UP TNL information missing")
	case !haveType:
		return req, errors.New("setup request transfer: PDU session type missing")
	case !haveFlows:
		return req, errors.New("setup request transfer: QoS flow setup request list missing")
	}
	return req, nil
}

// encodeSetupResponseTransfer builds the PDUSessionResourceSetupResponseTransfer
// (TS 38.413 9.3.4.2): the DL tunnel (gNB N3 address and TEID) and the QoS
// flows it carries.
func encodeSetupResponseTransfer(n3 netip.Addr, teid uint32, qfis []uint8) (aper.OctetString, error) {
	flows := &ie.AssociatedQosFlowList{}
	for _, q := range qfis {
		flows.List = append(flows.List, ie.AssociatedQosFlowItem{QosFlowIdentifier: &ie.QosFlowIdentifier{Value: int64(q)}})
	}
	tr := &ie.PDUSessionResourceSetupResponseTransfer{
		DLQosFlowPerTNLInformation: &ie.QosFlowPerTNLInformation{
			UPTransportLayerInformation: &ie.UPTransportLayerInformation{Choice: &ie.GTPTunnel{
				TransportLayerAddress: transportAddr(n3),
				GTPTEID:               &ie.GTPTEID{Value: teidBytes(teid)},
			}},
			AssociatedQosFlowList: flows,
		},
	}
	b, err := ie.MarshalBinary(tr)
	if err != nil {
		return nil, fmt.Errorf("setup response transfer: %w", err)
	}
	return b, nil
}

// encodeUnsuccessfulTransfer builds a PDUSessionResourceSetupUnsuccessfulTransfer
// (TS 38.413 9.3.4.16).
func encodeUnsuccessfulTransfer(c *ie.Cause) (aper.OctetString, error) {
	b, err := ie.MarshalBinary(&ie.PDUSessionResourceSetupUnsuccessfulTransfer{Cause: c})
	if err != nil {
		return nil, fmt.Errorf("setup unsuccessful transfer: %w", err)
	}
	return b, nil
}

// encodeReleaseResponseTransfer builds the (empty) PDU Session Resource
// Release Response Transfer (TS 38.413 9.3.4.21).
func encodeReleaseResponseTransfer() (aper.OctetString, error) {
	b, err := ie.MarshalBinary(&ie.PDUSessionResourceReleaseResponseTransfer{})
	if err != nil {
		return nil, fmt.Errorf("release response transfer: %w", err)
	}
	return b, nil
}
