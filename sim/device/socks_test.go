package device

import (
	"bytes"
	"context"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"golang.org/x/net/proxy"
)

const (
	imsiA      = "001010000000001"
	imsiB      = "001010000000002"
	imsiNoSess = "001010000000099" // known, but its UE has no session here
)

// socksNet is the test network with a SOCKS5 proxy on loopback in front.
type socksNet struct {
	*network
	addr string
	stop func() error // cancels ServeSOCKS and returns what it returned
}

func newSOCKSNet(t *testing.T) *socksNet {
	n := newNetwork(t, Config{DialTimeout: 500 * time.Millisecond, SOCKSHandshakeTimeout: 5 * time.Second})
	n.addUE(ueA, dnsAddr)
	n.addUE(ueB, dnsAddr)
	sims := map[string]netip.Addr{imsiA: ueA, imsiB: ueB, imsiNoSess: netip.MustParseAddr("10.45.9.9")}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		done <- n.dev.ServeSOCKS(ctx, ln, func(imsi string) (netip.Addr, bool) {
			a, ok := sims[imsi]
			return a, ok
		})
	}()
	var stopped error
	var once bool
	stop := func() error {
		if !once {
			once = true
			cancel()
			select {
			case stopped = <-done:
			case <-time.After(10 * time.Second):
				t.Error("ServeSOCKS did not return after cancel")
			}
		}
		return stopped
	}
	t.Cleanup(func() { stop() })
	return &socksNet{network: n, addr: ln.Addr().String(), stop: stop}
}

// Any program speaks as the SIM its SOCKS user name names: Go's own
// socks5h client, golang.org/x/net/proxy, and curl.
func TestSOCKSAsUE(t *testing.T) {
	n := newSOCKSNet(t)
	for _, tc := range []struct {
		user, url string
		want      netip.Addr
	}{
		{imsiA, "http://endorse.soracom.io/", ueA},
		{imsiB, "http://endorse.soracom.io/", ueB},
		{"imsi-" + imsiB, "http://100.127.0.10/", ueB},
		{imsiA, "http://alias.example/", ueA},
	} {
		pu := &url.URL{Scheme: "socks5h", User: url.User(tc.user), Host: n.addr}
		c := &http.Client{Transport: &http.Transport{Proxy: http.ProxyURL(pu)}}
		if got := hostOf(t, get(t, c, tc.url)); got != tc.want {
			t.Errorf("%s as %s: server saw %s, want %s", tc.url, tc.user, got, tc.want)
		}
		c.CloseIdleConnections()
	}

	d, err := proxy.SOCKS5("tcp", n.addr, &proxy.Auth{User: imsiB, Password: "ignored"}, proxy.Direct)
	if err != nil {
		t.Fatal(err)
	}
	c := &http.Client{Transport: &http.Transport{DialContext: d.(proxy.ContextDialer).DialContext}}
	if got := hostOf(t, get(t, c, "http://endorse.soracom.io/")); got != ueB {
		t.Errorf("x/net/proxy as B: server saw %s", got)
	}
	c.CloseIdleConnections()

	// Unknown IMSI: x/net/proxy reports the failed authentication.
	d, _ = proxy.SOCKS5("tcp", n.addr, &proxy.Auth{User: "999990000000000", Password: "x"}, proxy.Direct)
	if c, err := d.Dial("tcp", "endorse.soracom.io:80"); err == nil {
		c.Close()
		t.Error("unknown IMSI: connected")
	}
	n.checkDispatch()
}

func TestSOCKSCurl(t *testing.T) {
	curl, err := exec.LookPath("curl")
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatal("curl is required in CI (scripts/install-test-tools.sh installs it)")
		}
		t.Skip("no curl on PATH")
	}
	n := newSOCKSNet(t)
	ctx := ctxT(t, 30*time.Second)
	for _, tc := range []struct {
		imsi string
		want netip.Addr
	}{{imsiA, ueA}, {imsiB, ueB}} {
		cmd := exec.CommandContext(ctx, curl, "-sS", "--max-time", "20",
			"--proxy", "socks5h://"+tc.imsi+"@"+n.addr, "http://endorse.soracom.io/")
		cmd.Env = []string{"PATH=/usr/bin:/bin"} // no proxy settings from the host
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("curl as %s: %v: %s", tc.imsi, err, out)
		}
		if got := hostOf(t, string(out)); got != tc.want {
			t.Errorf("curl as %s: server saw %s", tc.imsi, got)
		}
	}
}

