package capture

import (
	"bytes"
	"encoding/hex"
	"net/netip"
	"testing"
)

// TestCRC32cRFC3720: the SCTP checksum is CRC32c (RFC 9260 6.8,
// Appendix B) in the byte order of the RFC 3720 B.4 examples.
func TestCRC32cRFC3720(t *testing.T) {
	seq := func(f func(int) byte) []byte {
		b := make([]byte, 32)
		for i := range b {
			b[i] = f(i)
		}
		return b
	}
	read10, _ := hex.DecodeString("01c000000000000000000000000000001400000000000400000000140000001828000000000000000200000000000000")
	tests := []struct {
		name string
		data []byte
		crc  string
	}{
		{"32 zero octets", make([]byte, 32), "aa36918a"},
		{"32 octets 0xff", seq(func(int) byte { return 0xff }), "43aba862"},
		{"32 incrementing", seq(func(i int) byte { return byte(i) }), "4e79dd46"},
		{"32 decrementing", seq(func(i int) byte { return byte(31 - i) }), "5cdb3f11"},
		{"iSCSI Read (10) command PDU", read10, "563a96d9"},
	}
	for _, tt := range tests {
		var got [4]byte
		putCRC32c(got[:], tt.data)
		if hex.EncodeToString(got[:]) != tt.crc {
			t.Errorf("%s: % x, want %s", tt.name, got, tt.crc)
		}
	}
}

// TestSetSCTPChecksum: the checksum is computed with its own field zero,
// whatever the field held before (RFC 9260 6.8).
func TestSetSCTPChecksum(t *testing.T) {
	pkt := make([]byte, 32) // a common header and 20 octets, all zero
	setSCTPChecksum(pkt)
	want := bytes.Clone(pkt[8:12])
	if hex.EncodeToString(want) != "aa36918a" { // RFC 3720 B.4: 32 zero octets
		t.Fatalf("checksum % x", want)
	}
	copy(pkt[8:12], []byte{0xde, 0xad, 0xbe, 0xef})
	setSCTPChecksum(pkt)
	if !bytes.Equal(pkt[8:12], want) {
		t.Fatalf("checksum % x over a stale field, want % x", pkt[8:12], want)
	}
}

// TestAssocTags: verification tags are non-zero, differ per direction and
// per association, and are the same for the same association.
func TestAssocTags(t *testing.T) {
	a := newAssoc(netip.MustParseAddrPort("10.0.0.1:38412"), netip.MustParseAddrPort("10.0.0.2:40000"))
	b := newAssoc(netip.MustParseAddrPort("10.0.0.1:38412"), netip.MustParseAddrPort("10.0.0.2:40001"))
	again := newAssoc(netip.MustParseAddrPort("10.0.0.1:38412"), netip.MustParseAddrPort("10.0.0.2:40000"))
	if a.tag[0] == 0 || a.tag[1] == 0 || a.tag[0] == a.tag[1] {
		t.Fatalf("tags %#x", a.tag)
	}
	if a.tag == b.tag {
		t.Fatal("two associations, one pair of tags")
	}
	if a.tag != again.tag || a.tsn != again.tsn {
		t.Fatal("tags not reproducible")
	}
}
