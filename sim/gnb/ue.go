package gnb

import (
	"errors"
	"fmt"
	"net/netip"
	"sync"

	"github.com/free5gc/ngap/aper"
	"github.com/free5gc/ngap/ie"
	"github.com/free5gc/ngap/message"
)

// UE is the gNB's context of one UE: its RAN-UE-NGAP-ID, the AMF's ID for
// it, the security material InitialContextSetup gave and its PDU sessions.
// Its methods are safe for concurrent use.
type UE struct {
	g     *GNB
	ranID uint32
	nas   NAS

	mu       sync.Mutex
	amfID    int64 // -1 until the AMF names the UE
	released bool
	ctxSetup bool
	kgnb     [32]byte
	sec      SecurityCapabilities
	sessions []Session
}

// SecurityCapabilities are the UE's NR algorithm capabilities as the AMF
// gave them in InitialContextSetup (TS 38.413 9.3.1.86): 16-bit maps, the
// most significant bit for NEA1/NIA1, then NEA2/NIA2, NEA3/NIA3.
type SecurityCapabilities struct {
	NREncryption uint16
	NRIntegrity  uint16
}

// Session is a PDU session's user-plane resources.
type Session struct {
	PSI uint8
	// UEAddr is the UE's IPv4 address, as the UE learnt it from the PDU
	// Session Establishment Accept (invalid if the NAS side does not say).
	UEAddr netip.Addr
	// UPF and ULTEID are the uplink tunnel endpoint (UPF N3) from the
	// PDUSessionResourceSetupRequestTransfer.
	UPF    netip.Addr
	ULTEID uint32
	// GNB and DLTEID are the downlink tunnel endpoint the gNB allocated.
	GNB    netip.Addr
	DLTEID uint32
	// QFIs are the QoS flows set up; Type is the PDU session type
	// (TS 38.413 9.3.1.52: 0 IPv4, 1 IPv6, 2 IPv4v6, 3 Ethernet, 4 unstructured).
	QFIs []uint8
	Type uint8
}

// RANID is the UE's RAN-UE-NGAP-ID.
func (u *UE) RANID() uint32 { return u.ranID }

// AMFID is the UE's AMF-UE-NGAP-ID, once the AMF has sent it.
func (u *UE) AMFID() (int64, bool) {
	u.mu.Lock()
	defer u.mu.Unlock()
	return u.amfID, u.amfID >= 0
}

// NAS is the UE side given to Attach.
func (u *UE) NAS() NAS { return u.nas }

// GNB is the gNB serving the UE.
func (u *UE) GNB() *GNB { return u.g }

// KgNB is the key from InitialContextSetup (TS 33.501 A.9), once set up.
func (u *UE) KgNB() ([32]byte, bool) {
	u.mu.Lock()
	defer u.mu.Unlock()
	return u.kgnb, u.ctxSetup
}

// SecurityCapabilities are the capabilities from InitialContextSetup.
func (u *UE) SecurityCapabilities() SecurityCapabilities {
	u.mu.Lock()
	defer u.mu.Unlock()
	return u.sec
}

// Released reports whether the UE context is gone.
func (u *UE) Released() bool {
	u.mu.Lock()
	defer u.mu.Unlock()
	return u.released
}

// Sessions returns the UE's PDU sessions.
func (u *UE) Sessions() []Session {
	u.mu.Lock()
	defer u.mu.Unlock()
	out := make([]Session, len(u.sessions))
	for i, s := range u.sessions {
		s.QFIs = append([]uint8(nil), s.QFIs...)
		out[i] = s
	}
	return out
}

// Session returns PDU session psi.
func (u *UE) Session(psi uint8) (Session, bool) {
	u.mu.Lock()
	defer u.mu.Unlock()
	for _, s := range u.sessions {
		if s.PSI == psi {
			s.QFIs = append([]uint8(nil), s.QFIs...)
			return s, true
		}
	}
	return Session{}, false
}

// Do runs fn on the UE's worker, in order with the UE's NGAP work: the way
// to call into the UE's NAS side from outside a Handler.
func (u *UE) Do(fn func()) error {
	if !u.g.dispatch(job{kind: jobDo, ran: u.ranID, fn: fn}) {
		return ErrClosed
	}
	return nil
}

