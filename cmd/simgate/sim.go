package main

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"text/tabwriter"

	"github.com/spf13/cobra"

	"github.com/simgate/simgate/core/udr"
)

func newSIMCmd(a *app) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "sim",
		Short: "Provision SIMs in the subscriber store",
		Long: `Provision the SIMs the network authenticates, in <data-dir>/subscribers.db.
Keys (K, OP, OPc) are printed only where --with-keys asks for them.`,
	}
	cmd.AddCommand(newSIMAddCmd(a), newSIMImportCmd(a), newSIMListCmd(a), newSIMShowCmd(a),
		newSIMExportCmd(a), newSIMDeleteCmd(a), newSIMSetStatusCmd(a), newSIMSetIMEILockCmd(a), newSIMSetGroupCmd(a))
	return cmd
}

// withStore runs fn with the opened store and closes it.
func (a *app) withStore(fn func(*udr.Store) error) (err error) {
	st, err := a.openStore()
	if err != nil {
		return err
	}
	defer func() {
		if cerr := st.Close(); err == nil {
			err = cerr
		}
	}()
	return fn(st)
}

func newSIMAddCmd(a *app) *cobra.Command {
	var e udr.Entry
	var status string
	cmd := &cobra.Command{
		Use:   "add --imsi IMSI --k HEX (--op HEX | --opc HEX) [flags]",
		Short: "Add one SIM",
		Long: `Add one SIM. K, OP and OPc are 16 bytes of hex; with --op the OPc is derived
(TS 35.206: OPc = OP xor E_K(OP)) and OP is kept. AMF defaults to 8000, SQN
(hex, 48 bits) to 0, the MNC length to 2, the group to "default" and the
status to active. --imei-lock takes a 15-digit IMEI (or 14 digits, completed
with the check digit), optionally followed by |ANONYMOUS. Prints the SIM
without its keys.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if e.OP != "" && e.OPc != "" {
				return errors.New("sim add: give --op or --opc, not both")
			}
			e.Status = udr.Status(status)
			sim, err := e.SIM()
			if err != nil {
				return err
			}
			return a.withStore(func(st *udr.Store) error {
				if err := st.AddSIM(sim); err != nil {
					return err
				}
				return writeJSON(a.stdout, udr.EntryOf(sim, false))
			})
		},
	}
	f := cmd.Flags()
	f.StringVar(&e.IMSI, "imsi", "", "IMSI: MCC, MNC and MSIN, 6 to 15 digits (required)")
	f.StringVar(&e.K, "k", "", "subscriber key K, 32 hex digits (required)")
	f.StringVar(&e.OP, "op", "", "operator variant OP, 32 hex digits")
	f.StringVar(&e.OPc, "opc", "", "OPc, 32 hex digits")
	f.StringVar(&e.AMF, "amf", "", "authentication management field, 4 hex digits (default 8000)")
	f.StringVar(&e.SQN, "sqn", "", "initial SQN, hex, at most 12 digits (default 0)")
	f.StringVar(&e.MSISDN, "msisdn", "", "MSISDN, up to 15 digits")
	f.StringVar(&e.SIMID, "sim-id", "", "SIM ID (e.g. the ICCID)")
	f.StringVar(&e.IMEILock, "imei-lock", "", `IMEI lock: IMEI or "IMEI|ANONYMOUS"`)
	f.StringVar(&e.Group, "group", "", `group (default "default")`)
	f.IntVar(&e.MNCLen, "mnc-len", 2, "MNC length, 2 or 3")
	f.StringVar(&status, "status", string(udr.StatusActive), "active or inactive")
	cmd.MarkFlagRequired("imsi")
	cmd.MarkFlagRequired("k")
	return cmd
}

func newSIMImportCmd(a *app) *cobra.Command {
	var format, simFile, seed string
	var replace bool
	cmd := &cobra.Command{
		Use:   "import FILE.yaml|FILE.json|FILE.csv",
		Short: "Add SIMs from a file, including ranges with generated keys",
		Long: `Add the SIMs in FILE (format by extension, or --format). Nothing is stored if
any entry is invalid or, without --replace, already stored.

YAML or JSON: a list of entries, or {seed: ..., sims: [entries]}. An entry is
one SIM (imsi, k, op or opc, amf, sqn, msisdn, sim_id, imei_lock, group,
status, mnc_length; byte strings and sqn in hex) or a range:

  seed: lab-seed
  sims:
    - imsi: "001010000000001"
      k: 465b5ce8b199b49faa5f0a2ee238a6bc
      op: cdc202d5123e20f62b6d676ac72cb318
    - range: {first_imsi: "001010000001000", count: 1000, first_msisdn: "819000001000"}
      k: random          # random | derive | hex
      opc: derive        # random | derive | hex (or op: hex)
      group: fleet

random keys come from crypto/rand. derive computes them from the seed (seed:
in the file, or --seed):
  K   = first 16 bytes of HMAC-SHA-256(seed, "simgate/k:"   || IMSI)
  OPc = first 16 bytes of HMAC-SHA-256(seed, "simgate/opc:" || IMSI)

CSV: a header row naming the columns (imsi,k,op,opc,amf,sqn,msisdn,sim_id,
imei_lock,group,status,mnc_length; any order, imsi required), one SIM a row.

--sim-file OUT writes every imported SIM with its K, OPc, AMF, SQN and the
IMEI of its lock as JSON (mode 0600), for a UE simulator.`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			var f udr.Format
			if format != "" {
				var err error
				if f, err = udr.ParseFormat(format); err != nil {
					return fmt.Errorf("sim import: --format: %w", err)
				}
			}
			file, err := udr.LoadImportFile(args[0], f)
			if err != nil {
				return err
			}
			var o udr.ExpandOptions
			if seed != "" {
				o.Seed = []byte(seed)
			}
			sims, err := file.Expand(o)
			if err != nil {
				return err
			}
			err = a.withStore(func(st *udr.Store) error {
				if replace {
					return st.PutSIMs(sims)
				}
				return st.AddSIMs(sims)
			})
			if err != nil {
				return err
			}
			if simFile != "" {
				if err := udr.WriteSIMFile(simFile, udr.NewSIMFile(sims)); err != nil {
					return err
				}
			}
			a.logger().Debug("sims imported", "file", args[0], "count", len(sims))
			return writeJSON(a.stdout, struct {
				Imported int    `json:"imported"`
				SIMFile  string `json:"sim_file,omitempty"`
			}{len(sims), simFile})
		},
	}
	cmd.Flags().StringVar(&format, "format", "", "file format: json, yaml or csv (default: by extension)")
	cmd.Flags().StringVar(&simFile, "sim-file", "", "write the imported SIMs with their keys to this JSON file")
	cmd.Flags().StringVar(&seed, "seed", "", "seed for derive (overrides seed: in the file)")
	cmd.Flags().BoolVar(&replace, "replace", false, "replace SIMs already stored (their SQN too) instead of failing")
	return cmd
}

func newSIMListCmd(a *app) *cobra.Command {
	var asJSON, withKeys bool
	var group string
	cmd := &cobra.Command{
		Use:   "list",
		Short: "List SIMs, ordered by IMSI",
		Long: `List SIMs, ordered by IMSI, as a table or with --json as a JSON array (the
export entry form). Keys are left out unless --with-keys.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if withKeys && !asJSON {
				return errors.New("sim list: --with-keys needs --json")
			}
			return a.withStore(func(st *udr.Store) error {
				w := bufio.NewWriter(a.stdout)
				var tw *tabwriter.Writer
				n := 0
				if asJSON {
					w.WriteString("[")
				} else {
					tw = tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
					fmt.Fprintln(tw, "IMSI\tMSISDN\tSIM ID\tGROUP\tSTATUS\tIMEI LOCK\tSQN")
				}
				err := st.ForEachSIM(func(s udr.SIM) error {
					if group != "" && s.Group != group {
						return nil
					}
					if tw != nil {
						_, err := fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\n", s.IMSI, dash(s.MSISDN), dash(s.SIMID),
							s.Group, s.Status, dash(s.IMEILock), udr.FormatSQN(s.SQN))
						return err
					}
					b, err := json.Marshal(udr.EntryOf(s, withKeys))
					if err != nil {
						return err
					}
					if n > 0 {
						w.WriteString(",")
					}
					w.WriteString("\n  ")
					w.Write(b)
					n++
					return nil
				})
				if err != nil {
					return err
				}
				if tw != nil {
					if err := tw.Flush(); err != nil {
						return err
					}
				} else {
					if n > 0 {
						w.WriteString("\n")
					}
					w.WriteString("]\n")
				}
				return w.Flush()
			})
		},
	}
	cmd.Flags().BoolVar(&asJSON, "json", false, "print JSON")
	cmd.Flags().BoolVar(&withKeys, "with-keys", false, "include K, OP and OPc (with --json)")
	cmd.Flags().StringVar(&group, "group", "", "only SIMs in this group")
	return cmd
}

