package amf

import (
	"crypto/subtle"
	"errors"
	"fmt"

	"github.com/free5gc/nas/ie"
	"github.com/free5gc/nas/message"

	"github.com/simgate/simgate/sim/kdf"
)

// NAS header constants (TS 24.007 11.2.3.1.1, TS 24.501 9.3).
const (
	epd5GMM     = 0x7E
	epd5GSM     = 0x2E
	secHdrLen   = 7 // EPD, security header type, MAC (4), sequence number
	minPlainGMM = 3 // EPD, security header type, message type
)

// nasBearer is the BEARER input of the NAS algorithms (TS 33.501 6.4.3.1:
// the NAS connection identifier) for 3GPP access, as the free5gc/nas library
// numbers it (message.Bearer3GPP), which is what free5gc, open5gs and
// UERANSIM put on the wire.
const nasBearer = message.Bearer3GPP

// Errors of unprotect; the reason is logged and counted.
var (
	errNASMalformed = errors.New("malformed security protected NAS message")
	errNASHeader    = errors.New("security header type not acceptable here")
	errNASMAC       = errors.New("NAS MAC check failed")
	errNASReplay    = errors.New("replayed NAS COUNT")
)

// nasSecurity is a UE's 5G NAS security context (TS 33.501 6.4; TS 24.501
// 4.4): KAMF, ngKSI, the selected algorithms and keys (held by the
// library's SecCtx, which also keeps the downlink NAS COUNT) and the next
// uplink NAS COUNT this AMF accepts.
type nasSecurity struct {
	sc     *message.SecCtx
	kamf   [32]byte
	ngksi  uint8
	integ  uint8
	ciph   uint8
	ulNext uint32 // 24-bit NAS COUNT the next uplink message must reach
}

// newNASSecurity derives KNASint and KNASenc from KAMF (TS 33.501 A.8)
// for the selected algorithms.
func newNASSecurity(kamf [32]byte, ngksi, integ, ciph uint8) (*nasSecurity, error) {
	kint, err := kdf.AlgorithmKey(kamf, kdf.NASInt, integ)
	if err != nil {
		return nil, fmt.Errorf("amf: KNASint: %w", err)
	}
	kenc, err := kdf.AlgorithmKey(kamf, kdf.NASEnc, ciph)
	if err != nil {
		return nil, fmt.Errorf("amf: KNASenc: %w", err)
	}
	sc := message.NewSecCtx(message.CoreNetworkSide, nasBearer, ie.AlgCiphering(ciph), ie.AlgIntegrity(integ), kenc[:], kint[:])
	return &nasSecurity{sc: sc, kamf: kamf, ngksi: ngksi, integ: integ, ciph: ciph}, nil
}

// protect encodes a downlink message with security header type sht
// (TS 24.501 4.4.4, 4.4.5): 3 for SECURITY MODE COMMAND, 2 otherwise. The
// downlink NAS COUNT advances.
func (s *nasSecurity) protect(m message.Message, sht message.SecHdrType) ([]byte, error) {
	b, err := message.Marshal(m, s.sc, sht)
	if err != nil {
		return nil, fmt.Errorf("amf: protect %v: %w", m.MsgType(), err)
	}
	return b, nil
}

