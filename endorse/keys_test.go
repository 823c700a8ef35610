package endorse

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"math/big"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/simgate/simgate/core/udr"
)

func TestOpenCreatesKeys(t *testing.T) {
	for _, alg := range []string{RS256, ES256} {
		t.Run(alg, func(t *testing.T) {
			clk := newClock()
			k, dir := newTestKeys(t, testConfig(alg), clk)
			kdir := filepath.Join(dir, KeyDir)
			if fi, err := os.Stat(kdir); err != nil || fi.Mode().Perm() != 0o700 {
				t.Errorf("key dir: %v, %v", fi.Mode(), err)
			}
			if fi, err := os.Stat(filepath.Join(kdir, ringFile)); err != nil || fi.Mode().Perm() != 0o600 {
				t.Errorf("key file: %v, %v", fi.Mode(), err)
			}
			info := k.Signing()
			if info.Algorithm != alg || info.Status != StatusSigning || !info.CreatedAt.Equal(clk.Now()) {
				t.Errorf("signing key %+v", info)
			}
			pemBytes, ok := k.PublicKeyPEM(info.KID)
			if !ok {
				t.Fatal("signing key not published")
			}
			blk, rest := pem.Decode(pemBytes)
			if blk == nil || blk.Type != "PUBLIC KEY" || len(rest) != 0 {
				t.Fatalf("PEM %q", pemBytes)
			}
			pub, err := x509.ParsePKIXPublicKey(blk.Bytes)
			if err != nil {
				t.Fatal(err)
			}
			// The kid: v1- + hex(SHA-256(SPKI DER)[:16]) + -x509.pem.
			sum := sha256.Sum256(blk.Bytes)
			if want := "v1-" + hex.EncodeToString(sum[:16]) + "-x509.pem"; info.KID != want || !ValidKID(info.KID) {
				t.Errorf("kid %s, want %s", info.KID, want)
			}
			switch p := pub.(type) {
			case *rsa.PublicKey:
				if alg != RS256 || p.N.BitLen() != 2048 {
					t.Errorf("RSA key of %d bits for %s", p.N.BitLen(), alg)
				}
			case *ecdsa.PublicKey:
				if alg != ES256 || p.Curve != elliptic.P256() {
					t.Errorf("EC key for %s", alg)
				}
			}
		})
	}
}

func TestKIDForm(t *testing.T) {
	for kid, ok := range map[string]bool{
		"v1-f2fea060b93f510bfb722f2cd4b3774e-x509.pem":    true, // 2023 real token (spec 1.5)
		"v1-abcdef00000000000000000012345678-x509.pem":    true,
		"v1-F2FEA060B93F510BFB722F2CD4B3774E-x509.pem":    false,
		"v1-f2fea060b93f510bfb722f2cd4b3774-x509.pem":     false,
		"v2-f2fea060b93f510bfb722f2cd4b3774e-x509.pem":    false,
		"../v1-f2fea060b93f510bfb722f2cd4b3774e-x509.pem": false,
		"v1-f2fea060b93f510bfb722f2cd4b3774e-x509.pem\n":  false,
	} {
		if ValidKID(kid) != ok {
			t.Errorf("ValidKID(%q) = %v", kid, !ok)
		}
	}
}

func TestKeysSurviveRestart(t *testing.T) {
	clk := newClock()
	cfg := testConfig(RS256)
	k1, dir := newTestKeys(t, cfg, clk)
	is, _ := NewIssuer(k1, cfg, WithClock(clk.Now))
	tok, err := is.Issue(fullIdentity, udr.DefaultEndorse(), nil)
	if err != nil {
		t.Fatal(err)
	}
	k2, err := OpenKeys(dir, cfg, WithClock(clk.Now))
	if err != nil {
		t.Fatal(err)
	}
	if k1.Signing() != k2.Signing() {
		t.Fatalf("signing key changed across restart: %+v -> %+v", k1.Signing(), k2.Signing())
	}
	verify(t, k2, tok, clk.Now())
	// The reopened ring signs with the same key.
	is2, _ := NewIssuer(k2, cfg, WithClock(clk.Now))
	tok2, _ := is2.Issue(fullIdentity, udr.DefaultEndorse(), nil)
	if d := verify(t, k1, tok2, clk.Now()); d.kid != k1.Signing().KID {
		t.Fatalf("kid %s after restart", d.kid)
	}
}

