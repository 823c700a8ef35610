package upf

import (
	"context"
	"encoding/binary"
	"log/slog"
	"net/netip"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/simgate/simgate/gtp/gtpu"
	"github.com/simgate/simgate/gtp/pfcp"
)

// Network is the data network behind N6: the UPF injects the inner packets
// of uplink G-PDUs and receives the downlink packets it must tunnel.
// *dn.DN implements it.
type Network interface {
	// Inject delivers one uplink IPv4 packet; pkt is not kept.
	Inject(pkt []byte) error
	// SetDownlink sets the function that gets every downlink IPv4 packet,
	// synchronously and concurrently; it must not keep pkt. nil unsets it.
	SetDownlink(f func(pkt []byte))
}

// DropReason is why the data path dropped a packet. Malformed GTP-U
// datagrams are counted by the gtpu.Conn (gtpu.Stats.Malformed).
type DropReason uint8

const (
	DropUnknownTEID DropReason = iota // uplink G-PDU for a TEID no session has (Error Indication sent, rate-limited)
	DropNoContainer                   // uplink G-PDU without an UL PDU Session Container (TS 38.415)
	DropQFI                           // uplink QFI that is not the session's QoS flow
	DropMalformed                     // inner packet is not IPv4 or is truncated
	DropSpoofed                       // inner source address is not the session's UE address
	DropNetwork                       // the data network refused the packet
	DropNoSession                     // downlink to an address no session owns
	DropNoTunnel                      // downlink with no gNB F-TEID: buffer full or expired
	DropFAR                           // the session's FAR says drop
	DropSend                          // downlink queue full at shutdown or socket error
	numDropReasons
)

// NumDropReasons bounds the DropReason values.
const NumDropReasons = int(numDropReasons)

func (r DropReason) String() string {
	switch r {
	case DropUnknownTEID:
		return "unknown_teid"
	case DropNoContainer:
		return "no_pdu_session_container"
	case DropQFI:
		return "qfi_mismatch"
	case DropMalformed:
		return "malformed_inner"
	case DropSpoofed:
		return "spoofed_source"
	case DropNetwork:
		return "network_refused"
	case DropNoSession:
		return "no_session"
	case DropNoTunnel:
		return "no_downlink_tunnel"
	case DropFAR:
		return "far_drop"
	case DropSend:
		return "send_failed"
	}
	return "DropReason(" + strconv.Itoa(int(r)) + ")"
}

// DataPathStats are the data path's counters.
type DataPathStats struct {
	UplinkPackets, UplinkBytes     uint64 // inner packets handed to the data network
	DownlinkPackets, DownlinkBytes uint64 // inner packets tunnelled to gNBs
	Buffered                       uint64 // downlink packets held until the gNB F-TEID came (TS 29.244 5.2.1 BUFF)
	EndMarkers                     uint64 // End Markers sent on a replaced downlink tunnel
	ErrorIndications               uint64 // Error Indications received from gNBs
	Drops                          [NumDropReasons]uint64
}

// Downlink buffering while a session has no gNB F-TEID yet (the SMF sends
// it in a Session Modification right after the session is set up).
const (
	bufferPerSession = 32
	bufferSessions   = 4096
	bufferBytes      = 16 << 20 // all sessions together
	bufferTimeout    = 2 * time.Second
	dlQueue          = 1024
	dlSlack          = 64 // headroom for the G-PDU header (gtpu.GPDUHeaderLen)
)

