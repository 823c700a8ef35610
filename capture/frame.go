package capture

import (
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"hash/fnv"
	"net/netip"

	"github.com/gopacket/gopacket"
	"github.com/gopacket/gopacket/layers"
)

// Framing limits.
const (
	// maxUDPPayload4/6: an IPv4 total length or an IPv6 payload length is
	// 16 bits (RFC 791, RFC 8200; no jumbograms).
	maxUDPPayload4 = 0xffff - 20 - 8
	maxUDPPayload6 = 0xffff - 8
	// sctpPathMTU is the path MTU kernel SCTP messages are fragmented for
	// (RFC 9260 6.9), that of Ethernet.
	sctpPathMTU = 1500
	// maxAssociations bounds the kernel SCTP associations whose TSNs are
	// remembered; beyond it one is forgotten (and restarts its numbering).
	maxAssociations = 4096
)

// SCTP numbers (RFC 9260 3).
const (
	sctpCommonHeaderLen = 12
	sctpDataHeaderLen   = 16 // chunk header, TSN, stream, SSN, PPID
)

var (
	errNoAddress     = errors.New("invalid address")
	errTooLarge      = errors.New("too large for one IP packet")
	errEmptyMessage  = errors.New("empty SCTP user message") // RFC 9260 3.3.1
	errNotIP         = errors.New("not an IPv4 or IPv6 packet")
	castagnoli       = crc32.MakeTable(crc32.Castagnoli)
	serializeOptions = gopacket.SerializeOptions{FixLengths: true, ComputeChecksums: true}
)

// framer builds the packets of the records; only the writer goroutine uses
// it.
type framer struct {
	buf    gopacket.SerializeBuffer
	assocs map[assocKey]*assoc
	ip4    layers.IPv4
	ip6    layers.IPv6
	udp    layers.UDP
	sctp   layers.SCTP
	data   layers.SCTPData
	body   gopacket.Payload
	// Address storage the IP layers slice, so that framing does not
	// allocate them.
	src, dst [16]byte
}

func newFramer() *framer {
	return &framer{buf: gopacket.NewSerializeBuffer(), assocs: make(map[assocKey]*assoc)}
}

// endpoints normalises the addresses of a packet from src to dst: both
// IPv4, or both IPv6 (an IPv4 address beside an IPv6 one is written
// IPv4-mapped).
func endpoints(src, dst netip.AddrPort) (netip.AddrPort, netip.AddrPort, error) {
	s, d := src.Addr().Unmap(), dst.Addr().Unmap()
	if !s.IsValid() || !d.IsValid() {
		return src, dst, fmt.Errorf("%w: %v -> %v", errNoAddress, src, dst)
	}
	if s.Is4() != d.Is4() {
		s, d = netip.AddrFrom16(s.As16()), netip.AddrFrom16(d.As16())
	}
	// Zones have no place in a packet header.
	s, d = s.WithZone(""), d.WithZone("")
	return netip.AddrPortFrom(s, src.Port()), netip.AddrPortFrom(d, dst.Port()), nil
}

// ipLayer is *layers.IPv4 or *layers.IPv6.
type ipLayer interface {
	gopacket.NetworkLayer
	gopacket.SerializableLayer
}

// network returns the IP header from src to dst carrying proto.
func (f *framer) network(i *Interface, src, dst netip.Addr, proto layers.IPProtocol) ipLayer {
	if src.Is4() {
		i.ipID++
		s, d := src.As4(), dst.As4()
		copy(f.src[:], s[:])
		copy(f.dst[:], d[:])
		f.ip4 = layers.IPv4{
			Version: 4, IHL: 5, TTL: 64, Id: i.ipID, Flags: layers.IPv4DontFragment,
			Protocol: proto, SrcIP: f.src[:4], DstIP: f.dst[:4],
		}
		return &f.ip4
	}
	f.src, f.dst = src.As16(), dst.As16()
	f.ip6 = layers.IPv6{Version: 6, HopLimit: 64, NextHeader: proto, SrcIP: f.src[:], DstIP: f.dst[:]}
	return &f.ip6
}

// datagram frames a UDP datagram (RFC 768) as one IP packet.
func (f *framer) datagram(i *Interface, out bool, local, remote netip.AddrPort, payload []byte, write func([]byte) error) error {
	src, dst := remote, local
	if out {
		src, dst = local, remote
	}
	src, dst, err := endpoints(src, dst)
	if err != nil {
		return fmt.Errorf("datagram: %w", err)
	}
	limit := maxUDPPayload6
	if src.Addr().Is4() {
		limit = maxUDPPayload4
	}
	if len(payload) > limit {
		return fmt.Errorf("datagram of %d octets: %w", len(payload), errTooLarge)
	}
	ip := f.network(i, src.Addr(), dst.Addr(), layers.IPProtocolUDP)
	f.udp = layers.UDP{SrcPort: layers.UDPPort(src.Port()), DstPort: layers.UDPPort(dst.Port())}
	if err := f.udp.SetNetworkLayerForChecksum(ip); err != nil {
		return fmt.Errorf("datagram: %w", err)
	}
	f.body = payload
	err = gopacket.SerializeLayers(f.buf, serializeOptions, ip, &f.udp, &f.body)
	f.body = nil
	if err != nil {
		return fmt.Errorf("datagram: %w", err)
	}
	return write(f.buf.Bytes())
}

