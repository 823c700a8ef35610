package pfcp

import (
	"encoding/binary"
	"errors"
	"fmt"

	"github.com/wmnsk/go-pfcp/ie"
	"github.com/wmnsk/go-pfcp/message"
)

// msgKind classifies a message type (TS 29.244 7.3, Table 7.3-1).
type msgKind uint8

const (
	kindUnknown msgKind = iota
	kindRequest
	kindResponse
)

// msgInfo says what the node needs to know of each message type.
type msgInfo struct {
	kind    msgKind
	session bool // session related: the header carries a SEID (S=1)
	// responseNodeID: the response carries a mandatory Node ID (node-level
	// rejections are built with it).
	responseNodeID bool
	// responseCause: the response carries a Cause (all but heartbeat).
	responseCause bool
}

var msgTable = [256]msgInfo{
	message.MsgTypeHeartbeatRequest:            {kind: kindRequest},
	message.MsgTypeHeartbeatResponse:           {kind: kindResponse},
	message.MsgTypePFDManagementRequest:        {kind: kindRequest, responseCause: true},
	message.MsgTypePFDManagementResponse:       {kind: kindResponse},
	message.MsgTypeAssociationSetupRequest:     {kind: kindRequest, responseNodeID: true, responseCause: true},
	message.MsgTypeAssociationSetupResponse:    {kind: kindResponse},
	message.MsgTypeAssociationUpdateRequest:    {kind: kindRequest, responseNodeID: true, responseCause: true},
	message.MsgTypeAssociationUpdateResponse:   {kind: kindResponse},
	message.MsgTypeAssociationReleaseRequest:   {kind: kindRequest, responseNodeID: true, responseCause: true},
	message.MsgTypeAssociationReleaseResponse:  {kind: kindResponse},
	message.MsgTypeVersionNotSupportedResponse: {kind: kindResponse},
	message.MsgTypeNodeReportRequest:           {kind: kindRequest, responseNodeID: true, responseCause: true},
	message.MsgTypeNodeReportResponse:          {kind: kindResponse},
	message.MsgTypeSessionSetDeletionRequest:   {kind: kindRequest, responseNodeID: true, responseCause: true},
	message.MsgTypeSessionSetDeletionResponse:  {kind: kindResponse},

	message.MsgTypeSessionEstablishmentRequest:  {kind: kindRequest, session: true, responseNodeID: true, responseCause: true},
	message.MsgTypeSessionEstablishmentResponse: {kind: kindResponse, session: true},
	message.MsgTypeSessionModificationRequest:   {kind: kindRequest, session: true, responseCause: true},
	message.MsgTypeSessionModificationResponse:  {kind: kindResponse, session: true},
	message.MsgTypeSessionDeletionRequest:       {kind: kindRequest, session: true, responseCause: true},
	message.MsgTypeSessionDeletionResponse:      {kind: kindResponse, session: true},
	message.MsgTypeSessionReportRequest:         {kind: kindRequest, session: true, responseCause: true},
	message.MsgTypeSessionReportResponse:        {kind: kindResponse, session: true},
}

// header is the part of the PFCP header (TS 29.244 7.2.2) the node reads
// before handing a message to go-pfcp.
type header struct {
	version uint8
	fo, s   bool
	typ     uint8
	seid    uint64
	seq     uint32
	size    int // octets of this message, header included
}

// Header errors; all count as malformed.
var (
	errShort      = errors.New("shorter than a PFCP header")
	errLength     = errors.New("length field disagrees with the datagram")
	errSEIDFlag   = errors.New("S flag does not match the message type")
	errBadVersion = errors.New("unsupported PFCP version")
)

// parseHeader reads one message header at the start of b (TS 29.244 7.2.2.1):
// octet 1 version (bits 6-8), FO (bit 3), MP (bit 2), S (bit 1); octet 2
// type; octets 3-4 length of what follows octet 4; [SEID]; sequence number
// (3 octets); priority/spare.
func parseHeader(b []byte) (header, error) {
	var h header
	if len(b) < 8 {
		return h, errShort
	}
	h.version = b[0] >> 5
	h.fo = b[0]&0x04 != 0
	h.s = b[0]&0x01 != 0
	h.typ = b[1]
	h.size = int(binary.BigEndian.Uint16(b[2:4])) + 4
	off := 4
	if h.s {
		if len(b) < 16 {
			return h, errShort
		}
		h.seid = binary.BigEndian.Uint64(b[4:12])
		off = 12
	}
	h.seq = uint32(b[off])<<16 | uint32(b[off+1])<<8 | uint32(b[off+2])
	if h.version != 1 {
		return h, errBadVersion
	}
	if h.size < off+4 || h.size > len(b) {
		return h, errLength
	}
	info := msgTable[h.typ]
	if info.kind != kindUnknown && info.session != h.s {
		return h, errSEIDFlag
	}
	return h, nil
}

// marshal encodes m.
func marshal(m message.Message) ([]byte, error) {
	b := make([]byte, m.MarshalLen())
	if err := m.MarshalTo(b); err != nil {
		return nil, fmt.Errorf("pfcp: encode %s: %w", m.MessageTypeName(), err)
	}
	return b, nil
}

// rejection builds the response to request type t carrying only cause (and
// the Node ID where the response must have one); nil for heartbeats, whose
// response has no Cause. A session related rejection has SEID 0: the
// sender's SEID is unknown (TS 29.244 7.2.2.4.2).
func rejection(t uint8, seq uint32, nodeID *ie.IE, cause uint8, offending uint16) message.Message {
	info := msgTable[t]
	if info.kind != kindRequest || !info.responseCause {
		return nil
	}
	ies := make([]*ie.IE, 0, 3)
	if info.responseNodeID {
		ies = append(ies, nodeID)
	}
	ies = append(ies, ie.NewCause(cause))
	if offending != 0 {
		ies = append(ies, ie.NewOffendingIE(offending))
	}
	if info.session {
		return message.NewGeneric(t+1, 0, seq, ies...)
	}
	return message.NewGenericWithoutSEID(t+1, seq, ies...)
}

// causeOf reads the Cause IE of a response and turns a rejection into a
// *CauseError.
func causeOf(name string, cause, offending *ie.IE) error {
	if cause == nil {
		return fmt.Errorf("pfcp: %s: %w", name, missing(ie.Cause))
	}
	c, err := cause.Cause()
	if err != nil {
		return fmt.Errorf("pfcp: %s: %w", name, incorrect(ie.Cause, err))
	}
	if c == CauseRequestAccepted {
		return nil
	}
	ce := &CauseError{Message: name, Cause: c}
	if offending != nil {
		ce.OffendingIE, _ = offending.OffendingIE()
	}
	return ce
}

// ieErrorCause maps a decode error to the Cause and Offending IE a response
// carries (TS 29.244 7.6).
func ieErrorCause(err error) (uint8, uint16) {
	var ie *IEError
	if errors.As(err, &ie) {
		return ie.Cause, ie.IE
	}
	return CauseMandatoryIEIncorrect, 0
}

// IECause is ieErrorCause for other packages: the Cause and Offending IE
// type for a decode error from this package.
func IECause(err error) (cause uint8, offendingIE uint16) { return ieErrorCause(err) }
