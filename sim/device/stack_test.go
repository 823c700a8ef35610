package device

import (
	"context"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"runtime"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"gvisor.dev/gvisor/pkg/tcpip/adapters/gonet"
	"gvisor.dev/gvisor/pkg/tcpip/network/ipv4"
)

var (
	ueA = netip.MustParseAddr("10.45.0.1")
	ueB = netip.MustParseAddr("10.45.0.2")
)

func ctxT(t testing.TB, d time.Duration) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	t.Cleanup(cancel)
	return ctx
}

// Each UE is seen by the network at its own address, over HTTP by IP and
// by name, and each is handed only its own packets.
func TestDialAsUE(t *testing.T) {
	n := newNetwork(t, Config{})
	n.addUE(ueA, dnsAddr)
	n.addUE(ueB, dnsAddr)
	for _, tc := range []struct {
		ue  netip.Addr
		url string
	}{
		{ueA, "http://100.127.0.10/"},
		{ueB, "http://100.127.0.10/"},
		{ueA, "http://endorse.soracom.io/"},
		{ueB, "http://endorse.soracom.io/token"},
		{ueB, "http://alias.example:80/"},
	} {
		if got := hostOf(t, get(t, n.dev.HTTPClient(tc.ue), tc.url)); got != tc.ue {
			t.Errorf("GET %s as %s: server saw %s", tc.url, tc.ue, got)
		}
	}
	if n.sentBy(ueA) == 0 || n.sentBy(ueB) == 0 {
		t.Errorf("uplink packets A %d B %d: want both > 0", n.sentBy(ueA), n.sentBy(ueB))
	}
	n.checkDispatch()
	if n.dev.HTTPClient(ueA) != n.dev.HTTPClient(ueA) {
		t.Error("HTTPClient: a new client per call, want the UE's own")
	}

	// UDP: the echo server answers with the source it saw.
	c, err := n.dev.Dial(ctxT(t, 10*time.Second), ueB, "udp", "100.127.0.10:7")
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(10 * time.Second))
	if _, err := c.Write([]byte("hi")); err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 64)
	m, err := c.Read(buf)
	if err != nil {
		t.Fatal(err)
	}
	if got := hostOf(t, string(buf[:m])); got != ueB {
		t.Errorf("UDP as B: server saw %s", got)
	}
	if la := c.LocalAddr().(*net.UDPAddr).AddrPort().Addr(); la != ueB {
		t.Errorf("UDP local address %s, want %s", la, ueB)
	}
}

func TestDialErrors(t *testing.T) {
	n := newNetwork(t, Config{DNSTimeout: 200 * time.Millisecond, DNSAttempts: 2})
	n.addUE(ueA, dnsAddr)
	n.addUE(ueB, netip.Addr{}) // a session that named no DNS server
	for _, tc := range []struct {
		name, network, addr string
		ue                  netip.Addr
		check               func(error) bool
	}{
		{"refused", "tcp", "100.127.0.11:80", ueA, func(err error) bool { return errors.Is(err, syscall.ECONNREFUSED) }},
		{"refused by name", "tcp", "closed.example:80", ueA, func(err error) bool { return errors.Is(err, syscall.ECONNREFUSED) }},
		{"nxdomain", "tcp", "nowhere.example:80", ueA, isNotFound},
		{"no dns server", "tcp", "endorse.soracom.io:80", ueB, func(err error) bool {
			var de *net.DNSError
			return errors.As(err, &de) && strings.Contains(de.Err, "no DNS server")
		}},
		{"unknown ue", "tcp", "100.127.0.10:80", netip.MustParseAddr("10.45.9.9"), func(err error) bool { return errors.Is(err, ErrUnknownUE) }},
		{"ipv6 ue", "tcp", "100.127.0.10:80", netip.MustParseAddr("2001:db8::1"), func(err error) bool { return errors.Is(err, ErrUnknownUE) }},
		{"ipv6 target", "tcp", "[2001:db8::1]:80", ueA, func(err error) bool { return err != nil && strings.Contains(err.Error(), "IPv4 only") }},
		{"network", "unix", "100.127.0.10:80", ueA, func(err error) bool { return err != nil && strings.Contains(err.Error(), "not supported") }},
		{"tcp6", "tcp6", "100.127.0.10:80", ueA, func(err error) bool { return err != nil && strings.Contains(err.Error(), "not supported") }},
		{"no port", "tcp", "100.127.0.10", ueA, func(err error) bool { return err != nil && strings.Contains(err.Error(), "missing port") }},
		{"named port", "tcp", "100.127.0.10:http", ueA, func(err error) bool { return err != nil && strings.Contains(err.Error(), "bad port") }},
		{"port 0", "tcp", "100.127.0.10:0", ueA, func(err error) bool { return err != nil && strings.Contains(err.Error(), "bad port") }},
		{"bad name", "tcp", "exa mple.com:80", ueA, isNotFound},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c, err := n.dev.Dial(ctxT(t, 10*time.Second), tc.ue, tc.network, tc.addr)
			if err == nil {
				c.Close()
				t.Fatal("dial succeeded")
			}
			if !tc.check(err) {
				t.Errorf("error %v (%T): not the expected kind", err, err)
			}
			var oe *net.OpError
			if !errors.As(err, &oe) {
				t.Errorf("error %T, want *net.OpError", err)
			}
		})
	}

	// A connect nobody answers ends with the caller's context.
	ctx := ctxT(t, 300*time.Millisecond)
	_, err := n.dev.Dial(ctx, ueA, "tcp", netip.AddrPortFrom(silentAddr, 80).String())
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("dial to a silent address: %v, want deadline exceeded", err)
	}
}

