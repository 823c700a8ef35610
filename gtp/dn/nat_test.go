package dn

import (
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"gvisor.dev/gvisor/pkg/tcpip/adapters/gonet"
	"gvisor.dev/gvisor/pkg/tcpip/network/ipv4"
)

// TestNATTCPHostAlias: the device reaches a loopback server through
// host_alias with the real dialer; bytes both ways, the device's half-close
// passed on, the server's close passed back.
func TestNATTCPHostAlias(t *testing.T) {
	srv := newEchoTCP(t)
	d := startDN(t, testConfig())
	u := newUE(t, d, ueAddr)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()

	to := netip.AddrPortFrom(netip.MustParseAddr(DefaultHostAlias), srv.addr().Port())
	c, err := u.dialTCP(ctx, to)
	if err != nil {
		t.Fatalf("dial %s: %v", to, err)
	}
	defer c.Close()
	if got := c.RemoteAddr().String(); got != to.String() {
		t.Errorf("device sees remote %s, want %s", got, to)
	}
	payload := make([]byte, 3<<20)
	rand.Read(payload)
	go func() {
		_, _ = c.Write(payload)
		_ = c.CloseWrite()
	}()
	got, err := io.ReadAll(c)
	if err != nil {
		t.Fatalf("read echo: %v", err)
	}
	if !bytes.Equal(got, payload) {
		t.Fatalf("echo: got %d bytes, want the %d sent", len(got), len(payload))
	}
	select {
	case from := <-srv.conns:
		if a := from.(*net.TCPAddr).AddrPort().Addr(); !a.IsLoopback() {
			t.Errorf("server saw %s, want a loopback source", a)
		}
	default:
		t.Error("server saw no connection")
	}
	eventually(t, "flow closed", func() bool { return d.Stats().TCPActive == 0 })
	st := d.Stats()
	if st.TCPFlows != 1 || st.UplinkBytes != uint64(len(payload)) || st.DownlinkBytes != uint64(len(payload)) {
		t.Errorf("stats %+v: want 1 flow, %d bytes each way", st, len(payload))
	}
}

// TestNATDialer: the NAT dials the device's real destination with the
// injected dialer.
func TestNATDialer(t *testing.T) {
	srv := newEchoTCP(t)
	usrv := newEchoUDP(t)
	md := &mapDialer{to: map[string]string{"tcp": srv.addr().String(), "udp": usrv.LocalAddr().String()}}
	d := startDN(t, testConfig(), WithDialer(md.dial))
	u := newUE(t, d, ueAddr)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()

	dst := netip.MustParseAddrPort("198.51.100.7:8080")
	c, err := u.dialTCP(ctx, dst)
	if err != nil {
		t.Fatalf("dial: %v", err)
	}
	if _, err := c.Write([]byte("hello")); err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 5)
	if _, err := io.ReadFull(c, buf); err != nil || string(buf) != "hello" {
		t.Fatalf("echo %q, %v", buf, err)
	}
	c.Close()

	uc, err := u.dialUDP(netip.MustParseAddrPort("198.51.100.8:5000"))
	if err != nil {
		t.Fatal(err)
	}
	defer uc.Close()
	if err := udpEcho(uc, "datagram"); err != nil {
		t.Fatal(err)
	}
	want := []string{"tcp 198.51.100.7:8080", "udp 198.51.100.8:5000"}
	if got := md.calls(); !slices.Equal(got, want) {
		t.Errorf("dialer asked for %q, want %q", got, want)
	}
}

// udpEcho sends msg on c and waits for it to come back.
func udpEcho(c net.Conn, msg string) error {
	if _, err := c.Write([]byte(msg)); err != nil {
		return err
	}
	_ = c.SetReadDeadline(time.Now().Add(5 * time.Second))
	buf := make([]byte, 65535)
	n, err := c.Read(buf)
	if err != nil {
		return err
	}
	if string(buf[:n]) != msg {
		return fmt.Errorf("echo of %d bytes %.20q, want %d bytes %.20q", n, buf[:n], len(msg), msg)
	}
	return nil
}

