package gnb

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/free5gc/ngap/aper"
	"github.com/free5gc/ngap/ie"
	"github.com/free5gc/ngap/message"

	"github.com/simgate/simgate/core/n2"
)

// testN2 is a loopback UDP-mode N2 configuration with short timers.
func testN2(t testing.TB) n2.Config {
	return n2.Config{
		Transport: n2.TransportUDP, LocalAddr: "127.0.0.1:0",
		HandshakeTimeout: 3 * time.Second, ShutdownTimeout: 300 * time.Millisecond,
		Logger: testLogger(t),
	}
}

func testLogger(t testing.TB) *slog.Logger {
	return slog.New(slog.NewTextHandler(tWriter{t}, &slog.HandlerOptions{Level: slog.LevelError}))
}

type tWriter struct{ t testing.TB }

func (w tWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimSpace(string(p)))
	return len(p), nil
}

// fakeAMF is a scripted AMF: the test reads what the gNB sends and answers.
type fakeAMF struct {
	t    testing.TB
	ln   n2.Listener
	conn n2.Conn
	msgs chan message.Message
	raw  chan []byte
}

func newFakeAMF(t testing.TB) *fakeAMF {
	t.Helper()
	ln, err := n2.Listen(context.Background(), testN2(t))
	if err != nil {
		t.Fatalf("listen: %v", err)
	}
	t.Cleanup(func() { _ = ln.Close() })
	return &fakeAMF{t: t, ln: ln, msgs: make(chan message.Message, 64), raw: make(chan []byte, 64)}
}

func (a *fakeAMF) addr() string { return a.ln.Addr().String() }

// accept waits for the gNB's association and starts reading it.
func (a *fakeAMF) accept() {
	a.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	c, err := a.ln.Accept(ctx)
	if err != nil {
		a.t.Fatalf("accept: %v", err)
	}
	a.conn = c
	go func() {
		buf := make([]byte, 1<<16)
		for {
			n, _, _, err := c.ReadMsg(buf)
			if err != nil {
				close(a.msgs)
				return
			}
			b := bytes.Clone(buf[:n])
			m, err := message.Parse(b)
			if err != nil {
				a.t.Errorf("fake AMF: gNB sent an undecodable PDU %x: %v", b, err)
				continue
			}
			a.raw <- b
			a.msgs <- m
		}
	}()
}

// next returns the next message from the gNB.
func (a *fakeAMF) next() message.Message {
	a.t.Helper()
	select {
	case m, ok := <-a.msgs:
		if !ok {
			a.t.Fatal("association closed")
		}
		<-a.raw
		return m
	case <-time.After(5 * time.Second):
		a.t.Fatal("nothing from the gNB within 5s")
	}
	return nil
}

// none checks the gNB sends nothing for a while.
func (a *fakeAMF) none(d time.Duration) {
	a.t.Helper()
	select {
	case m, ok := <-a.msgs:
		if ok {
			a.t.Fatalf("gNB sent %T, want nothing", m)
		}
	case <-time.After(d):
	}
}

func (a *fakeAMF) send(m message.Message) {
	a.t.Helper()
	b, err := m.MarshalBinary()
	if err != nil {
		a.t.Fatalf("encode %T: %v", m, err)
	}
	a.sendRaw(b)
}

func (a *fakeAMF) sendRaw(b []byte) {
	a.t.Helper()
	if err := a.conn.WriteMsg(b, 0); err != nil {
		a.t.Fatalf("write: %v", err)
	}
}

func expect[T message.Message](t testing.TB, m message.Message) T {
	t.Helper()
	v, ok := m.(T)
	if !ok {
		var want T
		t.Fatalf("got %T, want %T", m, want)
	}
	return v
}

var testPLMN = []byte{0x00, 0xf1, 0x10} // MCC 001, MNC 01

func setupResponse() *message.NGSetupResponse {
	return &message.NGSetupResponse{
		AMFName: &ie.AMFName{Value: "simgate-amf"},
		ServedGUAMIList: &ie.ServedGUAMIList{List: []ie.ServedGUAMIItem{{GUAMI: &ie.GUAMI{
			PLMNIdentity: &ie.PLMNIdentity{Value: testPLMN},
			AMFRegionID:  &ie.AMFRegionID{Value: bitString(0xCA, 8)},
			AMFSetID:     &ie.AMFSetID{Value: bitString(0x3F8, 10)},
			AMFPointer:   &ie.AMFPointer{Value: bitString(0, 6)},
		}}}},
		RelativeAMFCapacity: &ie.RelativeAMFCapacity{Value: 255},
		PLMNSupportList: &ie.PLMNSupportList{List: []ie.PLMNSupportItem{{
			PLMNIdentity:     &ie.PLMNIdentity{Value: testPLMN},
			SliceSupportList: &ie.SliceSupportList{List: []ie.SliceSupportItem{{SNSSAI: snssai(1, nil)}}},
		}}},
	}
}

// events records a gNB's events.
type events struct {
	mu  sync.Mutex
	evs []recorded
	ch  chan recorded
}

type recorded struct {
	u  *UE
	ev Event
}

func newEvents() *events { return &events{ch: make(chan recorded, 1024)} }

func (e *events) Event(u *UE, ev Event) {
	e.mu.Lock()
	e.evs = append(e.evs, recorded{u, ev})
	e.mu.Unlock()
	e.ch <- recorded{u, ev}
}

