package ue

import (
	"bytes"
	"errors"
	"fmt"
	"log/slog"

	"github.com/free5gc/nas/ie"
	"github.com/free5gc/nas/message"

	"github.com/simgate/simgate/sim/aka"
	"github.com/simgate/simgate/sim/kdf"
)

// 5GMM causes the UE sends or acts on (TS 24.501 9.11.3.2).
const (
	CauseIllegalUE             = 3
	CausePEINotAccepted        = 5
	CauseIllegalME             = 6
	Cause5GSServicesNotAllowed = 7
	CausePLMNNotAllowed        = 11
	CauseTANotAllowed          = 12
	CauseRoamingNotAllowedInTA = 13
	CauseNoSuitableCellsInTA   = 15
	CauseMACFailure            = 20
	CauseSynchFailure          = 21
	CauseUESecurityCapMismatch = 23
	CauseSecurityModeRejected  = 24
	CauseNon5GAuthUnacceptable = 26
	CauseNgKSIAlreadyInUse     = 71
)

// Registration type "initial registration" (TS 24.501 9.11.3.7) and the
// ngKSI value "no key is available" (9.11.3.32).
const (
	regTypeInitial = 0x01
	ksiNoKey       = 0x07
)

// RegistrationRequest starts an initial registration (TS 24.501 5.5.1.2.2)
// and returns the REGISTRATION REQUEST to send: plain, with ngKSI "no key
// is available", the 5G-GUTI the UE holds or else a fresh SUCI, and the UE
// security capability (the cleartext IEs of TS 24.501 4.4.6). The complete
// message, with the requested NSSAI, follows in SECURITY MODE COMPLETE.
// Calling it again before the registration completes starts over.
func (u *UE) RegistrationRequest() ([]byte, error) {
	u.mu.Lock()
	defer u.unlock()
	if u.state == Registered || u.state == DeregistrationInitiated {
		return nil, fmt.Errorf("ue: %s: registration request when %v: %w", u.supiStr, u.state, ErrState)
	}
	id, err := u.identity()
	if err != nil {
		return nil, err
	}
	u.forget()
	u.rejectCause, u.authRejected = 0, false
	u.initial = u.appendRegistrationRequest(nil, id, true)
	u.state = RegistrationInitiated
	return u.appendRegistrationRequest(nil, id, false), nil
}

// appendRegistrationRequest encodes a REGISTRATION REQUEST (TS 24.501
// 8.2.6) for initial registration with identity id, with the non-cleartext
// IEs if full.
func (u *UE) appendRegistrationRequest(b, id []byte, full bool) []byte {
	b = append(b, byte(message.Epd5GSMobilityMgmtMsg), byte(message.SecHdrTypePlainNas), byte(message.MsgTypeRegReq))
	b = append(b, ksiNoKey<<4|regTypeInitial) // ngKSI (TSC native) | 5GS registration type (FOR 0)
	b = appendLVE(b, id)
	capa := u.securityCapability()
	b = append(b, message.RegReqIEIUESecCapability, byte(len(capa)))
	b = append(b, capa[:]...)
	if full {
		// Requested NSSAI (9.11.3.37): one S-NSSAI, length and contents.
		s := appendSNSSAI(nil, u.snssai)
		b = append(b, message.RegReqIEIReqNSSAI, byte(len(s)+1), byte(len(s)))
		b = append(b, s...)
	}
	return b
}

// securityCapability is the value of the UE security capability IE
// (TS 24.501 9.11.3.54): 5G-EA0..7 in octet 3 and 5G-IA0..7 in octet 4,
// algorithm 0 in bit 8.
func (u *UE) securityCapability() [2]byte {
	var c [2]byte
	for i := range 8 {
		if u.ea&(1<<i) != 0 {
			c[0] |= 0x80 >> i
		}
		if u.ia&(1<<i) != 0 {
			c[1] |= 0x80 >> i
		}
	}
	return c
}

// appendSNSSAI appends the contents of an S-NSSAI (TS 24.501 9.11.2.8):
// SST, then SD if any. The SD was checked by New.
func appendSNSSAI(b []byte, s SNSSAI) []byte {
	b = append(b, s.SST)
	if s.SD != "" {
		var sd [3]byte
		for i := range sd {
			sd[i] = unhexByte(s.SD[2*i])<<4 | unhexByte(s.SD[2*i+1])
		}
		b = append(b, sd[:]...)
	}
	return b
}

