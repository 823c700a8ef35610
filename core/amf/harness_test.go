package amf

// A scripted gNB and UE built from the same libraries the AMF uses
// (free5gc/ngap, free5gc/nas, sim/aka, sim/kdf, sim/suci), talking to a
// real AMF over core/n2 on loopback, with a real AUSF and UDM over a
// subscriber store in a temporary directory and a fake SMF.

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"log/slog"
	"strings"
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
	"github.com/simgate/simgate/core/smf"
	"github.com/simgate/simgate/core/udm"
	"github.com/simgate/simgate/core/udr"
	"github.com/simgate/simgate/sim/aka"
	"github.com/simgate/simgate/sim/kdf"
	"github.com/simgate/simgate/sim/suci"
)

const waitFor = 5 * time.Second

var keySeed = []byte("amf-test")

// --- metrics and logs --------------------------------------------------

type recMetrics struct {
	mu      sync.Mutex
	procs   map[string]int
	rejects map[string]int
	drops   map[string]int
}

func newRecMetrics() *recMetrics {
	return &recMetrics{procs: map[string]int{}, rejects: map[string]int{}, drops: map[string]int{}}
}

func (m *recMetrics) Procedure(p Procedure, o Outcome, _ time.Duration) {
	m.mu.Lock()
	m.procs[string(p)+"/"+string(o)]++
	m.mu.Unlock()
}

func (m *recMetrics) Reject(msg string, cause uint8) {
	m.mu.Lock()
	m.rejects[fmt.Sprintf("%s/%d", msg, cause)]++
	m.mu.Unlock()
}

func (m *recMetrics) Dropped(protocol, reason string) {
	m.mu.Lock()
	m.drops[protocol+"/"+reason]++
	m.mu.Unlock()
}

func (m *recMetrics) get(kind, key string) int {
	m.mu.Lock()
	defer m.mu.Unlock()
	switch kind {
	case "proc":
		return m.procs[key]
	case "reject":
		return m.rejects[key]
	}
	return m.drops[key]
}

// eventually waits until cond holds.
func eventually(t testing.TB, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(waitFor)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(2 * time.Millisecond)
	}
}

// logBuf collects log lines.
type logBuf struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *logBuf) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *logBuf) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// --- fake SMF ------------------------------------------------------------

type smfCall struct {
	op   string
	id   smf.Identity
	psi  uint8
	sst  uint8
	sd   string
	dnn  string
	data []byte
}

type fakeSMF struct {
	mu     sync.Mutex
	calls  []smfCall
	reject bool // CreateSession answers with a reject (no N2)
}

// Transfers the fake returns, opaque to the AMF.
var (
	fakeSetupTransfer   = []byte{0x00, 0x00, 0x04, 0x00, 0x82, 0x00, 0x0a}
	fakeReleaseTransfer = []byte{0x00}
)

// fake5GSM builds a 5GSM header of message type t for psi (TS 24.501 9.1.1).
func fake5GSM(psi uint8, t message.MsgType, body ...byte) []byte {
	return append([]byte{epd5GSM, psi, 1, byte(t)}, body...)
}

func (f *fakeSMF) record(c smfCall) {
	f.mu.Lock()
	f.calls = append(f.calls, c)
	f.mu.Unlock()
}

func (f *fakeSMF) callsOf(op string) []smfCall {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []smfCall
	for _, c := range f.calls {
		if c.op == op {
			out = append(out, c)
		}
	}
	return out
}

func (f *fakeSMF) CreateSession(_ context.Context, id smf.Identity, psi, sst uint8, sd, dnn string, n1 []byte) (smf.Result, error) {
	f.record(smfCall{op: "create", id: id, psi: psi, sst: sst, sd: sd, dnn: dnn, data: n1})
	if len(n1) < 4 || message.MsgType(n1[3]) != message.MsgTypePDUSessEstReq {
		return smf.Result{}, fmt.Errorf("fake smf: not an establishment request: %w", smf.ErrMalformed)
	}
	f.mu.Lock()
	rej := f.reject
	f.mu.Unlock()
	if rej {
		return smf.Result{N1: fake5GSM(psi, message.MsgTypePDUSessEstRej, 0x1b)}, nil
	}
	return smf.Result{N1: fake5GSM(psi, message.MsgTypePDUSessEstAccept, 0x11), N2: fakeSetupTransfer}, nil
}

