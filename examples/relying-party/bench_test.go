package main

import (
	"crypto/sha256"
	"encoding/hex"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/simgate/simgate/endorse"
)

// hashOnly is an UploadStore that keeps nothing, so that a benchmark
// measures the gate rather than memory growth.
type hashOnly struct{}

func (hashOnly) Save(u Upload, body io.Reader) (Upload, error) {
	h := sha256.New()
	n, err := io.Copy(h, body)
	u.Bytes, u.SHA256 = n, hex.EncodeToString(h.Sum(nil))
	return u, err
}

// BenchmarkUploadGate is POST /upload through the app's handler: token
// verification (key cached), the registry check and a 1 KiB body.
func BenchmarkUploadGate(b *testing.B) {
	for _, alg := range []string{endorse.RS256, endorse.ES256} {
		b.Run(alg, func(b *testing.B) {
			e := newEnv(b, withAlgorithm(alg), withAppConfig(func(c *Config) { c.Uploads = hashOnly{} }))
			tok, err := e.issuer.Issue(endorse.Identity{IMSI: alicePhone.imsi, IMEI: alicePhone.imei, Active: true}, e.group, nil)
			if err != nil {
				b.Fatal(err)
			}
			body := strings.Repeat("x", 1024)
			b.ReportAllocs()
			b.SetBytes(int64(len(body)))
			for b.Loop() {
				req := httptest.NewRequest(http.MethodPost, PathUpload, strings.NewReader(body))
				req.Header.Set("Authorization", "Bearer "+tok)
				rec := httptest.NewRecorder()
				e.app.ServeHTTP(rec, req)
				if rec.Code != http.StatusCreated {
					b.Fatalf("%d %s", rec.Code, rec.Body)
				}
			}
		})
	}
}

// BenchmarkLoginCallback is GET /login/callback?soracom_endorse_token=...
// through the app's handler: verification, registry, the used-token table
// and a new session. Each iteration needs a fresh token (a token logs in
// once); they are signed before the timer starts.
func BenchmarkLoginCallback(b *testing.B) {
	for _, alg := range []string{endorse.RS256, endorse.ES256} {
		b.Run(alg, func(b *testing.B) {
			e := newEnv(b, withAlgorithm(alg))
			id := endorse.Identity{IMSI: alicePhone.imsi, IMEI: alicePhone.imei, Active: true}
			toks := make([]string, b.N)
			for i := range toks {
				var err error
				if toks[i], err = e.issuer.Issue(id, e.group, nil); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportAllocs()
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				req := httptest.NewRequest(http.MethodGet, PathLoginCallback+"?soracom_endorse_token="+toks[i], nil)
				rec := httptest.NewRecorder()
				e.app.ServeHTTP(rec, req)
				if rec.Code != http.StatusOK {
					b.Fatalf("%d %s", rec.Code, rec.Body)
				}
			}
		})
	}
}