func unhexByte(c byte) byte {
	switch {
	case c >= 'a':
		return c - 'a' + 10
	case c >= 'A':
		return c - 'A' + 10
	}
	return c - '0'
}

func appendLVE(b, v []byte) []byte {
	b = append(b, byte(len(v)>>8), byte(len(v)))
	return append(b, v...)
}

func appendTLVE(b []byte, iei byte, v []byte) []byte {
	return appendLVE(append(b, iei), v)
}

// Deregister starts a UE-originating deregistration (TS 24.501 5.5.2.2.1)
// and returns the DEREGISTRATION REQUEST, integrity protected and ciphered
// if a security context is in use. With switchOff the UE is deregistered at
// once and expects no answer.
func (u *UE) Deregister(switchOff bool) ([]byte, error) {
	u.mu.Lock()
	defer u.unlock()
	if u.state == Deregistered {
		return nil, fmt.Errorf("ue: %s: deregistration when %v: %w", u.supiStr, u.state, ErrState)
	}
	id, err := u.identity()
	if err != nil {
		return nil, err
	}
	ksi := byte(ksiNoKey)
	if u.current != nil {
		ksi = u.current.ksi
	}
	// De-registration type (9.11.3.20): switch off (bit 4), access type
	// 3GPP (bits 1-2).
	dt := byte(ie.AccessType_3gpp)
	if switchOff {
		dt |= 0x08
	}
	b := []byte{byte(message.Epd5GSMobilityMgmtMsg), byte(message.SecHdrTypePlainNas), byte(message.MsgTypeDeregReqUEOrig), ksi<<4 | dt}
	b = appendLVE(b, id)
	out, err := u.protect(b)
	if err != nil {
		return nil, err
	}
	if switchOff {
		u.forget()
		u.state = Deregistered
		u.event(Event{Kind: EventDeregistered})
	} else {
		u.state = DeregistrationInitiated
	}
	return out, nil
}

// protect protects an uplink message with the current context (header type
// 2), or returns it as it is if there is none.
func (u *UE) protect(plain []byte) ([]byte, error) {
	if u.current == nil {
		return plain, nil
	}
	return u.current.protect(plain, message.SecHdrTypeIntegrityProtectedAndCiphered)
}

// Handle processes one downlink NAS PDU and returns the uplink NAS PDUs the
// UE answers with, in order. A message that the UE discards (bad integrity,
// replayed, unprotected when it must be protected, malformed, unexpected)
// returns no PDU and an error wrapping ErrIntegrity, ErrReplay,
// ErrUnprotected, ErrMalformed or ErrUnexpected, and is logged; the UE's
// state (Status, USIM) is unchanged, though a message that passed the
// integrity check has used its NAS COUNT. Procedures that end in a reject
// the UE sends (AUTHENTICATION FAILURE, SECURITY MODE REJECT) return the
// reject and no error.
func (u *UE) Handle(dl []byte) ([][]byte, error) {
	u.mu.Lock()
	defer u.unlock()
	ul, err := u.handle(dl)
	if err != nil {
		err = fmt.Errorf("ue: %s: downlink NAS discarded: %w", u.supiStr, err)
		u.logDiscard("downlink NAS discarded", err)
		u.event(Event{Kind: EventDiscarded, Err: err})
		return nil, err
	}
	if u.misbe.ReplayNAS {
		// Each protected message again, with the same NAS COUNT.
		var out [][]byte
		for _, b := range ul {
			out = append(out, b)
			if message.GetSecHdrType(b) != message.SecHdrTypePlainNas {
				out = append(out, bytes.Clone(b))
			}
		}
		ul = out
	}
	return ul, nil
}

