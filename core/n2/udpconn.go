package n2

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/netip"
	"sync"
	"time"

	"github.com/pion/sctp"
)

// udpConn is an association run by the userspace stack over a udpLink.
//
// pion/sctp hands out one object per stream. Every stream that exists
// (opened by us for writing, or by the peer's first message on it) gets a
// reader goroutine feeding msgs; stream 0 always exists, so the end of the
// association is always seen. done closes once every reader and the
// stream-accept loop have returned, after which err says why.
type udpConn struct {
	cfg     Config
	assoc   *sctp.Association
	link    *udpLink
	log     *slog.Logger
	release func(*udpConn) // frees what the association held (socket, listener slot)

	msgs    chan message
	closing chan struct{} // Close was called
	done    chan struct{} // all feeders returned; err is set
	kaDone  chan struct{} // keepalive returned

	mu       sync.Mutex
	streams  map[uint16]*ustream
	feeders  int
	finished bool
	cause    error // why we ended the association ourselves
	firstErr error // first error a stream reader saw
	err      error // what ReadMsg returns once done

	closeOnce   sync.Once
	releaseOnce sync.Once

	readMu  sync.Mutex
	pending *message
}

// stackOptions configures pion/sctp for one association.
func stackOptions(cfg Config, link *udpLink) []sctp.AssociationOption {
	return []sctp.AssociationOption{
		sctp.WithNetConn(link),
		sctp.WithName(link.remote.String()),
		sctp.WithLoggerFactory(pionLogs{cfg.Logger}),
		// Writes queue; WriteMsg bounds the queue per stream itself
		// (sendHigh), which lets writes overlap: pion's blocking mode
		// waits for each message to leave the queue, a third of the rate.
		sctp.WithBlockWrite(false),
		// Plain DATA chunks (RFC 9260), as kernel SCTP peers expect; I-DATA
		// (RFC 8260) is not negotiated.
		sctp.WithEnableInterleaving(false),
		sctp.WithMTU(uint32(cfg.MTU)),
		sctp.WithMaxMessageSize(uint32(cfg.MaxMessageSize)),
		sctp.WithMaxReceiveBufferSize(uint32(recvBuffer(cfg))),
	}
}

func newUDPConn(cfg Config, assoc *sctp.Association, link *udpLink, release func(*udpConn)) (*udpConn, error) {
	c := &udpConn{
		cfg:     cfg,
		assoc:   assoc,
		link:    link,
		log:     cfg.Logger.With("remote", link.remote.String(), "transport", string(TransportUDP)),
		release: release,
		msgs:    make(chan message, 64),
		closing: make(chan struct{}),
		done:    make(chan struct{}),
		kaDone:  make(chan struct{}),
		streams: map[uint16]*ustream{},
		feeders: 1, // the accept loop
	}
	// Stream 0 (TS 38.412 7: non-UE-associated signalling) is opened at
	// once so that a reader always sees the association end.
	s0, err := assoc.OpenStream(0, sctp.PayloadProtocolIdentifier(PPIDNGAP))
	if err != nil {
		return nil, fmt.Errorf("n2: open stream 0: %w", err)
	}
	c.register(s0)
	go c.acceptLoop()
	go c.keepalive()
	return c, nil
}

// Send queue bounds per stream: WriteMsg waits while more than sendHigh
// bytes are queued or unacknowledged, until they drop to sendLow.
const (
	sendHigh = 1 << 20
	sendLow  = sendHigh / 2
)

// ustream is one stream of the association.
type ustream struct {
	s   *sctp.Stream
	low chan struct{} // signalled when the send queue drops to sendLow
}

// register starts a reader for s unless its stream already has one, and
// returns the stream's record.
func (c *udpConn) register(s *sctp.Stream) *ustream {
	id := s.StreamIdentifier()
	c.mu.Lock()
	defer c.mu.Unlock()
	if us, ok := c.streams[id]; ok {
		return us
	}
	us := &ustream{s: s, low: make(chan struct{}, 1)}
	s.SetBufferedAmountLowThreshold(sendLow)
	s.OnBufferedAmountLow(func() {
		select {
		case us.low <- struct{}{}:
		default:
		}
	})
	if c.finished {
		return us
	}
	c.streams[id] = us
	c.feeders++
	go c.readStream(s, id)
	return us
}

// acceptLoop takes the streams the peer opened by sending on them.
func (c *udpConn) acceptLoop() {
	for {
		s, err := c.assoc.AcceptStream()
		if err != nil { // io.EOF: the association is over
			c.feederDone(nil)
			return
		}
		c.register(s)
	}
}

