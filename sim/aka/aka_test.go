package aka

import (
	"bytes"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"sync"
	"testing"

	"github.com/simgate/simgate/internal/vectors"
	"github.com/simgate/simgate/sim/milenage"
)

// memStore is an in-memory Store that records its writes.
type memStore struct {
	mu       sync.Mutex
	subs     map[string]*memSub
	failNext error // returned by the next UpdateSQN instead of writing
}

type memSub struct {
	c      Credentials
	sqn    uint64
	writes int
}

func newMemStore() *memStore { return &memStore{subs: map[string]*memSub{}} }

func (s *memStore) add(imsi string, c Credentials, sqn uint64) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.subs[imsi] = &memSub{c: c, sqn: sqn}
}

func (s *memStore) get(imsi string) (sqn uint64, writes int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	sub := s.subs[imsi]
	return sub.sqn, sub.writes
}

func (s *memStore) UpdateSQN(imsi string, fn func(c Credentials, sqn uint64) (uint64, error)) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	sub, ok := s.subs[imsi]
	if !ok {
		return fmt.Errorf("memstore: no subscriber %s", imsi)
	}
	n, err := fn(sub.c, sub.sqn)
	if err != nil {
		return err
	}
	if err := s.failNext; err != nil {
		s.failNext = nil
		return err
	}
	sub.sqn = n
	sub.writes++
	return nil
}

const imsi = "001010000000001"

// testCreds are TS 35.208 test set 1's K and OPc with AMF 0x8000.
func testCreds(t testing.TB) Credentials {
	return Credentials{
		K:   [16]byte(unhex(t, "465b5ce8b199b49faa5f0a2ee238a6bc", 16)),
		OPc: [16]byte(unhex(t, "cd63cb71954a9f4e48a5994e37a02baf", 16)),
		AMF: [2]byte{0x80, 0x00},
	}
}

func unhex(t testing.TB, s string, n int) []byte {
	t.Helper()
	b, err := hex.DecodeString(s)
	if err != nil {
		t.Fatal(err)
	}
	if len(b) != n {
		t.Fatalf("%q: %d bytes, want %d", s, len(b), n)
	}
	return b
}

// fixture is one subscriber with its AuC and USIM.
type fixture struct {
	store *memStore
	auc   *AuC
	usim  *USIM
}

func newFixture(t testing.TB, ac AuCConfig, uc USIMConfig) *fixture {
	t.Helper()
	c := testCreds(t)
	st := newMemStore()
	st.add(imsi, c, 0)
	auc, err := NewAuC(st, rand.Reader, ac)
	if err != nil {
		t.Fatal(err)
	}
	u, err := NewUSIM(c.K, c.OPc, uc)
	if err != nil {
		t.Fatal(err)
	}
	return &fixture{store: st, auc: auc, usim: u}
}

func (f *fixture) vector(t testing.TB) Vector {
	t.Helper()
	v, err := f.auc.Vector(imsi)
	if err != nil {
		t.Fatal(err)
	}
	return v
}

// accept checks that the USIM accepts v and answers with its XRES, CK, IK.
func (f *fixture) accept(t testing.TB, v Vector, what string) {
	t.Helper()
	r, err := f.usim.Authenticate(v.RAND, v.AUTN, true)
	if err != nil {
		t.Fatalf("%s: SQN %x: %v", what, v.SQN, err)
	}
	if r.RES != v.XRES || r.CK != v.CK || r.IK != v.IK || r.AK != v.AK || r.SQN != v.SQN {
		t.Fatalf("%s: USIM result %+v does not match vector %+v", what, r, v)
	}
}