// TestNATUDP: a UDP flow through host_alias, answered from the address the
// device sent to, closed after udp_idle_timeout.
func TestNATUDP(t *testing.T) {
	usrv := newEchoUDP(t)
	d := startDN(t, testConfig())
	u := newUE(t, d, ueAddr)
	to := netip.AddrPortFrom(netip.MustParseAddr(DefaultHostAlias), uint16(usrv.LocalAddr().(*net.UDPAddr).Port))
	c, err := u.dialUDP(to)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	for i, msg := range []string{"one", "two", strings.Repeat("x", 1400), strings.Repeat("y", 9000)} {
		if err := udpEcho(c, msg); err != nil {
			t.Fatalf("datagram %d: %v", i, err)
		}
	}
	st := d.Stats()
	if st.UDPFlows != 1 || st.UDPActive != 1 {
		t.Fatalf("stats %+v: want one open UDP flow", st)
	}
	// Idle for udp_idle_timeout (1 s): the flow goes; the next datagram
	// opens a new one.
	eventually(t, "idle flow closed", func() bool { return d.Stats().UDPActive == 0 })
	if err := udpEcho(c, "again"); err != nil {
		t.Fatal(err)
	}
	if st := d.Stats(); st.UDPFlows != 2 {
		t.Errorf("UDPFlows %d after idle, want 2", st.UDPFlows)
	}
}

// TestNATRefused: the policy. Refused TCP gets a RST (connection refused),
// refused UDP an ICMP port unreachable; the dialer is never asked.
func TestNATRefused(t *testing.T) {
	srv := newEchoTCP(t)
	usrv := newEchoUDP(t)
	alias := netip.MustParseAddr(DefaultHostAlias)
	aliasTCP := netip.AddrPortFrom(alias, srv.addr().Port())
	tests := []struct {
		name   string
		cfg    func(*Config)
		dst    netip.AddrPort
		udp    bool
		reject error // dialer fails
		ok     bool
	}{
		{name: "NAT off", cfg: func(c *Config) { c.NAT.Enabled = false }, dst: netip.MustParseAddrPort("198.51.100.7:80")},
		{name: "NAT off udp", cfg: func(c *Config) { c.NAT.Enabled = false }, dst: netip.MustParseAddrPort("198.51.100.7:53"), udp: true},
		{name: "not allowed", cfg: func(c *Config) { c.NAT.Allow = []string{"10.0.0.0/8"} }, dst: netip.MustParseAddrPort("198.51.100.7:80")},
		{name: "allowed", cfg: func(c *Config) { c.NAT.Allow = []string{"10.0.0.0/8"} }, dst: netip.MustParseAddrPort("10.1.2.3:80"), ok: true},
		{name: "allowed udp", cfg: func(c *Config) { c.NAT.Allow = []string{"10.1.2.3"} }, dst: netip.MustParseAddrPort("10.1.2.3:53"), udp: true, ok: true},
		{name: "not allowed udp", cfg: func(c *Config) { c.NAT.Allow = []string{"10.1.2.3"} }, dst: netip.MustParseAddrPort("10.1.2.4:53"), udp: true},
		{name: "reserved", dst: netip.MustParseAddrPort("100.127.5.5:80")},
		{name: "service address, other port", dst: netip.MustParseAddrPort(DefaultEndorseAddr + ":22")},
		{name: "dns address, other udp port", dst: netip.MustParseAddrPort(DefaultDNSAddr + ":5353"), udp: true},
		{name: "link-local", dst: netip.MustParseAddrPort("169.254.169.254:80")},
		{name: "link-local allowed", cfg: func(c *Config) { c.NAT.Allow = []string{"169.254.169.254"} }, dst: netip.MustParseAddrPort("169.254.169.254:80"), ok: true},
		{name: "protected", cfg: func(c *Config) { c.NAT.Protect = []string{"0.0.0.0:" + itoa(srv.addr().Port())} }, dst: aliasTCP},
		{name: "protected exact", cfg: func(c *Config) { c.NAT.Protect = []string{srv.addr().String()} }, dst: aliasTCP},
		{name: "alias not allowed", cfg: func(c *Config) { c.NAT.Allow = []string{"10.0.0.0/8"} }, dst: aliasTCP},
		{name: "dial fails", dst: netip.MustParseAddrPort("198.51.100.7:80"), reject: syscall.ECONNREFUSED},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			cfg := testConfig()
			if tc.cfg != nil {
				tc.cfg(&cfg)
			}
			md := &mapDialer{to: map[string]string{"tcp": srv.addr().String(), "udp": usrv.LocalAddr().String()}, reject: tc.reject}
			var opts []Option
			if tc.dst.Addr() != alias {
				opts = append(opts, WithDialer(md.dial))
			}
			d := startDN(t, cfg, opts...)
			u := newUE(t, d, ueAddr)
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			var err error
			if tc.udp {
				var c net.Conn
				if c, err = u.dialUDP(tc.dst); err != nil {
					t.Fatal(err)
				}
				defer c.Close()
				err = udpEcho(c, "x")
			} else {
				var c net.Conn
				if c, err = u.dialTCP(ctx, tc.dst); err == nil {
					defer c.Close()
				}
			}
			st := d.Stats()
			if tc.ok {
				if err != nil {
					t.Fatalf("flow to %s: %v", tc.dst, err)
				}
				if st.Refused != 0 {
					t.Errorf("Refused = %d, want 0", st.Refused)
				}
				return
			}
			if err == nil {
				t.Fatalf("flow to %s was not refused", tc.dst)
			}
			if !strings.Contains(err.Error(), "refused") {
				t.Errorf("flow to %s: %v, want connection refused", tc.dst, err)
			}
			if tc.reject != nil {
				if st.DialErrors != 1 || st.Refused != 0 {
					t.Errorf("stats %+v: want 1 dial error", st)
				}
				return
			}
			if st.Refused == 0 {
				t.Errorf("stats %+v: want a refusal", st)
			}
			if calls := md.calls(); len(calls) != 0 {
				t.Errorf("dialer asked for %q", calls)
			}
		})
	}
}

