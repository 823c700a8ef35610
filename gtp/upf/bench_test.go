package upf

import (
	"context"
	"net/netip"
	"sync/atomic"
	"testing"
	"time"
)

const benchSessions = 100_000

// benchTable is a table of benchSessions sessions, as the GTP-U path will
// see it.
func benchTable(b *testing.B) (*Table, []uint32, []netip.Addr) {
	b.Helper()
	tb := NewTable()
	teids := make([]uint32, benchSessions)
	addrs := make([]netip.Addr, benchSessions)
	for i := range benchSessions {
		teids[i] = uint32(i)*2654435761 | 1
		addrs[i] = netip.AddrFrom4([4]byte{10, byte(i >> 16), byte(i >> 8), byte(i)})
		tb.put(tableSession(uint64(i+1), teids[i], addrs[i]), nil)
	}
	return tb, teids, addrs
}

func BenchmarkLookupByTEID(b *testing.B) {
	tb, teids, _ := benchTable(b)
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; b.Loop(); i++ {
		if _, ok := tb.LookupByTEID(teids[i%benchSessions]); !ok {
			b.Fatal("miss")
		}
	}
}

func BenchmarkLookupByAddr(b *testing.B) {
	tb, _, addrs := benchTable(b)
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; b.Loop(); i++ {
		if _, ok := tb.LookupByAddr(addrs[i%benchSessions]); !ok {
			b.Fatal("miss")
		}
	}
}

// BenchmarkLookupByTEIDParallel: lookups from every core at once, as a
// multi-queue GTP-U reader would do.
func BenchmarkLookupByTEIDParallel(b *testing.B) {
	tb, teids, _ := benchTable(b)
	var seed atomic.Uint32
	b.ReportAllocs()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		i := int(seed.Add(7919))
		for pb.Next() {
			if _, ok := tb.LookupByTEID(teids[i%benchSessions]); !ok {
				b.Error("miss")
				return
			}
			i++
		}
	})
}

func BenchmarkLookupByAddrParallel(b *testing.B) {
	tb, _, addrs := benchTable(b)
	var seed atomic.Uint32
	b.ReportAllocs()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		i := int(seed.Add(7919))
		for pb.Next() {
			if _, ok := tb.LookupByAddr(addrs[i%benchSessions]); !ok {
				b.Error("miss")
				return
			}
			i++
		}
	})
}

// BenchmarkEstablish: PFCP session establishments over loopback, SMF client
// to UPF, 8 x GOMAXPROCS in flight; reports establishments per second.
func BenchmarkEstablish(b *testing.B) {
	cfg := testConfig()
	cfg.T1 = time.Second
	u := startUPF(b, cfg, nil)
	c := startSMF(b, smfOpts{})
	associate(b, c, u)
	ctx := context.Background()
	var next atomic.Int64
	b.SetParallelism(8) // 8 x GOMAXPROCS requests in flight
	b.ReportAllocs()
	b.ResetTimer()
	start := time.Now()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			i := int(next.Add(1))
			req := ueReq(u, i)
			req.UEAddr = netip.AddrFrom4([4]byte{10, byte(i >> 16), byte(i >> 8), byte(i)})
			if _, err := c.EstablishSession(ctx, req); err != nil {
				b.Error(err)
				return
			}
		}
	})
	b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "sessions/s")
	if u.Sessions().Len() != b.N {
		b.Fatalf("%d sessions, want %d", u.Sessions().Len(), b.N)
	}
}
