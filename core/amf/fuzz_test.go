package amf

import (
	"context"
	"io"
	"log/slog"
	"net"
	"sync"
	"testing"
	"time"

	"github.com/free5gc/nas/ie"
	"github.com/free5gc/nas/message"
	"github.com/free5gc/ngap/aper"
	ngapie "github.com/free5gc/ngap/ie"
	ngapmsg "github.com/free5gc/ngap/message"

	"github.com/simgate/simgate/core/ausf"
	"github.com/simgate/simgate/core/n2"
	"github.com/simgate/simgate/core/udm"
	"github.com/simgate/simgate/sim/kdf"
)

// nullConn is an n2.Conn that discards what the AMF writes.
type nullConn struct {
	mu     sync.Mutex
	writes int
}

func (c *nullConn) ReadMsg([]byte) (int, uint16, uint32, error) { return 0, 0, 0, io.EOF }
func (c *nullConn) WriteMsg(b []byte, _ uint16) error {
	c.mu.Lock()
	c.writes++
	c.mu.Unlock()
	return nil
}
func (c *nullConn) OutStreams() uint16      { return 2 }
func (c *nullConn) Close() error            { return nil }
func (c *nullConn) LocalAddr() net.Addr     { return &net.UDPAddr{} }
func (c *nullConn) RemoteAddr() net.Addr    { return &net.UDPAddr{} }
func (c *nullConn) Transport() n2.Transport { return n2.TransportUDP }

// fuzzKAMF is the KAMF of the synthetic contexts and of the seeds.
var fuzzKAMF = [32]byte{0xfa, 0x22}

// stubAUSF answers every authentication with the same challenge and
// accepts any RES*.
type stubAUSF struct{}

func (stubAUSF) Authenticate(context.Context, udm.Identity, string) (ausf.Challenge, error) {
	return ausf.Challenge{ID: 1, Method: udm.Method5GAKA, RAND: [16]byte{1}, AUTN: [16]byte{2}, HXRESStar: kdf.HRESStar([16]byte{1}, [16]byte{3})}, nil
}
func (stubAUSF) Confirm(context.Context, ausf.ContextID, ausf.Response) (ausf.Result, error) {
	return ausf.Result{SUPI: "imsi-001010000000001", KSEAF: [32]byte{4}}, nil
}
func (stubAUSF) Resync(ctx context.Context, _ ausf.ContextID, _ [14]byte) (ausf.Challenge, error) {
	return stubAUSF{}.Authenticate(ctx, udm.Identity{}, "")
}
func (stubAUSF) Abort(ausf.ContextID) {}

type stubUDM struct{}

func (stubUDM) Subscription(context.Context, string) (udm.Subscription, error) {
	return udm.Subscription{SUPI: "imsi-001010000000001", IMSI: "001010000000001", Status: "active"}, nil
}

