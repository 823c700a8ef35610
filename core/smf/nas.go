package smf

import (
	"errors"
	"fmt"
	"net/netip"
	"strings"

	"github.com/free5gc/nas/ie"
	"github.com/free5gc/nas/message"
)

// 5GSM causes the SMF sends (TS 24.501 9.11.4.2).
const (
	causeInsufficientResources = ie.Cause5GSM_InsufRsrc                   // #26
	causeUnknownDNN            = ie.Cause5GSM_MissingOrUnknownDNN         // #27
	causeUnknownPDUSessionType = ie.Cause5GSM_UnknownPDUSessType          // #28
	causeRegularDeactivation   = ie.Cause5GSM_RegularDeactivation         // #36
	causeNetworkFailure        = ie.Cause5GSM_NwFailure                   // #38
	causeInvalidPSI            = ie.Cause5GSM_InvalidPDUSessId            // #43
	causeIPv4OnlyAllowed       = ie.Cause5GSM_PDUSessTypeIpv4OnlyAllowed  // #50
	causeUnknownDNNInSlice     = ie.Cause5GSM_MissingOrUnknownDNNInASlice // #70
	causeInvalidPTI            = ie.Cause5GSM_InvalidPTIValue             // #81
)

// The default QoS rule and flow (TS 24.501 9.11.4.13, 9.11.4.12).
const (
	defaultQFI        = 1
	defaultQosRuleID  = 1   // 0 means "no QoS rule identifier assigned"
	defaultPrecedence = 255 // the match-all rule is evaluated last
)

// parseGSM decodes a plain 5GSM message (TS 24.501 8.3).
func parseGSM(b []byte) (message.GSMMessage, error) {
	if len(b) == 0 {
		return nil, fmt.Errorf("%w: empty 5GSM message", ErrMalformed)
	}
	if message.Epd(b[0]) != message.Epd5GSSessMgmtMsg {
		return nil, fmt.Errorf("%w: extended protocol discriminator %#02x is not 5GSM", ErrMalformed, b[0])
	}
	m, err := message.ParseGSM(b)
	var todo *message.Error
	switch {
	case err == nil:
	case m != nil && errors.As(err, &todo) && todo.MACFailure == nil:
		// IEs the library does not decode yet; TS 24.501 7.6.1: optional
		// IEs the receiver does not handle are ignored.
	case strings.Contains(err.Error(), "panic"):
		// The library turns a decoder panic into an error carrying the
		// whole stack; keep log lines short.
		return nil, fmt.Errorf("%w: 5GSM decoder failed on %d octets", ErrMalformed, len(b))
	default:
		return nil, fmt.Errorf("%w: %v", ErrMalformed, err)
	}
	return m, nil
}

// validPSI: PDU session identity values 1 to 15 (TS 24.501 9.4).
func validPSI(psi uint8) bool { return psi >= 1 && psi <= 15 }

// validPTI: 0 is "no procedure transaction identity assigned" and 255 is
// reserved (TS 24.501 9.6); a UE-requested procedure uses 1 to 254.
func validPTI(pti uint8) bool { return pti != 0 && pti != 255 }

// acceptParams is what a PDU SESSION ESTABLISHMENT ACCEPT carries.
type acceptParams struct {
	psi, pti   uint8
	ueAddr     netip.Addr
	dnn        string
	slice      snssai
	sliceKnown bool
	cause      uint8 // 0: none
	ambrUL     nasBitRate
	ambrDL     nasBitRate
	fiveQI     uint8
}

// nasBitRate is a TS 24.501 9.11.4.14 bit rate: a unit and a 16-bit value.
type nasBitRate struct {
	unit  ie.BitRateType
	value uint16
}

// nasUnitKbps is the size of NAS bit rate unit u in kbit/s: units 1 to 25
// are 1, 4, 16, 64, 256 times 1 Kbps, Mbps, Gbps, Tbps, Pbps
// (TS 24.501 9.11.4.14).
func nasUnitKbps(u ie.BitRateType) uint64 {
	k := uint64(u) - 1
	m := uint64(1) << (2 * (k % 5))
	for range k / 5 {
		m *= 1000
	}
	return m
}

// toNASBitRate encodes kbps with the smallest unit that holds it exactly in
// 16 bits, or else the smallest that holds it rounded up.
func toNASBitRate(kbps uint64) nasBitRate {
	for u := ie.Rate_1Kbps; u <= ie.Rate_256Pbps; u++ {
		if m := nasUnitKbps(u); kbps%m == 0 && kbps/m <= 0xffff {
			return nasBitRate{u, uint16(kbps / m)}
		}
	}
	for u := ie.Rate_1Kbps; u <= ie.Rate_256Pbps; u++ {
		if m := nasUnitKbps(u); (kbps+m-1)/m <= 0xffff {
			return nasBitRate{u, uint16((kbps + m - 1) / m)}
		}
	}
	return nasBitRate{ie.Rate_256Pbps, 0xffff}
}

