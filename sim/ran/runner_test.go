package ran

import (
	"bytes"
	"context"
	"encoding/json"
	"maps"
	"net/netip"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/simgate/simgate/core/udr"
	"github.com/simgate/simgate/sim/aka"
)

func TestConfigValidate(t *testing.T) {
	tests := []struct {
		name string
		mod  func(*Config)
		want string
	}{
		{"defaults", func(*Config) {}, ""},
		{"imsi_from", func(c *Config) { c.IMSIFrom = "001010000000001" }, ""},
		{"bad imsi", func(c *Config) { c.IMSIFrom = "00101x" }, "ran.imsi_from"},
		{"both sources", func(c *Config) { c.IMSIFrom, c.SIMFile = "001010000000001", "x.json" }, "give one"},
		{"rate", func(c *Config) { c.Rate = -1 }, "ran.rate"},
		{"gnbs", func(c *Config) { c.GNBs = 0 }, "ran.gnbs"},
		{"timeout", func(c *Config) { c.Timeout = 0 }, "ran.timeout"},
		{"mcc", func(c *Config) { c.MCC = "1234" }, "ran.mcc"},
		{"sd", func(c *Config) { c.SD = "xyz123" }, "ran.sd"},
		{"n3", func(c *Config) { c.N3 = "::1" }, "ran.n3"},
		{"imei tac", func(c *Config) { c.IMEITAC = "123" }, "ran.imei_tac"},
		{"scheme", func(c *Config) { c.SUCI.Scheme = "C" }, "ran.suci.scheme"},
		{"profile A without key", func(c *Config) { c.SUCI.Scheme, c.SUCI.KeyID = "A", 1 }, "ran.suci.public_key"},
		{"null with key id", func(c *Config) { c.SUCI.KeyID = 3 }, "ran.suci"},
		{"ciphering", func(c *Config) { c.Ciphering = []string{"NEA4"} }, "ran.ciphering"},
		{"integrity NIA0", func(c *Config) { c.Integrity = []string{"NIA0"} }, "ran.integrity"},
		{"transport", func(c *Config) { c.N2.Transport = "tcp" }, "ran.n2"},
		{"token", func(c *Config) { c.Token = true }, ""},
		{"dns", func(c *Config) { c.DNS = "dns.example" }, "ran.dns"},
		{"no dns", func(c *Config) { c.DNS = "" }, ""},
		{"token url", func(c *Config) { c.Token, c.TokenURL = true, "ftp://endorse.soracom.io/" }, "ran.token_url"},
		{"token url without host", func(c *Config) { c.Token, c.TokenURL = true, "http:///x" }, "ran.token_url"},
		{"token issuer", func(c *Config) { c.Token, c.TokenIssuer = true, " " }, "ran.token_issuer"},
		{"token without session", func(c *Config) { c.Token, c.Session = true, false }, "ran.session"},
		{"socks", func(c *Config) { c.SOCKS = "127.0.0.1" }, "ran.socks"},
		{"socks without session", func(c *Config) { c.SOCKS, c.Session = "127.0.0.1:1080", false }, "ran.session"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := DefaultConfig()
			tt.mod(&c)
			err := c.Validate()
			switch {
			case tt.want == "" && err != nil:
				t.Fatalf("Validate: %v", err)
			case tt.want != "" && (err == nil || !strings.Contains(err.Error(), tt.want)):
				t.Fatalf("Validate = %v, want an error naming %q", err, tt.want)
			}
		})
	}
}

func TestPercentile(t *testing.T) {
	ms := func(v ...int) []time.Duration {
		out := make([]time.Duration, len(v))
		for i, x := range v {
			out[i] = time.Duration(x) * time.Millisecond
		}
		return out
	}
	tests := []struct {
		samples []time.Duration
		want    Latency
	}{
		{nil, Latency{}},
		{ms(5), Latency{5, 5, 5, 5}},
		// Nearest rank of 1..10: p50 = 5th, p90 = 9th, p99 = 10th.
		{ms(10, 9, 8, 7, 6, 5, 4, 3, 2, 1), Latency{5, 9, 10, 10}},
		{ms(1, 1, 1, 1, 100), Latency{1, 100, 100, 100}},
	}
	for _, tt := range tests {
		if got := latencyOf(tt.samples); got != tt.want {
			t.Errorf("latencyOf(%v) = %+v, want %+v", tt.samples, got, tt.want)
		}
	}
	var many []time.Duration
	for i := 1; i <= 1000; i++ {
		many = append(many, time.Duration(i)*time.Microsecond)
	}
	if got := latencyOf(many); got.P50 != 0.5 || got.P90 != 0.9 || got.P99 != 0.99 || got.Max != 1 {
		t.Errorf("latencyOf(1..1000 us) = %+v", got)
	}
}

