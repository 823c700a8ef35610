package dn

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/netip"
	"testing"
	"time"

	"golang.org/x/net/dns/dnsmessage"
)

// benchChunk is what one benchmark iteration moves.
const benchChunk = 1 << 20

// BenchmarkNATTCP measures single-flow TCP throughput between the device
// stack and a loopback TCP server through the data network: up (device ->
// dn -> NAT -> loopback sink) and down (loopback source -> NAT -> dn ->
// device), at the default MTU and at a 9000-byte MTU (a device with a
// jumbo-frame session). The packets
// cross both gVisor stacks, as they would with the UPF between them, so the
// device's stack costs as much CPU as the data network's.
//
//	go test -run '^$' -bench BenchmarkNATTCP -benchtime 2000x ./gtp/dn/
func BenchmarkNATTCP(b *testing.B) {
	for _, mtu := range []int{DefaultMTU, 9000} {
		for _, dir := range []string{"up", "down"} {
			b.Run(fmt.Sprintf("mtu=%d/%s", mtu, dir), func(b *testing.B) { benchNATTCP(b, mtu, dir == "up") })
		}
	}
}

func benchNATTCP(b *testing.B, mtu int, up bool) {
	ln, err := net.Listen("tcp4", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	defer ln.Close()
	total := int64(b.N) * benchChunk
	srvDone := make(chan error, 1)
	go func() {
		c, err := ln.Accept()
		if err != nil {
			srvDone <- err
			return
		}
		defer c.Close()
		if up {
			_, err = io.Copy(io.Discard, c) // the sink
		} else {
			_, err = io.CopyN(c, zeroReader{}, total) // the source
		}
		srvDone <- err
	}()
	cfg := DefaultConfig()
	cfg.MTU = mtu
	d := startDN(b, cfg)
	u := newUE(b, d, ueAddr)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	to := netip.AddrPortFrom(netip.MustParseAddr(DefaultHostAlias), uint16(ln.Addr().(*net.TCPAddr).Port))
	c, err := u.dialTCP(ctx, to)
	if err != nil {
		b.Fatal(err)
	}
	defer c.Close()
	buf := make([]byte, benchChunk)
	b.SetBytes(benchChunk)
	b.ResetTimer()
	start, cpu0 := time.Now(), cpuTime()
	if up {
		for range b.N {
			if _, err := c.Write(buf); err != nil {
				b.Fatal(err)
			}
		}
		c.CloseWrite()
		if err := <-srvDone; err != nil {
			b.Fatal(err)
		}
	} else {
		n, err := io.Copy(io.Discard, c)
		if err != nil || n != total {
			b.Fatalf("read %d of %d: %v", n, total, err)
		}
	}
	el, cpu := time.Since(start), cpuTime()-cpu0
	b.StopTimer()
	b.ReportMetric(float64(total)*8/el.Seconds()/1e9, "Gbit/s")
	// CPU per byte, both stacks and the loopback server: less sensitive
	// than Gbit/s to other processes on the machine.
	b.ReportMetric(float64(cpu.Nanoseconds())/float64(total), "cpu-ns/B")
}

type zeroReader struct{}

func (zeroReader) Read(p []byte) (int, error) {
	clear(p)
	return len(p), nil
}

// BenchmarkDNSRespond measures the responder on a local name.
//
//	go test -run '^$' -bench BenchmarkDNSRespond ./gtp/dn/
func BenchmarkDNSRespond(b *testing.B) {
	s, err := DefaultConfig().resolve()
	if err != nil {
		b.Fatal(err)
	}
	r := newResponder(s, &fakeResolver{}, &counters{})
	q := buildQuery(b, EndorseName+".", dnsmessage.TypeA, true)
	ctx := context.Background()
	b.ReportAllocs()
	for b.Loop() {
		if r.respond(ctx, q, false) == nil {
			b.Fatal("no answer")
		}
	}
}

// BenchmarkNATUDP measures UDP round trips of 1200-byte datagrams from the
// device through the NAT to a loopback echo server and back.
//
//	go test -run '^$' -bench BenchmarkNATUDP ./gtp/dn/
func BenchmarkNATUDP(b *testing.B) {
	usrv := newEchoUDP(b)
	d := startDN(b, DefaultConfig())
	u := newUE(b, d, ueAddr)
	to := netip.AddrPortFrom(netip.MustParseAddr(DefaultHostAlias), uint16(usrv.LocalAddr().(*net.UDPAddr).Port))
	c, err := u.dialUDP(to)
	if err != nil {
		b.Fatal(err)
	}
	defer c.Close()
	msg := make([]byte, 1200)
	buf := make([]byte, 2048)
	b.SetBytes(int64(2 * len(msg)))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := c.Write(msg); err != nil {
			b.Fatal(err)
		}
		_ = c.SetReadDeadline(time.Now().Add(5 * time.Second))
		if n, err := c.Read(buf); err != nil || n != len(msg) {
			b.Fatalf("echo %d bytes: %v", n, err)
		}
	}
}
