package n2

import (
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

func TestConfigValidate(t *testing.T) {
	tests := []struct {
		name string
		cfg  Config
		want string // substring of the error; "" = valid
	}{
		{"zero", Config{}, ""},
		{"udp with address", Config{Transport: TransportUDP, LocalAddr: "127.0.0.1:9899"}, ""},
		{"host only", Config{LocalAddr: "::1"}, ""},
		{"bracketed v6", Config{LocalAddr: "[::1]:38412"}, ""},
		{"unknown transport", Config{Transport: "tcp"}, "transport"},
		{"bad port", Config{LocalAddr: "127.0.0.1:99999"}, "local_addr"},
		{"bad address", Config{LocalAddr: "1.2.3.4:5:6"}, "local_addr"},
		{"negative size", Config{MaxMessageSize: -1}, "max_message_size"},
		{"tiny mtu", Config{MTU: 100}, "mtu"},
		{"negative timeout", Config{PeerTimeout: -time.Second}, "peer_timeout"},
		{"negative limit", Config{MaxAssociations: -1}, "max_associations"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.cfg.Validate()
			switch {
			case tt.want == "" && err != nil:
				t.Fatalf("Validate: %v", err)
			case tt.want != "" && (err == nil || !strings.Contains(err.Error(), tt.want)):
				t.Fatalf("Validate = %v, want an error naming %q", err, tt.want)
			}
		})
	}
	if _, err := Listen(context.Background(), Config{Transport: "quic"}); err == nil {
		t.Fatal("Listen accepted transport quic")
	}
	if _, err := Dial(context.Background(), Config{MTU: 1}, "127.0.0.1"); err == nil {
		t.Fatal("Dial accepted mtu 1")
	}
}

// TestTransportChoice: auto says in one log line what it chose, and forcing
// kernel SCTP where the kernel has none fails clearly.
func TestTransportChoice(t *testing.T) {
	noLeaks(t)
	kerr := KernelSCTP()
	if kerr != nil {
		if !errors.Is(kerr, ErrNoKernelSCTP) {
			t.Fatalf("KernelSCTP() = %v, want ErrNoKernelSCTP", kerr)
		}
		t.Logf("kernel SCTP: %v", kerr)
	}
	var logs logBuffer
	cfg := Config{LocalAddr: "127.0.0.1:0", Logger: slog.New(slog.NewTextHandler(&logs, nil))}
	ln := listen(t, cfg)
	want := TransportUDP
	if kerr == nil {
		want = TransportSCTP
	}
	if ln.Transport() != want {
		t.Fatalf("auto chose %s, want %s", ln.Transport(), want)
	}
	var chose []string
	for _, l := range strings.Split(logs.String(), "\n") {
		if strings.Contains(l, "transport auto chose") {
			chose = append(chose, l)
		}
	}
	if len(chose) != 1 || !strings.Contains(chose[0], "chose "+string(want)) {
		t.Fatalf("want one line saying auto chose %s, got %q", want, chose)
	}

	if kerr == nil {
		t.Log("kernel SCTP present: the forced-sctp failure cannot be shown here")
		return
	}
	if !errors.Is(kerr, syscall.EPROTONOSUPPORT) && !errors.Is(kerr, syscall.ESOCKTNOSUPPORT) &&
		!errors.Is(kerr, syscall.EAFNOSUPPORT) {
		t.Logf("note: kernel SCTP missing for another reason: %v", kerr)
	}
	_, err := Listen(context.Background(), Config{Transport: TransportSCTP, LocalAddr: "127.0.0.1:0"})
	if !errors.Is(err, ErrNoKernelSCTP) || !strings.Contains(err.Error(), "transport udp") {
		t.Fatalf("forced sctp Listen: %v, want ErrNoKernelSCTP with a hint", err)
	}
	_, err = Dial(context.Background(), Config{Transport: TransportSCTP}, "127.0.0.1")
	if !errors.Is(err, ErrNoKernelSCTP) {
		t.Fatalf("forced sctp Dial: %v, want ErrNoKernelSCTP", err)
	}
}

