package pfcp

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"net/netip"
	"sort"
	"time"

	"github.com/wmnsk/go-pfcp/ie"
	"github.com/wmnsk/go-pfcp/message"
)

// Association is a PFCP association with a peer (TS 29.244 6.2.6).
type Association struct {
	Peer   netip.AddrPort // the peer's PFCP address
	NodeID string         // the peer's Node ID
	// RecoveryTime is the peer's Recovery Time Stamp. In a PeerRestarted
	// event it is the new one.
	RecoveryTime time.Time
	// Features are the octets of the UP or CP Function Features IE the peer
	// sent (TS 29.244 8.2.25, 8.2.58), if any.
	Features    []byte
	Established time.Time
}

// EventKind says what happened to an association.
type EventKind uint8

// Association events.
const (
	// PeerAssociated: an association was set up, by either side.
	PeerAssociated EventKind = iota + 1
	// PeerReleased: an association was released, by either side.
	PeerReleased
	// PeerRestarted: the peer's Recovery Time Stamp changed, so it lost its
	// state (TS 29.244 6.2.2, TS 23.007); the association is gone.
	PeerRestarted
	// PeerLost: a Heartbeat Request and its N1 retransmissions went
	// unanswered; the association is gone.
	PeerLost
)

func (k EventKind) String() string {
	switch k {
	case PeerAssociated:
		return "associated"
	case PeerReleased:
		return "released"
	case PeerRestarted:
		return "restarted"
	case PeerLost:
		return "lost"
	}
	return fmt.Sprintf("EventKind(%d)", uint8(k))
}

// PeerEvent reports an association change.
type PeerEvent struct {
	Kind EventKind
	Association
	// Replaced (PeerAssociated): an association with the same peer existed
	// and was replaced by the new one.
	Replaced bool
}

type peer struct {
	a        Association
	recovery uint32 // NTP seconds, compared to detect a restart
	cancel   context.CancelFunc
}

func randSeq() uint32 { return rand.Uint32() & 0xffffff }

func (n *Node) emit(ev PeerEvent) {
	n.log.Info("pfcp: peer "+ev.Kind.String(), "peer", ev.Peer, "node_id", ev.NodeID)
	if n.cfg.OnPeerEvent != nil {
		n.cfg.OnPeerEvent(ev)
	}
}

// Association returns the association with peer, if there is one.
func (n *Node) Association(peer netip.AddrPort) (Association, bool) {
	n.mu.Lock()
	defer n.mu.Unlock()
	p, ok := n.peers[peer]
	if !ok {
		return Association{}, false
	}
	return p.a, true
}

// Associations lists the current associations, ordered by peer address.
func (n *Node) Associations() []Association {
	n.mu.Lock()
	out := make([]Association, 0, len(n.peers))
	for _, p := range n.peers {
		out = append(out, p.a)
	}
	n.mu.Unlock()
	sort.Slice(out, func(i, j int) bool { return out[i].Peer.Compare(out[j].Peer) < 0 })
	return out
}

// Associate sets up a PFCP association with peer (TS 29.244 6.2.6), or
// returns the one that exists.
func (n *Node) Associate(ctx context.Context, peer netip.AddrPort) (Association, error) {
	peer = netip.AddrPortFrom(peer.Addr().Unmap(), peer.Port())
	if a, ok := n.Association(peer); ok {
		return a, nil
	}
	n.setupMu.Lock()
	defer n.setupMu.Unlock()
	if a, ok := n.Association(peer); ok {
		return a, nil
	}
	ies := []*ie.IE{n.nodeID, recoveryIE(n.recovery)}
	if n.cfg.Features != nil {
		ies = append(ies, n.cfg.Features)
	}
	resp, err := n.Request(ctx, peer, message.NewAssociationSetupRequest(0, ies...))
	if err != nil {
		return Association{}, err
	}
	r, ok := resp.(*message.AssociationSetupResponse)
	if !ok {
		return Association{}, fmt.Errorf("pfcp: association with %s: %w", peer, ErrUnexpectedResponse)
	}
	if err := causeOf("Association Setup Response", r.Cause, nil); err != nil {
		return Association{}, fmt.Errorf("pfcp: association with %s: %w", peer, err)
	}
	id, err := ParseNodeID(r.NodeID)
	if err != nil {
		return Association{}, fmt.Errorf("pfcp: association with %s: %w", peer, err)
	}
	rts, err := parseRecovery(r.RecoveryTimeStamp)
	if err != nil {
		return Association{}, fmt.Errorf("pfcp: association with %s: %w", peer, err)
	}
	return n.associate(peer, id, rts, featuresOf(r.UPFunctionFeatures, r.CPFunctionFeatures))
}

