package capture_test

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"net/netip"
	"testing"
	"time"

	"github.com/gopacket/gopacket"
	"github.com/gopacket/gopacket/layers"
	pfcpie "github.com/wmnsk/go-pfcp/ie"
	pfcpmsg "github.com/wmnsk/go-pfcp/message"

	"github.com/simgate/simgate/capture"
	"github.com/simgate/simgate/capture/capturetest"
	"github.com/simgate/simgate/core/n2"
	"github.com/simgate/simgate/gtp/pfcp"
)

// TestWrapPacketConnPFCP: a real PFCP node on loopback runs on a wrapped
// socket; its association setup and heartbeat are captured in order and
// direction, and tshark decodes them as PFCP.
func TestWrapPacketConnPFCP(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	w, path := openTemp(t, capture.Config{})
	n4 := w.Interface("n4", capture.KindN4)

	peer, err := pfcp.Listen(ctx, "127.0.0.1:0", pfcp.Config{HeartbeatInterval: -1})
	if err != nil {
		t.Fatal(err)
	}
	conn, err := net.ListenUDP("udp", net.UDPAddrFromAddrPort(ap("127.0.0.1:0")))
	if err != nil {
		t.Fatal(err)
	}
	var _ pfcp.PacketConn = capture.WrapPacketConn(conn, n4) // the shape pfcp.Start takes
	node, err := pfcp.Start(ctx, capture.WrapPacketConn(conn, n4), pfcp.Config{HeartbeatInterval: -1})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := node.Associate(ctx, peer.LocalAddr()); err != nil {
		t.Fatal(err)
	}
	hb := pfcpmsg.NewHeartbeatRequest(0, pfcpie.NewRecoveryTimeStamp(time.Now()), nil)
	if _, err := node.Request(ctx, peer.LocalAddr(), hb); err != nil {
		t.Fatal(err)
	}
	cancel()
	<-node.Done()
	<-peer.Done()
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}

	rb := readCapture(t, path)
	local, remote := node.LocalAddr(), peer.LocalAddr()
	want := []struct {
		typ uint8
		out bool
	}{
		{pfcpmsg.MsgTypeAssociationSetupRequest, true}, {pfcpmsg.MsgTypeAssociationSetupResponse, false},
		{pfcpmsg.MsgTypeHeartbeatRequest, true}, {pfcpmsg.MsgTypeHeartbeatResponse, false},
	}
	if len(rb.packets) != len(want) {
		t.Fatalf("%d datagrams captured, want %d", len(rb.packets), len(want))
	}
	for n, wt := range want {
		p := rb.packets[n]
		checksumsOK(t, p.data)
		udp, _ := gopacket.NewPacket(p.data, layers.LayerTypeIPv4, gopacket.NoCopy).Layer(layers.LayerTypeUDP).(*layers.UDP)
		if udp == nil {
			t.Fatalf("datagram %d is not UDP", n)
		}
		src, dst := remote, local
		if wt.out {
			src, dst = local, remote
		}
		if uint16(udp.SrcPort) != src.Port() || uint16(udp.DstPort) != dst.Port() || udp.Payload[1] != wt.typ {
			t.Errorf("datagram %d: %d -> %d type %d, want %v -> %v type %d", n, udp.SrcPort, udp.DstPort, udp.Payload[1], src, dst, wt.typ)
		}
	}
	res := capturetest.Check(t, path, capturetest.Options{Warnings: true, Args: []string{
		"-d", fmt.Sprintf("udp.port==%d,pfcp", remote.Port()),
	}})
	for _, f := range res.Frames {
		if !inOrder(f.Protocols, "ip:udp:pfcp") {
			t.Errorf("frame %d: %s", f.Number, f.Protocols)
		}
	}
}

// TestN2Live: a real N2 association in UDP mode (pion/sctp in UDP on
// loopback) with the server's Tap writing to a capture: handshake, NGAP
// both ways and shutdown. tshark finds every SCTP checksum good, nothing
// malformed, and NGAP in the DATA.
func TestN2Live(t *testing.T) {
	w, path := openTemp(t, capture.Config{})
	tap := w.Interface("n2", capture.KindN2)
	cfg := n2.Config{Transport: n2.TransportUDP, LocalAddr: "127.0.0.1:0", HandshakeTimeout: 3 * time.Second, ShutdownTimeout: time.Second}
	scfg := cfg
	scfg.Tap = tap
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	ln, err := n2.Listen(ctx, scfg)
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	client, err := n2.Dial(ctx, cfg, ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer client.Close()
	server, err := ln.Accept(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer server.Close()

	msgs := []struct {
		from, to n2.Conn
		msg      []byte
		stream   uint16
	}{
		{client, server, ngSetupRequest(t, "simgate-live"), 0},
		{server, client, downlinkNASTransport(t, identityRequest(t)), 1},
		{server, client, downlinkNASTransport(t, protectedConfigurationUpdate(t)), 1},
	}
	buf := make([]byte, 1<<16)
	for n, m := range msgs {
		if err := m.from.WriteMsg(m.msg, m.stream); err != nil {
			t.Fatalf("message %d: %v", n, err)
		}
		k, stream, _, err := m.to.ReadMsg(buf)
		if err != nil || !bytes.Equal(buf[:k], m.msg) || stream != m.stream {
			t.Fatalf("message %d: read %d octets on stream %d: %v", n, k, stream, err)
		}
	}
	if err := client.Close(); err != nil {
		t.Fatal(err)
	}
	server.Close()
	ln.Close()
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	s := tap.Stats()
	if s.Packets < 8 || s.Dropped != 0 || s.Errors != 0 { // 4-way handshake, 3 DATA, SACKs, shutdown
		t.Fatalf("stats %+v", s)
	}
	port := netip.MustParseAddrPort(ln.Addr().String()).Port()
	res := capturetest.Check(t, path, capturetest.Options{Args: []string{
		"-d", fmt.Sprintf("udp.port==%d,sctp", port), "-o", "nas-5gs.null_decipher:TRUE",
	}})
	if len(res.Frames) != int(s.Packets) {
		t.Fatalf("tshark reads %d frames, %d written", len(res.Frames), s.Packets)
	}
	for _, p := range []string{"sctp", "ngap", "nas-5gs"} {
		if !res.Has(p) {
			t.Errorf("no %s frame:\n%s", p, res)
		}
	}
	for n, st := range capturetest.Fields(t, path, []string{"-d", fmt.Sprintf("udp.port==%d,sctp", port)}, "sctp.checksum.status") {
		if st[0] != "1" {
			t.Errorf("frame %d: SCTP checksum status %q", n+1, st[0])
		}
	}
	types := capturetest.Fields(t, path, []string{"-d", fmt.Sprintf("udp.port==%d,sctp", port), "-o", "nas-5gs.null_decipher:TRUE", "-Y", "nas-5gs"}, "nas_5gs.mm.message_type")
	if len(types) != 2 || types[0][0] != "0x5b" || types[1][0] != "0x54" {
		t.Errorf("NAS message types %v, want 0x5b then 0x54", types)
	}
}
