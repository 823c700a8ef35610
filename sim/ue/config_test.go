package ue

import (
	"bytes"
	"errors"
	"strings"
	"testing"

	"github.com/free5gc/nas/message"

	"github.com/simgate/simgate/core/udr"
	"github.com/simgate/simgate/sim/aka"
	"github.com/simgate/simgate/sim/suci"
)

func TestConfigErrors(t *testing.T) {
	n := newTestNet(t)
	base := func() Config { return n.config(testIMSI, suci.SchemeProfileA) }
	tests := []struct {
		name string
		mod  func(*Config)
		want string
	}{
		{"IMSI with letters", func(c *Config) { c.IMSI = "00101abc" }, "MSIN"},
		{"MNC length 4", func(c *Config) { c.MNCLen = 4 }, "MNC length"},
		{"no IMEISV", func(c *Config) { c.IMEISV = "" }, "IMEISV"},
		{"IMEISV of 15 digits", func(c *Config) { c.IMEISV = "356789012345670" }, "IMEISV"},
		{"IMEISV with SVN 99", func(c *Config) { c.IMEISV = "3567890123456799" }, "reserved"},
		{"Profile A without key", func(c *Config) { c.SUCI.HNPublicKey = nil }, "public key"},
		{"Profile A with a Profile B key", func(c *Config) { c.SUCI.HNPublicKey = n.pubB }, "public key"},
		{"Profile A with key id 0", func(c *Config) { c.SUCI.KeyID = 0 }, "key id"},
		{"null scheme with key id", func(c *Config) { c.SUCI = SUCIConfig{KeyID: 3} }, "key id"},
		{"scheme 5", func(c *Config) { c.SUCI.Scheme = 5 }, "protection scheme"},
		{"ciphering algorithm 4", func(c *Config) { c.Ciphering = []uint8{0, 4} }, "ciphering algorithm 4"},
		{"no ciphering algorithm", func(c *Config) { c.Ciphering = []uint8{} }, "no ciphering"},
		{"only 5G-IA0", func(c *Config) { c.Integrity = []uint8{0} }, "5G-IA0"},
		{"DNN too long", func(c *Config) { c.DNN = strings.Repeat("a", 101) }, "DNN"},
		{"bad SD", func(c *Config) { c.SNSSAI = SNSSAI{SST: 1, SD: "12345"} }, "SD"},
		{"serving MNC of 4 digits", func(c *Config) { c.ServingMCC, c.ServingMNC = "001", "0101" }, "serving network"},
		{"USIM state of another IND length", func(c *Config) { c.USIMState = &aka.State{INDBits: 4, SEQ: make([]uint64, 16)}; c.USIM.INDBits = 5 }, "IND length"},
		{"USIM state too short", func(c *Config) { c.USIMState = &aka.State{INDBits: 5, SEQ: make([]uint64, 3)} }, "SEQ_MS"},
		{"SQN over 48 bits", func(c *Config) { c.SQN = 1 << 48 }, "48 bits"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c := base()
			tc.mod(&c)
			_, err := New(c)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("New: %v, want an error about %q", err, tc.want)
			}
		})
	}
	if _, err := New(base()); err != nil {
		t.Errorf("base config: %v", err)
	}
}

func TestConfigOptions(t *testing.T) {
	n := newTestNet(t)
	cfg := n.config(testIMSI, suci.SchemeNull)
	cfg.Ciphering, cfg.Integrity = []uint8{2}, []uint8{2, 3}
	cfg.DNN = "ims.example"
	cfg.SNSSAI = SNSSAI{SST: 2, SD: "0a0B0c"}
	cfg.SUCI.RoutingIndicator = "0123"
	u := newUE(t, cfg)
	ul, err := u.RegistrationRequest()
	if err != nil {
		t.Fatal(err)
	}
	n.registrationRequest(ul)
	sameBytes(t, "UE security capability", n.ueCap, []byte{0x20, 0x30})
	if got := n.regReq.MobileId5GS.SUCIStr(); got != "suci-0-001-01-0123-0-0-0000000001" {
		t.Errorf("SUCI %s", got)
	}
	// The complete request carries the configured S-NSSAI.
	if !bytes.Contains(u.initial, []byte{message.RegReqIEIReqNSSAI, 5, 4, 2, 0x0a, 0x0b, 0x0c}) {
		t.Errorf("complete REGISTRATION REQUEST %x has no requested NSSAI SST 2 SD 0a0b0c", u.initial)
	}
}

// TestServingNetwork: a UE camping on another PLMN derives its keys with that
// serving network name, so the home network's XRES* (for 001/01) does not
// match.
func TestServingNetwork(t *testing.T) {
	n := newTestNet(t)
	cfg := n.config(testIMSI, suci.SchemeNull)
	cfg.ServingMCC, cfg.ServingMNC = "999", "70"
	u := newUE(t, cfg)
	ul, err := u.RegistrationRequest()
	if err != nil {
		t.Fatal(err)
	}
	n.registrationRequest(ul)
	if err := n.authenticationResponse(one(t, u, n.authenticationRequest())); err == nil {
		t.Fatal("RES* for serving network 999/70 matched XRES* for 001/01")
	}
}

