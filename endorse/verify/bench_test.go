package verify

import (
	"context"
	"testing"
	"time"
)

// BenchmarkVerify measures whole verifications (split, header, key lookup,
// signature, claims) with a cached key. Run:
//
//	go test -run=^$ -bench=Verify -benchmem ./endorse/verify/
func BenchmarkVerify(b *testing.B) {
	keys(b)
	v, err := New(WithKeySource(Keys{kidRSA: &testRSA.PublicKey, kidEC: &testEC.PublicKey}),
		WithClock(func() time.Time { return t0 }))
	if err != nil {
		b.Fatal(err)
	}
	for _, bc := range []struct{ name, tok string }{
		{"RS256-2048", rsaToken(b, claimsAt(t0))},
		{"ES256-P256", ecToken(b, claimsAt(t0))},
	} {
		ctx := context.Background()
		b.Run(bc.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if _, err := v.Verify(ctx, bc.tok); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "verifications/s")
		})
		b.Run(bc.name+"-parallel", func(b *testing.B) {
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					if _, err := v.Verify(ctx, bc.tok); err != nil {
						b.Error(err)
						return
					}
				}
			})
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "verifications/s")
		})
	}
}
