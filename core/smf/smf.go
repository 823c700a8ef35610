// Package smf is the session management function: PDU sessions of 5G UEs
// (TS 23.502 4.3.2, 4.3.4; TS 24.501 6.4).
//
// The AMF calls it in-process with the 5GSM messages it carries for the UE
// (N1) and the NGAP transfers it carries for the gNB (N2). The SMF checks the
// request (DNN, S-NSSAI, PDU session type, identities), allocates the UE's
// IPv4 address from the DNN's pool, sets up the PFCP session on the UPF over
// N4 (gtp/pfcp: User ID with IMSI, IMEI and MSISDN; uplink and downlink
// PDRs and FARs; a QER for the session AMBR), and answers with the PDU
// SESSION ESTABLISHMENT ACCEPT and the PDU Session Resource Setup Request
// Transfer; the gNB's answer points the downlink at the gNB. It releases
// sessions at the UE's request and, locally, at deregistration.
package smf

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/netip"
	"strings"
	"sync"

	"github.com/free5gc/nas/message"

	"github.com/simgate/simgate/gtp/pfcp"
)

// Errors of the SMF API; test with errors.Is.
var (
	// ErrMalformed: an N1 or N2 message did not decode, or was not the
	// message the call takes.
	ErrMalformed = errors.New("malformed message")
	// ErrNoSession: the UE has no such PDU session.
	ErrNoSession = errors.New("no such PDU session")
)

// Identity is the subscriber a PDU session belongs to, as the AMF knows it.
type Identity struct {
	SUPI   string // "imsi-<digits>" or "nai-<nai>"
	IMEI   string // 15 digits, or 16 for an IMEISV; "" if unknown
	MSISDN string // digits; "" if none
}

// Result is what the AMF sends on.
type Result struct {
	// N1 is the 5GSM message for the UE, plain; the AMF wraps it in a DL
	// NAS Transport.
	N1 []byte
	// N2 is the NGAP transfer for the gNB: a PDU Session Resource Setup
	// Request Transfer or Release Command Transfer; nil on a reject.
	N2 []byte
}

// N4 is the CP side of N4 the SMF uses; *pfcp.Client is one.
type N4 interface {
	Associate(ctx context.Context, peer netip.AddrPort) (pfcp.Association, error)
	EstablishSession(ctx context.Context, req pfcp.SessionRequest) (pfcp.Session, error)
	ModifySession(ctx context.Context, s pfcp.Session, u pfcp.SessionUpdate) error
	DeleteSession(ctx context.Context, s pfcp.Session) error
}

var _ N4 = (*pfcp.Client)(nil)

// SessionInfo describes an established PDU session.
type SessionInfo struct {
	PSI       uint8
	DNN       string
	SST       uint8
	SD        string     // 6 hex digits, "" if none
	UEAddr    netip.Addr // the UE's IPv4 address
	Uplink    pfcp.FTEID // the UPF's N3 F-TEID
	GNB       pfcp.FTEID // the gNB's N3 F-TEID; zero until activated
	UPSEID    uint64
	Releasing bool // a PDU SESSION RELEASE COMMAND was sent; awaiting the complete
}

// dataNetwork is a configured DNN and its pool.
type dataNetwork struct {
	dnnEntry
	pool *Pool
}

// session is one PDU session.
type session struct {
	dn    *dataNetwork
	slice snssai
	addr  netip.Addr
	n4    pfcp.Session
	gnb   pfcp.FTEID
	// releasePTI is the PTI of the release command sent; non-zero while the
	// session waits for the PDU SESSION RELEASE COMPLETE, its resources
	// already released (TS 24.501 6.4.3.2).
	releasePTI uint8
}

// ueContext holds a UE's PDU sessions. Its mutex serialises the UE's
// procedures; refs (guarded by SMF.mu) counts the callers holding or
// waiting for it, so that an empty context is dropped only when unused.
type ueContext struct {
	supi     string
	mu       sync.Mutex
	refs     int
	sessions [15]*session // by PSI-1
}

