//go:build linux && !386

package n2

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/netip"
	"os"
	"sync"
	"syscall"
	"time"

	"github.com/ishidawataru/sctp"
)

// Kernel mode: one-to-one style SCTP sockets (RFC 6458 3), non-blocking and
// driven by Go's poller through os.File, so that Close wakes blocked calls
// and no descriptor is closed while in use. github.com/ishidawataru/sctp
// provides the socket options, bind, connect and sendmsg with
// sctp_sndrcvinfo. This version of it converts the PPID to network order
// itself (sctp_linux.go SCTPWrite: htonl), so it is given PPID 60 in host
// order, not free5gc/ngap's pre-swapped message.PPID (0x3c000000).

// probeKernel opens and closes an SCTP socket.
func probeKernel() error {
	fd, err := syscall.Socket(syscall.AF_INET, syscall.SOCK_STREAM|syscall.SOCK_CLOEXEC, syscall.IPPROTO_SCTP)
	if errors.Is(err, syscall.EAFNOSUPPORT) {
		fd, err = syscall.Socket(syscall.AF_INET6, syscall.SOCK_STREAM|syscall.SOCK_CLOEXEC, syscall.IPPROTO_SCTP)
	}
	if err != nil {
		return fmt.Errorf("%w: socket(IPPROTO_SCTP): %w", ErrNoKernelSCTP, err)
	}
	_ = syscall.Close(fd)
	return nil
}

// kernelSocket opens a non-blocking SCTP socket with our INIT parameters
// and the sctp_sndrcvinfo ancillary data on receive (SCTP_EVENTS data_io).
func kernelSocket(family int, cfg Config) (int, *sctp.SCTPConn, error) {
	fd, err := syscall.Socket(family, syscall.SOCK_STREAM|syscall.SOCK_CLOEXEC|syscall.SOCK_NONBLOCK, syscall.IPPROTO_SCTP)
	if err != nil {
		return -1, nil, fmt.Errorf("%w: socket: %w", ErrNoKernelSCTP, err)
	}
	lib := sctp.NewSCTPConn(fd, nil)
	if family == syscall.AF_INET6 {
		_ = syscall.SetsockoptInt(fd, syscall.IPPROTO_IPV6, syscall.IPV6_V6ONLY, 0)
	}
	// RFC 9260 5.1.1: OS and MIS of our INIT; the peer may offer fewer.
	if err = lib.SetInitMsg(int(cfg.Streams), int(cfg.Streams), 0, 0); err == nil {
		err = lib.SubscribeEvents(sctp.SCTP_EVENT_DATA_IO)
	}
	if err != nil {
		_ = syscall.Close(fd)
		return -1, nil, fmt.Errorf("setsockopt: %w", err)
	}
	return fd, lib, nil
}

func family(ap netip.AddrPort) int {
	if ap.Addr().Is4() {
		return syscall.AF_INET
	}
	return syscall.AF_INET6
}

func sctpAddr(ap netip.AddrPort) *sctp.SCTPAddr {
	ip := net.IP(ap.Addr().AsSlice())
	if !ap.Addr().IsValid() {
		ip = net.IPv6zero
	}
	return &sctp.SCTPAddr{IPAddrs: []net.IPAddr{{IP: ip, Zone: ap.Addr().Zone()}}, Port: int(ap.Port())}
}

// primary is the first address of an SCTP address list.
func primary(a net.Addr) netip.AddrPort {
	sa, ok := a.(*sctp.SCTPAddr)
	if !ok || sa == nil || len(sa.IPAddrs) == 0 {
		return netip.AddrPort{}
	}
	ip, _ := netip.AddrFromSlice(sa.IPAddrs[0].IP)
	return netip.AddrPortFrom(ip.Unmap(), uint16(sa.Port))
}