// syncFailure checks that the USIM refuses v with a synchronisation failure
// and returns its AUTS.
func (f *fixture) syncFailure(t testing.TB, v Vector, what string) [AUTSLen]byte {
	t.Helper()
	before := f.usim.State()
	_, err := f.usim.Authenticate(v.RAND, v.AUTN, true)
	var sf *SyncFailure
	if !errors.As(err, &sf) {
		t.Fatalf("%s: SQN %x: got %v, want a synchronisation failure", what, v.SQN, err)
	}
	if after := f.usim.State(); !equalState(before, after) {
		t.Fatalf("%s: refused AUTN changed the state: %v -> %v", what, before, after)
	}
	return sf.AUTS
}

func equalState(a, b State) bool {
	if a.INDBits != b.INDBits || len(a.SEQ) != len(b.SEQ) {
		return false
	}
	for i := range a.SEQ {
		if a.SEQ[i] != b.SEQ[i] {
			return false
		}
	}
	return true
}

// kdfCase is a res_star_xres_star case of kdf_5g.json.
type kdfCase struct {
	Kind   string `json:"kind"`
	Name   string `json:"name"`
	K      string `json:"k"`
	OPc    string `json:"opc"`
	RAND   string `json:"rand"`
	SQN    string `json:"sqn"`
	AMF    string `json:"amf"`
	RES    string `json:"res"`
	CK     string `json:"ck"`
	IK     string `json:"ik"`
	AK     string `json:"ak"`
	AKStar string `json:"ak_star"`
	AUTN   string `json:"autn"`
	AUTS   string `json:"auts"`
}

// TestKnownAnswers checks AUTN and AUTS bytes, on both sides, against the
// kdf_5g.json RES*/XRES* cases (AUTS there has SQN_MS = sqn).
func TestKnownAnswers(t *testing.T) {
	var cases []kdfCase
	for _, c := range vectors.Load[kdfCase](t, "kdf_5g.json") {
		if c.Kind == "res_star_xres_star" {
			cases = append(cases, c)
		}
	}
	if len(cases) == 0 {
		t.Fatal("kdf_5g.json: no res_star_xres_star cases")
	}
	for _, kc := range cases {
		t.Run(kc.Name, func(t *testing.T) {
			c := Credentials{
				K:   [16]byte(unhex(t, kc.K, 16)),
				OPc: [16]byte(unhex(t, kc.OPc, 16)),
				AMF: [2]byte(unhex(t, kc.AMF, 2)),
			}
			rnd := [16]byte(unhex(t, kc.RAND, 16))
			autn := [16]byte(unhex(t, kc.AUTN, 16))
			auts := [14]byte(unhex(t, kc.AUTS, 14))
			sqn := sqnValue([6]byte(unhex(t, kc.SQN, 6)))
			lay, _ := newLayout(DefaultINDBits)
			seq, ind := lay.seq(sqn), lay.ind(sqn)

			// AuC: Resync with the published AUTS verifies MAC-S and leaves
			// an SQN_HE whose next SQN is accepted after SQN_MS = sqn.
			st := newMemStore()
			st.add(imsi, c, 0)
			auc, err := NewAuC(st, rand.Reader, AuCConfig{})
			if err != nil {
				t.Fatal(err)
			}
			if err := auc.Resync(imsi, rnd, auts); err != nil {
				t.Fatalf("Resync with published AUTS: %v", err)
			}
			if got, _ := st.get(imsi); lay.seq(got)+1 <= seq {
				t.Errorf("after Resync SQN_HE = %#x: next SEQ %d not above SEQ_MS %d", got, lay.seq(got)+1, seq)
			}
			bad := auts
			bad[13] ^= 1
			if err := auc.Resync(imsi, rnd, bad); !errors.Is(err, ErrMACFailure) {
				t.Errorf("Resync with corrupted MAC-S: %v, want ErrMACFailure", err)
			}

			// USIM: the published AUTN carries a valid MAC whatever the state.
			fresh, err := NewUSIM(c.K, c.OPc, USIMConfig{})
			if err != nil {
				t.Fatal(err)
			}
			_, err = fresh.Authenticate(rnd, autn, false)
			if errors.Is(err, ErrMACFailure) {
				t.Fatalf("published AUTN: MAC failure")
			}

			if seq == 0 {
				// SEQ 0 is below every SEQ_MS: no SQN_HE precedes it, and
				// no USIM accepts it (C.2.2).
				var sf *SyncFailure
				if !errors.As(err, &sf) {
					t.Fatalf("SQN %#x with SEQ 0: %v, want a synchronisation failure", sqn, err)
				}
				return
			}

			// AuC: with SQN_HE just before sqn, the next vector for this RAND
			// is the published AUTN, RES, CK, IK, AK.
			st.add(imsi, c, lay.sqn(seq-1, (ind+31)%32))
			v, err := auc.VectorWithRAND(imsi, rnd)
			if err != nil {
				t.Fatal(err)
			}
			for _, x := range []struct {
				what      string
				got       []byte
				wantField string
			}{
				{"AUTN", v.AUTN[:], kc.AUTN},
				{"XRES", v.XRES[:], kc.RES},
				{"CK", v.CK[:], kc.CK},
				{"IK", v.IK[:], kc.IK},
				{"AK", v.AK[:], kc.AK},
				{"SQN", v.SQN[:], kc.SQN},
			} {
				if got := hex.EncodeToString(x.got); got != x.wantField {
					t.Errorf("AuC %s = %s, want %s", x.what, got, x.wantField)
				}
			}

			// USIM: a state just below sqn accepts the AUTN, then refuses the
			// replay with the published AUTS (SQN_MS = sqn).
			state := State{INDBits: DefaultINDBits, SEQ: make([]uint64, 32)}
			state.SEQ[ind] = seq - 1
			u, err := RestoreUSIM(c.K, c.OPc, USIMConfig{}, state)
			if err != nil {
				t.Fatal(err)
			}
			f := &fixture{store: st, auc: auc, usim: u}
			f.accept(t, v, "published AUTN")
			if got := f.syncFailure(t, v, "replayed AUTN"); got != auts {
				t.Errorf("AUTS = %x, want %x", got, auts)
			}
		})
	}
}

