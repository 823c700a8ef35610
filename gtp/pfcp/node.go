package pfcp

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"runtime/debug"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/wmnsk/go-pfcp/ie"
	"github.com/wmnsk/go-pfcp/message"
)

// DefaultPort is the PFCP UDP port (TS 29.244 4.2.2).
const DefaultPort = 8805

// Defaults for Config fields left zero.
const (
	DefaultT1                = 3 * time.Second
	DefaultN1                = 3
	DefaultHeartbeatInterval = 10 * time.Second
	DefaultDuplicateWindow   = 30 * time.Second
	DefaultMaxHandlers       = 256
)

// Handler answers one request from peer, received by node n. It returns the
// response, whose sequence number the node sets; nil sends nothing. ctx ends
// when the node stops.
type Handler func(ctx context.Context, n *Node, peer netip.AddrPort, req message.Message) message.Message

// Config configures a Node. Zero fields take the defaults above.
type Config struct {
	// NodeID is this node's Node ID: an IP literal or an FQDN. Empty: the
	// IP address the socket is bound to (which must then be specific).
	NodeID string
	// T1 is how long a request waits for its response before it is sent
	// again; N1 is how many times it is sent again (TS 29.244 6.4).
	// N1 < 0 means no retransmission.
	T1 time.Duration
	N1 int
	// HeartbeatInterval is the time between Heartbeat Requests to each
	// associated peer (TS 29.244 6.2.2); negative disables heartbeats.
	HeartbeatInterval time.Duration
	// DuplicateWindow is how long a response is kept to answer a
	// retransmission of its request.
	DuplicateWindow time.Duration
	// RecoveryTime is sent as the Recovery Time Stamp; zero: now.
	RecoveryTime time.Time
	// Features is the UP or CP Function Features IE sent in Association
	// Setup messages (TS 29.244 8.2.25, 8.2.58); nil sends none.
	Features *ie.IE
	// Handlers answer requests by message type. Heartbeat and Association
	// Setup/Release requests are the node's own and may not be set.
	// Requests without a handler are answered "Service not supported".
	Handlers map[uint8]Handler
	// OnPeerEvent, if set, is told of association changes. It runs on the
	// node's goroutines and must not block.
	OnPeerEvent func(PeerEvent)
	// MaxHandlers bounds the requests handled at once.
	MaxHandlers int
	Logger      *slog.Logger
}

// PacketConn is the datagram socket a Node runs on; *net.UDPConn is one.
// Tests wrap it to lose or record datagrams.
type PacketConn interface {
	ReadFromUDPAddrPort(b []byte) (int, netip.AddrPort, error)
	WriteToUDPAddrPort(b []byte, addr netip.AddrPort) (int, error)
	LocalAddr() net.Addr
	Close() error
}

// Stats are a node's counters since it started.
type Stats struct {
	RequestsSent        uint64 // first transmissions
	Retransmissions     uint64
	Timeouts            uint64 // requests given up after N1 retransmissions
	ResponsesReceived   uint64 // matched to an outstanding request
	UnmatchedResponses  uint64 // late, duplicate or unsolicited responses
	RequestsReceived    uint64 // handled (duplicates excluded)
	DuplicateRequests   uint64 // retransmissions answered from the cache
	Malformed           uint64 // datagrams or messages that did not decode
	UnknownMessages     uint64 // message types TS 29.244 does not define
	VersionNotSupported uint64 // messages of another PFCP version
}

type counters struct {
	requestsSent, retransmissions, timeouts, responsesReceived, unmatched,
	requestsReceived, duplicates, malformed, unknown, badVersion atomic.Uint64
}

// pending is an outstanding request.
type pending struct {
	peer netip.AddrPort
	ch   chan message.Message
}

// dupKey identifies a received request (TS 29.244 6.4: a retransmitted
// request has the same sequence number, from the same peer).
type dupKey struct {
	peer netip.AddrPort
	seq  uint32
	typ  uint8
}

// dupEntry is a request being handled (resp nil) or answered.
type dupEntry struct {
	resp    []byte
	expires time.Time
}

