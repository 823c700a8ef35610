package ue

import (
	"bytes"
	"encoding/hex"
	"errors"
	"fmt"
	"net/netip"
	"testing"

	"github.com/free5gc/nas/ie"
	"github.com/free5gc/nas/message"

	"github.com/simgate/simgate/internal/vectors"
	"github.com/simgate/simgate/sim/aka"
	"github.com/simgate/simgate/sim/milenage"
	"github.com/simgate/simgate/sim/suci"
)

func newUE(t testing.TB, cfg Config) *UE {
	t.Helper()
	u, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return u
}

// registered returns a network and a UE registered with it.
func registered(t testing.TB, mod func(*Config)) (*testNet, *UE) {
	t.Helper()
	n := newTestNet(t)
	cfg := n.config(testIMSI, suci.SchemeNull)
	if mod != nil {
		mod(&cfg)
	}
	u := newUE(t, cfg)
	n.register(u)
	return n, u
}

func TestRegistrationEachScheme(t *testing.T) {
	for _, scheme := range []suci.Scheme{suci.SchemeNull, suci.SchemeProfileA, suci.SchemeProfileB} {
		t.Run(scheme.String(), func(t *testing.T) {
			n := newTestNet(t)
			var events []Event
			cfg := n.config(testIMSI, scheme)
			cfg.OnEvent = func(e Event) { events = append(events, e) }
			u := newUE(t, cfg)
			if got := n.register(u); got != testIMEISV {
				t.Errorf("IMEISV %q, want %q", got, testIMEISV)
			}
			if n.supi != "imsi-"+testIMSI || u.SUPI() != n.supi {
				t.Errorf("network resolved SUPI %s", n.supi)
			}
			// free5gc's decoding of the identity agrees with sim/suci's.
			var s suci.SUCI
			if err := s.UnmarshalBinary(identityOf(t, mustRegReqBytes(t, n, u), 4)); err != nil {
				t.Fatal(err)
			}
			if got := n.regReq.MobileId5GS.SUCIStr(); got != s.String() {
				t.Errorf("free5gc reads the SUCI as %s, sim/suci as %s", got, s)
			}
			if len(events) != 1 || events[0].Kind != EventRegistered {
				t.Errorf("events %v, want one %v", events, EventRegistered)
			}
		})
	}
}

// mustRegReqBytes has a deregistered copy of u's configuration produce a
// fresh REGISTRATION REQUEST, parsed by the network.
func mustRegReqBytes(t *testing.T, n *testNet, u *UE) []byte {
	t.Helper()
	v := newUE(t, Config{IMSI: testIMSI, K: testK, OPc: testOPc, IMEISV: testIMEISV,
		SUCI: SUCIConfig{Scheme: u.suci.Scheme, HNPublicKey: u.suci.HNPublicKey, KeyID: u.suci.KeyID}})
	b, err := v.RegistrationRequest()
	if err != nil {
		t.Fatal(err)
	}
	n.registrationRequest(b)
	return b
}

// TestSUCIVectors conceals the TS 33.501 C.4 SUPI with the C.4 home network
// key and ephemeral key (drawn from the UE's random source) and checks the
// scheme output in the REGISTRATION REQUEST.
func TestSUCIVectors(t *testing.T) {
	type vec struct {
		Name   string `json:"name"`
		Scheme string `json:"protection_scheme"`
		SUPI   any    `json:"supi"`
		HNPub  string `json:"home_network_public_key"`
		HNPubC string `json:"home_network_public_key_compressed"`
		Eph    string `json:"eph_private_key"`
		Output string `json:"scheme_output"`
	}
	const imsi = "274012001002086" // C.4: MCC 274, MNC 012, MSIN 001002086
	ran := 0
	for _, c := range vectors.Load[vec](t, "suci.json") {
		supi, ok := c.SUPI.(map[string]any)
		if !ok || supi["type"] != "imsi" || supi["imsi"] != imsi {
			continue
		}
		t.Run(c.Name, func(t *testing.T) {
			cfg := Config{IMSI: imsi, MNCLen: 3, K: testK, OPc: testOPc, IMEISV: testIMEISV}
			var eph []byte
			switch {
			case c.HNPub != "":
				pub, err := suci.ParsePublicKey(suci.SchemeProfileA, c.HNPub)
				if err != nil {
					t.Fatal(err)
				}
				cfg.SUCI = SUCIConfig{Scheme: suci.SchemeProfileA, HNPublicKey: pub, KeyID: 1}
				eph = unhex(t, c.Eph)
			case c.HNPubC != "":
				pub, err := suci.ParsePublicKey(suci.SchemeProfileB, c.HNPubC)
				if err != nil {
					t.Fatal(err)
				}
				cfg.SUCI = SUCIConfig{Scheme: suci.SchemeProfileB, HNPublicKey: pub, KeyID: 1}
				eph = unhex(t, c.Eph)
			}
			cfg.Rand = bytes.NewReader(eph)
			ul, err := newUE(t, cfg).RegistrationRequest()
			if err != nil {
				t.Fatal(err)
			}
			var s suci.SUCI
			if err := s.UnmarshalBinary(identityOf(t, ul, 4)); err != nil {
				t.Fatal(err)
			}
			if s.MCC != "274" || s.MNC != "012" || s.Scheme != cfg.SUCI.Scheme {
				t.Errorf("SUCI %v", s)
			}
			sameBytes(t, "scheme output", s.SchemeOutput, unhex(t, c.Output))
		})
		ran++
	}
	if ran != 3 {
		t.Errorf("ran %d IMSI cases of suci.json, want 3 (null, A, B)", ran)
	}
}

