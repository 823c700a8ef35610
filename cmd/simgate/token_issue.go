package main

import (
	"errors"
	"fmt"
	"regexp"
	"strings"

	"github.com/spf13/cobra"

	"github.com/simgate/simgate/core/udr"
	"github.com/simgate/simgate/endorse"
)

var (
	msisdnRE = regexp.MustCompile(`^[0-9]{1,15}$`)
	simIDRE  = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$`)
)

func newTokenIssueCmd(a *app) *cobra.Command {
	var (
		imsi, imei, group, msisdn, simID string
		params                           []string
	)
	cmd := &cobra.Command{
		Use:   "issue --imsi IMSI [--imei IMEI] [--param name=value]...",
		Short: "Sign an Endorse token offline with the data directory's key",
		Long: `Sign a token as the Endorse endpoint would for a device with this SIM, with the
data directory's signing key, and print it. For server developers who need
tokens in their own tests.

A provisioned SIM brings its group, MSISDN, SIM ID and status from the
subscriber store; the group's Endorse settings decide what goes into the token
(items, lifetime, request parameters), and an inactive SIM or a group with
Endorse disabled gets no token. A SIM that is not provisioned is taken as
active, in --group (default "default") with --msisdn and --sim-id.
The IMEI stands for the one the network would report, so it must pass the
SIM's IMEI lock.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := udr.ValidateIMSI(imsi, 2); err != nil {
				return fmt.Errorf("token issue: --imsi: %w", err)
			}
			if imei != "" {
				if err := udr.ValidateIMEI(imei); err != nil {
					return fmt.Errorf("token issue: --imei: %w", err)
				}
			}
			reqParams := make(map[string]string, len(params))
			for _, p := range params {
				name, value, ok := strings.Cut(p, "=")
				if !ok || name == "" {
					return fmt.Errorf("token issue: --param %q: want name=value", p)
				}
				if name == endorse.RedirectParam {
					return fmt.Errorf("token issue: --param %s: reserved name (the endpoint never puts it in a token)", name)
				}
				if _, dup := reqParams[name]; dup {
					return fmt.Errorf("token issue: --param %s given twice", name)
				}
				reqParams[name] = value
			}
			id := endorse.Identity{IMSI: imsi, IMEI: imei}
			var g udr.Group
			err := a.withStore(func(st *udr.Store) error {
				sim, err := st.GetSIM(imsi)
				switch {
				case err == nil:
					f := cmd.Flags()
					for _, name := range []string{"group", "msisdn", "sim-id"} {
						if f.Changed(name) {
							return fmt.Errorf("token issue: --%s: SIM %s is provisioned; its group, MSISDN and SIM ID come from the store", name, imsi)
						}
					}
					lock, err := udr.ParseIMEILock(sim.IMEILock)
					if err != nil {
						return fmt.Errorf("token issue: sim %s: %w", imsi, err)
					}
					if !lock.Permits(imei) {
						return fmt.Errorf("token issue: --imei %q: the SIM's IMEI lock (%s) would refuse that session", imei, lock)
					}
					id.MSISDN, id.SIMID, id.Group = sim.MSISDN, sim.SIMID, sim.Group
					id.Active = sim.Status == udr.StatusActive
				case errors.Is(err, udr.ErrNotFound):
					if err := udr.ValidateGroupName(group); err != nil {
						return fmt.Errorf("token issue: --group: %w", err)
					}
					if msisdn != "" && !msisdnRE.MatchString(msisdn) {
						return fmt.Errorf("token issue: --msisdn %q: want 1 to 15 digits (E.164)", msisdn)
					}
					if simID != "" && !simIDRE.MatchString(simID) {
						return fmt.Errorf("token issue: --sim-id %q: want 1-64 of [A-Za-z0-9._-]", simID)
					}
					id.MSISDN, id.SIMID, id.Group, id.Active = msisdn, simID, group, true
				default:
					return err
				}
				g, err = st.GetGroup(id.Group)
				return err
			})
			if err != nil {
				return err
			}
			cfg := a.endorseConfig()
			keys, err := a.openKeys()
			if err != nil {
				return err
			}
			is, err := endorse.NewIssuer(keys, cfg)
			if err != nil {
				return err
			}
			tok, err := is.Issue(id, g.Endorse, reqParams)
			if err != nil {
				return fmt.Errorf("token issue: group %s: %w", id.Group, err)
			}
			_, err = fmt.Fprintln(a.stdout, tok)
			return err
		},
	}
	f := cmd.Flags()
	f.StringVar(&imsi, "imsi", "", "IMSI of the SIM (required)")
	f.StringVar(&imei, "imei", "", "IMEI of the device, 15 digits (omitted from the token if not given)")
	f.StringArrayVar(&params, "param", nil, "request parameter name=value (repeatable); in the token if the group enables requestParameters")
	f.StringVar(&group, "group", udr.DefaultGroup, "group of a SIM that is not provisioned")
	f.StringVar(&msisdn, "msisdn", "", "MSISDN of a SIM that is not provisioned")
	f.StringVar(&simID, "sim-id", "", "SIM ID of a SIM that is not provisioned")
	_ = cmd.MarkFlagRequired("imsi")
	a.flags.add(f, "endorse")
	return cmd
}
