package udr

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/simgate/simgate/sim/aka"
)

func openTemp(t testing.TB) (*Store, string) {
	t.Helper()
	path := filepath.Join(t.TempDir(), FileName)
	s, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s, path
}

func reopen(t testing.TB, s *Store) *Store {
	t.Helper()
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	s2, err := Open(s.Path())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s2.Close() })
	return s2
}

func simN(i int) SIM {
	s := validSIM()
	s.IMSI = fmt.Sprintf("0010100000%05d", i)
	s.K[15] = byte(i)
	s.OPc[15] = byte(i >> 8)
	return s
}

func TestSIMCRUDPersists(t *testing.T) {
	s, _ := openTemp(t)
	op := hex16(t, "cdc202d5123e20f62b6d676ac72cb318")
	a := SIM{IMSI: "001010000000002", K: hex16(t, "465b5ce8b199b49faa5f0a2ee238a6bc"), OP: &op,
		SQN: 0x20, MSISDN: "819000000002", SIMID: "8981100001234567890", IMEILock: "490154203237518|ANONYMOUS", Group: "fleet"}
	b := simN(1)
	b.MNCLen = 3
	b.IMSI = "310410000000001"
	for _, sim := range []SIM{a, b} {
		if err := s.AddSIM(sim); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.AddSIM(a); !errors.Is(err, ErrExists) {
		t.Fatalf("second add: %v, want ErrExists", err)
	}
	s = reopen(t, s)

	got, err := s.GetSIM(a.IMSI)
	if err != nil {
		t.Fatal(err)
	}
	want := a
	want.MNCLen, want.AMF, want.Status = 2, DefaultAMF, StatusActive
	want.OPc = hex16(t, "cd63cb71954a9f4e48a5994e37a02baf") // TS 35.208 set 1
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("after reopen:\n got %+v\nwant %+v", got, want)
	}
	if got.OP == nil || *got.OP != op {
		t.Fatalf("OP not kept: %v", got.OP)
	}
	list, err := s.ListSIMs()
	if err != nil || len(list) != 2 || list[0].IMSI != a.IMSI || list[1].IMSI != b.IMSI {
		t.Fatalf("list %v %v", list, err)
	}
	if n, err := s.CountSIMs(); err != nil || n != 2 {
		t.Fatalf("count %d %v", n, err)
	}

	// Changes by field.
	if err := s.SetStatus(a.IMSI, StatusInactive); err != nil {
		t.Fatal(err)
	}
	if err := s.SetIMEILock(a.IMSI, "35967507001953"); err != nil {
		t.Fatal(err)
	}
	if err := s.SetGroup(a.IMSI, ""); err != nil {
		t.Fatal(err)
	}
	s = reopen(t, s)
	got, _ = s.GetSIM(a.IMSI)
	if got.Status != StatusInactive || got.IMEILock != "359675070019530" || got.Group != DefaultGroup {
		t.Fatalf("field changes lost: %+v", got)
	}

	// Invalid changes are refused and change nothing.
	for name, err := range map[string]error{
		"status":    s.SetStatus(a.IMSI, "gone"),
		"imei lock": s.SetIMEILock(a.IMSI, "359675070019531"),
		"group":     s.SetGroup(a.IMSI, "bad group"),
		"imsi":      s.UpdateSIM(a.IMSI, func(s *SIM) error { s.IMSI = "001010000000009"; return nil }),
	} {
		if err == nil {
			t.Errorf("%s: invalid change accepted", name)
		}
	}
	if again, _ := s.GetSIM(a.IMSI); !reflect.DeepEqual(again, got) {
		t.Fatalf("refused change altered the record: %+v", again)
	}
	for _, err := range []error{s.SetStatus("001019999999999", StatusActive), s.DeleteSIM("001019999999999")} {
		if !errors.Is(err, ErrNotFound) {
			t.Fatalf("missing IMSI: %v, want ErrNotFound", err)
		}
	}
	if _, err := s.GetSIM("001019999999999"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("get missing: %v", err)
	}

	// Upsert replaces, delete removes, durably.
	a2 := simN(7)
	a2.IMSI = a.IMSI
	if err := s.PutSIM(a2); err != nil {
		t.Fatal(err)
	}
	if err := s.DeleteSIMs(b.IMSI, "001019999999999"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("delete with a missing IMSI: %v", err)
	}
	if _, err := s.GetSIM(b.IMSI); err != nil {
		t.Fatalf("failed DeleteSIMs removed %s: %v", b.IMSI, err)
	}
	if err := s.DeleteSIM(b.IMSI); err != nil {
		t.Fatal(err)
	}
	s = reopen(t, s)
	got, _ = s.GetSIM(a.IMSI)
	if got.K != a2.K || got.OP != nil || got.SQN != 0 {
		t.Fatalf("put did not replace: %+v", got)
	}
	if _, err := s.GetSIM(b.IMSI); !errors.Is(err, ErrNotFound) {
		t.Fatalf("deleted SIM still there: %v", err)
	}
}

