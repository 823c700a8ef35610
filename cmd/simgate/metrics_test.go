package main

import (
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/simgate/simgate/core/amf"
)

func TestServeOps(t *testing.T) {
	a := newApp(io.Discard, io.Discard)
	r := a.newMetrics()
	r.AMF().Procedure(amf.ProcRegistration, amf.Success, 20*time.Millisecond)
	var notReady atomic.Pointer[error]
	starting := errors.New("upf: N4 not bound yet")
	notReady.Store(&starting)
	ready := func() error {
		if p := notReady.Load(); p != nil {
			return *p
		}
		return nil
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	s, err := a.serveOps(ctx, "127.0.0.1:0", r, ready)
	if err != nil {
		t.Fatal(err)
	}
	base := "http://" + s.Addr().String()
	get := func(path string) (int, string) {
		t.Helper()
		resp, err := http.Get(base + path)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, err := io.ReadAll(resp.Body)
		if err != nil {
			t.Fatal(err)
		}
		return resp.StatusCode, string(b)
	}
	tests := []struct {
		name, path string
		setup      func()
		status     int
		contains   []string
	}{
		{"health", healthPath, nil, http.StatusOK, []string{"ok"}},
		{"not ready", readyPath, nil, http.StatusServiceUnavailable, []string{"N4 not bound yet"}},
		{"ready", readyPath, func() { notReady.Store(nil) }, http.StatusOK, []string{"ready"}},
		{"metrics", metricsPath, nil, http.StatusOK, []string{
			"go_goroutines", "process_start_time_seconds",
			`simgate_amf_procedures_total{outcome="success",procedure="registration"} 1`,
			`simgate_amf_procedure_duration_seconds_count{outcome="success",procedure="registration"} 1`,
		}},
		{"unknown path", "/nope", nil, http.StatusNotFound, nil},
	}
	for _, tc := range tests {
		if tc.setup != nil {
			tc.setup()
		}
		status, body := get(tc.path)
		if status != tc.status {
			t.Errorf("%s: GET %s: %d, want %d (%q)", tc.name, tc.path, status, tc.status, body)
		}
		for _, c := range tc.contains {
			if !strings.Contains(body, c) {
				t.Errorf("%s: GET %s: body lacks %q", tc.name, tc.path, c)
			}
		}
	}

	cancel()
	done := make(chan error, 1)
	go func() { done <- s.Wait() }()
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("Wait: %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("ops server did not stop with its context")
	}
	if c, err := net.Dial("tcp", s.Addr().String()); err == nil {
		c.Close()
		t.Error("ops server still accepts connections after its context ended")
	}
}

func TestServeOpsBadAddr(t *testing.T) {
	a := newApp(io.Discard, io.Discard)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	for _, addr := range []string{ln.Addr().String(), "127.0.0.1:99999", "no-port"} {
		if _, err := a.serveOps(context.Background(), addr, a.newMetrics(), nil); err == nil {
			t.Errorf("serveOps(%q): no error", addr)
		}
	}
}

func TestMountMetrics(t *testing.T) {
	a := newApp(io.Discard, io.Discard)
	r := a.newMetrics()
	r.AMF().Reject(amf.RejectRegistration, 7)
	mux := http.NewServeMux()
	mountMetrics(mux, r)
	srv := httptest.NewServer(mux)
	defer srv.Close()
	resp, err := http.Get(srv.URL + metricsPath)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != http.StatusOK || !strings.Contains(string(b), `simgate_amf_rejects_total{cause="7",message="registration_reject"} 1`) {
		t.Errorf("GET %s: %s\n%s", metricsPath, resp.Status, b)
	}
}
