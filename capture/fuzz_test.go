package capture_test

import (
	"bytes"
	"context"
	"net/netip"
	"testing"

	"github.com/gopacket/gopacket"
	"github.com/gopacket/gopacket/layers"

	"github.com/simgate/simgate/capture"
)

// FuzzTaps feeds arbitrary payloads and addresses to every tap: nothing
// panics, the file stays readable, and whatever is written carries the
// payload unchanged (a datagram's UDP payload, a message's DATA chunks in
// order, a packet's bytes); what is not written is counted as an error.
func FuzzTaps(f *testing.F) {
	f.Add(uint8(0), true, []byte{127, 0, 0, 1}, []byte{127, 0, 0, 2}, uint16(9899), uint16(40000), []byte("sctp"))
	f.Add(uint8(1), false, bytes.Repeat([]byte{0xfd}, 16), bytes.Repeat([]byte{0xfe}, 16), uint16(38412), uint16(1), bytes.Repeat([]byte{7}, 3000))
	f.Add(uint8(2), true, []byte{}, []byte{}, uint16(0), uint16(0), []byte{0x45, 0, 0, 20, 0, 0, 0, 0, 64, 17, 0, 0, 10, 0, 0, 1, 10, 0, 0, 2})
	f.Add(uint8(1), true, []byte{10, 0, 0, 1}, bytes.Repeat([]byte{0x20}, 16), uint16(1), uint16(2), []byte{})
	f.Fuzz(func(t *testing.T, op uint8, out bool, la, ra []byte, lp, rp uint16, payload []byte) {
		addr := func(b []byte, port uint16) netip.AddrPort {
			a, _ := netip.AddrFromSlice(b) // invalid unless 4 or 16 octets
			return netip.AddrPortFrom(a, port)
		}
		local, remote := addr(la, lp), addr(ra, rp)
		var buf bytes.Buffer
		w := capture.New(context.Background(), &buf, capture.Config{})
		i := w.Interface("fuzz", capture.KindN2)
		switch op % 3 {
		case 0:
			i.Datagram(out, local, remote, payload)
		case 1:
			i.Message(out, local, remote, 3, 60, payload)
		case 2:
			i.Packet(out, payload)
		}
		if err := w.Close(); err != nil {
			t.Fatal(err)
		}
		s := i.Stats()
		rb := readFrom(t, bytes.NewReader(buf.Bytes()))
		if uint64(len(rb.packets)) != s.Packets || s.Dropped != 0 {
			t.Fatalf("%d packets read, stats %+v", len(rb.packets), s)
		}
		if s.Packets == 0 {
			if s.Errors != 1 {
				t.Fatalf("nothing written and no error: %+v", s)
			}
			return
		}
		if op%3 == 2 {
			if !bytes.Equal(rb.packets[0].data, payload) {
				t.Fatal("packet changed")
			}
			return
		}
		var got []byte
		for _, p := range rb.packets {
			checksumsOK(t, p.data)
			first := layers.LayerTypeIPv4
			if p.data[0]>>4 == 6 {
				first = layers.LayerTypeIPv6
			}
			// Decode no further than the transport layer: the payload is
			// arbitrary.
			pkt := gopacket.NewPacket(p.data, first, gopacket.DecodeOptions{DecodeStreamsAsDatagrams: false, Lazy: false, NoCopy: true})
			if op%3 == 0 {
				udp, _ := pkt.Layer(layers.LayerTypeUDP).(*layers.UDP)
				if udp == nil {
					t.Fatalf("no UDP layer: %v", pkt)
				}
				got = append(got, p.data[len(p.data)-int(udp.Length)+8:]...)
				continue
			}
			d, _ := pkt.Layer(layers.LayerTypeSCTPData).(*layers.SCTPData)
			if d == nil {
				t.Fatalf("no DATA chunk: %v", pkt)
			}
			got = append(got, d.Payload...)
		}
		if !bytes.Equal(got, payload) {
			t.Fatalf("payload %d octets written as %d", len(payload), len(got))
		}
	})
}
