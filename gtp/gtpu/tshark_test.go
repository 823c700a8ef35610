package gtpu

import (
	"fmt"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/gopacket/gopacket"
	"github.com/gopacket/gopacket/layers"
	"github.com/gopacket/gopacket/pcapgo"

	"github.com/simgate/simgate/gtp/pfcp/pfcptest"
)

// TestTsharkDecodesN3: the datagrams of an N3 exchange between two Conns,
// captured by a Tap, decode in tshark as GTP-U with no malformed frame or
// expert error; tshark reads the PDU Session Containers and the inner IPv4
// packets as they were sent.
func TestTsharkDecodesN3(t *testing.T) {
	tap := &recordingTap{}
	upf := listen(t, Config{Tap: tap})
	gnb := listen(t, Config{})
	serve(t, upf, func(p *Packet) Action {
		if p.Header.Type == MsgGPDU && p.Header.TEID != 0x100 {
			return UnknownTEID
		}
		return Consume
	})
	atGNB := make(chan received, 10)
	serve(t, gnb, recorder(atGNB, func(*Packet) Action { return Consume }))

	ul := innerIPv4(t, "10.45.0.2", "10.0.0.1", &layers.UDP{SrcPort: 40000, DstPort: 40001}, []byte("hello"))
	dl := innerIPv4(t, "10.0.0.1", "10.45.0.2", &layers.ICMPv4{TypeCode: layers.CreateICMPv4TypeCode(layers.ICMPv4TypeEchoReply, 0), Id: 1, Seq: 1}, []byte("pong"))
	dlPSC := &PDUSession{Type: DL, QFI: 5, RQI: true, PPP: true, PPI: 2}
	send := func(c *Conn, to netip.AddrPort, b []byte) {
		if n, err := c.WriteBatch([]Packet{{Addr: to, Data: b}}); n != 1 || err != nil {
			t.Fatal(err)
		}
	}
	send(gnb, upf.LocalAddr(), gpdu(t, 0x100, &PDUSession{Type: UL, QFI: 9}, ul))
	send(gnb, upf.LocalAddr(), gpdu(t, 0xdead, &PDUSession{Type: UL, QFI: 9}, ul)) // Error Indication
	send(upf, gnb.LocalAddr(), gpdu(t, 0x200, dlPSC, dl))
	if err := gnb.SendEchoRequest(upf.LocalAddr(), 7); err != nil {
		t.Fatal(err)
	}
	if err := upf.SendEndMarker(gnb.LocalAddr(), 0x200, &PDUSession{Type: DL, QFI: 5}); err != nil {
		t.Fatal(err)
	}
	// A comprehension-required extension header the UPF does not know
	// (Long PDCP PDU Number, 0x82): answered with the supported list.
	send(gnb, upf.LocalAddr(), append(hx(t, fmt.Sprintf("34ff%04x 00000100 00000082 02000001 00000000", 12+len(ul))), ul...))
	want := map[uint8]bool{MsgErrorIndication: true, MsgGPDU: true, MsgEchoResponse: true, MsgEndMarker: true, MsgSupportedExtensionHeadersNotification: true}
	for len(want) > 0 {
		select {
		case r := <-atGNB:
			delete(want, r.h.Type)
		case <-time.After(10 * time.Second):
			t.Fatalf("the gNB is still waiting for message types %v", want)
		}
	}

	dir := t.TempDir()
	path := filepath.Join(dir, "n3.pcap")
	recs := tap.records()
	if len(recs) != 9 {
		t.Fatalf("tap saw %d datagrams, want 9", len(recs))
	}
	if err := writePcap(path, recs); err != nil {
		t.Fatal(err)
	}
	args := []string{"-n", "-r", path,
		"-d", fmt.Sprintf("udp.port==%d,gtp", upf.LocalAddr().Port()),
		"-d", fmt.Sprintf("udp.port==%d,gtp", gnb.LocalAddr().Port())}
	tshark := func(extra ...string) string {
		return pfcptest.Tshark(t, append(args[:len(args):len(args)], extra...)...)
	}
	if bad := tshark("-Y", pfcptest.ExpertFilter); strings.TrimSpace(bad) != "" {
		t.Fatalf("tshark flags frames:\n%s\n%s", bad, tshark("-V", "-Y", pfcptest.ExpertFilter))
	}
	if notGTP := tshark("-Y", "!gtp"); strings.TrimSpace(notGTP) != "" {
		t.Fatalf("frames tshark does not decode as GTP:\n%s", notGTP)
	}
	if testing.Verbose() {
		t.Log(tshark())
	}
	check := func(filter string, fields []string, want ...string) {
		t.Helper()
		a := []string{"-Y", filter, "-T", "fields", "-E", "separator=|"}
		for _, f := range fields {
			a = append(a, "-e", f)
		}
		// Sorted: the tap sees the UPF's reads and writes from two
		// goroutines.
		got := strings.Split(strings.TrimSpace(tshark(a...)), "\n")
		slices.Sort(got)
		slices.Sort(want)
		if !slices.Equal(got, want) {
			t.Errorf("tshark %s %v:\n got %q\nwant %q", filter, fields, got, want)
		}
	}
	// The G-PDUs: container fields, and the inner IPv4 packet below the
	// outer one (ip.src lists both).
	check("gtp.message == 255 && !gtp.ext_hdr.long_pdcp_sn", []string{
		"gtp.teid", "gtp.ext_hdr.pdu_ses_con.pdu_type", "gtp.ext_hdr.pdu_ses_con.qos_flow_id",
		"gtp.ext_hdr.pdu_ses_cont.rqi", "gtp.ext_hdr.pdu_ses_cont.ppp", "gtp.ext_hdr.pdu_ses_cont.ppi",
		"ip.src", "ip.dst", "udp.dstport", "icmp.type"},
		"0x00000100|1|9||||127.0.0.1,10.45.0.2|127.0.0.1,10.0.0.1|"+portStr(upf)+",40001|",
		"0x0000dead|1|9||||127.0.0.1,10.45.0.2|127.0.0.1,10.0.0.1|"+portStr(upf)+",40001|",
		"0x00000200|0|5|1|1|2|127.0.0.1,10.0.0.1|127.0.0.1,10.45.0.2|"+portStr(gnb)+"|0",
	)
	check("gtp.message == 26", []string{"gtp.teid", "gtp.teid_data", "gtp.gsn_ipv4", "gtp.ext_hdr.udp_port"},
		"0x00000000|0x0000dead|127.0.0.1|"+portStr(gnb))
	check("gtp.message == 1 || gtp.message == 2", []string{"gtp.message", "gtp.seq_number", "gtp.recovery"},
		"0x01|0x0007|", "0x02|0x0007|0")
	check("gtp.message == 254", []string{"gtp.teid", "gtp.ext_hdr.pdu_ses_con.pdu_type", "gtp.ext_hdr.pdu_ses_con.qos_flow_id"},
		"0x00000200|0|5")
	check("gtp.message == 31", []string{"gtp.num_ext_hdr_types", "gtp.ext_hdr_type"}, "2|64,133")
}

