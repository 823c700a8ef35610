package upf

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"sync"
	"testing"
	"time"

	"github.com/wmnsk/go-pfcp/ie"
	"github.com/wmnsk/go-pfcp/message"

	"github.com/simgate/simgate/gtp/pfcp"
	"github.com/simgate/simgate/gtp/pfcp/pfcptest"
)

// Loopback addresses of the test network: the UPF's N4 and the SMF.
var (
	upfIP = netip.MustParseAddr("127.0.0.2")
	smfIP = netip.MustParseAddr("127.0.0.1")
	n3IP  = netip.MustParseAddr("127.0.0.3")
	gnbIP = netip.MustParseAddr("127.0.0.4")
)

func listen(t testing.TB, ip netip.Addr) *net.UDPConn {
	t.Helper()
	c, err := net.ListenUDP("udp", net.UDPAddrFromAddrPort(netip.AddrPortFrom(ip, 0)))
	if err != nil {
		t.Fatalf("listen %s: %v", ip, err)
	}
	return c
}

func testConfig() Config {
	c := DefaultConfig()
	c.N4Addr = upfIP.String() + ":0"
	c.N3Addr = n3IP.String()
	c.T1 = 100 * time.Millisecond
	c.N1 = 2
	c.HeartbeatInterval = 0
	return c
}

// startUPF runs a UPF on conn (nil: a fresh socket on upfIP) until the test
// ends.
func startUPF(t testing.TB, cfg Config, conn pfcp.PacketConn) *UPF {
	t.Helper()
	if conn == nil {
		conn = listen(t, upfIP)
	}
	ctx, cancel := context.WithCancel(context.Background())
	u, err := StartOn(ctx, cfg, conn, nil)
	if err != nil {
		cancel()
		t.Fatalf("StartOn: %v", err)
	}
	t.Cleanup(func() {
		cancel()
		<-u.Done()
	})
	return u
}

type smfOpts struct {
	conn      pfcp.PacketConn
	heartbeat time.Duration
	recovery  time.Time
	events    func(pfcp.PeerEvent)
}

