package device

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/netip"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
)

// SOCKS version 5 (RFC 1928) and its username/password negotiation
// (RFC 1929).
const (
	socksVersion = 0x05
	authVersion  = 0x01 // RFC 1929 2: sub-negotiation version

	methodNoAuth       = 0x00
	methodUserPassword = 0x02
	methodNoAcceptable = 0xff

	cmdConnect      = 0x01
	cmdBind         = 0x02
	cmdUDPAssociate = 0x03

	atypIPv4   = 0x01
	atypDomain = 0x03
	atypIPv6   = 0x04

	// RFC 1928 6: reply field.
	repSucceeded               = 0x00
	repGeneralFailure          = 0x01
	repNotAllowed              = 0x02
	repNetworkUnreachable      = 0x03
	repHostUnreachable         = 0x04
	repConnectionRefused       = 0x05
	repTTLExpired              = 0x06
	repCommandNotSupported     = 0x07
	repAddressTypeNotSupported = 0x08
)

// ServeSOCKS runs a SOCKS5 proxy (RFC 1928) on ln that opens connections as
// simulated UEs, until ctx ends; then it closes ln, ends every proxied
// connection and returns nil once they are all gone. If ln fails it
// returns the error, likewise having closed ln and ended its clients.
//
// Clients must authenticate with a user name and password (RFC 1929): the
// user name is the IMSI of the UE to speak as (digits, or "imsi-" and
// digits), the password is ignored. lookup maps the IMSI to its UE's PDU
// session address; an IMSI it does not know fails authentication. Only
// CONNECT is served: to an IPv4 address as given, or to a domain name
// resolved by the UE inside the simulated network (what socks5h:// asks
// for). Failures are answered with the RFC 1928 reply code that says why:
// network unreachable (the UE has no PDU session on this stack), host
// unreachable (no such name, no route, or no answer), connection refused,
// command or address type not supported.
func (s *Stack) ServeSOCKS(ctx context.Context, ln net.Listener, lookup func(imsi string) (netip.Addr, bool)) error {
	srv := &socksServer{
		dial:             s.Dial,
		lookup:           lookup,
		log:              s.log,
		handshakeTimeout: s.cfg.SOCKSHandshakeTimeout,
		dialTimeout:      s.cfg.DialTimeout,
	}
	return srv.serve(ctx, ln)
}

// socksServer is the proxy, apart from the stack it dials through.
type socksServer struct {
	dial             func(ctx context.Context, ue netip.Addr, network, addr string) (net.Conn, error)
	lookup           func(imsi string) (netip.Addr, bool)
	log              *slog.Logger
	handshakeTimeout time.Duration
	dialTimeout      time.Duration
}

func (srv *socksServer) serve(ctx context.Context, ln net.Listener) error {
	if srv.lookup == nil {
		ln.Close()
		return errors.New("device: socks: nil IMSI lookup")
	}
	ctx, cancel := context.WithCancel(ctx)
	var wg sync.WaitGroup
	defer func() {
		cancel() // ends every client, then wait for them
		ln.Close()
		wg.Wait()
	}()
	context.AfterFunc(ctx, func() { ln.Close() })
	var backoff time.Duration
	for {
		c, err := ln.Accept()
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			if temporaryAccept(err) {
				backoff = min(max(2*backoff, 5*time.Millisecond), time.Second)
				srv.log.Warn("device: socks: accept", "err", err, "retry_in", backoff)
				select {
				case <-time.After(backoff):
					continue
				case <-ctx.Done():
					return nil
				}
			}
			return fmt.Errorf("device: socks: accept: %w", err)
		}
		backoff = 0
		wg.Add(1)
		go func() {
			defer wg.Done()
			srv.handle(ctx, c)
		}()
	}
}

// temporaryAccept: accept failed for want of resources or because one
// client gave up early; the listener itself is fine.
func temporaryAccept(err error) bool {
	var ne net.Error
	return errors.Is(err, syscall.EMFILE) || errors.Is(err, syscall.ENFILE) || errors.Is(err, syscall.ENOBUFS) ||
		errors.Is(err, syscall.ENOMEM) || errors.Is(err, syscall.ECONNABORTED) || errors.As(err, &ne) && ne.Timeout()
}

