package n2

import (
	"context"
	"fmt"
	"testing"
	"time"
)

func benchPair(b *testing.B) (client, server Conn) {
	b.Helper()
	cfg := testConfig(b)
	ln, err := Listen(context.Background(), cfg)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = ln.Close() })
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if client, err = Dial(ctx, cfg, ln.Addr().String()); err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = client.Close() })
	if server, err = ln.Accept(ctx); err != nil {
		b.Fatal(err)
	}
	return client, server
}

// BenchmarkMessages: one-way messages through one UDP-mode association on
// loopback, written on 4 streams, read by one reader (the AMF's loop).
func BenchmarkMessages(b *testing.B) {
	for _, size := range []int{100, 1000} {
		b.Run(fmt.Sprintf("%dB", size), func(b *testing.B) {
			client, server := benchPair(b)
			msg := make([]byte, size)
			done := make(chan error, 1)
			go func() {
				buf := make([]byte, 2048)
				for range b.N {
					if _, _, _, err := server.ReadMsg(buf); err != nil {
						done <- err
						return
					}
				}
				done <- nil
			}()
			b.SetBytes(int64(size))
			b.ResetTimer()
			for i := range b.N {
				if err := client.WriteMsg(msg, uint16(i%4)); err != nil {
					b.Fatal(err)
				}
			}
			if err := <-done; err != nil {
				b.Fatal(err)
			}
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "msgs/s")
		})
	}
}

// BenchmarkRoundTrip: request and answer, one at a time (a NAS procedure
// step seen from the gNB).
func BenchmarkRoundTrip(b *testing.B) {
	client, server := benchPair(b)
	go func() {
		buf := make([]byte, 2048)
		for {
			n, s, _, err := server.ReadMsg(buf)
			if err != nil || server.WriteMsg(buf[:n], s) != nil {
				return
			}
		}
	}()
	msg, buf := make([]byte, 100), make([]byte, 2048)
	b.ResetTimer()
	for range b.N {
		if err := client.WriteMsg(msg, 1); err != nil {
			b.Fatal(err)
		}
		if _, _, _, err := client.ReadMsg(buf); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "round-trips/s")
}
