package capture_test

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"hash/crc32"
	"io"
	"net/netip"
	"os"
	"sync"
	"testing"
	"time"

	"github.com/gopacket/gopacket"
	"github.com/gopacket/gopacket/layers"
	"github.com/gopacket/gopacket/pcapgo"
	"github.com/wmnsk/go-gtp/gtpv1/message"

	nasie "github.com/free5gc/nas/ie"
	nasmsg "github.com/free5gc/nas/message"
	"github.com/free5gc/ngap/aper"
	ngapie "github.com/free5gc/ngap/ie"
	ngapmsg "github.com/free5gc/ngap/message"
	pfcpie "github.com/wmnsk/go-pfcp/ie"
	pfcpmsg "github.com/wmnsk/go-pfcp/message"

	"github.com/simgate/simgate/capture"
)

// fakeClock hands out times one millisecond apart from a fixed start, so
// that every packet's timestamp is known.
type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func newFakeClock() *fakeClock {
	return &fakeClock{t: time.Date(2025, 3, 14, 15, 9, 26, 535897000, time.UTC)}
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(time.Millisecond)
	return c.t
}

// packet is one packet read back from a capture.
type packet struct {
	data  []byte
	ci    gopacket.CaptureInfo
	flags pcapgo.NgEpbFlag // direction bits of epb_flags
}

// readBack is a capture as pcapgo's reader sees it.
type readBack struct {
	ifaces  []pcapgo.NgInterface
	section pcapgo.NgSectionInfo
	packets []packet
	stats   map[int]pcapgo.NgInterfaceStatistics
}

func readCapture(t *testing.T, path string) readBack {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	return readFrom(t, f)
}

func readFrom(t *testing.T, r io.Reader) readBack {
	t.Helper()
	rb := readBack{stats: map[int]pcapgo.NgInterfaceStatistics{}}
	ng, err := pcapgo.NewNgReader(r, pcapgo.NgReaderOptions{
		WantMixedLinkType: true,
		StatisticsCallback: func(id int, s pcapgo.NgInterfaceStatistics) {
			rb.stats[id] = s
		},
	})
	if err != nil {
		t.Fatalf("pcapng reader: %v", err)
	}
	for {
		data, ci, opts, err := ng.ReadPacketDataWithOptions()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatalf("pcapng packet %d: %v", len(rb.packets)+1, err)
		}
		p := packet{data: bytes.Clone(data), ci: ci}
		if opts.Flags != nil {
			p.flags = opts.Flags.Direction
		}
		rb.packets = append(rb.packets, p)
	}
	for i := range ng.NInterfaces() {
		ifc, err := ng.Interface(i)
		if err != nil {
			t.Fatal(err)
		}
		rb.ifaces = append(rb.ifaces, ifc)
	}
	rb.section = ng.SectionInfo()
	return rb
}

// onesSum is the Internet checksum sum (RFC 1071) of b, not yet folded.
func onesSum(sum uint32, b []byte) uint32 {
	for len(b) >= 2 {
		sum += uint32(binary.BigEndian.Uint16(b))
		b = b[2:]
	}
	if len(b) == 1 {
		sum += uint32(b[0]) << 8
	}
	return sum
}

func fold(sum uint32) uint16 {
	for sum>>16 != 0 {
		sum = sum&0xffff + sum>>16
	}
	return uint16(sum)
}

