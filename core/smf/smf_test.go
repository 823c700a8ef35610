package smf

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"sync"
	"testing"
	"time"

	"github.com/free5gc/nas/ie"
	"github.com/free5gc/nas/message"
	ngapie "github.com/free5gc/ngap/ie"
	pfcpie "github.com/wmnsk/go-pfcp/ie"

	"github.com/simgate/simgate/gtp/pfcp"
	"github.com/simgate/simgate/gtp/pfcp/pfcptest"
	"github.com/simgate/simgate/gtp/upf"
)

var loopback = netip.MustParseAddr("127.0.0.1")

// testNet is an SMF and a real UPF talking PFCP over loopback.
type testNet struct {
	upf *upf.UPF
	smf *SMF
	n4  *pfcp.Client
	cfg Config
}

type netOpts struct {
	mod     func(*Config)
	upfConn func(*net.UDPConn) pfcp.PacketConn // wraps the UPF's socket
}

func startNet(t testing.TB, o netOpts) *testNet {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	ucfg := upf.DefaultConfig()
	ucfg.N4Addr = "127.0.0.1:0"
	ucfg.N3Addr = "127.0.0.1"
	ucfg.HeartbeatInterval = 0
	conn, err := net.ListenUDP("udp", net.UDPAddrFromAddrPort(netip.AddrPortFrom(loopback, 0)))
	if err != nil {
		t.Fatal(err)
	}
	var pc pfcp.PacketConn = conn
	if o.upfConn != nil {
		pc = o.upfConn(conn)
	}
	u, err := upf.StartOn(ctx, ucfg, pc, nil)
	if err != nil {
		cancel()
		t.Fatalf("upf: %v", err)
	}
	cfg := DefaultConfig()
	cfg.N4Addr = "127.0.0.1:0"
	cfg.UPFAddr = u.Addr().String()
	cfg.T1 = 100 * time.Millisecond
	cfg.N1 = 2
	cfg.HeartbeatInterval = 0
	if o.mod != nil {
		o.mod(&cfg)
	}
	client, err := ListenN4(ctx, cfg, nil)
	if err != nil {
		cancel()
		t.Fatalf("ListenN4: %v", err)
	}
	s, err := New(cfg, client, nil)
	if err != nil {
		cancel()
		t.Fatalf("New: %v", err)
	}
	t.Cleanup(func() {
		cancel()
		<-client.Node().Done()
		<-u.Done()
	})
	return &testNet{upf: u, smf: s, n4: client, cfg: cfg}
}

func ctxT(t testing.TB) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	t.Cleanup(cancel)
	return ctx
}

func ident(i int) Identity {
	return Identity{
		SUPI:   fmt.Sprintf("imsi-00101%010d", i),
		IMEI:   fmt.Sprintf("35%013d", i),
		MSISDN: fmt.Sprintf("8190%08d", i),
	}
}

