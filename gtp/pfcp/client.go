package pfcp

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"net/netip"
	"sync/atomic"

	"github.com/wmnsk/go-pfcp/ie"
	"github.com/wmnsk/go-pfcp/message"
)

// Rule IDs the Client gives the rules of each session it establishes.
const (
	PDRUplink   uint16 = 1 // source Access: G-PDUs from the gNB
	PDRDownlink uint16 = 2 // source Core: packets to the UE
	FARUplink   uint32 = 1 // forward to Core
	FARDownlink uint32 = 2 // forward to Access (the gNB), or buffer/drop
	QERSession  uint32 = 1
)

// precedence of the client's PDRs (TS 29.244 8.2.11: lower is higher).
const precedence = 255

// Client is the CP function's side of N4 (the SMF's): associations with UP
// functions and the PFCP sessions on them.
type Client struct {
	node      *Node
	fseidAddr netip.Addr
	seid      atomic.Uint64
}

// NewClient returns a client on node. The CP F-SEID carries the node's
// socket address, or its Node ID when the socket is bound to the unspecified
// address and the Node ID is an IP address.
func NewClient(node *Node) (*Client, error) {
	a := node.LocalAddr().Addr()
	if !a.IsValid() || a.IsUnspecified() {
		var err error
		if a, err = netip.ParseAddr(node.NodeID()); err != nil {
			return nil, errors.New("pfcp: client: no IP address for the CP F-SEID: bind to a specific address or use an IP Node ID")
		}
	}
	c := &Client{node: node, fseidAddr: a.Unmap()}
	c.seid.Store(rand.Uint64() >> 1)
	return c, nil
}

// Node is the client's node.
func (c *Client) Node() *Node { return c.node }

// Associate sets up (or returns) the PFCP association with a UP function.
func (c *Client) Associate(ctx context.Context, peer netip.AddrPort) (Association, error) {
	return c.node.Associate(ctx, peer)
}

// Release releases the association with a UP function.
func (c *Client) Release(ctx context.Context, peer netip.AddrPort) error {
	return c.node.Release(ctx, peer)
}

// SessionRequest describes the PFCP session for one PDU session.
type SessionRequest struct {
	Peer   netip.AddrPort // the UP function's PFCP address
	CPSEID uint64         // 0: the client picks one
	User   UserID         // sent in the User ID IE when not empty
	UEAddr netip.Addr     // the UE's IP address (required)
	// PDNType (TS 29.244 8.2.79); 0: IPv4 or IPv6 after UEAddr.
	PDNType uint8
	DNN     string // sent in the APN/DNN IE when not empty
	QFI     uint8  // QoS flow of the session; 0: none
	// UplinkFTEID is the UP function's N3 F-TEID; zero: the UP function
	// chooses it (CH) and returns it in a Created PDR.
	UplinkFTEID FTEID
	// GNB is the gNB's N3 F-TEID for downlink. Zero: downlink is buffered
	// (or dropped, with DropDownlink) until ModifySession supplies it.
	GNB          FTEID
	DropDownlink bool
	// QER, when set, is created with ID QERSession and applied to both PDRs.
	QER *QER
}

// Session is an established PFCP session as the CP function knows it.
type Session struct {
	Peer   netip.AddrPort
	CP     FSEID // ours
	UP     FSEID // the UP function's
	Uplink FTEID // the UP function's N3 F-TEID the gNB sends uplink to
}

// SessionUpdate changes a session's downlink tunnel.
type SessionUpdate struct {
	// GNB is the gNB's N3 F-TEID. Zero: downlink is buffered again (the
	// access network connection was released).
	GNB FTEID
}

func (c *Client) nextSEID() uint64 {
	for {
		if s := c.seid.Add(1); s != 0 {
			return s
		}
	}
}