func unhex(t testing.TB, s string) []byte {
	t.Helper()
	b, err := hex.DecodeString(s)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// TestAlgorithms registers, establishes and releases a PDU session with each
// 128-NIA and NEA pair, so that messages are protected both ways with it.
func TestAlgorithms(t *testing.T) {
	for nia := uint8(1); nia <= 3; nia++ {
		for nea := uint8(0); nea <= 3; nea++ {
			t.Run(fmt.Sprintf("NIA%d-NEA%d", nia, nea), func(t *testing.T) {
				n := newTestNet(t)
				n.nea, n.nia = nea, nia
				u := newUE(t, n.config(testIMSI, suci.SchemeNull))
				n.register(u)
				st := u.State()
				if st.Ciphering != nea || st.Integrity != nia {
					t.Errorf("UE uses NEA%d/NIA%d", st.Ciphering, st.Integrity)
				}
				n.establish(u, 5, [4]byte{10, 45, 0, 7})
				rel, err := u.ReleaseSession(5)
				if err != nil {
					t.Fatal(err)
				}
				req := ulSM[*message.PDUSessRelReq](n, rel)
				ulSM[*message.PDUSessRelComplete](n, one(t, u, n.dlSM(5, &message.PDUSessRelCmd{
					PDUSessId: 5, PTI: req.PTI, Cause5GSM: &ie.Cause5GSM{Value: CauseRegularDeactivation}})))
				if len(u.State().Sessions) != 0 {
					t.Errorf("sessions after release: %v", u.State().Sessions)
				}
			})
		}
	}
}

// smReject checks a SECURITY MODE REJECT (plain, as no context is in use)
// and returns its cause.
func smReject(t *testing.T, n *testNet, ul []byte) uint8 {
	t.Helper()
	m, ok := n.parsePlain(ul).(*message.SecModeRej)
	if !ok {
		t.Fatalf("got %v, want SECURITY MODE REJECT", n.parsePlain(ul).MsgType())
	}
	return m.Cause5GMM.Value
}

// authenticated returns a network and a UE that has answered the
// authentication challenge.
func authenticated(t *testing.T, mod func(*Config)) (*testNet, *UE) {
	t.Helper()
	n := newTestNet(t)
	cfg := n.config(testIMSI, suci.SchemeNull)
	if mod != nil {
		mod(&cfg)
	}
	u := newUE(t, cfg)
	ul, err := u.RegistrationRequest()
	if err != nil {
		t.Fatal(err)
	}
	n.registrationRequest(ul)
	if err := n.authenticationResponse(one(t, u, n.authenticationRequest())); err != nil {
		t.Fatal(err)
	}
	return n, u
}

func TestSecurityModeCommandRejected(t *testing.T) {
	tests := []struct {
		name  string
		mod   func(*Config)
		smc   func(n *testNet) []byte
		cause uint8
	}{
		{"bad MAC", nil, func(n *testNet) []byte {
			b := n.securityModeCommand(n.ueCap, true)
			b[3] ^= 0x40
			return b
		}, CauseSecurityModeRejected},
		{"replayed capabilities altered", nil, func(n *testNet) []byte {
			c := bytes.Clone(n.ueCap)
			c[1] &^= 0x20 // drop 128-5G-IA2
			return n.securityModeCommand(c, true)
		}, CauseUESecurityCapMismatch},
		{"replayed capabilities with EPS octets", nil, func(n *testNet) []byte {
			return n.securityModeCommand(append(bytes.Clone(n.ueCap), 0xf0, 0x70), true)
		}, CauseUESecurityCapMismatch},
		{"5G-IA0", func(c *Config) { c.Integrity = []uint8{0, 1, 2} }, func(n *testNet) []byte {
			n.nia = 0
			return n.securityModeCommand(n.ueCap, true)
		}, CauseSecurityModeRejected},
		{"unsupported integrity algorithm", func(c *Config) { c.Integrity = []uint8{2} }, func(n *testNet) []byte {
			n.nia = 1
			return n.securityModeCommand(n.ueCap, true)
		}, CauseSecurityModeRejected},
		{"unsupported ciphering algorithm", func(c *Config) { c.Ciphering = []uint8{0, 2} }, func(n *testNet) []byte {
			n.nea = 3
			return n.securityModeCommand(n.ueCap, true)
		}, CauseSecurityModeRejected},
		{"unknown ngKSI", nil, func(n *testNet) []byte {
			n.ksi = 3
			return n.securityModeCommand(n.ueCap, true)
		}, CauseSecurityModeRejected},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var events []Event
			n, u := authenticated(t, func(c *Config) {
				c.OnEvent = func(e Event) { events = append(events, e) }
				if tc.mod != nil {
					tc.mod(c)
				}
			})
			if got := smReject(t, n, one(t, u, tc.smc(n))); got != tc.cause {
				t.Errorf("SECURITY MODE REJECT cause #%d, want #%d", got, tc.cause)
			}
			if u.State().Secured {
				t.Error("UE took a rejected security context into use")
			}
			if len(events) != 1 || events[0].Kind != EventSecurityModeRejected || events[0].Cause != tc.cause {
				t.Errorf("events %+v", events)
			}
		})
	}
}

