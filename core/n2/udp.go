package n2

import (
	"errors"
	"io"
	"log/slog"
	"net"
	"net/netip"
	"os"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/pion/transport/v5/deadline"
)

// UDP mode (RFC 6951): SCTP packets travel one per UDP datagram. An
// endpoint owns one UDP socket; its associations are told apart by the
// peer's address and UDP port (RFC 6951 5.1: the encapsulation port is
// part of the peer's transport address). Each association sees its own
// udpLink, the net.Conn that pion/sctp runs over.

const (
	// maxPacket is the largest SCTP packet pion/sctp v1.12.1 reads
	// (association.go receiveMTU); larger datagrams could only be truncated.
	maxPacket = 8192
	// recvWindow is the least receive buffer (a_rwnd) of the userspace
	// stack; see recvBuffer.
	recvWindow = 1 << 20
	// socketBuffer is the UDP socket buffer size asked for.
	socketBuffer = 4 << 20
)

// endpoint is one UDP socket and the associations it carries.
type endpoint struct {
	sock      *net.UDPConn
	local     netip.AddrPort
	connected bool // dialer: the socket is connected to the one peer
	tap       Tap
	log       *slog.Logger
	// newPeer handles a datagram from an unknown address (listeners only).
	newPeer func(from netip.AddrPort, pkt []byte)

	mu    sync.Mutex
	peers map[netip.AddrPort]*udpLink

	closeOnce sync.Once
	done      chan struct{} // readLoop has returned
}

func newEndpoint(sock *net.UDPConn, connected bool, cfg Config) *endpoint {
	// Bursts of a congestion window arrive faster than the stack takes
	// them; a small socket buffer turns them into losses and RTO stalls.
	// The kernel caps these at net.core.rmem_max / wmem_max.
	_ = sock.SetReadBuffer(socketBuffer)
	_ = sock.SetWriteBuffer(socketBuffer)
	local := sock.LocalAddr().(*net.UDPAddr).AddrPort()
	return &endpoint{
		sock:      sock,
		local:     netip.AddrPortFrom(local.Addr().Unmap(), local.Port()),
		connected: connected,
		tap:       cfg.Tap,
		log:       cfg.Logger,
		peers:     map[netip.AddrPort]*udpLink{},
		done:      make(chan struct{}),
	}
}

// readLoop receives datagrams until the socket is closed.
func (e *endpoint) readLoop() {
	defer close(e.done)
	buf := make([]byte, 64<<10)
	for {
		n, from, err := e.sock.ReadFromUDPAddrPort(buf)
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				return
			}
			// RFC 6951 5.5: an ICMP error cannot be tied to an association
			// (no verification tag to check), so it is ignored; other read
			// errors are transient.
			if !errors.Is(err, syscall.ECONNREFUSED) {
				e.log.Debug("n2: udp read", "local", e.local, "err", err)
				time.Sleep(time.Millisecond)
			}
			continue
		}
		from = netip.AddrPortFrom(from.Addr().Unmap(), from.Port())
		pkt := buf[:n]
		if e.tap != nil {
			e.tap.Datagram(false, e.local, from, pkt)
		}
		e.mu.Lock()
		l := e.peers[from]
		e.mu.Unlock()
		switch {
		case l != nil:
			l.deliver(pkt)
		case e.newPeer != nil:
			e.newPeer(from, pkt)
		default:
			e.log.Debug("n2: dropped datagram from unknown peer", "local", e.local, "from", from)
		}
	}
}

// add registers l unless there are already limit links.
func (e *endpoint) add(l *udpLink, limit int) bool {
	e.mu.Lock()
	defer e.mu.Unlock()
	if len(e.peers) >= limit {
		return false
	}
	e.peers[l.remote] = l
	return true
}

func (e *endpoint) remove(l *udpLink) {
	e.mu.Lock()
	if e.peers[l.remote] == l {
		delete(e.peers, l.remote)
	}
	e.mu.Unlock()
}

func (e *endpoint) count() int {
	e.mu.Lock()
	defer e.mu.Unlock()
	return len(e.peers)
}

