package gnb

import (
	"context"
	"net"
	"net/netip"
	"runtime"
	"testing"

	"github.com/free5gc/ngap/ie"
	"github.com/free5gc/ngap/message"
)

// BenchmarkDownlinkNAS: one DownlinkNASTransport decoded, routed to its UE,
// relayed to the UE's NAS side and its answer encoded as an
// UplinkNASTransport (the gNB's per-message cost, without the transport).
func BenchmarkDownlinkNAS(b *testing.B) {
	g := inlineGNB(b, nil, &nullConn{})
	u, err := g.Attach(&fakeNAS{}, []byte("registration request"))
	if err != nil {
		b.Fatal(err)
	}
	pdu := mustMarshal(b, &message.DownlinkNASTransport{
		AMFUENGAPID: &ie.AMFUENGAPID{Value: 1}, RANUENGAPID: &ie.RANUENGAPID{Value: int64(u.RANID())},
		NASPDU: &ie.NASPDU{Value: make([]byte, 60)},
	})
	nas := u.NAS().(*fakeNAS)
	b.ReportAllocs()
	for b.Loop() {
		g.receive(pdu)
		nas.mu.Lock()
		nas.dl = nas.dl[:0]
		nas.mu.Unlock()
	}
}

// BenchmarkSessionSetup: a PDUSessionResourceSetupRequest with its
// transfer decoded, a TEID allocated, the response transfer and response
// encoded, and the session released again.
func BenchmarkSessionSetup(b *testing.B) {
	g := inlineGNB(b, nil, &nullConn{})
	u, err := g.Attach(&fakeNAS{}, []byte("registration request"))
	if err != nil {
		b.Fatal(err)
	}
	tr := setupTransfer(b, netip.MustParseAddr("127.0.0.8"), 7)
	setup := mustMarshal(b, sessionRequest(b, 1, u.RANID(), 1, tr, "accept"))
	b.ReportAllocs()
	for b.Loop() {
		g.receive(setup)
		if !u.removeSession(1) {
			b.Fatal("session not set up")
		}
	}
}

// BenchmarkN3Uplink: 1400-byte uplink packets from one UE encapsulated as
// G-PDUs and sent in batches (sendmmsg) to a UDP sink on loopback. The
// sender waits while the queue is full, so the figure is the rate the
// socket takes; %dropped should be 0.
func BenchmarkN3Uplink(b *testing.B) {
	sink, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		b.Fatal(err)
	}
	defer sink.Close()
	_ = sink.SetReadBuffer(8 << 20)
	go func() {
		buf := make([]byte, 2048)
		for {
			if _, err := sink.Read(buf); err != nil {
				return
			}
		}
	}()
	plane := &benchPlane{}
	n3, err := ListenN3(context.Background(), N3Config{Addr: "127.0.0.1:0", UPFPort: uint16(sink.LocalAddr().(*net.UDPAddr).Port)}, plane)
	if err != nil {
		b.Fatal(err)
	}
	defer n3.Close()
	ue := netip.MustParseAddr("10.45.0.1")
	if err := n3.open(nil, Session{PSI: 1, UEAddr: ue, UPF: netip.MustParseAddr("127.0.0.1"), ULTEID: 1, DLTEID: 1, QFIs: []uint8{1}}); err != nil {
		b.Fatal(err)
	}
	pkt := make([]byte, 1400)
	pkt[0] = 0x45
	b.SetBytes(int64(len(pkt)))
	b.ReportAllocs()
	for b.Loop() {
		for n3.queued() >= DefaultN3Queue/2 {
			runtime.Gosched()
		}
		plane.send(pkt)
	}
	for n3.queued() > 0 {
		runtime.Gosched()
	}
	b.StopTimer()
	s := n3.Stats()
	b.ReportMetric(float64(s.UplinkDropped)/float64(b.N)*100, "%dropped")
}

type benchPlane struct{ send func([]byte) }

func (p *benchPlane) AddUE(_, _ netip.Addr, send func([]byte)) error { p.send = send; return nil }
func (p *benchPlane) RemoveUE(netip.Addr) error                      { return nil }
func (p *benchPlane) Deliver([]byte) error                           { return nil }
