package smf

import (
	"context"
	"sync/atomic"
	"testing"

	"github.com/simgate/simgate/gtp/pfcp"
)

// benchNet is a test network with a /8 pool, room for every session a
// benchmark makes.
func benchNet(b *testing.B) *testNet {
	return startNet(b, netOpts{mod: func(c *Config) { c.DNNs = []string{"internet=10.0.0.0/8"} }})
}

// BenchmarkCreateActivate: one UE's PDU session establishment and
// activation against a real UPF over PFCP on loopback (two PFCP round
// trips), sessions kept, one caller at a time.
func BenchmarkCreateActivate(b *testing.B) {
	n := benchNet(b)
	ctx := context.Background()
	n1 := estReq(b, 1, 1, 1)
	n2 := gnbResponse(b, pfcp.FTEID{TEID: 0x100, Addr: loopback})
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		i++
		id := ident(i)
		if _, err := n.smf.CreateSession(ctx, id, 1, 1, "", "internet", n1); err != nil {
			b.Fatal(err)
		}
		if err := n.smf.ActivateSession(ctx, id.SUPI, 1, n2); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "sessions/s")
}

// BenchmarkCreateActivateParallel: as BenchmarkCreateActivate with many UEs
// at once (GOMAXPROCS x 16 callers), as an AMF serving many UEs does.
func BenchmarkCreateActivateParallel(b *testing.B) {
	n := benchNet(b)
	n1 := estReq(b, 1, 1, 1)
	n2 := gnbResponse(b, pfcp.FTEID{TEID: 0x100, Addr: loopback})
	var next atomic.Int64
	b.ReportAllocs()
	b.SetParallelism(16)
	b.RunParallel(func(pb *testing.PB) {
		ctx := context.Background()
		for pb.Next() {
			id := ident(int(next.Add(1)))
			if _, err := n.smf.CreateSession(ctx, id, 1, 1, "", "internet", n1); err != nil {
				b.Error(err)
				return
			}
			if err := n.smf.ActivateSession(ctx, id.SUPI, 1, n2); err != nil {
				b.Error(err)
				return
			}
		}
	})
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "sessions/s")
}

// BenchmarkSessionLifecycle: establishment, activation and UE-requested
// release with its complete (three PFCP round trips), so the UPF's table
// stays small.
func BenchmarkSessionLifecycle(b *testing.B) {
	n := benchNet(b)
	ctx := context.Background()
	n1 := estReq(b, 1, 1, 1)
	n2 := gnbResponse(b, pfcp.FTEID{TEID: 0x100, Addr: loopback})
	rel, done := relReq(b, 1, 2), relComplete(b, 1, 2)
	id := ident(1)
	b.ReportAllocs()
	for b.Loop() {
		if _, err := n.smf.CreateSession(ctx, id, 1, 1, "", "internet", n1); err != nil {
			b.Fatal(err)
		}
		if err := n.smf.ActivateSession(ctx, id.SUPI, 1, n2); err != nil {
			b.Fatal(err)
		}
		if _, err := n.smf.ReleaseSession(ctx, id.SUPI, 1, rel); err != nil {
			b.Fatal(err)
		}
		if _, err := n.smf.ReleaseSession(ctx, id.SUPI, 1, done); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkEncode: the N1 accept and N2 transfer of one establishment,
// without N4.
func BenchmarkEncode(b *testing.B) {
	p := testAccept()
	sp := setupParams{ambrULbps: 1e9, ambrDLbps: 1e9, uplink: pfcp.FTEID{TEID: 7, Addr: loopback}, fiveQI: 9, arpPriority: 8}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := buildEstablishmentAccept(p); err != nil {
			b.Fatal(err)
		}
		if _, err := buildSetupRequestTransfer(sp); err != nil {
			b.Fatal(err)
		}
	}
}
