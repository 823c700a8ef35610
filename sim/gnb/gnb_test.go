package gnb

import (
	"bytes"
	"context"
	"errors"
	"net/netip"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/free5gc/ngap/aper"
	"github.com/free5gc/ngap/ie"
	"github.com/free5gc/ngap/message"
)

func TestPLMNID(t *testing.T) {
	tests := []struct {
		mcc, mnc string
		want     []byte
		err      bool
	}{
		// TS 24.008 Figure 10.5.13: MCC 001 MNC 01 -> 00 f1 10.
		{"001", "01", []byte{0x00, 0xf1, 0x10}, false},
		{"310", "410", []byte{0x13, 0x00, 0x14}, false},
		{"440", "10", []byte{0x44, 0xf0, 0x01}, false},
		{"01", "01", nil, true},
		{"001", "1", nil, true},
		{"0a1", "01", nil, true},
	}
	for _, tt := range tests {
		got, err := plmnID(tt.mcc, tt.mnc)
		if tt.err {
			if err == nil {
				t.Errorf("plmnID(%s, %s) = %x, want an error", tt.mcc, tt.mnc, got)
			}
			continue
		}
		if err != nil || !bytes.Equal(got[:], tt.want) {
			t.Errorf("plmnID(%s, %s) = %x, %v; want %x", tt.mcc, tt.mnc, got, err, tt.want)
			continue
		}
		mcc, mnc, err := decodePLMN(got[:])
		if err != nil || mcc != tt.mcc || mnc != tt.mnc {
			t.Errorf("decodePLMN(%x) = %s %s %v", got, mcc, mnc, err)
		}
	}
	if _, _, err := decodePLMN([]byte{0xaa, 0xf1, 0x10}); err == nil {
		t.Error("decodePLMN accepted a non-digit nibble")
	}
}

func TestBitString(t *testing.T) {
	tests := []struct {
		v    uint64
		n    int
		want []byte
	}{
		{1, 32, []byte{0, 0, 0, 1}},
		{1, 22, []byte{0, 0, 4}},          // 22 bits left-aligned in 3 octets
		{0x3F8, 10, []byte{0xfe, 0x00}},   // AMF set ID
		{0x10, 36, []byte{0, 0, 0, 1, 0}}, // NR cell identity
	}
	for _, tt := range tests {
		bs := bitString(tt.v, tt.n)
		if !bytes.Equal(bs.Bytes, tt.want) || bs.BitLength != uint64(tt.n) {
			t.Errorf("bitString(%#x, %d) = %x/%d, want %x", tt.v, tt.n, bs.Bytes, bs.BitLength, tt.want)
		}
		if v, err := bitValue(bs); err != nil || v != tt.v {
			t.Errorf("bitValue(bitString(%#x, %d)) = %#x, %v", tt.v, tt.n, v, err)
		}
	}
}

func TestConfigValidate(t *testing.T) {
	tests := []struct {
		name string
		mod  func(*Config)
		want string
	}{
		{"defaults", func(*Config) {}, ""},
		{"22-bit id", func(c *Config) { c.IDBits, c.ID = 22, 1<<22-1 }, ""},
		{"id too long", func(c *Config) { c.IDBits, c.ID = 22, 1<<22 }, "does not fit"},
		{"id bits", func(c *Config) { c.IDBits = 21 }, "22..32"},
		{"mcc", func(c *Config) { c.MCC = "1" }, "mcc"},
		{"tac", func(c *Config) { c.TAC = 1 << 24 }, "tac"},
		{"sd", func(c *Config) { c.SD = "12345" }, "sd"},
		{"sd ok", func(c *Config) { c.SD = "0a0B0c" }, ""},
		{"cell", func(c *Config) { c.CellID = 1 << 36 }, "cell_id"},
		{"n3 v6", func(c *Config) { c.N3 = netip.MustParseAddr("::1") }, "IPv4"},
		{"n2", func(c *Config) { c.N2.Transport = "tcp" }, "transport"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := DefaultConfig()
			tt.mod(&c)
			err := c.withDefaults().Validate()
			switch {
			case tt.want == "" && err != nil:
				t.Fatalf("Validate: %v", err)
			case tt.want != "" && (err == nil || !strings.Contains(err.Error(), tt.want)):
				t.Fatalf("Validate = %v, want an error with %q", err, tt.want)
			}
		})
	}
}

// dialed starts a gNB against a fake AMF and completes NG Setup.
func dialed(t *testing.T, cfg Config, h Handler) (*GNB, *fakeAMF) {
	t.Helper()
	amf := newFakeAMF(t)
	cfg.N2 = testN2(t)
	cfg.Logger = testLogger(t)
	type result struct {
		g   *GNB
		err error
	}
	res := make(chan result, 1)
	go func() {
		g, err := Dial(context.Background(), cfg, amf.addr(), h)
		res <- result{g, err}
	}()
	amf.accept()
	req := expect[*message.NGSetupRequest](t, amf.next())
	_ = req
	amf.send(setupResponse())
	r := <-res
	if r.err != nil {
		t.Fatalf("Dial: %v", r.err)
	}
	t.Cleanup(func() { _ = r.g.Close() })
	return r.g, amf
}

