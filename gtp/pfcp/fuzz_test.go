package pfcp

import (
	"context"
	"net"
	"net/netip"
	"runtime"
	"testing"
	"time"

	"github.com/wmnsk/go-pfcp/ie"
	"github.com/wmnsk/go-pfcp/message"
)

// nullConn is a socket that receives nothing and loses every write.
type nullConn struct{ done chan struct{} }

func (c *nullConn) ReadFromUDPAddrPort([]byte) (int, netip.AddrPort, error) {
	<-c.done
	return 0, netip.AddrPort{}, net.ErrClosed
}
func (c *nullConn) WriteToUDPAddrPort(b []byte, _ netip.AddrPort) (int, error) { return len(b), nil }
func (c *nullConn) LocalAddr() net.Addr {
	return &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1), Port: DefaultPort}
}
func (c *nullConn) Close() error {
	select {
	case <-c.done:
	default:
		close(c.done)
	}
	return nil
}

// seedMessages are valid messages of the kinds a node receives.
func seedMessages(tb testing.TB) [][]byte {
	nodeID, _ := NodeIDIE("127.0.0.9")
	req := SessionRequest{
		UEAddr: netip.MustParseAddr("10.45.0.1"), QFI: 9,
		GNB: FTEID{TEID: 7, Addr: netip.MustParseAddr("127.0.0.4")},
		QER: &QER{GateULOpen: true, MBRUplink: 1},
	}
	user, _ := UserID{IMSI: "001010000000001", IMEI: "490154203237518", MSISDN: "819012345678", NAI: "x@y"}.IE()
	est := append([]*ie.IE{nodeID, FSEID{SEID: 1, Addr: netip.MustParseAddr("127.0.0.9")}.IE()}, req.rules()...)
	est = append(est, user, ie.NewPDNType(1), ie.NewAPNDNN("internet"))
	msgs := []message.Message{
		message.NewHeartbeatRequest(1, recoveryIE(5), nil),
		message.NewHeartbeatResponse(2, recoveryIE(5)),
		message.NewAssociationSetupRequest(3, nodeID, recoveryIE(5), ie.NewUPFunctionFeatures(0x10, 0)),
		message.NewAssociationSetupResponse(4, nodeID, ie.NewCause(1), recoveryIE(5)),
		message.NewAssociationReleaseRequest(5, nodeID),
		message.NewSessionEstablishmentRequest(0, 0, 0, 6, 0, est...),
		message.NewSessionModificationRequest(0, 0, 9, 7, 0, FARUpdate{ID: 2, Action: ActionForward, Forwarding: &Forwarding{OuterHeader: FTEID{TEID: 1, Addr: netip.MustParseAddr("127.0.0.4")}}}.IE()),
		message.NewSessionDeletionRequest(0, 0, 9, 8, 0),
		message.NewNodeReportRequest(9, nodeID, ie.NewNodeReportType(1)),
	}
	var out [][]byte
	for _, m := range msgs {
		b, err := marshal(m)
		if err != nil {
			tb.Fatal(err)
		}
		out = append(out, b)
	}
	return out
}

// FuzzReceive feeds datagrams to a node's receive path: header checks,
// duplicate cache, go-pfcp decoding, the node's own handlers and a session
// handler that decodes every rule. Nothing may panic.
func FuzzReceive(f *testing.F) {
	for _, b := range seedMessages(f) {
		f.Add(b)
	}
	f.Add([]byte{0x40, 0x01, 0x00, 0x04, 0, 0, 1, 0})
	decodeAll := func(_ context.Context, n *Node, _ netip.AddrPort, m message.Message) message.Message {
		if r, ok := m.(*message.SessionEstablishmentRequest); ok {
			_, _ = ParseFSEID(r.CPFSEID)
			if r.UserID != nil {
				_, _ = ParseUserID(r.UserID)
			}
			for _, i := range r.CreatePDR {
				_, _ = ParseCreatePDR(i)
			}
			for _, i := range r.CreateFAR {
				_, _ = ParseCreateFAR(i)
			}
			for _, i := range r.CreateQER {
				_, _ = ParseCreateQER(i)
			}
		}
		if r, ok := m.(*message.SessionModificationRequest); ok {
			for _, i := range r.UpdateFAR {
				_, _ = ParseUpdateFAR(i)
			}
		}
		return rejection(m.MessageType(), m.Sequence(), n.NodeIDIE(), CauseRequestRejected, 0)
	}
	ctx, cancel := context.WithCancel(context.Background())
	n, err := Start(ctx, &nullConn{done: make(chan struct{})}, Config{
		HeartbeatInterval: -1, DuplicateWindow: 10 * time.Millisecond,
		Handlers: map[uint8]Handler{
			message.MsgTypeSessionEstablishmentRequest: decodeAll,
			message.MsgTypeSessionModificationRequest:  decodeAll,
		},
	})
	if err != nil {
		cancel()
		f.Fatal(err)
	}
	f.Cleanup(func() {
		cancel()
		<-n.Done()
	})
	peer := netip.MustParseAddrPort("127.0.0.9:8805")
	f.Fuzz(func(t *testing.T, b []byte) {
		n.receive(b, peer)
		for len(n.sem) > 0 { // let the handler finish: a panic is this input's
			runtime.Gosched()
		}
	})
}

// FuzzIEs decodes arbitrary IEs with every decoder of this package.
func FuzzIEs(f *testing.F) {
	for _, b := range seedMessages(f) {
		if len(b) > 16 {
			f.Add(b[16:])
			f.Add(b[8:])
		}
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		ies, err := ie.ParseMultiIEs(b)
		if err != nil {
			return
		}
		for _, i := range ies {
			_, _ = ParseCreatePDR(i)
			_, _ = ParseCreateFAR(i)
			_, _ = ParseCreateQER(i)
			_, _ = ParseUpdateFAR(i)
			_, _ = ParseFSEID(i)
			_, _ = ParseFTEID(i)
			_, _, _ = parseCreatedPDR(i)
			_, _ = ParseRemovePDR(i)
			_, _ = ParseRemoveFAR(i)
			_, _ = parseRecovery(i)
			_, _ = parseOuterHeaderCreation(i.Payload)
			if u, err := ParseUserID(i); err == nil {
				if enc, err := u.IE(); err == nil && enc != nil {
					if back, err := ParseUserID(enc); err != nil || back != u {
						t.Fatalf("User ID %+v re-encoded decodes as %+v, %v", u, back, err)
					}
				}
			}
			if id, err := ParseNodeID(i); err == nil {
				if enc, err := NodeIDIE(id); err == nil {
					if back, err := ParseNodeID(enc); err != nil || back != id {
						t.Fatalf("Node ID %q re-encoded decodes as %q, %v", id, back, err)
					}
				}
			}
		}
	})
}
