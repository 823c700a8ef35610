package amf

import (
	"encoding/hex"
	"time"

	"github.com/free5gc/nas/ie"
	"github.com/free5gc/nas/message"
	"github.com/free5gc/ngap/aper"
	ngapie "github.com/free5gc/ngap/ie"
	ngapmsg "github.com/free5gc/ngap/message"

	"github.com/simgate/simgate/core/smf"
)

// ulNASTransport relays 5GSM from the UE to the SMF (TS 24.501 5.4.5.2):
// establishment requests start a PDU session, release requests and
// completes end one.
func (a *AMF) ulNASTransport(u *ue, m *message.ULNASTransport) {
	if u.state != stRegistered && u.state != stAccept {
		a.dropNAS(u, "unexpected", "detail", "UL NAS TRANSPORT in state "+u.state.String())
		return
	}
	if m.PayloadCntrType == nil || m.PayloadCntr == nil {
		a.dropNAS(u, "malformed", "detail", "UL NAS TRANSPORT without payload")
		return
	}
	if m.PayloadCntrType.Value != ie.PayloadCntrType_N1SMInfo {
		a.dropNAS(u, "unsupported", "detail", "UL NAS TRANSPORT payload container type", "type", m.PayloadCntrType.Value)
		return
	}
	n1 := m.PayloadCntr.Contents
	if m.PDUSessID == nil || m.PDUSessID.Value < 1 || m.PDUSessID.Value > 15 {
		a.dropNAS(u, "malformed", "detail", "N1 SM information without a PDU session ID 1..15")
		return
	}
	psi := m.PDUSessID.Value
	if len(n1) < 4 || n1[0] != epd5GSM {
		a.notForwarded(u, psi, n1, "payload is not a 5GSM message")
		return
	}
	switch message.MsgType(n1[3]) {
	case message.MsgTypePDUSessEstReq:
		a.establishSession(u, psi, m, n1)
	case message.MsgTypePDUSessRelReq, message.MsgTypePDUSessRelComplete:
		a.releaseSession(u, psi, n1)
	default:
		a.notForwarded(u, psi, n1, "5GSM message "+message.MsgType(n1[3]).String()+" not supported")
	}
}

// notForwarded returns the 5GSM message to the UE with 5GMM cause #90
// "payload was not forwarded" (TS 24.501 5.4.5.2.5).
func (a *AMF) notForwarded(u *ue, psi uint8, n1 []byte, reason string) {
	a.metrics.Dropped("nas", "5gsm_not_forwarded")
	u.logger().Warn("amf: 5GSM message not forwarded", "psi", psi, "reason", reason)
	if len(n1) == 0 {
		return
	}
	if err := a.sendNAS(u, dlNASTransport(psi, n1, causePayloadNotForwarded)); err != nil {
		u.logger().Warn("amf: DL NAS TRANSPORT not sent", "err", err)
	}
}

func dlNASTransport(psi uint8, n1 []byte, cause uint8) *message.DLNASTransport {
	m := &message.DLNASTransport{
		PayloadCntrType: &ie.PayloadCntrType{Value: ie.PayloadCntrType_N1SMInfo},
		PayloadCntr:     &ie.PayloadCntr{Pct: ie.PayloadCntrType_N1SMInfo, Contents: n1},
		PDUSessID:       &ie.PDUSessId2{Value: psi},
	}
	if cause != 0 {
		m.Cause5GMM = &ie.Cause5GMM{Value: cause}
	}
	return m
}

