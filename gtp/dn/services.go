package dn

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"slices"
	"time"

	"gvisor.dev/gvisor/pkg/tcpip"
	"gvisor.dev/gvisor/pkg/tcpip/adapters/gonet"
	"gvisor.dev/gvisor/pkg/tcpip/network/ipv4"
	"gvisor.dev/gvisor/pkg/tcpip/transport/tcp"
	"gvisor.dev/gvisor/pkg/waiter"
)

// ConnServer serves one TCP connection and closes it; ctx ends when the
// data network stops. *beam.TCPEntry implements it.
type ConnServer interface {
	ServeConn(ctx context.Context, c net.Conn)
}

// Services are the servers the data network hosts. Each sees the device's
// address (its PDU session's UE address) as the connection's remote
// address, so r.RemoteAddr names the SIM's session. Nil fields are not
// served: their ports are refused like any other port of a service address.
type Services struct {
	Endorse    http.Handler // endorse_addr, HTTP 80
	EndorseTLS *tls.Config  // with Endorse: HTTPS 443 too (e.g. (*CA).ServerTLS(EndorseName, endorse_addr))
	BeamHTTP   http.Handler // beam_addr, 8888 (spec 2.1 HTTP entry point)
	BeamSite   http.Handler // beam_addr, 18080 and 80 (spec 2.1 Website entry point)
	BeamTCP    ConnServer   // beam_addr, 8023 (spec 2.1 TCP->TCP/TCPS entry point)

	// More servers on any address and port; an address that is not yet
	// the stack's own becomes so, and the NAT leaves it alone.
	HTTP map[netip.AddrPort]http.Handler
	TCP  map[netip.AddrPort]ConnServer
}

// listener is one service to bind.
type listener struct {
	addr netip.AddrPort
	http http.Handler
	tls  *tls.Config
	conn ConnServer
}

func (s Services) listeners(st *settings) ([]listener, error) {
	var ls []listener
	add := func(a netip.Addr, port uint16, l listener) {
		l.addr = netip.AddrPortFrom(a, port)
		ls = append(ls, l)
	}
	if s.Endorse != nil {
		add(st.endorse, EndorseHTTPPort, listener{http: s.Endorse})
		if s.EndorseTLS != nil {
			add(st.endorse, EndorseHTTPSPort, listener{http: s.Endorse, tls: s.EndorseTLS})
		}
	} else if s.EndorseTLS != nil {
		return nil, errors.New("dn: serve: EndorseTLS without an Endorse handler")
	}
	if s.BeamHTTP != nil {
		add(st.beam, BeamHTTPPort, listener{http: s.BeamHTTP})
	}
	if s.BeamSite != nil {
		add(st.beam, BeamWebsitePort, listener{http: s.BeamSite})
		add(st.beam, 80, listener{http: s.BeamSite})
	}
	if s.BeamTCP != nil {
		add(st.beam, BeamTCPPort, listener{conn: s.BeamTCP})
	}
	for ap, h := range s.HTTP {
		if h != nil {
			ls = append(ls, listener{addr: ap, http: h})
		}
	}
	for ap, c := range s.TCP {
		if c != nil {
			ls = append(ls, listener{addr: ap, conn: c})
		}
	}
	for i, l := range ls {
		a := l.addr.Addr()
		if !a.Is4() || !usable(a) || l.addr.Port() == 0 {
			return nil, fmt.Errorf("dn: serve: %s is not a unicast IPv4 address and port", l.addr)
		}
		if a == st.alias {
			return nil, fmt.Errorf("dn: serve: %s is the NAT's host alias", l.addr)
		}
		if a == st.dns && l.addr.Port() == DNSPort {
			return nil, fmt.Errorf("dn: serve: %s is the DNS responder", l.addr)
		}
		if slices.ContainsFunc(ls[:i], func(o listener) bool { return o.addr == l.addr }) {
			return nil, fmt.Errorf("dn: serve: %s given twice", l.addr)
		}
	}
	return ls, nil
}

