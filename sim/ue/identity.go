package ue

import (
	"crypto/ecdh"
	"encoding/binary"
	"fmt"
	"github.com/simgate/simgate/internal/plmn"
	"io"

	"github.com/simgate/simgate/sim/suci"
)

// Type of identity, octet 4 bits 1-3 of the 5GS mobile identity (TS 24.501
// 9.11.3.4) and of the 5GS identity type (9.11.3.3).
const (
	idNone   = 0
	idSUCI   = 1
	idGUTI   = 2
	idIMEI   = 3
	idSTMSI  = 4
	idIMEISV = 5
)

// GUTI is a 5G-GUTI (TS 23.003 2.10): the GUAMI of the AMF that allocated it
// and a 5G-TMSI.
type GUTI struct {
	MCC, MNC    string
	AMFRegionID uint8
	AMFSetID    uint16 // 10 bits
	AMFPointer  uint8  // 6 bits
	TMSI        uint32
}

// String returns MCC, MNC, AMF identifier and 5G-TMSI, the last two in hex
// (TS 23.003 2.10.1: <MCC><MNC><AMF Identifier><5G-TMSI>).
func (g GUTI) String() string {
	return fmt.Sprintf("%s%s%02x%04x%08x", g.MCC, g.MNC, g.AMFRegionID, g.AMFSetID<<6|uint16(g.AMFPointer&0x3f), g.TMSI)
}

// appendGUTI appends the 5GS mobile identity value of type 5G-GUTI
// (TS 24.501 Figure 9.11.3.4.1).
func appendGUTI(b []byte, g GUTI) []byte {
	b = append(b, 0xf0|idGUTI)
	b = appendPLMN(b, g.MCC, g.MNC)
	b = append(b, g.AMFRegionID)
	b = binary.BigEndian.AppendUint16(b, g.AMFSetID<<6|uint16(g.AMFPointer&0x3f))
	return binary.BigEndian.AppendUint32(b, g.TMSI)
}

// appendPLMN appends the PLMN identity (TS 24.008 10.5.1.13) of checked
// digits.
func appendPLMN(b []byte, mcc, mnc string) []byte { return plmn.Append(b, mcc, mnc) }

// appendDigitsIdentity appends an IMEI (15 digits, odd) or IMEISV (16 digits,
// even) identity (TS 24.501 Figure 9.11.3.4.3): digit 1 in octet 4 bits 5-8
// with the odd/even indication in bit 4, then two digits an octet, a last odd
// nibble filled with 1111.
func appendDigitsIdentity(b []byte, typ byte, digits string) []byte {
	odd := byte(len(digits) % 2)
	b = append(b, (digits[0]-'0')<<4|odd<<3|typ)
	for i := 1; i < len(digits); i += 2 {
		hi := byte(0xf)
		if i+1 < len(digits) {
			hi = digits[i+1] - '0'
		}
		b = append(b, hi<<4|(digits[i]-'0'))
	}
	return b
}

// decodeGUTI reads a 5GS mobile identity value of type 5G-GUTI.
func decodeGUTI(b []byte) (GUTI, error) {
	if len(b) != 11 || b[0]&0x07 != idGUTI {
		return GUTI{}, fmt.Errorf("5G-GUTI of %d octets: want 11 with type 2: %w", len(b), ErrMalformed)
	}
	mcc, mnc, err := decodePLMN(b[1:4])
	if err != nil {
		return GUTI{}, err
	}
	setPtr := binary.BigEndian.Uint16(b[5:7])
	return GUTI{MCC: mcc, MNC: mnc, AMFRegionID: b[4], AMFSetID: setPtr >> 6, AMFPointer: uint8(setPtr & 0x3f),
		TMSI: binary.BigEndian.Uint32(b[7:11])}, nil
}

func decodePLMN(b []byte) (mcc, mnc string, err error) {
	if mcc, mnc, err = plmn.Decode(b); err != nil {
		return "", "", fmt.Errorf("%w: %v", ErrMalformed, err)
	}
	return mcc, mnc, nil
}

// suciIdentity conceals the SUPI afresh (TS 33.501 6.12.2) and returns the
// 5GS mobile identity value of type SUCI.
func (u *UE) suciIdentity() ([]byte, error) {
	p := u.suci
	if p.Scheme != suci.SchemeNull {
		eph, err := ephemeralKey(p.Scheme, u.rand)
		if err != nil {
			return nil, fmt.Errorf("ue: SUCI: %w", err)
		}
		// A fresh ephemeral key from the UE's random source each time
		// (TS 33.501 C.3.2), so that a seeded source gives reproducible UEs.
		p.EphemeralKey = eph
	}
	s, err := suci.Conceal(u.supi, p)
	if err != nil {
		return nil, fmt.Errorf("ue: SUCI: %w", err)
	}
	return s.AppendBinary(make([]byte, 0, 64))
}

// ephemeralKey draws a private key for the scheme's curve: any 32 octets
// for X25519, a scalar in [1, n-1] for P-256 (drawn again otherwise).
func ephemeralKey(s suci.Scheme, r io.Reader) ([]byte, error) {
	for range 64 {
		k := make([]byte, 32)
		if _, err := io.ReadFull(r, k); err != nil {
			return nil, fmt.Errorf("ephemeral key: %w", err)
		}
		if s != suci.SchemeProfileB {
			return k, nil
		}
		if _, err := ecdh.P256().NewPrivateKey(k); err == nil {
			return k, nil
		}
	}
	return nil, fmt.Errorf("ephemeral key: random source gives no valid P-256 scalar")
}

// identity returns the identity the UE registers or deregisters with: the
// 5G-GUTI it holds, else a SUCI (TS 24.501 5.5.1.2.2).
func (u *UE) identity() ([]byte, error) {
	if u.hasGUTI {
		return appendGUTI(make([]byte, 0, 11), u.guti), nil
	}
	return u.suciIdentity()
}

// imeisv returns the IMEISV the UE reports: its own, or with WrongIMEI that
// of another device, whose SNR differs in its last digit.
func (u *UE) reportedIMEISV() string {
	if !u.misbe.WrongIMEI {
		return u.imeisv
	}
	b := []byte(u.imeisv)
	b[13] = '0' + (b[13]-'0'+1)%10
	return string(b)
}
