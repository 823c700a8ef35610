package capture_test

import (
	"fmt"
	"slices"
	"strings"
	"testing"

	"github.com/simgate/simgate/capture"
	"github.com/simgate/simgate/capture/capturetest"
)

// frameWant is what tshark must make of one frame: the interface it came
// from and protocols its frame.protocols must hold, in order.
type frameWant struct {
	iface  string
	protos string // e.g. "sctp:ngap:nas-5gs"
}

// synthetic writes traffic of every kind the taps see, over IPv4 and IPv6,
// and returns the capture path and what each frame must decode as.
func synthetic(t *testing.T) (string, []frameWant) {
	t.Helper()
	w, path := openTemp(t, capture.Config{Now: newFakeClock().Now})
	var want []frameWant
	expect := func(iface, protos string, n int) {
		for range n {
			want = append(want, frameWant{iface, protos})
		}
	}

	// N2 in UDP mode (RFC 6951): SCTP packets built by hand, with their
	// CRC32c, in UDP datagrams on the encapsulation port 9899.
	n2 := w.Interface("n2", capture.KindN2)
	gnbUDP, amfUDP := ap("127.0.0.2:40000"), ap("127.0.0.1:9899")
	n2.Datagram(false, amfUDP, gnbUDP, sctpData(41000, 38412, 0xa1a2a3a4, 100, 0, 0, 60, ngSetupRequest(t, "simgate-gnb")))
	expect("n2", "udp:sctp:ngap", 1)
	n2.Datagram(true, amfUDP, gnbUDP, sctpData(38412, 41000, 0xb1b2b3b4, 500, 1, 0, 60, downlinkNASTransport(t, identityRequest(t))))
	expect("n2", "udp:sctp:ngap:nas-5gs", 1)
	n2v6 := [2]string{"[fd00::1]:9899", "[fd00::2]:40001"}
	n2.Datagram(false, ap(n2v6[0]), ap(n2v6[1]), sctpData(41001, 38412, 0xc1c2c3c4, 7, 0, 0, 60, ngSetupRequest(t, "simgate-gnb-v6")))
	expect("n2", "ipv6:udp:sctp:ngap", 1)

	// N2 over kernel SCTP: user messages framed as IP/SCTP. The big
	// NGSetupRequest spans two DATA chunks.
	k := w.Interface("n2-kernel", capture.KindN2)
	amf, gnb := ap("10.0.0.1:38412"), ap("10.0.0.2:45000")
	k.Message(false, amf, gnb, 0, 60, ngSetupRequest(t, "simgate-gnb-kernel"))
	expect("n2-kernel", "ip:sctp:ngap", 1)
	k.Message(true, amf, gnb, 1, 60, downlinkNASTransport(t, identityRequest(t)))
	expect("n2-kernel", "ip:sctp:ngap:nas-5gs", 1)
	k.Message(true, amf, gnb, 1, 60, downlinkNASTransport(t, protectedConfigurationUpdate(t)))
	expect("n2-kernel", "ip:sctp:ngap:nas-5gs", 1)
	big := ngSetupRequestTAs(t, "simgate-gnb-big", 200)
	if len(big) < 1500 || len(big) > 2800 {
		t.Fatalf("big NGSetupRequest is %d octets; want two fragments", len(big))
	}
	k.Message(false, amf, gnb, 0, 60, big)
	expect("n2-kernel", "ip:sctp", 1)
	expect("n2-kernel", "ip:sctp:ngap", 1) // reassembled
	k.Message(false, ap("[fd00::10]:38412"), ap("[fd00::20]:45001"), 0, 60, ngSetupRequest(t, "simgate-gnb-kernel-v6"))
	expect("n2-kernel", "ipv6:sctp:ngap", 1)

	// N4: PFCP heartbeats.
	n4 := w.Interface("n4", capture.KindN4)
	smf, upf := ap("127.0.0.1:8805"), ap("127.0.0.3:8805")
	n4.Datagram(true, smf, upf, pfcpHeartbeat(t, 1, true))
	n4.Datagram(false, smf, upf, pfcpHeartbeat(t, 1, false))
	n4.Datagram(true, ap("[::1]:8805"), ap("[::1]:18805"), pfcpHeartbeat(t, 2, true))
	expect("n4", "udp:pfcp", 3)

	// N3 and the UE's stack: an HTTP exchange, as G-PDUs with a PDU
	// Session Container and as the inner packets themselves.
	n3 := w.Interface("n3", capture.KindN3)
	ueIP := w.Interface("ue-ip", capture.KindIP)
	upfN3, gnbN3 := ap("127.0.0.4:2152"), ap("127.0.0.5:2152")
	// (Two flows: tshark would take a second copy of one flow for
	// retransmissions and not decode HTTP in it.)
	pkts, uplink := httpExchange(t, ap("10.45.0.2:49152"), ap("100.127.0.10:80"))
	inner, _ := httpExchange(t, ap("10.45.0.2:49153"), ap("100.127.0.10:80"))
	for n, p := range pkts {
		n3.Datagram(!uplink[n], upfN3, gnbN3, gpdu(t, 0x1234+uint32(n%2), uplink[n], p))
		ueIP.Packet(uplink[n], inner[n])
		protos := "ip:tcp"
		if n == 3 || n == 4 { // request, response
			protos = "ip:tcp:http"
		}
		want = append(want, frameWant{"n3", "udp:gtp:" + protos}, frameWant{"ue-ip", protos})
	}

	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	for _, s := range w.Stats() {
		if s.Dropped != 0 || s.Errors != 0 {
			t.Fatalf("stats %+v", s)
		}
	}
	return path, want
}