// SendNAS sends an uplink NAS PDU in an UplinkNASTransport (TS 38.413
// 8.6.3). Call it on the UE's worker (in a Handler or Do) to keep the UE's
// messages in order.
func (u *UE) SendNAS(pdu []byte) error {
	u.mu.Lock()
	amf, released := u.amfID, u.released
	u.mu.Unlock()
	switch {
	case released:
		return fmt.Errorf("gnb: ue %d: %w", u.ranID, ErrReleased)
	case amf < 0:
		return fmt.Errorf("gnb: ue %d: no AMF-UE-NGAP-ID yet (nothing came from the AMF)", u.ranID)
	case len(pdu) == 0:
		return fmt.Errorf("gnb: ue %d: empty NAS PDU", u.ranID)
	}
	return u.g.sendUE(&message.UplinkNASTransport{
		AMFUENGAPID:             &ie.AMFUENGAPID{Value: amf},
		RANUENGAPID:             &ie.RANUENGAPID{Value: int64(u.ranID)},
		NASPDU:                  &ie.NASPDU{Value: pdu},
		UserLocationInformation: u.g.uli(),
	})
}

// RequestRelease asks the AMF to release the UE context (UE Context Release
// Request, TS 38.413 8.3.2, cause radio connection with UE lost); the AMF
// answers with a UE Context Release Command. A UE the AMF never named is
// released at once.
func (u *UE) RequestRelease() error {
	return u.Do(func() {
		u.mu.Lock()
		amf, released := u.amfID, u.released
		u.mu.Unlock()
		if released {
			return
		}
		if amf < 0 {
			u.g.releaseLocal(u.g.shardOf(u.ranID), u)
			u.g.h.Event(u, Event{Kind: EventReleased, Cause: "released before the AMF answered"})
			return
		}
		m := &message.UEContextReleaseRequest{
			AMFUENGAPID: &ie.AMFUENGAPID{Value: amf},
			RANUENGAPID: &ie.RANUENGAPID{Value: int64(u.ranID)},
			Cause:       radioCause(ie.CauseRadioNetworkPresentRadioConnectionWithUeLost),
		}
		if ids := u.sessionIDs(); len(ids) > 0 {
			l := &ie.PDUSessionResourceListCxtRelReq{}
			for _, psi := range ids {
				l.List = append(l.List, ie.PDUSessionResourceItemCxtRelReq{PDUSessionID: &ie.PDUSessionID{Value: int64(psi)}})
			}
			m.PDUSessionResourceListCxtRelReq = l
		}
		if err := u.g.sendUE(m); err != nil {
			u.g.log.Warn("gnb: UE context release request", "ran_ue_ngap_id", u.ranID, "err", err)
		}
	})
}

func (u *UE) sessionIDs() []uint8 {
	u.mu.Lock()
	defer u.mu.Unlock()
	ids := make([]uint8, len(u.sessions))
	for i, s := range u.sessions {
		ids[i] = s.PSI
	}
	return ids
}

func (u *UE) addSession(s Session) {
	u.mu.Lock()
	u.sessions = append(u.sessions, s)
	u.mu.Unlock()
}

func (u *UE) hasSession(psi uint8) bool {
	_, ok := u.Session(psi)
	return ok
}

// removeSession drops PDU session psi and frees its TEID.
func (u *UE) removeSession(psi uint8) bool {
	u.mu.Lock()
	var teid uint32
	found := false
	for i, s := range u.sessions {
		if s.PSI == psi {
			teid, found = s.DLTEID, true
			u.sessions = append(u.sessions[:i], u.sessions[i+1:]...)
			break
		}
	}
	u.mu.Unlock()
	if found {
		u.g.freeTEID(teid)
	}
	return found
}

func (u *UE) setSessionAddr(psi uint8, a netip.Addr) {
	u.mu.Lock()
	defer u.mu.Unlock()
	for i := range u.sessions {
		if u.sessions[i].PSI == psi {
			u.sessions[i].UEAddr = a
		}
	}
}

