package amf

import (
	"errors"
	"fmt"
	"io"
	"log/slog"
	"runtime/debug"
	"sync/atomic"

	"github.com/free5gc/ngap/aper"
	"github.com/free5gc/ngap/ie"
	ngapmsg "github.com/free5gc/ngap/message"

	"github.com/simgate/simgate/core/n2"
)

// NGAP streams (TS 38.412 7): non-UE-associated signalling on stream 0,
// UE-associated on stream 1 when the gNB accepts more than one.
const nonUEStream = 0

// relativeCapacity is the RelativeAMFCapacity sent in NG Setup Response
// (TS 38.413 9.3.1.10): this is the only AMF.
const relativeCapacity = 255

// gnb is one N2 association and the gNB behind it.
type gnb struct {
	conn     n2.Conn
	log      *slog.Logger
	ueStream uint16
	setup    atomic.Bool
	byRAN    map[int64]*ue // guarded by AMF.mu
}

func (g *gnb) isSetup() bool { return g.setup.Load() }

// serveAssociation reads NGAP messages from one association until it ends.
func (a *AMF) serveAssociation(c n2.Conn) {
	g := &gnb{conn: c, byRAN: make(map[int64]*ue), log: a.log.With("gnb", c.RemoteAddr().String())}
	if c.OutStreams() > 1 {
		g.ueStream = 1
	}
	a.mu.Lock()
	a.gnbs[g] = struct{}{}
	a.mu.Unlock()
	g.log.Info("amf: N2 association up", "transport", string(c.Transport()), "streams", c.OutStreams())
	buf := make([]byte, n2.DefaultMaxMessageSize)
	var err error
	for {
		var n int
		var ppid uint32
		n, _, ppid, err = c.ReadMsg(buf)
		if errors.Is(err, io.ErrShortBuffer) {
			buf = make([]byte, n)
			continue
		}
		if err != nil {
			break
		}
		if ppid != n2.PPIDNGAP {
			a.dropNGAP(g, "payload protocol identifier is not NGAP", "ppid", ppid)
			continue
		}
		a.handleNGAP(g, append([]byte(nil), buf[:n]...))
	}
	c.Close()
	a.associationClosed(g, err)
}

// associationClosed hands every UE of the gNB the loss of its connection.
func (a *AMF) associationClosed(g *gnb, cause error) {
	a.mu.Lock()
	delete(a.gnbs, g)
	ues := make([]*ue, 0, len(g.byRAN))
	for _, u := range g.byRAN {
		ues = append(ues, u)
	}
	a.mu.Unlock()
	g.log.Info("amf: N2 association down", "ues", len(ues), "cause", fmt.Sprint(cause))
	for _, u := range ues {
		a.post(u, func() {
			if u.g == g {
				a.connectionLost(u)
			}
		})
	}
}

func (a *AMF) dropNGAP(g *gnb, reason string, args ...any) {
	a.metrics.Dropped("ngap", reason)
	g.log.Warn("amf: NGAP message dropped: "+reason, args...)
}

