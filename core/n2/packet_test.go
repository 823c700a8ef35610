package n2

import (
	"bytes"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"hash/crc32"
	"testing"
)

// RFC 3720 B.4: CRC32c test vectors, with the CRC as the bytes that go on
// the wire (the SCTP checksum field uses the same order, RFC 9260 App. A).
func TestCRC32cRFC3720Vectors(t *testing.T) {
	incr, decr := make([]byte, 32), make([]byte, 32)
	for i := range incr {
		incr[i], decr[i] = byte(i), byte(31-i)
	}
	iscsi, _ := hex.DecodeString("01c00000000000000000000000000000" +
		"14000000000004000000001400000018" +
		"28000000000000000200000000000000")
	tests := []struct {
		name string
		data []byte
		wire string
	}{
		{"32 zeros", make([]byte, 32), "aa36918a"},
		{"32 0xff", bytes.Repeat([]byte{0xff}, 32), "43aba862"},
		{"incrementing", incr, "4e79dd46"},
		{"decrementing", decr, "5cdb3f11"},
		{"iSCSI read PDU", iscsi, "563a96d9"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var got [4]byte
			binary.LittleEndian.PutUint32(got[:], crc32.Checksum(tt.data, castagnoliTable))
			if h := hex.EncodeToString(got[:]); h != tt.wire {
				t.Fatalf("CRC32c wire bytes %s, want %s", h, tt.wire)
			}
		})
	}
	// The zeros vector is also an SCTP packet whose checksum field is zero:
	// setChecksum must write exactly those bytes into it.
	pkt := make([]byte, 32)
	setChecksum(pkt)
	if h := hex.EncodeToString(pkt[8:12]); h != "aa36918a" {
		t.Fatalf("setChecksum wrote %s, want aa36918a", h)
	}
	if !checksumOK(pkt) {
		t.Fatal("checksumOK false after setChecksum")
	}
	pkt[20] ^= 1
	if checksumOK(pkt) {
		t.Fatal("checksumOK true after a bit flip")
	}
}

// testInit builds an SCTP packet holding one INIT chunk (RFC 9260 3.3.2).
func testInit(srcPort, dstPort uint16, vtag, tag uint32, os, mis uint16) []byte {
	p := make([]byte, commonHeaderLen+chunkHeaderLen+initFixedLen)
	binary.BigEndian.PutUint16(p[0:], srcPort)
	binary.BigEndian.PutUint16(p[2:], dstPort)
	binary.BigEndian.PutUint32(p[4:], vtag)
	c := p[commonHeaderLen:]
	c[0] = chunkInit
	binary.BigEndian.PutUint16(c[2:], chunkHeaderLen+initFixedLen)
	binary.BigEndian.PutUint32(c[4:], tag)   // initiate tag
	binary.BigEndian.PutUint32(c[8:], 65536) // a_rwnd
	binary.BigEndian.PutUint16(c[12:], os)   // outbound streams
	binary.BigEndian.PutUint16(c[14:], mis)  // max inbound streams
	binary.BigEndian.PutUint32(c[16:], 1000) // initial TSN
	setChecksum(p)
	return p
}

func TestCheckInit(t *testing.T) {
	good := testInit(40000, NGAPPort, 0, 0x11223344, 10, 12)
	with := func(f func([]byte) []byte) []byte {
		p := f(bytes.Clone(good))
		setChecksum(p)
		return p
	}
	badCRC := bytes.Clone(good)
	badCRC[8] ^= 0xff
	tests := []struct {
		name string
		pkt  []byte
		want error
	}{
		{"valid", good, nil},
		{"empty", nil, errShort},
		{"11 bytes", good[:11], errShort},
		{"bad checksum", badCRC, errChecksum},
		{"wrong port", testInit(40000, 5000, 0, 1, 1, 1), errWrongPort},
		{"source port 0", testInit(0, NGAPPort, 0, 1, 1, 1), errPortZero},
		{"vtag not zero", testInit(40000, NGAPPort, 7, 1, 1, 1), errInitVTag},
		{"initiate tag 0", testInit(40000, NGAPPort, 0, 0, 1, 1), errInitTag},
		{"no outbound streams", testInit(40000, NGAPPort, 0, 1, 0, 1), errInitStreams},
		{"no inbound streams", testInit(40000, NGAPPort, 0, 1, 1, 0), errInitStreams},
		{"header only", with(func(p []byte) []byte { return p[:commonHeaderLen] }), errNotInit},
		{"DATA chunk", with(func(p []byte) []byte { p[commonHeaderLen] = 0; return p }), errNotInit},
		{"INIT ACK", with(func(p []byte) []byte { p[commonHeaderLen] = chunkInitAck; return p }), errNotInit},
		{"chunk length short", with(func(p []byte) []byte { p[commonHeaderLen+3] = 8; return p }), errInitLength},
		{"chunk length past end", with(func(p []byte) []byte { p[commonHeaderLen+3] = 200; return p }), errInitLength},
		{"truncated INIT", with(func(p []byte) []byte { return p[:30] }), errInitLength},
		{"bundled chunk", with(func(p []byte) []byte { return append(p, 0x0e, 0, 0, 4) }), errInitBundled},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			info, err := checkInit(tt.pkt, NGAPPort)
			if !errors.Is(err, tt.want) {
				t.Fatalf("checkInit: %v, want %v", err, tt.want)
			}
			if tt.want == nil && (info.tag != 0x11223344 || info.outStreams != 10 || info.inStreams != 12 || info.ack) {
				t.Fatalf("checkInit info %+v", info)
			}
		})
	}
}

