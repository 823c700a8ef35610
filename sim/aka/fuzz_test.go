package aka

import (
	"crypto/rand"
	"encoding/json"
	"errors"
	"testing"
)

// split16 reads RAND and a second 16-byte field from fuzz input, zero-padded.
func split16(in []byte) (a, b [16]byte) {
	n := copy(a[:], in)
	copy(b[:], in[n:])
	return a, b
}

// seedVectors returns RAND||AUTN||AUTS inputs from a real exchange: a fresh
// vector, and a replayed one with its AUTS.
func seedVectors(f *testing.F) [][]byte {
	fx := newFixture(f, AuCConfig{}, USIMConfig{})
	v := fx.vector(f)
	fx.accept(f, v, "seed")
	auts := fx.syncFailure(f, v, "seed replay")
	w := fx.vector(f)
	return [][]byte{
		append(append(append([]byte{}, w.RAND[:]...), w.AUTN[:]...), auts[:]...),
		append(append(append([]byte{}, v.RAND[:]...), v.AUTN[:]...), auts[:]...),
	}
}

// FuzzUSIMAuthenticate feeds arbitrary RAND and AUTN to a USIM: it must
// answer with a result or one of the three AKA failures, change its state
// only when it accepts, and give an AUTS the AuC verifies.
func FuzzUSIMAuthenticate(f *testing.F) {
	for _, s := range seedVectors(f) {
		f.Add(s[:32], true)
		f.Add(s[:32], false)
	}
	f.Add([]byte{}, true)
	c := testCreds(f)
	f.Fuzz(func(t *testing.T, in []byte, require bool) {
		rnd, autn := split16(in)
		u, err := RestoreUSIM(c.K, c.OPc, USIMConfig{}, State{INDBits: 5, SEQ: make([]uint64, 32)})
		if err != nil {
			t.Fatal(err)
		}
		before := u.State()
		r, err := u.Authenticate(rnd, autn, require)
		var sf *SyncFailure
		switch {
		case err == nil:
			v := sqnValue(r.SQN)
			if u.State().SEQ[v&31] != v>>5 {
				t.Fatalf("accepted SQN %x not recorded", r.SQN)
			}
		case errors.Is(err, ErrMACFailure), errors.Is(err, ErrAMFSeparation):
			if !equalState(before, u.State()) {
				t.Fatalf("%v changed the state", err)
			}
		case errors.As(err, &sf):
			if !equalState(before, u.State()) {
				t.Fatalf("sync failure changed the state")
			}
			st := newMemStore()
			st.add(imsi, c, 0)
			auc, err := NewAuC(st, rand.Reader, AuCConfig{})
			if err != nil {
				t.Fatal(err)
			}
			if err := auc.Resync(imsi, rnd, sf.AUTS); err != nil {
				t.Fatalf("AuC refused the USIM's AUTS: %v", err)
			}
		default:
			t.Fatalf("unexpected error %v", err)
		}
	})
}

// FuzzResync feeds arbitrary RAND and AUTS to the AuC: a MAC-S failure must
// leave SQN_HE untouched.
func FuzzResync(f *testing.F) {
	for _, s := range seedVectors(f) {
		f.Add(append(append([]byte{}, s[:16]...), s[32:]...))
	}
	f.Add([]byte{})
	c := testCreds(f)
	f.Fuzz(func(t *testing.T, in []byte) {
		rnd, rest := split16(in)
		auts := [AUTSLen]byte(rest[:AUTSLen])
		st := newMemStore()
		st.add(imsi, c, 5<<5|5)
		auc, err := NewAuC(st, rand.Reader, AuCConfig{})
		if err != nil {
			t.Fatal(err)
		}
		err = auc.Resync(imsi, rnd, auts)
		sqn, writes := st.get(imsi)
		if err != nil {
			if !errors.Is(err, ErrMACFailure) {
				t.Fatalf("unexpected error %v", err)
			}
			if sqn != 5<<5|5 || writes != 0 {
				t.Fatalf("failed resync wrote SQN_HE %#x", sqn)
			}
			return
		}
		if sqn > sqnMax {
			t.Fatalf("resync set SQN_HE %#x beyond 48 bits", sqn)
		}
	})
}

// FuzzRestoreUSIM feeds arbitrary JSON as a saved USIM state: it is refused
// with an error or restored exactly.
func FuzzRestoreUSIM(f *testing.F) {
	f.Add([]byte(`{"ind_bits":5,"seq_ms":[0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,7]}`))
	f.Add([]byte(`{"ind_bits":1,"seq_ms":[8796093022207,3]}`))
	f.Add([]byte(`{"ind_bits":64,"seq_ms":[]}`))
	f.Add([]byte(`{}`))
	c := testCreds(f)
	f.Fuzz(func(t *testing.T, in []byte) {
		var st State
		if err := json.Unmarshal(in, &st); err != nil {
			return
		}
		u, err := RestoreUSIM(c.K, c.OPc, USIMConfig{}, st)
		if err != nil {
			return
		}
		if got := u.State(); !equalState(got, st) {
			t.Fatalf("restored %+v, State() = %+v", st, got)
		}
	})
}
