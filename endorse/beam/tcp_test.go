package beam

import (
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"io"
	"net"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/simgate/simgate/core/udr"
)

// echoDest is a TCP (or TLS) destination on loopback: it records what each
// connection sends, echoes it as it comes and, at the end of the stream
// (a half-close), writes "BYE" and closes.
type echoDest struct {
	ln   net.Listener
	mu   sync.Mutex
	got  []string // one entry per finished connection
	done chan struct{}
	wg   sync.WaitGroup
}

func newEchoDest(t *testing.T, cfg *tls.Config) *echoDest {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	if cfg != nil {
		ln = tls.NewListener(ln, cfg)
	}
	d := &echoDest{ln: ln, done: make(chan struct{}, 16)}
	d.wg.Go(func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			d.wg.Go(func() {
				defer c.Close()
				var rec bytes.Buffer
				_, err := io.Copy(io.MultiWriter(c, &rec), c)
				if err == nil {
					io.WriteString(c, "BYE")
				}
				d.mu.Lock()
				d.got = append(d.got, rec.String())
				d.mu.Unlock()
				d.done <- struct{}{}
			})
		}
	})
	t.Cleanup(func() { ln.Close(); d.wg.Wait() })
	return d
}

func (d *echoDest) addr() string { return d.ln.Addr().String() }

// received waits for one finished connection and returns what it sent.
func (d *echoDest) received(t *testing.T) string {
	t.Helper()
	select {
	case <-d.done:
	case <-time.After(10 * time.Second):
		t.Fatal("destination saw no connection end")
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	s := d.got[0]
	d.got = d.got[1:]
	return s
}

// tcpBeam serves a TCP entry point on loopback until the test ends.
func tcpBeam(t *testing.T, o Options) string {
	t.Helper()
	te, err := NewTCPEntry(o)
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	errc := make(chan error, 1)
	go func() { errc <- te.Serve(ctx, ln) }()
	t.Cleanup(func() {
		cancel()
		if err := <-errc; err != nil {
			t.Errorf("Serve: %v", err)
		}
	})
	return ln.Addr().String()
}

// converse connects from src, sends payload, half-closes and reads the
// whole answer.
func converse(t *testing.T, src, addr, payload string) string {
	t.Helper()
	c, err := dialFrom(src).Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(10 * time.Second))
	// A refused connection may be closed before the payload is written:
	// write errors show in what comes back, which every caller checks.
	io.WriteString(c, payload)
	c.(*net.TCPConn).CloseWrite()
	b, err := io.ReadAll(c)
	if err != nil && !errors.Is(err, net.ErrClosed) && !isReset(err) {
		t.Fatalf("read: %v", err)
	}
	return string(b)
}

func isReset(err error) bool {
	return err != nil && strings.Contains(err.Error(), "connection reset")
}

