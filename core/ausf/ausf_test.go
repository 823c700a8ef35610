package ausf

import (
	"context"
	"encoding/hex"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/simgate/simgate/core/udm"
	"github.com/simgate/simgate/core/udr"
	"github.com/simgate/simgate/internal/vectors"
	"github.com/simgate/simgate/sim/aka"
	"github.com/simgate/simgate/sim/kdf"
	"github.com/simgate/simgate/sim/suci"
)

const snn = "5G:mnc001.mcc001.3gppnetwork.org"

var (
	testK   = [16]byte{0x46, 0x5b, 0x5c, 0xe8, 0xb1, 0x99, 0xb4, 0x9f, 0xaa, 0x5f, 0x0a, 0x2e, 0xe2, 0x38, 0xa6, 0xbc}
	testOPc = [16]byte{0xcd, 0x63, 0xcb, 0x71, 0x95, 0x4a, 0x9f, 0x4e, 0x48, 0xa5, 0x99, 0x4e, 0x37, 0xa0, 0x2b, 0xaf}
)

type env struct {
	store *udr.Store
	udm   *udm.UDM
	ausf  *AUSF
}

func newEnv(t testing.TB, o Options, sims ...udr.SIM) *env {
	t.Helper()
	dir := t.TempDir()
	st, err := udr.OpenDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	for _, s := range sims {
		s.K, s.OPc = testK, testOPc
		if err := st.AddSIM(s); err != nil {
			t.Fatal(err)
		}
	}
	keys, err := udm.OpenKeys(dir, nil)
	if err != nil {
		t.Fatal(err)
	}
	u, err := udm.New(udm.DefaultConfig(), st, keys, nil)
	if err != nil {
		t.Fatal(err)
	}
	return &env{store: st, udm: u, ausf: New(u, o)}
}

// ue is the UE side of 5G AKA: the USIM and the key derivations.
type ue struct{ usim *aka.USIM }

func newUE(t testing.TB) *ue {
	u, err := aka.NewUSIM(testK, testOPc, aka.USIMConfig{})
	if err != nil {
		t.Fatal(err)
	}
	return &ue{usim: u}
}

// answer returns RES* and the KSEAF the UE derives (TS 33.501 6.1.3.2
// step 7, A.2, A.4, A.6), or the USIM's error.
func (u *ue) answer(c Challenge) (res [16]byte, kseaf [32]byte, err error) {
	r, err := u.usim.Authenticate(c.RAND, c.AUTN, true)
	if err != nil {
		return res, kseaf, err
	}
	res, _ = kdf.RESStar(r.CK, r.IK, snn, c.RAND, r.RES[:])
	kausf, _ := kdf.KAUSF(r.CK, r.IK, snn, [6]byte(c.AUTN[:6]))
	kseaf, _ = kdf.KSEAF(kausf, snn)
	return res, kseaf, nil
}

func TestFiveGAKA(t *testing.T) {
	const imsi = "001010000000001"
	e := newEnv(t, Options{}, udr.SIM{IMSI: imsi})
	u := newUE(t)
	supi, _ := suci.NewIMSI(imsi, 2)
	ids := []udm.Identity{{SUPI: "imsi-" + imsi}}
	for _, p := range append([]udm.PublicKey{{Scheme: suci.SchemeNull}}, e.udm.Keys().Public()...) {
		s, err := suci.Conceal(supi, suci.Params{Scheme: p.Scheme, KeyID: p.ID, HNPublicKey: p.Key})
		if err != nil {
			t.Fatal(err)
		}
		ids = append(ids, udm.Identity{SUCI: &s})
	}
	for _, id := range ids {
		t.Run(id.String(), func(t *testing.T) {
			c, err := e.ausf.Authenticate(context.Background(), id, snn)
			if err != nil {
				t.Fatal(err)
			}
			if c.Method != udm.Method5GAKA {
				t.Fatalf("method %q", c.Method)
			}
			res, kseaf, err := u.answer(c)
			if err != nil {
				t.Fatal(err)
			}
			// The SEAF's check (step 10): HRES* == HXRES*.
			if kdf.HRESStar(c.RAND, res) != c.HXRESStar {
				t.Fatal("HRES* != HXRES*")
			}
			r, err := e.ausf.Confirm(context.Background(), c.ID, Response{RESStar: res})
			if err != nil {
				t.Fatal(err)
			}
			if r.SUPI != "imsi-"+imsi || r.KSEAF != kseaf {
				t.Errorf("result SUPI %s, KSEAF match %v", r.SUPI, r.KSEAF == kseaf)
			}
			if _, err := e.ausf.Confirm(context.Background(), c.ID, Response{RESStar: res}); !errors.Is(err, ErrUnknownContext) {
				t.Errorf("second confirm: %v, want ErrUnknownContext", err)
			}
		})
	}
	if n := e.ausf.Pending(); n != 0 {
		t.Errorf("%d contexts left pending", n)
	}
}

