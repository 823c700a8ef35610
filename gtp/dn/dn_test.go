package dn

import (
	"context"
	"errors"
	"net"
	"net/netip"
	"runtime"
	"strings"
	"testing"
	"time"
)

// TestConfigValidate: the defaults are valid; each bad value is named by
// its key.
func TestConfigValidate(t *testing.T) {
	if err := DefaultConfig().Validate(); err != nil {
		t.Fatalf("DefaultConfig: %v", err)
	}
	tests := []struct {
		name string
		mod  func(*Config)
		want string
	}{
		{"dns not IPv4", func(c *Config) { c.DNSAddr = "::1" }, "dn.dns_addr"},
		{"endorse loopback", func(c *Config) { c.EndorseAddr = "127.0.0.1" }, "dn.endorse_addr"},
		{"beam empty", func(c *Config) { c.BeamAddr = "" }, "dn.beam_addr"},
		{"beam multicast", func(c *Config) { c.BeamAddr = "224.0.0.1" }, "dn.beam_addr"},
		{"alias bad", func(c *Config) { c.NAT.HostAlias = "x" }, "dn.nat.host_alias"},
		{"same address twice", func(c *Config) { c.BeamAddr = c.EndorseAddr }, "is also endorse_addr"},
		{"reserved", func(c *Config) { c.Reserved = "100.127.0.0" }, "dn.reserved"},
		{"hosts no =", func(c *Config) { c.Hosts = []string{"a.test"} }, "dn.hosts"},
		{"hosts bad name", func(c *Config) { c.Hosts = []string{"a b=100.127.1.1"} }, "dn.hosts"},
		{"hosts bad addr", func(c *Config) { c.Hosts = []string{"a.test=::1"} }, "dn.hosts"},
		{"hosts duplicate", func(c *Config) { c.Hosts = []string{"ENDORSE.soracom.io=100.127.1.1"} }, "already resolves"},
		{"mtu small", func(c *Config) { c.MTU = 500 }, "dn.mtu"},
		{"mtu big", func(c *Config) { c.MTU = 70000 }, "dn.mtu"},
		{"udp idle", func(c *Config) { c.UDPIdleTimeout = 0 }, "dn.udp_idle_timeout"},
		{"dial timeout", func(c *Config) { c.DialTimeout = 0 }, "dn.dial_timeout"},
		{"allow", func(c *Config) { c.NAT.Allow = []string{"10.0.0.0/33"} }, "dn.nat.allow"},
		{"allow v6", func(c *Config) { c.NAT.Allow = []string{"2001:db8::/32"} }, "dn.nat.allow"},
		{"protect no port", func(c *Config) { c.NAT.Protect = []string{"127.0.0.1"} }, "dn.nat.protect"},
		{"protect port 0", func(c *Config) { c.NAT.Protect = []string{"127.0.0.1:0"} }, "dn.nat.protect"},
	}
	for _, tc := range tests {
		c := DefaultConfig()
		tc.mod(&c)
		err := c.Validate()
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: %v, want an error naming %q", tc.name, err, tc.want)
		}
		if _, serr := Start(context.Background(), c); serr == nil {
			t.Errorf("%s: Start accepted it", tc.name)
		}
	}
	c := DefaultConfig()
	c.NAT = NAT{}
	c.Hosts = []string{" Mqtt.Example.test. = 100.127.1.1 "}
	s, err := c.resolve()
	if err != nil {
		t.Fatal(err)
	}
	if s.names["mqtt.example.test"] != netip.MustParseAddr("100.127.1.1") || s.alias.IsValid() || s.nat {
		t.Errorf("settings %+v", s)
	}
}

