package amf

import (
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"time"

	"github.com/free5gc/nas/ie"
	"github.com/free5gc/nas/message"
	ngapie "github.com/free5gc/ngap/ie"
	ngapmsg "github.com/free5gc/ngap/message"

	"github.com/simgate/simgate/core/ausf"
	"github.com/simgate/simgate/core/udm"
	"github.com/simgate/simgate/core/udr"
	"github.com/simgate/simgate/sim/kdf"
	"github.com/simgate/simgate/sim/suci"
)

// 5GMM causes the AMF sends (TS 24.501 9.11.3.2).
const (
	causeIllegalUE           = ie.Cause5GMM_IllegalUE                  // #3: SIM inactive
	causePEINotAccepted      = ie.Cause5GMM_PEINotAccepted             // #5: IMEI lock
	cause5GSNotAllowed       = ie.Cause5GMM_5GSSvcNotAllowed           // #7: unknown subscriber
	causeIdentityUnknown     = ie.Cause5GMM_UEIdCannotBeDerivedByTheNw // #9: SUCI not de-concealable
	causePLMNNotAllowed      = ie.Cause5GMM_PLMNNotAllowed             // #11: SUCI/GUTI of another PLMN
	causeSecCapMismatch      = ie.Cause5GMM_UESecCapabilitiesMismatch  // #23
	causeSecModeRejected     = ie.Cause5GMM_SecModeRejected            // #24
	causeInvalidMandatory    = ie.Cause5GMM_InvalidMandatoryInfo       // #96
	causeProtocolError       = ie.Cause5GMM_ProtError                  // #111
	causePayloadNotForwarded = ie.Cause5GMM_PayloadWasNotForwarded     // #90
)

// abba is the ABBA parameter (TS 33.501 A.7.1): 0x0000.
var abba = []byte{0x00, 0x00}

// ngKSI value "no key is available" (TS 24.501 9.11.3.32).
const ksiNone = 7

// dropNAS discards a NAS message: counted by code, logged with detail.
func (a *AMF) dropNAS(u *ue, code string, args ...any) {
	a.metrics.Dropped("nas", code)
	u.logger().Warn("amf: NAS message dropped: "+code, args...)
}

// parseGMM decodes a plain 5GMM message. IEs the library does not
// implement are skipped (TS 24.501 7.6.1: unknown IEs are ignored).
func parseGMM(b []byte) (message.Message, error) {
	if len(b) < minPlainGMM || b[0] != epd5GMM || b[1]&0x0F != 0 {
		return nil, errors.New("not a plain 5GMM message")
	}
	m, err := message.ParseGMM(b)
	if m == nil {
		if err == nil {
			err = errors.New("empty message")
		}
		return nil, err
	}
	var todo *message.Error
	if err != nil && !errors.As(err, &todo) {
		return nil, err
	}
	return m, nil
}

// initialNAS handles the NAS-PDU of an Initial UE Message: a REGISTRATION
// REQUEST, plain or integrity protected (TS 24.501 4.4.6). This AMF keeps
// no NAS security context across connections, so a protected one is read
// like a plain one and the UE is authenticated afresh.
func (a *AMF) initialNAS(u *ue, b []byte) {
	if len(b) < minPlainGMM || b[0] != epd5GMM {
		a.dropNAS(u, "malformed", "detail", "initial NAS message is not 5GMM", "len", len(b))
		a.release(u, nasCause(ngapie.CauseNasPresentUnspecified))
		return
	}
	plain := b
	switch message.SecHdrType(b[1] & 0x0F) {
	case message.SecHdrTypePlainNas:
	case message.SecHdrTypeIntegrityProtected:
		if len(b) < secHdrLen+minPlainGMM {
			a.dropNAS(u, "malformed", "detail", "short integrity protected initial message")
			a.release(u, nasCause(ngapie.CauseNasPresentUnspecified))
			return
		}
		plain = b[secHdrLen:]
		u.initialProtected = true
	default:
		a.dropNAS(u, "header_type", "detail", "initial NAS message ciphered without a security context")
		a.release(u, nasCause(ngapie.CauseNasPresentUnspecified))
		return
	}
	m, err := parseGMM(plain)
	if err != nil {
		a.dropNAS(u, "malformed", "err", err)
		a.release(u, nasCause(ngapie.CauseNasPresentUnspecified))
		return
	}
	req, ok := m.(*message.RegReq)
	if !ok {
		a.dropNAS(u, "unexpected", "detail", "initial NAS message is not a REGISTRATION REQUEST", "type", m.MsgType().String())
		a.release(u, nasCause(ngapie.CauseNasPresentUnspecified))
		return
	}
	a.registrationRequest(u, req, plain)
}

