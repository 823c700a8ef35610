package gtpu

import (
	"bytes"
	"context"
	"errors"
	"net"
	"net/netip"
	"sync"
	"testing"
	"time"
)

var loopback = netip.MustParseAddr("127.0.0.1")

func listen(t testing.TB, cfg Config) *Conn {
	t.Helper()
	c, err := Listen("127.0.0.1:0", cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// serve runs c.Serve(h) until the test ends.
func serve(t testing.TB, c *Conn, h Handler) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- c.Serve(ctx, h) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Serve: %v", err)
		}
	})
}

// peer is a plain UDP socket that sends crafted datagrams to a Conn and
// reads its answers.
type peer struct {
	t  testing.TB
	uc *net.UDPConn
}

func newPeer(t testing.TB) *peer { return newPeerAt(t, loopback) }

func newPeerAt(t testing.TB, ip netip.Addr) *peer {
	t.Helper()
	uc, err := net.ListenUDP("udp4", net.UDPAddrFromAddrPort(netip.AddrPortFrom(ip, 0)))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { uc.Close() })
	return &peer{t: t, uc: uc}
}

func (p *peer) addr() netip.AddrPort { return p.uc.LocalAddr().(*net.UDPAddr).AddrPort() }

func (p *peer) send(to netip.AddrPort, b []byte) {
	p.t.Helper()
	if _, err := p.uc.WriteToUDPAddrPort(b, to); err != nil {
		p.t.Fatal(err)
	}
}

// recv returns the next datagram; the deadline only keeps a broken test
// from hanging.
func (p *peer) recv() ([]byte, netip.AddrPort) {
	p.t.Helper()
	buf := make([]byte, 65536)
	p.uc.SetReadDeadline(time.Now().Add(10 * time.Second))
	n, from, err := p.uc.ReadFromUDPAddrPort(buf)
	if err != nil {
		p.t.Fatalf("peer: no datagram: %v", err)
	}
	return buf[:n], from
}

// echo sends an Echo Request and waits for its Echo Response, skipping
// other datagrams, which it returns. Because a Conn handles datagrams in
// order, everything sent before has then been handled.
func (p *peer) echo(to netip.AddrPort, seq uint16) [][]byte {
	p.t.Helper()
	req, err := EchoRequest(seq)
	if err != nil {
		p.t.Fatal(err)
	}
	p.send(to, req)
	var others [][]byte
	for {
		b, _ := p.recv()
		var h Header
		if _, err := h.Decode(b); err == nil && h.Type == MsgEchoResponse && h.Seq == seq {
			return others
		}
		others = append(others, b)
	}
}