// TestSecurityModeCommandAfterReject: a good SECURITY MODE COMMAND after a
// rejected one (bad MAC) is still accepted with the same KAMF.
func TestSecurityModeCommandAfterReject(t *testing.T) {
	n, u := authenticated(t, nil)
	bad := n.securityModeCommand(n.ueCap, true)
	bad[len(bad)-1] ^= 1
	if c := smReject(t, n, one(t, u, bad)); c != CauseSecurityModeRejected {
		t.Fatalf("cause #%d", c)
	}
	if _, err := n.securityModeComplete(one(t, u, n.securityModeCommand(n.ueCap, false))); err != nil {
		t.Fatal(err)
	}
}

func TestSynchFailure(t *testing.T) {
	n := newTestNet(t)
	cfg := n.config(testIMSI, suci.SchemeNull)
	// The USIM has seen SEQ 0x80000 with every IND, the highest with IND 0
	// (SQN 0x1000000); the AuC starts at 0: its SQNs are stale.
	st := aka.State{INDBits: aka.DefaultINDBits, SEQ: make([]uint64, 32)}
	for i := range st.SEQ {
		st.SEQ[i] = 0x7ffff
	}
	st.SEQ[0] = 0x80000
	cfg.USIMState = &st
	u := newUE(t, cfg)
	ul, err := u.RegistrationRequest()
	if err != nil {
		t.Fatal(err)
	}
	n.registrationRequest(ul)
	f, ok := n.parsePlain(one(t, u, n.authenticationRequest())).(*message.AuthFailure)
	if !ok || f.Cause5GMM.Value != CauseSynchFailure || f.AuthFailureParam == nil {
		t.Fatalf("want AUTHENTICATION FAILURE #21 with AUTS, got %+v", f)
	}
	auts := [aka.AUTSLen]byte(f.AuthFailureParam.Value)
	// TS 33.102 6.3.3: AUTS = SQN_MS xor AK* || MAC-S, MAC-S = f1*(SQN_MS ||
	// RAND || AMF* = 0).
	m, err := milenage.New(testK, testOPc)
	if err != nil {
		t.Fatal(err)
	}
	var got [6]byte
	akStar := m.F5Star(n.vector.RAND)
	for i := range got {
		got[i] = auts[i] ^ akStar[i]
	}
	want := [6]byte{0, 0, 0x01, 0, 0, 0}
	if got != want {
		t.Errorf("AUTS conceals SQN_MS %x, want %x", got, want)
	}
	_, macS := m.F1(n.vector.RAND, want, [2]byte{})
	sameBytes(t, "MAC-S", auts[6:], macS[:])
	// The AuC resynchronises; the next challenge succeeds.
	if err := n.auc.Resync(testIMSI, n.vector.RAND, auts); err != nil {
		t.Fatal(err)
	}
	if err := n.authenticationResponse(one(t, u, n.authenticationRequest())); err != nil {
		t.Fatal(err)
	}
	if _, err := n.securityModeComplete(one(t, u, n.securityModeCommand(n.ueCap, true))); err != nil {
		t.Fatal(err)
	}
}

