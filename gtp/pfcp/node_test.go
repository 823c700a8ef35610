package pfcp

import (
	"context"
	"errors"
	"net"
	"net/netip"
	"runtime"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/wmnsk/go-pfcp/ie"
	"github.com/wmnsk/go-pfcp/message"

	"github.com/simgate/simgate/gtp/pfcp/pfcptest"
)

var (
	ipA = netip.MustParseAddr("127.0.0.1")
	ipB = netip.MustParseAddr("127.0.0.2")
)

func listenUDP(t testing.TB, ap netip.AddrPort) *net.UDPConn {
	t.Helper()
	c, err := net.ListenUDP("udp", net.UDPAddrFromAddrPort(ap))
	if err != nil {
		t.Fatalf("listen %s: %v", ap, err)
	}
	return c
}

// events collects a node's peer events.
type events struct {
	mu  sync.Mutex
	evs []PeerEvent
}

func (e *events) add(ev PeerEvent) {
	e.mu.Lock()
	e.evs = append(e.evs, ev)
	e.mu.Unlock()
}

// wait returns the first event of kind, waiting up to 5 s.
func (e *events) wait(t *testing.T, kind EventKind) PeerEvent {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for {
		e.mu.Lock()
		for _, ev := range e.evs {
			if ev.Kind == kind {
				e.mu.Unlock()
				return ev
			}
		}
		e.mu.Unlock()
		if time.Now().After(deadline) {
			t.Fatalf("no %s event; got %+v", kind, e.evs)
		}
		time.Sleep(2 * time.Millisecond)
	}
}

func (e *events) count(kind EventKind) int {
	e.mu.Lock()
	defer e.mu.Unlock()
	n := 0
	for _, ev := range e.evs {
		if ev.Kind == kind {
			n++
		}
	}
	return n
}

type nodeOpts struct {
	ip        netip.Addr
	conn      PacketConn
	cfg       Config
	heartbeat time.Duration
}

// startNode runs a node until the test ends; its events are collected.
func startNode(t *testing.T, o nodeOpts) (*Node, *events, context.CancelFunc) {
	t.Helper()
	if o.conn == nil {
		if !o.ip.IsValid() {
			o.ip = ipA
		}
		o.conn = listenUDP(t, netip.AddrPortFrom(o.ip, 0))
	}
	ev := &events{}
	cfg := o.cfg
	if cfg.T1 == 0 {
		cfg.T1 = 50 * time.Millisecond
	}
	if cfg.N1 == 0 {
		cfg.N1 = 2
	}
	cfg.HeartbeatInterval = o.heartbeat
	if cfg.HeartbeatInterval == 0 {
		cfg.HeartbeatInterval = -1
	}
	cfg.OnPeerEvent = ev.add
	ctx, cancel := context.WithCancel(context.Background())
	n, err := Start(ctx, o.conn, cfg)
	if err != nil {
		cancel()
		t.Fatalf("Start: %v", err)
	}
	t.Cleanup(func() {
		cancel()
		<-n.Done()
	})
	return n, ev, cancel
}