// fuzzAMF is an AMF with stub collaborators, a gNB that has done NG Setup
// on a null connection, and a metrics recorder. Its timers are long: only
// the input's own steps run (a timer firing while the test waits on the
// AMF's WaitGroup would be a misuse of it; TestRetransmission covers
// timers).
func fuzzAMF(t testing.TB) (*AMF, *gnb, *recMetrics) {
	cfg := DefaultConfig()
	cfg.Timers.T3550, cfg.Timers.T3560, cfg.Timers.T3570, cfg.Timers.T3522 = time.Hour, time.Hour, time.Hour, time.Hour
	cfg.Timers.Release = time.Hour
	m := newRecMetrics()
	a, err := New(cfg, Deps{AUSF: stubAUSF{}, UDM: stubUDM{}, SMF: &fakeSMF{}, Metrics: m, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	g := &gnb{conn: &nullConn{}, byRAN: map[int64]*ue{}, log: a.log, ueStream: 1}
	g.setup.Store(true)
	a.gnbs[g] = struct{}{}
	return a, g, m
}

// settle waits for queued UE steps, then stops the AMF.
func settle(a *AMF) {
	a.wg.Wait()
	a.shutdown()
}

func checkNoPanic(t *testing.T, m *recMetrics) {
	if n := m.get("drop", "ngap/panic") + m.get("drop", "nas/panic"); n != 0 {
		t.Fatalf("%d panics caught while handling the input", n)
	}
}

func ngapSeed(t testing.TB, m ngapmsg.Message) []byte {
	b, err := m.MarshalBinary()
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// regRequestSeed is a plain REGISTRATION REQUEST with a null-scheme SUCI.
func regRequestSeed() []byte {
	u := &fakeUE{secCap: &ie.UESecCapability{Length: 2, EA05G: true, IA2_128_5G: true}}
	id := []byte{0x01, 0x00, 0xf1, 0x10, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x10}
	return u.regRequest(id)
}

// FuzzNGAP feeds arbitrary bytes to the AMF's NGAP entry point, on an
// association that has done NG Setup and has one UE context (AMF UE NGAP
// ID 1, RAN UE NGAP ID 1) waiting for its authentication response.
func FuzzNGAP(f *testing.F) {
	uli := &ngapie.UserLocationInformation{Choice: &ngapie.UserLocationInformationNR{
		NRCGI: &ngapie.NRCGI{PLMNIdentity: &ngapie.PLMNIdentity{Value: []byte{0, 0xf1, 0x10}}, NRCellIdentity: &ngapie.NRCellIdentity{Value: aper.BitString{Bytes: []byte{0, 0, 0, 0, 0x10}, BitLength: 36}}},
		TAI:   &ngapie.TAI{PLMNIdentity: &ngapie.PLMNIdentity{Value: []byte{0, 0xf1, 0x10}}, TAC: &ngapie.TAC{Value: []byte{0, 0, 1}}},
	}}
	amfID, ranID := &ngapie.AMFUENGAPID{Value: 1}, &ngapie.RANUENGAPID{Value: 1}
	g := &fakeGNB{plmn: []byte{0, 0xf1, 0x10}}
	transfer := []byte{0x00}
	initial := &ngapmsg.InitialUEMessage{RANUENGAPID: ranID, NASPDU: &ngapie.NASPDU{Value: regRequestSeed()}, UserLocationInformation: uli,
		RRCEstablishmentCause: &ngapie.RRCEstablishmentCause{Value: ngapie.RRCEstablishmentCausePresentMoSignalling}}
	for _, m := range []ngapmsg.Message{
		g.setupRequest(g.plmn),
		initial,
		&ngapmsg.UplinkNASTransport{AMFUENGAPID: amfID, RANUENGAPID: ranID, UserLocationInformation: uli,
			NASPDU: &ngapie.NASPDU{Value: mustMarshal(f, &message.AuthRsp{AuthRspParam: &ie.AuthRspParam{Res: make([]byte, 16)}})}},
		&ngapmsg.InitialContextSetupResponse{AMFUENGAPID: amfID, RANUENGAPID: ranID},
		&ngapmsg.UEContextReleaseRequest{AMFUENGAPID: amfID, RANUENGAPID: ranID, Cause: &ngapie.Cause{Choice: &ngapie.CauseRadioNetwork{Value: 20}}},
		&ngapmsg.UEContextReleaseComplete{AMFUENGAPID: amfID, RANUENGAPID: ranID},
		&ngapmsg.PDUSessionResourceSetupResponse{AMFUENGAPID: amfID, RANUENGAPID: ranID,
			PDUSessionResourceSetupListSURes: &ngapie.PDUSessionResourceSetupListSURes{List: []ngapie.PDUSessionResourceSetupItemSURes{{
				PDUSessionID: &ngapie.PDUSessionID{Value: 1}, PDUSessionResourceSetupResponseTransfer: (*aper.OctetString)(&transfer)}}}},
		&ngapmsg.NGReset{Cause: &ngapie.Cause{Choice: &ngapie.CauseMisc{Value: 3}},
			ResetType: &ngapie.ResetType{Choice: &ngapie.ResetAll{Value: ngapie.ResetAllPresentResetAll}}},
		&ngapmsg.ErrorIndication{AMFUENGAPID: amfID, RANUENGAPID: ranID},
	} {
		f.Add(ngapSeed(f, m))
	}
	initialBytes := ngapSeed(f, initial)
	f.Fuzz(func(t *testing.T, b []byte) {
		a, gn, m := fuzzAMF(t)
		a.handleNGAP(gn, initialBytes)
		a.wg.Wait()
		a.handleNGAP(gn, b)
		settle(a)
		checkNoPanic(t, m)
	})
}

// fuzzUE makes a UE context in state st with a NAS security context from
// fuzzKAMF (NIA2/NEA2), in use or pending as the state implies.
func fuzzUE(t testing.TB, a *AMF, g *gnb, st ueState) *ue {
	u := a.newUE(g, int64(st)+1)
	u.state = st
	u.supi = "imsi-001010000000001"
	u.secCap = &ie.UESecCapability{Length: 2, EA05G: true, EA2_128_5G: true, IA2_128_5G: true}
	u.identity = udm.Identity{SUPI: u.supi}
	sec, err := newNASSecurity(fuzzKAMF, 0, 2, 2)
	if err != nil {
		t.Fatal(err)
	}
	switch st {
	case stSMC:
		u.pendingSec = sec
	case stAuth:
		u.auth.active, u.auth.id, u.auth.rand, u.auth.hxres = true, 1, [16]byte{1}, kdf.HRESStar([16]byte{1}, [16]byte{3})
	case stIdentity, stNew:
	default:
		u.sec = sec
		if st == stRegistered {
			a.mu.Lock()
			a.regs++
			a.mu.Unlock()
		}
	}
	return u
}

// FuzzNAS feeds arbitrary bytes to the AMF's NAS entry points: as the NAS
// PDU of an Initial UE Message, and in Uplink NAS Transport to contexts in
// each registration state, with and without a security context.
func FuzzNAS(f *testing.F) {
	ueSC := func() *message.SecCtx {
		kint, _ := kdf.AlgorithmKey(fuzzKAMF, kdf.NASInt, 2)
		kenc, _ := kdf.AlgorithmKey(fuzzKAMF, kdf.NASEnc, 2)
		return message.NewSecCtx(message.UESide, message.Bearer3GPP, 2, 2, kenc[:], kint[:])
	}
	protect := func(m message.Message, sht message.SecHdrType) []byte {
		b, err := message.Marshal(m, ueSC(), sht)
		if err != nil {
			f.Fatal(err)
		}
		return b
	}
	seeds := [][]byte{
		regRequestSeed(),
		{epd5GMM, 0, byte(message.MsgTypeIdRsp), 0, 13, 0x01, 0x00, 0xf1, 0x10, 0, 0, 0, 0, 0, 0, 0, 0, 0x10},
		mustMarshal(f, &message.AuthRsp{AuthRspParam: &ie.AuthRspParam{Res: make([]byte, 16)}}),
		mustMarshal(f, &message.AuthFailure{Cause5GMM: &ie.Cause5GMM{Value: 21}, AuthFailureParam: &ie.AuthFailureParam{Value: make([]byte, 14)}}),
		mustMarshal(f, &message.SecModeRej{Cause5GMM: &ie.Cause5GMM{Value: 24}}),
		protect(&message.SecModeComplete{NASMsgCntr: &ie.NASMsgCntr{Contents: regRequestSeed()}}, message.SecHdrTypeIntegrityProtectedAndCipheredWithNew5gNasSecCtx),
		protect(&message.RegComplete{}, message.SecHdrTypeIntegrityProtectedAndCiphered),
		protect(&message.ULNASTransport{PayloadCntrType: &ie.PayloadCntrType{Value: 1}, PayloadCntr: &ie.PayloadCntr{Pct: 1, Contents: fake5GSM(1, message.MsgTypePDUSessEstReq)},
			PDUSessID: &ie.PDUSessId2{Value: 1}}, message.SecHdrTypeIntegrityProtectedAndCiphered),
		protect(&message.DeregAcceptUETerm{}, message.SecHdrTypeIntegrityProtectedAndCiphered),
		protect(&message.Status5GMM{Cause5GMM: &ie.Cause5GMM{Value: 111}}, message.SecHdrTypeIntegrityProtected),
	}
	for _, s := range seeds {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		a, g, m := fuzzAMF(t)
		a.initialNAS(a.newUE(g, 99), b)
		for _, st := range []ueState{stNew, stIdentity, stAuth, stSMC, stAccept, stRegistered, stNWDereg} {
			a.uplinkNAS(fuzzUE(t, a, g, st), b)
		}
		settle(a)
		checkNoPanic(t, m)
	})
}
