package dn

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net"
	"net/netip"
	"sync/atomic"
	"syscall"
	"time"

	"gvisor.dev/gvisor/pkg/tcpip"
	"gvisor.dev/gvisor/pkg/tcpip/adapters/gonet"
	"gvisor.dev/gvisor/pkg/tcpip/header"
	"gvisor.dev/gvisor/pkg/tcpip/stack"
	"gvisor.dev/gvisor/pkg/tcpip/transport/tcp"
	"gvisor.dev/gvisor/pkg/tcpip/transport/udp"
	"gvisor.dev/gvisor/pkg/waiter"
)

// maxInFlight bounds the TCP handshakes the NAT has pending (each waits for
// its host dial); SYNs beyond it are dropped and retransmitted by the device.
const maxInFlight = 1024

// Why the NAT refuses a flow.
var (
	errNATOff     = errors.New("NAT is off")
	errReserved   = errors.New("in-network address with no such service")
	errSpecial    = errors.New("unspecified, loopback, multicast, broadcast or link-local destination")
	errNotAllowed = errors.New("destination not in nat.allow")
	errProtected  = errors.New("protected host socket (nat.protect)")
)

var (
	loopback  = netip.AddrFrom4([4]byte{127, 0, 0, 1})
	broadcast = netip.AddrFrom4([4]byte{255, 255, 255, 255})
)

// route maps a flow's in-network destination to the host destination the
// NAT opens, or says why the flow is refused (doc.go).
func (d *DN) route(dst netip.AddrPort) (netip.AddrPort, error) {
	if !d.s.nat {
		return netip.AddrPort{}, errNATOff
	}
	a := dst.Addr()
	host := dst
	switch {
	case a == d.s.alias:
		host = netip.AddrPortFrom(loopback, dst.Port())
	case d.isLocal(a) || d.s.reserved.Contains(a):
		return netip.AddrPort{}, errReserved
	case a.IsUnspecified() || a.IsLoopback() || a.IsMulticast() || a == broadcast || dst.Port() == 0:
		return netip.AddrPort{}, errSpecial
	case a.IsLinkLocalUnicast() && !d.explicitlyAllowed(a):
		return netip.AddrPort{}, errSpecial
	}
	if len(d.s.allow) > 0 && !d.explicitlyAllowed(host.Addr()) {
		return netip.AddrPort{}, errNotAllowed
	}
	if d.protected(host) {
		return netip.AddrPort{}, errProtected
	}
	return host, nil
}

func (d *DN) explicitlyAllowed(a netip.Addr) bool {
	for _, p := range d.s.allow {
		if p.Contains(a) {
			return true
		}
	}
	return false
}

// protected reports whether host is one of nat.protect's sockets; an entry
// with an unspecified address stands for every host address and loopback.
func (d *DN) protected(host netip.AddrPort) bool {
	for _, p := range d.s.protect {
		if p.Port() != host.Port() {
			continue
		}
		switch {
		case p.Addr() == host.Addr():
			return true
		case p.Addr().IsUnspecified():
			if host.Addr().IsLoopback() {
				return true
			}
			for _, h := range d.host {
				if h == host.Addr() {
					return true
				}
			}
		}
	}
	return false
}

// startNAT installs the handlers of packets no endpoint of the stack owns:
// a permitted TCP SYN or UDP datagram goes to its forwarder, anything else
// to the protocol's unknown-destination handling (TCP: RST, RFC 9293
// 3.10.7.1; UDP: ICMP port unreachable, RFC 1122 4.1.3.1).
func (d *DN) startNAT() {
	tf := tcp.NewForwarder(d.st, 0, maxInFlight, d.forwardTCP)
	d.st.SetTransportProtocolHandler(tcp.ProtocolNumber, func(id stack.TransportEndpointID, pkt *stack.PacketBuffer) bool {
		dst := netip.AddrPortFrom(netAddr(id.LocalAddress), id.LocalPort)
		if _, err := d.route(dst); err != nil {
			if th := header.TCP(pkt.TransportHeader().Slice()); len(th) >= header.TCPMinimumSize &&
				th.Flags() == header.TCPFlagSyn {
				d.c.refused.Add(1)
				d.log.Debug("dn: nat: tcp refused", "src", netAddr(id.RemoteAddress), "dst", dst, "err", err)
			}
			return false
		}
		return tf.HandlePacket(id, pkt)
	})
	uf := udp.NewForwarder(d.st, d.forwardUDP)
	d.st.SetTransportProtocolHandler(udp.ProtocolNumber, func(id stack.TransportEndpointID, pkt *stack.PacketBuffer) bool {
		dst := netip.AddrPortFrom(netAddr(id.LocalAddress), id.LocalPort)
		if _, err := d.route(dst); err != nil {
			d.c.refused.Add(1)
			d.log.Debug("dn: nat: udp refused", "src", netAddr(id.RemoteAddress), "dst", dst, "err", err)
			return false
		}
		return uf.HandlePacket(id, pkt)
	})
}