func tctx(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// TestAssociationAndHeartbeat: an association set up by A is known to both
// nodes with each other's Node ID and Recovery Time Stamp, and heartbeats
// flow both ways.
func TestAssociationAndHeartbeat(t *testing.T) {
	recA, recB := time.Unix(1_700_000_000, 0), time.Unix(1_700_000_500, 0)
	rec := pfcptest.NewRecorder(listenUDP(t, netip.AddrPortFrom(ipA, 0)))
	a, evA, _ := startNode(t, nodeOpts{conn: rec, heartbeat: 20 * time.Millisecond, cfg: Config{RecoveryTime: recA, Features: ie.NewCPFunctionFeatures(0)}})
	b, evB, _ := startNode(t, nodeOpts{ip: ipB, heartbeat: 20 * time.Millisecond, cfg: Config{NodeID: "upf.example.org", RecoveryTime: recB, Features: ie.NewUPFunctionFeatures(0x10, 0)}})

	got, err := a.Associate(tctx(t), b.LocalAddr())
	if err != nil {
		t.Fatalf("Associate: %v", err)
	}
	if got.NodeID != "upf.example.org" || !got.RecoveryTime.Equal(recB) || got.Peer != b.LocalAddr() {
		t.Errorf("A's association: %+v", got)
	}
	if len(got.Features) < 1 || got.Features[0] != 0x10 {
		t.Errorf("UP features %x, want FTUP (0x10)", got.Features)
	}
	evA.wait(t, PeerAssociated)
	ev := evB.wait(t, PeerAssociated)
	if ev.NodeID != "127.0.0.1" || !ev.RecoveryTime.Equal(recA) || ev.Peer != a.LocalAddr() || ev.Replaced {
		t.Errorf("B's association event: %+v", ev)
	}
	if as := b.Associations(); len(as) != 1 || as[0].Peer != a.LocalAddr() {
		t.Errorf("B's associations: %+v", as)
	}
	// Associate again: the existing association, no new request.
	sent := a.Stats().RequestsSent
	if _, err := a.Associate(tctx(t), b.LocalAddr()); err != nil || a.Stats().RequestsSent != sent {
		t.Errorf("second Associate sent a request or failed: %v", err)
	}

	deadline := time.Now().Add(5 * time.Second)
	for rec.Count(pfcptest.Out, message.MsgTypeHeartbeatRequest) < 2 || rec.Count(pfcptest.In, message.MsgTypeHeartbeatRequest) < 2 ||
		rec.Count(pfcptest.Out, message.MsgTypeHeartbeatResponse) < 2 || rec.Count(pfcptest.In, message.MsgTypeHeartbeatResponse) < 2 {
		if time.Now().After(deadline) {
			t.Fatal("heartbeats did not flow both ways")
		}
		time.Sleep(5 * time.Millisecond)
	}
	if evA.count(PeerLost)+evA.count(PeerRestarted)+evB.count(PeerLost)+evB.count(PeerRestarted) != 0 {
		t.Errorf("spurious events: A %+v B %+v", evA.evs, evB.evs)
	}
}

// TestPeerLoss: a peer that stops answering heartbeats is reported lost and
// its association dropped, after one heartbeat and its N1 retransmissions.
func TestPeerLoss(t *testing.T) {
	a, evA, _ := startNode(t, nodeOpts{heartbeat: 20 * time.Millisecond, cfg: Config{T1: 30 * time.Millisecond, N1: 2}})
	b, _, stopB := startNode(t, nodeOpts{ip: ipB})
	if _, err := a.Associate(tctx(t), b.LocalAddr()); err != nil {
		t.Fatal(err)
	}
	stopB()
	<-b.Done()
	ev := evA.wait(t, PeerLost)
	if ev.Peer != b.LocalAddr() {
		t.Errorf("lost %s, want %s", ev.Peer, b.LocalAddr())
	}
	if _, ok := a.Association(b.LocalAddr()); ok {
		t.Error("association with a lost peer remains")
	}
	if s := a.Stats(); s.Timeouts < 1 || s.Retransmissions < 2 {
		t.Errorf("stats %+v: want a timeout after 2 retransmissions", s)
	}
}

// TestPeerRestart: a peer that comes back with another Recovery Time Stamp
// is reported restarted, whether A learns it from the response to its
// heartbeat or from the peer's new association setup.
func TestPeerRestart(t *testing.T) {
	for _, tc := range []struct {
		name                 string
		hbA                  time.Duration
		reassociate          bool
		wantReplacedAssocEvt bool
	}{
		{"seen in A's heartbeat", 20 * time.Millisecond, false, false},
		{"seen in association setup", 0, true, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			a, evA, _ := startNode(t, nodeOpts{heartbeat: tc.hbA})
			conn := listenUDP(t, netip.AddrPortFrom(ipB, 0))
			addrB := netip.MustParseAddrPort(conn.LocalAddr().String())
			b, _, stopB := startNode(t, nodeOpts{conn: conn, cfg: Config{RecoveryTime: time.Unix(1_700_000_000, 0)}})
			if _, err := b.Associate(tctx(t), a.LocalAddr()); err != nil {
				t.Fatal(err)
			}
			evA.wait(t, PeerAssociated)
			stopB()
			<-b.Done()
			b2, _, _ := startNode(t, nodeOpts{conn: listenUDP(t, addrB), cfg: Config{RecoveryTime: time.Unix(1_700_000_009, 0)}})
			if tc.reassociate {
				if _, err := b2.Associate(tctx(t), a.LocalAddr()); err != nil {
					t.Fatal(err)
				}
			}
			ev := evA.wait(t, PeerRestarted)
			if ev.Peer != addrB || !ev.RecoveryTime.Equal(time.Unix(1_700_000_009, 0)) {
				t.Errorf("restart event %+v", ev)
			}
			if tc.wantReplacedAssocEvt {
				if evA.count(PeerAssociated) != 2 {
					t.Errorf("%d association events, want 2", evA.count(PeerAssociated))
				}
				if as, ok := a.Association(addrB); !ok || !as.RecoveryTime.Equal(time.Unix(1_700_000_009, 0)) {
					t.Errorf("association after re-setup: %+v %v", as, ok)
				}
			} else if _, ok := a.Association(addrB); ok {
				t.Error("association survived the restart")
			}
		})
	}
}

