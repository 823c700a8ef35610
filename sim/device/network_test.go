package device

import (
	"context"
	"encoding/binary"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/net/dns/dnsmessage"
	"gvisor.dev/gvisor/pkg/buffer"
	"gvisor.dev/gvisor/pkg/tcpip"
	"gvisor.dev/gvisor/pkg/tcpip/adapters/gonet"
	"gvisor.dev/gvisor/pkg/tcpip/header"
	"gvisor.dev/gvisor/pkg/tcpip/link/channel"
	"gvisor.dev/gvisor/pkg/tcpip/network/ipv4"
	"gvisor.dev/gvisor/pkg/tcpip/stack"
	"gvisor.dev/gvisor/pkg/tcpip/transport/icmp"
	"gvisor.dev/gvisor/pkg/tcpip/transport/tcp"
	"gvisor.dev/gvisor/pkg/tcpip/transport/udp"
)

// The test's data network: a second gVisor stack standing for everything
// behind the gNB (user plane, DNS, servers). Its NIC's outbound packets go
// to the device stack's Deliver; the device's send functions feed its NIC.
var (
	dnsAddr    = netip.MustParseAddr("100.127.0.53")
	webAddr    = netip.MustParseAddr("100.127.0.10")
	closedAddr = netip.MustParseAddr("100.127.0.11") // on the network, nothing listens
	silentAddr = netip.MustParseAddr("100.127.0.99") // not on the network: packets vanish
)

// Ports of the network's servers at webAddr.
const (
	portEcho = 7  // TCP echo until EOF, then close; UDP echo of the source address
	portSink = 9  // TCP discard
	portGen  = 19 // TCP source: zeros until the client closes
	portHTTP = 80 // HTTP: the body is the client's address
)

// dnsZone is what the network's DNS server answers.
var dnsZone = map[string][]netip.Addr{
	"endorse.soracom.io.": {webAddr},
	"closed.example.":     {closedAddr},
	"big.example.":        {webAddr}, // truncated over UDP: TCP only
	"example.com.":        {webAddr}, // the name in httptest's certificate
}

type network struct {
	tb  testing.TB
	st  *stack.Stack
	ep  *channel.Endpoint
	dev *Stack

	mu         sync.Mutex
	sent       map[netip.Addr]int // uplink packets per UE
	bad        []string           // uplink packets with a foreign source
	dnsQueries []netip.Addr       // source addresses of DNS queries
	toUE       atomic.Uint64      // packets the network sent to the device
}

// newNetwork builds a device stack (cfg) and the network behind it.
func newNetwork(tb testing.TB, cfg Config) *network {
	tb.Helper()
	dev, err := New(cfg)
	if err != nil {
		tb.Fatal(err)
	}
	n := &network{tb: tb, dev: dev, sent: map[netip.Addr]int{}}
	n.st = stack.New(stack.Options{
		NetworkProtocols:   []stack.NetworkProtocolFactory{ipv4.NewProtocol},
		TransportProtocols: []stack.TransportProtocolFactory{tcp.NewProtocol, udp.NewProtocol, icmp.NewProtocol4},
	})
	sack := tcpip.TCPSACKEnabled(true)
	n.st.SetTransportProtocolOption(tcp.ProtocolNumber, &sack)
	n.ep = channel.New(4096, uint32(dev.cfg.MTU), "")
	if e := n.st.CreateNIC(1, n.ep); e != nil {
		tb.Fatal(e)
	}
	for _, a := range []netip.Addr{dnsAddr, webAddr, closedAddr} {
		if e := n.st.AddProtocolAddress(1, tcpip.ProtocolAddress{Protocol: ipv4.ProtocolNumber,
			AddressWithPrefix: tcpip.AddrFrom4(a.As4()).WithPrefix()}, stack.AddressProperties{}); e != nil {
			tb.Fatal(e)
		}
	}
	n.st.SetRouteTable([]tcpip.Route{{Destination: header.IPv4EmptySubnet, NIC: 1}})

	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Add(1)
	go func() { // downlink: the network's packets to the device
		defer wg.Done()
		for {
			pkt := n.ep.ReadContext(ctx)
			if pkt == nil {
				return
			}
			v := pkt.ToView()
			pkt.DecRef()
			n.toUE.Add(1)
			dev.Deliver(v.AsSlice()) // refusals are counted in dev.Stats
			v.Release()
		}
	}()
	servers := n.serve(ctx, &wg)
	tb.Cleanup(func() {
		cancel()
		for _, c := range servers {
			c.Close()
		}
		dev.Close()
		n.st.Close()
		n.ep.Close()
		wg.Wait()
		n.st.Wait()
	})
	return n
}