func itoa(p uint16) string {
	return netip.AddrPortFrom(netip.IPv4Unspecified(), p).String()[len("0.0.0.0:"):]
}

// TestPing: the stack answers echo requests to its own addresses and drops
// those to other addresses.
func TestPing(t *testing.T) {
	d := startDN(t, testConfig())
	u := newUE(t, d, ueAddr)
	for _, a := range []string{DefaultDNSAddr, DefaultEndorseAddr, DefaultBeamAddr} {
		if err := u.ping(netip.MustParseAddr(a), 5*time.Second); err != nil {
			t.Errorf("ping %s: %v", a, err)
		}
	}
	if err := u.ping(netip.MustParseAddr("198.51.100.7"), 200*time.Millisecond); !errors.Is(err, errNoReply) {
		t.Errorf("ping 198.51.100.7: %v, want no reply", err)
	}
	if got := d.Stats().PingsDropped; got != 1 {
		t.Errorf("PingsDropped = %d, want 1", got)
	}
}

// plainConn hides the socket behind a host connection (as a dialer through
// a proxy or a tunnel would), so the relay reads it with a buffer of its
// own; CloseWrite is kept for TCP.
type plainConn struct{ net.Conn }

type plainTCPConn struct{ net.Conn }

func (c plainTCPConn) CloseWrite() error { return c.Conn.(*net.TCPConn).CloseWrite() }

// TestNATPlainConns: the NAT relays through host connections that are not
// sockets: TCP with half-close, UDP with its idle timeout.
func TestNATPlainConns(t *testing.T) {
	srv := newEchoTCP(t)
	usrv := newEchoUDP(t)
	dial := func(ctx context.Context, network, _ string) (net.Conn, error) {
		var d net.Dialer
		to := srv.addr().String()
		if network == "udp" {
			to = usrv.LocalAddr().String()
		}
		c, err := d.DialContext(ctx, network, to)
		if err != nil {
			return nil, err
		}
		if network == "tcp" {
			return plainTCPConn{c}, nil
		}
		return plainConn{c}, nil
	}
	d := startDN(t, testConfig(), WithDialer(dial))
	u := newUE(t, d, ueAddr)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c, err := u.dialTCP(ctx, netip.MustParseAddrPort("198.51.100.7:80"))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	payload := make([]byte, 1<<20)
	rand.Read(payload)
	go func() {
		_, _ = c.Write(payload)
		_ = c.CloseWrite()
	}()
	got, err := io.ReadAll(c)
	if err != nil || !bytes.Equal(got, payload) {
		t.Fatalf("echo: %d of %d bytes, %v", len(got), len(payload), err)
	}
	uc, err := u.dialUDP(netip.MustParseAddrPort("198.51.100.8:53"))
	if err != nil {
		t.Fatal(err)
	}
	defer uc.Close()
	if err := udpEcho(uc, "plain"); err != nil {
		t.Fatal(err)
	}
	eventually(t, "flows closed", func() bool { st := d.Stats(); return st.TCPActive == 0 && st.UDPActive == 0 })
}