// kernelConn is one association on a connected one-to-one socket.
type kernelConn struct {
	cfg        Config
	f          *os.File
	rc         syscall.RawConn
	lib        *sctp.SCTPConn // for SCTPWrite; only used while f is open
	local      net.Addr
	remote     net.Addr
	localAP    netip.AddrPort
	remoteAP   netip.AddrPort
	outStreams uint16
	log        *slog.Logger
	release    func(*kernelConn)

	readMu  sync.Mutex
	buf     []byte
	oob     []byte
	pending *message

	closeOnce sync.Once
}

// newKernelConn takes over f, a connected socket, and lib, its options.
func newKernelConn(cfg Config, f *os.File, lib *sctp.SCTPConn, release func(*kernelConn)) (*kernelConn, error) {
	rc, err := f.SyscallConn()
	if err != nil {
		_ = f.Close()
		return nil, err
	}
	var st *sctp.Status
	if cerr := rc.Control(func(uintptr) { st, err = lib.GetStatus() }); cerr != nil {
		err = cerr
	}
	if err != nil {
		_ = f.Close()
		return nil, fmt.Errorf("SCTP_STATUS: %w", err)
	}
	c := &kernelConn{
		cfg:        cfg,
		f:          f,
		rc:         rc,
		lib:        lib,
		outStreams: st.Ostreams,
		release:    release,
		buf:        make([]byte, cfg.MaxMessageSize),
		oob:        make([]byte, syscall.CmsgSpace(64)),
	}
	_ = rc.Control(func(uintptr) { c.local, c.remote = lib.LocalAddr(), lib.RemoteAddr() })
	c.localAP, c.remoteAP = primary(c.local), primary(c.remote)
	c.log = cfg.Logger.With("remote", c.remoteAP.String(), "transport", string(TransportSCTP))
	return c, nil
}

func (c *kernelConn) ReadMsg(b []byte) (int, uint16, uint32, error) {
	c.readMu.Lock()
	defer c.readMu.Unlock()
	if c.pending == nil {
		m, err := c.recv()
		if err != nil {
			return 0, 0, 0, err
		}
		c.pending = &m
	}
	m := c.pending
	n, err := m.deliver(b)
	if err == nil {
		c.pending = nil
	}
	return n, m.stream, m.ppid, err
}

// recv reads one whole user message, which the kernel may hand over in
// parts (RFC 6458 8.1.20, partial delivery): MSG_EOR marks its end.
func (c *kernelConn) recv() (message, error) {
	var (
		n       int
		stream  uint16
		ppid    uint32
		discard bool // skipping a notification or an oversized message
		tooBig  int
	)
	for {
		var rn, oobn, flags int
		var rerr error
		dst := c.buf[n:]
		if discard {
			dst = c.buf
		}
		err := c.rc.Read(func(fd uintptr) bool {
			rn, oobn, flags, _, rerr = syscall.Recvmsg(int(fd), dst, c.oob, 0)
			return !errors.Is(rerr, syscall.EAGAIN)
		})
		if err != nil {
			return message{}, fmt.Errorf("n2: read: %w", net.ErrClosed)
		}
		if rerr != nil {
			return message{}, kernelErr("read", rerr)
		}
		if rn == 0 && oobn == 0 && flags&(syscall.MSG_EOR|sctp.MSG_NOTIFICATION) == 0 {
			return message{}, io.EOF // RFC 9260 9.2: the peer shut the association down
		}
		if flags&sctp.MSG_NOTIFICATION != 0 && n == 0 {
			discard = true // none are subscribed; skip any that come
		}
		if !discard {
			if s, p, ok := parseSndRcv(c.oob[:oobn]); ok {
				stream, ppid = s, p
			}
			n += rn
			if flags&syscall.MSG_EOR == 0 && n == len(c.buf) {
				discard, tooBig = true, n
			}
		} else if tooBig > 0 {
			tooBig += rn
		}
		if flags&syscall.MSG_EOR == 0 {
			continue
		}
		switch {
		case tooBig > 0:
			c.log.Warn("n2: dropped oversized message", "bytes", tooBig, "limit", len(c.buf))
			return message{}, fmt.Errorf("n2: read: %d-byte message on stream %d: %w (limit %d)", tooBig, stream, ErrMessageTooLarge, len(c.buf))
		case discard:
			n, discard = 0, false
			continue
		}
		m := message{data: make([]byte, n), stream: stream, ppid: ppid}
		copy(m.data, c.buf[:n])
		if c.cfg.Tap != nil {
			c.cfg.Tap.Message(false, c.localAP, c.remoteAP, stream, ppid, m.data)
		}
		return m, nil
	}
}

