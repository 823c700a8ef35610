package metrics

import (
	"bytes"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

// endorseFake answers as endorse.TokenHandler does, by path.
func endorseFake() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("/token", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		io.WriteString(w, `{"token":"`+strings.Repeat("a", 4000)+`"}`)
	})
	mux.HandleFunc("/redirect", func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, "https://example.com/cb?soracom_endorse_token=x", http.StatusFound)
	})
	mux.HandleFunc("/see-other", func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, "https://example.com/cb", http.StatusSeeOther)
	})
	mux.HandleFunc("/not-sim", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusForbidden)
		// Written in pieces: the code is split across two writes.
		io.WriteString(w, `{"code":"END`)
		io.WriteString(w, `0001","message":"the request does not come from a SIM session"}`)
	})
	mux.HandleFunc("/bad-redirect", func(w http.ResponseWriter, _ *http.Request) {
		w.WriteHeader(http.StatusBadRequest)
		io.WriteString(w, "{ \"code\" : \"END0004\", \"message\": \"redirect_url is not an authorized redirect URL\"}")
	})
	mux.HandleFunc("/plain-error", func(w http.ResponseWriter, _ *http.Request) {
		http.Error(w, "boom", http.StatusInternalServerError)
	})
	mux.HandleFunc("/late-code", func(w http.ResponseWriter, _ *http.Request) {
		w.WriteHeader(http.StatusForbidden)
		io.WriteString(w, `{"message":"`+strings.Repeat("x", refusalPrefix)+`","code":"END0002"}`)
	})
	mux.HandleFunc("/preflight", func(w http.ResponseWriter, _ *http.Request) {
		w.WriteHeader(http.StatusNoContent)
	})
	return mux
}

func TestEndorseHTTP(t *testing.T) {
	r := New()
	srv := httptest.NewServer(r.EndorseHTTP(endorseFake()))
	defer srv.Close()
	c := srv.Client()
	c.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	get := map[string]int{
		"/token": 3, "/redirect": 1, "/see-other": 1, "/not-sim": 2, "/bad-redirect": 1,
		"/plain-error": 1, "/late-code": 1, "/preflight": 1,
	}
	for path, n := range get {
		for range n {
			resp, err := c.Get(srv.URL + path)
			if err != nil {
				t.Fatal(err)
			}
			body, err := io.ReadAll(resp.Body)
			resp.Body.Close()
			if err != nil {
				t.Fatal(err)
			}
			if path == "/token" && len(body) != 4000+len(`{"token":""}`) {
				t.Errorf("token body %d bytes: the middleware changed it", len(body))
			}
			if path == "/not-sim" && !bytes.Contains(body, []byte(`"code":"END0001"`)) {
				t.Errorf("refusal body %q: the middleware changed it", body)
			}
		}
	}
	tests := []struct {
		v      float64
		name   string
		labels []string
	}{
		{3, "simgate_endorse_tokens_issued_total", []string{"mode", "json"}},
		{2, "simgate_endorse_tokens_issued_total", []string{"mode", "redirect"}},
		{2, "simgate_endorse_tokens_refused_total", []string{"code", "END0001", "status", "403"}},
		{1, "simgate_endorse_tokens_refused_total", []string{"code", "END0004", "status", "400"}},
		{1, "simgate_endorse_tokens_refused_total", []string{"code", "unknown", "status", "500"}},
		{1, "simgate_endorse_tokens_refused_total", []string{"code", "unknown", "status", "403"}}, // code past the prefix
		{5, "simgate_endorse_request_duration_seconds", []string{"outcome", "issued"}},
		{5, "simgate_endorse_request_duration_seconds", []string{"outcome", "refused"}},
		{1, "simgate_endorse_request_duration_seconds", []string{"outcome", "other"}},
	}
	for _, tc := range tests {
		want(t, r, tc.v, tc.name, tc.labels...)
	}
	// A second wrapper shares the metrics.
	h2 := r.EndorseHTTP(endorseFake())
	h2.ServeHTTP(httptest.NewRecorder(), httptest.NewRequest(http.MethodGet, "/token", nil))
	want(t, r, 4, "simgate_endorse_tokens_issued_total", "mode", "json")
	lint(t, r)
}

