package ue

import (
	"fmt"
	"testing"

	"github.com/free5gc/nas/ie"
	"github.com/free5gc/nas/message"

	"github.com/simgate/simgate/sim/kdf"
	"github.com/simgate/simgate/sim/suci"
)

// rawMsg is a plain NAS message given as bytes, for the network to protect.
type rawMsg []byte

func (m rawMsg) ExtendedProtocolDiscriminator() message.Epd { return message.Epd5GSMobilityMgmtMsg }
func (m rawMsg) MsgType() message.MsgType {
	if len(m) > 2 {
		return message.MsgType(m[2])
	}
	return 0
}
func (m rawMsg) MarshalBinary() ([]byte, error) { return m, nil }
func (m rawMsg) UnmarshalBinary([]byte) error   { return nil }

// Fuzz modes: the UE's state and how the input reaches it.
const (
	fuzzInitiated     = iota // raw, after REGISTRATION REQUEST
	fuzzAuthenticated        // raw, after the authentication challenge
	fuzzRegistered           // raw, when registered
	fuzzProtected            // protected (header type 2) by the network, when registered
	fuzzNewContext           // protected with a new context (header type 3), after authentication
	fuzzModes
)

// FuzzHandle hands arbitrary downlink NAS to a UE in each state, raw or
// validly protected so that the decoder behind the integrity check is
// reached. The UE must never panic, and a discarded message must leave its
// state as it was.
func FuzzHandle(f *testing.F) {
	// Seeds: the messages of a registration and a PDU session, in each mode.
	n := newTestNet(f)
	u := newUE(f, n.config(testIMSI, suci.SchemeNull))
	ul, _ := u.RegistrationRequest()
	n.registrationRequest(ul)
	auth := n.authenticationRequest()
	f.Add(append([]byte{fuzzInitiated}, auth...))
	n.authenticationResponse(one(f, u, auth))
	smc := n.securityModeCommand(n.ueCap, true)
	f.Add(append([]byte{fuzzAuthenticated}, smc...))
	f.Add(append([]byte{fuzzNewContext}, smc[secHdrLen:]...))
	one(f, u, smc)
	acc := n.registrationAccept()
	f.Add(append([]byte{fuzzRegistered}, acc...))
	for _, m := range []message.Message{
		&message.CfgUpdateCmd{CfgUpdateInd: &ie.CfgUpdateInd{ACK: true}},
		&message.IdReq{IdType: &ie.IdType5GS{IdType: ie.IdType_5GS_IMEI}},
		&message.DeregReqUETerm{DeregType: &ie.DeregType{AccessType: 1}},
		&message.RegRej{Cause5GMM: &ie.Cause5GMM{Value: 7}},
	} {
		b, _ := m.MarshalBinary()
		f.Add(append([]byte{fuzzProtected}, b...))
	}
	b, _ := (&message.PDUSessRelCmd{PDUSessId: 1, Cause5GSM: &ie.Cause5GSM{Value: 36}}).MarshalBinary()
	dl, _ := (&message.DLNASTransport{PayloadCntrType: &ie.PayloadCntrType{Value: 1}, PayloadCntr: &ie.PayloadCntr{Pct: 1, Contents: b},
		PDUSessID: &ie.PDUSessId2{Value: 1}}).MarshalBinary()
	f.Add(append([]byte{fuzzProtected}, dl...))
	f.Add(append([]byte{fuzzProtected}, n.sessionAccept(1, 1, [4]byte{10, 45, 0, 1})[secHdrLen:]...))
	f.Add([]byte{fuzzRegistered, 0x7e, 0x02, 0, 0, 0, 0, 5})

	f.Fuzz(func(t *testing.T, data []byte) {
		if len(data) == 0 {
			return
		}
		mode, in := data[0]%fuzzModes, data[1:]
		n, u := fuzzUE(t, mode)
		if mode == fuzzRegistered || mode == fuzzProtected {
			// A session pending, so that session messages are expected.
			if _, err := u.EstablishSession(1); err != nil {
				t.Fatal(err)
			}
		}
		switch mode {
		case fuzzProtected:
			in = n.protected(rawMsg(in))
		case fuzzNewContext:
			in = fuzzSMC(t, n, in)
		}
		before, usim := fmt.Sprint(u.State()), fmt.Sprint(u.USIMState())
		ul, err := u.Handle(in)
		if err != nil {
			if len(ul) != 0 {
				t.Errorf("error %v with %d uplink messages", err, len(ul))
			}
			if after := fmt.Sprint(u.State()); after != before {
				t.Errorf("discarded message changed the state:\n%s\n%s", before, after)
			}
			if fmt.Sprint(u.USIMState()) != usim {
				t.Error("discarded message changed the USIM")
			}
		}
		for _, b := range ul {
			if len(b) < int(message.GmmHdrLen) || b[0] != byte(message.Epd5GSMobilityMgmtMsg) {
				t.Errorf("uplink message %x is not 5GMM", b)
			}
		}
	})
}

// fuzzUE returns a network and a UE in the state of mode.
func fuzzUE(t *testing.T, mode byte) (*testNet, *UE) {
	n := newTestNet(t)
	u := newUE(t, n.config(testIMSI, suci.SchemeNull))
	ul, err := u.RegistrationRequest()
	if err != nil {
		t.Fatal(err)
	}
	n.registrationRequest(ul)
	if mode == fuzzInitiated {
		return n, u
	}
	if err := n.authenticationResponse(one(t, u, n.authenticationRequest())); err != nil {
		t.Fatal(err)
	}
	if mode == fuzzAuthenticated || mode == fuzzNewContext {
		return n, u
	}
	if _, err := n.securityModeComplete(one(t, u, n.securityModeCommand(n.ueCap, true))); err != nil {
		t.Fatal(err)
	}
	one(t, u, n.registrationAccept())
	return n, u
}

// fuzzSMC protects in with header type 3 and the keys of the UE's pending
// context, as a SECURITY MODE COMMAND would be, with the algorithms the
// input names if it is long enough to.
func fuzzSMC(t *testing.T, n *testNet, in []byte) []byte {
	nea, nia := uint8(0), uint8(2)
	if len(in) > 3 && in[3]&0x07 != 0 && in[3]&0x07 <= 3 && (in[3]>>4)&0x07 <= 3 {
		nea, nia = (in[3]>>4)&0x07, in[3]&0x07
	}
	kenc, _ := kdf.AlgorithmKey(n.kamf, kdf.NASEnc, nea)
	kint, _ := kdf.AlgorithmKey(n.kamf, kdf.NASInt, nia)
	sc := message.NewSecCtx(message.CoreNetworkSide, message.Bearer3GPP, ie.AlgCiphering(nea), ie.AlgIntegrity(nia), kenc[:], kint[:])
	b, err := message.Marshal(rawMsg(in), sc, message.SecHdrTypeIntegrityProtectedWithNew5gNasSecCtx)
	if err != nil {
		t.Fatal(err)
	}
	return b
}