func TestAuthenticationFailure(t *testing.T) {
	tests := []struct {
		name  string
		mod   func(*Config)
		req   func(n *testNet) []byte
		cause uint8
	}{
		{"MAC failure", nil, func(n *testNet) []byte {
			v, err := n.auc.Vector(testIMSI)
			if err != nil {
				n.t.Fatal(err)
			}
			v.AUTN[10] ^= 1
			return n.authenticationRequestFor(v)
		}, CauseMACFailure},
		{"BadAUTN misbehaviour", func(c *Config) { c.Misbehave.BadAUTN = true }, nil, CauseMACFailure},
		{"AMF separation bit not set", nil, func(n *testNet) []byte {
			auc, err := aka.NewAuC(n.store, bytes.NewReader(make([]byte, 16)), aka.AuCConfig{})
			if err != nil {
				n.t.Fatal(err)
			}
			v, err := auc.Vector(testIMSI)
			if err != nil {
				n.t.Fatal(err)
			}
			return n.authenticationRequestFor(v)
		}, CauseNon5GAuthUnacceptable},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			n := newTestNet(t)
			cfg := n.config(testIMSI, suci.SchemeNull)
			if tc.mod != nil {
				tc.mod(&cfg)
			}
			u := newUE(t, cfg)
			ul, err := u.RegistrationRequest()
			if err != nil {
				t.Fatal(err)
			}
			n.registrationRequest(ul)
			before := u.USIMState()
			req := n.authenticationRequest
			if tc.req != nil {
				req = func() []byte { return tc.req(n) }
			}
			f, ok := n.parsePlain(one(t, u, req())).(*message.AuthFailure)
			if !ok || f.Cause5GMM.Value != tc.cause || f.AuthFailureParam != nil {
				t.Fatalf("want AUTHENTICATION FAILURE #%d without AUTS, got %+v", tc.cause, f)
			}
			if after := u.USIMState(); fmt.Sprint(after) != fmt.Sprint(before) {
				t.Errorf("USIM state changed: %v -> %v", before, after)
			}
			// The network gives up: AUTHENTICATION REJECT.
			if ul, err := u.Handle(n.plain(&message.AuthRej{})); err != nil || len(ul) != 0 {
				t.Fatalf("Handle(AUTHENTICATION REJECT) = %d, %v", len(ul), err)
			}
			if st := u.State(); st.State != Deregistered || !st.AuthRejected {
				t.Errorf("after AUTHENTICATION REJECT: %+v", st)
			}
		})
	}
}

// TestAuthenticationRetransmission: the same challenge twice gets the same
// RES*; the USIM would see the second AUTN as a replay.
func TestAuthenticationRetransmission(t *testing.T) {
	n, u := authenticated(t, nil)
	req := n.authenticationRequestFor(n.vector)
	if err := n.authenticationResponse(one(t, u, req)); err != nil {
		t.Fatal(err)
	}
	if _, err := n.securityModeComplete(one(t, u, n.securityModeCommand(n.ueCap, true))); err != nil {
		t.Fatal(err)
	}
}

// TestNgKSIInUse: re-authentication with the ngKSI of the current context
// gets #71 (TS 24.501 5.4.1.3.7 c), protected.
func TestNgKSIInUse(t *testing.T) {
	n, u := registered(t, nil)
	v, err := n.auc.Vector(testIMSI)
	if err != nil {
		t.Fatal(err)
	}
	m := &message.AuthReq{
		Ngksi:                   &ie.NASKeySetId{Ksi: n.ksi},
		ABBA:                    &ie.ABBA{Abba: []byte{0, 0}},
		AuthParamRAND5GAuthChlg: &ie.AuthParamRAND{Rand: v.RAND[:]},
		AuthParamAUTN5GAuthChlg: &ie.AuthParamAUTN{Autn: v.AUTN[:]},
	}
	f := expectUL[*message.AuthFailure](n, one(t, u, n.protected(m)))
	if f.Cause5GMM.Value != CauseNgKSIAlreadyInUse {
		t.Errorf("cause #%d, want #71", f.Cause5GMM.Value)
	}
}

