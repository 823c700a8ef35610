package smf

import (
	"context"
	"errors"
	"net/netip"
	"sync"
	"testing"

	"github.com/free5gc/nas/message"

	"github.com/simgate/simgate/gtp/pfcp"
)

// memN4 is an in-memory UPF for the fuzz targets, where a socket per input
// would be too slow: it keeps the sessions it was asked to hold.
type memN4 struct {
	mu       sync.Mutex
	next     uint32
	sessions map[uint64]pfcp.SessionRequest
}

func newMemN4() *memN4 { return &memN4{sessions: map[uint64]pfcp.SessionRequest{}} }

func (m *memN4) Associate(context.Context, netip.AddrPort) (pfcp.Association, error) {
	return pfcp.Association{}, nil
}

func (m *memN4) EstablishSession(_ context.Context, req pfcp.SessionRequest) (pfcp.Session, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	for _, o := range m.sessions {
		if o.UEAddr == req.UEAddr {
			return pfcp.Session{}, &pfcp.CauseError{Cause: pfcp.CauseRuleCreationModificationFailure}
		}
	}
	m.next++
	seid := uint64(m.next)
	m.sessions[seid] = req
	return pfcp.Session{Peer: req.Peer, UP: pfcp.FSEID{SEID: seid, Addr: loopback},
		Uplink: pfcp.FTEID{TEID: m.next, Addr: loopback}}, nil
}

func (m *memN4) ModifySession(_ context.Context, s pfcp.Session, _ pfcp.SessionUpdate) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if _, ok := m.sessions[s.UP.SEID]; !ok {
		return &pfcp.CauseError{Cause: pfcp.CauseSessionContextNotFound}
	}
	return nil
}

func (m *memN4) DeleteSession(_ context.Context, s pfcp.Session) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if _, ok := m.sessions[s.UP.SEID]; !ok {
		return &pfcp.CauseError{Cause: pfcp.CauseSessionContextNotFound}
	}
	delete(m.sessions, s.UP.SEID)
	return nil
}

func (m *memN4) len() int {
	m.mu.Lock()
	defer m.mu.Unlock()
	return len(m.sessions)
}

func fuzzSMF(t testing.TB) (*SMF, *memN4) {
	t.Helper()
	n4 := newMemN4()
	s, err := New(DefaultConfig(), n4, nil)
	if err != nil {
		t.Fatal(err)
	}
	return s, n4
}

// FuzzCreateSession: any N1 gets an error or a well-formed 5GSM answer; an
// accept comes with an N2 transfer and a session, a reject with neither.
func FuzzCreateSession(f *testing.F) {
	f.Add(estReq(f, 1, 1, 1), uint8(1))
	f.Add(estReq(f, 1, 1, 3), uint8(1))
	f.Add(estReq(f, 2, 0, 2), uint8(2))
	f.Add(relReq(f, 1, 1), uint8(1))
	f.Add([]byte{0x2e, 0x01, 0x01, 0xc1, 0xff, 0xff, 0x91, 0xa1, 0x28, 0x01, 0x00}, uint8(1))
	s, n4 := fuzzSMF(f)
	ctx := context.Background()
	f.Fuzz(func(t *testing.T, n1 []byte, psi uint8) {
		r, err := s.CreateSession(ctx, ident(1), psi, 1, "", "internet", n1)
		if err != nil {
			if r.N1 != nil || r.N2 != nil {
				t.Fatalf("error %v with a result", err)
			}
			return
		}
		m, err := message.ParseGSM(r.N1)
		if err != nil {
			t.Fatalf("N1 %x does not decode: %v", r.N1, err)
		}
		switch m.(type) {
		case *message.PDUSessEstAccept:
			if r.N2 == nil || n4.len() != 1 {
				t.Fatalf("accept with N2 %x and %d UPF sessions", r.N2, n4.len())
			}
		case *message.PDUSessEstRej:
			if r.N2 != nil {
				t.Fatalf("reject with N2 %x", r.N2)
			}
		default:
			t.Fatalf("N1 is %T", m)
		}
		if err := s.ReleaseAll(ctx, ident(1).SUPI); err != nil {
			t.Fatal(err)
		}
		if n4.len() != 0 || s.UEs() != 0 {
			t.Fatalf("state left: %d UPF sessions, %d UEs", n4.len(), s.UEs())
		}
	})
}

// FuzzReleaseSession: any N1 against an established session gets an error
// or a release command, reject or empty result.
func FuzzReleaseSession(f *testing.F) {
	f.Add(relReq(f, 1, 1))
	f.Add(relReq(f, 1, 0))
	f.Add(relComplete(f, 1, 1))
	f.Add(estReq(f, 1, 1, 1))
	f.Add([]byte{0x2e, 0x01, 0x01, 0xd1, 0x59})
	s, _ := fuzzSMF(f)
	ctx := context.Background()
	f.Fuzz(func(t *testing.T, n1 []byte) {
		defer s.ReleaseAll(ctx, ident(1).SUPI)
		if _, err := s.CreateSession(ctx, ident(1), 1, 1, "", "internet", estReq(t, 1, 1, 1)); err != nil {
			t.Fatal(err)
		}
		r, err := s.ReleaseSession(ctx, ident(1).SUPI, 1, n1)
		if err != nil {
			if !errors.Is(err, ErrMalformed) && !errors.Is(err, ErrNoSession) {
				t.Fatalf("error %v is neither ErrMalformed nor ErrNoSession", err)
			}
			return
		}
		if r.N1 == nil {
			return // a complete
		}
		m, err := message.ParseGSM(r.N1)
		if err != nil {
			t.Fatalf("N1 %x does not decode: %v", r.N1, err)
		}
		switch m.(type) {
		case *message.PDUSessRelCmd:
			if r.N2 == nil {
				t.Fatal("release command without N2")
			}
		case *message.PDUSessRelRej:
		default:
			t.Fatalf("N1 is %T", m)
		}
	})
}

// FuzzActivateSession: any N2 either activates the session with the
// F-TEID it names or is refused with ErrMalformed.
func FuzzActivateSession(f *testing.F) {
	f.Add(gnbResponse(f, pfcp.FTEID{TEID: 0x1234, Addr: loopback}))
	f.Add(gnbResponse(f, pfcp.FTEID{TEID: 1, Addr: netip.MustParseAddr("2001:db8::1")}))
	f.Add([]byte{0x00})
	s, _ := fuzzSMF(f)
	ctx := context.Background()
	if _, err := s.CreateSession(ctx, ident(1), 1, 1, "", "internet", estReq(f, 1, 1, 1)); err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, n2 []byte) {
		err := s.ActivateSession(ctx, ident(1).SUPI, 1, n2)
		if err != nil {
			if !errors.Is(err, ErrMalformed) {
				t.Fatalf("error %v is not ErrMalformed", err)
			}
			return
		}
		want, perr := parseSetupResponseTransfer(n2, defaultQFI)
		if info, _ := s.Session(ident(1).SUPI, 1); perr != nil || info.GNB != want || want.TEID == 0 {
			t.Fatalf("activated with %v, transfer says %v (%v)", info.GNB, want, perr)
		}
	})
}