// Attach starts a UE: it sends the UE's initial NAS PDU (normally a
// Registration Request) in an InitialUEMessage with a new RAN-UE-NGAP-ID
// (TS 38.413 8.6.1). Later downlink NAS for the UE goes to nas.Handle.
func (g *GNB) Attach(nas NAS, pdu []byte) (*UE, error) {
	if nas == nil || len(pdu) == 0 {
		return nil, errors.New("gnb: attach: no NAS side or empty initial NAS PDU")
	}
	select {
	case <-g.closing:
		return nil, fmt.Errorf("gnb %s: attach: %w", g.cfg.Name, ErrClosed)
	default:
	}
	id := g.nextRAN.Add(1) - 1 // RAN-UE-NGAP-ID 0..2^32-1 (TS 38.413 9.3.3.2)
	u := &UE{g: g, ranID: id, nas: nas, amfID: -1}
	g.live.Add(1)
	if !g.dispatch(job{kind: jobAttach, ran: id, u: u, pdu: pdu}) {
		g.live.Add(-1)
		return nil, fmt.Errorf("gnb %s: attach: %w", g.cfg.Name, ErrClosed)
	}
	return u, nil
}

// The worker side.

type jobKind uint8

const (
	jobAttach jobKind = iota + 1
	jobMsg
	jobDo
	jobReset    // NG Reset of the whole interface: release the shard's UEs
	jobResetOne // NG Reset of one UE
	jobLost     // the association ended: tell every UE
)

type job struct {
	kind  jobKind
	ran   uint32
	amf   int64
	u     *UE
	pdu   []byte
	msg   message.Message
	fn    func()
	cause string
	err   error
	wg    *sync.WaitGroup
}

// shard is one worker's UEs; only the worker touches ues.
type shard struct {
	q   *queue
	ues map[uint32]*UE
}

func (g *GNB) shardOf(ran uint32) *shard { return g.shards[int(ran%uint32(len(g.shards)))] }

func (g *GNB) dispatch(j job) bool { return g.dispatchTo(g.shardOf(j.ran), j) }

func (g *GNB) dispatchTo(sh *shard, j job) bool {
	if g.inline {
		g.run(sh, j)
		return true
	}
	if !sh.q.push(j) {
		if j.wg != nil {
			j.wg.Done()
		}
		return false
	}
	return true
}

func (g *GNB) work(sh *shard) {
	defer g.workers.Done()
	var batch []job
	for {
		jobs, ok := sh.q.take(batch)
		if !ok {
			return
		}
		for i := range jobs {
			g.run(sh, jobs[i])
		}
		clear(jobs)
		batch = jobs[:0]
	}
}

func (g *GNB) run(sh *shard, j job) {
	switch j.kind {
	case jobAttach:
		g.attach(sh, j.u, j.pdu)
	case jobDo:
		j.fn()
	case jobMsg:
		g.handle(sh, j)
	case jobReset:
		for _, u := range sh.ues {
			g.releaseLocal(sh, u)
			g.h.Event(u, Event{Kind: EventReleased, Cause: "NG reset: " + j.cause})
		}
		j.wg.Done()
	case jobResetOne:
		if u := sh.ues[j.ran]; u != nil {
			g.releaseLocal(sh, u)
			g.h.Event(u, Event{Kind: EventReleased, Cause: "NG reset: " + j.cause})
		}
		j.wg.Done()
	case jobLost:
		for _, u := range sh.ues {
			g.releaseLocal(sh, u)
			g.h.Event(u, Event{Kind: EventReleased, Err: j.err})
		}
	}
}

func (g *GNB) attach(sh *shard, u *UE, pdu []byte) {
	if _, taken := sh.ues[u.ranID]; taken {
		// 2^32 RAN-UE-NGAP-IDs wrapped onto a UE still attached.
		g.live.Add(-1)
		u.mu.Lock()
		u.released = true
		u.mu.Unlock()
		g.h.Event(u, Event{Kind: EventReleased, Err: fmt.Errorf("gnb: RAN-UE-NGAP-ID %d still in use", u.ranID)})
		return
	}
	sh.ues[u.ranID] = u
	err := g.sendUE(&message.InitialUEMessage{
		RANUENGAPID:             &ie.RANUENGAPID{Value: int64(u.ranID)},
		NASPDU:                  &ie.NASPDU{Value: pdu},
		UserLocationInformation: g.uli(),
		RRCEstablishmentCause:   &ie.RRCEstablishmentCause{Value: ie.RRCEstablishmentCausePresentMoSignalling},
		UEContextRequest:        &ie.UEContextRequest{Value: ie.UEContextRequestPresentRequested},
	})
	if err != nil {
		g.releaseLocal(sh, u)
		g.h.Event(u, Event{Kind: EventReleased, Err: err})
	}
}

