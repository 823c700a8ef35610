package metrics

import (
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil/promlint"
	dto "github.com/prometheus/client_model/go"
)

// sample returns the value of the series name{labels} (counter, gauge or,
// for a histogram, its sample count) and whether it exists.
func sample(t testing.TB, r *Registry, name string, labels ...string) (float64, bool) {
	t.Helper()
	if len(labels)%2 != 0 {
		t.Fatalf("labels %v: want name/value pairs", labels)
	}
	mfs, err := r.Gatherer().Gather()
	if err != nil {
		t.Fatalf("gather: %v", err)
	}
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
	next:
		for _, m := range mf.GetMetric() {
			for i := 0; i < len(labels); i += 2 {
				if !hasLabel(m, labels[i], labels[i+1]) {
					continue next
				}
			}
			switch {
			case m.Counter != nil:
				return m.Counter.GetValue(), true
			case m.Gauge != nil:
				return m.Gauge.GetValue(), true
			case m.Histogram != nil:
				return float64(m.Histogram.GetSampleCount()), true
			}
		}
	}
	return 0, false
}

func hasLabel(m *dto.Metric, name, value string) bool {
	for _, l := range m.GetLabel() {
		if l.GetName() == name {
			return l.GetValue() == value
		}
	}
	return false
}

// want checks that name{labels} is v.
func want(t testing.TB, r *Registry, v float64, name string, labels ...string) {
	t.Helper()
	got, ok := sample(t, r, name, labels...)
	if !ok {
		t.Errorf("%s%v: no such series", name, labels)
		return
	}
	if got != v {
		t.Errorf("%s%v = %v, want %v", name, labels, got, v)
	}
}

// eventually waits (up to 5s) until name{labels} is v, then checks it:
// counters of sockets move when their goroutines have read the datagrams.
func eventually(t testing.TB, r *Registry, v float64, name string, labels ...string) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for time.Now().Before(deadline) {
		if got, ok := sample(t, r, name, labels...); ok && got == v {
			return
		}
		time.Sleep(5 * time.Millisecond)
	}
	want(t, r, v, name, labels...)
}

// lint runs promlint (prometheus/testutil itself needs a module go.sum
// lacks) over the simgate_ metrics: names, units, counters
// ending in _total, help text.
func lint(t testing.TB, r *Registry) {
	t.Helper()
	mfs, err := r.Gatherer().Gather()
	if err != nil {
		t.Fatal(err)
	}
	var ours []*dto.MetricFamily
	for _, mf := range mfs {
		if strings.HasPrefix(mf.GetName(), "simgate_") {
			ours = append(ours, mf)
		}
	}
	if len(ours) == 0 {
		t.Fatal("no simgate_ metrics")
	}
	problems, err := promlint.NewWithMetricFamilies(ours).Lint()
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range problems {
		t.Errorf("lint: %s: %s", p.Metric, p.Text)
	}
}
