package dn

import (
	"context"
	"errors"
	"fmt"
	"github.com/simgate/simgate/internal/iplink"
	"log/slog"
	"net/netip"
	"sync"
	"sync/atomic"

	"gvisor.dev/gvisor/pkg/tcpip"
	"gvisor.dev/gvisor/pkg/tcpip/header"
	"gvisor.dev/gvisor/pkg/tcpip/network/ipv4"
	"gvisor.dev/gvisor/pkg/tcpip/stack"
	"gvisor.dev/gvisor/pkg/tcpip/transport/icmp"
	"gvisor.dev/gvisor/pkg/tcpip/transport/tcp"
	"gvisor.dev/gvisor/pkg/tcpip/transport/udp"
)

const nicID tcpip.NICID = 1

// TCP buffer sizes: gVisor's defaults (1 MiB, up to 4 MiB) with a larger
// ceiling, so receive-buffer moderation can open the window to the
// bandwidth-delay product of a fast loopback path.
const (
	tcpBufDefault = 1 << 20
	tcpBufMax     = 8 << 20
)

// Errors of Inject.
var (
	ErrNotIPv4 = errors.New("not an IPv4 packet")
	ErrClosed  = errors.New("data network closed")
)

// DN is a running data network. Its methods are safe for concurrent use.
type DN struct {
	s    *settings
	o    options
	log  *slog.Logger
	st   *stack.Stack
	link *iplink.Link
	ctx  context.Context
	stop context.CancelFunc
	g    group

	mu    sync.RWMutex
	local map[netip.Addr]bool // addresses assigned to the stack
	host  []netip.Addr        // host addresses, for nat.protect 0.0.0.0:port

	dns  *responder
	c    counters
	once sync.Once
	done chan struct{}
}

// Start builds the stack and starts the DNS responder and the NAT. The data
// network runs until Close is called or ctx ends, which stops it the same
// way.
func Start(ctx context.Context, cfg Config, opts ...Option) (*DN, error) {
	s, err := cfg.resolve()
	if err != nil {
		return nil, err
	}
	o := buildOptions(opts)
	d := &DN{
		s:     s,
		o:     o,
		log:   o.log,
		link:  iplink.New(s.mtu),
		local: map[netip.Addr]bool{},
		done:  make(chan struct{}),
	}
	for _, p := range s.protect {
		if p.Addr().IsUnspecified() {
			if d.host, err = o.hostAddrs(); err != nil {
				return nil, fmt.Errorf("dn: host addresses for nat.protect: %w", err)
			}
			break
		}
	}
	d.st = stack.New(stack.Options{
		NetworkProtocols:   []stack.NetworkProtocolFactory{ipv4.NewProtocol},
		TransportProtocols: []stack.TransportProtocolFactory{tcp.NewProtocolCUBIC, udp.NewProtocol, icmp.NewProtocol4},
	})
	d.ctx, d.stop = context.WithCancel(ctx)
	if err := d.setup(); err != nil {
		d.stop()
		d.teardown()
		return nil, err
	}
	d.dns = newResponder(s, o.resolver, &d.c)
	if err := d.serveDNS(); err != nil {
		d.stop()
		d.teardown()
		return nil, err
	}
	context.AfterFunc(d.ctx, func() { _ = d.Close() })
	return d, nil
}

// setup configures the stack: TCP tuning, the NIC (promiscuous, spoofing),
// the service addresses, the default route and the NAT.
func (d *DN) setup() error {
	tcpOpts := []tcpip.SettableTransportProtocolOption{
		new(tcpip.TCPSACKEnabled(true)),
		new(tcpip.TCPModerateReceiveBufferOption(true)),
		&tcpip.TCPReceiveBufferSizeRangeOption{Min: tcp.MinBufferSize, Default: tcpBufDefault, Max: tcpBufMax},
		&tcpip.TCPSendBufferSizeRangeOption{Min: tcp.MinBufferSize, Default: tcpBufDefault, Max: tcpBufMax},
	}
	for _, opt := range tcpOpts {
		if err := d.st.SetTransportProtocolOption(tcp.ProtocolNumber, opt); err != nil {
			return fmt.Errorf("dn: tcp option %T: %s", opt, err)
		}
	}
	if err := d.st.CreateNICWithOptions(nicID, d.link, stack.NICOptions{Name: "dn0"}); err != nil {
		return fmt.Errorf("dn: create NIC: %s", err)
	}
	// Accept packets for any address (the NAT terminates every flow) and
	// send from any address (the NAT answers as the destination).
	if err := d.st.SetPromiscuousMode(nicID, true); err != nil {
		return fmt.Errorf("dn: promiscuous mode: %s", err)
	}
	if err := d.st.SetSpoofing(nicID, true); err != nil {
		return fmt.Errorf("dn: spoofing: %s", err)
	}
	for _, a := range []netip.Addr{d.s.dns, d.s.endorse, d.s.beam} {
		if err := d.addAddr(a); err != nil {
			return err
		}
	}
	d.st.SetRouteTable([]tcpip.Route{{Destination: header.IPv4EmptySubnet, NIC: nicID}})
	d.startNAT()
	return nil
}

// addAddr assigns a to the stack, once.
func (d *DN) addAddr(a netip.Addr) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.local[a] {
		return nil
	}
	pa := tcpip.ProtocolAddress{Protocol: ipv4.ProtocolNumber, AddressWithPrefix: tcpAddr(a).WithPrefix()}
	if err := d.st.AddProtocolAddress(nicID, pa, stack.AddressProperties{}); err != nil {
		return fmt.Errorf("dn: add address %s: %s", a, err)
	}
	d.local[a] = true
	return nil
}