// socksDialRaw runs a hand-made negotiation: greeting offering methods,
// then (if the server picks username/password) user, then request req. It
// returns the connection and the server's answers.
func socksDialRaw(t *testing.T, addr string, methods []byte, user string, req []byte) (net.Conn, []byte) {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	c.SetDeadline(time.Now().Add(15 * time.Second))
	// Everything in one write: the server must read exactly its fields
	// and no further (clients may send ahead).
	msg := append([]byte{socksVersion, byte(len(methods))}, methods...)
	if contains(methods, methodUserPassword) {
		msg = append(msg, authVersion, byte(len(user)))
		msg = append(msg, user...)
		msg = append(msg, 0) // empty password, as curl sends it
		msg = append(msg, req...)
	}
	if _, err := c.Write(msg); err != nil {
		t.Fatal(err)
	}
	var got []byte
	want := 2
	if contains(methods, methodUserPassword) {
		want = 4 + 10
	}
	buf := make([]byte, want)
	m, _ := io.ReadAtLeast(c, buf, want)
	got = buf[:m]
	return c, got
}

func connectReq(atyp byte, host string, addr netip.Addr, port uint16) []byte {
	return appendRequest(nil, socksRequest{cmd: cmdConnect, atyp: atyp, host: host, addr: addr, port: port})
}

func TestSOCKSReplies(t *testing.T) {
	n := newSOCKSNet(t)
	userPass := []byte{methodNoAuth, methodUserPassword}
	reply := func(rep byte) []byte {
		return append([]byte{socksVersion, methodUserPassword, authVersion, 0}, appendReply(nil, rep, netip.AddrPort{})...)
	}
	for _, tc := range []struct {
		name    string
		methods []byte
		user    string
		req     []byte
		want    []byte
	}{
		{"no username method", []byte{methodNoAuth}, "", nil, []byte{socksVersion, methodNoAcceptable}},
		{"unknown IMSI", userPass, "999990000000000", nil, []byte{socksVersion, methodUserPassword, authVersion, 1}},
		{"refused", userPass, imsiA, connectReq(atypIPv4, "", closedAddr, 80), reply(repConnectionRefused)},
		{"refused by name", userPass, imsiA, connectReq(atypDomain, "closed.example", netip.Addr{}, 80), reply(repConnectionRefused)},
		{"no such host", userPass, imsiA, connectReq(atypDomain, "nowhere.example", netip.Addr{}, 80), reply(repHostUnreachable)},
		{"no answer", userPass, imsiA, connectReq(atypIPv4, "", silentAddr, 80), reply(repHostUnreachable)},
		{"no session", userPass, imsiNoSess, connectReq(atypIPv4, "", webAddr, 80), reply(repNetworkUnreachable)},
		{"bind", userPass, imsiA, appendRequest(nil, socksRequest{cmd: cmdBind, atyp: atypIPv4, addr: webAddr, port: 80}), reply(repCommandNotSupported)},
		{"udp associate", userPass, imsiA, appendRequest(nil, socksRequest{cmd: cmdUDPAssociate, atyp: atypIPv4, addr: netip.IPv4Unspecified()}), reply(repCommandNotSupported)},
		{"ipv6", userPass, imsiA, connectReq(atypIPv6, "", netip.MustParseAddr("2001:db8::1"), 80), reply(repAddressTypeNotSupported)},
		{"address type 9", userPass, imsiA, []byte{socksVersion, cmdConnect, 0, 9, 1, 2, 3, 4, 0, 80}, reply(repAddressTypeNotSupported)},
		{"request version 4", userPass, imsiA, []byte{4, cmdConnect, 0, atypIPv4, 100, 127, 0, 10, 0, 80}, reply(repGeneralFailure)},
		{"empty domain", userPass, imsiA, []byte{socksVersion, cmdConnect, 0, atypDomain, 0, 0, 80}, reply(repHostUnreachable)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c, got := socksDialRaw(t, n.addr, tc.methods, tc.user, tc.req)
			if !bytes.Equal(got, tc.want) {
				t.Errorf("server answered % x, want % x", got, tc.want)
			}
			// After a failure the server closes the connection.
			if m, err := c.Read(make([]byte, 1)); m != 0 || err == nil {
				t.Errorf("connection still open after failure: %d %v", m, err)
			}
		})
	}
}

