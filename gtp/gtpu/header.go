package gtpu

import (
	"encoding/binary"
	"strconv"

	"github.com/wmnsk/go-gtp/gtpv1/message"
)

// Port is the registered GTP-U UDP port (TS 29.281 4.4.2).
const Port = 2152

// GTP-U message types (TS 29.281 6.1, Table 6.1-1).
const (
	MsgEchoRequest                           = message.MsgTypeEchoRequest
	MsgEchoResponse                          = message.MsgTypeEchoResponse
	MsgErrorIndication                       = message.MsgTypeErrorIndication
	MsgSupportedExtensionHeadersNotification = message.MsgTypeSupportedExtensionHeaderNotification
	MsgEndMarker                             = message.MsgTypeEndMarker
	MsgGPDU                                  = message.MsgTypeTPDU
)

// Extension header types (TS 29.281 5.2.1, Figure 5.2.1-3) this package
// comprehends.
const (
	ExtNone                = message.ExtHeaderTypeNoMoreExtensionHeaders
	ExtUDPPort             = message.ExtHeaderTypeUDPPort
	ExtPDUSessionContainer = message.ExtHeaderTypePDUSessionContainer
)

// Header flags, octet 1 (TS 29.281 5.1, Figure 5.1-1).
const (
	FlagPN = 0x01 // N-PDU Number present
	FlagS  = 0x02 // Sequence Number present
	FlagE  = 0x04 // Next Extension Header Type present
	flagPT = 0x10 // Protocol Type: GTP (not GTP')

	flagsV1 = 0x20 | flagPT // version 1, PT=1
)

// HeaderLen is the mandatory part of the GTP-U header.
const HeaderLen = 8

// PDUType is the PDU type of a PDU Session Container (TS 38.415 5.5.3.1).
type PDUType uint8

const (
	// DL is DL PDU SESSION INFORMATION (PDU type 0), sent by the UPF.
	DL PDUType = 0
	// UL is UL PDU SESSION INFORMATION (PDU type 1), sent by the gNB.
	UL PDUType = 1
)

func (t PDUType) String() string {
	switch t {
	case DL:
		return "DL"
	case UL:
		return "UL"
	}
	return "PDUType(" + strconv.Itoa(int(t)) + ")"
}

// PDUSession is the content of a PDU Session Container extension header
// (TS 38.415 5.5.2.1 DL, 5.5.2.2 UL).
type PDUSession struct {
	Type PDUType
	QFI  uint8 // QoS Flow Identifier, 6 bits
	// DL only.
	RQI bool  // Reflective QoS Indicator
	PPP bool  // Paging Policy Presence: PPI follows
	PPI uint8 // Paging Policy Indicator, 3 bits
}

// Header is a decoded GTP-U header (TS 29.281 5.1, 5.2).
type Header struct {
	Flags  uint8  // octet 1: version, PT, E, S, PN
	Type   uint8  // message type
	Length uint16 // octets after the mandatory 8
	TEID   uint32
	Seq    uint16 // when Flags&FlagS
	NPDU   uint8  // when Flags&FlagPN

	// Extension headers, when present.
	PDUSession    PDUSession
	HasPDUSession bool
	UDPPort       uint16 // UDP Port (TS 29.281 5.2.2.1)
	HasUDPPort    bool

	// UnknownExt is the type of the extension header that made Decode
	// return ErrUnknownExtension.
	UnknownExt uint8
}

// HasSeq reports whether the S flag is set.
func (h *Header) HasSeq() bool { return h.Flags&FlagS != 0 }

// Error is why a GTP-U message did not decode or encode. Errors are
// comparable constants, so returning one does not allocate; Conn counts
// drops by Error.
type Error uint8

const (
	ErrShort            Error = iota + 1 // shorter than the 8-octet mandatory header
	ErrVersion                           // not GTP version 1
	ErrProtocolType                      // PT=0: GTP', not GTP
	ErrLength                            // Length field does not match the datagram
	ErrExtLength                         // extension header of length 0
	ErrExtTruncated                      // extension header chain runs past the message
	ErrUnknownExtension                  // comprehension-required extension header not understood
	ErrPDUSession                        // malformed PDU Session Container
	ErrIE                                // malformed or truncated information element
	ErrMissingIE                         // mandatory information element absent
	ErrTooBig                            // datagram larger than the receive buffer
	ErrHeadroom                          // encode: no room before the payload for the header
	ErrField                             // encode: a field out of range
	numErrors
)

// NumErrors bounds the Error values, for arrays indexed by Error.
const NumErrors = int(numErrors)