// TestEndorseWriterBounded: a successful body is not copied; an error
// body is copied up to refusalPrefix bytes only.
func TestEndorseWriterBounded(t *testing.T) {
	tests := []struct {
		status     int
		writes     int
		wantPrefix int
	}{
		{http.StatusOK, 10, 0},
		{http.StatusFound, 10, 0},
		{http.StatusForbidden, 10, refusalPrefix},
		{http.StatusForbidden, 1, 100},
	}
	for _, tc := range tests {
		w := &endorseWriter{ResponseWriter: httptest.NewRecorder()}
		w.WriteHeader(tc.status)
		for range tc.writes {
			if _, err := w.Write(make([]byte, 100)); err != nil {
				t.Fatal(err)
			}
		}
		if len(w.prefix) != tc.wantPrefix {
			t.Errorf("status %d, %d writes: kept %d bytes, want %d", tc.status, tc.writes, len(w.prefix), tc.wantPrefix)
		}
	}
}

func TestErrorCode(t *testing.T) {
	tests := []struct{ body, want string }{
		{`{"code":"END0001","message":"x"}`, "END0001"},
		{"{ \"code\"\t:\n \"END0009\" }", "END0009"},
		{`{"message":"x","code":"END0005"}`, "END0005"},
		{`{"code":"END0`, "unknown"}, // cut before the closing quote
		{`{"code":""}`, "unknown"},
		{`{"code":"end0001"}`, "unknown"}, // not a code's alphabet
		{`{"code":"END0001END0001END0001"}`, "unknown"},
		{`{"code":12}`, "unknown"},
		{`{"code"}`, "unknown"},
		{`boom`, "unknown"},
		{``, "unknown"},
	}
	for _, tc := range tests {
		if got := errorCode([]byte(tc.body)); got != tc.want {
			t.Errorf("errorCode(%q) = %q, want %q", tc.body, got, tc.want)
		}
	}
}

// FuzzErrorCode: any body gives "unknown" or a short code of [A-Z0-9_-]
// found in it, never a panic.
func FuzzErrorCode(f *testing.F) {
	for _, s := range []string{`{"code":"END0001","message":"x"}`, `{"code" : "X"}`, `"code":"`, ``} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		c := errorCode(b)
		if c == "unknown" {
			return
		}
		if len(c) == 0 || len(c) > maxCodeLen || !bytes.Contains(b, []byte(`"`+c+`"`)) {
			t.Fatalf("errorCode(%q) = %q", b, c)
		}
		for _, r := range c {
			if !('A' <= r && r <= 'Z' || '0' <= r && r <= '9' || r == '_' || r == '-') {
				t.Fatalf("errorCode(%q) = %q", b, c)
			}
		}
	})
}

func BenchmarkEndorseHTTP(b *testing.B) {
	token := []byte(`{"token":"` + strings.Repeat("a", 600) + `"}`)
	next := http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { w.Write(token) })
	for _, tc := range []struct {
		name string
		h    http.Handler
	}{{"bare", next}, {"wrapped", New().EndorseHTTP(next)}} {
		b.Run(tc.name, func(b *testing.B) {
			req := httptest.NewRequest(http.MethodGet, "/", nil)
			w := &discardWriter{h: http.Header{}}
			b.ReportAllocs()
			for b.Loop() {
				tc.h.ServeHTTP(w, req)
			}
		})
	}
}

type discardWriter struct{ h http.Header }

func (w *discardWriter) Header() http.Header         { return w.h }
func (w *discardWriter) Write(b []byte) (int, error) { return len(b), nil }
func (w *discardWriter) WriteHeader(int)             {}