func TestRoundTrip(t *testing.T) {
	f := newFixture(t, AuCConfig{}, USIMConfig{})
	for i := range 40 { // more than 32: IND wraps
		f.accept(t, f.vector(t), fmt.Sprintf("vector %d", i))
	}
	sqn, writes := f.store.get(imsi)
	if writes != 40 {
		t.Errorf("store writes = %d, want 40", writes)
	}
	// SEQ 40, IND 40 mod 32 = 8
	if want := uint64(40<<5 | 8); sqn != want {
		t.Errorf("SQN_HE = %#x, want %#x", sqn, want)
	}
}

func TestReplayAndResync(t *testing.T) {
	f := newFixture(t, AuCConfig{}, USIMConfig{})
	v := f.vector(t)
	f.accept(t, v, "first use")
	auts := f.syncFailure(t, v, "replay")

	// AUTS carries SQN_MS = the last accepted SQN.
	m, err := milenage.New(testCreds(t).K, testCreds(t).OPc)
	if err != nil {
		t.Fatal(err)
	}
	if got := xor6([6]byte(auts[0:6]), m.F5Star(v.RAND)); got != v.SQN {
		t.Errorf("SQN_MS in AUTS = %x, want %x", got, v.SQN)
	}

	if err := f.auc.Resync(imsi, v.RAND, auts); err != nil {
		t.Fatal(err)
	}
	f.accept(t, f.vector(t), "after resync")
}