// Node is a PFCP entity on one UDP socket. It serves from Start until its
// context ends.
type Node struct {
	conn     PacketConn
	cfg      Config
	nodeID   *ie.IE
	nodeIDs  string
	recovery uint32
	local    netip.AddrPort
	log      *slog.Logger

	ctx  context.Context
	stop context.CancelFunc
	done chan struct{}
	sem  chan struct{}

	// setupMu serialises Associate, so that concurrent first calls send one
	// Association Setup Request: a second one would make the peer drop the
	// sessions set up in between (TS 29.244 6.2.6.2.2).
	setupMu sync.Mutex
	wg      sync.WaitGroup

	mu      sync.Mutex
	closing bool
	lastSeq uint32
	pending map[uint32]*pending
	peers   map[netip.AddrPort]*peer
	dup     map[dupKey]*dupEntry

	stats counters
}

// ParseAddrPort parses "ip", "ip:port", "[ipv6]:port" or ":port"; the port
// defaults to DefaultPort and an empty host to the unspecified IPv4 address.
func ParseAddrPort(s string) (netip.AddrPort, error) {
	host, port := s, ""
	if h, p, err := net.SplitHostPort(s); err == nil {
		host, port = h, p
	}
	var addr netip.Addr
	if host == "" {
		addr = netip.IPv4Unspecified()
	} else {
		a, err := netip.ParseAddr(host)
		if err != nil {
			return netip.AddrPort{}, fmt.Errorf("pfcp: address %q: host is not an IP address", s)
		}
		addr = a.Unmap()
	}
	p := uint64(DefaultPort)
	if port != "" {
		v, err := strconv.ParseUint(port, 10, 16)
		if err != nil {
			return netip.AddrPort{}, fmt.Errorf("pfcp: address %q: bad port", s)
		}
		p = v
	}
	return netip.AddrPortFrom(addr, uint16(p)), nil
}

// Listen binds a UDP socket at addr (see ParseAddrPort) and starts a node
// on it.
func Listen(ctx context.Context, addr string, cfg Config) (*Node, error) {
	ap, err := ParseAddrPort(addr)
	if err != nil {
		return nil, err
	}
	conn, err := net.ListenUDP("udp", net.UDPAddrFromAddrPort(ap))
	if err != nil {
		return nil, fmt.Errorf("pfcp: listen %s: %w", ap, err)
	}
	n, err := Start(ctx, conn, cfg)
	if err != nil {
		conn.Close()
		return nil, err
	}
	return n, nil
}

