package capture_test

import (
	"context"
	"io"
	"testing"

	"github.com/simgate/simgate/capture"
)

// BenchmarkWrite measures packets written per second: tap, copy, queue,
// framing and pcapng encoding, into io.Discard or a file. A Flush every
// 1024 packets keeps the queue from overflowing, so that nothing is
// dropped and every packet is counted written.
func BenchmarkWrite(b *testing.B) {
	local, remote := ap("127.0.0.1:2152"), ap("127.0.0.2:2152")
	ngap := ngSetupRequest(b, "simgate-gnb")
	ip := tcpSegment(b, ap("10.45.0.2:40000"), ap("10.45.0.1:80"), 1, 1, false, false, string(make([]byte, 1360)))
	gtp := gpdu(b, 1, true, ip)
	cases := []struct {
		name string
		file bool
		tap  func(*capture.Interface)
	}{
		{"datagram-1400B", false, func(i *capture.Interface) { i.Datagram(true, local, remote, gtp) }},
		{"datagram-100B", false, func(i *capture.Interface) { i.Datagram(true, local, remote, gtp[:100]) }},
		{"datagram-v6-1400B", false, func(i *capture.Interface) { i.Datagram(true, ap("[::1]:2152"), ap("[::2]:2152"), gtp) }},
		{"message-ngap", false, func(i *capture.Interface) { i.Message(true, local, remote, 1, 60, ngap) }},
		{"packet-1400B", false, func(i *capture.Interface) { i.Packet(true, ip) }},
		{"file-datagram-1400B", true, func(i *capture.Interface) { i.Datagram(true, local, remote, gtp) }},
	}
	for _, c := range cases {
		b.Run(c.name, func(b *testing.B) {
			var w *capture.Writer
			if c.file {
				var err error
				w, err = capture.Open(context.Background(), b.TempDir()+"/bench.pcapng", capture.Config{})
				if err != nil {
					b.Fatal(err)
				}
			} else {
				w = capture.New(context.Background(), io.Discard, capture.Config{})
			}
			i := w.Interface("bench", capture.KindN3)
			b.ReportAllocs()
			n := 0
			for b.Loop() {
				c.tap(i)
				if n++; n%1024 == 0 {
					if err := w.Flush(); err != nil {
						b.Fatal(err)
					}
				}
			}
			if err := w.Close(); err != nil {
				b.Fatal(err)
			}
			if s := i.Stats(); s.Dropped != 0 || s.Errors != 0 {
				b.Fatalf("stats %+v", s)
			}
			b.ReportMetric(float64(n)/b.Elapsed().Seconds(), "pkts/s")
		})
	}
}

// BenchmarkTapParallel measures what a tap costs the data path when many
// goroutines tap at once; packets the writer cannot keep up with are
// dropped (reported as drops/op), never waited for.
func BenchmarkTapParallel(b *testing.B) {
	w := capture.New(context.Background(), io.Discard, capture.Config{})
	i := w.Interface("bench", capture.KindN3)
	ip := tcpSegment(b, ap("10.45.0.2:40000"), ap("10.45.0.1:80"), 1, 1, false, false, string(make([]byte, 1360)))
	gtp := gpdu(b, 1, true, ip)
	local, remote := ap("127.0.0.1:2152"), ap("127.0.0.2:2152")
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			i.Datagram(true, local, remote, gtp)
		}
	})
	b.StopTimer()
	if err := w.Close(); err != nil {
		b.Fatal(err)
	}
	s := i.Stats()
	b.ReportMetric(float64(s.Dropped)/float64(b.N), "drops/op")
	b.ReportMetric(float64(s.Packets)/b.Elapsed().Seconds(), "written-pkts/s")
}