func (u *UE) handle(dl []byte) ([][]byte, error) {
	if len(dl) < int(message.GmmHdrLen) {
		return nil, fmt.Errorf("%d octets: %w", len(dl), ErrMalformed)
	}
	if dl[0] != byte(message.Epd5GSMobilityMgmtMsg) {
		return nil, fmt.Errorf("extended protocol discriminator %#02x, want 5GMM: %w", dl[0], ErrMalformed)
	}
	// TS 24.501 9.3.1: bits 5-8 of octet 2 are spare.
	switch hdr := message.SecHdrType(dl[1] & 0x0f); hdr {
	case message.SecHdrTypePlainNas:
		m, err := parseGMM(dl)
		if err != nil {
			return nil, err
		}
		if !acceptedPlain(m) {
			return nil, fmt.Errorf("%v without security protection: %w", m.MsgType(), ErrUnprotected)
		}
		return u.dispatch(m, false)
	case message.SecHdrTypeIntegrityProtectedWithNew5gNasSecCtx:
		return u.onSecurityModeCommand(dl)
	case message.SecHdrTypeIntegrityProtected, message.SecHdrTypeIntegrityProtectedAndCiphered:
		if len(dl) < secHdrLen+int(message.GmmHdrLen) {
			return nil, fmt.Errorf("security protected message of %d octets: %w", len(dl), ErrMalformed)
		}
		if u.current == nil {
			return nil, fmt.Errorf("security header type %d and no security context: %w", hdr, ErrUnprotected)
		}
		plain, err := u.current.unprotect(dl)
		if err != nil {
			return nil, err
		}
		if len(plain) < int(message.GmmHdrLen) || plain[0] != byte(message.Epd5GSMobilityMgmtMsg) || message.GetSecHdrType(plain) != message.SecHdrTypePlainNas {
			return nil, fmt.Errorf("protected message does not hold a plain 5GMM message: %w", ErrMalformed)
		}
		m, err := parseGMM(plain)
		if err != nil {
			return nil, err
		}
		return u.dispatch(m, true)
	default:
		// Type 4 is for the uplink SECURITY MODE COMPLETE only.
		return nil, fmt.Errorf("security header type %d in the downlink: %w", hdr, ErrMalformed)
	}
}

// parseGMM decodes a plain 5GMM message. Optional IEs that the library does
// not implement are skipped.
func parseGMM(b []byte) (message.Message, error) {
	m, err := message.ParseGMM(b)
	var ne *message.Error
	if err != nil && !(m != nil && errors.As(err, &ne) && ne.MACFailure == nil) {
		return nil, fmt.Errorf("%v: %w", err, ErrMalformed)
	}
	if m == nil {
		return nil, fmt.Errorf("empty message: %w", ErrMalformed)
	}
	return m, nil
}

// acceptedPlain lists the messages the UE processes without integrity
// protection (TS 24.501 4.4.4.2).
func acceptedPlain(m message.Message) bool {
	switch m := m.(type) {
	case *message.IdReq:
		return m.IdType != nil && m.IdType.IdType == idSUCI
	case *message.AuthReq, *message.AuthResult, *message.AuthRej, *message.SvcRej, *message.DeregAcceptUEOrig:
		return true
	case *message.RegRej:
		// Not for #76 and #78, which need protection.
		return m.Cause5GMM != nil && m.Cause5GMM.Value != 76 && m.Cause5GMM.Value != 78
	}
	return false
}

func (u *UE) dispatch(m message.Message, protected bool) ([][]byte, error) {
	switch m := m.(type) {
	case *message.AuthReq:
		return u.onAuthenticationRequest(m)
	case *message.AuthRej:
		return u.onAuthenticationReject()
	case *message.IdReq:
		return u.onIdentityRequest(m)
	case *message.SecModeCmd:
		// TS 24.501 5.4.2.2: sent with security header type 3.
		return nil, fmt.Errorf("SECURITY MODE COMMAND with security header type other than 3: %w", ErrUnexpected)
	case *message.RegAccept:
		return u.onRegistrationAccept(m)
	case *message.RegRej:
		return u.onRegistrationReject(m)
	case *message.DLNASTransport:
		return u.onDLNASTransport(m)
	case *message.DeregReqUETerm:
		return u.onDeregistrationRequest(m)
	case *message.DeregAcceptUEOrig:
		return u.onDeregistrationAccept()
	case *message.CfgUpdateCmd:
		return u.onConfigurationUpdate(m)
	case *message.Status5GMM:
		var cause uint8
		if m.Cause5GMM != nil {
			cause = m.Cause5GMM.Value
		}
		u.log.Info("ue: 5GMM STATUS", slog.String("supi", u.supiStr), "cause", cause)
		return nil, nil
	}
	return nil, fmt.Errorf("%v: %w", m.MsgType(), ErrUnexpected)
}

