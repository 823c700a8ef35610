package metrics

import (
	"bytes"
	"net/http"
	"strconv"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// refusalPrefix bounds how much of an error answer is kept to read its
// "code": SORACOM-style errors put it first (spec 1.10).
const refusalPrefix = 256

// Outcomes of an Endorse request.
const (
	outcomeIssued  = "issued"
	outcomeRefused = "refused"
	outcomeOther   = "other" // preflight, not modified, ...
)

// endorseMetrics counts the token endpoint's answers.
type endorseMetrics struct {
	issued  [2]prometheus.Counter // json, redirect
	refused *prometheus.CounterVec
	latency map[string]prometheus.Observer // by outcome; read-only
	writers sync.Pool                      // *endorseWriter
}

func newEndorseMetrics(reg prometheus.Registerer) *endorseMetrics {
	issued := prometheus.NewCounterVec(prometheus.CounterOpts{
		Namespace: namespace, Subsystem: "endorse", Name: "tokens_issued_total",
		Help: "Endorse tokens issued, by answer: json (200 {\"token\"}) or redirect (302/303 with the token).",
	}, []string{"mode"})
	refused := prometheus.NewCounterVec(prometheus.CounterOpts{
		Namespace: namespace, Subsystem: "endorse", Name: "tokens_refused_total",
		Help: "Endorse token requests refused, by error code (END0001...) and HTTP status.",
	}, []string{"code", "status"})
	latency := prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Namespace: namespace, Subsystem: "endorse", Name: "request_duration_seconds",
		Help:    "Duration of Endorse token requests, by outcome (issued, refused, other).",
		Buckets: latencyBuckets,
	}, []string{"outcome"})
	reg.MustRegister(issued, refused, latency) // once per Registry: names are fresh
	m := &endorseMetrics{
		issued:  [2]prometheus.Counter{issued.WithLabelValues("json"), issued.WithLabelValues("redirect")},
		refused: refused,
		latency: map[string]prometheus.Observer{},
	}
	for _, o := range []string{outcomeIssued, outcomeRefused, outcomeOther} {
		m.latency[o] = latency.WithLabelValues(o)
	}
	m.writers.New = func() any { return new(endorseWriter) }
	return m
}

// EndorseHTTP wraps the Endorse token endpoint (endorse.TokenHandler) and
// counts its answers: 200 as a token issued in JSON, 302 and 303 as a token
// issued by redirect, 4xx and 5xx as refused by the "code" of the JSON error
// body (spec 1.10), and the latency of each request by outcome:
//
//	simgate_endorse_tokens_issued_total{mode}
//	simgate_endorse_tokens_refused_total{code,status}
//	simgate_endorse_request_duration_seconds{outcome}
//
// Successful bodies pass straight through; of an error answer only the
// first 256 bytes are copied aside to read the code.
func (r *Registry) EndorseHTTP(next http.Handler) http.Handler {
	r.endOnce.Do(func() { r.end = newEndorseMetrics(r.reg) })
	m := r.end
	return http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		start := time.Now()
		ew := m.writers.Get().(*endorseWriter)
		*ew = endorseWriter{ResponseWriter: w, prefix: ew.prefix[:0]}
		defer func() {
			// Count even when next panics (net/http recovers it): the
			// status written so far, 200 if none, as net/http would.
			m.count(ew, time.Since(start))
			ew.ResponseWriter = nil
			m.writers.Put(ew)
		}()
		next.ServeHTTP(ew, req)
	})
}

func (m *endorseMetrics) count(ew *endorseWriter, d time.Duration) {
	status := ew.status
	if status == 0 {
		status = http.StatusOK
	}
	outcome := outcomeOther
	switch {
	case status == http.StatusOK:
		outcome = outcomeIssued
		m.issued[0].Inc()
	case status == http.StatusFound || status == http.StatusSeeOther:
		outcome = outcomeIssued
		m.issued[1].Inc()
	case status >= 400 && status <= 599:
		outcome = outcomeRefused
		m.refused.WithLabelValues(errorCode(ew.prefix), strconv.Itoa(status)).Inc()
	}
	m.latency[outcome].Observe(d.Seconds())
}

// endorseWriter records the status and, of an error answer, a bounded
// prefix of the body.
type endorseWriter struct {
	http.ResponseWriter
	status int
	prefix []byte
}

func (w *endorseWriter) WriteHeader(code int) {
	if w.status == 0 && code >= 200 { // 1xx are interim answers
		w.status = code
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *endorseWriter) Write(b []byte) (int, error) {
	if w.status == 0 {
		w.status = http.StatusOK
	}
	if w.status >= 400 && len(w.prefix) < refusalPrefix {
		if w.prefix == nil {
			w.prefix = make([]byte, 0, refusalPrefix)
		}
		w.prefix = append(w.prefix, b[:min(len(b), refusalPrefix-len(w.prefix))]...)
	}
	return w.ResponseWriter.Write(b)
}

// Unwrap lets http.ResponseController reach the underlying writer.
func (w *endorseWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

// Flush passes a flush on when the underlying writer supports it.
func (w *endorseWriter) Flush() {
	if f, ok := w.ResponseWriter.(http.Flusher); ok {
		if w.status == 0 {
			w.status = http.StatusOK
		}
		f.Flush()
	}
}

// Error codes are label values only when they look like SORACOM API codes:
// letters then digits, at most maxCodeLen, e.g. END0001.
const maxCodeLen = 16

// errorCode reads the "code" member of a JSON error body's prefix; "unknown"
// when there is none or it is not a plausible code, so the label stays
// bounded whatever the handler writes.
func errorCode(b []byte) string {
	i := bytes.Index(b, []byte(`"code"`))
	if i < 0 {
		return "unknown"
	}
	b = skipSpace(b[i+len(`"code"`):])
	if len(b) == 0 || b[0] != ':' {
		return "unknown"
	}
	b = skipSpace(b[1:])
	if len(b) == 0 || b[0] != '"' {
		return "unknown"
	}
	b = b[1:]
	end := bytes.IndexByte(b, '"')
	if end <= 0 || end > maxCodeLen {
		return "unknown"
	}
	for _, c := range b[:end] {
		if !('A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '_' || c == '-') {
			return "unknown"
		}
	}
	return string(b[:end])
}

func skipSpace(b []byte) []byte {
	for len(b) > 0 && (b[0] == ' ' || b[0] == '\t' || b[0] == '\n' || b[0] == '\r') {
		b = b[1:]
	}
	return b
}
