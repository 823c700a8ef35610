package n2

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"net"
	"net/netip"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// noLeaks fails the test if goroutines started during it are still alive
// once its cleanups (registered later, so run earlier) have run.
func noLeaks(t *testing.T) {
	t.Helper()
	before := runtime.NumGoroutine()
	t.Cleanup(func() {
		deadline := time.Now().Add(5 * time.Second)
		for {
			n := runtime.NumGoroutine()
			if n <= before {
				return
			}
			if time.Now().After(deadline) {
				buf := make([]byte, 1<<20)
				buf = buf[:runtime.Stack(buf, true)]
				t.Errorf("goroutine leak: %d before, %d after\n%s", before, n, buf)
				return
			}
			time.Sleep(20 * time.Millisecond)
		}
	})
}

// testConfig is a loopback UDP-mode configuration with short timers.
func testConfig(t testing.TB) Config {
	return Config{
		Transport:        TransportUDP,
		LocalAddr:        "127.0.0.1:0",
		HandshakeTimeout: 3 * time.Second,
		ShutdownTimeout:  time.Second,
		Logger:           testLogger(t),
	}
}

// testLogger logs to t at warn level (debug with -v is too chatty).
func testLogger(t testing.TB) *slog.Logger {
	return slog.New(slog.NewTextHandler(tWriter{t}, &slog.HandlerOptions{Level: slog.LevelWarn}))
}

type tWriter struct{ t testing.TB }

func (w tWriter) Write(p []byte) (int, error) {
	w.t.Helper()
	w.t.Log(strings.TrimSpace(string(p)))
	return len(p), nil
}

// logBuffer collects log lines.
type logBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *logBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *logBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

func listen(t *testing.T, cfg Config) Listener {
	t.Helper()
	ln, err := Listen(context.Background(), cfg)
	if err != nil {
		t.Fatalf("Listen: %v", err)
	}
	t.Cleanup(func() { _ = ln.Close() })
	return ln
}

// dial connects to ln and returns both ends.
func dial(t *testing.T, ln Listener, cfg Config) (client, server Conn) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	client, err := Dial(ctx, cfg, ln.Addr().String())
	if err != nil {
		t.Fatalf("Dial: %v", err)
	}
	t.Cleanup(func() { _ = client.Close() })
	server, err = ln.Accept(ctx)
	if err != nil {
		t.Fatalf("Accept: %v", err)
	}
	t.Cleanup(func() { _ = server.Close() })
	return client, server
}

type readResult struct {
	data   []byte
	stream uint16
	ppid   uint32
	err    error
}

// read reads one message, failing the test after timeout.
func read(t *testing.T, c Conn, timeout time.Duration) readResult {
	t.Helper()
	ch := make(chan readResult, 1)
	go func() {
		buf := make([]byte, 1<<20)
		n, s, p, err := c.ReadMsg(buf)
		ch <- readResult{bytes.Clone(buf[:max(n, 0)]), s, p, err}
	}()
	select {
	case r := <-ch:
		return r
	case <-time.After(timeout):
		_ = c.Close() // unblocks the reader
		<-ch
		t.Fatalf("no message within %v", timeout)
		return readResult{}
	}
}

// recorder is a Tap keeping copies of what it sees.
type recorder struct {
	mu        sync.Mutex
	datagrams []datagram
	messages  int
}

type datagram struct {
	out           bool
	local, remote netip.AddrPort
	payload       []byte
	at            time.Time
}

func (r *recorder) Datagram(out bool, local, remote netip.AddrPort, payload []byte) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.datagrams = append(r.datagrams, datagram{out, local, remote, bytes.Clone(payload), time.Now()})
}

func (r *recorder) Message(bool, netip.AddrPort, netip.AddrPort, uint16, uint32, []byte) {
	r.mu.Lock()
	r.messages++
	r.mu.Unlock()
}

func (r *recorder) all() []datagram {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]datagram(nil), r.datagrams...)
}

// relay forwards datagrams between one client and a server, and can drop
// everything (a peer that vanished) or inject datagrams from the address
// the server knows as the client's.
type relay struct {
	front  *net.UDPConn // the client dials this
	back   *net.UDPConn // connected to the server
	client atomic.Pointer[netip.AddrPort]
	drop   atomic.Bool
	wg     sync.WaitGroup
}

func newRelay(t *testing.T, server net.Addr) *relay {
	t.Helper()
	front, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	back, err := net.DialUDP("udp", nil, server.(*net.UDPAddr))
	if err != nil {
		t.Fatal(err)
	}
	r := &relay{front: front, back: back}
	r.wg.Add(2)
	go func() { // client -> server
		defer r.wg.Done()
		buf := make([]byte, 65536)
		for {
			n, from, err := front.ReadFromUDPAddrPort(buf)
			if err != nil {
				if errors.Is(err, net.ErrClosed) {
					return
				}
				continue
			}
			r.client.Store(&from)
			if !r.drop.Load() {
				_, _ = back.Write(buf[:n])
			}
		}
	}()
	go func() { // server -> client
		defer r.wg.Done()
		buf := make([]byte, 65536)
		for {
			n, err := back.Read(buf)
			if err != nil {
				if errors.Is(err, net.ErrClosed) {
					return
				}
				continue
			}
			if to := r.client.Load(); to != nil && !r.drop.Load() {
				_, _ = front.WriteToUDPAddrPort(buf[:n], *to)
			}
		}
	}()
	t.Cleanup(r.close)
	return r
}

func (r *relay) addr() string { return r.front.LocalAddr().String() }

func (r *relay) close() {
	_ = r.front.Close()
	_ = r.back.Close()
	r.wg.Wait()
}
