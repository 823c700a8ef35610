package ran

import (
	"context"
	"runtime"
	"testing"
	"time"

	"github.com/simgate/simgate/core/udr"
)

// BenchmarkRatePacing measures the rate the token bucket actually paces
// starts at, for a configured 2000/s (the metric starts/s should read 2000).
func BenchmarkRatePacing(b *testing.B) {
	const rate = 2000
	bk := newBucket(rate, 1, time.Now())
	ctx := context.Background()
	start := time.Now()
	for b.Loop() {
		if err := bk.wait(ctx); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "starts/s")
}

// BenchmarkRunScript: the runner's own cost: b.N fake UEs attach (register,
// session) and deregister through a real gNB and the scripted AMF.
func BenchmarkRunScript(b *testing.B) {
	amf := newScriptAMF(b)
	cfg := runConfig(b, amf, b.N)
	cfg.IMSIFrom = "001010000000000"
	cfg.Timeout = 30 * time.Second
	cards, err := derivedCards(cfg)
	if err != nil {
		b.Fatal(err)
	}
	// Only IMSIs the script AMF accepts (not ending in 7, 8 or 9).
	f := &udr.SIMFile{Version: udr.SIMFileVersion}
	for imsi := cards[0].IMSI; len(f.SIMs) < b.N; imsi, _ = increment(imsi) {
		if d := imsi[len(imsi)-1]; d < '7' {
			f.SIMs = append(f.SIMs, udr.SIMCard{IMSI: imsi, MNCLen: 2})
		}
	}
	cfg.IMSIFrom, cfg.SIMFile = "", writeSIMFile(b, f)
	r, err := New(cfg, Options{NewUE: newFakeUE})
	if err != nil {
		b.Fatal(err)
	}
	b.ResetTimer()
	rep, err := r.Run(context.Background())
	if err != nil {
		b.Fatal(err)
	}
	b.StopTimer()
	if rep.Sessions != b.N {
		b.Fatalf("report %+v", rep)
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "ues/s")
}

// e2eBench provisions n subscribers in a fresh core and returns a run of
// them.
func e2eBench(b *testing.B, n int) (*core, Config) {
	c := startCore(b, b.TempDir())
	sims := make([]udr.SIM, n)
	f := &udr.SIMFile{Version: udr.SIMFileVersion}
	imsi := "001010000000001"
	for i := range sims {
		if i > 0 {
			imsi, _ = increment(imsi)
		}
		sims[i] = udr.SIM{IMSI: imsi, MNCLen: 2, K: udr.DerivedK([]byte(e2eSeed), imsi), OPc: udr.DerivedOPc([]byte(e2eSeed), imsi),
			AMF: [2]byte{0x80, 0}, MSISDN: "8190" + imsi[len(imsi)-8:]}
	}
	if err := c.store.AddSIMs(sims); err != nil {
		b.Fatal(err)
	}
	for _, s := range sims {
		f.SIMs = append(f.SIMs, udr.CardOf(s))
	}
	cfg := e2eConfig(b, c, n)
	cfg.SIMFile = writeSIMFile(b, f)
	cfg.Timeout = 30 * time.Second
	return c, cfg
}

// BenchmarkE2EAttach: b.N real UEs register (5G AKA, NAS security), open a
// PDU session (SMF, PFCP to the UPF) and deregister, through one gNB,
// started at 1000/s (the core's target rate); core and RAN share the
// process. Metrics: attaches per second, latency percentiles, and heap per
// attached UE (core and RAN together).
func BenchmarkE2EAttach(b *testing.B) {
	_, cfg := e2eBench(b, b.N)
	cfg.Rate = 1000
	benchRun(b, cfg)
}

// BenchmarkE2EAttachBurst is BenchmarkE2EAttach with every UE started at
// once: the throughput ceiling, and the queueing it costs.
func BenchmarkE2EAttachBurst(b *testing.B) {
	_, cfg := e2eBench(b, b.N)
	cfg.Rate = 0
	benchRun(b, cfg)
}

// BenchmarkE2ERate200: 1000 UEs registering at 200/s, for the registration
// latency at that load (run with -benchtime=1x).
func BenchmarkE2ERate200(b *testing.B) {
	for b.Loop() {
		b.StopTimer()
		_, cfg := e2eBench(b, 1000)
		cfg.Rate = 200
		b.StartTimer()
		benchRun(b, cfg)
	}
}

func benchRun(b *testing.B, cfg Config) {
	var heapPerUE float64
	var attachedAt time.Time
	var r *Runner
	r, err := New(cfg, Options{Attached: func(rep Report) {
		attachedAt = time.Now()
		var ms runtime.MemStats
		runtime.GC()
		runtime.ReadMemStats(&ms)
		heapPerUE = float64(ms.HeapAlloc) / float64(rep.Sessions)
	}})
	if err != nil {
		b.Fatal(err)
	}
	start := time.Now()
	rep, err := r.Run(context.Background())
	if err != nil {
		b.Fatal(err)
	}
	el := time.Since(start)
	if rep.Sessions != cfg.UEs || len(rep.Failures) != 0 {
		b.Fatalf("report %+v", rep)
	}
	b.ReportMetric(float64(cfg.UEs)/attachedAt.Sub(start).Seconds(), "attached/s")
	b.ReportMetric(float64(cfg.UEs)/el.Seconds(), "attach+detach/s")
	b.ReportMetric(rep.LatencyMS[LatencyRegistration].P50, "reg_p50_ms")
	b.ReportMetric(rep.LatencyMS[LatencyRegistration].P99, "reg_p99_ms")
	b.ReportMetric(rep.LatencyMS[LatencySession].P99, "session_p99_ms")
	b.ReportMetric(heapPerUE, "heap_B/ue")
}
