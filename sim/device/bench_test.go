package device

import (
	"context"
	"fmt"
	"io"
	"net/netip"
	"runtime"
	"testing"
)

// BenchmarkAddUE adds b.N UEs to one stack; B/UE is the heap each one
// keeps (its address on the NIC and its table entry), measured after GC.
func BenchmarkAddUE(b *testing.B) {
	s, err := New(Config{})
	if err != nil {
		b.Fatal(err)
	}
	defer s.Close()
	send := func([]byte) {}
	dns := netip.MustParseAddr("100.127.0.53")
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	b.ReportAllocs()
	b.ResetTimer()
	for i := range b.N {
		ue := netip.AddrFrom4([4]byte{10, byte(i >> 16), byte(i >> 8), byte(i)}).Next()
		if err := s.AddUE(ue, dns, send); err != nil {
			b.Fatal(err)
		}
	}
	b.StopTimer()
	runtime.GC()
	runtime.ReadMemStats(&after)
	b.ReportMetric(float64(after.HeapAlloc-before.HeapAlloc)/float64(b.N), "B/UE")
	if s.UEs() != b.N {
		b.Fatalf("UEs %d, want %d", s.UEs(), b.N)
	}
}

// BenchmarkTCPThroughput: one UE's TCP connection through the stack to a
// sink on the in-process network (uplink), and from a source (downlink),
// at the default MTU and at a jumbo one. Both stacks run in the process,
// so this is the cost of two userspace TCP/IP stacks and one copy each way
// through the NIC; per-packet work dominates, hence the MTU's weight.
func BenchmarkTCPThroughput(b *testing.B) {
	for _, mtu := range []int{DefaultMTU, 9000} {
		for _, dir := range []struct {
			name string
			port uint16
		}{{"uplink", portSink}, {"downlink", portGen}} {
			b.Run(fmt.Sprintf("%s/mtu=%d", dir.name, mtu), func(b *testing.B) {
				n := newNetwork(b, Config{MTU: mtu})
				n.addUE(ueA, dnsAddr)
				c, err := n.dev.Dial(context.Background(), ueA, "tcp", netip.AddrPortFrom(webAddr, dir.port).String())
				if err != nil {
					b.Fatal(err)
				}
				defer c.Close()
				buf := make([]byte, 64<<10)
				b.SetBytes(int64(len(buf)))
				b.ResetTimer()
				for range b.N {
					if dir.port == portSink {
						_, err = c.Write(buf)
					} else {
						_, err = io.ReadFull(c, buf)
					}
					if err != nil {
						b.Fatal(err)
					}
				}
			})
		}
	}
}
