package device

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"strconv"
	"sync"
	"syscall"

	"gvisor.dev/gvisor/pkg/tcpip"
	"gvisor.dev/gvisor/pkg/tcpip/adapters/gonet"
	"gvisor.dev/gvisor/pkg/tcpip/network/ipv4"
	"gvisor.dev/gvisor/pkg/tcpip/transport/tcp"
	"gvisor.dev/gvisor/pkg/waiter"
)

// Dial connects to addr ("host:port") on network "tcp", "tcp4", "udp" or
// "udp4" as the UE whose PDU session address is ue: the socket is bound to
// that address, so the network sees the UE. A host name is resolved by the
// UE through its session's DNS server; each address found is tried in turn.
// A TCP connection has CloseWrite and CloseRead (a *gonet.TCPConn inside).
// Errors are *net.OpError; refused, unreachable and timed-out connections
// match syscall.ECONNREFUSED, EHOSTUNREACH, ENETUNREACH and ETIMEDOUT with
// errors.Is, and name failures are *net.DNSError.
func (s *Stack) Dial(ctx context.Context, ue netip.Addr, network, addr string) (net.Conn, error) {
	var tcpNet bool
	switch network {
	case "tcp", "tcp4":
		tcpNet = true
	case "udp", "udp4":
	default:
		return nil, &net.OpError{Op: "dial", Net: network, Err: fmt.Errorf("device: network %q not supported (tcp, tcp4, udp, udp4)", network)}
	}
	u := s.lookup(ue)
	if u == nil {
		return nil, &net.OpError{Op: "dial", Net: network, Err: fmt.Errorf("device: ue %s: %w", ue, ErrUnknownUE)}
	}
	host, portStr, err := net.SplitHostPort(addr)
	if err != nil {
		return nil, &net.OpError{Op: "dial", Net: network, Err: fmt.Errorf("device: address %q: %w", addr, err)}
	}
	port, err := parsePort(portStr)
	if err != nil {
		return nil, &net.OpError{Op: "dial", Net: network, Err: fmt.Errorf("device: address %q: %w", addr, err)}
	}
	ips, err := s.resolve(ctx, u, host)
	if err != nil {
		return nil, &net.OpError{Op: "dial", Net: network, Err: err}
	}
	var first error
	for _, ip := range ips {
		dst := netip.AddrPortFrom(ip, port)
		var c net.Conn
		if tcpNet {
			c, err = s.dialTCP(ctx, u, dst)
		} else {
			c, err = s.dialUDP(u, dst)
		}
		if err == nil {
			return c, nil
		}
		if first == nil {
			first = err
		}
		if ctx.Err() != nil {
			break
		}
	}
	return nil, first
}

// parsePort reads a decimal port; service names are not looked up, as the
// host's services database is no part of the simulated network.
func parsePort(p string) (uint16, error) {
	n, err := strconv.ParseUint(p, 10, 16)
	if err != nil || n == 0 {
		return 0, fmt.Errorf("bad port %q", p)
	}
	return uint16(n), nil
}

// dialTCP opens a TCP connection from the UE's address. It does what
// gonet.DialTCPWithBind does, but keeps the endpoint (to reset it when the
// UE goes) and the kind of error (for SOCKS reply codes).
func (s *Stack) dialTCP(ctx context.Context, u *ue, dst netip.AddrPort) (net.Conn, error) {
	opErr := func(err error) error {
		return &net.OpError{Op: "dial", Net: "tcp", Source: &net.TCPAddr{IP: u.addr.AsSlice()}, Addr: net.TCPAddrFromAddrPort(dst), Err: err}
	}
	if !dst.Addr().Is4() {
		return nil, opErr(fmt.Errorf("device: %s: %w", dst.Addr(), syscall.EAFNOSUPPORT))
	}
	var wq waiter.Queue
	ep, terr := s.st.NewEndpoint(tcp.ProtocolNumber, ipv4.ProtocolNumber, &wq)
	if terr != nil {
		return nil, opErr(tcpipError(terr))
	}
	c := &tcpConn{ep: ep, u: u}
	if !u.track(c) {
		ep.Close()
		return nil, opErr(fmt.Errorf("device: ue %s: %w", u.addr, ErrUnknownUE))
	}
	fail := func(err error) (net.Conn, error) {
		u.untrack(c)
		ep.Close()
		return nil, opErr(err)
	}
	entry, ready := waiter.NewChannelEntry(waiter.WritableEvents)
	wq.EventRegister(&entry)
	defer wq.EventUnregister(&entry)
	if terr := ep.Bind(tcpip.FullAddress{Addr: tcpip.AddrFrom4(u.addr.As4())}); terr != nil {
		return fail(tcpipError(terr))
	}
	terr = ep.Connect(tcpip.FullAddress{Addr: tcpip.AddrFrom4(dst.Addr().As4()), Port: dst.Port()})
	if _, ok := terr.(*tcpip.ErrConnectStarted); ok {
		select {
		case <-ctx.Done():
			return fail(ctx.Err())
		case <-ready:
		}
		terr = ep.LastError()
	}
	if terr != nil {
		return fail(tcpipError(terr))
	}
	c.TCPConn = gonet.NewTCPConn(&wq, ep)
	return c, nil
}

