package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"path/filepath"
	"slices"
	"sync"
	"time"

	"github.com/spf13/cobra"

	"github.com/simgate/simgate/capture"
	"github.com/simgate/simgate/core"
	"github.com/simgate/simgate/core/udr"
	"github.com/simgate/simgate/endorse"
	"github.com/simgate/simgate/endorse/beam"
	"github.com/simgate/simgate/gtp/dn"
	"github.com/simgate/simgate/gtp/gtpu"
	"github.com/simgate/simgate/gtp/upf"
)

// HTTPConfig is the host-side HTTP endpoint of a running network: the
// Endorse public keys for servers that verify tokens, and health checks.
type HTTPConfig struct {
	Addr string `yaml:"addr" doc:"host address serving /soracom-public-keys/{kid}, /.well-known/jwks.json, /healthz and /readyz; empty disables it"`
}

// UpConfig configures `simgate up`.
type UpConfig struct {
	TestSIMs  int    `yaml:"test_sims" doc:"SIMs provisioned on first start when the store is empty (consecutive IMSIs from first_imsi, K and OPc derived from seed)"`
	FirstIMSI string `yaml:"first_imsi" doc:"first IMSI of the test SIMs"`
	Seed      string `yaml:"seed" doc:"seed of the test SIMs' derived K and OPc (the same derivation as 'simgate sim import' with k: derive; 'simgate ran --imsi-from' uses it too)"`
}

// Test SIM defaults: 'simgate ran' with its defaults attaches these.
const (
	defaultTestSIMs  = 100
	defaultFirstIMSI = "001010000000001"
	defaultSeed      = "simgate"
	simFileName      = "sims.json"
)

func newCoreCmd(a *app) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "core",
		Short: "Run the 5G core: AMF (N2), AUSF, UDM and SMF (N4) over the subscriber store",
		Long: `Run the core network functions in one process: the AMF accepts gNBs on N2
(kernel SCTP where the kernel has it, else SCTP over UDP, RFC 6951, port 9899),
authenticates SIMs from the subscriber store with 5G-AKA and opens PDU sessions
through the SMF, which drives the UPF over PFCP (smf.upf_addr). An empty store
gets the test SIMs of the up section, as 'simgate up' does. Runs until
interrupted.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			ctx := cmd.Context()
			pc, err := a.openCapture(ctx)
			if err != nil {
				return err
			}
			defer pc.Close()
			st, err := a.openStore()
			if err != nil {
				return err
			}
			defer st.Close()
			if err := a.provisionTestSIMs(st); err != nil {
				return err
			}
			c, err := a.startCore(ctx, st, pc)
			if err != nil {
				return err
			}
			stopHTTP, err := a.serveHTTP(ctx, c)
			if err != nil {
				return err
			}
			defer stopHTTP()
			return c.Wait()
		},
	}
	a.flags.add(cmd.Flags(), "amf", "smf", "udm", "endorse", "http", "up")
	a.addPcapFlag(cmd)
	return cmd
}

func newUPFCmd(a *app) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "upf",
		Short: "Run the user plane function: PFCP (N4) sessions, GTP-U (N3) and the in-network services",
		Long: `Run the UPF: PFCP sessions from the SMF (upf.n4_addr), the GTP-U data path on
N3 (upf.n3_listen), and behind it the data network: DNS, the Endorse token
endpoint (HTTP 80, HTTPS 443 with a certificate from <data-dir>/ca; 'simgate ca
export' prints the CA) and Beam at the addresses upf.dn names, reachable only
from inside PDU sessions; everything else through the userspace NAT
(upf.dn.nat). Tokens name the SIM of the session the request came from. The
subscriber store belongs to 'simgate core' while it runs, so this process reads
it as a snapshot whenever it is free: start the UPF first.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			ctx := cmd.Context()
			pc, err := a.openCapture(ctx)
			if err != nil {
				return err
			}
			defer pc.Close()
			u, err := a.startUPF(ctx, pc)
			if err != nil {
				return err
			}
			// The core holds the store: read it as a snapshot (storeView).
			plane, err := a.startUserPlane(ctx, u, newStoreView(ctx, a.dataDir, a.logger()), pc)
			if err != nil {
				return err
			}
			if err := a.serveOpsIfSet(ctx); err != nil {
				return err
			}
			<-ctx.Done()
			<-u.Done()
			return plane.wait()
		},
	}
	a.flags.add(cmd.Flags(), "upf", "ops")
	a.addPcapFlag(cmd)
	return cmd
}