// kbps is the rate r stands for.
func (r nasBitRate) kbps() uint64 {
	if r.unit < ie.Rate_1Kbps || r.unit > ie.Rate_256Pbps {
		return 0
	}
	return uint64(r.value) * nasUnitKbps(r.unit)
}

// buildEstablishmentAccept encodes a PDU SESSION ESTABLISHMENT ACCEPT
// (TS 24.501 8.3.2): SSC mode 1, PDU session type IPv4, one default QoS
// rule (QFI 1, match-all), its QoS flow description (5QI), session AMBR,
// PDU address, S-NSSAI and DNN.
func buildEstablishmentAccept(p acceptParams) ([]byte, error) {
	a4 := p.ueAddr.Unmap().As4()
	m := &message.PDUSessEstAccept{
		PDUSessId:           p.psi,
		PTI:                 p.pti,
		SelectedPDUSessType: &ie.PDUSessType{Value: ie.PDUSessType_IPv4},
		SelectedSSCMode:     &ie.SSCMode{Mode: ie.SSCMODE1},
		AuthoQosRules: &ie.QosRules{Rules: []ie.QosRule{{
			RuleId:       defaultQosRuleID,
			OpCode:       ie.OpCode_CreateNewQosRule,
			IsDefaultDQR: true,
			// TS 24.501 9.11.4.13: a match-all packet filter, bidirectional.
			PktFilterList: []ie.PacketFilter{{
				Dir: ie.PFD_BiDir, Id: 1,
				Contents: ie.PacketFilterContents{MatchAll: true, RemoteAddr: "any", LocalAddr: "assigned"},
			}},
			Precedence: defaultPrecedence,
			QFI:        defaultQFI,
		}}},
		SessAMBR: &ie.SessAMBR{
			UnitUplink: p.ambrUL.unit, ValueUplink: p.ambrUL.value,
			UnitDownlink: p.ambrDL.unit, ValueDownlink: p.ambrDL.value,
		},
		PDUAddr: &ie.PDUAddr{IPv4: a4[:]},
		AuthoQosFlowDescs: &ie.QosFlowDescs{Descs: []ie.QosFlowDesc{{
			QFI: defaultQFI, OpCode: ie.QFD_Create, EBit: ie.QfdEbit_HasParamList, FiveQI: p.fiveQI,
		}}},
		DNN: &ie.DNN{Value: p.dnn},
	}
	if p.cause != 0 {
		m.Cause5GSM = &ie.Cause5GSM{Value: p.cause}
	}
	if p.sliceKnown {
		m.SNSSAI = nasSNSSAI(p.slice)
	}
	b, err := m.MarshalBinary()
	if err != nil {
		return nil, fmt.Errorf("smf: encode PDU session establishment accept: %w", err)
	}
	return b, nil
}

func nasSNSSAI(s snssai) *ie.SNSSAI {
	n := &ie.SNSSAI{SST: s.sst}
	if s.hasSD {
		n.SD = fmt.Sprintf("%x", s.sd)
	}
	return n
}

// buildEstablishmentReject encodes a PDU SESSION ESTABLISHMENT REJECT
// (TS 24.501 8.3.3).
func buildEstablishmentReject(psi, pti, cause uint8) ([]byte, error) {
	m := &message.PDUSessEstRej{PDUSessId: psi, PTI: pti, Cause5GSM: &ie.Cause5GSM{Value: cause}}
	b, err := m.MarshalBinary()
	if err != nil {
		return nil, fmt.Errorf("smf: encode PDU session establishment reject: %w", err)
	}
	return b, nil
}

// buildReleaseCommand encodes a PDU SESSION RELEASE COMMAND (TS 24.501
// 8.3.14).
func buildReleaseCommand(psi, pti, cause uint8) ([]byte, error) {
	m := &message.PDUSessRelCmd{PDUSessId: psi, PTI: pti, Cause5GSM: &ie.Cause5GSM{Value: cause}}
	b, err := m.MarshalBinary()
	if err != nil {
		return nil, fmt.Errorf("smf: encode PDU session release command: %w", err)
	}
	return b, nil
}

// buildReleaseReject encodes a PDU SESSION RELEASE REJECT (TS 24.501
// 8.3.13).
func buildReleaseReject(psi, pti, cause uint8) ([]byte, error) {
	m := &message.PDUSessRelRej{PDUSessId: psi, PTI: pti, Cause5GSM: &ie.Cause5GSM{Value: cause}}
	b, err := m.MarshalBinary()
	if err != nil {
		return nil, fmt.Errorf("smf: encode PDU session release reject: %w", err)
	}
	return b, nil
}
