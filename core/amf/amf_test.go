package amf

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/free5gc/nas/ie"
	"github.com/free5gc/nas/message"
	"github.com/free5gc/ngap/aper"
	ngapie "github.com/free5gc/ngap/ie"
	ngapmsg "github.com/free5gc/ngap/message"

	"github.com/simgate/simgate/core/n2"
	"github.com/simgate/simgate/core/udr"
	"github.com/simgate/simgate/sim/kdf"
	"github.com/simgate/simgate/sim/suci"
)

func TestNGSetup(t *testing.T) {
	h := newHarness(t)
	t.Run("served PLMN", func(t *testing.T) {
		g := h.dialGNB(t)
		g.send(g.setupRequest(g.plmn), 0)
		resp, ok := g.expectNonUE().(*ngapmsg.NGSetupResponse)
		if !ok {
			t.Fatal("no NG Setup Response")
		}
		if string(resp.AMFName.Value) != DefaultName || resp.RelativeAMFCapacity.Value != 255 {
			t.Errorf("AMF name %q, capacity %d", resp.AMFName.Value, resp.RelativeAMFCapacity.Value)
		}
		gu := resp.ServedGUAMIList.List[0].GUAMI
		if !bytes.Equal(gu.PLMNIdentity.Value, []byte{0x00, 0xF1, 0x10}) || gu.AMFRegionID.Value.Bytes[0] != 0xCA ||
			binary.BigEndian.Uint16(gu.AMFSetID.Value.Bytes)>>6 != 0x3F8 || gu.AMFPointer.Value.Bytes[0]>>2 != 0 {
			t.Errorf("GUAMI %+v %+v %+v", gu.AMFRegionID.Value, gu.AMFSetID.Value, gu.AMFPointer.Value)
		}
		ps := resp.PLMNSupportList.List[0]
		if !bytes.Equal(ps.PLMNIdentity.Value, g.plmn) || ps.SliceSupportList.List[0].SNSSAI.SST.Value[0] != 1 {
			t.Errorf("PLMN support %+v", ps)
		}
		eventually(t, "gNB counted", func() bool { return h.amf.Stats().GNBs >= 1 })
	})
	t.Run("PLMN not served", func(t *testing.T) {
		g := h.dialGNB(t)
		g.send(g.setupRequest([]byte{0x99, 0xF9, 0x99}), 0)
		f, ok := g.expectNonUE().(*ngapmsg.NGSetupFailure)
		if !ok {
			t.Fatal("want NG Setup Failure")
		}
		if c, ok := f.Cause.Choice.(*ngapie.CauseMisc); !ok || c.Value != ngapie.CauseMiscPresentUnknownPLMNOrSNPN {
			t.Errorf("cause %s, want misc unknown-PLMN-or-SNPN", causeString(f.Cause))
		}
		// Nothing UE-associated is served before a successful setup.
		u := g.newUE(t, "001010000000001")
		u.sendInitial(u.regRequest(u.suciValue()))
		u.quiet(100 * time.Millisecond)
		if h.metrics.get("drop", "ngap/received before NG Setup") == 0 {
			t.Error("Initial UE Message before NG Setup not counted as dropped")
		}
		if h.metrics.get("reject", fmt.Sprintf("%s/%d", RejectNGSetup, ngapie.CauseMiscPresentUnknownPLMNOrSNPN)) != 1 {
			t.Error("NG Setup Failure not counted")
		}
	})
}

func TestRegistrationSUCISchemes(t *testing.T) {
	h := newHarness(t)
	g := h.gnb(t)
	for i, s := range []suci.Scheme{suci.SchemeNull, suci.SchemeProfileA, suci.SchemeProfileB} {
		t.Run(s.String(), func(t *testing.T) {
			imsi := fmt.Sprintf("00101000000001%d", i)
			h.addSIM(imsi)
			u := g.newUE(t, imsi).withScheme(s)
			acc := u.register(nil)
			if acc.RegResult5GS.Value != ie.RegResult_3gpp {
				t.Errorf("registration result %d", acc.RegResult5GS.Value)
			}
			if acc.GUTI5G == nil || acc.GUTI5G.MCC != "001" || acc.GUTI5G.MNC != "01" || acc.GUTI5G.AMFRegionID != 0xCA ||
				acc.GUTI5G.AMFSetID != 0x3F8 || acc.GUTI5G.AMFPointer != 0 {
				t.Errorf("5G-GUTI %+v", acc.GUTI5G)
			}
			if len(acc.TAIList.TAI) != 1 || acc.TAIList.TAI[0].TAC != "000001" || acc.TAIList.TAI[0].MCC != "001" {
				t.Errorf("TAI list %+v", acc.TAIList)
			}
			if len(acc.AllowedNSSAI.SNSSAIs) != 1 || acc.AllowedNSSAI.SNSSAIs[0].SST != 1 {
				t.Errorf("allowed NSSAI %+v", acc.AllowedNSSAI)
			}
			// TS 33.501 A.9: KgNB from KAMF and the uplink NAS COUNT (0)
			// of the SECURITY MODE COMPLETE.
			if want, _ := kdf.KgNB(u.kamf, 0, kdf.Access3GPP); u.kgnb != want {
				t.Error("KgNB in Initial Context Setup is not KDF(KAMF, UL count 0, 3GPP)")
			}
			info := u.registered()
			if info.IMEI != "352099001761481" || info.MSISDN != "8190"+imsi[7:] || info.Integrity != "NIA2" || info.Ciphering != "NEA0" {
				t.Errorf("UE context %+v", info)
			}
			if info.GUTI != "00101"+"cafe00"+fmt.Sprintf("%x", acc.GUTI5G.TMSI5G) {
				t.Errorf("GUTI %s", info.GUTI)
			}
		})
	}
	if n := h.metrics.get("proc", "registration/success"); n != 3 {
		t.Errorf("%d successful registrations counted, want 3", n)
	}
	if h.ausf.Pending() != 0 {
		t.Errorf("%d AUSF contexts left", h.ausf.Pending())
	}
}

