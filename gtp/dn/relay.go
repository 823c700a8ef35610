package dn

import (
	"errors"
	"io"
	"net"
	"os"
	"sync"
	"syscall"
	"time"

	"gvisor.dev/gvisor/pkg/tcpip"
	"gvisor.dev/gvisor/pkg/waiter"
)

// The NAT relays read into pooled buffers and hold none while they wait, so
// an idle flow costs two goroutines and no buffer. relayBufSize is one
// read: a TCP burst, or the largest UDP datagram.
const relayBufSize = 64 << 10

var relayBufs = sync.Pool{New: func() any { b := make([]byte, relayBufSize); return &b }}

// errTimeout is a read that reached its deadline.
var errTimeout = os.ErrDeadlineExceeded

// reader is one direction's source: read waits for data (until deadline,
// if not zero) and returns it in a buffer that stays valid until release.
// At the end of a stream read returns io.EOF.
type reader interface {
	read(deadline time.Time) ([]byte, error)
	release()
	close()
}

// stackReader reads a gVisor endpoint (the device side of a flow). For TCP
// it also lets the endpoint tune its receive buffer, as gonet does.
type stackReader struct {
	ep    tcpip.Endpoint
	wq    *waiter.Queue
	entry waiter.Entry
	ready chan struct{}
	tcp   bool
	timer *time.Timer
	bp    *[]byte
}

func newStackReader(ep tcpip.Endpoint, wq *waiter.Queue, tcp bool) *stackReader {
	r := &stackReader{ep: ep, wq: wq, tcp: tcp}
	r.entry, r.ready = waiter.NewChannelEntry(waiter.ReadableEvents)
	wq.EventRegister(&r.entry)
	return r
}

func (r *stackReader) read(deadline time.Time) ([]byte, error) {
	var expired <-chan time.Time
	for {
		bp := relayBufs.Get().(*[]byte)
		w := tcpip.SliceWriter(*bp)
		res, err := r.ep.Read(&w, tcpip.ReadOptions{})
		if err == nil {
			r.bp = bp
			if r.tcp {
				r.ep.ModerateRecvBuf(res.Count)
			}
			return (*bp)[:res.Count], nil
		}
		relayBufs.Put(bp)
		switch err.(type) {
		case *tcpip.ErrWouldBlock:
		case *tcpip.ErrClosedForReceive:
			return nil, io.EOF
		case *tcpip.ErrConnectionRefused:
			if !r.tcp {
				// An ICMP port unreachable for an earlier datagram
				// (RFC 1122 4.1.3.3); the flow goes on.
				continue
			}
			return nil, errors.New(err.String())
		default:
			return nil, errors.New(err.String())
		}
		if expired == nil && !deadline.IsZero() {
			if r.timer == nil {
				r.timer = time.NewTimer(time.Until(deadline))
			} else {
				r.timer.Reset(time.Until(deadline))
			}
			expired = r.timer.C
		}
		select {
		case <-r.ready:
		case <-expired:
			return nil, errTimeout
		}
	}
}

func (r *stackReader) release() {
	if r.bp != nil {
		relayBufs.Put(r.bp)
		r.bp = nil
	}
}

func (r *stackReader) close() {
	r.release()
	r.wq.EventUnregister(&r.entry)
	if r.timer != nil {
		r.timer.Stop()
	}
}

// connReader reads a host connection. On a socket (syscall.Conn) it waits
// with the runtime's poller and takes a pooled buffer only once data is
// there; any other net.Conn gets a buffer of its own.
type connReader struct {
	c   net.Conn
	raw syscall.RawConn // nil: plain reads into own
	tcp bool
	own []byte
	bp  *[]byte
}

func newConnReader(c net.Conn, tcp bool) *connReader {
	r := &connReader{c: c, tcp: tcp}
	if sc, ok := c.(syscall.Conn); ok && rawReadSupported {
		if raw, err := sc.SyscallConn(); err == nil {
			r.raw = raw
		}
	}
	return r
}

// errSoft: a datagram socket reported an ICMP error for an earlier
// datagram (RFC 1122 4.1.3.3); the flow goes on.
var errSoft = errors.New("earlier datagram refused")

func (r *connReader) read(deadline time.Time) ([]byte, error) {
	if err := r.c.SetReadDeadline(deadline); err != nil {
		return nil, err
	}
	if r.raw == nil {
		return r.readOwn()
	}
	var (
		bp   *[]byte
		n    int
		rerr error
	)
	err := r.raw.Read(func(fd uintptr) bool {
		bp = relayBufs.Get().(*[]byte)
		n, rerr = rawRead(fd, *bp)
		if rerr == syscall.EAGAIN {
			relayBufs.Put(bp)
			bp = nil
			return false // wait for the poller
		}
		return true
	})
	if err == nil {
		err = rerr
	}
	if err == nil && (n > 0 || !r.tcp) {
		r.bp = bp
		return (*bp)[:n], nil
	}
	if bp != nil {
		relayBufs.Put(bp)
	}
	if err == nil {
		return nil, io.EOF // TCP: read(2) returned 0
	}
	return nil, r.mapErr(err)
}

func (r *connReader) readOwn() ([]byte, error) {
	if r.own == nil {
		r.own = make([]byte, relayBufSize)
	}
	for {
		n, err := r.c.Read(r.own)
		if n > 0 || (err == nil && !r.tcp) {
			return r.own[:n], nil
		}
		if err != nil {
			return nil, r.mapErr(err)
		}
	}
}

func (r *connReader) mapErr(err error) error {
	var ne net.Error
	switch {
	case errors.Is(err, io.EOF):
		return io.EOF
	case errors.Is(err, os.ErrDeadlineExceeded) || errors.As(err, &ne) && ne.Timeout():
		return errTimeout
	case errors.Is(err, syscall.ECONNREFUSED) && !r.tcp:
		return errSoft
	}
	return err
}

func (r *connReader) release() {
	if r.bp != nil {
		relayBufs.Put(r.bp)
		r.bp = nil
	}
}

func (r *connReader) close() { r.release() }
