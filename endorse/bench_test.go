package endorse

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"runtime"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/simgate/simgate/core/udr"
)

// The benchmarks compare the raw signature rate of a key with the token rate
// of the issuer and of the HTTP endpoint signing with the same key:
//
//	go test -run '^$' -bench . -benchtime 3s ./endorse/
//
// (scripts/bench-endorse.sh runs this and prints the ratios.)

func benchIssuer(b *testing.B, alg string) *Issuer {
	b.Helper()
	cfg := testConfig(alg)
	k, err := OpenKeys(b.TempDir(), cfg)
	if err != nil {
		b.Fatal(err)
	}
	is, err := NewIssuer(k, cfg)
	if err != nil {
		b.Fatal(err)
	}
	return is
}

func perSecond(b *testing.B, unit string) {
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), unit)
}

// BenchmarkSignRaw is the bare signature (RS256: RSA-2048 PKCS #1 v1.5;
// ES256: P-256) over a SHA-256 digest, on all cores.
func BenchmarkSignRaw(b *testing.B) {
	for _, alg := range []string{RS256, ES256} {
		b.Run(alg, func(b *testing.B) {
			is := benchIssuer(b, alg)
			priv := is.keys.state.Load().signer().priv
			digest := sha256.Sum256([]byte("eyJraWQiOiJ2MS0uLi4iLCJhbGciOiJSUzI1NiJ9.eyJpc3MiOiJodHRwczovL3NvcmFjb20uaW8ifQ"))
			b.ReportAllocs()
			b.ResetTimer()
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					var err error
					switch p := priv.(type) {
					case *rsa.PrivateKey:
						_, err = rsa.SignPKCS1v15(nil, p, crypto.SHA256, digest[:])
					case *ecdsa.PrivateKey:
						_, _, err = ecdsa.Sign(rand.Reader, p, digest[:])
					}
					if err != nil {
						b.Error(err)
						return
					}
				}
			})
			perSecond(b, "signs/s")
		})
	}
}

// BenchmarkIssue is a whole token (claims, encoding, signature) without HTTP.
func BenchmarkIssue(b *testing.B) {
	for _, alg := range []string{RS256, ES256} {
		b.Run(alg, func(b *testing.B) {
			is := benchIssuer(b, alg)
			g := udr.DefaultEndorse()
			b.ReportAllocs()
			b.ResetTimer()
			b.RunParallel(func(pb *testing.PB) {
				buf := make([]byte, 0, 1024)
				for pb.Next() {
					var err error
					if buf, err = is.AppendToken(buf[:0], fullIdentity, g, nil); err != nil {
						b.Error(err)
						return
					}
				}
			})
			perSecond(b, "tokens/s")
		})
	}
}

// BenchmarkHTTP is tokens through the endpoint on loopback, from 64
// concurrent keep-alive clients in the same process, with p50 and p99
// latency.
func BenchmarkHTTP(b *testing.B) {
	const clients = 64
	for _, alg := range []string{RS256, ES256} {
		b.Run(alg, func(b *testing.B) {
			is := benchIssuer(b, alg)
			st := newMemStore()
			st.attach("127.0.0.1", udr.SIM{IMSI: "295050913244223"}, "867698047437580")
			srv := httptest.NewServer(NewTokenHandler(is, st.resolver(), st, nil))
			defer srv.Close()
			tr := &http.Transport{MaxIdleConns: clients, MaxIdleConnsPerHost: clients, MaxConnsPerHost: clients}
			defer tr.CloseIdleConnections()
			client := &http.Client{Transport: tr}
			var mu sync.Mutex
			var lat []time.Duration
			b.SetParallelism((clients + runtime.GOMAXPROCS(0) - 1) / runtime.GOMAXPROCS(0))
			b.ResetTimer()
			b.RunParallel(func(pb *testing.PB) {
				mine := make([]time.Duration, 0, 1024)
				for pb.Next() {
					t0 := time.Now()
					resp, err := client.Get(srv.URL + "/")
					if err != nil {
						b.Error(err)
						return
					}
					_, _ = io.Copy(io.Discard, resp.Body)
					resp.Body.Close()
					if resp.StatusCode != 200 {
						b.Errorf("status %d", resp.StatusCode)
						return
					}
					mine = append(mine, time.Since(t0))
				}
				mu.Lock()
				lat = append(lat, mine...)
				mu.Unlock()
			})
			perSecond(b, "tokens/s")
			if len(lat) > 0 {
				slices.Sort(lat)
				b.ReportMetric(float64(lat[len(lat)/2].Microseconds())/1000, "p50-ms")
				b.ReportMetric(float64(lat[len(lat)*99/100].Microseconds())/1000, "p99-ms")
			}
		})
	}
}