// parseSndRcv reads stream and PPID from the SCTP_SNDRCV control message
// (RFC 6458 5.3.2: struct sctp_sndrcvinfo; stream in host order at 0, PPID
// as on the wire at 8).
func parseSndRcv(oob []byte) (stream uint16, ppid uint32, ok bool) {
	msgs, err := syscall.ParseSocketControlMessage(oob)
	if err != nil {
		return 0, 0, false
	}
	for _, m := range msgs {
		if m.Header.Level == syscall.IPPROTO_SCTP && m.Header.Type == sctp.SCTP_CMSG_SNDRCV && len(m.Data) >= 12 {
			return binary.NativeEndian.Uint16(m.Data), binary.BigEndian.Uint32(m.Data[8:]), true
		}
	}
	return 0, 0, false
}

// kernelErr names what an errno means for the association.
func kernelErr(op string, err error) error {
	switch {
	case errors.Is(err, syscall.ECONNRESET):
		return fmt.Errorf("n2: %s: %w: %w", op, ErrAborted, err)
	case errors.Is(err, syscall.ETIMEDOUT):
		return fmt.Errorf("n2: %s: %w: %w", op, ErrPeerTimeout, err)
	case errors.Is(err, syscall.EPIPE), errors.Is(err, syscall.ENOTCONN):
		return fmt.Errorf("n2: %s: association shut down: %w: %w", op, io.EOF, err)
	}
	return fmt.Errorf("n2: %s: %w", op, err)
}

func (c *kernelConn) WriteMsg(b []byte, stream uint16) error {
	if err := checkWrite(b, stream, c.outStreams, c.cfg.MaxMessageSize); err != nil {
		return err
	}
	// TS 38.412 7: PPID 60 on every NGAP message.
	info := sctp.SndRcvInfo{Stream: stream, PPID: PPIDNGAP}
	var n int
	var werr error
	err := c.rc.Write(func(uintptr) bool {
		n, werr = c.lib.SCTPWrite(b, &info)
		return !errors.Is(werr, syscall.EAGAIN)
	})
	if err != nil {
		return fmt.Errorf("n2: write: %w", net.ErrClosed)
	}
	if werr != nil {
		return kernelErr("write", werr)
	}
	if n != len(b) {
		return fmt.Errorf("n2: write: sent %d of %d bytes", n, len(b))
	}
	if c.cfg.Tap != nil {
		c.cfg.Tap.Message(true, c.localAP, c.remoteAP, stream, PPIDNGAP, b)
	}
	return nil
}

func (c *kernelConn) OutStreams() uint16 { return c.outStreams }

// Close closes the socket: the kernel shuts the association down
// gracefully, or aborts it if received data was left unread.
func (c *kernelConn) Close() error {
	c.closeOnce.Do(func() {
		_ = c.f.Close()
		if c.release != nil {
			c.release(c)
		}
	})
	return nil
}

func (c *kernelConn) LocalAddr() net.Addr  { return c.local }
func (c *kernelConn) RemoteAddr() net.Addr { return c.remote }
func (c *kernelConn) Transport() Transport { return TransportSCTP }

