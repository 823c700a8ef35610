package ran

import (
	"fmt"
	"net/netip"
	"sync/atomic"
	"time"

	"github.com/simgate/simgate/core/udr"
	"github.com/simgate/simgate/sim/aka"
	"github.com/simgate/simgate/sim/gnb"
	"github.com/simgate/simgate/sim/ue"
)

// UE is the UE side the runner drives; *ue.UE is one. It reports what
// happens through the OnEvent of the ue.Config it was made with.
type UE interface {
	RegistrationRequest() ([]byte, error)
	Handle(dl []byte) ([][]byte, error)
	EstablishSession(psi uint8) ([]byte, error)
	Deregister(switchOff bool) ([]byte, error)
	State() ue.Status
	USIMState() aka.State
}

// NewUEFunc makes a UE from its configuration.
type NewUEFunc func(ue.Config) (UE, error)

// newSimUE is the default NewUEFunc.
func newSimUE(c ue.Config) (UE, error) {
	u, err := ue.New(c)
	if err != nil {
		return nil, err
	}
	return u, nil
}

// sessionPSI is the PDU session identity the runner opens.
const sessionPSI = 1

// causeSynchFailure is 5GMM cause #21 (TS 24.501 9.11.3.2).
const causeSynchFailure = 21

type phase uint8

const (
	phaseNew           phase = iota
	phaseRegistering         // Registration Request sent
	phaseRegistered          // Registration Accept seen; session next
	phaseSession             // PDU Session Establishment Request sent
	phaseReady               // attached (with its session)
	phaseFailed              // the attach failed; failure says why
	phaseDeregistering       // Deregistration Request sent
	phaseDone                // deregistered, or gone
)

func (p phase) attaching() bool { return p >= phaseRegistering && p <= phaseSession }

// simUE is one UE of a run. After Attach, its fields are touched only on
// its gNB worker (the NAS and Handler calls, and Do); before, only by the
// launcher.
type simUE struct {
	r    *Runner
	card *udr.SIMCard
	imei string
	ue   UE
	g    *gnb.GNB
	gu   atomic.Pointer[gnb.UE]
	// token is the outcome of the token fetch (Config.Token).
	token atomic.Pointer[TokenResult]

	phase     phase
	sessionUp bool // the UE saw its PDU Session Establishment Accept
	// resourcesUp: the gNB set up the session's resources (and tunnels).
	resourcesUp bool
	since       time.Time // start of the procedure under way
	timer       *time.Timer
	failure     string // why the attach failed
	// attached and deregistered say the UE was counted in the run's
	// attach and deregistration waits.
	attached, deregistered bool
}

// Handle gives a downlink NAS PDU to the UE (gnb.NAS).
func (s *simUE) Handle(dl []byte) ([][]byte, error) { return s.ue.Handle(dl) }

// SessionAddr is the address the UE learnt for PDU session psi
// (gnb.SessionAddresser).
func (s *simUE) SessionAddr(psi uint8) (netip.Addr, bool) {
	se, ok := s.ue.State().Sessions[psi]
	if !ok || !se.IPv4.IsValid() {
		return netip.Addr{}, false
	}
	return se.IPv4, true
}

// start sends the Registration Request (on the launcher goroutine).
func (s *simUE) start() {
	s.r.st.mu.Lock()
	s.r.st.started++
	s.r.st.mu.Unlock()
	if s.g == nil {
		s.phase = phaseRegistering
		s.fail("ng-setup-failure")
		return
	}
	pdu, err := s.ue.RegistrationRequest()
	if err != nil {
		s.r.log.Warn("ran: registration request", "imsi", s.card.IMSI, "err", err)
		s.phase = phaseRegistering
		s.fail("ue-error")
		return
	}
	s.phase, s.since = phaseRegistering, time.Now()
	s.timer = time.AfterFunc(s.r.cfg.Timeout, s.onTimer)
	gu, err := s.g.Attach(s, pdu)
	if err != nil {
		s.timer.Stop()
		s.fail("n2-lost")
		return
	}
	s.gu.Store(gu)
}

// onTimer runs on the timer's goroutine: it checks the deadline on the
// UE's worker.
func (s *simUE) onTimer() {
	gu := s.gu.Load()
	if gu == nil {
		return
	}
	_ = gu.Do(func() {
		if time.Since(s.since) < s.r.cfg.Timeout {
			return // a procedure started since the timer was set
		}
		switch {
		case s.phase.attaching():
			s.fail("timeout")
			// Free what the AMF holds for a UE that went quiet.
			if cur := s.gu.Load(); cur != nil && !cur.Released() {
				_ = cur.RequestRelease()
			}
		case s.phase == phaseDeregistering:
			s.r.st.fail("deregistration-timeout")
			s.finishDeregistration()
		}
	})
}

func (s *simUE) resetTimer() {
	s.since = time.Now()
	if s.timer != nil {
		s.timer.Reset(s.r.cfg.Timeout)
	}
}

func (s *simUE) stopTimer() {
	if s.timer != nil {
		s.timer.Stop()
	}
}

// fail ends an attach that went wrong.
func (s *simUE) fail(cause string) {
	if !s.phase.attaching() {
		return
	}
	s.phase, s.failure = phaseFailed, cause
	s.stopTimer()
	s.r.st.fail(cause)
	s.attachDone()
}

func (s *simUE) ready() {
	s.phase = phaseReady
	s.stopTimer()
	s.r.st.mu.Lock()
	s.r.st.ready++
	s.r.st.mu.Unlock()
	s.attachDone()
}