func TestPeekInit(t *testing.T) {
	init := testInit(1, 2, 0, 9, 300, 400)
	info, ok := peekInit(init)
	if !ok || info.ack || info.outStreams != 300 || info.inStreams != 400 || info.tag != 9 {
		t.Fatalf("peekInit INIT = %+v, %v", info, ok)
	}
	ack := bytes.Clone(init)
	ack[commonHeaderLen] = chunkInitAck
	info, ok = peekInit(ack)
	if !ok || !info.ack || info.outStreams != 300 {
		t.Fatalf("peekInit INIT ACK = %+v, %v", info, ok)
	}
	for _, p := range [][]byte{nil, init[:31], append(bytes.Clone(init[:12]), 0, 0, 0, 4)} {
		if _, ok := peekInit(p); ok {
			t.Fatalf("peekInit(%x) ok", p)
		}
	}
	data := bytes.Clone(init)
	data[commonHeaderLen] = 0 // DATA
	if _, ok := peekInit(data); ok {
		t.Fatal("peekInit accepted a DATA chunk")
	}
}

func TestSetPorts(t *testing.T) {
	p := testInit(5000, 5000, 0, 1, 1, 1)
	setPorts(p, 41000, NGAPPort)
	src, dst, err := ports(p)
	if err != nil || src != 41000 || dst != NGAPPort {
		t.Fatalf("ports = %d, %d, %v", src, dst, err)
	}
	if !checksumOK(p) {
		t.Fatal("checksum not recomputed")
	}
	if _, err := checkInit(p, NGAPPort); err != nil {
		t.Fatalf("rewritten INIT invalid: %v", err)
	}
}

// chunk builds one chunk padded to 4 bytes.
func chunk(typ byte, value ...byte) []byte {
	c := []byte{typ, 0, 0, 0}
	binary.BigEndian.PutUint16(c[2:], uint16(chunkHeaderLen+len(value)))
	c = append(c, value...)
	for len(c)%4 != 0 {
		c = append(c, 0)
	}
	return c
}

func packet(chunks ...[]byte) []byte {
	p := []byte{0x96, 0x0c, 0x13, 0x88, 1, 2, 3, 4, 0, 0, 0, 0}
	for _, c := range chunks {
		p = append(p, c...)
	}
	setChecksum(p)
	return p
}

func TestFixHeartbeats(t *testing.T) {
	const now = 0x0102030405060708
	info := []byte{0, paramHeartbeatInfo, 0, 12, 1, 2, 3, 4, 5, 6, 7, 8}
	sack := chunk(3, 0, 0, 0, 9, 0, 1, 0, 0, 0, 0, 0, 0)
	data := chunk(0, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 60, 'x')
	good := chunk(chunkHeartbeat, info...)
	tests := []struct {
		name string
		in   []byte
		want []byte // nil: returned unchanged
	}{
		{"bare heartbeat", packet(chunk(chunkHeartbeat)), packet(good)},
		{"bundled", packet(sack, chunk(chunkHeartbeat), data), packet(sack, good, data)},
		{"two bare", packet(chunk(chunkHeartbeat), chunk(chunkHeartbeat)), packet(good, good)},
		{"heartbeat with info", packet(good), nil},
		{"no heartbeat", packet(sack, data), nil},
		{"header only", packet(), nil},
		{"bad chunk length", packet([]byte{chunkHeartbeat, 0, 0, 2}), nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := fixHeartbeats(tt.in, now)
			if tt.want == nil {
				if &got[0] != &tt.in[0] {
					t.Fatalf("packet copied although nothing to fix")
				}
				return
			}
			if !bytes.Equal(got, tt.want) {
				t.Fatalf("got  %x\nwant %x", got, tt.want)
			}
			if !checksumOK(got) {
				t.Fatal("checksum not updated")
			}
		})
	}
}

