package main

import (
	"context"
	"encoding/json"
	"log/slog"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/simgate/simgate/core/amf"
	"github.com/simgate/simgate/core/ausf"
	"github.com/simgate/simgate/core/n2"
	"github.com/simgate/simgate/core/smf"
	"github.com/simgate/simgate/core/udm"
	"github.com/simgate/simgate/core/udr"
	"github.com/simgate/simgate/gtp/upf"
)

func TestRANBadInput(t *testing.T) {
	dir := t.TempDir()
	tests := []struct {
		want string
		args []string
	}{
		{"imsi_from", []string{"ran", "--ues", "1", "--imsi-from", "00101x"}},
		{"not both", []string{"ran", "--ues", "1", "--imsi-from", "001010000000001", "--sim-file", filepath.Join(dir, "s.json")}},
		{"--rate", []string{"ran", "--ues", "1", "--imsi-from", "001010000000001", "--rate", "fast"}},
		{"--rate", []string{"ran", "--ues", "1", "--imsi-from", "001010000000001", "--rate", "-5/s"}},
		{"transport", []string{"ran", "--ues", "1", "--imsi-from", "001010000000001", "--n2.transport", "tcp"}},
		{"gnbs", []string{"ran", "--ues", "1", "--imsi-from", "001010000000001", "--gnbs", "0"}},
		{"ues", []string{"ran", "--imsi-from", "001010000000001"}},
		{"sim file", []string{"ran", "--sim-file", filepath.Join(dir, "none.json")}},
	}
	for _, tt := range tests {
		mustFail(t, dir, tt.want, tt.args...)
	}
}

func TestParseRate(t *testing.T) {
	for in, want := range map[string]float64{"200": 200, "200/s": 200, "1.5/s": 1.5, "0": 0} {
		if got, err := parseRate(in); err != nil || got != want {
			t.Errorf("parseRate(%q) = %v, %v", in, got, err)
		}
	}
	for _, in := range []string{"", "x/s", "-1", "NaN", "Inf/s", "5/min"} {
		if _, err := parseRate(in); err == nil {
			t.Errorf("parseRate(%q) succeeded", in)
		}
	}
}

// startTestCore runs the core (AMF, AUSF, UDM, SMF, UPF) over dataDir on
// loopback until the test ends, and returns the AMF's N2 address (UDP).
func startTestCore(t *testing.T, dataDir string) (addr string, store *udr.Store) {
	t.Helper()
	log := slog.New(slog.DiscardHandler)
	store, err := udr.OpenDir(dataDir)
	if err != nil {
		t.Fatal(err)
	}
	keys, err := udm.OpenKeys(dataDir, log)
	if err != nil {
		t.Fatal(err)
	}
	u, err := udm.New(udm.DefaultConfig(), store, keys, nil)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	ucfg := upf.DefaultConfig()
	ucfg.N4Addr, ucfg.HeartbeatInterval = "127.0.0.1:0", 0
	up, err := upf.Start(ctx, ucfg, log)
	if err != nil {
		t.Fatal(err)
	}
	scfg := smf.DefaultConfig()
	scfg.N4Addr, scfg.UPFAddr, scfg.HeartbeatInterval = "127.0.0.1:0", up.Addr().String(), 0
	n4, err := smf.ListenN4(ctx, scfg, log)
	if err != nil {
		t.Fatal(err)
	}
	s, err := smf.New(scfg, n4, log)
	if err != nil {
		t.Fatal(err)
	}
	acfg := amf.DefaultConfig()
	acfg.N2 = n2.Config{Transport: n2.TransportUDP, LocalAddr: "127.0.0.1:0", ShutdownTimeout: 300 * time.Millisecond}
	a, err := amf.New(acfg, amf.Deps{AUSF: ausf.New(u, ausf.Options{}), UDM: u, SMF: s})
	if err != nil {
		t.Fatal(err)
	}
	ln, err := n2.Listen(ctx, acfg.N2)
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- a.Serve(ctx, ln) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Error(err)
		}
		<-up.Done()
		<-n4.Node().Done()
		store.Close()
	})
	return ln.Addr().String(), store
}

// TestRANRun provisions SIMs with `simgate sim import`, attaches them with
// `simgate ran` from the SIM file and from --imsi-from, and checks the
// report and the SQNs written back.
func TestRANRun(t *testing.T) {
	dir := t.TempDir()
	ranges := filepath.Join(dir, "ranges.yaml")
	simFile := filepath.Join(dir, "sims.json")
	err := os.WriteFile(ranges, []byte(`seed: simgate
sims:
  - range: {first_imsi: "001010000000001", count: 5, first_msisdn: "819000000001"}
    k: derive
    opc: derive
`), 0o600)
	if err != nil {
		t.Fatal(err)
	}
	mustRun(t, dir, "sim", "import", ranges, "--sim-file", simFile)
	addr, store := startTestCore(t, dir)

	report := filepath.Join(dir, "report.json")
	out := mustRun(t, dir, "ran", "--sim-file", simFile, "--amf", addr, "--n2.transport", "udp", "--rate", "0",
		"--json", report)
	if out != "" {
		t.Errorf("stdout with --json: %q", out)
	}
	b, err := os.ReadFile(report)
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]json.RawMessage
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatalf("report %s: %v", b, err)
	}
	for _, k := range []string{"ues", "registered", "sessions", "failures", "latency_ms"} {
		if _, ok := m[k]; !ok {
			t.Errorf("report lacks %q: %s", k, b)
		}
	}
	var rep struct {
		UEs, Registered, Sessions int
		Failures                  map[string]int
		LatencyMS                 map[string]map[string]float64 `json:"latency_ms"`
	}
	if err := json.Unmarshal(b, &rep); err != nil {
		t.Fatal(err)
	}
	if rep.UEs != 5 || rep.Registered != 5 || rep.Sessions != 5 || len(rep.Failures) != 0 {
		t.Errorf("report %s", b)
	}
	if got := slices.Sorted(maps.Keys(rep.LatencyMS["registration"])); !slices.Equal(got, []string{"max", "p50", "p90", "p99"}) ||
		rep.LatencyMS["registration"]["p50"] <= 0 {
		t.Errorf("registration latency %v", rep.LatencyMS["registration"])
	}
	// The USIMs' SQNs went back into the SIM file, in step with the store.
	f, err := udr.ReadSIMFile(simFile)
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range f.SIMs {
		s, err := store.GetSIM(c.IMSI)
		if err != nil {
			t.Fatal(err)
		}
		if c.SQN == 0 || c.SQN != s.SQN {
			t.Errorf("%s: SIM file SQN %#x, store %#x", c.IMSI, c.SQN, s.SQN)
		}
	}

	// --imsi-from with the default seed reaches the same subscribers; the
	// report goes to stdout and progress lines (no control characters)
	// to stderr.
	stdout, stderr, code := runCmd(t, "ran", "--ues", "4", "--imsi-from", "001010000000003", "--amf", addr,
		"--n2.transport", "udp", "--data-dir", dir)
	if code != 0 {
		t.Fatalf("ran --imsi-from: %s", stderr)
	}
	if err := json.Unmarshal([]byte(stdout), &rep); err != nil {
		t.Fatalf("stdout %q: %v", stdout, err)
	}
	// 001010000000006 is not provisioned: 5GS services not allowed.
	if rep.UEs != 4 || rep.Registered != 3 || rep.Failures["5gmm-cause-7"] != 1 {
		t.Errorf("report %s", stdout)
	}
	if !strings.Contains(stderr, "registered 3") || strings.ContainsAny(stderr, "\r\x1b") {
		t.Errorf("progress %q", stderr)
	}
}