// dialKernel connects without blocking a thread: connect returns
// EINPROGRESS and the poller says when the handshake is over.
func dialKernel(ctx context.Context, cfg Config, addr string) (Conn, error) {
	raddr, err := resolve(ctx, addr, cfg.SCTPPort, false)
	if err != nil {
		return nil, fmt.Errorf("n2: dial: %w", err)
	}
	fd, lib, err := kernelSocket(family(raddr), cfg)
	if err != nil {
		return nil, fmt.Errorf("n2: dial %s: %w", addr, err)
	}
	if cfg.LocalAddr != "" {
		la, err := resolve(ctx, cfg.LocalAddr, 0, true)
		if err == nil {
			if !la.Addr().IsValid() || la.Addr().IsUnspecified() {
				la = netip.AddrPortFrom(netip.IPv6Unspecified(), la.Port())
				if family(raddr) == syscall.AF_INET {
					la = netip.AddrPortFrom(netip.IPv4Unspecified(), la.Port())
				}
			}
			err = sctp.SCTPBind(fd, sctpAddr(la), sctp.SCTP_BINDX_ADD_ADDR)
		}
		if err != nil {
			_ = syscall.Close(fd)
			return nil, fmt.Errorf("n2: dial %s: bind %s: %w", addr, cfg.LocalAddr, err)
		}
	}
	if _, err := sctp.SCTPConnect(fd, sctpAddr(raddr)); err != nil && !errors.Is(err, syscall.EINPROGRESS) {
		_ = syscall.Close(fd)
		return nil, fmt.Errorf("n2: dial %s: connect: %w", addr, err)
	}
	f := os.NewFile(uintptr(fd), "sctp")
	rc, err := f.SyscallConn()
	if err != nil {
		_ = f.Close()
		return nil, fmt.Errorf("n2: dial %s: %w", addr, err)
	}
	hctx, cancel := context.WithTimeout(ctx, cfg.HandshakeTimeout)
	defer cancel()
	// An expired deadline wakes the wait below.
	stop := context.AfterFunc(hctx, func() { _ = f.SetWriteDeadline(time.Unix(1, 0)) })
	var cerr error
	err = rc.Write(func(fd uintptr) bool {
		v, err := syscall.GetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_ERROR)
		switch {
		case err != nil:
			cerr = err
		case v != 0:
			cerr = syscall.Errno(v)
		default:
			if _, err := syscall.Getpeername(int(fd)); errors.Is(err, syscall.ENOTCONN) {
				return false // still in COOKIE-WAIT / COOKIE-ECHOED
			} else if err != nil {
				cerr = err
			}
		}
		return true
	})
	stop()
	if err == nil {
		err = cerr
	}
	if err != nil {
		_ = f.Close()
		if hctx.Err() != nil {
			err = hctx.Err()
		}
		return nil, fmt.Errorf("n2: dial %s: SCTP handshake: %w", addr, err)
	}
	_ = f.SetWriteDeadline(time.Time{})
	c, err := newKernelConn(cfg, f, lib, nil)
	if err != nil {
		return nil, fmt.Errorf("n2: dial %s: %w", addr, err)
	}
	c.log.Info("n2: association up", "local", c.localAP.String(), "out_streams", c.outStreams)
	return c, nil
}

// kernelListener accepts associations on a listening one-to-one socket.
type kernelListener struct {
	listenerBase[*kernelConn]
	cfg      Config
	f        *os.File
	rc       syscall.RawConn
	addr     net.Addr
	loopDone chan struct{}

	closeOnce sync.Once
}