var errText = [numErrors]string{
	ErrShort:            "gtpu: message shorter than the GTP-U header",
	ErrVersion:          "gtpu: not GTP version 1",
	ErrProtocolType:     "gtpu: protocol type GTP' (PT=0)",
	ErrLength:           "gtpu: length field does not match the datagram",
	ErrExtLength:        "gtpu: extension header of length 0",
	ErrExtTruncated:     "gtpu: extension header chain truncated",
	ErrUnknownExtension: "gtpu: unknown comprehension-required extension header",
	ErrPDUSession:       "gtpu: malformed PDU Session Container",
	ErrIE:               "gtpu: malformed information element",
	ErrMissingIE:        "gtpu: mandatory information element missing",
	ErrTooBig:           "gtpu: datagram larger than the receive buffer",
	ErrHeadroom:         "gtpu: no headroom for the header",
	ErrField:            "gtpu: field out of range",
}

func (e Error) Error() string {
	if e > 0 && e < numErrors {
		return errText[e]
	}
	return "gtpu: error " + strconv.Itoa(int(e))
}

// Decode decodes the GTP-U message in b into h and returns its payload (a
// sub-slice of b: the T-PDU of a G-PDU, the IEs of other messages). It does
// not allocate. On error h holds what was decoded so far.
func (h *Header) Decode(b []byte) ([]byte, error) {
	*h = Header{}
	if len(b) < HeaderLen {
		return nil, ErrShort
	}
	f := b[0]
	// TS 29.281 5.1: version 1; PT 1 is GTP, 0 is GTP' (not on N3).
	if f>>5 != 1 {
		return nil, ErrVersion
	}
	if f&flagPT == 0 {
		return nil, ErrProtocolType
	}
	h.Flags = f
	h.Type = b[1]
	h.Length = binary.BigEndian.Uint16(b[2:4])
	h.TEID = binary.BigEndian.Uint32(b[4:8])
	// TS 29.281 5.1: Length counts the octets after the mandatory 8,
	// including the optional fields and extension headers. One datagram
	// carries one message, so it must match exactly.
	end := HeaderLen + int(h.Length)
	if end != len(b) {
		return nil, ErrLength
	}
	off := HeaderLen
	if f&(FlagE|FlagS|FlagPN) != 0 {
		// TS 29.281 5.1: any of E, S, PN adds the 4 optional octets; a
		// field whose flag is clear is present but not interpreted.
		if end < HeaderLen+4 {
			return nil, ErrLength
		}
		if f&FlagS != 0 {
			h.Seq = binary.BigEndian.Uint16(b[8:10])
		}
		if f&FlagPN != 0 {
			h.NPDU = b[10]
		}
		off = HeaderLen + 4
		if f&FlagE != 0 {
			var err error
			if off, err = h.decodeExt(b, b[11], off, end); err != nil {
				return nil, err
			}
		}
	}
	return b[off:end], nil
}

// decodeExt walks the extension header chain (TS 29.281 5.2) from off,
// starting with type next, and returns the offset after it.
func (h *Header) decodeExt(b []byte, next uint8, off, end int) (int, error) {
	for next != ExtNone {
		if off >= end {
			return 0, ErrExtTruncated
		}
		// TS 29.281 5.2.1: length in 4-octet units, covering the length
		// octet, the content and the next-type octet.
		n := int(b[off]) * 4
		if n == 0 {
			return 0, ErrExtLength
		}
		if off+n > end {
			return 0, ErrExtTruncated
		}
		content := b[off+1 : off+n-1]
		switch next {
		case ExtPDUSessionContainer:
			if h.HasPDUSession {
				return 0, ErrPDUSession // two QoS descriptions for one packet
			}
			var s PDUSession
			if err := s.decode(content); err != nil {
				return 0, err
			}
			h.PDUSession, h.HasPDUSession = s, true
		case ExtUDPPort:
			// TS 29.281 5.2.2.1: UDP Port, 2 octets.
			h.UDPPort = binary.BigEndian.Uint16(content)
			h.HasUDPPort = true
		default:
			// TS 29.281 5.2.1: bit 8 of the type set means the receiving
			// endpoint must comprehend it; otherwise it is skipped.
			if next&0x80 != 0 {
				h.UnknownExt = next
				return 0, ErrUnknownExtension
			}
		}
		next = b[off+n-1]
		off += n
	}
	return off, nil
}

