package main

import (
	"errors"
	"strings"
	"testing"
	"time"

	"golang.org/x/crypto/bcrypt"
)

func TestParseDevices(t *testing.T) {
	tests := []struct {
		name  string
		in    string
		want  []Device // in any order
		error string
	}{
		{"lines", "# comment\n\n 001010000000001 , 490154203237518 , alice\n001010000000002,356938035643809\r\n",
			[]Device{{"001010000000001", "490154203237518", "alice"}, {"001010000000002", "356938035643809", ""}}, ""},
		{"JSON", `[{"imsi":"001010000000001","imei":"490154203237518","user":"alice"},{"imsi":"001010000000002","imei":"3569380356438091"}]`,
			[]Device{{"001010000000001", "490154203237518", "alice"}, {"001010000000002", "3569380356438091", ""}}, ""},
		{"same SIM in two handsets", "001010000000001,490154203237518\n001010000000001,356938035643809\n",
			[]Device{{"001010000000001", "490154203237518", ""}, {"001010000000001", "356938035643809", ""}}, ""},
		{"empty", "", nil, ""},
		{"JSON empty", "[]", nil, ""},
		{"one field", "001010000000001\n", nil, "line 1: want imsi,imei[,user], have 1 fields"},
		{"four fields", "001010000000001,490154203237518,a,b\n", nil, "have 4 fields"},
		{"IMSI letters", "00101000000000x,490154203237518\n", nil, `line 1: IMSI "00101000000000x"`},
		{"IMSI too long", "0010100000000011,490154203237518\n", nil, "want 6 to 15 digits"},
		{"IMSI too short", "00101,490154203237518\n", nil, "want 6 to 15 digits"},
		{"IMEI 14 digits", "001010000000001,49015420323751\n", nil, `IMEI "49015420323751"`},
		{"IMEI 17 digits", "001010000000001,49015420323751800\n", nil, "want 15 digits"},
		{"bad user", "001010000000001,490154203237518,a b\n", nil, "user name"},
		{"duplicate pair", "001010000000001,490154203237518\n# x\n001010000000001,490154203237518\n", nil, "registered twice"},
		{"duplicate handset as IMEISV", "001010000000001,490154203237518\n001010000000001,4901542032375107\n", nil, "registered twice"},
		{"JSON unknown field", `[{"imsi":"001010000000001","imei":"490154203237518","owner":"x"}]`, nil, "unknown field"},
		{"JSON trailing", `[] []`, nil, "data after the array"},
		{"JSON bad entry", `[{"imsi":"1","imei":"490154203237518"}]`, nil, "entry 1: IMSI"},
		{"JSON not an array of objects", `[1]`, nil, "JSON"},
		{"long line", strings.Repeat("1", maxRegistryLine+1), nil, "longer than"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			ds, err := ParseDevices([]byte(tc.in))
			if tc.error != "" {
				if err == nil || !strings.Contains(err.Error(), tc.error) || !strings.HasPrefix(err.Error(), "devices: ") {
					t.Fatalf("error %v, want one containing %q", err, tc.error)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if ds.Len() != len(tc.want) {
				t.Fatalf("%d devices, want %d", ds.Len(), len(tc.want))
			}
			for _, w := range tc.want {
				if d, ok := ds.Lookup(w.IMSI, w.IMEI); !ok || d != w {
					t.Errorf("Lookup(%s, %s) = %+v %v", w.IMSI, w.IMEI, d, ok)
				}
				if !ds.HasSIM(w.IMSI) {
					t.Errorf("HasSIM(%s) false", w.IMSI)
				}
			}
		})
	}
}

// TS 23.003 6.2: the handset is its TAC+SNR; the check digit (sent as 0 by
// the UE, TS 24.008 10.5.1.4) and the SVN of an IMEISV do not change it.
func TestDeviceLookupEquipment(t *testing.T) {
	ds, err := ParseDevices([]byte("001010000000001,490154203237518\n"))
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		imsi, imei string
		ok         bool
	}{
		{"001010000000001", "490154203237518", true},   // as registered
		{"001010000000001", "490154203237510", true},   // check digit as transmitted (0)
		{"001010000000001", "4901542032375100", true},  // IMEISV, SVN 00
		{"001010000000001", "4901542032375199", true},  // IMEISV after a software update
		{"001010000000001", "490154203237528", false},  // another SNR
		{"001010000000001", "590154203237518", false},  // another TAC
		{"001010000000002", "490154203237518", false},  // another SIM in the handset
		{"001010000000001", "4901542032375", false},    // too short to name a handset
		{"001010000000001", "", false},                 // no IMEI
		{"00101000000000", "490154203237518", false},   // IMSI prefix
		{"0010100000000011", "490154203237518", false}, // IMSI longer
	}
	for _, tc := range tests {
		if _, ok := ds.Lookup(tc.imsi, tc.imei); ok != tc.ok {
			t.Errorf("Lookup(%q, %q) = %v, want %v", tc.imsi, tc.imei, ok, tc.ok)
		}
	}
}