func (f *fakeSMF) ActivateSession(_ context.Context, supi string, psi uint8, n2 []byte) error {
	f.record(smfCall{op: "activate", id: smf.Identity{SUPI: supi}, psi: psi, data: n2})
	return nil
}

func (f *fakeSMF) ReleaseSession(_ context.Context, supi string, psi uint8, n1 []byte) (smf.Result, error) {
	f.record(smfCall{op: "release", id: smf.Identity{SUPI: supi}, psi: psi, data: n1})
	if len(n1) < 4 {
		return smf.Result{}, smf.ErrMalformed
	}
	if message.MsgType(n1[3]) == message.MsgTypePDUSessRelReq {
		return smf.Result{N1: fake5GSM(psi, message.MsgTypePDUSessRelCmd, 0x24), N2: fakeReleaseTransfer}, nil
	}
	return smf.Result{}, nil
}

func (f *fakeSMF) ReleaseAll(_ context.Context, supi string) error {
	f.record(smfCall{op: "release_all", id: smf.Identity{SUPI: supi}})
	return nil
}

// --- the network under test ------------------------------------------------

type harness struct {
	t       testing.TB
	dir     string
	store   *udr.Store
	udm     *udm.UDM
	ausf    *ausf.AUSF
	smf     *fakeSMF
	amf     *AMF
	cfg     Config
	addr    string
	metrics *recMetrics
	logs    *logBuf
}

func newHarness(t testing.TB, mod ...func(*Config)) *harness {
	t.Helper()
	h := &harness{t: t, dir: t.TempDir(), smf: &fakeSMF{}, metrics: newRecMetrics(), logs: &logBuf{}}
	var err error
	if h.store, err = udr.OpenDir(h.dir); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { h.store.Close() })
	keys, err := udm.OpenKeys(h.dir, nil)
	if err != nil {
		t.Fatal(err)
	}
	if h.udm, err = udm.New(udm.DefaultConfig(), h.store, keys, nil); err != nil {
		t.Fatal(err)
	}
	h.ausf = ausf.New(h.udm, ausf.Options{})
	h.cfg = DefaultConfig()
	h.cfg.N2.Transport = n2.TransportUDP
	h.cfg.N2.LocalAddr = "127.0.0.1:0"
	for _, m := range mod {
		m(&h.cfg)
	}
	log := slog.New(slog.NewTextHandler(h.logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	if h.amf, err = New(h.cfg, Deps{AUSF: h.ausf, UDM: h.udm, SMF: h.smf, Logger: log, Metrics: h.metrics}); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	ln, err := n2.Listen(ctx, h.cfg.N2)
	if err != nil {
		cancel()
		t.Fatal(err)
	}
	h.addr = ln.Addr().String()
	done := make(chan error, 1)
	go func() { done <- h.amf.Serve(ctx, ln) }()
	t.Cleanup(func() {
		cancel()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("Serve: %v", err)
			}
		case <-time.After(10 * time.Second):
			t.Error("AMF did not stop")
		}
		if t.Failed() {
			t.Logf("AMF log:\n%s", h.logs.String())
		}
	})
	return h
}

type simOpt func(*udr.SIM)

func inactive() simOpt         { return func(s *udr.SIM) { s.Status = udr.StatusInactive } }
func imeiLock(l string) simOpt { return func(s *udr.SIM) { s.IMEILock = l } }

// addSIM provisions a subscriber with keys derived from its IMSI.
func (h *harness) addSIM(imsi string, opts ...simOpt) {
	h.t.Helper()
	s := udr.SIM{IMSI: imsi, MSISDN: "8190" + imsi[len(imsi)-8:], K: udr.DerivedK(keySeed, imsi), OPc: udr.DerivedOPc(keySeed, imsi)}
	for _, o := range opts {
		o(&s)
	}
	if err := h.store.AddSIM(s); err != nil {
		h.t.Fatal(err)
	}
}

// --- the gNB -----------------------------------------------------------------

type fakeGNB struct {
	t     testing.TB
	h     *harness
	conn  n2.Conn
	plmn  []byte
	nonUE chan ngapmsg.Message

	mu      sync.Mutex
	ues     map[int64]chan ngapmsg.Message // by RAN UE NGAP ID
	nextRAN int64
}