func TestICSContents(t *testing.T) {
	h := newHarness(t)
	g := h.gnb(t)
	h.addSIM("001010000000001")
	u := g.newUE(t, "001010000000001")
	u.secCap = &ie.UESecCapability{Length: 4, EA05G: true, EA2_128_5G: true, IA1_128_5G: true, IA2_128_5G: true, EEA2_128: true, EIA2_128: true}
	pdu, initial := u.untilSMC(u.suciValue())
	cmd, err := u.takeSMC(pdu)
	if err != nil {
		t.Fatal(err)
	}
	// Replayed capability, IMEISV requested, ngKSI of the challenge.
	if !sameCapability(cmd.ReplayedUESecCapabilities, u.secCap) || cmd.IMEISVReq == nil || cmd.IMEISVReq.Value != ie.IMEISV_Requested {
		t.Errorf("SMC %+v", cmd)
	}
	u.sendUplink(u.protect(u.smcComplete(initial), message.SecHdrTypeIntegrityProtectedAndCipheredWithNew5gNasSecCtx))
	expectNAS[*message.RegAccept](u)
	ics := u.lastICS
	if ics.GUAMI.AMFRegionID.Value.Bytes[0] != 0xCA || ics.AllowedNSSAI.List[0].SNSSAI.SST.Value[0] != 1 {
		t.Errorf("ICS GUAMI/NSSAI %+v", ics)
	}
	sc := ics.UESecurityCapabilities
	if sc.NRencryptionAlgorithms.Value.Bytes[0] != 0x40 || sc.NRintegrityProtectionAlgorithms.Value.Bytes[0] != 0xC0 ||
		sc.EUTRAencryptionAlgorithms.Value.Bytes[0] != 0x40 || sc.EUTRAintegrityProtectionAlgorithms.Value.Bytes[0] != 0x40 {
		t.Errorf("UE Security Capabilities %x %x %x %x", sc.NRencryptionAlgorithms.Value.Bytes, sc.NRintegrityProtectionAlgorithms.Value.Bytes,
			sc.EUTRAencryptionAlgorithms.Value.Bytes, sc.EUTRAintegrityProtectionAlgorithms.Value.Bytes)
	}
	if ics.SecurityKey.Value.BitLength != 256 {
		t.Errorf("security key of %d bits", ics.SecurityKey.Value.BitLength)
	}
}

func TestAlgorithmPairs(t *testing.T) {
	for integ := uint8(1); integ <= 3; integ++ {
		for ciph := uint8(0); ciph <= 3; ciph++ {
			t.Run(fmt.Sprintf("NIA%d-NEA%d", integ, ciph), func(t *testing.T) {
				t.Parallel()
				h := newHarness(t, func(c *Config) {
					c.Security.Integrity = []string{fmt.Sprintf("NIA%d", integ)}
					c.Security.Ciphering = []string{fmt.Sprintf("NEA%d", ciph)}
				})
				g := h.gnb(t)
				h.addSIM("001010000000001")
				u := g.newUE(t, "001010000000001")
				u.register(nil)
				if u.integ != integ || u.ciph != ciph {
					t.Fatalf("SMC selected NIA%d/NEA%d", u.integ, u.ciph)
				}
				info := u.registered()
				if info.Integrity != fmt.Sprintf("NIA%d", integ) || info.Ciphering != fmt.Sprintf("NEA%d", ciph) {
					t.Errorf("context %+v", info)
				}
				// Both directions of a ciphered exchange: a PDU session.
				u.ulSM(1, fake5GSM(1, message.MsgTypePDUSessEstReq, 0x91), true)
				if _, ok := u.recv().(*ngapmsg.PDUSessionResourceSetupRequest); !ok {
					t.Fatal("no PDU Session Resource Setup Request")
				}
			})
		}
	}
}

func TestAlgorithmSelection(t *testing.T) {
	h := newHarness(t)
	g := h.gnb(t)
	h.addSIM("001010000000001")
	h.addSIM("001010000000002")
	// The UE lacks the preferred NIA2: the next one it has is chosen.
	u := g.newUE(t, "001010000000001")
	u.secCap = &ie.UESecCapability{Length: 2, EA05G: true, EA1_128_5G: true, IA3_128_5G: true, IA1_128_5G: true}
	u.register(nil)
	if u.integ != 1 || u.ciph != 0 {
		t.Errorf("selected NIA%d/NEA%d, want NIA1/NEA0 (preference NIA2, NIA1, NIA3)", u.integ, u.ciph)
	}
	// No integrity algorithm in common: #23.
	u2 := g.newUE(t, "001010000000002")
	u2.secCap = &ie.UESecCapability{Length: 2, EA05G: true, IA05G: true}
	u2.sendInitial(u2.regRequest(u2.suciValue()))
	if err := u2.answerAuth(expectNAS[*message.AuthReq](u2)); err != nil {
		t.Fatal(err)
	}
	u2.expectReject(causeSecCapMismatch)
	// No UE security capability at all: #96.
	u3 := g.newUE(t, "001010000000002")
	u3.secCap = nil
	u3.sendInitial(u3.regRequest(u3.suciValue()))
	u3.expectReject(causeInvalidMandatory)
}

func TestGUTIKnown(t *testing.T) {
	h := newHarness(t)
	g := h.gnb(t)
	h.addSIM("001010000000001")
	u := g.newUE(t, "001010000000001").withScheme(suci.SchemeProfileA)
	u.register(nil)
	u.registered()
	// Switch off, then come back with the 5G-GUTI on a new connection.
	u.sendUplink(u.protect(u.deregRequest(true), message.SecHdrTypeIntegrityProtectedAndCiphered))
	u.expectRelease()
	eventually(t, "deregistered", func() bool { _, err := h.amf.UE(context.Background(), u.supi.String()); return err != nil })
	g.attach(u)
	u.sc = nil
	guti := u.guti
	u.sendInitial(u.regRequest(guti))
	// Straight to authentication: no IDENTITY REQUEST.
	req := expectNAS[*message.AuthReq](u)
	if req.Ngksi.Ksi == ksiNone {
		t.Errorf("ngKSI %d", req.Ngksi.Ksi)
	}
	if err := u.answerAuth(req); err != nil {
		t.Fatal(err)
	}
	pdu := expectNAS[*message.SecModeCmd](u)
	_ = pdu
	if h.metrics.get("proc", "identification/success") != 0 {
		t.Error("a known 5G-GUTI triggered identification")
	}
	if !containsAll(h.logs.String(), "5G-GUTI resolved") {
		t.Error("GUTI resolution not logged")
	}
}

