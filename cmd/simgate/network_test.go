package main

import (
	"bytes"
	"context"
	"encoding/json"
	"github.com/simgate/simgate/capture/capturetest"
	"io"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"
)

// lockedBuffer is a bytes.Buffer safe for a writer and a reader.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// `simgate up` on a fresh data dir provisions test SIMs and serves the core;
// `simgate ran` with no SIM options attaches them; the key endpoint answers.
func TestUpThenRAN(t *testing.T) {
	dir := t.TempDir()
	ctx, cancel := context.WithCancel(context.Background())
	var upErr lockedBuffer
	done := make(chan int)
	go func() {
		done <- run(ctx, []string{"up", "--data-dir", dir, "--amf.n2.local_addr", "127.0.0.1:0", "--upf.n3_addr", ownN3(),
			"--upf.n4_addr", "127.0.0.1:0", "--http.addr", "127.0.0.1:0", "--up.test_sims", "20"}, &bytes.Buffer{}, &upErr)
	}()
	defer func() {
		cancel()
		select {
		case code := <-done:
			if code != 0 {
				t.Errorf("up exited %d: %s", code, upErr.String())
			}
		case <-time.After(20 * time.Second):
			t.Error("up did not stop")
		}
	}()
	n2 := regexp.MustCompile(`N2 (127\.0\.0\.1:\d+)`)
	keys := regexp.MustCompile(`jwks=(http://127\.0\.0\.1:\d+/\S+)`)
	var amfAddr, jwks string
	for deadline := time.Now().Add(15 * time.Second); time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
		out := upErr.String()
		if m := n2.FindStringSubmatch(out); m != nil {
			amfAddr = m[1]
			if k := keys.FindStringSubmatch(out); k != nil {
				jwks = k[1]
			}
			break
		}
	}
	if amfAddr == "" {
		t.Fatalf("up did not come up:\n%s", upErr.String())
	}
	out, errs, code := runCmd(t, "ran", "--ues", "5", "--amf", amfAddr, "--rate", "0")
	if code != 0 {
		t.Fatalf("ran: %s", errs)
	}
	var rep struct {
		UEs, Registered, Sessions int
		Failures                  map[string]int
	}
	if err := json.Unmarshal([]byte(out), &rep); err != nil {
		t.Fatalf("report %q: %v", out, err)
	}
	if rep.UEs != 5 || rep.Registered != 5 || rep.Sessions != 5 || len(rep.Failures) != 0 {
		t.Fatalf("report %+v\nup log:\n%s", rep, upErr.String())
	}
	// A UE beyond the provisioned test SIMs is refused with cause #7.
	out, _, _ = runCmd(t, "ran", "--ues", "1", "--amf", amfAddr, "--imsi-from", "001010000000021")
	if !strings.Contains(out, "5gmm-cause-7") {
		t.Fatalf("unknown SIM not refused with #7: %s", out)
	}
	if jwks == "" {
		t.Fatalf("no key endpoint in:\n%s", upErr.String())
	}
	resp, err := http.Get(jwks)
	if err != nil {
		t.Fatal(err)
	}
	var set struct{ Keys []map[string]any }
	err = json.NewDecoder(resp.Body).Decode(&set)
	resp.Body.Close()
	if err != nil || len(set.Keys) != 1 {
		t.Fatalf("JWKS: %v %+v", err, set)
	}
	// Prometheus metrics on the same host port count what happened.
	resp, err = http.Get(strings.Replace(jwks, "/.well-known/jwks.json", "/metrics", 1))
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	for _, want := range []string{
		`simgate_amf_procedures_total{outcome="success",procedure="registration"} 5`,
		`simgate_amf_rejects_total{cause="7",message="registration_reject"} 1`,
		"simgate_upf_sessions ",
		"simgate_pfcp_",
	} {
		if !strings.Contains(string(body), want) {
			t.Errorf("/metrics lacks %s", want)
		}
	}
}

func TestUpConfigErrors(t *testing.T) {
	mustFail(t, t.TempDir(), "up.first_imsi", "up", "--up.first_imsi", "12ab")
	mustFail(t, t.TempDir(), "up.test_sims", "up", "--up.test_sims", "-1")
}

// --pcap on up and ran writes captures tshark decodes as NGAP, NAS-5GS and
// PFCP with nothing malformed.
func TestPcapCapture(t *testing.T) {
	dir := t.TempDir()
	upPcap, ranPcap := dir+"/up.pcapng", dir+"/ran.pcapng"
	ctx, cancel := context.WithCancel(context.Background())
	var upErr lockedBuffer
	done := make(chan int)
	go func() {
		done <- run(ctx, []string{"up", "--data-dir", dir, "--amf.n2.local_addr", "127.0.0.1:0", "--upf.n3_addr", ownN3(),
			"--upf.n4_addr", "127.0.0.1:0", "--http.addr", "", "--up.test_sims", "3", "--pcap", upPcap}, &bytes.Buffer{}, &upErr)
	}()
	addrs := regexp.MustCompile(`N2 127\.0\.0\.1:(\d+) .*N4 127\.0\.0\.1:(\d+)`)
	var port, n4 string
	for deadline := time.Now().Add(15 * time.Second); time.Now().Before(deadline) && port == ""; time.Sleep(50 * time.Millisecond) {
		if m := addrs.FindStringSubmatch(upErr.String()); m != nil {
			port, n4 = m[1], m[2]
		}
	}
	if port == "" {
		cancel()
		t.Fatalf("up did not come up:\n%s", upErr.String())
	}
	out, errs, code := runCmd(t, "ran", "--ues", "3", "--amf", "127.0.0.1:"+port, "--pcap", ranPcap)
	cancel()
	if c := <-done; c != 0 || code != 0 {
		t.Fatalf("up %d / ran %d: %s %s", c, code, upErr.String(), errs)
	}
	if !strings.Contains(out, `"registered": 3`) {
		t.Fatalf("ran: %s", out)
	}
	for _, f := range []string{upPcap, ranPcap} {
		res := capturetest.Check(t, f, capturetest.Options{Args: []string{"-d", "udp.port==" + port + ",sctp", "-d", "udp.port==" + n4 + ",pfcp", "-o", "nas-5gs.null_decipher:TRUE"}})
		for _, proto := range []string{"sctp", "ngap", "nas-5gs"} {
			if !res.Has(proto) {
				t.Errorf("%s: no %s", f, proto)
			}
		}
		if f == upPcap && !res.Has("pfcp") {
			t.Errorf("%s: no pfcp", f)
		}
	}
}

func TestHealthcheck(t *testing.T) {
	ok := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {}))
	defer ok.Close()
	bad := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { w.WriteHeader(503) }))
	defer bad.Close()
	if _, errs, code := runCmd(t, "healthcheck", ok.URL); code != 0 {
		t.Fatalf("healthy server: %s", errs)
	}
	mustFail(t, t.TempDir(), "503", "healthcheck", bad.URL)
	mustFail(t, t.TempDir(), "healthcheck", "healthcheck", "http://127.0.0.1:1/")
}