// TestBucket checks the token bucket's arithmetic on a synthetic clock.
func TestBucket(t *testing.T) {
	t0 := time.Unix(1000, 0)
	b := newBucket(10, 1, t0)
	for i, want := range []time.Duration{0, 100 * time.Millisecond, 200 * time.Millisecond} {
		if got := b.reserve(t0); got != want {
			t.Errorf("reserve %d at t0 = %v, want %v", i, got, want)
		}
	}
	// A long pause refills at most burst tokens.
	b = newBucket(10, 3, t0)
	for range 3 {
		b.reserve(t0)
	}
	t1 := t0.Add(10 * time.Second)
	for i, want := range []time.Duration{0, 0, 0, 100 * time.Millisecond} {
		if got := b.reserve(t1); got != want {
			t.Errorf("after pause, reserve %d = %v, want %v", i, got, want)
		}
	}
	if d := newBucket(0, 1, t0).reserve(t0); d != 0 {
		t.Errorf("unlimited bucket waits %v", d)
	}
}

func TestIMEIAndIMSIs(t *testing.T) {
	imei := imeiOf(udr.SIMCard{IMSI: "001010000012345"}, "35693803")
	if imei[:14] != "35693803012345" || udr.ValidateIMEI(imei) != nil {
		t.Errorf("imeiOf = %s", imei)
	}
	if got := imeiOf(udr.SIMCard{IMSI: "001010000000001", IMEI: "490154203237518"}, "35693803"); got != "490154203237518" {
		t.Errorf("locked SIM got IMEI %s", got)
	}
	for _, tt := range []struct{ in, want string }{{"001", "002"}, {"019", "020"}, {"0999", "1000"}} {
		if got, ok := increment(tt.in); !ok || got != tt.want {
			t.Errorf("increment(%s) = %s %v", tt.in, got, ok)
		}
	}
	if _, ok := increment("999"); ok {
		t.Error("increment(999) did not overflow")
	}
	cfg := DefaultConfig()
	cfg.IMSIFrom, cfg.UEs = "001010000000009", 3
	cards, err := derivedCards(cfg)
	if err != nil || len(cards) != 3 || cards[2].IMSI != "001010000000011" ||
		cards[1].K != udr.DerivedK([]byte("simgate"), "001010000000010") || cards[0].AMF != [2]byte{0x80, 0} {
		t.Errorf("derivedCards = %+v, %v", cards, err)
	}
}

func TestHighestSQN(t *testing.T) {
	st := aka.State{INDBits: 5, SEQ: make([]uint64, 32)}
	if _, ok := highestSQN(st); ok {
		t.Error("a fresh USIM has an SQN")
	}
	st.SEQ[3], st.SEQ[7] = 9, 4
	if sqn, ok := highestSQN(st); !ok || sqn != 9<<5|3 {
		t.Errorf("highestSQN = %#x", sqn)
	}
}

// runConfig is a run against the script AMF: UEs 001010000000001 up.
func runConfig(t testing.TB, amf *scriptAMF, ues int) Config {
	cfg := DefaultConfig()
	cfg.AMF, cfg.N2 = amf.addr(), testN2(t)
	cfg.IMSIFrom, cfg.UEs, cfg.Rate = "001010000000001", ues, 0
	cfg.Timeout = 500 * time.Millisecond
	return cfg
}