// send returns a 5GMM message to send, protected if a context is in use.
func (u *UE) send(m message.Message) ([][]byte, error) {
	b, err := m.MarshalBinary()
	if err != nil {
		return nil, fmt.Errorf("ue: encode %v: %w", m.MsgType(), err)
	}
	if b, err = u.protect(b); err != nil {
		return nil, err
	}
	return [][]byte{b}, nil
}

// onAuthenticationRequest runs the UE's part of 5G AKA (TS 33.501 6.1.3.2,
// TS 24.501 5.4.1.3).
func (u *UE) onAuthenticationRequest(m *message.AuthReq) ([][]byte, error) {
	if m.Ngksi == nil || m.ABBA == nil {
		return nil, fmt.Errorf("AUTHENTICATION REQUEST without ngKSI or ABBA: %w", ErrMalformed)
	}
	if m.AuthParamRAND5GAuthChlg == nil || m.AuthParamAUTN5GAuthChlg == nil {
		// EAP-AKA' as the 5G authentication method is not implemented.
		return nil, fmt.Errorf("AUTHENTICATION REQUEST without RAND and AUTN (EAP-based authentication): %w", ErrUnexpected)
	}
	if len(m.AuthParamRAND5GAuthChlg.Rand) != aka.RANDLen || len(m.AuthParamAUTN5GAuthChlg.Autn) != aka.AUTNLen {
		return nil, fmt.Errorf("RAND of %d octets, AUTN of %d: %w", len(m.AuthParamRAND5GAuthChlg.Rand), len(m.AuthParamAUTN5GAuthChlg.Autn), ErrMalformed)
	}
	ksi := m.Ngksi.Ksi
	if ksi == ksiNoKey {
		return nil, fmt.Errorf("ngKSI 7 (reserved): %w", ErrMalformed)
	}
	rand := [aka.RANDLen]byte(m.AuthParamRAND5GAuthChlg.Rand)
	autn := [aka.AUTNLen]byte(m.AuthParamAUTN5GAuthChlg.Autn)
	// TS 24.501 5.4.1.3.7 c: an ngKSI already associated with the current
	// context.
	if u.current != nil && u.current.ksi == ksi && m.Ngksi.Tsc == ie.SecCtxTypeNative {
		return u.authFailure(CauseNgKSIAlreadyInUse, nil)
	}
	// TS 24.501 5.4.1.3.4 (T3516): the same RAND again gets the same RES*.
	if u.haveLast && rand == u.lastRAND && u.pending != nil && u.pending.ksi == ksi {
		return u.send(&message.AuthRsp{AuthRspParam: &ie.AuthRspParam{Res: bytes.Clone(u.lastRES[:])}})
	}
	if u.misbe.BadAUTN {
		autn[aka.AUTNLen-1] ^= 0xff // MAC-A
	}
	res, err := u.usim.Authenticate(rand, autn, true)
	var sf *aka.SyncFailure
	switch {
	case errors.Is(err, aka.ErrMACFailure):
		return u.authFailure(CauseMACFailure, nil)
	case errors.Is(err, aka.ErrAMFSeparation):
		return u.authFailure(CauseNon5GAuthUnacceptable, nil)
	case errors.As(err, &sf):
		return u.authFailure(CauseSynchFailure, sf.AUTS[:])
	case err != nil:
		return nil, fmt.Errorf("ue: %s: USIM: %w", u.supiStr, err)
	}
	// TS 33.501 A.4, A.2, A.6, A.7: RES*, KAUSF (with SQN xor AK from
	// AUTN), KSEAF, KAMF.
	resStar, err := kdf.RESStar(res.CK, res.IK, u.snn, rand, res.RES[:])
	if err != nil {
		return nil, fmt.Errorf("ue: %w", err)
	}
	kausf, err := kdf.KAUSF(res.CK, res.IK, u.snn, [6]byte(autn[0:6]))
	if err != nil {
		return nil, fmt.Errorf("ue: %w", err)
	}
	kseaf, err := kdf.KSEAF(kausf, u.snn)
	if err != nil {
		return nil, fmt.Errorf("ue: %w", err)
	}
	kamf, err := kdf.KAMF(kseaf, u.supiStr, m.ABBA.Abba)
	if err != nil {
		return nil, fmt.Errorf("ABBA: %v: %w", err, ErrMalformed)
	}
	u.pending = &nasContext{ksi: ksi, kamf: kamf}
	if u.misbe.WrongRES {
		resStar[0] ^= 0x01
	}
	u.lastRAND, u.lastRES, u.haveLast = rand, resStar, true
	return u.send(&message.AuthRsp{AuthRspParam: &ie.AuthRspParam{Res: resStar[:]}})
}