// TestRelease: either side's release ends the association on both; a
// release without an association is refused with cause 72.
func TestRelease(t *testing.T) {
	a, evA, _ := startNode(t, nodeOpts{})
	b, evB, _ := startNode(t, nodeOpts{ip: ipB})
	ctx := tctx(t)
	if _, err := a.Associate(ctx, b.LocalAddr()); err != nil {
		t.Fatal(err)
	}
	evB.wait(t, PeerAssociated)
	if err := a.Release(ctx, b.LocalAddr()); err != nil {
		t.Fatalf("Release: %v", err)
	}
	evA.wait(t, PeerReleased)
	evB.wait(t, PeerReleased)
	if len(a.Associations())+len(b.Associations()) != 0 {
		t.Error("associations remain after release")
	}
	if err := a.Release(ctx, b.LocalAddr()); !errors.Is(err, ErrNotAssociated) {
		t.Errorf("second Release: %v, want ErrNotAssociated", err)
	}
	resp, err := a.Request(ctx, b.LocalAddr(), message.NewAssociationReleaseRequest(0, a.NodeIDIE()))
	if err != nil {
		t.Fatal(err)
	}
	r := resp.(*message.AssociationReleaseResponse)
	var ce *CauseError
	if err := causeOf("", r.Cause, nil); !errors.As(err, &ce) || ce.Cause != CauseNoEstablishedPFCPAssociation {
		t.Errorf("release without association: %v", err)
	}
	// A setup request without the mandatory Recovery Time Stamp.
	resp, err = a.Request(ctx, b.LocalAddr(), message.NewAssociationSetupRequest(0, a.NodeIDIE()))
	if err != nil {
		t.Fatal(err)
	}
	sr := resp.(*message.AssociationSetupResponse)
	if err := causeOf("", sr.Cause, sr.IEs[0]); !errors.As(err, &ce) || ce.Cause != CauseMandatoryIEMissing || ce.OffendingIE != ie.RecoveryTimeStamp {
		t.Errorf("setup without Recovery Time Stamp: %v", err)
	}
	if len(b.Associations()) != 0 {
		t.Error("a rejected setup created an association")
	}
}

// countingHandler answers Node Report Requests and counts them.
func countingHandler(calls *atomic.Int32, gate <-chan struct{}) Handler {
	return func(_ context.Context, n *Node, _ netip.AddrPort, req message.Message) message.Message {
		calls.Add(1)
		if gate != nil {
			<-gate
		}
		return message.NewNodeReportResponse(0, n.NodeIDIE(), ie.NewCause(CauseRequestAccepted), nil)
	}
}