func TestNGSetup(t *testing.T) {
	amf := newFakeAMF(t)
	cfg := DefaultConfig()
	cfg.Name, cfg.ID, cfg.IDBits, cfg.TAC, cfg.SD = "gnb-test", 0x1234, 22, 0x000001, "010203"
	cfg.N2, cfg.Logger = testN2(t), testLogger(t)
	done := make(chan error, 1)
	var g *GNB
	go func() {
		var err error
		g, err = Dial(context.Background(), cfg, amf.addr(), nil)
		done <- err
	}()
	amf.accept()
	req := expect[*message.NGSetupRequest](t, amf.next())

	gg, ok := req.GlobalRANNodeID.Choice.(*ie.GlobalGNBID)
	if !ok {
		t.Fatalf("GlobalRANNodeID is %T", req.GlobalRANNodeID.Choice)
	}
	if !bytes.Equal(gg.PLMNIdentity.Value, testPLMN) {
		t.Errorf("PLMN %x, want %x", gg.PLMNIdentity.Value, testPLMN)
	}
	id := gg.GNBID.Choice.(*ie.GNBIDForGNBID).Value
	if v, _ := bitValue(id); id.BitLength != 22 || v != 0x1234 {
		t.Errorf("gNB ID %x/%d bits, want 0x1234 in 22 bits", id.Bytes, id.BitLength)
	}
	if string(req.RANNodeName.Value) != "gnb-test" {
		t.Errorf("RAN node name %q", req.RANNodeName.Value)
	}
	ta := req.SupportedTAList.List[0]
	if !bytes.Equal(ta.TAC.Value, []byte{0, 0, 1}) {
		t.Errorf("TAC %x", ta.TAC.Value)
	}
	bp := ta.BroadcastPLMNList.List[0]
	s := bp.TAISliceSupportList.List[0].SNSSAI
	if !bytes.Equal(bp.PLMNIdentity.Value, testPLMN) || !bytes.Equal(s.SST.Value, []byte{1}) || s.SD == nil ||
		!bytes.Equal(s.SD.Value, []byte{1, 2, 3}) {
		t.Errorf("broadcast PLMN %x slice %x/%v", bp.PLMNIdentity.Value, s.SST.Value, s.SD)
	}
	if req.DefaultPagingDRX.Value != ie.PagingDRXPresentV128 {
		t.Errorf("paging DRX %d, want v128", req.DefaultPagingDRX.Value)
	}
	amf.send(setupResponse())
	if err := <-done; err != nil {
		t.Fatalf("Dial: %v", err)
	}
	defer g.Close()
	info := g.AMF()
	want := GUAMI{MCC: "001", MNC: "01", Region: 0xCA, Set: 0x3F8, Pointer: 0}
	if info.Name != "simgate-amf" || info.Capacity != 255 || len(info.GUAMIs) != 1 || info.GUAMIs[0] != want ||
		len(info.PLMNs) != 1 || info.PLMNs[0] != "001-01" {
		t.Errorf("AMF info %+v", info)
	}
}

func TestNGSetupFailure(t *testing.T) {
	amf := newFakeAMF(t)
	cfg := DefaultConfig()
	cfg.MCC, cfg.MNC = "999", "99"
	cfg.N2, cfg.Logger = testN2(t), testLogger(t)
	done := make(chan error, 1)
	go func() {
		g, err := Dial(context.Background(), cfg, amf.addr(), nil)
		if g != nil {
			g.Close()
		}
		done <- err
	}()
	amf.accept()
	expect[*message.NGSetupRequest](t, amf.next())
	amf.send(&message.NGSetupFailure{
		Cause:      &ie.Cause{Choice: &ie.CauseMisc{Value: ie.CauseMiscPresentUnknownPLMNOrSNPN}},
		TimeToWait: &ie.TimeToWait{Value: ie.TimeToWaitPresentV5s},
	})
	err := <-done
	var sf *SetupFailure
	if !errors.Is(err, ErrNGSetupFailure) || !errors.As(err, &sf) {
		t.Fatalf("Dial = %v, want an NG setup failure", err)
	}
	if !strings.Contains(sf.Cause, "Unknown PLMN") || sf.TimeToWait != 5*time.Second {
		t.Errorf("failure %+v", sf)
	}
}

func TestNGSetupNoAnswer(t *testing.T) {
	amf := newFakeAMF(t)
	cfg := DefaultConfig()
	cfg.N2, cfg.Logger, cfg.SetupTimeout = testN2(t), testLogger(t), 300*time.Millisecond
	done := make(chan error, 1)
	go func() {
		_, err := Dial(context.Background(), cfg, amf.addr(), nil)
		done <- err
	}()
	amf.accept()
	expect[*message.NGSetupRequest](t, amf.next())
	if err := <-done; !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Dial = %v, want a timeout", err)
	}
}