func gpdu(t testing.TB, teid uint32, psc *PDUSession, payload []byte) []byte {
	t.Helper()
	buf := make([]byte, 32+len(payload))
	copy(buf[32:], payload)
	b, err := PrependGPDU(buf, 32, teid, psc)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// received is a copy of what a handler saw.
type received struct {
	h       Header
	payload []byte
	from    netip.AddrPort
}

func recorder(ch chan<- received, act func(p *Packet) Action) Handler {
	return func(p *Packet) Action {
		ch <- received{h: p.Header, payload: bytes.Clone(p.Payload), from: p.Addr}
		return act(p)
	}
}

// waitStats waits until c's counters satisfy ok: a send is counted after
// the datagram is out, so the peer may see it first.
func waitStats(t *testing.T, c *Conn, ok func(Stats) bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for s := c.Stats(); !ok(s); s = c.Stats() {
		if time.Now().After(deadline) {
			t.Fatalf("stats %+v", s)
		}
		time.Sleep(2 * time.Millisecond)
	}
}

func TestServeGPDU(t *testing.T) {
	upf := listen(t, Config{})
	got := make(chan received, 10)
	serve(t, upf, recorder(got, func(*Packet) Action { return Consume }))
	gnb := newPeer(t)
	payload := []byte("an inner IPv4 packet would be here")
	b := gpdu(t, 0x100, &PDUSession{Type: UL, QFI: 9}, payload)
	gnb.send(upf.LocalAddr(), b)
	r := <-got
	if r.h.Type != MsgGPDU || r.h.TEID != 0x100 || !r.h.HasPDUSession || r.h.PDUSession != (PDUSession{Type: UL, QFI: 9}) {
		t.Errorf("header %+v", r.h)
	}
	if !bytes.Equal(r.payload, payload) || r.from != gnb.addr() {
		t.Errorf("payload %q from %s", r.payload, r.from)
	}
	gnb.echo(upf.LocalAddr(), 1)
	waitStats(t, upf, func(s Stats) bool {
		return s.RxPackets == 2 && s.RxBytes == uint64(len(b)+12) && s.TxPackets == 1 && s.TxBytes == 14 && s.EchoRequests == 1
	})
}

// TestServeForward: a relay rewrites the TEID (or re-encapsulates) and
// forwards, batched, to a receiver reading with ReadBatch.
func TestServeForward(t *testing.T) {
	for _, encap := range []bool{false, true} {
		name := map[bool]string{false: "rewrite TEID", true: "encap UL to DL"}[encap]
		t.Run(name, func(t *testing.T) {
			dst := listen(t, Config{ReadBuffer: 1 << 20})
			relay := listen(t, Config{})
			dl := &PDUSession{Type: DL, QFI: 9, RQI: true}
			serve(t, relay, func(p *Packet) Action {
				if p.Header.TEID != 0x100 {
					return UnknownTEID
				}
				if encap {
					if err := p.Encap(0x300, dl); err != nil {
						t.Error(err)
						return Drop
					}
				} else if err := SetTEID(p.Data, 0x200); err != nil {
					t.Error(err)
				}
				p.Addr = dst.LocalAddr()
				return Forward
			})
			src := newPeer(t)
			const n = 100
			for i := range n {
				src.send(relay.LocalAddr(), gpdu(t, 0x100, &PDUSession{Type: UL, QFI: 9}, []byte{byte(i), 1, 2, 3}))
			}
			pkts := make([]Packet, 16)
			seen := make(map[byte]bool)
			for len(seen) < n {
				dst.uc.SetReadDeadline(time.Now().Add(10 * time.Second))
				k, err := dst.ReadBatch(pkts)
				if err != nil {
					t.Fatalf("after %d: %v", len(seen), err)
				}
				for _, p := range pkts[:k] {
					if p.Err != nil {
						t.Fatal(p.Err)
					}
					want := PDUSession{Type: UL, QFI: 9}
					teid := uint32(0x200)
					if encap {
						want, teid = *dl, 0x300
					}
					if p.Header.TEID != teid || p.Header.PDUSession != want || len(p.Payload) != 4 || p.Addr != relay.LocalAddr() {
						t.Fatalf("forwarded %+v payload %x from %s", p.Header, p.Payload, p.Addr)
					}
					seen[p.Payload[0]] = true
				}
			}
			waitStats(t, relay, func(s Stats) bool { return s.TxPackets == n && s.RxPackets == n })
		})
	}
}

func TestServeEcho(t *testing.T) {
	a, b := listen(t, Config{}), listen(t, Config{})
	got := make(chan received, 10)
	serve(t, a, recorder(got, func(*Packet) Action { return Consume }))
	serve(t, b, func(*Packet) Action { t.Error("b's handler called"); return Drop })

	// A raw peer sees the response octets: same sequence, Recovery 0.
	p := newPeer(t)
	req, _ := EchoRequest(0x7777)
	p.send(b.LocalAddr(), req)
	resp, from := p.recv()
	if want, _ := EchoResponse(0x7777); !bytes.Equal(resp, want) || from != b.LocalAddr() {
		t.Fatalf("echo response %x from %s", resp, from)
	}
	// Conn to Conn: the response reaches a's handler.
	if err := a.SendEchoRequest(b.LocalAddr(), 9); err != nil {
		t.Fatal(err)
	}
	r := <-got
	if r.h.Type != MsgEchoResponse || r.h.Seq != 9 || r.from != b.LocalAddr() {
		t.Fatalf("a got %+v from %s", r.h, r.from)
	}
	if ies, err := ParseIEs(r.payload); err != nil || !ies.HasRecovery {
		t.Fatalf("Echo Response IEs %+v %v", ies, err)
	}
	waitStats(t, b, func(s Stats) bool { return s.EchoRequests == 2 && s.TxPackets == 2 })
}

// TestErrorIndicationRateLimited: G-PDUs for an unknown TEID get Error
// Indications (TS 29.281 7.3.1), at most Burst of them at once per peer.
func TestErrorIndicationRateLimited(t *testing.T) {
	upf := listen(t, Config{ErrorIndicationRate: 0.001, ErrorIndicationBurst: 3})
	serve(t, upf, func(p *Packet) Action { return UnknownTEID })
	gnb := newPeer(t)
	for range 10 {
		gnb.send(upf.LocalAddr(), gpdu(t, 0xdead, &PDUSession{Type: UL, QFI: 1}, []byte{0x45}))
	}
	got := gnb.echo(upf.LocalAddr(), 1)
	if len(got) != 3 {
		t.Fatalf("%d Error Indications, want 3", len(got))
	}
	for _, b := range got {
		var h Header
		payload, err := h.Decode(b)
		if err != nil || h.Type != MsgErrorIndication || h.TEID != 0 || !h.HasSeq() {
			t.Fatalf("%+v %v", h, err)
		}
		if !h.HasUDPPort || h.UDPPort != gnb.addr().Port() {
			t.Errorf("UDP Port extension %v %d, want %d", h.HasUDPPort, h.UDPPort, gnb.addr().Port())
		}
		teid, addr, err := ParseErrorIndication(payload)
		if err != nil || teid != 0xdead || addr != loopback {
			t.Errorf("TEID %#x peer %s: %v", teid, addr, err)
		}
	}
	s := upf.Stats()
	if s.Drops[DropUnknownTEID] != 10 || s.ErrorIndications != 3 || s.RateLimited != 7 {
		t.Errorf("stats %+v", s)
	}
	// Another peer (address) has its own bucket.
	other := newPeerAt(t, netip.MustParseAddr("127.0.0.2"))
	other.send(upf.LocalAddr(), gpdu(t, 0xbeef, nil, []byte{0x45}))
	if got := other.echo(upf.LocalAddr(), 2); len(got) != 1 {
		t.Fatalf("second peer: %d Error Indications", len(got))
	}
	// Only G-PDUs are answered with Error Indications.
	em, _ := EndMarker(0xdead, nil)
	other.send(upf.LocalAddr(), em)
	if got := other.echo(upf.LocalAddr(), 3); len(got) != 0 {
		t.Fatalf("End Marker answered with %x", got)
	}
}

func TestSendErrorIndication(t *testing.T) {
	c := listen(t, Config{ErrorIndicationRate: 0.001, ErrorIndicationBurst: 1})
	p := newPeer(t)
	for i, want := range []bool{true, false} {
		sent, err := c.SendErrorIndication(p.addr(), 42)
		if err != nil || sent != want {
			t.Fatalf("%d: sent %v, %v", i, sent, err)
		}
	}
	b, _ := p.recv()
	var h Header
	payload, err := h.Decode(b)
	if err != nil {
		t.Fatal(err)
	}
	if teid, _, err := ParseErrorIndication(payload); err != nil || teid != 42 {
		t.Fatalf("%d %v", teid, err)
	}
	if _, err := Listen("127.0.0.1:0", Config{ErrorIndicationRate: -1}); err != nil {
		t.Fatal(err)
	}
}

func TestServeMalformed(t *testing.T) {
	upf := listen(t, Config{MaxDatagram: 512})
	serve(t, upf, func(p *Packet) Action { t.Errorf("handler got %+v", p.Header); return Drop })
	gnb := newPeer(t)
	bad := map[Error]string{
		ErrShort:            "30ff00",
		ErrVersion:          "48ff0004 00000001 deadbeef",
		ErrProtocolType:     "20ff0004 00000001 deadbeef",
		ErrLength:           "30ff0009 00000001 deadbeef",
		ErrExtTruncated:     "34ff0008 00000001 00000085 01100985",
		ErrExtLength:        "34ff0008 00000001 00000085 00100900",
		ErrPDUSession:       "34ff0008 00000001 00000085 01f00900",
		ErrUnknownExtension: "34ff000c 00000001 00000082 01000000 deadbeef",
	}
	for _, in := range bad {
		gnb.send(upf.LocalAddr(), hx(t, in))
	}
	gnb.send(upf.LocalAddr(), gpdu(t, 1, nil, make([]byte, 600))) // ErrTooBig
	gnb.send(upf.LocalAddr(), hx(t, "30030000 00000000"))         // Version Not Supported is GTP-C
	got := gnb.echo(upf.LocalAddr(), 5)
	// TS 29.281 5.2.1: the unknown extension is answered.
	if len(got) != 1 {
		t.Fatalf("%d answers, want 1", len(got))
	}
	var h Header
	payload, err := h.Decode(got[0])
	if err != nil || h.Type != MsgSupportedExtensionHeadersNotification {
		t.Fatalf("%+v %v", h, err)
	}
	if ies, err := ParseIEs(payload); err != nil || !bytes.Equal(ies.ExtHeaderTypes, []byte{ExtUDPPort, ExtPDUSessionContainer}) {
		t.Fatalf("%+v %v", ies, err)
	}
	s := upf.Stats()
	for e := range bad {
		if s.Malformed[e] != 1 {
			t.Errorf("Malformed[%v] = %d", e, s.Malformed[e])
		}
	}
	if s.Malformed[ErrTooBig] != 1 || s.Drops[DropMalformed] != uint64(len(bad)+1) ||
		s.Drops[DropUnknownType] != 1 || s.ExtNotifications != 1 {
		t.Errorf("stats %+v", s)
	}
}

func TestHandlerDrop(t *testing.T) {
	c := listen(t, Config{})
	serve(t, c, func(*Packet) Action { return Drop })
	p := newPeer(t)
	p.send(c.LocalAddr(), gpdu(t, 1, nil, []byte{1}))
	if got := p.echo(c.LocalAddr(), 1); len(got) != 0 {
		t.Fatal(got)
	}
	if s := c.Stats(); s.Drops[DropHandler] != 1 {
		t.Fatalf("stats %+v", s)
	}
}

func TestReadWriteBatch(t *testing.T) {
	a := listen(t, Config{Batch: 8})
	b := listen(t, Config{ReadBuffer: 1 << 20})
	const n = 100
	out := make([]Packet, n)
	for i := range out {
		out[i] = Packet{Addr: b.LocalAddr(), Data: gpdu(t, uint32(i), &PDUSession{Type: DL, QFI: 1}, []byte{byte(i)})}
	}
	if k, err := a.WriteBatch(out); k != n || err != nil {
		t.Fatalf("WriteBatch %d %v", k, err)
	}
	in := make([]Packet, 32)
	got := 0
	for got < n {
		b.uc.SetReadDeadline(time.Now().Add(10 * time.Second))
		k, err := b.ReadBatch(in)
		if err != nil {
			t.Fatal(err)
		}
		for _, p := range in[:k] {
			if p.Err != nil || p.Addr != a.LocalAddr() || p.Header.TEID != uint32(p.Payload[0]) {
				t.Fatalf("%+v %v", p.Header, p.Err)
			}
		}
		got += k
	}
	if s := a.Stats(); s.TxPackets != n {
		t.Errorf("a stats %+v", s)
	}
	if k, err := b.ReadBatch(nil); k != 0 || err != nil {
		t.Errorf("empty ReadBatch: %d %v", k, err)
	}
}

// A datagram the socket refuses is dropped; the rest of the batch goes.
func TestWriteBatchRefused(t *testing.T) {
	a, b := listen(t, Config{}), listen(t, Config{})
	v6 := netip.MustParseAddrPort("[::1]:2152") // not reachable from an IPv4 socket
	out := []Packet{
		{Addr: b.LocalAddr(), Data: gpdu(t, 1, nil, nil)},
		{Addr: v6, Data: gpdu(t, 2, nil, nil)},
		{Addr: b.LocalAddr(), Data: gpdu(t, 3, nil, nil)},
	}
	k, err := a.WriteBatch(out)
	if k != 2 || err == nil {
		t.Fatalf("sent %d, err %v", k, err)
	}
	if s := a.Stats(); s.Drops[DropSend] != 1 || s.TxPackets != 2 {
		t.Errorf("stats %+v", s)
	}
	in := make([]Packet, 4)
	var teids []uint32
	for len(teids) < 2 {
		b.uc.SetReadDeadline(time.Now().Add(10 * time.Second))
		n, err := b.ReadBatch(in)
		if err != nil {
			t.Fatal(err)
		}
		for _, p := range in[:n] {
			teids = append(teids, p.Header.TEID)
		}
	}
	if teids[0] != 1 || teids[1] != 3 {
		t.Fatalf("received TEIDs %v", teids)
	}
}

func TestServeStops(t *testing.T) {
	c := listen(t, Config{})
	if err := c.Serve(context.Background(), nil); err == nil {
		t.Fatal("Serve with a nil handler")
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- c.Serve(ctx, func(*Packet) Action { return Consume }) }()
	p := newPeer(t)
	p.echo(c.LocalAddr(), 1) // serving
	cancel()
	if err := <-done; err != nil {
		t.Fatalf("Serve after cancel: %v", err)
	}
	// The socket still works after Serve: the wake-up deadline is gone.
	req, _ := EchoRequest(2)
	p.send(c.LocalAddr(), req)
	pkts := make([]Packet, 1)
	if n, err := c.ReadBatch(pkts); n != 1 || err != nil || pkts[0].Header.Type != MsgEchoRequest {
		t.Fatalf("ReadBatch after Serve: %d %v", n, err)
	}
	// Close ends Serve too.
	go func() { done <- c.Serve(context.Background(), func(*Packet) Action { return Consume }) }()
	p.echo(c.LocalAddr(), 3)
	c.Close()
	if err := <-done; err != nil {
		t.Fatalf("Serve after Close: %v", err)
	}
	// A context that has already ended.
	c2 := listen(t, Config{})
	ended, cancel2 := context.WithCancel(context.Background())
	cancel2()
	if err := c2.Serve(ended, func(*Packet) Action { return Consume }); err != nil {
		t.Fatal(err)
	}
}

type tapRecord struct {
	out           bool
	local, remote netip.AddrPort
	b             []byte
}

type recordingTap struct {
	mu  sync.Mutex
	all []tapRecord
}

func (r *recordingTap) Datagram(out bool, local, remote netip.AddrPort, b []byte) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.all = append(r.all, tapRecord{out, local, remote, bytes.Clone(b)})
}