func (u *ueContext) empty() bool {
	for _, s := range u.sessions {
		if s != nil {
			return false
		}
	}
	return true
}

// SMF is a running session management function.
type SMF struct {
	cfg    Config
	n4     N4
	upf    netip.AddrPort
	dnns   []*dataNetwork
	log    *slog.Logger
	ambrUL nasBitRate
	ambrDL nasBitRate

	// assocMu serialises Associate: concurrent first calls would each send
	// an Association Setup Request, and the UPF takes a repeated setup as
	// a new association without session retention, dropping the sessions
	// set up in between (TS 29.244 6.2.6.2.2).
	assocMu sync.Mutex

	mu  sync.Mutex
	ues map[string]*ueContext
}

// New validates cfg and returns an SMF that reaches the UPF through n4.
func New(cfg Config, n4 N4, log *slog.Logger) (*SMF, error) {
	r, err := cfg.resolve()
	if err != nil {
		return nil, err
	}
	if n4 == nil {
		return nil, errors.New("smf: no N4 client")
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	s := &SMF{
		cfg:    cfg,
		n4:     n4,
		upf:    r.upf,
		log:    log.With("nf", "smf"),
		ambrUL: toNASBitRate(cfg.AMBRUplinkKbps),
		ambrDL: toNASBitRate(cfg.AMBRDownlinkKbps),
		ues:    make(map[string]*ueContext),
	}
	for _, e := range r.dnns {
		p, err := NewPool(e.prefix)
		if err != nil {
			return nil, err
		}
		s.dnns = append(s.dnns, &dataNetwork{dnnEntry: e, pool: p})
	}
	return s, nil
}

// Pools returns the address pool of every configured data network, in
// configuration order.
func (s *SMF) Pools() []*Pool {
	out := make([]*Pool, len(s.dnns))
	for i, dn := range s.dnns {
		out[i] = dn.pool
	}
	return out
}

// Pool is the address pool of the DNN serving dnn in the slice sst/sd, as
// CreateSession selects it.
func (s *SMF) Pool(dnn string, sst uint8, sd string) (*Pool, bool) {
	sl, err := parseSNSSAI(sst, sd)
	if err != nil {
		return nil, false
	}
	dn, _ := s.selectDN(dnn, sl, sst != 0)
	if dn == nil {
		return nil, false
	}
	return dn.pool, true
}

// selectDN finds the data network for a request. An empty dnn is the
// default DNN (TS 23.502 4.3.2.2.1: the AMF selects the default DNN when
// the UE names none). On failure it returns the 5GSM cause.
func (s *SMF) selectDN(dnn string, sl snssai, sliceGiven bool) (*dataNetwork, uint8) {
	name := strings.ToLower(dnn)
	if name == "" {
		name = s.dnns[0].name
	}
	known := false
	for _, dn := range s.dnns {
		if dn.name != name {
			continue
		}
		known = true
		if !sliceGiven || dn.anySlice || dn.slice == sl {
			return dn, 0
		}
	}
	if known {
		return nil, causeUnknownDNNInSlice // #70
	}
	return nil, causeUnknownDNN // #27
}

// acquire returns supi's context locked, creating it if create is set; nil
// if there is none.
func (s *SMF) acquire(supi string, create bool) *ueContext {
	s.mu.Lock()
	u := s.ues[supi]
	if u == nil {
		if !create {
			s.mu.Unlock()
			return nil
		}
		u = &ueContext{supi: supi}
		s.ues[supi] = u
	}
	u.refs++
	s.mu.Unlock()
	u.mu.Lock()
	return u
}

// release unlocks u, dropping it when it holds no session and nobody else
// wants it.
func (s *SMF) release(u *ueContext) {
	s.mu.Lock()
	u.refs--
	if u.refs == 0 && u.empty() {
		delete(s.ues, u.supi)
	}
	s.mu.Unlock()
	u.mu.Unlock()
}

// userID maps the identity onto the PFCP User ID IE (TS 29.244 8.2.101).
func userID(id Identity) (pfcp.UserID, error) {
	var u pfcp.UserID
	switch {
	case strings.HasPrefix(id.SUPI, "imsi-"):
		u.IMSI = id.SUPI[len("imsi-"):]
	case strings.HasPrefix(id.SUPI, "nai-"):
		u.NAI = id.SUPI[len("nai-"):]
	default:
		return pfcp.UserID{}, fmt.Errorf("SUPI %q is neither imsi-<digits> nor nai-<nai>", id.SUPI)
	}
	u.IMEI, u.MSISDN = id.IMEI, id.MSISDN
	if err := u.Validate(); err != nil {
		return pfcp.UserID{}, err
	}
	return u, nil
}

// CreateSession handles a PDU SESSION ESTABLISHMENT REQUEST n1 for PDU
// session psi of the UE, which the AMF received with S-NSSAI sst/sd ("" or
// "ffffff": no SD; sst 0: none given) and DNN dnn ("": the default DNN) in
// the UL NAS Transport (TS 23.502 4.3.2.2.1; TS 24.501 6.4.1).
//
// A request the network refuses gets a Result with the PDU SESSION
// ESTABLISHMENT REJECT and no N2. An error means there is nothing to send:
// n1 is not a 5GSM establishment request, the identity is unusable, or ctx
// ended.
func (s *SMF) CreateSession(ctx context.Context, id Identity, psi uint8, sst uint8, sd string, dnn string, n1 []byte) (Result, error) {
	fail := func(err error) (Result, error) {
		return Result{}, fmt.Errorf("smf: create session %s/%d: %w", id.SUPI, psi, err)
	}
	if !validPSI(psi) {
		return fail(fmt.Errorf("PDU session ID %d is not 1 to 15", psi))
	}
	m, err := parseGSM(n1)
	if err != nil {
		return fail(err)
	}
	req, ok := m.(*message.PDUSessEstReq)
	if !ok {
		return fail(fmt.Errorf("%w: %s is not a PDU session establishment request", ErrMalformed, m.MsgType()))
	}
	user, err := userID(id)
	if err != nil {
		return fail(err)
	}
	reject := func(cause uint8, why string) (Result, error) {
		s.log.Info("smf: PDU session establishment rejected", "supi", id.SUPI, "psi", req.PDUSessId,
			"cause", cause, "reason", why)
		b, err := buildEstablishmentReject(req.PDUSessId, req.PTI, cause)
		if err != nil {
			return fail(err)
		}
		return Result{N1: b}, nil
	}
	// TS 24.501 7.3.1, 7.3.2: a reserved or unassigned PTI or PDU session ID.
	if !validPTI(req.PTI) {
		return reject(causeInvalidPTI, fmt.Sprintf("PTI %d", req.PTI))
	}
	if req.PDUSessId != psi {
		return reject(causeInvalidPSI, fmt.Sprintf("PDU session ID %d in the 5GSM header, %d in the NAS transport", req.PDUSessId, psi))
	}
	sl, err := parseSNSSAI(sst, sd)
	if err != nil {
		return reject(causeUnknownDNNInSlice, err.Error())
	}
	dn, cause := s.selectDN(dnn, sl, sst != 0)
	if dn == nil {
		return reject(cause, fmt.Sprintf("DNN %q in S-NSSAI %s", dnn, sl))
	}
	sliceKnown := sst != 0
	if !sliceKnown && !dn.anySlice {
		sl, sliceKnown = dn.slice, true
	}
	// TS 24.501 6.4.1.3, TS 23.501 5.8.2.2.1: the SMF serves IPv4 only. An
	// IPv4v6 request gets IPv4 with cause #50; IPv6, Ethernet and
	// Unstructured are refused with #50.
	var acceptCause uint8
	if req.PDUSessType != nil {
		switch t := req.PDUSessType.Value; t {
		case 1: // IPv4
		case 3: // IPv4v6
			acceptCause = causeIPv4OnlyAllowed
		case 2, 4, 5: // IPv6, Unstructured, Ethernet
			return reject(causeIPv4OnlyAllowed, fmt.Sprintf("PDU session type %d requested", t))
		default:
			return reject(causeUnknownPDUSessionType, fmt.Sprintf("PDU session type %d requested", t))
		}
	}
	// TS 23.501 5.6.9.3: the SMF may change the requested SSC mode; it
	// offers SSC mode 1 only.

	u := s.acquire(id.SUPI, true)
	defer s.release(u)
	if old := u.sessions[psi-1]; old != nil {
		// TS 24.501 6.4.1: an establishment for a PDU session ID in use
		// releases the old session locally first.
		s.log.Info("smf: PDU session ID in use: releasing the old session", "supi", id.SUPI, "psi", psi)
		if err := s.releaseResources(ctx, old); err != nil {
			s.log.Warn("smf: local release", "supi", id.SUPI, "psi", psi, "err", err)
		}
		u.sessions[psi-1] = nil
	}

	addr, err := dn.pool.Alloc()
	if err != nil {
		return reject(causeInsufficientResources, err.Error())
	}
	sess := &session{dn: dn, slice: sl, addr: addr}
	if err := s.associate(ctx); err != nil {
		dn.pool.Free(addr)
		if ctx.Err() != nil {
			return fail(err)
		}
		return reject(causeNetworkFailure, err.Error())
	}
	sess.n4, err = s.n4.EstablishSession(ctx, pfcp.SessionRequest{
		Peer:    s.upf,
		User:    user,
		UEAddr:  addr,
		PDNType: 1, // TS 29.244 8.2.79: IPv4
		DNN:     dn.name,
		QFI:     defaultQFI,
		// Downlink is buffered until the gNB's F-TEID is known.
		QER: &pfcp.QER{
			GateULOpen: true, GateDLOpen: true,
			MBRUplink: s.cfg.AMBRUplinkKbps, MBRDownlink: s.cfg.AMBRDownlinkKbps,
			QFI: defaultQFI,
		},
	})
	if err != nil {
		s.forgetAddr(sess, err)
		if ctx.Err() != nil {
			return fail(err)
		}
		return reject(causeNetworkFailure, err.Error())
	}

	n1Out, err := buildEstablishmentAccept(acceptParams{
		psi: psi, pti: req.PTI, ueAddr: addr, dnn: dn.name, slice: sl, sliceKnown: sliceKnown,
		cause: acceptCause, ambrUL: s.ambrUL, ambrDL: s.ambrDL, fiveQI: s.cfg.FiveQI,
	})
	var n2Out []byte
	if err == nil {
		n2Out, err = buildSetupRequestTransfer(setupParams{
			ambrULbps: int64(s.cfg.AMBRUplinkKbps) * 1000, ambrDLbps: int64(s.cfg.AMBRDownlinkKbps) * 1000,
			uplink: sess.n4.Uplink, fiveQI: s.cfg.FiveQI, arpPriority: s.cfg.ARPPriority,
		})
	}
	if err != nil {
		if rerr := s.releaseResources(ctx, sess); rerr != nil {
			s.log.Warn("smf: release after encoding failure", "supi", id.SUPI, "psi", psi, "err", rerr)
		}
		return fail(err)
	}
	u.sessions[psi-1] = sess
	s.log.Debug("smf: PDU session established", "supi", id.SUPI, "psi", psi, "dnn", dn.name,
		"ue", addr, "upf_teid", sess.n4.Uplink.TEID, "up_seid", sess.n4.UP.SEID)
	return Result{N1: n1Out, N2: n2Out}, nil
}

// associate sets up the PFCP association with the UPF, or finds it.
func (s *SMF) associate(ctx context.Context) error {
	s.assocMu.Lock()
	defer s.assocMu.Unlock()
	_, err := s.n4.Associate(ctx, s.upf)
	return err
}

// forgetAddr handles an address whose PFCP session may or may not exist on
// the UPF after err: it goes back to the pool only if the UPF answered, so
// that it is never given to a second UE the UPF would confuse with the
// first. Otherwise it stays out of the pool.
func (s *SMF) forgetAddr(sess *session, err error) {
	var ce *pfcp.CauseError
	if errors.As(err, &ce) {
		sess.dn.pool.Free(sess.addr)
		return
	}
	s.log.Warn("smf: PFCP outcome unknown: UE address withheld from the pool", "ue", sess.addr, "err", err)
}

// releaseResources deletes the session's PFCP session and frees its
// address (TS 23.502 4.3.4.2 steps 2-3). A session the UPF no longer holds
// counts as deleted.
func (s *SMF) releaseResources(ctx context.Context, sess *session) error {
	if sess.releasePTI != 0 || !sess.addr.IsValid() {
		return nil // released already
	}
	err := s.n4.DeleteSession(ctx, sess.n4)
	var ce *pfcp.CauseError
	switch {
	case err == nil, errors.As(err, &ce) && ce.Cause == pfcp.CauseSessionContextNotFound:
		sess.dn.pool.Free(sess.addr)
		err = nil
	default:
		s.forgetAddr(sess, err)
	}
	sess.addr = netip.Addr{}
	return err
}

// ActivateSession handles the gNB's PDU Session Resource Setup Response
// Transfer n2 for PDU session psi: the downlink FAR is pointed at the
// gNB's N3 F-TEID with a PFCP Session Modification (TS 23.502 4.3.2.2.1
// steps 15-16).
func (s *SMF) ActivateSession(ctx context.Context, supi string, psi uint8, n2 []byte) error {
	fail := func(err error) error { return fmt.Errorf("smf: activate session %s/%d: %w", supi, psi, err) }
	if !validPSI(psi) {
		return fail(fmt.Errorf("%w: PDU session ID %d", ErrNoSession, psi))
	}
	gnb, err := parseSetupResponseTransfer(n2, defaultQFI)
	if err != nil {
		return fail(err)
	}
	u := s.acquire(supi, false)
	if u == nil {
		return fail(ErrNoSession)
	}
	defer s.release(u)
	sess := u.sessions[psi-1]
	if sess == nil || sess.releasePTI != 0 {
		return fail(ErrNoSession)
	}
	if err := s.n4.ModifySession(ctx, sess.n4, pfcp.SessionUpdate{GNB: gnb}); err != nil {
		return fail(err)
	}
	sess.gnb = gnb
	s.log.Debug("smf: PDU session active", "supi", supi, "psi", psi, "gnb", gnb)
	return nil
}

// ReleaseSession handles a PDU SESSION RELEASE REQUEST or COMPLETE n1 for
// PDU session psi (TS 23.502 4.3.4.2; TS 24.501 6.4.3). For a request the
// PFCP session is deleted and the address freed, and the Result holds the
// PDU SESSION RELEASE COMMAND (#36 regular deactivation) and the PDU Session
// Resource Release Command Transfer; a request for a session that does not
// exist gets a PDU SESSION RELEASE REJECT (#43). A complete ends the
// session and returns an empty Result.
func (s *SMF) ReleaseSession(ctx context.Context, supi string, psi uint8, n1 []byte) (Result, error) {
	fail := func(err error) (Result, error) {
		return Result{}, fmt.Errorf("smf: release session %s/%d: %w", supi, psi, err)
	}
	if !validPSI(psi) {
		return fail(fmt.Errorf("PDU session ID %d is not 1 to 15", psi))
	}
	m, err := parseGSM(n1)
	if err != nil {
		return fail(err)
	}
	if m.PDUSessionID() != psi {
		return fail(fmt.Errorf("%w: PDU session ID %d in the 5GSM header, %d in the NAS transport", ErrMalformed, m.PDUSessionID(), psi))
	}
	switch m := m.(type) {
	case *message.PDUSessRelReq:
		return s.releaseRequest(ctx, supi, m)
	case *message.PDUSessRelComplete:
		u := s.acquire(supi, false)
		if u == nil {
			return fail(ErrNoSession)
		}
		defer s.release(u)
		sess := u.sessions[psi-1]
		// TS 24.501 6.4.3.3: the complete ends a session the network is
		// releasing with the same PTI; anything else is ignored.
		if sess == nil || sess.releasePTI == 0 {
			return fail(ErrNoSession)
		}
		if sess.releasePTI != m.PTI {
			return fail(fmt.Errorf("%w: PTI %d, the release command had %d", ErrMalformed, m.PTI, sess.releasePTI))
		}
		u.sessions[psi-1] = nil
		s.log.Debug("smf: PDU session released", "supi", supi, "psi", psi)
		return Result{}, nil
	default:
		return fail(fmt.Errorf("%w: %s is not a PDU session release request or complete", ErrMalformed, m.MsgType()))
	}
}

func (s *SMF) releaseRequest(ctx context.Context, supi string, req *message.PDUSessRelReq) (Result, error) {
	psi := req.PDUSessId
	fail := func(err error) (Result, error) {
		return Result{}, fmt.Errorf("smf: release session %s/%d: %w", supi, psi, err)
	}
	reject := func(cause uint8) (Result, error) {
		s.log.Info("smf: PDU session release rejected", "supi", supi, "psi", psi, "cause", cause)
		b, err := buildReleaseReject(psi, req.PTI, cause)
		if err != nil {
			return fail(err)
		}
		return Result{N1: b}, nil
	}
	if !validPTI(req.PTI) {
		return reject(causeInvalidPTI) // TS 24.501 7.3.1
	}
	u := s.acquire(supi, false)
	if u == nil {
		return reject(causeInvalidPSI) // TS 24.501 6.4.3.4: #43
	}
	defer s.release(u)
	sess := u.sessions[psi-1]
	if sess == nil {
		return reject(causeInvalidPSI)
	}
	// A repeated request (the UE retransmits it) gets the command again.
	if sess.releasePTI == 0 {
		if err := s.releaseResources(ctx, sess); err != nil {
			// The UE's session ends whatever the UPF says.
			s.log.Warn("smf: PFCP session deletion", "supi", supi, "psi", psi, "err", err)
		}
	}
	sess.releasePTI = req.PTI
	n1, err := buildReleaseCommand(psi, req.PTI, causeRegularDeactivation)
	if err != nil {
		return fail(err)
	}
	n2, err := buildReleaseCommandTransfer()
	if err != nil {
		return fail(err)
	}
	return Result{N1: n1, N2: n2}, nil
}

// ReleaseAll releases every PDU session of the UE locally, without 5GSM
// signalling, as at deregistration (TS 24.501 5.5.2.2.2, 6.4.3.5): PFCP
// sessions are deleted and addresses freed. The sessions are gone even
// when the UPF cannot be told; such failures are returned.
func (s *SMF) ReleaseAll(ctx context.Context, supi string) error {
	u := s.acquire(supi, false)
	if u == nil {
		return nil
	}
	defer s.release(u)
	var errs []error
	for i, sess := range u.sessions {
		if sess == nil {
			continue
		}
		if err := s.releaseResources(ctx, sess); err != nil {
			errs = append(errs, fmt.Errorf("PDU session %d: %w", i+1, err))
		}
		u.sessions[i] = nil
	}
	if len(errs) > 0 {
		return fmt.Errorf("smf: release all sessions of %s: %w", supi, errors.Join(errs...))
	}
	return nil
}

// Session describes PDU session psi of the UE.
func (s *SMF) Session(supi string, psi uint8) (SessionInfo, bool) {
	if !validPSI(psi) {
		return SessionInfo{}, false
	}
	u := s.acquire(supi, false)
	if u == nil {
		return SessionInfo{}, false
	}
	defer s.release(u)
	sess := u.sessions[psi-1]
	if sess == nil {
		return SessionInfo{}, false
	}
	info := SessionInfo{
		PSI: psi, DNN: sess.dn.name, SST: sess.slice.sst,
		UEAddr: sess.addr, Uplink: sess.n4.Uplink, GNB: sess.gnb, UPSEID: sess.n4.UP.SEID,
		Releasing: sess.releasePTI != 0,
	}
	if sess.slice.hasSD {
		info.SD = fmt.Sprintf("%x", sess.slice.sd)
	}
	return info, true
}

// UEs is the number of UEs the SMF holds PDU session state for.
func (s *SMF) UEs() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.ues)
}