// attach attaches a fake UE and answers its InitialUEMessage with a
// DownlinkNASTransport naming it amfID.
func attach(t *testing.T, g *GNB, amf *fakeAMF, ev *events, nas *fakeNAS, amfID int64) *UE {
	t.Helper()
	u, err := g.Attach(nas, []byte("registration request"))
	if err != nil {
		t.Fatal(err)
	}
	init := expect[*message.InitialUEMessage](t, amf.next())
	if init.RANUENGAPID.Value != int64(u.RANID()) || string(init.NASPDU.Value) != "registration request" {
		t.Fatalf("InitialUEMessage ran %d nas %q", init.RANUENGAPID.Value, init.NASPDU.Value)
	}
	amf.send(&message.DownlinkNASTransport{
		AMFUENGAPID: &ie.AMFUENGAPID{Value: amfID}, RANUENGAPID: &ie.RANUENGAPID{Value: int64(u.RANID())},
		NASPDU: &ie.NASPDU{Value: []byte("authentication request")},
	})
	ul := expect[*message.UplinkNASTransport](t, amf.next())
	if ul.AMFUENGAPID.Value != amfID || ul.RANUENGAPID.Value != int64(u.RANID()) ||
		string(ul.NASPDU.Value) != "ul:authentication request" {
		t.Fatalf("UplinkNASTransport amf %d ran %d nas %q", ul.AMFUENGAPID.Value, ul.RANUENGAPID.Value, ul.NASPDU.Value)
	}
	r := ev.wait(t, EventNAS)
	for r.u != u {
		r = ev.wait(t, EventNAS)
	}
	if r.ev.Err != nil {
		t.Fatalf("NAS event %+v for ue %d", r.ev, r.u.RANID())
	}
	return u
}

func TestNASRelay(t *testing.T) {
	ev := newEvents()
	g, amf := dialed(t, DefaultConfig(), ev)
	nas := &fakeNAS{}
	u, err := g.Attach(nas, []byte{0x7e, 0x00, 0x41})
	if err != nil {
		t.Fatal(err)
	}
	init := expect[*message.InitialUEMessage](t, amf.next())
	if !bytes.Equal(init.NASPDU.Value, []byte{0x7e, 0x00, 0x41}) {
		t.Errorf("NAS-PDU %x", init.NASPDU.Value)
	}
	if init.RRCEstablishmentCause.Value != ie.RRCEstablishmentCausePresentMoSignalling ||
		init.UEContextRequest == nil || init.UEContextRequest.Value != ie.UEContextRequestPresentRequested {
		t.Errorf("RRC cause %v UE context request %v", init.RRCEstablishmentCause.Value, init.UEContextRequest)
	}
	nr, ok := init.UserLocationInformation.Choice.(*ie.UserLocationInformationNR)
	if !ok {
		t.Fatalf("ULI is %T", init.UserLocationInformation.Choice)
	}
	if !bytes.Equal(nr.TAI.PLMNIdentity.Value, testPLMN) || !bytes.Equal(nr.TAI.TAC.Value, []byte{0, 0, 1}) {
		t.Errorf("TAI %x %x", nr.TAI.PLMNIdentity.Value, nr.TAI.TAC.Value)
	}
	if cell, _ := bitValue(nr.NRCGI.NRCellIdentity.Value); cell != 1<<4|1 || !bytes.Equal(nr.NRCGI.PLMNIdentity.Value, testPLMN) {
		t.Errorf("NR CGI %x cell %#x", nr.NRCGI.PLMNIdentity.Value, cell)
	}
	if _, known := u.AMFID(); known {
		t.Error("AMF-UE-NGAP-ID known before the AMF sent it")
	}
	if err := u.SendNAS([]byte("x")); err == nil {
		t.Error("SendNAS before the AMF named the UE succeeded")
	}
	// Downlink, and the UE's answer uplink with the AMF's ID.
	for i, pdu := range []string{"identity request", "authentication request"} {
		amf.send(&message.DownlinkNASTransport{
			AMFUENGAPID: &ie.AMFUENGAPID{Value: 1 << 39}, RANUENGAPID: &ie.RANUENGAPID{Value: int64(u.RANID())},
			NASPDU: &ie.NASPDU{Value: []byte(pdu)},
		})
		ul := expect[*message.UplinkNASTransport](t, amf.next())
		if ul.AMFUENGAPID.Value != 1<<39 || string(ul.NASPDU.Value) != "ul:"+pdu || ul.UserLocationInformation == nil {
			t.Fatalf("uplink %d: amf %d nas %q", i, ul.AMFUENGAPID.Value, ul.NASPDU.Value)
		}
		ev.wait(t, EventNAS)
	}
	if id, ok := u.AMFID(); !ok || id != 1<<39 {
		t.Errorf("AMFID = %d %v", id, ok)
	}
	if got := nas.received(); len(got) != 2 || string(got[1]) != "authentication request" {
		t.Errorf("UE received %q", got)
	}
	// A NAS error is reported, and nothing goes up.
	nas.mu.Lock()
	nas.fail = true
	nas.mu.Unlock()
	amf.send(&message.DownlinkNASTransport{
		AMFUENGAPID: &ie.AMFUENGAPID{Value: 1 << 39}, RANUENGAPID: &ie.RANUENGAPID{Value: int64(u.RANID())},
		NASPDU: &ie.NASPDU{Value: []byte("garbage")},
	})
	if r := ev.wait(t, EventNAS); r.ev.Err == nil {
		t.Error("NAS error not reported")
	}
	amf.none(100 * time.Millisecond)
	// Uplink sent from outside, through Do.
	done := make(chan error, 1)
	if err := u.Do(func() { done <- u.SendNAS([]byte("deregistration request")) }); err != nil {
		t.Fatal(err)
	}
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if ul := expect[*message.UplinkNASTransport](t, amf.next()); string(ul.NASPDU.Value) != "deregistration request" {
		t.Errorf("uplink %q", ul.NASPDU.Value)
	}
	if g.UEs() != 1 {
		t.Errorf("UEs() = %d", g.UEs())
	}
}