func TestGUTIUnknown(t *testing.T) {
	h := newHarness(t)
	g := h.gnb(t)
	h.addSIM("001010000000001")
	for _, tc := range []struct {
		name string
		guti []byte
	}{
		{"unknown 5G-TMSI", gutiValue(g.plmn, 0xCA, 0x3F8, 0, 0x12345678)},
		{"other AMF set", gutiValue(g.plmn, 0xCA, 0x001, 0, 0x12345678)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			before := h.metrics.get("proc", "identification/success")
			u := g.newUE(t, "001010000000001").withScheme(suci.SchemeProfileB)
			u.register(tc.guti)
			u.registered()
			if h.metrics.get("proc", "identification/success") != before+1 {
				t.Error("no identification procedure")
			}
		})
	}
}

func TestRejects(t *testing.T) {
	h := newHarness(t)
	g := h.gnb(t)
	h.addSIM("001010000000002", inactive())
	h.addSIM("001010000000003", imeiLock("35209900176149"))
	h.addSIM("001010000000004", imeiLock("35209900176149"+udr.AnonymousSuffix))
	h.addSIM("001010000000005", imeiLock("35209900176148"))
	h.addSIM("001010000000006", imeiLock("35209900176148"+udr.AnonymousSuffix))

	t.Run("unknown subscriber #7", func(t *testing.T) {
		u := g.newUE(t, "001010000000001").withScheme(suci.SchemeProfileA)
		u.sendInitial(u.regRequest(u.suciValue()))
		u.expectReject(cause5GSNotAllowed)
	})
	t.Run("inactive SIM #3", func(t *testing.T) {
		u := g.newUE(t, "001010000000002")
		u.sendInitial(u.regRequest(u.suciValue()))
		u.expectReject(causeIllegalUE)
	})
	t.Run("IMEI lock mismatch #5", func(t *testing.T) {
		u := g.newUE(t, "001010000000003")
		pdu, initial := u.untilSMC(u.suciValue())
		if _, err := u.takeSMC(pdu); err != nil {
			t.Fatal(err)
		}
		u.sendUplink(u.protect(u.smcComplete(initial), message.SecHdrTypeIntegrityProtectedAndCipheredWithNew5gNasSecCtx))
		// After security mode control the reject is protected.
		u.expectReject(causePEINotAccepted)
	})
	t.Run("IMEI lock, no IMEISV #5", func(t *testing.T) {
		u := g.newUE(t, "001010000000005")
		u.imeisv = ""
		pdu, initial := u.untilSMC(u.suciValue())
		u.takeSMC(pdu)
		u.sendUplink(u.protect(u.smcComplete(initial), message.SecHdrTypeIntegrityProtectedAndCipheredWithNew5gNasSecCtx))
		u.expectReject(causePEINotAccepted)
	})
	t.Run("IMEI lock ANONYMOUS, other IMEI #5", func(t *testing.T) {
		u := g.newUE(t, "001010000000004")
		pdu, initial := u.untilSMC(u.suciValue())
		u.takeSMC(pdu)
		u.sendUplink(u.protect(u.smcComplete(initial), message.SecHdrTypeIntegrityProtectedAndCipheredWithNew5gNasSecCtx))
		u.expectReject(causePEINotAccepted)
	})
	t.Run("IMEI lock ANONYMOUS, no IMEISV accepted", func(t *testing.T) {
		u := g.newUE(t, "001010000000004")
		u.imeisv = ""
		u.register(nil)
		if info := u.registered(); info.IMEI != "" {
			t.Errorf("IMEI %q", info.IMEI)
		}
	})
	t.Run("IMEI lock match accepted", func(t *testing.T) {
		u := g.newUE(t, "001010000000005")
		u.register(nil)
		u.registered()
		u2 := g.newUE(t, "001010000000006")
		u2.register(nil)
		u2.registered()
	})
	t.Run("SUCI of another PLMN #11", func(t *testing.T) {
		u := g.newUE(t, "999990000000001")
		u.sendInitial(u.regRequest(u.suciValue()))
		u.expectReject(causePLMNNotAllowed)
	})
	t.Run("5G-GUTI of another PLMN #11", func(t *testing.T) {
		u := g.newUE(t, "001010000000001")
		u.sendInitial(u.regRequest(gutiValue([]byte{0x99, 0xF9, 0x99}, 0xCA, 0x3F8, 0, 1)))
		u.expectReject(causePLMNNotAllowed)
	})
	t.Run("SUCI with unknown key id #9", func(t *testing.T) {
		h.addSIM("001010000000007")
		other, _ := suci.GenerateKey(suci.SchemeProfileA)
		u := g.newUE(t, "001010000000007")
		u.scheme, u.keyID, u.hnKey = suci.SchemeProfileA, 99, other.PublicKey()
		u.sendInitial(u.regRequest(u.suciValue()))
		u.expectReject(causeIdentityUnknown)
	})
	for key, want := range map[string]int{
		"registration_reject/7": 1, "registration_reject/3": 1, "registration_reject/5": 3, "registration_reject/11": 2, "registration_reject/9": 1,
	} {
		if got := h.metrics.get("reject", key); got != want {
			t.Errorf("metric %s = %d, want %d", key, got, want)
		}
	}
}

