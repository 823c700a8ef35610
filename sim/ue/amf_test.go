package ue

import (
	"bytes"
	"crypto/rand"
	"encoding/binary"
	"errors"
	"fmt"
	"sync"
	"testing"

	"github.com/free5gc/nas/ie"
	"github.com/free5gc/nas/message"

	"github.com/simgate/simgate/sim/aka"
	"github.com/simgate/simgate/sim/kdf"
	"github.com/simgate/simgate/sim/suci"
)

// This file is a minimal scripted network for the tests: the AMF, AUSF and
// UDM of one PLMN, built from sim/aka (AuC), sim/kdf and sim/suci, with
// free5gc/nas encoding and protecting the network's messages and parsing
// and checking the UE's.

// memStore is an in-memory aka.Store.
type memStore struct {
	mu   sync.Mutex
	subs map[string]*memSub
}

type memSub struct {
	c   aka.Credentials
	sqn uint64
}

func (s *memStore) UpdateSQN(imsi string, fn func(aka.Credentials, uint64) (uint64, error)) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	sub, ok := s.subs[imsi]
	if !ok {
		return fmt.Errorf("memstore: no subscriber %s", imsi)
	}
	sqn, err := fn(sub.c, sub.sqn)
	if err != nil {
		return err
	}
	sub.sqn = sqn
	return nil
}

// Test subscriber (MCC 001, MNC 01, as the core/RAN contract's defaults).
var (
	testIMSI   = "001010000000001"
	testK      = [16]byte{0x46, 0x5b, 0x5c, 0xe8, 0xb1, 0x99, 0xb4, 0x9f, 0xaa, 0x5f, 0x0a, 0x2e, 0xe2, 0x38, 0xa6, 0xbc}
	testOPc    = [16]byte{0xcd, 0x63, 0xcb, 0x71, 0x95, 0x4a, 0x9f, 0x4e, 0x48, 0xa5, 0x99, 0x4e, 0x37, 0xa0, 0x2b, 0xaf}
	testIMEISV = "3567890123456701"
)

// testNet is the scripted network side for one UE at a time.
type testNet struct {
	t     testing.TB
	store *memStore
	auc   *aka.AuC
	keys  suci.Keys
	pubA  *suci.PublicKey
	pubB  *suci.PublicKey
	snn   string

	// Algorithms the network selects.
	nea, nia uint8
	// ksi is the ngKSI of the next authentication.
	ksi uint8

	// State of the current UE.
	supi     string
	regReq   *message.RegReq
	ueCap    []byte
	vector   aka.Vector
	xresStar [16]byte
	kamf     [32]byte
	sc       *message.SecCtx
	tmsi     uint32
}

// hnKeys are the home network's key pairs, made once: every test network
// shares them (they are never modified).
var hnKeyPairs = sync.OnceValues(func() ([2]*suci.PrivateKey, error) {
	a, err := suci.GenerateKey(suci.SchemeProfileA)
	if err != nil {
		return [2]*suci.PrivateKey{}, err
	}
	b, err := suci.GenerateKey(suci.SchemeProfileB)
	return [2]*suci.PrivateKey{a, b}, err
})

func hnKeys() (a, b *suci.PrivateKey, err error) {
	k, err := hnKeyPairs()
	return k[0], k[1], err
}

func newTestNet(t testing.TB) *testNet {
	t.Helper()
	store := &memStore{subs: map[string]*memSub{}}
	auc, err := aka.NewAuC(store, rand.Reader, aka.AuCConfig{SeparationBit: true})
	if err != nil {
		t.Fatal(err)
	}
	ka, kb, err := hnKeys()
	if err != nil {
		t.Fatal(err)
	}
	snn, err := kdf.ServingNetworkName("001", "01")
	if err != nil {
		t.Fatal(err)
	}
	n := &testNet{t: t, store: store, auc: auc, keys: suci.Keys{1: ka, 2: kb}, pubA: ka.PublicKey(), pubB: kb.PublicKey(),
		snn: snn, nea: 0, nia: 2, tmsi: 0x10000000}
	n.add(testIMSI)
	return n
}

