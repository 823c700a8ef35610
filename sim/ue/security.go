package ue

import (
	"crypto/subtle"
	"errors"
	"fmt"

	"github.com/free5gc/nas/ie"
	"github.com/free5gc/nas/message"

	"github.com/simgate/simgate/sim/kdf"
)

// Errors Handle wraps when it discards a downlink message.
var (
	// ErrMalformed: the message cannot be decoded or misses a mandatory
	// part.
	ErrMalformed = errors.New("malformed NAS message")
	// ErrIntegrity: the NAS MAC does not verify (TS 24.501 4.4.4.2).
	ErrIntegrity = errors.New("NAS integrity check failed")
	// ErrReplay: the NAS COUNT was accepted before (TS 33.501 6.4.3.1).
	ErrReplay = errors.New("replayed NAS COUNT")
	// ErrUnprotected: a message that the UE processes only integrity
	// protected came without protection, or a protected message came before
	// there was a security context to check it with (TS 24.501 4.4.4.2).
	ErrUnprotected = errors.New("NAS message not integrity protected")
	// ErrUnexpected: a message the UE does not expect in its state.
	ErrUnexpected = errors.New("unexpected NAS message")
	// ErrState: an API call that the UE's state does not allow.
	ErrState = errors.New("not allowed in this state")
)

// TS 24.501 9.1.1: the security protected 5GS NAS message header: EPD,
// security header type, MAC (4), sequence number.
const secHdrLen = 7

// nasContext is a 5G NAS security context (TS 24.501 4.4.2, TS 33.501
// 6.7.2): KAMF and its ngKSI and, once the security mode control procedure
// has selected algorithms, the NAS keys and both NAS COUNTs.
type nasContext struct {
	ksi  uint8
	kamf [32]byte
	// sc holds the algorithms, KNASenc, KNASint and the COUNTs; the uplink
	// COUNT is the next one to send.
	sc *message.SecCtx
	// dlLast is the NAS COUNT of the last downlink message accepted, if
	// dlSeen.
	dlLast uint32
	dlSeen bool
}

// activate derives the NAS keys for the selected algorithms from KAMF
// (TS 33.501 A.8) and returns the context with fresh NAS COUNTs.
func (c *nasContext) activate(nea, nia uint8) (*nasContext, error) {
	kenc, err := kdf.AlgorithmKey(c.kamf, kdf.NASEnc, nea)
	if err != nil {
		return nil, err
	}
	kint, err := kdf.AlgorithmKey(c.kamf, kdf.NASInt, nia)
	if err != nil {
		return nil, err
	}
	// TS 33.501 6.4.3.1: BEARER is the NAS connection identifier, 0x01 for
	// 3GPP access.
	sc := message.NewSecCtx(message.UESide, message.Bearer3GPP, ie.AlgCiphering(nea), ie.AlgIntegrity(nia), kenc[:], kint[:])
	return &nasContext{ksi: c.ksi, kamf: c.kamf, sc: sc}, nil
}

// protect wraps a plain 5GMM message in a security protected 5GS NAS message
// of header type hdr (TS 24.501 9.1.1, 4.4.3): ciphered with the uplink NAS
// COUNT for types 2 and 4, then the MAC over sequence number and message.
// The uplink NAS COUNT then advances.
func (c *nasContext) protect(plain []byte, hdr message.SecHdrType) ([]byte, error) {
	count := c.sc.UplinkCount.Get()
	body := plain
	if hdr == message.SecHdrTypeIntegrityProtectedAndCiphered || hdr == message.SecHdrTypeIntegrityProtectedAndCipheredWithNew5gNasSecCtx {
		var err error
		if body, err = c.sc.NASEncrypt(message.DirectionUplink, plain); err != nil {
			return nil, fmt.Errorf("ue: cipher: %w", err)
		}
	}
	out := make([]byte, secHdrLen, secHdrLen+len(body))
	out[0] = byte(message.Epd5GSMobilityMgmtMsg)
	out[1] = byte(hdr)
	out[6] = byte(count) // TS 24.501 9.10: the 8 LSBs of the NAS COUNT
	out = append(out, body...)
	// TS 24.501 4.4.3.3: the MAC covers the sequence number and the message.
	mac, err := c.sc.NASMacCalculate(message.DirectionUplink, out[6:])
	if err != nil {
		return nil, fmt.Errorf("ue: NAS MAC: %w", err)
	}
	copy(out[2:6], mac)
	c.sc.UplinkCount.AddOne()
	return out, nil
}

// estimate returns the NAS COUNT of a downlink sequence number
// (TS 24.501 4.4.3.1): the overflow counter of the last accepted COUNT, plus
// one if the sequence number went below that COUNT's.
func (c *nasContext) estimate(sqn uint8) uint32 {
	if !c.dlSeen {
		return uint32(sqn)
	}
	overflow := c.dlLast >> 8
	if sqn < uint8(c.dlLast) {
		overflow++
	}
	return (overflow<<8 | uint32(sqn)) & 0xffffff
}

// unprotect checks a security protected downlink message b (header type
// 1 to 4, at least secHdrLen octets) and returns the plain message inside,
// deciphered for types 2 and 4. A COUNT that is not higher than the last
// accepted one is a replay (TS 33.501 6.4.3.1); nothing changes unless the
// message is accepted.
func (c *nasContext) unprotect(b []byte) ([]byte, error) {
	count := c.estimate(b[6])
	if c.dlSeen && count <= c.dlLast {
		return nil, fmt.Errorf("NAS COUNT %#x, last accepted %#x: %w", count, c.dlLast, ErrReplay)
	}
	c.sc.DownlinkCount.Count = count
	mac, err := c.sc.NASMacCalculate(message.DirectionDownlink, b[6:])
	if err != nil {
		return nil, fmt.Errorf("NAS MAC: %w", err)
	}
	if subtle.ConstantTimeCompare(mac, b[2:6]) != 1 {
		return nil, fmt.Errorf("NAS COUNT %#x: MAC %x, want %x: %w", count, b[2:6], mac, ErrIntegrity)
	}
	body := b[secHdrLen:]
	if hdr := message.SecHdrType(b[1] & 0x0f); hdr == message.SecHdrTypeIntegrityProtectedAndCiphered ||
		hdr == message.SecHdrTypeIntegrityProtectedAndCipheredWithNew5gNasSecCtx {
		if body, err = c.sc.NASEncrypt(message.DirectionDownlink, body); err != nil {
			return nil, fmt.Errorf("decipher: %w", err)
		}
	}
	c.dlLast, c.dlSeen = count, true
	return body, nil
}
