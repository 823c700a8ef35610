package amf

import (
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"log/slog"
	"runtime/debug"
	"sync"
	"time"

	"github.com/free5gc/nas/ie"

	"github.com/simgate/simgate/core/ausf"
	"github.com/simgate/simgate/core/udm"
	"github.com/simgate/simgate/core/udr"
)

// ueState is the 5GMM state of a UE context as the AMF runs it.
type ueState uint8

const (
	stNew        ueState = iota // Initial UE Message received
	stIdentity                  // IDENTITY REQUEST sent
	stAuth                      // AUTHENTICATION REQUEST sent
	stSMC                       // SECURITY MODE COMMAND sent
	stAccept                    // REGISTRATION ACCEPT sent
	stRegistered                // REGISTRATION COMPLETE received
	stNWDereg                   // network-initiated DEREGISTRATION REQUEST sent
	stReleasing                 // UE CONTEXT RELEASE COMMAND sent
	stGone                      // removed
)

var stateNames = [...]string{"new", "identity", "authentication", "security-mode", "accept-sent", "registered",
	"deregistering", "releasing", "gone"}

func (s ueState) String() string {
	if int(s) < len(stateNames) {
		return stateNames[s]
	}
	return fmt.Sprintf("state-%d", s)
}

// Session states, per PDU session ID.
const (
	sessNone    uint8 = iota
	sessPending       // PDU Session Resource Setup Request sent
	sessActive        // gNB answered; SMF activated
	sessRelease       // release command sent
)

// ue is one UE context: its NG signalling connection (gNB, RAN and AMF UE
// NGAP IDs), its 5GMM state and its NAS security context. Its fields below
// the queue are owned by whichever worker runs its steps (one at a time);
// other goroutines reach it only through post.
type ue struct {
	qmu     sync.Mutex
	queue   []step
	running bool

	amfID int64
	g     *gnb
	ranID int64
	state ueState
	start time.Time

	identity udm.Identity // what the UE gave (SUCI or SUPI of a known 5G-GUTI)
	supi     string
	imei     string
	msisdn   string
	lock     udr.IMEILock
	tmsi     uint32
	hasTMSI  bool

	secCap           *ie.UESecCapability
	initialProtected bool // the initial NAS message was integrity protected
	ngksi            uint8

	auth struct {
		active  bool
		id      ausf.ContextID
		rand    [16]byte
		autn    [16]byte
		hxres   [16]byte
		resyncs int
	}
	pendingSec *nasSecurity // SECURITY MODE COMMAND sent with it
	sec        *nasSecurity // in use

	sessions [16]uint8 // by PDU session ID 1..15

	timer    *time.Timer
	timerGen uint64
	retries  int
	resend   func() error // retransmits the last NAS message
	expire   func()       // runs when retransmissions are exhausted
	log      *slog.Logger
}

// imsi returns the SUPI's digits for log lines, or the SUPI.
func (u *ue) imsi() string {
	if len(u.supi) > 5 && u.supi[:5] == "imsi-" {
		return u.supi[5:]
	}
	return u.supi
}

// logger returns the context's logger with its identifiers.
func (u *ue) logger() *slog.Logger {
	l := u.log.With("amf_ue_ngap_id", u.amfID, "ran_ue_ngap_id", u.ranID)
	if u.supi != "" {
		l = l.With("imsi", u.imsi())
	}
	return l
}

// step is one queued piece of work for a UE.
type step struct {
	fn func()
	// always runs fn even when the context is gone (API calls waiting for
	// an answer).
	always bool
}

// post queues fn as the UE's next step and makes sure a worker runs the
// queue; fn is skipped if the context is gone by then. It reports false
// once the AMF has stopped.
func (a *AMF) post(u *ue, fn func()) bool { return a.enqueue(u, step{fn: fn}) }

// postAlways is post for steps that must run even on a gone context.
func (a *AMF) postAlways(u *ue, fn func()) bool { return a.enqueue(u, step{fn: fn, always: true}) }

func (a *AMF) enqueue(u *ue, s step) bool {
	u.qmu.Lock()
	u.queue = append(u.queue, s)
	if u.running {
		u.qmu.Unlock()
		return true
	}
	u.running = true
	u.qmu.Unlock()
	if !a.goWork(func() { a.drain(u) }) {
		u.qmu.Lock()
		u.running = false
		u.queue = nil
		u.qmu.Unlock()
		return false
	}
	return true
}