// readStream feeds the messages of one stream, in order, to msgs.
func (c *udpConn) readStream(s *sctp.Stream, id uint16) {
	buf := make([]byte, 2048)
	for {
		n, ppi, err := s.ReadSCTP(buf)
		if errors.Is(err, io.ErrShortBuffer) { // the message stays queued
			if n > c.cfg.MaxMessageSize {
				c.fail(fmt.Errorf("n2: stream %d: %d-byte message: %w (limit %d)", id, n, ErrMessageTooLarge, c.cfg.MaxMessageSize))
				c.feederDone(nil)
				return
			}
			buf = make([]byte, n)
			continue
		}
		if err != nil {
			c.feederDone(err)
			return
		}
		if n > c.cfg.MaxMessageSize {
			c.fail(fmt.Errorf("n2: stream %d: %d-byte message: %w (limit %d)", id, n, ErrMessageTooLarge, c.cfg.MaxMessageSize))
			c.feederDone(nil)
			return
		}
		m := message{data: make([]byte, n), stream: id, ppid: uint32(ppi)}
		copy(m.data, buf[:n])
		select {
		case c.msgs <- m:
		case <-c.closing:
			c.feederDone(nil)
			return
		}
	}
}

// feederDone records a reader's end; the last one closes done.
func (c *udpConn) feederDone(err error) {
	c.mu.Lock()
	if err != nil && c.firstErr == nil {
		c.firstErr = err
	}
	c.feeders--
	last := c.feeders == 0
	if last {
		c.finished = true
		c.err = c.endErr()
	}
	c.mu.Unlock()
	if last {
		close(c.done)
		c.free()
		reason := c.err.Error()
		switch {
		case errors.Is(c.err, net.ErrClosed):
			reason = "closed"
		case errors.Is(c.err, io.EOF):
			reason = "shut down by peer"
		}
		c.log.Info("n2: association down", "reason", reason,
			"dropped_packets", c.link.dropped.Load(), "bad_packets", c.link.badPackets.Load())
	}
}

// endErr classifies the end of the association. Caller holds mu.
func (c *udpConn) endErr() error {
	select {
	case <-c.closing:
		return fmt.Errorf("n2: read: %w", net.ErrClosed)
	default:
	}
	switch err := c.firstErr; {
	case c.cause != nil:
		return c.cause
	case err == nil || errors.Is(err, io.EOF):
		return io.EOF // RFC 9260 9.2: the peer shut the association down
	case errors.Is(err, sctp.ErrChunk):
		return fmt.Errorf("n2: %w: %v", ErrAborted, err)
	default:
		return fmt.Errorf("n2: association failed: %w", err)
	}
}

// fail ends the association with ABORT (RFC 9260 9.1) for cause.
func (c *udpConn) fail(cause error) {
	if !c.setCause(cause) {
		return
	}
	c.log.Warn("n2: aborting association", "reason", cause.Error())
	c.assoc.Abort(cause.Error())
	_ = c.assoc.Close()
}

func (c *udpConn) setCause(cause error) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.cause != nil || c.finished {
		return false
	}
	c.cause = cause
	return true
}

// keepalive heartbeats an idle peer and gives up on a silent one
// (RFC 9260 8.3; pion/sctp answers HEARTBEATs but never gives up on a
// peer by itself).
func (c *udpConn) keepalive() {
	defer close(c.kaDone)
	tick := min(c.cfg.HeartbeatInterval/2, c.cfg.PeerTimeout/4)
	tick = max(tick, 10*time.Millisecond)
	t := time.NewTicker(tick)
	defer t.Stop()
	for {
		select {
		case <-c.closing:
			return
		case <-c.done:
			return
		case <-t.C:
		}
		silent := time.Since(c.link.lastHeard())
		if silent >= c.cfg.PeerTimeout {
			if c.setCause(fmt.Errorf("n2: %w: silent for %v", ErrPeerTimeout, silent.Round(time.Millisecond))) {
				_ = c.assoc.Close()
			}
			return
		}
		if silent >= c.cfg.HeartbeatInterval {
			c.assoc.ActiveHeartbeat()
		}
	}
}

// free releases the association's resources once.
func (c *udpConn) free() {
	c.releaseOnce.Do(func() {
		_ = c.assoc.Close()
		if c.release != nil {
			c.release(c)
		}
	})
}

func (c *udpConn) ReadMsg(b []byte) (int, uint16, uint32, error) {
	c.readMu.Lock()
	defer c.readMu.Unlock()
	if c.pending == nil {
		select {
		case m := <-c.msgs:
			c.pending = &m
		case <-c.closing:
			return 0, 0, 0, fmt.Errorf("n2: read: %w", net.ErrClosed)
		case <-c.done:
			select {
			case m := <-c.msgs:
				c.pending = &m
			default:
				return 0, 0, 0, c.err
			}
		}
	}
	m := c.pending
	n, err := m.deliver(b)
	if err == nil {
		c.pending = nil
	}
	return n, m.stream, m.ppid, err
}

