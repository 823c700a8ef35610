package ue

import (
	"errors"
	"fmt"
	"log/slog"

	"github.com/free5gc/nas/ie"
	"github.com/free5gc/nas/message"
)

// 5GSM causes (TS 24.501 9.11.4.2).
const (
	CauseRegularDeactivation     = 36
	CauseInvalidPDUSessionID     = 43
	CausePTIMismatch             = 47
	CauseSMMessageNotImplemented = 97
)

// PDU session identities (TS 24.501 9.4) and procedure transaction
// identities (9.6): 1 to 15 and 1 to 254.
const (
	minPSI, maxPSI = 1, 15
	maxPTI         = 254
)

// EstablishSession starts a UE-requested PDU session establishment
// (TS 24.501 6.4.1.2) for PDU session identity psi and returns the UL NAS
// TRANSPORT carrying the PDU SESSION ESTABLISHMENT REQUEST: IPv4, SSC mode
// 1, the UE's DNN and S-NSSAI, request type "initial request".
func (u *UE) EstablishSession(psi uint8) ([]byte, error) {
	u.mu.Lock()
	defer u.unlock()
	if err := u.checkSM(psi); err != nil {
		return nil, err
	}
	if _, ok := u.sessions[psi]; ok {
		return nil, fmt.Errorf("ue: %s: PDU session %d exists: %w", u.supiStr, psi, ErrState)
	}
	pti := u.nextPTI()
	req := &message.PDUSessEstReq{
		PDUSessId: psi,
		PTI:       pti,
		// Full data rate for integrity protection both ways (9.11.4.7).
		IntegrityProtectionMaxDataRate: &ie.IntegrityProtectionMaxDataRate{Uplink: 0xff, Downlink: 0xff},
		PDUSessType:                    &ie.PDUSessType{Value: ie.PDUSessType_IPv4},
		SSCMode:                        &ie.SSCMode{Mode: 1},
	}
	nssai := &ie.SNSSAI{SST: u.snssai.SST, SD: u.snssai.SD}
	b, err := u.smTransport(psi, req, &ie.ReqType{Value: ie.ReqType_InitialReq}, nssai, &ie.DNN{Value: u.dnn})
	if err != nil {
		return nil, err
	}
	if u.sessions == nil {
		u.sessions = make(map[uint8]*session, 1)
	}
	u.sessions[psi] = &session{pti: pti, state: SessionPending}
	return b, nil
}

// ReleaseSession starts a UE-requested PDU session release (TS 24.501
// 6.4.3.2) and returns the UL NAS TRANSPORT carrying the PDU SESSION RELEASE
// REQUEST, cause #36 regular deactivation.
func (u *UE) ReleaseSession(psi uint8) ([]byte, error) {
	u.mu.Lock()
	defer u.unlock()
	if err := u.checkSM(psi); err != nil {
		return nil, err
	}
	s, ok := u.sessions[psi]
	if !ok || s.state != SessionActive {
		return nil, fmt.Errorf("ue: %s: release of PDU session %d, which is not active: %w", u.supiStr, psi, ErrState)
	}
	pti := u.nextPTI()
	req := &message.PDUSessRelReq{PDUSessId: psi, PTI: pti, Cause5GSM: &ie.Cause5GSM{Value: CauseRegularDeactivation}}
	b, err := u.smTransport(psi, req, nil, nil, nil)
	if err != nil {
		return nil, err
	}
	s.pti, s.state = pti, SessionReleasing
	return b, nil
}

func (u *UE) checkSM(psi uint8) error {
	if u.state != Registered || u.current == nil {
		return fmt.Errorf("ue: %s: session management when %v: %w", u.supiStr, u.state, ErrState)
	}
	if psi < minPSI || psi > maxPSI {
		return fmt.Errorf("ue: %s: PDU session identity %d: want %d to %d", u.supiStr, psi, minPSI, maxPSI)
	}
	return nil
}

// nextPTI allocates a procedure transaction identity (TS 24.501 6.1.3.3).
func (u *UE) nextPTI() uint8 {
	u.pti = u.pti%maxPTI + 1
	return u.pti
}

// smTransport wraps a 5GSM message in a protected UL NAS TRANSPORT
// (TS 24.501 8.2.10): payload container type N1 SM information and the PDU
// session ID, plus request type, S-NSSAI and DNN if given.
func (u *UE) smTransport(psi uint8, m message.Message, rt *ie.ReqType, nssai *ie.SNSSAI, dnn *ie.DNN) ([]byte, error) {
	sm, err := m.MarshalBinary()
	if err != nil {
		return nil, fmt.Errorf("ue: encode %v: %w", m.MsgType(), err)
	}
	t := &message.ULNASTransport{
		PayloadCntrType: &ie.PayloadCntrType{Value: ie.PayloadCntrType_N1SMInfo},
		PayloadCntr:     &ie.PayloadCntr{Pct: ie.PayloadCntrType_N1SMInfo, Contents: sm},
		PDUSessID:       &ie.PDUSessId2{Value: psi},
		ReqType:         rt,
		SNSSAI:          nssai,
		DNN:             dnn,
	}
	b, err := t.MarshalBinary()
	if err != nil {
		return nil, fmt.Errorf("ue: encode UL NAS TRANSPORT: %w", err)
	}
	return u.protect(b)
}

