package main

import (
	"fmt"
	"io"
	"math"
	"os"
	"strconv"
	"strings"
	"sync"

	"github.com/spf13/cobra"

	"github.com/simgate/simgate/capture"
	"github.com/simgate/simgate/core/n2"
	"github.com/simgate/simgate/sim/ran"
)

// ranConfig is the ran section of the loaded configuration. With neither a
// SIM file nor a first IMSI it attaches the test SIMs 'simgate up'
// provisions (up.first_imsi, keys derived from up.seed).
func (a *app) ranConfig() ran.Config {
	c := a.cfg.RAN
	if c.SIMFile == "" && c.IMSIFrom == "" {
		c.IMSIFrom, c.Seed = a.cfg.Up.FirstIMSI, a.cfg.Up.Seed
	}
	return c
}

func newRANCmd(a *app) *cobra.Command {
	var (
		ues, gnbs                    int
		rate, imsiFrom, simFile, amf string
		transport, jsonPath, socks   string
		hold, token                  bool
	)
	cmd := &cobra.Command{
		Use:   "ran --ues N [--rate R/s] (--imsi-from IMSI | --sim-file F) [--token] [--socks ADDR --hold] [--json FILE] [--amf ADDR]",
		Short: "Attach many simulated UEs through simulated gNBs and report",
		Long: `Attach simulated UEs (USIM + NAS) through simulated gNBs (NGAP over N2) to the
AMF, at a steady rate, and report what happened: how many registered and
opened a PDU session, failures by cause, and latency percentiles.

The UEs come from a SIM file with their keys (written by 'simgate sim import
--sim-file' or 'simgate sim export --with-keys'), whose SQNs are updated after
the run, or from --imsi-from: consecutive IMSIs whose K and OPc are derived
from the seed (ran.seed, default "simgate") as 'simgate sim import' does with
"k: derive" and "opc: derive". Each UE gets the IMEI its SIM is locked to, or
one made of ran.imei_tac, the IMSI's last 6 digits and the Luhn check digit.

With --token or --socks the UEs get a user plane: the gNBs carry their
packets in GTP-U (N3, ran.n3 port 2152, which must not be the UPF's N3
address on the same host; the default 127.0.0.2 is not) and one shared
userspace IP stack holds every UE's PDU session address, resolving names
through the network's DNS (ran.dns). With --token each UE then fetches a
token from ran.token_url (default http://endorse.soracom.io/) through its
session, verifies it against the network's JWK Set (ran.jwks_url, default
http://127.0.0.1:8080/.well-known/jwks.json, the key endpoint of
'simgate up') and checks that it names its own IMSI and IMEI; the report adds
"tokens" and latency_ms.token, and failures such as token-http-403,
token-verify or token-imsi-mismatch.

--socks ADDR serves a SOCKS5 proxy (RFC 1928) speaking as the attached UEs:
the SOCKS user name (RFC 1929) is the IMSI of the UE to speak as, and names
are resolved by that UE inside the network (socks5h). With --hold it stays
up until interrupted, so any program can act as a device:
  curl --proxy socks5h://001010000000001@127.0.0.1:1080 http://endorse.soracom.io/
prints the token of SIM 001010000000001.

Without --hold the UEs deregister as soon as all have attached (or failed);
with --hold they stay attached until interrupted (Ctrl-C), then deregister.
Progress goes to stderr once a second. The report is JSON, on stdout or in
--json FILE:
  {"ues": N, "registered": n, "sessions": n, "failures": {"<cause>": n},
   "latency_ms": {"registration": {"p50": x, "p90": x, "p99": x, "max": x},
                  "pdu_session": {...}, "deregistration": {...}}, ...}`,
		Example: `  simgate sim import ranges.yaml --sim-file sims.json
  simgate ran --sim-file sims.json --rate 200/s --amf 127.0.0.1
  simgate ran --ues 1000 --imsi-from 001010000000001 --gnbs 4 --json report.json
  simgate ran --ues 100 --token
  simgate ran --ues 10 --socks 127.0.0.1:1080 --hold`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cfg := a.ranConfig()
			f := cmd.Flags()
			if f.Changed("ues") {
				cfg.UEs = ues
			}
			if f.Changed("rate") {
				r, err := parseRate(rate)
				if err != nil {
					return fmt.Errorf("ran: --rate: %w", err)
				}
				cfg.Rate = r
			}
			if f.Changed("imsi-from") {
				cfg.IMSIFrom, cfg.SIMFile = imsiFrom, ""
			}
			if f.Changed("sim-file") {
				cfg.SIMFile = simFile
				if !f.Changed("imsi-from") {
					cfg.IMSIFrom = ""
				}
			}
			if f.Changed("hold") {
				cfg.Hold = hold
			}
			if f.Changed("amf") {
				cfg.AMF = amf
			}
			if f.Changed("n2.transport") {
				cfg.N2.Transport = n2.Transport(transport)
			}
			if f.Changed("gnbs") {
				cfg.GNBs = gnbs
			}
			if f.Changed("token") {
				cfg.Token = token
			}
			if f.Changed("socks") {
				cfg.SOCKS = socks
			}
			// Log lines and progress lines share stderr from several
			// goroutines: one lock keeps them whole.
			stderr := &syncWriter{w: a.stderr}
			defer stderr.close()
			log := newLogger(stderr, a.config().Log)
			if cfg.N2.Logger == nil {
				cfg.N2.Logger = log
			}
			pc, err := a.openCapture(cmd.Context())
			if err != nil {
				return err
			}
			defer pc.Close()
			opt := ran.Options{Logger: log, Progress: stderr, TTY: isTerminal(a.stderr)}
			if pc != nil {
				cfg.N2.Tap = pc.Interface("n2", capture.KindN2)
				opt.N3Tap = pc.Interface("n3", capture.KindN3)
			}
			if err := a.serveOpsIfSet(cmd.Context()); err != nil {
				return err
			}
			r, err := ran.New(cfg, opt)
			if err != nil {
				return oneLine(err)
			}
			rep, err := r.Run(cmd.Context())
			if err != nil {
				return oneLine(err)
			}
			if jsonPath == "" || jsonPath == "-" {
				return writeJSON(a.stdout, rep)
			}
			fh, err := os.Create(jsonPath)
			if err != nil {
				return fmt.Errorf("ran: --json: %w", err)
			}
			if err := writeJSON(fh, rep); err != nil {
				fh.Close()
				return fmt.Errorf("ran: --json: %w", err)
			}
			if err := fh.Close(); err != nil {
				return fmt.Errorf("ran: --json: %w", err)
			}
			return nil
		},
	}
	fl := cmd.Flags()
	fl.IntVar(&ues, "ues", 0, "UEs to attach (default: every SIM of --sim-file)")
	fl.StringVar(&rate, "rate", "", "registrations started per second, e.g. 200/s; 0 = as fast as possible (default 100/s)")
	fl.StringVar(&imsiFrom, "imsi-from", "", "first IMSI of consecutive UEs with keys derived from ran.seed")
	fl.StringVar(&simFile, "sim-file", "", "SIM file with the UEs' keys; their SQNs are written back")
	fl.BoolVar(&hold, "hold", false, "keep the UEs attached until interrupted, then deregister them")
	fl.StringVar(&jsonPath, "json", "", "write the report to this file instead of stdout")
	fl.StringVar(&amf, "amf", "", "AMF N2 address, host or host:port (default 127.0.0.1)")
	fl.StringVar(&transport, "n2.transport", "", "N2 transport: auto, sctp or udp (default auto)")
	fl.IntVar(&gnbs, "gnbs", 0, "simulated gNBs, each with its own association (default 1)")
	fl.BoolVar(&token, "token", false, "each UE fetches an Endorse token over its PDU session and verifies it (ran.token_url, ran.jwks_url)")
	fl.StringVar(&socks, "socks", "", "serve a SOCKS5 proxy at ADDR speaking as the attached UEs, user name = IMSI (use with --hold)")
	a.flags.add(fl, "ran", "ops")
	a.addPcapFlag(cmd)
	return cmd
}