func TestRun(t *testing.T) {
	amf := newScriptAMF(t)
	cfg := runConfig(t, amf, 12)
	var progress bytes.Buffer
	var attached Report
	var results []Result
	var r *Runner
	r, err := New(cfg, Options{NewUE: newFakeUE, Logger: testLogger(t), Progress: &progress,
		Attached: func(rep Report) { attached, results = rep, r.Results() }})
	if err != nil {
		t.Fatal(err)
	}
	rep, err := r.Run(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	// UEs ...07 rejected #7, ...08 silent, ...09 auth-rejected; the others
	// register, open a session and deregister.
	want := map[string]int{"5gmm-cause-7": 1, "timeout": 1, "auth-reject": 1}
	if rep.UEs != 12 || rep.Registered != 9 || rep.Sessions != 9 || rep.Deregistered != 9 || !maps.Equal(rep.Failures, want) {
		t.Errorf("report %+v", rep)
	}
	if attached.Registered != 9 || attached.Deregistered != 0 {
		t.Errorf("report at attach %+v", attached)
	}
	for _, k := range []string{LatencyRegistration, LatencySession, LatencyDeregistration} {
		l := rep.LatencyMS[k]
		if l.P50 <= 0 || l.P50 > l.P90 || l.P90 > l.P99 || l.P99 > l.Max {
			t.Errorf("%s latency %+v", k, l)
		}
	}
	// The timed-out UE's context was released by request.
	if _, rr := amf.stats(); rr != 1 {
		t.Errorf("%d UE context release requests, want 1", rr)
	}
	for _, res := range results {
		if udr.ValidateIMEI(res.IMEI) != nil {
			t.Errorf("%s: IMEI %s", res.IMSI, res.IMEI)
		}
		switch res.IMSI[len(res.IMSI)-2:] {
		case "07", "08", "09":
			if res.Failure == "" || len(res.Sessions) != 0 {
				t.Errorf("%s: result %+v", res.IMSI, res)
			}
			continue
		}
		if res.Failure != "" || len(res.Sessions) != 1 {
			t.Errorf("%s: result %+v", res.IMSI, res)
			continue
		}
		s := res.Sessions[0]
		if s.PSI != 1 || s.UEAddr != fakeAddr(res.IMSI) || s.UPF != netip.MustParseAddr("127.0.0.8") || s.DLTEID == 0 || s.ULTEID == 0 {
			t.Errorf("%s: session %+v", res.IMSI, s)
		}
	}
	out := progress.String()
	if !strings.Contains(out, "registered 9") || strings.ContainsAny(out, "\r\x1b") {
		t.Errorf("progress %q", out)
	}
}

// TestReportJSON: the report's keys are exactly those the issue names, plus
// the ones added since.
func TestReportJSON(t *testing.T) {
	st := newStats()
	st.sample(LatencyRegistration, 3*time.Millisecond)
	st.fail("timeout")
	b, err := json.Marshal(st.report(2, time.Second))
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]json.RawMessage
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatal(err)
	}
	keys := slices.Sorted(maps.Keys(m))
	want := []string{"deregistered", "elapsed_s", "failures", "latency_ms", "registered", "resyncs", "sessions", "tokens", "ues"}
	if !slices.Equal(keys, want) {
		t.Errorf("keys %v, want %v", keys, want)
	}
	var lat map[string]map[string]float64
	if err := json.Unmarshal(m["latency_ms"], &lat); err != nil {
		t.Fatal(err)
	}
	for _, k := range []string{"registration", "pdu_session", "token"} {
		if got := slices.Sorted(maps.Keys(lat[k])); !slices.Equal(got, []string{"max", "p50", "p90", "p99"}) {
			t.Errorf("latency_ms.%s keys %v", k, got)
		}
	}
	if lat["registration"]["p50"] != 3 || string(m["failures"]) != `{"timeout":1}` || string(m["ues"]) != "2" {
		t.Errorf("report %s", b)
	}
}