func TestAuthenticationRejects(t *testing.T) {
	h := newHarness(t)
	g := h.gnb(t)
	h.addSIM("001010000000001")
	t.Run("wrong RES*", func(t *testing.T) {
		u := g.newUE(t, "001010000000001")
		u.sendInitial(u.regRequest(u.suciValue()))
		req := expectNAS[*message.AuthReq](u)
		_ = req
		bad := make([]byte, 16)
		u.sendUplink(mustMarshal(t, &message.AuthRsp{AuthRspParam: &ie.AuthRspParam{Res: bad}}))
		expectNAS[*message.AuthRej](u)
		rc := u.expectRelease()
		if c, ok := rc.Cause.Choice.(*ngapie.CauseNas); !ok || c.Value != ngapie.CauseNasPresentAuthenticationFailure {
			t.Errorf("release cause %s", causeString(rc.Cause))
		}
	})
	t.Run("RES* that passes HRES* but not XRES*", func(t *testing.T) {
		// A SEAF-side check cannot catch this: the AUSF must. Tamper with
		// the stored HXRES* so that the SEAF check passes for a wrong RES*.
		u := g.newUE(t, "001010000000001")
		u.sendInitial(u.regRequest(u.suciValue()))
		req := expectNAS[*message.AuthReq](u)
		bad := [16]byte{1, 2, 3}
		eventually(t, "context", func() bool { return h.amf.Stats().Contexts > 0 })
		done := make(chan bool)
		h.amf.mu.Lock()
		var ctxUE *ue
		for _, c := range h.amf.byAMFID {
			if c.ranID == u.ranID && c.g != nil {
				ctxUE = c
			}
		}
		h.amf.mu.Unlock()
		h.amf.post(ctxUE, func() { ctxUE.auth.hxres = kdf.HRESStar([16]byte(req.AuthParamRAND5GAuthChlg.Rand), bad); close(done) })
		<-done
		u.sendUplink(mustMarshal(t, &message.AuthRsp{AuthRspParam: &ie.AuthRspParam{Res: bad[:]}}))
		expectNAS[*message.AuthRej](u)
		u.expectRelease()
	})
	t.Run("USIM MAC failure #20", func(t *testing.T) {
		u := g.newUE(t, "001010000000001")
		u.usim, _ = newWrongUSIM() // a USIM with another K
		u.sendInitial(u.regRequest(u.suciValue()))
		if err := u.answerAuth(expectNAS[*message.AuthReq](u)); err == nil {
			t.Fatal("USIM with the wrong K accepted AUTN")
		}
		expectNAS[*message.AuthRej](u)
		u.expectRelease()
	})
	if got := h.metrics.get("reject", RejectAuthentication+"/0"); got != 3 {
		t.Errorf("%d authentication rejects counted, want 3", got)
	}
	if h.ausf.Pending() != 0 {
		t.Errorf("%d AUSF contexts left", h.ausf.Pending())
	}
}

func TestResync(t *testing.T) {
	h := newHarness(t)
	g := h.gnb(t)
	h.addSIM("001010000000001")
	u := g.newUE(t, "001010000000001")
	u.register(nil)
	u.registered()
	// The home network loses its SQN (restored backup): the USIM reports
	// a synch failure, the AMF resynchronises and challenges again.
	if err := h.store.UpdateSIM("001010000000001", func(s *udr.SIM) error { s.SQN = 0; return nil }); err != nil {
		t.Fatal(err)
	}
	g.attach(u)
	u.sc = nil
	u.sendInitial(u.regRequest(u.suciValue()))
	req := expectNAS[*message.AuthReq](u)
	if err := u.answerAuth(req); err == nil {
		t.Fatal("USIM accepted a stale SQN")
	}
	req2 := expectNAS[*message.AuthReq](u)
	if bytes.Equal(req2.AuthParamRAND5GAuthChlg.Rand, req.AuthParamRAND5GAuthChlg.Rand) {
		t.Fatal("no new challenge after synch failure")
	}
	if err := u.answerAuth(req2); err != nil {
		t.Fatalf("challenge after resync: %v", err)
	}
	expectNAS[*message.SecModeCmd](u)
}

func TestSMCMACFailure(t *testing.T) {
	h := newHarness(t)
	g := h.gnb(t)
	h.addSIM("001010000000001")
	u := g.newUE(t, "001010000000001")
	pdu, initial := u.untilSMC(u.suciValue())
	if _, err := u.takeSMC(pdu); err != nil {
		t.Fatal(err)
	}
	b := u.protect(u.smcComplete(initial), message.SecHdrTypeIntegrityProtectedAndCipheredWithNew5gNasSecCtx)
	b[3] ^= 0x01 // corrupt the NAS-MAC
	u.sendUplink(b)
	// Discarded and logged, then REGISTRATION REJECT #24, plain.
	m, raw := u.recvNAS()
	rej, ok := m.(*message.RegRej)
	if !ok || rej.Cause5GMM.Value != causeSecModeRejected {
		t.Fatalf("got %T %s, want REGISTRATION REJECT #24", m, nasDesc(m, raw))
	}
	if raw[1]&0x0F != 0 {
		t.Errorf("reject sent with security header type %d, want plain", raw[1]&0x0F)
	}
	u.expectRelease()
	if h.metrics.get("drop", "nas/mac_failure") != 1 || !containsAll(h.logs.String(), "NAS message dropped: mac_failure") {
		t.Error("MAC failure not counted and logged")
	}
}

func TestSecurityModeReject(t *testing.T) {
	h := newHarness(t)
	g := h.gnb(t)
	h.addSIM("001010000000001")
	u := g.newUE(t, "001010000000001")
	pdu, _ := u.untilSMC(u.suciValue())
	u.kamf[0] ^= 1 // the UE derives another KAMF: the SMC fails its check
	if _, err := u.takeSMC(pdu); err == nil {
		t.Fatal("SMC passed the UE's check with a wrong KAMF")
	}
	u.sendUplink(mustMarshal(t, &message.SecModeRej{Cause5GMM: &ie.Cause5GMM{Value: ie.Cause5GMM_SecModeRejected}}))
	u.expectReject(causeSecModeRejected)
}

