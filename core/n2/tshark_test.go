package n2

import (
	"context"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/gopacket/gopacket"
	"github.com/gopacket/gopacket/layers"
	"github.com/gopacket/gopacket/pcapgo"
)

// NGAP PDUs for the capture, encoded by hand in ALIGNED PER (X.691) from
// the TS 38.413 ASN.1, so that a decoder we did not write, tshark's, is the
// judge. (free5gc/ngap would encode them, but its dependency
// github.com/pkg/errors has no go.sum entry in this module yet.)

// aperLen is an unconstrained length determinant (X.691 11.9.3.6-7).
func aperLen(n int) []byte {
	if n < 128 {
		return []byte{byte(n)}
	}
	return []byte{0x80 | byte(n>>8), byte(n)}
}

// ngapPDU wraps an initiating message: CHOICE index 0, procedureCode,
// criticality and the open-type value (TS 38.413 9.4.2).
func ngapPDU(procedureCode, criticality byte, ies ...[]byte) []byte {
	// value: SEQUENCE {protocolIEs, ...}: extension bit 0 + padding,
	// then SEQUENCE (SIZE(0..65535)) OF: a 16-bit count.
	value := []byte{0x00, byte(len(ies) >> 8), byte(len(ies))}
	for _, ie := range ies {
		value = append(value, ie...)
	}
	pdu := []byte{0x00, procedureCode, criticality << 6}
	pdu = append(pdu, aperLen(len(value))...)
	return append(pdu, value...)
}

// ngapIE is one ProtocolIE-Field: id, criticality, open-type value.
func ngapIE(id uint16, criticality byte, value []byte) []byte {
	ie := []byte{byte(id >> 8), byte(id), criticality << 6}
	ie = append(ie, aperLen(len(value))...)
	return append(ie, value...)
}

const (
	critReject = 0
	critIgnore = 1
)

var testPLMN = []byte{0x00, 0xf1, 0x10} // MCC 001, MNC 01 (TS 24.008 10.5.1.13)

// ngSetupRequest builds an NGSetupRequest (TS 38.413 9.2.6.1, procedure
// code 21) with tacs tracking areas, each with one PLMN and slice SST 1.
func ngSetupRequest(name string, tacs int) []byte {
	// GlobalRANNodeID: CHOICE globalGNB-ID (2 bits 00), GlobalGNB-ID
	// SEQUENCE (ext 0, iE-Extensions absent 0), pad; PLMN; GNB-ID CHOICE
	// (1 bit 0) + BIT STRING SIZE(22..32) length 32 (4 bits 1010), pad; the
	// 32-bit gNB ID.
	gnb := append([]byte{0x00}, testPLMN...)
	gnb = append(gnb, 0x50, 0x00, 0x00, 0x00, 0x01)
	// RANNodeName: PrintableString (SIZE(1..150, ...)): ext bit 0, 8-bit
	// length-1, pad, the characters.
	rn := []byte{byte(len(name)-1) >> 1, byte(len(name)-1) << 7}
	rn = append(rn, name...)
	// SupportedTAList SIZE(1..256): count-1 in one octet; per item: ext 0,
	// iE-Extensions absent 0, pad; TAC (3 octets); BroadcastPLMNList
	// SIZE(1..12) count-1 in 4 bits + item ext 0 + absent 0, pad; PLMN;
	// SliceSupportList SIZE(1..1024) count-1 in 16 bits; S-NSSAI: item ext
	// 0, absent 0, S-NSSAI ext 0, sD absent 0, absent 0, SST 8 bits, pad.
	// After the first item the next one's ext and absent bits fit in the
	// last octet of the previous S-NSSAI (13 bits used), so no octet of
	// their own.
	ta := []byte{byte(tacs - 1), 0x00}
	for i := range tacs {
		ta = append(ta, 0x00, byte(i>>8), byte(i+1), 0x00)
		ta = append(ta, testPLMN...)
		ta = append(ta, 0x00, 0x00, 0x00, 0x08)
	}
	return ngapPDU(21, critReject,
		ngapIE(27, critReject, gnb),          // id-GlobalRANNodeID
		ngapIE(82, critIgnore, rn),           // id-RANNodeName
		ngapIE(102, critReject, ta),          // id-SupportedTAList
		ngapIE(21, critIgnore, []byte{0x40}), // id-DefaultPagingDRX: v128 (ext 0, index 2)
	)
}