// uplinkNAS handles a NAS-PDU from Uplink NAS Transport.
func (a *AMF) uplinkNAS(u *ue, b []byte) {
	if len(b) < minPlainGMM {
		a.dropNAS(u, "malformed", "len", len(b))
		return
	}
	if b[0] != epd5GMM {
		a.dropNAS(u, "malformed", "detail", "not a 5GMM message", "epd", b[0])
		return
	}
	if b[1]&0x0F == byte(message.SecHdrTypePlainNas) {
		a.plainNAS(u, b)
		return
	}
	sht := message.SecHdrType(b[1] & 0x0F)
	newCtx := sht == message.SecHdrTypeIntegrityProtectedWithNew5gNasSecCtx || sht == message.SecHdrTypeIntegrityProtectedAndCipheredWithNew5gNasSecCtx
	sec := u.sec
	if newCtx {
		if u.state != stSMC || u.pendingSec == nil {
			a.dropNAS(u, "header_type", "detail", "new security context outside security mode control", "state", u.state.String())
			return
		}
		sec = u.pendingSec
	}
	if sec == nil {
		a.dropNAS(u, "no_security_context", "detail", "security protected message without a security context", "state", u.state.String())
		return
	}
	plain, count, err := sec.unprotect(b, newCtx)
	if err != nil {
		code := "malformed"
		switch {
		case errors.Is(err, errNASReplay):
			code = "replay"
		case errors.Is(err, errNASMAC):
			code = "mac_failure"
		case errors.Is(err, errNASHeader):
			code = "header_type"
		}
		a.dropNAS(u, code, "err", err, "state", u.state.String())
		if newCtx && (code == "mac_failure" || code == "replay") {
			// flow.md: a SECURITY MODE COMPLETE failing the MAC check is
			// discarded, then the registration is rejected with #24, plain.
			a.metrics.Procedure(ProcSecurityMode, Failure, 0)
			a.regReject(u, causeSecModeRejected, "SECURITY MODE COMPLETE failed the integrity check")
		}
		return
	}
	m, err := parseGMM(plain)
	if err != nil {
		a.dropNAS(u, "malformed", "err", err)
		return
	}
	if newCtx {
		a.securityModeComplete(u, m, count)
		return
	}
	switch msg := m.(type) {
	case *message.RegComplete:
		a.registrationComplete(u)
	case *message.ULNASTransport:
		a.ulNASTransport(u, msg)
	case *message.DeregReqUEOrig:
		a.ueDeregistration(u, msg)
	case *message.DeregAcceptUETerm:
		a.networkDeregistrationAccepted(u)
	case *message.RegReq:
		a.registrationUpdate(u, msg)
	case *message.Status5GMM:
		u.logger().Warn("amf: 5GMM STATUS from UE", "cause", statusCause(msg.Cause5GMM))
	default:
		a.dropNAS(u, "unexpected", "type", m.MsgType().String(), "state", u.state.String())
	}
}

// plainNAS handles a plain NAS message. Before the secure exchange of NAS
// messages is established only the messages of TS 24.501 4.4.4.3 are
// processed; after it, none.
func (a *AMF) plainNAS(u *ue, b []byte) {
	if u.sec != nil {
		a.dropNAS(u, "plain_after_security", "detail", "plain NAS message after security mode control (TS 24.501 4.4.4.3)")
		return
	}
	m, err := parseGMM(b)
	if err != nil {
		a.dropNAS(u, "malformed", "err", err)
		return
	}
	switch msg := m.(type) {
	case *message.RegReq:
		a.registrationRequest(u, msg, b)
	case *message.IdRsp:
		a.identityResponse(u, b)
	case *message.AuthRsp:
		a.authenticationResponse(u, msg)
	case *message.AuthFailure:
		a.authenticationFailure(u, msg)
	case *message.SecModeRej:
		a.securityModeReject(u, msg)
	case *message.DeregReqUEOrig:
		a.ueDeregistration(u, msg)
	case *message.Status5GMM:
		u.logger().Warn("amf: 5GMM STATUS from UE", "cause", statusCause(msg.Cause5GMM))
	default:
		a.dropNAS(u, "unprotected", "detail", "message not allowed without integrity protection", "type", m.MsgType().String())
	}
}

func statusCause(c *ie.Cause5GMM) uint8 {
	if c == nil {
		return 0
	}
	return c.Value
}

// sendNAS sends a 5GMM message, protected (header type 2) once the UE has
// a NAS security context, plain before.
func (a *AMF) sendNAS(u *ue, m message.Message) error {
	var b []byte
	var err error
	if u.sec != nil {
		b, err = u.sec.protect(m, message.SecHdrTypeIntegrityProtectedAndCiphered)
	} else {
		b, err = m.MarshalBinary()
	}
	if err != nil {
		return fmt.Errorf("amf: encode %v: %w", m.MsgType(), err)
	}
	return a.sendDownlinkNAS(u, b)
}

