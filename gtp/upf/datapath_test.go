package upf

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net"
	"net/http"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/gopacket/gopacket"
	"github.com/gopacket/gopacket/layers"
	"golang.org/x/net/dns/dnsmessage"

	"github.com/simgate/simgate/endorse"
	"github.com/simgate/simgate/gtp/dn"
	"github.com/simgate/simgate/gtp/gtpu"
	"github.com/simgate/simgate/gtp/pfcp"
)

// plane is a UPF with its data path between a loopback N3 socket and a
// real data network, an SMF driving it, and a fake gNB.
type plane struct {
	u    *UPF
	smf  *pfcp.Client
	n3   *gtpu.Conn
	dn   *dn.DN
	dp   *DataPath
	gnb  *fakeGNB
	hits chan string // paths the in-network HTTP service saw, with the remote address
}

func startPlane(t *testing.T) *plane {
	t.Helper()
	p := &plane{u: startUPF(t, testConfig(), nil), smf: startSMF(t, smfOpts{}), hits: make(chan string, 16)}
	associate(t, p.smf, p.u)
	ctx, cancel := context.WithCancel(context.Background())
	var err error
	if p.n3, err = gtpu.Listen(n3IP.String()+":0", gtpu.Config{}); err != nil {
		t.Fatal(err)
	}
	cfg := dn.DefaultConfig()
	cfg.NAT.Enabled = false
	if p.dn, err = dn.Start(ctx, cfg, dn.WithLogger(slog.New(slog.DiscardHandler))); err != nil {
		t.Fatal(err)
	}
	svc := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		p.hits <- r.URL.Path + " " + r.RemoteAddr
		io.WriteString(w, "in-network")
	})
	if err := p.dn.Serve(ctx, dn.Services{Endorse: svc}); err != nil {
		t.Fatal(err)
	}
	p.dp = NewDataPath(p.u, p.n3, p.dn)
	done := make(chan error, 1)
	go func() { done <- p.dp.Serve(ctx) }()
	p.gnb = newFakeGNB(t)
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("DataPath.Serve: %v", err)
		}
		p.n3.Close()
		p.dn.Close()
	})
	return p
}

// establish opens UE i's session, with the gNB's F-TEID when teid != 0.
func (p *plane) establish(t *testing.T, i int, teid uint32) (pfcp.Session, pfcp.SessionRequest) {
	t.Helper()
	req := ueReq(p.u, i)
	s, err := p.smf.EstablishSession(ctxT(t), req)
	if err != nil {
		t.Fatal(err)
	}
	if teid != 0 {
		p.modify(t, s, teid)
	}
	return s, req
}

func (p *plane) modify(t *testing.T, s pfcp.Session, teid uint32) {
	t.Helper()
	if err := p.smf.ModifySession(ctxT(t), s, pfcp.SessionUpdate{GNB: pfcp.FTEID{TEID: teid, Addr: p.gnb.addr.Addr()}}); err != nil {
		t.Fatal(err)
	}
}

// fakeGNB is a gNB's N3 socket: port 2152 (downlink goes there, TS 29.281
// 4.4.2) on a loopback address of its own.
type fakeGNB struct {
	t    *testing.T
	conn *net.UDPConn
	addr netip.AddrPort
	to   netip.AddrPort // the UPF's N3
}

func newFakeGNB(t *testing.T) *fakeGNB {
	t.Helper()
	var err error
	for range 20 {
		a := netip.AddrFrom4([4]byte{127, byte(1 + rand.IntN(250)), byte(rand.IntN(256)), byte(2 + rand.IntN(250))})
		var c *net.UDPConn
		if c, err = net.ListenUDP("udp4", net.UDPAddrFromAddrPort(netip.AddrPortFrom(a, gtpu.Port))); err == nil {
			g := &fakeGNB{t: t, conn: c, addr: netip.AddrPortFrom(a, gtpu.Port)}
			t.Cleanup(func() { c.Close() })
			return g
		}
	}
	t.Fatalf("gNB socket: %v", err)
	return nil
}

