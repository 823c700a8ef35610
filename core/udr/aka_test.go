package udr

import (
	"crypto/rand"
	"errors"
	"path/filepath"
	"strings"
	"testing"

	"github.com/simgate/simgate/sim/aka"
)

// End to end: provision a range, hand the SIM file to a USIM, authenticate
// through an AuC over the store, restart the store, and check that the
// network never reuses an SQN and can resynchronise a USIM that is ahead.
func TestAKAOverStore(t *testing.T) {
	dir := t.TempDir()
	file, err := ReadImportFile(strings.NewReader(`
seed: e2e
sims:
  - range: {first_imsi: "001010000000001", count: 3}
    k: derive
    opc: derive
`), FormatYAML)
	if err != nil {
		t.Fatal(err)
	}
	sims, err := file.Expand(ExpandOptions{})
	if err != nil {
		t.Fatal(err)
	}
	s, err := Open(filepath.Join(dir, FileName))
	if err != nil {
		t.Fatal(err)
	}
	if err := s.AddSIMs(sims); err != nil {
		t.Fatal(err)
	}
	simFile := filepath.Join(dir, "sims.json")
	if err := WriteSIMFile(simFile, NewSIMFile(sims)); err != nil {
		t.Fatal(err)
	}
	sf, err := ReadSIMFile(simFile)
	if err != nil {
		t.Fatal(err)
	}
	card, _ := sf.Lookup("001010000000002")
	usim, err := aka.NewUSIM(card.K, card.OPc, aka.USIMConfig{})
	if err != nil {
		t.Fatal(err)
	}
	cfg := aka.AuCConfig{SeparationBit: true}

	var used []aka.Vector
	for restart := range 3 {
		auc, err := aka.NewAuC(s, rand.Reader, cfg)
		if err != nil {
			t.Fatal(err)
		}
		for range 4 {
			v, err := auc.Vector(card.IMSI)
			if err != nil {
				t.Fatal(err)
			}
			r, err := usim.Authenticate(v.RAND, v.AUTN, true)
			if err != nil {
				t.Fatalf("restart %d: USIM rejected a vector: %v", restart, err)
			}
			if r.RES != v.XRES || r.CK != v.CK || r.IK != v.IK {
				t.Fatal("USIM and AuC disagree")
			}
			used = append(used, v)
		}
		if s.Close() != nil {
			t.Fatal("close")
		}
		if s, err = Open(filepath.Join(dir, FileName)); err != nil {
			t.Fatal(err)
		}
	}
	defer s.Close()
	// Replays of every vector already used are refused by the USIM.
	for _, v := range used {
		if _, err := usim.Authenticate(v.RAND, v.AUTN, true); !errors.As(err, new(*aka.SyncFailure)) {
			t.Fatalf("replayed vector: %v, want a synchronisation failure", err)
		}
	}
	// A store restored from an old export is behind the USIM: resync through
	// UpdateSQN brings it forward.
	if err := s.UpdateSQN(card.IMSI, func(_ aka.Credentials, _ uint64) (uint64, error) { return 0, nil }); err != nil {
		t.Fatal(err)
	}
	auc, _ := aka.NewAuC(s, rand.Reader, cfg)
	v, err := auc.Vector(card.IMSI)
	if err != nil {
		t.Fatal(err)
	}
	_, err = usim.Authenticate(v.RAND, v.AUTN, true)
	var sf2 *aka.SyncFailure
	if !errors.As(err, &sf2) {
		t.Fatalf("stale SQN accepted: %v", err)
	}
	if err := auc.Resync(card.IMSI, v.RAND, sf2.AUTS); err != nil {
		t.Fatal(err)
	}
	if v, err = auc.Vector(card.IMSI); err != nil {
		t.Fatal(err)
	}
	if _, err := usim.Authenticate(v.RAND, v.AUTN, true); err != nil {
		t.Fatalf("after resync: %v", err)
	}
	// The other SIMs were untouched.
	for _, imsi := range []string{"001010000000001", "001010000000003"} {
		if sim, _ := s.GetSIM(imsi); sim.SQN != 0 {
			t.Fatalf("%s SQN %d", imsi, sim.SQN)
		}
	}
}
