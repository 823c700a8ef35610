// BenchmarkRelay's comparison: go-gtp's own UPlaneConn relay.

package gtpu

import (
	"context"
	"net"
	"net/netip"
	"testing"
	"time"

	"github.com/wmnsk/go-gtp/gtpv1"
)

// goGTPRelay gives BenchmarkRelay go-gtp's relay.
func goGTPRelay() relayStart { return startGoGTPRelay }

// startGoGTPRelay sets up go-gtp's relay: a UPlaneConn that relays TEID
// relayTEIDIn, through a second UPlaneConn, to dst with relayTEIDOut.
func startGoGTPRelay(b *testing.B, dst netip.AddrPort) (netip.AddrPort, uint32) {
	gtpv1.DisableLogging()
	left, right := freeAddr(b), freeAddr(b)
	ctx, cancel := context.WithCancel(context.Background())
	lc := gtpv1.NewUPlaneConn(net.UDPAddrFromAddrPort(left))
	rc := gtpv1.NewUPlaneConn(net.UDPAddrFromAddrPort(right))
	// Before serving: RelayTo's map is read without a lock once packets flow.
	if err := lc.RelayTo(rc, relayTEIDIn, relayTEIDOut, net.UDPAddrFromAddrPort(dst)); err != nil {
		b.Fatal(err)
	}
	errs := make(chan error, 2)
	go func() { errs <- lc.ListenAndServe(ctx) }()
	go func() { errs <- rc.ListenAndServe(ctx) }()
	b.Cleanup(func() {
		cancel()
		for range 2 {
			if err := <-errs; err != nil {
				b.Errorf("go-gtp: %v", err)
			}
		}
	})
	// Both serve once they answer an Echo Request.
	p := newPeer(b)
	for _, a := range []netip.AddrPort{left, right} {
		req, _ := EchoRequest(1)
		for answered := false; !answered; {
			p.send(a, req)
			p.uc.SetReadDeadline(time.Now().Add(50 * time.Millisecond))
			buf := make([]byte, 100)
			_, _, err := p.uc.ReadFromUDPAddrPort(buf)
			answered = err == nil
		}
	}
	return left, relayTEIDIn
}

// freeAddr finds a free loopback UDP port (go-gtp binds its own sockets).
func freeAddr(b *testing.B) netip.AddrPort {
	uc, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		b.Fatal(err)
	}
	defer uc.Close()
	return uc.LocalAddr().(*net.UDPAddr).AddrPort()
}
