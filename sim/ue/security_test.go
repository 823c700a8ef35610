package ue

import (
	"bytes"
	"crypto/aes"
	"crypto/cipher"
	"encoding/binary"
	"errors"
	"strconv"
	"testing"

	"github.com/free5gc/nas/ie"
	"github.com/free5gc/nas/message"

	"github.com/simgate/simgate/internal/vectors"
	"github.com/simgate/simgate/sim/kdf"
	"github.com/simgate/simgate/sim/suci"
)

// refNEA2 is 128-NEA2 (TS 33.501 D.4.4, TS 33.401 B.1.3): AES-128 in CTR
// mode, initial counter COUNT || BEARER || DIRECTION || 0^26 || 0^64. It is
// an implementation independent of free5gc/nas, checked against the spec's
// test sets and then used to check the UE's messages.
func refNEA2(key [16]byte, count uint32, bearer, dir uint8, in []byte) []byte {
	var iv [16]byte
	binary.BigEndian.PutUint32(iv[:], count)
	iv[4] = bearer<<3 | dir<<2
	b, _ := aes.NewCipher(key[:])
	out := make([]byte, len(in))
	cipher.NewCTR(b, iv[:]).XORKeyStream(out, in)
	return out
}

// refNIA2 is 128-NIA2 (TS 33.501 D.4.3, TS 33.401 B.2.3): the 32 most
// significant bits of AES-CMAC (RFC 4493) over COUNT || BEARER || DIRECTION
// || 0^26 || MESSAGE, for a message of bits bits.
func refNIA2(key [16]byte, count uint32, bearer, dir uint8, msg []byte, bits int) [4]byte {
	m := make([]byte, 8+len(msg))
	binary.BigEndian.PutUint32(m, count)
	m[4] = bearer<<3 | dir<<2
	copy(m[8:], msg)
	t := cmacBits(key, m, 64+bits)
	return [4]byte(t[:4])
}

// cmacBits is AES-CMAC (NIST SP 800-38B) over the first n bits of m.
func cmacBits(key [16]byte, m []byte, n int) [16]byte {
	b, _ := aes.NewCipher(key[:])
	dbl := func(x [16]byte) [16]byte {
		var y [16]byte
		for i := range 15 {
			y[i] = x[i]<<1 | x[i+1]>>7
		}
		y[15] = x[15] << 1
		if x[0]&0x80 != 0 {
			y[15] ^= 0x87
		}
		return y
	}
	var l [16]byte
	b.Encrypt(l[:], l[:])
	k1 := dbl(l)
	k2 := dbl(k1)
	blocks := max((n+127)/128, 1)
	var x [16]byte
	for i := 0; i < blocks-1; i++ {
		for j := range 16 {
			x[j] ^= m[16*i+j]
		}
		b.Encrypt(x[:], x[:])
	}
	r := n - 128*(blocks-1) // bits in the last block
	var last [16]byte
	copy(last[:], m[16*(blocks-1):min(len(m), 16*blocks)])
	if r == 128 {
		for j := range 16 {
			last[j] ^= k1[j]
		}
	} else {
		// Keep r bits, then a 1 and zeros.
		if r%8 != 0 {
			last[r/8] &= 0xff << (8 - r%8)
		}
		for j := (r + 7) / 8; j < 16; j++ {
			last[j] = 0
		}
		last[r/8] |= 0x80 >> (r % 8)
		for j := range 16 {
			last[j] ^= k2[j]
		}
	}
	for j := range 16 {
		x[j] ^= last[j]
	}
	b.Encrypt(x[:], x[:])
	return x
}

type nasVector struct {
	Kind       string `json:"kind"`
	Name       string `json:"name"`
	Key        string `json:"key"`
	Count      string `json:"count"`
	Bearer     uint8  `json:"bearer"`
	Direction  uint8  `json:"direction"`
	LengthBits int    `json:"length_bits"`
	Plaintext  string `json:"plaintext"`
	Ciphertext string `json:"ciphertext"`
	Message    string `json:"message"`
	MAC        string `json:"mac"`
}

// TestReferenceNIA2NEA2 checks the reference algorithms against every
// 128-NEA2 and 128-NIA2 test set (TS 33.401 C.1, C.2), at bit lengths.
func TestReferenceNIA2NEA2(t *testing.T) {
	n := 0
	for _, c := range vectors.Load[nasVector](t, "nas_security.json") {
		if c.Kind != "nea2" && c.Kind != "nia2" {
			continue
		}
		n++
		t.Run(c.Name, func(t *testing.T) {
			key := [16]byte(unhex(t, c.Key))
			count, err := strconv.ParseUint(c.Count, 16, 32)
			if err != nil {
				t.Fatal(err)
			}
			if c.Kind == "nia2" {
				mac := refNIA2(key, uint32(count), c.Bearer, c.Direction, unhex(t, c.Message), c.LengthBits)
				sameBytes(t, "MAC", mac[:], unhex(t, c.MAC))
				return
			}
			got := refNEA2(key, uint32(count), c.Bearer, c.Direction, unhex(t, c.Plaintext))
			want := unhex(t, c.Ciphertext)
			// Compare the first length_bits bits only.
			full, rest := c.LengthBits/8, c.LengthBits%8
			sameBytes(t, "ciphertext", got[:full], want[:full])
			if rest != 0 && (got[full]^want[full])&(0xff<<(8-rest)) != 0 {
				t.Errorf("ciphertext bits %d..%d differ", 8*full, c.LengthBits)
			}
		})
	}
	if n != 14 {
		t.Errorf("%d NEA2/NIA2 cases, want 14", n)
	}
}

