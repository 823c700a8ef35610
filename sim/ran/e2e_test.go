package ran

// End-to-end tests: the runner's UEs (sim/ue) and gNBs (sim/gnb) against
// the real core on loopback: the subscriber store (core/udr) in a temporary
// data directory, UDM, AUSF, AMF, SMF and the UPF (gtp/upf) over PFCP.

import (
	"context"
	"fmt"
	"log/slog"
	"maps"
	"net/netip"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/simgate/simgate/core/amf"
	"github.com/simgate/simgate/core/ausf"
	"github.com/simgate/simgate/core/n2"
	"github.com/simgate/simgate/core/smf"
	"github.com/simgate/simgate/core/udm"
	"github.com/simgate/simgate/core/udr"
	"github.com/simgate/simgate/gtp/upf"
	"github.com/simgate/simgate/sim/gnb"
	"github.com/simgate/simgate/sim/suci"
	"github.com/simgate/simgate/sim/ue"
)

// e2eSeed derives the test subscribers' keys (as `k: derive`).
const e2eSeed = "e2e"

// core is a running 5G core over a data directory.
type core struct {
	t       testing.TB
	dir     string
	store   *udr.Store
	keys    *udm.Keys
	amf     *amf.AMF
	upf     *upf.UPF
	addr    string
	metrics *coreMetrics
	logs    *logBuf

	cancel context.CancelFunc
	done   chan error
	n4Done <-chan struct{}
}

type coreMetrics struct {
	mu      sync.Mutex
	rejects map[string]int
	drops   map[string]int
}

func (m *coreMetrics) Procedure(amf.Procedure, amf.Outcome, time.Duration) {}
func (m *coreMetrics) Reject(msg string, cause uint8) {
	m.mu.Lock()
	m.rejects[fmt.Sprintf("%s/%d", msg, cause)]++
	m.mu.Unlock()
}
func (m *coreMetrics) Dropped(protocol, reason string) {
	m.mu.Lock()
	m.drops[protocol]++
	m.mu.Unlock()
}
func (m *coreMetrics) dropped(protocol string) int {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.drops[protocol]
}

type logBuf struct {
	mu sync.Mutex
	b  []byte
}

func (l *logBuf) Write(p []byte) (int, error) {
	l.mu.Lock()
	l.b = append(l.b, p...)
	l.mu.Unlock()
	return len(p), nil
}

func (l *logBuf) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return string(l.b)
}

// startCore starts the core over dir; mod changes the AMF configuration.
func startCore(t testing.TB, dir string, mod ...func(*amf.Config)) *core {
	t.Helper()
	c := &core{t: t, dir: dir, metrics: &coreMetrics{rejects: map[string]int{}, drops: map[string]int{}}, logs: &logBuf{},
		done: make(chan error, 1)}
	log := slog.New(slog.NewTextHandler(c.logs, &slog.HandlerOptions{Level: slog.LevelInfo}))
	var err error
	if c.store, err = udr.OpenDir(dir); err != nil {
		t.Fatal(err)
	}
	if c.keys, err = udm.OpenKeys(dir, log); err != nil {
		t.Fatal(err)
	}
	u, err := udm.New(udm.DefaultConfig(), c.store, c.keys, nil)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	c.cancel = cancel
	ucfg := upf.DefaultConfig()
	ucfg.N4Addr, ucfg.N3Addr, ucfg.HeartbeatInterval = "127.0.0.1:0", "127.0.0.1", 0
	if c.upf, err = upf.Start(ctx, ucfg, log); err != nil {
		t.Fatal(err)
	}
	scfg := smf.DefaultConfig()
	scfg.N4Addr, scfg.UPFAddr, scfg.HeartbeatInterval = "127.0.0.1:0", c.upf.Addr().String(), 0
	n4, err := smf.ListenN4(ctx, scfg, log)
	if err != nil {
		t.Fatal(err)
	}
	c.n4Done = n4.Node().Done()
	s, err := smf.New(scfg, n4, log)
	if err != nil {
		t.Fatal(err)
	}
	acfg := amf.DefaultConfig()
	acfg.N2 = n2.Config{Transport: n2.TransportUDP, LocalAddr: "127.0.0.1:0", ShutdownTimeout: 300 * time.Millisecond}
	for _, m := range mod {
		m(&acfg)
	}
	if c.amf, err = amf.New(acfg, amf.Deps{AUSF: ausf.New(u, ausf.Options{}), UDM: u, SMF: s, Logger: log, Metrics: c.metrics}); err != nil {
		t.Fatal(err)
	}
	ln, err := n2.Listen(ctx, acfg.N2)
	if err != nil {
		t.Fatal(err)
	}
	c.addr = ln.Addr().String()
	go func() { c.done <- c.amf.Serve(ctx, ln) }()
	t.Cleanup(c.stop)
	return c
}