// wait returns the next event of kind k, skipping others.
func (e *events) wait(t testing.TB, k EventKind) recorded {
	t.Helper()
	deadline := time.After(5 * time.Second)
	for {
		select {
		case r := <-e.ch:
			if r.ev.Kind == k {
				return r
			}
		case <-deadline:
			t.Fatalf("no %v event within 5s", k)
		}
	}
}

// fakeNAS answers every downlink NAS PDU with "ul:" + the PDU, and knows
// the addresses of its sessions.
type fakeNAS struct {
	mu    sync.Mutex
	dl    [][]byte
	addrs map[uint8]netip.Addr
	fail  bool
}

func (f *fakeNAS) Handle(dl []byte) ([][]byte, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.dl = append(f.dl, bytes.Clone(dl))
	if f.fail {
		return nil, errors.New("fake NAS: refused")
	}
	return [][]byte{append([]byte("ul:"), dl...)}, nil
}

func (f *fakeNAS) SessionAddr(psi uint8) (netip.Addr, bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	a, ok := f.addrs[psi]
	return a, ok
}

func (f *fakeNAS) received() [][]byte {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([][]byte(nil), f.dl...)
}

// setupTransfer is an SMF's PDUSessionResourceSetupRequestTransfer: AMBR,
// the UPF's N3 tunnel, IPv4, QFI 1 with 5QI 9 and ARP 8.
func setupTransfer(t testing.TB, upf netip.Addr, teid uint32) aper.OctetString {
	t.Helper()
	tr := &ie.PDUSessionResourceSetupRequestTransfer{ProtocolIEs: &ie.ProtocolIEContainerPDUSessionResourceSetupRequestTransferIEs{
		List: []ie.PDUSessionResourceSetupRequestTransferIEs{
			{PDUSessionAggregateMaximumBitRate: &ie.PDUSessionAggregateMaximumBitRate{
				PDUSessionAggregateMaximumBitRateDL: &ie.BitRate{Value: 1_000_000_000},
				PDUSessionAggregateMaximumBitRateUL: &ie.BitRate{Value: 1_000_000_000},
			}},
			{ULNGUUPTNLInformation: &ie.UPTransportLayerInformation{Choice: &ie.GTPTunnel{
				TransportLayerAddress: transportAddr(upf),
				GTPTEID:               &ie.GTPTEID{Value: teidBytes(teid)},
			}}},
			{PDUSessionType: &ie.PDUSessionType{Value: ie.PDUSessionTypePresentIpv4}},
			{QosFlowSetupRequestList: &ie.QosFlowSetupRequestList{List: []ie.QosFlowSetupRequestItem{{
				QosFlowIdentifier: &ie.QosFlowIdentifier{Value: 1},
				QosFlowLevelQosParameters: &ie.QosFlowLevelQosParameters{
					QosCharacteristics: &ie.QosCharacteristics{Choice: &ie.NonDynamic5QIDescriptor{FiveQI: &ie.FiveQI{Value: 9}}},
					AllocationAndRetentionPriority: &ie.AllocationAndRetentionPriority{
						PriorityLevelARP:        &ie.PriorityLevelARP{Value: 8},
						PreEmptionCapability:    &ie.PreEmptionCapability{Value: ie.PreEmptionCapabilityPresentShallNotTriggerPreEmption},
						PreEmptionVulnerability: &ie.PreEmptionVulnerability{Value: ie.PreEmptionVulnerabilityPresentNotPreEmptable},
					},
				},
			}}}},
		},
	}}
	b, err := ie.MarshalBinary(tr)
	if err != nil {
		t.Fatalf("transfer: %v", err)
	}
	return b
}

// nullConn is an n2.Conn that drops writes and never reads, for driving
// the gNB's message handling directly.
type nullConn struct {
	mu     sync.Mutex
	writes [][]byte
	keep   bool
}

func (c *nullConn) ReadMsg([]byte) (int, uint16, uint32, error) { return 0, 0, 0, net.ErrClosed }
func (c *nullConn) WriteMsg(b []byte, _ uint16) error {
	if c.keep {
		c.mu.Lock()
		c.writes = append(c.writes, bytes.Clone(b))
		c.mu.Unlock()
	}
	return nil
}
func (c *nullConn) OutStreams() uint16      { return 2 }
func (c *nullConn) Close() error            { return nil }
func (c *nullConn) LocalAddr() net.Addr     { return &net.UDPAddr{} }
func (c *nullConn) RemoteAddr() net.Addr    { return &net.UDPAddr{} }
func (c *nullConn) Transport() n2.Transport { return n2.TransportUDP }

func (c *nullConn) sent() [][]byte {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([][]byte(nil), c.writes...)
}

// inlineGNB is a gNB over a nullConn that runs all work on the caller's
// goroutine.
func inlineGNB(t testing.TB, h Handler, conn *nullConn) *GNB {
	t.Helper()
	cfg := DefaultConfig()
	cfg.Workers = 1
	cfg.Logger = testLogger(t)
	g, err := newGNB(cfg.withDefaults(), conn, h)
	if err != nil {
		t.Fatal(err)
	}
	g.inline = true
	return g
}

func mustMarshal(t testing.TB, m message.Message) []byte {
	t.Helper()
	b, err := m.MarshalBinary()
	if err != nil {
		t.Fatalf("%T: %v", m, err)
	}
	return b
}

func causeString(c *ie.Cause) string { return fmt.Sprint(c) }