// handleNGAP processes one NGAP message received from g. Malformed,
// unexpected or unknown messages are dropped and logged; nothing here
// panics on bad input (a panic in a decoder is caught, logged as a bug and
// counted).
func (a *AMF) handleNGAP(g *gnb, b []byte) {
	defer func() {
		if r := recover(); r != nil {
			a.log.Error("amf: BUG: panic handling NGAP; message dropped", "panic", fmt.Sprint(r), "stack", string(debug.Stack()))
			a.metrics.Dropped("ngap", "panic")
		}
	}()
	m, err := ngapmsg.Parse(b)
	if err != nil || m == nil {
		a.dropNGAP(g, "malformed", "err", fmt.Sprint(err), "len", len(b))
		return
	}
	if req, ok := m.(*ngapmsg.NGSetupRequest); ok {
		a.ngSetup(g, req)
		return
	}
	if !g.isSetup() {
		a.dropNGAP(g, "received before NG Setup", "procedure", m.ProcedureCode())
		return
	}
	switch msg := m.(type) {
	case *ngapmsg.InitialUEMessage:
		a.initialUEMessage(g, msg)
	case *ngapmsg.UplinkNASTransport:
		a.toUE(g, msg.AMFUENGAPID, msg.RANUENGAPID, "Uplink NAS Transport", func(u *ue) {
			if msg.NASPDU == nil {
				a.dropNAS(u, "Uplink NAS Transport without NAS-PDU")
				return
			}
			a.uplinkNAS(u, msg.NASPDU.Value)
		})
	case *ngapmsg.InitialContextSetupResponse:
		a.toUE(g, msg.AMFUENGAPID, msg.RANUENGAPID, "Initial Context Setup Response", func(u *ue) { a.icsResponse(u, msg) })
	case *ngapmsg.InitialContextSetupFailure:
		a.toUE(g, msg.AMFUENGAPID, msg.RANUENGAPID, "Initial Context Setup Failure", func(u *ue) { a.icsFailure(u, msg) })
	case *ngapmsg.UEContextReleaseRequest:
		a.toUE(g, msg.AMFUENGAPID, msg.RANUENGAPID, "UE Context Release Request", func(u *ue) { a.releaseRequest(u, msg) })
	case *ngapmsg.UEContextReleaseComplete:
		a.toUE(g, msg.AMFUENGAPID, msg.RANUENGAPID, "UE Context Release Complete", func(u *ue) { a.releaseComplete(u) })
	case *ngapmsg.PDUSessionResourceSetupResponse:
		a.toUE(g, msg.AMFUENGAPID, msg.RANUENGAPID, "PDU Session Resource Setup Response", func(u *ue) { a.sessionSetupResponse(u, msg) })
	case *ngapmsg.PDUSessionResourceReleaseResponse:
		a.toUE(g, msg.AMFUENGAPID, msg.RANUENGAPID, "PDU Session Resource Release Response", func(u *ue) { a.sessionReleaseResponse(u, msg) })
	case *ngapmsg.NASNonDeliveryIndication:
		a.toUE(g, msg.AMFUENGAPID, msg.RANUENGAPID, "NAS Non Delivery Indication", func(u *ue) {
			u.logger().Warn("amf: gNB could not deliver a NAS message", "cause", causeString(msg.Cause))
		})
	case *ngapmsg.UERadioCapabilityInfoIndication:
		// Nothing to keep: the AMF does not page.
	case *ngapmsg.ErrorIndication:
		g.log.Warn("amf: Error Indication from gNB", "cause", causeString(msg.Cause),
			"amf_ue_ngap_id", idValue(msg.AMFUENGAPID), "ran_ue_ngap_id", ranValue(msg.RANUENGAPID))
	case *ngapmsg.NGReset:
		a.ngReset(g, msg)
	default:
		a.dropNGAP(g, "procedure not supported", "procedure", m.ProcedureCode(), "type", m.MessageType())
	}
}

func idValue(id *ie.AMFUENGAPID) int64 {
	if id == nil {
		return -1
	}
	return id.Value
}

func ranValue(id *ie.RANUENGAPID) int64 {
	if id == nil {
		return -1
	}
	return id.Value
}

// toUE queues fn on the UE context the NGAP IDs name, after checking that
// the context belongs to this gNB and RAN UE NGAP ID.
func (a *AMF) toUE(g *gnb, amfID *ie.AMFUENGAPID, ranID *ie.RANUENGAPID, what string, fn func(u *ue)) {
	if amfID == nil || ranID == nil {
		a.dropNGAP(g, "UE NGAP IDs missing", "message", what)
		return
	}
	a.mu.Lock()
	u := a.byAMFID[amfID.Value]
	a.mu.Unlock()
	if u == nil {
		a.dropNGAP(g, "unknown AMF UE NGAP ID", "message", what, "amf_ue_ngap_id", amfID.Value, "ran_ue_ngap_id", ranID.Value)
		return
	}
	a.post(u, func() {
		if u.g != g || u.ranID != ranID.Value {
			a.dropNGAP(g, "UE NGAP IDs do not match the context", "message", what,
				"amf_ue_ngap_id", amfID.Value, "ran_ue_ngap_id", ranID.Value)
			return
		}
		fn(u)
	})
}