// DataPath carries user-plane packets between N3 and the data network for
// the UPF's sessions (TS 29.244 5.2; TS 29.281):
//
//   - uplink: G-PDU -> session by TEID (unknown: Error Indication via the
//     gtpu.Conn, rate-limited) -> UL PDU Session Container with the
//     session's QFI -> inner IPv4 source must be the session's UE address
//     (anti-spoofing: a device speaks only as its own SIM) -> Network.Inject;
//   - downlink: packet from the network -> session by destination address ->
//     G-PDU with a DL PDU Session Container (QFI) to the gNB F-TEID that PFCP
//     Session Modification supplied, port 2152 (TS 29.281 4.4.2), sent in
//     batches; held briefly while the F-TEID is not yet known;
//   - an End Marker goes down the old tunnel when a modification moves the
//     downlink to another gNB F-TEID (TS 29.281 7.3.2).
type DataPath struct {
	u    *UPF
	conn *gtpu.Conn
	net  Network
	log  *slog.Logger
	port uint16 // gNBs' GTP-U port

	stats struct {
		upPkts, upBytes, dnPkts, dnBytes atomic.Uint64
		buffered, endMarkers, errInd     atomic.Uint64
		drops                            [numDropReasons]atomic.Uint64
	}

	queue chan *[]byte // downlink G-PDUs, with their destination in the first 18 octets
	pool  sync.Pool    // *[]byte
	ctx   context.Context

	bmu       sync.Mutex
	held      map[netip.Addr]*held
	heldBytes int
}

// held are the downlink packets of a session waiting for its gNB F-TEID.
type held struct {
	since time.Time
	pkts  [][]byte
	bytes int
}

// release forgets ue's held packets, counting them as dropped when drop.
// Called with d.bmu held.
func (d *DataPath) release(ue netip.Addr, h *held, drop bool) {
	delete(d.held, ue)
	d.heldBytes -= h.bytes
	if drop {
		d.stats.drops[DropNoTunnel].Add(uint64(len(h.pkts)))
	}
}

// NewDataPath returns the data path of u between conn and n. It does
// nothing until Serve.
func NewDataPath(u *UPF, conn *gtpu.Conn, n Network) *DataPath {
	d := &DataPath{
		u: u, conn: conn, net: n, log: u.log, port: gtpu.Port,
		queue: make(chan *[]byte, dlQueue),
		held:  map[netip.Addr]*held{},
	}
	d.pool.New = func() any { b := make([]byte, 0, 2048); return &b }
	return d
}

// Serve runs the data path until ctx ends or conn is closed: it reads N3,
// installs itself as the network's downlink and as the UPF's session
// observer, and writes downlink batches. It returns nil when stopped, or the
// socket's error. Call it once; a UPF has one data path at a time.
func (d *DataPath) Serve(ctx context.Context) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	d.ctx = ctx
	d.u.observe(d.sessionChanged)
	defer d.u.observe(nil)
	d.net.SetDownlink(d.downlink)
	defer d.net.SetDownlink(nil)
	wdone := make(chan struct{})
	go func() {
		defer close(wdone)
		d.writeLoop(ctx)
	}()
	err := d.conn.Serve(ctx, d.uplink)
	cancel()
	<-wdone
	return err
}

// Stats returns the counters.
func (d *DataPath) Stats() DataPathStats {
	s := DataPathStats{
		UplinkPackets:    d.stats.upPkts.Load(),
		UplinkBytes:      d.stats.upBytes.Load(),
		DownlinkPackets:  d.stats.dnPkts.Load(),
		DownlinkBytes:    d.stats.dnBytes.Load(),
		Buffered:         d.stats.buffered.Load(),
		EndMarkers:       d.stats.endMarkers.Load(),
		ErrorIndications: d.stats.errInd.Load(),
	}
	for i := range s.Drops {
		s.Drops[i] = d.stats.drops[i].Load()
	}
	return s
}

func (d *DataPath) drop(r DropReason) { d.stats.drops[r].Add(1) }