func (r *recordingTap) records() []tapRecord {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]tapRecord(nil), r.all...)
}

func TestTap(t *testing.T) {
	tap := &recordingTap{}
	c := listen(t, Config{Tap: tap})
	serve(t, c, func(*Packet) Action { return Consume })
	p := newPeer(t)
	p.echo(c.LocalAddr(), 4)
	if err := c.WriteTo([]byte("x"), p.addr()); err != nil {
		t.Fatal(err)
	}
	p.recv()
	req, _ := EchoRequest(4)
	resp, _ := EchoResponse(4)
	want := []tapRecord{
		{false, c.LocalAddr(), p.addr(), req},
		{true, c.LocalAddr(), p.addr(), resp},
		{true, c.LocalAddr(), p.addr(), []byte("x")},
	}
	got := tap.records()
	if len(got) != len(want) {
		t.Fatalf("tap saw %d datagrams: %+v", len(got), got)
	}
	for i := range want {
		if got[i].out != want[i].out || got[i].local != want[i].local || got[i].remote != want[i].remote || !bytes.Equal(got[i].b, want[i].b) {
			t.Errorf("%d: %+v, want %+v", i, got[i], want[i])
		}
	}
}

func TestEncapErrors(t *testing.T) {
	var p Packet
	if err := p.Encap(1, nil); !errors.Is(err, ErrHeadroom) {
		t.Fatalf("unread packet: %v", err)
	}
	// Headroom 1 leaves no room for a 16-octet header in front of a
	// payload that had a plain 8-octet one.
	a, b := listen(t, Config{}), listen(t, Config{Headroom: 1})
	a.WriteTo(gpdu(t, 1, nil, []byte{1, 2}), b.LocalAddr())
	pkts := make([]Packet, 1)
	b.uc.SetReadDeadline(time.Now().Add(10 * time.Second))
	if _, err := b.ReadBatch(pkts); err != nil {
		t.Fatal(err)
	}
	if err := pkts[0].Encap(1, &PDUSession{Type: DL}); !errors.Is(err, ErrHeadroom) {
		t.Fatalf("Encap without headroom: %v", err)
	}
	if err := pkts[0].Encap(7, nil); err != nil || !bytes.Equal(pkts[0].Data, gpdu(t, 7, nil, []byte{1, 2})) {
		t.Fatalf("Encap in the old header's room: %x %v", pkts[0].Data, err)
	}
}