func (h *harness) dialGNB(t testing.TB) *fakeGNB {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), waitFor)
	defer cancel()
	c, err := n2.Dial(ctx, n2.Config{Transport: n2.TransportUDP}, h.addr)
	if err != nil {
		t.Fatal(err)
	}
	g := &fakeGNB{t: t, h: h, conn: c, plmn: []byte{0x00, 0xF1, 0x10}, nonUE: make(chan ngapmsg.Message, 16),
		ues: map[int64]chan ngapmsg.Message{}, nextRAN: 100}
	t.Cleanup(func() { c.Close() })
	go g.read()
	return g
}

// setup runs NG Setup and fails the test unless it succeeds.
func (h *harness) gnb(t testing.TB) *fakeGNB {
	t.Helper()
	g := h.dialGNB(t)
	g.send(g.setupRequest(g.plmn), 0)
	if _, ok := g.expectNonUE().(*ngapmsg.NGSetupResponse); !ok {
		t.Fatal("NG Setup failed")
	}
	return g
}

func (g *fakeGNB) setupRequest(plmn []byte) *ngapmsg.NGSetupRequest {
	return &ngapmsg.NGSetupRequest{
		GlobalRANNodeID: &ngapie.GlobalRANNodeID{Choice: &ngapie.GlobalGNBID{
			PLMNIdentity: &ngapie.PLMNIdentity{Value: plmn},
			GNBID:        &ngapie.GNBID{Choice: &ngapie.GNBIDForGNBID{Value: aper.BitString{Bytes: []byte{0, 0, 1}, BitLength: 22}}},
		}},
		RANNodeName: &ngapie.RANNodeName{Value: "test-gnb"},
		SupportedTAList: &ngapie.SupportedTAList{List: []ngapie.SupportedTAItem{{
			TAC: &ngapie.TAC{Value: []byte{0, 0, 1}},
			BroadcastPLMNList: &ngapie.BroadcastPLMNList{List: []ngapie.BroadcastPLMNItem{{
				PLMNIdentity: &ngapie.PLMNIdentity{Value: plmn},
				TAISliceSupportList: &ngapie.SliceSupportList{List: []ngapie.SliceSupportItem{{
					SNSSAI: &ngapie.SNSSAI{SST: &ngapie.SST{Value: []byte{1}}},
				}}},
			}}},
		}}},
		DefaultPagingDRX: &ngapie.PagingDRX{Value: ngapie.PagingDRXPresentV128},
	}
}

func (g *fakeGNB) send(m ngapmsg.Message, stream uint16) { g.t.Helper(); g.sendT(g.t, m, stream) }

func (g *fakeGNB) sendT(t testing.TB, m ngapmsg.Message, stream uint16) {
	t.Helper()
	b, err := m.MarshalBinary()
	if err != nil {
		t.Fatalf("encode NGAP: %v", err)
	}
	if err := g.conn.WriteMsg(b, stream); err != nil {
		t.Fatalf("gNB write: %v", err)
	}
}

func (g *fakeGNB) sendRaw(b []byte, stream uint16) {
	g.t.Helper()
	if err := g.conn.WriteMsg(b, stream); err != nil {
		g.t.Fatalf("gNB write: %v", err)
	}
}

// read routes the AMF's messages by RAN UE NGAP ID.
func (g *fakeGNB) read() {
	buf := make([]byte, 1<<16)
	for {
		n, _, _, err := g.conn.ReadMsg(buf)
		if err != nil {
			return
		}
		m, err := ngapmsg.Parse(append([]byte(nil), buf[:n]...))
		if err != nil {
			g.t.Errorf("gNB: AMF sent undecodable NGAP: %v", err)
			continue
		}
		ran := int64(-1)
		switch v := m.(type) {
		case *ngapmsg.DownlinkNASTransport:
			ran = v.RANUENGAPID.Value
		case *ngapmsg.InitialContextSetupRequest:
			ran = v.RANUENGAPID.Value
		case *ngapmsg.PDUSessionResourceSetupRequest:
			ran = v.RANUENGAPID.Value
		case *ngapmsg.PDUSessionResourceReleaseCommand:
			ran = v.RANUENGAPID.Value
		case *ngapmsg.UEContextReleaseCommand:
			if p, ok := v.UENGAPIDs.Choice.(*ngapie.UENGAPIDPair); ok {
				ran = p.RANUENGAPID.Value
			}
		}
		if ran < 0 {
			g.nonUE <- m
			continue
		}
		g.mu.Lock()
		ch := g.ues[ran]
		g.mu.Unlock()
		if ch == nil {
			g.t.Errorf("gNB: message %T for unknown RAN UE NGAP ID %d", m, ran)
			continue
		}
		ch <- m
	}
}