// CONNECT succeeds with the UE's address as BND.ADDR, and a client that
// half-closes still gets the whole answer (the echo server answers only
// after the client's FIN).
func TestSOCKSConnectHalfClose(t *testing.T) {
	n := newSOCKSNet(t)
	c, got := socksDialRaw(t, n.addr, []byte{methodUserPassword}, imsiB, connectReq(atypIPv4, "", webAddr, portEcho))
	if len(got) != 14 || !bytes.Equal(got[:8], []byte{5, 2, 1, 0, 5, 0, 0, 1}) {
		t.Fatalf("answer % x", got)
	}
	bound := netip.AddrPortFrom(netip.AddrFrom4([4]byte(got[8:12])), uint16(got[12])<<8|uint16(got[13]))
	if bound.Addr() != ueB || bound.Port() == 0 {
		t.Errorf("BND %s, want %s:port", bound, ueB)
	}
	payload := bytes.Repeat([]byte("half-close "), 20000) // several windows
	go func() {
		c.Write(payload)
		c.(*net.TCPConn).CloseWrite()
	}()
	echoed, err := io.ReadAll(c)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(echoed, payload) {
		t.Errorf("echoed %d bytes, want %d", len(echoed), len(payload))
	}
}

// Cancelling ServeSOCKS closes the listener and the proxied connections,
// and returns nil once they are gone.
func TestSOCKSShutdown(t *testing.T) {
	n := newSOCKSNet(t)
	c, got := socksDialRaw(t, n.addr, []byte{methodUserPassword}, imsiA, connectReq(atypIPv4, "", webAddr, portSink))
	if len(got) != 14 || got[5] != repSucceeded {
		t.Fatalf("answer % x", got)
	}
	idle, err := net.Dial("tcp", n.addr) // in negotiation, says nothing
	if err != nil {
		t.Fatal(err)
	}
	defer idle.Close()
	time.Sleep(20 * time.Millisecond)
	if err := n.stop(); err != nil {
		t.Errorf("ServeSOCKS returned %v, want nil", err)
	}
	for _, conn := range []net.Conn{c, idle} {
		conn.SetReadDeadline(time.Now().Add(5 * time.Second))
		if _, err := conn.Read(make([]byte, 1)); err == nil || errors.Is(err, context.DeadlineExceeded) || isTimeout(err) {
			t.Errorf("connection not closed at shutdown: %v", err)
		}
	}
	if _, err := net.Dial("tcp", n.addr); err == nil {
		t.Error("listener still open")
	}
}

func isTimeout(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}