// TestResyncResetsSQN: a USIM ahead of the AuC (e.g. the AuC lost its SQN)
// refuses vectors until Resync moves SQN_HE to SQN_MS.
func TestResyncResetsSQN(t *testing.T) {
	f := newFixture(t, AuCConfig{}, USIMConfig{})
	for range 10 {
		f.accept(t, f.vector(t), "warm-up")
	}
	f.store.add(imsi, testCreds(t), 0) // SQN_HE rolled back
	v := f.vector(t)
	auts := f.syncFailure(t, v, "stale SQN_HE")
	if err := f.auc.Resync(imsi, v.RAND, auts); err != nil {
		t.Fatal(err)
	}
	if sqn, _ := f.store.get(imsi); sqn != 10<<5|10 {
		t.Errorf("after Resync SQN_HE = %#x, want SQN_MS %#x", sqn, 10<<5|10)
	}
	f.accept(t, f.vector(t), "after resync")
}

// TestResyncDelta: an SQN_HE more than Δ ahead of the USIM is refused
// (C.2.1) and Resync brings it back; one within Δ is kept.
func TestResyncDelta(t *testing.T) {
	const delta = 4
	f := newFixture(t, AuCConfig{Delta: delta}, USIMConfig{Delta: delta})
	f.accept(t, f.vector(t), "first")

	f.store.add(imsi, testCreds(t), 2<<5|1) // next SEQ 3: 2 ahead of SEQ_MS 1
	v := f.vector(t)
	// Replay a used vector to provoke a sync failure while SQN_HE is in range.
	f.accept(t, v, "within delta")
	auts := f.syncFailure(t, v, "replay")
	pending := f.vector(t) // issued, not yet delivered: SQN_HE is ahead of SQN_MS
	before, _ := f.store.get(imsi)
	if err := f.auc.Resync(imsi, v.RAND, auts); err != nil {
		t.Fatal(err)
	}
	if after, _ := f.store.get(imsi); after != before {
		t.Errorf("Resync moved an acceptable SQN_HE %#x to %#x", before, after)
	}
	f.accept(t, f.vector(t), "next after resync")
	f.accept(t, pending, "issued before resync")

	seqMS := slices.Max(f.usim.State().SEQ)
	f.store.add(imsi, testCreds(t), (seqMS+delta)<<5) // next SEQ is Δ+1 ahead of SEQ_MS
	v = f.vector(t)
	auts = f.syncFailure(t, v, "beyond delta")
	if err := f.auc.Resync(imsi, v.RAND, auts); err != nil {
		t.Fatal(err)
	}
	f.accept(t, f.vector(t), "after resync")
}

func TestWrongKey(t *testing.T) {
	f := newFixture(t, AuCConfig{}, USIMConfig{})
	other := testCreds(t)
	other.K[0] ^= 1
	u, err := NewUSIM(other.K, other.OPc, USIMConfig{})
	if err != nil {
		t.Fatal(err)
	}
	v := f.vector(t)
	before := u.State()
	if _, err := u.Authenticate(v.RAND, v.AUTN, true); !errors.Is(err, ErrMACFailure) {
		t.Fatalf("wrong K: %v, want ErrMACFailure", err)
	}
	if !equalState(before, u.State()) {
		t.Errorf("MAC failure changed the state")
	}
	// Any flipped bit of AUTN or RAND is a MAC failure too.
	for _, flip := range []func(*Vector){
		func(v *Vector) { v.AUTN[0] ^= 0x01 },  // SQN xor AK
		func(v *Vector) { v.AUTN[6] ^= 0x01 },  // AMF
		func(v *Vector) { v.AUTN[15] ^= 0x80 }, // MAC
		func(v *Vector) { v.RAND[3] ^= 0x10 },
	} {
		w := v
		flip(&w)
		if _, err := f.usim.Authenticate(w.RAND, w.AUTN, true); !errors.Is(err, ErrMACFailure) {
			t.Errorf("tampered vector: %v, want ErrMACFailure", err)
		}
	}
	f.accept(t, v, "untampered after tampered")
}