func TestRegistrationReject(t *testing.T) {
	tests := []struct {
		cause    uint8
		keepGUTI bool
	}{
		{CauseIllegalUE, false},
		{CausePEINotAccepted, true},
		{Cause5GSServicesNotAllowed, false},
		{CausePLMNNotAllowed, false},
		{CauseSecurityModeRejected, true},
	}
	for _, tc := range tests {
		t.Run(fmt.Sprint("#", tc.cause), func(t *testing.T) {
			// A UE that holds a 5G-GUTI from an earlier registration.
			n, u := registered(t, nil)
			if ul, err := u.Handle(n.protected(&message.DeregReqUETerm{DeregType: &ie.DeregType{AccessType: ie.AccessType_3gpp}})); err != nil || len(ul) != 1 {
				t.Fatalf("deregistration: %d, %v", len(ul), err)
			}
			if _, err := u.RegistrationRequest(); err != nil {
				t.Fatal(err)
			}
			var got []Event
			u.onEvent = func(e Event) { got = append(got, e) }
			ul, err := u.Handle(n.plain(&message.RegRej{Cause5GMM: &ie.Cause5GMM{Value: tc.cause}}))
			if err != nil || len(ul) != 0 {
				t.Fatalf("Handle(REGISTRATION REJECT) = %d, %v", len(ul), err)
			}
			st := u.State()
			if st.State != Deregistered || st.RejectCause != tc.cause || st.HasGUTI != tc.keepGUTI || st.Secured {
				t.Errorf("after reject #%d: %+v", tc.cause, st)
			}
			if len(got) != 1 || got[0] != (Event{SUPI: "imsi-" + testIMSI, Kind: EventRegistrationRejected, Cause: tc.cause}) {
				t.Errorf("events %+v", got)
			}
		})
	}
}

// TestReregistrationWithGUTI: after deregistration the UE registers with its
// 5G-GUTI and, when the network asks, identifies with a SUCI.
func TestReregistrationWithGUTI(t *testing.T) {
	for _, switchOff := range []bool{false, true} {
		t.Run(fmt.Sprint("switch-off ", switchOff), func(t *testing.T) {
			n, u := registered(t, nil)
			guti := u.State().GUTI
			ul, err := u.Deregister(switchOff)
			if err != nil {
				t.Fatal(err)
			}
			d := expectUL[*message.DeregReqUEOrig](n, ul)
			if d.DeregType.Switchoff != switchOff || d.DeregType.AccessType != ie.AccessType_3gpp || d.Ngksi.Ksi != n.ksi ||
				d.MobileId5GS.TypeOfId != ie.IdType_5GS_GUTI {
				t.Errorf("DEREGISTRATION REQUEST %+v %+v", d.DeregType, d.MobileId5GS)
			}
			if g, _ := decodeGUTI(identityOf(t, mustDecipher(t, n, ul), 4)); g != guti {
				t.Errorf("deregistered with 5G-GUTI %v, hold %v", g, guti)
			}
			if !switchOff {
				if st := u.State().State; st != DeregistrationInitiated {
					t.Fatalf("state %v", st)
				}
				if ul, err := u.Handle(n.protected(&message.DeregAcceptUEOrig{})); err != nil || len(ul) != 0 {
					t.Fatalf("Handle(DEREGISTRATION ACCEPT) = %d, %v", len(ul), err)
				}
			}
			if st := u.State(); st.State != Deregistered || st.Secured || !st.HasGUTI {
				t.Fatalf("after deregistration: %+v", st)
			}
			// Registration with the 5G-GUTI, plain, ngKSI "no key".
			rr, err := u.RegistrationRequest()
			if err != nil {
				t.Fatal(err)
			}
			n.registrationRequest(rr)
			if n.regReq.MobileId5GS.TypeOfId != ie.IdType_5GS_GUTI {
				t.Fatalf("registered with identity type %d, want 5G-GUTI", n.regReq.MobileId5GS.TypeOfId)
			}
			// The network asks for the SUCI (as an AMF that does not know
			// the 5G-GUTI would).
			idr := n.parsePlain(one(t, u, n.plain(&message.IdReq{IdType: &ie.IdType5GS{IdType: ie.IdType_5GS_SUCI}})))
			if _, ok := idr.(*message.IdRsp); !ok {
				t.Fatalf("got %v", idr.MsgType())
			}
			n.supi = ""
			if got := n.supiOfResponse(t, u); got != "imsi-"+testIMSI {
				t.Fatalf("IDENTITY RESPONSE SUCI resolves to %s", got)
			}
			if err := n.authenticationResponse(one(t, u, n.authenticationRequest())); err != nil {
				t.Fatal(err)
			}
			if _, err := n.securityModeComplete(one(t, u, n.securityModeCommand(n.ueCap, true))); err != nil {
				t.Fatal(err)
			}
			expectUL[*message.RegComplete](n, one(t, u, n.registrationAccept()))
			if st := u.State(); st.State != Registered || st.GUTI.TMSI != n.tmsi {
				t.Errorf("after re-registration: %+v", st)
			}
		})
	}
}

// supiOfResponse sends a plain IDENTITY REQUEST for the SUCI and resolves
// the answer.
func (n *testNet) supiOfResponse(t *testing.T, u *UE) string {
	t.Helper()
	ul := one(t, u, n.plain(&message.IdReq{IdType: &ie.IdType5GS{IdType: ie.IdType_5GS_SUCI}}))
	n.supi = n.supiOf(identityOf(t, ul, 3))
	return n.supi
}