// releaseLocal forgets u: its sessions, its IDs, its place in the shard.
func (g *GNB) releaseLocal(sh *shard, u *UE) {
	u.mu.Lock()
	if u.released {
		u.mu.Unlock()
		return
	}
	u.released = true
	sessions := u.sessions
	u.sessions = nil
	amf := u.amfID
	u.mu.Unlock()
	g.mu.Lock()
	for _, s := range sessions {
		delete(g.teids, s.DLTEID)
	}
	g.mu.Unlock()
	for _, s := range sessions {
		g.closeTunnel(s.DLTEID)
	}
	g.mu.Lock()
	if amf >= 0 && g.byAMF[amf] == u.ranID {
		delete(g.byAMF, amf)
	}
	g.mu.Unlock()
	if sh.ues[u.ranID] == u {
		delete(sh.ues, u.ranID)
	}
	g.live.Add(-1)
}

// handle runs one UE-associated message from the AMF.
func (g *GNB) handle(sh *shard, j job) {
	u := sh.ues[j.ran]
	_, isErrInd := j.msg.(*message.ErrorIndication)
	if u == nil {
		// TS 38.413 10.6: unknown local UE NGAP ID.
		g.log.Warn("gnb: message for an unknown RAN-UE-NGAP-ID", "type", fmt.Sprintf("%T", j.msg), "ran_ue_ngap_id", j.ran)
		if !isErrInd {
			g.sendErrorIndication(j.amf, int64(j.ran), radioCause(ie.CauseRadioNetworkPresentUnknownLocalUENGAPID))
		}
		return
	}
	if j.amf >= 0 && !g.bindAMF(u, j.amf) {
		// TS 38.413 10.6: inconsistent remote UE NGAP ID.
		g.log.Warn("gnb: AMF-UE-NGAP-ID does not match the UE's", "ran_ue_ngap_id", j.ran, "amf_ue_ngap_id", j.amf)
		if !isErrInd {
			g.sendErrorIndication(j.amf, int64(j.ran), radioCause(ie.CauseRadioNetworkPresentInconsistentRemoteUENGAPID))
		}
		return
	}
	switch m := j.msg.(type) {
	case *message.DownlinkNASTransport:
		if m.NASPDU == nil {
			g.log.Warn("gnb: downlink NAS transport without NAS-PDU dropped", "ran_ue_ngap_id", u.ranID)
			return
		}
		g.deliver(u, m.NASPDU.Value)
	case *message.InitialContextSetupRequest:
		g.initialContextSetup(u, m)
	case *message.PDUSessionResourceSetupRequest:
		g.sessionSetup(u, m)
	case *message.PDUSessionResourceReleaseCommand:
		g.sessionRelease(u, m)
	case *message.UEContextReleaseCommand:
		g.contextRelease(sh, u, m)
	case *message.ErrorIndication:
		cause := m.Cause.String()
		g.log.Warn("gnb: error indication from the AMF", "ran_ue_ngap_id", u.ranID, "cause", cause)
		g.h.Event(u, Event{Kind: EventErrorIndication, Cause: cause})
	}
}

// bindAMF records the AMF-UE-NGAP-ID of u, or checks it against the one
// recorded.
func (g *GNB) bindAMF(u *UE, amf int64) bool {
	u.mu.Lock()
	cur := u.amfID
	if cur < 0 {
		u.amfID = amf
	}
	u.mu.Unlock()
	if cur >= 0 {
		return cur == amf
	}
	g.mu.Lock()
	g.byAMF[amf] = u.ranID
	g.mu.Unlock()
	return true
}

// deliver passes a downlink NAS PDU to the UE and sends what it answers.
func (g *GNB) deliver(u *UE, pdu []byte) {
	ul, err := u.nas.Handle(pdu)
	if err != nil {
		g.log.Debug("gnb: UE NAS error", "ran_ue_ngap_id", u.ranID, "err", err)
	}
	for _, p := range ul {
		if serr := u.SendNAS(p); serr != nil {
			g.log.Warn("gnb: uplink NAS", "ran_ue_ngap_id", u.ranID, "err", serr)
			if err == nil {
				err = serr
			}
		}
	}
	g.h.Event(u, Event{Kind: EventNAS, Err: err})
}

