package verify_test

import (
	"context"
	"errors"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/simgate/simgate/core/udr"
	"github.com/simgate/simgate/endorse"
	"github.com/simgate/simgate/endorse/verify"
)

// TestIssuerInterop verifies tokens from the simgate issuer (package endorse)
// through its own key endpoints, for both algorithms and every key source.
func TestIssuerInterop(t *testing.T) {
	for _, alg := range []string{endorse.RS256, endorse.ES256} {
		t.Run(alg, func(t *testing.T) {
			cfg := endorse.DefaultConfig()
			cfg.Algorithm = alg
			dir := t.TempDir()
			keys, err := endorse.OpenKeys(dir, cfg)
			if err != nil {
				t.Fatal(err)
			}
			iss, err := endorse.NewIssuer(keys, cfg)
			if err != nil {
				t.Fatal(err)
			}
			srv := httptest.NewServer(endorse.NewKeysHandler(keys, cfg))
			defer srv.Close()

			group := udr.EndorseConfig{Enabled: true, TokenTimeoutSeconds: 600,
				ParametersToEndorse: udr.EndorseParams{IMSI: true, IMEI: true, RequestParameters: true}}
			id := endorse.Identity{IMSI: "001010000000001", IMEI: "356938035643809", Active: true}
			tok, err := iss.Issue(id, group, map[string]string{"nonce": "abc"})
			if err != nil {
				t.Fatal(err)
			}
			kid := keys.Signing().KID
			pemFile := filepath.Join(t.TempDir(), kid)
			pemBytes, ok := keys.PublicKeyPEM(kid)
			if !ok {
				t.Fatal("no PEM for the signing key")
			}
			if err := os.WriteFile(pemFile, pemBytes, 0o600); err != nil {
				t.Fatal(err)
			}
			for name, src := range map[string]verify.Option{
				"jwks":    verify.WithJWKS(srv.URL + endorse.JWKSPath),
				"keysurl": verify.WithKeysURL(srv.URL),
				"pemfile": verify.WithPEMFile(pemFile),
			} {
				v, err := verify.New(src, verify.WithIMSI(id.IMSI), verify.WithRequestParameter("nonce", "abc"))
				if err != nil {
					t.Fatal(err)
				}
				c, err := v.Verify(context.Background(), tok)
				if err != nil {
					t.Errorf("%s: %v", name, err)
					continue
				}
				if c.Endorse.IMEI != id.IMEI || c.NotBefore != c.IssuedAt-60 || c.ExpiresAt != c.IssuedAt+600 {
					t.Errorf("%s: claims %+v", name, c)
				}
				// The same token, once tampered, fails.
				i := strings.LastIndexByte(tok, '.') - 3
				bad := tok[:i] + string("AB"[boolIndex(tok[i] == 'A')]) + tok[i+1:]
				if _, err := v.Verify(context.Background(), bad); err == nil {
					t.Errorf("%s: tampered token verified", name)
				}
			}
			// Ten minutes on, the token has expired.
			v, _ := verify.New(verify.WithJWKS(srv.URL+endorse.JWKSPath),
				verify.WithClock(func() time.Time { return time.Now().Add(11 * time.Minute) }))
			if _, err := v.Verify(context.Background(), tok); !errors.Is(err, verify.ErrExpired) {
				t.Errorf("11 minutes later: %v", err)
			}
		})
	}
}

func boolIndex(b bool) int {
	if b {
		return 1
	}
	return 0
}