// mustDecipher returns the plain message inside a protected uplink message
// (a copy of the network context decodes it).
func mustDecipher(t *testing.T, n *testNet, ul []byte) []byte {
	t.Helper()
	// The network's context holds the COUNT of the last uplink message.
	sc := n.sc.Clone()
	plain, err := sc.NASEncrypt(message.DirectionUplink, ul[secHdrLen:])
	if err != nil {
		t.Fatal(err)
	}
	return plain
}

func TestNetworkDeregistration(t *testing.T) {
	n, u := registered(t, nil)
	n.establish(u, 1, [4]byte{10, 45, 0, 2})
	var got []Event
	u.onEvent = func(e Event) { got = append(got, e) }
	expectUL[*message.DeregAcceptUETerm](n, one(t, u, n.protected(&message.DeregReqUETerm{
		DeregType: &ie.DeregType{AccessType: ie.AccessType_3gpp}})))
	if st := u.State(); st.State != Deregistered || len(st.Sessions) != 0 || st.Secured {
		t.Errorf("after network deregistration: %+v", st)
	}
	if len(got) != 1 || got[0].Kind != EventDeregistered {
		t.Errorf("events %+v", got)
	}
	if _, err := u.EstablishSession(2); !errors.Is(err, ErrState) {
		t.Errorf("EstablishSession when deregistered: %v, want ErrState", err)
	}
	if _, err := u.Deregister(false); !errors.Is(err, ErrState) {
		t.Errorf("Deregister when deregistered: %v, want ErrState", err)
	}
}

func TestIdentityRequest(t *testing.T) {
	imei, err := IMEIOf(testIMEISV)
	if err != nil {
		t.Fatal(err)
	}
	n, u := registered(t, nil)
	guti := u.State().GUTI
	tests := []struct {
		typ  uint8
		want string // free5gc's reading
	}{
		{ie.IdType_5GS_IMEI, "imei-" + imei},
		{ie.IdType_5GS_IMEISV, "imeisv-" + testIMEISV},
		{ie.IdType_5GS_GUTI, guti.String()},
		{ie.IdType_5GS_TMSI, fmt.Sprintf("%04x%08x", guti.AMFSetID<<6|uint16(guti.AMFPointer), guti.TMSI)},
		{ie.IdType_5GS_MACAddress, ""},
	}
	for _, tc := range tests {
		r := expectUL[*message.IdRsp](n, one(t, u, n.protected(&message.IdReq{IdType: &ie.IdType5GS{IdType: tc.typ}})))
		if got := r.MobileId.IdStr(); tc.want != "" && got != tc.want {
			t.Errorf("identity type %d: %s, want %s", tc.typ, got, tc.want)
		}
		if tc.want == "" && r.MobileId.TypeOfId != ie.IdType_5GS_None {
			t.Errorf("identity type %d: answered type %d, want no identity", tc.typ, r.MobileId.TypeOfId)
		}
	}
	// A plain request for the IMEI is not processed (TS 24.501 4.4.4.2).
	if _, err := u.Handle(n.plain(&message.IdReq{IdType: &ie.IdType5GS{IdType: ie.IdType_5GS_IMEI}})); !errors.Is(err, ErrUnprotected) {
		t.Errorf("plain IDENTITY REQUEST for the IMEI: %v, want ErrUnprotected", err)
	}
	// A SUCI request is, and is answered protected.
	r := expectUL[*message.IdRsp](n, one(t, u, n.plain(&message.IdReq{IdType: &ie.IdType5GS{IdType: ie.IdType_5GS_SUCI}})))
	if r.MobileId.TypeOfId != ie.IdType_5GS_SUCI || r.MobileId.SUCIStr() != "suci-0-001-01-0-0-0-0000000001" {
		t.Errorf("SUCI %s", r.MobileId.SUCIStr())
	}
}

func TestConfigurationUpdate(t *testing.T) {
	n, u := registered(t, nil)
	guti := &ie.MobileId5GS{TypeOfId: ie.IdType_5GS_GUTI, PlmnId: ie.PlmnId{MCC: "001", MNC: "01"}, AMFRegionID: 0xca, AMFSetID: 0x3f8, TMSI5G: [4]byte{0xde, 0xad, 0xbe, 0xef}}
	expectUL[*message.CfgUpdateComplete](n, one(t, u, n.protected(&message.CfgUpdateCmd{
		CfgUpdateInd: &ie.CfgUpdateInd{ACK: true}, GUTI5G: guti})))
	if g := u.State().GUTI; g.TMSI != 0xdeadbeef || g.AMFSetID != 0x3f8 || g.AMFRegionID != 0xca || g.MCC != "001" || g.MNC != "01" {
		t.Errorf("5G-GUTI after configuration update: %+v", g)
	}
}