// authFailure answers AUTHENTICATION FAILURE with cause, and AUTS for #21
// (TS 24.501 5.4.1.3.7).
func (u *UE) authFailure(cause uint8, auts []byte) ([][]byte, error) {
	m := &message.AuthFailure{Cause5GMM: &ie.Cause5GMM{Value: cause}}
	if auts != nil {
		m.AuthFailureParam = &ie.AuthFailureParam{Value: auts}
	}
	u.haveLast = false
	u.event(Event{Kind: EventAuthenticationFailed, Cause: cause})
	return u.send(m)
}

// onAuthenticationReject: TS 24.501 5.4.1.3.5: the UE deletes its 5G-GUTI,
// ngKSI and security contexts and is deregistered.
func (u *UE) onAuthenticationReject() ([][]byte, error) {
	u.forget()
	u.hasGUTI = false
	u.state = Deregistered
	u.authRejected = true
	u.event(Event{Kind: EventAuthenticationRejected})
	return nil, nil
}

// onIdentityRequest answers with the requested identity (TS 24.501 5.4.3.3).
// Plain requests reach here for SUCI only (acceptedPlain).
func (u *UE) onIdentityRequest(m *message.IdReq) ([][]byte, error) {
	if m.IdType == nil {
		return nil, fmt.Errorf("IDENTITY REQUEST without identity type: %w", ErrMalformed)
	}
	var id []byte
	switch m.IdType.IdType {
	case idSUCI:
		var err error
		if id, err = u.suciIdentity(); err != nil {
			return nil, err
		}
	case idGUTI, idSTMSI:
		switch {
		case !u.hasGUTI:
			id = []byte{idNone}
		case m.IdType.IdType == idGUTI:
			id = appendGUTI(nil, u.guti)
		default:
			// 5G-S-TMSI (Figure 9.11.3.4.5): AMF set ID, pointer, 5G-TMSI.
			g := u.guti
			id = []byte{0xf0 | idSTMSI, byte(g.AMFSetID >> 2), byte(g.AMFSetID<<6) | g.AMFPointer&0x3f,
				byte(g.TMSI >> 24), byte(g.TMSI >> 16), byte(g.TMSI >> 8), byte(g.TMSI)}
		}
	case idIMEI, idIMEISV:
		switch {
		case u.misbe.NoIMEI:
			id = []byte{idNone}
		case m.IdType.IdType == idIMEISV:
			id = appendDigitsIdentity(nil, idIMEISV, u.reportedIMEISV())
		default:
			imei, err := IMEIOf(u.reportedIMEISV())
			if err != nil {
				return nil, err
			}
			id = appendDigitsIdentity(nil, idIMEI, imei)
		}
	default:
		id = []byte{idNone} // MAC address, EUI-64: the UE has none
	}
	b := []byte{byte(message.Epd5GSMobilityMgmtMsg), byte(message.SecHdrTypePlainNas), byte(message.MsgTypeIdRsp)}
	b, err := u.protect(appendLVE(b, id))
	if err != nil {
		return nil, err
	}
	return [][]byte{b}, nil
}

