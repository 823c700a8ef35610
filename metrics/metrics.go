// Package metrics owns the Prometheus metrics of a simgate process: a
// registry of its own (never the global default) with the Go and process
// collectors, the AMF's counters and latency histograms, pull-style
// collectors that read the components' Stats snapshots on each scrape (so
// nothing is added to their hot paths), and an HTTP middleware counting the
// Endorse issuer's tokens. Every name starts with simgate_ and carries its
// unit; labels are bounded (no IMSI, SUPI or address labels).
package metrics

import (
	"errors"
	"fmt"
	"net/http"
	"sync"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// namespace prefixes every metric of this package.
const namespace = "simgate"

// latencyBuckets are the histogram buckets of procedure and request
// latencies, in seconds: from half a millisecond on loopback to the
// seconds a retransmitting procedure can take.
var latencyBuckets = []float64{.0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10}

// Registry holds a process's metrics. Its methods are safe for concurrent
// use.
type Registry struct {
	reg *prometheus.Registry

	amfOnce sync.Once
	amf     *amfMetrics
	endOnce sync.Once
	end     *endorseMetrics
}

// New returns a registry with the Go runtime, process and build-info
// collectors.
func New() *Registry {
	reg := prometheus.NewRegistry()
	// These three have fixed, distinct descriptors: registering them on a
	// fresh registry cannot fail.
	reg.MustRegister(
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
		collectors.NewBuildInfoCollector(),
	)
	return &Registry{reg: reg}
}

// Handler serves the metrics in the Prometheus exposition formats (mount it
// at /metrics). A collector that fails is reported in the answer and the
// others are still served.
func (r *Registry) Handler() http.Handler {
	return promhttp.HandlerFor(r.reg, promhttp.HandlerOpts{ErrorHandling: promhttp.ContinueOnError})
}

// Gatherer is the underlying registry, for reading the metrics in-process.
func (r *Registry) Gatherer() prometheus.Gatherer { return r.reg }

// Register adds a collector of another package; it fails if one of its
// descriptors is already registered.
func (r *Registry) Register(c prometheus.Collector) error {
	if err := r.reg.Register(c); err != nil {
		var dup prometheus.AlreadyRegisteredError
		if errors.As(err, &dup) {
			return fmt.Errorf("metrics: collector already registered: %w", err)
		}
		return fmt.Errorf("metrics: register: %w", err)
	}
	return nil
}