func TestProtocolErrors(t *testing.T) {
	ev := newEvents()
	g, amf := dialed(t, DefaultConfig(), ev)
	u := attach(t, g, amf, ev, &fakeNAS{}, 5)

	// Unknown RAN-UE-NGAP-ID: TS 38.413 10.6.
	amf.send(&message.DownlinkNASTransport{
		AMFUENGAPID: &ie.AMFUENGAPID{Value: 6}, RANUENGAPID: &ie.RANUENGAPID{Value: 999},
		NASPDU: &ie.NASPDU{Value: []byte("x")},
	})
	ei := expect[*message.ErrorIndication](t, amf.next())
	if c, ok := ei.Cause.Choice.(*ie.CauseRadioNetwork); !ok || c.Value != ie.CauseRadioNetworkPresentUnknownLocalUENGAPID ||
		ei.RANUENGAPID == nil || ei.RANUENGAPID.Value != 999 {
		t.Errorf("error indication %s ran %v", causeString(ei.Cause), ei.RANUENGAPID)
	}
	// Inconsistent AMF-UE-NGAP-ID.
	amf.send(&message.DownlinkNASTransport{
		AMFUENGAPID: &ie.AMFUENGAPID{Value: 6}, RANUENGAPID: &ie.RANUENGAPID{Value: int64(u.RANID())},
		NASPDU: &ie.NASPDU{Value: []byte("x")},
	})
	ei = expect[*message.ErrorIndication](t, amf.next())
	if c, ok := ei.Cause.Choice.(*ie.CauseRadioNetwork); !ok || c.Value != ie.CauseRadioNetworkPresentInconsistentRemoteUENGAPID {
		t.Errorf("error indication %s", causeString(ei.Cause))
	}
	// Undecodable: TS 38.413 10.2, transfer syntax error.
	amf.sendRaw([]byte{0x00, 0x04, 0x40, 0xff, 0x01})
	ei = expect[*message.ErrorIndication](t, amf.next())
	if c, ok := ei.Cause.Choice.(*ie.CauseProtocol); !ok || c.Value != ie.CauseProtocolPresentTransferSyntaxError {
		t.Errorf("error indication %s", causeString(ei.Cause))
	}
	// An Error Indication for the UE is an event, and is not answered.
	amf.send(&message.ErrorIndication{
		AMFUENGAPID: &ie.AMFUENGAPID{Value: 5}, RANUENGAPID: &ie.RANUENGAPID{Value: int64(u.RANID())},
		Cause: &ie.Cause{Choice: &ie.CauseProtocol{Value: ie.CauseProtocolPresentSemanticError}},
	})
	if r := ev.wait(t, EventErrorIndication); r.u != u || !strings.Contains(r.ev.Cause, "Semantic") {
		t.Errorf("error indication event %+v", r.ev)
	}
	amf.none(100 * time.Millisecond)
	// The UE still works.
	amf.send(&message.DownlinkNASTransport{
		AMFUENGAPID: &ie.AMFUENGAPID{Value: 5}, RANUENGAPID: &ie.RANUENGAPID{Value: int64(u.RANID())},
		NASPDU: &ie.NASPDU{Value: []byte("y")},
	})
	expect[*message.UplinkNASTransport](t, amf.next())
}

func icsRequest(amfID int64, ran uint32, nas []byte) *message.InitialContextSetupRequest {
	key := make([]byte, 32)
	for i := range key {
		key[i] = byte(i)
	}
	m := &message.InitialContextSetupRequest{
		AMFUENGAPID: &ie.AMFUENGAPID{Value: amfID}, RANUENGAPID: &ie.RANUENGAPID{Value: int64(ran)},
		GUAMI:        setupResponse().ServedGUAMIList.List[0].GUAMI,
		AllowedNSSAI: &ie.AllowedNSSAI{List: []ie.AllowedNSSAIItem{{SNSSAI: snssai(1, nil)}}},
		UESecurityCapabilities: &ie.UESecurityCapabilities{
			NRencryptionAlgorithms:             &ie.NRencryptionAlgorithms{Value: bitString(0xe000, 16)},
			NRintegrityProtectionAlgorithms:    &ie.NRintegrityProtectionAlgorithms{Value: bitString(0x6000, 16)},
			EUTRAencryptionAlgorithms:          &ie.EUTRAencryptionAlgorithms{Value: bitString(0, 16)},
			EUTRAintegrityProtectionAlgorithms: &ie.EUTRAintegrityProtectionAlgorithms{Value: bitString(0, 16)},
		},
		SecurityKey: &ie.SecurityKey{Value: aper.BitString{Bytes: key, BitLength: 256}},
	}
	if nas != nil {
		m.NASPDU = &ie.NASPDU{Value: nas}
	}
	return m
}

