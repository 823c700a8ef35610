package ran

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"net/netip"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/free5gc/ngap/aper"
	"github.com/free5gc/ngap/ie"
	"github.com/free5gc/ngap/message"

	"github.com/simgate/simgate/core/n2"
	"github.com/simgate/simgate/sim/aka"
	"github.com/simgate/simgate/sim/ue"
)

// The runner's own tests run a scripted AMF that speaks real NGAP over
// core/n2 to real sim/gnb gNBs, with fake UEs whose "NAS" is text:
//
//	UE  -> "REG <imsi>"       AMF: by the IMSI's last digit, 7: "REJECT 7",
//	                          8: "WAIT" then nothing, 9: "AUTHREJ", else an
//	                          InitialContextSetupRequest with "ACCEPT"
//	UE  -> "SESS <imsi>"      AMF: PDUSessionResourceSetupRequest, "SACCEPT <ip>"
//	UE  -> "DEREG <imsi>"     AMF: "DEREGACC", then UEContextReleaseCommand

func testN2(t testing.TB) n2.Config {
	return n2.Config{Transport: n2.TransportUDP, LocalAddr: "127.0.0.1:0",
		HandshakeTimeout: 3 * time.Second, ShutdownTimeout: 300 * time.Millisecond}
}

func testLogger(t testing.TB) *slog.Logger {
	return slog.New(slog.NewTextHandler(tWriter{t}, &slog.HandlerOptions{Level: slog.LevelError}))
}

type tWriter struct{ t testing.TB }

func (w tWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimSpace(string(p)))
	return len(p), nil
}

// scriptAMF is the scripted AMF.
type scriptAMF struct {
	t   testing.TB
	ln  n2.Listener
	wg  sync.WaitGroup
	mu  sync.Mutex
	seq int64
	// releaseRequests counts UEContextReleaseRequests (from timeouts).
	releaseRequests int
	associations    int
}