// decode reads a PDU Session Container's content (TS 38.415 5.5.2).
func (s *PDUSession) decode(c []byte) error {
	// The container is at least one 4-octet unit: 2 octets of content.
	if len(c) < 2 {
		return ErrPDUSession
	}
	t := PDUType(c[0] >> 4)
	s.Type = t
	s.QFI = c[1] & 0x3f
	need := 2
	switch t {
	case DL:
		// 5.5.2.1: octet 1 PDU type|QMP|SNP|MSNP|spare; octet 2
		// PPP|RQI|QFI; then PPI (if PPP), DL Sending Time Stamp (8, if
		// QMP), DL QFI Sequence Number (3, if SNP), DL MBS QFI SN (4, if
		// MSNP).
		s.PPP = c[1]&0x80 != 0
		s.RQI = c[1]&0x40 != 0
		if s.PPP {
			need++
		}
		if c[0]&0x08 != 0 {
			need += 8
		}
		if c[0]&0x04 != 0 {
			need += 3
		}
		if c[0]&0x02 != 0 {
			need += 4
		}
		if s.PPP && len(c) >= need {
			s.PPI = c[2] >> 5
		}
	case UL:
		// 5.5.2.2: octet 1 PDU type|QMP|DL Delay Ind|UL Delay Ind|SNP;
		// octet 2 N3/N9 Delay Ind|New IE Flag|QFI; then three time stamps
		// (24, if QMP), DL and UL Delay Results (4 each), UL QFI Sequence
		// Number (3, if SNP), N3/N9 Delay Result (4), New IE Flags (1).
		if c[0]&0x08 != 0 {
			need += 24
		}
		if c[0]&0x04 != 0 {
			need += 4
		}
		if c[0]&0x02 != 0 {
			need += 4
		}
		if c[0]&0x01 != 0 {
			need += 3
		}
		if c[1]&0x80 != 0 {
			need += 4
		}
		if c[1]&0x40 != 0 {
			need++
		}
	default:
		return ErrPDUSession // PDU types 2-15 are reserved in TS 38.415
	}
	if len(c) < need {
		return ErrPDUSession
	}
	return nil
}

// contentLen is the encoded content of s, before padding.
func (s *PDUSession) contentLen() int {
	if s.Type == DL && s.PPP {
		return 3
	}
	return 2
}

// extLen is the whole PDU Session Container extension header: length
// octet, content, padding and next-type octet, in 4-octet units.
func (s *PDUSession) extLen() int { return (s.contentLen() + 2 + 3) &^ 3 }

func (s *PDUSession) check() error {
	if s.QFI > 0x3f || s.PPI > 7 {
		return ErrField
	}
	switch s.Type {
	case DL:
		if !s.PPP && s.PPI != 0 {
			return ErrField
		}
	case UL:
		if s.RQI || s.PPP || s.PPI != 0 {
			return ErrField // DL-only fields
		}
	default:
		return ErrField
	}
	return nil
}

// GPDUHeaderLen is the length of the G-PDU header PrependGPDU writes: 8
// octets without a PDU Session Container, else 12 plus the container.
func GPDUHeaderLen(psc *PDUSession) int {
	if psc == nil {
		return HeaderLen
	}
	return HeaderLen + 4 + psc.extLen()
}

// PrependGPDU writes a G-PDU header for tunnel teid, with a PDU Session
// Container when psc is not nil, into buf just before the payload
// buf[off:], and returns the whole G-PDU, buf[off-GPDUHeaderLen(psc):]. It
// does not allocate.
func PrependGPDU(buf []byte, off int, teid uint32, psc *PDUSession) ([]byte, error) {
	if off < 0 || off > len(buf) {
		return nil, ErrHeadroom
	}
	hl := GPDUHeaderLen(psc)
	if off < hl {
		return nil, ErrHeadroom
	}
	if psc != nil {
		if err := psc.check(); err != nil {
			return nil, err
		}
	}
	n := len(buf) - off + hl - HeaderLen
	if n > 0xffff {
		return nil, ErrLength
	}
	b := buf[off-hl:]
	b[0] = flagsV1
	b[1] = MsgGPDU
	binary.BigEndian.PutUint16(b[2:4], uint16(n))
	binary.BigEndian.PutUint32(b[4:8], teid)
	if psc == nil {
		return b, nil
	}
	// TS 29.281 5.1: E=1 adds sequence number (not interpreted, S=0),
	// N-PDU number (PN=0) and the first extension header type.
	b[0] |= FlagE
	b[8], b[9], b[10] = 0, 0, 0
	b[11] = ExtPDUSessionContainer
	e := b[12:hl]
	clear(e)
	e[0] = uint8(len(e) / 4)
	psc.put(e[1 : 1+psc.contentLen()])
	e[len(e)-1] = ExtNone // padding is already zero
	return b, nil
}

// put writes s's content, contentLen octets, into c (TS 38.415 5.5.2.1,
// 5.5.2.2): PDU type in bits 8-5 of octet 1; QFI in bits 6-1 of octet 2,
// with PPP and RQI above it for DL; then PPI.
func (s *PDUSession) put(c []byte) {
	c[0] = uint8(s.Type) << 4
	c[1] = s.QFI
	if s.Type == DL {
		if s.PPP {
			c[1] |= 0x80
			c[2] = s.PPI << 5
		}
		if s.RQI {
			c[1] |= 0x40
		}
	}
}

// SetTEID rewrites the TEID of the GTP-U message b in place.
func SetTEID(b []byte, teid uint32) error {
	if len(b) < HeaderLen {
		return ErrShort
	}
	binary.BigEndian.PutUint32(b[4:8], teid)
	return nil
}