// establishSession asks the SMF for a PDU session and sends its answer:
// PDU Session Resource Setup Request with the accept, or the reject in DL
// NAS Transport (TS 23.502 4.3.2.2.1).
func (a *AMF) establishSession(u *ue, psi uint8, m *message.ULNASTransport, n1 []byte) {
	start := time.Now()
	sl := a.p.slices[0]
	if m.SNSSAI != nil {
		s, ok := a.allowedSlice(m.SNSSAI)
		if !ok {
			a.notForwarded(u, psi, n1, "S-NSSAI not in the allowed NSSAI")
			return
		}
		sl = s
	}
	dnn := a.cfg.DefaultDNN
	if m.DNN != nil && m.DNN.Value != "" {
		dnn = m.DNN.Value
	}
	if m.ReqType != nil && m.ReqType.Value != ie.ReqType_InitialReq {
		a.notForwarded(u, psi, n1, "request type other than initial request")
		return
	}
	ctx, cancel := a.callCtx()
	res, err := a.smf.CreateSession(ctx, smf.Identity{SUPI: u.supi, IMEI: u.imei, MSISDN: u.msisdn}, psi, sl.sst, sl.sdString(), dnn, n1)
	cancel()
	if err != nil {
		a.metrics.Procedure(ProcSessionEstablish, Failure, time.Since(start))
		a.notForwarded(u, psi, n1, "SMF: "+err.Error())
		return
	}
	if res.N2 == nil {
		a.metrics.Procedure(ProcSessionEstablish, Reject, time.Since(start))
		u.logger().Info("amf: PDU session establishment rejected by the SMF", "psi", psi, "dnn", dnn)
		if len(res.N1) > 0 {
			if err := a.sendNAS(u, dlNASTransport(psi, res.N1, 0)); err != nil {
				u.logger().Warn("amf: DL NAS TRANSPORT not sent", "err", err)
			}
		}
		return
	}
	pdu, err := u.sec.protect(dlNASTransport(psi, res.N1, 0), message.SecHdrTypeIntegrityProtectedAndCiphered)
	if err == nil {
		err = a.sendUE(u, &ngapmsg.PDUSessionResourceSetupRequest{
			AMFUENGAPID: &ngapie.AMFUENGAPID{Value: u.amfID},
			RANUENGAPID: &ngapie.RANUENGAPID{Value: u.ranID},
			PDUSessionResourceSetupListSUReq: &ngapie.PDUSessionResourceSetupListSUReq{List: []ngapie.PDUSessionResourceSetupItemSUReq{{
				PDUSessionID:                           &ngapie.PDUSessionID{Value: int64(psi)},
				PDUSessionNASPDU:                       &ngapie.NASPDU{Value: pdu},
				SNSSAI:                                 ngapSNSSAI(sl),
				PDUSessionResourceSetupRequestTransfer: (*aper.OctetString)(&res.N2),
			}}},
		})
	}
	if err != nil {
		u.logger().Warn("amf: PDU Session Resource Setup Request not sent", "psi", psi, "err", err)
		a.metrics.Procedure(ProcSessionEstablish, Failure, time.Since(start))
		return
	}
	u.sessions[psi] = sessPending
	u.logger().Info("amf: PDU session requested", "psi", psi, "dnn", dnn, "sst", sl.sst, "sd", sl.sdString())
}

// allowedSlice maps the UE's S-NSSAI to a served one.
func (a *AMF) allowedSlice(s *ie.SNSSAI) (snssai, bool) {
	var sd [3]byte
	hasSD := s.SD != "" && !isNoSD(s.SD)
	if hasSD {
		b, err := hex.DecodeString(s.SD)
		if err != nil || len(b) != 3 {
			return snssai{}, false
		}
		sd = [3]byte(b)
	}
	for _, sl := range a.p.slices {
		if sl.sst == s.SST && sl.hasSD == hasSD && (!hasSD || sl.sd == sd) {
			return sl, true
		}
	}
	return snssai{}, false
}

func isNoSD(sd string) bool { return sd == "ffffff" || sd == "FFFFFF" }