func TestRotate(t *testing.T) {
	clk := newClock()
	cfg := testConfig(RS256)
	cfg.MaxTokenTimeout = 3600
	k, dir := newTestKeys(t, cfg, clk)
	is, _ := NewIssuer(k, cfg, WithClock(clk.Now))
	g := udr.EndorseConfig{Enabled: true, ParametersToEndorse: udr.EndorseParams{IMSI: true}, TokenTimeoutSeconds: 3600}
	old, err := is.Issue(fullIdentity, g, nil)
	if err != nil {
		t.Fatal(err)
	}
	oldKID := k.Signing().KID

	clk.Advance(10 * time.Second)
	info, err := k.Rotate()
	if err != nil {
		t.Fatal(err)
	}
	if info.KID == oldKID || info.Status != StatusSigning || k.Signing() != info {
		t.Fatalf("rotate gave %+v (old %s)", info, oldKID)
	}
	fresh, _ := is.Issue(fullIdentity, g, nil)
	if d := verify(t, k, fresh, clk.Now()); d.kid != info.KID {
		t.Errorf("new token kid %s, want %s", d.kid, info.KID)
	}
	// A token signed before the rotation still verifies, also after a restart.
	if d := verify(t, k, old, clk.Now()); d.kid != oldKID {
		t.Errorf("old token kid %s", d.kid)
	}
	k2, err := OpenKeys(dir, cfg, WithClock(clk.Now))
	if err != nil {
		t.Fatal(err)
	}
	verify(t, k2, old, clk.Now())
	list := k2.List()
	if len(list) != 2 || list[0].KID != info.KID || list[1].KID != oldKID || list[1].Status != StatusRetired {
		t.Fatalf("list %+v", list)
	}
	retired := list[1]
	if !retired.RetiredAt.Equal(clk.Now()) || !retired.ExpiresAt.Equal(clk.Now().Add(time.Hour+RetireGrace)) {
		t.Errorf("retired %+v", retired)
	}
	// Only the signer keeps a private key on disk.
	b, _ := os.ReadFile(filepath.Join(dir, KeyDir, ringFile))
	if n := strings.Count(string(b), "PRIVATE KEY-----\\n"); n != 2 { // BEGIN and END of one key
		t.Errorf("%d private key markers in the ring file", n)
	}

	// Until the old key's last token expires it stays published...
	clk.Advance(time.Hour + RetireGrace - time.Second)
	if _, ok := k2.PublicKeyPEM(oldKID); !ok || !strings.Contains(string(k2.JWKS()), oldKID) {
		t.Fatal("retired key withdrawn before its tokens expired")
	}
	// ...then it is withdrawn, and a restart drops it from the file.
	clk.Advance(time.Second)
	if _, ok := k2.PublicKeyPEM(oldKID); ok || strings.Contains(string(k2.JWKS()), oldKID) || len(k2.List()) != 1 {
		t.Fatal("expired key still published")
	}
	if _, err := OpenKeys(dir, cfg, WithClock(clk.Now)); err != nil {
		t.Fatal(err)
	}
	b, _ = os.ReadFile(filepath.Join(dir, KeyDir, ringFile))
	if strings.Contains(string(b), oldKID) {
		t.Error("expired key kept in the ring file")
	}
}

func TestAlgorithmChangeRotates(t *testing.T) {
	clk := newClock()
	k, dir := newTestKeys(t, testConfig(RS256), clk)
	first := k.Signing().KID
	k2, err := OpenKeys(dir, testConfig(ES256), WithClock(clk.Now))
	if err != nil {
		t.Fatal(err)
	}
	list := k2.List()
	if len(list) != 2 || list[0].Algorithm != ES256 || list[1].KID != first || list[1].Status != StatusRetired {
		t.Fatalf("after algorithm change: %+v", list)
	}
}