func newScriptAMF(t testing.TB) *scriptAMF {
	t.Helper()
	cfg := testN2(t)
	ln, err := n2.Listen(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	a := &scriptAMF{t: t, ln: ln}
	a.wg.Add(1)
	go func() {
		defer a.wg.Done()
		for {
			c, err := ln.Accept(context.Background())
			if err != nil {
				return
			}
			a.mu.Lock()
			a.associations++
			a.mu.Unlock()
			a.wg.Add(1)
			go func() {
				defer a.wg.Done()
				a.serve(c)
			}()
		}
	}()
	t.Cleanup(func() {
		_ = ln.Close()
		a.wg.Wait()
	})
	return a
}

func (a *scriptAMF) addr() string { return a.ln.Addr().String() }

func (a *scriptAMF) stats() (assocs, releaseRequests int) {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.associations, a.releaseRequests
}

func (a *scriptAMF) serve(c n2.Conn) {
	defer c.Close()
	send := func(m message.Message) {
		b, err := m.MarshalBinary()
		if err != nil {
			a.t.Errorf("script AMF: encode %T: %v", m, err)
			return
		}
		_ = c.WriteMsg(b, 0)
	}
	ids := func(amf int64, ran int64) (*ie.AMFUENGAPID, *ie.RANUENGAPID) {
		return &ie.AMFUENGAPID{Value: amf}, &ie.RANUENGAPID{Value: ran}
	}
	dl := func(amf, ran int64, nas string) {
		a1, r1 := ids(amf, ran)
		send(&message.DownlinkNASTransport{AMFUENGAPID: a1, RANUENGAPID: r1, NASPDU: &ie.NASPDU{Value: []byte(nas)}})
	}
	release := func(amf, ran int64) {
		a1, r1 := ids(amf, ran)
		send(&message.UEContextReleaseCommand{
			UENGAPIDs: &ie.UENGAPIDs{Choice: &ie.UENGAPIDPair{AMFUENGAPID: a1, RANUENGAPID: r1}},
			Cause:     &ie.Cause{Choice: &ie.CauseNas{Value: ie.CauseNasPresentNormalRelease}},
		})
	}
	buf := make([]byte, 1<<16)
	for {
		n, _, _, err := c.ReadMsg(buf)
		if err != nil {
			return
		}
		m, err := message.Parse(bytes.Clone(buf[:n]))
		if err != nil {
			a.t.Errorf("script AMF: undecodable PDU: %v", err)
			continue
		}
		switch m := m.(type) {
		case *message.NGSetupRequest:
			gg := m.GlobalRANNodeID.Choice.(*ie.GlobalGNBID)
			if !bytes.Equal(gg.PLMNIdentity.Value, []byte{0x00, 0xf1, 0x10}) {
				send(&message.NGSetupFailure{Cause: &ie.Cause{Choice: &ie.CauseMisc{Value: ie.CauseMiscPresentUnknownPLMNOrSNPN}}})
				continue
			}
			send(setupResponse())
		case *message.InitialUEMessage:
			a.mu.Lock()
			a.seq++
			amf := a.seq
			a.mu.Unlock()
			ran := m.RANUENGAPID.Value
			verb, imsi, _ := strings.Cut(string(m.NASPDU.Value), " ")
			if verb == "DEREG" {
				dl(amf, ran, "DEREGACC")
				release(amf, ran)
				continue
			}
			switch imsi[len(imsi)-1] {
			case '7':
				dl(amf, ran, "REJECT 7")
				release(amf, ran)
			case '8':
				dl(amf, ran, "WAIT") // and then nothing
			case '9':
				dl(amf, ran, "AUTHREJ")
				release(amf, ran)
			default:
				a1, r1 := ids(amf, ran)
				key := make([]byte, 32)
				send(&message.InitialContextSetupRequest{
					AMFUENGAPID: a1, RANUENGAPID: r1, GUAMI: setupResponse().ServedGUAMIList.List[0].GUAMI,
					AllowedNSSAI: &ie.AllowedNSSAI{List: []ie.AllowedNSSAIItem{{SNSSAI: &ie.SNSSAI{SST: &ie.SST{Value: aper.OctetString{1}}}}}},
					UESecurityCapabilities: &ie.UESecurityCapabilities{
						NRencryptionAlgorithms:             &ie.NRencryptionAlgorithms{Value: aper.BitString{Bytes: []byte{0xe0, 0}, BitLength: 16}},
						NRintegrityProtectionAlgorithms:    &ie.NRintegrityProtectionAlgorithms{Value: aper.BitString{Bytes: []byte{0xe0, 0}, BitLength: 16}},
						EUTRAencryptionAlgorithms:          &ie.EUTRAencryptionAlgorithms{Value: aper.BitString{Bytes: []byte{0, 0}, BitLength: 16}},
						EUTRAintegrityProtectionAlgorithms: &ie.EUTRAintegrityProtectionAlgorithms{Value: aper.BitString{Bytes: []byte{0, 0}, BitLength: 16}},
					},
					SecurityKey: &ie.SecurityKey{Value: aper.BitString{Bytes: key, BitLength: 256}},
					NASPDU:      &ie.NASPDU{Value: []byte("ACCEPT")},
				})
			}
		case *message.UplinkNASTransport:
			amf, ran := m.AMFUENGAPID.Value, m.RANUENGAPID.Value
			verb, imsi, _ := strings.Cut(string(m.NASPDU.Value), " ")
			switch verb {
			case "SESS":
				a1, r1 := ids(amf, ran)
				tr := setupTransfer(a.t, netip.MustParseAddr("127.0.0.8"), uint32(amf))
				send(&message.PDUSessionResourceSetupRequest{
					AMFUENGAPID: a1, RANUENGAPID: r1,
					PDUSessionResourceSetupListSUReq: &ie.PDUSessionResourceSetupListSUReq{List: []ie.PDUSessionResourceSetupItemSUReq{{
						PDUSessionID:     &ie.PDUSessionID{Value: 1},
						PDUSessionNASPDU: &ie.NASPDU{Value: []byte("SACCEPT " + fakeAddr(imsi).String())},
						SNSSAI:           &ie.SNSSAI{SST: &ie.SST{Value: aper.OctetString{1}}}, PDUSessionResourceSetupRequestTransfer: &tr,
					}}},
				})
			case "DEREG":
				dl(amf, ran, "DEREGACC")
				release(amf, ran)
			}
		case *message.UEContextReleaseRequest:
			a.mu.Lock()
			a.releaseRequests++
			a.mu.Unlock()
			release(m.AMFUENGAPID.Value, m.RANUENGAPID.Value)
		}
	}
}

// fakeAddr is the UE address the script gives an IMSI: 10.45 and its last
// 4 digits.
func fakeAddr(imsi string) netip.Addr {
	n, _ := strconv.Atoi(imsi[len(imsi)-4:])
	return netip.AddrFrom4([4]byte{10, 45, byte(n >> 8), byte(n)})
}

func setupResponse() *message.NGSetupResponse {
	plmn := []byte{0x00, 0xf1, 0x10}
	return &message.NGSetupResponse{
		AMFName: &ie.AMFName{Value: "script-amf"},
		ServedGUAMIList: &ie.ServedGUAMIList{List: []ie.ServedGUAMIItem{{GUAMI: &ie.GUAMI{
			PLMNIdentity: &ie.PLMNIdentity{Value: plmn},
			AMFRegionID:  &ie.AMFRegionID{Value: aper.BitString{Bytes: []byte{0xca}, BitLength: 8}},
			AMFSetID:     &ie.AMFSetID{Value: aper.BitString{Bytes: []byte{0xfe, 0}, BitLength: 10}},
			AMFPointer:   &ie.AMFPointer{Value: aper.BitString{Bytes: []byte{0}, BitLength: 6}},
		}}}},
		RelativeAMFCapacity: &ie.RelativeAMFCapacity{Value: 255},
		PLMNSupportList: &ie.PLMNSupportList{List: []ie.PLMNSupportItem{{
			PLMNIdentity:     &ie.PLMNIdentity{Value: plmn},
			SliceSupportList: &ie.SliceSupportList{List: []ie.SliceSupportItem{{SNSSAI: &ie.SNSSAI{SST: &ie.SST{Value: aper.OctetString{1}}}}}},
		}}},
	}
}

func setupTransfer(t testing.TB, upf netip.Addr, teid uint32) aper.OctetString {
	tr := &ie.PDUSessionResourceSetupRequestTransfer{ProtocolIEs: &ie.ProtocolIEContainerPDUSessionResourceSetupRequestTransferIEs{
		List: []ie.PDUSessionResourceSetupRequestTransferIEs{
			{PDUSessionAggregateMaximumBitRate: &ie.PDUSessionAggregateMaximumBitRate{
				PDUSessionAggregateMaximumBitRateDL: &ie.BitRate{Value: 1 << 30}, PDUSessionAggregateMaximumBitRateUL: &ie.BitRate{Value: 1 << 30}}},
			{ULNGUUPTNLInformation: &ie.UPTransportLayerInformation{Choice: &ie.GTPTunnel{
				TransportLayerAddress: &ie.TransportLayerAddress{Value: aper.BitString{Bytes: upf.AsSlice(), BitLength: 32}},
				GTPTEID:               &ie.GTPTEID{Value: aper.OctetString{byte(teid >> 24), byte(teid >> 16), byte(teid >> 8), byte(teid)}},
			}}},
			{PDUSessionType: &ie.PDUSessionType{Value: ie.PDUSessionTypePresentIpv4}},
			{QosFlowSetupRequestList: &ie.QosFlowSetupRequestList{List: []ie.QosFlowSetupRequestItem{{
				QosFlowIdentifier: &ie.QosFlowIdentifier{Value: 1},
				QosFlowLevelQosParameters: &ie.QosFlowLevelQosParameters{
					QosCharacteristics: &ie.QosCharacteristics{Choice: &ie.NonDynamic5QIDescriptor{FiveQI: &ie.FiveQI{Value: 9}}},
					AllocationAndRetentionPriority: &ie.AllocationAndRetentionPriority{
						PriorityLevelARP: &ie.PriorityLevelARP{Value: 8}, PreEmptionCapability: &ie.PreEmptionCapability{},
						PreEmptionVulnerability: &ie.PreEmptionVulnerability{},
					},
				},
			}}}},
		},
	}}
	b, err := ie.MarshalBinary(tr)
	if err != nil {
		t.Errorf("transfer: %v", err)
	}
	return b
}

// fakeUE speaks the script's text NAS and keeps a USIM state whose SQN
// advances by one on each accepted registration.
type fakeUE struct {
	cfg   ue.Config
	mu    sync.Mutex
	state ue.RegistrationState
	addr  netip.Addr
	usim  aka.State
}

func newFakeUE(c ue.Config) (UE, error) {
	st, err := ue.StateFromSQN(c.SQN, 0)
	if err != nil {
		return nil, err
	}
	return &fakeUE{cfg: c, usim: st}, nil
}

func (f *fakeUE) RegistrationRequest() ([]byte, error) {
	f.mu.Lock()
	f.state = ue.RegistrationInitiated
	f.mu.Unlock()
	return []byte("REG " + f.cfg.IMSI), nil
}

func (f *fakeUE) EstablishSession(psi uint8) ([]byte, error) {
	if psi != 1 {
		return nil, fmt.Errorf("psi %d", psi)
	}
	return []byte("SESS " + f.cfg.IMSI), nil
}

func (f *fakeUE) Deregister(bool) ([]byte, error) {
	f.mu.Lock()
	f.state = ue.DeregistrationInitiated
	f.mu.Unlock()
	return []byte("DEREG " + f.cfg.IMSI), nil
}

func (f *fakeUE) Handle(dl []byte) ([][]byte, error) {
	verb, arg, _ := strings.Cut(string(dl), " ")
	var ev ue.Event
	var ul [][]byte
	f.mu.Lock()
	switch verb {
	case "ACCEPT":
		f.state = ue.Registered
		// A fresh SQN with the next IND, as the AuC allocates it.
		hi, _ := highestSQN(f.usim)
		next := (hi>>5+1)<<5 | (hi&31+1)%32
		f.usim.SEQ[next&31] = next >> 5
		ev, ul = ue.Event{Kind: ue.EventRegistered}, [][]byte{[]byte("COMPLETE")}
	case "REJECT":
		c, _ := strconv.Atoi(arg)
		f.state = ue.Deregistered
		ev = ue.Event{Kind: ue.EventRegistrationRejected, Cause: uint8(c)}
	case "AUTHREJ":
		f.state = ue.Deregistered
		ev = ue.Event{Kind: ue.EventAuthenticationRejected}
	case "SACCEPT":
		f.addr = netip.MustParseAddr(arg)
		ev = ue.Event{Kind: ue.EventSessionEstablished, PSI: 1}
	case "WAIT":
		f.mu.Unlock()
		return nil, nil
	case "DEREGACC":
		f.state = ue.Deregistered
		ev = ue.Event{Kind: ue.EventDeregistered}
	default:
		f.mu.Unlock()
		return nil, fmt.Errorf("fake UE: %q", dl)
	}
	f.mu.Unlock()
	f.cfg.OnEvent(ev)
	return ul, nil
}

func (f *fakeUE) State() ue.Status {
	f.mu.Lock()
	defer f.mu.Unlock()
	st := ue.Status{State: f.state}
	if f.addr.IsValid() {
		st.Sessions = map[uint8]ue.Session{1: {PSI: 1, State: ue.SessionActive, IPv4: f.addr}}
	}
	return st
}

func (f *fakeUE) USIMState() aka.State {
	f.mu.Lock()
	defer f.mu.Unlock()
	return aka.State{INDBits: f.usim.INDBits, SEQ: append([]uint64(nil), f.usim.SEQ...)}
}