// isLocal reports whether a is assigned to the stack (a service address).
func (d *DN) isLocal(a netip.Addr) bool {
	d.mu.RLock()
	defer d.mu.RUnlock()
	return d.local[a]
}

// SetDownlink sets where the packets the stack sends go: f gets each IPv4
// packet synchronously, from the goroutine that sent it (which may be a
// goroutine inside Inject: an echo reply, a RST), and must not keep pkt
// after it returns (copy or encapsulate it). f is called concurrently; it
// must not block for long. nil drops the packets (Stats.NoDownlink).
func (d *DN) SetDownlink(f func(pkt []byte)) { d.link.SetOutput(f) }

// Inject delivers an uplink IPv4 packet (the inner packet of a G-PDU) to the
// stack; pkt is not kept. Packets the stack finds malformed are dropped and
// counted (Stats.Malformed); an ICMP echo request to an address other than
// the stack's own is dropped (Stats.PingsDropped).
func (d *DN) Inject(pkt []byte) error {
	if len(pkt) < header.IPv4MinimumSize || pkt[0]>>4 != 4 {
		return fmt.Errorf("dn: inject: %w", ErrNotIPv4)
	}
	if d.ctx.Err() != nil {
		return fmt.Errorf("dn: inject: %w", ErrClosed)
	}
	if d.foreignPing(pkt) {
		d.c.pingsDropped.Add(1)
		return nil
	}
	if !d.link.Inject(pkt) {
		return fmt.Errorf("dn: inject: %w", ErrClosed)
	}
	return nil
}

// foreignPing reports whether pkt is an ICMP echo request (RFC 792 type 8,
// first fragment) to an address the stack does not own. The stack, being
// promiscuous, would answer it itself.
func (d *DN) foreignPing(pkt []byte) bool {
	h := header.IPv4(pkt)
	hl := int(h.HeaderLength())
	if h.Protocol() != uint8(header.ICMPv4ProtocolNumber) || hl < header.IPv4MinimumSize ||
		len(pkt) <= hl || h.FragmentOffset() != 0 || header.ICMPv4Type(pkt[hl]) != header.ICMPv4Echo {
		return false
	}
	return !d.isLocal(netip.AddrFrom4(h.DestinationAddress().As4()))
}

// Close stops the services, the NAT flows and the stack, and waits for
// their goroutines. It is safe to call more than once.
func (d *DN) Close() error {
	d.once.Do(func() {
		d.stop()
		d.teardown()
	})
	<-d.done
	return nil
}

// Done is closed once the data network has stopped.
func (d *DN) Done() <-chan struct{} { return d.done }

func (d *DN) teardown() {
	d.st.Close() // aborts every endpoint: blocked reads and writes return
	d.g.closeWait()
	d.st.Wait()
	d.link.SetOutput(nil)
	close(d.done)
}

// Stats are the data network's counters.
type Stats struct {
	TCPFlows, UDPFlows   uint64 // NAT flows opened
	TCPActive, UDPActive int64  // NAT flows open now
	Refused              uint64 // flows refused: NAT off, destination not allowed, reserved or protected
	DialErrors           uint64 // host connections that could not be opened
	UplinkBytes          uint64 // NAT payload bytes from devices to hosts
	DownlinkBytes        uint64 // NAT payload bytes from hosts to devices
	PingsDropped         uint64 // ICMP echo requests to foreign addresses
	DNSQueries           uint64 // DNS queries answered
	DNSForwarded         uint64 // of those, resolved through the host resolver
	Malformed            uint64 // uplink packets the stack dropped as malformed
	NoDownlink           uint64 // packets sent while no downlink was set
}

type counters struct {
	tcpFlows, udpFlows, refused, dialErrors atomic.Uint64
	up, down, pingsDropped                  atomic.Uint64
	dnsQueries, dnsForwarded                atomic.Uint64
	tcpActive, udpActive                    atomic.Int64
}

// Stats returns the current counters.
func (d *DN) Stats() Stats {
	ip := d.st.Stats().IP
	return Stats{
		TCPFlows:      d.c.tcpFlows.Load(),
		UDPFlows:      d.c.udpFlows.Load(),
		TCPActive:     d.c.tcpActive.Load(),
		UDPActive:     d.c.udpActive.Load(),
		Refused:       d.c.refused.Load(),
		DialErrors:    d.c.dialErrors.Load(),
		UplinkBytes:   d.c.up.Load(),
		DownlinkBytes: d.c.down.Load(),
		PingsDropped:  d.c.pingsDropped.Load(),
		DNSQueries:    d.c.dnsQueries.Load(),
		DNSForwarded:  d.c.dnsForwarded.Load(),
		Malformed:     ip.MalformedPacketsReceived.Value() + ip.MalformedFragmentsReceived.Value(),
		NoDownlink:    d.link.Dropped(),
	}
}

// group runs the data network's goroutines: none starts after closeWait.
type group struct {
	mu     sync.Mutex
	closed bool
	wg     sync.WaitGroup
}

// enter counts the calling goroutine in, unless the group is closed.
func (g *group) enter() bool {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.closed {
		return false
	}
	g.wg.Add(1)
	return true
}

func (g *group) leave() { g.wg.Done() }

// Go runs f in a new goroutine of the group, unless it is closed.
func (g *group) Go(f func()) bool {
	if !g.enter() {
		return false
	}
	go func() {
		defer g.leave()
		f()
	}()
	return true
}

func (g *group) closeWait() {
	g.mu.Lock()
	g.closed = true
	g.mu.Unlock()
	g.wg.Wait()
}

func tcpAddr(a netip.Addr) tcpip.Address { return tcpip.AddrFrom4(a.As4()) }

func netAddr(a tcpip.Address) netip.Addr { return netip.AddrFrom4(a.As4()) }