// forwardTCP serves one device SYN (in a goroutine of the forwarder): it
// dials the host destination first, so that a refused or unreachable
// destination is answered with a RST, then completes the device's
// handshake and splices the two connections.
func (d *DN) forwardTCP(r *tcp.ForwarderRequest) {
	if !d.g.enter() {
		r.Complete(true)
		return
	}
	defer d.g.leave()
	id := r.ID()
	src := netip.AddrPortFrom(netAddr(id.RemoteAddress), id.RemotePort)
	dst := netip.AddrPortFrom(netAddr(id.LocalAddress), id.LocalPort)
	host, err := d.route(dst)
	if err != nil {
		r.Complete(true)
		return
	}
	ctx, cancel := context.WithTimeout(d.ctx, d.s.dialWait)
	hc, err := d.o.dial(ctx, "tcp", host.String())
	cancel()
	if err != nil {
		d.c.dialErrors.Add(1)
		d.log.Debug("dn: nat: tcp dial", "src", src, "dst", dst, "host", host, "err", err)
		r.Complete(true)
		return
	}
	var wq waiter.Queue
	ep, terr := r.CreateEndpoint(&wq)
	if terr != nil {
		hc.Close()
		r.Complete(true)
		d.log.Debug("dn: nat: tcp handshake", "src", src, "dst", dst, "err", terr)
		return
	}
	r.Complete(false)
	ep.SocketOptions().SetKeepAlive(true)
	d.c.tcpFlows.Add(1)
	d.c.tcpActive.Add(1)
	defer d.c.tcpActive.Add(-1)
	d.log.Debug("dn: nat: tcp flow", "src", src, "dst", dst, "host", host)
	d.splice(&devConn{TCPConn: gonet.NewTCPConn(&wq, ep), ep: ep, wq: &wq}, hc)
}

// devConn is the device side of a NAT TCP flow: written through gonet,
// read from the endpoint directly; abort resets it.
type devConn struct {
	*gonet.TCPConn
	ep tcpip.Endpoint
	wq *waiter.Queue
}

func (c *devConn) abort() { c.ep.Abort() }

// splice relays dev <-> host until both directions have ended or d stops.
// An end of stream is passed on as a half-close; an error (a reset) in
// either direction resets both connections.
func (d *DN) splice(dev *devConn, host net.Conn) {
	stop := context.AfterFunc(d.ctx, func() { dev.abort(); abortConn(host) })
	defer stop()
	var failed atomic.Bool
	fail := func() {
		if failed.CompareAndSwap(false, true) {
			dev.abort()
			abortConn(host)
		}
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		pipe(host, newStackReader(dev.ep, dev.wq, true), &d.c.up, fail)
	}()
	pipe(dev, newConnReader(host, true), &d.c.down, fail)
	<-done
	dev.Close()
	host.Close()
}

// pipe copies src to dst, counting bytes into n. At src's end it
// half-closes dst; on an error it calls fail.
func pipe(dst net.Conn, src reader, n *atomic.Uint64, fail func()) {
	defer src.close()
	for {
		b, err := src.read(time.Time{})
		if err != nil {
			if err == io.EOF {
				if cw, ok := dst.(interface{ CloseWrite() error }); ok && cw.CloseWrite() == nil {
					return
				}
			}
			fail()
			return
		}
		nw, werr := dst.Write(b)
		src.release()
		n.Add(uint64(nw))
		if werr != nil {
			fail()
			return
		}
	}
}

// abortConn closes c with a reset where it can (SO_LINGER 0).
func abortConn(c net.Conn) {
	if tc, ok := c.(*net.TCPConn); ok {
		_ = tc.SetLinger(0)
	}
	c.Close()
}