// estReq is a PDU SESSION ESTABLISHMENT REQUEST as a UE sends it; pduType
// 0 leaves the PDU session type out.
func estReq(t testing.TB, psi, pti, pduType uint8) []byte {
	t.Helper()
	m := &message.PDUSessEstReq{
		PDUSessId: psi, PTI: pti,
		IntegrityProtectionMaxDataRate: &ie.IntegrityProtectionMaxDataRate{Uplink: 0xff, Downlink: 0xff},
		SSCMode:                        &ie.SSCMode{Mode: ie.SSCMODE1},
	}
	if pduType != 0 {
		m.PDUSessType = &ie.PDUSessType{Value: pduType}
	}
	b, err := m.MarshalBinary()
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func relReq(t testing.TB, psi, pti uint8) []byte {
	t.Helper()
	b, err := (&message.PDUSessRelReq{PDUSessId: psi, PTI: pti}).MarshalBinary()
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func relComplete(t testing.TB, psi, pti uint8) []byte {
	t.Helper()
	b, err := (&message.PDUSessRelComplete{PDUSessId: psi, PTI: pti}).MarshalBinary()
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func decodeN1(t testing.TB, b []byte) message.GSMMessage {
	t.Helper()
	m, err := message.ParseGSM(b)
	if err != nil {
		t.Fatalf("decode N1 %x: %v", b, err)
	}
	return m
}

// accepted creates a session and checks it was accepted.
func (n *testNet) accepted(t testing.TB, id Identity, psi uint8) (*message.PDUSessEstAccept, Result) {
	t.Helper()
	r, err := n.smf.CreateSession(ctxT(t), id, psi, 1, "", "internet", estReq(t, psi, psi+10, ie.PDUSessType_IPv4))
	if err != nil {
		t.Fatalf("CreateSession(%s, %d): %v", id.SUPI, psi, err)
	}
	a, ok := decodeN1(t, r.N1).(*message.PDUSessEstAccept)
	if !ok || r.N2 == nil {
		t.Fatalf("CreateSession(%s, %d): N1 %x, N2 %x: want an accept and a transfer", id.SUPI, psi, r.N1, r.N2)
	}
	return a, r
}

func addrOf(a *message.PDUSessEstAccept) netip.Addr {
	ip, _ := netip.AddrFromSlice(a.PDUAddr.IPv4)
	return ip
}

// TestSessionLifecycle: establishment puts the subscriber, the UE address
// and the TEIDs in the UPF's table; activation points the downlink at the
// gNB; release removes the session and frees the address.
func TestSessionLifecycle(t *testing.T) {
	n := startNet(t, netOpts{})
	ctx := ctxT(t)
	id := ident(42)

	r, err := n.smf.CreateSession(ctx, id, 5, 1, "", "internet", estReq(t, 5, 9, ie.PDUSessType_IPv4))
	if err != nil {
		t.Fatal(err)
	}
	a, ok := decodeN1(t, r.N1).(*message.PDUSessEstAccept)
	if !ok {
		t.Fatalf("N1 is %T", decodeN1(t, r.N1))
	}
	ueAddr := netip.MustParseAddr("10.45.0.1") // the pool's first address
	checkAccept(t, a, acceptParams{
		psi: 5, pti: 9, ueAddr: ueAddr, dnn: "internet", slice: snssai{sst: 1}, sliceKnown: true,
		ambrUL: toNASBitRate(n.cfg.AMBRUplinkKbps), ambrDL: toNASBitRate(n.cfg.AMBRDownlinkKbps), fiveQI: 9,
	})

	d, _ := decodeSetupRequestTransfer(t, r.N2)
	if d.ambrUL != 1e9 || d.ambrDL != 1e9 || d.qfi != 1 || d.fiveQI != 9 || d.arp != 8 ||
		d.sessionType != ngapie.PDUSessionTypePresentIpv4 {
		t.Errorf("setup request transfer %+v", d)
	}
	if d.uplink.TEID == 0 || d.uplink.Addr != loopback {
		t.Errorf("uplink F-TEID %v: want a TEID at the UPF's N3 address", d.uplink)
	}

	us, ok := n.upf.Sessions().LookupByAddr(ueAddr)
	if !ok {
		t.Fatalf("UPF has no session for %s", ueAddr)
	}
	byTEID, ok := n.upf.Sessions().LookupByTEID(d.uplink.TEID)
	if !ok || byTEID != us {
		t.Fatalf("UPF session by the N2 TEID %#x: %v %v", d.uplink.TEID, byTEID, ok)
	}
	checks := []struct {
		name      string
		got, want any
	}{
		{"IMSI", us.IMSI, "001010000000042"},
		{"IMEI", us.IMEI, "350000000000042"},
		{"MSISDN", us.MSISDN, "819000000042"},
		{"DNN", us.DNN, "internet"},
		{"PDN type", us.PDNType, pfcpie.PDNTypeIPv4},
		{"QFI", us.QFI, uint8(1)},
		{"uplink", us.Uplink, d.uplink},
		{"downlink action", us.DownlinkAction, pfcp.ActionBuffer},
		{"downlink", us.Downlink, pfcp.FTEID{}},
	}
	for _, c := range checks {
		if c.got != c.want {
			t.Errorf("UPF session %s = %v, want %v", c.name, c.got, c.want)
		}
	}
	if len(us.QERs) != 1 || us.QERs[0].MBRUplink != 1_000_000 || us.QERs[0].MBRDownlink != 1_000_000 || us.QERs[0].QFI != 1 {
		t.Errorf("UPF QERs %+v: want one with the session AMBR", us.QERs)
	}
	info, ok := n.smf.Session(id.SUPI, 5)
	if !ok || info.UEAddr != ueAddr || info.Uplink != d.uplink || info.UPSEID != us.UPSEID || info.DNN != "internet" || info.SST != 1 {
		t.Errorf("Session() = %+v, %v", info, ok)
	}

	gnb := pfcp.FTEID{TEID: 0xabcdef01, Addr: netip.MustParseAddr("127.0.0.9")}
	if err := n.smf.ActivateSession(ctx, id.SUPI, 5, gnbResponse(t, gnb)); err != nil {
		t.Fatalf("ActivateSession: %v", err)
	}
	us, _ = n.upf.Sessions().LookupByAddr(ueAddr)
	if us.Downlink != gnb || us.DownlinkAction != pfcp.ActionForward {
		t.Errorf("after activation the UPF downlink is %v action %d, want %v forward", us.Downlink, us.DownlinkAction, gnb)
	}
	if info, _ := n.smf.Session(id.SUPI, 5); info.GNB != gnb {
		t.Errorf("Session().GNB = %v", info.GNB)
	}

	r, err = n.smf.ReleaseSession(ctx, id.SUPI, 5, relReq(t, 5, 33))
	if err != nil {
		t.Fatalf("ReleaseSession: %v", err)
	}
	cmd, ok := decodeN1(t, r.N1).(*message.PDUSessRelCmd)
	if !ok || cmd.PDUSessId != 5 || cmd.PTI != 33 || cmd.Cause5GSM.Value != causeRegularDeactivation {
		t.Fatalf("release N1 %+v: want a release command, PTI 33, #36", decodeN1(t, r.N1))
	}
	var rel ngapie.PDUSessionResourceReleaseCommandTransfer
	if err := ngapie.UnmarshalBinary(r.N2, &rel); err != nil {
		t.Fatalf("release N2: %v", err)
	}
	if c, ok := rel.Cause.Choice.(*ngapie.CauseNas); !ok || c.Value != ngapie.CauseNasPresentNormalRelease {
		t.Errorf("release N2 cause %+v", rel.Cause.Choice)
	}
	if _, ok := n.upf.Sessions().LookupByAddr(ueAddr); ok || n.upf.Sessions().Len() != 0 {
		t.Error("UPF still holds the session after release")
	}
	if p, _ := n.smf.Pool("internet", 1, ""); p.InUse() != 0 {
		t.Errorf("pool in use %d after release", p.InUse())
	}
	if info, ok := n.smf.Session(id.SUPI, 5); !ok || !info.Releasing {
		t.Errorf("before the complete, Session() = %+v, %v: want releasing", info, ok)
	}
	if err := n.smf.ActivateSession(ctx, id.SUPI, 5, gnbResponse(t, gnb)); !errors.Is(err, ErrNoSession) {
		t.Errorf("ActivateSession on a released session: %v", err)
	}
	// A retransmitted request gets the command again.
	if r2, err := n.smf.ReleaseSession(ctx, id.SUPI, 5, relReq(t, 5, 33)); err != nil || string(r2.N1) != string(r.N1) {
		t.Errorf("repeated release request: %x, %v", r2.N1, err)
	}
	if _, err := n.smf.ReleaseSession(ctx, id.SUPI, 5, relComplete(t, 5, 34)); !errors.Is(err, ErrMalformed) {
		t.Errorf("complete with another PTI: %v, want ErrMalformed", err)
	}
	r, err = n.smf.ReleaseSession(ctx, id.SUPI, 5, relComplete(t, 5, 33))
	if err != nil || r.N1 != nil || r.N2 != nil {
		t.Fatalf("release complete: %+v, %v: want an empty result", r, err)
	}
	if _, ok := n.smf.Session(id.SUPI, 5); ok || n.smf.UEs() != 0 {
		t.Errorf("session state left after the complete: %d UEs", n.smf.UEs())
	}
	if _, err := n.smf.ReleaseSession(ctx, id.SUPI, 5, relComplete(t, 5, 33)); !errors.Is(err, ErrNoSession) {
		t.Errorf("second complete: %v, want ErrNoSession", err)
	}
}

// TestCreateSessionRejects: each refused request gets a PDU SESSION
// ESTABLISHMENT REJECT with its cause, no N2, and leaves nothing behind.
func TestCreateSessionRejects(t *testing.T) {
	n := startNet(t, netOpts{mod: func(c *Config) {
		c.DNNs = []string{"internet@1=10.45.0.0/16", "iot@2:000001=10.46.0.0/16"}
	}})
	tests := []struct {
		name    string
		psi     uint8
		sst     uint8
		sd, dnn string
		n1      []byte
		cause   uint8
	}{
		{"unknown DNN", 1, 1, "", "nowhere", estReq(t, 1, 1, ie.PDUSessType_IPv4), causeUnknownDNN},
		{"DNN not in the slice", 1, 2, "000001", "internet", estReq(t, 1, 1, ie.PDUSessType_IPv4), causeUnknownDNNInSlice},
		{"SD differs", 1, 2, "000002", "iot", estReq(t, 1, 1, ie.PDUSessType_IPv4), causeUnknownDNNInSlice},
		{"SD missing", 1, 2, "", "iot", estReq(t, 1, 1, ie.PDUSessType_IPv4), causeUnknownDNNInSlice},
		{"IPv6", 1, 1, "", "internet", estReq(t, 1, 1, ie.PDUSessType_IPv6), causeIPv4OnlyAllowed},
		{"Ethernet", 1, 1, "", "internet", estReq(t, 1, 1, ie.PDUSessType_Ethernet), causeIPv4OnlyAllowed},
		{"Unstructured", 1, 1, "", "internet", estReq(t, 1, 1, ie.PDUSessType_Unstructured), causeIPv4OnlyAllowed},
		{"reserved type", 1, 1, "", "internet", estReq(t, 1, 1, 7), causeUnknownPDUSessionType},
		{"PTI 0", 1, 1, "", "internet", estReq(t, 1, 0, ie.PDUSessType_IPv4), causeInvalidPTI},
		{"PTI 255", 1, 1, "", "internet", estReq(t, 1, 255, ie.PDUSessType_IPv4), causeInvalidPTI},
		{"PSI mismatch", 2, 1, "", "internet", estReq(t, 3, 1, ie.PDUSessType_IPv4), causeInvalidPSI},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r, err := n.smf.CreateSession(ctxT(t), ident(1), tc.psi, tc.sst, tc.sd, tc.dnn, tc.n1)
			if err != nil {
				t.Fatalf("CreateSession: %v", err)
			}
			rej, ok := decodeN1(t, r.N1).(*message.PDUSessEstRej)
			if !ok {
				t.Fatalf("N1 %T: want a reject", decodeN1(t, r.N1))
			}
			req := decodeN1(t, tc.n1)
			if rej.Cause5GSM.Value != tc.cause || rej.PDUSessId != req.PDUSessionID() || rej.PTI != req.ProcedureTransactionID() {
				t.Errorf("reject PSI %d PTI %d cause %d, want %d %d #%d", rej.PDUSessId, rej.PTI, rej.Cause5GSM.Value,
					req.PDUSessionID(), req.ProcedureTransactionID(), tc.cause)
			}
			if r.N2 != nil {
				t.Errorf("N2 %x on a reject", r.N2)
			}
			if n.upf.Sessions().Len() != 0 || n.smf.UEs() != 0 {
				t.Errorf("state left: %d UPF sessions, %d UEs", n.upf.Sessions().Len(), n.smf.UEs())
			}
		})
	}
}

// TestCreateSessionSelection: DNN defaulting, case, slices and PDU session
// types that are accepted.
func TestCreateSessionSelection(t *testing.T) {
	n := startNet(t, netOpts{mod: func(c *Config) {
		c.DNNs = []string{"internet@1=10.45.0.0/16", "iot@2:0000a1=10.46.0.0/24", "lab=10.47.0.0/24"}
	}})
	tests := []struct {
		name    string
		sst     uint8
		sd, dnn string
		pduType uint8
		prefix  string
		slice   *snssai // nil: none in the accept
		cause   uint8
	}{
		{"default DNN", 1, "", "", ie.PDUSessType_IPv4, "10.45.0.0/16", &snssai{sst: 1}, 0},
		{"DNN case", 1, "ffffff", "INTERNET", ie.PDUSessType_IPv4, "10.45.0.0/16", &snssai{sst: 1}, 0},
		{"no slice given", 0, "", "iot", ie.PDUSessType_IPv4, "10.46.0.0/24", &snssai{sst: 2, sd: [3]byte{0, 0, 0xa1}, hasSD: true}, 0},
		{"slice with SD", 2, "0000A1", "iot", ie.PDUSessType_IPv4, "10.46.0.0/24", &snssai{sst: 2, sd: [3]byte{0, 0, 0xa1}, hasSD: true}, 0},
		{"any slice", 7, "", "lab", ie.PDUSessType_IPv4, "10.47.0.0/24", &snssai{sst: 7}, 0},
		{"any slice, none given", 0, "", "lab", ie.PDUSessType_IPv4, "10.47.0.0/24", nil, 0},
		{"no PDU session type", 1, "", "internet", 0, "10.45.0.0/16", &snssai{sst: 1}, 0},
		{"IPv4v6 gets IPv4 and #50", 1, "", "internet", ie.PDUSessType_IPv4v6, "10.45.0.0/16", &snssai{sst: 1}, causeIPv4OnlyAllowed},
	}
	for i, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			id := ident(100 + i)
			r, err := n.smf.CreateSession(ctxT(t), id, 1, tc.sst, tc.sd, tc.dnn, estReq(t, 1, 1, tc.pduType))
			if err != nil {
				t.Fatal(err)
			}
			a, ok := decodeN1(t, r.N1).(*message.PDUSessEstAccept)
			if !ok {
				t.Fatalf("N1 %+v: want an accept", decodeN1(t, r.N1))
			}
			addr := addrOf(a)
			if !netip.MustParsePrefix(tc.prefix).Contains(addr) {
				t.Errorf("UE address %s not from %s", addr, tc.prefix)
			}
			p := acceptParams{psi: 1, pti: 1, ueAddr: addr, cause: tc.cause, fiveQI: 9,
				ambrUL: toNASBitRate(n.cfg.AMBRUplinkKbps), ambrDL: toNASBitRate(n.cfg.AMBRDownlinkKbps)}
			p.dnn = a.DNN.Value
			if tc.slice != nil {
				p.slice, p.sliceKnown = *tc.slice, true
			}
			checkAccept(t, a, p)
			if err := n.smf.ReleaseAll(ctxT(t), id.SUPI); err != nil {
				t.Fatal(err)
			}
		})
	}
}