// sessionSetupResponse passes the gNB's transfers to the SMF (TS 23.502
// 4.3.2.2.1 steps 14-16).
func (a *AMF) sessionSetupResponse(u *ue, m *ngapmsg.PDUSessionResourceSetupResponse) {
	if m.PDUSessionResourceSetupListSURes != nil {
		for _, it := range m.PDUSessionResourceSetupListSURes.List {
			if it.PDUSessionID == nil || it.PDUSessionID.Value < 1 || it.PDUSessionID.Value > 15 || it.PDUSessionResourceSetupResponseTransfer == nil {
				a.dropNGAP(u.g, "PDU session setup item without ID or transfer")
				continue
			}
			psi := uint8(it.PDUSessionID.Value)
			if u.sessions[psi] != sessPending {
				u.logger().Warn("amf: setup response for a PDU session not being set up", "psi", psi)
				continue
			}
			ctx, cancel := a.callCtx()
			err := a.smf.ActivateSession(ctx, u.supi, psi, *it.PDUSessionResourceSetupResponseTransfer)
			cancel()
			if err != nil {
				u.logger().Warn("amf: PDU session activation failed", "psi", psi, "err", err)
				a.metrics.Procedure(ProcSessionEstablish, Failure, 0)
				continue
			}
			u.sessions[psi] = sessActive
			a.metrics.Procedure(ProcSessionEstablish, Success, 0)
			u.logger().Info("amf: PDU session established", "psi", psi)
		}
	}
	if m.PDUSessionResourceFailedToSetupListSURes != nil {
		for _, it := range m.PDUSessionResourceFailedToSetupListSURes.List {
			if it.PDUSessionID == nil {
				continue
			}
			// The SMF keeps the session until the UE releases it or
			// deregisters (its API has no local release of one session).
			u.logger().Warn("amf: gNB failed to set up PDU session", "psi", it.PDUSessionID.Value)
			a.metrics.Procedure(ProcSessionEstablish, Failure, 0)
		}
	}
}

// releaseSession passes a PDU SESSION RELEASE REQUEST or COMPLETE to the
// SMF and sends its answer (TS 23.502 4.3.4.2).
func (a *AMF) releaseSession(u *ue, psi uint8, n1 []byte) {
	ctx, cancel := a.callCtx()
	res, err := a.smf.ReleaseSession(ctx, u.supi, psi, n1)
	cancel()
	if err != nil {
		a.notForwarded(u, psi, n1, "SMF: "+err.Error())
		return
	}
	if message.MsgType(n1[3]) == message.MsgTypePDUSessRelComplete {
		u.sessions[psi] = sessNone
		a.metrics.Procedure(ProcSessionRelease, Success, 0)
		u.logger().Info("amf: PDU session released", "psi", psi)
		return
	}
	if len(res.N1) == 0 {
		return
	}
	if res.N2 == nil {
		if err := a.sendNAS(u, dlNASTransport(psi, res.N1, 0)); err != nil {
			u.logger().Warn("amf: DL NAS TRANSPORT not sent", "err", err)
		}
		return
	}
	pdu, err := u.sec.protect(dlNASTransport(psi, res.N1, 0), message.SecHdrTypeIntegrityProtectedAndCiphered)
	if err == nil {
		err = a.sendUE(u, &ngapmsg.PDUSessionResourceReleaseCommand{
			AMFUENGAPID: &ngapie.AMFUENGAPID{Value: u.amfID},
			RANUENGAPID: &ngapie.RANUENGAPID{Value: u.ranID},
			NASPDU:      &ngapie.NASPDU{Value: pdu},
			PDUSessionResourceToReleaseListRelCmd: &ngapie.PDUSessionResourceToReleaseListRelCmd{List: []ngapie.PDUSessionResourceToReleaseItemRelCmd{{
				PDUSessionID:                             &ngapie.PDUSessionID{Value: int64(psi)},
				PDUSessionResourceReleaseCommandTransfer: (*aper.OctetString)(&res.N2),
			}}},
		})
	}
	if err != nil {
		u.logger().Warn("amf: PDU Session Resource Release Command not sent", "psi", psi, "err", err)
		return
	}
	u.sessions[psi] = sessRelease
}

func (a *AMF) sessionReleaseResponse(u *ue, m *ngapmsg.PDUSessionResourceReleaseResponse) {
	if m.PDUSessionResourceReleasedListRelRes == nil {
		return
	}
	for _, it := range m.PDUSessionResourceReleasedListRelRes.List {
		if it.PDUSessionID != nil {
			u.logger().Debug("amf: gNB released PDU session resources", "psi", it.PDUSessionID.Value)
		}
	}
}

// releaseAllSessions releases the UE's PDU sessions locally in the SMF
// (deregistration, TS 24.501 5.5.2.2.2).
func (a *AMF) releaseAllSessions(u *ue) {
	if u.supi == "" {
		return
	}
	ctx, cancel := a.callCtx()
	err := a.smf.ReleaseAll(ctx, u.supi)
	cancel()
	if err != nil {
		u.logger().Warn("amf: releasing PDU sessions failed", "err", err)
	}
	u.sessions = [16]uint8{}
}
