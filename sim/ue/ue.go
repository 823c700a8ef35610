package ue

import (
	"context"
	"fmt"
	"log/slog"
	"net/netip"
	"sync"

	"github.com/simgate/simgate/sim/aka"
)

// RegistrationState is the UE's 5GMM state (TS 24.501 5.1.3.2.1), without
// the substates.
type RegistrationState uint8

// 5GMM states.
const (
	Deregistered            RegistrationState = iota // 5GMM-DEREGISTERED
	RegistrationInitiated                            // 5GMM-REGISTERED-INITIATED
	Registered                                       // 5GMM-REGISTERED
	DeregistrationInitiated                          // 5GMM-DEREGISTERED-INITIATED
)

func (s RegistrationState) String() string {
	switch s {
	case Deregistered:
		return "deregistered"
	case RegistrationInitiated:
		return "registration-initiated"
	case Registered:
		return "registered"
	case DeregistrationInitiated:
		return "deregistration-initiated"
	}
	return fmt.Sprintf("state-%d", uint8(s))
}

// SessionState is the state of a PDU session in the UE (TS 24.501 6.1.3.2).
type SessionState uint8

// PDU session states.
const (
	SessionPending   SessionState = iota + 1 // PDU SESSION ACTIVE PENDING
	SessionActive                            // PDU SESSION ACTIVE
	SessionReleasing                         // PDU SESSION INACTIVE PENDING
)

func (s SessionState) String() string {
	switch s {
	case SessionPending:
		return "active-pending"
	case SessionActive:
		return "active"
	case SessionReleasing:
		return "inactive-pending"
	}
	return fmt.Sprintf("session-state-%d", uint8(s))
}

// Session is a PDU session as the UE knows it.
type Session struct {
	PSI   uint8
	State SessionState
	// IPv4 is the PDU address the network assigned (valid once active).
	IPv4 netip.Addr
	// QFI is the QoS flow of the default QoS rule.
	QFI uint8
	// DNN and SNSSAI are those the UE requested.
	DNN    string
	SNSSAI SNSSAI
}

// session is the UE's record of a PDU session: the procedure transaction
// under way (TS 24.501 6.1.3.3) and what the network assigned.
type session struct {
	pti   uint8
	state SessionState
	ipv4  [4]byte
	qfi   uint8
}

// Status is a snapshot of a UE's state.
type Status struct {
	State RegistrationState
	// RejectCause is the 5GMM cause of the last REGISTRATION REJECT, or of
	// the last network-initiated deregistration; 0 for none.
	RejectCause uint8
	// AuthRejected: the network sent AUTHENTICATION REJECT.
	AuthRejected bool
	// GUTI is the 5G-GUTI the UE holds, if HasGUTI.
	GUTI    GUTI
	HasGUTI bool
	// Secured: a 5G NAS security context is in use.
	Secured bool
	// Ciphering and Integrity are the algorithms in use, if Secured.
	Ciphering, Integrity uint8
	// Sessions are the PDU sessions by PDU session identity.
	Sessions map[uint8]Session
}

// EventKind says what happened.
type EventKind uint8

// Events.
const (
	// EventRegistered: REGISTRATION ACCEPT processed.
	EventRegistered EventKind = iota + 1
	// EventRegistrationRejected: REGISTRATION REJECT, with its cause.
	EventRegistrationRejected
	// EventAuthenticationRejected: AUTHENTICATION REJECT.
	EventAuthenticationRejected
	// EventAuthenticationFailed: the UE sent AUTHENTICATION FAILURE, with
	// its cause.
	EventAuthenticationFailed
	// EventSecurityModeRejected: the UE sent SECURITY MODE REJECT, with its
	// cause.
	EventSecurityModeRejected
	// EventDeregistered: deregistration done (accepted, switched off or
	// ordered by the network, with the network's cause if any).
	EventDeregistered
	// EventSessionEstablished: PDU SESSION ESTABLISHMENT ACCEPT processed.
	EventSessionEstablished
	// EventSessionRejected: the establishment failed, with the 5GSM (or,
	// when the AMF could not forward it, 5GMM) cause.
	EventSessionRejected
	// EventSessionReleased: PDU session released, with the 5GSM cause.
	EventSessionReleased
	// EventDiscarded: a downlink message was discarded; Err says why.
	EventDiscarded
)