// syncWriter serializes writes to w. After close it drops them: a
// connection's goroutines may still log a line as they wind down, after the
// command has returned.
type syncWriter struct {
	mu     sync.Mutex
	w      io.Writer
	closed bool
}

func (s *syncWriter) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return len(p), nil
	}
	return s.w.Write(p)
}

func (s *syncWriter) close() {
	s.mu.Lock()
	s.closed = true
	s.mu.Unlock()
}

// parseRate reads "200", "200/s" or "1.5/s".
func parseRate(s string) (float64, error) {
	v := strings.TrimSuffix(strings.TrimSpace(s), "/s")
	r, err := strconv.ParseFloat(v, 64)
	if err != nil || !(r >= 0) || math.IsInf(r, 0) {
		return 0, fmt.Errorf("%q: want registrations per second, e.g. 200/s", s)
	}
	return r, nil
}

// isTerminal reports whether w is a terminal (a character device), where
// progress may rewrite its line.
func isTerminal(w any) bool {
	f, ok := w.(*os.File)
	if !ok {
		return false
	}
	st, err := f.Stat()
	return err == nil && st.Mode()&os.ModeCharDevice != 0
}

// oneLine folds a joined multi-line error into one line.
func oneLine(err error) error {
	if s := err.Error(); strings.Contains(s, "\n") {
		return fmt.Errorf("%s", strings.ReplaceAll(s, "\n", "; "))
	}
	return err
}