func isNotFound(err error) bool {
	var de *net.DNSError
	return errors.As(err, &de) && de.IsNotFound
}

func TestLookupHost(t *testing.T) {
	n := newNetwork(t, Config{DNSTimeout: 200 * time.Millisecond, DNSAttempts: 2})
	n.addUE(ueA, dnsAddr)
	n.addUE(ueB, silentAddr) // its DNS server never answers
	for _, tc := range []struct {
		host string
		want []netip.Addr
	}{
		{"endorse.soracom.io", []netip.Addr{webAddr}},
		{"ENDORSE.soracom.io.", []netip.Addr{webAddr}},
		{"alias.example", []netip.Addr{webAddr}}, // CNAME then A
		{"big.example", []netip.Addr{webAddr}},   // truncated over UDP, then TCP
		{"100.127.0.99", []netip.Addr{silentAddr}},
		{"::ffff:100.127.0.10", []netip.Addr{webAddr}},
	} {
		got, err := n.dev.LookupHost(ctxT(t, 10*time.Second), ueA, tc.host)
		if err != nil || fmt.Sprint(got) != fmt.Sprint(tc.want) {
			t.Errorf("LookupHost(%q) = %v, %v; want %v", tc.host, got, err, tc.want)
		}
	}
	n.mu.Lock()
	queries := append([]netip.Addr(nil), n.dnsQueries...)
	n.mu.Unlock()
	if len(queries) < 5 { // 4 names, big.example twice
		t.Errorf("DNS server saw %d queries, want 5", len(queries))
	}
	for _, q := range queries {
		if q != ueA {
			t.Errorf("DNS query from %s, want only %s", q, ueA)
		}
	}

	_, err := n.dev.LookupHost(ctxT(t, 10*time.Second), ueA, "nowhere.example")
	if !isNotFound(err) {
		t.Errorf("nxdomain: %v", err)
	}
	start := time.Now()
	_, err = n.dev.LookupHost(ctxT(t, 10*time.Second), ueB, "endorse.soracom.io")
	var de *net.DNSError
	if !errors.As(err, &de) || !de.IsTimeout || de.Server != "100.127.0.99:53" {
		t.Errorf("silent server: %#v", err)
	}
	if d := time.Since(start); d < 400*time.Millisecond {
		t.Errorf("silent server: gave up after %v, want 2 attempts of 200ms", d)
	}
	_, err = n.dev.LookupHost(ctxT(t, 10*time.Second), netip.MustParseAddr("10.0.0.9"), "endorse.soracom.io")
	if !errors.Is(err, ErrUnknownUE) {
		t.Errorf("unknown UE: %v", err)
	}
}