// BenchmarkHTTPRatio alternates, in each iteration, 250 ms of raw signing
// (one goroutine per core) with 250 ms of tokens through the HTTP endpoint
// (64 clients), with the same key, and reports both rates and their ratio.
// Alternating keeps the comparison fair on a machine shared with other work.
//
//	go test -run '^$' -bench HTTPRatio -benchtime 20x ./endorse/
func BenchmarkHTTPRatio(b *testing.B) {
	const clients = 64
	const phase = 250 * time.Millisecond
	for _, alg := range []string{RS256, ES256} {
		b.Run(alg, func(b *testing.B) {
			is := benchIssuer(b, alg)
			priv := is.keys.state.Load().signer().priv
			st := newMemStore()
			st.attach("127.0.0.1", udr.SIM{IMSI: "295050913244223"}, "867698047437580")
			srv := httptest.NewServer(NewTokenHandler(is, st.resolver(), st, nil))
			defer srv.Close()
			tr := &http.Transport{MaxIdleConns: clients, MaxIdleConnsPerHost: clients, MaxConnsPerHost: clients}
			defer tr.CloseIdleConnections()
			client := &http.Client{Transport: tr}
			digest := sha256.Sum256([]byte("signing input"))

			run := func(workers int, op func() error) (int, time.Duration) {
				var mu sync.Mutex
				total := 0
				start := time.Now()
				deadline := start.Add(phase)
				var wg sync.WaitGroup
				for range workers {
					wg.Go(func() {
						n := 0
						for time.Now().Before(deadline) {
							if err := op(); err != nil {
								b.Error(err)
								return
							}
							n++
						}
						mu.Lock()
						total += n
						mu.Unlock()
					})
				}
				wg.Wait()
				return total, time.Since(start)
			}
			sign := func() error {
				var err error
				switch p := priv.(type) {
				case *rsa.PrivateKey:
					_, err = rsa.SignPKCS1v15(nil, p, crypto.SHA256, digest[:])
				case *ecdsa.PrivateKey:
					_, _, err = ecdsa.Sign(rand.Reader, p, digest[:])
				}
				return err
			}
			get := func() error {
				resp, err := client.Get(srv.URL + "/")
				if err != nil {
					return err
				}
				_, _ = io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				if resp.StatusCode != 200 {
					return fmt.Errorf("status %d", resp.StatusCode)
				}
				return nil
			}
			var rawN, httpN int
			var rawT, httpT time.Duration
			b.ResetTimer()
			for range b.N {
				n, d := run(runtime.GOMAXPROCS(0), sign)
				rawN, rawT = rawN+n, rawT+d
				n, d = run(clients, get)
				httpN, httpT = httpN+n, httpT+d
			}
			raw := float64(rawN) / rawT.Seconds()
			tok := float64(httpN) / httpT.Seconds()
			b.ReportMetric(raw, "raw-signs/s")
			b.ReportMetric(tok, "http-tokens/s")
			b.ReportMetric(100*tok/raw, "http-%-of-raw")
			b.ReportMetric(0, "ns/op")
		})
	}
}
