package gtpu

import (
	"bytes"
	"net/netip"
	"testing"

	"github.com/gopacket/gopacket"
	"github.com/gopacket/gopacket/layers"
	"github.com/wmnsk/go-gtp/gtpv1/ie"
	"github.com/wmnsk/go-gtp/gtpv1/message"
)

// agreeCase is a message built by go-gtp or by this package, with what it
// should decode to.
type agreeCase struct {
	name string
	b    []byte
	psc  *PDUSession // the PDU Session Container it carries
}

func agreeCases(t *testing.T) []agreeCase {
	t.Helper()
	payload := hx(t, "45000020 00010000 40110000 0a2d0001 0a2d0002 13881389 000c0000 70696e67")
	marshal := func(m message.Message) []byte {
		b, err := message.Marshal(m)
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	ext := func(typ uint8, content ...byte) *message.ExtensionHeader {
		return message.NewExtensionHeader(typ, content, ExtNone)
	}
	gogtpTPDU := func(teid uint32, exts ...*message.ExtensionHeader) []byte {
		// go-gtp v0.8.7 has no NewTPDUWithExtentionHeader: a TPDU on a
		// Header with extension headers is the same thing.
		h := message.NewHeaderWithExtensionHeaders(0x34, MsgGPDU, teid, 0, payload, exts...)
		return marshal(&message.TPDU{Header: h})
	}
	chained := func(teid uint32) []byte {
		udp := message.NewExtensionHeader(ExtUDPPort, []byte{0x08, 0x68}, ExtPDUSessionContainer)
		udp.Type = ExtUDPPort
		psc := ext(ExtPDUSessionContainer, 0x10, 0x05)
		psc.Type = ExtPDUSessionContainer
		h := message.NewHeaderWithExtensionHeaders(0x34, MsgGPDU, teid, 0, payload, udp, psc)
		return marshal(&message.TPDU{Header: h})
	}
	ours := func(teid uint32, psc *PDUSession) []byte {
		buf := make([]byte, 64+len(payload))
		copy(buf[64:], payload)
		b, err := PrependGPDU(buf, 64, teid, psc)
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	must := func(b []byte, err error) []byte {
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	errInd := message.NewErrorIndication(0, 9, ie.NewTEIDDataI(0xabcdef01), ie.NewGSNAddress("192.0.2.7"))
	return []agreeCase{
		{name: "go-gtp TPDU", b: marshal(message.NewTPDU(0x11, payload))},
		{name: "go-gtp TPDU with sequence", b: marshal(message.NewTPDUWithSequence(0x22, 0x1234, payload))},
		{name: "go-gtp UL container", b: gogtpTPDU(0x33, ext(ExtPDUSessionContainer, 0x10, 0x09)), psc: &PDUSession{Type: UL, QFI: 9}},
		{name: "go-gtp DL container RQI", b: gogtpTPDU(0x44, ext(ExtPDUSessionContainer, 0x00, 0x45)), psc: &PDUSession{Type: DL, QFI: 5, RQI: true}},
		{name: "go-gtp DL container PPP", b: gogtpTPDU(0x55, ext(ExtPDUSessionContainer, 0x00, 0x81, 0x40)), psc: &PDUSession{Type: DL, QFI: 1, PPP: true, PPI: 2}},
		{name: "go-gtp UDP Port then container", b: chained(0x66), psc: &PDUSession{Type: UL, QFI: 5}},
		{name: "go-gtp Echo Request", b: marshal(message.NewEchoRequest(7))},
		{name: "go-gtp Echo Response", b: marshal(message.NewEchoResponse(7, ie.NewRecovery(0)))},
		{name: "go-gtp Error Indication", b: marshal(errInd)},
		{name: "go-gtp End Marker", b: marshal(message.NewEndMarker())},
		{name: "ours no container", b: ours(0x77, nil)},
		{name: "ours UL", b: ours(0x88, &PDUSession{Type: UL, QFI: 63}), psc: &PDUSession{Type: UL, QFI: 63}},
		{name: "ours DL", b: ours(0x99, &PDUSession{Type: DL, QFI: 2, RQI: true}), psc: &PDUSession{Type: DL, QFI: 2, RQI: true}},
		{name: "ours DL PPP", b: ours(0xaa, &PDUSession{Type: DL, QFI: 3, PPP: true, PPI: 5}), psc: &PDUSession{Type: DL, QFI: 3, PPP: true, PPI: 5}},
		{name: "ours Error Indication", b: must(ErrorIndication(0xbb, netip.MustParseAddr("192.0.2.8"), 40000))},
		{name: "ours End Marker", b: must(EndMarker(0xcc, &PDUSession{Type: DL, QFI: 4})), psc: &PDUSession{Type: DL, QFI: 4}},
		{name: "ours Echo Response", b: must(EchoResponse(0xffff))},
		{name: "ours Supported Extension Headers Notification", b: must(SupportedExtensionHeadersNotification(1))},
	}
}

// TestAgreesWithGoGTP: go-gtp's parser (message.Parse), gopacket's GTPv1U
// layer and Decode read the same fields from messages both sides build.
func TestAgreesWithGoGTP(t *testing.T) {
	for _, tc := range agreeCases(t) {
		t.Run(tc.name, func(t *testing.T) {
			var h Header
			payload, err := h.Decode(tc.b)
			if err != nil {
				t.Fatalf("Decode: %v", err)
			}
			m, err := message.Parse(tc.b)
			if err != nil {
				t.Fatalf("go-gtp: %v", err)
			}
			if m.MessageType() != h.Type || m.TEID() != h.TEID {
				t.Errorf("type/TEID: go-gtp %d/%#x, ours %d/%#x", m.MessageType(), m.TEID(), h.Type, h.TEID)
			}
			if h.HasSeq() && m.Sequence() != h.Seq {
				t.Errorf("sequence: go-gtp %d, ours %d", m.Sequence(), h.Seq)
			}
			if h.HasPDUSession != (tc.psc != nil) || (tc.psc != nil && h.PDUSession != *tc.psc) {
				t.Errorf("PDU session: ours %v %+v, want %+v", h.HasPDUSession, h.PDUSession, tc.psc)
			}
			var gh *message.Header
			switch m := m.(type) {
			case *message.TPDU:
				gh = m.Header
				if !bytes.Equal(m.Decapsulate(), payload) {
					t.Errorf("T-PDU: go-gtp %x, ours %x", m.Decapsulate(), payload)
				}
			case *message.ErrorIndication:
				gh = m.Header
				teid, peer, err := ParseErrorIndication(payload)
				if err != nil {
					t.Fatal(err)
				}
				if m.TEIDDataI.MustTEID() != teid || m.GTPUPeerAddress.MustGSNAddress() != peer.String() {
					t.Errorf("Error Indication: go-gtp %#x %s, ours %#x %s", m.TEIDDataI.MustTEID(), m.GTPUPeerAddress.MustGSNAddress(), teid, peer)
				}
			case *message.EchoResponse:
				gh = m.Header
				ies, err := ParseIEs(payload)
				if err != nil || !ies.HasRecovery || ies.Recovery != m.Recovery.MustRecovery() {
					t.Errorf("Recovery: go-gtp %d, ours %+v %v", m.Recovery.MustRecovery(), ies, err)
				}
			case *message.SupportedExtensionHeaderNotification:
				gh = m.Header
				ies, err := ParseIEs(payload)
				if err != nil || !bytes.Equal(ies.ExtHeaderTypes, m.ExtensionHeaderTypeList.MustExtensionHeaderTypeList()) {
					t.Errorf("type list: go-gtp %x, ours %+v %v", m.ExtensionHeaderTypeList.MustExtensionHeaderTypeList(), ies, err)
				}
			case *message.EchoRequest:
				gh = m.Header
			case *message.EndMarker:
				gh = m.Header
			default:
				t.Fatalf("go-gtp parsed %T", m)
			}
			// The extension headers: go-gtp's chain, read by our container
			// decoder, gives the same container.
			for _, e := range gh.ExtensionHeaders {
				if e.Type != ExtPDUSessionContainer {
					continue
				}
				var s PDUSession
				if err := s.decode(e.Content); err != nil || tc.psc == nil || s != *tc.psc {
					t.Errorf("go-gtp's container %x reads as %+v (%v), want %+v", e.Content, s, err, tc.psc)
				}
			}
			// gopacket's GTPv1U layer, a third reading.
			var g layers.GTPv1U
			if err := g.DecodeFromBytes(tc.b, gopacket.NilDecodeFeedback); err != nil {
				t.Fatalf("gopacket: %v", err)
			}
			if g.MessageType != h.Type || g.TEID != h.TEID || !bytes.Equal(g.LayerPayload(), payload) {
				t.Errorf("gopacket: type %d TEID %#x payload %x; ours %d %#x %x", g.MessageType, g.TEID, g.LayerPayload(), h.Type, h.TEID, payload)
			}
			found := false
			for _, e := range g.GTPExtensionHeaders {
				if e.Type == ExtPDUSessionContainer {
					var s PDUSession
					found = s.decode(e.Content) == nil && tc.psc != nil && s == *tc.psc
				}
			}
			if found != (tc.psc != nil) {
				t.Errorf("gopacket's extension headers %+v, want container %+v", g.GTPExtensionHeaders, tc.psc)
			}
		})
	}
}