func dash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

func newSIMShowCmd(a *app) *cobra.Command {
	var withKeys bool
	cmd := &cobra.Command{
		Use:   "show IMSI",
		Short: "Print one SIM as JSON",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return a.withStore(func(st *udr.Store) error {
				s, err := st.GetSIM(args[0])
				if err != nil {
					return err
				}
				return writeJSON(a.stdout, udr.EntryOf(s, withKeys))
			})
		},
	}
	cmd.Flags().BoolVar(&withKeys, "with-keys", false, "include K, OP and OPc")
	return cmd
}

func newSIMExportCmd(a *app) *cobra.Command {
	var format, out string
	var withKeys bool
	cmd := &cobra.Command{
		Use:   "export [--format json|yaml|csv] [--with-keys] [-o FILE]",
		Short: "Write every SIM as an import file",
		Long: `Write every SIM in the import file format (JSON or YAML {"sims": [...]}, or CSV
with a header row), to stdout or -o FILE (mode 0600). With --with-keys the
output holds K, OP and OPc and imports back to the same SIMs (sim import
--replace); without, keys are left out.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			f, err := udr.ParseFormat(format)
			if err != nil {
				return fmt.Errorf("sim export: --format: %w", err)
			}
			var entries []udr.Entry
			err = a.withStore(func(st *udr.Store) error {
				return st.ForEachSIM(func(s udr.SIM) error {
					entries = append(entries, udr.EntryOf(s, withKeys))
					return nil
				})
			})
			if err != nil {
				return err
			}
			if out == "" {
				return udr.WriteExport(a.stdout, f, entries)
			}
			fh, err := os.OpenFile(out, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o600)
			if err != nil {
				return fmt.Errorf("sim export: %w", err)
			}
			if err := udr.WriteExport(fh, f, entries); err != nil {
				fh.Close()
				return err
			}
			return fh.Close()
		},
	}
	cmd.Flags().StringVar(&format, "format", "json", "json, yaml or csv")
	cmd.Flags().BoolVar(&withKeys, "with-keys", false, "include K, OP and OPc")
	cmd.Flags().StringVarP(&out, "output", "o", "", "write to FILE instead of stdout")
	return cmd
}

func newSIMDeleteCmd(a *app) *cobra.Command {
	return &cobra.Command{
		Use:   "delete IMSI...",
		Short: "Delete SIMs (all or none: every IMSI must be stored)",
		Args:  cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return a.withStore(func(st *udr.Store) error { return st.DeleteSIMs(args...) })
		},
	}
}

func newSIMSetStatusCmd(a *app) *cobra.Command {
	return &cobra.Command{
		Use:   "set-status IMSI active|inactive",
		Short: "Activate or deactivate a SIM",
		Args:  cobra.ExactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			return a.withStore(func(st *udr.Store) error { return st.SetStatus(args[0], udr.Status(args[1])) })
		},
	}
}

func newSIMSetIMEILockCmd(a *app) *cobra.Command {
	return &cobra.Command{
		Use:   "set-imei-lock IMSI IMEI[|ANONYMOUS]|\"\"",
		Short: "Lock a SIM to an IMEI (an empty value removes the lock)",
		Args:  cobra.ExactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			return a.withStore(func(st *udr.Store) error { return st.SetIMEILock(args[0], args[1]) })
		},
	}
}

func newSIMSetGroupCmd(a *app) *cobra.Command {
	return &cobra.Command{
		Use:   "set-group IMSI GROUP",
		Short: "Move a SIM to a group",
		Args:  cobra.ExactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			return a.withStore(func(st *udr.Store) error { return st.SetGroup(args[0], args[1]) })
		},
	}
}