func TestLaterMACFailureDropped(t *testing.T) {
	h := newHarness(t)
	g := h.gnb(t)
	h.addSIM("001010000000001")
	u := g.newUE(t, "001010000000001")
	pdu, initial := u.untilSMC(u.suciValue())
	if _, err := u.takeSMC(pdu); err != nil {
		t.Fatal(err)
	}
	u.sendUplink(u.protect(u.smcComplete(initial), message.SecHdrTypeIntegrityProtectedAndCipheredWithNew5gNasSecCtx))
	expectNAS[*message.RegAccept](u)
	ics := u.lastICS
	u.g.send(&ngapmsg.InitialContextSetupResponse{AMFUENGAPID: ics.AMFUENGAPID, RANUENGAPID: ics.RANUENGAPID}, 1)
	bad := u.protect(&message.RegComplete{}, message.SecHdrTypeIntegrityProtectedAndCiphered)
	bad[2] ^= 0x80
	u.sendUplink(bad)
	eventually(t, "MAC failure dropped", func() bool { return h.metrics.get("drop", "nas/mac_failure") == 1 })
	u.quiet(50 * time.Millisecond)
	if info, _ := h.amf.UE(context.Background(), u.supi.String()); info.Registered {
		t.Fatal("a REGISTRATION COMPLETE with a bad MAC was accepted")
	}
	// Nothing else happened: the genuine one still completes the
	// registration (its NAS COUNT follows the dropped one's).
	u.sendUplink(u.protect(&message.RegComplete{}, message.SecHdrTypeIntegrityProtectedAndCiphered))
	u.registered()
}

func TestReplayDropped(t *testing.T) {
	h := newHarness(t)
	g := h.gnb(t)
	h.addSIM("001010000000001")
	u := g.newUE(t, "001010000000001")
	u.register(nil)
	u.registered()
	est := u.ulSM(1, fake5GSM(1, message.MsgTypePDUSessEstReq, 0x91), false)
	if _, ok := u.recv().(*ngapmsg.PDUSessionResourceSetupRequest); !ok {
		t.Fatal("no setup request")
	}
	u.sendUplink(est) // the same bytes again
	eventually(t, "replay dropped", func() bool { return h.metrics.get("drop", "nas/replay") == 1 })
	u.quiet(50 * time.Millisecond)
	if n := len(h.smf.callsOf("create")); n != 1 {
		t.Errorf("SMF asked %d times, want once", n)
	}
	// A replayed SECURITY MODE COMPLETE (new-context header) is refused
	// outright once security mode control is over.
	u.sendUplink(u.protect(&message.SecModeComplete{}, message.SecHdrTypeIntegrityProtectedAndCipheredWithNew5gNasSecCtx))
	eventually(t, "new-context header dropped", func() bool { return h.metrics.get("drop", "nas/header_type") == 1 })
	// Plain messages after security mode control are discarded.
	u.sendUplink(mustMarshal(t, u.deregRequest(false)))
	eventually(t, "plain dropped", func() bool { return h.metrics.get("drop", "nas/plain_after_security") == 1 })
	u.registered()
}

func TestMalformedDropped(t *testing.T) {
	h := newHarness(t)
	g := h.gnb(t)
	h.addSIM("001010000000001")
	for _, b := range [][]byte{{}, {0x00}, {0xff, 0xff, 0xff}, {0x00, 0x15, 0x00, 0x43, 0x00}, bytes.Repeat([]byte{0x20}, 300)} {
		if len(b) > 0 {
			g.sendRaw(b, 0)
		}
	}
	eventually(t, "malformed NGAP dropped", func() bool { return h.metrics.get("drop", "ngap/malformed") >= 4 })
	// The association still works.
	u := g.newUE(t, "001010000000001")
	for _, nas := range [][]byte{{0x7e}, {0x2e, 0, 0}, {0x7e, 0x00, 0x41, 0x71, 0xff, 0xff}, {0x7e, 0x04, 1, 2, 3, 4, 5, 6, 7}} {
		v := g.newUE(t, "001010000000001")
		v.sendInitial(nas)
		v.expectRelease()
	}
	u.register(nil)
	u.registered()
	// Garbage in Uplink NAS Transport of a registered UE: dropped, UE unharmed.
	for _, nas := range [][]byte{{0x7e, 0x02, 0, 0, 0, 0, 1, 0x7e, 0, 0x43}, {0x7e, 0x02}, {0x7e, 0x00, 0x99}} {
		u.sendUplink(nas)
	}
	eventually(t, "malformed NAS dropped", func() bool {
		return h.metrics.get("drop", "nas/mac_failure")+h.metrics.get("drop", "nas/malformed")+h.metrics.get("drop", "nas/plain_after_security") >= 3
	})
	u.registered()
	// Unknown NGAP IDs.
	g.send(&ngapmsg.UplinkNASTransport{AMFUENGAPID: &ngapie.AMFUENGAPID{Value: 424242}, RANUENGAPID: &ngapie.RANUENGAPID{Value: 1},
		NASPDU: &ngapie.NASPDU{Value: []byte{0x7e, 0, 0x43}}, UserLocationInformation: u.uli()}, 1)
	eventually(t, "unknown id dropped", func() bool { return h.metrics.get("drop", "ngap/unknown AMF UE NGAP ID") == 1 })
	g.send(&ngapmsg.UplinkNASTransport{AMFUENGAPID: &ngapie.AMFUENGAPID{Value: u.amfID}, RANUENGAPID: &ngapie.RANUENGAPID{Value: u.ranID + 1000},
		NASPDU: &ngapie.NASPDU{Value: []byte{0x7e, 0, 0x43}}, UserLocationInformation: u.uli()}, 1)
	eventually(t, "mismatched id dropped", func() bool { return h.metrics.get("drop", "ngap/UE NGAP IDs do not match the context") == 1 })
	if h.metrics.get("drop", "ngap/panic")+h.metrics.get("drop", "nas/panic") != 0 {
		t.Error("a panic was caught")
	}
}