// handle runs one client: negotiation, then the proxied connection.
func (srv *socksServer) handle(ctx context.Context, c net.Conn) {
	defer c.Close()
	stop := context.AfterFunc(ctx, func() { c.Close() })
	defer stop()
	log := srv.log.With("client", c.RemoteAddr().String())
	c.SetDeadline(time.Now().Add(srv.handshakeTimeout))

	methods, err := readGreeting(c)
	if err != nil {
		log.Debug("device: socks: greeting", "err", err)
		return
	}
	if !contains(methods, methodUserPassword) {
		// RFC 1928 3: X'FF' means no acceptable method; the client closes.
		c.Write([]byte{socksVersion, methodNoAcceptable})
		log.Debug("device: socks: client offers no username/password method", "methods", methods)
		return
	}
	if _, err := c.Write([]byte{socksVersion, methodUserPassword}); err != nil {
		return
	}
	user, _, err := readUserPassword(c)
	if err != nil {
		log.Debug("device: socks: authentication", "err", err)
		return
	}
	imsi := imsiOf(user)
	ue, ok := srv.lookup(imsi)
	if !ok {
		// RFC 1929 2: a non-zero status is failure, and the server closes.
		c.Write([]byte{authVersion, 0x01})
		log.Info("device: socks: unknown IMSI", "user", user)
		return
	}
	if _, err := c.Write([]byte{authVersion, 0x00}); err != nil {
		return
	}
	log = log.With("imsi", imsi, "ue", ue)

	req, err := readRequest(c)
	if err != nil {
		var re *replyError
		if errors.As(err, &re) {
			c.Write(appendReply(nil, re.code, netip.AddrPort{}))
		}
		log.Debug("device: socks: request", "err", err)
		return
	}
	if req.cmd != cmdConnect {
		c.Write(appendReply(nil, repCommandNotSupported, netip.AddrPort{}))
		log.Debug("device: socks: command not supported", "cmd", req.cmd)
		return
	}
	// The dial has its own bound; the reply must still get out after it.
	c.SetDeadline(time.Time{})
	dctx, cancel := context.WithTimeout(ctx, srv.dialTimeout)
	up, err := srv.dial(dctx, ue, "tcp", req.target())
	cancel()
	if err != nil {
		c.Write(appendReply(nil, replyCode(err), netip.AddrPort{}))
		log.Info("device: socks: connect", "target", req.target(), "err", err)
		return
	}
	defer up.Close()
	var bound netip.AddrPort
	if a, ok := up.LocalAddr().(*net.TCPAddr); ok {
		bound = netip.AddrPortFrom(a.AddrPort().Addr().Unmap(), a.AddrPort().Port())
	}
	if _, err := c.Write(appendReply(nil, repSucceeded, bound)); err != nil {
		return
	}
	log.Debug("device: socks: connected", "target", req.target(), "bound", bound)
	splice(c, up)
}

// imsiOf takes the IMSI out of a SOCKS user name: "001010000000001" or the
// SUPI form "imsi-001010000000001".
func imsiOf(user string) string {
	if len(user) > 5 && strings.EqualFold(user[:5], "imsi-") {
		return user[5:]
	}
	return user
}

func contains(b []byte, v byte) bool {
	for _, x := range b {
		if x == v {
			return true
		}
	}
	return false
}

// replyCode is the RFC 1928 6 reply for a failed connect.
func replyCode(err error) byte {
	var de *net.DNSError
	switch {
	case errors.Is(err, ErrUnknownUE), errors.Is(err, syscall.ENETUNREACH):
		return repNetworkUnreachable
	case errors.As(err, &de), errors.Is(err, syscall.EHOSTUNREACH),
		errors.Is(err, syscall.ETIMEDOUT), errors.Is(err, context.DeadlineExceeded):
		return repHostUnreachable
	case errors.Is(err, syscall.ECONNREFUSED):
		return repConnectionRefused
	case errors.Is(err, syscall.EAFNOSUPPORT):
		return repAddressTypeNotSupported
	}
	return repGeneralFailure
}

// halfCloser is a connection that can end one direction (TCP FIN).
type halfCloser interface{ CloseWrite() error }

// splice copies both ways until both directions end. When one side ends
// its sending (EOF), the other side's sending is closed too, so a
// half-closed connection stays half-open (RFC 9293 3.6); an error in
// either direction ends both.
func splice(a, b net.Conn) {
	var wg sync.WaitGroup
	var once sync.Once
	abort := func() { once.Do(func() { a.Close(); b.Close() }) }
	copyHalf := func(dst, src net.Conn) {
		defer wg.Done()
		if _, err := io.Copy(dst, src); err != nil {
			abort()
			return
		}
		if hc, ok := dst.(halfCloser); ok {
			if hc.CloseWrite() == nil {
				return
			}
		}
		abort()
	}
	wg.Add(2)
	go copyHalf(b, a)
	copyHalf(a, b)
	wg.Wait()
}

// socksRequest is a client's request (RFC 1928 4).
type socksRequest struct {
	cmd  byte
	atyp byte
	addr netip.Addr // atypIPv4, atypIPv6
	host string     // atypDomain
	port uint16
}

// target is the request's destination as "host:port".
func (r socksRequest) target() string {
	h := r.host
	if r.atyp != atypDomain {
		h = r.addr.String()
	}
	return net.JoinHostPort(h, strconv.Itoa(int(r.port)))
}

// replyError is a malformed request answered with a reply code.
type replyError struct {
	code byte
	msg  string
}

func (e *replyError) Error() string { return e.msg }

