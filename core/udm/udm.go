// Package udm is the UDM: subscriber identity (SUCI de-concealment),
// authentication vectors and subscription data.
//
// It plays the UDM, its SIDF and the ARPF of TS 33.501: it de-conceals SUCIs
// with the home network keys kept in the data directory (keys.go), checks
// that the subscriber exists and may attach, and generates home environment
// authentication vectors from the subscriber store (core/udr) through the
// AuC of sim/aka, whose SQN is on disk before a vector leaves. The AUSF
// (core/ausf) asks it for vectors; the AMF asks it for subscription data.
//
// Authentication data are method-specific (TS 33.501 6.1.2): 5G AKA gets a
// 5G HE AV (RAND, AUTN, XRES*, KAUSF, 6.1.3.2); EAP-AKA' (6.1.3.1) will get
// a transformed AV (RAND, AUTN, XRES, CK', IK') from the same vector.
package udm

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"strings"

	"github.com/simgate/simgate/core/udr"
	"github.com/simgate/simgate/sim/aka"
	"github.com/simgate/simgate/sim/kdf"
	"github.com/simgate/simgate/sim/suci"
)

// Errors callers test with errors.Is; the AMF maps them to 5GMM causes.
var (
	// ErrUnknownSubscriber: the SUPI is not in the subscriber store.
	ErrUnknownSubscriber = errors.New("udm: unknown subscriber")
	// ErrInactive: the SIM's status is not active.
	ErrInactive = errors.New("udm: subscriber inactive")
	// ErrDeconceal: the SUCI cannot be de-concealed (unknown key identifier,
	// MAC failure, unsupported scheme, bad plaintext).
	ErrDeconceal = errors.New("udm: SUCI cannot be de-concealed")
	// ErrResync: the AUTS of a synchronisation failure did not verify.
	ErrResync = errors.New("udm: resynchronisation failed")
)

// AuthMethod is an authentication method of TS 33.501 6.1.3.
type AuthMethod string

// Authentication methods (TS 29.503 AuthType).
const (
	Method5GAKA       AuthMethod = "5G_AKA"
	MethodEAPAKAPrime AuthMethod = "EAP_AKA_PRIME"
)

// Store is what the UDM needs of the subscriber store; *udr.Store has it.
type Store interface {
	aka.Store
	GetSIM(imsi string) (udr.SIM, error)
}

// Config configures the UDM.
type Config struct {
	// AuthMethod is the method selected for every subscriber.
	AuthMethod string `yaml:"auth_method" doc:"primary authentication method: 5G_AKA (EAP_AKA_PRIME is planned)"`
	// SQNINDBits is the length of IND in SQN (TS 33.102 C.1.1.1); it must
	// match the USIMs'.
	SQNINDBits int `yaml:"sqn_ind_bits" doc:"bits of IND in SQN (TS 33.102 Annex C), 1..10; must match the USIMs"`
}

// DefaultConfig is 5G AKA with a 5-bit IND.
func DefaultConfig() Config {
	return Config{AuthMethod: string(Method5GAKA), SQNINDBits: aka.DefaultINDBits}
}

// Validate checks the configuration; errors name the YAML key.
func (c Config) Validate() error {
	var errs []error
	if AuthMethod(c.AuthMethod) != Method5GAKA {
		errs = append(errs, fmt.Errorf("udm: auth_method: %q: want 5G_AKA", c.AuthMethod))
	}
	if c.SQNINDBits < 1 || c.SQNINDBits > aka.MaxINDBits {
		errs = append(errs, fmt.Errorf("udm: sqn_ind_bits: %d: want 1..%d", c.SQNINDBits, aka.MaxINDBits))
	}
	return errors.Join(errs...)
}

// UDM serves identities, authentication data and subscription data. It is
// safe for concurrent use.
type UDM struct {
	cfg   Config
	store Store
	keys  *Keys
	auc   *aka.AuC
}