func TestPDUSession(t *testing.T) {
	h := newHarness(t)
	g := h.gnb(t)
	h.addSIM("001010000000001")
	u := g.newUE(t, "001010000000001")
	u.register(nil)
	u.registered()

	estReq := fake5GSM(5, message.MsgTypePDUSessEstReq, 0x91, 0xa1)
	u.ulSM(5, estReq, true)
	req, ok := u.recv().(*ngapmsg.PDUSessionResourceSetupRequest)
	if !ok {
		t.Fatal("no PDU Session Resource Setup Request")
	}
	it := req.PDUSessionResourceSetupListSUReq.List[0]
	if it.PDUSessionID.Value != 5 || it.SNSSAI.SST.Value[0] != 1 || !bytes.Equal(*it.PDUSessionResourceSetupRequestTransfer, fakeSetupTransfer) {
		t.Errorf("setup item %+v", it)
	}
	dl := u.nasFrom(it.PDUSessionNASPDU.Value)
	if dl.PDUSessID.Value != 5 || dl.PayloadCntrType.Value != ie.PayloadCntrType_N1SMInfo ||
		message.MsgType(dl.PayloadCntr.Contents[3]) != message.MsgTypePDUSessEstAccept {
		t.Errorf("DL NAS TRANSPORT %+v", dl)
	}
	c := h.smf.callsOf("create")
	if len(c) != 1 || c[0].id.SUPI != "imsi-001010000000001" || c[0].id.IMEI != "352099001761481" || c[0].id.MSISDN != "819000000001" ||
		c[0].psi != 5 || c[0].sst != 1 || c[0].sd != "" || c[0].dnn != "internet" || !bytes.Equal(c[0].data, estReq) {
		t.Errorf("SMF CreateSession %+v", c)
	}
	resp := []byte{0x00, 0x03, 0xe0, 0x0a, 0x00, 0x00, 0x01}
	g.send(&ngapmsg.PDUSessionResourceSetupResponse{AMFUENGAPID: req.AMFUENGAPID, RANUENGAPID: req.RANUENGAPID,
		PDUSessionResourceSetupListSURes: &ngapie.PDUSessionResourceSetupListSURes{List: []ngapie.PDUSessionResourceSetupItemSURes{{
			PDUSessionID: &ngapie.PDUSessionID{Value: 5}, PDUSessionResourceSetupResponseTransfer: (*aper.OctetString)(&resp)}}}}, 1)
	eventually(t, "session activated", func() bool { return len(h.smf.callsOf("activate")) == 1 })
	if a := h.smf.callsOf("activate")[0]; a.psi != 5 || !bytes.Equal(a.data, resp) {
		t.Errorf("ActivateSession %+v", a)
	}
	if info := u.registered(); len(info.Sessions) != 1 || info.Sessions[0] != 5 {
		t.Errorf("sessions %v", info.Sessions)
	}

	// Release.
	u.ulSM(5, fake5GSM(5, message.MsgTypePDUSessRelReq), false)
	rc, ok := u.recv().(*ngapmsg.PDUSessionResourceReleaseCommand)
	if !ok {
		t.Fatal("no PDU Session Resource Release Command")
	}
	ri := rc.PDUSessionResourceToReleaseListRelCmd.List[0]
	if ri.PDUSessionID.Value != 5 || !bytes.Equal(*ri.PDUSessionResourceReleaseCommandTransfer, fakeReleaseTransfer) {
		t.Errorf("release item %+v", ri)
	}
	if dl := u.nasFrom(rc.NASPDU.Value); message.MsgType(dl.PayloadCntr.Contents[3]) != message.MsgTypePDUSessRelCmd {
		t.Errorf("release command payload %x", dl.PayloadCntr.Contents)
	}
	rr := []byte{0x00}
	g.send(&ngapmsg.PDUSessionResourceReleaseResponse{AMFUENGAPID: rc.AMFUENGAPID, RANUENGAPID: rc.RANUENGAPID,
		PDUSessionResourceReleasedListRelRes: &ngapie.PDUSessionResourceReleasedListRelRes{List: []ngapie.PDUSessionResourceReleasedItemRelRes{{
			PDUSessionID: &ngapie.PDUSessionID{Value: 5}, PDUSessionResourceReleaseResponseTransfer: (*aper.OctetString)(&rr)}}}}, 1)
	u.ulSM(5, fake5GSM(5, message.MsgTypePDUSessRelComplete), false)
	eventually(t, "release complete passed on", func() bool { return len(h.smf.callsOf("release")) == 2 })
	if info := u.registered(); len(info.Sessions) != 0 {
		t.Errorf("sessions after release %v", info.Sessions)
	}

	// SMF rejects: the reject goes back in DL NAS Transport.
	h.smf.mu.Lock()
	h.smf.reject = true
	h.smf.mu.Unlock()
	u.ulSM(6, fake5GSM(6, message.MsgTypePDUSessEstReq), true)
	dl = expectNAS[*message.DLNASTransport](u)
	if message.MsgType(dl.PayloadCntr.Contents[3]) != message.MsgTypePDUSessEstRej {
		t.Errorf("reject payload %x", dl.PayloadCntr.Contents)
	}
	// A slice not allowed: not forwarded, #90.
	m := &message.ULNASTransport{PayloadCntrType: &ie.PayloadCntrType{Value: ie.PayloadCntrType_N1SMInfo},
		PayloadCntr: &ie.PayloadCntr{Pct: 1, Contents: fake5GSM(7, message.MsgTypePDUSessEstReq)},
		PDUSessID:   &ie.PDUSessId2{Value: 7}, SNSSAI: &ie.SNSSAI{SST: 3}}
	u.sendUplink(u.protect(m, message.SecHdrTypeIntegrityProtectedAndCiphered))
	dl = expectNAS[*message.DLNASTransport](u)
	if dl.Cause5GMM == nil || dl.Cause5GMM.Value != causePayloadNotForwarded {
		t.Errorf("not forwarded: cause %v", dl.Cause5GMM)
	}
}

func TestDeregistrationUE(t *testing.T) {
	for _, switchOff := range []bool{false, true} {
		t.Run(fmt.Sprintf("switch-off=%v", switchOff), func(t *testing.T) {
			h := newHarness(t)
			g := h.gnb(t)
			h.addSIM("001010000000001")
			u := g.newUE(t, "001010000000001")
			u.register(nil)
			u.registered()
			u.sendUplink(u.protect(u.deregRequest(switchOff), message.SecHdrTypeIntegrityProtectedAndCiphered))
			if !switchOff {
				expectNAS[*message.DeregAcceptUEOrig](u)
			}
			rc := u.expectRelease()
			if c, ok := rc.Cause.Choice.(*ngapie.CauseNas); !ok || c.Value != ngapie.CauseNasPresentNormalRelease {
				t.Errorf("release cause %s, want nas normal-release", causeString(rc.Cause))
			}
			eventually(t, "context gone", func() bool { return h.amf.Stats().Contexts == 0 && h.amf.Stats().Registered == 0 })
			if c := h.smf.callsOf("release_all"); len(c) != 1 || c[0].id.SUPI != "imsi-001010000000001" {
				t.Errorf("SMF ReleaseAll %+v", c)
			}
			if s := h.amf.Stats(); s.KnownGUTIs != 1 {
				t.Errorf("5G-GUTI forgotten: %+v", s)
			}
		})
	}
}