func featuresOf(ies ...*ie.IE) []byte {
	for _, i := range ies {
		if i != nil {
			return clone(i.Payload)
		}
	}
	return nil
}

// associate records an association and starts its heartbeats.
func (n *Node) associate(addr netip.AddrPort, nodeID string, rts uint32, features []byte) (Association, error) {
	p := &peer{
		a: Association{
			Peer: addr, NodeID: nodeID, RecoveryTime: ntpTime(rts),
			Features: features, Established: time.Now(),
		},
		recovery: rts,
	}
	n.mu.Lock()
	if n.closing {
		n.mu.Unlock()
		return Association{}, ErrClosed
	}
	old := n.peers[addr]
	var hbCtx context.Context
	hbCtx, p.cancel = context.WithCancel(n.ctx)
	n.peers[addr] = p
	if n.cfg.HeartbeatInterval > 0 {
		n.wg.Add(1)
		go n.heartbeat(hbCtx, p)
	}
	n.mu.Unlock()
	if old != nil {
		old.cancel()
		if old.recovery != rts {
			ev := PeerEvent{Kind: PeerRestarted, Association: old.a}
			ev.RecoveryTime = ntpTime(rts)
			n.emit(ev)
		}
	}
	n.emit(PeerEvent{Kind: PeerAssociated, Association: p.a, Replaced: old != nil})
	return p.a, nil
}

// Release releases the association with peer (TS 29.244 6.2.6). The
// association is gone locally even when the peer does not answer.
func (n *Node) Release(ctx context.Context, peer netip.AddrPort) error {
	peer = netip.AddrPortFrom(peer.Addr().Unmap(), peer.Port())
	n.mu.Lock()
	p := n.peers[peer]
	delete(n.peers, peer)
	n.mu.Unlock()
	if p == nil {
		return fmt.Errorf("pfcp: release %s: %w", peer, ErrNotAssociated)
	}
	p.cancel()
	n.emit(PeerEvent{Kind: PeerReleased, Association: p.a})
	resp, err := n.Request(ctx, peer, message.NewAssociationReleaseRequest(0, n.nodeID))
	if err != nil {
		return err
	}
	r, ok := resp.(*message.AssociationReleaseResponse)
	if !ok {
		return fmt.Errorf("pfcp: release %s: %w", peer, ErrUnexpectedResponse)
	}
	if err := causeOf("Association Release Response", r.Cause, nil); err != nil {
		return fmt.Errorf("pfcp: release %s: %w", peer, err)
	}
	return nil
}

// remove drops the association p if it is still the current one for its
// peer, stops its heartbeats and reports kind.
func (n *Node) remove(p *peer, kind EventKind, rts uint32) {
	n.mu.Lock()
	cur := n.peers[p.a.Peer]
	if cur == p {
		delete(n.peers, p.a.Peer)
	}
	n.mu.Unlock()
	if cur != p {
		return
	}
	p.cancel()
	ev := PeerEvent{Kind: kind, Association: p.a}
	if kind == PeerRestarted {
		ev.RecoveryTime = ntpTime(rts)
	}
	n.emit(ev)
}

// observeRecovery compares a Recovery Time Stamp from peer with the one its
// association holds; a change means the peer restarted (TS 29.244 6.2.2,
// TS 23.007).
func (n *Node) observeRecovery(addr netip.AddrPort, rts uint32) {
	n.mu.Lock()
	p := n.peers[addr]
	n.mu.Unlock()
	if p != nil && p.recovery != rts {
		n.remove(p, PeerRestarted, rts)
	}
}