// New returns a UDM over a subscriber store with the home network keys.
// random is the source of RANDs; nil means crypto/rand.
func New(cfg Config, store Store, keys *Keys, random io.Reader) (*UDM, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if store == nil || keys == nil {
		return nil, errors.New("udm: nil store or keys")
	}
	if random == nil {
		random = rand.Reader
	}
	// TS 33.501 6.1.3.2: vectors for 5G carry the AMF separation bit.
	auc, err := aka.NewAuC(store, random, aka.AuCConfig{INDBits: cfg.SQNINDBits, SeparationBit: true})
	if err != nil {
		return nil, fmt.Errorf("udm: %w", err)
	}
	return &UDM{cfg: cfg, store: store, keys: keys, auc: auc}, nil
}

// Keys returns the home network keys.
func (u *UDM) Keys() *Keys { return u.keys }

// Deconceal returns the SUPI ("imsi-<digits>" or "nai-<nai>") a SUCI
// conceals (TS 33.501 6.12.5). Failures wrap ErrDeconceal.
func (u *UDM) Deconceal(s suci.SUCI) (string, error) {
	supi, err := u.keys.Deconceal(s)
	if err != nil {
		return "", fmt.Errorf("%w: %w", ErrDeconceal, err)
	}
	return supi.String(), nil
}

// Identity names a subscriber by SUCI (from the UE) or SUPI (from a 5G-GUTI
// the AMF resolved). Exactly one is set.
type Identity struct {
	SUCI *suci.SUCI
	SUPI string
}

// String names the identity without concealed data.
func (id Identity) String() string {
	if id.SUCI != nil {
		return fmt.Sprintf("SUCI %s-%s key %d scheme %v", id.SUCI.MCC, id.SUCI.MNC, id.SUCI.KeyID, id.SUCI.Scheme)
	}
	return id.SUPI
}

// Resync carries a synchronisation failure from the UE (TS 33.501 6.1.3.2.2
// / 6.1.3.3.2): the RAND of the failed challenge and the UE's AUTS.
type Resync struct {
	RAND [aka.RANDLen]byte
	AUTS [aka.AUTSLen]byte
}

// AuthRequest is Nudm_UEAuthentication_Get (TS 29.503 5.4.2.2).
type AuthRequest struct {
	Identity Identity
	// ServingNetworkName is "5G:mnc<MNC>.mcc<MCC>.3gppnetwork.org"
	// (TS 24.501 9.12.1).
	ServingNetworkName string
	// Resync, if set, resynchronises SQN from AUTS before the new vector.
	Resync *Resync
}

// HEAV is the 5G home environment authentication vector (TS 33.501
// 6.1.3.2 step 3): RAND, AUTN, XRES* and KAUSF.
type HEAV struct {
	RAND     [16]byte
	AUTN     [16]byte
	XRESStar [16]byte
	KAUSF    [32]byte
}

// AuthData is the answer to an AuthRequest: the subscriber's SUPI, the
// selected method and that method's vector.
type AuthData struct {
	SUPI   string
	Method AuthMethod
	// FiveG is set for Method5GAKA.
	FiveG *HEAV
}

// GenerateAuthData resolves the identity, checks the subscriber (known,
// active) and returns fresh authentication data (TS 33.501 6.1.2, 6.1.3).
// With req.Resync it first resynchronises SQN_HE from AUTS (TS 33.102
// 6.3.5). Errors wrap ErrDeconceal, ErrUnknownSubscriber, ErrInactive or
// ErrResync when those are the cause.
func (u *UDM) GenerateAuthData(ctx context.Context, req AuthRequest) (AuthData, error) {
	if err := ctx.Err(); err != nil {
		return AuthData{}, fmt.Errorf("udm: auth data: %w", err)
	}
	supi, err := u.resolve(req.Identity)
	if err != nil {
		return AuthData{}, err
	}
	sim, err := u.sim(supi)
	if err != nil {
		return AuthData{}, err
	}
	if sim.Status != udr.StatusActive {
		return AuthData{}, fmt.Errorf("udm: auth data for %s: status %q: %w", supi, sim.Status, ErrInactive)
	}
	if req.Resync != nil {
		if err := u.auc.Resync(sim.IMSI, req.Resync.RAND, req.Resync.AUTS); err != nil {
			if errors.Is(err, aka.ErrMACFailure) {
				return AuthData{}, fmt.Errorf("udm: %s: %w: %w", supi, ErrResync, err)
			}
			return AuthData{}, fmt.Errorf("udm: %s: %w", supi, err)
		}
	}
	v, err := u.auc.Vector(sim.IMSI)
	if errors.Is(err, udr.ErrNotFound) { // deleted meanwhile
		return AuthData{}, fmt.Errorf("udm: auth data for %s: %w", supi, ErrUnknownSubscriber)
	}
	if err != nil {
		return AuthData{}, fmt.Errorf("udm: auth data for %s: %w", supi, err)
	}
	av, err := FiveGHEAV(v, req.ServingNetworkName)
	if err != nil {
		return AuthData{}, fmt.Errorf("udm: auth data for %s: %w", supi, err)
	}
	return AuthData{SUPI: supi, Method: Method5GAKA, FiveG: &av}, nil
}