func TestSessions(t *testing.T) {
	n, u := registered(t, nil)
	var got []Event
	u.onEvent = func(e Event) { got = append(got, e) }
	n.establish(u, 1, [4]byte{10, 45, 0, 2})
	s := u.State().Sessions[1]
	if s.State != SessionActive || s.IPv4 != netip.MustParseAddr("10.45.0.2") || s.QFI != 1 || s.DNN != DefaultDNN || s.SNSSAI.SST != 1 {
		t.Errorf("session 1: %+v", s)
	}
	for _, psi := range []uint8{0, 16} {
		if _, err := u.EstablishSession(psi); err == nil {
			t.Errorf("EstablishSession(%d) succeeded", psi)
		}
	}
	if _, err := u.EstablishSession(1); !errors.Is(err, ErrState) {
		t.Errorf("EstablishSession of an existing session: %v", err)
	}
	if _, err := u.ReleaseSession(9); !errors.Is(err, ErrState) {
		t.Errorf("ReleaseSession of no session: %v", err)
	}

	// Accept for a session the UE did not request: 5GSM STATUS #43.
	st := ulSM[*message.Status5GSM](n, one(t, u, n.sessionAccept(7, 3, [4]byte{10, 45, 0, 9})))
	if st.Cause5GSM.Value != CauseInvalidPDUSessionID || st.PDUSessId != 7 {
		t.Errorf("5GSM STATUS %+v, want #43 for PSI 7", st)
	}
	// Accept with the wrong PTI: #47.
	ul, err := u.EstablishSession(2)
	if err != nil {
		t.Fatal(err)
	}
	req := ulSM[*message.PDUSessEstReq](n, ul)
	st = ulSM[*message.Status5GSM](n, one(t, u, n.sessionAccept(2, req.PTI+1, [4]byte{10, 45, 0, 3})))
	if st.Cause5GSM.Value != CausePTIMismatch {
		t.Errorf("5GSM STATUS cause #%d, want #47", st.Cause5GSM.Value)
	}
	// Rejected.
	if ul, err := u.Handle(n.dlSM(2, &message.PDUSessEstRej{PDUSessId: 2, PTI: req.PTI, Cause5GSM: &ie.Cause5GSM{Value: 27}})); err != nil || len(ul) != 0 {
		t.Fatalf("Handle(reject) = %d, %v", len(ul), err)
	}
	if _, ok := u.State().Sessions[2]; ok {
		t.Error("rejected session still there")
	}
	// The AMF could not forward the request: DL NAS TRANSPORT with a 5GMM
	// cause returns it.
	ul, err = u.EstablishSession(3)
	if err != nil {
		t.Fatal(err)
	}
	back := expectUL[*message.ULNASTransport](n, ul)
	if ul, err := u.Handle(n.protected(&message.DLNASTransport{
		PayloadCntrType: &ie.PayloadCntrType{Value: ie.PayloadCntrType_N1SMInfo},
		PayloadCntr:     back.PayloadCntr, PDUSessID: &ie.PDUSessId2{Value: 3}, Cause5GMM: &ie.Cause5GMM{Value: 90}})); err != nil || len(ul) != 0 {
		t.Fatalf("Handle(returned payload) = %d, %v", len(ul), err)
	}
	// Network-requested release (PTI 0).
	rc := ulSM[*message.PDUSessRelComplete](n, one(t, u, n.dlSM(1, &message.PDUSessRelCmd{PDUSessId: 1, PTI: 0, Cause5GSM: &ie.Cause5GSM{Value: CauseRegularDeactivation}})))
	if rc.PTI != 0 || rc.PDUSessId != 1 {
		t.Errorf("PDU SESSION RELEASE COMPLETE %+v", rc)
	}
	if len(u.State().Sessions) != 0 {
		t.Errorf("sessions: %+v", u.State().Sessions)
	}
	// A 5GSM message the UE does not implement: STATUS #97.
	n.establish(u, 4, [4]byte{10, 45, 0, 4})
	st = ulSM[*message.Status5GSM](n, one(t, u, n.dlSM(4, &message.PDUSessModRej{PDUSessId: 4, PTI: 9, Cause5GSM: &ie.Cause5GSM{Value: 31}})))
	if st.Cause5GSM.Value != CauseSMMessageNotImplemented {
		t.Errorf("5GSM STATUS cause #%d, want #97", st.Cause5GSM.Value)
	}
	supi := "imsi-" + testIMSI
	want := []Event{
		{SUPI: supi, Kind: EventSessionEstablished, PSI: 1},
		{SUPI: supi, Kind: EventSessionRejected, PSI: 2, Cause: 27},
		{SUPI: supi, Kind: EventSessionRejected, PSI: 3, Cause: 90},
		{SUPI: supi, Kind: EventSessionReleased, PSI: 1, Cause: CauseRegularDeactivation},
		{SUPI: supi, Kind: EventSessionEstablished, PSI: 4},
	}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("events\n got %+v\nwant %+v", got, want)
	}
}