func (n *testNet) add(imsi string) {
	n.store.mu.Lock()
	defer n.store.mu.Unlock()
	n.store.subs[imsi] = &memSub{c: aka.Credentials{K: testK, OPc: testOPc}}
}

// config returns a UE Config for imsi with the given SUCI scheme.
func (n *testNet) config(imsi string, scheme suci.Scheme) Config {
	c := Config{IMSI: imsi, K: testK, OPc: testOPc, IMEISV: testIMEISV}
	switch scheme {
	case suci.SchemeProfileA:
		c.SUCI = SUCIConfig{Scheme: scheme, HNPublicKey: n.pubA, KeyID: 1}
	case suci.SchemeProfileB:
		c.SUCI = SUCIConfig{Scheme: scheme, HNPublicKey: n.pubB, KeyID: 2}
	}
	return c
}

// identityOf returns the raw 5GS mobile identity value that starts at off
// (an LV-E) in a plain message.
func identityOf(t testing.TB, b []byte, off int) []byte {
	t.Helper()
	if len(b) < off+2 {
		t.Fatalf("message of %d octets has no identity at %d", len(b), off)
	}
	l := int(binary.BigEndian.Uint16(b[off:]))
	if len(b) < off+2+l {
		t.Fatalf("identity of %d octets overruns the message", l)
	}
	return b[off+2 : off+2+l]
}

// supiOf resolves a 5GS mobile identity to a SUPI as the AMF and SIDF do:
// SUCI by de-concealment, 5G-GUTI by the 5G-TMSI the network allocated.
func (n *testNet) supiOf(id []byte) string {
	n.t.Helper()
	switch id[0] & 7 {
	case idSUCI:
		var s suci.SUCI
		if err := s.UnmarshalBinary(id); err != nil {
			n.t.Fatalf("SUCI %x: %v", id, err)
		}
		supi, err := n.keys.Deconceal(s)
		if err != nil {
			n.t.Fatalf("deconceal %v: %v", s, err)
		}
		return supi.String()
	case idGUTI:
		g, err := decodeGUTI(id)
		if err != nil {
			n.t.Fatal(err)
		}
		if g.TMSI != n.tmsi || n.supi == "" {
			n.t.Fatalf("unknown 5G-GUTI %v", g)
		}
		return n.supi
	}
	n.t.Fatalf("identity %x is neither SUCI nor 5G-GUTI", id)
	return ""
}

// registrationRequest checks the UE's initial REGISTRATION REQUEST.
func (n *testNet) registrationRequest(ul []byte) {
	n.t.Helper()
	if message.GetSecHdrType(ul) != message.SecHdrTypePlainNas {
		n.t.Fatalf("REGISTRATION REQUEST with security header type %d, want plain", message.GetSecHdrType(ul))
	}
	m, err := message.Parse(ul, nil)
	if err != nil {
		n.t.Fatalf("parse REGISTRATION REQUEST: %v", err)
	}
	req, ok := m.(*message.RegReq)
	if !ok {
		n.t.Fatalf("got %v, want REGISTRATION REQUEST", m.MsgType())
	}
	if req.RegType5GS.Value != ie.RegType_InitialReg || req.Ngksi.Ksi != 7 || req.UESecCapability == nil {
		n.t.Fatalf("REGISTRATION REQUEST: type %d ngKSI %d capability %v", req.RegType5GS.Value, req.Ngksi.Ksi, req.UESecCapability)
	}
	if req.ReqNSSAI != nil {
		n.t.Errorf("initial REGISTRATION REQUEST carries the requested NSSAI, not a cleartext IE (TS 24.501 4.4.6)")
	}
	n.regReq = req
	n.ueCap, _ = req.UESecCapability.MarshalBinary()
	n.supi = n.supiOf(identityOf(n.t, ul, 4))
}