// Start runs a node on conn, which it owns from now on: it is closed when
// ctx ends. Start returns once the node is receiving.
func Start(ctx context.Context, conn PacketConn, cfg Config) (*Node, error) {
	if cfg.T1 == 0 {
		cfg.T1 = DefaultT1
	}
	if cfg.N1 == 0 {
		cfg.N1 = DefaultN1
	} else if cfg.N1 < 0 {
		cfg.N1 = 0
	}
	if cfg.HeartbeatInterval == 0 {
		cfg.HeartbeatInterval = DefaultHeartbeatInterval
	}
	if cfg.DuplicateWindow == 0 {
		cfg.DuplicateWindow = DefaultDuplicateWindow
	}
	if cfg.MaxHandlers <= 0 {
		cfg.MaxHandlers = DefaultMaxHandlers
	}
	if cfg.RecoveryTime.IsZero() {
		cfg.RecoveryTime = time.Now()
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.T1 < 0 || cfg.DuplicateWindow < 0 {
		return nil, errors.New("pfcp: T1 and DuplicateWindow must be positive")
	}
	for t := range cfg.Handlers {
		switch {
		case t == message.MsgTypeHeartbeatRequest, t == message.MsgTypeAssociationSetupRequest,
			t == message.MsgTypeAssociationReleaseRequest:
			return nil, fmt.Errorf("pfcp: message type %d is handled by the node itself", t)
		case msgTable[t].kind != kindRequest:
			return nil, fmt.Errorf("pfcp: message type %d is not a request", t)
		}
	}
	var local netip.AddrPort
	if ua, ok := conn.LocalAddr().(*net.UDPAddr); ok {
		local = ua.AddrPort()
		local = netip.AddrPortFrom(local.Addr().Unmap(), local.Port())
	}
	id := cfg.NodeID
	if id == "" {
		if !local.Addr().IsValid() || local.Addr().IsUnspecified() {
			return nil, errors.New("pfcp: Config.NodeID is required on a socket bound to the unspecified address")
		}
		id = local.Addr().String()
	}
	nodeID, err := NodeIDIE(id)
	if err != nil {
		return nil, err
	}
	n := &Node{
		conn:     conn,
		cfg:      cfg,
		nodeID:   nodeID,
		nodeIDs:  id,
		recovery: ntpSeconds(cfg.RecoveryTime),
		local:    local,
		log:      cfg.Logger.With("pfcp_node", id),
		done:     make(chan struct{}),
		sem:      make(chan struct{}, cfg.MaxHandlers),
		lastSeq:  randSeq(),
		pending:  make(map[uint32]*pending),
		peers:    make(map[netip.AddrPort]*peer),
		dup:      make(map[dupKey]*dupEntry),
	}
	n.ctx, n.stop = context.WithCancel(ctx)
	n.wg.Add(2)
	go n.readLoop()
	go n.janitor()
	context.AfterFunc(n.ctx, func() {
		n.mu.Lock()
		n.closing = true
		n.mu.Unlock()
		n.conn.Close()
	})
	go func() {
		n.wg.Wait()
		close(n.done)
	}()
	return n, nil
}

// Done is closed when the node has stopped and all its goroutines returned.
func (n *Node) Done() <-chan struct{} { return n.done }

// Close stops the node and waits for it.
func (n *Node) Close() {
	n.stop()
	<-n.done
}

// NodeID is this node's Node ID.
func (n *Node) NodeID() string { return n.nodeIDs }

// NodeIDIE is this node's Node ID IE.
func (n *Node) NodeIDIE() *ie.IE { return n.nodeID }

// LocalAddr is the address the node's socket is bound to.
func (n *Node) LocalAddr() netip.AddrPort { return n.local }

// RecoveryTime is the Recovery Time Stamp this node sends (whole seconds).
func (n *Node) RecoveryTime() time.Time { return ntpTime(n.recovery) }

// Stats returns the node's counters.
func (n *Node) Stats() Stats {
	c := &n.stats
	return Stats{
		RequestsSent:        c.requestsSent.Load(),
		Retransmissions:     c.retransmissions.Load(),
		Timeouts:            c.timeouts.Load(),
		ResponsesReceived:   c.responsesReceived.Load(),
		UnmatchedResponses:  c.unmatched.Load(),
		RequestsReceived:    c.requestsReceived.Load(),
		DuplicateRequests:   c.duplicates.Load(),
		Malformed:           c.malformed.Load(),
		UnknownMessages:     c.unknown.Load(),
		VersionNotSupported: c.badVersion.Load(),
	}
}

// Request sends req to peer with a fresh sequence number, retransmits it
// every T1 up to N1 times (TS 29.244 6.4) and returns the response.
func (n *Node) Request(ctx context.Context, peer netip.AddrPort, req message.Message) (message.Message, error) {
	t := req.MessageType()
	name := req.MessageTypeName()
	if msgTable[t].kind != kindRequest {
		return nil, fmt.Errorf("pfcp: %s is not a request", name)
	}
	peer = netip.AddrPortFrom(peer.Addr().Unmap(), peer.Port())
	// Nothing goes out for a caller that has already given up.
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("pfcp: %s to %s: %w", name, peer, err)
	}
	p := &pending{peer: peer, ch: make(chan message.Message, 1)}
	seq, err := n.register(p)
	if err != nil {
		return nil, fmt.Errorf("pfcp: %s to %s: %w", name, peer, err)
	}
	defer n.unregister(seq)
	req.SetSequenceNumber(seq)
	b, err := marshal(req)
	if err != nil {
		return nil, err
	}
	n.stats.requestsSent.Add(1)
	timer := time.NewTimer(n.cfg.T1)
	defer timer.Stop()
	for attempt := 0; ; attempt++ {
		if err := n.write(b, peer); err != nil {
			return nil, fmt.Errorf("pfcp: %s to %s: %w", name, peer, err)
		}
		select {
		case r := <-p.ch:
			switch r.MessageType() {
			case t + 1:
				return r, nil
			case message.MsgTypeVersionNotSupportedResponse:
				return nil, fmt.Errorf("pfcp: %s to %s: peer does not support PFCP version 1", name, peer)
			default:
				return nil, fmt.Errorf("pfcp: %s to %s: %w %s", name, peer, ErrUnexpectedResponse, r.MessageTypeName())
			}
		case <-timer.C:
			if attempt >= n.cfg.N1 {
				n.stats.timeouts.Add(1)
				return nil, fmt.Errorf("pfcp: %s to %s (seq %d, %d sends): %w", name, peer, seq, attempt+1, ErrTimeout)
			}
			// TS 29.244 6.4: the retransmission is the same message,
			// same sequence number.
			n.stats.retransmissions.Add(1)
			timer.Reset(n.cfg.T1)
		case <-ctx.Done():
			return nil, fmt.Errorf("pfcp: %s to %s: %w", name, peer, ctx.Err())
		case <-n.ctx.Done():
			return nil, fmt.Errorf("pfcp: %s to %s: %w", name, peer, ErrClosed)
		}
	}
}