// downlinkNASTransport (TS 38.413 9.2.5.2, procedure code 4) carrying a
// NAS Identity request for the SUCI (TS 24.501 8.2.21: EPD 7e, plain, type
// 5b, identity type 1).
func downlinkNASTransport() []byte {
	nas := []byte{0x7e, 0x00, 0x5b, 0x01}
	return ngapPDU(4, critIgnore,
		// AMF-UE-NGAP-ID INTEGER (0..2^40-1): octet count-1 in 3 bits, pad, octets.
		ngapIE(10, critReject, []byte{0x00, 0x01}),
		// RAN-UE-NGAP-ID INTEGER (0..2^32-1): octet count-1 in 2 bits, pad, octets.
		ngapIE(85, critReject, []byte{0x00, 0x07}),
		// NAS-PDU OCTET STRING: length, octets.
		ngapIE(38, critReject, append(aperLen(len(nas)), nas...)),
	)
}

// writePcap frames the datagrams a Tap saw as IPv4/UDP packets.
func writePcap(t *testing.T, path string, ds []datagram) {
	t.Helper()
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	w := pcapgo.NewWriter(f)
	if err := w.WriteFileHeader(65535, layers.LinkTypeRaw); err != nil {
		t.Fatal(err)
	}
	for i, d := range ds {
		src, dst := d.remote, d.local
		if d.out {
			src, dst = d.local, d.remote
		}
		ip := &layers.IPv4{
			Version: 4, TTL: 64, Id: uint16(i), Protocol: layers.IPProtocolUDP,
			SrcIP: src.Addr().AsSlice(), DstIP: dst.Addr().AsSlice(),
		}
		udp := &layers.UDP{SrcPort: layers.UDPPort(src.Port()), DstPort: layers.UDPPort(dst.Port())}
		if err := udp.SetNetworkLayerForChecksum(ip); err != nil {
			t.Fatal(err)
		}
		buf := gopacket.NewSerializeBuffer()
		opts := gopacket.SerializeOptions{FixLengths: true, ComputeChecksums: true}
		if err := gopacket.SerializeLayers(buf, opts, ip, udp, gopacket.Payload(d.payload)); err != nil {
			t.Fatal(err)
		}
		ci := gopacket.CaptureInfo{Timestamp: d.at, CaptureLength: len(buf.Bytes()), Length: len(buf.Bytes())}
		if err := w.WritePacket(ci, buf.Bytes()); err != nil {
			t.Fatal(err)
		}
	}
}