// rules builds the PDRs, FARs and QER of req (TS 29.244 5.2).
func (req *SessionRequest) rules() []*ie.IE {
	var qers []uint32
	if req.QER != nil {
		qers = []uint32{QERSession}
	}
	ul := PDR{
		ID: PDRUplink, Precedence: precedence, Source: InterfaceAccess,
		UEAddr: req.UEAddr, QFI: req.QFI,
		RemoveOuterHeader: true, OuterHeaderRemoval: RemoveGTPUUDPIPv4,
		FARID: FARUplink, QERIDs: qers,
	}
	if req.UplinkFTEID.IsZero() {
		ul.ChooseFTEID = true
		ul.ChooseIPv6 = req.UEAddr.Is6() && !req.UEAddr.Is4In6()
	} else {
		ul.LocalFTEID = req.UplinkFTEID
		if req.UplinkFTEID.Addr.Unmap().Is6() {
			ul.OuterHeaderRemoval = RemoveGTPUUDPIPv6
		}
	}
	dl := PDR{
		ID: PDRDownlink, Precedence: precedence, Source: InterfaceCore,
		UEAddr: req.UEAddr, UEAddrIsDst: true, FARID: FARDownlink, QERIDs: qers,
	}
	ulFAR := FAR{ID: FARUplink, Action: ActionForward, Forwarding: &Forwarding{Destination: InterfaceCore}}
	dlFAR := FAR{ID: FARDownlink, Action: ActionBuffer}
	switch {
	case !req.GNB.IsZero():
		dlFAR.Action = ActionForward
		dlFAR.Forwarding = &Forwarding{Destination: InterfaceAccess, OuterHeader: req.GNB}
	case req.DropDownlink:
		dlFAR.Action = ActionDrop
	}
	ies := []*ie.IE{ul.CreateIE(), dl.CreateIE(), ulFAR.CreateIE(), dlFAR.CreateIE()}
	if req.QER != nil {
		q := *req.QER
		q.ID = QERSession
		ies = append(ies, q.CreateIE())
	}
	return ies
}

// EstablishSession creates the PFCP session for req on the UP function
// (TS 29.244 7.5.2, 7.5.3). A rejection is a *CauseError.
func (c *Client) EstablishSession(ctx context.Context, req SessionRequest) (Session, error) {
	fail := func(err error) (Session, error) {
		return Session{}, fmt.Errorf("pfcp: establish session for %s: %w", req.UEAddr, err)
	}
	if !req.Peer.IsValid() {
		return fail(errors.New("no UP function address"))
	}
	if !req.UEAddr.IsValid() {
		return fail(errors.New("no UE address"))
	}
	if req.QFI > 63 {
		return fail(fmt.Errorf("QFI %d above 63", req.QFI))
	}
	userID, err := req.User.IE()
	if err != nil {
		return fail(err)
	}
	pdn := req.PDNType
	if pdn == 0 {
		pdn = ie.PDNTypeIPv4
		if a := req.UEAddr.Unmap(); a.Is6() {
			pdn = ie.PDNTypeIPv6
		}
	}
	cp := FSEID{SEID: req.CPSEID, Addr: c.fseidAddr}
	if cp.SEID == 0 {
		cp.SEID = c.nextSEID()
	}
	ies := append([]*ie.IE{c.node.nodeID, cp.IE()}, req.rules()...)
	ies = append(ies, ie.NewPDNType(pdn))
	if userID != nil {
		ies = append(ies, userID)
	}
	if req.DNN != "" {
		ies = append(ies, ie.NewAPNDNN(req.DNN))
	}
	// TS 29.244 7.2.2.4.2: the SEID of an establishment request is 0.
	resp, err := c.node.Request(ctx, req.Peer, message.NewSessionEstablishmentRequest(0, 0, 0, 0, 0, ies...))
	if err != nil {
		return fail(err)
	}
	r, ok := resp.(*message.SessionEstablishmentResponse)
	if !ok {
		return fail(ErrUnexpectedResponse)
	}
	if err := causeOf("Session Establishment Response", r.Cause, r.OffendingIE); err != nil {
		return fail(err)
	}
	s := Session{Peer: req.Peer, CP: cp, Uplink: req.UplinkFTEID}
	if r.SEID() != cp.SEID {
		return fail(fmt.Errorf("response SEID %#x is not our SEID %#x", r.SEID(), cp.SEID))
	}
	if s.UP, err = ParseFSEID(r.UPFSEID); err != nil {
		return fail(err)
	}
	for _, cr := range r.CreatedPDR {
		id, f, err := parseCreatedPDR(cr)
		if err != nil {
			return fail(err)
		}
		if id == PDRUplink {
			s.Uplink = f
		}
	}
	if s.Uplink.IsZero() {
		return fail(errors.New("no Created PDR carries the uplink F-TEID"))
	}
	return s, nil
}

