package ue

import (
	"bytes"
	"testing"

	"github.com/free5gc/nas/ie"
	"github.com/free5gc/nas/message"

	"github.com/simgate/simgate/core/udr"
	"github.com/simgate/simgate/sim/suci"
)

func TestMisbehaveWrongRES(t *testing.T) {
	n := newTestNet(t)
	cfg := n.config(testIMSI, suci.SchemeNull)
	cfg.Misbehave.WrongRES = true
	u := newUE(t, cfg)
	ul, err := u.RegistrationRequest()
	if err != nil {
		t.Fatal(err)
	}
	n.registrationRequest(ul)
	if err := n.authenticationResponse(one(t, u, n.authenticationRequest())); err == nil {
		t.Fatal("network accepted the RES* of a UE with WrongRES")
	}
}

// imeiLock is the IMEI lock the subscriber of testIMSI would have in the
// store: the device's IMEI.
func imeiLock(t *testing.T) udr.IMEILock {
	t.Helper()
	imei, err := IMEIOf(testIMEISV)
	if err != nil {
		t.Fatal(err)
	}
	lock, err := udr.ParseIMEILock(imei)
	if err != nil {
		t.Fatal(err)
	}
	return lock
}

func TestMisbehaveIMEI(t *testing.T) {
	lock := imeiLock(t)
	tests := []struct {
		name   string
		mis    Misbehave
		permit bool // the IMEI lock admits what the UE reports
		none   bool // the UE reports no IMEISV
	}{
		{"honest", Misbehave{}, true, false},
		{"WrongIMEI", Misbehave{WrongIMEI: true}, false, false},
		{"NoIMEI", Misbehave{NoIMEI: true}, false, true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			n := newTestNet(t)
			cfg := n.config(testIMSI, suci.SchemeNull)
			cfg.Misbehave = tc.mis
			u := newUE(t, cfg)
			imeisv := n.register(u)
			if (imeisv == "") != tc.none {
				t.Errorf("reported IMEISV %q", imeisv)
			}
			if imeisv != "" {
				if _, err := IMEIOf(imeisv); err != nil {
					t.Errorf("reported IMEISV %q: %v", imeisv, err)
				}
			}
			if got := lock.Permits(imeisv); got != tc.permit {
				t.Errorf("lock %v permits %q: %v, want %v", lock, imeisv, got, tc.permit)
			}
			// Asked again, the device tells the same story.
			for _, typ := range []uint8{ie.IdType_5GS_IMEI, ie.IdType_5GS_IMEISV} {
				r := expectUL[*message.IdRsp](n, one(t, u, n.protected(&message.IdReq{IdType: &ie.IdType5GS{IdType: typ}})))
				if tc.none {
					if r.MobileId.TypeOfId != ie.IdType_5GS_None {
						t.Errorf("identity type %d answered with type %d, want no identity", typ, r.MobileId.TypeOfId)
					}
					continue
				}
				pei := r.MobileId.PEIStr()
				digits := pei[len("imei-"):]
				if typ == ie.IdType_5GS_IMEISV {
					digits = pei[len("imeisv-"):]
				}
				if got := lock.Permits(digits); got != tc.permit {
					t.Errorf("identity type %d: %s: lock permits %v, want %v", typ, pei, got, tc.permit)
				}
				if typ == ie.IdType_5GS_IMEI {
					if err := udr.ValidateIMEI(digits); err != nil {
						t.Errorf("reported IMEI: %v", err)
					}
				}
			}
		})
	}
}

func TestMisbehaveTamperMAC(t *testing.T) {
	n, u := authenticated(t, func(c *Config) { c.Misbehave.TamperMAC = true })
	if _, err := n.securityModeComplete(one(t, u, n.securityModeCommand(n.ueCap, true))); err == nil {
		t.Fatal("network accepted a SECURITY MODE COMPLETE with a tampered MAC")
	}
	// The network answers REGISTRATION REJECT #24, plain.
	if ul, err := u.Handle(n.plain(&message.RegRej{Cause5GMM: &ie.Cause5GMM{Value: CauseSecurityModeRejected}})); err != nil || len(ul) != 0 {
		t.Fatalf("Handle(REGISTRATION REJECT) = %d, %v", len(ul), err)
	}
	if st := u.State(); st.State != Deregistered || st.RejectCause != CauseSecurityModeRejected {
		t.Errorf("state %+v", st)
	}
}

func TestMisbehaveReplayNAS(t *testing.T) {
	n, u := authenticated(t, func(c *Config) { c.Misbehave.ReplayNAS = true })
	ul, err := u.Handle(n.securityModeCommand(n.ueCap, true))
	if err != nil || len(ul) != 2 {
		t.Fatalf("Handle(SMC) = %d messages, %v; want the complete and its replay", len(ul), err)
	}
	sameBytes(t, "replayed SECURITY MODE COMPLETE", ul[1], ul[0])
	if _, err := n.securityModeComplete(ul[0]); err != nil {
		t.Fatal(err)
	}
	ul, err = u.Handle(n.registrationAccept())
	if err != nil || len(ul) != 2 || !bytes.Equal(ul[0], ul[1]) {
		t.Fatalf("Handle(REGISTRATION ACCEPT) = %d messages, %v; want two identical", len(ul), err)
	}
	expectUL[*message.RegComplete](n, ul[0])
	if ul[1][6] != 1 {
		t.Errorf("replay carries sequence number %d, want 1 as the original", ul[1][6])
	}
	// The next message continues from COUNT 2: the replay took no COUNT.
	next := one2(t, u, n.protected(&message.CfgUpdateCmd{CfgUpdateInd: &ie.CfgUpdateInd{ACK: true}}))
	if next[6] != 2 {
		t.Errorf("next sequence number %d, want 2", next[6])
	}
	// Plain messages are not replayed.
	if ul, err := u.Deregister(true); err != nil || ul[6] != 3 {
		t.Fatalf("Deregister: %v", err)
	}
	if _, err := u.RegistrationRequest(); err != nil {
		t.Fatal(err)
	}
	ul, err = u.Handle(n.plain(&message.IdReq{IdType: &ie.IdType5GS{IdType: ie.IdType_5GS_SUCI}}))
	if err != nil || len(ul) != 1 {
		t.Errorf("plain IDENTITY RESPONSE: %d messages, %v; want 1", len(ul), err)
	}
}

// one2 expects a message and its replay and returns the first.
func one2(t *testing.T, u *UE, dl []byte) []byte {
	t.Helper()
	ul, err := u.Handle(dl)
	if err != nil || len(ul) != 2 || !bytes.Equal(ul[0], ul[1]) {
		t.Fatalf("Handle = %d messages, %v; want two identical", len(ul), err)
	}
	return ul[0]
}