func TestInitialContextSetup(t *testing.T) {
	ev := newEvents()
	g, amf := dialed(t, DefaultConfig(), ev)
	u := attach(t, g, amf, ev, &fakeNAS{}, 11)

	amf.send(icsRequest(11, u.RANID(), []byte("registration accept")))
	resp := expect[*message.InitialContextSetupResponse](t, amf.next())
	if resp.AMFUENGAPID.Value != 11 || resp.RANUENGAPID.Value != int64(u.RANID()) ||
		resp.PDUSessionResourceSetupListCxtRes != nil || resp.PDUSessionResourceFailedToSetupListCxtRes != nil {
		t.Errorf("response %+v", resp)
	}
	// The response first, then the UE's answer to the NAS-PDU.
	ul := expect[*message.UplinkNASTransport](t, amf.next())
	if string(ul.NASPDU.Value) != "ul:registration accept" {
		t.Errorf("uplink %q", ul.NASPDU.Value)
	}
	ev.wait(t, EventContextSetup)
	ev.wait(t, EventNAS)
	k, ok := u.KgNB()
	if !ok || k[0] != 0 || k[31] != 31 {
		t.Errorf("KgNB %x %v", k, ok)
	}
	if sc := u.SecurityCapabilities(); sc.NREncryption != 0xe000 || sc.NRIntegrity != 0x6000 {
		t.Errorf("security capabilities %+v", sc)
	}

}

// TestInitialContextSetupFailure: a request the encoder would refuse to
// build (no security key) is answered with a failure.
func TestInitialContextSetupFailure(t *testing.T) {
	conn := &nullConn{keep: true}
	ev := newEvents()
	g := inlineGNB(t, ev, conn)
	u, err := g.Attach(&fakeNAS{}, []byte("registration request"))
	if err != nil {
		t.Fatal(err)
	}
	bad := icsRequest(12, u.RANID(), nil)
	bad.SecurityKey = nil
	g.dispatch(job{kind: jobMsg, ran: u.RANID(), amf: 12, msg: bad})
	sent := conn.sent()
	m, err := message.Parse(sent[len(sent)-1])
	if err != nil {
		t.Fatal(err)
	}
	f := expect[*message.InitialContextSetupFailure](t, m)
	if f.RANUENGAPID.Value != int64(u.RANID()) || f.AMFUENGAPID.Value != 12 || f.Cause == nil {
		t.Errorf("failure %+v", f)
	}
	if _, ok := u.KgNB(); ok {
		t.Error("KgNB set by a failed setup")
	}
}

func sessionRequest(t testing.TB, amfID int64, ran uint32, psi int64, tr aper.OctetString, nas string) *message.PDUSessionResourceSetupRequest {
	return &message.PDUSessionResourceSetupRequest{
		AMFUENGAPID: &ie.AMFUENGAPID{Value: amfID}, RANUENGAPID: &ie.RANUENGAPID{Value: int64(ran)},
		PDUSessionResourceSetupListSUReq: &ie.PDUSessionResourceSetupListSUReq{List: []ie.PDUSessionResourceSetupItemSUReq{{
			PDUSessionID: &ie.PDUSessionID{Value: psi}, PDUSessionNASPDU: &ie.NASPDU{Value: []byte(nas)},
			SNSSAI: snssai(1, nil), PDUSessionResourceSetupRequestTransfer: &tr,
		}}},
	}
}

