// Command simgate runs and drives a simulated 5G network for SIM-based
// authentication: subscriber provisioning, the SIM algorithms, the Endorse
// token issuer and its verifier.
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"strings"
	"syscall"

	"github.com/spf13/cobra"

	"github.com/simgate/simgate/metrics"
)

// app carries what every command shares: where to write, the loaded
// configuration and the data directory. One app serves one command run.
type app struct {
	stdout io.Writer
	stderr io.Writer

	cfgPath  string // --config
	cfg      Config // defaults, then the YAML file, then flags
	flags    *configFlags
	dataDir  string // cfg.DataDir, after loading
	pcapPath string // --pcap of the network commands
	metrics  *metrics.Registry
	log      *slog.Logger
}

// subcommands lists the constructors of the top-level commands.
var subcommands = []func(*app) *cobra.Command{
	newVersionCmd,
	newConfigCmd,
	newAKACmd, newSUCICmd,
	newTokenCmd,
	newSIMCmd, newGroupCmd,
	newKeysCmd, newCACmd,
	newRANCmd,
	newCoreCmd, newUPFCmd, newUpCmd,
	newHealthcheckCmd,
}

func newApp(stdout, stderr io.Writer) *app {
	a := &app{stdout: stdout, stderr: stderr, cfg: DefaultConfig()}
	a.flags = newConfigFlags(&a.cfg)
	return a
}

// newRootCmd builds the command tree for one run.
func newRootCmd(a *app) *cobra.Command {
	root := &cobra.Command{
		Use:   "simgate",
		Short: "A simulated 5G network that issues SIM-based identity tokens",
		Long: `simgate simulates a mobile network for SIM-based authentication: SIMs attach with
5G-AKA, and an Endorse-compatible issuer hands each device a signed token (JWT)
naming its IMSI and IMEI that any server can verify with a published key.`,
		SilenceUsage:  true,
		SilenceErrors: true,
		PersistentPreRunE: func(cmd *cobra.Command, _ []string) error {
			return a.load(cmd)
		},
	}
	root.SetOut(a.stdout)
	root.SetErr(a.stderr)
	pf := root.PersistentFlags()
	pf.StringVar(&a.cfgPath, "config", "", "configuration file (default: ./simgate.yaml when it exists)")
	a.flags.add(pf, "data_dir", "log")
	for _, mk := range subcommands {
		root.AddCommand(mk(a))
	}
	return root
}

// load reads the configuration once: defaults, then the file, then the flags
// that were set on the command line.
func (a *app) load(cmd *cobra.Command) error {
	path, explicit := a.cfgPath, a.cfgPath != ""
	if !explicit {
		path = "simgate.yaml"
	}
	b, err := os.ReadFile(path)
	switch {
	case err == nil:
		if err := decodeConfig(path, b, &a.cfg); err != nil {
			return err
		}
	case explicit || !errors.Is(err, os.ErrNotExist):
		return fmt.Errorf("config: %w", err)
	}
	if err := a.flags.apply(); err != nil {
		return err
	}
	if err := a.cfg.Validate(); err != nil {
		return err
	}
	a.dataDir = a.cfg.DataDir
	a.log = newLogger(a.stderr, a.cfg.Log)
	return nil
}

// config returns the loaded configuration.
func (a *app) config() *Config { return &a.cfg }

// logger returns the process logger (text or JSON on stderr, per log.*).
func (a *app) logger() *slog.Logger {
	if a.log == nil {
		a.log = newLogger(a.stderr, a.cfg.Log)
	}
	return a.log
}

func newLogger(w io.Writer, c LogConfig) *slog.Logger {
	var lvl slog.Level
	_ = lvl.UnmarshalText([]byte(c.Level)) // validated in Config.Validate
	opts := &slog.HandlerOptions{Level: lvl}
	if strings.EqualFold(c.Format, "json") {
		return slog.New(slog.NewJSONHandler(w, opts))
	}
	return slog.New(slog.NewTextHandler(w, opts))
}

// run executes one command line and returns the process exit code.
func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	a := newApp(stdout, stderr)
	root := newRootCmd(a)
	root.SetArgs(args)
	if err := root.ExecuteContext(ctx); err != nil {
		fmt.Fprintf(stderr, "simgate: %v\n", err)
		return 1
	}
	return 0
}

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}