func TestDeregistrationNetwork(t *testing.T) {
	h := newHarness(t)
	g := h.gnb(t)
	h.addSIM("001010000000001")
	u := g.newUE(t, "001010000000001")
	u.register(nil)
	u.registered()
	if err := h.amf.Deregister(context.Background(), "imsi-001010000000099"); !errors.Is(err, ErrNotRegistered) {
		t.Errorf("unknown SUPI: %v", err)
	}
	if err := h.amf.Deregister(context.Background(), u.supi.String()); err != nil {
		t.Fatal(err)
	}
	req := expectNAS[*message.DeregReqUETerm](u)
	if req.DeregType.ReregRequired || req.DeregType.Switchoff || req.DeregType.AccessType != ie.AccessType_3gpp {
		t.Errorf("deregistration type %+v", req.DeregType)
	}
	u.sendUplink(u.protect(&message.DeregAcceptUETerm{}, message.SecHdrTypeIntegrityProtectedAndCiphered))
	u.expectRelease()
	eventually(t, "deregistered", func() bool { return h.amf.Stats().Registered == 0 && h.amf.Stats().Contexts == 0 })
	if len(h.smf.callsOf("release_all")) != 1 {
		t.Error("PDU sessions not released")
	}
	if h.metrics.get("proc", "deregistration_network/success") != 1 {
		t.Error("not counted")
	}
}

func TestRetransmission(t *testing.T) {
	h := newHarness(t, func(c *Config) {
		c.Timers.T3560 = 30 * time.Millisecond
		c.Timers.MaxRetransmissions = 2
	})
	g := h.gnb(t)
	h.addSIM("001010000000001")
	u := g.newUE(t, "001010000000001")
	u.sendInitial(u.regRequest(u.suciValue()))
	var rands [][]byte
	for range 3 { // the request and two retransmissions
		rands = append(rands, expectNAS[*message.AuthReq](u).AuthParamRAND5GAuthChlg.Rand)
	}
	if !bytes.Equal(rands[0], rands[2]) {
		t.Error("retransmission carries another challenge")
	}
	u.expectRelease()
	eventually(t, "timeout counted", func() bool { return h.metrics.get("proc", "authentication/timeout") == 1 })
	eventually(t, "context gone", func() bool { return h.amf.Stats().Contexts == 0 })
	if h.ausf.Pending() != 0 {
		t.Error("AUSF context left after timeout")
	}
}

func TestIdleAndNGReset(t *testing.T) {
	h := newHarness(t)
	g := h.gnb(t)
	h.addSIM("001010000000001")
	h.addSIM("001010000000002")
	u := g.newUE(t, "001010000000001")
	u.register(nil)
	u.registered()
	// The gNB releases the UE (inactivity): registered, idle.
	g.send(&ngapmsg.UEContextReleaseRequest{AMFUENGAPID: &ngapie.AMFUENGAPID{Value: u.amfID}, RANUENGAPID: &ngapie.RANUENGAPID{Value: u.ranID},
		Cause: &ngapie.Cause{Choice: &ngapie.CauseRadioNetwork{Value: ngapie.CauseRadioNetworkPresentUserInactivity}}}, 1)
	u.expectRelease()
	eventually(t, "idle", func() bool {
		i, err := h.amf.UE(context.Background(), u.supi.String())
		return err == nil && i.Registered && !i.Connected
	})
	// Network deregistration of an idle UE is local.
	if err := h.amf.Deregister(context.Background(), u.supi.String()); err != nil {
		t.Fatal(err)
	}
	eventually(t, "deregistered", func() bool { return h.amf.Stats().Registered == 0 })

	// NG Reset: the UEs of the gNB lose their connection.
	v := g.newUE(t, "001010000000002")
	v.register(nil)
	v.registered()
	g.send(&ngapmsg.NGReset{Cause: &ngapie.Cause{Choice: &ngapie.CauseMisc{Value: ngapie.CauseMiscPresentOmIntervention}},
		ResetType: &ngapie.ResetType{Choice: &ngapie.ResetAll{Value: ngapie.ResetAllPresentResetAll}}}, 0)
	if _, ok := g.expectNonUE().(*ngapmsg.NGResetAcknowledge); !ok {
		t.Fatal("no NG Reset Acknowledge")
	}
	eventually(t, "idle after reset", func() bool {
		i, err := h.amf.UE(context.Background(), v.supi.String())
		return err == nil && i.Registered && !i.Connected
	})
	// Re-registration of the same SUPI supersedes the idle context.
	g.attach(v)
	v.sc = nil
	v.register(nil)
	v.registered()
	// One 5G-GUTI per subscriber, however often it registers.
	if s := h.amf.Stats(); s.Registered != 1 || s.KnownGUTIs != 2 {
		t.Errorf("stats %+v, want 1 registered and 2 known 5G-GUTIs", s)
	}
}

func TestAssociationLoss(t *testing.T) {
	h := newHarness(t)
	g := h.gnb(t)
	h.addSIM("001010000000001")
	u := g.newUE(t, "001010000000001")
	u.register(nil)
	u.registered()
	g.conn.Close()
	eventually(t, "idle after association loss", func() bool {
		i, err := h.amf.UE(context.Background(), u.supi.String())
		return err == nil && i.Registered && !i.Connected
	})
	eventually(t, "gNB gone", func() bool { return h.amf.Stats().GNBs == 0 })
}

func TestManyUEsConcurrently(t *testing.T) {
	h := newHarness(t)
	g := h.gnb(t)
	const n = 50
	for i := range n {
		h.addSIM(fmt.Sprintf("0010100000%05d", i))
	}
	t.Run("group", func(t *testing.T) {
		for i := range n {
			imsi := fmt.Sprintf("0010100000%05d", i)
			t.Run(imsi, func(t *testing.T) {
				t.Parallel()
				g.newUE(t, imsi).withScheme(suci.Scheme(i % 3)).register(nil)
			})
		}
	})
	eventually(t, "all registered", func() bool { return h.amf.Stats().Registered == n })
}