func TestTCPEntry(t *testing.T) {
	cert, pool := selfSigned(t)
	plain := newEchoDest(t, nil)
	secure := newEchoDest(t, &tls.Config{Certificates: []tls.Certificate{cert}})
	st := newStore()
	dialer := &countingDialer{}
	addr := tcpBeam(t, Options{
		Resolver: st.resolver(), Groups: st, Dial: dialer.Dial, Now: func() time.Time { return testNow },
		TLSConfig: &tls.Config{RootCAs: pool},
	})
	const ts = "1445587157992"
	payload := "hello\r\nbinary\x00\xff" + strings.Repeat("x", 100<<10)

	tests := []struct {
		name     string
		entry    udr.BeamEntry
		dest     *echoDest
		wantLine string // before ';', "" for no line
		psk      string
	}{
		{
			name:     "signed line, then relay both ways",
			entry:    udr.BeamEntry{Enabled: true, Destination: "tcp://" + plain.addr(), AddSubscriberHeader: true, AddEquipmentHeader: true, AddMsisdnHeader: true, AddSimIDHeader: true, AddSignature: true, PSK: "topsecret"},
			dest:     plain,
			wantLine: "imei=" + imei1 + " imsi=" + sim1.IMSI + " msisdn=" + sim1.MSISDN + " simId=" + sim1.SIMID + " timestamp=" + ts,
			psk:      "topsecret",
		},
		{
			name:     "unsigned IMSI line",
			entry:    udr.BeamEntry{Enabled: true, Destination: "tcp://" + plain.addr(), AddSubscriberHeader: true},
			dest:     plain,
			wantLine: "imsi=" + sim1.IMSI + " timestamp=" + ts,
		},
		{
			name:  "no identity: bytes only",
			entry: udr.BeamEntry{Enabled: true, Destination: "tcp://" + plain.addr()},
			dest:  plain,
		},
		{
			name:     "tcps destination",
			entry:    udr.BeamEntry{Enabled: true, Destination: "tcps://" + secure.addr(), AddSubscriberHeader: true, AddSignature: true, PSK: "k"},
			dest:     secure,
			wantLine: "imsi=" + sim1.IMSI + " timestamp=" + ts,
			psk:      "k",
		},
	}
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			group := "t" + string(rune('a'+i))
			s := sim1
			s.Group = group
			st.attach(deviceAddr, s, imei1)
			st.setBeam(group, udr.BeamConfig{TCPEntryPoint: tt.entry})

			answer := converse(t, deviceAddr, addr, payload)
			sent := tt.dest.received(t)
			prefix := ""
			if tt.wantLine != "" {
				line, _, ok := strings.Cut(sent, "\n")
				if !ok {
					t.Fatalf("no identity line in %.80q", sent)
				}
				prefix = line + "\n"
				text, sig, signed := strings.Cut(line, ";signature=")
				if text != tt.wantLine {
					t.Errorf("line %q, want %q", text, tt.wantLine)
				}
				if tt.psk != "" {
					want, got := independentTCP(tt.psk, line)
					if !signed || got != want || sig != want {
						t.Errorf("signature %q, recomputed %q", sig, want)
					}
				} else if signed {
					t.Errorf("unsigned entry sent a signature: %q", line)
				}
			}
			if sent != prefix+payload {
				t.Errorf("destination got %d bytes, want line + %d payload bytes", len(sent), len(payload))
			}
			// The echo and the destination's "BYE" after the device's
			// half-close come back, then the end of stream.
			if answer != prefix+payload+"BYE" {
				t.Errorf("device got %d bytes ending %q, want %d ending BYE", len(answer), answer[max(0, len(answer)-8):], len(prefix+payload+"BYE"))
			}
		})
	}

	refusals := []struct {
		name   string
		from   string
		status udr.Status
		cfg    udr.BeamConfig
		dials  bool
	}{
		{"unknown source", unknownAddr, "", udr.BeamConfig{TCPEntryPoint: tests[0].entry}, false},
		{"inactive SIM", deviceAddr, udr.StatusInactive, udr.BeamConfig{TCPEntryPoint: tests[0].entry}, false},
		{"no entry", deviceAddr, "", udr.BeamConfig{HTTPEntryPoint + "/": tests[0].entry}, false},
		{"disabled entry", deviceAddr, "", udr.BeamConfig{TCPEntryPoint: {Enabled: false, Destination: "tcp://" + plain.addr()}}, false},
		{"entry of another port", deviceAddr, "", udr.BeamConfig{"tcp://beam.soracom.io:8024": tests[0].entry}, false},
		{"destination without port", deviceAddr, "", udr.BeamConfig{TCPEntryPoint: {Enabled: true, Destination: "tcp://127.0.0.1"}}, false},
		{"destination not tcp", deviceAddr, "", udr.BeamConfig{TCPEntryPoint: {Enabled: true, Destination: "http://" + plain.addr()}}, false},
		{"destination unreachable", deviceAddr, "", udr.BeamConfig{TCPEntryPoint: {Enabled: true, Destination: "tcp://" + closedPort(t), AddSubscriberHeader: true}}, true},
		{"tls to a plain server", deviceAddr, "", udr.BeamConfig{TCPEntryPoint: {Enabled: true, Destination: "tcps://" + plain.addr(), AddSubscriberHeader: true}}, true},
	}
	for i, tt := range refusals {
		t.Run(tt.name, func(t *testing.T) {
			group := "r" + string(rune('a'+i))
			s := sim1
			s.Group, s.Status = group, tt.status
			st.attach(deviceAddr, s, imei1)
			st.setBeam(group, tt.cfg)
			before := dialer.n.Load()
			if got := converse(t, tt.from, addr, "hello"); got != "" {
				t.Errorf("refused connection answered %q", got)
			}
			if dialed := dialer.n.Load() != before; dialed != tt.dials {
				t.Errorf("dialled the destination: %v, want %v", dialed, tt.dials)
			}
		})
	}
	// The TLS attempt on the plain echo server ends there without data.
	select {
	case <-plain.done:
		plain.mu.Lock()
		plain.got = nil
		plain.mu.Unlock()
	case <-time.After(10 * time.Second):
		t.Error("plain destination did not see the failed TLS attempt end")
	}
}

