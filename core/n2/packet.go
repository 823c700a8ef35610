package n2

import (
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
)

// The little SCTP wire knowledge the UDP mode needs around the userspace
// stack: the common header, its CRC32c, and the stream counts of INIT and
// INIT ACK. Everything else is pion/sctp's.

const (
	commonHeaderLen = 12 // RFC 9260 3.1
	chunkHeaderLen  = 4  // RFC 9260 3.2
	initFixedLen    = 16 // RFC 9260 3.3.2: tag, a_rwnd, OS, MIS, initial TSN

	chunkInit    = 1 // RFC 9260 3.2
	chunkInitAck = 2
)

var (
	errShort        = errors.New("shorter than the SCTP common header")
	errChecksum     = errors.New("bad CRC32c")
	errNotInit      = errors.New("first chunk is not INIT")
	errInitBundled  = errors.New("INIT bundled with other chunks")
	errInitLength   = errors.New("bad INIT chunk length")
	errInitVTag     = errors.New("INIT with non-zero verification tag")
	errInitTag      = errors.New("INIT with zero initiate tag")
	errInitStreams  = errors.New("INIT with zero streams")
	errPortZero     = errors.New("port 0")
	errWrongPort    = errors.New("wrong SCTP port")
	castagnoliTable = crc32.MakeTable(crc32.Castagnoli)
)

// checksum is the CRC32c of an SCTP packet with its checksum field taken as
// zero (RFC 9260 6.8, Appendix A). pkt must hold a common header.
func checksum(pkt []byte) uint32 {
	var zero [4]byte
	c := crc32.Update(0, castagnoliTable, pkt[:8])
	c = crc32.Update(c, castagnoliTable, zero[:])
	return crc32.Update(c, castagnoliTable, pkt[commonHeaderLen:])
}

// RFC 9260 Appendix A: the CRC32c goes into the header least significant
// byte first (the reflected CRC in wire order), as pion and the kernel do.
func checksumOK(pkt []byte) bool {
	return len(pkt) >= commonHeaderLen && binary.LittleEndian.Uint32(pkt[8:]) == checksum(pkt)
}

func setChecksum(pkt []byte) {
	binary.LittleEndian.PutUint32(pkt[8:], checksum(pkt))
}

// ports returns the source and destination ports of the common header.
func ports(pkt []byte) (src, dst uint16, err error) {
	if len(pkt) < commonHeaderLen {
		return 0, 0, errShort
	}
	return binary.BigEndian.Uint16(pkt), binary.BigEndian.Uint16(pkt[2:]), nil
}

// setPorts rewrites the ports of pkt and recomputes its checksum.
func setPorts(pkt []byte, src, dst uint16) {
	binary.BigEndian.PutUint16(pkt, src)
	binary.BigEndian.PutUint16(pkt[2:], dst)
	setChecksum(pkt)
}

// initInfo is what an INIT or INIT ACK says about streams (RFC 9260 3.3.2).
type initInfo struct {
	ack        bool   // INIT ACK
	tag        uint32 // initiate tag
	outStreams uint16 // OS: streams the sender will send on
	inStreams  uint16 // MIS: streams the sender accepts
}

// peekInit reads the stream counts if the first chunk of pkt is an INIT or
// an INIT ACK (both have the same fixed part). ok is false for any other
// packet, or one too short to hold the fixed part.
func peekInit(pkt []byte) (info initInfo, ok bool) {
	if len(pkt) < commonHeaderLen+chunkHeaderLen+initFixedLen {
		return initInfo{}, false
	}
	c := pkt[commonHeaderLen:]
	if c[0] != chunkInit && c[0] != chunkInitAck {
		return initInfo{}, false
	}
	if l := int(binary.BigEndian.Uint16(c[2:])); l < chunkHeaderLen+initFixedLen || l > len(c) {
		return initInfo{}, false
	}
	f := c[chunkHeaderLen:]
	return initInfo{
		ack:        c[0] == chunkInitAck,
		tag:        binary.BigEndian.Uint32(f),
		outStreams: binary.BigEndian.Uint16(f[8:]),
		inStreams:  binary.BigEndian.Uint16(f[10:]),
	}, true
}