func TestConfigValidate(t *testing.T) {
	if err := DefaultConfig().Validate(); err != nil {
		t.Fatalf("default config: %v", err)
	}
	tests := []struct {
		key string
		mod func(*Config)
	}{
		{"name", func(c *Config) { c.Name = "" }},
		{"name", func(c *Config) { c.Name = "amf_1" }},
		{"plmn.mcc", func(c *Config) { c.PLMN.MCC = "01" }},
		{"plmn.mnc", func(c *Config) { c.PLMN.MNC = "1234" }},
		{"tacs", func(c *Config) { c.TACs = nil }},
		{"tacs", func(c *Config) { c.TACs = []string{"0001"} }},
		{"guami.set_id", func(c *Config) { c.GUAMI.SetID = 1024 }},
		{"guami.pointer", func(c *Config) { c.GUAMI.Pointer = 64 }},
		{"slices", func(c *Config) { c.Slices = []string{"1:12"} }},
		{"slices", func(c *Config) { c.Slices = []string{"256"} }},
		{"slices", func(c *Config) { c.Slices = []string{"1:ffffff"} }},
		{"security.integrity", func(c *Config) { c.Security.Integrity = []string{"NIA0"} }},
		{"security.integrity", func(c *Config) { c.Security.Integrity = []string{"NIA2", "NIA2"} }},
		{"security.ciphering", func(c *Config) { c.Security.Ciphering = []string{"NEA4"} }},
		{"security.ciphering", func(c *Config) { c.Security.Ciphering = nil }},
		{"default_dnn", func(c *Config) { c.DefaultDNN = "" }},
		{"n2", func(c *Config) { c.N2.Transport = "tcp" }},
		{"timers.t3560", func(c *Config) { c.Timers.T3560 = 0 }},
		{"timers.max_retransmissions", func(c *Config) { c.Timers.MaxRetransmissions = -1 }},
		{"workers", func(c *Config) { c.Workers = 0 }},
	}
	for _, tc := range tests {
		c := DefaultConfig()
		tc.mod(&c)
		err := c.Validate()
		if err == nil || !bytes.Contains([]byte(err.Error()), []byte("amf: "+tc.key+":")) {
			t.Errorf("%s: error %v does not name the key", tc.key, err)
		}
	}
	c := DefaultConfig()
	c.Security.Integrity = []string{"128-nia3", "nia1"}
	c.Slices = []string{"1", "2:000001"}
	c.PLMN = PLMNConfig{MCC: "310", MNC: "410"}
	p, err := c.parse()
	if err != nil {
		t.Fatal(err)
	}
	if p.integrity[0] != 3 || p.integrity[1] != 1 || !p.slices[1].hasSD || p.slices[1].sdString() != "000001" ||
		p.plmn != [3]byte{0x13, 0x00, 0x14} || p.snn != "5G:mnc410.mcc310.3gppnetwork.org" {
		t.Errorf("parsed %+v", p)
	}
	if _, err := New(DefaultConfig(), Deps{}); err == nil {
		t.Error("New without dependencies succeeded")
	}
}

func TestPLMNCoding(t *testing.T) {
	for _, tc := range []struct {
		mcc, mnc string
		b        [3]byte
	}{
		{"001", "01", [3]byte{0x00, 0xF1, 0x10}},
		{"208", "93", [3]byte{0x02, 0xF8, 0x39}},
		{"310", "410", [3]byte{0x13, 0x00, 0x14}},
	} {
		if got := encodePLMN(tc.mcc, tc.mnc); got != tc.b {
			t.Errorf("encode %s-%s = %x, want %x", tc.mcc, tc.mnc, got, tc.b)
		}
		mcc, mnc, err := decodePLMN(tc.b[:])
		if err != nil || mcc != tc.mcc || mnc != tc.mnc {
			t.Errorf("decode %x = %s-%s %v", tc.b, mcc, mnc, err)
		}
	}
	for _, bad := range [][]byte{{0xA0, 0xF1, 0x10}, {0x00, 0xF1}, {0x00, 0x01, 0x1B}} {
		if _, _, err := decodePLMN(bad); err == nil {
			t.Errorf("decodePLMN(%x) accepted", bad)
		}
	}
	g, err := parseGUTI(gutiValue([]byte{0x00, 0xF1, 0x10}, 0xCA, 0x3F8, 5, 0xdeadbeef))
	if err != nil || g.mcc != "001" || g.mnc != "01" || g.region != 0xCA || g.set != 0x3F8 || g.pointer != 5 || g.tmsi != 0xdeadbeef {
		t.Errorf("parseGUTI %+v %v", g, err)
	}
	for _, bad := range [][]byte{{0xf2}, append([]byte{0xf1}, make([]byte, 10)...), append([]byte{0x02}, make([]byte, 10)...)} {
		if _, err := parseGUTI(bad); err == nil {
			t.Errorf("parseGUTI(%x) accepted", bad)
		}
	}
}

func TestRunStops(t *testing.T) {
	h := newHarness(t)
	cfg := DefaultConfig()
	cfg.N2.Transport, cfg.N2.LocalAddr = "udp", "127.0.0.1:0"
	a, err := New(cfg, Deps{AUSF: h.ausf, UDM: h.udm, SMF: h.smf})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- a.Run(ctx) }()
	time.Sleep(50 * time.Millisecond)
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("Run: %v", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Run did not stop with its context")
	}
	ln, err := n2.Listen(context.Background(), cfg.N2)
	if err != nil {
		t.Fatal(err)
	}
	if err := a.Serve(context.Background(), ln); err == nil {
		t.Error("a stopped AMF served again")
	}
	if _, err := a.UE(context.Background(), "imsi-001010000000001"); !errors.Is(err, ErrNotRegistered) {
		t.Errorf("UE of unknown SUPI: %v", err)
	}
	cfg.N2.LocalAddr = "256.1.1.1:0"
	b, _ := New(cfg, Deps{AUSF: h.ausf, UDM: h.udm, SMF: h.smf})
	if err := b.Run(context.Background()); err == nil {
		t.Error("Run on an impossible address succeeded")
	}
}
