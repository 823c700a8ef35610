// Package aka owns UMTS AKA (TS 33.102 6.3) at both ends: the USIM, which
// checks AUTN, manages its sequence numbers (TS 33.102 Annex C) and answers
// with RES, CK and IK or with AUTS; and the AuC, which generates
// authentication vectors from a Store of subscribers and resynchronises
// SQN_HE from AUTS (TS 33.102 6.3.5).
//
// The package is method-neutral: 5G AKA, EAP-AKA and EAP-AKA' derive their
// keys (sim/kdf) from the RAND, AUTN, RES/XRES, CK, IK, SQN and AK given here.
// The cryptographic functions f1..f5* are MILENAGE (sim/milenage).
//
// Sequence numbers are 48 bits, SQN = SEQ || IND (TS 33.102 C.1.1.1), with
// IND the INDBits least significant bits.
package aka

import (
	"errors"
	"fmt"
)

// Defaults for the sequence number management of TS 33.102 Annex C.
const (
	// DefaultINDBits is the length of IND: 5 bits, an array of 32 SEQ_MS
	// in the USIM (TS 33.102 C.2.2; the Annex C.3 profile's value).
	DefaultINDBits = 5
	// MaxINDBits bounds IND so that the USIM's array stays small.
	MaxINDBits = 10
	// DefaultDelta is Δ, the largest jump SEQ - SEQ_MS the USIM accepts
	// (TS 33.102 C.2.1; 2^28 as in the Annex C.3 profile).
	DefaultDelta = 1 << 28
)

const (
	sqnBits = 48
	sqnMax  = 1<<sqnBits - 1
)

// Sizes of the AKA parameters on the wire (TS 33.102 6.3.2, 6.3.3).
const (
	RANDLen = 16
	AUTNLen = 16
	AUTSLen = 14
)

var (
	// ErrMACFailure is a MAC-A (USIM) or MAC-S (AuC resync) that does not
	// verify (TS 33.102 6.3.3, 6.3.5). Nothing changed.
	ErrMACFailure = errors.New("aka: MAC failure")
	// ErrAMFSeparation is an AUTN whose AMF separation bit (bit 0) is 0 when
	// the access requires it, as 5G does (TS 33.501 6.1.3.2, TS 33.102
	// Annex H). The MAC was valid; nothing changed.
	ErrAMFSeparation = errors.New("aka: AMF separation bit not set")
	// ErrSQNExhausted is an SQN_HE whose SEQ has no successor in 48 bits.
	ErrSQNExhausted = errors.New("aka: SQN exhausted")
)

// SyncFailure is the USIM's answer to an AUTN with a valid MAC whose SQN is
// not fresh or not in range (TS 33.102 6.3.3, Annex C.2): the network
// resynchronises with AUTS (AuC.Resync).
type SyncFailure struct {
	// AUTS = (SQN_MS xor AK*) || MAC-S, MAC-S = f1*(SQN_MS || RAND || AMF*)
	// with the dummy AMF* = 0x0000 (TS 33.102 6.3.3).
	AUTS [AUTSLen]byte
}

func (e *SyncFailure) Error() string {
	return fmt.Sprintf("aka: synchronisation failure, AUTS %x", e.AUTS[:])
}

// Vector is one authentication vector from the AuC (TS 33.102 6.3.2).
type Vector struct {
	RAND [RANDLen]byte
	// AUTN = (SQN xor AK) || AMF || MAC-A
	AUTN [AUTNLen]byte
	XRES [8]byte
	CK   [16]byte
	IK   [16]byte
	AK   [6]byte
	// SQN is SQN_HE of this vector. 5G (KAUSF, TS 33.501 A.2) and EAP-AKA'
	// (CK'/IK', TS 33.402 A.2) use SQN xor AK, which is AUTN[0:6].
	SQN [6]byte
}

// Result is what the USIM returns for an accepted AUTN (TS 33.102 6.3.3).
type Result struct {
	RES [8]byte
	CK  [16]byte
	IK  [16]byte
	AK  [6]byte
	// SQN is the accepted sequence number; SQN xor AK is AUTN[0:6].
	SQN [6]byte
}

// sqnLayout splits SQN into SEQ || IND (TS 33.102 C.1.1.1).
type sqnLayout struct {
	indBits uint
}

func newLayout(indBits int) (sqnLayout, error) {
	if indBits == 0 {
		indBits = DefaultINDBits
	}
	if indBits < 1 || indBits > MaxINDBits {
		return sqnLayout{}, fmt.Errorf("aka: IND length %d bits: want 1..%d", indBits, MaxINDBits)
	}
	return sqnLayout{indBits: uint(indBits)}, nil
}

func (l sqnLayout) seq(sqn uint64) uint64      { return sqn >> l.indBits }
func (l sqnLayout) ind(sqn uint64) uint64      { return sqn & (1<<l.indBits - 1) }
func (l sqnLayout) maxSEQ() uint64             { return sqnMax >> l.indBits }
func (l sqnLayout) slots() int                 { return 1 << l.indBits }
func (l sqnLayout) sqn(seq, ind uint64) uint64 { return seq<<l.indBits | ind }

func sqnBytes(v uint64) [6]byte {
	return [6]byte{byte(v >> 40), byte(v >> 32), byte(v >> 24), byte(v >> 16), byte(v >> 8), byte(v)}
}

func sqnValue(b [6]byte) uint64 {
	return uint64(b[0])<<40 | uint64(b[1])<<32 | uint64(b[2])<<24 | uint64(b[3])<<16 | uint64(b[4])<<8 | uint64(b[5])
}

func xor6(a, b [6]byte) [6]byte {
	for i := range a {
		a[i] ^= b[i]
	}
	return a
}