// send writes one datagram. Send errors other than a closed socket count
// as packet loss: SCTP retransmits, and the peer timeout catches a path
// that stays broken.
func (e *endpoint) send(pkt []byte, to netip.AddrPort) error {
	if e.tap != nil {
		e.tap.Datagram(true, e.local, to, pkt)
	}
	var err error
	if e.connected {
		_, err = e.sock.Write(pkt)
	} else {
		_, err = e.sock.WriteToUDPAddrPort(pkt, to)
	}
	if err != nil {
		if errors.Is(err, net.ErrClosed) {
			return err
		}
		e.log.Debug("n2: udp send", "local", e.local, "to", to, "err", err)
	}
	return nil
}

// close closes the socket and waits for readLoop.
func (e *endpoint) close() {
	e.closeOnce.Do(func() { _ = e.sock.Close() })
	<-e.done
}

// udpLink is the datagram pipe between one association's userspace SCTP
// stack and the endpoint: a net.Conn whose reads and writes are whole SCTP
// packets.
type udpLink struct {
	ep     *endpoint
	remote netip.AddrPort
	in     packetQueue
	rd     *deadline.Deadline

	closed    chan struct{}
	closeOnce sync.Once
	onClose   func()

	// translate is set on dialers. pion/sctp v1.12.1 puts SCTP port 5000 in
	// both header fields of an association it initiates and has no option
	// to change it, so the link rewrites the ports to localPort/remotePort
	// on the wire (and the CRC32c with them), and back on receipt.
	translate  bool
	localPort  uint16
	remotePort uint16
	stackPorts atomic.Uint32 // src<<16 | dst as the stack writes them; 0 until its first packet

	lastRecv   atomic.Int64  // unix nanoseconds of the last valid packet
	localOS    atomic.Uint32 // OS of our INIT / INIT ACK
	peerMIS    atomic.Uint32 // MIS of the peer's INIT / INIT ACK
	dropped    atomic.Uint64 // packets dropped because the stack lagged
	badPackets atomic.Uint64 // packets with a bad checksum or foreign ports
}

// recvBuffer is the stack's receive buffer: 1 MiB, or room for two of the
// largest messages.
func recvBuffer(cfg Config) int { return max(recvWindow, 2*cfg.MaxMessageSize) }

// newLink makes the link to remote. Received data waiting for the stack is
// bounded by twice the receive window the stack advertises, which bounds
// what a well-behaved peer has in flight; beyond it packets are dropped, as
// by a full socket buffer.
func newLink(ep *endpoint, remote netip.AddrPort, cfg Config) *udpLink {
	l := &udpLink{
		ep:     ep,
		remote: remote,
		in:     packetQueue{limit: 2 * recvBuffer(cfg), ready: make(chan struct{}, 1)},
		rd:     deadline.New(),
		closed: make(chan struct{}),
	}
	l.lastRecv.Store(time.Now().UnixNano())
	return l
}

// deliver hands a received packet to the stack. It never blocks: when the
// stack lags, packets are dropped, as by a full socket buffer.
func (l *udpLink) deliver(raw []byte) {
	if len(raw) > maxPacket || !checksumOK(raw) {
		// RFC 9260 6.8: a packet with a bad checksum is discarded.
		l.badPackets.Add(1)
		return
	}
	var sp uint32
	if l.translate {
		src, dst, _ := ports(raw)
		sp = l.stackPorts.Load()
		if src != l.remotePort || dst != l.localPort || sp == 0 {
			l.badPackets.Add(1) // out of the blue for this association
			return
		}
	}
	l.lastRecv.Store(time.Now().UnixNano())
	if info, ok := peekInit(raw); ok {
		l.peerMIS.Store(uint32(info.inStreams))
	}
	pkt, removed := copyWithout(raw, chunkHeartbeatAck)
	if p, changed := stripInitAddresses(pkt); changed {
		pkt, removed = p, true
	}
	switch {
	case len(pkt) <= commonHeaderLen:
		return // it held only HEARTBEAT ACKs: the peer is alive, that is all
	case l.translate:
		setPorts(pkt, uint16(sp), uint16(sp>>16))
	case removed:
		setChecksum(pkt)
	}
	if !l.in.push(pkt) {
		l.dropped.Add(1)
	}
}