// onDLNASTransport hands an N1 SM payload to session management
// (TS 24.501 5.4.5.3).
func (u *UE) onDLNASTransport(m *message.DLNASTransport) ([][]byte, error) {
	if m.PayloadCntrType == nil || m.PayloadCntr == nil {
		return nil, fmt.Errorf("DL NAS TRANSPORT without payload: %w", ErrMalformed)
	}
	if m.PayloadCntrType.Value != ie.PayloadCntrType_N1SMInfo {
		u.log.Info("ue: DL NAS TRANSPORT payload ignored", slog.String("supi", u.supiStr), "payload_container_type", m.PayloadCntrType.Value)
		return nil, nil
	}
	if m.PDUSessID == nil {
		return nil, fmt.Errorf("DL NAS TRANSPORT of N1 SM information without PDU session ID: %w", ErrMalformed)
	}
	psi := m.PDUSessID.Value
	if m.Cause5GMM != nil {
		// TS 24.501 5.4.5.3.3: the AMF could not forward the 5GSM message
		// and returns it: the procedure for psi is over.
		if s, ok := u.sessions[psi]; ok && s.state == SessionPending {
			delete(u.sessions, psi)
			u.event(Event{Kind: EventSessionRejected, PSI: psi, Cause: m.Cause5GMM.Value})
		}
		return nil, nil
	}
	sm, err := message.ParseGSM(m.PayloadCntr.Contents)
	var ne *message.Error
	if err != nil && !(sm != nil && errors.As(err, &ne) && ne.MACFailure == nil) || sm == nil {
		// Only IEs the library does not implement are tolerated.
		return nil, fmt.Errorf("N1 SM payload: %v: %w", err, ErrMalformed)
	}
	if sm.PDUSessionID() != psi {
		return nil, fmt.Errorf("N1 SM payload for PDU session %d in a DL NAS TRANSPORT for %d: %w", sm.PDUSessionID(), psi, ErrMalformed)
	}
	s := u.sessions[psi]
	switch sm := sm.(type) {
	case *message.PDUSessEstAccept:
		if s == nil || s.state != SessionPending {
			return u.smStatus(psi, sm.PTI, CauseInvalidPDUSessionID)
		}
		if sm.PTI != s.pti {
			return u.smStatus(psi, sm.PTI, CausePTIMismatch)
		}
		return u.onSessionAccept(psi, s, sm)
	case *message.PDUSessEstRej:
		if s == nil || s.state != SessionPending || sm.PTI != s.pti {
			return u.smStatus(psi, sm.PTI, CausePTIMismatch)
		}
		var cause uint8
		if sm.Cause5GSM != nil {
			cause = sm.Cause5GSM.Value
		}
		delete(u.sessions, psi)
		u.event(Event{Kind: EventSessionRejected, PSI: psi, Cause: cause})
		return nil, nil
	case *message.PDUSessRelCmd:
		// TS 24.501 6.3.3.3 and 6.4.3.3: network-requested (PTI 0) or the
		// answer to the UE's request (its PTI).
		if s == nil {
			return u.smStatus(psi, sm.PTI, CauseInvalidPDUSessionID)
		}
		if sm.PTI != 0 && (s.state != SessionReleasing || sm.PTI != s.pti) {
			return u.smStatus(psi, sm.PTI, CausePTIMismatch)
		}
		ul, err := u.smTransport(psi, &message.PDUSessRelComplete{PDUSessId: psi, PTI: sm.PTI}, nil, nil, nil)
		if err != nil {
			return nil, err
		}
		var cause uint8
		if sm.Cause5GSM != nil {
			cause = sm.Cause5GSM.Value
		}
		delete(u.sessions, psi)
		u.event(Event{Kind: EventSessionReleased, PSI: psi, Cause: cause})
		return [][]byte{ul}, nil
	case *message.PDUSessRelRej:
		if s != nil && s.state == SessionReleasing && sm.PTI == s.pti {
			s.state = SessionActive
		}
		return nil, nil
	case *message.Status5GSM:
		var cause uint8
		if sm.Cause5GSM != nil {
			cause = sm.Cause5GSM.Value
		}
		u.log.Info("ue: 5GSM STATUS", slog.String("supi", u.supiStr), "psi", psi, "cause", cause)
		return nil, nil
	}
	return u.smStatus(psi, sm.ProcedureTransactionID(), CauseSMMessageNotImplemented)
}

// onSessionAccept takes the PDU address and the default QoS rule's QFI
// (TS 24.501 6.4.1.3).
func (u *UE) onSessionAccept(psi uint8, s *session, m *message.PDUSessEstAccept) ([][]byte, error) {
	if m.SelectedPDUSessType == nil || m.SelectedPDUSessType.Value != ie.PDUSessType_IPv4 ||
		m.PDUAddr == nil || len(m.PDUAddr.IPv4) != 4 {
		return nil, fmt.Errorf("PDU SESSION ESTABLISHMENT ACCEPT without an IPv4 PDU address: %w", ErrMalformed)
	}
	if m.AuthoQosRules == nil || len(m.AuthoQosRules.Rules) == 0 {
		return nil, fmt.Errorf("PDU SESSION ESTABLISHMENT ACCEPT without QoS rules: %w", ErrMalformed)
	}
	qfi := m.AuthoQosRules.Rules[0].QFI
	for _, r := range m.AuthoQosRules.Rules {
		if r.IsDefaultDQR {
			qfi = r.QFI
			break
		}
	}
	s.ipv4 = [4]byte(m.PDUAddr.IPv4)
	s.qfi = qfi
	s.state = SessionActive
	u.event(Event{Kind: EventSessionEstablished, PSI: psi})
	return nil, nil
}

// smStatus answers 5GSM STATUS (TS 24.501 6.5, 7).
func (u *UE) smStatus(psi, pti, cause uint8) ([][]byte, error) {
	ul, err := u.smTransport(psi, &message.Status5GSM{PDUSessId: psi, PTI: pti, Cause5GSM: &ie.Cause5GSM{Value: cause}}, nil, nil, nil)
	if err != nil {
		return nil, err
	}
	return [][]byte{ul}, nil
}