func newUpCmd(a *app) *cobra.Command {
	var devices upDevices
	cmd := &cobra.Command{
		Use:   "up",
		Short: "Run the whole network in one process: core, user plane and test SIMs",
		Long: `Run the core (AMF, AUSF, UDM, SMF) and the UPF in one process with embedded
defaults: PLMN 001/01, the data directory's subscriber store and keys, and on
first start up.test_sims test SIMs (IMSIs from up.first_imsi, keys derived from
up.seed) with their SIM file written to <data-dir>/sims.json. In another
terminal 'simgate ran --ues 10' then attaches ten of them. With --ues N,
N devices (the first N test SIMs) attach in this process instead, each
fetches its token through the user plane, and one line per device gives its
IMSI, IMEI, address and whether its token verified. Runs until
interrupted.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			ctx := cmd.Context()
			if err := devices.check(a); err != nil {
				return err
			}
			st, err := a.openStore()
			if err != nil {
				return err
			}
			defer st.Close()
			if err := a.provisionTestSIMs(st); err != nil {
				return err
			}
			pc, err := a.openCapture(ctx)
			if err != nil {
				return err
			}
			defer pc.Close()
			// N4 is captured once, at the SMF: the UPF's end would repeat it.
			u, err := a.startUPF(ctx, nil)
			if err != nil {
				return err
			}
			a.cfg.SMF.UPFAddr = u.Addr().String()
			plane, err := a.startUserPlane(ctx, u, storeSource{st}, pc)
			if err != nil {
				return err
			}
			c, err := a.startCore(ctx, st, pc)
			if err != nil {
				return err
			}
			stopHTTP, err := a.serveHTTP(ctx, c)
			if err != nil {
				return err
			}
			defer stopHTTP()
			fmt.Fprintf(a.stderr, "simgate is up: N2 %s (%s), N4 %s, data dir %s\n", c.N2Addr(), a.cfg.AMF.N2.Transport, u.Addr(), a.dataDir)
			fmt.Fprintf(a.stderr, "attach UEs from another terminal: simgate ran --ues 10 --amf %s\n", hostOf(c.N2Addr()))
			waitDevices, err := devices.start(ctx, a, c.N2Addr(), pc) // --ues (up_devices.go)
			if err != nil {
				return err
			}
			err = c.Wait()
			<-u.Done()
			return errors.Join(err, waitDevices(), plane.wait())
		},
	}
	devices.addFlags(a, cmd)
	a.flags.add(cmd.Flags(), "amf", "smf", "udm", "upf", "endorse", "http", "up")
	a.addPcapFlag(cmd)
	return cmd
}

func hostOf(addr net.Addr) string {
	h, _, err := net.SplitHostPort(addr.String())
	if err != nil {
		return addr.String()
	}
	return h
}

// startCore starts the core on the given store (nil opens the data dir's),
// its N2 and N4 traffic tapped into pc when there is one.
func (a *app) startCore(ctx context.Context, st *udr.Store, pc *capture.Writer) (*core.Core, error) {
	o := core.Options{
		AMF: a.cfg.AMF, SMF: a.cfg.SMF, UDM: a.cfg.UDM,
		DataDir: a.dataDir, Store: st, Log: a.logger(), Metrics: a.reg().AMF(),
	}
	if pc != nil {
		o.N2Tap = pc.Interface("n2", capture.KindN2)
		conn, err := n4Conn(a.cfg.SMF.N4Addr, pc)
		if err != nil {
			return nil, fmt.Errorf("smf.n4_addr: %w", err)
		}
		o.N4Conn = conn
	}
	c, err := core.Start(ctx, o)
	if err != nil {
		return nil, err
	}
	a.track("amf", a.reg().AddAMF(c.AMF))
	a.track("smf", a.reg().AddSMF(c.SMF, c.SMF.Pools()...))
	a.track("smf n4", a.reg().AddPFCP("smf", c.N4Node()))
	return c, nil
}

// startUPF starts the UPF, its N4 traffic tapped into pc when there is one.
func (a *app) startUPF(ctx context.Context, pc *capture.Writer) (*upf.UPF, error) {
	conn, err := n4Conn(a.cfg.UPF.N4Addr, pc)
	if err != nil {
		return nil, fmt.Errorf("upf.n4_addr: %w", err)
	}
	u, err := upf.StartOn(ctx, a.cfg.UPF, conn, a.logger())
	if err != nil {
		conn.Close()
		return nil, err
	}
	a.logger().Info("upf: listening for SMFs", "n4", u.Addr().String(), "n3", a.cfg.UPF.N3Addr)
	a.track("upf", a.reg().AddUPF(u))
	a.track("upf n4", a.reg().AddPFCP("upf", u.Node()))
	return u, nil
}

// provisionTestSIMs fills an empty store with the test SIMs and writes their
// SIM file, so a fresh machine needs no provisioning step.
func (a *app) provisionTestSIMs(st *udr.Store) error {
	up := a.cfg.Up
	n, err := st.CountSIMs()
	if err != nil || n > 0 || up.TestSIMs == 0 {
		return err
	}
	f := &udr.ImportFile{Seed: up.Seed, SIMs: []udr.Entry{{
		Range: &udr.Range{FirstIMSI: up.FirstIMSI, Count: up.TestSIMs},
		K:     udr.KeyDerive, OPc: udr.KeyDerive,
	}}}
	sims, err := f.Expand(udr.ExpandOptions{})
	if err != nil {
		return fmt.Errorf("up: test SIMs: %w", err)
	}
	if err := st.AddSIMs(sims); err != nil {
		return fmt.Errorf("up: test SIMs: %w", err)
	}
	path := filepath.Join(a.dataDir, simFileName)
	if err := udr.WriteSIMFile(path, udr.NewSIMFile(sims)); err != nil {
		return fmt.Errorf("up: test SIMs: %w", err)
	}
	a.logger().Info("up: provisioned test SIMs", "count", len(sims), "first_imsi", up.FirstIMSI, "sim_file", path)
	return nil
}

// serveHTTP serves the Endorse public keys and health checks on http.addr.
// The returned func stops the server.
func (a *app) serveHTTP(ctx context.Context, c *core.Core) (func(), error) {
	if a.cfg.HTTP.Addr == "" {
		return func() {}, nil
	}
	keys, err := a.openKeys()
	if err != nil {
		return nil, err
	}
	keysCtx, stopKeys := context.WithCancel(ctx)
	go keys.Watch(keysCtx, 10*time.Second) // pick up 'simgate keys rotate'
	mux := http.NewServeMux()
	mountMetrics(mux, a.reg())
	kh := endorse.NewKeysHandler(keys, a.endorseConfig())
	mux.Handle(endorse.PublicKeysPath, kh)
	mux.Handle(endorse.JWKSPath, kh)
	mux.Handle(endorse.DiscoveryPath, kh)
	mux.HandleFunc("/healthz", func(w http.ResponseWriter, _ *http.Request) { fmt.Fprintln(w, "ok") })
	mux.HandleFunc("/readyz", func(w http.ResponseWriter, _ *http.Request) {
		select {
		case <-c.Done():
			http.Error(w, "core stopped", http.StatusServiceUnavailable)
		default:
			fmt.Fprintln(w, "ready")
		}
	})
	ln, err := net.Listen("tcp", a.cfg.HTTP.Addr)
	if err != nil {
		stopKeys()
		return nil, fmt.Errorf("http.addr: %w", err)
	}
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second, ErrorLog: slog.NewLogLogger(a.logger().Handler(), slog.LevelWarn)}
	go func() {
		if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			a.logger().Error("http: serve", "err", err)
		}
	}()
	a.logger().Info("http: serving keys and health", "addr", ln.Addr().String(), "jwks", "http://"+ln.Addr().String()+endorse.JWKSPath)
	return func() {
		stopKeys()
		sctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		_ = srv.Shutdown(sctx)
	}, nil
}

// Validate checks the up section; errors name the key.
func (c UpConfig) Validate() error {
	var errs []error
	if c.TestSIMs < 0 || c.TestSIMs > udr.MaxRangeCount {
		errs = append(errs, fmt.Errorf("up.test_sims: %d: want 0..%d", c.TestSIMs, udr.MaxRangeCount))
	}
	if err := udr.ValidateIMSI(c.FirstIMSI, 2); err != nil {
		errs = append(errs, fmt.Errorf("up.first_imsi: %w", err))
	}
	return errors.Join(errs...)
}

// userPlane is the UPF's data path: the N3 socket, the data network with
// its in-network services, and the Endorse resolver on the session table.
type userPlane struct {
	n3   *gtpu.Conn
	dn   *dn.DN
	dp   *upf.DataPath
	done chan error
}

// wait waits until the user plane has stopped (its context ended) and
// returns the data path's error.
func (p *userPlane) wait() error {
	err := <-p.done
	p.n3.Close()
	p.dn.Close()
	return err
}

// simSource gives the Endorse resolver and Beam the SIM records and group
// settings: the store itself in `simgate up`, a storeView in `simgate upf`.
type simSource interface {
	SIM(imsi string) (udr.SIM, error)
	Group(name string) (udr.Group, error)
}

// storeSource is a simSource on an open store.
type storeSource struct{ st *udr.Store }

func (s storeSource) SIM(imsi string) (udr.SIM, error)     { return s.st.GetSIM(imsi) }
func (s storeSource) Group(name string) (udr.Group, error) { return s.st.GetGroup(name) }

// startUserPlane binds N3, starts the data network and serves on it the DNS
// responder, the Endorse token endpoint on HTTP 80 and HTTPS 443 (with a
// certificate from the data dir's CA), and Beam's entry points; everything
// else goes through the NAT as upf.dn.nat says. The token endpoint exists
// only on the data network: the host network never reaches it.
func (a *app) startUserPlane(ctx context.Context, u *upf.UPF, sims simSource, pc *capture.Writer) (*userPlane, error) {
	log := a.logger()
	cfg := a.cfg.UPF
	n3Addr, err := cfg.N3ListenAddr()
	if err != nil {
		return nil, fmt.Errorf("upf.n3_listen: %w", err)
	}
	gcfg := gtpu.Config{Logger: log}
	if a, err := netip.ParseAddr(cfg.N3Addr); err == nil {
		gcfg.PeerAddress = a // TS 29.281 7.3.1: the GTP-U Peer Address of Error Indications
	}
	if pc != nil {
		gcfg.Tap = pc.Interface("n3", capture.KindN3)
	}
	n3, err := gtpu.Listen(n3Addr.String(), gcfg)
	if err != nil {
		return nil, fmt.Errorf("upf.n3_listen: %w", err)
	}
	fail := func(err error) (*userPlane, error) {
		n3.Close()
		return nil, err
	}
	ca, err := dn.LoadOrCreateCA(a.dataDir)
	if err != nil {
		return fail(err)
	}
	keys, err := a.openKeys()
	if err != nil {
		return fail(err)
	}
	go keys.Watch(ctx, 10*time.Second) // pick up 'simgate keys rotate'
	issuer, err := endorse.NewIssuer(keys, a.endorseConfig())
	if err != nil {
		return fail(err)
	}
	res := endorse.StoreResolver{Session: u.Sessions().EndorseSession, SIM: sims.SIM}
	groups := endorse.GroupsFunc(sims.Group)

	dcfg := cfg.DN
	// A device must not reach simgate's own sockets through the NAT (those
	// with a port known now; ephemeral ones are the host's to guard).
	dcfg.NAT.Protect = append(slices.Clone(dcfg.NAT.Protect), protectedSockets(n3.LocalAddr(), u.Addr(), a.cfg.SMF.N4Addr, a.cfg.AMF.N2.LocalAddr, a.cfg.HTTP.Addr)...)
	d, err := dn.Start(ctx, dcfg, dn.WithLogger(log))
	if err != nil {
		return fail(fmt.Errorf("upf.dn: %w", err))
	}
	fail = func(err error) (*userPlane, error) {
		n3.Close()
		d.Close()
		return nil, err
	}
	beamOpts := beam.Options{Resolver: res, Groups: groups, Log: log}
	beamHTTP, err := beam.NewHTTPEntry(beamOpts)
	if err != nil {
		return fail(err)
	}
	siteOpts := beamOpts
	siteOpts.EntryPoint = beam.WebsiteEntryPoint
	beamSite, err := beam.NewHTTPEntry(siteOpts)
	if err != nil {
		return fail(err)
	}
	beamTCP, err := beam.NewTCPEntry(beamOpts)
	if err != nil {
		return fail(err)
	}
	svc := dn.Services{
		Endorse:    a.reg().EndorseHTTP(endorse.NewTokenHandler(issuer, res, groups, log)),
		EndorseTLS: ca.ServerTLS(dn.EndorseName, dcfg.EndorseAddr),
		BeamHTTP:   beamHTTP,
		BeamSite:   beamSite,
		BeamTCP:    beamTCP,
	}
	if err := d.Serve(ctx, svc); err != nil {
		return fail(err)
	}
	var n upf.Network = d
	if pc != nil {
		n = tappedNetwork{DN: d, tap: pc.Interface("dn", capture.KindIP)}
	}
	p := &userPlane{n3: n3, dn: d, dp: upf.NewDataPath(u, n3, n), done: make(chan error, 1)}
	a.track("upf n3", a.reg().AddGTPU("upf_n3", n3))
	a.track("upf data path", a.reg().AddUPFDataPath(p.dp))
	a.track("data network", a.reg().AddDN(d))
	go func() { p.done <- p.dp.Serve(ctx) }()
	log.Info("upf: user plane up", "n3", n3.LocalAddr().String(), "endorse", dcfg.EndorseAddr, "dns", dcfg.DNSAddr, "beam", dcfg.BeamAddr, "nat", dcfg.NAT.Enabled)
	return p, nil
}

// tappedNetwork captures the inner IP packets between the data path and
// the data network: uplink as received by the network, downlink as sent.
type tappedNetwork struct {
	*dn.DN
	tap *capture.Interface
}

func (n tappedNetwork) Inject(pkt []byte) error {
	n.tap.Packet(false, pkt)
	return n.DN.Inject(pkt)
}

func (n tappedNetwork) SetDownlink(f func(pkt []byte)) {
	if f == nil {
		n.DN.SetDownlink(nil)
		return
	}
	n.DN.SetDownlink(func(pkt []byte) {
		n.tap.Packet(true, pkt)
		f(pkt)
	})
}

// protectedSockets are nat.protect entries for simgate's own sockets: each
// address given as an AddrPort or "ip:port" string with a known port.
func protectedSockets(socks ...any) []string {
	var out []string
	for _, s := range socks {
		var ap netip.AddrPort
		switch v := s.(type) {
		case netip.AddrPort:
			ap = v
		case string:
			p, err := netip.ParseAddrPort(v)
			if err != nil {
				continue
			}
			ap = p
		}
		if ap.Port() == 0 || !ap.Addr().Unmap().Is4() {
			continue
		}
		out = append(out, netip.AddrPortFrom(ap.Addr().Unmap(), ap.Port()).String())
	}
	return out
}

// storeView is the subscriber store as `simgate upf`, a process apart from
// `simgate core`, sees it. bbolt lets one process hold the store, and the
// core holds it while it runs, so the UPF reads a snapshot: every SIM and
// group, read whenever the store is free (at start, before the core, and
// then every storeViewRefresh while it is not held). The session's IMSI and
// IMEI come from the PFCP User ID the SMF sent; the snapshot adds MSISDN,
// SIM ID, status and the group's settings. Without a snapshot no token is
// issued (the endpoint answers an internal error): fail closed rather than
// ignore group settings.
type storeView struct {
	dir string
	log *slog.Logger

	mu     sync.RWMutex
	sims   map[string]udr.SIM
	groups map[string]udr.Group
	at     time.Time
}

const (
	storeViewRefresh = 30 * time.Second
	storeViewLock    = 200 * time.Millisecond
)

var errNoSnapshot = errors.New("upf: the subscriber store has not been readable since start (simgate core holds it): start simgate upf before simgate core")

func newStoreView(ctx context.Context, dir string, log *slog.Logger) *storeView {
	v := &storeView{dir: dir, log: log}
	if err := v.refresh(); err != nil {
		log.Warn("upf: subscriber store not readable; tokens wait for a snapshot", "err", err)
	}
	go func() {
		t := time.NewTicker(storeViewRefresh)
		defer t.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-t.C:
				if err := v.refresh(); err != nil {
					log.Debug("upf: subscriber store snapshot", "err", err)
				}
			}
		}
	}()
	return v
}

// refresh reads a new snapshot if the store is free.
func (v *storeView) refresh() error {
	st, err := udr.OpenOptions(filepath.Join(v.dir, udr.FileName), udr.Options{LockTimeout: storeViewLock})
	if err != nil {
		return err
	}
	defer st.Close()
	sims, err := st.ListSIMs()
	if err != nil {
		return err
	}
	groups, err := st.ListGroups()
	if err != nil {
		return err
	}
	sm := make(map[string]udr.SIM, len(sims))
	for _, s := range sims {
		sm[s.IMSI] = s
	}
	gm := make(map[string]udr.Group, len(groups))
	for _, g := range groups {
		gm[g.Name] = g
	}
	v.mu.Lock()
	v.sims, v.groups, v.at = sm, gm, time.Now()
	v.mu.Unlock()
	v.log.Info("upf: subscriber store snapshot", "sims", len(sm), "groups", len(gm))
	return nil
}

func (v *storeView) SIM(imsi string) (udr.SIM, error) {
	v.mu.RLock()
	defer v.mu.RUnlock()
	if v.sims == nil {
		return udr.SIM{}, errNoSnapshot
	}
	s, ok := v.sims[imsi]
	if !ok {
		return udr.SIM{}, fmt.Errorf("upf: sim %s: %w", imsi, udr.ErrNotFound)
	}
	return s, nil
}

// Group is udr's GetGroup on the snapshot: a group with no stored settings
// has the defaults.
func (v *storeView) Group(name string) (udr.Group, error) {
	if err := udr.ValidateGroupName(name); err != nil {
		return udr.Group{}, fmt.Errorf("upf: %w", err)
	}
	v.mu.RLock()
	defer v.mu.RUnlock()
	if v.groups == nil {
		return udr.Group{}, errNoSnapshot
	}
	if g, ok := v.groups[name]; ok {
		return g, nil
	}
	return udr.Group{Name: name, Endorse: udr.DefaultEndorse(), Beam: udr.BeamConfig{}}, nil
}
