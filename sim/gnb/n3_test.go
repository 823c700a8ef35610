package gnb

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"log/slog"
	"net"
	"net/netip"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/free5gc/ngap/aper"
	"github.com/free5gc/ngap/ie"
	"github.com/free5gc/ngap/message"

	"github.com/simgate/simgate/gtp/gtpu"
)

// fakePlane is a UserPlane that records what the gNB does to it.
type fakePlane struct {
	mu      sync.Mutex
	sends   map[netip.Addr]func([]byte)
	dns     map[netip.Addr]netip.Addr
	removed []netip.Addr
	got     chan []byte
}

func newFakePlane() *fakePlane {
	return &fakePlane{sends: map[netip.Addr]func([]byte){}, dns: map[netip.Addr]netip.Addr{}, got: make(chan []byte, 16)}
}

func (f *fakePlane) AddUE(ue, dns netip.Addr, send func([]byte)) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.sends[ue] != nil {
		return errors.New("fake plane: address in use")
	}
	f.sends[ue], f.dns[ue] = send, dns
	return nil
}

func (f *fakePlane) RemoveUE(ue netip.Addr) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.sends[ue] == nil {
		return errors.New("fake plane: unknown UE")
	}
	delete(f.sends, ue)
	f.removed = append(f.removed, ue)
	return nil
}

func (f *fakePlane) Deliver(pkt []byte) error {
	f.got <- bytes.Clone(pkt)
	return nil
}

func (f *fakePlane) send(ue netip.Addr) func([]byte) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.sends[ue]
}

func (f *fakePlane) wasRemoved(ue netip.Addr) bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, a := range f.removed {
		if a == ue {
			return true
		}
	}
	return false
}

// fakeUPF is a UPF's N3 socket, read and written by hand.
type fakeUPF struct {
	t  *testing.T
	uc *net.UDPConn
}

func newFakeUPF(t *testing.T) *fakeUPF {
	uc, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { uc.Close() })
	return &fakeUPF{t: t, uc: uc}
}

func (u *fakeUPF) port() uint16 { return uint16(u.uc.LocalAddr().(*net.UDPAddr).Port) }

// read returns the next datagram, decoded.
func (u *fakeUPF) read() (gtpu.Header, []byte) {
	u.t.Helper()
	buf := make([]byte, 4096)
	_ = u.uc.SetReadDeadline(time.Now().Add(5 * time.Second))
	n, err := u.uc.Read(buf)
	if err != nil {
		u.t.Fatalf("fake UPF: %v", err)
	}
	var h gtpu.Header
	payload, err := h.Decode(buf[:n])
	if err != nil {
		u.t.Fatalf("fake UPF: decode % x: %v", buf[:n], err)
	}
	return h, bytes.Clone(payload)
}

func (u *fakeUPF) none() {
	u.t.Helper()
	buf := make([]byte, 4096)
	_ = u.uc.SetReadDeadline(time.Now().Add(200 * time.Millisecond))
	if n, err := u.uc.Read(buf); err == nil {
		u.t.Fatalf("fake UPF: unexpected datagram % x", buf[:n])
	}
}

// sendDL sends a downlink G-PDU (DL PDU SESSION INFORMATION, QFI 1).
func (u *fakeUPF) sendDL(to netip.AddrPort, teid uint32, inner []byte) {
	u.t.Helper()
	psc := &gtpu.PDUSession{Type: gtpu.DL, QFI: 1}
	hl := gtpu.GPDUHeaderLen(psc)
	b := append(make([]byte, hl), inner...)
	g, err := gtpu.PrependGPDU(b, hl, teid, psc)
	if err != nil {
		u.t.Fatal(err)
	}
	if _, err := u.uc.WriteToUDPAddrPort(g, to); err != nil {
		u.t.Fatal(err)
	}
}

// ipv4Packet is a minimal IPv4 header (no options) from src to dst with a
// payload; the user plane checks only the version and destination.
func ipv4Packet(src, dst netip.Addr, payload string) []byte {
	b := make([]byte, 20+len(payload))
	b[0] = 0x45
	binary.BigEndian.PutUint16(b[2:4], uint16(len(b)))
	b[8], b[9] = 64, 17
	s, d := src.As4(), dst.As4()
	copy(b[12:16], s[:])
	copy(b[16:20], d[:])
	copy(b[20:], payload)
	return b
}