func TestListen(t *testing.T) {
	for _, c := range []struct {
		addr string
		cfg  Config
	}{
		{"0.0.0.0:0", Config{}}, // Error Indications need PeerAddress
		{"nonsense", Config{}},
		{"127.0.0.1:0", Config{MaxDatagram: 70000}},
		{"127.0.0.1:0", Config{Headroom: -1}},
		{"192.0.2.1:0", Config{}}, // not a local address
	} {
		if conn, err := Listen(c.addr, c.cfg); err == nil {
			conn.Close()
			t.Errorf("Listen(%q, %+v) succeeded", c.addr, c.cfg)
		}
	}
	c, err := Listen("0.0.0.0:0", Config{PeerAddress: loopback})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if c.LocalAddr().Port() == 0 || !c.LocalAddr().Addr().IsUnspecified() {
		t.Errorf("bound to %s", c.LocalAddr())
	}
	c6, err := Listen("[::1]:0", Config{})
	if err != nil {
		t.Skipf("no IPv6 loopback: %v", err)
	}
	defer c6.Close()
	serve(t, c6, func(*Packet) Action { return Consume })
	uc, err := net.ListenUDP("udp6", &net.UDPAddr{IP: net.IPv6loopback})
	if err != nil {
		t.Fatal(err)
	}
	defer uc.Close()
	req, _ := EchoRequest(6)
	uc.WriteToUDPAddrPort(req, c6.LocalAddr())
	buf := make([]byte, 100)
	uc.SetReadDeadline(time.Now().Add(10 * time.Second))
	n, _, err := uc.ReadFromUDPAddrPort(buf)
	var h Header
	if _, derr := h.Decode(buf[:n]); err != nil || derr != nil || h.Type != MsgEchoResponse || h.Seq != 6 {
		t.Fatalf("IPv6 echo: %+v %v %v", h, err, derr)
	}
}

