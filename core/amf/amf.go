// Package amf is the AMF: NG setup, registration, NAS security and UE
// contexts.
//
// It accepts N2 associations from gNBs (core/n2) and reads NGAP on one
// goroutine per association. UE-associated messages go to the UE's context,
// whose steps run one at a time on a short-lived worker (no goroutine per
// UE is kept; a bounded number of steps run at once). Registration follows
// TS 23.502 4.2.2.2 and TS 24.501 5.5.1: identification, primary
// authentication through the AUSF (5G AKA, TS 33.501 6.1.3.2), NAS security
// mode control with NIA1-3 / NEA0-3 (TS 33.501 6.7.2), the PEI check
// against the SIM's IMEI lock, Initial Context Setup with KgNB, and
// Registration Accept/Complete. It relays 5GSM to the SMF (PDU sessions),
// handles UE- and network-initiated deregistration and releases UE
// contexts. Malformed, replayed or wrongly protected messages are dropped
// and logged.
//
// flow.md (the contract with the RAN/UE simulator) fixes the message
// sequence and the reject causes.
package amf

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"sync"
	"time"

	"github.com/simgate/simgate/core/ausf"
	"github.com/simgate/simgate/core/n2"
	"github.com/simgate/simgate/core/smf"
	"github.com/simgate/simgate/core/udm"
)

// Authenticator is the AUSF as the AMF (SEAF) uses it; *ausf.AUSF is one.
type Authenticator interface {
	Authenticate(ctx context.Context, id udm.Identity, snn string) (ausf.Challenge, error)
	Confirm(ctx context.Context, id ausf.ContextID, resp ausf.Response) (ausf.Result, error)
	Resync(ctx context.Context, id ausf.ContextID, auts [14]byte) (ausf.Challenge, error)
	Abort(id ausf.ContextID)
}

// Subscribers is the UDM's subscription data service; *udm.UDM is one.
type Subscribers interface {
	Subscription(ctx context.Context, supi string) (udm.Subscription, error)
}

// SessionManager is the SMF as the AMF calls it in-process; *smf.SMF is
// one.
type SessionManager interface {
	CreateSession(ctx context.Context, id smf.Identity, psi uint8, sst uint8, sd string, dnn string, n1 []byte) (smf.Result, error)
	ActivateSession(ctx context.Context, supi string, psi uint8, n2 []byte) error
	ReleaseSession(ctx context.Context, supi string, psi uint8, n1 []byte) (smf.Result, error)
	ReleaseAll(ctx context.Context, supi string) error
}

// Procedure names a procedure for metrics.
type Procedure string

// Procedures counted by Metrics.Procedure.
const (
	ProcNGSetup             Procedure = "ng_setup"
	ProcRegistration        Procedure = "registration"
	ProcAuthentication      Procedure = "authentication"
	ProcSecurityMode        Procedure = "security_mode"
	ProcIdentification      Procedure = "identification"
	ProcDeregistrationUE    Procedure = "deregistration_ue"
	ProcDeregistrationNW    Procedure = "deregistration_network"
	ProcSessionEstablish    Procedure = "pdu_session_establishment"
	ProcSessionRelease      Procedure = "pdu_session_release"
	ProcUEContextRelease    Procedure = "ue_context_release"
	ProcInitialContextSetup Procedure = "initial_context_setup"
)

// Outcome is how a procedure ended.
type Outcome string

// Outcomes.
const (
	Success Outcome = "success"
	Reject  Outcome = "reject"
	Failure Outcome = "failure"
	Timeout Outcome = "timeout"
)

// Messages counted by Metrics.Reject.
const (
	RejectRegistration   = "registration_reject"
	RejectAuthentication = "authentication_reject"
	RejectNGSetup        = "ng_setup_failure"
)

// Metrics receives the AMF's counters; a Prometheus adapter implements it.
// Methods are called from many goroutines and must be quick.
type Metrics interface {
	// Procedure counts a finished procedure; d is its duration when known
	// (registration: from Initial UE Message to Registration Complete).
	Procedure(p Procedure, o Outcome, d time.Duration)
	// Reject counts a reject sent: msg is one of the Reject* names and
	// cause the 5GMM cause (0 for Authentication Reject) or NGAP cause.
	Reject(msg string, cause uint8)
	// Dropped counts a received message that was discarded; protocol is
	// "ngap" or "nas".
	Dropped(protocol, reason string)
}

type noMetrics struct{}