// The stack never carries one UE's packets to another inside the process:
// A's connection to B's address leaves through A's send function, and a
// socket bound to B never hears of it.
func TestUEsIsolated(t *testing.T) {
	n := newNetwork(t, Config{})
	n.addUE(ueA, dnsAddr)
	n.addUE(ueB, dnsAddr)
	l, err := gonet.ListenTCP(n.dev.st, fullAddr(ueB, 80), ipv4.ProtocolNumber)
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	accepted := make(chan net.Conn, 1)
	go func() {
		if c, err := l.Accept(); err == nil {
			accepted <- c
		}
	}()
	beforeA, beforeB := n.sentBy(ueA), n.sentBy(ueB)
	ctx := ctxT(t, 500*time.Millisecond)
	if c, err := n.dev.Dial(ctx, ueA, "tcp", netip.AddrPortFrom(ueB, 80).String()); err == nil {
		c.Close()
		t.Fatal("A reached B inside the stack")
	}
	select {
	case c := <-accepted:
		c.Close()
		t.Fatal("B's listener accepted A's connection")
	case <-time.After(100 * time.Millisecond):
	}
	if n.sentBy(ueA) == beforeA {
		t.Error("A's SYN did not leave through A's send function")
	}
	if n.sentBy(ueB) != beforeB {
		t.Error("B sent packets while A dialed it")
	}
	n.checkDispatch()

	// Downlink: only a UE's address is taken.
	pkt := udpPacket(webAddr, netip.MustParseAddr("10.45.0.3"), []byte("x"))
	if err := n.dev.Deliver(pkt); !errors.Is(err, ErrUnknownUE) {
		t.Errorf("Deliver to a foreign address: %v", err)
	}
	for _, bad := range [][]byte{nil, {0x45}, make([]byte, 40), append([]byte{0x60}, make([]byte, 39)...)} {
		if err := n.dev.Deliver(bad); err == nil {
			t.Errorf("Deliver(% x): accepted", bad)
		}
	}
	if d := n.dev.Stats().DownlinkDropped; d != 5 {
		t.Errorf("DownlinkDropped %d, want 5", d)
	}
}

// udpPacket is an IPv4/UDP packet with correct checksums.
func udpPacket(src, dst netip.Addr, payload []byte) []byte {
	b := make([]byte, 28+len(payload))
	b[0], b[8], b[9] = 0x45, 64, 17
	putU16(b[2:], uint16(len(b)))
	copy(b[12:], src.AsSlice())
	copy(b[16:], dst.AsSlice())
	putU16(b[10:], ^sum(b[:20], 0))
	putU16(b[20:], 4000)
	putU16(b[22:], 5000)
	putU16(b[24:], uint16(8+len(payload)))
	copy(b[28:], payload)
	ph := append(append(src.AsSlice(), dst.AsSlice()...), 0, 17, 0, 0)
	putU16(ph[10:], uint16(8+len(payload)))
	putU16(b[26:], ^sum(b[20:], uint32(sum(ph, 0))))
	return b
}

func putU16(b []byte, v uint16) { b[0], b[1] = byte(v>>8), byte(v) }

// sum is the RFC 1071 ones' complement sum.
func sum(b []byte, s uint32) uint16 {
	for i := 0; i+1 < len(b); i += 2 {
		s += uint32(b[i])<<8 | uint32(b[i+1])
	}
	if len(b)%2 == 1 {
		s += uint32(b[len(b)-1]) << 8
	}
	for s > 0xffff {
		s = s>>16 + s&0xffff
	}
	return uint16(s)
}

// A hand-made downlink datagram reaches the socket of the UE it is for
// and no other.
func TestDeliverDemux(t *testing.T) {
	n := newNetwork(t, Config{})
	n.addUE(ueA, dnsAddr)
	n.addUE(ueB, dnsAddr)
	bind := func(ue netip.Addr) *gonet.UDPConn {
		c, err := gonet.DialUDP(n.dev.st, ptr(fullAddr(ue, 5000)), nil, ipv4.ProtocolNumber)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { c.Close() })
		return c
	}
	a, b := bind(ueA), bind(ueB)
	if err := n.dev.Deliver(udpPacket(webAddr, ueB, []byte("for B"))); err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 16)
	b.SetReadDeadline(time.Now().Add(5 * time.Second))
	if m, _, err := b.ReadFrom(buf); err != nil || string(buf[:m]) != "for B" {
		t.Errorf("B read %q, %v", buf[:m], err)
	}
	a.SetReadDeadline(time.Now().Add(100 * time.Millisecond))
	if m, _, err := a.ReadFrom(buf); err == nil {
		t.Errorf("A read %q meant for B", buf[:m])
	}
}

func ptr[T any](v T) *T { return &v }

