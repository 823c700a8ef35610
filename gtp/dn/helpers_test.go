package dn

import (
	"context"
	"errors"
	"fmt"
	"github.com/simgate/simgate/internal/iplink"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"strings"
	"sync"
	"testing"
	"time"

	"gvisor.dev/gvisor/pkg/tcpip"
	"gvisor.dev/gvisor/pkg/tcpip/adapters/gonet"
	"gvisor.dev/gvisor/pkg/tcpip/header"
	"gvisor.dev/gvisor/pkg/tcpip/network/ipv4"
	"gvisor.dev/gvisor/pkg/tcpip/stack"
	"gvisor.dev/gvisor/pkg/tcpip/transport/icmp"
	"gvisor.dev/gvisor/pkg/tcpip/transport/tcp"
	"gvisor.dev/gvisor/pkg/tcpip/transport/udp"
	"gvisor.dev/gvisor/pkg/waiter"
)

// ueAddr is the test device's PDU session address.
var ueAddr = netip.MustParseAddr("100.64.0.5")

// ue is "the UE side" of the tests: a second gVisor stack with one NIC
// whose outbound packets go to dn.Inject and whose inbound packets are the
// data network's downlink, as the UPF and the GTP-U tunnel would carry them.
type ue struct {
	st   *stack.Stack
	link *iplink.Link
	addr netip.Addr
	dn   *DN
}

func newUE(tb testing.TB, d *DN, addr netip.Addr) *ue {
	tb.Helper()
	return newUEs(tb, d, addr)[0]
}

// newUEs attaches devices at addrs; the downlink goes to the device whose
// address the packet is for, as the UPF would route it by session.
func newUEs(tb testing.TB, d *DN, addrs ...netip.Addr) []*ue {
	tb.Helper()
	links := map[netip.Addr]*iplink.Link{}
	var ues []*ue
	for _, addr := range addrs {
		st := stack.New(stack.Options{
			NetworkProtocols:   []stack.NetworkProtocolFactory{ipv4.NewProtocol},
			TransportProtocols: []stack.TransportProtocolFactory{tcp.NewProtocolCUBIC, udp.NewProtocol, icmp.NewProtocol4},
		})
		l := iplink.New(d.s.mtu)
		if err := st.CreateNIC(1, l); err != nil {
			tb.Fatalf("ue: create NIC: %s", err)
		}
		pa := tcpip.ProtocolAddress{Protocol: ipv4.ProtocolNumber, AddressWithPrefix: tcpAddr(addr).WithPrefix()}
		if err := st.AddProtocolAddress(1, pa, stack.AddressProperties{}); err != nil {
			tb.Fatalf("ue: address: %s", err)
		}
		st.SetRouteTable([]tcpip.Route{{Destination: header.IPv4EmptySubnet, NIC: 1}})
		for _, opt := range []tcpip.SettableTransportProtocolOption{
			&tcpip.TCPReceiveBufferSizeRangeOption{Min: tcp.MinBufferSize, Default: tcpBufDefault, Max: tcpBufMax},
			&tcpip.TCPSendBufferSizeRangeOption{Min: tcp.MinBufferSize, Default: tcpBufDefault, Max: tcpBufMax},
		} {
			if err := st.SetTransportProtocolOption(tcp.ProtocolNumber, opt); err != nil {
				tb.Fatalf("ue: %s", err)
			}
		}
		l.SetOutput(func(p []byte) { _ = d.Inject(p) })
		links[addr] = l
		ues = append(ues, &ue{st: st, link: l, addr: addr, dn: d})
		tb.Cleanup(st.Destroy)
	}
	d.SetDownlink(func(p []byte) {
		if l := links[netip.AddrFrom4([4]byte(p[16:20]))]; l != nil {
			l.Inject(p)
		}
	})
	tb.Cleanup(func() { d.SetDownlink(nil) })
	return ues
}