func TestFromCard(t *testing.T) {
	n := newTestNet(t)
	// The AuC has used SQN 0x2e0 (SEQ 23, IND 0); the SIM file records it.
	n.store.subs[testIMSI].sqn = 0x2e0
	card := udr.SIMCard{IMSI: testIMSI, MNCLen: 2, K: testK, OPc: testOPc, SQN: 0x2e0, IMEI: "490154203237518"}
	cfg := FromCard(card)
	if cfg.IMEISV != "4901542032375100" {
		t.Errorf("IMEISV %q", cfg.IMEISV)
	}
	u := newUE(t, cfg)
	if st := u.USIMState(); st.SEQ[0] != 0x17 {
		t.Errorf("USIM state %v, want SEQ_MS(0) = 0x17", st)
	}
	ul, err := u.RegistrationRequest()
	if err != nil {
		t.Fatal(err)
	}
	n.registrationRequest(ul)
	if err := n.authenticationResponse(one(t, u, n.authenticationRequest())); err != nil {
		t.Fatal(err)
	}
	// An older SQN (SEQ 22) with the same IND is stale.
	v := newUE(t, FromCard(card))
	if _, err := v.RegistrationRequest(); err != nil {
		t.Fatal(err)
	}
	n.store.subs[testIMSI].sqn = 0x2bf // SEQ 21, IND 31: the next is SEQ 22, IND 0
	f, ok := n.parsePlain(one(t, v, n.authenticationRequest())).(*message.AuthFailure)
	if !ok || f.Cause5GMM.Value != CauseSynchFailure {
		t.Errorf("stale SQN: %+v, want synch failure", f)
	}
	if cfg := FromCard(udr.SIMCard{IMSI: testIMSI}); cfg.IMEISV != "" {
		t.Errorf("card without IMEI gives IMEISV %q", cfg.IMEISV)
	}
}

func TestStateFromSQN(t *testing.T) {
	st, err := StateFromSQN(0x123456789a, 0)
	if err != nil {
		t.Fatal(err)
	}
	if st.INDBits != 5 || len(st.SEQ) != 32 || st.SEQ[0x1a] != 0x123456789a>>5 {
		t.Errorf("state %+v", st)
	}
	for i, s := range st.SEQ {
		if i != 0x1a && s != 0 {
			t.Errorf("SEQ_MS(%d) = %d", i, s)
		}
	}
	for _, tc := range []struct {
		sqn uint64
		ind int
	}{{1 << 48, 5}, {1, 11}, {1, -1}} {
		if _, err := StateFromSQN(tc.sqn, tc.ind); err == nil {
			t.Errorf("StateFromSQN(%#x, %d) succeeded", tc.sqn, tc.ind)
		}
	}
}

func TestIMEIOf(t *testing.T) {
	tests := []struct {
		imeisv, imei string
	}{
		{"4901542032375100", "490154203237518"},
		{"3567890123456701", "356789012345672"},
		{"0000000000000000", "000000000000000"},
	}
	for _, tc := range tests {
		got, err := IMEIOf(tc.imeisv)
		if err != nil || got != tc.imei {
			t.Errorf("IMEIOf(%s) = %s, %v; want %s", tc.imeisv, got, err, tc.imei)
		}
		if err := udr.ValidateIMEI(got); err != nil {
			t.Error(err)
		}
	}
	for _, bad := range []string{"", "490154203237510", "49015420323751000", "490154203237510x"} {
		if _, err := IMEIOf(bad); err == nil {
			t.Errorf("IMEIOf(%q) succeeded", bad)
		}
	}
}

func TestStateErrors(t *testing.T) {
	n, u := registered(t, nil)
	if _, err := u.RegistrationRequest(); !errors.Is(err, ErrState) {
		t.Errorf("RegistrationRequest when registered: %v", err)
	}
	v := newUE(t, n.config(testIMSI, suci.SchemeNull))
	if _, err := v.Deregister(false); !errors.Is(err, ErrState) {
		t.Errorf("Deregister when deregistered: %v", err)
	}
	if _, err := v.EstablishSession(1); !errors.Is(err, ErrState) {
		t.Errorf("EstablishSession when deregistered: %v", err)
	}
	if _, err := v.ReleaseSession(1); !errors.Is(err, ErrState) {
		t.Errorf("ReleaseSession when deregistered: %v", err)
	}
}

func TestStrings(t *testing.T) {
	for _, tc := range []struct{ got, want string }{
		{Registered.String(), "registered"},
		{RegistrationState(9).String(), "state-9"},
		{SessionActive.String(), "active"},
		{EventSessionReleased.String(), "session-released"},
		{SNSSAI{SST: 1, SD: "000001"}.String(), "sst 1 sd 000001"},
		{GUTI{MCC: "001", MNC: "01", AMFRegionID: 0xca, AMFSetID: 0x3f8, AMFPointer: 1, TMSI: 0xc0ffee}.String(), "00101cafe0100c0ffee"},
	} {
		if tc.got != tc.want {
			t.Errorf("%q, want %q", tc.got, tc.want)
		}
	}
}