func TestParseUsers(t *testing.T) {
	h, err := bcrypt.GenerateFromPassword([]byte("pw"), bcrypt.MinCost)
	if err != nil {
		t.Fatal(err)
	}
	hash := string(h)
	// htpasswd -B writes $2y$; bcrypt reads it.
	hash2y := "$2y$" + strings.TrimPrefix(hash, "$2a$")
	tests := []struct {
		name  string
		in    string
		users int
		error string
	}{
		{"ok", "# users\nalice:" + hash + "\n\nbob : " + hash2y + "\n", 2, ""},
		{"empty", "", 0, ""},
		{"no colon", "alice " + hash + "\n", 0, "line 1: want name:bcrypt-hash"},
		{"not bcrypt", "alice:secret\n", 0, "not a bcrypt hash"},
		{"hash too long", "alice:" + hash + "x\n", 0, "not a bcrypt hash"},
		{"cost too high", "alice:" + strings.Replace(hash, "$04$", "$17$", 1) + "\n", 0, "bcrypt cost 17 is over 16"},
		{"bad name", "al,ice:" + hash + "\n", 0, "user name"},
		{"empty name", ":" + hash + "\n", 0, "user name"},
		{"duplicate", "alice:" + hash + "\nalice:" + hash + "\n", 0, "line 2: user alice is listed twice"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			u, err := ParseUsers([]byte(tc.in))
			if tc.error != "" {
				if err == nil || !strings.Contains(err.Error(), tc.error) || !strings.HasPrefix(err.Error(), "users: ") {
					t.Fatalf("error %v, want one containing %q", err, tc.error)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if u.Len() != tc.users {
				t.Fatalf("%d users, want %d", u.Len(), tc.users)
			}
		})
	}

	u, err := ParseUsers([]byte("alice:" + hash + "\nbob:" + hash2y + "\n"))
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		name, pw string
		ok       bool
	}{
		{"alice", "pw", true}, {"bob", "pw", true}, {"alice", "pW", false}, {"alice", "", false},
		{"carol", "pw", false}, {"", "pw", false}, {"alice", strings.Repeat("p", 100), false},
	} {
		if got := u.Check(c.name, c.pw); got != c.ok {
			t.Errorf("Check(%q, %q) = %v, want %v", c.name, c.pw, got, c.ok)
		}
	}
}

func TestTable(t *testing.T) {
	t0 := time.Unix(1_700_000_000, 0)
	tb := newTable[int](3)
	add := func(k string, v int, exp time.Duration, now time.Time) bool {
		t.Helper()
		ok, err := tb.add(k, v, t0.Add(exp), now)
		if err != nil {
			t.Fatal(err)
		}
		return ok
	}
	if !add("a", 1, time.Minute, t0) || add("a", 2, time.Minute, t0) {
		t.Fatal("add: a second add of a live key must not replace it")
	}
	if v, _, ok := tb.get("a", t0.Add(time.Minute-1)); !ok || v != 1 {
		t.Fatalf("get before exp: %d %v", v, ok)
	}
	if _, _, ok := tb.get("a", t0.Add(time.Minute)); ok {
		t.Fatal("get at exp: still live")
	}
	if !add("a", 3, 2*time.Minute, t0.Add(time.Minute)) {
		t.Fatal("add over an expired entry refused")
	}
	if v, ok := tb.take("a", t0.Add(time.Minute)); !ok || v != 3 {
		t.Fatalf("take: %d %v", v, ok)
	}
	if _, ok := tb.take("a", t0.Add(time.Minute)); ok {
		t.Fatal("take twice")
	}
	add("b", 1, time.Hour, t0)
	add("c", 1, time.Hour, t0)
	add("d", 1, time.Second, t0)
	if _, err := tb.add("e", 1, t0.Add(time.Hour), t0); !errors.Is(err, errTableFull) {
		t.Fatalf("full table: %v", err)
	}
	// Once d has expired, the full table sweeps and admits e.
	if ok, err := tb.add("e", 1, t0.Add(time.Hour), t0.Add(time.Second)); !ok || err != nil {
		t.Fatalf("after expiry: %v %v", ok, err)
	}
	if tb.size() != 3 {
		t.Fatalf("size %d", tb.size())
	}
	tb.remove("e")
	if _, _, ok := tb.get("e", t0); ok {
		t.Fatal("removed entry still there")
	}
}