// TestUSIMStatePersists: a UE restored from a saved USIM state rejects the
// AUTN it already accepted (synch failure) and accepts the next.
func TestUSIMStatePersists(t *testing.T) {
	n, u := registered(t, nil)
	old := n.vector
	saved := u.USIMState()
	cfg := n.config(testIMSI, suci.SchemeNull)
	cfg.USIMState = &saved
	v := newUE(t, cfg)
	if _, err := v.RegistrationRequest(); err != nil {
		t.Fatal(err)
	}
	f, ok := n.parsePlain(one(t, v, n.authenticationRequestFor(old))).(*message.AuthFailure)
	if !ok || f.Cause5GMM.Value != CauseSynchFailure {
		t.Fatalf("replayed AUTN after restore: %+v, want synch failure", f)
	}
	if err := n.authenticationResponse(one(t, v, n.authenticationRequest())); err != nil {
		t.Fatal(err)
	}
}

func TestNetworkDeregistrationWithCause(t *testing.T) {
	n, u := registered(t, nil)
	expectUL[*message.DeregAcceptUETerm](n, one(t, u, n.protected(&message.DeregReqUETerm{
		DeregType: &ie.DeregType{AccessType: ie.AccessType_3gpp}, Cause5GMM: &ie.Cause5GMM{Value: Cause5GSServicesNotAllowed}})))
	if st := u.State(); st.State != Deregistered || st.RejectCause != Cause5GSServicesNotAllowed {
		t.Errorf("state %+v", st)
	}
	// Nothing protected is accepted any more.
	if _, err := u.Handle(n.protected(&message.CfgUpdateCmd{CfgUpdateInd: &ie.CfgUpdateInd{ACK: true}})); !errors.Is(err, ErrUnprotected) {
		t.Errorf("protected message after deregistration: %v", err)
	}
}

func TestSessionReleaseRejected(t *testing.T) {
	n, u := registered(t, nil)
	n.establish(u, 2, [4]byte{10, 45, 0, 5})
	rel, err := u.ReleaseSession(2)
	if err != nil {
		t.Fatal(err)
	}
	req := ulSM[*message.PDUSessRelReq](n, rel)
	if req.Cause5GSM == nil || req.Cause5GSM.Value != CauseRegularDeactivation {
		t.Errorf("PDU SESSION RELEASE REQUEST %+v", req)
	}
	if s := u.State().Sessions[2]; s.State != SessionReleasing {
		t.Errorf("session %+v, want releasing", s)
	}
	if ul, err := u.Handle(n.dlSM(2, &message.PDUSessRelRej{PDUSessId: 2, PTI: req.PTI, Cause5GSM: &ie.Cause5GSM{Value: 31}})); err != nil || len(ul) != 0 {
		t.Fatalf("Handle(release reject) = %d, %v", len(ul), err)
	}
	if s := u.State().Sessions[2]; s.State != SessionActive || s.IPv4.String() != "10.45.0.5" {
		t.Errorf("session %+v, want active again", s)
	}
	// A payload that is not N1 SM information is not for session
	// management.
	if ul, err := u.Handle(n.protected(&message.DLNASTransport{
		PayloadCntrType: &ie.PayloadCntrType{Value: ie.PayloadCntrType_SMS},
		PayloadCntr:     &ie.PayloadCntr{Pct: ie.PayloadCntrType_SMS, Contents: []byte{1, 2, 3}}})); err != nil || len(ul) != 0 {
		t.Fatalf("Handle(SMS payload) = %d, %v", len(ul), err)
	}
}

// TestConcurrentUse reads a UE's state while another goroutine drives it
// (run with -race).
func TestConcurrentUse(t *testing.T) {
	n, u := registered(t, nil)
	dls := make([][]byte, 200)
	for i := range dls {
		dls[i] = n.protected(&message.CfgUpdateCmd{CfgUpdateInd: &ie.CfgUpdateInd{}})
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		for _, dl := range dls {
			if _, err := u.Handle(dl); err != nil {
				t.Error(err)
				return
			}
		}
	}()
	for range 200 {
		if st := u.State(); st.State != Registered {
			t.Fatalf("state %v", st.State)
		}
		_ = u.USIMState()
	}
	<-done
}
