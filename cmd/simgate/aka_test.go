package main

import (
	"encoding/hex"
	"encoding/json"
	"strings"
	"testing"

	"github.com/simgate/simgate/internal/vectors"
	"github.com/simgate/simgate/sim/aka"
	"github.com/simgate/simgate/sim/suci"
)

// The CLI reproduces every TS 35.208 set, with OP and with OPc.
func TestAKAMilenageVectors(t *testing.T) {
	type raw struct {
		Name   string `json:"name"`
		K      string `json:"k"`
		RAND   string `json:"rand"`
		SQN    string `json:"sqn"`
		AMF    string `json:"amf"`
		OP     string `json:"op"`
		OPc    string `json:"opc"`
		F1     string `json:"f1"`
		F1star string `json:"f1star"`
		F2     string `json:"f2"`
		F3     string `json:"f3"`
		F4     string `json:"f4"`
		F5     string `json:"f5"`
		F5star string `json:"f5star"`
	}
	for _, c := range vectors.Load[raw](t, "milenage.json") {
		for _, keyArgs := range [][]string{{"--op", c.OP}, {"--opc", c.OPc}} {
			args := append([]string{"aka", "milenage", "--k", c.K, "--rand", c.RAND, "--sqn", c.SQN, "--amf", c.AMF}, keyArgs...)
			out, errs, code := runCmd(t, args...)
			if code != 0 {
				t.Fatalf("%s: %s", c.Name, errs)
			}
			var got map[string]string
			if err := json.Unmarshal([]byte(out), &got); err != nil {
				t.Fatal(err)
			}
			want := map[string]string{"opc": c.OPc, "mac_a": c.F1, "mac_s": c.F1star, "res": c.F2, "ck": c.F3, "ik": c.F4, "ak": c.F5, "ak_s": c.F5star}
			for k, v := range want {
				if got[k] != v {
					t.Errorf("%s %s: %s = %s, want %s", c.Name, keyArgs[0], k, got[k], v)
				}
			}
			if len(got) != len(want) {
				t.Errorf("%s: keys %v", c.Name, got)
			}
		}
	}
}

func TestAKABadInput(t *testing.T) {
	base := []string{"--rand", strings.Repeat("0", 32), "--sqn", strings.Repeat("0", 12), "--amf", "8000"}
	tests := []struct {
		args []string
		want string
	}{
		{append([]string{"aka", "milenage", "--k", "12", "--opc", tsOPc}, base...), "--k: want 16 bytes"},
		{append([]string{"aka", "milenage", "--k", "zz" + tsK[2:], "--opc", tsOPc}, base...), "--k: not hex"},
		{append([]string{"aka", "milenage", "--k", tsK}, base...), "exactly one of --op and --opc"},
		{append([]string{"aka", "milenage", "--k", tsK, "--op", tsOP, "--opc", tsOPc}, base...), "exactly one of --op and --opc"},
		{[]string{"aka", "milenage", "--k", tsK, "--opc", tsOPc, "--rand", "00", "--sqn", "000000000000", "--amf", "8000"}, "--rand: want 16 bytes"},
		{[]string{"aka", "milenage", "--k", tsK, "--opc", tsOPc, "--rand", strings.Repeat("0", 32), "--sqn", "00", "--amf", "8000"}, "--sqn: want 6 bytes"},
		{[]string{"aka", "vector", "--imsi", "00101abc"}, "--imsi"},
		{[]string{"aka", "vector", "--imsi", "001010000000009"}, "001010000000009"},
		{[]string{"aka", "vector", "--imsi", "001010000000009", "--snn", "mnc001"}, "--snn"},
	}
	for _, tt := range tests {
		mustFail(t, t.TempDir(), tt.want, tt.args...)
	}
}