func TestParseAddrPort(t *testing.T) {
	for _, c := range []struct {
		in, want string
	}{
		{"", "0.0.0.0:2152"},
		{"10.0.0.1", "10.0.0.1:2152"},
		{"10.0.0.1:3000", "10.0.0.1:3000"},
		{":0", "0.0.0.0:0"},
		{"[::1]:2153", "[::1]:2153"},
		{"::1", "[::1]:2152"},
		{"::ffff:10.0.0.1", "10.0.0.1:2152"},
	} {
		got, err := ParseAddrPort(c.in)
		if err != nil || got.String() != c.want {
			t.Errorf("%q: %s %v, want %s", c.in, got, err, c.want)
		}
	}
	for _, in := range []string{"host:2152", "10.0.0.1:x", "10.0.0.1:70000"} {
		if _, err := ParseAddrPort(in); err == nil {
			t.Errorf("%q parsed", in)
		}
	}
}

func TestDropReasonString(t *testing.T) {
	seen := map[string]bool{}
	for r := DropReason(0); r < numDropReasons; r++ {
		s := r.String()
		if seen[s] || s == "" {
			t.Errorf("%d: %q", r, s)
		}
		seen[s] = true
	}
	if s := DropReason(99).String(); s != "DropReason(99)" {
		t.Error(s)
	}
}