// addUE puts a UE on the device stack whose uplink feeds the network.
func (n *network) addUE(ue, dns netip.Addr) {
	n.tb.Helper()
	if err := n.dev.AddUE(ue, dns, n.sender(ue)); err != nil {
		n.tb.Fatal(err)
	}
}

// sender is UE ue's send function: it checks that the stack handed it
// only ue's packets, counts them and injects them into the network.
func (n *network) sender(ue netip.Addr) func([]byte) {
	return func(pkt []byte) {
		src := netip.AddrFrom4(header.IPv4(pkt).SourceAddress().As4())
		n.mu.Lock()
		n.sent[ue]++
		if src != ue {
			n.bad = append(n.bad, fmt.Sprintf("packet from %s given to UE %s", src, ue))
		}
		n.mu.Unlock()
		n.inject(pkt)
	}
}

func (n *network) inject(pkt []byte) {
	pb := stack.NewPacketBuffer(stack.PacketBufferOptions{Payload: buffer.MakeWithData(pkt)})
	n.ep.InjectInbound(ipv4.ProtocolNumber, pb)
	pb.DecRef()
}

func (n *network) sentBy(ue netip.Addr) int {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.sent[ue]
}

// checkDispatch fails the test if a UE was handed another's packet.
func (n *network) checkDispatch() {
	n.tb.Helper()
	n.mu.Lock()
	defer n.mu.Unlock()
	for _, b := range n.bad {
		n.tb.Error(b)
	}
}

func fullAddr(a netip.Addr, port uint16) tcpip.FullAddress {
	return tcpip.FullAddress{NIC: 1, Addr: tcpip.AddrFrom4(a.As4()), Port: port}
}

// serve starts the network's servers; it returns what to close at the end.
func (n *network) serve(ctx context.Context, wg *sync.WaitGroup) []io.Closer {
	tb := n.tb
	listen := func(a netip.Addr, port uint16) *gonet.TCPListener {
		l, err := gonet.ListenTCP(n.st, fullAddr(a, port), ipv4.ProtocolNumber)
		if err != nil {
			tb.Fatal(err)
		}
		return l
	}
	acceptLoop := func(l *gonet.TCPListener, h func(net.Conn)) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				c, err := l.Accept()
				if err != nil {
					return
				}
				wg.Add(1)
				go func() { defer wg.Done(); defer c.Close(); h(c) }()
			}
		}()
	}
	var closers []io.Closer

	web := listen(webAddr, portHTTP)
	hs := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, r.RemoteAddr)
	}), ReadHeaderTimeout: 10 * time.Second}
	wg.Add(1)
	go func() { defer wg.Done(); hs.Serve(web) }()
	closers = append(closers, hs)

	echo := listen(webAddr, portEcho)
	acceptLoop(echo, func(c net.Conn) {
		// Reads everything until the client's FIN, then answers it all:
		// only a half-close reaches the end of this.
		b, err := io.ReadAll(c)
		if err == nil {
			c.Write(b)
		}
	})
	sink := listen(webAddr, portSink)
	acceptLoop(sink, func(c net.Conn) { io.Copy(io.Discard, c) })
	gen := listen(webAddr, portGen)
	acceptLoop(gen, func(c net.Conn) {
		buf := make([]byte, 64<<10)
		for {
			if _, err := c.Write(buf); err != nil {
				return
			}
		}
	})
	closers = append(closers, echo, sink, gen)

	// UDP echo: answers each datagram with its source address.
	uecho, err := gonet.DialUDP(n.st, &tcpip.FullAddress{NIC: 1, Addr: tcpip.AddrFrom4(webAddr.As4()), Port: portEcho}, nil, ipv4.ProtocolNumber)
	if err != nil {
		tb.Fatal(err)
	}
	closers = append(closers, uecho)
	wg.Add(1)
	go func() {
		defer wg.Done()
		buf := make([]byte, 2048)
		for {
			_, from, err := uecho.ReadFrom(buf)
			if err != nil {
				return
			}
			uecho.WriteTo([]byte(from.String()), from)
		}
	}()

	// DNS over UDP and TCP (RFC 1035 4.2).
	udns, err := gonet.DialUDP(n.st, &tcpip.FullAddress{NIC: 1, Addr: tcpip.AddrFrom4(dnsAddr.As4()), Port: 53}, nil, ipv4.ProtocolNumber)
	if err != nil {
		tb.Fatal(err)
	}
	closers = append(closers, udns)
	wg.Add(1)
	go func() {
		defer wg.Done()
		buf := make([]byte, 2048)
		for {
			m, from, err := udns.ReadFrom(buf)
			if err != nil {
				return
			}
			if resp := n.answer(buf[:m], from, false); resp != nil {
				udns.WriteTo(resp, from)
			}
		}
	}()
	tdns := listen(dnsAddr, 53)
	closers = append(closers, tdns)
	acceptLoop(tdns, func(c net.Conn) {
		var l [2]byte
		if _, err := io.ReadFull(c, l[:]); err != nil {
			return
		}
		q := make([]byte, binary.BigEndian.Uint16(l[:]))
		if _, err := io.ReadFull(c, q); err != nil {
			return
		}
		if resp := n.answer(q, c.RemoteAddr(), true); resp != nil {
			c.Write(append(binary.BigEndian.AppendUint16(nil, uint16(len(resp))), resp...))
		}
	})
	return closers
}

