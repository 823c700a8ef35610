package device

import (
	"crypto/x509"
	"errors"
	"fmt"
	"github.com/simgate/simgate/internal/iplink"
	"log/slog"
	"net/http"
	"net/netip"
	"sync"
	"sync/atomic"
	"time"

	"gvisor.dev/gvisor/pkg/tcpip"
	"gvisor.dev/gvisor/pkg/tcpip/header"
	"gvisor.dev/gvisor/pkg/tcpip/network/ipv4"
	"gvisor.dev/gvisor/pkg/tcpip/stack"
	"gvisor.dev/gvisor/pkg/tcpip/transport/icmp"
	"gvisor.dev/gvisor/pkg/tcpip/transport/tcp"
	"gvisor.dev/gvisor/pkg/tcpip/transport/udp"
)

// nicID is the stack's only NIC: the radio side of every UE.
const nicID tcpip.NICID = 1

// Defaults of Config.
const (
	DefaultMTU          = 1500
	DefaultDNSTimeout   = 2 * time.Second
	DefaultDNSAttempts  = 2
	DefaultIdleConns    = 4
	DefaultIdleTimeout  = 30 * time.Second
	DefaultDialTimeout  = 30 * time.Second
	DefaultSOCKSTimeout = 30 * time.Second
)

// Config configures a Stack. Zero fields take the defaults above.
type Config struct {
	// MTU is the UEs' link MTU (default 1500, 576..65535). Over a real N3
	// with a 1500-byte path, 1456 avoids fragmenting G-PDUs (outer IPv4 20,
	// UDP 8, GTP-U 8 + 4 optional octets (TS 29.281 5.1), PDU Session
	// Container 4 (TS 38.415)). Larger MTUs cost less per byte in-process.
	MTU int
	// DNSTimeout bounds one DNS attempt; DNSAttempts is how many are made
	// per name before giving up (defaults 2s and 2).
	DNSTimeout  time.Duration
	DNSAttempts int
	// IdleConnsPerUE bounds the keep-alive connections each UE's HTTP
	// client keeps (default 4); IdleConnTimeout closes them after being
	// idle this long (default 30s).
	IdleConnsPerUE  int
	IdleConnTimeout time.Duration
	// RootCAs, if set, is the trust store of the UEs' HTTP clients (for
	// instance simgate's own CA, for the issuer's HTTPS); nil means the
	// host's.
	RootCAs *x509.CertPool
	// DialTimeout bounds a connection the SOCKS proxy opens for a client
	// (default 30s); SOCKSHandshakeTimeout bounds a client's SOCKS
	// negotiation (default 30s).
	DialTimeout           time.Duration
	SOCKSHandshakeTimeout time.Duration
	// Logger receives the stack's log lines (default: discard).
	Logger *slog.Logger
}