// Removing a UE ends its connections and stops its packets both ways;
// adding it back (a new PDU session) works again.
func TestRemoveUE(t *testing.T) {
	n := newNetwork(t, Config{})
	n.addUE(ueA, dnsAddr)
	n.addUE(ueB, dnsAddr)
	c, err := n.dev.Dial(ctxT(t, 10*time.Second), ueA, "tcp", "100.127.0.10:9")
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	readErr := make(chan error, 1)
	go func() { _, err := c.Read(make([]byte, 1)); readErr <- err }()
	client := n.dev.HTTPClient(ueA)
	get(t, client, "http://100.127.0.10/")

	if err := n.dev.RemoveUE(ueA); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-readErr:
		if err == nil {
			t.Error("read on a removed UE's connection: no error")
		}
	case <-time.After(5 * time.Second):
		t.Fatal("read on a removed UE's connection still blocked")
	}
	sent := n.sentBy(ueA)
	if _, err := c.Write([]byte("after removal")); err == nil {
		t.Error("write on a removed UE's connection: no error")
	}
	if _, err := n.dev.Dial(ctxT(t, time.Second), ueA, "tcp", "100.127.0.10:80"); !errors.Is(err, ErrUnknownUE) {
		t.Errorf("dial as removed UE: %v", err)
	}
	if _, err := client.Get("http://100.127.0.10/"); !errors.Is(err, ErrUnknownUE) {
		t.Errorf("HTTP as removed UE: %v", err)
	}
	if err := n.dev.Deliver(udpPacket(webAddr, ueA, []byte("x"))); !errors.Is(err, ErrUnknownUE) {
		t.Errorf("Deliver to removed UE: %v", err)
	}
	time.Sleep(50 * time.Millisecond)
	if got := n.sentBy(ueA); got != sent {
		t.Errorf("removed UE sent %d packets", got-sent)
	}
	if err := n.dev.RemoveUE(ueA); !errors.Is(err, ErrUnknownUE) {
		t.Errorf("second RemoveUE: %v", err)
	}
	if got := hostOf(t, get(t, n.dev.HTTPClient(ueB), "http://100.127.0.10/")); got != ueB {
		t.Errorf("B after A's removal: %s", got)
	}

	n.addUE(ueA, dnsAddr)
	if got := hostOf(t, get(t, n.dev.HTTPClient(ueA), "http://endorse.soracom.io/")); got != ueA {
		t.Errorf("A re-added: server saw %s", got)
	}
	n.checkDispatch()
	if n.dev.UEs() != 2 || !n.dev.HasUE(ueA) {
		t.Errorf("UEs %d HasUE(A) %v", n.dev.UEs(), n.dev.HasUE(ueA))
	}
}

func TestAddUEErrors(t *testing.T) {
	s, err := New(Config{})
	if err != nil {
		t.Fatal(err)
	}
	send := func([]byte) {}
	if err := s.AddUE(ueA, dnsAddr, send); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name     string
		ue, dns  netip.Addr
		send     func([]byte)
		contains string
	}{
		{"duplicate", ueA, dnsAddr, send, "already in use"},
		{"ipv6", netip.MustParseAddr("2001:db8::1"), dnsAddr, send, "not an IPv4"},
		{"invalid", netip.Addr{}, dnsAddr, send, "not an IPv4"},
		{"multicast", netip.MustParseAddr("224.0.0.1"), dnsAddr, send, "unicast"},
		{"unspecified", netip.MustParseAddr("0.0.0.0"), dnsAddr, send, "unicast"},
		{"loopback", netip.MustParseAddr("127.0.0.1"), dnsAddr, send, "unicast"},
		{"ipv6 dns", ueB, netip.MustParseAddr("::1"), send, "dns server"},
		{"nil send", ueB, dnsAddr, nil, "nil send"},
	} {
		err := s.AddUE(tc.ue, tc.dns, tc.send)
		if err == nil || !strings.Contains(err.Error(), tc.contains) {
			t.Errorf("%s: %v, want %q", tc.name, err, tc.contains)
		}
	}
	if s.UEs() != 1 {
		t.Errorf("UEs %d, want 1", s.UEs())
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if err := s.AddUE(ueB, dnsAddr, send); !errors.Is(err, ErrClosed) {
		t.Errorf("AddUE after Close: %v", err)
	}
	if err := s.Close(); err != nil {
		t.Errorf("second Close: %v", err)
	}
	for _, mtu := range []int{-1, 575, 65536} {
		if _, err := New(Config{MTU: mtu}); err == nil {
			t.Errorf("MTU %d accepted", mtu)
		}
	}
}

