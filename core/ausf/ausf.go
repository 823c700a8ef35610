// Package ausf is the AUSF: primary authentication.
//
// The AMF (as SEAF) starts an authentication with Authenticate, giving the
// UE's SUCI or SUPI and the serving network name; the AUSF gets
// authentication data from the UDM (which selects the method), keeps what
// it must check later, and returns a Challenge for the UE. The AMF returns
// the UE's answer with Confirm and learns the SUPI and KSEAF, or an error.
// A synchronisation failure goes back through Resync, which returns a new
// Challenge.
//
// Each method is a small implementation of an internal interface: 5G AKA
// (TS 33.501 6.1.3.2) is here; EAP-AKA' (6.1.3.1) fits the same shape, its
// Challenge and Response carrying EAP packets instead of RAND/AUTN and RES*.
package ausf

import (
	"context"
	"crypto/subtle"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/simgate/simgate/core/udm"
	"github.com/simgate/simgate/sim/kdf"
)

// Errors callers test with errors.Is.
var (
	// ErrUnknownContext: no authentication with that ContextID is pending
	// (never started, finished, aborted or expired).
	ErrUnknownContext = errors.New("ausf: unknown authentication context")
	// ErrAuthFailed: the UE's response does not match (RES* != XRES*).
	ErrAuthFailed = errors.New("ausf: authentication failed")
	// ErrUnsupportedMethod: the UDM selected a method this AUSF lacks.
	ErrUnsupportedMethod = errors.New("ausf: unsupported authentication method")
)

// UDM is what the AUSF needs of the UDM (Nudm_UEAuthentication_Get).
type UDM interface {
	GenerateAuthData(ctx context.Context, req udm.AuthRequest) (udm.AuthData, error)
}

// ContextID names one pending authentication (the "authCtxId" of
// TS 29.509).
type ContextID uint64

// Challenge is what the SEAF sends the UE.
type Challenge struct {
	ID     ContextID
	Method udm.AuthMethod
	// 5G AKA: the 5G SE AV (TS 33.501 6.1.3.2 step 5): RAND, AUTN and
	// HXRES*.
	RAND      [16]byte
	AUTN      [16]byte
	HXRESStar [16]byte
}

// Response is the UE's answer as the SEAF forwards it.
type Response struct {
	// RESStar is the UE's RES* (5G AKA).
	RESStar [16]byte
}

// Result is a successful authentication: the SUPI and the anchor key for
// the serving network (TS 33.501 6.1.3.2 step 12).
type Result struct {
	SUPI  string
	KSEAF [32]byte
}

// Options tune an AUSF; the zero value is usable.
type Options struct {
	// ContextTTL bounds how long a challenge stays confirmable; 0 means
	// DefaultContextTTL.
	ContextTTL time.Duration
	// Now is the clock; nil means time.Now.
	Now func() time.Time
}

// DefaultContextTTL outlives T3560 with its four retransmissions (TS 24.501
// 10.2: 6 s each).
const DefaultContextTTL = 60 * time.Second

// method is one authentication method's AUSF part.
type method interface {
	// confirm checks the response and returns the result.
	confirm(resp Response) (Result, error)
	// challenge is what the UE gets.
	challenge(id ContextID) Challenge
}

type pending struct {
	m        method
	supi     string
	snn      string
	deadline time.Time
}

// AUSF runs primary authentications. It is safe for concurrent use; its
// state is the pending contexts, each removed when confirmed, aborted or
// expired.
type AUSF struct {
	udm UDM
	ttl time.Duration
	now func() time.Time

	mu       sync.Mutex
	next     ContextID
	pending  map[ContextID]*pending
	sweepAt  int // sweep expired contexts when this many are pending
	sweepMin int
}