// ngSetup answers an NG Setup Request (TS 38.413 8.7.1): a gNB of a PLMN
// this AMF does not serve gets NG Setup Failure, cause misc
// "unknown-PLMN-or-SNPN".
func (a *AMF) ngSetup(g *gnb, req *ngapmsg.NGSetupRequest) {
	id, name, plmnOK, err := a.checkSetup(req)
	if err != nil {
		g.log.Warn("amf: NG Setup Request rejected", "err", err)
		a.ngSetupFailure(g, ie.CauseProtocolPresentSemanticError, false)
		return
	}
	if !plmnOK {
		g.log.Warn("amf: NG Setup Request from a gNB of a PLMN not served; NG Setup Failure", "gnb_id", id, "gnb_name", name)
		a.ngSetupFailure(g, ie.CauseMiscPresentUnknownPLMNOrSNPN, true)
		return
	}
	slices := make([]ie.SliceSupportItem, 0, len(a.p.slices))
	for _, s := range a.p.slices {
		slices = append(slices, ie.SliceSupportItem{SNSSAI: ngapSNSSAI(s)})
	}
	resp := &ngapmsg.NGSetupResponse{
		AMFName:             &ie.AMFName{Value: aper.PrintableString(a.cfg.Name)},
		ServedGUAMIList:     &ie.ServedGUAMIList{List: []ie.ServedGUAMIItem{{GUAMI: a.ngapGUAMI()}}},
		RelativeAMFCapacity: &ie.RelativeAMFCapacity{Value: relativeCapacity},
		PLMNSupportList: &ie.PLMNSupportList{List: []ie.PLMNSupportItem{{
			PLMNIdentity:     &ie.PLMNIdentity{Value: a.p.plmn[:]},
			SliceSupportList: &ie.SliceSupportList{List: slices},
		}}},
	}
	if err := a.send(g, resp, nonUEStream); err != nil {
		g.log.Warn("amf: NG Setup Response not sent", "err", err)
		a.metrics.Procedure(ProcNGSetup, Failure, 0)
		return
	}
	g.setup.Store(true)
	g.log = g.log.With("gnb_id", id)
	g.log.Info("amf: NG Setup complete", "gnb_name", name)
	a.metrics.Procedure(ProcNGSetup, Success, 0)
}

// checkSetup validates an NG Setup Request and says whether one of its
// broadcast PLMNs is served.
func (a *AMF) checkSetup(req *ngapmsg.NGSetupRequest) (id, name string, plmnOK bool, err error) {
	if req.GlobalRANNodeID == nil || req.SupportedTAList == nil || req.DefaultPagingDRX == nil {
		return "", "", false, errors.New("mandatory IE missing")
	}
	gg, ok := req.GlobalRANNodeID.Choice.(*ie.GlobalGNBID)
	if !ok || gg.PLMNIdentity == nil || gg.GNBID == nil {
		return "", "", false, errors.New("Global RAN Node ID is not a gNB ID")
	}
	gid, ok := gg.GNBID.Choice.(*ie.GNBIDForGNBID)
	if !ok || gid.Value.BitLength < 22 || gid.Value.BitLength > 32 {
		return "", "", false, errors.New("gNB ID is not a 22 to 32 bit string")
	}
	mcc, mnc, err := decodePLMN(gg.PLMNIdentity.Value)
	if err != nil {
		return "", "", false, fmt.Errorf("Global gNB ID: %w", err)
	}
	id = fmt.Sprintf("%s-%s-%x/%d", mcc, mnc, gid.Value.Bytes, gid.Value.BitLength)
	if req.RANNodeName != nil {
		name = string(req.RANNodeName.Value)
	}
	for _, ta := range req.SupportedTAList.List {
		if ta.BroadcastPLMNList == nil {
			continue
		}
		for _, bp := range ta.BroadcastPLMNList.List {
			if bp.PLMNIdentity != nil && string(bp.PLMNIdentity.Value) == string(a.p.plmn[:]) {
				plmnOK = true
			}
		}
	}
	return id, name, plmnOK, nil
}

func (a *AMF) ngSetupFailure(g *gnb, cause aper.Enumerated, misc bool) {
	c := &ie.Cause{Choice: &ie.CauseProtocol{Value: cause}}
	if misc {
		c = &ie.Cause{Choice: &ie.CauseMisc{Value: cause}}
	}
	if err := a.send(g, &ngapmsg.NGSetupFailure{Cause: c}, nonUEStream); err != nil {
		g.log.Warn("amf: NG Setup Failure not sent", "err", err)
	}
	a.metrics.Reject(RejectNGSetup, uint8(cause))
	a.metrics.Procedure(ProcNGSetup, Reject, 0)
}