// TestRetransmission: a lost request is sent again and handled once; a lost
// response makes the request come again, which is answered from the cache
// without running the handler a second time.
func TestRetransmission(t *testing.T) {
	for _, tc := range []struct {
		name            string
		dropOut, dropIn uint8
		wantDuplicates  uint64
	}{
		{"request lost", message.MsgTypeNodeReportRequest, 0, 0},
		{"response lost", 0, message.MsgTypeNodeReportResponse, 1},
		{"both lost", message.MsgTypeNodeReportRequest, message.MsgTypeNodeReportResponse, 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var calls atomic.Int32
			dropReq := pfcptest.DropNth(pfcptest.Out, 1, tc.dropOut)
			dropResp := pfcptest.DropNth(pfcptest.In, 1, tc.dropIn)
			lossy := pfcptest.NewLossyConn(listenUDP(t, netip.AddrPortFrom(ipA, 0)), func(d pfcptest.Direction, n int, b []byte) bool {
				return dropReq(d, n, b) || dropResp(d, n, b)
			})
			a, _, _ := startNode(t, nodeOpts{conn: lossy})
			b, _, _ := startNode(t, nodeOpts{ip: ipB, cfg: Config{Handlers: map[uint8]Handler{message.MsgTypeNodeReportRequest: countingHandler(&calls, nil)}}})
			resp, err := a.Request(tctx(t), b.LocalAddr(), message.NewNodeReportRequest(0, a.NodeIDIE(), ie.NewNodeReportType(1)))
			if err != nil {
				t.Fatalf("Request: %v", err)
			}
			if _, ok := resp.(*message.NodeReportResponse); !ok {
				t.Fatalf("response %T", resp)
			}
			if n := calls.Load(); n != 1 {
				t.Errorf("handler ran %d times, want 1", n)
			}
			wantRetx := uint64(0)
			if tc.dropOut != 0 {
				wantRetx++
			}
			if tc.dropIn != 0 {
				wantRetx++
			}
			if got := a.Stats().Retransmissions; got != wantRetx {
				t.Errorf("%d retransmissions, want %d", got, wantRetx)
			}
			if got := b.Stats().DuplicateRequests; got != tc.wantDuplicates {
				t.Errorf("%d duplicates answered from the cache, want %d", got, tc.wantDuplicates)
			}
		})
	}
}

// TestTimeout: a silent peer gets the request N1+1 times, byte for byte the
// same, then the request fails with ErrTimeout.
func TestTimeout(t *testing.T) {
	a, _, _ := startNode(t, nodeOpts{cfg: Config{T1: 20 * time.Millisecond, N1: 3}})
	silent := listenUDP(t, netip.AddrPortFrom(ipB, 0))
	defer silent.Close()
	_, err := a.Request(tctx(t), netip.MustParseAddrPort(silent.LocalAddr().String()), message.NewHeartbeatRequest(0, recoveryIE(1), nil))
	if !errors.Is(err, ErrTimeout) {
		t.Fatalf("Request to a silent peer: %v, want ErrTimeout", err)
	}
	var first []byte
	buf := make([]byte, 1500)
	for i := range 4 {
		silent.SetReadDeadline(time.Now().Add(time.Second))
		n, _, err := silent.ReadFromUDPAddrPort(buf)
		if err != nil {
			t.Fatalf("datagram %d: %v", i+1, err)
		}
		if first == nil {
			first = append([]byte(nil), buf[:n]...)
		} else if string(buf[:n]) != string(first) {
			t.Fatalf("retransmission %d differs: %x vs %x", i, buf[:n], first)
		}
	}
	silent.SetReadDeadline(time.Now().Add(50 * time.Millisecond))
	if _, _, err := silent.ReadFromUDPAddrPort(buf); err == nil {
		t.Error("more than N1+1 sends")
	}
	if s := a.Stats(); s.RequestsSent != 1 || s.Retransmissions != 3 || s.Timeouts != 1 {
		t.Errorf("stats %+v", s)
	}
}

// TestDuplicateWhileHandling: a retransmission that arrives while the
// request is still being handled is not handled again and gets no second
// answer of its own; one after the answer gets the same bytes again.
func TestDuplicateWhileHandling(t *testing.T) {
	var calls atomic.Int32
	gate := make(chan struct{})
	b, _, _ := startNode(t, nodeOpts{ip: ipB, cfg: Config{Handlers: map[uint8]Handler{message.MsgTypeNodeReportRequest: countingHandler(&calls, gate)}}})
	raw := listenUDP(t, netip.AddrPortFrom(ipA, 0))
	defer raw.Close()
	req := message.NewNodeReportRequest(0x123456, mustNodeID(t, "127.0.0.1"), ie.NewNodeReportType(1))
	wire, err := marshal(req)
	if err != nil {
		t.Fatal(err)
	}
	send := func() {
		if _, err := raw.WriteToUDPAddrPort(wire, b.LocalAddr()); err != nil {
			t.Fatal(err)
		}
	}
	send()
	waitFor(t, "the handler to start", func() bool { return calls.Load() > 0 })
	send() // while the handler runs
	waitFor(t, "the duplicate to be seen", func() bool { return b.Stats().DuplicateRequests > 0 })
	close(gate)
	buf := make([]byte, 1500)
	read := func() []byte {
		raw.SetReadDeadline(time.Now().Add(2 * time.Second))
		n, _, err := raw.ReadFromUDPAddrPort(buf)
		if err != nil {
			t.Fatalf("read: %v", err)
		}
		return append([]byte(nil), buf[:n]...)
	}
	resp1 := read()
	raw.SetReadDeadline(time.Now().Add(50 * time.Millisecond))
	if _, _, err := raw.ReadFromUDPAddrPort(buf); err == nil {
		t.Fatal("the duplicate received during handling got its own answer")
	}
	send() // after the answer
	resp2 := read()
	if string(resp1) != string(resp2) {
		t.Errorf("cached answer differs:\n%x\n%x", resp1, resp2)
	}
	h, err := parseHeader(resp1)
	if err != nil || h.seq != 0x123456 || h.typ != message.MsgTypeNodeReportResponse {
		t.Errorf("response header %+v, %v: want seq 0x123456, type 13", h, err)
	}
	if n := calls.Load(); n != 1 {
		t.Errorf("handler ran %d times, want 1", n)
	}
}