// One stack holds a thousand UEs; each is seen at its own address.
func TestThousandUEs(t *testing.T) {
	n := newNetwork(t, Config{})
	const count = 1000
	ues := make([]netip.Addr, count)
	for i := range ues {
		ues[i] = netip.AddrFrom4([4]byte{10, 46, byte(i >> 8), byte(i&0xff) + 1})
		n.addUE(ues[i], dnsAddr)
	}
	if n.dev.UEs() != count {
		t.Fatalf("UEs %d", n.dev.UEs())
	}
	sem := make(chan struct{}, 16)
	var wg sync.WaitGroup
	errs := make(chan error, count)
	for _, ue := range ues {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			errs <- udpEcho(n.dev, ue)
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Error(err)
		}
	}
	n.checkDispatch()
	for _, ue := range ues[:count/2] {
		if err := n.dev.RemoveUE(ue); err != nil {
			t.Fatal(err)
		}
	}
	if n.dev.UEs() != count/2 {
		t.Errorf("UEs after removing half: %d", n.dev.UEs())
	}
	if err := udpEcho(n.dev, ues[count-1]); err != nil {
		t.Error(err)
	}
}

// udpEcho asks the network's UDP echo server who ue is, retrying a lost
// datagram.
func udpEcho(s *Stack, ue netip.Addr) error {
	c, err := s.Dial(context.Background(), ue, "udp", "100.127.0.10:7")
	if err != nil {
		return err
	}
	defer c.Close()
	buf := make([]byte, 64)
	for range 5 {
		if _, err := c.Write([]byte("who")); err != nil {
			return err
		}
		c.SetReadDeadline(time.Now().Add(2 * time.Second))
		m, err := c.Read(buf)
		if err != nil {
			continue
		}
		ap, err := netip.ParseAddrPort(string(buf[:m]))
		if err != nil || ap.Addr() != ue {
			return fmt.Errorf("UE %s: echo server saw %q", ue, buf[:m])
		}
		return nil
	}
	return fmt.Errorf("UE %s: no echo", ue)
}

func TestTCPErrorMapping(t *testing.T) {
	var _ io.Closer = (*tcpConn)(nil)
	for _, tc := range []struct {
		err  error
		want byte
	}{
		{&net.OpError{Err: &stackError{"connection was refused", syscall.ECONNREFUSED}}, repConnectionRefused},
		{&net.OpError{Err: &stackError{"no route to host", syscall.EHOSTUNREACH}}, repHostUnreachable},
		{&net.OpError{Err: &stackError{"network is unreachable", syscall.ENETUNREACH}}, repNetworkUnreachable},
		{&net.OpError{Err: &stackError{"connection timed out", syscall.ETIMEDOUT}}, repHostUnreachable},
		{&net.OpError{Err: &net.DNSError{Err: "no such host", IsNotFound: true}}, repHostUnreachable},
		{&net.OpError{Err: fmt.Errorf("x: %w", ErrUnknownUE)}, repNetworkUnreachable},
		{&net.OpError{Err: context.DeadlineExceeded}, repHostUnreachable},
		{&net.OpError{Err: fmt.Errorf("x: %w", syscall.EAFNOSUPPORT)}, repAddressTypeNotSupported},
		{errors.New("something else"), repGeneralFailure},
	} {
		if got := replyCode(tc.err); got != tc.want {
			t.Errorf("replyCode(%v) = %d, want %d", tc.err, got, tc.want)
		}
	}
}