// ngReset handles an NG Reset from the gNB (TS 38.413 8.7.4.2.2): the UE
// connections it names, or all, lose their NG connection; the AMF
// acknowledges.
func (a *AMF) ngReset(g *gnb, msg *ngapmsg.NGReset) {
	if msg.ResetType == nil {
		a.dropNGAP(g, "NG Reset without Reset Type")
		return
	}
	var ues []*ue
	ack := &ngapmsg.NGResetAcknowledge{}
	a.mu.Lock()
	switch rt := msg.ResetType.Choice.(type) {
	case *ie.ResetAll:
		for _, u := range g.byRAN {
			ues = append(ues, u)
		}
	case *ie.UEAssociatedLogicalNGConnectionList:
		ack.UEAssociatedLogicalNGConnectionList = rt
		for _, it := range rt.List {
			var u *ue
			if it.AMFUENGAPID != nil {
				u = a.byAMFID[it.AMFUENGAPID.Value]
			} else if it.RANUENGAPID != nil {
				u = g.byRAN[it.RANUENGAPID.Value]
			}
			if u != nil {
				ues = append(ues, u)
			}
		}
	default:
		a.mu.Unlock()
		a.dropNGAP(g, "NG Reset with unknown Reset Type")
		return
	}
	a.mu.Unlock()
	g.log.Info("amf: NG Reset", "cause", causeString(msg.Cause), "ues", len(ues))
	for _, u := range ues {
		a.post(u, func() {
			if u.g == g {
				a.connectionLost(u)
			}
		})
	}
	if err := a.send(g, ack, nonUEStream); err != nil {
		g.log.Warn("amf: NG Reset Acknowledge not sent", "err", err)
	}
}

// initialUEMessage starts a UE context for an Initial UE Message
// (TS 38.413 8.6.1).
func (a *AMF) initialUEMessage(g *gnb, msg *ngapmsg.InitialUEMessage) {
	if msg.RANUENGAPID == nil || msg.NASPDU == nil || msg.UserLocationInformation == nil || msg.RRCEstablishmentCause == nil {
		a.dropNGAP(g, "Initial UE Message without a mandatory IE")
		return
	}
	u := a.newUE(g, msg.RANUENGAPID.Value)
	nas := msg.NASPDU.Value
	a.post(u, func() { a.initialNAS(u, nas) })
}

// send encodes and writes one NGAP message.
func (a *AMF) send(g *gnb, m ngapmsg.Message, stream uint16) error {
	b, err := m.MarshalBinary()
	if err != nil {
		return fmt.Errorf("amf: encode NGAP procedure %d: %w", m.ProcedureCode(), err)
	}
	if err := g.conn.WriteMsg(b, stream); err != nil {
		return fmt.Errorf("amf: send NGAP procedure %d: %w", m.ProcedureCode(), err)
	}
	return nil
}

// sendUE writes a UE-associated message on the UE's connection.
func (a *AMF) sendUE(u *ue, m ngapmsg.Message) error {
	if u.g == nil {
		return errors.New("amf: UE has no NG signalling connection")
	}
	return a.send(u.g, m, u.g.ueStream)
}

// sendDownlinkNAS carries a NAS PDU to the UE (TS 38.413 8.6.2).
func (a *AMF) sendDownlinkNAS(u *ue, pdu []byte) error {
	return a.sendUE(u, &ngapmsg.DownlinkNASTransport{
		AMFUENGAPID: &ie.AMFUENGAPID{Value: u.amfID},
		RANUENGAPID: &ie.RANUENGAPID{Value: u.ranID},
		NASPDU:      &ie.NASPDU{Value: pdu},
	})
}

// sendInitialContextSetup sends the Initial Context Setup Request
// (TS 38.413 8.3.1) with KgNB and the REGISTRATION ACCEPT.
func (a *AMF) sendInitialContextSetup(u *ue, kgnb [32]byte, nasPDU []byte) error {
	allowed := make([]ie.AllowedNSSAIItem, 0, len(a.p.slices))
	for _, s := range a.p.slices {
		allowed = append(allowed, ie.AllowedNSSAIItem{SNSSAI: ngapSNSSAI(s)})
	}
	return a.sendUE(u, &ngapmsg.InitialContextSetupRequest{
		AMFUENGAPID:            &ie.AMFUENGAPID{Value: u.amfID},
		RANUENGAPID:            &ie.RANUENGAPID{Value: u.ranID},
		GUAMI:                  a.ngapGUAMI(),
		AllowedNSSAI:           &ie.AllowedNSSAI{List: allowed},
		UESecurityCapabilities: ngapSecurityCapabilities(u),
		SecurityKey:            &ie.SecurityKey{Value: aper.BitString{Bytes: append([]byte(nil), kgnb[:]...), BitLength: 256}},
		NASPDU:                 &ie.NASPDU{Value: nasPDU},
	})
}