func (c Config) withDefaults() (Config, error) {
	if c.MTU == 0 {
		c.MTU = DefaultMTU
	}
	if c.MTU < 576 || c.MTU > 65535 {
		// RFC 791: every IPv4 host must take 576-byte datagrams.
		return c, fmt.Errorf("device: mtu %d is not between 576 and 65535", c.MTU)
	}
	if c.DNSTimeout <= 0 {
		c.DNSTimeout = DefaultDNSTimeout
	}
	if c.DNSAttempts <= 0 {
		c.DNSAttempts = DefaultDNSAttempts
	}
	if c.IdleConnsPerUE <= 0 {
		c.IdleConnsPerUE = DefaultIdleConns
	}
	if c.IdleConnTimeout <= 0 {
		c.IdleConnTimeout = DefaultIdleTimeout
	}
	if c.DialTimeout <= 0 {
		c.DialTimeout = DefaultDialTimeout
	}
	if c.SOCKSHandshakeTimeout <= 0 {
		c.SOCKSHandshakeTimeout = DefaultSOCKSTimeout
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	return c, nil
}

// Errors a caller can test for with errors.Is.
var (
	// ErrUnknownUE: the address is not a UE of this stack (never added,
	// or its PDU session was removed).
	ErrUnknownUE = errors.New("no PDU session for this UE address")
	// ErrClosed: the stack was closed.
	ErrClosed = errors.New("stack closed")
)

// Stack is the userspace IP stack of all the UEs of a process. Its methods
// are safe for concurrent use.
type Stack struct {
	cfg  Config
	st   *stack.Stack
	link *iplink.Link
	log  *slog.Logger

	// addrMu serialises changes of the NIC's addresses, so that gVisor is
	// never called with mu held (mu is taken on every packet, from inside
	// gVisor).
	addrMu sync.Mutex
	mu     sync.RWMutex
	ues    map[[4]byte]*ue // by PDU session address
	closed bool

	stats struct {
		up, down           atomic.Uint64 // packets passed to a send function / into the stack
		upDrop, downDrop   atomic.Uint64 // packets with no UE to carry or take them
		upBytes, downBytes atomic.Uint64
	}
}

// Stats counts the packets that crossed the stack's NIC.
type Stats struct {
	// Uplink: packets (and bytes) handed to a UE's send function.
	Uplink, UplinkBytes uint64
	// UplinkDropped: packets the stack emitted from an address that is no
	// UE's (a UE removed while its socket was still sending).
	UplinkDropped uint64
	// Downlink: packets (and bytes) taken by Deliver.
	Downlink, DownlinkBytes uint64
	// DownlinkDropped: packets Deliver refused (not IPv4, or for no UE).
	DownlinkDropped uint64
}

// New builds the stack: one NIC with no address yet, a default route
// through it, and TCP tuned for throughput (SACK, receive buffer
// auto-tuning). It starts no goroutine of its own; gVisor's TCP workers
// stop at Close.
func New(cfg Config) (*Stack, error) {
	cfg, err := cfg.withDefaults()
	if err != nil {
		return nil, err
	}
	s := &Stack{
		cfg: cfg,
		log: cfg.Logger,
		ues: make(map[[4]byte]*ue),
		st: stack.New(stack.Options{
			NetworkProtocols:   []stack.NetworkProtocolFactory{ipv4.NewProtocol},
			TransportProtocols: []stack.TransportProtocolFactory{tcp.NewProtocol, udp.NewProtocol, icmp.NewProtocol4},
			// No local delivery: a packet from one UE to another leaves
			// through the NIC like any other and the user plane decides.
			HandleLocal: false,
		}),
	}
	s.link = iplink.New(uint32(cfg.MTU))
	s.link.SetOutput(s.uplink)
	fail := func(what string, e tcpip.Error) (*Stack, error) {
		s.st.Close()
		s.st.Wait()
		return nil, fmt.Errorf("device: %s: %s", what, e)
	}
	sack := tcpip.TCPSACKEnabled(true)
	if e := s.st.SetTransportProtocolOption(tcp.ProtocolNumber, &sack); e != nil {
		return fail("tcp sack", e)
	}
	moderate := tcpip.TCPModerateReceiveBufferOption(true)
	if e := s.st.SetTransportProtocolOption(tcp.ProtocolNumber, &moderate); e != nil {
		return fail("tcp receive buffer moderation", e)
	}
	if e := s.st.CreateNICWithOptions(nicID, s.link, stack.NICOptions{Name: "ran"}); e != nil {
		return fail("create nic", e)
	}
	s.st.SetRouteTable([]tcpip.Route{{Destination: header.IPv4EmptySubnet, NIC: nicID}})
	return s, nil
}

// Close removes every UE, closing their connections, and stops the stack.
func (s *Stack) Close() error {
	s.addrMu.Lock()
	defer s.addrMu.Unlock()
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return nil
	}
	s.closed = true
	ues := s.ues
	s.ues = make(map[[4]byte]*ue)
	s.mu.Unlock()
	for _, u := range ues {
		u.shutdown()
	}
	s.st.Close()
	s.st.Wait()
	return nil
}

// ue is one PDU session's address on the stack.
type ue struct {
	addr netip.Addr
	dns  netip.Addr
	send func([]byte)

	mu     sync.Mutex
	conns  map[tracked]struct{} // the UE's open sockets, closed at removal
	client *http.Client         // made on first use
	gone   bool
}

// tracked is a socket of a UE that its removal must end.
type tracked interface{ abort() }

// AddUE puts a PDU session's IPv4 address on the stack. dnsServer is the
// DNS server the session announced (the data network's responder); it may
// be invalid if the session named none, and then only IP literals can be
// dialed. send carries each packet the stack emits from ueAddr: it is
// called synchronously, possibly from several goroutines at once and from
// within Deliver (an answer the stack gives at once, such as an ICMP echo
// reply); it must not keep pkt after it returns and must not call back
// into the Stack.
func (s *Stack) AddUE(ueAddr, dnsServer netip.Addr, send func(pkt []byte)) error {
	switch {
	case !ueAddr.Is4():
		return fmt.Errorf("device: add ue %s: not an IPv4 address", ueAddr)
	case !ueAddr.IsGlobalUnicast():
		return fmt.Errorf("device: add ue %s: not a unicast address", ueAddr)
	case dnsServer.IsValid() && !dnsServer.Is4():
		return fmt.Errorf("device: add ue %s: dns server %s is not IPv4", ueAddr, dnsServer)
	case send == nil:
		return fmt.Errorf("device: add ue %s: nil send function", ueAddr)
	}
	key := ueAddr.As4()
	u := &ue{addr: ueAddr, dns: dnsServer, send: send}
	s.addrMu.Lock()
	defer s.addrMu.Unlock()
	s.mu.RLock()
	_, dup := s.ues[key]
	closed := s.closed
	s.mu.RUnlock()
	switch {
	case closed:
		return fmt.Errorf("device: add ue %s: %w", ueAddr, ErrClosed)
	case dup:
		return fmt.Errorf("device: add ue %s: address already in use", ueAddr)
	}
	// NeverPrimaryEndpoint: the address is only ever a source when a
	// socket binds to it, so no socket can speak as a UE by accident.
	e := s.st.AddProtocolAddress(nicID, tcpip.ProtocolAddress{
		Protocol:          ipv4.ProtocolNumber,
		AddressWithPrefix: tcpip.AddrFrom4(key).WithPrefix(),
	}, stack.AddressProperties{PEB: stack.NeverPrimaryEndpoint})
	if e != nil {
		return fmt.Errorf("device: add ue %s: %s", ueAddr, e)
	}
	s.mu.Lock()
	s.ues[key] = u
	s.mu.Unlock()
	return nil
}

