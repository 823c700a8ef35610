package main

import (
	"bytes"
	"context"
	"errors"
	"flag"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/simgate/simgate/endorse"
)

func TestParseFlags(t *testing.T) {
	tests := []struct {
		name  string
		args  []string
		check func(options) bool
		error string
	}{
		{"defaults", []string{"--devices", "d", "--jwks", "http://k/.well-known/jwks.json"}, func(o options) bool {
			return o.listen == "127.0.0.1:8080" && o.publicURL == "http://127.0.0.1:8080" &&
				o.endorseURL == "http://endorse.soracom.io/" && o.issuer == "https://soracom.io" && o.maxUpload == DefaultMaxUpload
		}, ""},
		{"public URL", []string{"--devices", "d", "--key", "k.pem", "--listen", ":9", "--public-url", "https://rp.example"}, func(o options) bool {
			return o.publicURL == "https://rp.example" && o.keyFile == "k.pem"
		}, ""},
		{"no key source", []string{"--devices", "d"}, nil, "exactly one of --jwks"},
		{"two key sources", []string{"--devices", "d", "--jwks", "u", "--key", "k"}, nil, "exactly one of --jwks"},
		{"no devices", []string{"--jwks", "u"}, nil, "--devices is required"},
		{"bad max upload", []string{"--devices", "d", "--jwks", "u", "--max-upload", "0"}, nil, "must be positive"},
		{"bad ttl", []string{"--devices", "d", "--jwks", "u", "--pending-ttl", "-1s"}, nil, "must be positive"},
		{"argument", []string{"--devices", "d", "--jwks", "u", "extra"}, nil, `unexpected argument "extra"`},
		{"unknown flag", []string{"--nope"}, nil, "flag provided but not defined"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			o, err := parseFlags(tc.args, io.Discard)
			if tc.error != "" {
				if err == nil || !strings.Contains(err.Error(), tc.error) {
					t.Fatalf("error %v, want %q", err, tc.error)
				}
				return
			}
			if err != nil || !tc.check(o) {
				t.Fatalf("%+v %v", o, err)
			}
		})
	}
}

func TestHelp(t *testing.T) {
	var out bytes.Buffer
	err := run(context.Background(), []string{"--help"}, nil, io.Discard, &out)
	if !errors.Is(err, flag.ErrHelp) || !strings.Contains(out.String(), "POST /upload") || !strings.Contains(out.String(), "-endorse-url") {
		t.Fatalf("%v\n%s", err, out.String())
	}
}

func TestHashPassword(t *testing.T) {
	var out bytes.Buffer
	if err := run(context.Background(), []string{"hash-password", "alice"}, strings.NewReader("s3cret\n"), &out, io.Discard); err != nil {
		t.Fatal(err)
	}
	u, err := ParseUsers(out.Bytes())
	if err != nil {
		t.Fatalf("%q: %v", out.String(), err)
	}
	if !u.Check("alice", "s3cret") || u.Check("alice", "s3cret\n") {
		t.Fatal("the printed hash does not check the password")
	}
	for _, tc := range []struct {
		args  []string
		stdin string
	}{
		{[]string{"hash-password"}, ""},
		{[]string{"hash-password", "a:b"}, "pw\n"},
		{[]string{"hash-password", "a", "b"}, "pw\n"},
		{[]string{"hash-password"}, strings.Repeat("p", 73) + "\n"},
	} {
		if err := run(context.Background(), tc.args, strings.NewReader(tc.stdin), io.Discard, io.Discard); err == nil {
			t.Errorf("%q with %q: no error", tc.args, tc.stdin)
		}
	}
}