func TestOpenRejectsBadRing(t *testing.T) {
	clk := newClock()
	cfg := testConfig(ES256)
	_, dir := newTestKeys(t, cfg, clk)
	k, _ := newTestKeys(t, cfg, clk)
	if _, err := k.Rotate(); err != nil {
		t.Fatal(err)
	}
	good, err := os.ReadFile(filepath.Join(k.Dir(), ringFile))
	if err != nil {
		t.Fatal(err)
	}
	other, _ := os.ReadFile(filepath.Join(dir, KeyDir, ringFile))
	edit := func(f func(r map[string]any, keys []any)) string {
		var r map[string]any
		_ = json.Unmarshal(good, &r)
		f(r, r["keys"].([]any))
		b, _ := json.Marshal(r)
		return string(b)
	}
	var otherRing map[string]any
	_ = json.Unmarshal(other, &otherRing)
	otherKey := otherRing["keys"].([]any)[0].(map[string]any)
	tests := []struct{ name, file, want string }{
		{"not JSON", "{", "not a key ring"},
		{"wrong version", edit(func(r map[string]any, _ []any) { r["version"] = 2 }), "version 2"},
		{"unknown field", edit(func(r map[string]any, _ []any) { r["colour"] = 1 }), "unknown field"},
		{"kid mismatch", edit(func(_ map[string]any, ks []any) {
			ks[0].(map[string]any)["kid"] = "v1-00000000000000000000000000000000-x509.pem"
		}), "kid does not match"},
		{"private key of another key", edit(func(_ map[string]any, ks []any) {
			ks[0].(map[string]any)["private_key"] = otherKey["private_key"]
		}), "does not match public_key"},
		{"signer without private key", edit(func(_ map[string]any, ks []any) {
			delete(ks[0].(map[string]any), "private_key")
		}), "must be the signing key"},
		{"retired with private key", edit(func(_ map[string]any, ks []any) {
			ks[1].(map[string]any)["private_key"] = otherKey["private_key"]
		}), "keeps no private_key"},
		{"retired without expiry", edit(func(_ map[string]any, ks []any) {
			delete(ks[1].(map[string]any), "expires_at")
		}), "needs retired_at and expires_at"},
		{"duplicate", edit(func(r map[string]any, ks []any) { r["keys"] = append(ks, ks[1]) }), "listed twice"},
		{"wrong alg", edit(func(_ map[string]any, ks []any) { ks[1].(map[string]any)["alg"] = "RS256" }), "alg RS256 for an ECDSA key"},
		{"bad PEM", edit(func(_ map[string]any, ks []any) { ks[1].(map[string]any)["public_key"] = "x" }), "not a PEM PUBLIC KEY"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d := t.TempDir()
			_ = os.MkdirAll(filepath.Join(d, KeyDir), 0o700)
			if err := os.WriteFile(filepath.Join(d, KeyDir, ringFile), []byte(tt.file), 0o600); err != nil {
				t.Fatal(err)
			}
			_, err := OpenKeys(d, cfg, WithClock(clk.Now))
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("error %v, want %q", err, tt.want)
			}
			// The bad file is left for the operator, not replaced.
			if b, _ := os.ReadFile(filepath.Join(d, KeyDir, ringFile)); string(b) != tt.file {
				t.Error("bad ring file was overwritten")
			}
		})
	}
}

func TestOpenRestrictsPermissions(t *testing.T) {
	clk := newClock()
	cfg := testConfig(ES256)
	_, dir := newTestKeys(t, cfg, clk)
	kdir := filepath.Join(dir, KeyDir)
	_ = os.Chmod(kdir, 0o755)
	_ = os.Chmod(filepath.Join(kdir, ringFile), 0o644)
	if _, err := OpenKeys(dir, cfg, WithClock(clk.Now)); err != nil {
		t.Fatal(err)
	}
	for p, want := range map[string]os.FileMode{kdir: 0o700, filepath.Join(kdir, ringFile): 0o600} {
		if fi, _ := os.Stat(p); fi.Mode().Perm() != want {
			t.Errorf("%s: mode %v", p, fi.Mode().Perm())
		}
	}
}

// TestConcurrentOpen: processes starting together on an empty data
// directory agree on one key (the flock).
func TestConcurrentOpen(t *testing.T) {
	dir := t.TempDir()
	cfg := testConfig(ES256)
	const n = 8
	kids := make([]string, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			k, err := OpenKeys(dir, cfg)
			if err != nil {
				t.Error(err)
				return
			}
			kids[i] = k.Signing().KID
		})
	}
	wg.Wait()
	for _, kid := range kids[1:] {
		if kid != kids[0] {
			t.Fatalf("different keys: %v", kids)
		}
	}
}

func TestReload(t *testing.T) {
	clk := newClock()
	cfg := testConfig(ES256)
	server, dir := newTestKeys(t, cfg, clk)
	if changed, err := server.Reload(); err != nil || changed {
		t.Fatalf("reload without change: %v %v", changed, err)
	}
	cli, err := OpenKeys(dir, cfg, WithClock(clk.Now))
	if err != nil {
		t.Fatal(err)
	}
	info, err := cli.Rotate()
	if err != nil {
		t.Fatal(err)
	}
	if changed, err := server.Reload(); err != nil || !changed {
		t.Fatalf("reload after rotation: %v %v", changed, err)
	}
	if server.Signing() != info || len(server.List()) != 2 {
		t.Fatalf("server did not pick up the rotation: %+v", server.List())
	}

	// Watch reloads in the background and stops with its context.
	info2, _ := cli.Rotate()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { server.Watch(ctx, 5*time.Millisecond); close(done) }()
	deadline := time.After(10 * time.Second)
	for server.Signing().KID != info2.KID {
		select {
		case <-deadline:
			t.Fatal("Watch did not reload")
		case <-time.After(5 * time.Millisecond):
		}
	}
	cancel()
	<-done
}