func portStr(c *Conn) string { return fmt.Sprint(c.LocalAddr().Port()) }

// innerIPv4 serialises an IPv4 packet carrying l4 and payload.
func innerIPv4(t *testing.T, src, dst string, l4 gopacket.SerializableLayer, payload []byte) []byte {
	t.Helper()
	ip := &layers.IPv4{Version: 4, TTL: 64, SrcIP: net.ParseIP(src).To4(), DstIP: net.ParseIP(dst).To4()}
	switch l := l4.(type) {
	case *layers.UDP:
		ip.Protocol = layers.IPProtocolUDP
		if err := l.SetNetworkLayerForChecksum(ip); err != nil {
			t.Fatal(err)
		}
	case *layers.ICMPv4:
		ip.Protocol = layers.IPProtocolICMPv4
	}
	buf := gopacket.NewSerializeBuffer()
	opts := gopacket.SerializeOptions{FixLengths: true, ComputeChecksums: true}
	if err := gopacket.SerializeLayers(buf, opts, ip, l4, gopacket.Payload(payload)); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// writePcap writes tapped IPv4 datagrams as Ethernet/IPv4/UDP frames.
func writePcap(path string, recs []tapRecord) error {
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	w := pcapgo.NewWriter(f)
	if err := w.WriteFileHeader(65536, layers.LinkTypeEthernet); err != nil {
		f.Close()
		return err
	}
	ts := time.Unix(1700000000, 0)
	for i, r := range recs {
		src, dst := r.remote, r.local
		if r.out {
			src, dst = r.local, r.remote
		}
		s4, d4 := src.Addr().As4(), dst.Addr().As4()
		eth := &layers.Ethernet{SrcMAC: net.HardwareAddr{2, 0, 0, 0, 0, 1}, DstMAC: net.HardwareAddr{2, 0, 0, 0, 0, 2}, EthernetType: layers.EthernetTypeIPv4}
		ip := &layers.IPv4{Version: 4, TTL: 64, Id: uint16(i), Protocol: layers.IPProtocolUDP, SrcIP: s4[:], DstIP: d4[:]}
		udp := &layers.UDP{SrcPort: layers.UDPPort(src.Port()), DstPort: layers.UDPPort(dst.Port())}
		if err := udp.SetNetworkLayerForChecksum(ip); err != nil {
			f.Close()
			return err
		}
		buf := gopacket.NewSerializeBuffer()
		opts := gopacket.SerializeOptions{FixLengths: true, ComputeChecksums: true}
		if err := gopacket.SerializeLayers(buf, opts, eth, ip, udp, gopacket.Payload(r.b)); err != nil {
			f.Close()
			return err
		}
		frame := buf.Bytes()
		ci := gopacket.CaptureInfo{Timestamp: ts.Add(time.Duration(i) * time.Millisecond), CaptureLength: len(frame), Length: len(frame)}
		if err := w.WritePacket(ci, frame); err != nil {
			f.Close()
			return err
		}
	}
	return f.Close()
}
