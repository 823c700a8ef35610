package metrics

import (
	"strings"
	"testing"
	"time"

	"github.com/simgate/simgate/core/amf"
)

func TestAMFMetrics(t *testing.T) {
	r := New()
	m := r.AMF()
	if r.AMF() != m {
		t.Fatal("AMF() twice: want the same metrics")
	}
	m.Procedure(amf.ProcRegistration, amf.Success, 12*time.Millisecond)
	m.Procedure(amf.ProcRegistration, amf.Success, 30*time.Millisecond)
	m.Procedure(amf.ProcRegistration, amf.Reject, 3*time.Millisecond)
	m.Procedure(amf.ProcAuthentication, amf.Success, 0) // duration unknown: counted, not observed
	m.Procedure("future_procedure", amf.Timeout, time.Second)
	m.Reject(amf.RejectRegistration, 7) // #7 5GS services not allowed (TS 24.501 9.11.3.2)
	m.Reject(amf.RejectRegistration, 7)
	m.Reject(amf.RejectAuthentication, 0)
	m.Dropped("nas", "mac_failure")
	m.Dropped("ngap", strings.Repeat("x", 300)) // cut to maxLabelLen
	m.Dropped("ngap", "bad\xffutf8")            // made valid, no panic
	m.Dropped("", "")

	tests := []struct {
		v      float64
		name   string
		labels []string
	}{
		{2, "simgate_amf_procedures_total", []string{"procedure", "registration", "outcome", "success"}},
		{1, "simgate_amf_procedures_total", []string{"procedure", "registration", "outcome", "reject"}},
		{1, "simgate_amf_procedures_total", []string{"procedure", "authentication", "outcome", "success"}},
		{0, "simgate_amf_procedures_total", []string{"procedure", "ng_setup", "outcome", "failure"}},
		{1, "simgate_amf_procedures_total", []string{"procedure", "future_procedure", "outcome", "timeout"}},
		{2, "simgate_amf_procedure_duration_seconds", []string{"procedure", "registration", "outcome", "success"}},
		{1, "simgate_amf_procedure_duration_seconds", []string{"procedure", "registration", "outcome", "reject"}},
		{0, "simgate_amf_procedure_duration_seconds", []string{"procedure", "authentication", "outcome", "success"}},
		{2, "simgate_amf_rejects_total", []string{"message", "registration_reject", "cause", "7"}},
		{1, "simgate_amf_rejects_total", []string{"message", "authentication_reject", "cause", "0"}},
		{1, "simgate_amf_dropped_messages_total", []string{"protocol", "nas", "reason", "mac_failure"}},
		{1, "simgate_amf_dropped_messages_total", []string{"protocol", "ngap", "reason", strings.Repeat("x", maxLabelLen)}},
		{1, "simgate_amf_dropped_messages_total", []string{"protocol", "ngap", "reason", "bad?utf8"}},
		{1, "simgate_amf_dropped_messages_total", []string{"protocol", "none", "reason", "none"}},
	}
	for _, tc := range tests {
		want(t, r, tc.v, tc.name, tc.labels...)
	}
	// The latency sum is the durations observed: 42 ms for the successes.
	mfs, err := r.Gatherer().Gather()
	if err != nil {
		t.Fatal(err)
	}
	var sum float64
	for _, mf := range mfs {
		if mf.GetName() != "simgate_amf_procedure_duration_seconds" {
			continue
		}
		for _, s := range mf.GetMetric() {
			if hasLabel(s, "procedure", "registration") && hasLabel(s, "outcome", "success") {
				sum = s.GetHistogram().GetSampleSum()
			}
		}
	}
	if d := sum - 0.042; d > 1e-9 || d < -1e-9 {
		t.Errorf("registration latency sum %v, want 0.042", sum)
	}
	lint(t, r)
}

func TestBoundLabel(t *testing.T) {
	tests := []struct{ in, want string }{
		{"", "none"},
		{"mac_failure", "mac_failure"},
		{strings.Repeat("a", 70), strings.Repeat("a", 64)},
		{strings.Repeat("a", 63) + "é", strings.Repeat("a", 63)}, // é is 2 bytes: cut before it
		{"a\xffb", "a?b"},
	}
	for _, tc := range tests {
		if got := boundLabel(tc.in); got != tc.want {
			t.Errorf("boundLabel(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
}

func BenchmarkAMFProcedure(b *testing.B) {
	m := New().AMF()
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			m.Procedure(amf.ProcRegistration, amf.Success, 5*time.Millisecond)
		}
	})
}

func BenchmarkAMFReject(b *testing.B) {
	m := New().AMF()
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			m.Reject(amf.RejectRegistration, 7)
		}
	})
}