// checkInit validates a packet that would open an association on a UDP
// listener: a well-formed INIT alone in its packet, to our SCTP port, with
// a good checksum (RFC 9260 3.3.2, 6.8, 8.5.1). Anything else from an
// unknown peer is out of the blue and dropped.
func checkInit(pkt []byte, port uint16) (initInfo, error) {
	src, dst, err := ports(pkt)
	if err != nil {
		return initInfo{}, err
	}
	if !checksumOK(pkt) {
		return initInfo{}, errChecksum
	}
	if src == 0 || dst == 0 {
		return initInfo{}, errPortZero
	}
	if dst != port {
		return initInfo{}, fmt.Errorf("%w %d (we serve %d)", errWrongPort, dst, port)
	}
	if len(pkt) < commonHeaderLen+chunkHeaderLen || pkt[commonHeaderLen] != chunkInit {
		return initInfo{}, errNotInit
	}
	if binary.BigEndian.Uint32(pkt[4:]) != 0 {
		return initInfo{}, errInitVTag
	}
	l := int(binary.BigEndian.Uint16(pkt[commonHeaderLen+2:]))
	if l < chunkHeaderLen+initFixedLen || commonHeaderLen+l > len(pkt) {
		return initInfo{}, errInitLength
	}
	// Chunks are padded to 4 bytes (RFC 9260 3.2); nothing may follow INIT.
	if rest := len(pkt) - commonHeaderLen - l; rest < 0 || rest > 3 {
		return initInfo{}, errInitBundled
	}
	info, ok := peekInit(pkt)
	if !ok {
		return initInfo{}, errInitLength
	}
	if info.tag == 0 {
		return initInfo{}, errInitTag
	}
	if info.outStreams == 0 || info.inStreams == 0 {
		return initInfo{}, errInitStreams
	}
	return info, nil
}

const (
	chunkHeartbeat     = 4 // RFC 9260 3.3.5
	chunkHeartbeatAck  = 5 // RFC 9260 3.3.6
	paramHeartbeatInfo = 1
	heartbeatFixedLen  = chunkHeaderLen + 4 + 8 // chunk header, Heartbeat Info TLV with 8 bytes
)

// fixHeartbeats repairs the HEARTBEAT chunks pion/sctp v1.12.1 sends. Its
// chunkHeartbeat defines Marshal rather than marshal, so the chunk header's
// marshal runs instead and the chunk goes out bare (length 4), without the
// mandatory Heartbeat Info parameter (RFC 9260 3.3.5); pion drops such a
// chunk and the Linux kernel aborts the association over it (chunk length
// violation). The repair inserts what pion meant to send: Heartbeat Info
// holding the send time as 8 big-endian bytes of Unix nanoseconds, which
// pion reads back from the HEARTBEAT ACK to measure the RTT. It returns
// pkt itself when there is nothing to repair, else a new packet with a
// new checksum.
func fixHeartbeats(pkt []byte, now int64) []byte {
	bare := 0
	for off := commonHeaderLen; off+chunkHeaderLen <= len(pkt); {
		l := int(binary.BigEndian.Uint16(pkt[off+2:]))
		if l < chunkHeaderLen {
			return pkt // malformed: not ours to fix
		}
		if pkt[off] == chunkHeartbeat && l == chunkHeaderLen {
			bare++
		}
		off += (l + 3) &^ 3
	}
	if bare == 0 {
		return pkt
	}
	out := make([]byte, 0, len(pkt)+bare*(heartbeatFixedLen-chunkHeaderLen))
	out = append(out, pkt[:commonHeaderLen]...)
	for off := commonHeaderLen; off+chunkHeaderLen <= len(pkt); {
		l := int(binary.BigEndian.Uint16(pkt[off+2:]))
		next := min(off+(l+3)&^3, len(pkt))
		if pkt[off] == chunkHeartbeat && l == chunkHeaderLen {
			out = append(out, chunkHeartbeat, 0, 0, heartbeatFixedLen, 0, paramHeartbeatInfo, 0, 12)
			out = binary.BigEndian.AppendUint64(out, uint64(now))
		} else {
			out = append(out, pkt[off:next]...)
		}
		off = next
	}
	setChecksum(out)
	return out
}