// registrationRequest starts (or restarts) the registration procedure
// (TS 24.501 5.5.1.2.2).
func (a *AMF) registrationRequest(u *ue, req *message.RegReq, plain []byte) {
	switch u.state {
	case stNew:
	case stIdentity, stAuth, stSMC:
		// TS 24.501 5.5.1.2.8 (d): a new REGISTRATION REQUEST before the
		// procedure completed restarts it.
		u.logger().Info("amf: REGISTRATION REQUEST during registration; restarting")
		u.stopTimers()
		if u.auth.active {
			a.ausf.Abort(u.auth.id)
			u.auth.active = false
		}
		u.pendingSec = nil
		u.state = stNew
	default:
		a.dropNAS(u, "unexpected", "detail", "REGISTRATION REQUEST in state "+u.state.String())
		return
	}
	u.ngksi = 0
	if req.Ngksi != nil && req.Ngksi.Ksi != ksiNone {
		u.ngksi = (req.Ngksi.Ksi + 1) % ksiNone // a KSI the UE does not hold
	}
	if req.UESecCapability == nil {
		a.regReject(u, causeInvalidMandatory, "no UE security capability")
		return
	}
	u.secCap = req.UESecCapability
	id, err := rawIdentity(plain, 4)
	if err != nil {
		a.regReject(u, causeInvalidMandatory, err.Error())
		return
	}
	switch id[0] & 0x07 {
	case ie.IdType_5GS_SUCI:
		a.identifiedBySUCI(u, id)
	case ie.IdType_5GS_GUTI:
		g, err := parseGUTI(id)
		if err != nil {
			a.regReject(u, causeInvalidMandatory, err.Error())
			return
		}
		if g.mcc != a.p.mcc || g.mnc != a.p.mnc {
			a.regReject(u, causePLMNNotAllowed, "5G-GUTI of PLMN "+g.mcc+"-"+g.mnc)
			return
		}
		if g.region == a.cfg.GUAMI.RegionID && g.set == a.cfg.GUAMI.SetID && g.pointer == a.cfg.GUAMI.Pointer {
			if supi, ok := a.lookupTMSI(g.tmsi); ok {
				u.identity = udm.Identity{SUPI: supi}
				u.supi = supi
				u.logger().Info("amf: 5G-GUTI resolved", "tmsi", fmt.Sprintf("%08x", g.tmsi))
				a.authenticate(u)
				return
			}
		}
		u.logger().Info("amf: unknown 5G-GUTI; identifying the UE", "guti", hex.EncodeToString(id[1:]))
		a.identityRequest(u)
	default:
		a.identityRequest(u)
	}
}

// identifiedBySUCI continues with a SUCI (5GS mobile identity value).
func (a *AMF) identifiedBySUCI(u *ue, id []byte) {
	var s suci.SUCI
	if err := s.UnmarshalBinary(id); err != nil {
		cause := causeInvalidMandatory
		if errors.Is(err, suci.ErrUnsupported) {
			cause = causeIdentityUnknown
		}
		a.regReject(u, cause, err.Error())
		return
	}
	if s.SUPIType == suci.SUPITypeIMSI && (s.MCC != a.p.mcc || s.MNC != a.p.mnc) {
		a.regReject(u, causePLMNNotAllowed, "SUCI of PLMN "+s.MCC+"-"+s.MNC)
		return
	}
	u.identity = udm.Identity{SUCI: &s}
	a.authenticate(u)
}

// identityRequest asks for the SUCI (TS 24.501 5.4.3).
func (a *AMF) identityRequest(u *ue) {
	req := &message.IdReq{IdType: &ie.IdType5GS{IdType: ie.IdType_5GS_SUCI}}
	send := func() error { return a.sendNAS(u, req) }
	if err := send(); err != nil {
		u.logger().Warn("amf: IDENTITY REQUEST not sent", "err", err)
		a.abortRegistration(u, ProcIdentification, Failure)
		return
	}
	u.state = stIdentity
	a.arm(u, a.cfg.Timers.T3570, send, func() { a.abortRegistration(u, ProcIdentification, Timeout) })
}

func (a *AMF) identityResponse(u *ue, plain []byte) {
	if u.state != stIdentity {
		a.dropNAS(u, "unexpected", "detail", "IDENTITY RESPONSE in state "+u.state.String())
		return
	}
	id, err := rawIdentity(plain, 3)
	if err != nil || id[0]&0x07 != ie.IdType_5GS_SUCI {
		a.dropNAS(u, "malformed", "detail", "IDENTITY RESPONSE without a SUCI", "err", err)
		return
	}
	u.stopTimers()
	a.metrics.Procedure(ProcIdentification, Success, 0)
	a.identifiedBySUCI(u, id)
}

// authenticate starts 5G AKA through the AUSF (TS 33.501 6.1.3.2).
func (a *AMF) authenticate(u *ue) {
	ctx, cancel := a.callCtx()
	ch, err := a.ausf.Authenticate(ctx, u.identity, a.p.snn)
	cancel()
	if err != nil {
		switch {
		case errors.Is(err, udm.ErrUnknownSubscriber):
			a.regReject(u, cause5GSNotAllowed, "unknown subscriber")
		case errors.Is(err, udm.ErrInactive):
			a.regReject(u, causeIllegalUE, "SIM inactive")
		case errors.Is(err, udm.ErrDeconceal):
			a.regReject(u, causeIdentityUnknown, err.Error())
		default:
			u.logger().Error("amf: authentication could not start", "err", err)
			a.regReject(u, causeProtocolError, "authentication could not start")
		}
		return
	}
	a.challenge(u, ch)
}

// challenge sends AUTHENTICATION REQUEST for an AUSF challenge.
func (a *AMF) challenge(u *ue, ch ausf.Challenge) {
	u.auth.active, u.auth.id = true, ch.ID
	u.auth.rand, u.auth.autn, u.auth.hxres = ch.RAND, ch.AUTN, ch.HXRESStar
	req := &message.AuthReq{
		Ngksi:                   &ie.NASKeySetId{Tsc: ie.SecCtxTypeNative, Ksi: u.ngksi},
		ABBA:                    &ie.ABBA{Abba: abba},
		AuthParamRAND5GAuthChlg: &ie.AuthParamRAND{Rand: ch.RAND[:]},
		AuthParamAUTN5GAuthChlg: &ie.AuthParamAUTN{Autn: ch.AUTN[:]},
	}
	send := func() error { return a.sendNAS(u, req) }
	if err := send(); err != nil {
		u.logger().Warn("amf: AUTHENTICATION REQUEST not sent", "err", err)
		a.abortRegistration(u, ProcAuthentication, Failure)
		return
	}
	u.state = stAuth
	a.arm(u, a.cfg.Timers.T3560, send, func() { a.abortRegistration(u, ProcAuthentication, Timeout) })
}