// TestPoolExhaustionAndReuse: with a /30 (two addresses) the third UE is
// refused with #26; after a release the next UE gets the freed address.
func TestPoolExhaustionAndReuse(t *testing.T) {
	n := startNet(t, netOpts{mod: func(c *Config) { c.DNNs = []string{"internet=10.45.0.0/30"} }})
	ctx := ctxT(t)
	a1, _ := n.accepted(t, ident(1), 1)
	a2, _ := n.accepted(t, ident(2), 1)
	if addrOf(a1).String() != "10.45.0.1" || addrOf(a2).String() != "10.45.0.2" {
		t.Fatalf("addresses %s %s", addrOf(a1), addrOf(a2))
	}
	r, err := n.smf.CreateSession(ctx, ident(3), 1, 1, "", "internet", estReq(t, 1, 4, ie.PDUSessType_IPv4))
	if err != nil {
		t.Fatal(err)
	}
	if rej, ok := decodeN1(t, r.N1).(*message.PDUSessEstRej); !ok || rej.Cause5GSM.Value != causeInsufficientResources || r.N2 != nil {
		t.Fatalf("third UE: %+v: want reject #26", decodeN1(t, r.N1))
	}
	if err := n.smf.ReleaseAll(ctx, ident(1).SUPI); err != nil {
		t.Fatal(err)
	}
	a3, _ := n.accepted(t, ident(3), 1)
	if addrOf(a3) != addrOf(a1) {
		t.Errorf("after release the third UE got %s, want the freed %s", addrOf(a3), addrOf(a1))
	}
	us, ok := n.upf.Sessions().LookupByAddr(addrOf(a3))
	if !ok || us.IMSI != "001010000000003" {
		t.Errorf("UPF session for the reused address: %+v %v", us, ok)
	}
}