func TestCopyWithout(t *testing.T) {
	hbAck := chunk(chunkHeartbeatAck, 0, 1, 0, 12, 1, 2, 3, 4, 5, 6, 7, 8)
	sack := chunk(3, 0, 0, 0, 9, 0, 1, 0, 0, 0, 0, 0, 0)
	data := chunk(0, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 60, 'x', 'y')
	tests := []struct {
		name    string
		in      []byte
		want    []byte
		removed bool
	}{
		{"none", packet(sack, data), packet(sack, data), false},
		{"bundled", packet(sack, hbAck, data), packet(sack, data), true},
		{"only", packet(hbAck), packet(), true},
		{"malformed tail kept", append(packet(hbAck), 0xff, 0xff), append(packet(), 0xff, 0xff), true},
		{"short", []byte{1, 2, 3}, []byte{1, 2, 3}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, removed := copyWithout(tt.in, chunkHeartbeatAck)
			if removed != tt.removed {
				t.Fatalf("removed = %v", removed)
			}
			want := bytes.Clone(tt.want)
			if removed {
				setChecksum(got)
				setChecksum(want)
			}
			if !bytes.Equal(got, want) {
				t.Fatalf("got  %x\nwant %x", got, tt.want)
			}
		})
	}
}

// initWith builds an INIT packet with the given parameters (TLVs).
func initWith(params ...[]byte) []byte {
	p := testInit(9900, 7, 0, 0x1234, 10, 10)
	for _, q := range params {
		p = append(p, q...)
		for len(p)%4 != 0 {
			p = append(p, 0)
		}
	}
	l := commonHeaderLen + chunkHeaderLen + initFixedLen
	for _, q := range params[:max(len(params)-1, 0)] {
		l += (len(q) + 3) &^ 3
	}
	if len(params) > 0 {
		l += len(params[len(params)-1])
	}
	binary.BigEndian.PutUint16(p[commonHeaderLen+2:], uint16(l-commonHeaderLen))
	setChecksum(p)
	return p
}

func TestStripInitAddresses(t *testing.T) {
	ipv4 := []byte{0, 5, 0, 8, 127, 0, 0, 1}
	ipv6 := append([]byte{0, 6, 0, 20}, make([]byte, 16)...)
	types := []byte{0, 12, 0, 6, 0, 5, 0, 6} // Supported Address Types: IPv4, IPv6 (length 6, padded)
	ecn := []byte{0x80, 0, 0, 4}
	fwd := []byte{0xc0, 0, 0, 4}
	ext := []byte{0x80, 0x08, 0, 7, 0xc0, 0x82, 0x0f} // Supported Extensions, length 7
	tests := []struct {
		name    string
		in      []byte
		want    []byte
		changed bool
	}{
		{"no params", initWith(), initWith(), false},
		{"only known", initWith(ecn, fwd), initWith(ecn, fwd), false},
		{"usrsctp-like", initWith(ecn, fwd, ext, types, ipv6, ipv4), initWith(ecn, fwd, ext), true},
		{"addresses first", initWith(ipv4, ecn, ext), initWith(ecn, ext), true},
		{"only addresses", initWith(types, ipv4), initWith(), true},
		{"odd last param kept", initWith(ipv4, ext), initWith(ext), true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, changed := stripInitAddresses(bytes.Clone(tt.in))
			if changed != tt.changed {
				t.Fatalf("changed = %v", changed)
			}
			if changed {
				setChecksum(got)
			}
			if !bytes.Equal(got, tt.want) {
				t.Fatalf("got  %x\nwant %x", got, tt.want)
			}
			if _, err := checkInit(got, 7); err != nil {
				t.Fatalf("result is no valid INIT: %v", err)
			}
		})
	}
	// Not INIT, or malformed: untouched.
	for _, p := range [][]byte{packet(chunk(0, 1, 2, 3)), initWith(ipv4)[:38], append(initWith(), 0, 5, 0, 2)} {
		if _, changed := stripInitAddresses(bytes.Clone(p)); changed {
			t.Fatalf("changed %x", p)
		}
	}
}
