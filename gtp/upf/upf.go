// Package upf is the user plane function: PFCP sessions and their GTP-U
// data path.
//
// The UPF serves N4 on a pfcp.Node: it accepts associations from SMFs,
// handles PFCP Session Establishment, Modification and Deletion (TS 29.244
// 7.5) with their cause codes, allocates UP SEIDs and uplink F-TEIDs
// (TS 29.244 5.5.3, CHOOSE), and keeps the session table the GTP-U fast path
// reads: by uplink TEID, by UE address and by UP SEID, each entry holding
// the subscriber's IMSI, IMEI and MSISDN from the User ID IE. Sessions go
// when deleted, when their association is released, and when their SMF
// restarts or is lost.
//
// DataPath (datapath.go) carries the sessions' packets between N3 (a
// gtpu.Conn) and the data network (gtp/dn): uplink by TEID with
// anti-spoofing, downlink by UE address into the gNB's tunnel. The table
// also answers the Endorse resolver (Table.EndorseSession).
package upf

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"net"
	"net/netip"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/wmnsk/go-pfcp/ie"
	"github.com/wmnsk/go-pfcp/message"

	"github.com/simgate/simgate/gtp/pfcp"
)

// upFeatures is the UP Function Features IE (TS 29.244 8.2.25): octet 5
// bit 5 FTUP, the UP function allocates F-TEIDs.
var upFeatures = []byte{0x10, 0x00}

// UPF is a running user plane function.
type UPF struct {
	cfg   Config
	n3    netip.Addr
	fseid netip.Addr
	node  *pfcp.Node
	table *Table
	log   *slog.Logger

	mu       sync.Mutex // serialises session changes
	nextTEID uint32
	nextSEID uint64
	byCP     map[cpKey]*Session

	obs atomic.Pointer[func(old, s *Session)] // the data path (datapath.go)
}

// observe sets f to be told of every session change, with u.mu held: old
// replaced by s, old nil for a new session, s nil for a removed one. nil
// unsets it.
func (u *UPF) observe(f func(old, s *Session)) {
	if f == nil {
		u.obs.Store(nil)
		return
	}
	u.obs.Store(&f)
}

// changed tells the observer. Called with u.mu held.
func (u *UPF) changed(old, s *Session) {
	if f := u.obs.Load(); f != nil {
		(*f)(old, s)
	}
}

// cpKey is a session as its SMF names it.
type cpKey struct {
	peer netip.AddrPort
	seid uint64
}

// Start validates cfg, binds the N4 socket and serves until ctx ends.
func Start(ctx context.Context, cfg Config, log *slog.Logger) (*UPF, error) {
	n4, _, err := cfg.resolve()
	if err != nil {
		return nil, err
	}
	conn, err := net.ListenUDP("udp", net.UDPAddrFromAddrPort(n4))
	if err != nil {
		return nil, fmt.Errorf("upf: listen on N4 %s: %w", n4, err)
	}
	u, err := StartOn(ctx, cfg, conn, log)
	if err != nil {
		conn.Close()
		return nil, err
	}
	return u, nil
}