func TestPDUSessionSetupAndRelease(t *testing.T) {
	ev := newEvents()
	cfg := DefaultConfig()
	cfg.N3 = netip.MustParseAddr("127.0.0.9")
	cfg.TEIDBase = 0x100
	g, amf := dialed(t, cfg, ev)
	ueAddr := netip.MustParseAddr("10.45.0.7")
	nas := &fakeNAS{addrs: map[uint8]netip.Addr{1: ueAddr}}
	u := attach(t, g, amf, ev, nas, 21)
	upf := netip.MustParseAddr("127.0.0.8")

	amf.send(sessionRequest(t, 21, u.RANID(), 1, setupTransfer(t, upf, 0xabcd0001), "establishment accept"))
	resp := expect[*message.PDUSessionResourceSetupResponse](t, amf.next())
	if resp.PDUSessionResourceSetupListSURes == nil || len(resp.PDUSessionResourceSetupListSURes.List) != 1 ||
		resp.PDUSessionResourceFailedToSetupListSURes != nil {
		t.Fatalf("response lists %+v %+v", resp.PDUSessionResourceSetupListSURes, resp.PDUSessionResourceFailedToSetupListSURes)
	}
	item := resp.PDUSessionResourceSetupListSURes.List[0]
	var tr ie.PDUSessionResourceSetupResponseTransfer
	if err := ie.UnmarshalBinary(*item.PDUSessionResourceSetupResponseTransfer, &tr); err != nil {
		t.Fatalf("response transfer: %v", err)
	}
	gt := tr.DLQosFlowPerTNLInformation.UPTransportLayerInformation.Choice.(*ie.GTPTunnel)
	dlAddr, _ := parseTransportAddr(gt.TransportLayerAddress)
	dlTEID, _ := parseTEID(gt.GTPTEID)
	flows := tr.DLQosFlowPerTNLInformation.AssociatedQosFlowList.List
	if item.PDUSessionID.Value != 1 || dlAddr != cfg.N3 || dlTEID != 0x100 || len(flows) != 1 || flows[0].QosFlowIdentifier.Value != 1 {
		t.Errorf("DL tunnel %s teid %#x flows %d", dlAddr, dlTEID, len(flows))
	}
	// The session's NAS-PDU reaches the UE, whose address is recorded.
	ev.wait(t, EventNAS)
	r := ev.wait(t, EventSessionSetup)
	if r.ev.PSI != 1 {
		t.Errorf("session event %+v", r.ev)
	}
	s, ok := u.Session(1)
	want := Session{PSI: 1, UEAddr: ueAddr, UPF: upf, ULTEID: 0xabcd0001, GNB: cfg.N3, DLTEID: 0x100, QFIs: []uint8{1}, Type: 0}
	if !ok || s.UEAddr != want.UEAddr || s.UPF != want.UPF || s.ULTEID != want.ULTEID || s.GNB != want.GNB ||
		s.DLTEID != want.DLTEID || len(s.QFIs) != 1 || s.QFIs[0] != 1 {
		t.Errorf("session %+v, want %+v", s, want)
	}
	if got := nas.received(); string(got[len(got)-1]) != "establishment accept" {
		t.Errorf("UE got %q", got[len(got)-1])
	}
	// The establishment accept's answer (the fake UE answers everything).
	expect[*message.UplinkNASTransport](t, amf.next())
	if owner, _, ok := g.SessionByTEID(0x100); !ok || owner != u {
		t.Error("SessionByTEID did not find the session")
	}

	// The same PSI again, and a transfer that does not decode: both fail.
	amf.send(sessionRequest(t, 21, u.RANID(), 1, setupTransfer(t, upf, 2), "dup"))
	resp = expect[*message.PDUSessionResourceSetupResponse](t, amf.next())
	if resp.PDUSessionResourceSetupListSURes != nil || resp.PDUSessionResourceFailedToSetupListSURes == nil {
		t.Fatal("duplicate PSI not refused")
	}
	var ut ie.PDUSessionResourceSetupUnsuccessfulTransfer
	if err := ie.UnmarshalBinary(*resp.PDUSessionResourceFailedToSetupListSURes.List[0].PDUSessionResourceSetupUnsuccessfulTransfer, &ut); err != nil {
		t.Fatal(err)
	}
	if c, ok := ut.Cause.Choice.(*ie.CauseRadioNetwork); !ok || c.Value != ie.CauseRadioNetworkPresentMultiplePDUSessionIDInstances {
		t.Errorf("duplicate cause %s", causeString(ut.Cause))
	}
	if r := ev.wait(t, EventSessionFailed); r.ev.PSI != 1 {
		t.Errorf("failure event %+v", r.ev)
	}
	amf.send(sessionRequest(t, 21, u.RANID(), 2, aper.OctetString{0xff, 0x00}, "bad"))
	resp = expect[*message.PDUSessionResourceSetupResponse](t, amf.next())
	if resp.PDUSessionResourceFailedToSetupListSURes == nil || resp.PDUSessionResourceFailedToSetupListSURes.List[0].PDUSessionID.Value != 2 {
		t.Fatal("bad transfer not refused")
	}
	ev.wait(t, EventSessionFailed)
	if len(u.Sessions()) != 1 {
		t.Errorf("sessions %+v", u.Sessions())
	}

	// Release.
	amf.send(&message.PDUSessionResourceReleaseCommand{
		AMFUENGAPID: &ie.AMFUENGAPID{Value: 21}, RANUENGAPID: &ie.RANUENGAPID{Value: int64(u.RANID())},
		NASPDU: &ie.NASPDU{Value: []byte("release command")},
		PDUSessionResourceToReleaseListRelCmd: &ie.PDUSessionResourceToReleaseListRelCmd{List: []ie.PDUSessionResourceToReleaseItemRelCmd{{
			PDUSessionID: &ie.PDUSessionID{Value: 1}, PDUSessionResourceReleaseCommandTransfer: &aper.OctetString{0x10},
		}}},
	})
	rel := expect[*message.PDUSessionResourceReleaseResponse](t, amf.next())
	if len(rel.PDUSessionResourceReleasedListRelRes.List) != 1 || rel.PDUSessionResourceReleasedListRelRes.List[0].PDUSessionID.Value != 1 {
		t.Errorf("released list %+v", rel.PDUSessionResourceReleasedListRelRes)
	}
	var rt ie.PDUSessionResourceReleaseResponseTransfer
	if err := ie.UnmarshalBinary(*rel.PDUSessionResourceReleasedListRelRes.List[0].PDUSessionResourceReleaseResponseTransfer, &rt); err != nil {
		t.Errorf("release response transfer: %v", err)
	}
	if ul := expect[*message.UplinkNASTransport](t, amf.next()); string(ul.NASPDU.Value) != "ul:release command" {
		t.Errorf("uplink %q", ul.NASPDU.Value)
	}
	if r := ev.wait(t, EventSessionReleased); r.ev.PSI != 1 {
		t.Errorf("release event %+v", r.ev)
	}
	if _, ok := u.Session(1); ok {
		t.Error("session still there")
	}
	if _, _, ok := g.SessionByTEID(0x100); ok {
		t.Error("TEID still allocated")
	}
}