// copyWithout copies pkt leaving out the chunks of type typ. pion/sctp
// v1.12.1 cannot parse HEARTBEAT ACK (packet.go unmarshal has no case for
// it), so it would drop a whole packet holding one, bundled DATA included;
// its only use for them is an RTT sample. removed says whether anything
// was left out; the checksum is then stale. A malformed chunk list is
// copied as it is from the first bad chunk on, for the stack to reject.
func copyWithout(pkt []byte, typ byte) (out []byte, removed bool) {
	out = make([]byte, 0, len(pkt))
	out = append(out, pkt[:min(commonHeaderLen, len(pkt))]...)
	off := commonHeaderLen
	for off+chunkHeaderLen <= len(pkt) {
		l := int(binary.BigEndian.Uint16(pkt[off+2:]))
		if l < chunkHeaderLen || off+l > len(pkt) {
			break
		}
		next := min(off+(l+3)&^3, len(pkt))
		if pkt[off] == typ {
			removed = true
		} else {
			out = append(out, pkt[off:next]...)
		}
		off = next
	}
	if off < len(pkt) {
		out = append(out, pkt[off:]...)
	}
	return out, removed
}

// INIT parameters pion/sctp v1.12.1 does not know whose type says "stop
// processing" when unrecognized (RFC 9260 3.2.1: high bits 00), so that it
// refuses the INIT: the peer's extra addresses, its address families, a
// cookie preservative. Multi-homed peers (usrsctp, the Linux kernel with
// UDP encapsulation) send them.
var addressParams = map[uint16]bool{
	5:  true, // IPv4 Address (RFC 9260 3.3.2.1)
	6:  true, // IPv6 Address
	9:  true, // Cookie Preservative
	11: true, // Host Name Address (deprecated)
	12: true, // Supported Address Types
}

// stripInitAddresses removes those parameters from an INIT, in place; the
// association then runs single-homed over the address the packets come
// from, which is all a UDP-encapsulated association demultiplexed by
// address can use anyway. It returns the shortened packet and whether it
// changed anything; the checksum is then stale.
func stripInitAddresses(pkt []byte) ([]byte, bool) {
	if len(pkt) < commonHeaderLen+chunkHeaderLen+initFixedLen || pkt[commonHeaderLen] != chunkInit {
		return pkt, false
	}
	c := pkt[commonHeaderLen:]
	l := int(binary.BigEndian.Uint16(c[2:]))
	if l < chunkHeaderLen+initFixedLen || l > len(c) {
		return pkt, false
	}
	w := chunkHeaderLen + initFixedLen // write offset in c
	end := w                           // chunk length so far (without final padding)
	changed := false
	for r := w; r+4 <= l; {
		pl := int(binary.BigEndian.Uint16(c[r+2:]))
		if pl < 4 || r+pl > l {
			return pkt, false // malformed: leave it to the stack
		}
		next := min(r+(pl+3)&^3, l)
		if addressParams[binary.BigEndian.Uint16(c[r:])] {
			changed = true
		} else {
			copy(c[w:], c[r:next])
			end = w + pl
			w += next - r
		}
		r = next
	}
	if !changed {
		return pkt, false
	}
	binary.BigEndian.PutUint16(c[2:], uint16(end))
	padded := (end + 3) &^ 3
	clear(c[end:padded])
	return pkt[:commonHeaderLen+padded], true
}