func TestN3UserPlane(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	plane := newFakePlane()
	upf := newFakeUPF(t)
	dns := netip.MustParseAddr("100.127.0.53")
	n3, err := ListenN3(ctx, N3Config{Addr: "127.0.0.1:0", DNS: dns, UPFPort: upf.port(), Logger: testLogger(t)}, plane)
	if err != nil {
		t.Fatal(err)
	}
	defer n3.Close()

	ev := newEvents()
	cfg := DefaultConfig()
	cfg.N3 = netip.Addr{} // from the endpoint
	cfg.N3Endpoint = n3
	cfg.TEIDBase = 0x200
	g, amf := dialed(t, cfg, ev)
	if g.Config().N3 != n3.Addr().Addr() {
		t.Errorf("gNB N3 %s, want the endpoint's %s", g.Config().N3, n3.Addr().Addr())
	}
	ueAddr := netip.MustParseAddr("10.45.0.9")
	other := netip.MustParseAddr("10.45.0.10")
	u := attach(t, g, amf, ev, &fakeNAS{addrs: map[uint8]netip.Addr{1: ueAddr}}, 51)
	upfAddr := netip.MustParseAddr("127.0.0.1")
	amf.send(sessionRequest(t, 51, u.RANID(), 1, setupTransfer(t, upfAddr, 0xabcd0001), "accept"))
	expect[*message.PDUSessionResourceSetupResponse](t, amf.next())
	expect[*message.UplinkNASTransport](t, amf.next())
	ev.wait(t, EventSessionSetup)

	send := plane.send(ueAddr)
	if send == nil {
		t.Fatal("session set up, but the UE is not on the user plane")
	}
	if plane.dns[ueAddr] != dns {
		t.Errorf("DNS server %s, want %s", plane.dns[ueAddr], dns)
	}

	// Uplink: a G-PDU to the UL F-TEID with UL PDU SESSION INFORMATION and
	// the session's QFI (TS 38.415 5.5.2.2).
	up := ipv4Packet(ueAddr, netip.MustParseAddr("100.127.0.53"), "uplink")
	send(up)
	h, payload := upf.read()
	if h.Type != gtpu.MsgGPDU || h.TEID != 0xabcd0001 || !h.HasPDUSession || h.PDUSession.Type != gtpu.UL ||
		h.PDUSession.QFI != 1 || !bytes.Equal(payload, up) {
		t.Errorf("uplink G-PDU %+v payload % x", h, payload)
	}

	// Downlink: the DL TEID's inner packet reaches the user plane.
	dl := ipv4Packet(netip.MustParseAddr("100.127.0.53"), ueAddr, "downlink")
	upf.sendDL(n3.Addr(), 0x200, dl)
	select {
	case got := <-plane.got:
		if !bytes.Equal(got, dl) {
			t.Errorf("delivered % x, want % x", got, dl)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("downlink packet not delivered")
	}
	// A packet for another UE on this UE's tunnel is not delivered; nor
	// is garbage.
	upf.sendDL(n3.Addr(), 0x200, ipv4Packet(upfAddr, other, "misrouted"))
	upf.sendDL(n3.Addr(), 0x200, []byte{0x60, 1, 2})
	// An unknown TEID is answered with an Error Indication (TS 29.281 7.3.1).
	upf.sendDL(n3.Addr(), 0x999, dl)
	h, payload = upf.read()
	if h.Type != gtpu.MsgErrorIndication {
		t.Fatalf("answer to an unknown TEID: type %d", h.Type)
	}
	if teid, _, err := gtpu.ParseErrorIndication(payload); err != nil || teid != 0x999 {
		t.Errorf("error indication teid %#x err %v", teid, err)
	}
	select {
	case got := <-plane.got:
		t.Fatalf("delivered % x", got)
	default:
	}
	waitFor(t, func() bool { return n3.Stats().DownlinkDropped == 2 }, "two downlink drops")

	// An Error Indication from the UPF is counted.
	ei, err := gtpu.ErrorIndication(0xabcd0001, upfAddr, gtpu.Port)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := upf.uc.WriteToUDPAddrPort(ei, n3.Addr()); err != nil {
		t.Fatal(err)
	}
	waitFor(t, func() bool { return n3.Stats().ErrorIndications == 1 }, "error indication counted")

	// Release: the UE leaves the user plane; its tunnel is gone both ways.
	amf.send(&message.PDUSessionResourceReleaseCommand{
		AMFUENGAPID: &ie.AMFUENGAPID{Value: 51}, RANUENGAPID: &ie.RANUENGAPID{Value: int64(u.RANID())},
		PDUSessionResourceToReleaseListRelCmd: &ie.PDUSessionResourceToReleaseListRelCmd{List: []ie.PDUSessionResourceToReleaseItemRelCmd{{
			PDUSessionID: &ie.PDUSessionID{Value: 1}, PDUSessionResourceReleaseCommandTransfer: &aper.OctetString{0x10},
		}}},
	})
	expect[*message.PDUSessionResourceReleaseResponse](t, amf.next())
	ev.wait(t, EventSessionReleased)
	if !plane.wasRemoved(ueAddr) {
		t.Error("released session's UE still on the user plane")
	}
	before := n3.Stats()
	send(up) // a packet the stack had in flight
	upf.none()
	if s := n3.Stats(); s.UplinkDropped != before.UplinkDropped+1 || s.Tunnels != 0 {
		t.Errorf("after release: %+v", s)
	}
	upf.sendDL(n3.Addr(), 0x200, dl)
	if h, _ := upf.read(); h.Type != gtpu.MsgErrorIndication {
		t.Errorf("downlink to a released tunnel answered with type %d", h.Type)
	}
}

func TestN3ContextReleaseAndClose(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	plane := newFakePlane()
	upf := newFakeUPF(t)
	n3, err := ListenN3(ctx, N3Config{Addr: "127.0.0.1:0", UPFPort: upf.port()}, plane)
	if err != nil {
		t.Fatal(err)
	}
	defer n3.Close()
	ev := newEvents()
	cfg := DefaultConfig()
	cfg.N3Endpoint = n3
	g, amf := dialed(t, cfg, ev)
	a1, a2 := netip.MustParseAddr("10.45.0.1"), netip.MustParseAddr("10.45.0.2")
	u1 := attach(t, g, amf, ev, &fakeNAS{addrs: map[uint8]netip.Addr{1: a1}}, 61)
	u2 := attach(t, g, amf, ev, &fakeNAS{addrs: map[uint8]netip.Addr{1: a2}}, 62)
	for i, u := range []*UE{u1, u2} {
		amf.send(sessionRequest(t, int64(61+i), u.RANID(), 1, setupTransfer(t, netip.MustParseAddr("127.0.0.1"), uint32(i+1)), "accept"))
		expect[*message.PDUSessionResourceSetupResponse](t, amf.next())
		expect[*message.UplinkNASTransport](t, amf.next())
		ev.wait(t, EventSessionSetup)
	}
	if n3.Stats().Tunnels != 2 {
		t.Fatalf("tunnels %d", n3.Stats().Tunnels)
	}
	amf.send(&message.UEContextReleaseCommand{
		UENGAPIDs: &ie.UENGAPIDs{Choice: &ie.UENGAPIDPair{
			AMFUENGAPID: &ie.AMFUENGAPID{Value: 61}, RANUENGAPID: &ie.RANUENGAPID{Value: int64(u1.RANID())},
		}},
		Cause: &ie.Cause{Choice: &ie.CauseNas{Value: ie.CauseNasPresentNormalRelease}},
	})
	expect[*message.UEContextReleaseComplete](t, amf.next())
	ev.wait(t, EventReleased)
	if !plane.wasRemoved(a1) || plane.wasRemoved(a2) {
		t.Errorf("after releasing UE 1: removed %v", plane.removed)
	}
	// Closing the gNB ends its tunnels.
	if err := g.Close(); err != nil {
		t.Fatal(err)
	}
	if !plane.wasRemoved(a2) || n3.Stats().Tunnels != 0 {
		t.Errorf("after close: removed %v, tunnels %d", plane.removed, n3.Stats().Tunnels)
	}
}

func TestN3Errors(t *testing.T) {
	ctx := context.Background()
	if _, err := ListenN3(ctx, N3Config{Addr: "127.0.0.1:0"}, nil); err == nil {
		t.Error("nil user plane accepted")
	}
	if _, err := ListenN3(ctx, N3Config{Addr: "127.0.0.1:0", DNS: netip.MustParseAddr("::1")}, newFakePlane()); err == nil {
		t.Error("IPv6 DNS accepted")
	}
	if _, err := ListenN3(ctx, N3Config{Addr: "[::1]:0"}, newFakePlane()); err == nil {
		t.Error("IPv6 N3 accepted")
	}
	if _, err := ListenN3(ctx, N3Config{Addr: "nonsense"}, newFakePlane()); err == nil {
		t.Error("bad address accepted")
	}
	n3, err := ListenN3(ctx, N3Config{Addr: "127.0.0.1:0"}, newFakePlane())
	if err != nil {
		t.Fatal(err)
	}
	s := Session{PSI: 1, UEAddr: netip.MustParseAddr("10.0.0.1"), UPF: netip.MustParseAddr("127.0.0.1"), DLTEID: 7, QFIs: []uint8{1}}
	for _, c := range []struct {
		name string
		mod  func(*Session)
	}{
		{"no UE address", func(s *Session) { s.UEAddr = netip.Addr{} }},
		{"IPv6 UPF", func(s *Session) { s.UPF = netip.MustParseAddr("::1") }},
		{"no QoS flow", func(s *Session) { s.QFIs = nil }},
	} {
		bad := s
		c.mod(&bad)
		if err := n3.open(nil, bad); err == nil {
			t.Errorf("%s: accepted", c.name)
		}
	}
	if err := n3.open(nil, s); err != nil {
		t.Fatal(err)
	}
	dup := s
	dup.UEAddr = netip.MustParseAddr("10.0.0.2")
	if err := n3.open(nil, dup); err == nil {
		t.Error("TEID in use accepted")
	}
	if err := n3.Close(); err != nil {
		t.Fatal(err)
	}
	if n3.Stats().Tunnels != 0 {
		t.Error("tunnels left after close")
	}
	s.DLTEID = 8
	if err := n3.open(nil, s); !errors.Is(err, ErrClosed) {
		t.Errorf("open after close: %v", err)
	}
}

func waitFor(t *testing.T, cond func() bool, what string) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// FuzzN3Handle: any datagram the socket decodes reaches the handler without
// a panic, and only inner packets for the tunnel's own UE are delivered.
func FuzzN3Handle(f *testing.F) {
	ue := netip.MustParseAddr("10.45.0.9")
	psc := &gtpu.PDUSession{Type: gtpu.DL, QFI: 1}
	hl := gtpu.GPDUHeaderLen(psc)
	for _, inner := range [][]byte{ipv4Packet(netip.MustParseAddr("100.127.0.53"), ue, "x"), {0x45}, nil} {
		b := append(make([]byte, hl), inner...)
		g, _ := gtpu.PrependGPDU(b, hl, 0x200, psc)
		f.Add(g)
	}
	ei, _ := gtpu.ErrorIndication(7, netip.MustParseAddr("127.0.0.1"), gtpu.Port)
	f.Add(ei)
	em, _ := gtpu.EndMarker(0x200, psc)
	f.Add(em)
	plane := &checkPlane{ue: ue}
	n := &N3{up: plane, log: slog.New(slog.DiscardHandler), tunnels: map[uint32]*tunnel{0x200: {ueAddr: ue, dlTEID: 0x200}}}
	f.Fuzz(func(t *testing.T, b []byte) {
		var p gtpu.Packet
		var err error
		p.Data = b
		if p.Payload, err = p.Header.Decode(b); err != nil {
			return
		}
		switch a := n.handle(&p); a {
		case gtpu.Consume, gtpu.Drop, gtpu.UnknownTEID:
		default:
			t.Fatalf("action %d", a)
		}
		if plane.bad.Load() {
			t.Fatal("delivered a packet for another address")
		}
	})
}

type checkPlane struct {
	ue  netip.Addr
	bad atomic.Bool
}

func (c *checkPlane) AddUE(netip.Addr, netip.Addr, func([]byte)) error { return nil }
func (c *checkPlane) RemoveUE(netip.Addr) error                        { return nil }
func (c *checkPlane) Deliver(pkt []byte) error {
	if len(pkt) < 20 || netip.AddrFrom4([4]byte(pkt[16:20])) != c.ue {
		c.bad.Store(true)
	}
	return nil
}