// initialContextSetup answers InitialContextSetupRequest (TS 38.413
// 8.3.1): keep KgNB and the security capabilities, set up any PDU sessions,
// respond, then give the NAS-PDU (Registration Accept) to the UE.
func (g *GNB) initialContextSetup(u *UE, m *message.InitialContextSetupRequest) {
	amf, ran := &ie.AMFUENGAPID{Value: u.amfID}, &ie.RANUENGAPID{Value: int64(u.ranID)}
	var missing string
	switch {
	case m.GUAMI == nil:
		missing = "GUAMI"
	case m.AllowedNSSAI == nil:
		missing = "AllowedNSSAI"
	case m.UESecurityCapabilities == nil || m.UESecurityCapabilities.NRencryptionAlgorithms == nil ||
		m.UESecurityCapabilities.NRintegrityProtectionAlgorithms == nil:
		missing = "UESecurityCapabilities"
	case m.SecurityKey == nil || m.SecurityKey.Value.BitLength != 256 || len(m.SecurityKey.Value.Bytes) != 32:
		missing = "SecurityKey (256 bits)"
	}
	if missing != "" {
		g.log.Warn("gnb: initial context setup failed", "ran_ue_ngap_id", u.ranID, "missing", missing)
		err := g.sendUE(&message.InitialContextSetupFailure{AMFUENGAPID: amf, RANUENGAPID: ran,
			Cause: protocolCause(ie.CauseProtocolPresentAbstractSyntaxErrorFalselyConstructedMessage)})
		if err != nil {
			g.log.Warn("gnb: initial context setup failure", "err", err)
		}
		return
	}
	enc, _ := bitValue(m.UESecurityCapabilities.NRencryptionAlgorithms.Value)
	integ, _ := bitValue(m.UESecurityCapabilities.NRintegrityProtectionAlgorithms.Value)
	u.mu.Lock()
	copy(u.kgnb[:], m.SecurityKey.Value.Bytes)
	u.sec = SecurityCapabilities{NREncryption: uint16(enc), NRIntegrity: uint16(integ)}
	u.ctxSetup = true
	u.mu.Unlock()

	resp := &message.InitialContextSetupResponse{AMFUENGAPID: amf, RANUENGAPID: ran}
	var results []setupResult
	if m.PDUSessionResourceSetupListCxtReq != nil {
		for _, it := range m.PDUSessionResourceSetupListCxtReq.List {
			r := g.setupItem(u, it.PDUSessionID, it.PDUSessionResourceSetupRequestTransfer, it.NASPDU)
			results = append(results, r)
			if r.ok {
				if resp.PDUSessionResourceSetupListCxtRes == nil {
					resp.PDUSessionResourceSetupListCxtRes = &ie.PDUSessionResourceSetupListCxtRes{}
				}
				resp.PDUSessionResourceSetupListCxtRes.List = append(resp.PDUSessionResourceSetupListCxtRes.List,
					ie.PDUSessionResourceSetupItemCxtRes{PDUSessionID: &ie.PDUSessionID{Value: int64(r.psi)},
						PDUSessionResourceSetupResponseTransfer: &r.transfer})
			} else {
				if resp.PDUSessionResourceFailedToSetupListCxtRes == nil {
					resp.PDUSessionResourceFailedToSetupListCxtRes = &ie.PDUSessionResourceFailedToSetupListCxtRes{}
				}
				resp.PDUSessionResourceFailedToSetupListCxtRes.List = append(resp.PDUSessionResourceFailedToSetupListCxtRes.List,
					ie.PDUSessionResourceFailedToSetupItemCxtRes{PDUSessionID: &ie.PDUSessionID{Value: int64(r.psi)},
						PDUSessionResourceSetupUnsuccessfulTransfer: &r.transfer})
			}
		}
	}
	if err := g.sendUE(resp); err != nil {
		g.log.Warn("gnb: initial context setup response", "ran_ue_ngap_id", u.ranID, "err", err)
	}
	g.h.Event(u, Event{Kind: EventContextSetup})
	if m.NASPDU != nil {
		g.deliver(u, m.NASPDU.Value)
	}
	g.finishSetup(u, results)
}