// startSMF runs a CP node and its client until the test ends.
func startSMF(t testing.TB, o smfOpts) *pfcp.Client {
	t.Helper()
	if o.conn == nil {
		o.conn = listen(t, smfIP)
	}
	if o.heartbeat == 0 {
		o.heartbeat = -1
	}
	ctx, cancel := context.WithCancel(context.Background())
	n, err := pfcp.Start(ctx, o.conn, pfcp.Config{
		T1: 100 * time.Millisecond, N1: 2, HeartbeatInterval: o.heartbeat,
		RecoveryTime: o.recovery, OnPeerEvent: o.events,
		Features: ie.NewCPFunctionFeatures(0),
	})
	if err != nil {
		cancel()
		t.Fatalf("pfcp.Start: %v", err)
	}
	t.Cleanup(func() {
		cancel()
		<-n.Done()
	})
	c, err := pfcp.NewClient(n)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func associate(t testing.TB, c *pfcp.Client, u *UPF) {
	t.Helper()
	if _, err := c.Associate(context.Background(), u.Addr()); err != nil {
		t.Fatalf("Associate: %v", err)
	}
}

// ueReq is the session request of UE number i.
func ueReq(u *UPF, i int) pfcp.SessionRequest {
	return pfcp.SessionRequest{
		Peer: u.Addr(),
		User: pfcp.UserID{
			IMSI:   fmt.Sprintf("00101%010d", i),
			IMEI:   fmt.Sprintf("35%013d", i),
			MSISDN: fmt.Sprintf("8190%08d", i),
		},
		UEAddr: netip.AddrFrom4([4]byte{10, 45, byte(i >> 8), byte(i)}),
		DNN:    "internet",
		QFI:    9,
		QER:    &pfcp.QER{GateULOpen: true, GateDLOpen: true, MBRUplink: 100000, MBRDownlink: 200000, QFI: 9},
	}
}

func ctxT(t testing.TB) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// TestSessionLifecycle: establishment with User ID puts the identity, the
// TEID and the UE address in the table; modification adds the gNB F-TEID;
// deletion removes it.
func TestSessionLifecycle(t *testing.T) {
	u := startUPF(t, testConfig(), nil)
	c := startSMF(t, smfOpts{})
	associate(t, c, u)
	ctx := ctxT(t)

	req := ueReq(u, 7)
	s, err := c.EstablishSession(ctx, req)
	if err != nil {
		t.Fatalf("EstablishSession: %v", err)
	}
	if s.Uplink.TEID == 0 || s.Uplink.Addr != n3IP {
		t.Fatalf("uplink F-TEID %v: want a TEID at the N3 address %s", s.Uplink, n3IP)
	}
	if s.UP.Addr != upfIP || s.UP.SEID == 0 {
		t.Fatalf("UP F-SEID %+v: want a SEID at %s", s.UP, upfIP)
	}

	got, ok := u.Sessions().LookupByTEID(s.Uplink.TEID)
	if !ok {
		t.Fatalf("no session for TEID %#x", s.Uplink.TEID)
	}
	byAddr, ok := u.Sessions().LookupByAddr(req.UEAddr)
	if !ok || byAddr != got {
		t.Fatalf("LookupByAddr(%s) = %v, %v: want the TEID's session", req.UEAddr, byAddr, ok)
	}
	bySEID, ok := u.Sessions().LookupBySEID(s.UP.SEID)
	if !ok || bySEID != got {
		t.Fatalf("LookupBySEID(%#x) = %v, %v", s.UP.SEID, bySEID, ok)
	}
	checks := []struct {
		name      string
		got, want any
	}{
		{"IMSI", got.IMSI, "001010000000007"},
		{"IMEI", got.IMEI, "350000000000007"},
		{"MSISDN", got.MSISDN, "819000000007"},
		{"UE address", got.UEAddr, req.UEAddr},
		{"uplink F-TEID", got.Uplink, s.Uplink},
		{"downlink F-TEID", got.Downlink, pfcp.FTEID{}},
		{"downlink action", got.DownlinkAction, pfcp.ActionBuffer},
		{"QFI", got.QFI, uint8(9)},
		{"CP F-SEID", got.CP, s.CP},
		{"peer", got.Peer, c.Node().LocalAddr()},
		{"DNN", got.DNN, "internet"},
		{"PDN type", got.PDNType, ie.PDNTypeIPv4},
		{"UP SEID", got.UPSEID, s.UP.SEID},
	}
	for _, ck := range checks {
		if ck.got != ck.want {
			t.Errorf("after establishment, %s = %v, want %v", ck.name, ck.got, ck.want)
		}
	}
	if len(got.QERs) != 1 || got.QERs[0].MBRDownlink != 200000 || !got.QERs[0].GateDLOpen {
		t.Errorf("QERs = %+v", got.QERs)
	}

	gnb := pfcp.FTEID{TEID: 0x1234, Addr: gnbIP}
	if err := c.ModifySession(ctx, s, pfcp.SessionUpdate{GNB: gnb}); err != nil {
		t.Fatalf("ModifySession: %v", err)
	}
	mod, ok := u.Sessions().LookupByTEID(s.Uplink.TEID)
	if !ok {
		t.Fatal("session gone after modification")
	}
	if mod.Downlink != gnb || mod.DownlinkAction != pfcp.ActionForward {
		t.Errorf("after modification downlink = %v action %#x, want %v forward", mod.Downlink, mod.DownlinkAction, gnb)
	}
	if mod.IMSI != got.IMSI || mod.UEAddr != got.UEAddr || mod.Uplink != got.Uplink || mod.UPSEID != got.UPSEID {
		t.Errorf("modification changed the identity or keys: %+v", mod)
	}
	if got.Downlink != (pfcp.FTEID{}) {
		t.Error("modification changed the session readers already held")
	}
	// Back to buffering (AN release), then to a new gNB tunnel.
	if err := c.ModifySession(ctx, s, pfcp.SessionUpdate{}); err != nil {
		t.Fatalf("ModifySession (buffer): %v", err)
	}
	if m, _ := u.Sessions().LookupByAddr(req.UEAddr); m.DownlinkAction != pfcp.ActionBuffer || m.Downlink != gnb {
		t.Errorf("after AN release action %#x downlink %v: want buffer, tunnel kept", m.DownlinkAction, m.Downlink)
	}

	if err := c.DeleteSession(ctx, s); err != nil {
		t.Fatalf("DeleteSession: %v", err)
	}
	if _, ok := u.Sessions().LookupByTEID(s.Uplink.TEID); ok {
		t.Error("TEID still found after deletion")
	}
	if _, ok := u.Sessions().LookupByAddr(req.UEAddr); ok {
		t.Error("UE address still found after deletion")
	}
	if n := u.Sessions().Len(); n != 0 {
		t.Errorf("table holds %d sessions after deletion", n)
	}
	// Deleting again: the context is gone.
	var ce *pfcp.CauseError
	if err := c.DeleteSession(ctx, s); !errors.As(err, &ce) || ce.Cause != pfcp.CauseSessionContextNotFound {
		t.Errorf("second deletion: %v, want Session context not found", err)
	}
}

// TestThousandSessions: every one of 1000 UEs is found by TEID and by
// address with its own identity, established concurrently.
func TestThousandSessions(t *testing.T) {
	const n = 1000
	u := startUPF(t, testConfig(), nil)
	c := startSMF(t, smfOpts{})
	associate(t, c, u)
	ctx := ctxT(t)

	sessions := make([]pfcp.Session, n)
	var wg sync.WaitGroup
	errs := make(chan error, n)
	for w := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := w; i < n; i += 8 {
				s, err := c.EstablishSession(ctx, ueReq(u, i))
				if err != nil {
					errs <- fmt.Errorf("UE %d: %w", i, err)
					return
				}
				sessions[i] = s
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	if got := u.Sessions().Len(); got != n {
		t.Fatalf("table holds %d sessions, want %d", got, n)
	}
	teids := map[uint32]bool{}
	for i, s := range sessions {
		want := ueReq(u, i)
		byTEID, ok := u.Sessions().LookupByTEID(s.Uplink.TEID)
		if !ok {
			t.Fatalf("UE %d: TEID %#x not found", i, s.Uplink.TEID)
		}
		byAddr, ok := u.Sessions().LookupByAddr(want.UEAddr)
		if !ok || byAddr != byTEID {
			t.Fatalf("UE %d: address %s gives another session", i, want.UEAddr)
		}
		if byTEID.IMSI != want.User.IMSI || byTEID.IMEI != want.User.IMEI || byTEID.MSISDN != want.User.MSISDN {
			t.Fatalf("UE %d: identity %+v, want %+v", i, byTEID.UserID, want.User)
		}
		if byTEID.UEAddr != want.UEAddr || byTEID.Uplink != s.Uplink || byTEID.UPSEID != s.UP.SEID {
			t.Fatalf("UE %d: session %+v does not match %+v", i, byTEID, s)
		}
		if teids[s.Uplink.TEID] {
			t.Fatalf("TEID %#x allocated twice", s.Uplink.TEID)
		}
		teids[s.Uplink.TEID] = true
	}
	for i, s := range sessions {
		if err := c.ModifySession(ctx, s, pfcp.SessionUpdate{GNB: pfcp.FTEID{TEID: uint32(i + 1), Addr: gnbIP}}); err != nil {
			t.Fatalf("UE %d: modify: %v", i, err)
		}
	}
	for i, s := range sessions {
		got, _ := u.Sessions().LookupByTEID(s.Uplink.TEID)
		if got.Downlink.TEID != uint32(i+1) || got.Downlink.Addr != gnbIP {
			t.Fatalf("UE %d: downlink %v", i, got.Downlink)
		}
		if err := c.DeleteSession(ctx, s); err != nil {
			t.Fatalf("UE %d: delete: %v", i, err)
		}
	}
	if got := u.Sessions().Len(); got != 0 {
		t.Fatalf("table holds %d sessions after deleting all", got)
	}
}

// rawEstablish sends a Session Establishment Request built from ies and
// returns the response.
func rawEstablish(t *testing.T, c *pfcp.Client, u *UPF, ies ...*ie.IE) *message.SessionEstablishmentResponse {
	t.Helper()
	resp, err := c.Node().Request(ctxT(t), u.Addr(), message.NewSessionEstablishmentRequest(0, 0, 0, 0, 0, ies...))
	if err != nil {
		t.Fatalf("Request: %v", err)
	}
	r, ok := resp.(*message.SessionEstablishmentResponse)
	if !ok {
		t.Fatalf("response %T", resp)
	}
	return r
}

func causeOf(t *testing.T, i *ie.IE) uint8 {
	t.Helper()
	if i == nil {
		t.Fatal("response has no Cause")
	}
	c, err := i.Cause()
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// TestEstablishmentRejections: each faulty request gets its TS 29.244 cause
// (and Offending IE or Failed Rule ID), and nothing enters the table.
func TestEstablishmentRejections(t *testing.T) {
	u := startUPF(t, testConfig(), nil)
	c := startSMF(t, smfOpts{})
	nodeID := c.Node().NodeIDIE()
	fseid := pfcp.FSEID{SEID: 77, Addr: smfIP}.IE()
	ul := pfcp.PDR{ID: 1, Precedence: 255, Source: pfcp.InterfaceAccess, ChooseFTEID: true, UEAddr: netip.MustParseAddr("10.0.0.1"), FARID: 1}
	far := pfcp.FAR{ID: 1, Action: pfcp.ActionForward, Forwarding: &pfcp.Forwarding{Destination: pfcp.InterfaceCore}}

	// Before any association: No established PFCP Association.
	r := rawEstablish(t, c, u, nodeID, fseid, ul.CreateIE(), far.CreateIE())
	if got := causeOf(t, r.Cause); got != pfcp.CauseNoEstablishedPFCPAssociation {
		t.Fatalf("without association: cause %s, want No established PFCP Association", pfcp.CauseName(got))
	}
	associate(t, c, u)

	badUser := ie.New(ie.UserID, []byte{0x01, 0x02, 0x21, 0xfa}) // IMSI flag, nibble 0xa
	noSrc := ie.NewCreatePDR(ie.NewPDRID(1), ie.NewPrecedence(1), ie.NewPDI(ie.NewQFI(1)), ie.NewFARID(1))
	otherUE := pfcp.PDR{ID: 2, Precedence: 255, Source: pfcp.InterfaceCore, UEAddr: netip.MustParseAddr("10.0.0.2"), UEAddrIsDst: true, FARID: 1}
	danglingFAR := pfcp.PDR{ID: 1, Precedence: 255, Source: pfcp.InterfaceAccess, ChooseFTEID: true, FARID: 9}
	tests := []struct {
		name      string
		ies       []*ie.IE
		cause     uint8
		offending uint16
		failedPDR uint16
	}{
		{"no Node ID", []*ie.IE{fseid, ul.CreateIE(), far.CreateIE()}, pfcp.CauseMandatoryIEMissing, ie.NodeID, 0},
		{"no CP F-SEID", []*ie.IE{nodeID, ul.CreateIE(), far.CreateIE()}, pfcp.CauseMandatoryIEMissing, ie.FSEID, 0},
		{"no Create PDR", []*ie.IE{nodeID, fseid, far.CreateIE()}, pfcp.CauseMandatoryIEMissing, ie.CreatePDR, 0},
		{"no Create FAR", []*ie.IE{nodeID, fseid, ul.CreateIE()}, pfcp.CauseMandatoryIEMissing, ie.CreateFAR, 0},
		{"PDI without Source Interface", []*ie.IE{nodeID, fseid, noSrc, far.CreateIE()}, pfcp.CauseMandatoryIEMissing, ie.SourceInterface, 0},
		{"F-SEID without address", []*ie.IE{nodeID, ie.New(ie.FSEID, make([]byte, 9)), ul.CreateIE(), far.CreateIE()}, pfcp.CauseMandatoryIEIncorrect, ie.FSEID, 0},
		{"User ID not TBCD", []*ie.IE{nodeID, fseid, ul.CreateIE(), far.CreateIE(), badUser}, pfcp.CauseMandatoryIEIncorrect, ie.UserID, 0},
		{"PDR names a missing FAR", []*ie.IE{nodeID, fseid, danglingFAR.CreateIE(), far.CreateIE()}, pfcp.CauseRuleCreationModificationFailure, 0, 1},
		{"PDRs disagree on the UE address", []*ie.IE{nodeID, fseid, ul.CreateIE(), otherUE.CreateIE(), far.CreateIE()}, pfcp.CauseRuleCreationModificationFailure, 0, 2},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r := rawEstablish(t, c, u, tc.ies...)
			if got := causeOf(t, r.Cause); got != tc.cause {
				t.Fatalf("cause %s, want %s", pfcp.CauseName(got), pfcp.CauseName(tc.cause))
			}
			if tc.offending != 0 {
				if r.OffendingIE == nil {
					t.Fatal("no Offending IE")
				}
				if got, _ := r.OffendingIE.OffendingIE(); got != tc.offending {
					t.Errorf("Offending IE %d, want %d", got, tc.offending)
				}
			}
			if tc.failedPDR != 0 {
				if r.FailedRuleID == nil {
					t.Fatal("no Failed Rule ID")
				}
				typ, _ := r.FailedRuleID.RuleIDType()
				id, _ := r.FailedRuleID.FailedRuleID()
				if typ != ie.RuleIDTypePDR || id != uint32(tc.failedPDR) {
					t.Errorf("Failed Rule ID type %d id %d, want PDR %d", typ, id, tc.failedPDR)
				}
			}
			if r.UPFSEID != nil || len(r.CreatedPDR) != 0 {
				t.Error("a rejection carries an UP F-SEID or Created PDR")
			}
			if n := u.Sessions().Len(); n != 0 {
				t.Errorf("table holds %d sessions after a rejection", n)
			}
		})
	}
}

// TestSessionConflictsAndReplacement: a UE address in use is refused; an
// establishment for a CP F-SEID the UPF holds replaces that session.
func TestSessionConflictsAndReplacement(t *testing.T) {
	u := startUPF(t, testConfig(), nil)
	c := startSMF(t, smfOpts{})
	associate(t, c, u)
	ctx := ctxT(t)

	first, err := c.EstablishSession(ctx, ueReq(u, 1))
	if err != nil {
		t.Fatal(err)
	}
	clash := ueReq(u, 2)
	clash.UEAddr = ueReq(u, 1).UEAddr
	var ce *pfcp.CauseError
	if _, err := c.EstablishSession(ctx, clash); !errors.As(err, &ce) || ce.Cause != pfcp.CauseRuleCreationModificationFailure {
		t.Fatalf("second session with the same UE address: %v, want Rule creation/modification Failure", err)
	}
	// A given (not chosen) TEID already in use is refused too.
	given := ueReq(u, 3)
	given.UplinkFTEID = first.Uplink
	if _, err := c.EstablishSession(ctx, given); !errors.As(err, &ce) || ce.Cause != pfcp.CauseRuleCreationModificationFailure {
		t.Fatalf("session with a TEID in use: %v", err)
	}

	again := ueReq(u, 1)
	again.CPSEID = first.CP.SEID
	again.User.IMEI = "490154203237518"
	second, err := c.EstablishSession(ctx, again)
	if err != nil {
		t.Fatalf("re-establishment for the same CP F-SEID: %v", err)
	}
	if u.Sessions().Len() != 1 {
		t.Fatalf("table holds %d sessions, want the replacement only", u.Sessions().Len())
	}
	if _, ok := u.Sessions().LookupBySEID(first.UP.SEID); ok && first.UP.SEID != second.UP.SEID {
		t.Error("the replaced session is still found by its UP SEID")
	}
	if _, ok := u.Sessions().LookupByTEID(first.Uplink.TEID); ok && first.Uplink.TEID != second.Uplink.TEID {
		t.Error("the replaced session's TEID still resolves")
	}
	s, ok := u.Sessions().LookupByAddr(again.UEAddr)
	if !ok || s.IMEI != "490154203237518" || s.UPSEID != second.UP.SEID {
		t.Fatalf("by address: %+v, %v", s, ok)
	}
}

// TestUnknownSession: modification and deletion of a SEID the UPF does not
// hold get "Session context not found" with SEID 0 (TS 29.244 7.2.2.4.2).
func TestUnknownSession(t *testing.T) {
	u := startUPF(t, testConfig(), nil)
	c := startSMF(t, smfOpts{})
	associate(t, c, u)
	ctx := ctxT(t)
	for _, req := range []message.Message{
		message.NewSessionModificationRequest(0, 0, 0xdead, 0, 0, pfcp.FARUpdate{ID: 2, Action: pfcp.ActionDrop}.IE()),
		message.NewSessionDeletionRequest(0, 0, 0xdead, 0, 0),
	} {
		resp, err := c.Node().Request(ctx, u.Addr(), req)
		if err != nil {
			t.Fatal(err)
		}
		var cause *ie.IE
		switch r := resp.(type) {
		case *message.SessionModificationResponse:
			cause = r.Cause
		case *message.SessionDeletionResponse:
			cause = r.Cause
		default:
			t.Fatalf("response %T", resp)
		}
		if got := causeOf(t, cause); got != pfcp.CauseSessionContextNotFound {
			t.Errorf("%s: cause %s", req.MessageTypeName(), pfcp.CauseName(got))
		}
		if resp.SEID() != 0 {
			t.Errorf("%s: response SEID %#x, want 0", req.MessageTypeName(), resp.SEID())
		}
	}
	// Through the client: the error says so.
	var ce *pfcp.CauseError
	err := c.ModifySession(ctx, pfcp.Session{Peer: u.Addr(), UP: pfcp.FSEID{SEID: 42}}, pfcp.SessionUpdate{})
	if !errors.As(err, &ce) || ce.Cause != pfcp.CauseSessionContextNotFound {
		t.Errorf("ModifySession of an unknown session: %v", err)
	}
}

// TestModificationRules: a modification that names a FAR the session lacks
// is refused and leaves the session as it was; Create and Remove work.
func TestModificationRules(t *testing.T) {
	u := startUPF(t, testConfig(), nil)
	c := startSMF(t, smfOpts{})
	associate(t, c, u)
	ctx := ctxT(t)
	s, err := c.EstablishSession(ctx, ueReq(u, 5))
	if err != nil {
		t.Fatal(err)
	}
	before, _ := u.Sessions().LookupBySEID(s.UP.SEID)
	modify := func(ies ...*ie.IE) *message.SessionModificationResponse {
		t.Helper()
		resp, err := c.Node().Request(ctx, u.Addr(), message.NewSessionModificationRequest(0, 0, s.UP.SEID, 0, 0, ies...))
		if err != nil {
			t.Fatal(err)
		}
		return resp.(*message.SessionModificationResponse)
	}
	r := modify(pfcp.FARUpdate{ID: 99, Action: pfcp.ActionDrop}.IE())
	if got := causeOf(t, r.Cause); got != pfcp.CauseRuleCreationModificationFailure {
		t.Fatalf("Update FAR 99: cause %s", pfcp.CauseName(got))
	}
	if r.SEID() != s.CP.SEID {
		t.Errorf("response SEID %#x, want the CP SEID %#x", r.SEID(), s.CP.SEID)
	}
	if now, _ := u.Sessions().LookupBySEID(s.UP.SEID); now != before {
		t.Error("a refused modification changed the session")
	}
	r = modify(ie.NewUpdateQER(ie.NewQERID(1)))
	if got := causeOf(t, r.Cause); got != pfcp.CauseServiceNotSupported {
		t.Fatalf("Update QER: cause %s, want Service not supported", pfcp.CauseName(got))
	}

	// A second uplink PDR with its own chosen F-TEID, then its removal.
	extra := pfcp.PDR{ID: 3, Precedence: 10, Source: pfcp.InterfaceAccess, ChooseFTEID: true, UEAddr: ueReq(u, 5).UEAddr, FARID: pfcp.FARUplink}
	r = modify(extra.CreateIE())
	if got := causeOf(t, r.Cause); got != pfcp.CauseRequestAccepted {
		t.Fatalf("Create PDR: cause %s", pfcp.CauseName(got))
	}
	if len(r.CreatedPDR) != 1 {
		t.Fatalf("%d Created PDRs, want 1", len(r.CreatedPDR))
	}
	f, err := r.CreatedPDR[0].FTEID()
	if err != nil {
		t.Fatal(err)
	}
	byNew, ok := u.Sessions().LookupByTEID(f.TEID)
	if !ok || byNew.UPSEID != s.UP.SEID || f.TEID == s.Uplink.TEID {
		t.Fatalf("new TEID %#x: %v %v", f.TEID, byNew, ok)
	}
	r = modify(ie.NewRemovePDR(ie.NewPDRID(3)))
	if got := causeOf(t, r.Cause); got != pfcp.CauseRequestAccepted {
		t.Fatalf("Remove PDR: cause %s", pfcp.CauseName(got))
	}
	if _, ok := u.Sessions().LookupByTEID(f.TEID); ok {
		t.Error("removed PDR's TEID still resolves")
	}
	if _, ok := u.Sessions().LookupByTEID(s.Uplink.TEID); !ok {
		t.Error("first TEID lost")
	}
}

// TestAssociationEndRemovesSessions: release, SMF restart and SMF loss each
// remove that SMF's sessions and only those.
func TestAssociationEndRemovesSessions(t *testing.T) {
	establish := func(t *testing.T, c *pfcp.Client, u *UPF, first, n int) {
		t.Helper()
		ctx := ctxT(t)
		for i := first; i < first+n; i++ {
			if _, err := c.EstablishSession(ctx, ueReq(u, i)); err != nil {
				t.Fatal(err)
			}
		}
	}
	waitLen := func(t *testing.T, u *UPF, want int) {
		t.Helper()
		deadline := time.Now().Add(5 * time.Second)
		for u.Sessions().Len() != want {
			if time.Now().After(deadline) {
				t.Fatalf("table holds %d sessions, want %d", u.Sessions().Len(), want)
			}
			time.Sleep(5 * time.Millisecond)
		}
	}

	t.Run("release", func(t *testing.T) {
		ctx := ctxT(t)
		u := startUPF(t, testConfig(), nil)
		a, b := startSMF(t, smfOpts{}), startSMF(t, smfOpts{})
		associate(t, a, u)
		associate(t, b, u)
		establish(t, a, u, 0, 3)
		establish(t, b, u, 100, 2)
		if err := a.Release(ctx, u.Addr()); err != nil {
			t.Fatalf("Release: %v", err)
		}
		waitLen(t, u, 2)
		for _, s := range u.Sessions().Sessions() {
			if s.Peer != b.Node().LocalAddr() {
				t.Errorf("session of %s survived its release", s.Peer)
			}
		}
		if _, ok := u.Node().Association(a.Node().LocalAddr()); ok {
			t.Error("UPF still associated with the released SMF")
		}
		// Without an association, sessions are refused again.
		var ce *pfcp.CauseError
		if _, err := a.EstablishSession(ctx, ueReq(u, 50)); !errors.As(err, &ce) || ce.Cause != pfcp.CauseNoEstablishedPFCPAssociation {
			t.Errorf("establishment after release: %v", err)
		}
	})

	t.Run("restart", func(t *testing.T) {
		ctx := ctxT(t)
		u := startUPF(t, testConfig(), nil)
		conn := listen(t, smfIP)
		addr := conn.LocalAddr().(*net.UDPAddr).AddrPort()
		ctxA, stopA := context.WithCancel(ctx)
		na, err := pfcp.Start(ctxA, conn, pfcp.Config{T1: 100 * time.Millisecond, HeartbeatInterval: -1, RecoveryTime: time.Unix(1_700_000_000, 0)})
		if err != nil {
			t.Fatal(err)
		}
		a, _ := pfcp.NewClient(na)
		associate(t, a, u)
		establish(t, a, u, 0, 4)
		stopA()
		<-na.Done()
		// The SMF comes back on the same address with a new Recovery Time
		// Stamp and sets up its association again.
		restarted := startSMF(t, smfOpts{conn: listenAt(t, addr), recovery: time.Unix(1_700_000_100, 0)})
		associate(t, restarted, u)
		waitLen(t, u, 0)
	})

	t.Run("restart seen in heartbeat", func(t *testing.T) {
		ctx := ctxT(t)
		cfg := testConfig()
		cfg.HeartbeatInterval = 50 * time.Millisecond
		u := startUPF(t, cfg, nil)
		conn := listen(t, smfIP)
		addr := conn.LocalAddr().(*net.UDPAddr).AddrPort()
		ctxA, stopA := context.WithCancel(ctx)
		na, err := pfcp.Start(ctxA, conn, pfcp.Config{T1: 100 * time.Millisecond, HeartbeatInterval: -1, RecoveryTime: time.Unix(1_700_000_000, 0)})
		if err != nil {
			t.Fatal(err)
		}
		a, _ := pfcp.NewClient(na)
		associate(t, a, u)
		establish(t, a, u, 0, 2)
		stopA()
		<-na.Done()
		// Back without setting up the association: the UPF's next
		// heartbeat sees the new Recovery Time Stamp.
		startSMF(t, smfOpts{conn: listenAt(t, addr), recovery: time.Unix(1_700_000_100, 0)})
		waitLen(t, u, 0)
		if _, ok := u.Node().Association(addr); ok {
			t.Error("association survived the peer's restart")
		}
	})

	t.Run("loss", func(t *testing.T) {
		ctx := ctxT(t)
		cfg := testConfig()
		cfg.HeartbeatInterval = 50 * time.Millisecond
		cfg.T1 = 50 * time.Millisecond
		cfg.N1 = 2
		u := startUPF(t, cfg, nil)
		ctxA, stopA := context.WithCancel(ctx)
		na, err := pfcp.Start(ctxA, listen(t, smfIP), pfcp.Config{T1: 100 * time.Millisecond, HeartbeatInterval: -1})
		if err != nil {
			t.Fatal(err)
		}
		a, _ := pfcp.NewClient(na)
		b := startSMF(t, smfOpts{})
		associate(t, a, u)
		associate(t, b, u)
		establish(t, a, u, 0, 3)
		establish(t, b, u, 10, 1)
		stopA() // the SMF stops answering heartbeats
		<-na.Done()
		waitLen(t, u, 1)
		if _, ok := u.Node().Association(na.LocalAddr()); ok {
			t.Error("association with the lost SMF survived")
		}
		if _, ok := u.Node().Association(b.Node().LocalAddr()); !ok {
			t.Error("association with the live SMF was dropped")
		}
	})
}

func listenAt(t testing.TB, ap netip.AddrPort) *net.UDPConn {
	t.Helper()
	c, err := net.ListenUDP("udp", net.UDPAddrFromAddrPort(ap))
	if err != nil {
		t.Fatalf("listen %s: %v", ap, err)
	}
	return c
}

// TestRetransmittedEstablishment: the SMF's first request is lost, and the
// UPF's first response is lost too. The session is created exactly once:
// the retransmission is answered from the response cache.
func TestRetransmittedEstablishment(t *testing.T) {
	u := startUPF(t, testConfig(), nil)
	lossy := pfcptest.NewLossyConn(listen(t, smfIP), func(dir pfcptest.Direction, _ int, b []byte) bool {
		return false
	})
	dropReq := pfcptest.DropNth(pfcptest.Out, 1, message.MsgTypeSessionEstablishmentRequest)
	dropResp := pfcptest.DropNth(pfcptest.In, 1, message.MsgTypeSessionEstablishmentResponse)
	lossy.Drop = func(dir pfcptest.Direction, n int, b []byte) bool {
		return dropReq(dir, n, b) || dropResp(dir, n, b)
	}
	c := startSMF(t, smfOpts{conn: lossy})
	associate(t, c, u)
	before := u.Node().Stats()

	s, err := c.EstablishSession(ctxT(t), ueReq(u, 1))
	if err != nil {
		t.Fatalf("EstablishSession over a lossy path: %v", err)
	}
	if lossy.Dropped() != 2 {
		t.Fatalf("%d datagrams lost, want 2", lossy.Dropped())
	}
	after := u.Node().Stats()
	if got := after.RequestsReceived - before.RequestsReceived; got != 1 {
		t.Errorf("UPF handled %d establishment requests, want 1", got)
	}
	if got := after.DuplicateRequests - before.DuplicateRequests; got != 1 {
		t.Errorf("UPF answered %d duplicates, want 1", got)
	}
	if got := c.Node().Stats().Retransmissions; got != 2 {
		t.Errorf("SMF retransmitted %d times, want 2", got)
	}
	if u.Sessions().Len() != 1 {
		t.Fatalf("table holds %d sessions, want 1", u.Sessions().Len())
	}
	got, ok := u.Sessions().LookupByTEID(s.Uplink.TEID)
	if !ok || got.UPSEID != s.UP.SEID {
		t.Fatalf("the session the SMF was told of (%#x) is not the one in the table (%v)", s.UP.SEID, got)
	}
}

// TestMalformedN4: garbage on the N4 socket is counted and dropped; the UPF
// keeps serving.
func TestMalformedN4(t *testing.T) {
	u := startUPF(t, testConfig(), nil)
	c := startSMF(t, smfOpts{})
	associate(t, c, u)
	raw := listen(t, smfIP)
	defer raw.Close()
	valid, _ := (&pfcpBytes{}).establishment(c, u)
	junk := [][]byte{
		{},
		{0x20},
		{0x21, 0x32, 0x00, 0x02, 0, 0},       // S flag, too short for a SEID
		{0x20, 0x01, 0xff, 0xff, 0, 0, 1, 0}, // length beyond the datagram
		{0x21, 0x01, 0x00, 0x0c, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 0}, // heartbeat with a SEID
		valid[:len(valid)-3],                        // truncated
		append(append([]byte(nil), valid...), 0, 0), // trailing octets
	}
	for _, b := range junk {
		if _, err := raw.WriteToUDPAddrPort(b, u.Addr()); err != nil {
			t.Fatal(err)
		}
	}
	deadline := time.Now().Add(5 * time.Second)
	for u.Node().Stats().Malformed < uint64(len(junk)-1) {
		if time.Now().After(deadline) {
			t.Fatalf("Malformed = %d, want at least %d", u.Node().Stats().Malformed, len(junk)-1)
		}
		time.Sleep(5 * time.Millisecond)
	}
	if _, err := c.EstablishSession(ctxT(t), ueReq(u, 1)); err != nil {
		t.Fatalf("UPF stopped serving after malformed input: %v", err)
	}
	if u.Sessions().Len() != 1 {
		t.Fatalf("table holds %d sessions", u.Sessions().Len())
	}
}

type pfcpBytes struct{}

// establishment encodes a valid Session Establishment Request.
func (pfcpBytes) establishment(c *pfcp.Client, u *UPF) ([]byte, error) {
	pdr := pfcp.PDR{ID: 1, Precedence: 1, Source: pfcp.InterfaceAccess, ChooseFTEID: true, FARID: 1}
	far := pfcp.FAR{ID: 1, Action: pfcp.ActionDrop}
	m := message.NewSessionEstablishmentRequest(0, 0, 0, 1, 0, c.Node().NodeIDIE(), pfcp.FSEID{SEID: 9, Addr: smfIP}.IE(), pdr.CreateIE(), far.CreateIE())
	b := make([]byte, m.MarshalLen())
	return b, m.MarshalTo(b)
}

// TestStart: Start binds n4_addr itself and stops with its context; a bad
// configuration is refused before anything is bound.
func TestStart(t *testing.T) {
	cfg := testConfig()
	ctx, cancel := context.WithCancel(context.Background())
	u, err := Start(ctx, cfg, nil)
	if err != nil {
		t.Fatal(err)
	}
	if a := u.Addr(); a.Addr() != upfIP || a.Port() == 0 {
		t.Errorf("N4 address %s", a)
	}
	if u.Node().NodeID() != upfIP.String() {
		t.Errorf("Node ID %q, want the N4 IP", u.Node().NodeID())
	}
	c := startSMF(t, smfOpts{})
	associate(t, c, u)
	if s, err := c.EstablishSession(ctxT(t), ueReq(u, 1)); err != nil || s.UP.Addr != upfIP {
		t.Fatalf("establish: %+v, %v", s, err)
	}
	cancel()
	select {
	case <-u.Done():
	case <-time.After(5 * time.Second):
		t.Fatal("UPF did not stop")
	}
	bad := testConfig()
	bad.N3Addr = ""
	if _, err := Start(context.Background(), bad, nil); err == nil {
		t.Fatal("Start accepted an empty n3_addr")
	}
}