func (a *AMF) authenticationResponse(u *ue, m *message.AuthRsp) {
	if u.state != stAuth || !u.auth.active {
		a.dropNAS(u, "unexpected", "detail", "AUTHENTICATION RESPONSE in state "+u.state.String())
		return
	}
	u.stopTimers()
	if m.AuthRspParam == nil || len(m.AuthRspParam.Res) != 16 {
		a.authReject(u, "no 16-octet RES* in AUTHENTICATION RESPONSE")
		return
	}
	res := [16]byte(m.AuthRspParam.Res)
	// TS 33.501 6.1.3.2 step 10: the SEAF checks HRES* against HXRES*.
	if kdf.HRESStar(u.auth.rand, res) != u.auth.hxres {
		a.authReject(u, "HRES* does not match HXRES*")
		return
	}
	ctx, cancel := a.callCtx()
	r, err := a.ausf.Confirm(ctx, u.auth.id, ausf.Response{RESStar: res})
	cancel()
	u.auth.active = false
	if err != nil {
		a.authReject(u, err.Error())
		return
	}
	if u.identity.SUPI != "" && r.SUPI != u.identity.SUPI {
		a.authReject(u, "AUSF authenticated "+r.SUPI+", not the SUPI of the 5G-GUTI")
		return
	}
	u.supi = r.SUPI
	u.identity = udm.Identity{SUPI: r.SUPI} // the SUCI is not needed any more
	a.metrics.Procedure(ProcAuthentication, Success, 0)
	// TS 33.501 A.7: KAMF from KSEAF, SUPI and ABBA.
	kamf, err := kdf.KAMF(r.KSEAF, r.SUPI, abba)
	if err != nil {
		u.logger().Error("amf: KAMF", "err", err)
		a.regReject(u, causeProtocolError, "KAMF derivation failed")
		return
	}
	a.claimSUPI(u)
	ctx, cancel = a.callCtx()
	sub, err := a.udm.Subscription(ctx, r.SUPI)
	cancel()
	switch {
	case errors.Is(err, udm.ErrUnknownSubscriber):
		a.regReject(u, cause5GSNotAllowed, "subscriber deleted")
		return
	case err != nil:
		u.logger().Error("amf: subscription data", "err", err)
		a.regReject(u, causeProtocolError, "no subscription data")
		return
	case !sub.Active():
		a.regReject(u, causeIllegalUE, "SIM inactive")
		return
	}
	u.msisdn, u.lock = sub.MSISDN, sub.IMEILock
	a.securityMode(u, kamf)
}

// authenticationFailure handles AUTHENTICATION FAILURE (TS 24.501
// 5.4.1.3.7): #20 MAC failure ends in AUTHENTICATION REJECT; #21
// synchronisation failure resynchronises with AUTS and sends a new
// challenge (twice at most in one registration).
func (a *AMF) authenticationFailure(u *ue, m *message.AuthFailure) {
	if u.state != stAuth || !u.auth.active {
		a.dropNAS(u, "unexpected", "detail", "AUTHENTICATION FAILURE in state "+u.state.String())
		return
	}
	u.stopTimers()
	cause := statusCause(m.Cause5GMM)
	switch cause {
	case ie.Cause5GMM_SynchFailure:
		if m.AuthFailureParam == nil || len(m.AuthFailureParam.Value) != 14 {
			a.authReject(u, "synch failure without a 14-octet AUTS")
			return
		}
		if u.auth.resyncs >= 2 {
			a.authReject(u, "repeated synch failure")
			return
		}
		u.auth.resyncs++
		u.logger().Info("amf: synch failure; resynchronising SQN")
		ctx, cancel := a.callCtx()
		ch, err := a.ausf.Resync(ctx, u.auth.id, [14]byte(m.AuthFailureParam.Value))
		cancel()
		u.auth.active = false
		if err != nil {
			a.authReject(u, "resynchronisation: "+err.Error())
			return
		}
		a.challenge(u, ch)
	case ie.Cause5GMM_MACFailure:
		a.authReject(u, "UE reports MAC failure (#20): network not authenticated")
	default:
		a.authReject(u, fmt.Sprintf("UE reports authentication failure #%d", cause))
	}
}

// authReject sends AUTHENTICATION REJECT and releases the connection.
func (a *AMF) authReject(u *ue, reason string) {
	if u.auth.active {
		a.ausf.Abort(u.auth.id)
		u.auth.active = false
	}
	u.logger().Warn("amf: authentication failed; AUTHENTICATION REJECT", "reason", reason, "identity", u.identity.String())
	if err := a.sendNAS(u, &message.AuthRej{}); err != nil {
		u.logger().Warn("amf: AUTHENTICATION REJECT not sent", "err", err)
	}
	a.metrics.Reject(RejectAuthentication, 0)
	a.metrics.Procedure(ProcAuthentication, Reject, 0)
	a.metrics.Procedure(ProcRegistration, Reject, time.Since(u.start))
	a.release(u, nasCause(ngapie.CauseNasPresentAuthenticationFailure))
}