// authenticationRequest builds an AUTHENTICATION REQUEST from a fresh
// vector (TS 33.501 6.1.3.2: XRES*, KAUSF, KSEAF, KAMF on the network side).
func (n *testNet) authenticationRequest() []byte {
	n.t.Helper()
	v, err := n.auc.Vector(n.supi[len("imsi-"):])
	if err != nil {
		n.t.Fatal(err)
	}
	return n.authenticationRequestFor(v)
}

func (n *testNet) authenticationRequestFor(v aka.Vector) []byte {
	n.t.Helper()
	n.vector = v
	var err error
	if n.xresStar, err = kdf.RESStar(v.CK, v.IK, n.snn, v.RAND, v.XRES[:]); err != nil {
		n.t.Fatal(err)
	}
	kausf, err := kdf.KAUSF(v.CK, v.IK, n.snn, [6]byte(v.AUTN[:6]))
	if err != nil {
		n.t.Fatal(err)
	}
	kseaf, err := kdf.KSEAF(kausf, n.snn)
	if err != nil {
		n.t.Fatal(err)
	}
	if n.kamf, err = kdf.KAMF(kseaf, n.supi, []byte{0, 0}); err != nil {
		n.t.Fatal(err)
	}
	m := &message.AuthReq{
		Ngksi:                   &ie.NASKeySetId{Ksi: n.ksi},
		ABBA:                    &ie.ABBA{Abba: []byte{0, 0}},
		AuthParamRAND5GAuthChlg: &ie.AuthParamRAND{Rand: v.RAND[:]},
		AuthParamAUTN5GAuthChlg: &ie.AuthParamAUTN{Autn: v.AUTN[:]},
	}
	return n.plain(m)
}

func (n *testNet) plain(m message.Message) []byte {
	n.t.Helper()
	b, err := message.Marshal(m, nil, message.SecHdrTypePlainNas)
	if err != nil {
		n.t.Fatalf("marshal %v: %v", m.MsgType(), err)
	}
	return b
}

// parsePlain parses a plain uplink message.
func (n *testNet) parsePlain(ul []byte) message.Message {
	n.t.Helper()
	if message.GetSecHdrType(ul) != message.SecHdrTypePlainNas {
		n.t.Fatalf("security header type %d, want plain", message.GetSecHdrType(ul))
	}
	m, err := message.Parse(ul, nil)
	if err != nil {
		n.t.Fatalf("parse: %v", err)
	}
	return m
}

// authenticationResponse checks RES* against XRES* and HRES* against
// HXRES* (TS 33.501 6.1.3.2.2).
func (n *testNet) authenticationResponse(ul []byte) error {
	n.t.Helper()
	m, ok := n.parsePlain(ul).(*message.AuthRsp)
	if !ok {
		n.t.Fatalf("got %v, want AUTHENTICATION RESPONSE", n.parsePlain(ul).MsgType())
	}
	if m.AuthRspParam == nil || len(m.AuthRspParam.Res) != 16 {
		n.t.Fatalf("AUTHENTICATION RESPONSE without a 16-octet RES*: %+v", m.AuthRspParam)
	}
	res := [16]byte(m.AuthRspParam.Res)
	if kdf.HRESStar(n.vector.RAND, res) != kdf.HRESStar(n.vector.RAND, n.xresStar) {
		return fmt.Errorf("HRES* mismatch")
	}
	if res != n.xresStar {
		return fmt.Errorf("RES* %x, XRES* %x", res, n.xresStar)
	}
	return nil
}