func TestInitialContextSetupWithSession(t *testing.T) {
	ev := newEvents()
	g, amf := dialed(t, DefaultConfig(), ev)
	u := attach(t, g, amf, ev, &fakeNAS{}, 31)
	m := icsRequest(31, u.RANID(), []byte("registration accept"))
	tr := setupTransfer(t, netip.MustParseAddr("127.0.0.8"), 77)
	m.UEAggregateMaximumBitRate = &ie.UEAggregateMaximumBitRate{
		UEAggregateMaximumBitRateDL: &ie.BitRate{Value: 1 << 30}, UEAggregateMaximumBitRateUL: &ie.BitRate{Value: 1 << 30},
	}
	m.PDUSessionResourceSetupListCxtReq = &ie.PDUSessionResourceSetupListCxtReq{List: []ie.PDUSessionResourceSetupItemCxtReq{{
		PDUSessionID: &ie.PDUSessionID{Value: 3}, SNSSAI: snssai(1, nil), PDUSessionResourceSetupRequestTransfer: &tr,
		NASPDU: &ie.NASPDU{Value: []byte("accept 3")},
	}}}
	amf.send(m)
	resp := expect[*message.InitialContextSetupResponse](t, amf.next())
	if resp.PDUSessionResourceSetupListCxtRes == nil || resp.PDUSessionResourceSetupListCxtRes.List[0].PDUSessionID.Value != 3 {
		t.Fatalf("response %+v", resp)
	}
	for _, want := range []string{"ul:registration accept", "ul:accept 3"} {
		if ul := expect[*message.UplinkNASTransport](t, amf.next()); string(ul.NASPDU.Value) != want {
			t.Errorf("uplink %q, want %q", ul.NASPDU.Value, want)
		}
	}
	if r := ev.wait(t, EventSessionSetup); r.ev.PSI != 3 {
		t.Errorf("event %+v", r.ev)
	}
	if s, ok := u.Session(3); !ok || s.ULTEID != 77 {
		t.Errorf("session %+v", s)
	}
}

func TestUEContextRelease(t *testing.T) {
	ev := newEvents()
	g, amf := dialed(t, DefaultConfig(), ev)
	u1 := attach(t, g, amf, ev, &fakeNAS{}, 41)
	u2 := attach(t, g, amf, ev, &fakeNAS{}, 42)
	amf.send(sessionRequest(t, 41, u1.RANID(), 1, setupTransfer(t, netip.MustParseAddr("127.0.0.8"), 1), "a"))
	expect[*message.PDUSessionResourceSetupResponse](t, amf.next())
	expect[*message.UplinkNASTransport](t, amf.next())
	ev.wait(t, EventSessionSetup)
	teid := u1.Sessions()[0].DLTEID

	nasCause := &ie.Cause{Choice: &ie.CauseNas{Value: ie.CauseNasPresentNormalRelease}}
	// By the ID pair.
	amf.send(&message.UEContextReleaseCommand{
		UENGAPIDs: &ie.UENGAPIDs{Choice: &ie.UENGAPIDPair{
			AMFUENGAPID: &ie.AMFUENGAPID{Value: 41}, RANUENGAPID: &ie.RANUENGAPID{Value: int64(u1.RANID())},
		}},
		Cause: nasCause,
	})
	c := expect[*message.UEContextReleaseComplete](t, amf.next())
	if c.AMFUENGAPID.Value != 41 || c.RANUENGAPID.Value != int64(u1.RANID()) ||
		c.PDUSessionResourceListCxtRelCpl == nil || c.PDUSessionResourceListCxtRelCpl.List[0].PDUSessionID.Value != 1 {
		t.Errorf("complete %+v", c)
	}
	r := ev.wait(t, EventReleased)
	if r.u != u1 || !strings.Contains(r.ev.Cause, "Normal release") || !u1.Released() {
		t.Errorf("release event %+v", r.ev)
	}
	if _, _, ok := g.SessionByTEID(teid); ok {
		t.Error("TEID of a released UE still allocated")
	}
	// By the AMF-UE-NGAP-ID alone.
	amf.send(&message.UEContextReleaseCommand{UENGAPIDs: &ie.UENGAPIDs{Choice: &ie.AMFUENGAPID{Value: 42}}, Cause: nasCause})
	c = expect[*message.UEContextReleaseComplete](t, amf.next())
	if c.RANUENGAPID.Value != int64(u2.RANID()) || c.PDUSessionResourceListCxtRelCpl != nil {
		t.Errorf("complete %+v", c)
	}
	ev.wait(t, EventReleased)
	if g.UEs() != 0 {
		t.Errorf("UEs() = %d after releases", g.UEs())
	}
	if err := u2.SendNAS([]byte("x")); !errors.Is(err, ErrReleased) {
		t.Errorf("SendNAS after release = %v", err)
	}
	// A released UE is unknown.
	amf.send(&message.DownlinkNASTransport{
		AMFUENGAPID: &ie.AMFUENGAPID{Value: 42}, RANUENGAPID: &ie.RANUENGAPID{Value: int64(u2.RANID())},
		NASPDU: &ie.NASPDU{Value: []byte("x")},
	})
	expect[*message.ErrorIndication](t, amf.next())
	// Release requested by the gNB.
	u3 := attach(t, g, amf, ev, &fakeNAS{}, 43)
	if err := u3.RequestRelease(); err != nil {
		t.Fatal(err)
	}
	req := expect[*message.UEContextReleaseRequest](t, amf.next())
	if req.AMFUENGAPID.Value != 43 || req.RANUENGAPID.Value != int64(u3.RANID()) {
		t.Errorf("release request %+v", req)
	}
}