// uplink handles one message from a gNB on the Serve goroutine.
func (d *DataPath) uplink(p *gtpu.Packet) gtpu.Action {
	switch p.Header.Type {
	case gtpu.MsgGPDU:
	case gtpu.MsgErrorIndication:
		// TS 29.281 7.3.1: the gNB has no context for a downlink TEID.
		d.stats.errInd.Add(1)
		if teid, peer, err := gtpu.ParseErrorIndication(p.Payload); err == nil {
			d.log.Debug("upf: error indication from gNB", "from", p.Addr, "teid", teid, "peer", peer)
		}
		return gtpu.Consume
	default: // End Marker, Echo Response, notifications: nothing to do
		return gtpu.Consume
	}
	s, ok := d.u.table.LookupByTEID(p.Header.TEID)
	if !ok {
		d.drop(DropUnknownTEID)
		return gtpu.UnknownTEID
	}
	// TS 38.415 5.5.2.2: N3 G-PDUs carry the UL PDU SESSION INFORMATION
	// with the QoS flow of the packet.
	if !p.Header.HasPDUSession || p.Header.PDUSession.Type != gtpu.UL {
		d.drop(DropNoContainer)
		return gtpu.Drop
	}
	if s.QFI != 0 && p.Header.PDUSession.QFI != s.QFI {
		d.drop(DropQFI)
		return gtpu.Drop
	}
	pkt := p.Payload
	if len(pkt) < 20 || pkt[0]>>4 != 4 || int(pkt[0]&0x0f)*4 < 20 || int(binary.BigEndian.Uint16(pkt[2:4])) > len(pkt) {
		d.drop(DropMalformed)
		return gtpu.Drop
	}
	// Anti-spoofing: the inner source must be the session's UE address.
	if !s.UEAddr.Is4() || binary.BigEndian.Uint32(pkt[12:16]) != v4key(s.UEAddr) {
		d.drop(DropSpoofed)
		return gtpu.Drop
	}
	if err := d.net.Inject(pkt); err != nil {
		d.drop(DropNetwork)
		return gtpu.Drop
	}
	d.stats.upPkts.Add(1)
	d.stats.upBytes.Add(uint64(len(pkt)))
	return gtpu.Consume
}

// downlink takes one packet from the network (any goroutine): it finds the
// session by destination and queues the G-PDU, or holds the packet until
// the gNB F-TEID is known.
func (d *DataPath) downlink(pkt []byte) {
	if len(pkt) < 20 || pkt[0]>>4 != 4 {
		d.drop(DropMalformed)
		return
	}
	ue := netip.AddrFrom4([4]byte(pkt[16:20]))
	s, ok := d.u.table.LookupByAddr(ue)
	if !ok {
		d.drop(DropNoSession)
		return
	}
	switch {
	case s.DownlinkAction&pfcp.ActionForward != 0 && !s.Downlink.IsZero():
		d.tunnel(s, pkt)
	case s.DownlinkAction&pfcp.ActionDrop != 0:
		d.drop(DropFAR)
	default:
		// TS 29.244 5.2.1: BUFF, or no F-TEID yet: hold the packet.
		d.hold(ue, pkt)
	}
}

// tunnel encapsulates pkt for s's downlink F-TEID and queues it for the
// writer. The buffer starts with the destination (18 octets), then the
// G-PDU.
func (d *DataPath) tunnel(s *Session, pkt []byte) {
	psc := gtpu.PDUSession{Type: gtpu.DL, QFI: s.QFI}
	bp := d.pool.Get().(*[]byte)
	need := 18 + dlSlack + len(pkt)
	if cap(*bp) < need {
		*bp = make([]byte, 0, need)
	}
	b := (*bp)[:need]
	to := netip.AddrPortFrom(s.Downlink.Addr, d.port)
	putAddrPort(b[:18], to)
	copy(b[18+dlSlack:], pkt)
	g, err := gtpu.PrependGPDU(b[18:], dlSlack, s.Downlink.TEID, &psc)
	if err != nil {
		d.pool.Put(bp)
		d.drop(DropSend)
		return
	}
	// Move the G-PDU up against the address, so the buffer is address+G-PDU.
	n := copy(b[18:], g)
	*bp = b[:18+n]
	select {
	case d.queue <- bp:
	case <-d.ctx.Done():
		d.pool.Put(bp)
		d.drop(DropSend)
	}
}

func putAddrPort(b []byte, ap netip.AddrPort) {
	a := ap.Addr().As16()
	copy(b, a[:])
	binary.BigEndian.PutUint16(b[16:18], ap.Port())
}

func getAddrPort(b []byte) netip.AddrPort {
	return netip.AddrPortFrom(netip.AddrFrom16([16]byte(b[:16])).Unmap(), binary.BigEndian.Uint16(b[16:18]))
}