// TestDuplicatePSI: a second establishment for a PDU session ID in use
// releases the first session (its PFCP session and address) first.
func TestDuplicatePSI(t *testing.T) {
	n := startNet(t, netOpts{})
	id := ident(7)
	a1, _ := n.accepted(t, id, 3)
	first, _ := n.smf.Session(id.SUPI, 3)
	a2, _ := n.accepted(t, id, 3)
	if n.upf.Sessions().Len() != 1 {
		t.Fatalf("UPF holds %d sessions, want 1", n.upf.Sessions().Len())
	}
	if _, ok := n.upf.Sessions().LookupBySEID(first.UPSEID); ok {
		t.Error("the first PFCP session is still on the UPF")
	}
	if _, ok := n.upf.Sessions().LookupByAddr(addrOf(a2)); !ok {
		t.Error("no UPF session for the new address")
	}
	if p, _ := n.smf.Pool("internet", 1, ""); p.InUse() != 1 {
		t.Errorf("pool in use %d, want 1 (old %s, new %s)", p.InUse(), addrOf(a1), addrOf(a2))
	}
}

// TestReleaseAll: deregistration deletes every session of the UE and only
// its sessions.
func TestReleaseAll(t *testing.T) {
	n := startNet(t, netOpts{})
	ctx := ctxT(t)
	for psi := uint8(1); psi <= 15; psi++ {
		n.accepted(t, ident(1), psi)
	}
	other, _ := n.accepted(t, ident(2), 1)
	if n.upf.Sessions().Len() != 16 {
		t.Fatalf("UPF holds %d sessions, want 16", n.upf.Sessions().Len())
	}
	if err := n.smf.ReleaseAll(ctx, ident(1).SUPI); err != nil {
		t.Fatal(err)
	}
	if n.upf.Sessions().Len() != 1 || n.smf.UEs() != 1 {
		t.Fatalf("after ReleaseAll: %d UPF sessions, %d UEs; want 1 and 1", n.upf.Sessions().Len(), n.smf.UEs())
	}
	if _, ok := n.upf.Sessions().LookupByAddr(addrOf(other)); !ok {
		t.Error("the other UE's session is gone")
	}
	if p, _ := n.smf.Pool("internet", 1, ""); p.InUse() != 1 {
		t.Errorf("pool in use %d, want 1", p.InUse())
	}
	if err := n.smf.ReleaseAll(ctx, ident(1).SUPI); err != nil {
		t.Errorf("ReleaseAll of a UE without sessions: %v", err)
	}
}

