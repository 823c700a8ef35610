package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"time"

	"github.com/simgate/simgate/metrics"
)

// Paths of the ops endpoints.
const (
	metricsPath = "/metrics"
	healthPath  = "/healthz"
	readyPath   = "/readyz"
)

// newMetrics returns the process's metrics: one registry per process, with
// the Go runtime and process collectors; the commands add their components.
func (a *app) newMetrics() *metrics.Registry { return metrics.New() }

// reg is the process's metrics registry, made on first use.
func (a *app) reg() *metrics.Registry {
	if a.metrics == nil {
		a.metrics = a.newMetrics()
	}
	return a.metrics
}

// track registers a component's collector; a failure is logged, not fatal.
func (a *app) track(what string, err error) {
	if err != nil {
		a.logger().Warn("metrics: not collected", "component", what, "err", err)
	}
}

// OpsConfig is the host endpoint of processes that serve nothing else
// over HTTP (simgate upf, simgate ran).
type OpsConfig struct {
	Addr string `yaml:"addr" doc:"host address serving /metrics, /healthz and /readyz for simgate upf and simgate ran (simgate core and up serve them on http.addr); empty disables it"`
}

// mountMetrics serves r's metrics at /metrics on mux.
func mountMetrics(mux *http.ServeMux, r *metrics.Registry) {
	mux.Handle(metricsPath, r.Handler())
}

// opsMux serves /metrics, /healthz (200 "ok" while the process serves) and
// /readyz (200 when ready returns nil, else 503 with its reason; a nil
// ready is always ready).
func opsMux(r *metrics.Registry, ready func() error) *http.ServeMux {
	mux := http.NewServeMux()
	mountMetrics(mux, r)
	mux.HandleFunc(healthPath, func(w http.ResponseWriter, _ *http.Request) { fmt.Fprintln(w, "ok") })
	mux.HandleFunc(readyPath, func(w http.ResponseWriter, _ *http.Request) {
		if ready != nil {
			if err := ready(); err != nil {
				http.Error(w, "not ready: "+err.Error(), http.StatusServiceUnavailable)
				return
			}
		}
		fmt.Fprintln(w, "ready")
	})
	return mux
}

// opsServer is a running ops endpoint.
type opsServer struct {
	addr net.Addr
	done chan error
}

// Addr is the address the endpoint listens on.
func (s *opsServer) Addr() net.Addr { return s.addr }

// Wait returns when the endpoint has stopped: nil after its context ended,
// else the error that stopped it.
func (s *opsServer) Wait() error { return <-s.done }

// serveOps serves /metrics, /healthz and /readyz (opsMux) on the host
// address addr until ctx ends, for processes with no other HTTP endpoint
// (upf, ran). It returns once the socket is bound.
func (a *app) serveOps(ctx context.Context, addr string, r *metrics.Registry, ready func() error) (*opsServer, error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("ops: listen on %s: %w", addr, err)
	}
	log := a.logger()
	srv := &http.Server{
		Handler:           opsMux(r, ready),
		ReadHeaderTimeout: 10 * time.Second,
		ErrorLog:          slog.NewLogLogger(log.Handler(), slog.LevelWarn),
	}
	s := &opsServer{addr: ln.Addr(), done: make(chan error, 1)}
	served := make(chan error, 1)
	go func() { served <- srv.Serve(ln) }()
	go func() {
		var err error
		select {
		case <-ctx.Done():
			sctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
			err = srv.Shutdown(sctx)
			cancel()
			if e := <-served; !errors.Is(e, http.ErrServerClosed) {
				err = errors.Join(err, e)
			}
		case err = <-served: // the listener failed
			_ = srv.Close()
		}
		if err != nil {
			err = fmt.Errorf("ops: %s: %w", ln.Addr(), err)
		}
		s.done <- err
	}()
	log.Info("ops: serving metrics and health", "addr", ln.Addr().String(), "metrics", "http://"+ln.Addr().String()+metricsPath)
	return s, nil
}

// serveOpsIfSet serves /metrics, /healthz and /readyz on ops.addr, when set,
// until ctx ends.
func (a *app) serveOpsIfSet(ctx context.Context) error {
	if a.cfg.Ops.Addr == "" {
		return nil
	}
	_, err := a.serveOps(ctx, a.cfg.Ops.Addr, a.reg(), nil)
	return err
}