// checksumsOK verifies, independently of gopacket, the IPv4 header
// checksum and the UDP checksum (RFC 768, RFC 8200 8.1) or the SCTP
// CRC32c (RFC 9260 6.8) of a raw IP packet.
func checksumsOK(t *testing.T, pkt []byte) {
	t.Helper()
	var pseudo []byte
	var proto byte
	var l4 []byte
	switch pkt[0] >> 4 {
	case 4:
		ihl := int(pkt[0]&0xf) * 4
		if fold(onesSum(0, pkt[:ihl])) != 0xffff {
			t.Fatalf("bad IPv4 header checksum in % x", pkt[:ihl])
		}
		if tl := int(binary.BigEndian.Uint16(pkt[2:])); tl != len(pkt) {
			t.Fatalf("IPv4 total length %d, packet %d", tl, len(pkt))
		}
		proto, l4 = pkt[9], pkt[ihl:]
		pseudo = append(append([]byte{}, pkt[12:20]...), 0, proto, byte(len(l4)>>8), byte(len(l4)))
	case 6:
		if pl := int(binary.BigEndian.Uint16(pkt[4:])); pl != len(pkt)-40 {
			t.Fatalf("IPv6 payload length %d, packet %d", pl, len(pkt))
		}
		proto, l4 = pkt[6], pkt[40:]
		pseudo = append(append([]byte{}, pkt[8:40]...), 0, 0, byte(len(l4)>>8), byte(len(l4)), 0, 0, 0, proto)
	default:
		t.Fatalf("IP version %d", pkt[0]>>4)
	}
	switch proto {
	case 17:
		if ul := int(binary.BigEndian.Uint16(l4[4:])); ul != len(l4) {
			t.Fatalf("UDP length %d, datagram %d", ul, len(l4))
		}
		if binary.BigEndian.Uint16(l4[6:]) == 0 || fold(onesSum(onesSum(0, pseudo), l4)) != 0xffff {
			t.Fatalf("bad UDP checksum %#04x", binary.BigEndian.Uint16(l4[6:]))
		}
	case 132:
		c := bytes.Clone(l4)
		clear(c[8:12])
		if got, want := binary.LittleEndian.Uint32(l4[8:]), crc32.Checksum(c, crc32.MakeTable(crc32.Castagnoli)); got != want {
			t.Fatalf("SCTP CRC32c %#08x, want %#08x", got, want)
		}
	}
}

// sctpData builds, by hand, an SCTP packet with one unfragmented DATA
// chunk (RFC 9260 3.1, 3.3.1) and its CRC32c, as the N2 UDP mode sends it.
func sctpData(src, dst uint16, vtag, tsn uint32, stream, ssn uint16, ppid uint32, payload []byte) []byte {
	p := binary.BigEndian.AppendUint16(nil, src)
	p = binary.BigEndian.AppendUint16(p, dst)
	p = binary.BigEndian.AppendUint32(p, vtag)
	p = append(p, 0, 0, 0, 0)
	p = append(p, 0, 0x03) // DATA, B and E
	p = binary.BigEndian.AppendUint16(p, uint16(16+len(payload)))
	p = binary.BigEndian.AppendUint32(p, tsn)
	p = binary.BigEndian.AppendUint16(p, stream)
	p = binary.BigEndian.AppendUint16(p, ssn)
	p = binary.BigEndian.AppendUint32(p, ppid)
	p = append(p, payload...)
	for len(p)%4 != 0 {
		p = append(p, 0)
	}
	binary.LittleEndian.PutUint32(p[8:], crc32.Checksum(p, crc32.MakeTable(crc32.Castagnoli)))
	return p
}

var testPLMN = []byte{0x00, 0xf1, 0x10} // MCC 001, MNC 01 (TS 24.008 10.5.1.13)

func marshal(t testing.TB, m interface{ MarshalBinary() ([]byte, error) }) []byte {
	t.Helper()
	b, err := m.MarshalBinary()
	if err != nil {
		t.Fatalf("marshal %T: %v", m, err)
	}
	return b
}

// ngSetupRequest (TS 38.413 9.2.6.1) of a gNB called name.
func ngSetupRequest(t testing.TB, name string) []byte { return ngSetupRequestTAs(t, name, 1) }