// sessionSetup answers PDUSessionResourceSetupRequest (TS 38.413 8.2.1).
func (g *GNB) sessionSetup(u *UE, m *message.PDUSessionResourceSetupRequest) {
	if m.PDUSessionResourceSetupListSUReq == nil || len(m.PDUSessionResourceSetupListSUReq.List) == 0 {
		g.log.Warn("gnb: PDU session resource setup request without sessions dropped", "ran_ue_ngap_id", u.ranID)
		return
	}
	resp := &message.PDUSessionResourceSetupResponse{
		AMFUENGAPID: &ie.AMFUENGAPID{Value: u.amfID}, RANUENGAPID: &ie.RANUENGAPID{Value: int64(u.ranID)},
	}
	var results []setupResult
	for _, it := range m.PDUSessionResourceSetupListSUReq.List {
		r := g.setupItem(u, it.PDUSessionID, it.PDUSessionResourceSetupRequestTransfer, it.PDUSessionNASPDU)
		results = append(results, r)
		if r.ok {
			if resp.PDUSessionResourceSetupListSURes == nil {
				resp.PDUSessionResourceSetupListSURes = &ie.PDUSessionResourceSetupListSURes{}
			}
			resp.PDUSessionResourceSetupListSURes.List = append(resp.PDUSessionResourceSetupListSURes.List,
				ie.PDUSessionResourceSetupItemSURes{PDUSessionID: &ie.PDUSessionID{Value: int64(r.psi)},
					PDUSessionResourceSetupResponseTransfer: &r.transfer})
		} else {
			if resp.PDUSessionResourceFailedToSetupListSURes == nil {
				resp.PDUSessionResourceFailedToSetupListSURes = &ie.PDUSessionResourceFailedToSetupListSURes{}
			}
			resp.PDUSessionResourceFailedToSetupListSURes.List = append(resp.PDUSessionResourceFailedToSetupListSURes.List,
				ie.PDUSessionResourceFailedToSetupItemSURes{PDUSessionID: &ie.PDUSessionID{Value: int64(r.psi)},
					PDUSessionResourceSetupUnsuccessfulTransfer: &r.transfer})
		}
	}
	if err := g.sendUE(resp); err != nil {
		g.log.Warn("gnb: PDU session resource setup response", "ran_ue_ngap_id", u.ranID, "err", err)
	}
	if m.NASPDU != nil {
		g.deliver(u, m.NASPDU.Value)
	}
	g.finishSetup(u, results)
}

// setupResult is the outcome of one PDU session in a setup request.
type setupResult struct {
	psi      uint8
	ok       bool
	transfer aper.OctetString // response or unsuccessful transfer
	nas      []byte           // the session's NAS-PDU
	cause    string
}

func (g *GNB) setupItem(u *UE, id *ie.PDUSessionID, tr *aper.OctetString, nas *ie.NASPDU) setupResult {
	var r setupResult
	var cause *ie.Cause
	switch {
	case id == nil || id.Value < 0 || id.Value > 255:
		cause = protocolCause(ie.CauseProtocolPresentAbstractSyntaxErrorFalselyConstructedMessage)
	case u.hasSession(uint8(id.Value)):
		// TS 38.413 8.2.1.4: a PDU session ID already in use.
		r.psi = uint8(id.Value)
		cause = radioCause(ie.CauseRadioNetworkPresentMultiplePDUSessionIDInstances)
	case tr == nil:
		r.psi = uint8(id.Value)
		cause = protocolCause(ie.CauseProtocolPresentAbstractSyntaxErrorFalselyConstructedMessage)
	default:
		r.psi = uint8(id.Value)
		req, err := decodeSetupRequestTransfer(*tr)
		if err != nil {
			g.log.Warn("gnb: PDU session resource setup request transfer", "ran_ue_ngap_id", u.ranID, "psi", r.psi, "err", err)
			cause = protocolCause(ie.CauseProtocolPresentSemanticError)
			break
		}
		teid := g.allocTEID(u, r.psi)
		resp, err := encodeSetupResponseTransfer(g.cfg.N3, teid, req.qfis)
		if err != nil {
			g.freeTEID(teid)
			g.log.Warn("gnb: PDU session resource setup response transfer", "err", err)
			cause = radioCause(ie.CauseRadioNetworkPresentUnspecified)
			break
		}
		u.addSession(Session{PSI: r.psi, UPF: req.upf, ULTEID: req.teid, GNB: g.cfg.N3, DLTEID: teid,
			QFIs: req.qfis, Type: req.pduType})
		r.ok, r.transfer = true, resp
		if nas != nil {
			r.nas = nas.Value
		}
		return r
	}
	r.cause = cause.String()
	b, err := encodeUnsuccessfulTransfer(cause)
	if err != nil {
		g.log.Warn("gnb: PDU session resource setup unsuccessful transfer", "err", err)
	}
	r.transfer = b
	return r
}