func TestRunSIMFileWritesSQNs(t *testing.T) {
	amf := newScriptAMF(t)
	path := filepath.Join(t.TempDir(), "sims.json")
	f := &udr.SIMFile{Version: udr.SIMFileVersion}
	for i, imsi := range []string{"001010000000001", "001010000000002", "001010000000007"} {
		f.SIMs = append(f.SIMs, udr.SIMCard{IMSI: imsi, MNCLen: 2, AMF: [2]byte{0x80}, SQN: uint64(0x40 + i)})
	}
	f.SIMs[1].IMEI = "490154203237518"
	if err := udr.WriteSIMFile(path, f); err != nil {
		t.Fatal(err)
	}
	cfg := runConfig(t, amf, 0)
	cfg.IMSIFrom, cfg.SIMFile = "", path
	var r *Runner
	var results []Result
	r, err := New(cfg, Options{NewUE: newFakeUE, Logger: testLogger(t), Attached: func(Report) { results = r.Results() }})
	if err != nil {
		t.Fatal(err)
	}
	rep, err := r.Run(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if rep.UEs != 3 || rep.Registered != 2 {
		t.Errorf("report %+v", rep)
	}
	if results[1].IMEI != "490154203237518" {
		t.Errorf("locked SIM's UE has IMEI %s", results[1].IMEI)
	}
	got, err := udr.ReadSIMFile(path)
	if err != nil {
		t.Fatal(err)
	}
	// Each registration advanced the SQN: SEQ+1 with the next IND.
	for i, want := range []uint64{0x40 + 33, 0x41 + 33, 0x42} {
		if got.SIMs[i].SQN != want {
			t.Errorf("SIM %s: SQN %#x, want %#x", got.SIMs[i].IMSI, got.SIMs[i].SQN, want)
		}
	}
	if got.SIMs[1].IMEI != "490154203237518" {
		t.Error("SIM file lost an IMEI")
	}
	// Too many UEs for the file.
	cfg.UEs = 4
	if _, err := New(cfg, Options{}); err == nil || !strings.Contains(err.Error(), "holds 3") {
		t.Errorf("New with 4 UEs of 3 = %v", err)
	}
}

func TestRunNGSetupFailure(t *testing.T) {
	amf := newScriptAMF(t)
	cfg := runConfig(t, amf, 4)
	cfg.MCC, cfg.IMSIFrom = "999", "999010000000001"
	r, err := New(cfg, Options{NewUE: newFakeUE, Logger: testLogger(t)})
	if err != nil {
		t.Fatal(err)
	}
	rep, err := r.Run(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if rep.Registered != 0 || !maps.Equal(rep.Failures, map[string]int{"ng-setup-failure": 4}) {
		t.Errorf("report %+v", rep)
	}
}

func TestRunNoAMF(t *testing.T) {
	cfg := DefaultConfig()
	cfg.AMF, cfg.N2 = "127.0.0.1:1", testN2(t)
	cfg.N2.HandshakeTimeout = 200 * time.Millisecond
	cfg.IMSIFrom, cfg.UEs = "001010000000001", 1
	r, err := New(cfg, Options{NewUE: newFakeUE})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := r.Run(context.Background()); err == nil || !strings.Contains(err.Error(), "gnb 1") {
		t.Errorf("Run without an AMF = %v", err)
	}
}

func TestRunHoldAndGNBs(t *testing.T) {
	amf := newScriptAMF(t)
	cfg := runConfig(t, amf, 6)
	cfg.Hold, cfg.GNBs = true, 3
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var mu sync.Mutex
	var held Report
	r, err := New(cfg, Options{NewUE: newFakeUE, Logger: testLogger(t), Attached: func(rep Report) {
		mu.Lock()
		held = rep
		mu.Unlock()
		cancel()
	}})
	if err != nil {
		t.Fatal(err)
	}
	rep, err := r.Run(ctx)
	if err != nil {
		t.Fatal(err)
	}
	mu.Lock()
	defer mu.Unlock()
	if held.Sessions != 6 || held.Deregistered != 0 || rep.Deregistered != 6 || len(rep.Failures) != 0 {
		t.Errorf("held %+v, final %+v", held, rep)
	}
	if assocs, _ := amf.stats(); assocs != 3 {
		t.Errorf("%d associations, want 3", assocs)
	}
}

// TestRunInterrupted: cancelling before every UE started counts the rest as
// not started; those started still deregister.
func TestRunInterrupted(t *testing.T) {
	amf := newScriptAMF(t)
	cfg := runConfig(t, amf, 50)
	cfg.Rate, cfg.Burst = 20, 1
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	r, err := New(cfg, Options{NewUE: newFakeUE, Logger: testLogger(t)})
	if err != nil {
		t.Fatal(err)
	}
	rep, err := r.Run(ctx)
	if err != nil {
		t.Fatal(err)
	}
	ns := rep.Failures["not-started"]
	if ns == 0 || ns == 50 || rep.Registered+ns+rep.Failures["5gmm-cause-7"]+rep.Failures["timeout"]+rep.Failures["auth-reject"] != 50 ||
		rep.Deregistered != rep.Registered {
		t.Errorf("report %+v", rep)
	}
}

// TestProgressTTY: on a terminal the line is rewritten in place and the
// last one ends the line.
func TestProgressTTY(t *testing.T) {
	amf := newScriptAMF(t)
	var out bytes.Buffer
	r, err := New(runConfig(t, amf, 2), Options{NewUE: newFakeUE, Progress: &out, TTY: true})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := r.Run(context.Background()); err != nil {
		t.Fatal(err)
	}
	s := out.String()
	if !strings.HasPrefix(s, "\r\x1b[Kran: ") || !strings.HasSuffix(s, "\n") || !strings.Contains(s, "registered 2") {
		t.Errorf("progress %q", s)
	}
}