// stop stops the core (again: a no-op) and closes its store.
func (c *core) stop() {
	if c.cancel == nil {
		return
	}
	c.cancel()
	c.cancel = nil
	select {
	case err := <-c.done:
		if err != nil {
			c.t.Errorf("AMF: %v", err)
		}
	case <-time.After(10 * time.Second):
		c.t.Error("AMF did not stop")
	}
	<-c.upf.Done()
	<-c.n4Done
	if err := c.store.Close(); err != nil {
		c.t.Error(err)
	}
	if c.t.Failed() {
		c.t.Logf("core log:\n%s", c.logs.String())
	}
}

// provision adds count SIMs from first, with derived keys and MSISDN
// 8190<last 8 IMSI digits>, and returns their SIM file.
func (c *core) provision(first string, count int, mod ...func(*udr.SIM)) *udr.SIMFile {
	c.t.Helper()
	f := &udr.SIMFile{Version: udr.SIMFileVersion}
	imsi := first
	for i := range count {
		if i > 0 {
			imsi, _ = increment(imsi)
		}
		s := udr.SIM{IMSI: imsi, MNCLen: 2, K: udr.DerivedK([]byte(e2eSeed), imsi), OPc: udr.DerivedOPc([]byte(e2eSeed), imsi),
			AMF: [2]byte{0x80, 0}, MSISDN: "8190" + imsi[len(imsi)-8:]}
		for _, m := range mod {
			m(&s)
		}
		if err := c.store.AddSIM(s); err != nil {
			c.t.Fatal(err)
		}
		stored, err := c.store.GetSIM(imsi)
		if err != nil {
			c.t.Fatal(err)
		}
		f.SIMs = append(f.SIMs, udr.CardOf(stored))
	}
	return f
}

// e2eConfig is a run against c.
func e2eConfig(t testing.TB, c *core, ues int) Config {
	cfg := DefaultConfig()
	cfg.AMF, cfg.UEs, cfg.Rate = c.addr, ues, 0
	cfg.Seed = e2eSeed
	cfg.Timeout = 10 * time.Second
	cfg.N2 = n2.Config{Transport: n2.TransportUDP, ShutdownTimeout: 300 * time.Millisecond}
	return cfg
}

// runE2E runs cfg; check, if set, runs while the UEs are attached.
func runE2E(t *testing.T, cfg Config, opt Options, check func(*Runner, Report)) (*Runner, Report) {
	t.Helper()
	if opt.Logger == nil {
		opt.Logger = testLogger(t)
	}
	var r *Runner
	if check != nil {
		opt.Attached = func(rep Report) { check(r, rep) }
	}
	r, err := New(cfg, opt)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	rep, err := r.Run(ctx)
	if err != nil {
		t.Fatal(err)
	}
	return r, rep
}

// checkUPF checks every attached UE's PFCP session: User ID, UE address
// and both tunnels as the gNB holds them.
func checkUPF(t *testing.T, c *core, r *Runner, msisdn map[string]string) {
	t.Helper()
	for _, res := range r.Results() {
		if res.Failure != "" {
			continue
		}
		if len(res.Sessions) != 1 {
			t.Errorf("%s: %d sessions at the gNB", res.IMSI, len(res.Sessions))
			continue
		}
		gs := res.Sessions[0]
		var s *upf.Session
		// The downlink tunnel arrives with the PFCP modification that
		// follows the gNB's response: wait for it.
		deadline := time.Now().Add(5 * time.Second)
		for {
			s, _ = c.upf.Sessions().LookupByAddr(gs.UEAddr)
			if (s != nil && s.Downlink.TEID != 0) || time.Now().After(deadline) {
				break
			}
			time.Sleep(5 * time.Millisecond)
		}
		if s == nil {
			t.Errorf("%s: no PFCP session for UE address %s", res.IMSI, gs.UEAddr)
			continue
		}
		if s.IMSI != res.IMSI || s.IMEI != res.IMEI || s.MSISDN != msisdn[res.IMSI] {
			t.Errorf("%s: PFCP User ID %+v, want IMEI %s MSISDN %s", res.IMSI, s.UserID, res.IMEI, msisdn[res.IMSI])
		}
		if !netip.MustParsePrefix("10.45.0.0/16").Contains(gs.UEAddr) {
			t.Errorf("%s: UE address %s outside the DNN pool", res.IMSI, gs.UEAddr)
		}
		if s.Uplink.TEID != gs.ULTEID || s.Uplink.Addr != gs.UPF || s.Downlink.TEID != gs.DLTEID || s.Downlink.Addr != gs.GNB {
			t.Errorf("%s: PFCP tunnels UL %+v DL %+v, gNB session %+v", res.IMSI, s.Uplink, s.Downlink, gs)
		}
	}
}