// send sends a G-PDU for teid carrying inner, with an UL PDU Session
// Container of qfi (none when qfi < 0).
func (g *fakeGNB) send(to netip.AddrPort, teid uint32, qfi int, inner []byte) {
	g.t.Helper()
	var psc *gtpu.PDUSession
	if qfi >= 0 {
		psc = &gtpu.PDUSession{Type: gtpu.UL, QFI: uint8(qfi)}
	}
	hl := gtpu.GPDUHeaderLen(psc)
	b := append(make([]byte, hl), inner...)
	pdu, err := gtpu.PrependGPDU(b, hl, teid, psc)
	if err != nil {
		g.t.Fatal(err)
	}
	if _, err := g.conn.WriteToUDPAddrPort(pdu, to); err != nil {
		g.t.Fatal(err)
	}
}

// recv returns the next GTP-U message within d, or ok false.
func (g *fakeGNB) recv(d time.Duration) (h gtpu.Header, payload []byte, ok bool) {
	g.t.Helper()
	buf := make([]byte, 65536)
	g.conn.SetReadDeadline(time.Now().Add(d))
	n, _, err := g.conn.ReadFromUDPAddrPort(buf)
	if err != nil {
		return h, nil, false
	}
	payload, err = h.Decode(buf[:n])
	if err != nil {
		g.t.Fatalf("gNB got a malformed GTP-U message: %v", err)
	}
	return h, payload, true
}

// expectNothing fails if a message arrives within d.
func (g *fakeGNB) expectNothing(d time.Duration, why string) {
	g.t.Helper()
	if h, _, ok := g.recv(d); ok {
		g.t.Fatalf("%s: gNB got message type %d TEID %#x, want nothing", why, h.Type, h.TEID)
	}
}