// RemoveUE takes a UE's address off the stack, as at PDU session release:
// its packets stop at once in both directions and its open connections are
// reset.
func (s *Stack) RemoveUE(ueAddr netip.Addr) error {
	if !ueAddr.Is4() {
		return fmt.Errorf("device: remove ue %s: %w", ueAddr, ErrUnknownUE)
	}
	key := ueAddr.As4()
	s.addrMu.Lock()
	s.mu.Lock()
	u, ok := s.ues[key]
	delete(s.ues, key)
	s.mu.Unlock()
	if ok {
		if e := s.st.RemoveAddress(nicID, tcpip.AddrFrom4(key)); e != nil {
			s.log.Warn("device: remove ue address", "ue", ueAddr, "err", e.String())
		}
	}
	s.addrMu.Unlock()
	if !ok {
		return fmt.Errorf("device: remove ue %s: %w", ueAddr, ErrUnknownUE)
	}
	u.shutdown()
	return nil
}

// UEs is the number of UE addresses on the stack.
func (s *Stack) UEs() int {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return len(s.ues)
}

// HasUE reports whether ueAddr is on the stack.
func (s *Stack) HasUE(ueAddr netip.Addr) bool {
	return s.lookup(ueAddr) != nil
}

func (s *Stack) lookup(a netip.Addr) *ue {
	if !a.Is4() {
		return nil
	}
	s.mu.RLock()
	u := s.ues[a.As4()]
	s.mu.RUnlock()
	return u
}

// Deliver gives the stack one downlink inner IPv4 packet (a G-PDU's
// payload). pkt is copied; the caller may reuse it at once. A packet that is
// not IPv4 or is for no UE of the stack is refused with an error and
// counted; the stack itself drops malformed packets (checksums, lengths).
func (s *Stack) Deliver(pkt []byte) error {
	if len(pkt) < header.IPv4MinimumSize || header.IPVersion(pkt) != header.IPv4Version {
		s.stats.downDrop.Add(1)
		return fmt.Errorf("device: deliver: not an IPv4 packet (%d bytes)", len(pkt))
	}
	dst := header.IPv4(pkt).DestinationAddress().As4()
	s.mu.RLock()
	_, ok := s.ues[dst]
	s.mu.RUnlock()
	if !ok {
		s.stats.downDrop.Add(1)
		return fmt.Errorf("device: deliver to %s: %w", netip.AddrFrom4(dst), ErrUnknownUE)
	}
	if !s.link.Inject(pkt) {
		s.stats.downDrop.Add(1)
		return fmt.Errorf("device: deliver: %w", ErrClosed)
	}
	s.stats.down.Add(1)
	s.stats.downBytes.Add(uint64(len(pkt)))
	return nil
}

// uplink is the NIC's output: the IPv4 packet goes to the send function of
// the UE whose address is its source.
func (s *Stack) uplink(pkt []byte) {
	if len(pkt) < header.IPv4MinimumSize {
		s.stats.upDrop.Add(1)
		return
	}
	src := [4]byte(pkt[12:16]) // RFC 791: source address
	s.mu.RLock()
	u := s.ues[src]
	s.mu.RUnlock()
	if u == nil {
		s.stats.upDrop.Add(1)
		return
	}
	s.stats.up.Add(1)
	s.stats.upBytes.Add(uint64(len(pkt)))
	u.send(pkt)
}

// Stats returns the packet counters.
func (s *Stack) Stats() Stats {
	return Stats{
		Uplink: s.stats.up.Load(), UplinkBytes: s.stats.upBytes.Load(), UplinkDropped: s.stats.upDrop.Load(),
		Downlink: s.stats.down.Load(), DownlinkBytes: s.stats.downBytes.Load(), DownlinkDropped: s.stats.downDrop.Load(),
	}
}

// track registers a UE's socket; false if the UE is already gone.
func (u *ue) track(c tracked) bool {
	u.mu.Lock()
	defer u.mu.Unlock()
	if u.gone {
		return false
	}
	if u.conns == nil {
		u.conns = make(map[tracked]struct{})
	}
	u.conns[c] = struct{}{}
	return true
}

func (u *ue) untrack(c tracked) {
	u.mu.Lock()
	delete(u.conns, c)
	u.mu.Unlock()
}

// shutdown ends a removed UE: its sockets are aborted and its HTTP client
// forgets its idle connections.
func (u *ue) shutdown() {
	u.mu.Lock()
	u.gone = true
	conns := u.conns
	u.conns = nil
	client := u.client
	u.mu.Unlock()
	for c := range conns {
		c.abort()
	}
	if client != nil {
		client.CloseIdleConnections()
	}
}