// readGreeting reads a version identifier/method selection message
// (RFC 1928 3) and returns the methods offered.
func readGreeting(r io.Reader) ([]byte, error) {
	var h [2]byte
	if _, err := io.ReadFull(r, h[:]); err != nil {
		return nil, fmt.Errorf("greeting: %w", err)
	}
	if h[0] != socksVersion {
		return nil, fmt.Errorf("greeting: version %d, want 5", h[0])
	}
	if h[1] == 0 {
		return nil, errors.New("greeting: no methods")
	}
	methods := make([]byte, h[1])
	if _, err := io.ReadFull(r, methods); err != nil {
		return nil, fmt.Errorf("greeting: %w", err)
	}
	return methods, nil
}

// readUserPassword reads a username/password request (RFC 1929 2). The
// RFC gives both fields 1..255 octets; an empty password is let through, as
// clients given only a user name (curl's socks5h://imsi@host) send one.
func readUserPassword(r io.Reader) (user, password string, err error) {
	var h [2]byte
	if _, err := io.ReadFull(r, h[:]); err != nil {
		return "", "", fmt.Errorf("username/password: %w", err)
	}
	if h[0] != authVersion {
		return "", "", fmt.Errorf("username/password: version %d, want 1", h[0])
	}
	if h[1] == 0 {
		return "", "", errors.New("username/password: empty user name")
	}
	buf := make([]byte, int(h[1])+1)
	if _, err := io.ReadFull(r, buf); err != nil {
		return "", "", fmt.Errorf("username/password: %w", err)
	}
	user = string(buf[:h[1]])
	pw := make([]byte, buf[h[1]])
	if _, err := io.ReadFull(r, pw); err != nil {
		return "", "", fmt.Errorf("username/password: %w", err)
	}
	return user, string(pw), nil
}

// readRequest reads a request (RFC 1928 4, addresses as in 5). Errors the
// client should hear about are *replyError.
func readRequest(r io.Reader) (socksRequest, error) {
	var h [4]byte
	if _, err := io.ReadFull(r, h[:]); err != nil {
		return socksRequest{}, fmt.Errorf("request: %w", err)
	}
	if h[0] != socksVersion {
		return socksRequest{}, &replyError{repGeneralFailure, fmt.Sprintf("request: version %d, want 5", h[0])}
	}
	if h[2] != 0 {
		return socksRequest{}, &replyError{repGeneralFailure, fmt.Sprintf("request: reserved octet %#x, want 0", h[2])}
	}
	req := socksRequest{cmd: h[1], atyp: h[3]}
	switch req.atyp {
	case atypIPv4:
		var a [4]byte
		if _, err := io.ReadFull(r, a[:]); err != nil {
			return socksRequest{}, fmt.Errorf("request: %w", err)
		}
		req.addr = netip.AddrFrom4(a)
	case atypIPv6:
		var a [16]byte
		if _, err := io.ReadFull(r, a[:]); err != nil {
			return socksRequest{}, fmt.Errorf("request: %w", err)
		}
		req.addr = netip.AddrFrom16(a)
	case atypDomain:
		var l [1]byte
		if _, err := io.ReadFull(r, l[:]); err != nil {
			return socksRequest{}, fmt.Errorf("request: %w", err)
		}
		name := make([]byte, l[0])
		if _, err := io.ReadFull(r, name); err != nil {
			return socksRequest{}, fmt.Errorf("request: %w", err)
		}
		if l[0] == 0 {
			return socksRequest{}, &replyError{repHostUnreachable, "request: empty domain name"}
		}
		req.host = string(name)
	default:
		// The address's length is unknown: nothing more can be read.
		return socksRequest{}, &replyError{repAddressTypeNotSupported, fmt.Sprintf("request: address type %#x", req.atyp)}
	}
	var p [2]byte
	if _, err := io.ReadFull(r, p[:]); err != nil {
		return socksRequest{}, fmt.Errorf("request: %w", err)
	}
	req.port = binary.BigEndian.Uint16(p[:])
	if req.atyp == atypIPv6 {
		// UEs have IPv4 PDU sessions only.
		return socksRequest{}, &replyError{repAddressTypeNotSupported, "request: IPv6 destination " + req.target()}
	}
	return req, nil
}

// appendRequest encodes a request (RFC 1928 4).
func appendRequest(b []byte, r socksRequest) []byte {
	b = append(b, socksVersion, r.cmd, 0, r.atyp)
	switch r.atyp {
	case atypDomain:
		b = append(b, byte(len(r.host)))
		b = append(b, r.host...)
	default:
		b = append(b, r.addr.AsSlice()...)
	}
	return binary.BigEndian.AppendUint16(b, r.port)
}

// appendReply encodes a reply (RFC 1928 6) with an IPv4 bound address;
// an invalid bound is 0.0.0.0:0, as in failure replies.
func appendReply(b []byte, rep byte, bound netip.AddrPort) []byte {
	a := [4]byte{}
	if bound.Addr().Is4() {
		a = bound.Addr().As4()
	}
	b = append(b, socksVersion, rep, 0, atypIPv4)
	b = append(b, a[:]...)
	return binary.BigEndian.AppendUint16(b, bound.Port())
}