func (g *fakeGNB) expectNonUE() ngapmsg.Message {
	g.t.Helper()
	select {
	case m := <-g.nonUE:
		return m
	case <-time.After(waitFor):
		g.t.Fatal("gNB: no non-UE-associated message from the AMF")
	}
	return nil
}

// --- the UE ------------------------------------------------------------------

type fakeUE struct {
	t      testing.TB
	g      *fakeGNB
	imsi   string
	supi   suci.SUPI
	usim   *aka.USIM
	ranID  int64
	amfID  int64
	in     chan ngapmsg.Message
	secCap *ie.UESecCapability
	imeisv string // 16 digits, "" to send none
	scheme suci.Scheme
	keyID  uint8
	hnKey  *suci.PublicKey

	kamf  [32]byte
	kgnb  [32]byte
	sc    *message.SecCtx
	guti  []byte // 5GS mobile identity value from REGISTRATION ACCEPT
	integ uint8
	ciph  uint8
	// pending NAS carried with a message that also needs an NGAP answer
	lastICS *ngapmsg.InitialContextSetupRequest
}

const testIMEISV = "3520990017614823" // TAC+SNR 35209900176148 (IMEI 352099001761481), SVN 23

// newUE makes a UE for imsi on gNB g with the harness's derived keys.
func (g *fakeGNB) newUE(t testing.TB, imsi string) *fakeUE {
	t.Helper()
	k, opc := udr.DerivedK(keySeed, imsi), udr.DerivedOPc(keySeed, imsi)
	usim, err := aka.NewUSIM(k, opc, aka.USIMConfig{})
	if err != nil {
		t.Fatal(err)
	}
	supi, err := suci.NewIMSI(imsi, 2)
	if err != nil {
		t.Fatal(err)
	}
	u := &fakeUE{t: t, g: g, imsi: imsi, supi: supi, usim: usim, imeisv: testIMEISV,
		secCap: &ie.UESecCapability{Length: 2, EA05G: true, EA1_128_5G: true, EA2_128_5G: true, EA3_128_5G: true,
			IA05G: true, IA1_128_5G: true, IA2_128_5G: true, IA3_128_5G: true}}
	g.attach(u)
	return u
}

// attach gives the UE a fresh RAN UE NGAP ID (a new RRC connection).
func (g *fakeGNB) attach(u *fakeUE) {
	g.mu.Lock()
	g.nextRAN++
	u.ranID = g.nextRAN
	u.in = make(chan ngapmsg.Message, 64)
	g.ues[u.ranID] = u.in
	g.mu.Unlock()
	u.amfID = -1
}

// withScheme makes the UE conceal its SUPI with a home network key.
func (u *fakeUE) withScheme(s suci.Scheme) *fakeUE {
	u.scheme = s
	if s != suci.SchemeNull {
		for _, p := range u.g.h.udm.Keys().Public() {
			if p.Scheme == s {
				u.keyID, u.hnKey = p.ID, p.Key
			}
		}
	}
	return u
}

func (u *fakeUE) uli() *ngapie.UserLocationInformation {
	plmn := &ngapie.PLMNIdentity{Value: u.g.plmn}
	return &ngapie.UserLocationInformation{Choice: &ngapie.UserLocationInformationNR{
		NRCGI: &ngapie.NRCGI{PLMNIdentity: plmn, NRCellIdentity: &ngapie.NRCellIdentity{Value: aper.BitString{Bytes: []byte{0, 0, 0, 0, 0x10}, BitLength: 36}}},
		TAI:   &ngapie.TAI{PLMNIdentity: plmn, TAC: &ngapie.TAC{Value: []byte{0, 0, 1}}},
	}}
}

func (u *fakeUE) sendInitial(nas []byte) {
	u.t.Helper()
	u.g.sendT(u.t, &ngapmsg.InitialUEMessage{
		RANUENGAPID:             &ngapie.RANUENGAPID{Value: u.ranID},
		NASPDU:                  &ngapie.NASPDU{Value: nas},
		UserLocationInformation: u.uli(),
		RRCEstablishmentCause:   &ngapie.RRCEstablishmentCause{Value: ngapie.RRCEstablishmentCausePresentMoSignalling},
		UEContextRequest:        &ngapie.UEContextRequest{Value: ngapie.UEContextRequestPresentRequested},
	}, 1)
}