// securityModeCommand builds the SECURITY MODE COMMAND with new keys
// (security header type 3, DL NAS COUNT 0), replaying capa.
func (n *testNet) securityModeCommand(capa []byte, imeisv bool) []byte {
	n.t.Helper()
	kenc, err := kdf.AlgorithmKey(n.kamf, kdf.NASEnc, n.nea)
	if err != nil {
		n.t.Fatal(err)
	}
	kint, err := kdf.AlgorithmKey(n.kamf, kdf.NASInt, n.nia)
	if err != nil {
		n.t.Fatal(err)
	}
	n.sc = message.NewSecCtx(message.CoreNetworkSide, message.Bearer3GPP, ie.AlgCiphering(n.nea), ie.AlgIntegrity(n.nia), kenc[:], kint[:])
	rc := new(ie.UESecCapability)
	if err := rc.UnmarshalBinary(capa); err != nil {
		n.t.Fatal(err)
	}
	m := &message.SecModeCmd{
		SelectedNASSecAlgos:       &ie.NASSecAlgos{CipheringAlgo: ie.AlgCiphering(n.nea), MsgIntAlgo: ie.AlgIntegrity(n.nia)},
		Ngksi:                     &ie.NASKeySetId{Ksi: n.ksi},
		ReplayedUESecCapabilities: rc,
		Additional5GSecInfo:       &ie.Additional5GSecInfo{RINMR: true},
	}
	if imeisv {
		m.IMEISVReq = &ie.IMEISVReq{Value: 1}
	}
	b, err := message.Marshal(m, n.sc, message.SecHdrTypeIntegrityProtectedWithNew5gNasSecCtx)
	if err != nil {
		n.t.Fatal(err)
	}
	return b
}

// parseProtected parses an uplink message protected with the network's
// context; a MAC failure is an error.
func (n *testNet) parseProtected(ul []byte) (message.Message, error) {
	n.t.Helper()
	m, err := message.Parse(ul, n.sc)
	var ne *message.Error
	if errors.As(err, &ne) && ne.MACFailure != nil {
		return nil, fmt.Errorf("uplink MAC failure: %w", err)
	}
	if err != nil {
		n.t.Fatalf("parse uplink: %v", err)
	}
	return m, nil
}

// securityModeComplete checks SECURITY MODE COMPLETE: header type 4, NAS
// COUNT 0, the complete REGISTRATION REQUEST inside, and returns the IMEISV
// reported ("" for none).
func (n *testNet) securityModeComplete(ul []byte) (string, error) {
	n.t.Helper()
	if st := message.GetSecHdrType(ul); st != message.SecHdrTypeIntegrityProtectedAndCipheredWithNew5gNasSecCtx {
		n.t.Fatalf("SECURITY MODE COMPLETE with security header type %d, want 4", st)
	}
	if ul[6] != 0 {
		n.t.Errorf("SECURITY MODE COMPLETE with sequence number %d, want 0", ul[6])
	}
	m0, err := n.parseProtected(ul)
	if err != nil {
		return "", err
	}
	m, ok := m0.(*message.SecModeComplete)
	if !ok {
		n.t.Fatalf("got %v, want SECURITY MODE COMPLETE", m0.MsgType())
	}
	if m.NASMsgCntr == nil {
		n.t.Fatal("SECURITY MODE COMPLETE without NAS message container")
	}
	full, err := message.Parse(m.NASMsgCntr.Contents, nil)
	if err != nil {
		n.t.Fatalf("NAS message container: %v", err)
	}
	rr, ok := full.(*message.RegReq)
	if !ok || rr.ReqNSSAI == nil || len(rr.ReqNSSAI.SNSSAIs) != 1 || rr.ReqNSSAI.SNSSAIs[0].SST != DefaultSST {
		n.t.Fatalf("NAS message container %x: want the complete REGISTRATION REQUEST with requested NSSAI SST 1", m.NASMsgCntr.Contents)
	}
	if m.IMEISV == nil {
		return "", nil
	}
	if m.IMEISV.TypeOfId != ie.IdType_5GS_IMEISV {
		n.t.Fatalf("IMEISV IE of identity type %d", m.IMEISV.TypeOfId)
	}
	return m.IMEISV.PEIStr()[len("imeisv-"):], nil
}