// ngSetupRequestTAs lists tacs tracking areas (1..256), each with one PLMN
// and slice SST 1.
func ngSetupRequestTAs(t testing.TB, name string, tacs int) []byte {
	var tas []ngapie.SupportedTAItem
	for n := range tacs {
		tas = append(tas, ngapie.SupportedTAItem{
			TAC: &ngapie.TAC{Value: []byte{0, byte(n >> 8), byte(n + 1)}},
			BroadcastPLMNList: &ngapie.BroadcastPLMNList{List: []ngapie.BroadcastPLMNItem{{
				PLMNIdentity: &ngapie.PLMNIdentity{Value: testPLMN},
				TAISliceSupportList: &ngapie.SliceSupportList{List: []ngapie.SliceSupportItem{{
					SNSSAI: &ngapie.SNSSAI{SST: &ngapie.SST{Value: aper.OctetString{1}}},
				}}},
			}}},
		})
	}
	return marshal(t, &ngapmsg.NGSetupRequest{
		GlobalRANNodeID: &ngapie.GlobalRANNodeID{Choice: &ngapie.GlobalGNBID{
			PLMNIdentity: &ngapie.PLMNIdentity{Value: testPLMN},
			GNBID:        &ngapie.GNBID{Choice: &ngapie.GNBIDForGNBID{Value: aper.BitString{Bytes: []byte{0, 0, 0, 1}, BitLength: 32}}},
		}},
		RANNodeName:      &ngapie.RANNodeName{Value: aper.PrintableString(name)},
		SupportedTAList:  &ngapie.SupportedTAList{List: tas},
		DefaultPagingDRX: &ngapie.PagingDRX{Value: ngapie.PagingDRXPresentV128},
	})
}

// downlinkNASTransport (TS 38.413 9.2.5.2) carrying nas.
func downlinkNASTransport(t testing.TB, nas []byte) []byte {
	return marshal(t, &ngapmsg.DownlinkNASTransport{
		AMFUENGAPID: &ngapie.AMFUENGAPID{Value: 1},
		RANUENGAPID: &ngapie.RANUENGAPID{Value: 7},
		NASPDU:      &ngapie.NASPDU{Value: nas},
	})
}

// identityRequest is a plain 5GMM Identity request for the SUCI (TS 24.501
// 8.2.21).
func identityRequest(t testing.TB) []byte {
	return marshal(t, &nasmsg.IdReq{IdType: &nasie.IdType5GS{IdType: 1}})
}

// protectedConfigurationUpdate is a Configuration update command (TS
// 24.501 8.2.19) integrity protected with 128-NIA2 and ciphered with
// NEA0 (security header type 2, TS 24.501 9.3.1), as the AMF sends it.
func protectedConfigurationUpdate(t testing.TB) []byte {
	kenc, kint := make([]byte, 16), bytes.Repeat([]byte{0x5a}, 16)
	sc := nasmsg.NewSecCtx(nasmsg.CoreNetworkSide, nasmsg.Bearer3GPP, nasmsg.AlgCiphering128NEA0, nasmsg.AlgIntegrity128NIA2, kenc, kint)
	b, err := nasmsg.Marshal(&nasmsg.CfgUpdateCmd{}, sc, nasmsg.SecHdrTypeIntegrityProtectedAndCiphered)
	if err != nil {
		t.Fatalf("NAS: %v", err)
	}
	return b
}

// pfcpHeartbeat is a PFCP Heartbeat Request or Response (TS 29.244 7.4.2).
func pfcpHeartbeat(t testing.TB, seq uint32, request bool) []byte {
	ts := pfcpie.NewRecoveryTimeStamp(time.Date(2025, 3, 14, 0, 0, 0, 0, time.UTC))
	var m interface{ Marshal() ([]byte, error) }
	if request {
		m = pfcpmsg.NewHeartbeatRequest(seq, ts, nil)
	} else {
		m = pfcpmsg.NewHeartbeatResponse(seq, ts)
	}
	b, err := m.Marshal()
	if err != nil {
		t.Fatalf("PFCP: %v", err)
	}
	return b
}