// FiveGHEAV turns an AKA vector into a 5G HE AV for a serving network
// (TS 33.501 6.1.3.2 step 3): XRES* from XRES (A.4) and KAUSF from CK, IK
// and SQN xor AK (A.2).
func FiveGHEAV(v aka.Vector, snn string) (HEAV, error) {
	xres, err := kdf.RESStar(v.CK, v.IK, snn, v.RAND, v.XRES[:])
	if err != nil {
		return HEAV{}, err
	}
	kausf, err := kdf.KAUSF(v.CK, v.IK, snn, [6]byte(v.AUTN[0:6]))
	if err != nil {
		return HEAV{}, err
	}
	return HEAV{RAND: v.RAND, AUTN: v.AUTN, XRESStar: xres, KAUSF: kausf}, nil
}

// Subscription is the subscriber data the AMF and SMF use.
type Subscription struct {
	SUPI   string
	IMSI   string
	MSISDN string
	SIMID  string
	Group  string
	Status udr.Status
	// IMEILock is the SIM's IMEI lock; its zero value allows any IMEI.
	IMEILock udr.IMEILock
}

// Active reports whether the subscriber may attach.
func (s Subscription) Active() bool { return s.Status == udr.StatusActive }

// Subscription returns the subscriber data of a SUPI. Errors wrap
// ErrUnknownSubscriber when the SUPI is not stored.
func (u *UDM) Subscription(ctx context.Context, supi string) (Subscription, error) {
	if err := ctx.Err(); err != nil {
		return Subscription{}, fmt.Errorf("udm: subscription: %w", err)
	}
	sim, err := u.sim(supi)
	if err != nil {
		return Subscription{}, err
	}
	lock, err := udr.ParseIMEILock(sim.IMEILock)
	if err != nil {
		return Subscription{}, fmt.Errorf("udm: subscription %s: %w", supi, err)
	}
	return Subscription{
		SUPI: supi, IMSI: sim.IMSI, MSISDN: sim.MSISDN, SIMID: sim.SIMID,
		Group: sim.Group, Status: sim.Status, IMEILock: lock,
	}, nil
}

func (u *UDM) resolve(id Identity) (string, error) {
	switch {
	case id.SUCI != nil && id.SUPI != "":
		return "", errors.New("udm: identity has both SUCI and SUPI")
	case id.SUCI != nil:
		return u.Deconceal(*id.SUCI)
	case id.SUPI != "":
		return id.SUPI, nil
	}
	return "", errors.New("udm: empty identity")
}

// sim reads the SIM of a SUPI of type IMSI. Only IMSIs are stored, so any
// other SUPI is unknown.
func (u *UDM) sim(supi string) (udr.SIM, error) {
	imsi, ok := strings.CutPrefix(supi, "imsi-")
	if !ok || imsi == "" {
		return udr.SIM{}, fmt.Errorf("udm: %s: %w", supi, ErrUnknownSubscriber)
	}
	sim, err := u.store.GetSIM(imsi)
	if errors.Is(err, udr.ErrNotFound) {
		return udr.SIM{}, fmt.Errorf("udm: %s: %w", supi, ErrUnknownSubscriber)
	}
	if err != nil {
		return udr.SIM{}, fmt.Errorf("udm: %s: %w", supi, err)
	}
	return sim, nil
}