// TestExchange: one listener, three gNBs, four streams each, messages both
// ways at once; every stream must arrive complete and in order, with PPID 60.
func TestExchange(t *testing.T) {
	noLeaks(t)
	const gnbs, streams, perStream = 3, 4, 60
	cfg := testConfig(t)
	ln := listen(t, cfg)
	if ln.Transport() != TransportUDP {
		t.Fatalf("transport %s", ln.Transport())
	}
	var wg sync.WaitGroup
	errs := make(chan error, 4*gnbs)
	for g := range gnbs {
		client, server := dial(t, ln, cfg)
		if client.OutStreams() < streams || server.OutStreams() < streams {
			t.Fatalf("out streams %d / %d", client.OutStreams(), server.OutStreams())
		}
		if got, want := client.RemoteAddr().String(), ln.Addr().String(); got != want {
			t.Fatalf("client remote %s, listener %s", got, want)
		}
		if got, want := server.RemoteAddr().String(), client.LocalAddr().String(); got != want {
			t.Fatalf("server remote %s, client local %s", got, want)
		}
		for _, side := range []struct {
			name string
			w, r Conn
		}{{fmt.Sprintf("gnb%d->amf", g), client, server}, {fmt.Sprintf("amf->gnb%d", g), server, client}} {
			wg.Go(func() { errs <- send(side.w, side.name, streams, perStream) })
			wg.Go(func() { errs <- receive(side.r, side.name, streams, perStream) })
		}
	}
	done := make(chan struct{})
	go func() { wg.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(20 * time.Second):
		_ = ln.Close()
		<-done
		t.Fatal("exchange did not finish")
	}
	close(errs)
	for err := range errs {
		if err != nil {
			t.Error(err)
		}
	}
}

func msgText(name string, stream, seq int) string {
	return fmt.Sprintf("%s stream %d seq %d %s", name, stream, seq, strings.Repeat("x", seq*7))
}