// gpdu wraps an inner IP packet in a G-PDU (TS 29.281 5.1) with a PDU
// Session Container (TS 38.415 5.5.2): UL PDU SESSION INFORMATION (type 1)
// or DL (type 0), QFI 9.
func gpdu(t testing.TB, teid uint32, ul bool, inner []byte) []byte {
	content := []byte{0x00, 9}
	if ul {
		content[0] = 0x10
	}
	h := message.NewHeaderWithExtensionHeaders(0x34, message.MsgTypeTPDU, teid, 0, inner,
		message.NewExtensionHeader(message.ExtHeaderTypePDUSessionContainer, content, message.ExtHeaderTypeNoMoreExtensionHeaders))
	b, err := h.Marshal()
	if err != nil {
		t.Fatalf("GTP-U: %v", err)
	}
	return b
}

// tcpSegment is an IPv4 TCP segment with correct checksums.
func tcpSegment(t testing.TB, src, dst netip.AddrPort, seq, ack uint32, syn, fin bool, payload string) []byte {
	s, d := src.Addr().As4(), dst.Addr().As4()
	ip := &layers.IPv4{Version: 4, TTL: 64, Protocol: layers.IPProtocolTCP, SrcIP: s[:], DstIP: d[:], Flags: layers.IPv4DontFragment}
	tcp := &layers.TCP{
		SrcPort: layers.TCPPort(src.Port()), DstPort: layers.TCPPort(dst.Port()),
		Seq: seq, Ack: ack, SYN: syn, FIN: fin, ACK: ack != 0, PSH: payload != "", Window: 64240,
	}
	if err := tcp.SetNetworkLayerForChecksum(ip); err != nil {
		t.Fatal(err)
	}
	buf := gopacket.NewSerializeBuffer()
	if err := gopacket.SerializeLayers(buf, gopacket.SerializeOptions{FixLengths: true, ComputeChecksums: true},
		ip, tcp, gopacket.Payload(payload)); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// httpExchange is a whole HTTP/1.1 exchange over TCP (RFC 9293 3.5
// handshake, RFC 9112 request and response, FIN each way): the packets and
// whether each goes uplink (from the UE).
func httpExchange(t testing.TB, ue, server netip.AddrPort) (pkts [][]byte, uplink []bool) {
	req := "GET /token HTTP/1.1\r\nHost: endorse.soracom.io\r\nUser-Agent: simgate\r\n\r\n"
	body := `{"token":"x"}`
	resp := "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 13\r\n\r\n" + body
	const c, s = 1000, 5000 // initial sequence numbers
	add := func(up bool, p []byte) {
		pkts = append(pkts, p)
		uplink = append(uplink, up)
	}
	add(true, tcpSegment(t, ue, server, c, 0, true, false, ""))
	add(false, tcpSegment(t, server, ue, s, c+1, true, false, ""))
	add(true, tcpSegment(t, ue, server, c+1, s+1, false, false, ""))
	add(true, tcpSegment(t, ue, server, c+1, s+1, false, false, req))
	add(false, tcpSegment(t, server, ue, s+1, c+1+uint32(len(req)), false, false, resp))
	add(true, tcpSegment(t, ue, server, c+1+uint32(len(req)), s+1+uint32(len(resp)), false, true, ""))
	add(false, tcpSegment(t, server, ue, s+1+uint32(len(resp)), c+2+uint32(len(req)), false, true, ""))
	add(true, tcpSegment(t, ue, server, c+2+uint32(len(req)), s+2+uint32(len(resp)), false, false, ""))
	return pkts, uplink
}

// openTemp opens a capture file in a temporary directory.
func openTemp(t *testing.T, cfg capture.Config) (*capture.Writer, string) {
	t.Helper()
	path := t.TempDir() + "/test.pcapng"
	w, err := capture.Open(context.Background(), path, cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = w.Close() })
	return w, path
}

func ap(s string) netip.AddrPort { return netip.MustParseAddrPort(s) }
