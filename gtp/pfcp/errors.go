package pfcp

import (
	"errors"
	"fmt"

	"github.com/wmnsk/go-pfcp/ie"
)

// Errors a Node returns; test with errors.Is.
var (
	// ErrTimeout: a request and its N1 retransmissions went unanswered.
	ErrTimeout = errors.New("no response after retransmissions")
	// ErrClosed: the node has stopped (its context ended).
	ErrClosed = errors.New("node stopped")
	// ErrNotAssociated: there is no PFCP association with the peer.
	ErrNotAssociated = errors.New("no PFCP association with peer")
	// ErrUnexpectedResponse: the peer answered with a message of another type.
	ErrUnexpectedResponse = errors.New("unexpected response type")
)

// Cause values (TS 29.244 8.2.1, Table 8.2.1-1).
const (
	CauseRequestAccepted                 = ie.CauseRequestAccepted
	CauseRequestRejected                 = ie.CauseRequestRejected
	CauseSessionContextNotFound          = ie.CauseSessionContextNotFound
	CauseMandatoryIEMissing              = ie.CauseMandatoryIEMissing
	CauseConditionalIEMissing            = ie.CauseConditionalIEMissing
	CauseInvalidLength                   = ie.CauseInvalidLength
	CauseMandatoryIEIncorrect            = ie.CauseMandatoryIEIncorrect
	CauseInvalidForwardingPolicy         = ie.CauseInvalidForwardingPolicy
	CauseInvalidFTEIDAllocationOption    = ie.CauseInvalidFTEIDAllocationOption
	CauseNoEstablishedPFCPAssociation    = ie.CauseNoEstablishedPFCPAssociation
	CauseRuleCreationModificationFailure = ie.CauseRuleCreationModificationFailure
	CausePFCPEntityInCongestion          = ie.CausePFCPEntityInCongestion
	CauseNoResourcesAvailable            = ie.CauseNoResourcesAvailable
	CauseServiceNotSupported             = ie.CauseServiceNotSupported
	CauseSystemFailure                   = ie.CauseSystemFailure
	CauseRedirectionRequested            = ie.CauseRedirectionRequested
)

var causeNames = map[uint8]string{
	CauseRequestAccepted:                 "Request accepted",
	CauseRequestRejected:                 "Request rejected",
	CauseSessionContextNotFound:          "Session context not found",
	CauseMandatoryIEMissing:              "Mandatory IE missing",
	CauseConditionalIEMissing:            "Conditional IE missing",
	CauseInvalidLength:                   "Invalid length",
	CauseMandatoryIEIncorrect:            "Mandatory IE incorrect",
	CauseInvalidForwardingPolicy:         "Invalid Forwarding Policy",
	CauseInvalidFTEIDAllocationOption:    "Invalid F-TEID allocation option",
	CauseNoEstablishedPFCPAssociation:    "No established PFCP Association",
	CauseRuleCreationModificationFailure: "Rule creation/modification Failure",
	CausePFCPEntityInCongestion:          "PFCP entity in congestion",
	CauseNoResourcesAvailable:            "No resources available",
	CauseServiceNotSupported:             "Service not supported",
	CauseSystemFailure:                   "System failure",
	CauseRedirectionRequested:            "Redirection Requested",
}

// CauseName is the TS 29.244 name of a Cause value.
func CauseName(c uint8) string {
	if s, ok := causeNames[c]; ok {
		return s
	}
	return fmt.Sprintf("cause %d", c)
}

// CauseError is a response whose Cause is not "Request accepted".
type CauseError struct {
	Message     string // the response, e.g. "Session Establishment Response"
	Cause       uint8
	OffendingIE uint16 // type of the Offending IE, 0 if none was sent
}

func (e *CauseError) Error() string {
	s := fmt.Sprintf("%s: %s (%d)", e.Message, CauseName(e.Cause), e.Cause)
	if e.OffendingIE != 0 {
		s += fmt.Sprintf(", offending IE type %d", e.OffendingIE)
	}
	return s
}

// IEError says which IE of a received message is missing or wrong, and the
// Cause a response should carry (TS 29.244 7.6).
type IEError struct {
	IE    uint16 // IE type
	Cause uint8  // CauseMandatoryIEMissing, CauseMandatoryIEIncorrect, ...
	Err   error  // detail, may be nil
}

func (e *IEError) Error() string {
	s := fmt.Sprintf("IE type %d: %s", e.IE, CauseName(e.Cause))
	if e.Err != nil {
		s += ": " + e.Err.Error()
	}
	return s
}

func (e *IEError) Unwrap() error { return e.Err }

func missing(t uint16) error { return &IEError{IE: t, Cause: CauseMandatoryIEMissing} }

func incorrect(t uint16, err error) error {
	return &IEError{IE: t, Cause: CauseMandatoryIEIncorrect, Err: err}
}