// register reserves the next free 24-bit sequence number (TS 29.244 7.2.2:
// unique among outstanding requests; it wraps).
func (n *Node) register(p *pending) (uint32, error) {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.closing {
		return 0, ErrClosed
	}
	for range 1 << 24 {
		n.lastSeq = (n.lastSeq + 1) & 0xffffff
		if _, busy := n.pending[n.lastSeq]; !busy {
			n.pending[n.lastSeq] = p
			return n.lastSeq, nil
		}
	}
	return 0, errors.New("every sequence number is in use")
}

func (n *Node) unregister(seq uint32) {
	n.mu.Lock()
	delete(n.pending, seq)
	n.mu.Unlock()
}

func (n *Node) write(b []byte, to netip.AddrPort) error {
	_, err := n.conn.WriteToUDPAddrPort(b, to)
	return err
}

func (n *Node) readLoop() {
	defer n.wg.Done()
	defer n.stop() // a socket that fails stops the node
	buf := make([]byte, 65535)
	for {
		nr, from, err := n.conn.ReadFromUDPAddrPort(buf)
		if err != nil {
			if n.ctx.Err() != nil || errors.Is(err, net.ErrClosed) {
				return
			}
			n.log.Warn("pfcp: read", "err", err)
			time.Sleep(time.Millisecond) // no hot loop on a failing socket
			continue
		}
		from = netip.AddrPortFrom(from.Addr().Unmap(), from.Port())
		n.receive(buf[:nr], from)
	}
}

// receive handles one datagram: one message, or several chained with the
// FO flag (TS 29.244 7.2.2.1). b is only valid during the call.
func (n *Node) receive(b []byte, from netip.AddrPort) {
	if len(b) == 0 {
		n.stats.malformed.Add(1)
		return
	}
	for len(b) > 0 {
		h, err := parseHeader(b)
		if err == nil && !h.fo && h.size != len(b) {
			err = errLength
		}
		if err != nil {
			if err == errBadVersion {
				n.versionNotSupported(h, from)
				return
			}
			n.stats.malformed.Add(1)
			n.log.Debug("pfcp: malformed datagram", "from", from, "err", err)
			return
		}
		msg := b[:h.size]
		b = b[h.size:]
		switch msgTable[h.typ].kind {
		case kindResponse:
			n.onResponse(h, msg, from)
		case kindRequest:
			n.onRequest(h, msg, from)
		default:
			// TS 29.244 7.6: an unknown message type is discarded.
			n.stats.unknown.Add(1)
		}
	}
}

// versionNotSupported answers a request of another PFCP version with a
// Version Not Supported Response (TS 29.244 Table 7.3-1, type 11).
func (n *Node) versionNotSupported(h header, from netip.AddrPort) {
	n.stats.badVersion.Add(1)
	if msgTable[h.typ].kind != kindRequest {
		return
	}
	if b, err := marshal(message.NewVersionNotSupportedResponse(h.seq)); err == nil {
		_ = n.write(b, from)
	}
}

