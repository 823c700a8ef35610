package upf

import (
	"encoding/binary"
	"log/slog"
	"net/netip"
	"testing"
	"time"

	"github.com/simgate/simgate/gtp/gtpu"
	"github.com/simgate/simgate/gtp/pfcp"
)

// recordingNetwork keeps what the data path injected.
type recordingNetwork struct{ got [][]byte }

func (r *recordingNetwork) Inject(pkt []byte) error {
	r.got = append(r.got, append([]byte(nil), pkt...))
	return nil
}
func (r *recordingNetwork) SetDownlink(func([]byte)) {}

// FuzzUplink feeds arbitrary N3 datagrams through the GTP-U decoder and the
// data path's uplink handler. Whatever arrives, what reaches the network is
// an IPv4 packet from the session's own UE address, carried in a G-PDU for
// the session's TEID with an UL PDU Session Container of its QFI.
func FuzzUplink(f *testing.F) {
	ue := netip.MustParseAddr("10.45.0.7")
	const teid, qfi = 0x1001, 9
	tab := NewTable()
	tab.put(&Session{UPSEID: 1, UEAddr: ue, QFI: qfi, Uplink: pfcp.FTEID{TEID: teid, Addr: n3IP}, teids: []uint32{teid}}, nil)
	net := &recordingNetwork{}
	d := NewDataPath(&UPF{table: tab, log: slog.New(slog.DiscardHandler)}, nil, net)

	seed := func(teid uint32, psc *gtpu.PDUSession, inner []byte) {
		hl := gtpu.GPDUHeaderLen(psc)
		b, err := gtpu.PrependGPDU(append(make([]byte, hl), inner...), hl, teid, psc)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	ip := make([]byte, 28)
	ip[0], ip[3], ip[9] = 0x45, 28, 17
	copy(ip[12:16], ue.AsSlice())
	copy(ip[16:20], []byte{100, 127, 0, 53})
	seed(teid, &gtpu.PDUSession{Type: gtpu.UL, QFI: qfi}, ip)
	seed(teid, nil, ip)
	seed(teid, &gtpu.PDUSession{Type: gtpu.UL, QFI: 1}, ip)
	seed(0x2002, &gtpu.PDUSession{Type: gtpu.UL, QFI: qfi}, ip)
	spoof := append([]byte(nil), ip...)
	spoof[15]++
	seed(teid, &gtpu.PDUSession{Type: gtpu.UL, QFI: qfi}, spoof)

	f.Fuzz(func(t *testing.T, b []byte) {
		var p gtpu.Packet
		var err error
		if p.Payload, err = p.Header.Decode(b); err != nil {
			return
		}
		net.got = net.got[:0]
		act := d.uplink(&p)
		if len(net.got) == 0 {
			return
		}
		pkt := net.got[0]
		switch {
		case act != gtpu.Consume, len(net.got) != 1:
			t.Fatalf("injected %d packets, action %d", len(net.got), act)
		case p.Header.Type != gtpu.MsgGPDU || p.Header.TEID != teid:
			t.Fatalf("injected from message type %d TEID %#x", p.Header.Type, p.Header.TEID)
		case !p.Header.HasPDUSession || p.Header.PDUSession.Type != gtpu.UL || p.Header.PDUSession.QFI != qfi:
			t.Fatalf("injected with PDU Session Container %+v", p.Header.PDUSession)
		case len(pkt) < 20 || pkt[0]>>4 != 4 || netip.AddrFrom4([4]byte(pkt[12:16])) != ue:
			t.Fatalf("injected a packet not from %s: % x", ue, pkt)
		case int(binary.BigEndian.Uint16(pkt[2:4])) > len(pkt):
			t.Fatalf("injected a truncated packet: % x", pkt)
		}
	})
}

// TestDownlinkBufferBounds: packets held for a session without a gNB
// F-TEID are bounded per session, dropped when the session goes, and
// forgotten once stale.
func TestDownlinkBufferBounds(t *testing.T) {
	ue := netip.MustParseAddr("10.45.1.1")
	s := &Session{UPSEID: 1, UEAddr: ue, DownlinkAction: pfcp.ActionBuffer, teids: []uint32{1}}
	tab := NewTable()
	tab.put(s, nil)
	d := NewDataPath(&UPF{table: tab, log: slog.New(slog.DiscardHandler)}, nil, &recordingNetwork{})
	pkt := make([]byte, 40)
	pkt[0] = 0x45
	copy(pkt[16:20], ue.AsSlice())
	for range bufferPerSession + 5 {
		d.downlink(pkt)
	}
	st := d.Stats()
	if st.Buffered != bufferPerSession || st.Drops[DropNoTunnel] != 5 || d.heldBytes != bufferPerSession*len(pkt) {
		t.Fatalf("buffered %d, dropped %d, %d bytes held: want %d, 5, %d", st.Buffered, st.Drops[DropNoTunnel], d.heldBytes, bufferPerSession, bufferPerSession*len(pkt))
	}
	// The session goes: its held packets are dropped and counted.
	d.sessionChanged(s, nil)
	if st := d.Stats(); st.Drops[DropNoTunnel] != 5+bufferPerSession || len(d.held) != 0 || d.heldBytes != 0 {
		t.Fatalf("after removal: dropped %d, %d sessions and %d bytes held", st.Drops[DropNoTunnel], len(d.held), d.heldBytes)
	}
	// A stale buffer is replaced by a fresh one.
	d.downlink(pkt)
	d.held[ue].since = time.Now().Add(-2 * bufferTimeout)
	d.downlink(pkt)
	if h := d.held[ue]; h == nil || len(h.pkts) != 1 || d.heldBytes != len(pkt) {
		t.Fatalf("stale buffer kept: %+v, %d bytes", h, d.heldBytes)
	}
	// A drop FAR drops instead of buffering.
	drop := *s
	drop.DownlinkAction = pfcp.ActionDrop
	tab.put(&drop, s)
	before := d.Stats().Drops[DropFAR]
	d.downlink(pkt)
	if d.Stats().Drops[DropFAR] != before+1 {
		t.Fatal("downlink not dropped by the drop FAR")
	}
	// Downlink to an address no session owns.
	other := append([]byte(nil), pkt...)
	other[19]++
	d.downlink(other)
	if d.Stats().Drops[DropNoSession] != 1 {
		t.Fatal("downlink to an unknown address not counted")
	}
}