// finishSetup gives each set-up session's NAS-PDU to the UE (TS 38.413
// 8.2.1.2), records the UE address the UE learnt, and reports.
func (g *GNB) finishSetup(u *UE, results []setupResult) {
	for _, r := range results {
		if r.ok && r.nas != nil {
			g.deliver(u, r.nas)
		}
	}
	sa, _ := u.nas.(SessionAddresser)
	for _, r := range results {
		if !r.ok {
			g.h.Event(u, Event{Kind: EventSessionFailed, PSI: r.psi, Cause: r.cause})
			continue
		}
		if sa != nil {
			if a, ok := sa.SessionAddr(r.psi); ok {
				u.setSessionAddr(r.psi, a)
			}
		}
		g.openTunnel(u, r.psi)
		g.h.Event(u, Event{Kind: EventSessionSetup, PSI: r.psi})
	}
}

// sessionRelease answers PDUSessionResourceReleaseCommand (TS 38.413
// 8.2.2): release the sessions, respond, give the NAS-PDU to the UE.
func (g *GNB) sessionRelease(u *UE, m *message.PDUSessionResourceReleaseCommand) {
	if m.PDUSessionResourceToReleaseListRelCmd == nil || len(m.PDUSessionResourceToReleaseListRelCmd.List) == 0 {
		g.log.Warn("gnb: PDU session resource release command without sessions dropped", "ran_ue_ngap_id", u.ranID)
		return
	}
	empty, err := encodeReleaseResponseTransfer()
	if err != nil {
		g.log.Warn("gnb: PDU session resource release response transfer", "err", err)
		return
	}
	list := &ie.PDUSessionResourceReleasedListRelRes{}
	var released []uint8
	for _, it := range m.PDUSessionResourceToReleaseListRelCmd.List {
		if it.PDUSessionID == nil || it.PDUSessionID.Value < 0 || it.PDUSessionID.Value > 255 {
			continue
		}
		psi := uint8(it.PDUSessionID.Value)
		if u.removeSession(psi) {
			released = append(released, psi)
		}
		// Releasing a session that is not there leaves the same state: it is
		// reported released.
		list.List = append(list.List, ie.PDUSessionResourceReleasedItemRelRes{
			PDUSessionID: &ie.PDUSessionID{Value: int64(psi)}, PDUSessionResourceReleaseResponseTransfer: &empty,
		})
	}
	if len(list.List) == 0 {
		g.log.Warn("gnb: PDU session resource release command without valid session IDs dropped", "ran_ue_ngap_id", u.ranID)
		return
	}
	err = g.sendUE(&message.PDUSessionResourceReleaseResponse{
		AMFUENGAPID: &ie.AMFUENGAPID{Value: u.amfID}, RANUENGAPID: &ie.RANUENGAPID{Value: int64(u.ranID)},
		PDUSessionResourceReleasedListRelRes: list, UserLocationInformation: g.uli(),
	})
	if err != nil {
		g.log.Warn("gnb: PDU session resource release response", "ran_ue_ngap_id", u.ranID, "err", err)
	}
	if m.NASPDU != nil {
		g.deliver(u, m.NASPDU.Value)
	}
	for _, psi := range released {
		g.h.Event(u, Event{Kind: EventSessionReleased, PSI: psi})
	}
}

// contextRelease answers UEContextReleaseCommand (TS 38.413 8.3.3).
func (g *GNB) contextRelease(sh *shard, u *UE, m *message.UEContextReleaseCommand) {
	resp := &message.UEContextReleaseComplete{
		AMFUENGAPID: &ie.AMFUENGAPID{Value: u.amfID}, RANUENGAPID: &ie.RANUENGAPID{Value: int64(u.ranID)},
		UserLocationInformation: g.uli(),
	}
	if ids := u.sessionIDs(); len(ids) > 0 {
		l := &ie.PDUSessionResourceListCxtRelCpl{}
		for _, psi := range ids {
			l.List = append(l.List, ie.PDUSessionResourceItemCxtRelCpl{PDUSessionID: &ie.PDUSessionID{Value: int64(psi)}})
		}
		resp.PDUSessionResourceListCxtRelCpl = l
	}
	if err := g.sendUE(resp); err != nil {
		g.log.Warn("gnb: UE context release complete", "ran_ue_ngap_id", u.ranID, "err", err)
	}
	g.releaseLocal(sh, u)
	g.h.Event(u, Event{Kind: EventReleased, Cause: m.Cause.String()})
}
