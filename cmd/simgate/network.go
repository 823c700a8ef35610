package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"path/filepath"
	"time"

	"github.com/spf13/cobra"

	"github.com/simgate/simgate/capture"
	"github.com/simgate/simgate/core"
	"github.com/simgate/simgate/core/udr"
	"github.com/simgate/simgate/endorse"
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
		Short: "Run the user plane function: PFCP (N4) sessions with their SIM identities",
		Args:  cobra.NoArgs,
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
			<-ctx.Done()
			<-u.Done()
			return nil
		},
	}
	a.flags.add(cmd.Flags(), "upf")
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
			return errors.Join(err, waitDevices())
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
		DataDir: a.dataDir, Store: st, Log: a.logger(),
	}
	if pc != nil {
		o.N2Tap = pc.Interface("n2", capture.KindN2)
		conn, err := n4Conn(a.cfg.SMF.N4Addr, pc)
		if err != nil {
			return nil, fmt.Errorf("smf.n4_addr: %w", err)
		}
		o.N4Conn = conn
	}
	return core.Start(ctx, o)
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