// onSecurityModeCommand runs the UE's part of the security mode control
// procedure (TS 24.501 5.4.2.3, TS 33.501 6.7.2) for a message of security
// header type 3, "integrity protected with new 5G NAS security context".
func (u *UE) onSecurityModeCommand(dl []byte) ([][]byte, error) {
	if len(dl) < secHdrLen+int(message.GmmHdrLen) {
		return nil, fmt.Errorf("security protected message of %d octets: %w", len(dl), ErrMalformed)
	}
	// Not ciphered: read the selected algorithms and ngKSI to find the keys
	// that check the MAC.
	m0, err := parseGMM(dl[secHdrLen:])
	if err != nil {
		return nil, err
	}
	m, ok := m0.(*message.SecModeCmd)
	if !ok {
		return nil, fmt.Errorf("%v with security header type 3: %w", m0.MsgType(), ErrUnexpected)
	}
	if m.SelectedNASSecAlgos == nil || m.Ngksi == nil || m.ReplayedUESecCapabilities == nil {
		return nil, fmt.Errorf("SECURITY MODE COMMAND without a mandatory IE: %w", ErrMalformed)
	}
	base := u.pending
	if base == nil || base.ksi != m.Ngksi.Ksi {
		return u.securityModeReject(CauseSecurityModeRejected, fmt.Errorf("no KAMF for ngKSI %d", m.Ngksi.Ksi))
	}
	nea, nia := uint8(m.SelectedNASSecAlgos.CipheringAlgo), uint8(m.SelectedNASSecAlgos.MsgIntAlgo)
	switch {
	case nia == 0:
		// TS 24.501 5.4.2.3: 5G-IA0 only for emergency services.
		return u.securityModeReject(CauseSecurityModeRejected, fmt.Errorf("5G-IA0 selected"))
	case nia > 7 || u.ia&(1<<nia) == 0 || nea > 7 || u.ea&(1<<nea) == 0:
		return u.securityModeReject(CauseSecurityModeRejected, fmt.Errorf("selected 5G-EA%d/5G-IA%d not supported", nea, nia))
	}
	ctx, err := base.activate(nea, nia)
	if err != nil {
		return nil, fmt.Errorf("ue: %w", err)
	}
	if _, err := ctx.unprotect(dl); err != nil {
		return u.securityModeReject(CauseSecurityModeRejected, err)
	}
	// TS 33.501 6.7.2: the replayed capabilities must be those the UE sent.
	capa := u.securityCapability()
	if got, err := m.ReplayedUESecCapabilities.MarshalBinary(); err != nil || !bytes.Equal(got, capa[:]) {
		return u.securityModeReject(CauseUESecurityCapMismatch, fmt.Errorf("replayed UE security capabilities %x, sent %x", got, capa))
	}
	u.current, u.pending = ctx, nil
	u.haveLast = false

	// SECURITY MODE COMPLETE (TS 24.501 8.2.26): the IMEISV if requested,
	// the complete initial message (4.4.6) during registration.
	b := []byte{byte(message.Epd5GSMobilityMgmtMsg), byte(message.SecHdrTypePlainNas), byte(message.MsgTypeSecModeComplete)}
	if m.IMEISVReq != nil && m.IMEISVReq.Value == 1 && !u.misbe.NoIMEI {
		b = appendTLVE(b, message.SecModeCompleteIEIIMEISV, appendDigitsIdentity(nil, idIMEISV, u.reportedIMEISV()))
	}
	if u.initial != nil {
		b = appendTLVE(b, message.SecModeCompleteIEINASMsgCntr, u.initial)
	}
	out, err := ctx.protect(b, message.SecHdrTypeIntegrityProtectedAndCipheredWithNew5gNasSecCtx)
	if err != nil {
		return nil, err
	}
	if u.misbe.TamperMAC {
		out[2] ^= 0xff
	}
	return [][]byte{out}, nil
}

// securityModeReject answers SECURITY MODE REJECT (TS 24.501 5.4.2.5),
// protected with the context still in use, if any.
func (u *UE) securityModeReject(cause uint8, why error) ([][]byte, error) {
	u.logDiscard("security mode command rejected", why)
	u.event(Event{Kind: EventSecurityModeRejected, Cause: cause, Err: why})
	return u.send(&message.SecModeRej{Cause5GMM: &ie.Cause5GMM{Value: cause}})
}