// dialUDP opens a connected UDP socket from the UE's address.
func (s *Stack) dialUDP(u *ue, dst netip.AddrPort) (net.Conn, error) {
	if !dst.Addr().Is4() {
		return nil, &net.OpError{Op: "dial", Net: "udp", Addr: net.UDPAddrFromAddrPort(dst), Err: fmt.Errorf("device: %s: %w", dst.Addr(), syscall.EAFNOSUPPORT)}
	}
	local := tcpip.FullAddress{Addr: tcpip.AddrFrom4(u.addr.As4())}
	remote := tcpip.FullAddress{Addr: tcpip.AddrFrom4(dst.Addr().As4()), Port: dst.Port()}
	uc, err := gonet.DialUDP(s.st, &local, &remote, ipv4.ProtocolNumber)
	if err != nil {
		return nil, err
	}
	c := &udpConn{UDPConn: uc, u: u}
	if !u.track(c) {
		uc.Close()
		return nil, &net.OpError{Op: "dial", Net: "udp", Addr: net.UDPAddrFromAddrPort(dst), Err: fmt.Errorf("device: ue %s: %w", u.addr, ErrUnknownUE)}
	}
	return c, nil
}

// tcpConn is a UE's TCP connection; Close forgets it, UE removal resets it.
type tcpConn struct {
	*gonet.TCPConn
	ep   tcpip.Endpoint
	u    *ue
	once sync.Once
}

// Close implements net.Conn.
func (c *tcpConn) Close() error {
	c.once.Do(func() { c.u.untrack(c) })
	return c.TCPConn.Close()
}

// abort resets the connection (RFC 9293 3.10.7.1), for a UE whose PDU
// session went away; pending reads and writes fail.
func (c *tcpConn) abort() { c.ep.Abort() }

// udpConn is a UE's UDP socket; Close forgets it, UE removal closes it.
type udpConn struct {
	*gonet.UDPConn
	u    *ue
	once sync.Once
}

// Close implements net.Conn.
func (c *udpConn) Close() error {
	c.once.Do(func() { c.u.untrack(c) })
	return c.UDPConn.Close()
}

func (c *udpConn) abort() { c.UDPConn.Close() }

// tcpipError turns a gVisor error into the errno a host socket would have
// given, so callers test it with errors.Is as they would a kernel's.
func tcpipError(e tcpip.Error) error {
	var errno syscall.Errno
	switch e.(type) {
	case *tcpip.ErrConnectionRefused:
		errno = syscall.ECONNREFUSED
	case *tcpip.ErrHostUnreachable, *tcpip.ErrHostDown:
		errno = syscall.EHOSTUNREACH
	case *tcpip.ErrNetworkUnreachable, *tcpip.ErrNoNet:
		errno = syscall.ENETUNREACH
	case *tcpip.ErrTimeout:
		errno = syscall.ETIMEDOUT
	case *tcpip.ErrConnectionReset:
		errno = syscall.ECONNRESET
	case *tcpip.ErrConnectionAborted, *tcpip.ErrAborted:
		errno = syscall.ECONNABORTED
	case *tcpip.ErrBadLocalAddress:
		errno = syscall.EADDRNOTAVAIL
	case *tcpip.ErrPortInUse:
		errno = syscall.EADDRINUSE
	case *tcpip.ErrNoPortAvailable:
		errno = syscall.EAGAIN
	default:
		return errors.New(e.String())
	}
	return &stackError{msg: e.String(), errno: errno}
}

// stackError keeps gVisor's wording and matches its errno.
type stackError struct {
	msg   string
	errno syscall.Errno
}

func (e *stackError) Error() string { return e.msg }
func (e *stackError) Unwrap() error { return e.errno }
func (e *stackError) Timeout() bool { return e.errno == syscall.ETIMEDOUT }