// A UE answers ping (RFC 792) from within Deliver, through its own send
// function: the reply's source is the UE.
func TestEchoReply(t *testing.T) {
	s, err := New(Config{})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	got := make(chan []byte, 4)
	capture := func(pkt []byte) { got <- append([]byte(nil), pkt...) }
	if err := s.AddUE(ueA, dnsAddr, capture); err != nil {
		t.Fatal(err)
	}
	if err := s.AddUE(ueB, dnsAddr, func([]byte) { t.Error("B sent a packet") }); err != nil {
		t.Fatal(err)
	}
	req := make([]byte, 20+8+4)
	req[0], req[8], req[9] = 0x45, 64, 1
	putU16(req[2:], uint16(len(req)))
	copy(req[12:], webAddr.AsSlice())
	copy(req[16:], ueA.AsSlice())
	putU16(req[10:], ^sum(req[:20], 0))
	req[20] = 8                         // echo request
	putU16(req[24:], 0x4242)            // identifier
	putU16(req[26:], 7)                 // sequence
	copy(req[28:], "ping")              // data
	putU16(req[22:], ^sum(req[20:], 0)) // ICMP checksum
	if err := s.Deliver(req); err != nil {
		t.Fatal(err)
	}
	select {
	case p := <-got:
		if len(p) != len(req) || p[9] != 1 || p[20] != 0 || string(p[24:]) != string(req[24:]) {
			t.Fatalf("reply % x", p)
		}
		if src, dst := netip.AddrFrom4([4]byte(p[12:16])), netip.AddrFrom4([4]byte(p[16:20])); src != ueA || dst != webAddr {
			t.Errorf("reply %s -> %s", src, dst)
		}
		if sum(p[:20], 0) != 0xffff || sum(p[20:], 0) != 0xffff {
			t.Error("reply checksums do not verify")
		}
	case <-time.After(5 * time.Second):
		t.Fatal("no echo reply")
	}
	// A corrupt checksum is dropped by the stack, not answered.
	req[22] ^= 0xff
	s.Deliver(req)
	select {
	case p := <-got:
		t.Errorf("answered a corrupt request: % x", p)
	case <-time.After(50 * time.Millisecond):
	}
	if st := s.Stats(); st.Uplink != 1 || st.Downlink != 2 {
		t.Errorf("stats %+v", st)
	}
}

// Close stops everything the stack and its UEs started: the network's
// stack, servers and the UEs' HTTP keep-alive connections included.
func TestCloseLeavesNoGoroutines(t *testing.T) {
	before := runtime.NumGoroutine()
	t.Run("use", func(t *testing.T) {
		n := newNetwork(t, Config{})
		n.addUE(ueA, dnsAddr)
		get(t, n.dev.HTTPClient(ueA), "http://endorse.soracom.io/")
		c, err := n.dev.Dial(ctxT(t, 5*time.Second), ueA, "tcp", "100.127.0.10:9")
		if err != nil {
			t.Fatal(err)
		}
		c.Write([]byte("left open"))
	})
	deadline := time.Now().Add(5 * time.Second)
	for runtime.NumGoroutine() > before && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	if after := runtime.NumGoroutine(); after > before {
		buf := make([]byte, 1<<16)
		t.Errorf("%d goroutines before, %d after:\n%s", before, after, buf[:runtime.Stack(buf, true)])
	}
}

// HTTPS as a UE: the client trusts Config.RootCAs (httptest's certificate
// names example.com, which the network's DNS maps to its web server).
func TestHTTPSWithRootCAs(t *testing.T) {
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, r.RemoteAddr)
	}))
	pool := x509.NewCertPool()
	n := newNetwork(t, Config{RootCAs: pool})
	l, err := gonet.ListenTCP(n.st, fullAddr(webAddr, 443), ipv4.ProtocolNumber)
	if err != nil {
		t.Fatal(err)
	}
	srv.Listener.Close()
	srv.Listener = l
	srv.StartTLS()
	defer srv.Close()
	pool.AddCert(srv.Certificate())
	n.addUE(ueA, dnsAddr)
	if got := hostOf(t, get(t, n.dev.HTTPClient(ueA), "https://example.com/")); got != ueA {
		t.Errorf("HTTPS as A: server saw %s", got)
	}

	// A stack without that root refuses the server.
	n2 := newNetwork(t, Config{})
	n2.addUE(ueA, dnsAddr)
	l2, err := gonet.ListenTCP(n2.st, fullAddr(webAddr, 443), ipv4.ProtocolNumber)
	if err != nil {
		t.Fatal(err)
	}
	srv2 := httptest.NewUnstartedServer(srv.Config.Handler)
	srv2.Listener.Close()
	srv2.Listener = l2
	srv2.StartTLS()
	defer srv2.Close()
	var ua x509.UnknownAuthorityError
	if _, err := n2.dev.HTTPClient(ueA).Get("https://example.com/"); !errors.As(err, &ua) {
		t.Errorf("untrusted server: %v", err)
	}
}
