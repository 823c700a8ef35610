package main

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/netip"
	"text/tabwriter"

	"github.com/spf13/cobra"

	"github.com/simgate/simgate/capture"
	"github.com/simgate/simgate/endorse"
	"github.com/simgate/simgate/endorse/verify"
	"github.com/simgate/simgate/sim/ran"
)

// upDevices is `simgate up --ues N`: N simulated devices attached to the
// network up runs, in the same process, each fetching its token over its
// PDU session.
type upDevices struct {
	n     int
	token bool
}

// addFlags adds --ues and the ran section's flags (the devices' gNB,
// SIMs, N3 address, DNS and token settings; ran.ues, amf, token and hold are
// set by up).
func (d *upDevices) addFlags(a *app, cmd *cobra.Command) {
	a.flags.add(cmd.Flags(), "ran")
	cmd.Flags().IntVar(&d.n, "ues", 0, "attach N simulated devices (test SIMs from up.first_imsi) once the network is up; each fetches its Endorse token through the user plane and one line per device says whether it verified")
	cmd.Flags().BoolVar(&d.token, "token", true, "with --ues: each device fetches and verifies its token (--token=false only attaches them)")
}

// check validates the device run before the network starts.
func (d *upDevices) check(a *app) error {
	if d.n < 0 {
		return fmt.Errorf("up: --ues %d is negative", d.n)
	}
	if d.n == 0 {
		return nil
	}
	cfg, _, err := a.deviceRun(d.n, d.token, &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 38412})
	if err != nil {
		return err
	}
	if err := cfg.Validate(); err != nil {
		return oneLine(err)
	}
	return nil
}

// start attaches the devices to the AMF at amf and prints one line per
// device to a.stdout once all have attached and fetched their token; the
// devices stay attached until ctx ends, then deregister. The returned func
// waits for that (nil without --ues).
func (d *upDevices) start(ctx context.Context, a *app, amf net.Addr, pc *capture.Writer) (func() error, error) {
	if d.n <= 0 {
		return func() error { return nil }, nil
	}
	cfg, opt, err := a.deviceRun(d.n, d.token, amf)
	if err != nil {
		return nil, err
	}
	if pc != nil {
		opt.N3Tap = pc.Interface("n3-gnb", capture.KindN3)
	}
	var r *ran.Runner
	opt.Attached = func(rep ran.Report) { printDevices(a.stdout, r.Results(), rep) }
	r, err = ran.New(cfg, opt)
	if err != nil {
		return nil, oneLine(err)
	}
	done := make(chan error, 1)
	go func() {
		_, err := r.Run(ctx)
		done <- err
	}()
	return func() error { return <-done }, nil
}

// deviceRun is the ran run of `up --ues n`: the test SIMs, token on, held
// until interrupted, verified against the network's own keys.
func (a *app) deviceRun(n int, token bool, amf net.Addr) (ran.Config, ran.Options, error) {
	cfg := a.ranConfig()
	cfg.UEs, cfg.AMF, cfg.Token, cfg.Hold, cfg.Session = n, amf.String(), token, true, true
	cfg.TokenIssuer = a.cfg.Endorse.Issuer
	if n3, err := netip.ParseAddr(a.cfg.UPF.N3Addr); err == nil && n3.String() == cfg.N3 {
		return cfg, ran.Options{}, fmt.Errorf("up: ran.n3 %s is the UPF's n3_addr: the simulated gNB needs an N3 address of its own (e.g. --ran.n3 127.0.0.2)", cfg.N3)
	}
	log := a.logger()
	if cfg.N2.Logger == nil {
		cfg.N2.Logger = log
	}
	opt := ran.Options{Logger: log}
	if _, port, err := net.SplitHostPort(a.cfg.HTTP.Addr); err == nil && port != "0" {
		// The published JWK Set, as a relying party reads it.
		cfg.JWKSURL = "http://" + a.cfg.HTTP.Addr + endorse.JWKSPath
	} else {
		// No key endpoint at a known address: the network's own keys.
		keys, err := a.openKeys()
		if err != nil {
			return cfg, opt, err
		}
		set, err := verify.ParseJWKS(keys.JWKS())
		if err != nil {
			return cfg, opt, fmt.Errorf("up: endorse keys: %w", err)
		}
		if opt.Verifier, err = verify.New(verify.WithKeySource(set), verify.WithIssuer(cfg.TokenIssuer)); err != nil {
			return cfg, opt, err
		}
	}
	return cfg, opt, nil
}

// printDevices writes one line per device: IMSI, IMEI, PDU session address
// and whether its token verified, then a summary line.
func printDevices(w io.Writer, results []ran.Result, rep ran.Report) {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "IMSI\tIMEI\tADDRESS\tTOKEN")
	for _, res := range results {
		addr := "-"
		if len(res.Sessions) > 0 && res.Sessions[0].UEAddr.IsValid() {
			addr = res.Sessions[0].UEAddr.String()
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", res.IMSI, res.IMEI, addr, tokenStatus(res))
	}
	_ = tw.Flush()
	fmt.Fprintf(w, "%d devices: %d attached, %d tokens verified (token p50 %.1f ms, p99 %.1f ms); Ctrl-C stops\n",
		rep.UEs, rep.Sessions, rep.Tokens, rep.LatencyMS[ran.LatencyToken].P50, rep.LatencyMS[ran.LatencyToken].P99)
}

// tokenStatus is "verified", or "no (<reason>)".
func tokenStatus(res ran.Result) string {
	switch {
	case res.Failure != "":
		return "no (attach: " + res.Failure + ")"
	case res.Token == nil:
		return "no (not fetched)"
	case res.Token.Failure != "":
		return "no (" + res.Token.Failure + ")"
	}
	return "verified"
}