// TestReleaseSessionUPFLostIt: when the UPF has lost a session, the
// release still completes and the address returns to the pool.
func TestReleaseSessionUPFLostIt(t *testing.T) {
	n := startNet(t, netOpts{})
	ctx := ctxT(t)
	n.accepted(t, ident(1), 1)
	info, _ := n.smf.Session(ident(1).SUPI, 1)
	// Delete the PFCP session behind the SMF's back.
	if err := n.n4.DeleteSession(ctx, pfcp.Session{Peer: n.upf.Addr(), UP: pfcp.FSEID{SEID: info.UPSEID}}); err != nil {
		t.Fatal(err)
	}
	r, err := n.smf.ReleaseSession(ctx, ident(1).SUPI, 1, relReq(t, 1, 2))
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := decodeN1(t, r.N1).(*message.PDUSessRelCmd); !ok {
		t.Fatalf("N1 %+v", decodeN1(t, r.N1))
	}
	if p, _ := n.smf.Pool("internet", 1, ""); p.InUse() != 0 {
		t.Errorf("pool in use %d, want 0: the UPF said it has no such session", p.InUse())
	}
}

func TestBadInput(t *testing.T) {
	n := startNet(t, netOpts{})
	ctx := ctxT(t)
	id := ident(1)
	n.accepted(t, id, 1)

	createErrs := []struct {
		name string
		id   Identity
		psi  uint8
		n1   []byte
		want error
	}{
		{"empty N1", id, 2, nil, ErrMalformed},
		{"5GMM", id, 2, []byte{0x7e, 0x00, 0x41, 0x79, 0x00}, ErrMalformed},
		{"release request", id, 2, relReq(t, 2, 1), ErrMalformed},
		{"truncated", id, 2, estReq(t, 2, 1, 1)[:5], ErrMalformed},
		{"PSI 0", id, 0, estReq(t, 0, 1, 1), nil},
		{"PSI 16", id, 16, estReq(t, 16, 1, 1), nil},
		{"bad SUPI", Identity{SUPI: "001010000000001"}, 2, estReq(t, 2, 1, 1), nil},
		{"bad IMSI", Identity{SUPI: "imsi-0010x"}, 2, estReq(t, 2, 1, 1), nil},
		{"bad IMEI", Identity{SUPI: id.SUPI, IMEI: "12"}, 2, estReq(t, 2, 1, 1), nil},
	}
	for _, tc := range createErrs {
		r, err := n.smf.CreateSession(ctx, tc.id, tc.psi, 1, "", "internet", tc.n1)
		if err == nil || tc.want != nil && !errors.Is(err, tc.want) {
			t.Errorf("CreateSession %s: %+v, %v: want error %v", tc.name, r, err, tc.want)
		}
	}

	if _, err := n.smf.ReleaseSession(ctx, id.SUPI, 1, estReq(t, 1, 1, 1)); !errors.Is(err, ErrMalformed) {
		t.Errorf("ReleaseSession with an establishment request: %v", err)
	}
	if _, err := n.smf.ReleaseSession(ctx, id.SUPI, 2, relReq(t, 1, 1)); !errors.Is(err, ErrMalformed) {
		t.Errorf("ReleaseSession with another PSI in the header: %v", err)
	}
	if _, err := n.smf.ReleaseSession(ctx, id.SUPI, 1, []byte{1, 2}); !errors.Is(err, ErrMalformed) {
		t.Errorf("ReleaseSession with garbage: %v", err)
	}
	for _, tc := range []struct {
		name      string
		supi      string
		psi, pti  uint8
		wantCause uint8
	}{
		{"no such PSI", id.SUPI, 2, 1, causeInvalidPSI},
		{"no such UE", ident(9).SUPI, 1, 1, causeInvalidPSI},
		{"PTI 0", id.SUPI, 1, 0, causeInvalidPTI},
	} {
		r, err := n.smf.ReleaseSession(ctx, tc.supi, tc.psi, relReq(t, tc.psi, tc.pti))
		if err != nil {
			t.Errorf("%s: %v", tc.name, err)
			continue
		}
		rej, ok := decodeN1(t, r.N1).(*message.PDUSessRelRej)
		if !ok || rej.Cause5GSM.Value != tc.wantCause || r.N2 != nil {
			t.Errorf("%s: %+v: want release reject #%d", tc.name, decodeN1(t, r.N1), tc.wantCause)
		}
	}
	gnb := gnbResponse(t, pfcp.FTEID{TEID: 9, Addr: loopback})
	if err := n.smf.ActivateSession(ctx, ident(9).SUPI, 1, gnb); !errors.Is(err, ErrNoSession) {
		t.Errorf("ActivateSession for an unknown UE: %v", err)
	}
	if err := n.smf.ActivateSession(ctx, id.SUPI, 4, gnb); !errors.Is(err, ErrNoSession) {
		t.Errorf("ActivateSession for an unknown PSI: %v", err)
	}
	if err := n.smf.ActivateSession(ctx, id.SUPI, 1, []byte{0, 1, 2}); !errors.Is(err, ErrMalformed) {
		t.Errorf("ActivateSession with garbage: %v", err)
	}
	// The session survived all of that.
	if n.upf.Sessions().Len() != 1 {
		t.Errorf("UPF holds %d sessions, want 1", n.upf.Sessions().Len())
	}
	if n.smf.UEs() != 1 {
		t.Errorf("%d UEs, want 1", n.smf.UEs())
	}
}