func TestWrongRESStar(t *testing.T) {
	e := newEnv(t, Options{}, udr.SIM{IMSI: "001010000000001"})
	u := newUE(t)
	c, err := e.ausf.Authenticate(context.Background(), udm.Identity{SUPI: "imsi-001010000000001"}, snn)
	if err != nil {
		t.Fatal(err)
	}
	res, _, err := u.answer(c)
	if err != nil {
		t.Fatal(err)
	}
	for i := range res {
		bad := res
		bad[i] ^= 0x01
		c2 := c
		if i > 0 {
			// Each try needs a live context.
			if c2, err = e.ausf.Authenticate(context.Background(), udm.Identity{SUPI: "imsi-001010000000001"}, snn); err != nil {
				t.Fatal(err)
			}
		}
		if _, err := e.ausf.Confirm(context.Background(), c2.ID, Response{RESStar: bad}); !errors.Is(err, ErrAuthFailed) {
			t.Fatalf("RES* with byte %d flipped: %v, want ErrAuthFailed", i, err)
		}
	}
	if _, err := e.ausf.Confirm(context.Background(), c.ID, Response{RESStar: res}); !errors.Is(err, ErrUnknownContext) {
		t.Errorf("a failed context stayed confirmable: %v", err)
	}
}

func TestUDMErrorsPass(t *testing.T) {
	e := newEnv(t, Options{}, udr.SIM{IMSI: "001010000000002", Status: udr.StatusInactive})
	for _, tc := range []struct {
		supi string
		want error
	}{
		{"imsi-001010000000009", udm.ErrUnknownSubscriber},
		{"imsi-001010000000002", udm.ErrInactive},
	} {
		if _, err := e.ausf.Authenticate(context.Background(), udm.Identity{SUPI: tc.supi}, snn); !errors.Is(err, tc.want) {
			t.Errorf("%s: %v, want %v", tc.supi, err, tc.want)
		}
	}
	if e.ausf.Pending() != 0 {
		t.Error("a failed Authenticate left a context")
	}
}

func TestResync(t *testing.T) {
	const imsi = "001010000000001"
	e := newEnv(t, Options{}, udr.SIM{IMSI: imsi})
	u := newUE(t)
	id := udm.Identity{SUPI: "imsi-" + imsi}
	for range 2 {
		c, err := e.ausf.Authenticate(context.Background(), id, snn)
		if err != nil {
			t.Fatal(err)
		}
		if _, _, err := u.answer(c); err != nil {
			t.Fatal(err)
		}
		e.ausf.Abort(c.ID)
	}
	// The HE forgets its SQN (restored backup): the USIM reports AUTS.
	if err := e.store.UpdateSIM(imsi, func(s *udr.SIM) error { s.SQN = 0; return nil }); err != nil {
		t.Fatal(err)
	}
	c, err := e.ausf.Authenticate(context.Background(), id, snn)
	if err != nil {
		t.Fatal(err)
	}
	_, _, err = u.answer(c)
	var sf *aka.SyncFailure
	if !errors.As(err, &sf) {
		t.Fatalf("want a synchronisation failure, got %v", err)
	}
	c2, err := e.ausf.Resync(context.Background(), c.ID, sf.AUTS)
	if err != nil {
		t.Fatal(err)
	}
	if c2.ID == c.ID || c2.RAND == c.RAND {
		t.Error("resync did not give a new challenge")
	}
	res, kseaf, err := u.answer(c2)
	if err != nil {
		t.Fatalf("challenge after resync: %v", err)
	}
	r, err := e.ausf.Confirm(context.Background(), c2.ID, Response{RESStar: res})
	if err != nil || r.KSEAF != kseaf {
		t.Fatalf("confirm after resync: %v", err)
	}
	// Resync of a context that is gone.
	if _, err := e.ausf.Resync(context.Background(), c.ID, sf.AUTS); !errors.Is(err, ErrUnknownContext) {
		t.Errorf("resync of consumed context: %v", err)
	}
	// A tampered AUTS fails in the UDM.
	c3, _ := e.ausf.Authenticate(context.Background(), id, snn)
	bad := sf.AUTS
	bad[7] ^= 0xff
	if _, err := e.ausf.Resync(context.Background(), c3.ID, bad); !errors.Is(err, udm.ErrResync) {
		t.Errorf("tampered AUTS: %v, want udm.ErrResync", err)
	}
}