// TestJWKS rebuilds each public key from its JWK (RFC 7518 6.2, 6.3).
func TestJWKS(t *testing.T) {
	clk := newClock()
	k, dir := newTestKeys(t, testConfig(RS256), clk)
	k, err := OpenKeys(dir, testConfig(ES256), WithClock(clk.Now)) // adds an ES256 signer, RS256 retired
	if err != nil {
		t.Fatal(err)
	}
	var set struct {
		Keys []map[string]string `json:"keys"`
	}
	if err := json.Unmarshal(k.JWKS(), &set); err != nil {
		t.Fatal(err)
	}
	if len(set.Keys) != 2 {
		t.Fatalf("%d keys", len(set.Keys))
	}
	b64 := func(s string) *big.Int {
		b, err := base64.RawURLEncoding.DecodeString(s)
		if err != nil {
			t.Fatal(err)
		}
		return new(big.Int).SetBytes(b)
	}
	for _, j := range set.Keys {
		pub, ok := k.PublicKey(j["kid"])
		if !ok || j["use"] != "sig" {
			t.Fatalf("jwk %v", j)
		}
		switch j["kty"] {
		case "RSA":
			p := pub.(*rsa.PublicKey)
			if j["alg"] != RS256 || b64(j["n"]).Cmp(p.N) != 0 || b64(j["e"]).Int64() != int64(p.E) || j["e"] != "AQAB" {
				t.Errorf("RSA jwk %v", j)
			}
		case "EC":
			p := pub.(*ecdsa.PublicKey)
			raw, _ := p.Bytes()
			x, _ := base64.RawURLEncoding.DecodeString(j["x"])
			y, _ := base64.RawURLEncoding.DecodeString(j["y"])
			if j["alg"] != ES256 || j["crv"] != "P-256" || len(x) != 32 || len(y) != 32 ||
				string(raw[1:33]) != string(x) || string(raw[33:]) != string(y) {
				t.Errorf("EC jwk %v", j)
			}
		default:
			t.Errorf("kty %v", j["kty"])
		}
	}
}

func TestConfigValidate(t *testing.T) {
	if err := DefaultConfig().Validate(); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		f    func(*Config)
		want string
	}{
		{"issuer", func(c *Config) { c.Issuer = " " }, "endorse.issuer"},
		{"algorithm", func(c *Config) { c.Algorithm = "HS256" }, `endorse.algorithm: "HS256"`},
		{"rsa_bits", func(c *Config) { c.RSABits = 1024 }, "endorse.rsa_bits: 1024"},
		{"max_token_timeout", func(c *Config) { c.MaxTokenTimeout = 0 }, "endorse.max_token_timeout"},
		{"max_body_bytes", func(c *Config) { c.MaxBodyBytes = 0 }, "endorse.max_body_bytes"},
		{"redirect_status_get", func(c *Config) { c.RedirectStatusGET = 200 }, "endorse.redirect_status_get: 200"},
		{"redirect_status_post", func(c *Config) { c.RedirectStatusPOST = 301 }, "endorse.redirect_status_post: 301"},
		{"redirect_match", func(c *Config) { c.RedirectMatch = "regex" }, "endorse.redirect_match"},
		{"public_base_url", func(c *Config) { c.PublicBaseURL = "ftp://x" }, "endorse.public_base_url"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := DefaultConfig()
			tt.f(&c)
			err := c.Validate()
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("error %v, want %q", err, tt.want)
			}
			if _, err := OpenKeys(t.TempDir(), c); err == nil {
				t.Error("OpenKeys accepted the configuration")
			}
		})
	}
}

// TestIssueDuringRotation: tokens issued while the key rotates all verify
// against the ring, each under the kid it names.
func TestIssueDuringRotation(t *testing.T) {
	clk := newClock()
	cfg := testConfig(ES256)
	k, _ := newTestKeys(t, cfg, clk)
	is, _ := NewIssuer(k, cfg, WithClock(clk.Now))
	var wg sync.WaitGroup
	toks := make([][]string, 4)
	for i := range toks {
		wg.Go(func() {
			for range 50 {
				tok, err := is.Issue(fullIdentity, udr.DefaultEndorse(), nil)
				if err != nil {
					t.Error(err)
					return
				}
				toks[i] = append(toks[i], tok)
			}
		})
	}
	for range 5 {
		if _, err := k.Rotate(); err != nil {
			t.Fatal(err)
		}
	}
	wg.Wait()
	if n := len(k.List()); n != 6 {
		t.Fatalf("%d keys after 5 rotations", n)
	}
	for _, ts := range toks {
		for _, tok := range ts {
			verify(t, k, tok, clk.Now())
		}
	}
}