// New returns an AUSF that gets authentication data from u.
func New(u UDM, o Options) *AUSF {
	if o.ContextTTL <= 0 {
		o.ContextTTL = DefaultContextTTL
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	return &AUSF{udm: u, ttl: o.ContextTTL, now: o.Now, pending: make(map[ContextID]*pending), sweepAt: 1024, sweepMin: 1024}
}

// Authenticate starts a primary authentication (Nausf_UEAuthentication_
// Authenticate, TS 33.501 6.1.3.2 steps 1-5) for a UE identified by SUCI or
// SUPI on the serving network snn. Errors from the UDM (udm.ErrDeconceal,
// udm.ErrUnknownSubscriber, udm.ErrInactive, ...) are wrapped.
func (a *AUSF) Authenticate(ctx context.Context, id udm.Identity, snn string) (Challenge, error) {
	return a.start(ctx, udm.AuthRequest{Identity: id, ServingNetworkName: snn})
}

// Resync handles a synchronisation failure reported for a pending
// challenge (TS 33.501 6.1.3.2.2 / 6.1.3.3.2): it passes RAND and AUTS to
// the UDM and returns a new challenge; the old context is gone either way.
func (a *AUSF) Resync(ctx context.Context, id ContextID, auts [14]byte) (Challenge, error) {
	p, err := a.take(id)
	if err != nil {
		return Challenge{}, err
	}
	c := p.m.challenge(id)
	return a.start(ctx, udm.AuthRequest{
		Identity:           udm.Identity{SUPI: p.supi},
		ServingNetworkName: p.snn,
		Resync:             &udm.Resync{RAND: c.RAND, AUTS: auts},
	})
}

// Confirm checks the UE's response for a pending challenge (TS 33.501
// 6.1.3.2 steps 10-12) and returns the SUPI and KSEAF. The context is
// consumed whatever the outcome: a second Confirm is ErrUnknownContext.
func (a *AUSF) Confirm(ctx context.Context, id ContextID, resp Response) (Result, error) {
	if err := ctx.Err(); err != nil {
		return Result{}, fmt.Errorf("ausf: confirm: %w", err)
	}
	p, err := a.take(id)
	if err != nil {
		return Result{}, err
	}
	r, err := p.m.confirm(resp)
	if err != nil {
		return Result{}, fmt.Errorf("ausf: %s: %w", p.supi, err)
	}
	return r, nil
}

// Abort forgets a pending challenge (the UE went away or was rejected).
func (a *AUSF) Abort(id ContextID) {
	a.mu.Lock()
	delete(a.pending, id)
	a.mu.Unlock()
}

// Pending returns how many challenges await confirmation.
func (a *AUSF) Pending() int {
	a.mu.Lock()
	defer a.mu.Unlock()
	return len(a.pending)
}

func (a *AUSF) start(ctx context.Context, req udm.AuthRequest) (Challenge, error) {
	ad, err := a.udm.GenerateAuthData(ctx, req)
	if err != nil {
		return Challenge{}, fmt.Errorf("ausf: %w", err)
	}
	var m method
	switch {
	case ad.Method == udm.Method5GAKA && ad.FiveG != nil:
		m, err = newFiveGAKA(ad.SUPI, req.ServingNetworkName, *ad.FiveG)
		if err != nil {
			return Challenge{}, fmt.Errorf("ausf: %s: %w", ad.SUPI, err)
		}
	default:
		return Challenge{}, fmt.Errorf("ausf: %s: method %q: %w", ad.SUPI, ad.Method, ErrUnsupportedMethod)
	}
	now := a.now()
	a.mu.Lock()
	a.next++
	id := a.next
	a.pending[id] = &pending{m: m, supi: ad.SUPI, snn: req.ServingNetworkName, deadline: now.Add(a.ttl)}
	if len(a.pending) >= a.sweepAt {
		a.sweepLocked(now)
	}
	a.mu.Unlock()
	return m.challenge(id), nil
}

// take removes and returns a pending context that has not expired.
func (a *AUSF) take(id ContextID) (*pending, error) {
	a.mu.Lock()
	p := a.pending[id]
	delete(a.pending, id)
	a.mu.Unlock()
	if p == nil || a.now().After(p.deadline) {
		return nil, fmt.Errorf("ausf: context %d: %w", id, ErrUnknownContext)
	}
	return p, nil
}

// sweepLocked drops expired contexts and sets the next sweep at twice the
// live count, so sweeping costs O(1) per Authenticate on average.
func (a *AUSF) sweepLocked(now time.Time) {
	for id, p := range a.pending {
		if now.After(p.deadline) {
			delete(a.pending, id)
		}
	}
	a.sweepAt = max(a.sweepMin, 2*len(a.pending))
}

// fiveGAKA is 5G AKA's AUSF side (TS 33.501 6.1.3.2).
type fiveGAKA struct {
	av    udm.HEAV
	hxres [16]byte
	kseaf [32]byte
	supi  string
}

func newFiveGAKA(supi, snn string, av udm.HEAV) (*fiveGAKA, error) {
	// Step 4: HXRES* from XRES* (A.5) and KSEAF from KAUSF (A.6).
	kseaf, err := kdf.KSEAF(av.KAUSF, snn)
	if err != nil {
		return nil, err
	}
	return &fiveGAKA{av: av, hxres: kdf.HRESStar(av.RAND, av.XRESStar), kseaf: kseaf, supi: supi}, nil
}

func (f *fiveGAKA) challenge(id ContextID) Challenge {
	return Challenge{ID: id, Method: udm.Method5GAKA, RAND: f.av.RAND, AUTN: f.av.AUTN, HXRESStar: f.hxres}
}

// confirm is step 11: RES* must equal XRES*.
func (f *fiveGAKA) confirm(resp Response) (Result, error) {
	if subtle.ConstantTimeCompare(resp.RESStar[:], f.av.XRESStar[:]) != 1 {
		return Result{}, fmt.Errorf("RES* does not match XRES*: %w", ErrAuthFailed)
	}
	return Result{SUPI: f.supi, KSEAF: f.kseaf}, nil
}
