package endorse

import (
	"encoding/asn1"
	"encoding/base64"
	"encoding/json"
	"math/big"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/simgate/simgate/core/udr"
)

// needTool skips when an interop tool is missing, but fails under CI=true,
// where CI must have installed it.
func needTool(t *testing.T, why string, check func() error) {
	t.Helper()
	if err := check(); err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("%s is required in CI: %v", why, err)
		}
		t.Skipf("%s not available (%v); skipping", why, err)
	}
}

const pyJWT = "/usr/bin/python3" // Debian's python3-jwt (PyJWT 2.6)

// pyVerify verifies a token with PyJWT, from the PEM or from the JWK Set, and
// prints the claims. Argument 1 is "pem" or "jwks", then the key file and the
// token file.
const pyVerify = `
import json, sys, jwt
mode, keyfile, tokfile = sys.argv[1:4]
tok = open(tokfile).read().strip()
hdr = jwt.get_unverified_header(tok)
assert set(hdr) == {"kid", "alg"}, hdr
if mode == "pem":
    key = open(keyfile).read()
else:
    ks = jwt.PyJWKSet.from_json(open(keyfile).read())
    key = [k for k in ks.keys if k.key_id == hdr["kid"]][0].key
claims = jwt.decode(tok, key, algorithms=[hdr["alg"]], audience="soracom-endorse-audience",
                    issuer="https://soracom.io", options={"require": ["exp", "nbf", "iat", "sub", "jti"]})
assert claims["sub"] == "soracom-endorse", claims
print(json.dumps(claims))
`

func TestInteropPyJWT(t *testing.T) {
	needTool(t, "python3-jwt (PyJWT)", func() error {
		return exec.Command(pyJWT, "-c", "import jwt, cryptography").Run()
	})
	for _, alg := range []string{RS256, ES256} {
		t.Run(alg, func(t *testing.T) {
			cfg := testConfig(alg)
			k, err := OpenKeys(t.TempDir(), cfg) // the real clock: PyJWT checks exp and nbf against it
			if err != nil {
				t.Fatal(err)
			}
			is, _ := NewIssuer(k, cfg)
			g := udr.DefaultEndorse()
			g.ParametersToEndorse.RequestParameters = true
			tok, err := is.Issue(fullIdentity, g, map[string]string{"username": "sora", "q\"": "<日本>"})
			if err != nil {
				t.Fatal(err)
			}
			dir := t.TempDir()
			pemBytes, _ := k.PublicKeyPEM(k.Signing().KID)
			files := map[string][]byte{"pub.pem": pemBytes, "jwks.json": k.JWKS(), "tok": []byte(tok)}
			tampered := strings.Split(tok, ".")
			tampered[1] = base64.RawURLEncoding.EncodeToString([]byte(`{"sub":"soracom-endorse"}`))
			files["bad"] = []byte(strings.Join(tampered, "."))
			for name, b := range files {
				if err := os.WriteFile(filepath.Join(dir, name), b, 0o600); err != nil {
					t.Fatal(err)
				}
			}
			for _, mode := range []string{"pem", "jwks"} {
				keyFile := map[string]string{"pem": "pub.pem", "jwks": "jwks.json"}[mode]
				out, err := exec.Command(pyJWT, "-c", pyVerify, mode, filepath.Join(dir, keyFile), filepath.Join(dir, "tok")).CombinedOutput()
				if err != nil {
					t.Fatalf("PyJWT (%s) rejects the token: %v\n%s", mode, err, out)
				}
				var claims map[string]any
				if err := json.Unmarshal(out, &claims); err != nil {
					t.Fatalf("%s: %s", mode, out)
				}
				c := claims["soracom-endorse-claim"].(map[string]any)
				rp := c["requestParameters"].(map[string]any)
				if c["imsi"] != fullIdentity.IMSI || c["imei"] != fullIdentity.IMEI || rp["q\""] != "<日本>" {
					t.Errorf("%s: claims %v", mode, claims)
				}
				if out, err := exec.Command(pyJWT, "-c", pyVerify, mode, filepath.Join(dir, keyFile), filepath.Join(dir, "bad")).CombinedOutput(); err == nil {
					t.Errorf("PyJWT (%s) accepts a tampered token: %s", mode, out)
				}
			}
		})
	}
}

// TestInteropOpenSSL checks one signature of each algorithm with
// `openssl dgst -sha256 -verify pub.pem -signature sig.bin data`.
func TestInteropOpenSSL(t *testing.T) {
	needTool(t, "openssl", func() error { _, err := exec.LookPath("openssl"); return err })
	for _, alg := range []string{RS256, ES256} {
		t.Run(alg, func(t *testing.T) {
			clk := newClock()
			is := newTestIssuer(t, alg, clk)
			tok, err := is.Issue(fullIdentity, udr.DefaultEndorse(), nil)
			if err != nil {
				t.Fatal(err)
			}
			i := strings.LastIndexByte(tok, '.')
			data, sig := tok[:i], tok[i+1:]
			raw, err := base64.RawURLEncoding.DecodeString(sig)
			if err != nil {
				t.Fatal(err)
			}
			if alg == ES256 {
				// openssl wants the DER ECDSA-Sig-Value; the JWS has R||S.
				raw, err = asn1.Marshal(struct{ R, S *big.Int }{new(big.Int).SetBytes(raw[:32]), new(big.Int).SetBytes(raw[32:])})
				if err != nil {
					t.Fatal(err)
				}
			}
			dir := t.TempDir()
			pemBytes, _ := is.keys.PublicKeyPEM(is.keys.Signing().KID)
			for name, b := range map[string][]byte{"pub.pem": pemBytes, "sig.bin": raw, "data": []byte(data), "bad": []byte(data + "x")} {
				if err := os.WriteFile(filepath.Join(dir, name), b, 0o600); err != nil {
					t.Fatal(err)
				}
			}
			cmd := exec.Command("openssl", "dgst", "-sha256", "-verify", "pub.pem", "-signature", "sig.bin", "data")
			cmd.Dir = dir
			if out, err := cmd.CombinedOutput(); err != nil || !strings.Contains(string(out), "Verified OK") {
				t.Fatalf("openssl: %v\n%s", err, out)
			}
			cmd = exec.Command("openssl", "dgst", "-sha256", "-verify", "pub.pem", "-signature", "sig.bin", "bad")
			cmd.Dir = dir
			if out, err := cmd.CombinedOutput(); err == nil {
				t.Fatalf("openssl verifies altered data: %s", out)
			}
		})
	}
}
