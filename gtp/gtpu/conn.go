package gtpu

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/net/ipv4"
	"golang.org/x/net/ipv6"
)

// Defaults for Config.
const (
	DefaultBatch                = 64
	DefaultMaxDatagram          = 9216
	DefaultHeadroom             = 64
	DefaultErrorIndicationRate  = 10 // per second per peer
	DefaultErrorIndicationBurst = 10
	DefaultMaxPeers             = 4096
)

// Tap sees every datagram a Conn receives (out false) or sends (out true,
// just before it goes), with the local and remote addresses. It runs on
// the reading or writing goroutine, must not block, and must copy payload
// to keep it. A capture writer (pcap) is one.
type Tap interface {
	Datagram(out bool, local, remote netip.AddrPort, payload []byte)
}

// Config configures a Conn. Zero fields take the defaults above. A Conn
// is IPv4 or IPv6, after the address it is bound to.
type Config struct {
	// Batch is the number of datagrams one recvmmsg/sendmmsg moves.
	Batch int
	// MaxDatagram is the largest datagram received; longer ones are
	// dropped as ErrTooBig.
	MaxDatagram int
	// Headroom is left free before each received datagram, so that a
	// handler can put a longer header in front of its payload (Encap).
	Headroom int
	// ErrorIndicationRate and ErrorIndicationBurst are the token bucket
	// for Error Indications and Supported Extension Headers Notifications
	// to each peer address; a negative rate sends none.
	ErrorIndicationRate  float64
	ErrorIndicationBurst int
	// MaxPeers bounds the peers the rate limiter remembers.
	MaxPeers int
	// PeerAddress is sent as the GTP-U Peer Address of Error Indications
	// (TS 29.281 7.3.1): this node's N3 address. Default: the bound
	// address, which must then be specific.
	PeerAddress netip.Addr
	// ReadBuffer and WriteBuffer set SO_RCVBUF and SO_SNDBUF when not 0.
	ReadBuffer, WriteBuffer int
	// NoGSO sends every datagram of a batch alone. By default, where the
	// kernel offers UDP segmentation (Linux UDP_SEGMENT), a run of
	// datagrams of one size to one peer goes down the stack once.
	NoGSO bool
	// Tap, if set, sees every datagram.
	Tap    Tap
	Logger *slog.Logger
}

// DropReason is why a Conn dropped a received datagram.
type DropReason uint8

const (
	DropMalformed   DropReason = iota // did not decode; Stats.Malformed says why
	DropUnknownTEID                   // the handler knew no tunnel for its TEID
	DropUnknownType                   // not a GTP-U message type a Conn handles
	DropHandler                       // the handler dropped it
	DropSend                          // the socket refused to send it (or its answer)
	numDropReasons
)

// NumDropReasons bounds the DropReason values.
const NumDropReasons = int(numDropReasons)

func (r DropReason) String() string {
	switch r {
	case DropMalformed:
		return "malformed"
	case DropUnknownTEID:
		return "unknown_teid"
	case DropUnknownType:
		return "unknown_type"
	case DropHandler:
		return "handler"
	case DropSend:
		return "send_failed"
	}
	return "DropReason(" + strconv.Itoa(int(r)) + ")"
}

// Stats are a Conn's counters since it was opened.
type Stats struct {
	RxPackets, RxBytes uint64
	TxPackets, TxBytes uint64
	EchoRequests       uint64 // received and answered
	ErrorIndications   uint64 // sent for unknown TEIDs
	ExtNotifications   uint64 // Supported Extension Headers Notifications sent
	RateLimited        uint64 // Error Indications and notifications not sent: rate limit
	Drops              [NumDropReasons]uint64
	Malformed          [NumErrors]uint64 // by Error, for DropMalformed
}

type counters struct {
	rxPackets, rxBytes, txPackets, txBytes atomic.Uint64
	echo, errInd, extNotif, limited        atomic.Uint64
	drops                                  [numDropReasons]atomic.Uint64
	malformed                              [numErrors]atomic.Uint64
}

func (s *counters) malformedDrop(err error) {
	s.drops[DropMalformed].Add(1)
	if e, ok := err.(Error); ok && e < numErrors {
		s.malformed[e].Add(1)
	}
}