func (u *fakeUE) sendUplink(nas []byte) {
	u.t.Helper()
	u.g.sendT(u.t, &ngapmsg.UplinkNASTransport{
		AMFUENGAPID:             &ngapie.AMFUENGAPID{Value: u.amfID},
		RANUENGAPID:             &ngapie.RANUENGAPID{Value: u.ranID},
		NASPDU:                  &ngapie.NASPDU{Value: nas},
		UserLocationInformation: u.uli(),
	}, 1)
}

// recv returns the next UE-associated message for this UE.
func (u *fakeUE) recv() ngapmsg.Message {
	u.t.Helper()
	select {
	case m := <-u.in:
		switch v := m.(type) {
		case *ngapmsg.DownlinkNASTransport:
			u.amfID = v.AMFUENGAPID.Value
		case *ngapmsg.InitialContextSetupRequest:
			u.amfID = v.AMFUENGAPID.Value
		}
		return m
	case <-time.After(waitFor):
		u.t.Fatalf("UE %s: nothing from the AMF", u.imsi)
	}
	return nil
}

// quiet asserts that nothing arrives for d.
func (u *fakeUE) quiet(d time.Duration) {
	u.t.Helper()
	select {
	case m := <-u.in:
		u.t.Fatalf("UE %s: unexpected %T", u.imsi, m)
	case <-time.After(d):
	}
}

// recvNAS returns the next NAS message carried in Downlink NAS Transport
// (or Initial Context Setup Request, answered), decoded with the UE's
// security context, and the raw PDU.
func (u *fakeUE) recvNAS() (message.Message, []byte) {
	u.t.Helper()
	m := u.recv()
	var pdu []byte
	switch v := m.(type) {
	case *ngapmsg.DownlinkNASTransport:
		pdu = v.NASPDU.Value
	case *ngapmsg.InitialContextSetupRequest:
		u.lastICS = v
		pdu = v.NASPDU.Value
	default:
		u.t.Fatalf("UE %s: want a NAS message, got %T", u.imsi, m)
	}
	return u.decode(pdu), pdu
}

// decode reads a downlink NAS PDU as the UE.
func (u *fakeUE) decode(pdu []byte) message.Message {
	u.t.Helper()
	if len(pdu) < 3 {
		u.t.Fatalf("short NAS PDU %x", pdu)
	}
	if pdu[1]&0x0F == 0 {
		m, err := message.ParseGMM(pdu)
		if err != nil {
			u.t.Fatalf("UE: plain NAS: %v", err)
		}
		return m
	}
	if u.sc == nil {
		// A SECURITY MODE COMMAND: readable, not yet checkable.
		if message.SecHdrType(pdu[1]&0x0F) == message.SecHdrTypeIntegrityProtectedWithNew5gNasSecCtx && len(pdu) > secHdrLen {
			m, err := message.ParseGMM(pdu[secHdrLen:])
			if err != nil {
				u.t.Fatalf("UE: NAS: %v", err)
			}
			return m
		}
		u.t.Fatalf("UE: protected NAS %x without a security context", pdu)
	}
	m, err := message.Parse(pdu, u.sc)
	if err != nil {
		u.t.Fatalf("UE: protected NAS: %v", err)
	}
	return m
}

// expectNAS receives a NAS message of type T.
func expectNAS[T message.Message](u *fakeUE) T {
	u.t.Helper()
	m, pdu := u.recvNAS()
	v, ok := m.(T)
	if !ok {
		var zero T
		u.t.Fatalf("UE %s: want %T, got %T (%s)", u.imsi, zero, m, nasDesc(m, pdu))
	}
	return v
}

func nasDesc(m message.Message, pdu []byte) string {
	if r, ok := m.(*message.RegRej); ok && r.Cause5GMM != nil {
		return fmt.Sprintf("cause #%d", r.Cause5GMM.Value)
	}
	return fmt.Sprintf("%x", pdu)
}