// TestTsharkDecodes captures an N2 exchange in UDP mode through the Tap and
// has tshark check it: every datagram is SCTP with a good CRC32c, nothing
// is malformed, and the DATA decodes as NGAP (and NAS-5GS inside it).
func TestTsharkDecodes(t *testing.T) {
	tshark, err := exec.LookPath("tshark")
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatal("tshark not installed; CI must have it (apt-get install tshark)")
		}
		t.Skip("tshark not installed (apt-get install --no-install-recommends tshark)")
	}
	noLeaks(t)
	var tap recorder
	scfg, ccfg := testConfig(t), testConfig(t)
	scfg.Tap = &tap
	// Idle periods bring HEARTBEAT and HEARTBEAT ACK into the capture.
	for _, c := range []*Config{&scfg, &ccfg} {
		c.HeartbeatInterval, c.PeerTimeout = 50*time.Millisecond, 10*time.Second
	}
	ln := listen(t, scfg)
	client, server := dial(t, ln, ccfg)

	setup := ngSetupRequest("simgate-gnb", 1)
	bigSetup := ngSetupRequest("simgate-gnb-big", 200) // spans several DATA chunks
	dl := downlinkNASTransport()
	steps := []struct {
		w, r   Conn
		msg    []byte
		stream uint16
	}{
		{client, server, setup, 0},
		{server, client, dl, 1},
		{client, server, bigSetup, 0},
	}
	for i, s := range steps {
		if err := s.w.WriteMsg(s.msg, s.stream); err != nil {
			t.Fatalf("step %d: %v", i, err)
		}
		if r := read(t, s.r, 3*time.Second); r.err != nil || string(r.data) != string(s.msg) || r.stream != s.stream {
			t.Fatalf("step %d: got %d bytes on stream %d, %v", i, len(r.data), r.stream, r.err)
		}
		time.Sleep(120 * time.Millisecond)
	}
	_ = client.Close()
	if r := read(t, server, 3*time.Second); r.err != io.EOF {
		t.Fatalf("after close: %v", r.err)
	}

	pcap := filepath.Join(t.TempDir(), "n2.pcap")
	writePcap(t, pcap, tap.all())
	port := ln.Addr().(*net.UDPAddr).Port
	run := func(args ...string) string {
		t.Helper()
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		base := []string{"-r", pcap, "-d", fmt.Sprintf("udp.port==%d,sctp", port), "-o", "sctp.checksum:CRC-32C"}
		cmd := exec.CommandContext(ctx, tshark, append(base, args...)...)
		var stderr strings.Builder
		cmd.Stderr = &stderr
		out, err := cmd.Output()
		if err != nil {
			t.Fatalf("tshark %v: %v\n%s%s", args, err, out, stderr.String())
		}
		return string(out)
	}

	// Nothing malformed, no warnings or errors, no checksum that is not
	// good, no UDP datagram that is not SCTP.
	if bad := run("-Y", `_ws.malformed || _ws.expert.severity >= 6291456 || sctp.checksum.status != 1 || (udp && !sctp)`); strings.TrimSpace(bad) != "" {
		t.Fatalf("tshark found problems:\n%s\ncapture:\n%s", bad, run())
	}
	fields := run("-T", "fields", "-E", "separator=|", "-e", "sctp.checksum.status", "-e", "sctp.srcport",
		"-e", "sctp.dstport", "-e", "ngap.procedureCode", "-e", "ngap.RANNodeName",
		"-e", "nas_5gs.mm.message_type", "-e", "_ws.col.Protocol")
	lines := strings.Split(strings.TrimSpace(fields), "\n")
	if len(lines) != len(tap.all()) {
		t.Fatalf("tshark shows %d packets, the tap saw %d", len(lines), len(tap.all()))
	}
	var setups, nas int
	for _, l := range lines {
		f := strings.Split(l, "|")
		if len(f) != 7 {
			t.Fatalf("tshark line %q", l)
		}
		if f[0] != "1" { // PROTO_CHECKSUM_E_GOOD
			t.Fatalf("checksum status %q in %q", f[0], l)
		}
		if !(f[1] == fmt.Sprint(NGAPPort) || f[2] == fmt.Sprint(NGAPPort)) {
			t.Fatalf("SCTP ports %s->%s, want 38412 on one side", f[1], f[2])
		}
		if strings.Contains(f[3], "21") {
			if !strings.HasPrefix(f[4], "simgate-gnb") || !strings.Contains(f[6], "NGAP") {
				t.Fatalf("NGSetupRequest decoded as %q", l)
			}
			setups++
		}
		if f[5] == "0x5b" {
			if f[3] != "4" || f[6] != "NGAP/NAS-5GS" {
				t.Fatalf("Identity request decoded as %q", l)
			}
			nas++
		}
	}
	if hb := run("-Y", "sctp.chunk_type == 4 && sctp.parameter_type == 1"); strings.Count(hb, "\n") < 1 {
		t.Fatalf("no HEARTBEAT with Heartbeat Info in the capture:\n%s", run())
	}
	if setups != 2 || nas != 1 {
		t.Fatalf("tshark decoded %d NGSetupRequests and %d NAS Identity requests, want 2 and 1:\n%s", setups, nas, run())
	}
	t.Logf("tshark summary:\n%s", run())
}