func msisdns(f *udr.SIMFile) map[string]string {
	m := map[string]string{}
	for _, c := range f.SIMs {
		m[c.IMSI] = c.MSISDN
	}
	return m
}

func writeSIMFile(t testing.TB, f *udr.SIMFile) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "sims.json")
	if err := udr.WriteSIMFile(path, f); err != nil {
		t.Fatal(err)
	}
	return path
}

// TestE2ESUCISchemes: UEs register with each SUCI scheme, open a session
// the UPF knows by IMSI, IMEI and MSISDN, and deregister.
func TestE2ESUCISchemes(t *testing.T) {
	c := startCore(t, t.TempDir())
	f := c.provision("001010000000101", 4)
	for _, pk := range append([]udm.PublicKey{{Scheme: suci.SchemeNull}}, c.keys.Public()...) {
		t.Run(pk.Scheme.String(), func(t *testing.T) {
			cfg := e2eConfig(t, c, 4)
			cfg.SIMFile = writeSIMFile(t, f)
			cfg.SUCI = SUCIConfig{Scheme: pk.Scheme.String()}
			if pk.Key != nil {
				cfg.SUCI.KeyID, cfg.SUCI.PublicKey = pk.ID, pk.Key.Hex()
			}
			_, rep := runE2E(t, cfg, Options{}, func(r *Runner, rep Report) {
				if got := c.amf.Stats().Registered; got != 4 {
					t.Errorf("AMF holds %d registered UEs, want 4", got)
				}
				checkUPF(t, c, r, msisdns(f))
			})
			if rep.Registered != 4 || rep.Sessions != 4 || rep.Deregistered != 4 || len(rep.Failures) != 0 {
				t.Errorf("report %+v", rep)
			}
			// Deregistration released the sessions and the contexts.
			waitFor(t, "sessions released", func() bool { return c.upf.Sessions().Len() == 0 && c.amf.Stats().Registered == 0 })
		})
	}
}