func (noMetrics) Procedure(Procedure, Outcome, time.Duration) {}
func (noMetrics) Reject(string, uint8)                        {}
func (noMetrics) Dropped(string, string)                      {}

// Deps are the AMF's collaborators.
type Deps struct {
	AUSF Authenticator
	UDM  Subscribers
	SMF  SessionManager
	// Logger receives the AMF's log lines; nil discards them.
	Logger *slog.Logger
	// Metrics receives counters; nil discards them.
	Metrics Metrics
	// Rand is the source of 5G-TMSIs; nil means crypto/rand.
	Rand io.Reader
}

// Errors of the AMF API.
var (
	// ErrNotRegistered: no registered UE has the SUPI.
	ErrNotRegistered = errors.New("amf: UE not registered")
	// ErrClosed: the AMF has stopped.
	ErrClosed = errors.New("amf: stopped")
)

// AMF is one AMF instance.
type AMF struct {
	cfg     Config
	p       *parsedConfig
	ausf    Authenticator
	udm     Subscribers
	smf     SessionManager
	log     *slog.Logger
	metrics Metrics

	randMu sync.Mutex
	rand   io.Reader

	ctx  context.Context // cancelled when the AMF stops
	stop context.CancelFunc
	sem  chan struct{} // bounds concurrently running UE steps

	life    sync.Mutex // guards closed and wg.Add against wg.Wait
	closed  bool
	wg      sync.WaitGroup
	serving bool

	mu      sync.Mutex // the maps and counters below
	byAMFID map[int64]*ue
	bySUPI  map[string]*ue
	byTMSI  map[uint32]string // 5G-TMSI -> SUPI, kept after deregistration
	tmsiOf  map[string]uint32 // SUPI -> its latest 5G-TMSI
	gnbs    map[*gnb]struct{}
	nextID  int64
	regs    int
}

// New returns an AMF. It does nothing until Run or Serve.
func New(cfg Config, deps Deps) (*AMF, error) {
	p, err := cfg.parse()
	if err != nil {
		return nil, err
	}
	if deps.AUSF == nil || deps.UDM == nil || deps.SMF == nil {
		return nil, errors.New("amf: AUSF, UDM and SMF are required")
	}
	if deps.Logger == nil {
		deps.Logger = slog.New(slog.DiscardHandler)
	}
	if deps.Metrics == nil {
		deps.Metrics = noMetrics{}
	}
	if deps.Rand == nil {
		deps.Rand = rand.Reader
	}
	ctx, stop := context.WithCancel(context.Background())
	return &AMF{
		cfg: cfg, p: p, ausf: deps.AUSF, udm: deps.UDM, smf: deps.SMF,
		log: deps.Logger, metrics: deps.Metrics, rand: deps.Rand,
		ctx: ctx, stop: stop, sem: make(chan struct{}, cfg.Workers),
		byAMFID: make(map[int64]*ue), bySUPI: make(map[string]*ue),
		byTMSI: make(map[uint32]string), tmsiOf: make(map[string]uint32), gnbs: make(map[*gnb]struct{}),
	}, nil
}

// Run listens on the configured N2 address and serves until ctx is done.
func (a *AMF) Run(ctx context.Context) error {
	ncfg := a.cfg.N2
	if ncfg.Logger == nil {
		ncfg.Logger = a.log
	}
	// Serve closes the listener when ctx ends.
	ln, err := n2.Listen(context.WithoutCancel(ctx), ncfg)
	if err != nil {
		return fmt.Errorf("amf: %w", err)
	}
	a.log.Info("amf: listening for gNBs", "addr", ln.Addr().String(), "transport", string(ln.Transport()),
		"plmn", a.cfg.PLMN.MCC+"-"+a.cfg.PLMN.MNC, "name", a.cfg.Name)
	return a.Serve(ctx, ln)
}

// Serve accepts associations on ln until ctx is done or ln fails, then
// closes ln and every association, waits for the UE steps in progress and
// returns. It returns nil when stopped by ctx. An AMF serves once.
func (a *AMF) Serve(ctx context.Context, ln n2.Listener) error {
	if ln == nil {
		return errors.New("amf: Serve: nil listener")
	}
	a.life.Lock()
	if a.serving || a.closed {
		a.life.Unlock()
		ln.Close()
		return errors.New("amf: Serve called twice")
	}
	a.serving = true
	a.life.Unlock()

	var acceptErr error
	done := make(chan struct{})
	go func() {
		defer close(done)
		for {
			c, err := ln.Accept(ctx)
			if err != nil {
				if ctx.Err() == nil {
					acceptErr = fmt.Errorf("amf: accept: %w", err)
				}
				return
			}
			if !a.goWork(func() { a.serveAssociation(c) }) {
				c.Close()
				return
			}
		}
	}()
	select {
	case <-ctx.Done():
	case <-done:
	}
	ln.Close()
	<-done
	a.shutdown()
	return acceptErr
}