// waitFor polls cond for up to 5 s.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(time.Millisecond)
	}
}

func mustNodeID(t *testing.T, s string) *ie.IE {
	t.Helper()
	i, err := NodeIDIE(s)
	if err != nil {
		t.Fatal(err)
	}
	return i
}

// TestSequenceNumbers: sequence numbers are 24-bit and wrap; each response
// matches its own request.
func TestSequenceNumbers(t *testing.T) {
	rec := pfcptest.NewRecorder(listenUDP(t, netip.AddrPortFrom(ipA, 0)))
	a, _, _ := startNode(t, nodeOpts{conn: rec})
	b, _, _ := startNode(t, nodeOpts{ip: ipB})
	a.mu.Lock()
	a.lastSeq = 0xfffffe
	a.mu.Unlock()
	for range 3 {
		if _, err := a.Request(tctx(t), b.LocalAddr(), message.NewHeartbeatRequest(0, recoveryIE(1), nil)); err != nil {
			t.Fatal(err)
		}
	}
	var got []uint32
	for _, d := range rec.Datagrams() {
		if d.Src == a.LocalAddr() {
			h, _ := parseHeader(d.Payload)
			got = append(got, h.seq)
		}
	}
	want := []uint32{0xffffff, 0, 1}
	if len(got) != 3 || got[0] != want[0] || got[1] != want[1] || got[2] != want[2] {
		t.Errorf("sequence numbers %x, want %x", got, want)
	}
	// Concurrent requests each get their own response.
	var wg sync.WaitGroup
	errs := make(chan error, 50)
	for range 50 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, err := a.Request(tctx(t), b.LocalAddr(), message.NewHeartbeatRequest(0, recoveryIE(1), nil))
			errs <- err
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	if s := a.Stats(); s.UnmatchedResponses != 0 || s.Retransmissions != 0 {
		t.Errorf("stats %+v", s)
	}
}