func waitFor(t testing.TB, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// TestE2EAlgorithms: every NIA/NEA pair is selected when it is the one the
// UE supports.
func TestE2EAlgorithms(t *testing.T) {
	c := startCore(t, t.TempDir())
	c.provision("001010000000201", 1)
	for _, nia := range []string{"NIA1", "NIA2", "NIA3"} {
		for _, nea := range []string{"NEA0", "NEA1", "NEA2", "NEA3"} {
			t.Run(nia+"+"+nea, func(t *testing.T) {
				cfg := e2eConfig(t, c, 1)
				cfg.IMSIFrom, cfg.Integrity, cfg.Ciphering = "001010000000201", []string{nia}, []string{nea}
				_, rep := runE2E(t, cfg, Options{}, func(_ *Runner, _ Report) {
					info, err := c.amf.UE(context.Background(), "imsi-001010000000201")
					if err != nil {
						t.Fatal(err)
					}
					if info.Integrity != nia || info.Ciphering != nea {
						t.Errorf("AMF selected %s + %s", info.Integrity, info.Ciphering)
					}
				})
				if rep.Registered != 1 || rep.Sessions != 1 || rep.Deregistered != 1 {
					t.Errorf("report %+v", rep)
				}
			})
		}
	}
}

// misbehaving makes the runner's UEs deviate.
func misbehaving(m ue.Misbehave) NewUEFunc {
	return func(c ue.Config) (UE, error) {
		c.Misbehave = m
		return newSimUE(c)
	}
}

// TestE2ERejects: each reject of the contract, as the runner counts it.
func TestE2ERejects(t *testing.T) {
	c := startCore(t, t.TempDir())
	c.provision("001010000000301", 2)                                                      // fine
	c.provision("001010000000311", 1, func(s *udr.SIM) { s.Status = udr.StatusInactive })  // #3
	c.provision("001010000000321", 1, func(s *udr.SIM) { s.IMEILock = "490154203237518" }) // #5
	c.provision("999010000000331", 1)                                                      // #11
	wrongK := c.provision("001010000000341", 1)
	wrongK.SIMs[0].K[0] ^= 1 // the USIM's K differs: MAC failure
	tests := []struct {
		name  string
		mod   func(*Config)
		newUE NewUEFunc
		want  map[string]int
	}{
		{"unknown subscriber", func(c *Config) { c.IMSIFrom = "001010000000399" }, nil, map[string]int{"5gmm-cause-7": 1}},
		{"inactive", func(c *Config) { c.IMSIFrom = "001010000000311" }, nil, map[string]int{"5gmm-cause-3": 1}},
		{"IMEI lock", func(c *Config) { c.IMSIFrom = "001010000000321" }, nil, map[string]int{"5gmm-cause-5": 1}},
		{"PLMN not served", func(c *Config) { c.IMSIFrom = "999010000000331" }, nil, map[string]int{"5gmm-cause-11": 1}},
		{"wrong RES*", func(c *Config) { c.IMSIFrom = "001010000000301" }, misbehaving(ue.Misbehave{WrongRES: true}),
			map[string]int{"auth-reject": 1}},
		{"USIM MAC failure", func(c *Config) { c.SIMFile = writeSIMFile(t, wrongK) }, nil, map[string]int{"auth-reject": 1}},
		{"NAS MAC failure on SMC complete", func(c *Config) { c.IMSIFrom = "001010000000301" },
			misbehaving(ue.Misbehave{TamperMAC: true}), map[string]int{"5gmm-cause-24": 1}},
		{"gNB PLMN not served", func(c *Config) { c.IMSIFrom, c.MCC = "001010000000301", "999" }, nil,
			map[string]int{"ng-setup-failure": 1}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := e2eConfig(t, c, 1)
			tt.mod(&cfg)
			if cfg.SIMFile != "" {
				cfg.UEs = 0
			}
			_, rep := runE2E(t, cfg, Options{NewUE: tt.newUE}, nil)
			if rep.Registered != 0 || !maps.Equal(rep.Failures, tt.want) {
				t.Errorf("report %+v, want failures %v", rep, tt.want)
			}
		})
	}
	// Replayed uplink NAS is dropped and logged, and nothing else happens:
	// the UEs attach.
	t.Run("replayed NAS", func(t *testing.T) {
		before := c.metrics.dropped("nas")
		cfg := e2eConfig(t, c, 2)
		cfg.IMSIFrom = "001010000000301"
		_, rep := runE2E(t, cfg, Options{NewUE: misbehaving(ue.Misbehave{ReplayNAS: true})}, nil)
		if rep.Registered != 2 || rep.Sessions != 2 || len(rep.Failures) != 0 {
			t.Errorf("report %+v", rep)
		}
		if c.metrics.dropped("nas") == before {
			t.Error("the AMF dropped no replayed NAS message")
		}
	})
}

// TestE2EResyncAndRestart: a USIM ahead of the network resynchronises; after
// a core restart over the same data directory the UEs register again with
// fresh SQNs, and the SIM file follows the USIMs.
func TestE2EResyncAndRestart(t *testing.T) {
	dir := t.TempDir()
	c := startCore(t, dir)
	f := c.provision("001010000000401", 3)
	// The USIMs have seen SQNs far beyond the network's SQN_HE (0), in
	// the array entry of IND 1, which the AuC's next SQN takes (TS 33.102
	// C.1.2): that SQN is not fresh, the USIM sends AUTS.
	const ahead = 0x4000<<5 | 1
	for i := range f.SIMs {
		f.SIMs[i].SQN = ahead
	}
	path := writeSIMFile(t, f)
	cfg := e2eConfig(t, c, 0)
	cfg.SIMFile = path
	_, rep := runE2E(t, cfg, Options{}, nil)
	if rep.Registered != 3 || rep.Resyncs != 3 || len(rep.Failures) != 0 {
		t.Fatalf("report %+v", rep)
	}
	first := sqns(t, c, path)
	for imsi, s := range first {
		if s.usim <= ahead || s.usim != s.he {
			t.Errorf("%s after resync: USIM SQN %#x, SQN_HE %#x", imsi, s.usim, s.he)
		}
	}
	c.stop()

	c = startCore(t, dir)
	cfg.AMF = c.addr
	_, rep = runE2E(t, cfg, Options{}, nil)
	if rep.Registered != 3 || rep.Resyncs != 0 || len(rep.Failures) != 0 {
		t.Fatalf("report after restart %+v", rep)
	}
	for imsi, s := range sqns(t, c, path) {
		if s.he <= first[imsi].he || s.usim != s.he {
			t.Errorf("%s after restart: SQN_HE %#x (was %#x), USIM %#x", imsi, s.he, first[imsi].he, s.usim)
		}
	}
}