// drain runs the UE's queued steps in order, holding a worker slot.
func (a *AMF) drain(u *ue) {
	a.sem <- struct{}{}
	defer func() { <-a.sem }()
	for {
		u.qmu.Lock()
		if len(u.queue) == 0 {
			u.queue = nil
			u.running = false
			u.qmu.Unlock()
			return
		}
		s := u.queue[0]
		u.queue[0] = step{}
		u.queue = u.queue[1:]
		u.qmu.Unlock()
		a.runStep(u, s)
	}
}

// step runs one step. A panic is a bug: it is logged with its stack and
// counted, and the context is dropped, so that one bad message never takes
// the AMF down.
func (a *AMF) runStep(u *ue, s step) {
	defer func() {
		if r := recover(); r != nil {
			a.log.Error("amf: BUG: panic in UE step; context dropped", "amf_ue_ngap_id", u.amfID, "panic", fmt.Sprint(r),
				"stack", string(debug.Stack()))
			a.metrics.Dropped("nas", "panic")
			a.removeUE(u)
		}
	}()
	if u.state == stGone && !s.always {
		return
	}
	s.fn()
}

// arm starts a NAS retransmission timer: after d, resend runs again, up
// to the configured number of retransmissions; then expire runs.
func (a *AMF) arm(u *ue, d time.Duration, resend func() error, expire func()) {
	u.stopTimers()
	u.retries = 0
	u.resend, u.expire = resend, expire
	a.startTimer(u, d)
}

func (a *AMF) startTimer(u *ue, d time.Duration) {
	u.timerGen++
	gen := u.timerGen
	u.timer = time.AfterFunc(d, func() {
		a.post(u, func() {
			if u.timerGen != gen {
				return // stopped or re-armed meanwhile
			}
			u.timer = nil
			if u.retries < a.cfg.Timers.MaxRetransmissions && u.resend != nil {
				u.retries++
				u.logger().Info("amf: timer expired; retransmitting", "state", u.state.String(), "retransmission", u.retries)
				if err := u.resend(); err != nil {
					u.logger().Warn("amf: retransmission failed", "err", err)
				}
				a.startTimer(u, d)
				return
			}
			exp := u.expire
			u.resend, u.expire = nil, nil
			if exp != nil {
				exp()
			}
		})
	})
}

// stopTimers cancels the retransmission or release timer.
func (u *ue) stopTimers() {
	u.timerGen++
	if u.timer != nil {
		u.timer.Stop()
		u.timer = nil
	}
	u.resend, u.expire = nil, nil
}

// newUE makes a context for an Initial UE Message from g and registers its
// NGAP IDs. A context the gNB still had under the same RAN UE NGAP ID is
// released locally: the gNB has reused the ID, so it has forgotten it.
func (a *AMF) newUE(g *gnb, ranID int64) *ue {
	a.mu.Lock()
	a.nextID++
	u := &ue{amfID: a.nextID, g: g, ranID: ranID, start: time.Now(), log: g.log}
	old := g.byRAN[ranID]
	g.byRAN[ranID] = u
	a.byAMFID[u.amfID] = u
	a.mu.Unlock()
	if old != nil {
		a.post(old, func() {
			old.logger().Info("amf: RAN UE NGAP ID reused by the gNB; old context released locally")
			a.connectionLost(old)
		})
	}
	return u
}

// unbind forgets the UE's NG signalling connection.
func (a *AMF) unbind(u *ue) {
	a.mu.Lock()
	if a.byAMFID[u.amfID] == u {
		delete(a.byAMFID, u.amfID)
	}
	if u.g != nil && u.g.byRAN[u.ranID] == u {
		delete(u.g.byRAN, u.ranID)
	}
	a.mu.Unlock()
	u.g = nil
}

// removeUE drops the context entirely: timers, pending authentication,
// NGAP IDs and its SUPI entry. The last 5G-GUTI its SUPI was given stays
// resolvable, so the UE can come back with it.
func (a *AMF) removeUE(u *ue) {
	u.stopTimers()
	if u.auth.active {
		a.ausf.Abort(u.auth.id)
		u.auth.active = false
	}
	a.unbind(u)
	a.mu.Lock()
	if u.supi != "" && a.bySUPI[u.supi] == u {
		delete(a.bySUPI, u.supi)
	}
	if u.state == stRegistered || u.state == stNWDereg {
		a.regs--
	}
	a.mu.Unlock()
	u.state = stGone
	u.sec, u.pendingSec = nil, nil
}

