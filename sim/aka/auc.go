package aka

import (
	"crypto/subtle"
	"fmt"
	"io"

	"github.com/simgate/simgate/sim/milenage"
)

// AuCConfig sets how the AuC allocates sequence numbers (TS 33.102 C.1).
// The zero value cycles a 5-bit IND and assumes the USIMs use Δ = 2^28.
type AuCConfig struct {
	// INDBits is the length of IND, 1..MaxINDBits; 0 means DefaultINDBits.
	// It must match the USIMs'.
	INDBits int
	// FixedIND keeps IND at the value IND in every SQN. Otherwise IND
	// cycles: each vector takes the IND after the previous one, modulo
	// 2^INDBits (C.1.2), so that up to 2^INDBits vectors may be used out of
	// order.
	FixedIND bool
	IND      uint64
	// Delta is the USIMs' Δ (C.2.1), used by Resync to decide whether SQN_HE
	// is still acceptable; 0 means DefaultDelta.
	Delta uint64
	// SeparationBit sets AMF bit 0 in every vector, as 5G AKA requires
	// (TS 33.501 6.1.3.2) and EAP-AKA' (RFC 5448 3); otherwise the AMF is
	// the subscriber's.
	SeparationBit bool
}

// AuC is the Authentication Centre (TS 33.102 6.3.2, 6.3.5): it generates
// authentication vectors and resynchronises SQN_HE, keeping SQN_HE in a
// Store. Every SQN is on disk before a vector built from it is returned. It is
// safe for concurrent use if the Store is.
//
// SQN_HE allocation (TS 33.102 C.1.1.2): the next SQN has SEQ = SEQ_HE + 1,
// with IND cycling or fixed (AuCConfig.FixedIND).
type AuC struct {
	store  Store
	rand   io.Reader
	layout sqnLayout
	cfg    AuCConfig
}

// NewAuC returns an AuC over store, drawing RANDs from rand (normally
// crypto/rand.Reader).
func NewAuC(store Store, rand io.Reader, cfg AuCConfig) (*AuC, error) {
	if store == nil || rand == nil {
		return nil, fmt.Errorf("aka: auc: nil store or random source")
	}
	l, err := newLayout(cfg.INDBits)
	if err != nil {
		return nil, fmt.Errorf("aka: auc: %w", err)
	}
	if cfg.FixedIND && cfg.IND >= uint64(l.slots()) {
		return nil, fmt.Errorf("aka: auc: IND %d does not fit in %d bits", cfg.IND, l.indBits)
	}
	if cfg.Delta == 0 {
		cfg.Delta = DefaultDelta
	}
	return &AuC{store: store, rand: rand, layout: l, cfg: cfg}, nil
}

// Vector generates an authentication vector for imsi with a fresh RAND.
func (a *AuC) Vector(imsi string) (Vector, error) {
	var rand [RANDLen]byte
	if _, err := io.ReadFull(a.rand, rand[:]); err != nil {
		return Vector{}, fmt.Errorf("aka: vector for %s: RAND: %w", imsi, err)
	}
	return a.VectorWithRAND(imsi, rand)
}

// VectorWithRAND generates an authentication vector for imsi with the given
// RAND, taking and storing the next SQN_HE.
func (a *AuC) VectorWithRAND(imsi string, rand [RANDLen]byte) (Vector, error) {
	var v Vector
	err := a.store.UpdateSQN(imsi, func(c Credentials, sqnHE uint64) (uint64, error) {
		next, err := a.next(sqnHE)
		if err != nil {
			return 0, err
		}
		m, err := milenage.New(c.K, c.OPc)
		if err != nil {
			return 0, err
		}
		amf := c.AMF
		if a.cfg.SeparationBit {
			amf[0] |= 0x80 // TS 33.102 Annex H: AMF bit 0
		}
		v = vector(m, rand, sqnBytes(next), amf)
		return next, nil
	})
	if err != nil {
		return Vector{}, fmt.Errorf("aka: vector for %s: %w", imsi, err)
	}
	return v, nil
}

// next returns the SQN after sqnHE (C.1.1.2: SEQ_HE + 1; C.1.2: IND).
func (a *AuC) next(sqnHE uint64) (uint64, error) {
	if sqnHE > sqnMax {
		return 0, fmt.Errorf("aka: stored SQN %#x exceeds 48 bits", sqnHE)
	}
	seq, ind := a.layout.seq(sqnHE), a.layout.ind(sqnHE)
	if seq >= a.layout.maxSEQ() {
		return 0, ErrSQNExhausted
	}
	if a.cfg.FixedIND {
		ind = a.cfg.IND
	} else {
		ind = (ind + 1) % uint64(a.layout.slots())
	}
	return a.layout.sqn(seq+1, ind), nil
}

// vector computes one authentication vector (TS 33.102 6.3.2).
func vector(m *milenage.Milenage, rand [RANDLen]byte, sqn [6]byte, amf [2]byte) Vector {
	macA, _ := m.F1(rand, sqn, amf)
	res, ck, ik, ak := m.F2345(rand)
	v := Vector{RAND: rand, XRES: res, CK: ck, IK: ik, AK: ak, SQN: sqn}
	// AUTN = (SQN xor AK) || AMF || MAC
	conc := xor6(sqn, ak)
	copy(v.AUTN[0:6], conc[:])
	copy(v.AUTN[6:8], amf[:])
	copy(v.AUTN[8:16], macA[:])
	return v
}

// Resync handles a synchronisation failure from the USIM of imsi
// (TS 33.102 6.3.5): it recovers SQN_MS from AUTS, verifies MAC-S, and if the
// next SQN from SQN_HE would not be accepted by the USIM (C.2.1), sets SQN_HE
// to SQN_MS so that the next vector is. A MAC-S that does not verify is
// ErrMACFailure and changes nothing. (6.3.5 lets the AuC skip MAC-S when
// SQN_HE is kept; this AuC always checks it.)
func (a *AuC) Resync(imsi string, rand [RANDLen]byte, auts [AUTSLen]byte) error {
	err := a.store.UpdateSQN(imsi, func(c Credentials, sqnHE uint64) (uint64, error) {
		if sqnHE > sqnMax {
			return 0, fmt.Errorf("aka: stored SQN %#x exceeds 48 bits", sqnHE)
		}
		m, err := milenage.New(c.K, c.OPc)
		if err != nil {
			return 0, err
		}
		// AUTS = (SQN_MS xor AK*) || MAC-S, AMF* = 0x0000 (6.3.3).
		sqnMS := xor6([6]byte(auts[0:6]), m.F5Star(rand))
		_, xmacS := m.F1(rand, sqnMS, [2]byte{})
		if subtle.ConstantTimeCompare(xmacS[:], auts[6:14]) != 1 {
			return 0, fmt.Errorf("MAC-S: %w", ErrMACFailure)
		}
		seqHE, seqMS := a.layout.seq(sqnHE), a.layout.seq(sqnValue(sqnMS))
		if seqHE+1 > seqMS && seqHE+1-seqMS <= a.cfg.Delta {
			return sqnHE, nil // the next SQN will be accepted as it is
		}
		return sqnValue(sqnMS), nil
	})
	if err != nil {
		return fmt.Errorf("aka: resync for %s: %w", imsi, err)
	}
	return nil
}