// ipv4 serialises an inner IPv4 packet with checksums.
func ipv4(t *testing.T, src, dst netip.Addr, l4 gopacket.SerializableLayer, proto layers.IPProtocol, payload []byte) []byte {
	t.Helper()
	ip := &layers.IPv4{Version: 4, TTL: 64, Protocol: proto, SrcIP: src.AsSlice(), DstIP: dst.AsSlice()}
	if nl, ok := l4.(interface {
		SetNetworkLayerForChecksum(gopacket.NetworkLayer) error
	}); ok {
		nl.SetNetworkLayerForChecksum(ip)
	}
	buf := gopacket.NewSerializeBuffer()
	if err := gopacket.SerializeLayers(buf, gopacket.SerializeOptions{FixLengths: true, ComputeChecksums: true}, ip, l4, gopacket.Payload(payload)); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// dnsQuery is a UDP DNS query for name from src to the responder.
func dnsQuery(t *testing.T, src netip.Addr, id uint16, name string) []byte {
	t.Helper()
	q := dnsmessage.Message{Header: dnsmessage.Header{ID: id, RecursionDesired: true},
		Questions: []dnsmessage.Question{{Name: dnsmessage.MustNewName(name + "."), Type: dnsmessage.TypeA, Class: dnsmessage.ClassINET}}}
	b, err := q.Pack()
	if err != nil {
		t.Fatal(err)
	}
	return ipv4(t, src, netip.MustParseAddr(dn.DefaultDNSAddr), &layers.UDP{SrcPort: 40000, DstPort: 53}, layers.IPProtocolUDP, b)
}

// tcpSYN is a TCP SYN from src to dst:port.
func tcpSYN(t *testing.T, src, dst netip.Addr, port uint16) []byte {
	t.Helper()
	return ipv4(t, src, dst, &layers.TCP{SrcPort: 41000, DstPort: layers.TCPPort(port), SYN: true, Seq: 1000, Window: 65535}, layers.IPProtocolTCP, nil)
}

// expectDL reads the next downlink G-PDU and checks its tunnel and QFI
// (TS 38.415: DL PDU SESSION INFORMATION), returning the inner packet.
func (g *fakeGNB) expectDL(teid uint32, qfi uint8) gopacket.Packet {
	g.t.Helper()
	for {
		h, payload, ok := g.recv(3 * time.Second)
		if !ok {
			g.t.Fatal("no downlink G-PDU")
		}
		if h.Type != gtpu.MsgGPDU {
			continue // e.g. an End Marker
		}
		if h.TEID != teid {
			g.t.Fatalf("downlink TEID %#x, want the gNB's %#x", h.TEID, teid)
		}
		if !h.HasPDUSession || h.PDUSession.Type != gtpu.DL || h.PDUSession.QFI != qfi {
			g.t.Fatalf("downlink PDU Session Container %+v (present %v), want DL QFI %d", h.PDUSession, h.HasPDUSession, qfi)
		}
		return gopacket.NewPacket(payload, layers.LayerTypeIPv4, gopacket.Default)
	}
}

func TestDataPathUplinkDownlink(t *testing.T) {
	p := startPlane(t)
	s, req := p.establish(t, 1, 0x1234)
	ue, endorseIP := req.UEAddr, netip.MustParseAddr(dn.DefaultEndorseAddr)

	// DNS through the tunnel: endorse.soracom.io resolves in the network.
	p.gnb.send(p.n3.LocalAddr(), s.Uplink.TEID, 9, dnsQuery(t, ue, 77, dn.EndorseName))
	pkt := p.gnb.expectDL(0x1234, 9)
	ip, _ := pkt.Layer(layers.LayerTypeIPv4).(*layers.IPv4)
	if ip == nil || !net.IP(ip.DstIP).Equal(ue.AsSlice()) || ip.SrcIP.String() != dn.DefaultDNSAddr {
		t.Fatalf("downlink packet %v: want from the DNS responder to %s", pkt, ue)
	}
	var m dnsmessage.Message
	if udp, _ := pkt.Layer(layers.LayerTypeUDP).(*layers.UDP); udp == nil || m.Unpack(udp.Payload) != nil {
		t.Fatalf("no DNS answer in %v", pkt)
	}
	if m.ID != 77 || len(m.Answers) != 1 {
		t.Fatalf("DNS answer %+v", m)
	}
	if a, ok := m.Answers[0].Body.(*dnsmessage.AResource); !ok || netip.AddrFrom4(a.A) != endorseIP {
		t.Fatalf("endorse.soracom.io = %v, want %s", m.Answers[0].Body, endorseIP)
	}

	// TCP to the token service's port: the stack answers SYN-ACK; another
	// port of the service address is refused with a RST.
	for _, tc := range []struct {
		port        uint16
		synAck, rst bool
		what        string
	}{{80, true, false, "endorse HTTP"}, {443, false, true, "endorse HTTPS (not served in this test)"}, {81, false, true, "unserved port"}} {
		p.gnb.send(p.n3.LocalAddr(), s.Uplink.TEID, 9, tcpSYN(t, ue, endorseIP, tc.port))
		tcp, _ := p.gnb.expectDL(0x1234, 9).Layer(layers.LayerTypeTCP).(*layers.TCP)
		if tcp == nil || tcp.SYN != tc.synAck || tcp.RST != tc.rst || uint16(tcp.SrcPort) != tc.port {
			t.Errorf("%s (port %d): answer %+v, want SYN-ACK %v RST %v", tc.what, tc.port, tcp, tc.synAck, tc.rst)
		}
	}
	// The writer counts a batch once the socket has taken it.
	waitFor(t, "packets counted", func() bool { st := p.dp.Stats(); return st.DownlinkPackets >= 4 && st.UplinkPackets == 4 })
	st := p.dp.Stats()
	if st.UplinkPackets != 4 || st.DownlinkPackets < 4 {
		t.Errorf("stats %+v: want 4 uplink packets and at least 4 downlink", st)
	}
	for r, n := range st.Drops {
		if n != 0 {
			t.Errorf("drop %s = %d, want 0", DropReason(r), n)
		}
	}
}

// TestDataPathDrops: what must not reach the network does not, and each
// drop is counted by its reason.
func TestDataPathDrops(t *testing.T) {
	p := startPlane(t)
	s, req := p.establish(t, 2, 0x2222)
	_, other := p.establish(t, 3, 0x3333)
	ue := req.UEAddr
	cases := []struct {
		name   string
		qfi    int
		inner  []byte
		reason DropReason
	}{
		// Anti-spoofing: UE 2's tunnel carrying UE 3's address, or any other.
		{"spoofed as another UE", 9, dnsQuery(t, other.UEAddr, 1, dn.EndorseName), DropSpoofed},
		{"spoofed foreign source", 9, dnsQuery(t, netip.MustParseAddr("192.0.2.1"), 2, dn.EndorseName), DropSpoofed},
		{"no PDU session container", -1, dnsQuery(t, ue, 3, dn.EndorseName), DropNoContainer},
		{"wrong QFI", 5, dnsQuery(t, ue, 4, dn.EndorseName), DropQFI},
		{"not IPv4", 9, append([]byte{0x60}, make([]byte, 39)...), DropMalformed},
		{"truncated IPv4", 9, dnsQuery(t, ue, 5, dn.EndorseName)[:24], DropMalformed},
		{"short", 9, []byte{0x45, 0}, DropMalformed},
	}
	for _, tc := range cases {
		before := p.dp.Stats()
		p.gnb.send(p.n3.LocalAddr(), s.Uplink.TEID, tc.qfi, tc.inner)
		waitFor(t, tc.name+" counted", func() bool { return p.dp.Stats().Drops[tc.reason] == before.Drops[tc.reason]+1 })
	}
	p.gnb.expectNothing(300*time.Millisecond, "dropped uplink")
	if q := p.dn.Stats().DNSQueries; q != 0 {
		t.Errorf("the DNS responder answered %d queries, want none", q)
	}
	if st := p.dp.Stats(); st.UplinkPackets != 0 {
		t.Errorf("%d packets reached the network", st.UplinkPackets)
	}
}

// TestDataPathUnknownTEID: a G-PDU for no tunnel gets an Error Indication
// (TS 29.281 7.3.1) naming the TEID, rate-limited per peer; so does one for
// a session that was released, and nothing reaches the network.
func TestDataPathUnknownTEID(t *testing.T) {
	p := startPlane(t)
	s, req := p.establish(t, 4, 0x4444)
	p.gnb.send(p.n3.LocalAddr(), 0xdead, 9, dnsQuery(t, req.UEAddr, 1, dn.EndorseName))
	h, payload, ok := p.gnb.recv(3 * time.Second)
	if !ok || h.Type != gtpu.MsgErrorIndication {
		t.Fatalf("got %+v (%v), want an Error Indication", h, ok)
	}
	teid, peer, err := gtpu.ParseErrorIndication(payload)
	if err != nil || teid != 0xdead || peer != n3IP {
		t.Fatalf("Error Indication TEID %#x peer %s (%v): want 0xdead from %s", teid, peer, err, n3IP)
	}

	// The released session: its TEID is unknown now, and the address too.
	if err := p.smf.DeleteSession(ctxT(t), s); err != nil {
		t.Fatal(err)
	}
	p.gnb.send(p.n3.LocalAddr(), s.Uplink.TEID, 9, dnsQuery(t, req.UEAddr, 2, dn.EndorseName))
	h, payload, ok = p.gnb.recv(3 * time.Second)
	if !ok || h.Type != gtpu.MsgErrorIndication {
		t.Fatalf("released session: got %+v (%v), want an Error Indication", h, ok)
	}
	if teid, _, _ := gtpu.ParseErrorIndication(payload); teid != s.Uplink.TEID {
		t.Fatalf("Error Indication for TEID %#x, want the released %#x", teid, s.Uplink.TEID)
	}
	if _, _, err := p.u.Sessions().EndorseSession(context.Background(), req.UEAddr); !errors.Is(err, endorse.ErrUnknownSource) {
		t.Errorf("identity of a released session's address: %v, want ErrUnknownSource", err)
	}

	// A burst: at most the limiter's burst of answers.
	for i := range 50 {
		p.gnb.send(p.n3.LocalAddr(), 0xbeef00+uint32(i), 9, dnsQuery(t, req.UEAddr, 3, dn.EndorseName))
	}
	got := 0
	for {
		if _, _, ok := p.gnb.recv(300 * time.Millisecond); !ok {
			break
		}
		got++
	}
	if got == 0 || got > gtpu.DefaultErrorIndicationBurst+2 {
		t.Errorf("%d Error Indications for 50 unknown G-PDUs, want 1..%d", got, gtpu.DefaultErrorIndicationBurst+2)
	}
	if st := p.n3.Stats(); st.RateLimited == 0 {
		t.Error("no Error Indication was rate-limited")
	}
	if st := p.dp.Stats(); st.Drops[DropUnknownTEID] != 52 || st.UplinkPackets != 0 {
		t.Errorf("unknown TEID drops %d, uplink %d: want 52, 0", st.Drops[DropUnknownTEID], st.UplinkPackets)
	}
	if q := p.dn.Stats().DNSQueries; q != 0 {
		t.Errorf("the DNS responder answered %d queries, want none", q)
	}
}

// TestDataPathBuffersUntilTunnel: downlink for a session whose gNB F-TEID is
// not yet known waits (TS 29.244 5.2.1 BUFF) and goes once the SMF supplies
// it; moving the tunnel sends an End Marker down the old one.
func TestDataPathBuffersUntilTunnel(t *testing.T) {
	p := startPlane(t)
	s, req := p.establish(t, 5, 0)
	p.gnb.send(p.n3.LocalAddr(), s.Uplink.TEID, 9, dnsQuery(t, req.UEAddr, 9, dn.EndorseName))
	waitFor(t, "answer buffered", func() bool { return p.dp.Stats().Buffered == 1 })
	p.gnb.expectNothing(100*time.Millisecond, "no tunnel yet")
	p.modify(t, s, 0x5555)
	pkt := p.gnb.expectDL(0x5555, 9)
	if pkt.Layer(layers.LayerTypeDNS) == nil && pkt.Layer(layers.LayerTypeUDP) == nil {
		t.Fatalf("buffered packet %v is not the DNS answer", pkt)
	}

	// Path switch: End Marker on the old tunnel (TS 29.281 7.3.2).
	p.modify(t, s, 0x6666)
	h, _, ok := p.gnb.recv(3 * time.Second)
	if !ok || h.Type != gtpu.MsgEndMarker || h.TEID != 0x5555 {
		t.Fatalf("after the tunnel moved got %+v (%v), want an End Marker for 0x5555", h, ok)
	}
	p.gnb.send(p.n3.LocalAddr(), s.Uplink.TEID, 9, dnsQuery(t, req.UEAddr, 10, dn.EndorseName))
	p.gnb.expectDL(0x6666, 9)
	if st := p.dp.Stats(); st.EndMarkers != 1 {
		t.Errorf("End Markers %d, want 1", st.EndMarkers)
	}
}

// TestTokenEndpointNotOnHost: the in-network service listens only on the
// data network's stack. A host dial to its address and port does not reach
// it: it fails, or reaches something that is not this service.
func TestTokenEndpointNotOnHost(t *testing.T) {
	p := startPlane(t)
	addr := netip.AddrPortFrom(netip.MustParseAddr(dn.DefaultEndorseAddr), dn.EndorseHTTPPort)
	c, err := net.DialTimeout("tcp", addr.String(), 500*time.Millisecond)
	if err == nil {
		defer c.Close()
		c.SetDeadline(time.Now().Add(time.Second))
		fmt.Fprintf(c, "GET /probe HTTP/1.0\r\nHost: %s\r\n\r\n", dn.EndorseName)
		b, _ := io.ReadAll(c)
		if strings.Contains(string(b), "in-network") {
			t.Fatalf("the host reached the in-network service at %s", addr)
		}
	}
	select {
	case hit := <-p.hits:
		t.Fatalf("the in-network service saw a host request: %s", hit)
	case <-time.After(200 * time.Millisecond):
	}
}

func TestEndorseSession(t *testing.T) {
	p := startPlane(t)
	_, req := p.establish(t, 6, 0x6060)
	tab := p.u.Sessions()
	imsi, imei, err := tab.EndorseSession(context.Background(), req.UEAddr)
	if err != nil || imsi != req.User.IMSI || imei != req.User.IMEI {
		t.Fatalf("EndorseSession(%s) = %q, %q, %v: want %q, %q", req.UEAddr, imsi, imei, err, req.User.IMSI, req.User.IMEI)
	}
	for _, a := range []netip.Addr{netip.MustParseAddr("10.45.9.9"), netip.MustParseAddr("::1"), {}} {
		if _, _, err := tab.EndorseSession(context.Background(), a); !errors.Is(err, endorse.ErrUnknownSource) || !errors.Is(err, ErrNoSession) {
			t.Errorf("EndorseSession(%v): %v, want ErrUnknownSource and ErrNoSession", a, err)
		}
	}
	u, err := tab.UserID(req.UEAddr)
	if err != nil || u != req.User {
		t.Errorf("UserID = %+v, %v: want %+v", u, err, req.User)
	}
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting: %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}
