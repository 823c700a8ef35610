package dn

import (
	"bytes"
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

// TestLoadOrCreateCA: created once with the right modes, loaded the same
// afterwards.
func TestLoadOrCreateCA(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "data") // does not exist yet
	ca, err := LoadOrCreateCA(dir)
	if err != nil {
		t.Fatal(err)
	}
	fi, err := os.Stat(filepath.Join(dir, CADir, CAKeyFile))
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm() != 0o600 {
		t.Errorf("%s mode %v, want 0600", CAKeyFile, fi.Mode().Perm())
	}
	cert := ca.Certificate()
	if !cert.IsCA || cert.KeyUsage&x509.KeyUsageCertSign == 0 || !cert.MaxPathLenZero {
		t.Errorf("CA certificate: IsCA %v, usage %v, MaxPathLenZero %v", cert.IsCA, cert.KeyUsage, cert.MaxPathLenZero)
	}
	if err := cert.CheckSignatureFrom(cert); err != nil {
		t.Errorf("not self-signed: %v", err)
	}
	onDisk, err := os.ReadFile(filepath.Join(dir, CADir, CACertFile))
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(onDisk, ca.PEM()) {
		t.Error("PEM() differs from ca.pem")
	}
	again, err := LoadOrCreateCA(dir)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(again.PEM(), ca.PEM()) {
		t.Error("second load made a new CA")
	}
	entries, _ := os.ReadDir(dir)
	if len(entries) != 1 {
		t.Errorf("data dir holds %d entries, want only %s", len(entries), CADir)
	}
}

// TestLoadOrCreateCAConcurrent: creators racing on one data dir agree.
func TestLoadOrCreateCAConcurrent(t *testing.T) {
	dir := t.TempDir()
	var wg sync.WaitGroup
	pems := make([][]byte, 8)
	errs := make([]error, 8)
	for i := range pems {
		wg.Go(func() {
			ca, err := LoadOrCreateCA(dir)
			errs[i] = err
			if err == nil {
				pems[i] = ca.PEM()
			}
		})
	}
	wg.Wait()
	for i := range pems {
		if errs[i] != nil {
			t.Fatalf("creator %d: %v", i, errs[i])
		}
		if !bytes.Equal(pems[i], pems[0]) {
			t.Errorf("creator %d got another CA", i)
		}
	}
}

// TestLoadCAErrors: a damaged CA directory is an error, never replaced.
func TestLoadCAErrors(t *testing.T) {
	other := t.TempDir()
	if _, err := LoadOrCreateCA(other); err != nil {
		t.Fatal(err)
	}
	otherKey, _ := os.ReadFile(filepath.Join(other, CADir, CAKeyFile))
	tests := []struct {
		name  string
		files map[string]string // "" removes the file
		want  string
	}{
		{"no key", map[string]string{CAKeyFile: ""}, "incomplete"},
		{"no cert", map[string]string{CACertFile: ""}, "incomplete"},
		{"garbage cert", map[string]string{CACertFile: "hello"}, "no CERTIFICATE"},
		{"garbage key", map[string]string{CAKeyFile: "-----BEGIN PRIVATE KEY-----\naGVsbG8=\n-----END PRIVATE KEY-----\n"}, CAKeyFile},
		{"other key", map[string]string{CAKeyFile: string(otherKey)}, "is not the key"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			if _, err := LoadOrCreateCA(dir); err != nil {
				t.Fatal(err)
			}
			for f, v := range tc.files {
				p := filepath.Join(dir, CADir, f)
				if v == "" {
					os.Remove(p)
				} else if err := os.WriteFile(p, []byte(v), 0o600); err != nil {
					t.Fatal(err)
				}
			}
			_, err := LoadOrCreateCA(dir)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("got %v, want an error with %q", err, tc.want)
			}
		})
	}
	// A leaf certificate is no CA.
	dir := t.TempDir()
	ca, _ := LoadOrCreateCA(other)
	leaf, err := ca.Issue("x.test")
	if err != nil {
		t.Fatal(err)
	}
	os.MkdirAll(filepath.Join(dir, CADir), 0o700)
	os.WriteFile(filepath.Join(dir, CADir, CACertFile), pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: leaf.Certificate[0]}), 0o644)
	os.WriteFile(filepath.Join(dir, CADir, CAKeyFile), otherKey, 0o600)
	if _, err := LoadOrCreateCA(dir); err == nil || !strings.Contains(err.Error(), "not a CA") {
		t.Errorf("leaf as CA: %v", err)
	}
}

// TestIssue: server certificates verify against the CA for their names
// only, as a TLS client checks them.
func TestIssue(t *testing.T) {
	ca, err := LoadOrCreateCA(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	crt, err := ca.Issue(EndorseName, DefaultEndorseAddr, "*.soracom.io")
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		ok   bool
	}{
		{EndorseName, true},
		{DefaultEndorseAddr, true},
		{"beam.soracom.io", true}, // the wildcard
		{"example.com", false},
		{DefaultBeamAddr, false},
	}
	for _, tc := range tests {
		_, err := crt.Leaf.Verify(x509.VerifyOptions{DNSName: tc.name, Roots: ca.Pool(), KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}})
		if (err == nil) != tc.ok {
			t.Errorf("verify for %s: %v, want ok %v", tc.name, err, tc.ok)
		}
	}
	if d := crt.Leaf.NotAfter.Sub(crt.Leaf.NotBefore); d > 398*24*time.Hour {
		t.Errorf("validity %s, more than 398 days", d)
	}
	for _, bad := range [][]string{nil, {"bad name!"}, {"a..b"}} {
		if _, err := ca.Issue(bad...); err == nil {
			t.Errorf("Issue(%q): no error", bad)
		}
	}
}

// TestServerTLS: a handshake over a real connection, the certificate
// reused, and issued again when it nears its end.
func TestServerTLS(t *testing.T) {
	ca, err := LoadOrCreateCA(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	ca.now = func() time.Time { return now }
	cfg := ca.ServerTLS(EndorseName)
	handshake := func() *x509.Certificate {
		t.Helper()
		a, b := net.Pipe()
		defer a.Close()
		defer b.Close()
		errc := make(chan error, 1)
		go func() { errc <- tls.Server(b, cfg).Handshake() }()
		c := tls.Client(a, &tls.Config{ServerName: EndorseName, RootCAs: ca.Pool(), Time: func() time.Time { return now }})
		if err := c.Handshake(); err != nil {
			t.Fatalf("client handshake: %v", err)
		}
		if err := <-errc; err != nil {
			t.Fatalf("server handshake: %v", err)
		}
		return c.ConnectionState().PeerCertificates[0]
	}
	first := handshake()
	if second := handshake(); !second.Equal(first) {
		t.Error("certificate issued again before it nears its end")
	}
	now = first.NotAfter.Add(-time.Hour)
	if third := handshake(); third.Equal(first) {
		t.Error("certificate not renewed a day before its end")
	}
}