// writeLoop sends the queued downlink G-PDUs, as many as are waiting (up to
// a batch) per sendmmsg.
func (d *DataPath) writeLoop(ctx context.Context) {
	const batch = gtpu.DefaultBatch
	pkts := make([]gtpu.Packet, 0, batch)
	bufs := make([]*[]byte, 0, batch)
	for {
		select {
		case <-ctx.Done():
			return
		case bp := <-d.queue:
			bufs = append(bufs, bp)
		}
	fill:
		for len(bufs) < batch {
			select {
			case bp := <-d.queue:
				bufs = append(bufs, bp)
			default:
				break fill
			}
		}
		for _, bp := range bufs {
			b := *bp
			pkts = append(pkts, gtpu.Packet{Addr: getAddrPort(b), Data: b[18:]})
		}
		sent, err := d.conn.WriteBatch(pkts)
		var bytes uint64
		for i := range sent {
			bytes += uint64(len(pkts[i].Data) - gtpu.HeaderLen)
		}
		d.stats.dnPkts.Add(uint64(sent))
		d.stats.dnBytes.Add(bytes)
		if err != nil {
			d.stats.drops[DropSend].Add(uint64(len(pkts) - sent))
			d.log.Debug("upf: downlink send", "err", err)
		}
		for i, bp := range bufs {
			d.pool.Put(bp)
			bufs[i], pkts[i] = nil, gtpu.Packet{}
		}
		bufs, pkts = bufs[:0], pkts[:0]
	}
}

// hold keeps a copy of pkt for ue until its session gets a downlink
// tunnel, within bounds.
func (d *DataPath) hold(ue netip.Addr, pkt []byte) {
	now := time.Now()
	d.bmu.Lock()
	defer d.bmu.Unlock()
	h := d.held[ue]
	if h != nil && now.Sub(h.since) > bufferTimeout {
		d.release(ue, h, true)
		h = nil
	}
	if h == nil && len(d.held) >= bufferSessions {
		for a, o := range d.held { // make room: forget expired buffers
			if now.Sub(o.since) > bufferTimeout {
				d.release(a, o, true)
			}
		}
	}
	if h == nil && len(d.held) >= bufferSessions || h != nil && len(h.pkts) >= bufferPerSession ||
		d.heldBytes+len(pkt) > bufferBytes {
		d.drop(DropNoTunnel)
		return
	}
	if h == nil {
		h = &held{since: now}
		d.held[ue] = h
	}
	h.pkts = append(h.pkts, append([]byte(nil), pkt...))
	h.bytes += len(pkt)
	d.heldBytes += len(pkt)
	d.stats.buffered.Add(1)
}

// sessionChanged is the UPF's observer: old is replaced by s (nil old: a
// new session; nil s: old was removed). It runs with the UPF's session
// lock held and must not block for long.
func (d *DataPath) sessionChanged(old, s *Session) {
	if old != nil && s != nil && !old.Downlink.IsZero() && s.Downlink != old.Downlink {
		// TS 29.281 7.3.2, TS 23.502 4.9.1: the old path ends.
		psc := &gtpu.PDUSession{Type: gtpu.DL, QFI: old.QFI}
		if err := d.conn.SendEndMarker(netip.AddrPortFrom(old.Downlink.Addr, d.port), old.Downlink.TEID, psc); err == nil {
			d.stats.endMarkers.Add(1)
		}
	}
	var ue netip.Addr
	switch {
	case s != nil:
		ue = s.UEAddr
	case old != nil:
		ue = old.UEAddr
	}
	if !ue.IsValid() {
		return
	}
	d.bmu.Lock()
	h := d.held[ue]
	if h == nil {
		d.bmu.Unlock()
		return
	}
	if s == nil || s.DownlinkAction&pfcp.ActionDrop != 0 {
		d.release(ue, h, true)
		d.bmu.Unlock()
		return
	}
	if s.DownlinkAction&pfcp.ActionForward == 0 || s.Downlink.IsZero() {
		d.bmu.Unlock()
		return
	}
	expired := time.Since(h.since) > bufferTimeout
	d.release(ue, h, expired)
	d.bmu.Unlock()
	if expired {
		return
	}
	for _, pkt := range h.pkts {
		d.tunnel(s, pkt)
	}
}