func (n *Node) onResponse(h header, msg []byte, from netip.AddrPort) {
	n.mu.Lock()
	p := n.pending[h.seq]
	n.mu.Unlock()
	if p == nil || p.peer.Addr() != from.Addr() {
		n.stats.unmatched.Add(1)
		return
	}
	m, err := message.Parse(clone(msg))
	if err != nil {
		n.stats.malformed.Add(1)
		n.log.Debug("pfcp: malformed response", "from", from, "type", h.typ, "err", err)
		return
	}
	select {
	case p.ch <- m:
		n.stats.responsesReceived.Add(1)
	default: // a second response to the same request
		n.stats.unmatched.Add(1)
	}
}

func (n *Node) onRequest(h header, msg []byte, from netip.AddrPort) {
	key := dupKey{peer: from, seq: h.seq, typ: h.typ}
	n.mu.Lock()
	if e := n.dup[key]; e != nil {
		// TS 29.244 6.4: a retransmitted request is answered with the
		// response already sent, without being processed again; one still
		// being processed is answered when it is done.
		resp := e.resp
		n.mu.Unlock()
		n.stats.duplicates.Add(1)
		if resp != nil {
			_ = n.write(resp, from)
		}
		return
	}
	if n.closing {
		n.mu.Unlock()
		return
	}
	e := &dupEntry{}
	n.dup[key] = e
	n.wg.Add(1)
	n.mu.Unlock()

	pkt := clone(msg)
	select {
	case n.sem <- struct{}{}:
	case <-n.ctx.Done():
		n.wg.Done()
		return
	}
	go func() {
		defer n.wg.Done()
		defer func() { <-n.sem }()
		resp := n.handle(h, pkt, from)
		var b []byte
		if resp != nil {
			resp.SetSequenceNumber(h.seq)
			var err error
			if b, err = marshal(resp); err != nil {
				n.log.Error("pfcp: response not sent", "err", err)
			}
		}
		n.mu.Lock()
		if b == nil {
			delete(n.dup, key)
		} else {
			e.resp, e.expires = b, time.Now().Add(n.cfg.DuplicateWindow)
		}
		n.mu.Unlock()
		if b != nil {
			_ = n.write(b, from)
		}
	}()
}

// handle decodes a request and runs its handler.
func (n *Node) handle(h header, pkt []byte, from netip.AddrPort) (resp message.Message) {
	n.stats.requestsReceived.Add(1)
	m, err := message.Parse(pkt)
	if err != nil {
		// TS 29.244 7.6: an IE overrunning the message is an Invalid Length.
		n.stats.malformed.Add(1)
		n.log.Debug("pfcp: undecodable request", "from", from, "type", h.typ, "err", err)
		return rejection(h.typ, h.seq, n.nodeID, CauseInvalidLength, 0)
	}
	defer func() {
		if r := recover(); r != nil {
			n.log.Error("pfcp: handler panic", "type", h.typ, "from", from, "panic", r, "stack", string(debug.Stack()))
			resp = rejection(h.typ, h.seq, n.nodeID, CauseSystemFailure, 0)
		}
	}()
	switch h.typ {
	case message.MsgTypeHeartbeatRequest:
		return n.onHeartbeat(from, m)
	case message.MsgTypeAssociationSetupRequest:
		return n.onAssociationSetup(from, m)
	case message.MsgTypeAssociationReleaseRequest:
		return n.onAssociationRelease(from, m)
	}
	if hf := n.cfg.Handlers[h.typ]; hf != nil {
		return hf(n.ctx, n, from, m)
	}
	return rejection(h.typ, h.seq, n.nodeID, CauseServiceNotSupported, 0)
}

// janitor drops cached responses older than the duplicate window.
func (n *Node) janitor() {
	defer n.wg.Done()
	every := max(n.cfg.DuplicateWindow/4, 10*time.Millisecond)
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-n.ctx.Done():
			return
		case now := <-t.C:
			n.mu.Lock()
			for k, e := range n.dup {
				if e.resp != nil && now.After(e.expires) {
					delete(n.dup, k)
				}
			}
			n.mu.Unlock()
		}
	}
}

func clone(b []byte) []byte { return append([]byte(nil), b...) }
