package main

import (
	"bytes"
	"net/netip"
	"strings"
	"testing"

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
