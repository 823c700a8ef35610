package gnb

import (
	"net/netip"
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