func (c *udpConn) WriteMsg(b []byte, stream uint16) error {
	if err := checkWrite(b, stream, c.OutStreams(), c.cfg.MaxMessageSize); err != nil {
		return err
	}
	if err := c.ended(); err != nil {
		return err
	}
	c.mu.Lock()
	us := c.streams[stream]
	c.mu.Unlock()
	if us == nil {
		s, err := c.assoc.OpenStream(stream, sctp.PayloadProtocolIdentifier(PPIDNGAP))
		if err != nil {
			return c.writeErr(err)
		}
		us = c.register(s)
	}
	for us.s.BufferedAmount() > sendHigh {
		select {
		case <-us.low:
		case <-c.closing:
			return c.ended()
		case <-c.done:
			return c.ended()
		}
	}
	// TS 38.412 7: PPID 60 on every NGAP message.
	if _, err := us.s.WriteSCTP(b, sctp.PayloadProtocolIdentifier(PPIDNGAP)); err != nil {
		return c.writeErr(err)
	}
	return nil
}

// ended returns the error a write gets once the association is over.
func (c *udpConn) ended() error {
	select {
	case <-c.closing:
		return fmt.Errorf("n2: write: %w", net.ErrClosed)
	case <-c.done:
		if errors.Is(c.err, io.EOF) {
			return fmt.Errorf("n2: write: association shut down by peer: %w", io.EOF)
		}
		return fmt.Errorf("n2: write: %w", c.err)
	default:
		return nil
	}
}

func (c *udpConn) writeErr(err error) error {
	if e := c.ended(); e != nil {
		return e
	}
	return fmt.Errorf("n2: write: %w", err)
}

func (c *udpConn) OutStreams() uint16 { return c.link.outStreams() }

func (c *udpConn) Close() error {
	c.closeOnce.Do(func() {
		close(c.closing)
		ctx, cancel := context.WithTimeout(context.Background(), c.cfg.ShutdownTimeout)
		err := c.assoc.Shutdown(ctx) // RFC 9260 9.2
		cancel()
		if errors.Is(err, context.DeadlineExceeded) {
			c.assoc.Abort("n2: shutdown timed out") // RFC 9260 9.1
		}
		_ = c.assoc.Close()
		<-c.done
		<-c.kaDone
		c.free()
	})
	return nil
}

func (c *udpConn) LocalAddr() net.Addr  { return c.link.LocalAddr() }
func (c *udpConn) RemoteAddr() net.Addr { return c.link.RemoteAddr() }
func (c *udpConn) Transport() Transport { return TransportUDP }

// dialUDP sets up an association with the server at addr over UDP.
func dialUDP(ctx context.Context, cfg Config, addr string) (Conn, error) {
	raddr, err := resolve(ctx, addr, cfg.UDPPort, false)
	if err != nil {
		return nil, fmt.Errorf("n2: dial: %w", err)
	}
	var laddr *net.UDPAddr
	if cfg.LocalAddr != "" {
		la, err := resolve(ctx, cfg.LocalAddr, 0, true)
		if err != nil {
			return nil, fmt.Errorf("n2: dial: local address: %w", err)
		}
		laddr = udpAddr(la)
	}
	sock, err := net.DialUDP("udp", laddr, net.UDPAddrFromAddrPort(raddr))
	if err != nil {
		return nil, fmt.Errorf("n2: dial %s: %w", addr, err)
	}
	ep := newEndpoint(sock, true, cfg)
	link := newLink(ep, raddr, cfg)
	link.translate = true
	// The gNB's SCTP port: its UDP port, which is free on this host.
	link.localPort, link.remotePort = ep.local.Port(), cfg.SCTPPort
	link.onClose = func() { ep.closeOnce.Do(func() { _ = sock.Close() }) }
	ep.add(link, 1)
	go ep.readLoop()

	hctx, cancel := context.WithTimeout(ctx, cfg.HandshakeTimeout)
	defer cancel()
	opts := stackOptions(cfg, link)
	copts := make([]sctp.ClientOption, len(opts))
	for i, o := range opts {
		copts[i] = o
	}
	assoc, err := sctp.ClientContext(hctx, copts...)
	if err != nil {
		_ = link.Close()
		ep.close()
		return nil, fmt.Errorf("n2: dial %s: SCTP handshake: %w", addr, err)
	}
	c, err := newUDPConn(cfg, assoc, link, func(*udpConn) { ep.close() })
	if err != nil {
		_ = assoc.Close()
		ep.close()
		return nil, fmt.Errorf("n2: dial %s: %w", addr, err)
	}
	c.log.Info("n2: association up", "local", ep.local.String(), "out_streams", c.OutStreams())
	return c, nil
}

