// Package milenage owns the MILENAGE algorithm set, the 3GPP example
// authentication and key generation functions f1, f1*, f2, f3, f4, f5 and f5*
// (TS 35.205, TS 35.206), the OP to OPc derivation, and GSM-MILENAGE, the A3/A8
// functions built on it (TS 55.205), with the conversion functions c2 and c3
// of TS 33.102 6.8.1.2.
//
// All values are big-endian byte strings as the specifications print them:
// bit 0 is the most significant bit of byte 0.
package milenage

import (
	"crypto/aes"
	"crypto/cipher"
	"encoding/binary"
	"fmt"
)

// Milenage computes the MILENAGE functions for one subscriber key K and one
// operator variant OPc. It holds the expanded AES key and the last TEMP, so
// that a full f1..f5* computation costs six AES block encryptions and no
// allocation.
//
// A Milenage is not safe for concurrent use; build one per goroutine (New is
// cheap) or guard it.
type Milenage struct {
	block cipher.Block
	opc   [16]byte
	opcW  block128 // opc as two big-endian words

	// TS 35.206 4.1: TEMP = E_K(RAND xor OPc), cached for tempRAND.
	temp      block128
	tempRAND  [16]byte
	tempValid bool

	// buf is the AES input/output. It lives in the heap-allocated Milenage
	// because slices handed to an interface method (cipher.Block) escape.
	buf [16]byte
}

// block128 is a 128-bit value as two big-endian 64-bit words.
type block128 struct{ hi, lo uint64 }

func load(b *[16]byte) block128 {
	return block128{binary.BigEndian.Uint64(b[0:8]), binary.BigEndian.Uint64(b[8:16])}
}

func (x block128) store(b *[16]byte) {
	binary.BigEndian.PutUint64(b[0:8], x.hi)
	binary.BigEndian.PutUint64(b[8:16], x.lo)
}

func (x block128) xor(y block128) block128 { return block128{x.hi ^ y.hi, x.lo ^ y.lo} }

// rotl rotates x left by r bits, 0 <= r < 128 (TS 35.206 4.1: rot(x, r)).
func (x block128) rotl(r uint) block128 {
	if r >= 64 {
		x.hi, x.lo = x.lo, x.hi
		r -= 64
	}
	if r == 0 {
		return x
	}
	return block128{x.hi<<r | x.lo>>(64-r), x.lo<<r | x.hi>>(64-r)}
}

// encrypt returns E_K(x).
func (m *Milenage) encrypt(x block128) block128 {
	x.store(&m.buf)
	m.block.Encrypt(m.buf[:], m.buf[:])
	return load(&m.buf)
}

// New returns a Milenage for the subscriber key k and the operator variant
// opc (see OPc).
func New(k, opc [16]byte) (*Milenage, error) {
	b, err := aes.NewCipher(k[:])
	if err != nil {
		return nil, fmt.Errorf("milenage: key schedule: %w", err)
	}
	return &Milenage{block: b, opc: opc, opcW: load(&opc)}, nil
}

// NewOP returns a Milenage for the subscriber key k and the operator
// constant op, deriving OPc from them (TS 35.206 4.1).
func NewOP(k, op [16]byte) (*Milenage, error) {
	m, err := New(k, [16]byte{})
	if err != nil {
		return nil, err
	}
	x := load(&op)
	m.opcW = m.encrypt(x).xor(x)
	m.opcW.store(&m.opc)
	return m, nil
}

// OPc derives OPc from K and OP (TS 35.206 4.1: OPc = OP xor E_K(OP)).
func OPc(k, op [16]byte) ([16]byte, error) {
	m, err := NewOP(k, op)
	if err != nil {
		return [16]byte{}, err
	}
	return m.opc, nil
}

// OPc returns the operator variant this Milenage uses.
func (m *Milenage) OPc() [16]byte { return m.opc }

