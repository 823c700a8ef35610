package upf

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/wmnsk/go-pfcp/ie"
	"github.com/wmnsk/go-pfcp/message"

	"github.com/simgate/simgate/gtp/pfcp"
	"github.com/simgate/simgate/gtp/pfcp/pfcptest"
)

// TestTsharkDecodesN4: every datagram of a full N4 exchange (association,
// heartbeats both ways, establishment with User ID, modification, deletion,
// rejections, release) decodes in tshark as PFCP with no malformed frame
// or expert error, and tshark reads back the identity we sent.
func TestTsharkDecodesN4(t *testing.T) {
	cfg := testConfig()
	cfg.HeartbeatInterval = 20 * time.Millisecond
	u := startUPF(t, cfg, nil)
	rec := pfcptest.NewRecorder(listen(t, smfIP))
	c := startSMF(t, smfOpts{conn: rec, heartbeat: 20 * time.Millisecond})
	ctx := ctxT(t)
	associate(t, c, u)

	req := ueReq(u, 42)
	s, err := c.EstablishSession(ctx, req)
	if err != nil {
		t.Fatal(err)
	}
	given := ueReq(u, 43)
	given.UplinkFTEID = pfcp.FTEID{TEID: 0xabcdef, Addr: n3IP}
	given.GNB = pfcp.FTEID{TEID: 0x99, Addr: gnbIP}
	given.User = pfcp.UserID{IMSI: "001010000000043", NAI: "user@example.org"}
	s2, err := c.EstablishSession(ctx, given)
	if err != nil {
		t.Fatal(err)
	}
	if err := c.ModifySession(ctx, s, pfcp.SessionUpdate{GNB: pfcp.FTEID{TEID: 0x1234, Addr: gnbIP}}); err != nil {
		t.Fatal(err)
	}
	for _, x := range []pfcp.Session{s, s2} {
		if err := c.DeleteSession(ctx, x); err != nil {
			t.Fatal(err)
		}
	}
	if err := c.DeleteSession(ctx, s); err == nil {
		t.Fatal("deleting twice succeeded")
	}
	// A request the UPF does not serve gets the node's own rejection.
	resp, err := c.Node().Request(ctx, u.Addr(), message.NewNodeReportRequest(0, c.Node().NodeIDIE(), ie.NewNodeReportType(0x01)))
	if err != nil {
		t.Fatal(err)
	}
	if nr, ok := resp.(*message.NodeReportResponse); !ok || nr.Cause == nil || nr.Cause.Payload[0] != pfcp.CauseServiceNotSupported {
		t.Fatalf("Node Report Response: %#v", resp)
	}
	// Let each side send a heartbeat.
	deadline := time.Now().Add(5 * time.Second)
	hb := func() bool {
		return rec.Count(pfcptest.Out, message.MsgTypeHeartbeatRequest) > 0 && rec.Count(pfcptest.In, message.MsgTypeHeartbeatResponse) > 0 &&
			rec.Count(pfcptest.In, message.MsgTypeHeartbeatRequest) > 0 && rec.Count(pfcptest.Out, message.MsgTypeHeartbeatResponse) > 0
	}
	for !hb() {
		if time.Now().After(deadline) {
			t.Fatal("no heartbeat exchange in both directions")
		}
		time.Sleep(10 * time.Millisecond)
	}
	if err := c.Release(context.Background(), u.Addr()); err != nil {
		t.Fatal(err)
	}

	smfPort, upfPort := c.Node().LocalAddr().Port(), u.Addr().Port()
	path := pfcptest.CheckPFCP(t, rec, t.TempDir(), smfPort, upfPort)
	if testing.Verbose() {
		t.Log(pfcptest.Tshark(t, "-n", "-r", path, "-d", portArg(smfPort), "-d", portArg(upfPort)))
	}
	dec := []string{"-n", "-r", path, "-d", portArg(smfPort), "-d", portArg(upfPort)}

	types := pfcptest.Tshark(t, append(dec, "-T", "fields", "-e", "pfcp.msg_type")...)
	for _, want := range []uint8{
		message.MsgTypeAssociationSetupRequest, message.MsgTypeAssociationSetupResponse,
		message.MsgTypeHeartbeatRequest, message.MsgTypeHeartbeatResponse,
		message.MsgTypeSessionEstablishmentRequest, message.MsgTypeSessionEstablishmentResponse,
		message.MsgTypeSessionModificationRequest, message.MsgTypeSessionModificationResponse,
		message.MsgTypeSessionDeletionRequest, message.MsgTypeSessionDeletionResponse,
		message.MsgTypeNodeReportRequest, message.MsgTypeNodeReportResponse,
		message.MsgTypeAssociationReleaseRequest, message.MsgTypeAssociationReleaseResponse,
	} {
		if !containsLine(types, strconv.Itoa(int(want))) {
			t.Errorf("tshark saw no PFCP message type %d; types:\n%s", want, types)
		}
	}

	// tshark's reading of the first establishment request.
	got := pfcptest.Tshark(t, append(dec, "-Y", "pfcp.msg_type == 50", "-T", "fields", "-E", "separator=|",
		"-e", "e212.imsi", "-e", "pfcp.user_id.imei", "-e", "e164.msisdn", "-e", "pfcp.ue_ip_addr_ipv4",
		"-e", "pfcp.user_id.nai", "-e", "pfcp.outer_hdr_creation.teid")...)
	lines := strings.Split(strings.TrimSpace(got), "\n")
	if len(lines) != 2 {
		t.Fatalf("%d establishment requests in tshark's view, want 2:\n%s", len(lines), got)
	}
	want := []string{
		"001010000000042|350000000000042|819000000042|10.45.0.42,10.45.0.42||",
		"001010000000043|||10.45.0.43,10.45.0.43|user@example.org|0x00000099",
	}
	for i, w := range want {
		if lines[i] != w {
			t.Errorf("tshark reads establishment %d as\n %q, want\n %q", i+1, lines[i], w)
		}
	}
	// The F-TEID the UPF chose, as tshark reads the response.
	created := pfcptest.Tshark(t, append(dec, "-Y", "pfcp.msg_type == 51", "-T", "fields", "-e", "pfcp.f_teid.teid", "-e", "pfcp.f_teid.ipv4_addr")...)
	if first := strings.Split(strings.TrimSpace(created), "\n")[0]; first != fmtTEID(s.Uplink.TEID)+"\t"+n3IP.String() {
		t.Errorf("tshark reads the Created PDR F-TEID as %q, want %s at %s", first, fmtTEID(s.Uplink.TEID), n3IP)
	}
}

func portArg(p uint16) string { return fmt.Sprintf("udp.port==%d,pfcp", p) }

func fmtTEID(t uint32) string { return fmt.Sprintf("0x%08x", t) }

func containsLine(s, want string) bool {
	for _, l := range strings.Split(s, "\n") {
		if strings.TrimSpace(l) == want {
			return true
		}
	}
	return false
}