// answer is the network's DNS server: dnsZone, "alias.example" as a CNAME
// of endorse.soracom.io, NXDOMAIN for the rest; big.example only over TCP.
func (n *network) answer(q []byte, from net.Addr, overTCP bool) []byte {
	var p dnsmessage.Parser
	h, err := p.Start(q)
	if err != nil {
		return nil
	}
	qu, err := p.Question()
	if err != nil {
		return nil
	}
	if ap, err := netip.ParseAddrPort(from.String()); err == nil {
		n.mu.Lock()
		n.dnsQueries = append(n.dnsQueries, ap.Addr())
		n.mu.Unlock()
	}
	rh := dnsmessage.Header{ID: h.ID, Response: true, Authoritative: true, RecursionDesired: h.RecursionDesired}
	name := strings.ToLower(qu.Name.String())
	target := name
	if name == "alias.example." {
		target = "endorse.soracom.io."
	}
	addrs, ok := dnsZone[target]
	switch {
	case !ok:
		rh.RCode = dnsmessage.RCodeNameError
	case name == "big.example." && !overTCP:
		rh.Truncated = true
		addrs = nil
	}
	b := dnsmessage.NewBuilder(nil, rh)
	b.StartQuestions()
	b.Question(qu)
	b.StartAnswers()
	if target != name && ok {
		b.CNAMEResource(dnsmessage.ResourceHeader{Name: qu.Name, Class: dnsmessage.ClassINET, TTL: 60},
			dnsmessage.CNAMEResource{CNAME: dnsmessage.MustNewName(target)})
	}
	if qu.Type == dnsmessage.TypeA {
		for _, a := range addrs {
			b.AResource(dnsmessage.ResourceHeader{Name: dnsmessage.MustNewName(target), Class: dnsmessage.ClassINET, TTL: 60},
				dnsmessage.AResource{A: a.As4()})
		}
	}
	resp, err := b.Finish()
	if err != nil {
		n.tb.Errorf("dns server: %v", err)
		return nil
	}
	return resp
}

// get fetches url as UE ue and returns the body.
func get(t testing.TB, c *http.Client, url string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	resp, err := c.Do(req)
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("GET %s: %s %q %v", url, resp.Status, b, err)
	}
	return string(b)
}

// hostOf is the address part of "a.b.c.d:port".
func hostOf(t testing.TB, s string) netip.Addr {
	t.Helper()
	ap, err := netip.ParseAddrPort(s)
	if err != nil {
		t.Fatalf("%q is not address:port: %v", s, err)
	}
	return ap.Addr()
}
