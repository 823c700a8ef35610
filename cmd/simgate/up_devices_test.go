package main

import (
	"encoding/hex"

	"github.com/simgate/simgate/core/udr"
	"path/filepath"
	"regexp"

	"bytes"
	"context"
	"github.com/simgate/simgate/capture/capturetest"
	"math/rand/v2"
	"net/netip"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/simgate/simgate/sim/gnb"
	"github.com/simgate/simgate/sim/ran"
)

func TestUpDevicesConfigErrors(t *testing.T) {
	// The gNB's N3 socket would collide with the UPF's.
	mustFail(t, t.TempDir(), "is the UPF's n3_addr", "up", "--ues", "2", "--ran.n3", "127.0.0.1", "--upf.n3_addr", "127.0.0.1")
	mustFail(t, t.TempDir(), "--ues", "up", "--ues", "-1")
	mustFail(t, t.TempDir(), "ran.token_url: \"gopher://x/\"", "up", "--ues", "2", "--ran.token_url", "gopher://x/")
	mustFail(t, t.TempDir(), "ran.dns", "up", "--ues", "2", "--ran.dns", "::1")
}

func TestPrintDevices(t *testing.T) {
	addr := netip.MustParseAddr("10.45.0.2")
	results := []ran.Result{
		{IMSI: "001010000000001", IMEI: "356938030000011", Sessions: []gnb.Session{{UEAddr: addr}}, Token: &ran.TokenResult{IMSI: "001010000000001"}},
		{IMSI: "001010000000002", IMEI: "356938030000029", Sessions: []gnb.Session{{UEAddr: addr.Next()}}, Token: &ran.TokenResult{Failure: "token-http-403"}},
		{IMSI: "001010000000003", IMEI: "356938030000037", Failure: "5gmm-cause-3"},
		{IMSI: "001010000000004", IMEI: "356938030000045", Sessions: []gnb.Session{{UEAddr: addr.Next().Next()}}},
	}
	var b bytes.Buffer
	printDevices(&b, results, ran.Report{UEs: 4, Sessions: 3, Tokens: 1})
	lines := strings.Split(strings.TrimSpace(b.String()), "\n")
	want := [][]string{
		{"IMSI", "IMEI", "ADDRESS", "TOKEN"},
		{"001010000000001", "356938030000011", "10.45.0.2", "verified"},
		{"001010000000002", "356938030000029", "10.45.0.3", "no", "(token-http-403)"},
		{"001010000000003", "356938030000037", "-", "no", "(attach:", "5gmm-cause-3)"},
		{"001010000000004", "356938030000045", "10.45.0.4", "no", "(not", "fetched)"},
	}
	if len(lines) != len(want)+1 {
		t.Fatalf("output:\n%s", b.String())
	}
	for i, w := range want {
		if got := strings.Fields(lines[i]); strings.Join(got, " ") != strings.Join(w, " ") {
			t.Errorf("line %d: %q, want %q", i, got, w)
		}
	}
	if !strings.HasPrefix(lines[len(lines)-1], "4 devices: 3 attached, 1 tokens verified") {
		t.Errorf("summary %q", lines[len(lines)-1])
	}
}

// `simgate up --ues 3`: three devices attach in the up process, fetch their
// tokens through the user plane, and one line each says they verified.
func TestUpDevices(t *testing.T) {
	// Loopback addresses of this test's own: both N3 sockets bind port 2152.
	n3, gnbN3 := "127.0.1."+strconv.Itoa(2+rand.IntN(120)), "127.0.1."+strconv.Itoa(130+rand.IntN(120))
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var out, errs lockedBuffer
	done := make(chan int, 1)
	pcap := filepath.Join(t.TempDir(), "x.pcapng")
	go func() {
		done <- run(ctx, []string{"up", "--data-dir", t.TempDir(), "--ues", "3", "--token", "--up.test_sims", "5",
			"--amf.n2.local_addr", "127.0.0.1:0", "--upf.n4_addr", "127.0.0.1:0", "--upf.n3_addr", n3,
			"--ran.n3", gnbN3, "--http.addr", "127.0.0.1:0", "--pcap", pcap, "--log.level", "debug"}, &out, &errs)
	}()
	deadline := time.Now().Add(30 * time.Second)
	for !strings.Contains(out.String(), "Ctrl-C stops") {
		select {
		case code := <-done:
			t.Fatalf("up exited %d:\n%s", code, errs.String())
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("no device lines; stdout:\n%s\nstderr:\n%s", out.String(), errs.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
	lines := strings.Split(strings.TrimSpace(out.String()), "\n")
	if len(lines) != 5 {
		t.Fatalf("stdout:\n%s", out.String())
	}
	for i, l := range lines[1:4] {
		f := strings.Fields(l)
		imsi := "00101000000000" + strconv.Itoa(i+1)
		if len(f) != 4 || f[0] != imsi || len(f[1]) != 15 || !strings.HasPrefix(f[2], "10.45.") || f[3] != "verified" {
			t.Errorf("device line %q", l)
		}
	}
	if !strings.HasPrefix(lines[4], "3 devices: 3 attached, 3 tokens verified") {
		t.Errorf("summary %q", lines[4])
	}
	cancel()
	select {
	case code := <-done:
		if code != 0 {
			t.Errorf("up exited %d:\n%s", code, errs.String())
		}
	case <-time.After(30 * time.Second):
		t.Fatal("up did not stop")
	}
	// Logs name SIMs but never carry tokens or keys, even at debug level.
	logs := errs.String()
	if !strings.Contains(logs, "imsi=001010000000001") {
		t.Error("logs do not name the IMSI")
	}
	k := udr.DerivedK([]byte("simgate"), "001010000000001")
	opc := udr.DerivedOPc([]byte("simgate"), "001010000000001")
	for what, secret := range map[string]string{"a token": "eyJ", "K": hex.EncodeToString(k[:]), "OPc": hex.EncodeToString(opc[:])} {
		if strings.Contains(logs, secret) {
			t.Errorf("%s in the logs", what)
		}
	}
	// The capture holds every layer, decoded by tshark with nothing
	// malformed: NGAP and NAS-5GS (NEA0, null_decipher), PFCP, GTP-U with
	// the PDU Session Container, and the devices' inner DNS and HTTP.
	m := regexp.MustCompile(`N2 127\.0\.0\.1:(\d+) .*N4 127\.0\.0\.1:(\d+)`).FindStringSubmatch(errs.String())
	if m == nil {
		t.Fatalf("no N2/N4 addresses in:\n%s", errs.String())
	}
	args := []string{"-d", "udp.port==" + m[1] + ",sctp", "-d", "udp.port==" + m[2] + ",pfcp", "-o", "nas-5gs.null_decipher:TRUE"}
	res := capturetest.Check(t, pcap, capturetest.Options{Args: args})
	for _, proto := range []string{"sctp", "ngap", "nas-5gs", "pfcp", "gtp", "dns", "http"} {
		if !res.Has(proto) {
			t.Errorf("capture: no %s", proto)
		}
	}
	fields := capturetest.Fields(t, pcap, args, "gtp.ext_hdr.pdu_ses_con.qos_flow_id")
	qfi := false
	for _, f := range fields {
		if len(f) > 0 && f[0] != "" {
			qfi = true
		}
	}
	if !qfi {
		t.Error("capture: no GTP-U PDU Session Container with a QFI")
	}
}