// Read returns the next packet for the stack.
func (l *udpLink) Read(b []byte) (int, error) {
	for {
		if p, ok := l.in.pop(); ok {
			return copy(b, p), nil
		}
		select {
		case <-l.in.ready:
		case <-l.closed:
			return 0, io.EOF
		case <-l.rd.Done():
			return 0, os.ErrDeadlineExceeded
		}
	}
}

// Write sends one packet from the stack.
func (l *udpLink) Write(b []byte) (int, error) {
	select {
	case <-l.closed:
		return 0, net.ErrClosed
	default:
	}
	if info, ok := peekInit(b); ok {
		l.localOS.Store(uint32(info.outStreams))
	}
	src, dst, err := ports(b)
	if err != nil {
		return 0, err
	}
	pkt := fixHeartbeats(b, time.Now().UnixNano())
	if l.translate {
		l.stackPorts.CompareAndSwap(0, uint32(src)<<16|uint32(dst))
		if &pkt[0] == &b[0] { // not copied yet: b is the stack's
			pkt = make([]byte, len(b))
			copy(pkt, b)
		}
		setPorts(pkt, l.localPort, l.remotePort)
	}
	if err := l.ep.send(pkt, l.remote); err != nil {
		return 0, err
	}
	return len(b), nil
}

// Close detaches the link; a blocked Read returns io.EOF.
func (l *udpLink) Close() error {
	l.closeOnce.Do(func() {
		close(l.closed)
		l.ep.remove(l)
		if l.onClose != nil {
			l.onClose()
		}
	})
	return nil
}

func (l *udpLink) isClosed() bool {
	select {
	case <-l.closed:
		return true
	default:
		return false
	}
}

func (l *udpLink) lastHeard() time.Time { return time.Unix(0, l.lastRecv.Load()) }

// outStreams is min(our OS, the peer's MIS) (RFC 9260 5.1.1).
func (l *udpLink) outStreams() uint16 {
	return uint16(min(l.localOS.Load(), l.peerMIS.Load()))
}

func (l *udpLink) LocalAddr() net.Addr  { return net.UDPAddrFromAddrPort(l.ep.local) }
func (l *udpLink) RemoteAddr() net.Addr { return net.UDPAddrFromAddrPort(l.remote) }

func (l *udpLink) SetDeadline(t time.Time) error {
	l.rd.Set(t)
	return nil
}

func (l *udpLink) SetReadDeadline(t time.Time) error {
	l.rd.Set(t)
	return nil
}

// SetWriteDeadline is a no-op: datagram writes do not block.
func (l *udpLink) SetWriteDeadline(time.Time) error { return nil }

// packetQueue is a FIFO of packets bounded in bytes; one reader waits on
// ready.
type packetQueue struct {
	mu    sync.Mutex
	pkts  [][]byte
	head  int
	bytes int
	limit int
	ready chan struct{} // capacity 1: "something was pushed"
}

func (q *packetQueue) push(p []byte) bool {
	q.mu.Lock()
	if q.bytes+len(p) > q.limit {
		q.mu.Unlock()
		return false
	}
	q.pkts = append(q.pkts, p)
	q.bytes += len(p)
	q.mu.Unlock()
	select {
	case q.ready <- struct{}{}:
	default:
	}
	return true
}

func (q *packetQueue) pop() ([]byte, bool) {
	q.mu.Lock()
	defer q.mu.Unlock()
	if q.head == len(q.pkts) {
		return nil, false
	}
	p := q.pkts[q.head]
	q.pkts[q.head] = nil
	q.head++
	q.bytes -= len(p)
	if q.head == len(q.pkts) {
		q.pkts, q.head = q.pkts[:0], 0
	}
	return p, true
}