func TestExpiryAndAbort(t *testing.T) {
	now := time.Unix(1_700_000_000, 0)
	var mu sync.Mutex
	clock := func() time.Time { mu.Lock(); defer mu.Unlock(); return now }
	advance := func(d time.Duration) { mu.Lock(); now = now.Add(d); mu.Unlock() }
	e := newEnv(t, Options{ContextTTL: 10 * time.Second, Now: clock}, udr.SIM{IMSI: "001010000000001"})
	u := newUE(t)
	id := udm.Identity{SUPI: "imsi-001010000000001"}
	c, _ := e.ausf.Authenticate(context.Background(), id, snn)
	res, _, _ := u.answer(c)
	advance(11 * time.Second)
	if _, err := e.ausf.Confirm(context.Background(), c.ID, Response{RESStar: res}); !errors.Is(err, ErrUnknownContext) {
		t.Errorf("expired context confirmed: %v", err)
	}
	c, _ = e.ausf.Authenticate(context.Background(), id, snn)
	e.ausf.Abort(c.ID)
	if _, err := e.ausf.Confirm(context.Background(), c.ID, Response{}); !errors.Is(err, ErrUnknownContext) {
		t.Errorf("aborted context confirmed: %v", err)
	}
	// Abandoned contexts are swept: the map does not grow without bound.
	e.ausf.sweepAt, e.ausf.sweepMin = 8, 8
	for range 20 {
		if _, err := e.ausf.Authenticate(context.Background(), id, snn); err != nil {
			t.Fatal(err)
		}
		advance(11 * time.Second)
	}
	if n := e.ausf.Pending(); n > 8 {
		t.Errorf("%d expired contexts kept", n)
	}
}

// fakeUDM returns fixed authentication data.
type fakeUDM struct{ ad udm.AuthData }

func (f fakeUDM) GenerateAuthData(context.Context, udm.AuthRequest) (udm.AuthData, error) {
	return f.ad, nil
}

type kdfCase struct {
	Kind      string `json:"kind"`
	Name      string `json:"name"`
	SNNAsUsed string `json:"serving_network_name_as_used"`
	RAND      string `json:"rand"`
	XRESStar  string `json:"xres_star"`
	HXRESStar string `json:"hxres_star"`
	KAUSF     string `json:"kausf"`
	KSEAF     string `json:"kseaf"`
}