// forwardUDP opens a NAT flow for the first datagram of a device flow (in
// the goroutine that injected it). The endpoint it creates owns the flow's
// later datagrams; the host socket is opened in the flow's goroutine.
func (d *DN) forwardUDP(r *udp.ForwarderRequest) {
	id := r.ID()
	dst := netip.AddrPortFrom(netAddr(id.LocalAddress), id.LocalPort)
	host, err := d.route(dst)
	if err != nil {
		return
	}
	var wq waiter.Queue
	ep, terr := r.CreateEndpoint(&wq)
	if terr != nil {
		d.log.Debug("dn: nat: udp endpoint", "src", netAddr(id.RemoteAddress), "dst", dst, "err", terr)
		return
	}
	dev := devUDP{ep}
	src := newStackReader(ep, &wq, false)
	srcAddr := netip.AddrPortFrom(netAddr(id.RemoteAddress), id.RemotePort)
	if !d.g.Go(func() { d.udpFlow(dev, src, srcAddr, dst, host) }) {
		src.close()
		dev.Close()
	}
}

// devUDP sends datagrams to the device from the flow's endpoint.
type devUDP struct{ ep tcpip.Endpoint }

func (d devUDP) Write(b []byte) (int, error) {
	for retried := false; ; retried = true {
		var r bytes.Reader
		r.Reset(b)
		n, err := d.ep.Write(&r, tcpip.WriteOptions{})
		switch err.(type) {
		case nil:
			return int(n), nil
		case *tcpip.ErrConnectionRefused:
			// The endpoint reported the ICMP error of an earlier
			// datagram instead of sending this one: send it now.
			if !retried {
				continue
			}
		}
		return int(n), errors.New(err.String())
	}
}

func (d devUDP) Close() error {
	d.ep.Close()
	return nil
}

// hostUDP sends datagrams to the host destination.
type hostUDP struct{ net.Conn }

func (h hostUDP) Write(b []byte) (int, error) {
	n, err := h.Conn.Write(b)
	if errors.Is(err, syscall.ECONNREFUSED) {
		// The socket reported the ICMP error of an earlier datagram
		// instead of sending this one: send it now.
		n, err = h.Conn.Write(b)
	}
	return n, err
}

// udpFlow relays one UDP flow until it has been idle for udp_idle_timeout
// or d stops.
func (d *DN) udpFlow(dev devUDP, devSrc *stackReader, src, dst, host netip.AddrPort) {
	defer dev.Close()
	ctx, cancel := context.WithTimeout(d.ctx, d.s.dialWait)
	hc, err := d.o.dial(ctx, "udp", host.String())
	cancel()
	if err != nil {
		devSrc.close()
		d.c.dialErrors.Add(1)
		d.log.Debug("dn: nat: udp dial", "src", src, "dst", dst, "host", host, "err", err)
		return
	}
	defer hc.Close()
	d.c.udpFlows.Add(1)
	d.c.udpActive.Add(1)
	defer d.c.udpActive.Add(-1)
	d.log.Debug("dn: nat: udp flow", "src", src, "dst", dst, "host", host)
	closeAll := func() { dev.Close(); hc.Close() }
	stop := context.AfterFunc(d.ctx, closeAll)
	defer stop()
	f := &udpFlow{idle: d.s.udpIdle, start: time.Now()}
	f.touch()
	done := make(chan struct{})
	go func() {
		defer close(done)
		f.pipe(hostUDP{hc}, devSrc, &d.c.up, closeAll)
	}()
	f.pipe(dev, newConnReader(hc, false), &d.c.down, closeAll)
	<-done
}

// udpFlow is the idle clock of a UDP NAT flow.
type udpFlow struct {
	idle  time.Duration
	start time.Time
	last  atomic.Int64 // time.Since(start) of the last datagram, either way
}

func (f *udpFlow) touch() { f.last.Store(int64(time.Since(f.start))) }

func (f *udpFlow) idleFor() time.Duration {
	return time.Since(f.start) - time.Duration(f.last.Load())
}

// pipe relays datagrams from src to dst. It ends, closing both sides, when
// the flow has been idle for f.idle or either side is closed. Errors a
// datagram socket reports for an earlier datagram do not end the flow.
func (f *udpFlow) pipe(dst io.Writer, src reader, n *atomic.Uint64, closeAll func()) {
	defer closeAll()
	defer src.close()
	for {
		b, err := src.read(time.Now().Add(f.idle - f.idleFor()))
		switch {
		case err == errTimeout:
			if f.idleFor() >= f.idle {
				return
			}
			continue
		case err == errSoft:
			continue
		case err != nil:
			return
		}
		f.touch()
		_, werr := dst.Write(b)
		src.release()
		if werr == nil {
			n.Add(uint64(len(b)))
		}
		// Another failed write (a side closed) is the datagram's loss; a
		// closed side ends the read.
	}
}