// unprotect checks and deciphers an uplink security protected NAS message
// (TS 24.501 4.4.3.1, 4.4.4.3, 4.4.5). Header types 3 and 4 (new security
// context) are accepted only with newCtx, i.e. for the SECURITY MODE
// COMPLETE; they start the uplink NAS COUNT at 0. The NAS COUNT is estimated
// from the 8-bit sequence number relative to the next expected one, so a
// replayed message is estimated into the next overflow and fails the MAC
// check; it is then told apart as errNASReplay. On success the expected
// count moves past the message's and the plain NAS message and its NAS
// COUNT are returned.
func (s *nasSecurity) unprotect(b []byte, newCtx bool) (plain []byte, count uint32, err error) {
	if len(b) < secHdrLen+minPlainGMM || b[0] != epd5GMM {
		return nil, 0, errNASMalformed
	}
	sht := message.SecHdrType(b[1] & 0x0F)
	next := s.ulNext
	switch sht {
	case message.SecHdrTypeIntegrityProtected, message.SecHdrTypeIntegrityProtectedAndCiphered:
		if newCtx {
			return nil, 0, fmt.Errorf("%w: type %d where a new security context is expected", errNASHeader, sht)
		}
	case message.SecHdrTypeIntegrityProtectedWithNew5gNasSecCtx, message.SecHdrTypeIntegrityProtectedAndCipheredWithNew5gNasSecCtx:
		if !newCtx {
			return nil, 0, fmt.Errorf("%w: type %d (new security context) outside security mode control", errNASHeader, sht)
		}
		next = 0
	default:
		return nil, 0, fmt.Errorf("%w: type %d", errNASHeader, sht)
	}
	sqn := uint32(b[6])
	overflow := next >> 8
	if sqn < next&0xFF {
		overflow++
	}
	count = (overflow<<8 | sqn) & 0xFFFFFF
	mac := b[2:6]
	// TS 24.501 4.4.3.1: the integrity protection covers the sequence
	// number and the NAS message (octets 7 to n).
	ok, err := s.checkMAC(count, b[6:], mac)
	if err != nil {
		return nil, 0, err
	}
	if !ok {
		if sqn < next&0xFF { // estimated into the next overflow: an old count?
			old := ((overflow-1)<<8 | sqn) & 0xFFFFFF
			if again, _ := s.checkMAC(old, b[6:], mac); again {
				return nil, 0, fmt.Errorf("%w: NAS COUNT %d already used (next expected %d)", errNASReplay, old, next)
			}
		}
		return nil, 0, fmt.Errorf("%w (NAS COUNT %d, %v)", errNASMAC, count, sht)
	}
	plain = b[secHdrLen:]
	if sht == message.SecHdrTypeIntegrityProtectedAndCiphered || sht == message.SecHdrTypeIntegrityProtectedAndCipheredWithNew5gNasSecCtx {
		s.sc.UplinkCount.Count = count
		p, err := s.sc.NASEncrypt(message.DirectionUplink, append([]byte(nil), plain...))
		if err != nil {
			return nil, 0, fmt.Errorf("amf: decipher: %w", err)
		}
		plain = p
	}
	s.ulNext = (count + 1) & 0xFFFFFF
	return plain, count, nil
}

// checkMAC compares the NAS-MAC of msg under count with mac. With 128-NIA0
// there is no MAC to check (TS 33.501 D.1); this AMF never selects it.
func (s *nasSecurity) checkMAC(count uint32, msg, mac []byte) (bool, error) {
	s.sc.UplinkCount.Count = count
	x, err := s.sc.NASMacCalculate(message.DirectionUplink, msg)
	if err != nil {
		return false, fmt.Errorf("amf: NAS MAC: %w", err)
	}
	return subtle.ConstantTimeCompare(x, mac) == 1, nil
}

// selectAlgorithms picks the first algorithm of each preference list the
// UE supports (TS 33.501 6.7.1); ok is false if the UE supports none.
func selectAlgorithms(c *ie.UESecCapability, integPref, ciphPref []uint8) (integ, ciph uint8, ok bool) {
	ia := [4]bool{c.IA05G, c.IA1_128_5G, c.IA2_128_5G, c.IA3_128_5G}
	ea := [4]bool{c.EA05G, c.EA1_128_5G, c.EA2_128_5G, c.EA3_128_5G}
	foundI, foundC := false, false
	for _, id := range integPref {
		if id < 4 && ia[id] {
			integ, foundI = id, true
			break
		}
	}
	for _, id := range ciphPref {
		if id < 4 && ea[id] {
			ciph, foundC = id, true
			break
		}
	}
	return integ, ciph, foundI && foundC
}

// sameCapability reports whether two UE security capabilities are equal
// (the replay check of TS 33.501 6.7.2).
func sameCapability(a, b *ie.UESecCapability) bool {
	if a == nil || b == nil {
		return a == b
	}
	x, err1 := a.MarshalBinary()
	y, err2 := b.MarshalBinary()
	return err1 == nil && err2 == nil && string(x) == string(y)
}