// heartbeat runs the heartbeat procedure towards an associated peer
// (TS 29.244 6.2.2) until the association ends.
func (n *Node) heartbeat(ctx context.Context, p *peer) {
	defer n.wg.Done()
	t := time.NewTicker(n.cfg.HeartbeatInterval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		resp, err := n.Request(ctx, p.a.Peer, message.NewHeartbeatRequest(0, recoveryIE(n.recovery), nil))
		if err != nil {
			if ctx.Err() != nil {
				return
			}
			if errors.Is(err, ErrTimeout) {
				n.remove(p, PeerLost, 0)
				return
			}
			n.log.Warn("pfcp: heartbeat", "peer", p.a.Peer, "err", err)
			continue
		}
		r, ok := resp.(*message.HeartbeatResponse)
		if !ok {
			continue
		}
		rts, err := parseRecovery(r.RecoveryTimeStamp)
		if err != nil {
			n.log.Warn("pfcp: heartbeat response", "peer", p.a.Peer, "err", err)
			continue
		}
		n.observeRecovery(p.a.Peer, rts)
	}
}

// onHeartbeat answers a Heartbeat Request (TS 29.244 7.4.2), associated
// peer or not, and checks the peer's Recovery Time Stamp.
func (n *Node) onHeartbeat(from netip.AddrPort, m message.Message) message.Message {
	req, ok := m.(*message.HeartbeatRequest)
	if !ok {
		return nil
	}
	if rts, err := parseRecovery(req.RecoveryTimeStamp); err == nil {
		n.observeRecovery(from, rts)
	} else {
		n.stats.malformed.Add(1)
	}
	return message.NewHeartbeatResponse(0, recoveryIE(n.recovery))
}

// onAssociationSetup accepts an Association Setup Request (TS 29.244
// 6.2.6, 7.4.4.1). One from a peer already associated replaces that
// association.
func (n *Node) onAssociationSetup(from netip.AddrPort, m message.Message) message.Message {
	req, ok := m.(*message.AssociationSetupRequest)
	if !ok {
		return nil
	}
	reject := func(err error) message.Message {
		cause, off := ieErrorCause(err)
		ies := []*ie.IE{n.nodeID, ie.NewCause(cause), recoveryIE(n.recovery)}
		if off != 0 {
			ies = append(ies, ie.NewOffendingIE(off))
		}
		return message.NewAssociationSetupResponse(0, ies...)
	}
	id, err := ParseNodeID(req.NodeID)
	if err != nil {
		return reject(err)
	}
	rts, err := parseRecovery(req.RecoveryTimeStamp)
	if err != nil {
		return reject(err)
	}
	if _, err := n.associate(from, id, rts, featuresOf(req.UPFunctionFeatures, req.CPFunctionFeatures)); err != nil {
		return message.NewAssociationSetupResponse(0, n.nodeID, ie.NewCause(CauseSystemFailure), recoveryIE(n.recovery))
	}
	ies := []*ie.IE{n.nodeID, ie.NewCause(CauseRequestAccepted), recoveryIE(n.recovery)}
	if n.cfg.Features != nil {
		ies = append(ies, n.cfg.Features)
	}
	return message.NewAssociationSetupResponse(0, ies...)
}

// onAssociationRelease answers an Association Release Request (TS 29.244
// 6.2.6, 7.4.4.5).
func (n *Node) onAssociationRelease(from netip.AddrPort, m message.Message) message.Message {
	req, ok := m.(*message.AssociationReleaseRequest)
	if !ok {
		return nil
	}
	id, err := ParseNodeID(req.NodeID)
	if err != nil {
		cause, off := ieErrorCause(err)
		if off == 0 {
			return message.NewAssociationReleaseResponse(0, n.nodeID, ie.NewCause(cause))
		}
		return message.NewAssociationReleaseResponse(0, n.nodeID, ie.NewCause(cause), ie.NewOffendingIE(off))
	}
	n.mu.Lock()
	p := n.peers[from]
	n.mu.Unlock()
	if p == nil || p.a.NodeID != id {
		return message.NewAssociationReleaseResponse(0, n.nodeID, ie.NewCause(CauseNoEstablishedPFCPAssociation))
	}
	n.remove(p, PeerReleased, 0)
	return message.NewAssociationReleaseResponse(0, n.nodeID, ie.NewCause(CauseRequestAccepted))
}