// aka vector advances the stored SQN and its vectors pass a USIM built from
// the same keys; with --snn the 5G keys are added.
func TestAKAVector(t *testing.T) {
	dir := t.TempDir()
	mustRun(t, dir, "sim", "add", "--imsi", "001010000000001", "--k", tsK, "--opc", tsOPc)
	var k, opc [16]byte
	copy(k[:], mustHex(t, tsK))
	copy(opc[:], mustHex(t, tsOPc))
	usim, err := aka.NewUSIM(k, opc, aka.USIMConfig{})
	if err != nil {
		t.Fatal(err)
	}
	var last string
	for i, args := range [][]string{
		{"aka", "vector", "--imsi", "001010000000001"},
		{"aka", "vector", "--imsi", "001010000000001", "--rand", tsRAND, "--snn", "5G:mnc001.mcc001.3gppnetwork.org"},
	} {
		var v map[string]string
		if err := json.Unmarshal([]byte(mustRun(t, dir, args...)), &v); err != nil {
			t.Fatal(err)
		}
		if v["sqn"] == last {
			t.Fatalf("SQN %s reused", last)
		}
		last = v["sqn"]
		var rnd, autn [16]byte
		copy(rnd[:], mustHex(t, v["rand"]))
		copy(autn[:], mustHex(t, v["autn"]))
		res, err := usim.Authenticate(rnd, autn, i == 1)
		if err != nil {
			t.Fatalf("vector %d refused by the USIM: %v", i, err)
		}
		if h(res.RES[:]) != v["xres"] || h(res.CK[:]) != v["ck"] || h(res.IK[:]) != v["ik"] {
			t.Fatalf("vector %d does not match the USIM's answer", i)
		}
		if _, has := v["xres_star"]; has != (i == 1) || (i == 1 && (len(v["xres_star"]) != 32 || len(v["kausf"]) != 64)) {
			t.Fatalf("vector %d: 5G keys %v", i, v)
		}
		if i == 1 && v["rand"] != tsRAND {
			t.Fatalf("--rand ignored")
		}
	}
}

const tsRAND = "23553cbe9637a89d218ae64dae47bf35"

func TestSUCICLIRoundTrip(t *testing.T) {
	for _, scheme := range []string{"null", "A", "B"} {
		t.Run(scheme, func(t *testing.T) {
			args := []string{"suci", "conceal", "--supi", "imsi-001010123456789", "--scheme", scheme}
			var priv string
			if scheme != "null" {
				var kp map[string]string
				out, errs, code := runCmd(t, "suci", "keygen", "--scheme", scheme)
				if code != 0 {
					t.Fatal(errs)
				}
				if err := json.Unmarshal([]byte(out), &kp); err != nil {
					t.Fatal(err)
				}
				priv = kp["private_key"]
				args = append(args, "--hn-pub", kp["public_key"], "--key-id", "7")
			}
			out, errs, code := runCmd(t, args...)
			if code != 0 {
				t.Fatal(errs)
			}
			s := strings.TrimSpace(out)
			if _, err := suci.Parse(s); err != nil || !strings.HasPrefix(s, "suci-0-001-01-0-") {
				t.Fatalf("conceal printed %q (%v)", s, err)
			}
			dargs := []string{"suci", "deconceal", "--suci", s}
			if priv != "" {
				dargs = append(dargs, "--hn-priv", priv)
			}
			out, errs, code = runCmd(t, dargs...)
			if code != 0 {
				t.Fatal(errs)
			}
			var got map[string]string
			if err := json.Unmarshal([]byte(out), &got); err != nil || got["supi"] != "imsi-001010123456789" {
				t.Fatalf("deconceal printed %q", out)
			}
			if priv != "" {
				// Another home network key cannot open it.
				out, _, _ := runCmd(t, "suci", "keygen", "--scheme", scheme)
				var other map[string]string
				_ = json.Unmarshal([]byte(out), &other)
				mustFail(t, t.TempDir(), "deconceal", "suci", "deconceal", "--suci", s, "--hn-priv", other["private_key"])
			}
		})
	}
}

func TestSUCICLIBadInput(t *testing.T) {
	tests := []struct {
		args []string
		want string
	}{
		{[]string{"suci", "conceal", "--supi", "imsi-00101abc", "--scheme", "null"}, "--supi"},
		{[]string{"suci", "conceal", "--supi", "imsi-001010123456789", "--scheme", "C"}, "--scheme"},
		{[]string{"suci", "conceal", "--supi", "imsi-001010123456789", "--scheme", "A"}, "--hn-pub"},
		{[]string{"suci", "conceal", "--supi", "imsi-001010123456789", "--scheme", "B", "--hn-pub", "0011", "--key-id", "1"}, "--hn-pub"},
		{[]string{"suci", "deconceal", "--suci", "suci-0-001-01-0-1-1-" + strings.Repeat("ab", 45)}, "--hn-priv"},
		{[]string{"suci", "deconceal", "--suci", "not-a-suci"}, "--suci"},
		{[]string{"suci", "keygen", "--scheme", "null"}, "--scheme"},
	}
	for _, tt := range tests {
		mustFail(t, t.TempDir(), tt.want, tt.args...)
	}
}

func mustHex(t *testing.T, s string) []byte {
	t.Helper()
	b, err := hex.DecodeString(s)
	if err != nil {
		t.Fatal(err)
	}
	return b
}