func TestSOCKSParsers(t *testing.T) {
	for _, tc := range []struct {
		name string
		in   []byte
		want socksRequest
		code int // -1: plain error, 0: ok, else the reply code
	}{
		{"ipv4", []byte{5, 1, 0, 1, 100, 127, 0, 10, 0x1f, 0x90}, socksRequest{cmd: 1, atyp: 1, addr: webAddr, port: 8080}, 0},
		{"domain", append(append([]byte{5, 1, 0, 3, 18}, "endorse.soracom.io"...), 0, 80), socksRequest{cmd: 1, atyp: 3, host: "endorse.soracom.io", port: 80}, 0},
		{"bind parsed", []byte{5, 2, 0, 1, 0, 0, 0, 0, 0, 0}, socksRequest{cmd: 2, atyp: 1, addr: netip.IPv4Unspecified()}, 0},
		{"ipv6", append(append([]byte{5, 1, 0, 4}, make([]byte, 16)...), 0, 80), socksRequest{}, repAddressTypeNotSupported},
		{"atyp 0", []byte{5, 1, 0, 0, 1, 2, 3, 4, 0, 80}, socksRequest{}, repAddressTypeNotSupported},
		{"reserved", []byte{5, 1, 1, 1, 1, 2, 3, 4, 0, 80}, socksRequest{}, repGeneralFailure},
		{"short ipv4", []byte{5, 1, 0, 1, 1, 2}, socksRequest{}, -1},
		{"short port", []byte{5, 1, 0, 1, 1, 2, 3, 4, 0}, socksRequest{}, -1},
		{"short domain", []byte{5, 1, 0, 3, 10, 'a'}, socksRequest{}, -1},
		{"empty", nil, socksRequest{}, -1},
	} {
		got, err := readRequest(bytes.NewReader(tc.in))
		var re *replyError
		switch {
		case tc.code == 0 && (err != nil || got != tc.want):
			t.Errorf("%s: %+v, %v; want %+v", tc.name, got, err, tc.want)
		case tc.code > 0 && (!errors.As(err, &re) || int(re.code) != tc.code):
			t.Errorf("%s: %v, want reply %d", tc.name, err, tc.code)
		case tc.code < 0 && (err == nil || errors.As(err, &re)):
			t.Errorf("%s: %v, want a read error", tc.name, err)
		}
	}
	for _, tc := range []struct {
		in       []byte
		user, pw string
		ok       bool
	}{
		{[]byte{1, 3, 'a', 'b', 'c', 2, 'p', 'w'}, "abc", "pw", true},
		{[]byte{1, 3, 'a', 'b', 'c', 0}, "abc", "", true},
		{[]byte{1, 0, 0}, "", "", false},
		{[]byte{5, 3, 'a', 'b', 'c', 0}, "", "", false},
		{[]byte{1, 3, 'a', 'b'}, "", "", false},
		{[]byte{1, 1, 'a', 3, 'p'}, "", "", false},
	} {
		u, p, err := readUserPassword(bytes.NewReader(tc.in))
		if (err == nil) != tc.ok || u != tc.user || p != tc.pw {
			t.Errorf("readUserPassword(% x) = %q %q %v", tc.in, u, p, err)
		}
	}
	for _, tc := range []struct {
		in   []byte
		want []byte
		ok   bool
	}{
		{[]byte{5, 2, 0, 2}, []byte{0, 2}, true},
		{[]byte{5, 0}, nil, false},
		{[]byte{4, 1, 0}, nil, false},
		{[]byte{5, 3, 0}, nil, false},
	} {
		got, err := readGreeting(bytes.NewReader(tc.in))
		if (err == nil) != tc.ok || !bytes.Equal(got, tc.want) {
			t.Errorf("readGreeting(% x) = % x %v", tc.in, got, err)
		}
	}
	for user, want := range map[string]string{imsiA: imsiA, "imsi-" + imsiA: imsiA, "IMSI-" + imsiA: imsiA, "imsi-": "imsi-", "nai-x": "nai-x"} {
		if got := imsiOf(user); got != want {
			t.Errorf("imsiOf(%q) = %q, want %q", user, got, want)
		}
	}
	if got := appendReply(nil, repSucceeded, netip.MustParseAddrPort("10.45.0.1:4660")); !bytes.Equal(got, []byte{5, 0, 0, 1, 10, 45, 0, 1, 0x12, 0x34}) {
		t.Errorf("appendReply: % x", got)
	}
}

// FuzzReadRequest: a parsed request encodes back to the octets it was
// read from, and nothing panics.
func FuzzReadRequest(f *testing.F) {
	f.Add([]byte{5, 1, 0, 1, 100, 127, 0, 10, 0, 80})
	f.Add(append(append([]byte{5, 1, 0, 3, 18}, "endorse.soracom.io"...), 0, 80))
	f.Add(append(append([]byte{5, 1, 0, 4}, make([]byte, 16)...), 0, 80))
	f.Add([]byte{5, 3, 0, 1, 0, 0, 0, 0, 0, 0})
	f.Add([]byte{5, 1, 0, 3, 0, 0, 80})
	f.Fuzz(func(t *testing.T, b []byte) {
		r := bytes.NewReader(b)
		req, err := readRequest(r)
		if err != nil {
			return
		}
		used := b[:len(b)-r.Len()]
		if enc := appendRequest(nil, req); !bytes.Equal(enc, used) {
			t.Fatalf("read % x as %+v, encodes as % x", used, req, enc)
		}
		if req.atyp != atypIPv4 && req.atyp != atypDomain {
			t.Fatalf("accepted address type %d", req.atyp)
		}
	})
}