// TestBadInput: datagrams that are not valid PFCP are counted and dropped,
// or answered as TS 29.244 7.6 says; the node keeps serving.
func TestBadInput(t *testing.T) {
	b, _, _ := startNode(t, nodeOpts{ip: ipB})
	raw := listenUDP(t, netip.AddrPortFrom(ipA, 0))
	defer raw.Close()
	buf := make([]byte, 1500)
	exchange := func(in []byte) []byte {
		t.Helper()
		if _, err := raw.WriteToUDPAddrPort(in, b.LocalAddr()); err != nil {
			t.Fatal(err)
		}
		raw.SetReadDeadline(time.Now().Add(200 * time.Millisecond))
		n, _, err := raw.ReadFromUDPAddrPort(buf)
		if err != nil {
			return nil
		}
		return append([]byte(nil), buf[:n]...)
	}
	hb, _ := marshal(message.NewHeartbeatRequest(7, recoveryIE(1), nil))
	tests := []struct {
		name     string
		in       []byte
		wantType uint8 // response type; 0: none
		wantSeq  uint32
		stat     func(Stats) uint64
	}{
		{"empty", []byte{}, 0, 0, func(s Stats) uint64 { return s.Malformed }},
		{"short header", []byte{0x20, 0x01, 0x00}, 0, 0, func(s Stats) uint64 { return s.Malformed }},
		{"length past the end", []byte{0x20, 0x01, 0x00, 0x10, 0, 0, 1, 0}, 0, 0, func(s Stats) uint64 { return s.Malformed }},
		{"trailing octets", append(append([]byte(nil), hb...), 0xff), 0, 0, func(s Stats) uint64 { return s.Malformed }},
		{"S flag on a node message", []byte{0x21, 0x01, 0x00, 0x0c, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 9, 0}, 0, 0, func(s Stats) uint64 { return s.Malformed }},
		{"unknown type", []byte{0x20, 99, 0x00, 0x04, 0, 0, 1, 0}, 0, 0, func(s Stats) uint64 { return s.UnknownMessages }},
		{"unsolicited response", []byte{0x20, 0x02, 0x00, 0x04, 0, 0, 1, 0}, 0, 0, func(s Stats) uint64 { return s.UnmatchedResponses }},
		{"version 2 request", []byte{0x40, 0x01, 0x00, 0x04, 0x00, 0x00, 0x2a, 0}, message.MsgTypeVersionNotSupportedResponse, 0x2a, func(s Stats) uint64 { return s.VersionNotSupported }},
		{"IE overruns the message", []byte{0x20, 0x05, 0x00, 0x0a, 0, 0, 3, 0, 0x00, 0x3c, 0x00, 0x09, 0, 1}, message.MsgTypeAssociationSetupResponse, 3, func(s Stats) uint64 { return s.Malformed }},
		{"no handler", []byte{0x21, 56, 0x00, 0x0c, 0, 0, 0, 0, 0, 0, 0, 1, 0, 0, 4, 0}, message.MsgTypeSessionReportResponse, 4, func(s Stats) uint64 { return s.RequestsReceived }},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			before := tc.stat(b.Stats())
			resp := exchange(tc.in)
			if tc.wantType == 0 {
				if resp != nil {
					t.Fatalf("answered with %x", resp)
				}
			} else {
				h, err := parseHeader(resp)
				if err != nil || h.typ != tc.wantType || h.seq != tc.wantSeq {
					t.Fatalf("answer %x (%+v, %v): want type %d seq %d", resp, h, err, tc.wantType, tc.wantSeq)
				}
				if m, err := message.Parse(resp); err != nil {
					t.Fatalf("answer does not decode: %v", err)
				} else if g, ok := m.(interface{ SEID() uint64 }); ok && h.s && g.SEID() != 0 {
					t.Errorf("session rejection SEID %#x, want 0", g.SEID())
				}
			}
			deadline := time.Now().Add(2 * time.Second)
			for tc.stat(b.Stats()) != before+1 {
				if time.Now().After(deadline) {
					t.Fatalf("counter went from %d to %d, want +1", before, tc.stat(b.Stats()))
				}
				time.Sleep(time.Millisecond)
			}
		})
	}
	// Still serving.
	if resp := exchange(hb); resp == nil || resp[1] != message.MsgTypeHeartbeatResponse {
		t.Fatalf("heartbeat after bad input: %x", resp)
	}
}

// TestHandlerPanic: a panicking handler is answered "System failure" and
// the node goes on.
func TestHandlerPanic(t *testing.T) {
	b, _, _ := startNode(t, nodeOpts{ip: ipB, cfg: Config{Handlers: map[uint8]Handler{
		message.MsgTypeNodeReportRequest: func(context.Context, *Node, netip.AddrPort, message.Message) message.Message { panic("boom") },
	}}})
	a, _, _ := startNode(t, nodeOpts{})
	resp, err := a.Request(tctx(t), b.LocalAddr(), message.NewNodeReportRequest(0, a.NodeIDIE(), ie.NewNodeReportType(1)))
	if err != nil {
		t.Fatal(err)
	}
	r := resp.(*message.NodeReportResponse)
	var ce *CauseError
	if err := causeOf("", r.Cause, nil); !errors.As(err, &ce) || ce.Cause != CauseSystemFailure {
		t.Errorf("cause %v, want System failure", err)
	}
}