// newApp wires each key source of the flags; the upload gate works with
// each.
func TestNewAppKeySources(t *testing.T) {
	e := newEnv(t)
	dir := t.TempDir()
	devices := filepath.Join(dir, "devices.csv")
	users := filepath.Join(dir, "users")
	pemFile := filepath.Join(dir, "endorse.pem")
	pemBytes, _ := e.keys.PublicKeyPEM(e.keys.Signing().KID)
	for p, b := range map[string][]byte{devices: []byte(devicesFile), users: usersFile(t), pemFile: pemBytes} {
		if err := os.WriteFile(p, b, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	tok := e.device(alicePhone).token()
	thiefTok := e.device(thief).token()
	for _, src := range [][]string{
		{"--jwks", e.keysSrv.URL + endorse.JWKSPath},
		{"--keys-url", e.keysSrv.URL},
		{"--key", pemFile},
	} {
		t.Run(src[0], func(t *testing.T) {
			o, err := parseFlags(append([]string{"--devices", devices, "--users", users, "--data-dir", filepath.Join(dir, src[0])}, src...), io.Discard)
			if err != nil {
				t.Fatal(err)
			}
			app, err := newApp(o, slog.New(slog.DiscardHandler))
			if err != nil {
				t.Fatal(err)
			}
			for _, c := range []struct {
				tok    string
				status int
			}{{tok, http.StatusCreated}, {thiefTok, http.StatusForbidden}, {tok[:len(tok)-4] + "AAAA", http.StatusUnauthorized}} {
				req := httptest.NewRequest(http.MethodPost, PathUpload, strings.NewReader("data"))
				req.Header.Set("Authorization", "Bearer "+c.tok)
				rec := httptest.NewRecorder()
				app.ServeHTTP(rec, req)
				if rec.Code != c.status {
					t.Fatalf("upload: %d %s, want %d", rec.Code, rec.Body, c.status)
				}
			}
		})
	}
	for _, bad := range []struct {
		name string
		args []string
	}{
		{"missing devices file", []string{"--devices", filepath.Join(dir, "none"), "--key", pemFile}},
		{"bad devices file", []string{"--devices", pemFile, "--key", pemFile}},
		{"bad users file", []string{"--devices", devices, "--users", devices, "--key", pemFile}},
		{"bad key file", []string{"--devices", devices, "--key", devices}},
		{"bad JWKS URL", []string{"--devices", devices, "--jwks", "file:///etc/passwd"}},
		{"bad endorse URL", []string{"--devices", devices, "--key", pemFile, "--endorse-url", "endorse"}},
	} {
		o, err := parseFlags(bad.args, io.Discard)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := newApp(o, slog.New(slog.DiscardHandler)); err == nil {
			t.Errorf("%s: no error", bad.name)
		}
	}
}

// run serves until its context ends, then shuts down cleanly.
func TestRunServesUntilCancelled(t *testing.T) {
	e := newEnv(t)
	dir := t.TempDir()
	devices := filepath.Join(dir, "devices.csv")
	if err := os.WriteFile(devices, []byte(devicesFile), 0o600); err != nil {
		t.Fatal(err)
	}
	// Find a free port, then let run listen on it.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		done <- run(ctx, []string{"--listen", addr, "--devices", devices, "--jwks", e.keysSrv.URL + endorse.JWKSPath, "--log-level", "error"}, nil, io.Discard, io.Discard)
	}()
	var resp *http.Response
	for i := 0; i < 100; i++ {
		if resp, err = http.Get("http://" + addr + PathHealth); err == nil {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	if err != nil {
		cancel()
		t.Fatalf("the server never answered: %v", err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("healthz %d", resp.StatusCode)
	}
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("run: %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("run did not stop")
	}
}

func TestDiskUploads(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "up")
	s, err := NewDiskUploads(dir)
	if err != nil {
		t.Fatal(err)
	}
	u, err := s.Save(Upload{ID: "ABCDEF234567", IMSI: "001010000000001", IMEI: "490154203237518"}, strings.NewReader("hello"))
	if err != nil {
		t.Fatal(err)
	}
	// SHA-256("hello")
	if u.Bytes != 5 || u.SHA256 != "2cf24dba5fb0a30e26e83b2ac5b9e29e1b161e5c1fa7425e73043362938b9824" {
		t.Fatalf("%+v", u)
	}
	p := filepath.Join(dir, "001010000000001", "ABCDEF234567")
	b, err := os.ReadFile(p)
	if err != nil || string(b) != "hello" {
		t.Fatalf("%q %v", b, err)
	}
	if fi, err := os.Stat(p); err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("mode %v %v", fi.Mode(), err)
	}
	if meta, err := os.ReadFile(p + ".json"); err != nil || !strings.Contains(string(meta), `"sha256": "2cf24dba`) {
		t.Fatalf("meta %s %v", meta, err)
	}
	for _, bad := range []Upload{{ID: "../x", IMSI: "001010000000001"}, {ID: "ABC", IMSI: "../../etc"}, {ID: "abc", IMSI: "001010000000001"}} {
		if _, err := s.Save(bad, strings.NewReader("x")); err == nil {
			t.Errorf("%+v: saved", bad)
		}
	}
	// A body that fails half-way leaves nothing behind.
	if _, err := s.Save(Upload{ID: "FAILED", IMSI: "001010000000001"}, io.MultiReader(strings.NewReader("part"), errReader{})); err == nil {
		t.Fatal("failing body saved")
	}
	entries, _ := os.ReadDir(filepath.Join(dir, "001010000000001"))
	if len(entries) != 2 {
		t.Fatalf("directory holds %d entries, want the 2 of the first upload", len(entries))
	}
}

type errReader struct{}

func (errReader) Read([]byte) (int, error) { return 0, errors.New("connection reset") }