// Packet is one datagram in a batch. ReadBatch fills it; WriteBatch sends
// Data to Addr. Its buffer is allocated on first use and reused after.
type Packet struct {
	Addr    netip.AddrPort // remote: the source of a received datagram, the destination of one to send
	Data    []byte         // the datagram
	Header  Header         // decoded header of a received datagram
	Payload []byte         // decoded payload: a G-PDU's T-PDU, other messages' IEs
	Err     error          // an Error if the datagram did not decode

	buf []byte
	off int // Payload's offset in buf
}

// Encap turns a received packet into a G-PDU for tunnel teid carrying its
// Payload (whose start must not have moved; it may be shortened), writing
// the new header in front of the payload in place; Data is then the new
// G-PDU, ready to Forward. It does not allocate.
func (p *Packet) Encap(teid uint32, psc *PDUSession) error {
	if p.off == 0 || p.off+len(p.Payload) > len(p.buf) {
		return ErrHeadroom
	}
	d, err := PrependGPDU(p.buf[:p.off+len(p.Payload)], p.off, teid, psc)
	if err != nil {
		return err
	}
	p.Data = d
	return nil
}

// Action is what a Handler did with a packet.
type Action uint8

const (
	// Consume: the handler took the packet (copying what it keeps).
	Consume Action = iota
	// Forward: send p.Data to p.Addr, in the batch being written.
	Forward
	// Drop: the packet is dropped and counted as DropHandler.
	Drop
	// UnknownTEID: no tunnel has p.Header.TEID; the packet is dropped and
	// a G-PDU's sender gets a rate-limited Error Indication.
	UnknownTEID
)

// Handler handles a received G-PDU, End Marker, Error Indication, Echo
// Response or Supported Extension Headers Notification. It runs on the
// Serve goroutine, must not block, and must not keep p or its slices.
type Handler func(p *Packet) Action

// batchConn is the batch interface of ipv4.PacketConn and ipv6.PacketConn.
type batchConn interface {
	ReadBatch(ms []ipv4.Message, flags int) (int, error)
	WriteBatch(ms []ipv4.Message, flags int) (int, error)
}

// Conn is a GTP-U endpoint on one UDP socket.
type Conn struct {
	uc    *net.UDPConn
	bc    batchConn
	local netip.AddrPort
	peer  netip.Addr // GTP-U Peer Address for Error Indications
	cfg   Config
	log   *slog.Logger
	lim   *limiter
	stats counters

	gso atomic.Bool // segment runs of equal datagrams (UDP GSO)

	rmu sync.Mutex // ReadBatch's scratch
	rd  reader
	wmu sync.Mutex // WriteBatch's scratch
	wr  writer
}

// ParseAddrPort parses "ip", "ip:port", "[ipv6]:port" or ":port"; the port
// defaults to Port (2152) and an empty host to the unspecified IPv4
// address.
func ParseAddrPort(s string) (netip.AddrPort, error) {
	host, port := s, ""
	if h, p, err := net.SplitHostPort(s); err == nil {
		host, port = h, p
	}
	addr := netip.IPv4Unspecified()
	if host != "" {
		a, err := netip.ParseAddr(host)
		if err != nil {
			return netip.AddrPort{}, fmt.Errorf("gtpu: address %q: host is not an IP address", s)
		}
		addr = a.Unmap()
	}
	p := uint64(Port)
	if port != "" {
		v, err := strconv.ParseUint(port, 10, 16)
		if err != nil {
			return netip.AddrPort{}, fmt.Errorf("gtpu: address %q: bad port", s)
		}
		p = v
	}
	return netip.AddrPortFrom(addr, uint16(p)), nil
}