// expectRelease receives UE Context Release Command and completes it.
func (u *fakeUE) expectRelease() *ngapmsg.UEContextReleaseCommand {
	u.t.Helper()
	m := u.recv()
	rc, ok := m.(*ngapmsg.UEContextReleaseCommand)
	if !ok {
		u.t.Fatalf("UE %s: want UE Context Release Command, got %T", u.imsi, m)
	}
	p := rc.UENGAPIDs.Choice.(*ngapie.UENGAPIDPair)
	u.g.sendT(u.t, &ngapmsg.UEContextReleaseComplete{AMFUENGAPID: p.AMFUENGAPID, RANUENGAPID: p.RANUENGAPID}, 1)
	return rc
}

// suciValue is the UE's SUCI as a 5GS mobile identity value.
func (u *fakeUE) suciValue() []byte {
	u.t.Helper()
	s, err := suci.Conceal(u.supi, suci.Params{Scheme: u.scheme, KeyID: u.keyID, HNPublicKey: u.hnKey})
	if err != nil {
		u.t.Fatal(err)
	}
	b, err := s.MarshalBinary()
	if err != nil {
		u.t.Fatal(err)
	}
	return b
}

// regRequest builds REGISTRATION REQUEST (initial registration, ngKSI "no
// key", the identity, the UE security capability), octet by octet as
// TS 24.501 8.2.6 lays it out.
func (u *fakeUE) regRequest(identity []byte) []byte {
	b := []byte{epd5GMM, 0x00, byte(message.MsgTypeRegReq), ksiNone<<4 | ie.RegType_InitialReg}
	b = binary.BigEndian.AppendUint16(b, uint16(len(identity)))
	b = append(b, identity...)
	if u.secCap != nil {
		c, err := u.secCap.MarshalBinary()
		if err != nil {
			u.t.Fatal(err)
		}
		b = append(b, message.RegReqIEIUESecCapability, byte(len(c)))
		b = append(b, c...)
	}
	return b
}

// gutiValue builds a 5G-GUTI mobile identity value.
func gutiValue(plmn []byte, region uint8, set uint16, pointer uint8, tmsi uint32) []byte {
	b := []byte{0xF0 | ie.IdType_5GS_GUTI}
	b = append(b, plmn...)
	b = append(b, region, byte(set>>2), byte(set<<6)|pointer)
	return binary.BigEndian.AppendUint32(b, tmsi)
}

// answerAuth runs the USIM on an AUTHENTICATION REQUEST and answers:
// RES*, or AUTHENTICATION FAILURE on MAC or synch failure. It derives KAMF
// on success.
func (u *fakeUE) answerAuth(req *message.AuthReq) error {
	u.t.Helper()
	rand, autn := [16]byte(req.AuthParamRAND5GAuthChlg.Rand), [16]byte(req.AuthParamAUTN5GAuthChlg.Autn)
	r, err := u.usim.Authenticate(rand, autn, true)
	var sf *aka.SyncFailure
	switch {
	case errors.As(err, &sf):
		u.sendUplink(mustMarshal(u.t, &message.AuthFailure{Cause5GMM: &ie.Cause5GMM{Value: ie.Cause5GMM_SynchFailure},
			AuthFailureParam: &ie.AuthFailureParam{Value: sf.AUTS[:]}}))
		return err
	case err != nil:
		u.sendUplink(mustMarshal(u.t, &message.AuthFailure{Cause5GMM: &ie.Cause5GMM{Value: ie.Cause5GMM_MACFailure}}))
		return err
	}
	snn, _ := kdf.ServingNetworkName("001", "01")
	res, _ := kdf.RESStar(r.CK, r.IK, snn, rand, r.RES[:])
	kausf, _ := kdf.KAUSF(r.CK, r.IK, snn, [6]byte(autn[:6]))
	kseaf, _ := kdf.KSEAF(kausf, snn)
	u.kamf, _ = kdf.KAMF(kseaf, u.supi.String(), req.ABBA.Abba)
	u.sendUplink(mustMarshal(u.t, &message.AuthRsp{AuthRspParam: &ie.AuthRspParam{Res: res[:]}}))
	return nil
}

func mustMarshal(t testing.TB, m message.Message) []byte {
	t.Helper()
	b, err := m.MarshalBinary()
	if err != nil {
		t.Fatalf("marshal %T: %v", m, err)
	}
	return b
}