func (s *simUE) attachDone() {
	if !s.attached {
		s.attached = true
		s.r.attach.Done()
	}
}

// onUEEvent is the UE's OnEvent: it runs inside the UE's methods, so it
// only records; anything to send waits for the gNB's EventNAS, after the
// UE's own answers have gone up.
func (s *simUE) onUEEvent(e ue.Event) {
	switch e.Kind {
	case ue.EventRegistered:
		if s.phase == phaseRegistering {
			s.r.st.sample(LatencyRegistration, time.Since(s.since))
			s.phase = phaseRegistered
		}
	case ue.EventRegistrationRejected:
		s.fail(fmt.Sprintf("5gmm-cause-%d", e.Cause))
	case ue.EventAuthenticationRejected:
		s.fail("auth-reject")
	case ue.EventAuthenticationFailed:
		if e.Cause == causeSynchFailure {
			s.r.st.mu.Lock()
			s.r.st.resyncs++
			s.r.st.mu.Unlock()
		}
	case ue.EventSecurityModeRejected:
		s.fail("security-mode-reject")
	case ue.EventSessionEstablished:
		if s.phase == phaseSession && e.PSI == sessionPSI {
			s.r.st.sample(LatencySession, time.Since(s.since))
			s.sessionUp = true
			if s.resourcesUp {
				s.sessionReady(s.gu.Load())
			}
		}
	case ue.EventSessionRejected:
		if s.phase == phaseSession && e.PSI == sessionPSI {
			s.fail(fmt.Sprintf("5gsm-cause-%d", e.Cause))
		}
	case ue.EventDeregistered:
		switch {
		case s.phase == phaseDeregistering:
			s.r.st.sample(LatencyDeregistration, time.Since(s.since))
			s.finishDeregistration()
		case s.phase.attaching():
			s.fail("network-deregistered")
		default:
			s.phase = phaseDone
		}
	case ue.EventDiscarded:
		s.r.log.Debug("ran: UE discarded a message", "imsi", s.card.IMSI, "err", e.Err)
	}
}

// onGNBEvent handles the gNB's events for the UE (u: the UE's gNB context,
// which the launcher may not have stored yet).
func (s *simUE) onGNBEvent(u *gnb.UE, ev gnb.Event) {
	switch ev.Kind {
	case gnb.EventNAS:
		if s.phase == phaseRegistered {
			if s.r.cfg.Session {
				s.startSession(u)
			} else {
				s.ready()
			}
		}
	case gnb.EventSessionSetup:
		// The session is ready when both the UE has its Establishment
		// Accept and the gNB its resources (with the user plane), in
		// either order.
		if s.phase == phaseSession && ev.PSI == sessionPSI {
			s.resourcesUp = true
			if s.sessionUp {
				s.sessionReady(u)
			}
		}
	case gnb.EventSessionFailed:
		if s.phase == phaseSession && ev.PSI == sessionPSI {
			s.fail("session-setup-failed")
		}
	case gnb.EventReleased:
		switch {
		case s.phase.attaching() && ev.Err != nil:
			s.fail("n2-lost")
		case s.phase.attaching():
			s.fail("context-released")
		case s.phase == phaseDeregistering && ev.Err != nil:
			s.r.st.fail("n2-lost")
			s.finishDeregistration()
		}
	}
}

// sessionReady ends the attach of a UE whose session is up at both ends,
// starting its token fetch.
func (s *simUE) sessionReady(gu *gnb.UE) {
	if gu != nil {
		s.startToken(gu)
	}
	s.ready()
}

func (s *simUE) startSession(gu *gnb.UE) {
	pdu, err := s.ue.EstablishSession(sessionPSI)
	if err != nil {
		s.r.log.Warn("ran: PDU session establishment request", "imsi", s.card.IMSI, "err", err)
		s.fail("ue-error")
		return
	}
	s.phase = phaseSession
	s.resetTimer()
	if err := gu.SendNAS(pdu); err != nil {
		s.fail("n2-lost")
	}
}

// deregister starts a UE-originated deregistration (normal, not
// switch-off) of a registered UE; it runs on the UE's worker.
func (s *simUE) deregister() {
	if s.phase == phaseDeregistering || s.phase == phaseDone || s.ue.State().State != ue.Registered {
		s.deregistrationDone()
		return
	}
	pdu, err := s.ue.Deregister(false)
	if err != nil {
		s.r.log.Warn("ran: deregistration request", "imsi", s.card.IMSI, "err", err)
		s.deregistrationDone()
		return
	}
	s.phase = phaseDeregistering
	s.resetTimer()
	if s.timer == nil {
		s.timer = time.AfterFunc(s.r.cfg.Timeout, s.onTimer)
	}
	gu := s.gu.Load()
	if gu.Released() {
		// TS 24.501 5.5.2.2.1: a UE without an N1 signalling connection
		// sends the request in an Initial UE Message.
		ngu, err := s.g.Attach(s, pdu)
		if err != nil {
			s.r.st.fail("n2-lost")
			s.finishDeregistration()
			return
		}
		s.gu.Store(ngu)
		return
	}
	if err := gu.SendNAS(pdu); err != nil {
		s.r.st.fail("n2-lost")
		s.finishDeregistration()
	}
}

func (s *simUE) finishDeregistration() {
	s.phase = phaseDone
	s.stopTimer()
	s.deregistrationDone()
}

func (s *simUE) deregistrationDone() {
	if !s.deregistered {
		s.deregistered = true
		s.r.dereg.Done()
	}
}
