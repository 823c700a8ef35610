package metrics

// End-to-end: the AMF metrics and the pull collectors fed by a real core
// (UDR, UDM, AUSF, AMF, SMF) and UPF on loopback, with UEs and a gNB from
// sim/ran registering and opening PDU sessions.

import (
	"context"
	"testing"
	"time"

	"github.com/simgate/simgate/core/amf"
	"github.com/simgate/simgate/core/ausf"
	"github.com/simgate/simgate/core/n2"
	"github.com/simgate/simgate/core/smf"
	"github.com/simgate/simgate/core/udm"
	"github.com/simgate/simgate/core/udr"
	"github.com/simgate/simgate/gtp/upf"
	"github.com/simgate/simgate/sim/ran"
)

const e2eSeed = "metrics-e2e"

func TestE2ECore(t *testing.T) {
	dir := t.TempDir()
	store, err := udr.OpenDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	keys, err := udm.OpenKeys(dir, nil)
	if err != nil {
		t.Fatal(err)
	}
	// Three SIMs provisioned; the runner's fourth UE is unknown and rejected.
	for _, imsi := range []string{"001010000000001", "001010000000002", "001010000000003"} {
		s := udr.SIM{IMSI: imsi, MNCLen: 2, K: udr.DerivedK([]byte(e2eSeed), imsi), OPc: udr.DerivedOPc([]byte(e2eSeed), imsi), AMF: [2]byte{0x80, 0}}
		if err := store.AddSIM(s); err != nil {
			t.Fatal(err)
		}
	}
	u, err := udm.New(udm.DefaultConfig(), store, keys, nil)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	ucfg := upf.DefaultConfig()
	ucfg.N4Addr, ucfg.N3Addr, ucfg.HeartbeatInterval = "127.0.0.1:0", "127.0.0.1", 0
	up, err := upf.Start(ctx, ucfg, nil)
	if err != nil {
		t.Fatal(err)
	}
	scfg := smf.DefaultConfig()
	scfg.N4Addr, scfg.UPFAddr, scfg.HeartbeatInterval = "127.0.0.1:0", up.Addr().String(), 0
	n4, err := smf.ListenN4(ctx, scfg, nil)
	if err != nil {
		t.Fatal(err)
	}
	s, err := smf.New(scfg, n4, nil)
	if err != nil {
		t.Fatal(err)
	}
	r := New()
	acfg := amf.DefaultConfig()
	acfg.N2 = n2.Config{Transport: n2.TransportUDP, LocalAddr: "127.0.0.1:0", ShutdownTimeout: 300 * time.Millisecond}
	a, err := amf.New(acfg, amf.Deps{AUSF: ausf.New(u, ausf.Options{}), UDM: u, SMF: s, Metrics: r.AMF()})
	if err != nil {
		t.Fatal(err)
	}
	ln, err := n2.Listen(ctx, acfg.N2)
	if err != nil {
		t.Fatal(err)
	}
	served := make(chan error, 1)
	go func() { served <- a.Serve(ctx, ln) }()
	defer func() {
		cancel()
		if err := <-served; err != nil {
			t.Errorf("AMF: %v", err)
		}
		<-up.Done()
		<-n4.Node().Done()
	}()

	pool, ok := s.Pool("internet", 1, "")
	if !ok {
		t.Fatal("no internet pool")
	}
	for _, err := range []error{r.AddAMF(a), r.AddSMF(s, pool), r.AddUPF(up), r.AddPFCP("smf", n4.Node()), r.AddPFCP("upf", up.Node())} {
		if err != nil {
			t.Fatal(err)
		}
	}

	cfg := ran.DefaultConfig()
	cfg.AMF, cfg.UEs, cfg.Rate = ln.Addr().String(), 4, 0
	cfg.IMSIFrom, cfg.Seed = "001010000000001", e2eSeed
	cfg.Timeout = 10 * time.Second
	cfg.N2 = n2.Config{Transport: n2.TransportUDP, ShutdownTimeout: 300 * time.Millisecond}
	attached := false
	runner, err := ran.New(cfg, ran.Options{Attached: func(ran.Report) {
		attached = true
		// While the UEs are attached: gauges read on this scrape.
		want(t, r, 1, "simgate_amf_gnbs")
		want(t, r, 3, "simgate_amf_registered_ues")
		want(t, r, 3, "simgate_smf_ues")
		want(t, r, 3, "simgate_smf_pdu_sessions", "pool", "10.45.0.0/16")
		want(t, r, 3, "simgate_upf_sessions")
	}})
	if err != nil {
		t.Fatal(err)
	}
	rctx, rcancel := context.WithTimeout(ctx, time.Minute)
	defer rcancel()
	rep, err := runner.Run(rctx)
	if err != nil {
		t.Fatal(err)
	}
	if !attached {
		t.Fatal("the runner never reported the UEs attached")
	}
	if rep.Registered != 3 || rep.Sessions != 3 {
		t.Fatalf("report %+v", rep)
	}
	want(t, r, 1, "simgate_amf_procedures_total", "procedure", "ng_setup", "outcome", "success")
	want(t, r, 3, "simgate_amf_procedures_total", "procedure", "registration", "outcome", "success")
	want(t, r, 3, "simgate_amf_procedure_duration_seconds", "procedure", "registration", "outcome", "success")
	want(t, r, 3, "simgate_amf_procedures_total", "procedure", "authentication", "outcome", "success")
	if v := total(t, r, "simgate_amf_procedures_total", "procedure", "registration", "outcome", "reject"); v != 1 {
		t.Errorf("registration rejects %v, want 1", v)
	}
	if v := total(t, r, "simgate_amf_rejects_total", "message", amf.RejectRegistration) +
		total(t, r, "simgate_amf_rejects_total", "message", amf.RejectAuthentication); v != 1 {
		t.Errorf("reject messages %v, want 1 (the unknown SIM)", v)
	}
	// Each PDU session is a PFCP Session Establishment and a Modification
	// (the gNB's tunnel), after the Association Setup; deregistration
	// deletes them.
	eventually(t, r, 0, "simgate_upf_sessions")
	eventually(t, r, 0, "simgate_amf_registered_ues")
	if v, _ := sample(t, r, "simgate_pfcp_requests_received_total", "node", "upf"); v < 1+3*3 {
		t.Errorf("UPF handled %v PFCP requests, want at least 10", v)
	}
	lint(t, r)
}

// total sums the series of name that have labels.
func total(t testing.TB, r *Registry, name string, labels ...string) float64 {
	t.Helper()
	mfs, err := r.Gatherer().Gather()
	if err != nil {
		t.Fatal(err)
	}
	var sum float64
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
	next:
		for _, m := range mf.GetMetric() {
			for i := 0; i+1 < len(labels); i += 2 {
				if !hasLabel(m, labels[i], labels[i+1]) {
					continue next
				}
			}
			sum += m.GetCounter().GetValue()
		}
	}
	return sum
}
