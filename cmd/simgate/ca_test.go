package main

import (
	"crypto/x509"
	"encoding/pem"
	"testing"

	"github.com/simgate/simgate/gtp/dn"
)

// TestCAExport: the exported PEM is the data dir's CA, the same on every
// run, and it verifies the certificate the in-network HTTPS endpoint
// presents.
func TestCAExport(t *testing.T) {
	dir := t.TempDir()
	out, errs, code := runCmd(t, "ca", "export", "--data-dir", dir)
	if code != 0 {
		t.Fatalf("ca export: %d %s", code, errs)
	}
	again, _, _ := runCmd(t, "ca", "export", "--data-dir", dir)
	if again != out {
		t.Fatal("a second export printed another CA")
	}
	b, rest := pem.Decode([]byte(out))
	if b == nil || b.Type != "CERTIFICATE" || len(rest) != 0 {
		t.Fatalf("not one PEM certificate: %q", out)
	}
	cert, err := x509.ParseCertificate(b.Bytes)
	if err != nil || !cert.IsCA {
		t.Fatalf("exported certificate: %v (CA %v)", err, cert != nil && cert.IsCA)
	}
	ca, err := dn.LoadOrCreateCA(dir)
	if err != nil {
		t.Fatal(err)
	}
	tc := ca.ServerTLS(dn.EndorseName, dn.DefaultEndorseAddr)
	leaf, err := tc.GetCertificate(nil)
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AddCert(cert)
	if _, err := leaf.Leaf.Verify(x509.VerifyOptions{Roots: pool, DNSName: dn.EndorseName}); err != nil {
		t.Fatalf("the endpoint's certificate does not verify against the export: %v", err)
	}
	other, _, _ := runCmd(t, "ca", "export")
	if other == out {
		t.Fatal("another data dir exported the same CA")
	}
}