// securityMode starts NAS security mode control (TS 24.501 5.4.2, TS
// 33.501 6.7.2) with a new 5G NAS security context from KAMF.
func (a *AMF) securityMode(u *ue, kamf [32]byte) {
	integ, ciph, ok := selectAlgorithms(u.secCap, a.p.integrity, a.p.ciphering)
	if !ok {
		a.regReject(u, causeSecCapMismatch, "UE supports none of the configured NAS algorithms")
		return
	}
	sec, err := newNASSecurity(kamf, u.ngksi, integ, ciph)
	if err != nil {
		u.logger().Error("amf: NAS keys", "err", err)
		a.regReject(u, causeProtocolError, "NAS key derivation failed")
		return
	}
	cmd := &message.SecModeCmd{
		SelectedNASSecAlgos:       &ie.NASSecAlgos{CipheringAlgo: ie.AlgCiphering(ciph), MsgIntAlgo: ie.AlgIntegrity(integ)},
		Ngksi:                     &ie.NASKeySetId{Tsc: ie.SecCtxTypeNative, Ksi: u.ngksi},
		ReplayedUESecCapabilities: u.secCap,
		IMEISVReq:                 &ie.IMEISVReq{Value: ie.IMEISV_Requested},
	}
	if u.initialProtected {
		// TS 24.501 5.4.2.2: the initial message could not be checked,
		// so ask for it again in the NAS message container.
		cmd.Additional5GSecInfo = &ie.Additional5GSecInfo{RINMR: true}
	}
	u.pendingSec = sec
	send := func() error {
		b, err := sec.protect(cmd, message.SecHdrTypeIntegrityProtectedWithNew5gNasSecCtx)
		if err != nil {
			return err
		}
		return a.sendDownlinkNAS(u, b)
	}
	if err := send(); err != nil {
		u.logger().Warn("amf: SECURITY MODE COMMAND not sent", "err", err)
		a.abortRegistration(u, ProcSecurityMode, Failure)
		return
	}
	u.state = stSMC
	a.arm(u, a.cfg.Timers.T3560, send, func() { a.abortRegistration(u, ProcSecurityMode, Timeout) })
}

func (a *AMF) securityModeReject(u *ue, m *message.SecModeRej) {
	if u.state != stSMC {
		a.dropNAS(u, "unexpected", "detail", "SECURITY MODE REJECT in state "+u.state.String())
		return
	}
	cause := statusCause(m.Cause5GMM)
	u.stopTimers()
	u.pendingSec = nil
	a.metrics.Procedure(ProcSecurityMode, Reject, 0)
	// TS 24.501 5.4.2.5: the procedure that needed security is aborted.
	if cause != causeSecCapMismatch {
		cause = causeSecModeRejected
	}
	a.regReject(u, cause, fmt.Sprintf("UE rejected the SECURITY MODE COMMAND (#%d)", statusCause(m.Cause5GMM)))
}

// securityModeComplete takes the new security context into use, checks
// the PEI against the IMEI lock and accepts the registration.
func (a *AMF) securityModeComplete(u *ue, m message.Message, ulCount uint32) {
	smc, ok := m.(*message.SecModeComplete)
	if !ok {
		a.dropNAS(u, "unexpected", "detail", "new security context on a "+m.MsgType().String())
		return
	}
	u.stopTimers()
	u.sec, u.pendingSec = u.pendingSec, nil
	a.metrics.Procedure(ProcSecurityMode, Success, 0)
	imei, err := peiOf(smc)
	if err != nil {
		a.regReject(u, causeInvalidMandatory, err.Error())
		return
	}
	u.imei = imei
	if smc.NASMsgCntr != nil && len(smc.NASMsgCntr.Contents) > 0 {
		// TS 24.501 4.4.6: the complete initial message.
		if rm, err := parseGMM(smc.NASMsgCntr.Contents); err != nil {
			u.logger().Warn("amf: NAS message container unreadable; ignored", "err", err)
		} else if rr, ok := rm.(*message.RegReq); ok && rr.UESecCapability != nil && !sameCapability(rr.UESecCapability, u.secCap) {
			a.regReject(u, causeSecCapMismatch, "UE security capability differs in the NAS message container")
			return
		}
	}
	if !u.lock.Permits(imei) {
		a.regReject(u, causePEINotAccepted, fmt.Sprintf("IMEI %q does not satisfy the SIM's IMEI lock %s", imei, u.lock.String()))
		return
	}
	a.acceptRegistration(u, ulCount)
}

// peiOf returns the IMEI (15 digits, check digit computed, TS 23.003 6.2.1)
// from the IMEISV or the PEI of a SECURITY MODE COMPLETE, or "" if the UE
// sent neither.
func peiOf(m *message.SecModeComplete) (string, error) {
	var d []uint8
	switch {
	case m.IMEISV != nil && m.IMEISV.TypeOfId == ie.IdType_5GS_IMEISV:
		d = m.IMEISV.IMEISV[:14]
	case m.NonimeisvPEI != nil && m.NonimeisvPEI.TypeOfId == ie.IdType_5GS_IMEI:
		d = m.NonimeisvPEI.IMEI[:14]
	default:
		return "", nil
	}
	b := make([]byte, 14, 15)
	for i, v := range d {
		if v > 9 {
			return "", fmt.Errorf("PEI digit %d is %#x, not a decimal digit", i+1, v)
		}
		b[i] = '0' + v
	}
	return string(append(b, byte('0'+udr.IMEICheckDigit(string(b))))), nil
}