func TestAMFSeparation(t *testing.T) {
	c := testCreds(t)
	c.AMF = [2]byte{0x00, 0x00}
	for _, tc := range []struct {
		name       string
		sepBit     bool
		require    bool
		wantReject bool
	}{
		{"5G needs the bit, AuC does not set it", false, true, true},
		{"5G needs the bit, AuC sets it", true, true, false},
		{"3G does not check", false, false, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := newFixture(t, AuCConfig{SeparationBit: tc.sepBit}, USIMConfig{})
			f.store.add(imsi, c, 0)
			v := f.vector(t)
			if got := v.AUTN[6]&0x80 != 0; got != tc.sepBit {
				t.Fatalf("AUTN AMF %x: separation bit %v, want %v", v.AUTN[6:8], got, tc.sepBit)
			}
			before := f.usim.State()
			_, err := f.usim.Authenticate(v.RAND, v.AUTN, tc.require)
			if tc.wantReject {
				if !errors.Is(err, ErrAMFSeparation) {
					t.Fatalf("got %v, want ErrAMFSeparation", err)
				}
				if !equalState(before, f.usim.State()) {
					t.Fatalf("AMF separation failure consumed the SQN")
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
		})
	}
}

// TestSQNArray exercises the SEQ_MS array of TS 33.102 C.2.2.
func TestSQNArray(t *testing.T) {
	t.Run("out of order within the array, each once", func(t *testing.T) {
		f := newFixture(t, AuCConfig{}, USIMConfig{})
		vs := make([]Vector, 5)
		for i := range vs {
			vs[i] = f.vector(t)
		}
		for _, i := range []int{3, 0, 4, 1, 2} {
			f.accept(t, vs[i], fmt.Sprintf("vector %d", i))
		}
		for i := range vs {
			f.syncFailure(t, vs[i], fmt.Sprintf("replay of vector %d", i))
		}
	})
	t.Run("same IND, older SEQ refused", func(t *testing.T) {
		f := newFixture(t, AuCConfig{}, USIMConfig{})
		vs := make([]Vector, 33) // vs[0] and vs[32] share IND 1
		for i := range vs {
			vs[i] = f.vector(t)
		}
		lay, _ := newLayout(DefaultINDBits)
		if a, b := lay.ind(sqnValue(vs[0].SQN)), lay.ind(sqnValue(vs[32].SQN)); a != b {
			t.Fatalf("IND %d and %d differ", a, b)
		}
		f.accept(t, vs[32], "newest")
		f.syncFailure(t, vs[0], "older with the same IND")
		f.accept(t, vs[5], "older with another IND")
	})
	t.Run("age limit L", func(t *testing.T) {
		f := newFixture(t, AuCConfig{}, USIMConfig{L: 3})
		vs := make([]Vector, 6)
		for i := range vs {
			vs[i] = f.vector(t)
		}
		f.accept(t, vs[5], "newest") // SEQ_MS = 6
		f.accept(t, vs[3], "SEQ 4: 6-4 < 3")
		f.syncFailure(t, vs[2], "SEQ 3: 6-3 >= 3")
		f.syncFailure(t, vs[0], "SEQ 1: too old")
	})
	t.Run("fixed IND", func(t *testing.T) {
		f := newFixture(t, AuCConfig{FixedIND: true, IND: 7}, USIMConfig{})
		a, b := f.vector(t), f.vector(t)
		if a.SQN != sqnBytes(1<<5|7) || b.SQN != sqnBytes(2<<5|7) {
			t.Fatalf("SQNs %x, %x; want SEQ 1 and 2 with IND 7", a.SQN, b.SQN)
		}
		f.accept(t, b, "newer")
		f.syncFailure(t, a, "older with the same fixed IND")
	})
}

func TestStoreFailure(t *testing.T) {
	f := newFixture(t, AuCConfig{}, USIMConfig{})
	errDisk := errors.New("disk full")
	f.store.failNext = errDisk
	v, err := f.auc.Vector(imsi)
	if !errors.Is(err, errDisk) {
		t.Fatalf("Vector with failing store: %v, want %v", err, errDisk)
	}
	if v != (Vector{}) {
		t.Errorf("Vector returned %+v with an error", v)
	}
	if sqn, writes := f.store.get(imsi); sqn != 0 || writes != 0 {
		t.Errorf("store SQN %#x after %d writes, want untouched", sqn, writes)
	}
	if _, err := f.auc.Vector("001019999999999"); err == nil {
		t.Errorf("unknown IMSI: no error")
	}

	errRand := errors.New("no entropy")
	auc, err := NewAuC(f.store, failingReader{errRand}, AuCConfig{})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := auc.Vector(imsi); !errors.Is(err, errRand) {
		t.Errorf("Vector with failing RAND source: %v, want %v", err, errRand)
	}
	if _, writes := f.store.get(imsi); writes != 0 {
		t.Errorf("RAND failure wrote the store")
	}
}

type failingReader struct{ err error }

func (r failingReader) Read([]byte) (int, error) { return 0, r.err }

func TestResyncBadMAC(t *testing.T) {
	f := newFixture(t, AuCConfig{}, USIMConfig{})
	v := f.vector(t)
	f.accept(t, v, "first")
	auts := f.syncFailure(t, v, "replay")
	f.store.add(imsi, testCreds(t), 0)
	for i := range auts {
		bad := auts
		bad[i] ^= 0x04
		if err := f.auc.Resync(imsi, v.RAND, bad); !errors.Is(err, ErrMACFailure) {
			t.Fatalf("AUTS byte %d flipped: %v, want ErrMACFailure", i, err)
		}
	}
	badRAND := v.RAND
	badRAND[0] ^= 1
	if err := f.auc.Resync(imsi, badRAND, auts); !errors.Is(err, ErrMACFailure) {
		t.Fatalf("other RAND: %v, want ErrMACFailure", err)
	}
	if sqn, writes := f.store.get(imsi); sqn != 0 || writes != 0 {
		t.Errorf("failed resyncs changed the store: SQN %#x, %d writes", sqn, writes)
	}
}

func TestSQNExhausted(t *testing.T) {
	f := newFixture(t, AuCConfig{}, USIMConfig{})
	f.store.add(imsi, testCreds(t), sqnMax)
	if _, err := f.auc.Vector(imsi); !errors.Is(err, ErrSQNExhausted) {
		t.Errorf("SQN_HE at the maximum: %v, want ErrSQNExhausted", err)
	}
	f.store.add(imsi, testCreds(t), sqnMax+1)
	if _, err := f.auc.Vector(imsi); err == nil {
		t.Errorf("SQN_HE beyond 48 bits: no error")
	}
}

func TestStatePersistence(t *testing.T) {
	f := newFixture(t, AuCConfig{}, USIMConfig{})
	vs := make([]Vector, 4)
	for i := range vs {
		vs[i] = f.vector(t)
	}
	f.accept(t, vs[2], "before save")
	f.accept(t, vs[0], "before save")

	b, err := json.Marshal(f.usim.State())
	if err != nil {
		t.Fatal(err)
	}
	var st State
	if err := json.Unmarshal(b, &st); err != nil {
		t.Fatal(err)
	}
	c := testCreds(t)
	u, err := RestoreUSIM(c.K, c.OPc, USIMConfig{}, st)
	if err != nil {
		t.Fatal(err)
	}
	g := &fixture{store: f.store, auc: f.auc, usim: u}
	g.syncFailure(t, vs[2], "replay after restore")
	g.syncFailure(t, vs[0], "replay after restore")
	g.accept(t, vs[1], "unused after restore")
	g.accept(t, vs[3], "unused after restore")
	b2, _ := json.Marshal(u.State())
	if bytes.Equal(b, b2) {
		t.Errorf("state did not change after two accepts")
	}
}

func TestRestoreUSIMErrors(t *testing.T) {
	c := testCreds(t)
	good := State{INDBits: 5, SEQ: make([]uint64, 32)}
	for _, tc := range []struct {
		name string
		cfg  USIMConfig
		st   State
	}{
		{"no IND length", USIMConfig{}, State{SEQ: make([]uint64, 32)}},
		{"IND too long", USIMConfig{}, State{INDBits: MaxINDBits + 1, SEQ: make([]uint64, 1<<(MaxINDBits+1))}},
		{"negative IND", USIMConfig{}, State{INDBits: -1}},
		{"short array", USIMConfig{}, State{INDBits: 5, SEQ: make([]uint64, 31)}},
		{"config mismatch", USIMConfig{INDBits: 4}, good},
		{"SEQ beyond 43 bits", USIMConfig{}, State{INDBits: 5, SEQ: append(make([]uint64, 31), 1<<43)}},
	} {
		if _, err := RestoreUSIM(c.K, c.OPc, tc.cfg, tc.st); err == nil {
			t.Errorf("%s: no error", tc.name)
		}
	}
	if _, err := RestoreUSIM(c.K, c.OPc, USIMConfig{INDBits: 5}, good); err != nil {
		t.Errorf("good state: %v", err)
	}
	if _, err := NewUSIM(c.K, c.OPc, USIMConfig{INDBits: MaxINDBits + 1}); err == nil {
		t.Errorf("NewUSIM with IND too long: no error")
	}
	for _, cfg := range []AuCConfig{{INDBits: -2}, {FixedIND: true, IND: 32}} {
		if _, err := NewAuC(newMemStore(), rand.Reader, cfg); err == nil {
			t.Errorf("NewAuC(%+v): no error", cfg)
		}
	}
	if _, err := NewAuC(nil, rand.Reader, AuCConfig{}); err == nil {
		t.Errorf("NewAuC with nil store: no error")
	}
}

// TestConcurrent runs AuC and USIM from several goroutines (for -race).
func TestConcurrent(t *testing.T) {
	f := newFixture(t, AuCConfig{}, USIMConfig{})
	var wg sync.WaitGroup
	errs := make(chan error, 64)
	for range 4 {
		wg.Go(func() {
			for range 16 {
				v, err := f.auc.Vector(imsi)
				if err != nil {
					errs <- err
					return
				}
				// Vectors may arrive out of order: each is fresh in its own
				// IND slot unless a later one with the same IND overtook it.
				if _, err := f.usim.Authenticate(v.RAND, v.AUTN, true); err != nil {
					var sf *SyncFailure
					if !errors.As(err, &sf) {
						errs <- err
					}
				}
				_ = f.usim.State()
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	if sqn, _ := f.store.get(imsi); sqn>>5 != 64 {
		t.Errorf("SEQ_HE = %d after 64 vectors", sqn>>5)
	}
}

func BenchmarkAuCVector(b *testing.B) {
	st := newMemStore()
	st.add(imsi, testCreds(b), 0)
	auc, err := NewAuC(st, rand.Reader, AuCConfig{SeparationBit: true})
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := auc.Vector(imsi); err != nil {
			b.Fatal(err)
		}
	}
	if s := b.Elapsed().Seconds(); s > 0 {
		b.ReportMetric(float64(b.N)/s, "vectors/s")
	}
}

// BenchmarkUSIMAuthenticate measures an accepted AUTN: MAC-A check, SQN
// check, RES/CK/IK.
func BenchmarkUSIMAuthenticate(b *testing.B) {
	f := newFixture(b, AuCConfig{}, USIMConfig{})
	vs := make([]Vector, 4096)
	for i := range vs {
		vs[i] = f.vector(b)
	}
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		if i == len(vs) { // start over with a fresh SQN_MS array
			clear(f.usim.seq)
			i = 0
		}
		if _, err := f.usim.Authenticate(vs[i].RAND, vs[i].AUTN, true); err != nil {
			b.Fatal(err)
		}
		i++
	}
}