// TestVectors checks HXRES* (A.5) and KSEAF (A.6) as the AUSF derives them
// against kdf_5g.json.
func TestVectors(t *testing.T) {
	n := 0
	for _, c := range vectors.Load[kdfCase](t, "kdf_5g.json") {
		var av udm.HEAV
		snnUsed := snn
		switch c.Kind {
		case "hxres_star":
			b, _ := hex.DecodeString(c.RAND)
			copy(av.RAND[:], b)
			b, _ = hex.DecodeString(c.XRESStar)
			copy(av.XRESStar[:], b)
		case "kausf_kseaf":
			b, _ := hex.DecodeString(c.KAUSF)
			copy(av.KAUSF[:], b)
			snnUsed = c.SNNAsUsed // exact KDF answer for this (2-digit MNC) string
		default:
			continue
		}
		a := New(fakeUDM{udm.AuthData{SUPI: "imsi-001010000000001", Method: udm.Method5GAKA, FiveG: &av}}, Options{})
		ch, err := a.Authenticate(context.Background(), udm.Identity{SUPI: "imsi-001010000000001"}, snnUsed)
		if err != nil {
			t.Fatal(err)
		}
		switch c.Kind {
		case "hxres_star":
			if got := hex.EncodeToString(ch.HXRESStar[:]); got != c.HXRESStar {
				t.Errorf("%s: HXRES* %s, want %s", c.Name, got, c.HXRESStar)
			}
		case "kausf_kseaf":
			r, err := a.Confirm(context.Background(), ch.ID, Response{RESStar: av.XRESStar})
			if err != nil {
				t.Fatal(err)
			}
			if got := hex.EncodeToString(r.KSEAF[:]); got != c.KSEAF {
				t.Errorf("%s: KSEAF %s, want %s", c.Name, got, c.KSEAF)
			}
		}
		n++
	}
	if n != 2 {
		t.Fatalf("%d vectors used, want 2", n)
	}
}

func TestUnsupportedMethod(t *testing.T) {
	for _, ad := range []udm.AuthData{
		{SUPI: "imsi-001010000000001", Method: udm.MethodEAPAKAPrime},
		{SUPI: "imsi-001010000000001", Method: udm.Method5GAKA}, // no vector
	} {
		a := New(fakeUDM{ad}, Options{})
		if _, err := a.Authenticate(context.Background(), udm.Identity{SUPI: ad.SUPI}, snn); !errors.Is(err, ErrUnsupportedMethod) {
			t.Errorf("%+v: %v", ad, err)
		}
	}
	// A bad serving network name fails at KSEAF.
	a := New(fakeUDM{udm.AuthData{SUPI: "imsi-001010000000001", Method: udm.Method5GAKA, FiveG: &udm.HEAV{}}}, Options{})
	if _, err := a.Authenticate(context.Background(), udm.Identity{SUPI: "imsi-001010000000001"}, "mnc001"); err == nil {
		t.Error("bad serving network name accepted")
	}
}

func TestConcurrent(t *testing.T) {
	sims := make([]udr.SIM, 8)
	for i := range sims {
		sims[i] = udr.SIM{IMSI: "00101000000001" + string(rune('0'+i))}
	}
	e := newEnv(t, Options{}, sims...)
	var wg sync.WaitGroup
	for i := range sims {
		wg.Add(1)
		go func() {
			defer wg.Done()
			u := newUE(t)
			for range 5 {
				c, err := e.ausf.Authenticate(context.Background(), udm.Identity{SUPI: "imsi-" + sims[i].IMSI}, snn)
				if err != nil {
					t.Error(err)
					return
				}
				res, _, err := u.answer(c)
				if err != nil {
					t.Error(err)
					return
				}
				if _, err := e.ausf.Confirm(context.Background(), c.ID, Response{RESStar: res}); err != nil {
					t.Error(err)
				}
			}
		}()
	}
	wg.Wait()
}

// BenchmarkAuthenticateConfirm is one 5G AKA run through AUSF and UDM over
// a real subscriber store (bbolt, fsync per SQN), with the UE's USIM work
// included.
func BenchmarkAuthenticateConfirm(b *testing.B) {
	e := newEnv(b, Options{}, udr.SIM{IMSI: "001010000000001"})
	u := newUE(b)
	id := udm.Identity{SUPI: "imsi-001010000000001"}
	for b.Loop() {
		c, err := e.ausf.Authenticate(context.Background(), id, snn)
		if err != nil {
			b.Fatal(err)
		}
		res, _, err := u.answer(c)
		if err != nil {
			b.Fatal(err)
		}
		if _, err := e.ausf.Confirm(context.Background(), c.ID, Response{RESStar: res}); err != nil {
			b.Fatal(err)
		}
	}
}