// TestNASSecurityAgainstReference checks the UE's 128-NIA2/NEA2 protection
// with the reference implementation and the keys of TS 33.501 A.8, both
// ways: an uplink message the UE protects, a downlink message the reference
// protects.
func TestNASSecurityAgainstReference(t *testing.T) {
	n := newTestNet(t)
	n.nea, n.nia = 2, 2
	u := newUE(t, n.config(testIMSI, suci.SchemeNull))
	n.register(u)
	kint, _ := kdf.AlgorithmKey(n.kamf, kdf.NASInt, 2)
	kenc, _ := kdf.AlgorithmKey(n.kamf, kdf.NASEnc, 2)
	const bearer = 1 // TS 33.501 6.4.3.1: NAS connection identifier of 3GPP access

	// Uplink: SECURITY MODE COMPLETE was COUNT 0, REGISTRATION COMPLETE 1.
	ul, err := u.EstablishSession(1)
	if err != nil {
		t.Fatal(err)
	}
	if ul[1] != 2 || ul[6] != 2 {
		t.Fatalf("header type %d, sequence number %d: want 2 and 2", ul[1], ul[6])
	}
	mac := refNIA2(kint, 2, bearer, 0, ul[6:], 8*len(ul[6:]))
	sameBytes(t, "uplink MAC", ul[2:6], mac[:])
	plain := refNEA2(kenc, 2, bearer, 0, ul[secHdrLen:])
	m, err := message.Parse(plain, nil)
	if err != nil {
		t.Fatal(err)
	}
	tr, ok := m.(*message.ULNASTransport)
	if !ok {
		t.Fatalf("deciphered %v", m.MsgType())
	}
	sm, err := message.ParseGSM(tr.PayloadCntr.Contents)
	if err != nil {
		t.Fatal(err)
	}
	pti := sm.ProcedureTransactionID()

	// Downlink COUNT 2 (SMC 0, REGISTRATION ACCEPT 1): the session accept,
	// protected by the reference.
	acc := &message.PDUSessEstAccept{PDUSessId: 1, PTI: pti,
		SelectedPDUSessType: &ie.PDUSessType{Value: ie.PDUSessType_IPv4}, SelectedSSCMode: &ie.SSCMode{Mode: 1},
		AuthoQosRules: &ie.QosRules{Rules: []ie.QosRule{{RuleId: 1, OpCode: ie.OpCode_CreateNewQosRule, IsDefaultDQR: true,
			PktFilterList: []ie.PacketFilter{{Dir: ie.PFD_BiDir, Id: 1, Contents: ie.PacketFilterContents{RemoteAddr: "any", LocalAddr: "any"}}},
			Precedence:    255, QFI: 1}}},
		SessAMBR: &ie.SessAMBR{UnitDownlink: ie.Rate_1Mbps, ValueDownlink: 1, UnitUplink: ie.Rate_1Mbps, ValueUplink: 1},
		PDUAddr:  &ie.PDUAddr{IPv4: []byte{10, 45, 0, 3}}}
	smb, err := acc.MarshalBinary()
	if err != nil {
		t.Fatal(err)
	}
	dlPlain, err := (&message.DLNASTransport{PayloadCntrType: &ie.PayloadCntrType{Value: ie.PayloadCntrType_N1SMInfo},
		PayloadCntr: &ie.PayloadCntr{Pct: ie.PayloadCntrType_N1SMInfo, Contents: smb}, PDUSessID: &ie.PDUSessId2{Value: 1}}).MarshalBinary()
	if err != nil {
		t.Fatal(err)
	}
	dl := append([]byte{0x7e, 0x02, 0, 0, 0, 0, 2}, refNEA2(kenc, 2, bearer, 1, dlPlain)...)
	dmac := refNIA2(kint, 2, bearer, 1, dl[6:], 8*len(dl[6:]))
	copy(dl[2:6], dmac[:])
	if out, err := u.Handle(dl); err != nil || len(out) != 0 {
		t.Fatalf("Handle(reference-protected accept) = %d, %v", len(out), err)
	}
	if s := u.State().Sessions[1]; s.State != SessionActive || s.IPv4.String() != "10.45.0.3" {
		t.Errorf("session %+v", s)
	}
}

