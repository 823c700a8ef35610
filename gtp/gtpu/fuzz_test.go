package gtpu

import (
	"bytes"
	"net/netip"
	"testing"

	"github.com/gopacket/gopacket"
	"github.com/gopacket/gopacket/layers"
	"github.com/wmnsk/go-gtp/gtpv1/message"
)

func decodeSeeds(f *testing.F) {
	for _, s := range []string{
		capturedSeq, capturedEH,
		"30ff0004 deadbeef 45000014",
		"34ff000c 00000001 00000085 01100900 deadbeef",
		"34ff0010 00000007 00000085 02008160 00000000 deadbeef",
		"34ff0014 00000007 00000085 03080501 02030405 06070800 deadbeef",
		"34ff0010 00000001 00000040 01086885 01100900 deadbeef",
		"34ff0010 00000001 00000020 01aa0085 01100900 deadbeef",
		"33ff0008 00000001 123456ff deadbeef",
		"34ff0008 00000001 00000085 01100985",
		"361a0014 00000000 00000040 01086800 1011223344 8500040a000001",
		"321f0008 00000000 00030000 8d024085",
	} {
		f.Add(hx(f, s))
	}
}

// FuzzDecode: Decode never panics, returns an in-place payload that ends
// the message, and, for what it accepts, agrees with go-gtp's and
// gopacket's parsers.
func FuzzDecode(f *testing.F) {
	decodeSeeds(f)
	f.Fuzz(func(t *testing.T, b []byte) {
		var h Header
		payload, err := h.Decode(b)
		if err != nil {
			if _, ok := err.(Error); !ok {
				t.Fatalf("error %T %v is not an Error", err, err)
			}
			return
		}
		if len(b) != HeaderLen+int(h.Length) || len(payload) > int(h.Length) {
			t.Fatalf("length %d, datagram %d, payload %d", h.Length, len(b), len(payload))
		}
		if len(payload) > 0 && &payload[len(payload)-1] != &b[len(b)-1] {
			t.Fatal("payload does not end the message")
		}
		// go-gtp parses an extension header after E=1 even when the next
		// type is 0 (TS 29.281 5.2.1: none follows), so skip those.
		if h.Flags&FlagE != 0 && b[11] == ExtNone {
			return
		}
		gh, err := message.ParseHeader(b)
		if err != nil {
			t.Fatalf("go-gtp rejects what Decode accepts (%+v): %v", h, err)
		}
		if gh.Type != h.Type || gh.TEID != h.TEID || !bytes.Equal(gh.Payload, payload) {
			t.Fatalf("go-gtp reads type %d TEID %#x payload %x; Decode %d %#x %x", gh.Type, gh.TEID, gh.Payload, h.Type, h.TEID, payload)
		}
		var g layers.GTPv1U
		if err := g.DecodeFromBytes(b, gopacket.NilDecodeFeedback); err != nil {
			t.Fatalf("gopacket rejects what Decode accepts: %v", err)
		}
		if g.TEID != h.TEID || !bytes.Equal(g.LayerPayload(), payload) {
			t.Fatalf("gopacket reads TEID %#x payload %x; Decode %#x %x", g.TEID, g.LayerPayload(), h.TEID, payload)
		}
	})
}

// FuzzParseIEs: the IE walker never panics.
func FuzzParseIEs(f *testing.F) {
	for _, s := range []string{"", "0e00", "1011223344 8500040a000001", "8d024085", "ff0003000102", "850010 00000000000000000000ffff0a000002"} {
		f.Add(hx(f, s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		ies, err := ParseIEs(b)
		if err != nil {
			return
		}
		if ies.PeerAddress.IsValid() && ies.PeerAddress.Is4In6() {
			t.Fatalf("peer address %s not unmapped", ies.PeerAddress)
		}
	})
}

// FuzzPrependGPDU: what PrependGPDU builds decodes to what it was given.
func FuzzPrependGPDU(f *testing.F) {
	f.Add(uint32(1), uint8(1), uint8(9), false, false, uint8(0), []byte{0x45, 0})
	f.Add(uint32(0xffffffff), uint8(0), uint8(63), true, true, uint8(7), []byte{})
	f.Fuzz(func(t *testing.T, teid uint32, typ, qfi uint8, rqi, ppp bool, ppi uint8, payload []byte) {
		psc := &PDUSession{Type: PDUType(typ), QFI: qfi, RQI: rqi, PPP: ppp, PPI: ppi}
		if typ == 0xff {
			psc = nil
		}
		buf := make([]byte, 32+len(payload))
		copy(buf[32:], payload)
		b, err := PrependGPDU(buf, 32, teid, psc)
		if err != nil {
			return
		}
		var h Header
		got, err := h.Decode(b)
		if err != nil {
			t.Fatalf("%x does not decode: %v", b, err)
		}
		if h.TEID != teid || h.Type != MsgGPDU || !bytes.Equal(got, payload) || h.HasPDUSession != (psc != nil) ||
			(psc != nil && h.PDUSession != *psc) {
			t.Fatalf("%+v payload %x from %+v", h, got, psc)
		}
	})
}

// FuzzProcess: whatever arrives and whatever the handler answers, the
// per-datagram path of Serve never panics and queues only what decodes.
func FuzzProcess(f *testing.F) {
	decodeSeeds(f)
	f.Add(hx(f, "32010004 00000000 002a0000"))
	f.Add(hx(f, "34ff000c 00000001 00000081 01000000 deadbeef"))
	c := listen(f, Config{ErrorIndicationRate: 1e9, ErrorIndicationBurst: 1 << 30})
	w := newWriter(4)
	f.Fuzz(func(t *testing.T, b []byte) {
		if len(b) == 0 {
			return
		}
		act := Action(b[0] % 5) // includes an Action the handler should not return
		p := Packet{Data: b[1:], Addr: netip.MustParseAddrPort("127.0.0.1:2152")}
		p.Payload, p.Err = p.Header.Decode(p.Data)
		w.n = 0
		c.process(&p, func(*Packet) Action { return act }, &w)
		for i := range w.n {
			var h Header
			if _, err := h.Decode(w.iov[i]); err != nil {
				t.Fatalf("queued %x does not decode: %v", w.iov[i], err)
			}
		}
	})
}
