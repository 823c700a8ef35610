package metrics

import (
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/simgate/simgate/core/amf"
)

// knownProcedures and knownOutcomes are resolved to their series once, so
// that counting one is a read-only map lookup and an atomic add.
var (
	knownProcedures = []amf.Procedure{
		amf.ProcNGSetup, amf.ProcRegistration, amf.ProcAuthentication, amf.ProcSecurityMode,
		amf.ProcIdentification, amf.ProcDeregistrationUE, amf.ProcDeregistrationNW,
		amf.ProcSessionEstablish, amf.ProcSessionRelease, amf.ProcUEContextRelease,
		amf.ProcInitialContextSetup,
	}
	knownOutcomes = []amf.Outcome{amf.Success, amf.Reject, amf.Failure, amf.Timeout}
)

// maxLabelLen bounds a label value taken from a caller's string: longer
// values are cut, so that no series carries an unbounded name.
const maxLabelLen = 64

type procKey struct {
	p amf.Procedure
	o amf.Outcome
}

type procSeries struct {
	count   prometheus.Counter
	latency prometheus.Observer
}

// amfMetrics implements amf.Metrics.
type amfMetrics struct {
	procs   *prometheus.CounterVec
	latency *prometheus.HistogramVec
	rejects *prometheus.CounterVec
	dropped *prometheus.CounterVec
	known   map[procKey]procSeries // read-only after construction
}

var _ amf.Metrics = (*amfMetrics)(nil)

// AMF returns the AMF's metrics (amf.Deps.Metrics):
//
//	simgate_amf_procedures_total{procedure,outcome}
//	simgate_amf_procedure_duration_seconds{procedure,outcome} (when the AMF knows it)
//	simgate_amf_rejects_total{message,cause}  (5GMM cause, TS 24.501 9.11.3.2; NGAP cause for ng_setup_failure)
//	simgate_amf_dropped_messages_total{protocol,reason}
//
// It registers them on the first call; later calls return the same
// metrics, so core may be built more than once in a process.
func (r *Registry) AMF() amf.Metrics {
	r.amfOnce.Do(func() { r.amf = newAMFMetrics(r.reg) })
	return r.amf
}

func newAMFMetrics(reg prometheus.Registerer) *amfMetrics {
	m := &amfMetrics{
		procs: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: namespace, Subsystem: "amf", Name: "procedures_total",
			Help: "AMF procedures finished, by procedure and outcome.",
		}, []string{"procedure", "outcome"}),
		latency: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Namespace: namespace, Subsystem: "amf", Name: "procedure_duration_seconds",
			Help:    "Duration of AMF procedures whose duration is known (registration: Initial UE Message to Registration Complete).",
			Buckets: latencyBuckets,
		}, []string{"procedure", "outcome"}),
		rejects: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: namespace, Subsystem: "amf", Name: "rejects_total",
			Help: "Rejects sent by the AMF, by message and cause (5GMM cause of TS 24.501 9.11.3.2; NGAP cause for NG Setup Failure).",
		}, []string{"message", "cause"}),
		dropped: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: namespace, Subsystem: "amf", Name: "dropped_messages_total",
			Help: "Received NGAP and NAS messages the AMF discarded, by protocol and reason.",
		}, []string{"protocol", "reason"}),
		known: make(map[procKey]procSeries, len(knownProcedures)*len(knownOutcomes)),
	}
	reg.MustRegister(m.procs, m.latency, m.rejects, m.dropped) // once per Registry: names are fresh
	for _, p := range knownProcedures {
		for _, o := range knownOutcomes {
			m.known[procKey{p, o}] = procSeries{
				count:   m.procs.WithLabelValues(string(p), string(o)),
				latency: m.latency.WithLabelValues(string(p), string(o)),
			}
		}
	}
	return m
}

// Procedure counts a finished procedure and observes d when it is known.
func (m *amfMetrics) Procedure(p amf.Procedure, o amf.Outcome, d time.Duration) {
	s, ok := m.known[procKey{p, o}]
	if !ok {
		pl, ol := boundLabel(string(p)), boundLabel(string(o))
		s = procSeries{count: m.procs.WithLabelValues(pl, ol), latency: m.latency.WithLabelValues(pl, ol)}
	}
	s.count.Inc()
	if d > 0 {
		s.latency.Observe(d.Seconds())
	}
}

// Reject counts a reject by message and cause.
func (m *amfMetrics) Reject(msg string, cause uint8) {
	m.rejects.WithLabelValues(boundLabel(msg), strconv.Itoa(int(cause))).Inc()
}

// Dropped counts a discarded message.
func (m *amfMetrics) Dropped(protocol, reason string) {
	m.dropped.WithLabelValues(boundLabel(protocol), boundLabel(reason)).Inc()
}

// boundLabel makes a caller's string a safe label value: valid UTF-8
// (invalid bytes become '?') and at most maxLabelLen bytes, cut at a rune
// boundary; the empty string becomes "none".
func boundLabel(s string) string {
	if s == "" {
		return "none"
	}
	if !utf8.ValidString(s) {
		s = strings.ToValidUTF8(s, "?")
	}
	if len(s) <= maxLabelLen {
		return s
	}
	n := maxLabelLen
	for n > 0 && s[n]&0xC0 == 0x80 { // continuation byte: back to the rune start
		n--
	}
	return s[:n]
}