// F1 computes the network authentication code MAC-A = f1 and the
// resynchronisation authentication code MAC-S = f1* (TS 35.206 4.1), from
// RAND, SQN and AMF.
func (m *Milenage) F1(rand [16]byte, sqn [6]byte, amf [2]byte) (macA, macS [8]byte) {
	m.setTemp(&rand)
	// IN1 = SQN || AMF || SQN || AMF
	w := uint64(sqn[0])<<56 | uint64(sqn[1])<<48 | uint64(sqn[2])<<40 |
		uint64(sqn[3])<<32 | uint64(sqn[4])<<24 | uint64(sqn[5])<<16 |
		uint64(amf[0])<<8 | uint64(amf[1])
	in1 := block128{w, w}
	// OUT1 = E_K(TEMP xor rot(IN1 xor OPc, r1) xor c1) xor OPc, r1 = 64, c1 = 0.
	out1 := m.encrypt(m.temp.xor(in1.xor(m.opcW).rotl(64))).xor(m.opcW)
	binary.BigEndian.PutUint64(macA[:], out1.hi) // f1 = OUT1[0..63]
	binary.BigEndian.PutUint64(macS[:], out1.lo) // f1* = OUT1[64..127]
	return macA, macS
}

// F2345 computes RES = f2, CK = f3, IK = f4 and AK = f5 (TS 35.206 4.1) from
// RAND.
func (m *Milenage) F2345(rand [16]byte) (res [8]byte, ck, ik [16]byte, ak [6]byte) {
	m.setTemp(&rand)
	out2 := m.out(0, 1)
	var a [8]byte
	binary.BigEndian.PutUint64(a[:], out2.hi)
	copy(ak[:], a[:6])                          // f5 = OUT2[0..47]
	binary.BigEndian.PutUint64(res[:], out2.lo) // f2 = OUT2[64..127]
	m.out(32, 2).store(&ck)                     // f3 = OUT3
	m.out(64, 4).store(&ik)                     // f4 = OUT4
	return res, ck, ik, ak
}

// F5Star computes the resynchronisation anonymity key AK = f5*
// (TS 35.206 4.1) from RAND.
func (m *Milenage) F5Star(rand [16]byte) (akStar [6]byte) {
	m.setTemp(&rand)
	var a [8]byte
	binary.BigEndian.PutUint64(a[:], m.out(96, 8).hi)
	copy(akStar[:], a[:6]) // f5* = OUT5[0..47]
	return akStar
}

// GSM computes the GSM-MILENAGE A3/A8 outputs for RAND (TS 55.205 4): SRES
// with SRES Derivation Function #1 (see SRES1) and Kc (see Kc).
func (m *Milenage) GSM(rand [16]byte) (sres [4]byte, kc [8]byte) {
	res, ck, ik, _ := m.F2345(rand)
	return SRES1(res), Kc(ck, ik)
}

// SRES1 is GSM-MILENAGE's recommended SRES Derivation Function #1
// (TS 55.205 4): SRES = RES[0..31] xor RES[32..63]. For a 64-bit RES it is
// also the conversion function c2 of TS 33.102 6.8.1.2.
func SRES1(res [8]byte) [4]byte {
	var s [4]byte
	for i := range 4 {
		s[i] = res[i] ^ res[i+4]
	}
	return s
}

// SRES2 is GSM-MILENAGE's recommended SRES Derivation Function #2
// (TS 55.205 4): SRES = RES[0..31].
func SRES2(res [8]byte) [4]byte {
	return [4]byte(res[0:4])
}

// Kc is the conversion function c3 (TS 33.102 6.8.1.2, TS 55.205 4):
// Kc = CK[0..63] xor CK[64..127] xor IK[0..63] xor IK[64..127].
func Kc(ck, ik [16]byte) [8]byte {
	var kc [8]byte
	for i := range 8 {
		kc[i] = ck[i] ^ ck[i+8] ^ ik[i] ^ ik[i+8]
	}
	return kc
}

// setTemp makes m.temp = E_K(RAND xor OPc) for rand, reusing the last one.
func (m *Milenage) setTemp(rand *[16]byte) {
	if m.tempValid && m.tempRAND == *rand {
		return
	}
	m.temp = m.encrypt(load(rand).xor(m.opcW))
	m.tempRAND = *rand
	m.tempValid = true
}

// out returns OUTi = E_K(rot(TEMP xor OPc, ri) xor ci) xor OPc
// (TS 35.206 4.1, i = 2..5) for the rotation r = ri in bits and the constant
// ci = c (all other bits zero).
func (m *Milenage) out(r uint, c uint64) block128 {
	x := m.temp.xor(m.opcW).rotl(r)
	x.lo ^= c
	return m.encrypt(x).xor(m.opcW)
}