func TestNGReset(t *testing.T) {
	ev := newEvents()
	g, amf := dialed(t, DefaultConfig(), ev)
	for i := range 3 {
		attach(t, g, amf, ev, &fakeNAS{}, int64(50+i))
	}
	amf.send(&message.NGReset{
		Cause:     &ie.Cause{Choice: &ie.CauseMisc{Value: ie.CauseMiscPresentOmIntervention}},
		ResetType: &ie.ResetType{Choice: &ie.ResetAll{Value: ie.ResetAllPresentResetAll}},
	})
	expect[*message.NGResetAcknowledge](t, amf.next())
	for range 3 {
		if r := ev.wait(t, EventReleased); !strings.Contains(r.ev.Cause, "NG reset") {
			t.Errorf("event %+v", r.ev)
		}
	}
	if g.UEs() != 0 {
		t.Errorf("UEs() = %d after reset", g.UEs())
	}
}

func TestAssociationLost(t *testing.T) {
	ev := newEvents()
	g, amf := dialed(t, DefaultConfig(), ev)
	u := attach(t, g, amf, ev, &fakeNAS{}, 60)
	_ = amf.conn.Close()
	r := ev.wait(t, EventReleased)
	if r.u != u || !errors.Is(r.ev.Err, ErrAssociationLost) {
		t.Errorf("event %+v", r.ev)
	}
	select {
	case <-g.Done():
	case <-time.After(5 * time.Second):
		t.Fatal("gNB not done after the association ended")
	}
	if !errors.Is(g.Err(), ErrAssociationLost) {
		t.Errorf("Err() = %v", g.Err())
	}
	if _, err := g.Attach(&fakeNAS{}, []byte("x")); err == nil {
		t.Error("Attach on a dead gNB succeeded")
	}
}

func TestContextCancelCloses(t *testing.T) {
	amf := newFakeAMF(t)
	cfg := DefaultConfig()
	cfg.N2, cfg.Logger = testN2(t), testLogger(t)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	res := make(chan *GNB, 1)
	go func() {
		g, err := Dial(ctx, cfg, amf.addr(), nil)
		if err != nil {
			t.Error(err)
		}
		res <- g
	}()
	amf.accept()
	expect[*message.NGSetupRequest](t, amf.next())
	amf.send(setupResponse())
	g := <-res
	if g == nil {
		return
	}
	cancel()
	select {
	case <-g.Done():
	case <-time.After(5 * time.Second):
		t.Fatal("cancelling the context did not close the gNB")
	}
	if g.Err() != nil {
		t.Errorf("Err() after cancel = %v", g.Err())
	}
}

// TestCloseStopsGoroutines: after Close, nothing the gNB started runs.
func TestCloseStopsGoroutines(t *testing.T) {
	amf := newFakeAMF(t)
	before := runtime.NumGoroutine()
	cfg := DefaultConfig()
	cfg.N2, cfg.Logger, cfg.Workers = testN2(t), testLogger(t), 4
	res := make(chan *GNB, 1)
	go func() {
		g, err := Dial(context.Background(), cfg, amf.addr(), nil)
		if err != nil {
			t.Error(err)
		}
		res <- g
	}()
	amf.accept()
	expect[*message.NGSetupRequest](t, amf.next())
	amf.send(setupResponse())
	g := <-res
	if g == nil {
		return
	}
	if _, err := g.Attach(&fakeNAS{}, []byte("x")); err != nil {
		t.Fatal(err)
	}
	expect[*message.InitialUEMessage](t, amf.next())
	if err := g.Close(); err != nil {
		t.Fatal(err)
	}
	_ = amf.conn.Close()
	deadline := time.Now().Add(5 * time.Second)
	for runtime.NumGoroutine() > before {
		if time.Now().After(deadline) {
			buf := make([]byte, 1<<20)
			t.Fatalf("goroutines: %d before, %d after Close\n%s", before, runtime.NumGoroutine(), buf[:runtime.Stack(buf, true)])
		}
		time.Sleep(10 * time.Millisecond)
	}
}