func (k EventKind) String() string {
	switch k {
	case EventRegistered:
		return "registered"
	case EventRegistrationRejected:
		return "registration-rejected"
	case EventAuthenticationRejected:
		return "authentication-rejected"
	case EventAuthenticationFailed:
		return "authentication-failed"
	case EventSecurityModeRejected:
		return "security-mode-rejected"
	case EventDeregistered:
		return "deregistered"
	case EventSessionEstablished:
		return "session-established"
	case EventSessionRejected:
		return "session-rejected"
	case EventSessionReleased:
		return "session-released"
	case EventDiscarded:
		return "discarded"
	}
	return fmt.Sprintf("event-%d", uint8(k))
}

// Event is something that happened to a UE.
type Event struct {
	SUPI  string // the UE's, "imsi-<digits>"
	Kind  EventKind
	Cause uint8 // 5GMM or 5GSM cause, by Kind
	PSI   uint8 // for session events
	Err   error // for EventDiscarded
}

// UE is a simulated UE with its USIM. Its methods may be called from any
// goroutine; they never block on anything but the UE's own lock.
type UE struct {
	settings
	usim *aka.USIM

	mu           sync.Mutex
	state        RegistrationState
	rejectCause  uint8
	authRejected bool
	guti         GUTI
	hasGUTI      bool
	// initial is the complete REGISTRATION REQUEST of the registration
	// under way, for SECURITY MODE COMPLETE (TS 24.501 4.4.6).
	initial []byte
	// lastRAND and lastRES are the RAND and RES* of the last authentication
	// challenge answered (TS 24.501 5.4.1.3.4: a repeated RAND gets the same
	// RES* without the USIM).
	lastRAND, lastRES [16]byte
	haveLast          bool
	// pending is the context of the last successful authentication, not yet
	// taken into use; current is the context in use.
	pending, current *nasContext
	sessions         map[uint8]*session
	pti              uint8 // last procedure transaction identity used
	events           []Event
}

// New returns a UE in state Deregistered, with its USIM.
func New(cfg Config) (*UE, error) {
	s, err := cfg.settings()
	if err != nil {
		return nil, err
	}
	st := cfg.USIMState
	if st == nil {
		v, err := StateFromSQN(cfg.SQN, cfg.USIM.INDBits)
		if err != nil {
			return nil, err
		}
		st = &v
	}
	usim, err := aka.RestoreUSIM(cfg.K, cfg.OPc, cfg.USIM, *st)
	if err != nil {
		return nil, fmt.Errorf("ue: %s: %w", cfg.IMSI, err)
	}
	return &UE{settings: *s, usim: usim}, nil
}

// SUPI returns the UE's SUPI, "imsi-<digits>".
func (u *UE) SUPI() string { return u.supiStr }

// USIMState returns the USIM's sequence number state, to be saved and given
// back in Config.USIMState so that SQN freshness survives a restart.
func (u *UE) USIMState() aka.State { return u.usim.State() }

// State returns a snapshot of the UE's state.
func (u *UE) State() Status {
	u.mu.Lock()
	defer u.mu.Unlock()
	st := Status{State: u.state, RejectCause: u.rejectCause, AuthRejected: u.authRejected, GUTI: u.guti, HasGUTI: u.hasGUTI}
	if c := u.current; c != nil {
		st.Secured = true
		st.Ciphering, st.Integrity = uint8(c.sc.CipheringAlg), uint8(c.sc.IntegrityAlg)
	}
	if len(u.sessions) > 0 {
		st.Sessions = make(map[uint8]Session, len(u.sessions))
		for psi, s := range u.sessions {
			v := Session{PSI: psi, State: s.state, QFI: s.qfi, DNN: u.dnn, SNSSAI: u.snssai}
			if s.state != SessionPending {
				v.IPv4 = netip.AddrFrom4(s.ipv4)
			}
			st.Sessions[psi] = v
		}
	}
	return st
}

func (u *UE) event(e Event) {
	if u.onEvent != nil {
		e.SUPI = u.supiStr
		u.events = append(u.events, e)
	}
}

// unlock releases the lock and then delivers the events collected under it.
func (u *UE) unlock() {
	evs := u.events
	u.events = nil
	u.mu.Unlock()
	for _, e := range evs {
		u.onEvent(e)
	}
}

func (u *UE) logDiscard(msg string, err error) {
	u.log.LogAttrs(context.Background(), slog.LevelWarn, "ue: "+msg, slog.String("supi", u.supiStr), slog.Any("err", err))
}

// forget drops the security contexts and sessions, as a UE does when it
// leaves 5GMM-REGISTERED (TS 24.501 5.5.2.2.2, 5.5.2.3.2).
func (u *UE) forget() {
	u.pending, u.current = nil, nil
	u.sessions = nil
	u.initial = nil
	u.haveLast = false
}