// acceptRegistration allocates a 5G-GUTI and sends REGISTRATION ACCEPT in
// Initial Context Setup with KgNB derived with the uplink NAS COUNT of the
// SECURITY MODE COMPLETE (TS 33.501 6.9.2.1.1, A.9).
func (a *AMF) acceptRegistration(u *ue, ulCount uint32) {
	kgnb, err := kdf.KgNB(u.sec.kamf, ulCount, kdf.Access3GPP)
	if err != nil {
		u.logger().Error("amf: KgNB", "err", err)
		a.regReject(u, causeProtocolError, "KgNB derivation failed")
		return
	}
	if _, err := a.allocTMSI(u); err != nil {
		u.logger().Error("amf: 5G-TMSI", "err", err)
		a.regReject(u, causeProtocolError, "no 5G-TMSI")
		return
	}
	acc := a.registrationAccept()
	acc.GUTI5G = a.gutiIE(u)
	pdu, err := u.sec.protect(acc, message.SecHdrTypeIntegrityProtectedAndCiphered)
	if err == nil {
		err = a.sendInitialContextSetup(u, kgnb, pdu)
	}
	if err != nil {
		u.logger().Warn("amf: Initial Context Setup Request not sent", "err", err)
		a.abortRegistration(u, ProcRegistration, Failure)
		return
	}
	u.state = stAccept
	a.arm(u, a.cfg.Timers.T3550, func() error { return a.sendNAS(u, acc) },
		func() { a.abortRegistration(u, ProcRegistration, Timeout) })
}

// registrationAccept builds REGISTRATION ACCEPT (TS 24.501 8.2.7): 3GPP
// access, the TAI list and the allowed NSSAI; the caller adds a 5G-GUTI.
func (a *AMF) registrationAccept() *message.RegAccept {
	tais := make([]ie.TrackingAreaId5GS, 0, len(a.p.tacs))
	for _, t := range a.p.tacs {
		tais = append(tais, ie.TrackingAreaId5GS{PlmnId: ie.PlmnId{MCC: a.p.mcc, MNC: a.p.mnc}, TAC: hex.EncodeToString(t[:])})
	}
	nssai := make([]ie.SNSSAI, 0, len(a.p.slices))
	for _, s := range a.p.slices {
		nssai = append(nssai, ie.SNSSAI{SST: s.sst, SD: s.sdString()})
	}
	acc := &message.RegAccept{
		RegResult5GS: &ie.RegResult5GS{Value: ie.RegResult_3gpp},
		TAIList:      &ie.TrackingAreaIdList5GS{TAI: tais},
		AllowedNSSAI: &ie.NSSAI{SNSSAIs: nssai},
	}
	return acc
}

// gutiIE is the UE's 5G-GUTI as a 5GS mobile identity (TS 24.501
// 9.11.3.4).
func (a *AMF) gutiIE(u *ue) *ie.MobileId5GS {
	var t [4]byte
	binary.BigEndian.PutUint32(t[:], u.tmsi)
	return &ie.MobileId5GS{
		TypeOfId: ie.IdType_5GS_GUTI, PlmnId: ie.PlmnId{MCC: a.p.mcc, MNC: a.p.mnc},
		AMFRegionID: a.cfg.GUAMI.RegionID, AMFSetID: a.cfg.GUAMI.SetID, AMFPointer: a.cfg.GUAMI.Pointer, TMSI5G: t,
	}
}

func (a *AMF) registrationComplete(u *ue) {
	if u.state != stAccept {
		a.dropNAS(u, "unexpected", "detail", "REGISTRATION COMPLETE in state "+u.state.String())
		return
	}
	u.stopTimers()
	a.setState(u, stRegistered)
	d := time.Since(u.start)
	a.metrics.Procedure(ProcRegistration, Success, d)
	u.logger().Info("amf: UE registered", "imei", u.imei, "msisdn", u.msisdn, "guti", a.guti(u),
		"nia", u.sec.integ, "nea", u.sec.ciph, "took", d.Round(time.Microsecond).String())
}

// registrationUpdate answers a mobility or periodic registration update of
// a registered UE (TS 24.501 5.5.1.3) on its current connection, keeping
// its 5G-GUTI.
func (a *AMF) registrationUpdate(u *ue, req *message.RegReq) {
	if u.state != stRegistered || req.RegType5GS == nil ||
		(req.RegType5GS.Value != ie.RegType_MobilityRegUpdating && req.RegType5GS.Value != ie.RegType_PeriodicRegUpdating) {
		a.dropNAS(u, "unexpected", "detail", "REGISTRATION REQUEST on an established connection", "state", u.state.String())
		return
	}
	if err := a.sendNAS(u, a.registrationAccept()); err != nil {
		u.logger().Warn("amf: REGISTRATION ACCEPT not sent", "err", err)
		return
	}
	a.metrics.Procedure(ProcRegistration, Success, 0)
}