// shutdown stops the AMF: no new work (a timer that fires later finds the
// AMF closed and does nothing), associations closed, calls in progress
// cancelled, workers waited for.
func (a *AMF) shutdown() {
	a.life.Lock()
	a.closed = true
	a.life.Unlock()
	a.stop()
	a.mu.Lock()
	for g := range a.gnbs {
		g.conn.Close()
	}
	a.mu.Unlock()
	a.wg.Wait()
	// No worker runs now and none can start: stop the timers so that
	// nothing keeps the contexts alive.
	a.mu.Lock()
	for _, u := range a.byAMFID {
		u.stopTimers()
	}
	for _, u := range a.bySUPI {
		u.stopTimers()
	}
	a.mu.Unlock()
}

// goWork runs fn on a new goroutine counted in a.wg, unless the AMF has
// stopped.
func (a *AMF) goWork(fn func()) bool {
	a.life.Lock()
	if a.closed {
		a.life.Unlock()
		return false
	}
	a.wg.Add(1)
	a.life.Unlock()
	go func() {
		defer a.wg.Done()
		fn()
	}()
	return true
}

// callCtx bounds one call to the UDM, AUSF or SMF.
func (a *AMF) callCtx() (context.Context, context.CancelFunc) {
	return context.WithTimeout(a.ctx, a.cfg.Timers.Call)
}

// Deregister deregisters the UE with the SUPI from the network side
// (TS 24.501 5.5.2.3): DEREGISTRATION REQUEST (re-registration not
// required), then on the UE's accept its PDU sessions and its context are
// released. It returns once the request is sent, or the UE is deregistered
// locally if it has no signalling connection.
func (a *AMF) Deregister(ctx context.Context, supi string) error {
	a.mu.Lock()
	u := a.bySUPI[supi]
	a.mu.Unlock()
	if u == nil {
		return fmt.Errorf("%w: %s", ErrNotRegistered, supi)
	}
	done := make(chan error, 1)
	if !a.postAlways(u, func() { done <- a.networkDeregister(u) }) {
		return ErrClosed
	}
	select {
	case err := <-done:
		return err
	case <-ctx.Done():
		return ctx.Err()
	}
}

// UEInfo describes a UE context.
type UEInfo struct {
	SUPI       string
	IMEI       string // 15 digits; "" if the UE reported none
	MSISDN     string
	GUTI       string // MCC MNC AMF-ID 5G-TMSI, hex
	Registered bool
	Connected  bool    // has an NG signalling connection
	Sessions   []uint8 // active PDU session IDs
	Integrity  string  // e.g. "NIA2"
	Ciphering  string  // e.g. "NEA0"
}

// UE returns the context of the UE with the SUPI.
func (a *AMF) UE(ctx context.Context, supi string) (UEInfo, error) {
	a.mu.Lock()
	u := a.bySUPI[supi]
	a.mu.Unlock()
	if u == nil {
		return UEInfo{}, fmt.Errorf("%w: %s", ErrNotRegistered, supi)
	}
	done := make(chan UEInfo, 1)
	if !a.postAlways(u, func() { done <- a.info(u) }) {
		return UEInfo{}, ErrClosed
	}
	select {
	case i := <-done:
		return i, nil
	case <-ctx.Done():
		return UEInfo{}, ctx.Err()
	}
}

// Stats are counts for gauges.
type Stats struct {
	GNBs       int // associations with NG Setup done
	Contexts   int // UE contexts with a signalling connection
	Registered int // registered UEs
	KnownGUTIs int // 5G-GUTIs the AMF can resolve
}

// Stats returns the current counts.
func (a *AMF) Stats() Stats {
	a.mu.Lock()
	defer a.mu.Unlock()
	n := 0
	for g := range a.gnbs {
		if g.isSetup() {
			n++
		}
	}
	return Stats{GNBs: n, Contexts: len(a.byAMFID), Registered: a.regs, KnownGUTIs: len(a.byTMSI)}
}