// TestNATReset: a host reset reaches the device as a reset, not as an
// orderly end of stream.
func TestNATReset(t *testing.T) {
	ln, err := net.Listen("tcp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	proceed := make(chan struct{})
	go func() {
		c, err := ln.Accept()
		if err != nil {
			return
		}
		c.Write([]byte("hi"))
		<-proceed
		c.(*net.TCPConn).SetLinger(0)
		c.Close()
	}()
	d := startDN(t, testConfig())
	u := newUE(t, d, ueAddr)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c, err := u.dialTCP(ctx, netip.AddrPortFrom(netip.MustParseAddr(DefaultHostAlias), uint16(ln.Addr().(*net.TCPAddr).Port)))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	got := make([]byte, 2)
	if _, err := io.ReadFull(c, got); err != nil || string(got) != "hi" {
		t.Fatalf("read %q, %v; want \"hi\"", got, err)
	}
	close(proceed)
	rest, err := io.ReadAll(c)
	if len(rest) != 0 {
		t.Errorf("read %q after \"hi\"", rest)
	}
	if err == nil || !strings.Contains(err.Error(), "reset") {
		t.Errorf("read ended with %v, want a connection reset", err)
	}
}

// TestRoute: the NAT's policy, destination by destination.
func TestRoute(t *testing.T) {
	cfg := testConfig()
	cfg.NAT.Allow = []string{"192.0.2.0/24", "198.51.100.7", "127.0.0.1", "169.254.10.0/24"}
	cfg.NAT.Protect = []string{"0.0.0.0:2152", "192.0.2.9:8805"}
	hostAddrs := func(o *options) {
		o.hostAddrs = func() ([]netip.Addr, error) { return []netip.Addr{netip.MustParseAddr("192.0.2.1")}, nil }
	}
	d := startDN(t, cfg, hostAddrs)
	tests := []struct {
		dst  string
		host string // "": refused with err
		err  error
	}{
		{"192.0.2.44:80", "192.0.2.44:80", nil},
		{"198.51.100.7:443", "198.51.100.7:443", nil},
		{"198.51.100.8:443", "", errNotAllowed},
		{DefaultHostAlias + ":9000", "127.0.0.1:9000", nil},
		{DefaultHostAlias + ":2152", "", errProtected}, // loopback, any address
		{"192.0.2.1:2152", "", errProtected},           // a host interface address
		{"192.0.2.2:2152", "192.0.2.2:2152", nil},      // another machine
		{"192.0.2.9:8805", "", errProtected},           // exact
		{"192.0.2.1:8805", "192.0.2.1:8805", nil},      // not that address
		{"100.127.0.53:80", "", errReserved},           // a service address
		{"100.127.200.1:80", "", errReserved},          // the reserved prefix
		{"127.0.0.1:80", "", errSpecial},               // loopback, directly
		{"0.0.0.0:80", "", errSpecial},                 // unspecified
		{"224.0.0.251:5353", "", errSpecial},           // multicast
		{"255.255.255.255:67", "", errSpecial},         // broadcast
		{"169.254.169.254:80", "", errSpecial},         // link-local, not allowed
		{"169.254.10.10:80", "169.254.10.10:80", nil},  // link-local, allowed
		{"192.0.2.44:0", "", errSpecial},               // port 0
	}
	for _, tc := range tests {
		host, err := d.route(netip.MustParseAddrPort(tc.dst))
		if !errors.Is(err, tc.err) || (tc.host != "" && host.String() != tc.host) {
			t.Errorf("route(%s) = %v, %v; want %q, %v", tc.dst, host, err, tc.host, tc.err)
		}
	}
	off := testConfig()
	off.NAT.Enabled = false
	if _, err := startDN(t, off).route(netip.MustParseAddrPort("192.0.2.44:80")); !errors.Is(err, errNATOff) {
		t.Errorf("NAT off: %v", err)
	}
}

// TestNATUDPRefusedThenServed: an ICMP port unreachable from the host for
// one datagram does not end the flow; once a server listens, the same flow
// carries its answers.
func TestNATUDPRefusedThenServed(t *testing.T) {
	pc, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	port := pc.LocalAddr().(*net.UDPAddr).Port
	pc.Close() // nothing listens: the host answers with port unreachable
	d := startDN(t, testConfig())
	u := newUE(t, d, ueAddr)
	c, err := u.dialUDP(netip.AddrPortFrom(netip.MustParseAddr(DefaultHostAlias), uint16(port)))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	for range 3 {
		if _, err := c.Write([]byte("nobody")); err != nil {
			t.Fatal(err)
		}
	}
	eventually(t, "flow open", func() bool { return d.Stats().UDPActive == 1 })
	srv, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1), Port: port})
	if err != nil {
		t.Skipf("port %d taken meanwhile: %v", port, err)
	}
	defer srv.Close()
	go func() {
		buf := make([]byte, 100)
		for {
			n, from, err := srv.ReadFromUDPAddrPort(buf)
			if err != nil {
				return
			}
			if string(buf[:n]) == "hello" {
				srv.WriteToUDPAddrPort(buf[:n], from)
			}
		}
	}()
	if err := udpEcho(c, "hello"); err != nil {
		t.Fatal(err)
	}
	if st := d.Stats(); st.UDPFlows != 1 {
		t.Errorf("UDPFlows = %d, want the one flow throughout", st.UDPFlows)
	}
}