func TestDownlinkDiscarded(t *testing.T) {
	n, u := registered(t, nil)
	var discarded []error
	u.onEvent = func(e Event) {
		if e.Kind == EventDiscarded {
			discarded = append(discarded, e.Err)
		}
	}
	ack := func() []byte { return n.protected(&message.CfgUpdateCmd{CfgUpdateInd: &ie.CfgUpdateInd{ACK: true}}) }
	dl1 := ack()
	expectUL[*message.CfgUpdateComplete](n, one(t, u, dl1))
	dl2 := ack()

	check := func(name string, dl []byte, want error) {
		t.Helper()
		before := len(discarded)
		ul, err := u.Handle(dl)
		if !errors.Is(err, want) || len(ul) != 0 {
			t.Errorf("%s: %d messages, %v; want none and %v", name, len(ul), err, want)
		}
		if len(discarded) != before+1 {
			t.Errorf("%s: no discard event", name)
		}
	}
	check("replay of the last message", dl1, ErrReplay)
	badMAC := bytes.Clone(dl2)
	badMAC[5] ^= 1
	check("bad MAC", badMAC, ErrIntegrity)
	badBody := bytes.Clone(dl2)
	badBody[len(badBody)-1] ^= 0x80
	check("altered message", badBody, ErrIntegrity)
	badSQN := bytes.Clone(dl2)
	badSQN[6]++
	check("altered sequence number", badSQN, ErrIntegrity)
	plain, _ := (&message.CfgUpdateCmd{CfgUpdateInd: &ie.CfgUpdateInd{ACK: true}}).MarshalBinary()
	check("plain message after security activation", plain, ErrUnprotected)
	// The untouched message is still accepted: nothing above changed the
	// downlink COUNT.
	expectUL[*message.CfgUpdateComplete](n, one(t, u, dl2))
	// An older message replayed: its sequence number is below the last one,
	// so it would need the next overflow value and fails the MAC.
	check("replay of an older message", dl1, ErrIntegrity)
	check("header type 4", append([]byte{0x7e, 0x04}, dl2[2:]...), ErrMalformed)
	check("5GSM discriminator", append([]byte{0x2e}, dl2[1:]...), ErrMalformed)
	check("truncated", dl2[:5], ErrMalformed)
	check("downlink SECURITY MODE COMMAND under header type 2", n.protected(&message.SecModeCmd{
		SelectedNASSecAlgos: &ie.NASSecAlgos{}, Ngksi: &ie.NASKeySetId{}, ReplayedUESecCapabilities: &ie.UESecCapability{Length: 2}}), ErrUnexpected)
	check("REGISTRATION ACCEPT when registered", n.registrationAccept(), ErrUnexpected)
	if st := u.State(); st.State != Registered || !st.Secured {
		t.Errorf("state after discards: %+v", st)
	}
	// The UE still talks with the network.
	n.establish(u, 1, [4]byte{10, 45, 0, 8})
}

// TestProtectedBeforeSecurity: a protected message before the UE has a
// security context cannot be checked and is discarded.
func TestProtectedBeforeSecurity(t *testing.T) {
	n, u := authenticated(t, nil)
	other, _ := registered(t, nil)
	dl := other.protected(&message.CfgUpdateCmd{CfgUpdateInd: &ie.CfgUpdateInd{ACK: true}})
	if _, err := u.Handle(dl); !errors.Is(err, ErrUnprotected) {
		t.Errorf("protected message without a context: %v, want ErrUnprotected", err)
	}
	// Plain REGISTRATION ACCEPT is never processed.
	if _, err := u.Handle(n.plain(&message.RegAccept{RegResult5GS: &ie.RegResult5GS{Value: 1}})); !errors.Is(err, ErrUnprotected) {
		t.Errorf("plain REGISTRATION ACCEPT: %v, want ErrUnprotected", err)
	}
}

// TestCountOverflow sends and receives more than 256 messages, so that the
// NAS overflow counters advance both ways (TS 24.501 4.4.3.1).
func TestCountOverflow(t *testing.T) {
	n, u := registered(t, nil)
	n.nea = 0
	for i := range 600 {
		ul := one(t, u, n.protected(&message.IdReq{IdType: &ie.IdType5GS{IdType: ie.IdType_5GS_IMEISV}}))
		expectUL[*message.IdRsp](n, ul)
		if i%3 == 0 { // downlink messages without answer
			if out, err := u.Handle(n.protected(&message.CfgUpdateCmd{CfgUpdateInd: &ie.CfgUpdateInd{}})); err != nil || len(out) != 0 {
				t.Fatalf("message %d: %d, %v", i, len(out), err)
			}
		}
	}
	if got := n.sc.UplinkCount.Get(); got != 601 {
		t.Errorf("uplink NAS COUNT %d, want 601", got)
	}
	if got := u.current.dlLast; got != n.sc.DownlinkCount.Get()-1 {
		t.Errorf("UE's last downlink COUNT %d, network sent up to %d", got, n.sc.DownlinkCount.Get()-1)
	}
}