// TestStop: ending the context stops the node and every goroutine it
// started; requests then fail with ErrClosed.
func TestStop(t *testing.T) {
	base := runtime.NumGoroutine()
	ctx, cancel := context.WithCancel(context.Background())
	a, err := Start(ctx, listenUDP(t, netip.AddrPortFrom(ipA, 0)), Config{HeartbeatInterval: 10 * time.Millisecond, T1: 20 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	b, err := Start(ctx, listenUDP(t, netip.AddrPortFrom(ipB, 0)), Config{HeartbeatInterval: 10 * time.Millisecond, T1: 20 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := a.Associate(tctx(t), b.LocalAddr()); err != nil {
		t.Fatal(err)
	}
	silent := listenUDP(t, netip.AddrPortFrom(ipB, 0))
	defer silent.Close()
	pending := make(chan error, 1)
	go func() {
		_, err := a.Request(context.Background(), netip.MustParseAddrPort(silent.LocalAddr().String()), message.NewHeartbeatRequest(0, recoveryIE(1), nil))
		pending <- err
	}()
	time.Sleep(30 * time.Millisecond)
	cancel()
	for _, n := range []*Node{a, b} {
		select {
		case <-n.Done():
		case <-time.After(5 * time.Second):
			t.Fatal("node did not stop")
		}
	}
	if err := <-pending; !errors.Is(err, ErrClosed) {
		t.Errorf("outstanding request: %v, want ErrClosed", err)
	}
	if _, err := a.Request(context.Background(), b.LocalAddr(), message.NewHeartbeatRequest(0, recoveryIE(1), nil)); !errors.Is(err, ErrClosed) {
		t.Errorf("request after stop: %v, want ErrClosed", err)
	}
	deadline := time.Now().Add(5 * time.Second)
	for runtime.NumGoroutine() > base {
		if time.Now().After(deadline) {
			buf := make([]byte, 1<<16)
			t.Fatalf("%d goroutines, %d before:\n%s", runtime.NumGoroutine(), base, buf[:runtime.Stack(buf, true)])
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// TestStartConfig: bad configurations are refused.
func TestStartConfig(t *testing.T) {
	h := func(context.Context, *Node, netip.AddrPort, message.Message) message.Message { return nil }
	tests := []struct {
		name string
		addr netip.AddrPort
		cfg  Config
	}{
		{"heartbeat handler", netip.AddrPortFrom(ipA, 0), Config{Handlers: map[uint8]Handler{message.MsgTypeHeartbeatRequest: h}}},
		{"response handler", netip.AddrPortFrom(ipA, 0), Config{Handlers: map[uint8]Handler{message.MsgTypeSessionEstablishmentResponse: h}}},
		{"no node ID on 0.0.0.0", netip.AddrPortFrom(netip.IPv4Unspecified(), 0), Config{}},
		{"bad node ID", netip.AddrPortFrom(ipA, 0), Config{NodeID: "a..b"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			conn := listenUDP(t, tc.addr)
			defer conn.Close()
			if n, err := Start(context.Background(), conn, tc.cfg); err == nil {
				n.Close()
				t.Fatal("Start accepted it")
			}
		})
	}
}

func TestParseAddrPort(t *testing.T) {
	tests := []struct {
		in   string
		want string
		ok   bool
	}{
		{"127.0.0.1", "127.0.0.1:8805", true},
		{"127.0.0.1:9000", "127.0.0.1:9000", true},
		{":8806", "0.0.0.0:8806", true},
		{"[::1]:8805", "[::1]:8805", true},
		{"::1", "[::1]:8805", true},
		{"[::ffff:10.0.0.1]:1", "10.0.0.1:1", true},
		{"upf.local:8805", "", false},
		{"127.0.0.1:99999", "", false},
		{"127.0.0.1:x", "", false},
	}
	for _, tc := range tests {
		got, err := ParseAddrPort(tc.in)
		if (err == nil) != tc.ok || (tc.ok && got.String() != tc.want) {
			t.Errorf("ParseAddrPort(%q) = %v, %v; want %s ok=%v", tc.in, got, err, tc.want, tc.ok)
		}
	}
}

func TestListen(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	n, err := Listen(ctx, "127.0.0.1:0", Config{})
	if err != nil {
		t.Fatal(err)
	}
	if n.LocalAddr().Addr() != ipA || n.LocalAddr().Port() == 0 || n.NodeID() != "127.0.0.1" {
		t.Errorf("bound %s, node ID %s", n.LocalAddr(), n.NodeID())
	}
	cancel()
	<-n.Done()
	if _, err := Listen(context.Background(), "nowhere:1", Config{}); err == nil {
		t.Error("Listen on a host name succeeded")
	}
}
