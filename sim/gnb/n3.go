package gnb

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/netip"
	"sync"
	"sync/atomic"

	"github.com/simgate/simgate/gtp/gtpu"
)

// UserPlane is the devices' side of the gNB's N3: the UEs' IP stack
// (sim/device.Stack is one). When a PDU session's resources are set up the
// gNB adds the UE's address with the function that carries its uplink
// packets; when they are released, it removes it; downlink packets of the
// session's tunnel go in through Deliver.
type UserPlane interface {
	AddUE(ueAddr, dnsServer netip.Addr, send func(pkt []byte)) error
	RemoveUE(ueAddr netip.Addr) error
	Deliver(pkt []byte) error
}

// Defaults of N3Config.
const (
	DefaultN3Queue = 4096
)

// N3Config configures an N3 endpoint.
type N3Config struct {
	// Addr is the local GTP-U address, "ip" or "ip:port" (port default
	// 2152, TS 29.281 4.4.2: the UPF sends downlink G-PDUs there). The IP
	// is the N3 address the gNBs using the endpoint give the core.
	Addr string
	// DNS is the DNS server the UEs' stacks use (the data network's
	// responder); invalid means none.
	DNS netip.Addr
	// UPFPort is the UDP port uplink G-PDUs go to (default 2152).
	UPFPort uint16
	// Queue bounds the uplink packets waiting for the socket (default
	// DefaultN3Queue); more are dropped, as a full radio buffer would.
	Queue int
	// GTPU configures the socket (batch size, buffers, capture tap).
	GTPU gtpu.Config
	// Logger receives the endpoint's log lines (default: discard).
	Logger *slog.Logger
}

// N3Stats counts an endpoint's user-plane traffic.
type N3Stats struct {
	// Tunnels is the number of PDU sessions with a tunnel now.
	Tunnels int
	// Uplink: packets from the UEs sent as G-PDUs; UplinkDropped: packets
	// dropped (queue full, tunnel gone, too large).
	Uplink, UplinkDropped uint64
	// Downlink: inner packets of downlink G-PDUs handed to the UserPlane;
	// DownlinkDropped: those it refused, or whose destination is not the
	// tunnel's UE.
	Downlink, DownlinkDropped uint64
	// ErrorIndications received from UPFs (TS 29.281 7.3.1); EndMarkers
	// received (TS 29.281 7.3.2).
	ErrorIndications, EndMarkers uint64
	// GTPU is the socket's own counters.
	GTPU gtpu.Stats
}

// N3 is the GTP-U endpoint of one or more gNBs that share an N3 address:
// one batched UDP socket (gtpu.Conn) and the tunnels of their PDU
// sessions, keyed by downlink TEID (the gNBs allocate disjoint ranges,
// Config.TEIDBase). Echo Requests and G-PDUs for unknown TEIDs are
// answered by gtpu. Its methods are safe for concurrent use.
type N3 struct {
	conn *gtpu.Conn
	up   UserPlane
	cfg  N3Config
	log  *slog.Logger

	mu      sync.RWMutex
	tunnels map[uint32]*tunnel // by downlink TEID
	closed  bool

	qmu   sync.Mutex
	queue []gtpu.Packet // uplink G-PDUs waiting for the writer
	qbufs []*[]byte     // their pooled buffers
	kick  chan struct{}
	pool  sync.Pool

	stats struct {
		up, upDrop, down, downDrop, errInd, endMarker atomic.Uint64
	}

	cancel context.CancelFunc
	wg     sync.WaitGroup
	done   chan struct{}
	err    error
}

// tunnel is one PDU session's pair of tunnels.
type tunnel struct {
	owner  *GNB
	ueAddr netip.Addr
	dlTEID uint32
	ulTEID uint32
	upf    netip.AddrPort
	psc    gtpu.PDUSession // UL PDU SESSION INFORMATION with the QFI
	hlen   int
	gone   atomic.Bool
}