// StartOn is Start on a socket the caller bound (cfg.N4Addr is then only
// used for the UP F-SEID address when the socket's address is unspecified).
func StartOn(ctx context.Context, cfg Config, conn pfcp.PacketConn, log *slog.Logger) (*UPF, error) {
	_, fseid, err := cfg.resolve()
	if err != nil {
		return nil, err
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	u := &UPF{
		cfg:      cfg,
		n3:       cfg.n3(),
		fseid:    fseid,
		table:    NewTable(),
		log:      log.With("nf", "upf"),
		nextTEID: rand.Uint32(),
		nextSEID: rand.Uint64(),
		byCP:     make(map[cpKey]*Session),
	}
	pc := cfg.pfcpConfig()
	pc.Features = ie.New(ie.UPFunctionFeatures, upFeatures)
	pc.Logger = log
	pc.OnPeerEvent = u.onPeerEvent
	pc.Handlers = map[uint8]pfcp.Handler{
		message.MsgTypeSessionEstablishmentRequest: u.establish,
		message.MsgTypeSessionModificationRequest:  u.modify,
		message.MsgTypeSessionDeletionRequest:      u.delete,
	}
	if ua, ok := conn.LocalAddr().(*net.UDPAddr); ok {
		if a := ua.AddrPort().Addr().Unmap(); a.IsValid() && !a.IsUnspecified() {
			u.fseid = a
		}
	}
	if u.node, err = pfcp.Start(ctx, conn, pc); err != nil {
		return nil, fmt.Errorf("upf: %w", err)
	}
	return u, nil
}

// Node is the UPF's PFCP node.
func (u *UPF) Node() *pfcp.Node { return u.node }

// Addr is the UPF's N4 address.
func (u *UPF) Addr() netip.AddrPort { return u.node.LocalAddr() }

// Sessions is the session table.
func (u *UPF) Sessions() *Table { return u.table }

// Done is closed when the UPF has stopped.
func (u *UPF) Done() <-chan struct{} { return u.node.Done() }

// onPeerEvent drops the sessions of an SMF whose association ended, or was
// set up again without session retention (TS 29.244 6.2.6; TS 23.007).
func (u *UPF) onPeerEvent(ev pfcp.PeerEvent) {
	switch {
	case ev.Kind == pfcp.PeerReleased, ev.Kind == pfcp.PeerRestarted, ev.Kind == pfcp.PeerLost,
		ev.Kind == pfcp.PeerAssociated && ev.Replaced:
	default:
		return
	}
	u.mu.Lock()
	defer u.mu.Unlock()
	n := 0
	for k, s := range u.byCP {
		if k.peer == ev.Peer {
			u.table.remove(s)
			delete(u.byCP, k)
			u.changed(s, nil)
			n++
		}
	}
	if n > 0 {
		u.log.Info("upf: sessions removed", "peer", ev.Peer, "event", ev.Kind.String(), "sessions", n)
	}
}

// allocTEID picks a free non-zero TEID (TS 29.281 5.1: TEID 0 is not a
// tunnel). Called with u.mu held.
func (u *UPF) allocTEID(taken map[uint32]bool) (uint32, bool) {
	for range 1 << 16 {
		u.nextTEID++
		t := u.nextTEID
		if t == 0 || taken[t] {
			continue
		}
		if _, used := u.table.LookupByTEID(t); used {
			continue
		}
		return t, true
	}
	return 0, false
}

// allocSEID picks a free non-zero UP SEID. Called with u.mu held.
func (u *UPF) allocSEID() uint64 {
	for {
		u.nextSEID++
		if s := u.nextSEID; s != 0 {
			if _, used := u.table.LookupBySEID(s); !used {
				return s
			}
		}
	}
}

// ruleError is a rule the session cannot take: Cause "Rule creation/
// modification Failure" with a Failed Rule ID (TS 29.244 8.2.80).
type ruleError struct {
	cause    uint8
	hasRule  bool  // a Failed Rule ID names the rule
	ruleType uint8 // ie.RuleIDTypePDR, ...
	id       uint32
	msg      string
}

func (e *ruleError) Error() string { return e.msg }

func pdrFailure(id uint16, format string, args ...any) *ruleError {
	return &ruleError{cause: pfcp.CauseRuleCreationModificationFailure, hasRule: true, ruleType: ie.RuleIDTypePDR, id: uint32(id), msg: fmt.Sprintf(format, args...)}
}

func ruleFailure(ruleType uint8, id uint32, format string, args ...any) *ruleError {
	return &ruleError{cause: pfcp.CauseRuleCreationModificationFailure, hasRule: true, ruleType: ruleType, id: id, msg: fmt.Sprintf(format, args...)}
}

// failureIEs are the Cause-related IEs of a rejection for err.
func failureIEs(err error) (cause uint8, ies []*ie.IE) {
	var re *ruleError
	if errors.As(err, &re) {
		if !re.hasRule {
			return re.cause, nil
		}
		return re.cause, []*ie.IE{ie.NewFailedRuleID(re.ruleType, re.id)}
	}
	c, off := pfcp.IECause(err)
	if off != 0 {
		ies = append(ies, ie.NewOffendingIE(off))
	}
	return c, ies
}

// rules is a session's rule set while it is being built.
type rules struct {
	pdrs []pfcp.PDR
	fars []pfcp.FAR
	qers []pfcp.QER
}

func (r *rules) addPDRs(list []*ie.IE) error {
	for _, i := range list {
		p, err := pfcp.ParseCreatePDR(i)
		if err != nil {
			return err
		}
		if slices.ContainsFunc(r.pdrs, func(x pfcp.PDR) bool { return x.ID == p.ID }) {
			return pdrFailure(p.ID, "PDR %d already exists", p.ID)
		}
		r.pdrs = append(r.pdrs, p)
	}
	return nil
}

func (r *rules) addFARs(list []*ie.IE) error {
	for _, i := range list {
		f, err := pfcp.ParseCreateFAR(i)
		if err != nil {
			return err
		}
		if slices.ContainsFunc(r.fars, func(x pfcp.FAR) bool { return x.ID == f.ID }) {
			return ruleFailure(ie.RuleIDTypeFAR, f.ID, "FAR %d already exists", f.ID)
		}
		r.fars = append(r.fars, f)
	}
	return nil
}

func (r *rules) addQERs(list []*ie.IE) error {
	for _, i := range list {
		q, err := pfcp.ParseCreateQER(i)
		if err != nil {
			return err
		}
		if slices.ContainsFunc(r.qers, func(x pfcp.QER) bool { return x.ID == q.ID }) {
			return ruleFailure(ie.RuleIDTypeQER, q.ID, "QER %d already exists", q.ID)
		}
		r.qers = append(r.qers, q)
	}
	return nil
}

// chooseTEIDs allocates the F-TEIDs the SMF left to the UPF (CH), one per
// CHOOSE ID (TS 29.244 5.5.3), and returns the Created PDR IEs reporting
// them. Called with u.mu held.
func (u *UPF) chooseTEIDs(r *rules) ([]*ie.IE, error) {
	taken := map[uint32]bool{}
	byChooseID := map[uint8]pfcp.FTEID{}
	var created []*ie.IE
	for i := range r.pdrs {
		p := &r.pdrs[i]
		if !p.ChooseFTEID {
			continue
		}
		if p.ChooseIPv6 && !u.n3.Is6() || !p.ChooseIPv6 && !u.n3.Is4() {
			return nil, &ruleError{cause: pfcp.CauseInvalidFTEIDAllocationOption, msg: "F-TEID of an IP version the N3 address is not"}
		}
		f, ok := byChooseID[p.ChooseID]
		if !ok || p.ChooseID == 0 {
			teid, ok := u.allocTEID(taken)
			if !ok {
				return nil, &ruleError{cause: pfcp.CauseNoResourcesAvailable, msg: "no free TEID"}
			}
			taken[teid] = true
			f = pfcp.FTEID{TEID: teid, Addr: u.n3}
			if p.ChooseID != 0 {
				byChooseID[p.ChooseID] = f
			}
		}
		p.LocalFTEID, p.ChooseFTEID, p.ChooseID = f, false, 0
		created = append(created, ie.NewCreatedPDR(ie.NewPDRID(p.ID), f.IE()))
	}
	return created, nil
}

// build derives the table fields of s from its rules and checks that they
// hang together and do not collide with another session than s itself or
// the one it replaces. Called with u.mu held.
func (u *UPF) build(s *Session, r *rules, replacing *Session) error {
	s.PDRs, s.FARs, s.QERs = r.pdrs, r.fars, r.qers
	s.UEAddr, s.Uplink, s.Downlink, s.DownlinkAction, s.QFI, s.teids = netip.Addr{}, pfcp.FTEID{}, pfcp.FTEID{}, 0, 0, nil
	far := func(id uint32) (pfcp.FAR, bool) {
		i := slices.IndexFunc(r.fars, func(f pfcp.FAR) bool { return f.ID == id })
		if i < 0 {
			return pfcp.FAR{}, false
		}
		return r.fars[i], true
	}
	for _, p := range r.pdrs {
		if p.FARID == 0 {
			return pdrFailure(p.ID, "PDR %d has no FAR ID", p.ID)
		}
		f, ok := far(p.FARID)
		if !ok {
			return pdrFailure(p.ID, "PDR %d refers to FAR %d, which does not exist", p.ID, p.FARID)
		}
		for _, q := range p.QERIDs {
			if !slices.ContainsFunc(r.qers, func(x pfcp.QER) bool { return x.ID == q }) {
				return pdrFailure(p.ID, "PDR %d refers to QER %d, which does not exist", p.ID, q)
			}
		}
		if a := p.UEAddr.Unmap(); a.IsValid() {
			if s.UEAddr.IsValid() && s.UEAddr != a {
				return pdrFailure(p.ID, "PDR %d has UE address %s, another PDR %s", p.ID, a, s.UEAddr)
			}
			s.UEAddr = a
		}
		if !p.LocalFTEID.IsZero() && !slices.Contains(s.teids, p.LocalFTEID.TEID) {
			s.teids = append(s.teids, p.LocalFTEID.TEID)
		}
		switch p.Source {
		case pfcp.InterfaceAccess:
			if s.Uplink.IsZero() && !p.LocalFTEID.IsZero() {
				s.Uplink = p.LocalFTEID
				if p.QFI != 0 {
					s.QFI = p.QFI
				}
			}
		case pfcp.InterfaceCore:
			if s.DownlinkAction == 0 {
				s.DownlinkAction = f.Action
				if f.Forwarding != nil {
					s.Downlink = f.Forwarding.OuterHeader
				}
			}
		}
	}
	if s.QFI == 0 {
		for _, q := range r.qers {
			if q.QFI != 0 {
				s.QFI = q.QFI
				break
			}
		}
	}
	// The table is keyed by TEID and UE address: neither may belong to
	// another session.
	for _, t := range s.teids {
		if o, ok := u.table.LookupByTEID(t); ok && o.UPSEID != s.UPSEID && o != replacing {
			return pdrFailure(pdrWithTEID(r.pdrs, t), "TEID %#x is in use by session %#x", t, o.UPSEID)
		}
	}
	if s.UEAddr.IsValid() {
		if o, ok := u.table.LookupByAddr(s.UEAddr); ok && o.UPSEID != s.UPSEID && o != replacing {
			return pdrFailure(pdrWithAddr(r.pdrs), "UE address %s is in use by session %#x", s.UEAddr, o.UPSEID)
		}
	}
	return nil
}

func pdrWithTEID(pdrs []pfcp.PDR, t uint32) uint16 {
	for _, p := range pdrs {
		if p.LocalFTEID.TEID == t {
			return p.ID
		}
	}
	return 0
}

func pdrWithAddr(pdrs []pfcp.PDR) uint16 {
	for _, p := range pdrs {
		if p.UEAddr.IsValid() {
			return p.ID
		}
	}
	return 0
}

// establish handles a PFCP Session Establishment Request (TS 29.244 7.5.2,
// response 7.5.3).
func (u *UPF) establish(_ context.Context, node *pfcp.Node, peer netip.AddrPort, m message.Message) message.Message {
	req, ok := m.(*message.SessionEstablishmentRequest)
	if !ok {
		return nil
	}
	var cpSEID uint64 // the response goes to the CP SEID once it is known
	reject := func(cause uint8, ies ...*ie.IE) message.Message {
		u.log.Debug("upf: session establishment rejected", "peer", peer, "cause", pfcp.CauseName(cause))
		all := append([]*ie.IE{node.NodeIDIE(), ie.NewCause(cause)}, ies...)
		return message.NewSessionEstablishmentResponse(0, 0, cpSEID, 0, 0, all...)
	}
	fail := func(err error) message.Message {
		cause, ies := failureIEs(err)
		return reject(cause, ies...)
	}
	// TS 29.244 6.2.6: sessions only within an association.
	if _, ok := node.Association(peer); !ok {
		return reject(pfcp.CauseNoEstablishedPFCPAssociation)
	}
	switch {
	case req.NodeID == nil:
		return reject(pfcp.CauseMandatoryIEMissing, ie.NewOffendingIE(ie.NodeID))
	case req.CPFSEID == nil:
		return reject(pfcp.CauseMandatoryIEMissing, ie.NewOffendingIE(ie.FSEID))
	case len(req.CreatePDR) == 0:
		return reject(pfcp.CauseMandatoryIEMissing, ie.NewOffendingIE(ie.CreatePDR))
	case len(req.CreateFAR) == 0:
		return reject(pfcp.CauseMandatoryIEMissing, ie.NewOffendingIE(ie.CreateFAR))
	}
	if _, err := pfcp.ParseNodeID(req.NodeID); err != nil {
		return fail(err)
	}
	cp, err := pfcp.ParseFSEID(req.CPFSEID)
	if err != nil {
		return fail(err)
	}
	cpSEID = cp.SEID
	s := &Session{CP: cp, Peer: peer, Established: time.Now()}
	if req.UserID != nil {
		if s.UserID, err = pfcp.ParseUserID(req.UserID); err != nil {
			return fail(err)
		}
	}
	if req.PDNType != nil && len(req.PDNType.Payload) > 0 {
		s.PDNType = req.PDNType.Payload[0] & 0x07
	}
	if req.APNDNN != nil {
		s.DNN, _ = req.APNDNN.APNDNN()
	}
	var r rules
	if err := r.addPDRs(req.CreatePDR); err != nil {
		return fail(err)
	}
	if err := r.addFARs(req.CreateFAR); err != nil {
		return fail(err)
	}
	if err := r.addQERs(req.CreateQER); err != nil {
		return fail(err)
	}

	u.mu.Lock()
	defer u.mu.Unlock()
	// An establishment for a CP F-SEID we hold replaces that session.
	old := u.byCP[cpKey{peer, cp.SEID}]
	created, err := u.chooseTEIDs(&r)
	if err != nil {
		return fail(err)
	}
	s.UPSEID = u.allocSEID()
	if err := u.build(s, &r, old); err != nil {
		return fail(err)
	}
	u.table.put(s, old)
	u.byCP[cpKey{peer, cp.SEID}] = s
	u.changed(old, s)
	u.log.Debug("upf: session established", "peer", peer, "up_seid", s.UPSEID, "imsi", s.IMSI, "ue", s.UEAddr, "teid", s.Uplink.TEID)

	ies := []*ie.IE{node.NodeIDIE(), ie.NewCause(pfcp.CauseRequestAccepted),
		pfcp.FSEID{SEID: s.UPSEID, Addr: u.fseid}.IE()}
	ies = append(ies, created...)
	return message.NewSessionEstablishmentResponse(0, 0, cp.SEID, 0, 0, ies...)
}

// sessionOf finds the session a session related request names in its
// header, if it belongs to peer. Called with u.mu held.
func (u *UPF) sessionOf(peer netip.AddrPort, seid uint64) (*Session, bool) {
	s, ok := u.table.LookupBySEID(seid)
	if !ok || s.Peer != peer {
		return nil, false
	}
	return s, true
}

// modify handles a PFCP Session Modification Request (TS 29.244 7.5.4,
// response 7.5.5): Create/Remove PDR, FAR, QER and Update FAR.
func (u *UPF) modify(_ context.Context, node *pfcp.Node, peer netip.AddrPort, m message.Message) message.Message {
	req, ok := m.(*message.SessionModificationRequest)
	if !ok {
		return nil
	}
	u.mu.Lock()
	defer u.mu.Unlock()
	old, ok := u.sessionOf(peer, req.SEID())
	if !ok {
		// TS 29.244 7.2.2.4.2: unknown SEID: answer with SEID 0.
		return message.NewSessionModificationResponse(0, 0, 0, 0, 0, ie.NewCause(pfcp.CauseSessionContextNotFound))
	}
	reject := func(err error) message.Message {
		cause, ies := failureIEs(err)
		u.log.Debug("upf: session modification rejected", "peer", peer, "up_seid", old.UPSEID, "cause", pfcp.CauseName(cause), "err", err)
		return message.NewSessionModificationResponse(0, 0, old.CP.SEID, 0, 0, append([]*ie.IE{ie.NewCause(cause)}, ies...)...)
	}
	// Rules this UPF cannot change yet are refused rather than ignored.
	for _, list := range [][]*ie.IE{req.UpdatePDR, req.UpdateQER} {
		if len(list) > 0 {
			return reject(&pfcp.IEError{IE: list[0].Type, Cause: pfcp.CauseServiceNotSupported})
		}
	}
	s := *old
	r := rules{pdrs: slices.Clone(old.PDRs), fars: slices.Clone(old.FARs), qers: slices.Clone(old.QERs)}
	if req.CPFSEID != nil {
		cp, err := pfcp.ParseFSEID(req.CPFSEID)
		if err != nil {
			return reject(err)
		}
		s.CP = cp
	}
	for _, i := range req.RemovePDR {
		id, err := pfcp.ParseRemovePDR(i)
		if err != nil {
			return reject(err)
		}
		r.pdrs = slices.DeleteFunc(r.pdrs, func(p pfcp.PDR) bool { return p.ID == id })
	}
	for _, i := range req.RemoveFAR {
		id, err := pfcp.ParseRemoveFAR(i)
		if err != nil {
			return reject(err)
		}
		r.fars = slices.DeleteFunc(r.fars, func(f pfcp.FAR) bool { return f.ID == id })
	}
	for _, i := range req.RemoveQER {
		id, err := pfcp.ParseRemoveQER(i)
		if err != nil {
			return reject(err)
		}
		r.qers = slices.DeleteFunc(r.qers, func(q pfcp.QER) bool { return q.ID == id })
	}
	if err := r.addPDRs(req.CreatePDR); err != nil {
		return reject(err)
	}
	if err := r.addFARs(req.CreateFAR); err != nil {
		return reject(err)
	}
	if err := r.addQERs(req.CreateQER); err != nil {
		return reject(err)
	}
	for _, i := range req.UpdateFAR {
		up, err := pfcp.ParseUpdateFAR(i)
		if err != nil {
			return reject(err)
		}
		k := slices.IndexFunc(r.fars, func(f pfcp.FAR) bool { return f.ID == up.ID })
		if k < 0 {
			return reject(ruleFailure(ie.RuleIDTypeFAR, up.ID, "FAR %d does not exist", up.ID))
		}
		f := r.fars[k]
		if up.Action != 0 {
			f.Action = up.Action
		}
		if up.Forwarding != nil {
			fw := *up.Forwarding
			if up.KeepDestination && f.Forwarding != nil {
				fw.Destination = f.Forwarding.Destination
			}
			f.Forwarding = &fw
		}
		if f.Action&pfcp.ActionForward != 0 && f.Forwarding == nil {
			return reject(ruleFailure(ie.RuleIDTypeFAR, f.ID, "FAR %d forwards without forwarding parameters", f.ID))
		}
		r.fars[k] = f
	}
	created, err := u.chooseTEIDs(&r)
	if err != nil {
		return reject(err)
	}
	if err := u.build(&s, &r, old); err != nil {
		return reject(err)
	}
	u.table.put(&s, old)
	delete(u.byCP, cpKey{peer, old.CP.SEID})
	u.byCP[cpKey{peer, s.CP.SEID}] = &s
	u.changed(old, &s)
	u.log.Debug("upf: session modified", "peer", peer, "up_seid", s.UPSEID, "downlink", s.Downlink)
	return message.NewSessionModificationResponse(0, 0, s.CP.SEID, 0, 0, append([]*ie.IE{ie.NewCause(pfcp.CauseRequestAccepted)}, created...)...)
}

// delete handles a PFCP Session Deletion Request (TS 29.244 7.5.6,
// response 7.5.7).
func (u *UPF) delete(_ context.Context, node *pfcp.Node, peer netip.AddrPort, m message.Message) message.Message {
	u.mu.Lock()
	defer u.mu.Unlock()
	s, ok := u.sessionOf(peer, m.SEID())
	if !ok {
		return message.NewSessionDeletionResponse(0, 0, 0, 0, 0, ie.NewCause(pfcp.CauseSessionContextNotFound))
	}
	u.table.remove(s)
	delete(u.byCP, cpKey{peer, s.CP.SEID})
	u.changed(s, nil)
	u.log.Debug("upf: session deleted", "peer", peer, "up_seid", s.UPSEID)
	return message.NewSessionDeletionResponse(0, 0, s.CP.SEID, 0, 0, ie.NewCause(pfcp.CauseRequestAccepted))
}