// onRegistrationAccept completes the registration (TS 24.501 5.5.1.2.4).
func (u *UE) onRegistrationAccept(m *message.RegAccept) ([][]byte, error) {
	if u.state != RegistrationInitiated {
		return nil, fmt.Errorf("REGISTRATION ACCEPT when %v: %w", u.state, ErrUnexpected)
	}
	var ul [][]byte
	if m.GUTI5G != nil {
		b, err := m.GUTI5G.MarshalBinary()
		if err != nil {
			return nil, fmt.Errorf("5G-GUTI: %v: %w", err, ErrMalformed)
		}
		g, err := decodeGUTI(b)
		if err != nil {
			return nil, err
		}
		// A new 5G-GUTI is acknowledged with REGISTRATION COMPLETE.
		if ul, err = u.send(&message.RegComplete{}); err != nil {
			return nil, err
		}
		u.guti, u.hasGUTI = g, true
	}
	u.state = Registered
	u.rejectCause = 0
	u.initial = nil
	u.event(Event{Kind: EventRegistered})
	return ul, nil
}

// onRegistrationReject ends the registration (TS 24.501 5.5.1.2.5).
func (u *UE) onRegistrationReject(m *message.RegRej) ([][]byte, error) {
	if m.Cause5GMM == nil {
		return nil, fmt.Errorf("REGISTRATION REJECT without cause: %w", ErrMalformed)
	}
	if u.state != RegistrationInitiated {
		return nil, fmt.Errorf("REGISTRATION REJECT when %v: %w", u.state, ErrUnexpected)
	}
	cause := m.Cause5GMM.Value
	switch cause {
	case CauseIllegalUE, CauseIllegalME, Cause5GSServicesNotAllowed, CausePLMNNotAllowed,
		CauseTANotAllowed, CauseRoamingNotAllowedInTA, CauseNoSuitableCellsInTA:
		u.hasGUTI = false // and the ngKSI and security contexts, as below
	}
	u.forget()
	u.state = Deregistered
	u.rejectCause = cause
	u.event(Event{Kind: EventRegistrationRejected, Cause: cause})
	return nil, nil
}

// onDeregistrationRequest handles a network-initiated deregistration
// (TS 24.501 5.5.2.3.2): DEREGISTRATION ACCEPT, then the UE is deregistered.
func (u *UE) onDeregistrationRequest(m *message.DeregReqUETerm) ([][]byte, error) {
	if u.state == Deregistered {
		return nil, fmt.Errorf("DEREGISTRATION REQUEST when %v: %w", u.state, ErrUnexpected)
	}
	ul, err := u.send(&message.DeregAcceptUETerm{})
	if err != nil {
		return nil, err
	}
	var cause uint8
	if m.Cause5GMM != nil {
		cause = m.Cause5GMM.Value
		u.rejectCause = cause
	}
	u.forget()
	u.state = Deregistered
	u.event(Event{Kind: EventDeregistered, Cause: cause})
	return ul, nil
}

// onDeregistrationAccept ends a UE-originating deregistration
// (TS 24.501 5.5.2.2.2).
func (u *UE) onDeregistrationAccept() ([][]byte, error) {
	if u.state != DeregistrationInitiated {
		return nil, fmt.Errorf("DEREGISTRATION ACCEPT when %v: %w", u.state, ErrUnexpected)
	}
	u.forget()
	u.state = Deregistered
	u.event(Event{Kind: EventDeregistered})
	return nil, nil
}

// onConfigurationUpdate takes a new 5G-GUTI and acknowledges if asked
// (TS 24.501 5.4.4.3).
func (u *UE) onConfigurationUpdate(m *message.CfgUpdateCmd) ([][]byte, error) {
	if m.GUTI5G != nil {
		b, err := m.GUTI5G.MarshalBinary()
		if err != nil {
			return nil, fmt.Errorf("5G-GUTI: %v: %w", err, ErrMalformed)
		}
		g, err := decodeGUTI(b)
		if err != nil {
			return nil, err
		}
		u.guti, u.hasGUTI = g, true
	}
	if m.CfgUpdateInd != nil && m.CfgUpdateInd.ACK {
		return u.send(&message.CfgUpdateComplete{})
	}
	return nil, nil
}