// sendRelease sends UE Context Release Command (TS 38.413 8.3.3).
func (a *AMF) sendRelease(u *ue, cause *ie.Cause) error {
	return a.sendUE(u, &ngapmsg.UEContextReleaseCommand{
		UENGAPIDs: &ie.UENGAPIDs{Choice: &ie.UENGAPIDPair{
			AMFUENGAPID: &ie.AMFUENGAPID{Value: u.amfID},
			RANUENGAPID: &ie.RANUENGAPID{Value: u.ranID},
		}},
		Cause: cause,
	})
}

// nasCause is an NGAP cause of the NAS group (TS 38.413 9.3.1.2).
func nasCause(v aper.Enumerated) *ie.Cause { return &ie.Cause{Choice: &ie.CauseNas{Value: v}} }

func (a *AMF) ngapGUAMI() *ie.GUAMI {
	set := a.cfg.GUAMI.SetID
	return &ie.GUAMI{
		PLMNIdentity: &ie.PLMNIdentity{Value: a.p.plmn[:]},
		AMFRegionID:  &ie.AMFRegionID{Value: aper.BitString{Bytes: []byte{a.cfg.GUAMI.RegionID}, BitLength: 8}},
		AMFSetID:     &ie.AMFSetID{Value: aper.BitString{Bytes: []byte{byte(set >> 2), byte(set << 6)}, BitLength: 10}},
		AMFPointer:   &ie.AMFPointer{Value: aper.BitString{Bytes: []byte{a.cfg.GUAMI.Pointer << 2}, BitLength: 6}},
	}
}

func ngapSNSSAI(s snssai) *ie.SNSSAI {
	out := &ie.SNSSAI{SST: &ie.SST{Value: aper.OctetString{s.sst}}}
	if s.hasSD {
		out.SD = &ie.SD{Value: aper.OctetString(s.sd[:])}
	}
	return out
}

// ngapSecurityCapabilities maps the UE's NAS security capability to the
// NGAP UE Security Capabilities (TS 38.413 9.3.1.86): 16-bit strings whose
// first bit is 128-NEA1/NIA1 (NEA0/NIA0 are implied), and the E-UTRA
// algorithms.
func ngapSecurityCapabilities(u *ue) *ie.UESecurityCapabilities {
	c := u.secCap
	bits := func(b1, b2, b3 bool) aper.BitString {
		var v byte
		if b1 {
			v |= 0x80
		}
		if b2 {
			v |= 0x40
		}
		if b3 {
			v |= 0x20
		}
		return aper.BitString{Bytes: []byte{v, 0}, BitLength: 16}
	}
	return &ie.UESecurityCapabilities{
		NRencryptionAlgorithms:             &ie.NRencryptionAlgorithms{Value: bits(c.EA1_128_5G, c.EA2_128_5G, c.EA3_128_5G)},
		NRintegrityProtectionAlgorithms:    &ie.NRintegrityProtectionAlgorithms{Value: bits(c.IA1_128_5G, c.IA2_128_5G, c.IA3_128_5G)},
		EUTRAencryptionAlgorithms:          &ie.EUTRAencryptionAlgorithms{Value: bits(c.EEA1_128, c.EEA2_128, c.EEA3_128)},
		EUTRAintegrityProtectionAlgorithms: &ie.EUTRAintegrityProtectionAlgorithms{Value: bits(c.EIA1_128, c.EIA2_128, c.EIA3_128)},
	}
}

// causeString names an NGAP cause for logs.
func causeString(c *ie.Cause) string {
	if c == nil {
		return "none"
	}
	switch v := c.Choice.(type) {
	case *ie.CauseRadioNetwork:
		return fmt.Sprintf("radioNetwork(%d)", v.Value)
	case *ie.CauseTransport:
		return fmt.Sprintf("transport(%d)", v.Value)
	case *ie.CauseNas:
		return fmt.Sprintf("nas(%d)", v.Value)
	case *ie.CauseProtocol:
		return fmt.Sprintf("protocol(%d)", v.Value)
	case *ie.CauseMisc:
		return fmt.Sprintf("misc(%d)", v.Value)
	}
	return "other"
}
