package ran

import (
	"math"
	"slices"
	"sync"
	"time"
)

// Report is the outcome of a run, as JSON:
//
//	{"ues": N, "registered": n, "sessions": n, "failures": {"<cause>": n},
//	 "latency_ms": {"registration": {"p50": x, "p90": x, "p99": x, "max": x},
//	                "pdu_session": {...}, "deregistration": {...}},
//	 "deregistered": n, "resyncs": n, "elapsed_s": x}
//
// Failure causes: "5gmm-cause-<n>" (Registration Reject), "5gsm-cause-<n>"
// (PDU session rejected), "auth-reject", "security-mode-reject",
// "timeout", "ng-setup-failure", "n2-lost", "context-released",
// "session-setup-failed", "network-deregistered", "ue-error",
// "not-started" (the run was interrupted first), "deregistration-timeout";
// with Config.Token: "token-http-<status>", "token-dns", "token-timeout",
// "token-refused", "token-reset", "token-connect", "token-cancelled",
// "token-no-session", "token-no-address", "token-malformed", "token-keys"
// (the JWK Set could not be fetched), "token-verify",
// "token-imsi-mismatch", "token-imei-mismatch".
// Keys are added, never renamed.
type Report struct {
	UEs          int                `json:"ues"`
	Registered   int                `json:"registered"`
	Sessions     int                `json:"sessions"`
	Failures     map[string]int     `json:"failures"`
	LatencyMS    map[string]Latency `json:"latency_ms"`
	Deregistered int                `json:"deregistered"`
	// Resyncs counts AUTHENTICATION FAILUREs with #21 (synch failure).
	Resyncs int `json:"resyncs"`
	// Tokens counts the tokens fetched over the user plane that verified
	// and named the UE's IMSI and IMEI (Config.Token).
	Tokens   int     `json:"tokens"`
	ElapsedS float64 `json:"elapsed_s"`
}

// Latency keys of Report.LatencyMS.
const (
	LatencyRegistration   = "registration"   // InitialUEMessage to Registration Accept at the UE
	LatencySession        = "pdu_session"    // PDU Session Establishment Request to Accept at the UE
	LatencyDeregistration = "deregistration" // Deregistration Request to Accept at the UE
	LatencyToken          = "token"          // token request sent as the UE to the token verified
)

// Latency is a latency distribution in milliseconds.
type Latency struct {
	P50 float64 `json:"p50"`
	P90 float64 `json:"p90"`
	P99 float64 `json:"p99"`
	Max float64 `json:"max"`
}

// latencyOf computes nearest-rank percentiles of samples (sorted in place).
func latencyOf(samples []time.Duration) Latency {
	if len(samples) == 0 {
		return Latency{}
	}
	slices.Sort(samples)
	return Latency{
		P50: ms(percentile(samples, 50)), P90: ms(percentile(samples, 90)),
		P99: ms(percentile(samples, 99)), Max: ms(samples[len(samples)-1]),
	}
}

// percentile is the nearest-rank p-th percentile of sorted samples: the
// smallest sample with at least p% of the samples at or below it.
func percentile(sorted []time.Duration, p float64) time.Duration {
	rank := int(math.Ceil(p / 100 * float64(len(sorted))))
	rank = max(1, min(rank, len(sorted)))
	return sorted[rank-1]
}

// ms is d in milliseconds, rounded to the microsecond.
func ms(d time.Duration) float64 { return math.Round(float64(d)/1e3) / 1e3 }

// stats collects a run's outcomes from many goroutines.
type stats struct {
	mu                            sync.Mutex
	started, registered, sessions int
	deregistered, failed, ready   int
	resyncs                       int
	failures                      map[string]int
	tokens                        int
	reg, sess, dereg, token       []time.Duration
}

func newStats() *stats { return &stats{failures: map[string]int{}} }

func (s *stats) fail(cause string) {
	s.mu.Lock()
	s.failures[cause]++
	s.failed++
	s.mu.Unlock()
}

func (s *stats) sample(kind string, d time.Duration) {
	s.mu.Lock()
	switch kind {
	case LatencyRegistration:
		s.registered++
		s.reg = append(s.reg, d)
	case LatencySession:
		s.sessions++
		s.sess = append(s.sess, d)
	case LatencyDeregistration:
		s.deregistered++
		s.dereg = append(s.dereg, d)
	case LatencyToken:
		s.tokens++
		s.token = append(s.token, d)
	}
	s.mu.Unlock()
}

// snapshot is the progress so far.
type snapshot struct {
	started, registered, sessions, failed, deregistered int
}

func (s *stats) snapshot() snapshot {
	s.mu.Lock()
	defer s.mu.Unlock()
	return snapshot{s.started, s.registered, s.sessions, s.failed, s.deregistered}
}

func (s *stats) report(ues int, elapsed time.Duration) Report {
	s.mu.Lock()
	defer s.mu.Unlock()
	r := Report{
		UEs: ues, Registered: s.registered, Sessions: s.sessions, Deregistered: s.deregistered, Resyncs: s.resyncs,
		Failures: make(map[string]int, len(s.failures)),
		LatencyMS: map[string]Latency{
			LatencyRegistration:   latencyOf(slices.Clone(s.reg)),
			LatencySession:        latencyOf(slices.Clone(s.sess)),
			LatencyDeregistration: latencyOf(slices.Clone(s.dereg)),
			LatencyToken:          latencyOf(slices.Clone(s.token)),
		},
		Tokens:   s.tokens,
		ElapsedS: math.Round(elapsed.Seconds()*1e3) / 1e3,
	}
	for k, v := range s.failures {
		r.Failures[k] = v
	}
	return r
}