// Listen opens a Conn on a UDP socket bound to addr (see ParseAddrPort).
func Listen(addr string, cfg Config) (*Conn, error) {
	ap, err := ParseAddrPort(addr)
	if err != nil {
		return nil, err
	}
	if cfg.Batch <= 0 {
		cfg.Batch = DefaultBatch
	}
	if cfg.MaxDatagram <= 0 {
		cfg.MaxDatagram = DefaultMaxDatagram
	}
	if cfg.MaxDatagram > 0xffff {
		return nil, fmt.Errorf("gtpu: MaxDatagram %d exceeds a UDP datagram", cfg.MaxDatagram)
	}
	if cfg.Headroom < 0 {
		return nil, fmt.Errorf("gtpu: negative Headroom")
	}
	if cfg.Headroom == 0 {
		cfg.Headroom = DefaultHeadroom
	}
	if cfg.ErrorIndicationRate == 0 {
		cfg.ErrorIndicationRate = DefaultErrorIndicationRate
	}
	if cfg.ErrorIndicationBurst <= 0 {
		cfg.ErrorIndicationBurst = DefaultErrorIndicationBurst
	}
	if cfg.MaxPeers <= 0 {
		cfg.MaxPeers = DefaultMaxPeers
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	peer := cfg.PeerAddress
	if !peer.IsValid() {
		peer = ap.Addr()
	}
	if peer.IsUnspecified() && cfg.ErrorIndicationRate > 0 {
		return nil, fmt.Errorf("gtpu: listen %s: set Config.PeerAddress, the N3 address sent in Error Indications", ap)
	}
	network := "udp4"
	if ap.Addr().Is6() {
		network = "udp6"
	}
	uc, err := net.ListenUDP(network, net.UDPAddrFromAddrPort(ap))
	if err != nil {
		return nil, fmt.Errorf("gtpu: listen %s: %w", ap, err)
	}
	if err := setBuffers(uc, cfg); err != nil {
		uc.Close()
		return nil, err
	}
	var bc batchConn
	if network == "udp4" {
		bc = ipv4.NewPacketConn(uc)
	} else {
		bc = ipv6.NewPacketConn(uc)
	}
	local := uc.LocalAddr().(*net.UDPAddr).AddrPort()
	c := &Conn{
		uc:    uc,
		bc:    bc,
		local: netip.AddrPortFrom(local.Addr().Unmap(), local.Port()),
		peer:  peer.Unmap(),
		cfg:   cfg,
		log:   cfg.Logger.With("gtpu", local.String()),
		lim:   newLimiter(cfg.ErrorIndicationRate, cfg.ErrorIndicationBurst, cfg.MaxPeers),
		rd:    newReader(cfg.Batch),
		wr:    newWriter(cfg.Batch),
	}
	c.gso.Store(!cfg.NoGSO && gsoSupported(uc))
	return c, nil
}

func setBuffers(uc *net.UDPConn, cfg Config) error {
	if cfg.ReadBuffer > 0 {
		if err := uc.SetReadBuffer(cfg.ReadBuffer); err != nil {
			return fmt.Errorf("gtpu: SO_RCVBUF: %w", err)
		}
	}
	if cfg.WriteBuffer > 0 {
		if err := uc.SetWriteBuffer(cfg.WriteBuffer); err != nil {
			return fmt.Errorf("gtpu: SO_SNDBUF: %w", err)
		}
	}
	return nil
}

// LocalAddr is the address the socket is bound to.
func (c *Conn) LocalAddr() netip.AddrPort { return c.local }

// Close closes the socket; Serve returns.
func (c *Conn) Close() error { return c.uc.Close() }

// Stats returns the counters.
func (c *Conn) Stats() Stats {
	s := Stats{
		RxPackets:        c.stats.rxPackets.Load(),
		RxBytes:          c.stats.rxBytes.Load(),
		TxPackets:        c.stats.txPackets.Load(),
		TxBytes:          c.stats.txBytes.Load(),
		EchoRequests:     c.stats.echo.Load(),
		ErrorIndications: c.stats.errInd.Load(),
		ExtNotifications: c.stats.extNotif.Load(),
		RateLimited:      c.stats.limited.Load(),
	}
	for i := range s.Drops {
		s.Drops[i] = c.stats.drops[i].Load()
	}
	for i := range s.Malformed {
		s.Malformed[i] = c.stats.malformed[i].Load()
	}
	return s
}

// reader is the scratch of one reading goroutine.
type reader struct {
	msgs []ipv4.Message
	iov  [][]byte
}

func newReader(n int) reader {
	r := reader{msgs: make([]ipv4.Message, n), iov: make([][]byte, n)}
	for i := range r.msgs {
		r.msgs[i].Buffers = r.iov[i : i+1]
	}
	return r
}

// ReadBatch blocks until datagrams arrive and reads up to len(pkts) of
// them (at most Config.Batch) into pkts, decoding each: Header and Payload,
// or Err. It counts them and their malformed drops, but, unlike Serve,
// answers nothing. It returns the number read.
func (c *Conn) ReadBatch(pkts []Packet) (int, error) {
	c.rmu.Lock()
	defer c.rmu.Unlock()
	return c.readBatch(&c.rd, pkts)
}

func (c *Conn) readBatch(r *reader, pkts []Packet) (int, error) {
	n := min(len(pkts), len(r.msgs))
	if n == 0 {
		return 0, nil
	}
	hr, maxd := c.cfg.Headroom, c.cfg.MaxDatagram
	size := hr + maxd + 1 // one more, to see a datagram that did not fit
	for i := range n {
		p := &pkts[i]
		if len(p.buf) != size {
			p.buf = make([]byte, size)
		}
		r.iov[i] = p.buf[hr:]
	}
	got, err := c.bc.ReadBatch(r.msgs[:n], 0)
	if err != nil {
		return 0, fmt.Errorf("gtpu: read %s: %w", c.local, err)
	}
	var bytes uint64
	for i := range got {
		m, p := &r.msgs[i], &pkts[i]
		p.Addr = addrPort(m.Addr)
		bytes += uint64(m.N)
		p.off = 0
		if m.N > maxd {
			p.Data, p.Header, p.Payload, p.Err = p.buf[hr:hr+maxd], Header{}, nil, ErrTooBig
		} else {
			p.Data = p.buf[hr : hr+m.N]
			p.Payload, p.Err = p.Header.Decode(p.Data)
		}
		if t := c.cfg.Tap; t != nil {
			t.Datagram(false, c.local, p.Addr, p.Data)
		}
		if p.Err != nil {
			c.stats.malformedDrop(p.Err)
			continue
		}
		p.off = hr + len(p.Data) - len(p.Payload)
	}
	c.stats.rxPackets.Add(uint64(got))
	c.stats.rxBytes.Add(bytes)
	return got, nil
}

func addrPort(a net.Addr) netip.AddrPort {
	ua, ok := a.(*net.UDPAddr)
	if !ok {
		return netip.AddrPort{}
	}
	ip, _ := netip.AddrFromSlice(ua.IP)
	return netip.AddrPortFrom(ip.Unmap(), uint16(ua.Port))
}

// WriteBatch sends each packet's Data to its Addr, in batches of up to
// Config.Batch datagrams (sendmmsg). It returns the number sent and the
// first error; a datagram that fails does not stop the others. It is safe
// for concurrent use, also with Serve.
func (c *Conn) WriteBatch(pkts []Packet) (int, error) {
	c.wmu.Lock()
	defer c.wmu.Unlock()
	var first error
	sent := 0
	for len(pkts) > 0 {
		n := min(len(pkts), len(c.wr.msgs))
		for i := range n {
			c.wr.add(pkts[i].Data, pkts[i].Addr)
		}
		k, err := c.flush(&c.wr)
		sent += k
		if err != nil && first == nil {
			first = err
		}
		pkts = pkts[n:]
	}
	return sent, first
}

// WriteTo sends one datagram.
func (c *Conn) WriteTo(b []byte, to netip.AddrPort) error {
	if t := c.cfg.Tap; t != nil {
		t.Datagram(true, c.local, to, b)
	}
	if _, err := c.uc.WriteToUDPAddrPort(b, to); err != nil {
		c.stats.drops[DropSend].Add(1)
		return fmt.Errorf("gtpu: write %s to %s: %w", c.local, to, err)
	}
	c.stats.txPackets.Add(1)
	c.stats.txBytes.Add(uint64(len(b)))
	return nil
}

// SendEchoRequest sends an Echo Request (TS 29.281 7.2.1) to a peer; its
// Echo Response reaches the Serve handler.
func (c *Conn) SendEchoRequest(to netip.AddrPort, seq uint16) error {
	b, err := EchoRequest(seq)
	if err != nil {
		return err
	}
	return c.WriteTo(b, to)
}

// SendEndMarker sends an End Marker (TS 29.281 7.3.2) for tunnel teid.
func (c *Conn) SendEndMarker(to netip.AddrPort, teid uint32, psc *PDUSession) error {
	b, err := EndMarker(teid, psc)
	if err != nil {
		return err
	}
	return c.WriteTo(b, to)
}

// SendErrorIndication tells a peer, at the address and port a G-PDU for
// tunnel teid came from, that this node has no such tunnel (TS 29.281
// 7.3.1), unless the peer's rate limit is spent; it reports whether it
// sent. Serve does this itself when its handler returns UnknownTEID.
func (c *Conn) SendErrorIndication(to netip.AddrPort, teid uint32) (bool, error) {
	if !c.lim.allow(to.Addr(), time.Now()) {
		c.stats.limited.Add(1)
		return false, nil
	}
	b, err := ErrorIndication(teid, c.peer, to.Port())
	if err != nil {
		return false, err
	}
	if err := c.WriteTo(b, to); err != nil {
		return false, err
	}
	c.stats.errInd.Add(1)
	return true, nil
}

// Serve reads datagrams in batches and handles them until ctx ends or the
// Conn is closed, then returns nil; it returns an error if the socket
// fails. It answers Echo Requests itself (TS 29.281 7.2.2), answers an
// unknown comprehension-required extension header with a Supported
// Extension Headers Notification (TS 29.281 5.2.1), drops malformed
// datagrams, and hands the rest to h; what h forwards, and the answers,
// go out in one sendmmsg per batch. One Serve at a time per Conn.
func (c *Conn) Serve(ctx context.Context, h Handler) error {
	if h == nil {
		return errors.New("gtpu: Serve: nil handler")
	}
	// A read deadline in the past wakes the blocked read when ctx ends.
	woken := make(chan struct{})
	stop := context.AfterFunc(ctx, func() {
		defer close(woken)
		_ = c.uc.SetReadDeadline(time.Unix(1, 0))
	})
	defer func() {
		if !stop() {
			<-woken
			_ = c.uc.SetReadDeadline(time.Time{})
		}
	}()
	rd, w := newReader(c.cfg.Batch), newWriter(c.cfg.Batch)
	pkts := make([]Packet, c.cfg.Batch)
	for {
		n, err := c.readBatch(&rd, pkts)
		if err != nil {
			if ctx.Err() != nil || errors.Is(err, net.ErrClosed) {
				return nil
			}
			return err
		}
		for i := range n {
			c.process(&pkts[i], h, &w)
		}
		if w.n > 0 {
			if _, err := c.flush(&w); err != nil {
				c.log.Debug("send failed", "err", err)
			}
		}
	}
}

// process handles one received packet, queueing what is to be sent in w.
func (c *Conn) process(p *Packet, h Handler, w *writer) {
	if p.Err != nil {
		if p.Err == ErrUnknownExtension {
			c.notifyExtensions(p, w)
		}
		return
	}
	switch p.Header.Type {
	case MsgGPDU, MsgEndMarker, MsgErrorIndication, MsgEchoResponse, MsgSupportedExtensionHeadersNotification:
		switch h(p) {
		case Consume:
		case Forward:
			c.queue(w, p.Data, p.Addr)
		case UnknownTEID:
			c.stats.drops[DropUnknownTEID].Add(1)
			if p.Header.Type == MsgGPDU {
				c.errorIndication(p, w)
			}
		default:
			c.stats.drops[DropHandler].Add(1)
		}
	case MsgEchoRequest:
		b, err := EchoResponse(p.Header.Seq)
		if err != nil {
			c.stats.drops[DropSend].Add(1)
			return
		}
		c.stats.echo.Add(1)
		// TS 29.281 4.4.2.2: a response goes to the request's source port.
		c.queue(w, b, p.Addr)
	default:
		c.stats.drops[DropUnknownType].Add(1)
	}
}

func (c *Conn) queue(w *writer, b []byte, to netip.AddrPort) {
	if w.full() {
		if _, err := c.flush(w); err != nil {
			c.log.Debug("send failed", "err", err)
		}
	}
	w.add(b, to)
}

// errorIndication answers a G-PDU for an unknown TEID (TS 29.281 7.3.1).
// It goes to the G-PDU's source address and port: N3 peers send from the
// GTP-U port 2152 (TS 29.281 4.4.2), and the source port also reaches
// simulated peers on other ports. The UDP Port extension header repeats
// that port (TS 29.281 5.2.2.1).
func (c *Conn) errorIndication(p *Packet, w *writer) {
	if !c.lim.allow(p.Addr.Addr(), time.Now()) {
		c.stats.limited.Add(1)
		return
	}
	b, err := ErrorIndication(p.Header.TEID, c.peer, p.Addr.Port())
	if err != nil {
		c.stats.drops[DropSend].Add(1)
		return
	}
	c.stats.errInd.Add(1)
	c.queue(w, b, p.Addr)
}

// notifyExtensions answers a message with an extension header this node
// must but cannot comprehend (TS 29.281 5.2.1), rate-limited like Error
// Indications.
func (c *Conn) notifyExtensions(p *Packet, w *writer) {
	if !c.lim.allow(p.Addr.Addr(), time.Now()) {
		c.stats.limited.Add(1)
		return
	}
	b, err := SupportedExtensionHeadersNotification(p.Header.Seq)
	if err != nil {
		c.stats.drops[DropSend].Add(1)
		return
	}
	c.stats.extNotif.Add(1)
	c.queue(w, b, p.Addr)
}