// packet writes a raw IP packet as it is, once it looks like one.
func (f *framer) packet(pkt []byte, write func([]byte) error) error {
	switch {
	case len(pkt) >= 20 && pkt[0]>>4 == 4:
	case len(pkt) >= 40 && pkt[0]>>4 == 6:
	default:
		return fmt.Errorf("packet of %d octets: %w", len(pkt), errNotIP)
	}
	return write(pkt)
}

// assocKey identifies a kernel SCTP association on an interface by its
// primary addresses.
type assocKey struct {
	iface         *Interface
	local, remote netip.AddrPort
}

// assoc is what a stack would hold per association to number DATA chunks
// (RFC 9260 3.3.1): per direction (0 in, 1 out) the verification tag the
// receiver expects, the next TSN and the next SSN of each stream.
type assoc struct {
	tag [2]uint32
	tsn [2]uint32
	ssn [2]map[uint16]uint16
}

// newAssoc derives the verification tags and initial TSNs from the
// addresses, so that a capture is reproducible. RFC 9260 5.3.1: tags are
// non-zero; RFC 9260 5.1 lets the initial TSN be the initiate tag.
func newAssoc(local, remote netip.AddrPort) *assoc {
	tag := func(side string, a, b netip.AddrPort) uint32 {
		h := fnv.New32a()
		h.Write([]byte(side))
		ab, _ := a.MarshalBinary()
		bb, _ := b.MarshalBinary()
		h.Write(ab)
		h.Write(bb)
		if t := h.Sum32(); t != 0 {
			return t
		}
		return 1
	}
	// Inbound packets carry the local endpoint's tag, outbound ones the
	// remote's (RFC 9260 8.5); each sender's TSNs start at its own tag.
	localTag, remoteTag := tag("local", local, remote), tag("remote", local, remote)
	return &assoc{
		tag: [2]uint32{localTag, remoteTag},
		tsn: [2]uint32{remoteTag, localTag},
		ssn: [2]map[uint16]uint16{make(map[uint16]uint16), make(map[uint16]uint16)},
	}
}

// message frames an SCTP user message as IP/SCTP packets, one DATA chunk
// each: B and E flags on the first and last fragment, one TSN per chunk,
// one SSN per message (RFC 9260 6.9).
func (f *framer) message(i *Interface, out bool, local, remote netip.AddrPort, stream uint16, ppid uint32, payload []byte, write func([]byte) error) error {
	if len(payload) == 0 {
		return fmt.Errorf("message: %w", errEmptyMessage)
	}
	l, r, err := endpoints(local, remote)
	if err != nil {
		return fmt.Errorf("message: %w", err)
	}
	key := assocKey{iface: i, local: l, remote: r}
	a := f.assocs[key]
	if a == nil {
		if len(f.assocs) >= maxAssociations {
			for k := range f.assocs {
				delete(f.assocs, k)
				break
			}
		}
		a = newAssoc(l, r)
		f.assocs[key] = a
	}
	dir, src, dst := 0, r, l
	if out {
		dir, src, dst = 1, l, r
	}
	ssn := a.ssn[dir][stream]
	a.ssn[dir][stream] = ssn + 1

	ipLen := 40
	if src.Addr().Is4() {
		ipLen = 20
	}
	room := sctpPathMTU - ipLen - sctpCommonHeaderLen - sctpDataHeaderLen
	for off := 0; off < len(payload); off += room {
		frag := payload[off:min(off+room, len(payload))]
		ip := f.network(i, src.Addr(), dst.Addr(), layers.IPProtocolSCTP)
		f.sctp = layers.SCTP{SrcPort: layers.SCTPPort(src.Port()), DstPort: layers.SCTPPort(dst.Port()), VerificationTag: a.tag[dir]}
		f.data = layers.SCTPData{
			SCTPChunk:       layers.SCTPChunk{Type: layers.SCTPChunkTypeData, Length: uint16(sctpDataHeaderLen + len(frag))},
			BeginFragment:   off == 0,
			EndFragment:     off+len(frag) == len(payload),
			TSN:             a.tsn[dir],
			StreamId:        stream,
			StreamSequence:  ssn,
			PayloadProtocol: layers.SCTPPayloadProtocol(ppid),
			Payload:         frag,
		}
		a.tsn[dir]++
		if err := gopacket.SerializeLayers(f.buf, serializeOptions, ip, &f.sctp, &f.data); err != nil {
			return fmt.Errorf("message: %w", err)
		}
		pkt := f.buf.Bytes()
		setSCTPChecksum(pkt[ipLen:])
		if err := write(pkt); err != nil {
			return err
		}
	}
	return nil
}

// setSCTPChecksum sets the CRC32c of an SCTP packet, computed with the
// checksum field zero (RFC 9260 6.8). gopacket's SCTP layer computes it
// over whatever the reused buffer held in the field, so it is redone here.
func setSCTPChecksum(pkt []byte) {
	clear(pkt[8:12])
	putCRC32c(pkt[8:12], pkt)
}

// putCRC32c puts the CRC32c of b into dst in SCTP's wire order: the
// reflected CRC least significant byte first (RFC 9260 Appendix A; the
// byte order of the RFC 3720 B.4 examples).
func putCRC32c(dst, b []byte) {
	binary.LittleEndian.PutUint32(dst, crc32.Checksum(b, castagnoli))
}