// protected encodes a downlink message with the network's context,
// integrity protected and ciphered.
func (n *testNet) protected(m message.Message) []byte {
	n.t.Helper()
	b, err := message.Marshal(m, n.sc, message.SecHdrTypeIntegrityProtectedAndCiphered)
	if err != nil {
		n.t.Fatalf("marshal %v: %v", m.MsgType(), err)
	}
	return b
}

// registrationAccept builds REGISTRATION ACCEPT with a fresh 5G-GUTI.
func (n *testNet) registrationAccept() []byte {
	n.t.Helper()
	n.tmsi++
	guti := &ie.MobileId5GS{TypeOfId: ie.IdType_5GS_GUTI, PlmnId: ie.PlmnId{MCC: "001", MNC: "01"},
		AMFRegionID: 0xca, AMFSetID: 0x3f8, AMFPointer: 0}
	binary.BigEndian.PutUint32(guti.TMSI5G[:], n.tmsi)
	return n.protected(&message.RegAccept{
		RegResult5GS: &ie.RegResult5GS{Value: ie.RegResult_3gpp},
		GUTI5G:       guti,
		TAIList: &ie.TrackingAreaIdList5GS{TAI: []ie.TrackingAreaId5GS{
			{PlmnId: ie.PlmnId{MCC: "001", MNC: "01"}, TAC: "000001"}}},
		AllowedNSSAI: &ie.NSSAI{SNSSAIs: []ie.SNSSAI{{SST: 1}}},
	})
}

// expectUL parses a protected uplink message of type T.
func expectUL[T message.Message](n *testNet, ul []byte) T {
	n.t.Helper()
	m, err := n.parseProtected(ul)
	if err != nil {
		n.t.Fatal(err)
	}
	v, ok := m.(T)
	if !ok {
		var zero T
		n.t.Fatalf("got %v, want %T", m.MsgType(), zero)
	}
	return v
}

// one hands dl to u and checks that it answers exactly one uplink message.
func one(t testing.TB, u *UE, dl []byte) []byte {
	t.Helper()
	ul, err := u.Handle(dl)
	if err != nil {
		t.Fatalf("Handle: %v", err)
	}
	if len(ul) != 1 {
		t.Fatalf("Handle returned %d uplink messages, want 1", len(ul))
	}
	return ul[0]
}

// register runs a complete registration of u and returns the IMEISV it
// reported.
func (n *testNet) register(u *UE) string {
	n.t.Helper()
	ul, err := u.RegistrationRequest()
	if err != nil {
		n.t.Fatal(err)
	}
	n.registrationRequest(ul)
	if err := n.authenticationResponse(one(n.t, u, n.authenticationRequest())); err != nil {
		n.t.Fatal(err)
	}
	imeisv, err := n.securityModeComplete(one(n.t, u, n.securityModeCommand(n.ueCap, true)))
	if err != nil {
		n.t.Fatal(err)
	}
	expectUL[*message.RegComplete](n, one(n.t, u, n.registrationAccept()))
	if st := u.State(); st.State != Registered || !st.HasGUTI || st.GUTI.TMSI != n.tmsi || !st.Secured {
		n.t.Fatalf("after registration: %+v", st)
	}
	return imeisv
}

