package gtpu

import (
	"encoding/binary"
	"fmt"
	"net/netip"

	"github.com/wmnsk/go-gtp/gtpv1/ie"
	"github.com/wmnsk/go-gtp/gtpv1/message"
)

// The signalling messages of GTP-U are rare next to G-PDUs, so they are
// built with go-gtp's message types; only their IEs are read here.

// EchoRequest returns an Echo Request (TS 29.281 7.2.1) with sequence
// number seq.
func EchoRequest(seq uint16) ([]byte, error) {
	b, err := message.NewEchoRequest(seq).Marshal()
	if err != nil {
		return nil, fmt.Errorf("gtpu: echo request: %w", err)
	}
	return b, nil
}

// EchoResponse returns the Echo Response (TS 29.281 7.2.2) to an Echo
// Request with sequence number seq. Its Recovery IE carries 0 (TS 29.281
// 8.2: the restart counter is not used in GTP-U).
func EchoResponse(seq uint16) ([]byte, error) {
	b, err := message.NewEchoResponse(seq, ie.NewRecovery(0)).Marshal()
	if err != nil {
		return nil, fmt.Errorf("gtpu: echo response: %w", err)
	}
	return b, nil
}

// ErrorIndication returns an Error Indication (TS 29.281 7.3.1) for a
// G-PDU that arrived for tunnel teid, which this node does not know: TEID
// Data I is teid and GTP-U Peer Address is local, the address the G-PDU
// was sent to. A non-zero srcPort, the G-PDU's UDP source port, is carried
// in a UDP Port extension header (TS 29.281 5.2.2.1).
func ErrorIndication(teid uint32, local netip.Addr, srcPort uint16) ([]byte, error) {
	if !local.IsValid() {
		return nil, fmt.Errorf("gtpu: error indication: no GTP-U peer address")
	}
	m := message.NewErrorIndication(0, 0, ie.NewTEIDDataI(teid), ie.NewGSNAddressByIP(local.Unmap().AsSlice()))
	if srcPort != 0 {
		var p [2]byte
		binary.BigEndian.PutUint16(p[:], srcPort)
		if err := m.AddExtensionHeaders(message.NewExtensionHeader(ExtUDPPort, p[:], ExtNone)); err != nil {
			return nil, fmt.Errorf("gtpu: error indication: %w", err)
		}
	}
	b, err := m.Marshal()
	if err != nil {
		return nil, fmt.Errorf("gtpu: error indication: %w", err)
	}
	return b, nil
}

// EndMarker returns an End Marker (TS 29.281 7.3.2) for tunnel teid, with
// a PDU Session Container when psc is not nil.
func EndMarker(teid uint32, psc *PDUSession) ([]byte, error) {
	m := message.NewEndMarker()
	// Not Header.SetTEID: go-gtp's sets a bit that is spare in GTPv1.
	m.Header.TEID = teid
	if psc != nil {
		if err := psc.check(); err != nil {
			return nil, fmt.Errorf("gtpu: end marker: %w", err)
		}
		c := make([]byte, psc.contentLen())
		psc.put(c)
		if err := m.AddExtensionHeaders(message.NewExtensionHeader(ExtPDUSessionContainer, c, ExtNone)); err != nil {
			return nil, fmt.Errorf("gtpu: end marker: %w", err)
		}
	}
	b, err := m.Marshal()
	if err != nil {
		return nil, fmt.Errorf("gtpu: end marker: %w", err)
	}
	return b, nil
}

// SupportedExtensionHeadersNotification returns the notification (TS
// 29.281 7.2.3) listing the extension header types this node comprehends,
// sent to a peer whose message carried one it does not (TS 29.281 5.2.1).
func SupportedExtensionHeadersNotification(seq uint16) ([]byte, error) {
	m := message.NewSupportedExtensionHeaderNotification(0, seq,
		ie.NewExtensionHeaderTypeList(ExtUDPPort, ExtPDUSessionContainer))
	// TS 29.281 5.1: the S flag is 1 in this message.
	m.SetSequenceNumber(seq)
	b, err := m.Marshal()
	if err != nil {
		return nil, fmt.Errorf("gtpu: supported extension headers notification: %w", err)
	}
	return b, nil
}

// IEs are the information elements of a GTP-U signalling message (TS
// 29.281 8). Slices point into the message.
type IEs struct {
	Recovery       uint8 // Recovery (8.2)
	HasRecovery    bool
	TEIDDataI      uint32 // Tunnel Endpoint Identifier Data I (8.3)
	HasTEIDDataI   bool
	PeerAddress    netip.Addr // GTP-U Peer Address (8.4)
	ExtHeaderTypes []byte     // Extension Header Type List (8.5)
}

// IE types of GTP-U (TS 29.281 8.1, Table 8.1-1).
const (
	ieRecovery       = ie.Recovery                // TV, 1 octet
	ieTEIDDataI      = ie.TEIDDataI               // TV, 4 octets
	iePeerAddress    = ie.GSNAddress              // TLV
	ieExtHeaderTypes = ie.ExtensionHeaderTypeList // type, 1-octet length, value
)

// ParseIEs reads the IEs of a signalling message's payload. It does not
// allocate. Unknown TLV IEs (type >= 128) are skipped; an unknown TV IE
// cannot be, and is an error.
func ParseIEs(b []byte) (IEs, error) {
	var ies IEs
	for len(b) > 0 {
		t := b[0]
		var v []byte
		switch {
		case t == ieRecovery:
			if len(b) < 2 {
				return ies, ErrIE
			}
			v, b = b[1:2], b[2:]
		case t == ieTEIDDataI:
			if len(b) < 5 {
				return ies, ErrIE
			}
			v, b = b[1:5], b[5:]
		case t == ieExtHeaderTypes:
			// TS 29.281 8.5: a one-octet length.
			if len(b) < 2 || len(b) < 2+int(b[1]) {
				return ies, ErrIE
			}
			v, b = b[2:2+int(b[1])], b[2+int(b[1]):]
		case t >= 0x80:
			if len(b) < 3 {
				return ies, ErrIE
			}
			n := int(binary.BigEndian.Uint16(b[1:3]))
			if len(b) < 3+n {
				return ies, ErrIE
			}
			v, b = b[3:3+n], b[3+n:]
		default:
			return ies, ErrIE
		}
		switch t {
		case ieRecovery:
			ies.Recovery, ies.HasRecovery = v[0], true
		case ieTEIDDataI:
			ies.TEIDDataI, ies.HasTEIDDataI = binary.BigEndian.Uint32(v), true
		case iePeerAddress:
			a, ok := netip.AddrFromSlice(v)
			if !ok {
				return ies, ErrIE // 4 or 16 octets
			}
			ies.PeerAddress = a.Unmap()
		case ieExtHeaderTypes:
			ies.ExtHeaderTypes = v
		}
	}
	return ies, nil
}

// ParseErrorIndication reads the mandatory IEs of an Error Indication's
// payload (TS 29.281 7.3.1): the TEID the peer did not know, and the peer's
// address.
func ParseErrorIndication(payload []byte) (teid uint32, peer netip.Addr, err error) {
	ies, err := ParseIEs(payload)
	if err != nil {
		return 0, netip.Addr{}, err
	}
	if !ies.HasTEIDDataI || !ies.PeerAddress.IsValid() {
		return 0, netip.Addr{}, ErrMissingIE
	}
	return ies.TEIDDataI, ies.PeerAddress, nil
}
