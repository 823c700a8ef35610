package ran

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/simgate/simgate/endorse"
)

// BenchmarkE2ETokens: 100 attached UEs fetch tokens end to end, each over
// its own keep-alive connection: HTTP in the UE's userspace stack, GTP-U
// through the gNB's N3 socket and the UPF's data path, the issuer (RS256)
// in the data network, then verification and the IMSI/IMEI check. Then the
// same number of tokens straight from the issuer's HTTP handler over
// loopback with 100 keep-alive clients: the rate the end-to-end path is
// measured against (target: at least 70 %).
//
//	go test -run '^$' -bench E2ETokens -benchtime 2000x ./sim/ran/
func BenchmarkE2ETokens(b *testing.B) {
	const ues = 100
	n := startNetwork(b)
	f := n.provision("001010000005001", ues)
	cfg, opt := tokenConfig(b, n, ues)
	cfg.SIMFile = writeSIMFile(b, f)
	var e2e, direct time.Duration
	var r *Runner
	opt.Attached = func(rep Report) {
		if rep.Tokens != ues {
			b.Fatalf("report %+v", rep)
		}
		var left atomic.Int64
		left.Store(int64(b.N))
		var failed atomic.Int64
		start := time.Now()
		var wg sync.WaitGroup
		for _, s := range r.ues {
			se, _ := s.gu.Load().Session(sessionPSI)
			wg.Go(func() {
				for left.Add(-1) >= 0 {
					if res := r.fetchToken(context.Background(), s, se.UEAddr); res.Failure != "" {
						failed.Add(1)
					}
				}
			})
		}
		wg.Wait()
		e2e = time.Since(start)
		if failed.Load() > 0 {
			b.Errorf("%d token fetches failed", failed.Load())
		}
	}
	opt.Logger = testLogger(b)
	var err error
	if r, err = New(cfg, opt); err != nil {
		b.Fatal(err)
	}
	b.ResetTimer()
	if _, err := r.Run(context.Background()); err != nil {
		b.Fatal(err)
	}
	b.StopTimer()

	// The issuer's own rate: its handler on loopback, one SIM.
	sim := f.SIMs[0]
	res := endorse.StoreResolver{
		Session: func(context.Context, netip.Addr) (string, string, error) { return sim.IMSI, "356938035643809", nil },
		SIM:     n.store.GetSIM,
	}
	srv := httptest.NewServer(endorse.NewTokenHandler(n.issuer, res, endorse.GroupsFunc(n.store.GetGroup), nil))
	defer srv.Close()
	tr := &http.Transport{MaxIdleConns: ues, MaxIdleConnsPerHost: ues, MaxConnsPerHost: ues}
	defer tr.CloseIdleConnections()
	client := &http.Client{Transport: tr}
	var left atomic.Int64
	left.Store(int64(b.N))
	start := time.Now()
	var wg sync.WaitGroup
	for range ues {
		wg.Go(func() {
			for left.Add(-1) >= 0 {
				resp, err := client.Get(srv.URL + "/")
				if err != nil {
					b.Error(err)
					return
				}
				_, _ = io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
			}
		})
	}
	wg.Wait()
	direct = time.Since(start)

	e2eRate, directRate := float64(b.N)/e2e.Seconds(), float64(b.N)/direct.Seconds()
	b.ReportMetric(e2eRate, "tokens/s")
	b.ReportMetric(directRate, "issuer_tokens/s")
	b.ReportMetric(100*e2eRate/directRate, "%_of_issuer")
}