func TestAddSIMsBatch(t *testing.T) {
	s, _ := openTemp(t)
	var sims []SIM
	for i := 200; i > 0; i-- { // reverse order: the store sorts
		sims = append(sims, simN(i))
	}
	if err := s.AddSIMs(sims); err != nil {
		t.Fatal(err)
	}
	n := 0
	prev := ""
	err := s.ForEachSIM(func(sim SIM) error {
		if sim.IMSI <= prev {
			return fmt.Errorf("order: %s after %s", sim.IMSI, prev)
		}
		prev = sim.IMSI
		n++
		return nil
	})
	if err != nil || n != 200 {
		t.Fatalf("n %d, %v", n, err)
	}
	// A stop error from fn is returned as is.
	stop := errors.New("stop")
	if err := s.ForEachSIM(func(SIM) error { return stop }); err != stop {
		t.Fatalf("ForEachSIM returned %v", err)
	}

	// Any existing IMSI fails the whole call before anything is written.
	more := []SIM{simN(500), simN(100)}
	if err := s.AddSIMs(more); !errors.Is(err, ErrExists) {
		t.Fatalf("add existing: %v", err)
	}
	if _, err := s.GetSIM(simN(500).IMSI); !errors.Is(err, ErrNotFound) {
		t.Fatal("partial write")
	}
	// Duplicates within the input, and invalid records, name the problem.
	if err := s.AddSIMs([]SIM{simN(600), simN(600)}); err == nil || !strings.Contains(err.Error(), "given twice") {
		t.Fatalf("duplicate input: %v", err)
	}
	bad := simN(601)
	bad.IMSI = "12"
	if err := s.AddSIMs([]SIM{simN(602), bad}); err == nil || !strings.Contains(err.Error(), "entry 2") {
		t.Fatalf("invalid input: %v", err)
	}
	// PutSIMs replaces.
	repl := simN(100)
	repl.SQN = 99
	if err := s.PutSIMs([]SIM{repl, simN(500)}); err != nil {
		t.Fatal(err)
	}
	if got, _ := s.GetSIM(repl.IMSI); got.SQN != 99 {
		t.Fatalf("PutSIMs did not replace: %+v", got)
	}
}

func TestOpenLockedFailsFast(t *testing.T) {
	_, path := openTemp(t)
	start := time.Now()
	s2, err := OpenOptions(path, Options{LockTimeout: 100 * time.Millisecond})
	if err == nil {
		s2.Close()
		t.Fatal("second open of a held store succeeded")
	}
	if !errors.Is(err, ErrLocked) || !strings.Contains(err.Error(), path) {
		t.Fatalf("error %v: want ErrLocked naming the file", err)
	}
	if d := time.Since(start); d > 10*time.Second {
		t.Fatalf("took %v", d) // guard against a hang only; not a speed check
	}
}

func TestOpenErrors(t *testing.T) {
	dir := t.TempDir()
	if _, err := Open(filepath.Join(dir, "missing", "x.db")); err == nil {
		t.Fatal("opened in a missing directory")
	}
	garbage := filepath.Join(dir, "garbage.db")
	if err := os.WriteFile(garbage, []byte(strings.Repeat("not a bolt file", 1000)), 0o600); err != nil {
		t.Fatal(err)
	}
	if s, err := Open(garbage); err == nil {
		s.Close()
		t.Fatal("opened a garbage file")
	}
	s, err := OpenDir(filepath.Join(dir, "new", "data"))
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if fi, err := os.Stat(filepath.Join(dir, "new", "data")); err != nil || fi.Mode().Perm() != 0o700 {
		t.Fatalf("data dir: %v %v", fi.Mode(), err)
	}
	if fi, err := os.Stat(s.Path()); err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("store file: %v %v", fi.Mode(), err)
	}
}

func TestUpdateSQN(t *testing.T) {
	s, _ := openTemp(t)
	sim := simN(1)
	sim.SQN = 0x100
	sim.AMF = [2]byte{0xb9, 0xb9}
	if err := s.AddSIM(sim); err != nil {
		t.Fatal(err)
	}
	// fn sees the credentials and the stored SQN; its result is stored.
	err := s.UpdateSQN(sim.IMSI, func(c aka.Credentials, sqn uint64) (uint64, error) {
		if c != sim.Credentials() || sqn != 0x100 {
			return 0, fmt.Errorf("fn got %+v sqn %#x", c, sqn)
		}
		return sqn + 32, nil
	})
	if err != nil {
		t.Fatal(err)
	}
	// An error from fn is returned as is and nothing is written.
	boom := errors.New("boom")
	if err := s.UpdateSQN(sim.IMSI, func(aka.Credentials, uint64) (uint64, error) { return 1 << 40, boom }); err != boom {
		t.Fatalf("fn error: %v", err)
	}
	// More than 48 bits is refused.
	if err := s.UpdateSQN(sim.IMSI, func(aka.Credentials, uint64) (uint64, error) { return MaxSQN + 1, nil }); err == nil {
		t.Fatal("49-bit SQN stored")
	}
	if err := s.UpdateSQN("001019999999999", func(aka.Credentials, uint64) (uint64, error) { return 0, nil }); !errors.Is(err, ErrNotFound) {
		t.Fatalf("missing: %v", err)
	}
	s = reopen(t, s)
	got, _ := s.GetSIM(sim.IMSI)
	if got.SQN != 0x120 {
		t.Fatalf("SQN %#x after reopen, want 0x120", got.SQN)
	}
	// Concurrent updates are serialised: none is lost.
	const workers, each = 8, 25
	var wg sync.WaitGroup
	for range workers {
		wg.Go(func() {
			for range each {
				if err := s.UpdateSQN(sim.IMSI, func(_ aka.Credentials, sqn uint64) (uint64, error) { return sqn + 1, nil }); err != nil {
					t.Error(err)
				}
			}
		})
	}
	wg.Wait()
	if got, _ := s.GetSIM(sim.IMSI); got.SQN != 0x120+workers*each {
		t.Fatalf("SQN %#x after concurrent updates, want %#x", got.SQN, 0x120+workers*each)
	}
}