// takeSMC checks a SECURITY MODE COMMAND (header type 3) with the UE's
// KAMF and builds the UE's security context.
func (u *fakeUE) takeSMC(pdu []byte) (*message.SecModeCmd, error) {
	u.t.Helper()
	if message.SecHdrType(pdu[1]&0x0F) != message.SecHdrTypeIntegrityProtectedWithNew5gNasSecCtx {
		u.t.Fatalf("SECURITY MODE COMMAND with security header type %d, want 3", pdu[1]&0x0F)
	}
	inner, err := message.ParseGMM(pdu[secHdrLen:])
	if err != nil {
		u.t.Fatal(err)
	}
	cmd, ok := inner.(*message.SecModeCmd)
	if !ok {
		u.t.Fatalf("want SECURITY MODE COMMAND, got %T", inner)
	}
	u.integ, u.ciph = uint8(cmd.SelectedNASSecAlgos.MsgIntAlgo), uint8(cmd.SelectedNASSecAlgos.CipheringAlgo)
	kint, _ := kdf.AlgorithmKey(u.kamf, kdf.NASInt, u.integ)
	kenc, _ := kdf.AlgorithmKey(u.kamf, kdf.NASEnc, u.ciph)
	sc := message.NewSecCtx(message.UESide, message.Bearer3GPP, ie.AlgCiphering(u.ciph), ie.AlgIntegrity(u.integ), kenc[:], kint[:])
	if _, err := message.Parse(pdu, sc); err != nil {
		return cmd, err
	}
	u.sc = sc
	return cmd, nil
}

// protect encodes an uplink message with the UE's context.
func (u *fakeUE) protect(m message.Message, sht message.SecHdrType) []byte {
	u.t.Helper()
	b, err := message.Marshal(m, u.sc, sht)
	if err != nil {
		u.t.Fatalf("UE protect %T: %v", m, err)
	}
	return b
}

// smcComplete is the UE's SECURITY MODE COMPLETE with its IMEISV and the
// complete REGISTRATION REQUEST.
func (u *fakeUE) smcComplete(initial []byte) *message.SecModeComplete {
	c := &message.SecModeComplete{NASMsgCntr: &ie.NASMsgCntr{Contents: initial}}
	if u.imeisv != "" {
		id := &ie.MobileId5GS{TypeOfId: ie.IdType_5GS_IMEISV}
		for i := range u.imeisv {
			id.IMEISV[i] = u.imeisv[i] - '0'
		}
		c.IMEISV = id
	}
	return c
}

// untilSMC starts a registration with identity and runs it up to and
// including the SECURITY MODE COMMAND, which it returns unchecked.
func (u *fakeUE) untilSMC(identity []byte) (pdu, initial []byte) {
	u.t.Helper()
	initial = u.regRequest(identity)
	u.sendInitial(initial)
	for {
		m, pdu := u.recvNAS()
		switch v := m.(type) {
		case *message.IdReq:
			if v.IdType.IdType != ie.IdType_5GS_SUCI {
				u.t.Fatalf("IDENTITY REQUEST for type %d, want SUCI", v.IdType.IdType)
			}
			id := u.suciValue()
			b := []byte{epd5GMM, 0, byte(message.MsgTypeIdRsp)}
			b = binary.BigEndian.AppendUint16(b, uint16(len(id)))
			u.sendUplink(append(b, id...))
		case *message.AuthReq:
			if err := u.answerAuth(v); err != nil {
				var sf *aka.SyncFailure
				if !errors.As(err, &sf) {
					u.t.Fatalf("USIM: %v", err)
				}
			}
		case *message.SecModeCmd:
			return pdu, initial
		default:
			u.t.Fatalf("UE %s: unexpected %T (%s) before SECURITY MODE COMMAND", u.imsi, m, nasDesc(m, pdu))
		}
	}
}