// setRegistered moves the UE to or from the registered state, keeping the
// count.
func (a *AMF) setState(u *ue, s ueState) {
	was := u.state == stRegistered || u.state == stNWDereg
	is := s == stRegistered || s == stNWDereg
	if was != is {
		a.mu.Lock()
		if is {
			a.regs++
		} else {
			a.regs--
		}
		a.mu.Unlock()
	}
	u.state = s
}

// claimSUPI makes u the context of its SUPI. An older context of the same
// SUPI (a re-registration, or a UE that came back on a new connection) is
// superseded: its PDU sessions are released in the SMF now, before u can
// create new ones, and it is told to let go of its connection.
func (a *AMF) claimSUPI(u *ue) {
	a.mu.Lock()
	old := a.bySUPI[u.supi]
	a.bySUPI[u.supi] = u
	a.mu.Unlock()
	if old == nil || old == u {
		return
	}
	ctx, cancel := a.callCtx()
	if err := a.smf.ReleaseAll(ctx, u.supi); err != nil {
		u.logger().Warn("amf: releasing the PDU sessions of the previous context failed", "err", err)
	}
	cancel()
	a.post(old, func() { a.superseded(old) })
}

// allocTMSI gives u a fresh 5G-TMSI (TS 23.003 2.10.1: unique within the
// AMF set), replacing the last one of its SUPI, so that the AMF keeps one
// 5G-GUTI per subscriber however often it registers.
func (a *AMF) allocTMSI(u *ue) (uint32, error) {
	var b [4]byte
	for range 64 {
		a.randMu.Lock()
		_, err := a.rand.Read(b[:])
		a.randMu.Unlock()
		if err != nil {
			return 0, fmt.Errorf("amf: 5G-TMSI: %w", err)
		}
		t := binary.BigEndian.Uint32(b[:])
		a.mu.Lock()
		if _, used := a.byTMSI[t]; used || t == 0xFFFFFFFF {
			a.mu.Unlock()
			continue
		}
		if old, ok := a.tmsiOf[u.supi]; ok {
			delete(a.byTMSI, old)
		}
		a.byTMSI[t], a.tmsiOf[u.supi] = u.supi, t
		a.mu.Unlock()
		u.tmsi, u.hasTMSI = t, true
		return t, nil
	}
	return 0, fmt.Errorf("amf: 5G-TMSI: no free value found")
}

// lookupTMSI resolves a 5G-TMSI of this AMF to a SUPI.
func (a *AMF) lookupTMSI(t uint32) (string, bool) {
	a.mu.Lock()
	supi, ok := a.byTMSI[t]
	a.mu.Unlock()
	return supi, ok
}

// guti formats the UE's 5G-GUTI: MCC, MNC, AMF ID and 5G-TMSI in hex.
func (a *AMF) guti(u *ue) string {
	if !u.hasTMSI {
		return ""
	}
	amfID := []byte{a.cfg.GUAMI.RegionID, byte(a.cfg.GUAMI.SetID >> 2), byte(a.cfg.GUAMI.SetID<<6) | a.cfg.GUAMI.Pointer}
	var t [4]byte
	binary.BigEndian.PutUint32(t[:], u.tmsi)
	return a.p.mcc + a.p.mnc + hex.EncodeToString(amfID) + hex.EncodeToString(t[:])
}

func (a *AMF) info(u *ue) UEInfo {
	i := UEInfo{SUPI: u.supi, IMEI: u.imei, MSISDN: u.msisdn, GUTI: a.guti(u),
		Registered: u.state == stRegistered || u.state == stNWDereg, Connected: u.g != nil}
	for psi, s := range u.sessions {
		if s == sessActive {
			i.Sessions = append(i.Sessions, uint8(psi))
		}
	}
	if u.sec != nil {
		i.Integrity = fmt.Sprintf("NIA%d", u.sec.integ)
		i.Ciphering = fmt.Sprintf("NEA%d", u.sec.ciph)
	}
	return i
}