// Serve starts svc on the stack and returns once every listener is bound
// (an error, with no server started, if one cannot be); the servers run
// until ctx ends or d stops. Serve may be called again with other services.
func (d *DN) Serve(ctx context.Context, svc Services) error {
	if d.ctx.Err() != nil {
		return fmt.Errorf("dn: serve: %w", ErrClosed)
	}
	ls, err := svc.listeners(d.s)
	if err != nil {
		return err
	}
	for _, l := range ls {
		if err := d.addAddr(l.addr.Addr()); err != nil {
			return err
		}
	}
	var bound []*gonet.TCPListener
	for _, l := range ls {
		ln, err := d.listenTCP(l.addr)
		if err != nil {
			for _, b := range bound {
				b.Close()
			}
			return fmt.Errorf("dn: serve: listen %s: %w", l.addr, err)
		}
		bound = append(bound, ln)
	}
	sctx, cancel := context.WithCancel(ctx)
	stop := context.AfterFunc(d.ctx, cancel)
	for i, l := range ls {
		ln := bound[i]
		context.AfterFunc(sctx, func() { ln.Close() })
		var started bool
		if l.http != nil {
			started = d.g.Go(func() { d.serveHTTP(sctx, ln, l) })
		} else {
			started = d.g.Go(func() { d.serveConns(sctx, ln, l) })
		}
		if !started {
			ln.Close()
		}
	}
	context.AfterFunc(sctx, func() { stop() })
	addrs := make([]string, len(ls))
	for i, l := range ls {
		addrs[i] = l.addr.String()
	}
	d.log.Info("dn: serving", "addrs", addrs)
	return nil
}

// listenTCP is gonet.ListenTCP with SO_REUSEADDR, so a service can listen
// again on its port while connections of its previous listener linger in
// TIME-WAIT.
func (d *DN) listenTCP(ap netip.AddrPort) (*gonet.TCPListener, error) {
	var wq waiter.Queue
	ep, err := d.st.NewEndpoint(tcp.ProtocolNumber, ipv4.ProtocolNumber, &wq)
	if err != nil {
		return nil, fmt.Errorf("endpoint: %s", err)
	}
	ep.SocketOptions().SetReuseAddress(true)
	if err := ep.Bind(tcpip.FullAddress{NIC: nicID, Addr: tcpAddr(ap.Addr()), Port: ap.Port()}); err != nil {
		ep.Close()
		return nil, fmt.Errorf("bind: %s", err)
	}
	if err := ep.Listen(listenBacklog); err != nil {
		ep.Close()
		return nil, fmt.Errorf("listen: %s", err)
	}
	return gonet.NewTCPListener(d.st, &wq, ep), nil
}

// listenBacklog is the accept queue of a service.
const listenBacklog = 1024

// serveHTTP runs an HTTP (or, with l.tls, HTTPS) server on ln until ctx
// ends.
func (d *DN) serveHTTP(ctx context.Context, ln net.Listener, l listener) {
	srv := &http.Server{
		Handler:           l.http,
		ReadHeaderTimeout: 30 * time.Second,
		IdleTimeout:       2 * time.Minute,
		BaseContext:       func(net.Listener) context.Context { return ctx },
		ErrorLog:          slog.NewLogLogger(d.log.Handler(), slog.LevelDebug),
	}
	stop := context.AfterFunc(ctx, func() { srv.Close() })
	defer stop()
	var err error
	if l.tls != nil {
		srv.TLSConfig = l.tls.Clone()
		err = srv.ServeTLS(ln, "", "")
	} else {
		err = srv.Serve(ln)
	}
	if err != nil && !errors.Is(err, http.ErrServerClosed) && ctx.Err() == nil && d.ctx.Err() == nil {
		d.log.Warn("dn: service stopped", "addr", l.addr, "err", err)
	}
}

// serveConns accepts connections on ln and hands each to l.conn until ctx
// ends.
func (d *DN) serveConns(ctx context.Context, ln net.Listener, l listener) {
	defer ln.Close()
	for {
		c, err := ln.Accept()
		if err != nil {
			if ctx.Err() == nil && d.ctx.Err() == nil {
				d.log.Warn("dn: service stopped", "addr", l.addr, "err", err)
			}
			return
		}
		if !d.g.Go(func() {
			stop := context.AfterFunc(ctx, func() { c.Close() })
			defer stop()
			defer c.Close()
			l.conn.ServeConn(ctx, c)
		}) {
			c.Close()
			return
		}
	}
}
