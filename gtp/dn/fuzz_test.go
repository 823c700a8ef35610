package dn

import (
	"context"
	"errors"
	"net"
	"net/netip"
	"sync"
	"syscall"
	"testing"
	"time"

	"golang.org/x/net/dns/dnsmessage"
)

// devicePackets runs a device through a DNS query, a TCP connection and a
// ping, and returns the uplink packets it sent, as fuzz seeds.
func devicePackets(f *testing.F) [][]byte {
	d := startDN(f, testConfig(), WithDialer(refuseDial))
	u := newUE(f, d, ueAddr)
	var (
		mu   sync.Mutex
		pkts [][]byte
	)
	u.link.SetOutput(func(p []byte) {
		mu.Lock()
		pkts = append(pkts, append([]byte(nil), p...))
		mu.Unlock()
		_ = d.Inject(p)
	})
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if _, err := u.resolver().LookupNetIP(ctx, "ip4", EndorseName); err != nil {
		f.Fatal(err)
	}
	if c, err := u.dialTCP(ctx, netip.MustParseAddrPort("198.51.100.7:80")); err == nil {
		c.Close()
	}
	if err := u.ping(netip.MustParseAddr(DefaultDNSAddr), 5*time.Second); err != nil {
		f.Fatal(err)
	}
	mu.Lock()
	defer mu.Unlock()
	if len(pkts) < 3 {
		f.Fatalf("captured %d packets", len(pkts))
	}
	return pkts
}

func refuseDial(context.Context, string, string) (net.Conn, error) {
	return nil, syscall.ECONNREFUSED
}

// FuzzInject: any uplink packet is dropped, refused or served, never a
// panic; Inject's only error is ErrNotIPv4.
func FuzzInject(f *testing.F) {
	for _, p := range devicePackets(f) {
		f.Add(p)
	}
	q := buildQuery(f, EndorseName+".", dnsmessage.TypeA, false)
	f.Add(append([]byte{0x45, 0, 0, 0}, q...))
	d := startDN(f, testConfig(), WithDialer(refuseDial))
	d.SetDownlink(func([]byte) {})
	f.Fuzz(func(t *testing.T, pkt []byte) {
		if err := d.Inject(pkt); err != nil && !errors.Is(err, ErrNotIPv4) {
			t.Fatalf("Inject: %v", err)
		}
	})
}