type sqnPair struct{ usim, he uint64 }

// sqns reads each SIM's SQN from the SIM file (the USIM's) and the store
// (SQN_HE).
func sqns(t testing.TB, c *core, path string) map[string]sqnPair {
	t.Helper()
	f, err := udr.ReadSIMFile(path)
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]sqnPair{}
	for _, card := range f.SIMs {
		s, err := c.store.GetSIM(card.IMSI)
		if err != nil {
			t.Fatal(err)
		}
		out[card.IMSI] = sqnPair{usim: card.SQN, he: s.SQN}
	}
	return out
}

// driver drives one sim/ue UE through one sim/gnb gNB by hand, to reach
// what the runner does not do: PDU session release, registration with the
// 5G-GUTI, network-initiated deregistration.
type driver struct {
	t    *testing.T
	ue   *ue.UE
	g    *gnb.GNB
	gu   *gnb.UE
	ueEv chan ue.Event
	gEv  chan gnb.Event
}

func newDriver(t *testing.T, c *core, card udr.SIMCard) *driver {
	d := &driver{t: t, ueEv: make(chan ue.Event, 64), gEv: make(chan gnb.Event, 64)}
	cfg := ue.FromCard(card)
	cfg.IMEISV = imeiOf(card, "35693803")[:14] + "00"
	cfg.OnEvent = func(e ue.Event) { d.ueEv <- e }
	var err error
	if d.ue, err = ue.New(cfg); err != nil {
		t.Fatal(err)
	}
	gc := gnb.DefaultConfig()
	gc.N2 = n2.Config{Transport: n2.TransportUDP, ShutdownTimeout: 300 * time.Millisecond}
	gc.Logger = testLogger(t)
	if d.g, err = gnb.Dial(context.Background(), gc, c.addr, gnb.HandlerFunc(func(_ *gnb.UE, ev gnb.Event) { d.gEv <- ev })); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = d.g.Close() })
	return d
}

// waitUE waits for a UE event of kind k, failing on a reject.
func (d *driver) waitUE(k ue.EventKind) ue.Event {
	d.t.Helper()
	for {
		select {
		case e := <-d.ueEv:
			if e.Kind == k {
				return e
			}
			switch e.Kind {
			case ue.EventRegistrationRejected, ue.EventAuthenticationRejected, ue.EventSessionRejected:
				d.t.Fatalf("UE event %v (cause %d) while waiting for %v", e.Kind, e.Cause, k)
			}
		case <-time.After(10 * time.Second):
			d.t.Fatalf("no UE event %v", k)
		}
	}
}

func (d *driver) waitGNB(k gnb.EventKind) gnb.Event {
	d.t.Helper()
	for {
		select {
		case e := <-d.gEv:
			if e.Kind == k {
				return e
			}
		case <-time.After(10 * time.Second):
			d.t.Fatalf("no gNB event %v", k)
		}
	}
}

// send runs a UE call on the UE's worker and sends its uplink NAS.
func (d *driver) send(call func() ([]byte, error)) {
	d.t.Helper()
	errc := make(chan error, 1)
	err := d.gu.Do(func() {
		pdu, err := call()
		if err == nil {
			err = d.gu.SendNAS(pdu)
		}
		errc <- err
	})
	if err == nil {
		err = <-errc
	}
	if err != nil {
		d.t.Fatal(err)
	}
}

// addressed tells the gNB the addresses the UE learnt.
type addressed struct{ *ue.UE }

func (a addressed) SessionAddr(psi uint8) (netip.Addr, bool) {
	s, ok := a.State().Sessions[psi]
	return s.IPv4, ok && s.IPv4.IsValid()
}