// send writes perStream messages on each stream, one goroutine per stream.
func send(c Conn, name string, streams, perStream int) error {
	var wg sync.WaitGroup
	errs := make(chan error, streams)
	for s := range streams {
		wg.Go(func() {
			for i := range perStream {
				if err := c.WriteMsg([]byte(msgText(name, s, i)), uint16(s)); err != nil {
					errs <- fmt.Errorf("%s: write stream %d: %w", name, s, err)
					return
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	return <-errs
}

// receive reads streams*perStream messages and checks order per stream.
func receive(c Conn, name string, streams, perStream int) error {
	next := make([]int, streams)
	buf := make([]byte, 4096)
	for range streams * perStream {
		n, s, ppid, err := c.ReadMsg(buf)
		if err != nil {
			return fmt.Errorf("%s: read: %w", name, err)
		}
		if ppid != PPIDNGAP {
			return fmt.Errorf("%s: ppid %d", name, ppid)
		}
		if int(s) >= streams {
			return fmt.Errorf("%s: unexpected stream %d", name, s)
		}
		if want := msgText(name, int(s), next[s]); string(buf[:n]) != want {
			return fmt.Errorf("%s: stream %d: got %.40q, want %.40q", name, s, buf[:n], want)
		}
		next[s]++
	}
	return nil
}

func TestLargeMessages(t *testing.T) {
	noLeaks(t)
	for _, size := range []int{DefaultMaxMessageSize, 256 << 10} {
		t.Run(fmt.Sprint(size), func(t *testing.T) {
			cfg := testConfig(t)
			if size > DefaultMaxMessageSize {
				cfg.MaxMessageSize = size
			}
			ln := listen(t, cfg)
			client, server := dial(t, ln, cfg)
			msg := make([]byte, size)
			_, _ = rand.Read(msg)
			for _, dir := range []struct {
				w, r Conn
			}{{client, server}, {server, client}} {
				if err := dir.w.WriteMsg(msg, 3); err != nil {
					t.Fatalf("WriteMsg %d bytes: %v", size, err)
				}
				// Too small a buffer: the length, and the message is kept.
				small := make([]byte, 100)
				n, s, _, err := dir.r.ReadMsg(small)
				if !errors.Is(err, io.ErrShortBuffer) || n != size || s != 3 {
					t.Fatalf("short read = %d, %d, %v", n, s, err)
				}
				r := read(t, dir.r, 5*time.Second)
				if r.err != nil || r.stream != 3 || !bytes.Equal(r.data, msg) {
					t.Fatalf("read %d bytes, stream %d, err %v", len(r.data), r.stream, r.err)
				}
			}
			if err := client.WriteMsg(make([]byte, size+1), 0); !errors.Is(err, ErrMessageTooLarge) {
				t.Fatalf("oversized write: %v", err)
			}
		})
	}
}

func TestWriteChecks(t *testing.T) {
	noLeaks(t)
	cfg := testConfig(t)
	ln := listen(t, cfg)
	client, _ := dial(t, ln, cfg)
	if got := client.OutStreams(); got != 65535 {
		t.Fatalf("OutStreams = %d, want 65535 (pion's MIS)", got)
	}
	if err := client.WriteMsg(nil, 0); !errors.Is(err, ErrEmptyMessage) {
		t.Fatalf("empty write: %v", err)
	}
	if err := client.WriteMsg([]byte{1}, 65535); !errors.Is(err, ErrBadStream) {
		t.Fatalf("write on stream 65535: %v", err)
	}
	if err := client.WriteMsg([]byte{1}, 65534); err != nil {
		t.Fatalf("write on stream 65534: %v", err)
	}
}

// TestPeerClose: each side sees the other's Close as io.EOF, and a closed
// Conn fails cleanly.
func TestPeerClose(t *testing.T) {
	noLeaks(t)
	cfg := testConfig(t)
	ln := listen(t, cfg)
	for _, closer := range []string{"gnb", "amf"} {
		t.Run(closer+" closes", func(t *testing.T) {
			client, server := dial(t, ln, cfg)
			a, b := client, server
			if closer == "amf" {
				a, b = server, client
			}
			if err := a.WriteMsg([]byte("last words"), 1); err != nil {
				t.Fatal(err)
			}
			if err := a.Close(); err != nil {
				t.Fatalf("Close: %v", err)
			}
			// Data sent before the shutdown is delivered first (RFC 9260 9.2).
			if r := read(t, b, 5*time.Second); r.err != nil || string(r.data) != "last words" {
				t.Fatalf("read before EOF: %q, %v", r.data, r.err)
			}
			if r := read(t, b, 5*time.Second); r.err != io.EOF {
				t.Fatalf("read after peer close: %v, want io.EOF", r.err)
			}
			if err := b.WriteMsg([]byte("x"), 0); !errors.Is(err, io.EOF) {
				t.Fatalf("write after peer close: %v", err)
			}
			if _, _, _, err := a.ReadMsg(make([]byte, 10)); !errors.Is(err, net.ErrClosed) {
				t.Fatalf("read after own close: %v", err)
			}
			if err := a.WriteMsg([]byte("x"), 0); !errors.Is(err, net.ErrClosed) {
				t.Fatalf("write after own close: %v", err)
			}
			if err := a.Close(); err != nil {
				t.Fatalf("second Close: %v", err)
			}
		})
	}
}

// TestReconnect: a gNB that closes can come back, from the same address.
func TestReconnect(t *testing.T) {
	noLeaks(t)
	cfg := testConfig(t)
	ln := listen(t, cfg)
	client, server := dial(t, ln, cfg)
	local := client.LocalAddr().String()
	for i := range 3 {
		if err := client.WriteMsg([]byte("hello"), 0); err != nil {
			t.Fatal(err)
		}
		if r := read(t, server, 5*time.Second); r.err != nil {
			t.Fatal(r.err)
		}
		_ = client.Close()
		if r := read(t, server, 5*time.Second); r.err != io.EOF {
			t.Fatalf("round %d: server read %v, want io.EOF", i, r.err)
		}
		again := cfg
		again.LocalAddr = local // same UDP address and port
		client, server = dial(t, ln, again)
		if client.LocalAddr().String() != local {
			t.Fatalf("redial from %s, want %s", client.LocalAddr(), local)
		}
	}
	if n := ln.(*udpListener).ep.count(); n != 1 {
		t.Fatalf("listener holds %d associations, want 1", n)
	}
}

// TestAbort: a peer that breaks our message limit is aborted; it sees
// ErrAborted, we see ErrMessageTooLarge.
func TestAbort(t *testing.T) {
	noLeaks(t)
	scfg := testConfig(t)
	scfg.MaxMessageSize = 1000
	ln := listen(t, scfg)
	client, server := dial(t, ln, testConfig(t))
	if err := client.WriteMsg(make([]byte, 1500), 1); err != nil {
		t.Fatal(err)
	}
	if r := read(t, server, 5*time.Second); !errors.Is(r.err, ErrMessageTooLarge) {
		t.Fatalf("server read: %v, want ErrMessageTooLarge", r.err)
	}
	if r := read(t, client, 5*time.Second); !errors.Is(r.err, ErrAborted) {
		t.Fatalf("client read: %v, want ErrAborted", r.err)
	}
}

// TestPeerVanishes: when the path goes silent both ends give up after
// PeerTimeout, having tried heartbeats.
func TestPeerVanishes(t *testing.T) {
	noLeaks(t)
	cfg := testConfig(t)
	// Generous against scheduling delays on a loaded machine.
	cfg.HeartbeatInterval = 100 * time.Millisecond
	cfg.PeerTimeout = 1500 * time.Millisecond
	ln := listen(t, cfg)
	rl := newRelay(t, ln.Addr())
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	client, err := Dial(ctx, cfg, rl.addr())
	if err != nil {
		t.Fatal(err)
	}
	defer client.Close()
	server, err := ln.Accept(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer server.Close()
	// Idle but alive: heartbeats keep it up past PeerTimeout.
	time.Sleep(cfg.PeerTimeout + 500*time.Millisecond)
	if err := client.WriteMsg([]byte("still here"), 0); err != nil {
		t.Fatalf("write after idle period: %v", err)
	}
	if r := read(t, server, 2*time.Second); r.err != nil {
		t.Fatalf("read after idle period: %v", r.err)
	}
	rl.drop.Store(true)
	start := time.Now()
	for _, c := range []Conn{client, server} {
		if r := read(t, c, 5*time.Second); !errors.Is(r.err, ErrPeerTimeout) {
			t.Fatalf("read: %v, want ErrPeerTimeout", r.err)
		}
	}
	if d := time.Since(start); d < cfg.PeerTimeout/2 {
		t.Fatalf("gave up after %v, before the peer timeout", d)
	}
	if err := client.WriteMsg([]byte("x"), 0); !errors.Is(err, ErrPeerTimeout) {
		t.Fatalf("write after timeout: %v", err)
	}
}

// TestBadDatagrams: garbage to the listener opens nothing and harms no
// association, whether it comes from strangers or from a known peer's
// address.
func TestBadDatagrams(t *testing.T) {
	noLeaks(t)
	cfg := testConfig(t)
	cfg.HandshakeTimeout = 300 * time.Millisecond
	ln := listen(t, cfg)
	rl := newRelay(t, ln.Addr())
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	client, err := Dial(ctx, cfg, rl.addr())
	if err != nil {
		t.Fatal(err)
	}
	defer client.Close()
	server, err := ln.Accept(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer server.Close()

	junk := make([]byte, 1000)
	_, _ = rand.Read(junk)
	badCRC := testInit(40000, NGAPPort, 0, 1, 10, 10)
	badCRC[9] ^= 0x55
	dataWrongTag := []byte{0x96, 0x0c, 0x96, 0x0c, 0xde, 0xad, 0xbe, 0xef, 0, 0, 0, 0,
		0, 0x03, 0, 0x14, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 60, 'j', 'u', 'n', 'k'}
	setChecksum(dataWrongTag)
	datagrams := map[string][]byte{
		"empty":                 {},
		"random":                junk,
		"jumbo":                 make([]byte, 9000),
		"INIT bad checksum":     badCRC,
		"INIT to port 5000":     testInit(40000, 5000, 0, 1, 10, 10),
		"INIT with vtag":        testInit(40000, NGAPPort, 99, 1, 10, 10),
		"DATA with a wrong tag": dataWrongTag,
	}
	stranger, err := net.DialUDP("udp", nil, ln.Addr().(*net.UDPAddr))
	if err != nil {
		t.Fatal(err)
	}
	defer stranger.Close()
	for name, d := range datagrams {
		if _, err := stranger.Write(d); err != nil {
			t.Fatalf("%s from stranger: %v", name, err)
		}
		if _, err := rl.back.Write(d); err != nil { // from the gNB's address
			t.Fatalf("%s from peer address: %v", name, err)
		}
	}
	// The association still carries traffic both ways.
	for i := range 5 {
		if err := client.WriteMsg([]byte(fmt.Sprint("up ", i)), 1); err != nil {
			t.Fatal(err)
		}
		if r := read(t, server, 3*time.Second); r.err != nil || string(r.data) != fmt.Sprint("up ", i) {
			t.Fatalf("after garbage: %q, %v", r.data, r.err)
		}
		if err := server.WriteMsg([]byte(fmt.Sprint("down ", i)), 2); err != nil {
			t.Fatal(err)
		}
		if r := read(t, client, 3*time.Second); r.err != nil || string(r.data) != fmt.Sprint("down ", i) {
			t.Fatalf("after garbage: %q, %v", r.data, r.err)
		}
	}
	if n := ln.(*udpListener).ep.count(); n != 1 {
		t.Fatalf("listener holds %d associations after garbage, want 1", n)
	}
	// A lone valid INIT starts a handshake that times out and is released.
	if _, err := stranger.Write(testInit(40000, NGAPPort, 0, 7, 10, 10)); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(2 * time.Second)
	for ln.(*udpListener).ep.count() != 2 && time.Now().Before(deadline) {
		time.Sleep(5 * time.Millisecond)
	}
	for ln.(*udpListener).ep.count() != 1 && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
	}
	if n := ln.(*udpListener).ep.count(); n != 1 {
		t.Fatalf("half-open handshake not released: %d associations", n)
	}
	actx, acancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer acancel()
	if c, err := ln.Accept(actx); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Accept after garbage = %v, %v; want nothing", c, err)
	}
}

// TestListenerClose: closing the listener shuts every association down
// and ends Accept; the gNBs see io.EOF.
func TestListenerClose(t *testing.T) {
	noLeaks(t)
	cfg := testConfig(t)
	ctx, cancel := context.WithCancel(context.Background())
	ln, err := Listen(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	var clients []Conn
	for range 3 {
		c, _ := dial(t, ln, cfg)
		clients = append(clients, c)
	}
	accepting := make(chan error, 1)
	go func() {
		_, err := ln.Accept(context.Background())
		accepting <- err
	}()
	cancel() // the listener's context: same as Close
	if err := <-accepting; !errors.Is(err, net.ErrClosed) {
		t.Fatalf("Accept after close: %v", err)
	}
	for i, c := range clients {
		if r := read(t, c, 5*time.Second); r.err != io.EOF {
			t.Fatalf("client %d: %v, want io.EOF", i, r.err)
		}
	}
	_ = ln.Close()
	dctx, dcancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer dcancel()
	if _, err := Dial(dctx, cfg, ln.Addr().String()); err == nil {
		t.Fatal("Dial to a closed listener succeeded")
	}
}

func TestAssociationLimit(t *testing.T) {
	noLeaks(t)
	cfg := testConfig(t)
	cfg.MaxAssociations = 2
	ln := listen(t, cfg)
	dial(t, ln, cfg)
	dial(t, ln, cfg)
	dcfg := cfg
	dcfg.HandshakeTimeout = 300 * time.Millisecond
	if c, err := Dial(context.Background(), dcfg, ln.Addr().String()); err == nil {
		c.Close()
		t.Fatal("third association accepted past the limit")
	} else if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("third Dial: %v, want a handshake timeout", err)
	}
}

func TestDialFailures(t *testing.T) {
	noLeaks(t)
	// A UDP socket that never answers.
	silent, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	defer silent.Close()
	cfg := testConfig(t)
	cfg.HandshakeTimeout = 300 * time.Millisecond
	start := time.Now()
	_, err = Dial(context.Background(), cfg, silent.LocalAddr().String())
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Dial to a silent peer: %v", err)
	}
	if d := time.Since(start); d > 2*time.Second {
		t.Fatalf("Dial took %v with a 300ms handshake timeout", d)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := Dial(ctx, testConfig(t), silent.LocalAddr().String()); !errors.Is(err, context.Canceled) {
		t.Fatalf("Dial with a cancelled context: %v", err)
	}
	for _, addr := range []string{"", "127.0.0.1:notaport", "a:b:c"} {
		if _, err := Dial(context.Background(), testConfig(t), addr); err == nil {
			t.Fatalf("Dial(%q) succeeded", addr)
		}
	}
}

// TestTapAndPorts: the Tap sees every datagram, and the SCTP header carries
// port 38412 on the server side although pion uses 5000.
func TestTapAndPorts(t *testing.T) {
	noLeaks(t)
	var stap, ctap recorder
	scfg, ccfg := testConfig(t), testConfig(t)
	scfg.Tap, ccfg.Tap = &stap, &ctap
	ln := listen(t, scfg)
	client, server := dial(t, ln, ccfg)
	if err := client.WriteMsg([]byte("ping"), 0); err != nil {
		t.Fatal(err)
	}
	if r := read(t, server, 3*time.Second); r.err != nil {
		t.Fatal(r.err)
	}
	_ = client.Close()
	if r := read(t, server, 3*time.Second); r.err != io.EOF {
		t.Fatal(r.err)
	}
	cport := client.LocalAddr().(*net.UDPAddr).AddrPort()
	sport := ln.Addr().(*net.UDPAddr).AddrPort()
	check := func(name string, ds []datagram, local, remote uint16) {
		if len(ds) < 6 { // INIT, INIT ACK, COOKIE ECHO, COOKIE ACK, DATA, SACK...
			t.Fatalf("%s tap saw %d datagrams", name, len(ds))
		}
		var in, out int
		for _, d := range ds {
			src, dst, err := ports(d.payload)
			if err != nil || !checksumOK(d.payload) {
				t.Fatalf("%s: bad SCTP packet %x", name, d.payload)
			}
			if d.out {
				out++
				if src != local || dst != remote {
					t.Fatalf("%s: sent SCTP ports %d->%d, want %d->%d", name, src, dst, local, remote)
				}
			} else {
				in++
				if src != remote || dst != local {
					t.Fatalf("%s: received SCTP ports %d->%d, want %d->%d", name, src, dst, remote, local)
				}
			}
		}
		if in == 0 || out == 0 {
			t.Fatalf("%s: %d in, %d out", name, in, out)
		}
	}
	check("client", ctap.all(), cport.Port(), NGAPPort)
	check("server", stap.all(), NGAPPort, cport.Port())
	for _, d := range ctap.all() {
		if d.local != cport || d.remote != sport {
			t.Fatalf("client tap addresses %s %s, want %s %s", d.local, d.remote, cport, sport)
		}
	}
}

// TestKernelExchange runs where the kernel has SCTP (not on this project's
// build machines): the same exchange over kernel sockets.
func TestKernelExchange(t *testing.T) {
	if err := KernelSCTP(); err != nil {
		t.Skipf("kernel SCTP unavailable: %v", err)
	}
	noLeaks(t)
	var tap recorder
	cfg := testConfig(t)
	cfg.Transport, cfg.Tap = TransportSCTP, &tap
	ln := listen(t, cfg)
	client, server := dial(t, ln, cfg)
	if client.Transport() != TransportSCTP || client.OutStreams() != DefaultStreams {
		t.Fatalf("transport %s, streams %d", client.Transport(), client.OutStreams())
	}
	var wg sync.WaitGroup
	errs := make(chan error, 4)
	wg.Go(func() { errs <- send(client, "up", 4, 30) })
	wg.Go(func() { errs <- receive(server, "up", 4, 30) })
	wg.Go(func() { errs <- send(server, "down", 4, 30) })
	wg.Go(func() { errs <- receive(client, "down", 4, 30) })
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Error(err)
		}
	}
	tap.mu.Lock()
	seen := tap.messages
	tap.mu.Unlock()
	if want := 2 * 2 * 4 * 30; seen != want { // each message out and in
		t.Errorf("tap saw %d messages, want %d", seen, want)
	}
	_ = client.Close()
	if r := read(t, server, 5*time.Second); r.err != io.EOF {
		t.Fatalf("after peer close: %v", r.err)
	}
}