// register runs a full registration with identity (nil: SUCI) and returns
// the REGISTRATION ACCEPT.
func (u *fakeUE) register(identity []byte) *message.RegAccept {
	u.t.Helper()
	if identity == nil {
		identity = u.suciValue()
	}
	pdu, initial := u.untilSMC(identity)
	if _, err := u.takeSMC(pdu); err != nil {
		u.t.Fatalf("UE: SECURITY MODE COMMAND: %v", err)
	}
	u.sendUplink(u.protect(u.smcComplete(initial), message.SecHdrTypeIntegrityProtectedAndCipheredWithNew5gNasSecCtx))
	acc := expectNAS[*message.RegAccept](u)
	ics := u.lastICS
	if ics == nil {
		u.t.Fatal("REGISTRATION ACCEPT not in Initial Context Setup Request")
	}
	u.lastICS = nil
	u.kgnb = [32]byte(ics.SecurityKey.Value.Bytes)
	u.g.sendT(u.t, &ngapmsg.InitialContextSetupResponse{AMFUENGAPID: ics.AMFUENGAPID, RANUENGAPID: ics.RANUENGAPID}, 1)
	if acc.GUTI5G != nil {
		u.guti = mustIE(u.t, acc.GUTI5G)
	}
	u.sendUplink(u.protect(&message.RegComplete{}, message.SecHdrTypeIntegrityProtectedAndCiphered))
	return acc
}

func mustIE(t testing.TB, m interface{ MarshalBinary() ([]byte, error) }) []byte {
	t.Helper()
	b, err := m.MarshalBinary()
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// registered waits until the AMF reports the UE registered.
func (u *fakeUE) registered() UEInfo {
	u.t.Helper()
	var info UEInfo
	eventually(u.t, "UE "+u.imsi+" registered", func() bool {
		i, err := u.g.h.amf.UE(context.Background(), u.supi.String())
		info = i
		return err == nil && i.Registered
	})
	return info
}

// expectReject receives REGISTRATION REJECT with the cause, then the
// release.
func (u *fakeUE) expectReject(cause uint8) {
	u.t.Helper()
	rej := expectNAS[*message.RegRej](u)
	if rej.Cause5GMM == nil || rej.Cause5GMM.Value != cause {
		u.t.Fatalf("REGISTRATION REJECT cause %v, want #%d", rej.Cause5GMM, cause)
	}
	u.expectRelease()
}

// ulSM sends N1 SM information in UL NAS Transport.
func (u *fakeUE) ulSM(psi uint8, n1 []byte, withSlice bool) []byte {
	m := &message.ULNASTransport{
		PayloadCntrType: &ie.PayloadCntrType{Value: ie.PayloadCntrType_N1SMInfo},
		PayloadCntr:     &ie.PayloadCntr{Pct: ie.PayloadCntrType_N1SMInfo, Contents: n1},
		PDUSessID:       &ie.PDUSessId2{Value: psi},
		ReqType:         &ie.ReqType{Value: ie.ReqType_InitialReq},
		DNN:             &ie.DNN{Value: "internet"},
	}
	if withSlice {
		m.SNSSAI = &ie.SNSSAI{SST: 1}
	}
	if message.MsgType(n1[3]) != message.MsgTypePDUSessEstReq {
		m.ReqType, m.DNN = nil, nil
	}
	b := u.protect(m, message.SecHdrTypeIntegrityProtectedAndCiphered)
	u.sendUplink(b)
	return b
}

// nasFrom unwraps DL NAS TRANSPORT to its 5GSM payload.
func (u *fakeUE) nasFrom(pdu []byte) *message.DLNASTransport {
	u.t.Helper()
	m := u.decode(pdu)
	dl, ok := m.(*message.DLNASTransport)
	if !ok {
		u.t.Fatalf("want DL NAS TRANSPORT, got %T", m)
	}
	return dl
}

func containsAll(s string, subs ...string) bool {
	for _, x := range subs {
		if !strings.Contains(s, x) {
			return false
		}
	}
	return true
}

// newWrongUSIM is a USIM whose K the network does not know.
func newWrongUSIM() (*aka.USIM, error) {
	return aka.NewUSIM([16]byte{1, 2, 3}, [16]byte{4, 5, 6}, aka.USIMConfig{})
}

// deregRequest is the UE's DEREGISTRATION REQUEST with its 5G-GUTI.
func (u *fakeUE) deregRequest(switchOff bool) *message.DeregReqUEOrig {
	u.t.Helper()
	id := &ie.MobileId5GS{}
	if err := id.UnmarshalBinary(u.guti); err != nil {
		u.t.Fatalf("UE 5G-GUTI %x: %v", u.guti, err)
	}
	return &message.DeregReqUEOrig{DeregType: &ie.DeregType{Switchoff: switchOff, AccessType: ie.AccessType_3gpp},
		Ngksi: &ie.NASKeySetId{Ksi: 0}, MobileId5GS: id}
}