func (d *driver) register() {
	d.t.Helper()
	pdu, err := d.ue.RegistrationRequest()
	if err != nil {
		d.t.Fatal(err)
	}
	if d.gu, err = d.g.Attach(addressed{d.ue}, pdu); err != nil {
		d.t.Fatal(err)
	}
	d.waitUE(ue.EventRegistered)
	d.waitGNB(gnb.EventContextSetup)
	d.waitGNB(gnb.EventNAS) // the Registration Accept, answered
}

// TestE2ESessionsAndDeregistration: an uplink failing the NAS MAC check, a
// PDU session up and down, UE-initiated
// deregistration, registration again with the 5G-GUTI, and network-initiated
// deregistration.
func TestE2ESessionsAndDeregistration(t *testing.T) {
	c := startCore(t, t.TempDir())
	f := c.provision("001010000000501", 1)
	d := newDriver(t, c, f.SIMs[0])
	supi := "imsi-001010000000501"

	d.register()
	if st := d.ue.State(); !st.HasGUTI || st.State != ue.Registered {
		t.Fatalf("UE state %+v", st)
	}
	// An uplink NAS message whose MAC fails is dropped and logged, and
	// nothing else happens (flow.md rejects). TS 24.501 9.1.1: the MAC
	// follows the extended protocol discriminator and the security header
	// type.
	dropped := c.metrics.dropped("nas")
	d.send(func() ([]byte, error) {
		b, err := d.ue.EstablishSession(5)
		if err == nil {
			b[3] ^= 0xff
		}
		return b, err
	})
	waitFor(t, "the AMF to drop the tampered message", func() bool { return c.metrics.dropped("nas") > dropped })
	select {
	case ev := <-d.gEv:
		t.Fatalf("gNB event %v after a tampered uplink", ev.Kind)
	case ev := <-d.ueEv:
		t.Fatalf("UE event %v after a tampered uplink", ev.Kind)
	case <-time.After(200 * time.Millisecond):
	}
	if info, err := c.amf.UE(context.Background(), supi); err != nil || !info.Registered || len(info.Sessions) != 0 {
		t.Fatalf("AMF UE after a tampered uplink: %+v %v", info, err)
	}

	d.send(func() ([]byte, error) { return d.ue.EstablishSession(1) })
	d.waitUE(ue.EventSessionEstablished)
	d.waitGNB(gnb.EventSessionSetup)
	s, ok := d.gu.Session(1)
	if !ok || !s.UEAddr.IsValid() {
		t.Fatalf("gNB session %+v", s)
	}
	waitFor(t, "the UPF session", func() bool {
		us, ok := c.upf.Sessions().LookupByAddr(s.UEAddr)
		return ok && us.Downlink.TEID == s.DLTEID && us.Uplink.TEID == s.ULTEID
	})

	// Session down: release command, resources released, complete.
	d.send(func() ([]byte, error) { return d.ue.ReleaseSession(1) })
	d.waitUE(ue.EventSessionReleased)
	d.waitGNB(gnb.EventSessionReleased)
	if _, ok := d.gu.Session(1); ok {
		t.Error("gNB still holds the released session")
	}
	waitFor(t, "the UPF session deleted", func() bool { return c.upf.Sessions().Len() == 0 })
	if info, err := c.amf.UE(context.Background(), supi); err != nil || len(info.Sessions) != 0 {
		t.Errorf("AMF UE %+v %v", info, err)
	}

	// UE-initiated deregistration: accept, context released.
	d.send(func() ([]byte, error) { return d.ue.Deregister(false) })
	d.waitUE(ue.EventDeregistered)
	d.waitGNB(gnb.EventReleased)
	waitFor(t, "the AMF to forget the UE", func() bool { return c.amf.Stats().Registered == 0 })

	// Again, with the 5G-GUTI the AMF handed out.
	d.register()
	d.send(func() ([]byte, error) { return d.ue.EstablishSession(2) })
	d.waitUE(ue.EventSessionEstablished)
	d.waitGNB(gnb.EventSessionSetup)
	if info, err := c.amf.UE(context.Background(), supi); err != nil || !info.Registered {
		t.Fatalf("AMF UE %+v %v", info, err)
	}

	// Network-initiated deregistration releases the session and the context.
	if err := c.amf.Deregister(context.Background(), supi); err != nil {
		t.Fatal(err)
	}
	d.waitUE(ue.EventDeregistered)
	d.waitGNB(gnb.EventReleased)
	waitFor(t, "sessions and contexts released", func() bool {
		return c.upf.Sessions().Len() == 0 && c.amf.Stats().Registered == 0 && d.g.UEs() == 0
	})
}
