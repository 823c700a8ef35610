package gnb

import (
	"encoding/binary"
	"errors"
	"fmt"
	"github.com/simgate/simgate/internal/plmn"
	"net/netip"

	"github.com/free5gc/ngap/aper"
	"github.com/free5gc/ngap/ie"
)

// plmnID encodes MCC and MNC as the 3-octet PLMN Identity (TS 38.413
// 9.3.3.5).
func plmnID(mcc, mnc string) ([3]byte, error) { return plmn.Encode(mcc, mnc) }

// decodePLMN is the inverse of plmnID.
func decodePLMN(b []byte) (mcc, mnc string, err error) { return plmn.Decode(b) }

// bitString is the n-bit BIT STRING of the value v: APER packs bits from
// the most significant bit of the first octet on, so v is shifted left.
func bitString(v uint64, n int) aper.BitString {
	nbytes := (n + 7) / 8
	v <<= uint(nbytes*8 - n)
	b := make([]byte, nbytes)
	for i := nbytes - 1; i >= 0; i-- {
		b[i] = byte(v)
		v >>= 8
	}
	return aper.BitString{Bytes: b, BitLength: uint64(n)}
}

// bitValue is the inverse of bitString for up to 64 bits.
func bitValue(bs aper.BitString) (uint64, error) {
	n := int(bs.BitLength)
	if n == 0 || n > 64 || len(bs.Bytes) < (n+7)/8 {
		return 0, fmt.Errorf("bit string of %d bits in %d octets", n, len(bs.Bytes))
	}
	var v uint64
	for _, c := range bs.Bytes[:(n+7)/8] {
		v = v<<8 | uint64(c)
	}
	return v >> uint(((n+7)/8)*8-n), nil
}

// transportAddr encodes an N3 address as a Transport Layer Address
// (TS 38.413 9.3.2.4: 32 bits IPv4, 128 bits IPv6).
func transportAddr(a netip.Addr) *ie.TransportLayerAddress {
	b := a.AsSlice()
	return &ie.TransportLayerAddress{Value: aper.BitString{Bytes: b, BitLength: uint64(8 * len(b))}}
}

// parseTransportAddr decodes a Transport Layer Address: 32 bits IPv4, 128
// bits IPv6, or 160 bits both (TS 38.413 9.3.2.4), of which the IPv4
// address is taken.
func parseTransportAddr(t *ie.TransportLayerAddress) (netip.Addr, error) {
	if t == nil {
		return netip.Addr{}, errors.New("transport layer address missing")
	}
	b := t.Value.Bytes
	switch n := t.Value.BitLength; {
	case n == 32 && len(b) >= 4:
		return netip.AddrFrom4([4]byte(b[:4])), nil
	case n == 128 && len(b) >= 16:
		return netip.AddrFrom16([16]byte(b[:16])), nil
	case n == 160 && len(b) >= 20:
		return netip.AddrFrom4([4]byte(b[:4])), nil
	default:
		return netip.Addr{}, fmt.Errorf("transport layer address of %d bits", n)
	}
}

func teidBytes(t uint32) aper.OctetString {
	return binary.BigEndian.AppendUint32(make(aper.OctetString, 0, 4), t)
}

func parseTEID(t *ie.GTPTEID) (uint32, error) {
	if t == nil || len(t.Value) != 4 {
		return 0, errors.New("GTP-TEID missing or not 4 octets")
	}
	return binary.BigEndian.Uint32(t.Value), nil
}
