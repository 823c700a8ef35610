package aka

import (
	"crypto/subtle"
	"fmt"
	"sync"

	"github.com/simgate/simgate/sim/milenage"
)

// USIMConfig sets the USIM's sequence number checks (TS 33.102 Annex C.2).
// The zero value means IND of 5 bits, Δ = 2^28 and no age limit L.
type USIMConfig struct {
	// INDBits is the length of IND, 1..MaxINDBits; 0 means DefaultINDBits.
	// It must match the AuC's.
	INDBits int
	// Delta is Δ (C.2.1): an SQN is accepted only if SEQ - SEQ_MS <= Δ.
	// 0 means DefaultDelta.
	Delta uint64
	// L is the age limit (C.2.2): an SQN is accepted only if
	// SEQ_MS - SEQ < L. 0 means no limit beyond the SEQ_MS array.
	L uint64
}

// State is the USIM's persistent sequence number state: the array
// SEQ_MS(0)..SEQ_MS(a-1) of TS 33.102 C.2.2, indexed by IND, a = 2^INDBits.
// It marshals to JSON so that a UE simulator can keep it across restarts.
type State struct {
	INDBits int      `json:"ind_bits"`
	SEQ     []uint64 `json:"seq_ms"`
}

// USIM is the subscriber's side of AKA: it holds K and OPc and the SQN_MS
// array, verifies AUTN and computes RES, CK and IK (TS 33.102 6.3.3). It is
// safe for concurrent use.
type USIM struct {
	layout sqnLayout
	delta  uint64
	l      uint64

	mu  sync.Mutex
	m   *milenage.Milenage
	seq []uint64 // SEQ_MS(i), i = IND
}

// NewUSIM returns a USIM for K and OPc with a fresh state: every SEQ_MS(i)
// is zero (TS 33.102 C.2.2).
func NewUSIM(k, opc [16]byte, cfg USIMConfig) (*USIM, error) {
	l, err := newLayout(cfg.INDBits)
	if err != nil {
		return nil, fmt.Errorf("aka: usim: %w", err)
	}
	return newUSIM(k, opc, cfg, l, make([]uint64, l.slots()))
}

// RestoreUSIM returns a USIM for K and OPc with a state saved by State.
// cfg.INDBits must be 0 or equal st.INDBits.
func RestoreUSIM(k, opc [16]byte, cfg USIMConfig, st State) (*USIM, error) {
	if cfg.INDBits != 0 && cfg.INDBits != st.INDBits {
		return nil, fmt.Errorf("aka: usim: state has IND length %d, config %d", st.INDBits, cfg.INDBits)
	}
	if st.INDBits == 0 {
		return nil, fmt.Errorf("aka: usim: state has no IND length")
	}
	l, err := newLayout(st.INDBits)
	if err != nil {
		return nil, fmt.Errorf("aka: usim: state: %w", err)
	}
	if len(st.SEQ) != l.slots() {
		return nil, fmt.Errorf("aka: usim: state has %d SEQ_MS entries, want %d for IND length %d", len(st.SEQ), l.slots(), st.INDBits)
	}
	for i, s := range st.SEQ {
		if s > l.maxSEQ() {
			return nil, fmt.Errorf("aka: usim: state SEQ_MS(%d) = %d exceeds %d bits", i, s, sqnBits-l.indBits)
		}
	}
	return newUSIM(k, opc, cfg, l, append([]uint64(nil), st.SEQ...))
}

func newUSIM(k, opc [16]byte, cfg USIMConfig, l sqnLayout, seq []uint64) (*USIM, error) {
	m, err := milenage.New(k, opc)
	if err != nil {
		return nil, fmt.Errorf("aka: usim: %w", err)
	}
	delta := cfg.Delta
	if delta == 0 {
		delta = DefaultDelta
	}
	return &USIM{layout: l, delta: delta, l: cfg.L, m: m, seq: seq}, nil
}

// State returns a copy of the USIM's sequence number state.
func (u *USIM) State() State {
	u.mu.Lock()
	defer u.mu.Unlock()
	return State{INDBits: int(u.layout.indBits), SEQ: append([]uint64(nil), u.seq...)}
}

// Authenticate runs the USIM's part of AKA for RAND and AUTN
// (TS 33.102 6.3.3). With requireSeparation, as for 5G AKA and EAP-AKA', the
// AMF separation bit must be 1 (TS 33.501 6.1.3.2, TS 33.102 Annex H).
//
// It returns ErrMACFailure if MAC-A does not verify, ErrAMFSeparation if the
// separation bit is required and 0, and a *SyncFailure carrying AUTS if SQN
// is not fresh or not in range (Annex C.2). Only an accepted AUTN changes the
// state.
func (u *USIM) Authenticate(rand [RANDLen]byte, autn [AUTNLen]byte, requireSeparation bool) (Result, error) {
	u.mu.Lock()
	defer u.mu.Unlock()

	res, ck, ik, ak := u.m.F2345(rand)
	// AUTN = (SQN xor AK) || AMF || MAC
	sqn := xor6([6]byte(autn[0:6]), ak)
	amf := [2]byte(autn[6:8])
	xmac, _ := u.m.F1(rand, sqn, amf)
	if subtle.ConstantTimeCompare(xmac[:], autn[8:16]) != 1 {
		return Result{}, ErrMACFailure
	}
	// TS 33.102 Annex H: bit 0 of AMF is the separation bit.
	if requireSeparation && amf[0]&0x80 == 0 {
		return Result{}, ErrAMFSeparation
	}
	if !u.fresh(sqnValue(sqn)) {
		return Result{}, &SyncFailure{AUTS: u.auts(rand)}
	}
	v := sqnValue(sqn)
	u.seq[u.layout.ind(v)] = u.layout.seq(v)
	return Result{RES: res, CK: ck, IK: ik, AK: ak, SQN: sqn}, nil
}

// fresh applies the freshness conditions of TS 33.102 C.2 to sqn.
func (u *USIM) fresh(sqn uint64) bool {
	seq, ind := u.layout.seq(sqn), u.layout.ind(sqn)
	seqMS := u.seq[u.highest()]
	// C.2.1: no jump of more than Δ.
	if seq > seqMS && seq-seqMS > u.delta {
		return false
	}
	// C.2.2: age limit L, then the array entry for IND.
	if u.l != 0 && seq < seqMS && seqMS-seq >= u.l {
		return false
	}
	return seq > u.seq[ind]
}

// highest returns the IND of SQN_MS, the highest previously accepted
// sequence number in the array (C.2.2).
func (u *USIM) highest() int {
	best := 0
	for i, s := range u.seq {
		if s > u.seq[best] {
			best = i
		}
	}
	return best
}

// auts builds AUTS = (SQN_MS xor AK*) || MAC-S (TS 33.102 6.3.3), with
// MAC-S = f1*(SQN_MS || RAND || AMF*) and AMF* = 0x0000.
func (u *USIM) auts(rand [RANDLen]byte) [AUTSLen]byte {
	i := u.highest()
	sqnMS := sqnBytes(u.layout.sqn(u.seq[i], uint64(i)))
	_, macS := u.m.F1(rand, sqnMS, [2]byte{})
	conc := xor6(sqnMS, u.m.F5Star(rand))
	var auts [AUTSLen]byte
	copy(auts[0:6], conc[:])
	copy(auts[6:14], macS[:])
	return auts
}
