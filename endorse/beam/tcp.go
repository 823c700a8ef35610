package beam

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"sync"
	"syscall"
	"time"

	"github.com/simgate/simgate/endorse"
)

// TCPEntry is the TCP->TCP/TCPS entry point (spec 2.1, 2.4, port 8023): for
// each device connection it dials the entry's destination (tcps: TLS),
// writes the identity line and relays bytes both ways. It is safe for
// concurrent use.
type TCPEntry struct {
	s settings
}

// NewTCPEntry returns the TCP entry point under o.
func NewTCPEntry(o Options) (*TCPEntry, error) {
	s, err := o.settings(TCPEntryPoint, "tcp")
	if err != nil {
		return nil, err
	}
	return &TCPEntry{s: s}, nil
}

// Serve accepts device connections on ln until ctx is done or ln fails, and
// serves each one. It closes ln, and every connection it accepted, before it
// returns: nil once ctx is done, else the accept error.
func (t *TCPEntry) Serve(ctx context.Context, ln net.Listener) error {
	ctx, cancel := context.WithCancel(ctx)
	var wg sync.WaitGroup
	defer wg.Wait() // after cancel: the connections close with ctx
	defer cancel()
	stop := context.AfterFunc(ctx, func() { ln.Close() })
	defer stop()
	defer ln.Close()
	var delay time.Duration
	for {
		c, err := ln.Accept()
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			if transientAccept(err) {
				// Out of descriptors (or a listener deadline): back off,
				// up to 1 s, instead of failing the entry point.
				delay = min(max(2*delay, 5*time.Millisecond), time.Second)
				t.s.log.Warn("beam: tcp accept", "err", err, "retry_in", delay)
				select {
				case <-time.After(delay):
					continue
				case <-ctx.Done():
					return nil
				}
			}
			return fmt.Errorf("beam: tcp accept: %w", err)
		}
		delay = 0
		wg.Go(func() { t.ServeConn(ctx, c) })
	}
}

func transientAccept(err error) bool {
	var ne net.Error
	return errors.Is(err, syscall.EMFILE) || errors.Is(err, syscall.ENFILE) || (errors.As(err, &ne) && ne.Timeout())
}

// ServeConn serves one device connection and closes it: it resolves the SIM
// from the connection's remote address, finds the group's enabled entry of
// this entry point, dials its destination, writes the identity line and
// relays until both directions have ended or ctx is done. A connection that
// cannot be served is closed without a byte written.
func (t *TCPEntry) ServeConn(ctx context.Context, c net.Conn) {
	defer c.Close()
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	stop := context.AfterFunc(ctx, func() { c.Close() })
	defer stop()

	dst, err := t.open(ctx, c)
	if err != nil {
		lvl := t.s.log.Debug
		if !errors.Is(err, endorse.ErrUnknownSource) && !errors.Is(err, endorse.ErrInactive) && !errors.Is(err, errNoTCPEntry) {
			lvl = t.s.log.Info
		}
		lvl("beam: tcp refused", "remote", c.RemoteAddr().String(), "err", err)
		return
	}
	defer dst.Close()
	stopDst := context.AfterFunc(ctx, func() { dst.Close() })
	defer stopDst()
	if err := relay(c, dst); err != nil {
		t.s.log.Debug("beam: tcp relay ended", "remote", c.RemoteAddr().String(), "err", err)
	}
}

// errNoTCPEntry: the SIM's group has no enabled entry for this entry point.
var errNoTCPEntry = errors.New("no enabled TCP entry")

// open resolves, looks up, dials and writes the identity line.
func (t *TCPEntry) open(ctx context.Context, c net.Conn) (net.Conn, error) {
	// The Resolver answers for a request; a TCP connection is presented as
	// a CONNECT request carrying its remote address and ctx.
	req, err := http.NewRequestWithContext(ctx, http.MethodConnect, "tcp://"+c.LocalAddr().String(), nil)
	if err != nil {
		return nil, fmt.Errorf("beam: tcp: local address %s: %w", c.LocalAddr(), err)
	}
	req.RemoteAddr = c.RemoteAddr().String()
	id, err := t.s.res.Resolve(req)
	if err != nil {
		return nil, err
	}
	if !id.Active {
		return nil, fmt.Errorf("beam: tcp: %s: %w", id.IMSI, endorse.ErrInactive)
	}
	cfg, err := t.s.group(id)
	if err != nil {
		return nil, err
	}
	m, ok := lookup(cfg, t.s.ep, "")
	if !ok {
		return nil, fmt.Errorf("beam: tcp: group of %s: %w", id.IMSI, errNoTCPEntry)
	}
	dest, err := destination(m.entry.Destination, true, "tcp", "tcps")
	if err != nil {
		return nil, fmt.Errorf("beam: entry %s: %w", m.key, err)
	}
	now := t.s.now()
	line, err := IdentityLine(m.entry, id, now)
	if err != nil {
		return nil, err
	}

	dctx, cancel := context.WithTimeout(ctx, t.s.dialTimeout)
	defer cancel()
	raw, err := t.s.dial(dctx, "tcp", dest.Host)
	if err != nil {
		return nil, fmt.Errorf("beam: dial %s: %w", dest.Host, err)
	}
	var dst net.Conn = raw
	if dest.Scheme == "tcps" {
		tc := tls.Client(raw, t.s.tlsFor(dest.Hostname()))
		if err := tc.HandshakeContext(dctx); err != nil {
			raw.Close()
			return nil, fmt.Errorf("beam: tls %s: %w", dest.Host, err)
		}
		dst = &tlsConn{Conn: tc, raw: raw}
	}
	if line != "" {
		// Spec 2.4: the identity line comes first, before any device byte.
		if _, err := io.WriteString(dst, line+LineTerminator); err != nil {
			dst.Close()
			return nil, fmt.Errorf("beam: %s: identity line: %w", dest.Host, err)
		}
	}
	return dst, nil
}

// tlsConn half-closes TLS completely: close_notify, then a TCP FIN.
type tlsConn struct {
	*tls.Conn
	raw net.Conn
}

func (c *tlsConn) CloseWrite() error {
	err := c.Conn.CloseWrite()
	if cw, ok := c.raw.(closeWriter); ok {
		err = errors.Join(err, cw.CloseWrite())
	}
	return err
}

type closeWriter interface{ CloseWrite() error }

// relay copies a->b and b->a until both directions have ended. The end of
// one direction is passed on as a half-close; an error in either direction
// closes both connections, which ends the other direction too.
func relay(a, b net.Conn) error {
	errc := make(chan error, 1)
	go func() { errc <- pipe(b, a) }()
	err := pipe(a, b)
	return errors.Join(err, <-errc)
}

// pipe copies src to dst and, at src's end, half-closes dst. A connection
// that cannot half-close is closed, so the peer still sees the end.
func pipe(dst, src net.Conn) error {
	_, err := io.Copy(dst, src)
	if err == nil {
		if cw, ok := dst.(closeWriter); ok {
			err = cw.CloseWrite()
		} else {
			return dst.Close()
		}
	}
	if err != nil {
		dst.Close()
		src.Close()
	}
	return err
}