// FuzzSOCKSHandshake feeds arbitrary client bytes to a server whose
// dialer is a pipe: it must answer or close, never panic or hang, and dial
// only after a full, authenticated CONNECT.
func FuzzSOCKSHandshake(f *testing.F) {
	ok := append([]byte{5, 1, 2, 1, 15}, imsiA...)
	ok = append(ok, 0)
	f.Add(append(append([]byte(nil), ok...), connectReq(atypIPv4, "", webAddr, 80)...))
	f.Add(append(append([]byte(nil), ok...), connectReq(atypDomain, "endorse.soracom.io", netip.Addr{}, 443)...))
	f.Add([]byte{5, 1, 0})
	f.Add([]byte{5, 2, 0, 2, 1, 1, 'x', 0})
	f.Add([]byte{4, 1, 0, 80, 1, 2, 3, 4, 0})
	f.Fuzz(func(t *testing.T, in []byte) {
		dialed, authed := false, false
		srv := &socksServer{
			dial: func(ctx context.Context, ue netip.Addr, network, addr string) (net.Conn, error) {
				dialed = true
				if ue != ueA || network != "tcp" || addr == "" {
					t.Errorf("dial %s %s %q", ue, network, addr)
				}
				return nil, errors.New("fuzz: no network")
			},
			lookup: func(imsi string) (netip.Addr, bool) {
				authed = imsi == imsiA
				return ueA, authed
			},
			log:              discardLogger(),
			handshakeTimeout: time.Second,
			dialTimeout:      time.Second,
		}
		c := &scriptConn{in: bytes.NewReader(in)}
		srv.handle(context.Background(), c)
		out := c.out.Bytes()
		if !c.closed {
			t.Error("connection not closed")
		}
		if dialed && (!authed || !bytes.HasPrefix(out, []byte{5, 2, 1, 0})) {
			t.Errorf("dialed without authentication: in % x out % x", in, out)
		}
		if dialed && !bytes.HasSuffix(out, appendReply(nil, repGeneralFailure, netip.AddrPort{})) {
			t.Errorf("failed dial answered % x", out)
		}
		if len(out) > 0 && out[0] != socksVersion {
			t.Errorf("answer starts % x", out)
		}
	})
}

// scriptConn is a client connection that says in, then EOF.
type scriptConn struct {
	in     *bytes.Reader
	out    bytes.Buffer
	closed bool
}

func (c *scriptConn) Read(b []byte) (int, error)       { return c.in.Read(b) }
func (c *scriptConn) Write(b []byte) (int, error)      { return c.out.Write(b) }
func (c *scriptConn) Close() error                     { c.closed = true; return nil }
func (c *scriptConn) LocalAddr() net.Addr              { return &net.TCPAddr{} }
func (c *scriptConn) RemoteAddr() net.Addr             { return &net.TCPAddr{} }
func (c *scriptConn) SetDeadline(time.Time) error      { return nil }
func (c *scriptConn) SetReadDeadline(time.Time) error  { return nil }
func (c *scriptConn) SetWriteDeadline(time.Time) error { return nil }

func discardLogger() *slog.Logger { return slog.New(slog.DiscardHandler) }

func TestSOCKSNilLookup(t *testing.T) {
	s, err := New(Config{})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	if err := s.ServeSOCKS(context.Background(), ln, nil); err == nil || !strings.Contains(err.Error(), "nil") {
		t.Errorf("nil lookup: %v", err)
	}
}

// failingListener hands out n connections, then fails for good once
// broken is closed.
type failingListener struct {
	net.Listener
	n      int
	broken chan struct{}
}

func (l *failingListener) Accept() (net.Conn, error) {
	if l.n == 0 {
		<-l.broken
		return nil, errors.New("listener broke")
	}
	l.n--
	return l.Listener.Accept()
}

// When the listener fails, ServeSOCKS ends its clients and returns the
// error instead of waiting for them.
func TestSOCKSListenerFails(t *testing.T) {
	n := newNetwork(t, Config{})
	n.addUE(ueA, dnsAddr)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	done, broken := make(chan error, 1), make(chan struct{})
	go func() {
		done <- n.dev.ServeSOCKS(context.Background(), &failingListener{Listener: ln, n: 1, broken: broken},
			func(string) (netip.Addr, bool) { return ueA, true })
	}()
	c, got := socksDialRaw(t, ln.Addr().String(), []byte{methodUserPassword}, imsiA, connectReq(atypIPv4, "", webAddr, portSink))
	if len(got) != 14 || got[5] != repSucceeded {
		t.Fatalf("answer % x", got)
	}
	close(broken)
	select {
	case err := <-done:
		if err == nil || !strings.Contains(err.Error(), "listener broke") {
			t.Errorf("ServeSOCKS: %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("ServeSOCKS did not return")
	}
	c.SetReadDeadline(time.Now().Add(5 * time.Second))
	if _, err := c.Read(make([]byte, 1)); err == nil || isTimeout(err) {
		t.Errorf("client connection survived: %v", err)
	}
}
