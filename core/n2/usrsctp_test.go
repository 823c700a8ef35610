package n2

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/pion/sctp"
)

const usrsctpDir = "/usr/lib/usrsctp" // Debian libusrsctp-examples

// TestUsrsctpInterop runs both ends against usrsctp, an SCTP-over-UDP stack
// we did not write: our dialer against its echo_server, and its client
// against our listener. Its programs bind every address, so the test runs
// itself again inside a private network namespace (unshare -rn) that has
// nothing but its own loopback. It skips where usrsctp or namespaces are
// missing.
func TestUsrsctpInterop(t *testing.T) {
	if os.Getenv("N2_IN_NETNS") == "1" {
		usrsctpInNetns(t)
		return
	}
	skip := func(format string, args ...any) {
		t.Helper()
		if os.Getenv("CI") == "true" {
			t.Fatalf("CI must run this test: "+format, args...)
		}
		t.Skipf(format, args...)
	}
	if _, err := os.Stat(usrsctpDir + "/echo_server"); err != nil {
		skip("usrsctp examples not installed (apt-get install libusrsctp-examples)")
	}
	unshare, err := exec.LookPath("unshare")
	if err != nil {
		skip("unshare not available")
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, unshare, "-rn", os.Args[0], "-test.run=^TestUsrsctpInterop$", "-test.v", "-test.count=1")
	cmd.Env = append(os.Environ(), "N2_IN_NETNS=1")
	out, err := cmd.CombinedOutput()
	if err != nil && strings.Contains(string(out), "unshare failed") {
		skip("no network namespace here: %s", strings.TrimSpace(string(out)))
	}
	if err != nil || !strings.Contains(string(out), "--- PASS: TestUsrsctpInterop") {
		t.Fatalf("in the namespace: %v\n%s", err, out)
	}
	t.Logf("in the namespace:\n%s", out)
}

func usrsctpInNetns(t *testing.T) {
	if out, err := exec.Command("ip", "link", "set", "lo", "up").CombinedOutput(); err != nil {
		t.Fatalf("ip link set lo up: %v %s", err, out)
	}
	noLeaks(t)
	t.Run("dial usrsctp echo_server", func(t *testing.T) {
		// echo_server: UDP encapsulation port 9899, replies to UDP port
		// 9900, SCTP port 7; it echoes each message on its stream.
		srv := exec.Command(usrsctpDir+"/echo_server", "9899", "9900")
		if err := srv.Start(); err != nil {
			t.Fatal(err)
		}
		defer func() { _ = srv.Process.Kill(); _ = srv.Wait() }()
		cfg := testConfig(t)
		cfg.SCTPPort, cfg.UDPPort, cfg.LocalAddr = 7, 9899, "127.0.0.1:9900"
		cfg.HeartbeatInterval, cfg.PeerTimeout = 100*time.Millisecond, 10*time.Second
		// Dial once the server's UDP socket is bound; until its SCTP
		// socket listens it answers ABORT, after which a new try is clean
		// (a timed-out try would leave an INIT that confuses it).
		waitUDPBound(t, 9899)
		var c Conn
		var err error
		for range 50 {
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			c, err = Dial(ctx, cfg, "127.0.0.1")
			cancel()
			if !errors.Is(err, sctp.ErrAssociationClosedBeforeConn) {
				break
			}
			time.Sleep(20 * time.Millisecond)
		}
		if err != nil {
			t.Fatalf("Dial: %v", err)
		}
		defer c.Close()
		if c.OutStreams() < 3 {
			t.Fatalf("out streams %d", c.OutStreams())
		}
		echo := func(msg string, stream uint16) {
			t.Helper()
			if err := c.WriteMsg([]byte(msg), stream); err != nil {
				t.Fatal(err)
			}
			r := read(t, c, 3*time.Second)
			if r.err != nil || string(r.data) != msg || r.stream != stream || r.ppid != PPIDNGAP {
				t.Fatalf("echo of %q on %d: %q on %d ppid %d, %v", msg, stream, r.data, r.stream, r.ppid, r.err)
			}
		}
		for s := range uint16(3) {
			echo("hello usrsctp", s)
		}
		// Idle: usrsctp must answer our (repaired) HEARTBEATs.
		idle := time.Now()
		time.Sleep(time.Second)
		if heard := c.(*udpConn).link.lastHeard(); heard.Before(idle.Add(cfg.HeartbeatInterval)) {
			t.Fatalf("no HEARTBEAT ACK while idle: last packet %v after going idle", heard.Sub(idle))
		}
		echo("after idle", 1)
	})
	t.Run("usrsctp client dials us", func(t *testing.T) {
		cfg := testConfig(t)
		cfg.SCTPPort, cfg.UDPPort, cfg.LocalAddr = 7, 9899, "127.0.0.1"
		ln := listen(t, cfg)
		// client <addr> <sctp port> <local sctp port> <local udp> <remote udp>;
		// it sends stdin lines and prints what it receives. Its INIT
		// lists its addresses, which pion alone would refuse.
		cli := exec.Command(usrsctpDir+"/client", "127.0.0.1", "7", "0", "9900", "9899")
		stdin, err := cli.StdinPipe()
		if err != nil {
			t.Fatal(err)
		}
		var out syncBuffer
		cli.Stdout, cli.Stderr = &out, &out
		if err := cli.Start(); err != nil {
			t.Fatal(err)
		}
		defer func() { _ = cli.Process.Kill(); _ = cli.Wait() }()
		if _, err := io.WriteString(stdin, "hello from usrsctp\n"); err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		c, err := ln.Accept(ctx)
		if err != nil {
			t.Fatalf("Accept: %v\nclient: %s", err, out.String())
		}
		defer c.Close()
		if r := read(t, c, 3*time.Second); r.err != nil || string(r.data) != "hello from usrsctp\n" {
			t.Fatalf("read %q, %v", r.data, r.err)
		}
		if err := c.WriteMsg([]byte("reply from simgate\n"), 0); err != nil {
			t.Fatal(err)
		}
		deadline := time.Now().Add(3 * time.Second)
		for !strings.Contains(out.String(), "reply from simgate") && time.Now().Before(deadline) {
			time.Sleep(20 * time.Millisecond)
		}
		if !strings.Contains(out.String(), "reply from simgate") {
			t.Fatalf("client did not print our reply:\n%s", out.String())
		}
		_ = stdin.Close() // the client shuts the association down
		if r := read(t, c, 5*time.Second); !errors.Is(r.err, io.EOF) {
			t.Fatalf("after the client's shutdown: %v", r.err)
		}
	})
}

type syncBuffer struct {
	mu sync.Mutex
	b  strings.Builder
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// waitUDPBound waits until a UDP socket in this namespace is bound to port.
func waitUDPBound(t *testing.T, port int) {
	t.Helper()
	want := fmt.Sprintf(":%04X ", port)
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		for _, f := range []string{"/proc/net/udp", "/proc/net/udp6"} {
			if b, err := os.ReadFile(f); err == nil {
				for _, line := range strings.Split(string(b), "\n")[1:] {
					if fields := strings.Fields(line); len(fields) > 1 && strings.HasSuffix(fields[1]+" ", want) {
						return
					}
				}
			}
		}
		time.Sleep(10 * time.Millisecond)
	}
	t.Fatalf("nothing bound to UDP port %d", port)
}