// udpListener accepts associations on one UDP socket.
type udpListener struct {
	listenerBase[*udpConn]
	cfg Config
	ep  *endpoint

	handshakes sync.WaitGroup // only readLoop adds
	closeOnce  sync.Once
}

func listenUDP(ctx context.Context, cfg Config) (Listener, error) {
	la, err := resolve(ctx, cfg.LocalAddr, cfg.UDPPort, true)
	if err != nil {
		return nil, fmt.Errorf("n2: listen: %w", err)
	}
	sock, err := net.ListenUDP("udp", udpAddr(la))
	if err != nil {
		return nil, fmt.Errorf("n2: listen: %w", err)
	}
	ln := &udpListener{cfg: cfg, ep: newEndpoint(sock, false, cfg)}
	ln.init()
	ln.ep.newPeer = ln.newPeer
	go ln.ep.readLoop()
	ln.closeWith(ctx, func() { _ = ln.Close() })
	cfg.Logger.Info("n2: listening", "transport", string(TransportUDP), "addr", ln.ep.local.String(), "sctp_port", cfg.SCTPPort)
	return ln, nil
}

// newPeer starts an association for a valid INIT from an unknown address.
// It runs on the endpoint's readLoop.
func (ln *udpListener) newPeer(from netip.AddrPort, pkt []byte) {
	if ln.ctx.Err() != nil {
		return
	}
	if _, err := checkInit(pkt, ln.cfg.SCTPPort); err != nil {
		ln.cfg.Logger.Debug("n2: dropped datagram from unknown peer", "from", from.String(), "err", err)
		return
	}
	link := newLink(ln.ep, from, ln.cfg)
	if !ln.ep.add(link, ln.cfg.MaxAssociations) {
		ln.cfg.Logger.Warn("n2: association limit reached; INIT dropped", "from", from.String(), "limit", ln.cfg.MaxAssociations)
		return
	}
	ln.handshakes.Add(1)
	go ln.handshake(link)
	link.deliver(pkt)
}

// handshake runs the server side of the four-way handshake (RFC 9260 5.1).
func (ln *udpListener) handshake(link *udpLink) {
	defer ln.handshakes.Done()
	ctx, cancel := context.WithTimeout(ln.ctx, ln.cfg.HandshakeTimeout)
	defer cancel()
	// On timeout or listener close, closing the link ends the handshake.
	stop := context.AfterFunc(ctx, func() { _ = link.Close() })
	opts := stackOptions(ln.cfg, link)
	sopts := make([]sctp.ServerOption, len(opts))
	for i, o := range opts {
		sopts[i] = o
	}
	assoc, err := sctp.ServerWithOptions(sopts...)
	if !stop() || err != nil {
		if err == nil {
			_ = assoc.Close()
			err = ctx.Err()
		}
		_ = link.Close()
		ln.cfg.Logger.Debug("n2: handshake failed", "remote", link.remote.String(), "err", err)
		return
	}
	c, err := newUDPConn(ln.cfg, assoc, link, ln.untrack)
	if err != nil {
		_ = assoc.Close()
		ln.cfg.Logger.Debug("n2: handshake failed", "remote", link.remote.String(), "err", err)
		return
	}
	if !ln.track(c) {
		_ = c.Close()
		return
	}
	c.log.Info("n2: association up", "local", ln.ep.local.String(), "out_streams", c.OutStreams())
	ln.offer(c)
}

func (ln *udpListener) Addr() net.Addr       { return net.UDPAddrFromAddrPort(ln.ep.local) }
func (ln *udpListener) Transport() Transport { return TransportUDP }

// Close shuts down every association (in parallel, each gracefully if it
// can), then the socket.
func (ln *udpListener) Close() error {
	ln.closeOnce.Do(func() {
		ln.shut() // handshakes in progress end
		conns := ln.drain()
		var wg sync.WaitGroup
		for _, c := range conns {
			wg.Go(func() { _ = c.Close() })
		}
		wg.Wait()
		ln.ep.close()
		ln.handshakes.Wait()
		ln.cfg.Logger.Info("n2: listener closed", "transport", string(TransportUDP), "addr", ln.ep.local.String())
	})
	return nil
}

// udpAddr converts a resolved address; an invalid IP means any address.
func udpAddr(ap netip.AddrPort) *net.UDPAddr {
	if !ap.Addr().IsValid() || ap.Addr().IsUnspecified() {
		return &net.UDPAddr{Port: int(ap.Port())}
	}
	return net.UDPAddrFromAddrPort(ap)
}