// TestInject: what Inject refuses.
func TestInject(t *testing.T) {
	d := startDN(t, testConfig())
	v6 := make([]byte, 40)
	v6[0] = 0x60
	for _, pkt := range [][]byte{nil, {0x45}, v6} {
		if err := d.Inject(pkt); !errors.Is(err, ErrNotIPv4) {
			t.Errorf("Inject(% x...): %v, want ErrNotIPv4", pkt[:min(len(pkt), 4)], err)
		}
	}
	// A malformed IPv4 packet is the stack's to drop and count.
	bad := make([]byte, 20)
	bad[0] = 0x45
	bad[3] = 200 // total length beyond the packet
	if err := d.Inject(bad); err != nil {
		t.Errorf("Inject(malformed): %v", err)
	}
	if d.Stats().Malformed == 0 {
		t.Error("malformed packet not counted")
	}
	d.Close()
	good := make([]byte, 20)
	good[0] = 0x45
	if err := d.Inject(good); !errors.Is(err, ErrClosed) {
		t.Errorf("Inject after Close: %v, want ErrClosed", err)
	}
	if err := d.Serve(context.Background(), Services{Endorse: remoteEcho}); !errors.Is(err, ErrClosed) {
		t.Errorf("Serve after Close: %v, want ErrClosed", err)
	}
}

// TestClose: Close (or the end of Start's context) stops every goroutine
// of the data network, with flows and services open.
func TestClose(t *testing.T) {
	for _, how := range []string{"Close", "context"} {
		t.Run(how, func(t *testing.T) {
			srv := newEchoTCP(t)
			usrv := newEchoUDP(t)
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			d, err := Start(ctx, testConfig(), withQuietLog())
			if err != nil {
				t.Fatal(err)
			}
			if err := d.Serve(context.Background(), Services{Endorse: remoteEcho, BeamTCP: blockConn{}}); err != nil {
				t.Fatal(err)
			}
			u := newUE(t, d, ueAddr)
			alias := netip.MustParseAddr(DefaultHostAlias)
			dctx, dcancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer dcancel()
			c, err := u.dialTCP(dctx, netip.AddrPortFrom(alias, srv.addr().Port()))
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			bc, err := u.dialTCP(dctx, netip.AddrPortFrom(netip.MustParseAddr(DefaultBeamAddr), BeamTCPPort))
			if err != nil {
				t.Fatal(err)
			}
			defer bc.Close()
			uc, err := u.dialUDP(netip.AddrPortFrom(alias, uint16(usrv.LocalAddr().(interface{ AddrPort() netip.AddrPort }).AddrPort().Port())))
			if err != nil {
				t.Fatal(err)
			}
			defer uc.Close()
			if err := udpEcho(uc, "x"); err != nil {
				t.Fatal(err)
			}
			eventually(t, "flows open", func() bool { st := d.Stats(); return st.TCPActive == 1 && st.UDPActive == 1 })
			if how == "Close" {
				d.Close()
			} else {
				cancel()
			}
			select {
			case <-d.Done():
			case <-time.After(10 * time.Second):
				t.Fatal("not done")
			}
			if st := d.Stats(); st.TCPActive != 0 || st.UDPActive != 0 {
				t.Errorf("stats after close %+v", st)
			}
			// The test's own servers and the UE stack still run; what
			// the data network started must be gone.
			c.Close()
			bc.Close()
			uc.Close()
			// Callbacks of contexts d's end cancelled may still be
			// finishing; nothing else may stay.
			for end := time.Now().Add(5 * time.Second); ; time.Sleep(5 * time.Millisecond) {
				n, stacks := dnGoroutineStacks()
				if n == 0 {
					break
				}
				if time.Now().After(end) {
					t.Fatalf("%d goroutines of the data network left:\n%s", n, stacks)
				}
			}
		})
	}
}

// blockConn is a ConnServer that holds the connection until ctx ends.
type blockConn struct{}

func (blockConn) ServeConn(ctx context.Context, _ net.Conn) { <-ctx.Done() }

// dnGoroutines counts the goroutines running the data network's code
// (not the tests' servers).
func dnGoroutines() int {
	n, _ := dnGoroutineStacks()
	return n
}

func dnGoroutineStacks() (int, string) {
	buf := make([]byte, 1<<20)
	buf = buf[:runtime.Stack(buf, true)]
	n, all := 0, ""
	for g := range strings.SplitSeq(string(buf), "\n\n") {
		for _, f := range []string{"gtp/dn.(*DN)", "gtp/dn.pipe", "gtp/dn.(*udpFlow)", "gtp/dn.blockConn"} {
			if strings.Contains(g, f) {
				n++
				all += g + "\n\n"
				break
			}
		}
	}
	return n, all
}