func TestLimiter(t *testing.T) {
	t0 := time.Unix(1000, 0)
	a, b := netip.MustParseAddr("10.0.0.1"), netip.MustParseAddr("10.0.0.2")
	l := newLimiter(2, 3, 2) // 2/s, burst 3, 2 peers
	steps := []struct {
		peer netip.Addr
		at   time.Duration
		want bool
	}{
		{a, 0, true}, {a, 0, true}, {a, 0, true}, {a, 0, false}, // burst spent
		{b, 0, true},                                              // b has its own bucket
		{a, 499 * time.Millisecond, false},                        // 0.998 tokens
		{a, 500 * time.Millisecond, true},                         // 1 token after 0.5 s at 2/s
		{a, 500 * time.Millisecond, false},                        //
		{a, 10 * time.Second, true},                               // refilled, capped at burst
		{a, 10 * time.Second, true},                               //
		{a, 10 * time.Second, true},                               //
		{a, 10 * time.Second, false},                              //
		{netip.MustParseAddr("10.0.0.3"), 0, false},               // 2 peers remembered, neither bucket full at t0
		{netip.MustParseAddr("10.0.0.4"), 10 * time.Second, true}, // b's is full by 10 s: forgotten to make room
	}
	for i, s := range steps {
		if got := l.allow(s.peer, t0.Add(s.at)); got != s.want {
			t.Fatalf("step %d (%s at %v): %v, want %v", i, s.peer, s.at, got, s.want)
		}
	}
	if len(l.peers) > 2 {
		t.Errorf("%d peers remembered, max 2", len(l.peers))
	}
	if newLimiter(0, 5, 10).allow(a, t0) || newLimiter(-1, 5, 10).allow(a, t0) {
		t.Error("a limiter with no rate allowed a message")
	}
}

// Serve's per-datagram path allocates nothing for G-PDUs, whether the
// handler consumes or forwards them (a property, not a timing).
func TestProcessDoesNotAllocate(t *testing.T) {
	c := listen(t, Config{})
	w := newWriter(1)
	data := gpdu(t, 0x100, &PDUSession{Type: UL, QFI: 9}, []byte{0x45, 0, 0, 20})
	to := netip.MustParseAddrPort("127.0.0.1:2152")
	for _, act := range []Action{Consume, Forward, Drop} {
		h := func(p *Packet) Action {
			if act == Forward {
				_ = SetTEID(p.Data, 0x200)
				p.Addr = to
			}
			return act
		}
		var p Packet
		n := testing.AllocsPerRun(100, func() {
			_ = SetTEID(data, 0x100) // as received: forwarding rewrote it
			p.Data = data
			p.Payload, p.Err = p.Header.Decode(p.Data)
			w.n = 0
			c.process(&p, h, &w)
		})
		if n != 0 {
			t.Errorf("action %d: %v allocations per datagram", act, n)
		}
	}
}