// ListenN3 opens the endpoint's socket and starts its reader and uplink
// writer; both stop when ctx ends or at Close.
func ListenN3(ctx context.Context, cfg N3Config, up UserPlane) (*N3, error) {
	if up == nil {
		return nil, errors.New("gnb: n3: nil user plane")
	}
	if cfg.DNS.IsValid() && !cfg.DNS.Is4() {
		return nil, fmt.Errorf("gnb: n3: dns %s is not IPv4", cfg.DNS)
	}
	if cfg.UPFPort == 0 {
		cfg.UPFPort = gtpu.Port
	}
	if cfg.Queue <= 0 {
		cfg.Queue = DefaultN3Queue
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.GTPU.Logger == nil {
		cfg.GTPU.Logger = cfg.Logger
	}
	conn, err := gtpu.Listen(cfg.Addr, cfg.GTPU)
	if err != nil {
		return nil, fmt.Errorf("gnb: n3: %w", err)
	}
	if !conn.LocalAddr().Addr().Is4() {
		conn.Close()
		return nil, fmt.Errorf("gnb: n3: %s is not IPv4 (TS 38.413 transport layer address of the gNB)", conn.LocalAddr())
	}
	ctx, cancel := context.WithCancel(ctx)
	n := &N3{
		conn: conn, up: up, cfg: cfg, log: cfg.Logger.With("n3", conn.LocalAddr().String()),
		tunnels: map[uint32]*tunnel{}, kick: make(chan struct{}, 1),
		cancel: cancel, done: make(chan struct{}),
	}
	n.pool.New = func() any { b := make([]byte, 0, 2048); return &b }
	n.wg.Add(2)
	go func() {
		defer n.wg.Done()
		if err := conn.Serve(ctx, n.handle); err != nil {
			n.log.Error("gnb: n3: socket failed", "err", err)
			n.err = err
			cancel()
		}
	}()
	go func() {
		defer n.wg.Done()
		n.writer(ctx)
	}()
	go func() {
		<-ctx.Done()
		_ = conn.Close()
		n.wg.Wait()
		n.shutdown()
		close(n.done)
	}()
	return n, nil
}

// Addr is the endpoint's local address.
func (n *N3) Addr() netip.AddrPort { return n.conn.LocalAddr() }

// Close stops the endpoint and removes its UEs from the user plane.
func (n *N3) Close() error {
	n.cancel()
	<-n.done
	return n.err
}

// Done is closed when the endpoint has stopped.
func (n *N3) Done() <-chan struct{} { return n.done }

// Stats returns the counters.
func (n *N3) Stats() N3Stats {
	n.mu.RLock()
	t := len(n.tunnels)
	n.mu.RUnlock()
	return N3Stats{
		Tunnels: t,
		Uplink:  n.stats.up.Load(), UplinkDropped: n.stats.upDrop.Load(),
		Downlink: n.stats.down.Load(), DownlinkDropped: n.stats.downDrop.Load(),
		ErrorIndications: n.stats.errInd.Load(), EndMarkers: n.stats.endMarker.Load(),
		GTPU: n.conn.Stats(),
	}
}

// shutdown forgets every tunnel, removing the UEs from the user plane.
func (n *N3) shutdown() {
	n.mu.Lock()
	n.closed = true
	ts := n.tunnels
	n.tunnels = map[uint32]*tunnel{}
	n.mu.Unlock()
	for _, t := range ts {
		n.drop(t)
	}
}

// open sets up the tunnels of a PDU session and adds its UE to the user
// plane. The session must carry the UE's IPv4 address.
func (n *N3) open(g *GNB, s Session) error {
	switch {
	case !s.UEAddr.Is4():
		return fmt.Errorf("gnb: n3: session %d: no IPv4 UE address", s.PSI)
	case !s.UPF.Is4():
		return fmt.Errorf("gnb: n3: session %d: UPF address %s is not IPv4", s.PSI, s.UPF)
	case len(s.QFIs) == 0:
		return fmt.Errorf("gnb: n3: session %d: no QoS flow", s.PSI)
	}
	t := &tunnel{
		owner: g, ueAddr: s.UEAddr, dlTEID: s.DLTEID, ulTEID: s.ULTEID,
		upf: netip.AddrPortFrom(s.UPF, n.cfg.UPFPort),
		// TS 38.415 5.5.2.2: UL PDU SESSION INFORMATION names the QoS flow;
		// the runner's sessions have one flow, the default QoS rule's.
		psc: gtpu.PDUSession{Type: gtpu.UL, QFI: s.QFIs[0]},
	}
	t.hlen = gtpu.GPDUHeaderLen(&t.psc)
	n.mu.Lock()
	switch {
	case n.closed:
		n.mu.Unlock()
		return fmt.Errorf("gnb: n3: %w", ErrClosed)
	case n.tunnels[t.dlTEID] != nil:
		n.mu.Unlock()
		return fmt.Errorf("gnb: n3: downlink TEID %#x already in use (gNBs sharing an endpoint need disjoint TEID ranges)", t.dlTEID)
	}
	n.tunnels[t.dlTEID] = t
	n.mu.Unlock()
	if err := n.up.AddUE(t.ueAddr, n.cfg.DNS, func(pkt []byte) { n.send(t, pkt) }); err != nil {
		n.mu.Lock()
		if n.tunnels[t.dlTEID] == t {
			delete(n.tunnels, t.dlTEID)
		}
		n.mu.Unlock()
		return fmt.Errorf("gnb: n3: session %d: %w", s.PSI, err)
	}
	return nil
}

// close releases the tunnel with downlink TEID teid, if it is there.
func (n *N3) close(teid uint32) {
	n.mu.Lock()
	t := n.tunnels[teid]
	delete(n.tunnels, teid)
	n.mu.Unlock()
	if t != nil {
		n.drop(t)
	}
}

// closeOwned releases every tunnel of gNB g.
func (n *N3) closeOwned(g *GNB) {
	var ts []*tunnel
	n.mu.Lock()
	for teid, t := range n.tunnels {
		if t.owner == g {
			ts = append(ts, t)
			delete(n.tunnels, teid)
		}
	}
	n.mu.Unlock()
	for _, t := range ts {
		n.drop(t)
	}
}

func (n *N3) drop(t *tunnel) {
	if t.gone.Swap(true) {
		return
	}
	if err := n.up.RemoveUE(t.ueAddr); err != nil {
		n.log.Warn("gnb: n3: remove UE", "ue", t.ueAddr, "err", err)
	}
}

// send carries one uplink packet of t's UE: it is copied behind a G-PDU
// header (TS 29.281 5.1, with the PDU Session Container) and queued for
// the writer. It runs on the stack's goroutines and never blocks.
func (n *N3) send(t *tunnel, pkt []byte) {
	if t.gone.Load() {
		n.stats.upDrop.Add(1)
		return
	}
	need := t.hlen + len(pkt)
	bp := n.pool.Get().(*[]byte)
	if cap(*bp) < need {
		*bp = make([]byte, need)
	}
	b := (*bp)[:need]
	copy(b[t.hlen:], pkt)
	g, err := gtpu.PrependGPDU(b, t.hlen, t.ulTEID, &t.psc)
	if err != nil {
		n.pool.Put(bp)
		n.stats.upDrop.Add(1)
		return
	}
	n.qmu.Lock()
	if len(n.queue) >= n.cfg.Queue {
		n.qmu.Unlock()
		n.pool.Put(bp)
		n.stats.upDrop.Add(1)
		return
	}
	n.queue = append(n.queue, gtpu.Packet{Addr: t.upf, Data: g})
	n.qbufs = append(n.qbufs, bp)
	n.qmu.Unlock()
	select {
	case n.kick <- struct{}{}:
	default:
	}
}

// queued is the number of uplink packets waiting for the writer.
func (n *N3) queued() int {
	n.qmu.Lock()
	defer n.qmu.Unlock()
	return len(n.queue)
}

// writer sends the queued uplink G-PDUs in batches (sendmmsg) until ctx
// ends.
func (n *N3) writer(ctx context.Context) {
	var pkts []gtpu.Packet
	var bufs []*[]byte
	for {
		select {
		case <-ctx.Done():
			return
		case <-n.kick:
		}
		for {
			n.qmu.Lock()
			pkts, n.queue = n.queue, pkts[:0]
			bufs, n.qbufs = n.qbufs, bufs[:0]
			n.qmu.Unlock()
			if len(pkts) == 0 {
				break
			}
			sent, err := n.conn.WriteBatch(pkts)
			n.stats.up.Add(uint64(sent))
			if sent < len(pkts) {
				n.stats.upDrop.Add(uint64(len(pkts) - sent))
			}
			if err != nil {
				n.log.Debug("gnb: n3: uplink send", "err", err)
			}
			clear(pkts)
			for i, bp := range bufs {
				n.pool.Put(bp)
				bufs[i] = nil
			}
		}
	}
}

// handle takes the messages gtpu does not answer itself.
func (n *N3) handle(p *gtpu.Packet) gtpu.Action {
	switch p.Header.Type {
	case gtpu.MsgGPDU:
		n.mu.RLock()
		t := n.tunnels[p.Header.TEID]
		n.mu.RUnlock()
		if t == nil {
			// TS 29.281 7.3.1: gtpu answers with an Error Indication.
			return gtpu.UnknownTEID
		}
		// The tunnel is the UE's radio bearer: a packet for another
		// address would reach a UE that does not own it.
		if len(p.Payload) < 20 || p.Payload[0]>>4 != 4 || netip.AddrFrom4([4]byte(p.Payload[16:20])) != t.ueAddr {
			n.stats.downDrop.Add(1)
			return gtpu.Drop
		}
		if err := n.up.Deliver(p.Payload); err != nil {
			n.stats.downDrop.Add(1)
			return gtpu.Drop
		}
		n.stats.down.Add(1)
		return gtpu.Consume
	case gtpu.MsgErrorIndication:
		// TS 29.281 7.3.1: the UPF has no tunnel for our uplink TEID. The
		// session stays until the core releases it; count and report.
		n.stats.errInd.Add(1)
		teid, peer, err := gtpu.ParseErrorIndication(p.Payload)
		n.log.Warn("gnb: n3: error indication from the UPF", "from", p.Addr.String(), "teid", teid, "peer", peer.String(), "err", err)
		return gtpu.Consume
	case gtpu.MsgEndMarker:
		n.stats.endMarker.Add(1)
		return gtpu.Consume
	}
	return gtpu.Consume
}

// openTunnel gives a set-up PDU session its N3 tunnels, if the gNB has an
// endpoint; a failure is logged, the session stays (the core has it).
func (g *GNB) openTunnel(u *UE, psi uint8) {
	n := g.cfg.N3Endpoint
	if n == nil {
		return
	}
	s, ok := u.Session(psi)
	if !ok {
		return
	}
	if err := n.open(g, s); err != nil {
		g.log.Warn("gnb: no user plane for the PDU session", "ran_ue_ngap_id", u.ranID, "psi", psi, "err", err)
	}
}

// closeTunnel releases the tunnels of a session with downlink TEID teid.
func (g *GNB) closeTunnel(teid uint32) {
	if n := g.cfg.N3Endpoint; n != nil {
		n.close(teid)
	}
}