// establish runs a PDU session establishment for psi and accepts it with
// address ip and a default QoS rule for QFI 1.
func (n *testNet) establish(u *UE, psi uint8, ip [4]byte) {
	n.t.Helper()
	ul, err := u.EstablishSession(psi)
	if err != nil {
		n.t.Fatal(err)
	}
	t := expectUL[*message.ULNASTransport](n, ul)
	if t.PayloadCntrType.Value != ie.PayloadCntrType_N1SMInfo || t.PDUSessID == nil || t.PDUSessID.Value != psi ||
		t.ReqType == nil || t.ReqType.Value != ie.ReqType_InitialReq || t.DNN == nil || t.DNN.Value != DefaultDNN ||
		t.SNSSAI == nil || t.SNSSAI.SST != DefaultSST {
		n.t.Fatalf("UL NAS TRANSPORT: %+v", t)
	}
	sm, err := message.ParseGSM(t.PayloadCntr.Contents)
	if err != nil {
		n.t.Fatal(err)
	}
	req, ok := sm.(*message.PDUSessEstReq)
	if !ok || req.PDUSessId != psi || req.PTI == 0 || req.PDUSessType == nil || req.PDUSessType.Value != ie.PDUSessType_IPv4 ||
		req.SSCMode == nil || req.SSCMode.Mode != 1 || req.IntegrityProtectionMaxDataRate == nil {
		n.t.Fatalf("PDU SESSION ESTABLISHMENT REQUEST: %+v", sm)
	}
	out, err := u.Handle(n.sessionAccept(psi, req.PTI, ip))
	if err != nil || len(out) != 0 {
		n.t.Fatalf("Handle(accept) = %d messages, %v", len(out), err)
	}
}

func (n *testNet) sessionAccept(psi, pti uint8, ip [4]byte) []byte {
	n.t.Helper()
	acc := &message.PDUSessEstAccept{
		PDUSessId:           psi,
		PTI:                 pti,
		SelectedPDUSessType: &ie.PDUSessType{Value: ie.PDUSessType_IPv4},
		SelectedSSCMode:     &ie.SSCMode{Mode: 1},
		AuthoQosRules: &ie.QosRules{Rules: []ie.QosRule{{
			RuleId: 1, OpCode: ie.OpCode_CreateNewQosRule, IsDefaultDQR: true,
			PktFilterList: []ie.PacketFilter{{Dir: ie.PFD_BiDir, Id: 1, Contents: ie.PacketFilterContents{RemoteAddr: "any", LocalAddr: "any"}}},
			Precedence:    255, QFI: 1,
		}}},
		SessAMBR: &ie.SessAMBR{UnitDownlink: ie.Rate_1Mbps, ValueDownlink: 100, UnitUplink: ie.Rate_1Mbps, ValueUplink: 100},
		PDUAddr:  &ie.PDUAddr{IPv4: ip[:]},
		SNSSAI:   &ie.SNSSAI{SST: 1},
		DNN:      &ie.DNN{Value: DefaultDNN},
	}
	return n.dlSM(psi, acc)
}

// dlSM wraps a 5GSM message in a protected DL NAS TRANSPORT.
func (n *testNet) dlSM(psi uint8, sm message.Message) []byte {
	n.t.Helper()
	b, err := sm.MarshalBinary()
	if err != nil {
		n.t.Fatal(err)
	}
	return n.protected(&message.DLNASTransport{
		PayloadCntrType: &ie.PayloadCntrType{Value: ie.PayloadCntrType_N1SMInfo},
		PayloadCntr:     &ie.PayloadCntr{Pct: ie.PayloadCntrType_N1SMInfo, Contents: b},
		PDUSessID:       &ie.PDUSessId2{Value: psi},
	})
}

// ulSM returns the 5GSM message inside a protected UL NAS TRANSPORT.
func ulSM[T message.Message](n *testNet, ul []byte) T {
	n.t.Helper()
	t := expectUL[*message.ULNASTransport](n, ul)
	sm, err := message.ParseGSM(t.PayloadCntr.Contents)
	if err != nil {
		n.t.Fatal(err)
	}
	v, ok := sm.(T)
	if !ok {
		var zero T
		n.t.Fatalf("got %v, want %T", sm.MsgType(), zero)
	}
	return v
}

// sameBytes is bytes.Equal with a hex diagnostic.
func sameBytes(t testing.TB, what string, got, want []byte) {
	t.Helper()
	if !bytes.Equal(got, want) {
		t.Errorf("%s = %x, want %x", what, got, want)
	}
}
