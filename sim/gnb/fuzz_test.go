package gnb

import (
	"net/netip"
	"testing"

	"github.com/free5gc/ngap/aper"
	"github.com/free5gc/ngap/ie"
	"github.com/free5gc/ngap/message"
)

// FuzzReceive feeds arbitrary NGAP PDUs to the gNB's entry point, with a UE
// attached and a session set up: nothing may panic, and the UE count never
// goes negative.
func FuzzReceive(f *testing.F) {
	tr := setupTransfer(f, netip.MustParseAddr("127.0.0.8"), 9)
	seeds := []message.Message{
		&message.DownlinkNASTransport{AMFUENGAPID: &ie.AMFUENGAPID{Value: 1}, RANUENGAPID: &ie.RANUENGAPID{Value: 0},
			NASPDU: &ie.NASPDU{Value: []byte{0x7e, 0x00, 0x56}}},
		icsRequest(1, 0, []byte{0x7e}),
		sessionRequest(nil, 1, 0, 2, tr, "accept"),
		&message.PDUSessionResourceReleaseCommand{AMFUENGAPID: &ie.AMFUENGAPID{Value: 1}, RANUENGAPID: &ie.RANUENGAPID{Value: 0},
			PDUSessionResourceToReleaseListRelCmd: &ie.PDUSessionResourceToReleaseListRelCmd{List: []ie.PDUSessionResourceToReleaseItemRelCmd{{
				PDUSessionID: &ie.PDUSessionID{Value: 1}, PDUSessionResourceReleaseCommandTransfer: &aper.OctetString{0x10}}}}},
		&message.UEContextReleaseCommand{UENGAPIDs: &ie.UENGAPIDs{Choice: &ie.AMFUENGAPID{Value: 1}},
			Cause: &ie.Cause{Choice: &ie.CauseNas{Value: ie.CauseNasPresentNormalRelease}}},
		&message.ErrorIndication{RANUENGAPID: &ie.RANUENGAPID{Value: 0}, Cause: &ie.Cause{Choice: &ie.CauseMisc{Value: 1}}},
		&message.NGReset{Cause: &ie.Cause{Choice: &ie.CauseMisc{Value: 3}},
			ResetType: &ie.ResetType{Choice: &ie.ResetAll{Value: ie.ResetAllPresentResetAll}}},
		setupResponse(),
	}
	for _, m := range seeds {
		f.Add(mustMarshal(f, m))
	}
	f.Add([]byte{})
	f.Add([]byte{0x00, 0x04, 0x40, 0xff, 0x01})
	f.Fuzz(func(t *testing.T, b []byte) {
		conn := &nullConn{}
		g := inlineGNB(t, nil, conn)
		u, err := g.Attach(&fakeNAS{}, []byte("registration request"))
		if err != nil {
			t.Fatal(err)
		}
		g.receive(mustMarshal(t, sessionRequest(t, 1, u.RANID(), 1, tr, "accept")))
		if len(u.Sessions()) != 1 {
			t.Fatal("seed session not set up")
		}
		g.receive(b)
		if g.UEs() < 0 || g.UEs() > 1 {
			t.Fatalf("UEs() = %d", g.UEs())
		}
	})
}

// FuzzSetupRequestTransfer: the transfer decoder never panics, and what it
// accepts has a tunnel endpoint and QoS flows.
func FuzzSetupRequestTransfer(f *testing.F) {
	f.Add([]byte(setupTransfer(f, netip.MustParseAddr("127.0.0.8"), 9)))
	f.Add([]byte{0x00, 0x00, 0x04})
	f.Fuzz(func(t *testing.T, b []byte) {
		req, err := decodeSetupRequestTransfer(b)
		if err != nil {
			return
		}
		if !req.upf.IsValid() || len(req.qfis) == 0 {
			t.Fatalf("accepted %x as %+v", b, req)
		}
		if _, err := encodeSetupResponseTransfer(netip.MustParseAddr("127.0.0.1"), 1, req.qfis); err != nil {
			t.Fatalf("response for %+v: %v", req, err)
		}
	})
}