func fullAddr(ap netip.AddrPort) tcpip.FullAddress {
	return tcpip.FullAddress{NIC: 1, Addr: tcpAddr(ap.Addr()), Port: ap.Port()}
}

// dialTCP opens a TCP connection from the device.
func (u *ue) dialTCP(ctx context.Context, to netip.AddrPort) (*gonet.TCPConn, error) {
	return gonet.DialContextTCP(ctx, u.st, fullAddr(to), ipv4.ProtocolNumber)
}

// dialUDP opens a connected UDP socket on the device.
func (u *ue) dialUDP(to netip.AddrPort) (*gonet.UDPConn, error) {
	fa := fullAddr(to)
	return gonet.DialUDP(u.st, nil, &fa, ipv4.ProtocolNumber)
}

// dial is a DialContext for net.Resolver and http.Transport on the device:
// names are resolved with the device's resolver (the in-network DNS).
func (u *ue) dial(ctx context.Context, network, address string) (net.Conn, error) {
	host, port, err := net.SplitHostPort(address)
	if err != nil {
		return nil, err
	}
	a, err := netip.ParseAddr(host)
	if err != nil {
		addrs, err := u.resolver().LookupNetIP(ctx, "ip4", host)
		if err != nil {
			return nil, err
		}
		a = addrs[0]
	}
	ap, err := netip.ParseAddrPort(net.JoinHostPort(a.String(), port))
	if err != nil {
		return nil, err
	}
	switch network {
	case "tcp", "tcp4":
		return u.dialTCP(ctx, ap)
	case "udp", "udp4":
		return u.dialUDP(ap)
	}
	return nil, fmt.Errorf("ue: network %s", network)
}

// resolver is the device's stub resolver, pointed at the data network's
// DNS address whatever address it is asked to use.
func (u *ue) resolver() *net.Resolver {
	dnsAddr := netip.AddrPortFrom(u.dn.s.dns, DNSPort)
	return &net.Resolver{PreferGo: true, Dial: func(ctx context.Context, network, _ string) (net.Conn, error) {
		if strings.HasPrefix(network, "tcp") {
			return u.dialTCP(ctx, dnsAddr)
		}
		return u.dialUDP(dnsAddr)
	}}
}

// httpClient is an HTTP client on the device.
func (u *ue) httpClient() *http.Client {
	return &http.Client{Transport: &http.Transport{DialContext: u.dial}, Timeout: 10 * time.Second}
}

// ping sends one ICMP echo request from the device to dst and waits up to
// wait for the reply.
func (u *ue) ping(dst netip.Addr, wait time.Duration) error {
	var wq waiter.Queue
	ep, err := u.st.NewEndpoint(icmp.ProtocolNumber4, ipv4.ProtocolNumber, &wq)
	if err != nil {
		return fmt.Errorf("ping endpoint: %s", err)
	}
	defer ep.Close()
	if err := ep.Connect(tcpip.FullAddress{NIC: 1, Addr: tcpAddr(dst)}); err != nil {
		return fmt.Errorf("ping connect: %s", err)
	}
	req := make([]byte, header.ICMPv4MinimumSize+4)
	header.ICMPv4(req).SetType(header.ICMPv4Echo)
	copy(req[header.ICMPv4MinimumSize:], "ping")
	var r strings.Reader
	r.Reset(string(req))
	if _, err := ep.Write(&r, tcpip.WriteOptions{}); err != nil {
		return fmt.Errorf("ping write: %s", err)
	}
	entry, ch := waiter.NewChannelEntry(waiter.ReadableEvents)
	wq.EventRegister(&entry)
	defer wq.EventUnregister(&entry)
	deadline := time.After(wait)
	for {
		var buf [64]byte
		w := tcpip.SliceWriter(buf[:])
		res, err := ep.Read(&w, tcpip.ReadOptions{})
		if err == nil {
			if res.Count < header.ICMPv4MinimumSize || header.ICMPv4(buf[:]).Type() != header.ICMPv4EchoReply {
				return fmt.Errorf("ping: not an echo reply: % x", buf[:res.Count])
			}
			return nil
		}
		if _, ok := err.(*tcpip.ErrWouldBlock); !ok {
			return fmt.Errorf("ping read: %s", err)
		}
		select {
		case <-ch:
		case <-deadline:
			return errNoReply
		}
	}
}