// regReject sends REGISTRATION REJECT (protected once security is in use,
// plain before) and releases the connection.
func (a *AMF) regReject(u *ue, cause uint8, reason string) {
	u.stopTimers()
	if u.auth.active {
		a.ausf.Abort(u.auth.id)
		u.auth.active = false
	}
	l := u.logger()
	if u.supi == "" {
		l = l.With("identity", u.identity.String())
	}
	l.Warn("amf: registration rejected", "cause", cause, "cause_name", causeName(cause), "reason", reason, "imei", u.imei)
	if err := a.sendNAS(u, &message.RegRej{Cause5GMM: &ie.Cause5GMM{Value: cause}}); err != nil {
		l.Warn("amf: REGISTRATION REJECT not sent", "err", err)
	}
	a.metrics.Reject(RejectRegistration, cause)
	a.metrics.Procedure(ProcRegistration, Reject, time.Since(u.start))
	a.release(u, nasCause(ngapie.CauseNasPresentNormalRelease))
}

// abortRegistration ends a registration that cannot go on (timer expiry,
// transport failure) and releases the connection.
func (a *AMF) abortRegistration(u *ue, p Procedure, o Outcome) {
	u.logger().Warn("amf: registration aborted", "procedure", string(p), "outcome", string(o), "state", u.state.String())
	a.metrics.Procedure(p, o, 0)
	if p != ProcRegistration {
		a.metrics.Procedure(ProcRegistration, Failure, time.Since(u.start))
	}
	a.release(u, nasCause(ngapie.CauseNasPresentUnspecified))
}

// release ends the UE context: UE CONTEXT RELEASE COMMAND, then the
// context is removed on the gNB's complete (or after timers.release).
func (a *AMF) release(u *ue, cause *ngapie.Cause) {
	u.stopTimers()
	if u.auth.active {
		a.ausf.Abort(u.auth.id)
		u.auth.active = false
	}
	a.setState(u, stReleasing)
	if u.g == nil {
		a.removeUE(u)
		return
	}
	if err := a.sendRelease(u, cause); err != nil {
		u.logger().Warn("amf: UE Context Release Command not sent", "err", err)
		a.removeUE(u)
		return
	}
	a.arm(u, a.cfg.Timers.Release, nil, func() {
		u.logger().Warn("amf: no UE Context Release Complete; context dropped")
		a.metrics.Procedure(ProcUEContextRelease, Timeout, 0)
		a.removeUE(u)
	})
}

// releaseComplete ends a release: the context goes, or for a release to
// idle only the connection.
func (a *AMF) releaseComplete(u *ue) {
	u.stopTimers()
	a.metrics.Procedure(ProcUEContextRelease, Success, 0)
	if u.state == stReleasing {
		a.removeUE(u)
		return
	}
	u.logger().Info("amf: UE now idle (no signalling connection)")
	a.unbind(u)
}

// releaseRequest answers the gNB's UE Context Release Request (TS 38.413
// 8.3.2). A registered UE stays registered without a connection (CM-IDLE);
// any other context ends.
func (a *AMF) releaseRequest(u *ue, m *ngapmsg.UEContextReleaseRequest) {
	cause := m.Cause
	if cause == nil {
		cause = &ngapie.Cause{Choice: &ngapie.CauseRadioNetwork{Value: ngapie.CauseRadioNetworkPresentUnspecified}}
	}
	u.logger().Info("amf: gNB requests UE context release", "cause", causeString(cause), "state", u.state.String())
	switch u.state {
	case stRegistered:
		if err := a.sendRelease(u, cause); err != nil {
			u.logger().Warn("amf: UE Context Release Command not sent", "err", err)
			a.unbind(u)
			return
		}
		a.arm(u, a.cfg.Timers.Release, nil, func() { a.unbind(u) })
	case stNWDereg:
		a.releaseAllSessions(u)
		a.release(u, cause)
	case stReleasing:
	default:
		a.metrics.Procedure(ProcRegistration, Failure, time.Since(u.start))
		a.release(u, cause)
	}
}

// icsResponse: the gNB has the UE's security context (TS 38.413 8.3.1.2).
func (a *AMF) icsResponse(u *ue, _ *ngapmsg.InitialContextSetupResponse) {
	a.metrics.Procedure(ProcInitialContextSetup, Success, 0)
	u.logger().Debug("amf: Initial Context Setup Response")
}

// icsFailure: the gNB could not set up the context (TS 38.413 8.3.1.3);
// the registration fails.
func (a *AMF) icsFailure(u *ue, m *ngapmsg.InitialContextSetupFailure) {
	a.metrics.Procedure(ProcInitialContextSetup, Failure, 0)
	u.logger().Warn("amf: Initial Context Setup Failure", "cause", causeString(m.Cause))
	if u.state == stAccept {
		a.abortRegistration(u, ProcRegistration, Failure)
	}
}

// connectionLost handles the loss of the UE's connection without a release
// procedure (association down, NG Reset, RAN UE NGAP ID reused).
func (a *AMF) connectionLost(u *ue) {
	u.stopTimers()
	switch u.state {
	case stRegistered:
		u.logger().Info("amf: connection lost; UE stays registered, idle")
		a.unbind(u)
	case stNWDereg:
		a.localDeregistration(u)
	default:
		a.removeUE(u)
	}
}

// superseded is run on an old context whose SUPI registered again on a
// new one; its PDU sessions were already released.
func (a *AMF) superseded(u *ue) {
	u.logger().Info("amf: context superseded by a new registration")
	if u.g != nil && u.state != stReleasing {
		if err := a.sendRelease(u, nasCause(ngapie.CauseNasPresentNormalRelease)); err != nil {
			u.logger().Debug("amf: release of superseded context not sent", "err", err)
		}
	}
	a.removeUE(u)
}