// TestNATUDPDeviceRefused: a device that closed its socket answers the
// host's datagram with a port unreachable; the flow survives it, and the
// next answer reaches the device's new socket on the same port.
func TestNATUDPDeviceRefused(t *testing.T) {
	srv, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	d := startDN(t, testConfig())
	u := newUE(t, d, ueAddr)
	to := netip.AddrPortFrom(netip.MustParseAddr(DefaultHostAlias), uint16(srv.LocalAddr().(*net.UDPAddr).Port))
	local := netip.AddrPortFrom(ueAddr, 40000)
	open := func() net.Conn {
		la, ra := fullAddr(local), fullAddr(to)
		c, err := gonet.DialUDP(u.st, &la, &ra, ipv4.ProtocolNumber)
		if err != nil {
			t.Fatal(err)
		}
		return c
	}
	c := open()
	if _, err := c.Write([]byte("a")); err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 100)
	_ = srv.SetReadDeadline(time.Now().Add(5 * time.Second))
	_, nat, err := srv.ReadFromUDPAddrPort(buf)
	if err != nil {
		t.Fatal(err)
	}
	c.Close()
	// To the closed socket: the device answers port unreachable.
	if _, err := srv.WriteToUDPAddrPort([]byte("x"), nat); err != nil {
		t.Fatal(err)
	}
	eventually(t, "port unreachable back at the data network", func() bool {
		return u.st.Stats().ICMP.V4.PacketsSent.DstUnreachable.Value() > 0
	})
	c = open()
	defer c.Close()
	if _, err := srv.WriteToUDPAddrPort([]byte("b"), nat); err != nil {
		t.Fatal(err)
	}
	_ = c.SetReadDeadline(time.Now().Add(5 * time.Second))
	n, err := c.Read(buf)
	if err != nil || string(buf[:n]) != "b" {
		t.Fatalf("device read %q, %v; want \"b\"", buf[:n], err)
	}
	if st := d.Stats(); st.UDPFlows != 1 {
		t.Errorf("UDPFlows = %d, want 1", st.UDPFlows)
	}
}