// TestTsharkDecodesEveryKind: tshark reads a capture of every kind of tap
// call with no malformed frame and no expert warning, checksums all
// verified, and decodes NGAP, NAS-5GS, PFCP, GTP-U and the inner HTTP.
func TestTsharkDecodesEveryKind(t *testing.T) {
	path, want := synthetic(t)
	checks := []string{
		"-o", "ip.check_checksum:TRUE", "-o", "udp.check_checksum:TRUE", "-o", "tcp.check_checksum:TRUE",
		"-o", "nas-5gs.null_decipher:TRUE",
	}
	res := capturetest.Check(t, path, capturetest.Options{Args: checks, Warnings: true})
	if len(res.Frames) != len(want) {
		t.Fatalf("tshark reads %d frames, %d were written:\n%s", len(res.Frames), len(want), res)
	}
	for n, f := range res.Frames {
		w := want[n]
		if f.Interface != w.iface || !inOrder(f.Protocols, w.protos) {
			t.Errorf("frame %d: interface %q protocols %q, want %q with %q", n+1, f.Interface, f.Protocols, w.iface, w.protos)
		}
	}
	for _, p := range []string{"ngap", "nas-5gs", "pfcp", "gtp", "http", "sctp", "ipv6"} {
		if !res.Has(p) {
			t.Errorf("no frame decodes as %s:\n%s", p, res)
		}
	}
	// Every SCTP packet, hand-built or framed, has a good CRC32c.
	status := capturetest.Fields(t, path, []string{"-Y", "sctp"}, "sctp.checksum.status")
	if len(status) == 0 {
		t.Fatal("no SCTP frames")
	}
	for n, s := range status {
		if s[0] != "1" { // PROTO_CHECKSUM_E_GOOD
			t.Errorf("SCTP frame %d: checksum status %q", n+1, s[0])
		}
	}
}

// inOrder reports whether the protocols of want (colon-separated) occur in
// got in that order.
func inOrder(got, want string) bool {
	g := strings.Split(got, ":")
	for _, p := range strings.Split(want, ":") {
		i := slices.Index(g, p)
		if i < 0 {
			return false
		}
		g = g[i+1:]
	}
	return true
}

// TestTsharkNullDecipher: the NEA0-protected NAS PDU decodes (as a
// Configuration update command, 0x54) only with nas-5gs.null_decipher on;
// the plain Identity request (0x5b) decodes either way.
func TestTsharkNullDecipher(t *testing.T) {
	path, _ := synthetic(t)
	types := func(args ...string) string {
		rows := capturetest.Fields(t, path, append(args, "-Y", "nas-5gs"), "nas_5gs.security_header_type", "nas_5gs.mm.message_type")
		var out []string
		for _, r := range rows {
			out = append(out, fmt.Sprintf("%s/%s", r[0], r[1]))
		}
		return strings.Join(out, " ")
	}
	// Plain: security header type 0; protected: 2 (integrity protected and
	// ciphered), whose inner plain message (type 0 again) is hidden unless
	// NEA0 is assumed.
	if got, want := types(), "0/0x5b 0/0x5b 2/"; got != want {
		t.Errorf("without null_decipher: %q, want %q", got, want)
	}
	if got, want := types("-o", "nas-5gs.null_decipher:TRUE"), "0/0x5b 0/0x5b 2,0/0x54"; got != want {
		t.Errorf("with null_decipher: %q, want %q", got, want)
	}
}
