package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"math/rand/v2"
	"net/netip"
	"reflect"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/simgate/simgate/core/udr"
)

// TestStoreView: `simgate upf` reads the store as a snapshot when it is
// free, and issues nothing (errors) while it has never been readable.
func TestStoreView(t *testing.T) {
	dir := t.TempDir()
	st, err := udr.OpenDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	f := &udr.ImportFile{Seed: "t", SIMs: []udr.Entry{{Range: &udr.Range{FirstIMSI: "001010000000001", Count: 2}, K: udr.KeyDerive, OPc: udr.KeyDerive, Group: "closed"}}}
	sims, err := f.Expand(udr.ExpandOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if err := st.AddSIMs(sims); err != nil {
		t.Fatal(err)
	}
	closed := udr.Group{Name: "closed", Endorse: udr.DefaultEndorse(), Beam: udr.BeamConfig{}}
	closed.Endorse.Enabled = false
	if err := st.PutGroup(closed); err != nil {
		t.Fatal(err)
	}

	// Held by another opener (the core): no snapshot, nothing is answered.
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	log := slog.New(slog.DiscardHandler)
	held := newStoreView(ctx, dir, log)
	if _, err := held.SIM("001010000000001"); !errors.Is(err, errNoSnapshot) {
		t.Errorf("SIM with the store held: %v, want errNoSnapshot", err)
	}
	if _, err := held.Group("closed"); !errors.Is(err, errNoSnapshot) {
		t.Errorf("Group with the store held: %v, want errNoSnapshot", err)
	}
	st.Close()

	// Free: the snapshot has the SIMs and the group's own settings.
	if err := held.refresh(); err != nil {
		t.Fatalf("refresh with the store free: %v", err)
	}
	v := newStoreView(ctx, dir, log)
	for _, sv := range []*storeView{held, v} {
		sim, err := sv.SIM("001010000000002")
		if err != nil || sim.IMSI != "001010000000002" || sim.Group != "closed" || sim.Status != udr.StatusActive {
			t.Errorf("SIM = %+v, %v", sim, err)
		}
		if _, err := sv.SIM("001010000000003"); !errors.Is(err, udr.ErrNotFound) {
			t.Errorf("unknown SIM: %v, want ErrNotFound", err)
		}
		if g, err := sv.Group("closed"); err != nil || g.Endorse.Enabled {
			t.Errorf("group closed = %+v, %v: want Endorse disabled", g, err)
		}
		if g, err := sv.Group("other"); err != nil || !reflect.DeepEqual(g.Endorse, udr.DefaultEndorse()) || g.Name != "other" {
			t.Errorf("group never configured = %+v, %v: want the defaults", g, err)
		}
		if _, err := sv.Group("bad name!"); err == nil {
			t.Error("invalid group name accepted")
		}
	}
	// The snapshot does not keep the store: the core can open it.
	st, err = udr.OpenDir(dir)
	if err != nil {
		t.Fatalf("the store after snapshots: %v", err)
	}
	st.Close()
}

// TestUPFApartFromCore: `simgate upf` and `simgate core` as two processes
// on one data dir (the UPF first, reading the store's snapshot before the
// core holds it); devices attached by `simgate ran --token` each get a
// token through the UPF's user plane that verifies and names their SIM;
// one whose group has Endorse disabled gets none.
func TestUPFApartFromCore(t *testing.T) {
	dir := t.TempDir()
	st, err := udr.OpenDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	f := &udr.ImportFile{Seed: defaultSeed, SIMs: []udr.Entry{
		{Range: &udr.Range{FirstIMSI: "001010000000001", Count: 3}, K: udr.KeyDerive, OPc: udr.KeyDerive},
		{Range: &udr.Range{FirstIMSI: "001010000000004", Count: 1}, K: udr.KeyDerive, OPc: udr.KeyDerive, Group: "closed"},
	}}
	sims, err := f.Expand(udr.ExpandOptions{})
	if err != nil {
		t.Fatal(err)
	}
	closed := udr.Group{Name: "closed", Endorse: udr.DefaultEndorse(), Beam: udr.BeamConfig{}}
	closed.Endorse.Enabled = false
	if err := errors.Join(st.AddSIMs(sims), st.PutGroup(closed), st.Close()); err != nil {
		t.Fatal(err)
	}
	// Loopback addresses of this test's own: N3 binds port 2152.
	n3, gnb := "127.0.0."+strconv.Itoa(100+rand.IntN(50)), "127.0.0."+strconv.Itoa(150+rand.IntN(50))

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	start := func(name string, args ...string) (*lockedBuffer, chan int) {
		var errb lockedBuffer
		done := make(chan int, 1)
		go func() { done <- run(ctx, append(args, "--data-dir", dir), &bytes.Buffer{}, &errb) }()
		t.Cleanup(func() {
			cancel()
			select {
			case code := <-done:
				if code != 0 {
					t.Errorf("%s exited %d: %s", name, code, errb.String())
				}
			case <-time.After(20 * time.Second):
				t.Errorf("%s did not stop", name)
			}
		})
		return &errb, done
	}
	find := func(b *lockedBuffer, re *regexp.Regexp) string {
		for deadline := time.Now().Add(15 * time.Second); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
			if m := re.FindStringSubmatch(b.String()); m != nil {
				return m[1]
			}
		}
		t.Fatalf("no %s in:\n%s", re, b.String())
		return ""
	}
	upfErr, _ := start("upf", "upf", "--upf.n4_addr", "127.0.0.1:0", "--upf.n3_addr", n3)
	n4 := find(upfErr, regexp.MustCompile(`listening for SMFs" n4=(\S+)`))
	find(upfErr, regexp.MustCompile(`(user plane up)`))
	if !strings.Contains(upfErr.String(), "subscriber store snapshot") {
		t.Fatalf("the UPF read no snapshot:\n%s", upfErr.String())
	}
	coreErr, _ := start("core", "core", "--smf.upf_addr", n4, "--amf.n2.local_addr", "127.0.0.1:0", "--http.addr", "127.0.0.1:0")
	n2 := find(coreErr, regexp.MustCompile(`n2=(127\.0\.0\.1:\d+)`))
	jwks := find(coreErr, regexp.MustCompile(`jwks=(\S+)`))

	out, errs, code := runCmd(t, "ran", "--ues", "4", "--amf", n2, "--token", "--ran.n3", gnb, "--ran.jwks_url", jwks, "--imsi-from", "001010000000001")
	var rep struct {
		UEs, Registered, Sessions, Tokens int
		Failures                          map[string]int
	}
	if err := json.Unmarshal([]byte(out), &rep); err != nil {
		t.Fatalf("ran (%d) report %q: %v\n%s", code, out, err, errs)
	}
	if rep.Registered != 4 || rep.Sessions != 4 || rep.Tokens != 3 || len(rep.Failures) != 1 {
		t.Fatalf("report %+v: want 4 sessions, 3 tokens and the closed group's failure\nupf:\n%s", rep, upfErr.String())
	}
	for k := range rep.Failures {
		if !strings.Contains(k, "token") {
			t.Errorf("failure %q is not a refused token", k)
		}
	}
}

func TestProtectedSockets(t *testing.T) {
	got := protectedSockets(
		netip.MustParseAddrPort("127.0.0.1:2152"), // N3
		netip.MustParseAddrPort("[::ffff:127.0.0.1]:8805"),
		"127.0.0.1:0",    // ephemeral: unknown yet
		"127.0.0.1",      // no port
		"[::1]:38412",    // IPv6: the data network is IPv4
		"0.0.0.0:8080",   // every host address
		"localhost:8080", // not an address
		netip.AddrPort{},
	)
	want := []string{"127.0.0.1:2152", "127.0.0.1:8805", "0.0.0.0:8080"}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("protectedSockets = %q, want %q", got, want)
	}
}

// ownN3 is a loopback address for a test's UPF N3 socket, which binds port
// 2152: tests (and test binaries) running at once do not collide.
func ownN3() string {
	return netip.AddrFrom4([4]byte{127, 0, byte(2 + rand.IntN(200)), byte(2 + rand.IntN(250))}).String()
}
