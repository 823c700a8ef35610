package upf

import (
	"context"
	"testing"

	"github.com/wmnsk/go-pfcp/ie"
	"github.com/wmnsk/go-pfcp/message"

	"github.com/simgate/simgate/gtp/pfcp"
)

// FuzzSessionHandlers runs the UPF's session handlers on arbitrary decoded
// messages from an associated SMF, without the node's panic guard. After
// each message the table's indexes must agree.
func FuzzSessionHandlers(f *testing.F) {
	u := startUPF(f, testConfig(), nil)
	c := startSMF(f, smfOpts{})
	associate(f, c, u)
	peer := c.Node().LocalAddr()

	seed := func(m message.Message) {
		b := make([]byte, m.MarshalLen())
		if err := m.MarshalTo(b); err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	req := ueReq(u, 1)
	user, _ := req.User.IE()
	ul := pfcp.PDR{ID: 1, Precedence: 255, Source: pfcp.InterfaceAccess, ChooseFTEID: true, ChooseID: 1, UEAddr: req.UEAddr, QFI: 9, RemoveOuterHeader: true, FARID: 1, QERIDs: []uint32{1}}
	dl := pfcp.PDR{ID: 2, Precedence: 255, Source: pfcp.InterfaceCore, UEAddr: req.UEAddr, UEAddrIsDst: true, FARID: 2}
	ulFAR := pfcp.FAR{ID: 1, Action: pfcp.ActionForward, Forwarding: &pfcp.Forwarding{Destination: pfcp.InterfaceCore}}
	dlFAR := pfcp.FAR{ID: 2, Action: pfcp.ActionForward, Forwarding: &pfcp.Forwarding{Destination: pfcp.InterfaceAccess, OuterHeader: pfcp.FTEID{TEID: 5, Addr: gnbIP}}}
	seed(message.NewSessionEstablishmentRequest(0, 0, 0, 1, 0, c.Node().NodeIDIE(), pfcp.FSEID{SEID: 1, Addr: smfIP}.IE(),
		ul.CreateIE(), dl.CreateIE(), ulFAR.CreateIE(), dlFAR.CreateIE(), req.QER.CreateIE(), user, ie.NewPDNType(1), ie.NewAPNDNN("internet")))
	seed(message.NewSessionModificationRequest(0, 0, 1, 2, 0,
		pfcp.FARUpdate{ID: 2, Action: pfcp.ActionBuffer}.IE(), ie.NewRemovePDR(ie.NewPDRID(2)), dl.CreateIE(), pfcp.FSEID{SEID: 2, Addr: smfIP}.IE()))
	seed(message.NewSessionDeletionRequest(0, 0, 1, 3, 0))

	ctx := context.Background()
	f.Fuzz(func(t *testing.T, b []byte) {
		m, err := message.Parse(b)
		if err != nil {
			return
		}
		// Aim session related requests at a session that exists.
		if all := u.table.Sessions(); len(all) > 0 && m.MessageType() != message.MsgTypeSessionEstablishmentRequest {
			if h, ok := m.(interface{ SetSEID(uint64) }); ok && len(b) > 0 && b[len(b)-1]&1 == 0 {
				h.SetSEID(all[0].UPSEID)
			}
		}
		var resp message.Message
		switch m.MessageType() {
		case message.MsgTypeSessionEstablishmentRequest:
			resp = u.establish(ctx, u.node, peer, m)
		case message.MsgTypeSessionModificationRequest:
			resp = u.modify(ctx, u.node, peer, m)
		case message.MsgTypeSessionDeletionRequest:
			resp = u.delete(ctx, u.node, peer, m)
		default:
			return
		}
		if resp == nil {
			t.Fatal("no response")
		}
		if err := resp.MarshalTo(make([]byte, resp.MarshalLen())); err != nil {
			t.Fatalf("response does not encode: %v", err)
		}
		checkTable(t, u)
		if u.table.Len() > 512 {
			u.onPeerEvent(pfcp.PeerEvent{Kind: pfcp.PeerReleased, Association: pfcp.Association{Peer: peer}})
		}
	})
}

// checkTable: every session is found under each of its keys.
func checkTable(t *testing.T, u *UPF) {
	t.Helper()
	all := u.table.Sessions()
	if len(all) != u.table.Len() {
		t.Fatalf("Len %d, %d sessions", u.table.Len(), len(all))
	}
	for _, s := range all {
		for _, k := range s.teids {
			if got, ok := u.table.LookupByTEID(k); !ok || got != s {
				t.Fatalf("session %#x not found by TEID %#x", s.UPSEID, k)
			}
		}
		if s.UEAddr.IsValid() {
			if got, ok := u.table.LookupByAddr(s.UEAddr); !ok || got != s {
				t.Fatalf("session %#x not found by address %s", s.UPSEID, s.UEAddr)
			}
		}
		if k := (cpKey{s.Peer, s.CP.SEID}); u.byCP[k] != s {
			t.Fatalf("session %#x not found by CP SEID %#x", s.UPSEID, s.CP.SEID)
		}
	}
}