// TestUPFUnreachable: with no UPF answering, establishment is refused with
// #38 and the address goes back (no association, so no session).
func TestUPFUnreachable(t *testing.T) {
	dead, err := net.ListenUDP("udp", net.UDPAddrFromAddrPort(netip.AddrPortFrom(loopback, 0)))
	if err != nil {
		t.Fatal(err)
	}
	defer dead.Close() // bound, never read: requests go unanswered
	n := startNet(t, netOpts{mod: func(c *Config) {
		c.UPFAddr = dead.LocalAddr().String()
		c.T1 = 20 * time.Millisecond
		c.N1 = 1
	}})
	r, err := n.smf.CreateSession(ctxT(t), ident(1), 1, 1, "", "internet", estReq(t, 1, 1, 1))
	if err != nil {
		t.Fatal(err)
	}
	if rej, ok := decodeN1(t, r.N1).(*message.PDUSessEstRej); !ok || rej.Cause5GSM.Value != causeNetworkFailure {
		t.Fatalf("%+v: want reject #38", decodeN1(t, r.N1))
	}
	if p, _ := n.smf.Pool("internet", 1, ""); p.InUse() != 0 {
		t.Errorf("pool in use %d, want 0", p.InUse())
	}
}

// TestEstablishmentResponseLost: when every Session Establishment Response
// is lost the UPF may hold the session, so the address is kept out of the
// pool rather than given to another UE.
func TestEstablishmentResponseLost(t *testing.T) {
	const establishmentResponse = 51 // TS 29.244 7.5.3
	n := startNet(t, netOpts{
		mod: func(c *Config) { c.T1 = 20 * time.Millisecond; c.N1 = 1 },
		upfConn: func(c *net.UDPConn) pfcp.PacketConn {
			return pfcptest.NewLossyConn(c, func(d pfcptest.Direction, _ int, b []byte) bool {
				return d == pfcptest.Out && len(b) > 1 && b[1] == establishmentResponse
			})
		},
	})
	r, err := n.smf.CreateSession(ctxT(t), ident(1), 1, 1, "", "internet", estReq(t, 1, 1, 1))
	if err != nil {
		t.Fatal(err)
	}
	if rej, ok := decodeN1(t, r.N1).(*message.PDUSessEstRej); !ok || rej.Cause5GSM.Value != causeNetworkFailure {
		t.Fatalf("%+v: want reject #38", decodeN1(t, r.N1))
	}
	if n.upf.Sessions().Len() != 1 {
		t.Fatalf("UPF holds %d sessions: the test needs the request to have arrived", n.upf.Sessions().Len())
	}
	p, _ := n.smf.Pool("internet", 1, "")
	if p.InUse() != 1 {
		t.Errorf("pool in use %d, want 1: the address must stay withheld", p.InUse())
	}
	if n.smf.UEs() != 0 {
		t.Errorf("%d UEs, want 0", n.smf.UEs())
	}
}