// parseCreatedPDR reads the PDR ID and local F-TEID of a Created PDR
// (TS 29.244 7.5.3.2).
func parseCreatedPDR(i *ie.IE) (uint16, FTEID, error) {
	children, err := i.CreatedPDR()
	if err != nil {
		return 0, FTEID{}, incorrect(ie.CreatedPDR, err)
	}
	var id uint16
	var f FTEID
	haveID := false
	for _, c := range children {
		switch c.Type {
		case ie.PDRID:
			if id, err = c.PDRID(); err != nil {
				return 0, FTEID{}, incorrect(ie.PDRID, err)
			}
			haveID = true
		case ie.FTEID:
			if f, err = ParseFTEID(c); err != nil {
				return 0, FTEID{}, err
			}
		}
	}
	if !haveID {
		return 0, FTEID{}, missing(ie.PDRID)
	}
	return id, f, nil
}

// ModifySession points the session's downlink at the gNB's F-TEID (or back
// to buffering) with an Update FAR (TS 29.244 7.5.4, 7.5.5).
func (c *Client) ModifySession(ctx context.Context, s Session, u SessionUpdate) error {
	upd := FARUpdate{ID: FARDownlink, Action: ActionBuffer}
	if !u.GNB.IsZero() {
		upd.Action = ActionForward
		upd.Forwarding = &Forwarding{Destination: InterfaceAccess, OuterHeader: u.GNB}
	}
	resp, err := c.node.Request(ctx, s.Peer, message.NewSessionModificationRequest(0, 0, s.UP.SEID, 0, 0, upd.IE()))
	if err != nil {
		return fmt.Errorf("pfcp: modify session %#x: %w", s.CP.SEID, err)
	}
	r, ok := resp.(*message.SessionModificationResponse)
	if !ok {
		return fmt.Errorf("pfcp: modify session %#x: %w", s.CP.SEID, ErrUnexpectedResponse)
	}
	if err := causeOf("Session Modification Response", r.Cause, r.OffendingIE); err != nil {
		return fmt.Errorf("pfcp: modify session %#x: %w", s.CP.SEID, err)
	}
	return nil
}

// DeleteSession removes the session from the UP function (TS 29.244 7.5.6,
// 7.5.7).
func (c *Client) DeleteSession(ctx context.Context, s Session) error {
	resp, err := c.node.Request(ctx, s.Peer, message.NewSessionDeletionRequest(0, 0, s.UP.SEID, 0, 0))
	if err != nil {
		return fmt.Errorf("pfcp: delete session %#x: %w", s.CP.SEID, err)
	}
	r, ok := resp.(*message.SessionDeletionResponse)
	if !ok {
		return fmt.Errorf("pfcp: delete session %#x: %w", s.CP.SEID, ErrUnexpectedResponse)
	}
	if err := causeOf("Session Deletion Response", r.Cause, r.OffendingIE); err != nil {
		return fmt.Errorf("pfcp: delete session %#x: %w", s.CP.SEID, err)
	}
	return nil
}