// TestTCPEntryShutdown: cancelling Serve's context ends open relays and
// Serve returns only after every connection goroutine has.
func TestTCPEntryShutdown(t *testing.T) {
	st := newStore()
	st.attach(deviceAddr, sim1, imei1)
	dest := newEchoDest(t, nil)
	st.setBeam(udr.DefaultGroup, udr.BeamConfig{TCPEntryPoint: {Enabled: true, Destination: "tcp://" + dest.addr(), AddSubscriberHeader: true}})
	te, err := NewTCPEntry(Options{Resolver: st.resolver(), Groups: st})
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	errc := make(chan error, 1)
	go func() { errc <- te.Serve(ctx, ln) }()

	c, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(10 * time.Second))
	io.WriteString(c, "ping")
	buf := make([]byte, 256)
	n, err := io.ReadAtLeast(c, buf, len("imsi=")) // the echo of the identity line
	if err != nil || !strings.HasPrefix(string(buf[:n]), "imsi="+sim1.IMSI) {
		t.Fatalf("echo %q, %v", buf[:n], err)
	}

	cancel()
	select {
	case err := <-errc:
		if err != nil {
			t.Fatalf("Serve = %v, want nil after cancel", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Serve did not return after cancel")
	}
	if _, err := io.ReadAll(c); err != nil && !isReset(err) {
		t.Fatalf("device connection after shutdown: %v", err)
	}
	if _, err := net.Dial("tcp", ln.Addr().String()); err == nil {
		t.Error("listener still accepts after Serve returned")
	}
	dest.received(t) // the destination side was closed too
}

// TestTCPEntryListenerError: Serve returns the error of a failing listener.
func TestTCPEntryListenerError(t *testing.T) {
	st := newStore()
	te, err := NewTCPEntry(Options{Resolver: st.resolver(), Groups: st})
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ln.Close()
	if err := te.Serve(context.Background(), ln); err == nil || !errors.Is(err, net.ErrClosed) {
		t.Fatalf("Serve on a closed listener = %v", err)
	}
}

// flakyListener fails its first Accept with a transient error.
type flakyListener struct {
	net.Listener
	once sync.Once
}

func (l *flakyListener) Accept() (net.Conn, error) {
	var err error
	l.once.Do(func() { err = &net.OpError{Op: "accept", Net: "tcp", Err: syscall.EMFILE} })
	if err != nil {
		return nil, err
	}
	return l.Listener.Accept()
}

// TestTCPEntryTransientAccept: running out of descriptors pauses accepting,
// it does not stop the entry point.
func TestTCPEntryTransientAccept(t *testing.T) {
	st := newStore()
	st.attach(deviceAddr, sim1, imei1)
	dest := newEchoDest(t, nil)
	st.setBeam(udr.DefaultGroup, udr.BeamConfig{TCPEntryPoint: {Enabled: true, Destination: "tcp://" + dest.addr()}})
	te, err := NewTCPEntry(Options{Resolver: st.resolver(), Groups: st})
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	errc := make(chan error, 1)
	go func() { errc <- te.Serve(ctx, &flakyListener{Listener: ln}) }()
	defer func() {
		cancel()
		if err := <-errc; err != nil {
			t.Errorf("Serve: %v", err)
		}
	}()
	if got := converse(t, deviceAddr, ln.Addr().String(), "after EMFILE"); got != "after EMFILEBYE" {
		t.Fatalf("answer %q", got)
	}
}