// TestCanceledContext: a caller that gives up gets an error, not a reject.
func TestCanceledContext(t *testing.T) {
	n := startNet(t, netOpts{})
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if r, err := n.smf.CreateSession(ctx, ident(1), 1, 1, "", "internet", estReq(t, 1, 1, 1)); err == nil {
		t.Fatalf("CreateSession with a canceled context: %+v", r)
	}
	if p, _ := n.smf.Pool("internet", 1, ""); p.InUse() != 0 {
		t.Errorf("pool in use %d", p.InUse())
	}
}

// TestConcurrentUEs runs many UEs' procedures at once, several sessions
// each, and checks the UPF and the pool agree at every end.
func TestConcurrentUEs(t *testing.T) {
	n := startNet(t, netOpts{})
	const ues, psis = 64, 3
	var wg sync.WaitGroup
	addrs := make(chan netip.Addr, ues*psis)
	for i := range ues {
		wg.Go(func() {
			ctx := ctxT(t)
			id := ident(1000 + i)
			for psi := uint8(1); psi <= psis; psi++ {
				r, err := n.smf.CreateSession(ctx, id, psi, 1, "", "internet", estReq(t, psi, psi, 1))
				if err != nil {
					t.Error(err)
					return
				}
				a, ok := decodeN1(t, r.N1).(*message.PDUSessEstAccept)
				if !ok {
					t.Errorf("%s/%d: %+v", id.SUPI, psi, decodeN1(t, r.N1))
					return
				}
				addrs <- addrOf(a)
				d, _ := decodeSetupRequestTransfer(t, r.N2)
				gnb := pfcp.FTEID{TEID: uint32(i*16) + uint32(psi), Addr: loopback}
				if err := n.smf.ActivateSession(ctx, id.SUPI, psi, gnbResponse(t, gnb)); err != nil {
					t.Error(err)
					return
				}
				us, ok := n.upf.Sessions().LookupByTEID(d.uplink.TEID)
				if !ok || us.IMSI != id.SUPI[5:] || us.Downlink != gnb || us.UEAddr != addrOf(a) {
					t.Errorf("%s/%d: UPF session %+v", id.SUPI, psi, us)
				}
			}
			// Half release one session by request, all end with ReleaseAll.
			if i%2 == 0 {
				if _, err := n.smf.ReleaseSession(ctx, id.SUPI, 2, relReq(t, 2, 50)); err != nil {
					t.Error(err)
				}
				if _, err := n.smf.ReleaseSession(ctx, id.SUPI, 2, relComplete(t, 2, 50)); err != nil {
					t.Error(err)
				}
			}
		})
	}
	wg.Wait()
	close(addrs)
	seen := map[netip.Addr]bool{}
	for a := range addrs {
		if seen[a] {
			t.Errorf("%s given twice", a)
		}
		seen[a] = true
	}
	want := ues*psis - ues/2
	if got := n.upf.Sessions().Len(); got != want {
		t.Errorf("UPF holds %d sessions, want %d", got, want)
	}
	var wg2 sync.WaitGroup
	for i := range ues {
		wg2.Go(func() {
			if err := n.smf.ReleaseAll(ctxT(t), ident(1000+i).SUPI); err != nil {
				t.Error(err)
			}
		})
	}
	wg2.Wait()
	if n.upf.Sessions().Len() != 0 || n.smf.UEs() != 0 {
		t.Errorf("after ReleaseAll: %d UPF sessions, %d UEs", n.upf.Sessions().Len(), n.smf.UEs())
	}
	if p, _ := n.smf.Pool("internet", 1, ""); p.InUse() != 0 {
		t.Errorf("pool in use %d", p.InUse())
	}
}

func TestNewRejects(t *testing.T) {
	if _, err := New(DefaultConfig(), nil, nil); err == nil {
		t.Error("New without N4: no error")
	}
	c := DefaultConfig()
	c.DNNs = nil
	if _, err := New(c, &pfcp.Client{}, nil); err == nil {
		t.Error("New with an invalid config: no error")
	}
}