// ueDeregistration handles a UE-originating DEREGISTRATION REQUEST
// (TS 24.501 5.5.2.2): PDU sessions released, DEREGISTRATION ACCEPT unless
// switch-off, then the connection is released.
func (a *AMF) ueDeregistration(u *ue, m *message.DeregReqUEOrig) {
	if m.DeregType == nil {
		a.dropNAS(u, "malformed", "detail", "DEREGISTRATION REQUEST without type")
		return
	}
	u.stopTimers()
	if u.supi != "" && (u.state == stRegistered || u.state == stNWDereg || u.state == stAccept) {
		a.releaseAllSessions(u)
	}
	if !m.DeregType.Switchoff {
		if err := a.sendNAS(u, &message.DeregAcceptUEOrig{}); err != nil {
			u.logger().Warn("amf: DEREGISTRATION ACCEPT not sent", "err", err)
		}
	}
	a.metrics.Procedure(ProcDeregistrationUE, Success, 0)
	u.logger().Info("amf: UE deregistered", "switch_off", m.DeregType.Switchoff, "guti", a.guti(u))
	a.release(u, nasCause(ngapie.CauseNasPresentNormalRelease))
}

// networkDeregister starts a network-initiated deregistration (TS 24.501
// 5.5.2.3) for the API.
func (a *AMF) networkDeregister(u *ue) error {
	switch u.state {
	case stRegistered:
	case stNWDereg:
		return nil
	default:
		return fmt.Errorf("%w: %s is %s", ErrNotRegistered, u.supi, u.state.String())
	}
	if u.g == nil {
		a.localDeregistration(u)
		return nil
	}
	req := &message.DeregReqUETerm{DeregType: &ie.DeregType{AccessType: ie.AccessType_3gpp}}
	send := func() error { return a.sendNAS(u, req) }
	if err := send(); err != nil {
		return fmt.Errorf("amf: deregister %s: %w", u.supi, err)
	}
	a.setState(u, stNWDereg)
	u.logger().Info("amf: network-initiated deregistration")
	a.arm(u, a.cfg.Timers.T3522, send, func() {
		a.metrics.Procedure(ProcDeregistrationNW, Timeout, 0)
		a.localDeregistration(u)
	})
	return nil
}

func (a *AMF) networkDeregistrationAccepted(u *ue) {
	if u.state != stNWDereg {
		a.dropNAS(u, "unexpected", "detail", "DEREGISTRATION ACCEPT in state "+u.state.String())
		return
	}
	u.stopTimers()
	a.releaseAllSessions(u)
	a.metrics.Procedure(ProcDeregistrationNW, Success, 0)
	u.logger().Info("amf: UE deregistered by the network")
	a.release(u, nasCause(ngapie.CauseNasPresentNormalRelease))
}

// localDeregistration deregisters without signalling to the UE.
func (a *AMF) localDeregistration(u *ue) {
	a.releaseAllSessions(u)
	u.logger().Info("amf: UE deregistered locally")
	a.release(u, nasCause(ngapie.CauseNasPresentDeregister))
}

// rawIdentity returns the value of the 5GS mobile identity IE (LV-E) that
// starts at offset off of a plain message.
func rawIdentity(plain []byte, off int) ([]byte, error) {
	if len(plain) < off+2 {
		return nil, errors.New("5GS mobile identity missing")
	}
	n := int(binary.BigEndian.Uint16(plain[off:]))
	if n < 1 || len(plain) < off+2+n {
		return nil, errors.New("5GS mobile identity truncated")
	}
	return plain[off+2 : off+2+n], nil
}

// guti is a decoded 5G-GUTI (TS 23.003 2.10.1).
type guti struct {
	mcc, mnc string
	region   uint8
	set      uint16
	pointer  uint8
	tmsi     uint32
}

// parseGUTI decodes a 5GS mobile identity value of type 5G-GUTI (TS 24.501
// Figure 9.11.3.4.1).
func parseGUTI(b []byte) (guti, error) {
	if len(b) != 11 || b[0]&0x07 != ie.IdType_5GS_GUTI || b[0]>>4 != 0xF {
		return guti{}, fmt.Errorf("5G-GUTI of %d octets, want 11 starting f2", len(b))
	}
	mcc, mnc, err := decodePLMN(b[1:4])
	if err != nil {
		return guti{}, fmt.Errorf("5G-GUTI: %w", err)
	}
	return guti{mcc: mcc, mnc: mnc, region: b[4], set: uint16(b[5])<<2 | uint16(b[6]>>6), pointer: b[6] & 0x3F,
		tmsi: binary.BigEndian.Uint32(b[7:11])}, nil
}

func causeName(c uint8) string {
	switch c {
	case causeIllegalUE:
		return "Illegal UE"
	case causePEINotAccepted:
		return "PEI not accepted"
	case cause5GSNotAllowed:
		return "5GS services not allowed"
	case causeIdentityUnknown:
		return "UE identity cannot be derived by the network"
	case causePLMNNotAllowed:
		return "PLMN not allowed"
	case causeSecCapMismatch:
		return "UE security capabilities mismatch"
	case causeSecModeRejected:
		return "Security mode rejected, unspecified"
	case causeInvalidMandatory:
		return "Invalid mandatory information"
	case causeProtocolError:
		return "Protocol error, unspecified"
	}
	return fmt.Sprintf("#%d", c)
}