var errNoReply = errors.New("no echo reply")

// startDN starts a data network for a test; it closes with the test.
func startDN(tb testing.TB, cfg Config, opts ...Option) *DN {
	tb.Helper()
	d, err := Start(context.Background(), cfg, append([]Option{withQuietLog()}, opts...)...)
	if err != nil {
		tb.Fatalf("Start: %v", err)
	}
	tb.Cleanup(func() { d.Close() })
	return d
}

func withQuietLog() Option { return WithLogger(slog.New(slog.DiscardHandler)) }

// testConfig is DefaultConfig with the NAT on and a short UDP idle time.
func testConfig() Config {
	c := DefaultConfig()
	c.UDPIdleTimeout = time.Second
	c.DialTimeout = 2 * time.Second
	return c
}

// echoTCP is a loopback TCP server that echoes each connection until the
// client half-closes, then closes. It reports the remote address of every
// connection on conns.
type echoTCP struct {
	ln    net.Listener
	conns chan net.Addr
	wg    sync.WaitGroup
}

func newEchoTCP(tb testing.TB) *echoTCP {
	tb.Helper()
	ln, err := net.Listen("tcp4", "127.0.0.1:0")
	if err != nil {
		tb.Fatal(err)
	}
	e := &echoTCP{ln: ln, conns: make(chan net.Addr, 16)}
	e.wg.Go(func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			select {
			case e.conns <- c.RemoteAddr():
			default:
			}
			e.wg.Go(func() {
				defer c.Close()
				_, _ = io.Copy(c, c)
			})
		}
	})
	tb.Cleanup(func() { ln.Close(); e.wg.Wait() })
	return e
}

func (e *echoTCP) addr() netip.AddrPort { return e.ln.Addr().(*net.TCPAddr).AddrPort() }

// echoUDP is a loopback UDP server that echoes each datagram.
func newEchoUDP(tb testing.TB) *net.UDPConn {
	tb.Helper()
	c, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		tb.Fatal(err)
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		buf := make([]byte, 65535)
		for {
			n, from, err := c.ReadFromUDPAddrPort(buf)
			if err != nil {
				if errors.Is(err, net.ErrClosed) {
					return
				}
				continue
			}
			_, _ = c.WriteToUDPAddrPort(buf[:n], from)
		}
	}()
	tb.Cleanup(func() { c.Close(); <-done })
	return c
}

// mapDialer is a NAT dialer that sends every destination to one loopback
// address and records what it was asked for.
type mapDialer struct {
	mu     sync.Mutex
	to     map[string]string // network -> loopback address
	asked  []string
	reject error
}

func (m *mapDialer) dial(ctx context.Context, network, address string) (net.Conn, error) {
	m.mu.Lock()
	m.asked = append(m.asked, network+" "+address)
	to, reject := m.to[network], m.reject
	m.mu.Unlock()
	if reject != nil {
		return nil, reject
	}
	var d net.Dialer
	return d.DialContext(ctx, network, to)
}

func (m *mapDialer) calls() []string {
	m.mu.Lock()
	defer m.mu.Unlock()
	return append([]string(nil), m.asked...)
}

// eventually polls cond until it holds or 10 s pass.
func eventually(tb testing.TB, what string, cond func() bool) {
	tb.Helper()
	for end := time.Now().Add(10 * time.Second); time.Now().Before(end); time.Sleep(5 * time.Millisecond) {
		if cond() {
			return
		}
	}
	tb.Fatalf("timed out waiting for %s", what)
}