func listenKernel(ctx context.Context, cfg Config) (Listener, error) {
	la, err := resolve(ctx, cfg.LocalAddr, cfg.SCTPPort, true)
	if err != nil {
		return nil, fmt.Errorf("n2: listen: %w", err)
	}
	fam := family(la)
	if !la.Addr().IsValid() || la.Addr().IsUnspecified() {
		la = netip.AddrPortFrom(netip.IPv6Unspecified(), la.Port()) // dual stack
		fam = syscall.AF_INET6
	}
	fd, lib, err := kernelSocket(fam, cfg)
	if errors.Is(err, syscall.EAFNOSUPPORT) && fam == syscall.AF_INET6 && la.Addr().IsUnspecified() {
		la = netip.AddrPortFrom(netip.IPv4Unspecified(), la.Port()) // no IPv6 here
		fd, lib, err = kernelSocket(syscall.AF_INET, cfg)
	}
	if err != nil {
		return nil, fmt.Errorf("n2: listen: %w", err)
	}
	fail := func(what string, err error) (Listener, error) {
		_ = syscall.Close(fd)
		return nil, fmt.Errorf("n2: listen %s: %s: %w", la, what, err)
	}
	if err := syscall.SetsockoptInt(fd, syscall.SOL_SOCKET, syscall.SO_REUSEADDR, 1); err != nil {
		return fail("SO_REUSEADDR", err)
	}
	if err := sctp.SCTPBind(fd, sctpAddr(la), sctp.SCTP_BINDX_ADD_ADDR); err != nil {
		return fail("bind", err)
	}
	if err := syscall.Listen(fd, syscall.SOMAXCONN); err != nil {
		return fail("listen", err)
	}
	addr := lib.LocalAddr()
	f := os.NewFile(uintptr(fd), "sctp-listen")
	rc, err := f.SyscallConn()
	if err != nil {
		_ = f.Close()
		return nil, fmt.Errorf("n2: listen: %w", err)
	}
	ln := &kernelListener{cfg: cfg, f: f, rc: rc, addr: addr, loopDone: make(chan struct{})}
	ln.init()
	go ln.acceptLoop()
	ln.closeWith(ctx, func() { _ = ln.Close() })
	cfg.Logger.Info("n2: listening", "transport", string(TransportSCTP), "addr", primary(addr).String())
	return ln, nil
}

func (ln *kernelListener) acceptLoop() {
	defer close(ln.loopDone)
	for {
		nfd := -1
		var aerr error
		err := ln.rc.Read(func(fd uintptr) bool {
			nfd, _, aerr = syscall.Accept4(int(fd), syscall.SOCK_CLOEXEC|syscall.SOCK_NONBLOCK)
			return !errors.Is(aerr, syscall.EAGAIN)
		})
		if err != nil {
			return // closed
		}
		if aerr != nil {
			ln.cfg.Logger.Debug("n2: accept", "err", aerr)
			if errors.Is(aerr, syscall.EMFILE) || errors.Is(aerr, syscall.ENFILE) || errors.Is(aerr, syscall.ENOBUFS) {
				select {
				case <-time.After(100 * time.Millisecond):
				case <-ln.ctx.Done():
					return
				}
			}
			continue
		}
		lib := sctp.NewSCTPConn(nfd, nil)
		// Inherited from the listener on Linux; set again in case it is not.
		_ = lib.SubscribeEvents(sctp.SCTP_EVENT_DATA_IO)
		c, err := newKernelConn(ln.cfg, os.NewFile(uintptr(nfd), "sctp"), lib, ln.untrack)
		if err != nil {
			ln.cfg.Logger.Debug("n2: accept", "err", err)
			continue
		}
		if !ln.track(c) {
			_ = c.Close()
			return
		}
		c.log.Info("n2: association up", "local", c.localAP.String(), "out_streams", c.outStreams)
		ln.offer(c) // on Close, Close closes c: it is tracked
		if ln.ctx.Err() != nil {
			return
		}
	}
}

func (ln *kernelListener) Addr() net.Addr       { return ln.addr }
func (ln *kernelListener) Transport() Transport { return TransportSCTP }

func (ln *kernelListener) Close() error {
	ln.closeOnce.Do(func() {
		ln.shut()
		_ = ln.f.Close()
		<-ln.loopDone
		for _, c := range ln.drain() {
			_ = c.Close()
		}
		ln.cfg.Logger.Info("n2: listener closed", "transport", string(TransportSCTP))
	})
	return nil
}
