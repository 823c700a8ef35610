package main

import (
	"fmt"
	"text/tabwriter"

	"github.com/spf13/cobra"

	"github.com/simgate/simgate/core/udr"
)

func newGroupCmd(a *app) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "group",
		Short: "Show and change group settings (SoracomEndorse, SoracomBeam)",
		Long: `Groups hold the settings their SIMs share, by namespace as SORACOM groups do:
SoracomEndorse (token contents and lifetime) and SoracomBeam (entry points).
The "default" group always exists; a group nothing was set for has the
defaults (Endorse on, IMSI and IMEI in a 600 s token).`,
	}
	cmd.AddCommand(newGroupSetCmd(a), newGroupShowCmd(a), newGroupListCmd(a), newGroupDeleteCmd(a))
	return cmd
}

func newGroupSetCmd(a *app) *cobra.Command {
	return &cobra.Command{
		Use:   "set GROUP KEY=VALUE...",
		Short: "Change group settings by key",
		Long: `Change settings of GROUP (created if new) and print the group as JSON. All
assignments apply together or not at all.

` + udr.GroupKeysHelp + `

Examples:
  simgate group set fleet endorse.parametersToEndorse.imei=false endorse.tokenTimeoutSeconds=6000
  simgate group set fleet 'beam[tcp://beam.soracom.io:8023].destination=tcps://example.com:8023' \
      'beam[tcp://beam.soracom.io:8023].addSignature=true' 'beam[tcp://beam.soracom.io:8023].psk=secret'`,
		Args: cobra.MinimumNArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			name := args[0]
			type kv struct{ k, v string }
			var kvs []kv
			for _, arg := range args[1:] {
				k, v, err := udr.SplitAssignment(arg)
				if err != nil {
					return fmt.Errorf("group set: %w", err)
				}
				kvs = append(kvs, kv{k, v})
			}
			return a.withStore(func(st *udr.Store) error {
				g, err := st.UpdateGroup(name, func(g *udr.Group) error {
					for _, p := range kvs {
						if err := g.Set(p.k, p.v); err != nil {
							return err
						}
					}
					return nil
				})
				if err != nil {
					return err
				}
				return writeJSON(a.stdout, g)
			})
		},
	}
}

func newGroupShowCmd(a *app) *cobra.Command {
	return &cobra.Command{
		Use:   "show GROUP",
		Short: "Print a group's settings as JSON",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return a.withStore(func(st *udr.Store) error {
				g, err := st.GetGroup(args[0])
				if err != nil {
					return err
				}
				return writeJSON(a.stdout, g)
			})
		},
	}
}

func newGroupListCmd(a *app) *cobra.Command {
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "list",
		Short: "List groups: the default group, groups with settings and groups SIMs are in",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return a.withStore(func(st *udr.Store) error {
				groups, err := st.ListGroups()
				if err != nil {
					return err
				}
				counts, err := st.GroupSIMCounts()
				if err != nil {
					return err
				}
				if asJSON {
					type row struct {
						udr.Group
						SIMs int `json:"sims"`
					}
					rows := make([]row, len(groups))
					for i, g := range groups {
						rows[i] = row{g, counts[g.Name]}
					}
					return writeJSON(a.stdout, rows)
				}
				tw := tabwriter.NewWriter(a.stdout, 0, 0, 2, ' ', 0)
				fmt.Fprintln(tw, "GROUP\tSIMS\tENDORSE\tTOKEN TTL\tBEAM ENTRIES")
				for _, g := range groups {
					endorse := "off"
					if g.Endorse.Enabled {
						endorse = "on"
					}
					fmt.Fprintf(tw, "%s\t%d\t%s\t%ds\t%d\n", g.Name, counts[g.Name], endorse, g.Endorse.TokenTimeoutSeconds, len(g.Beam))
				}
				return tw.Flush()
			})
		},
	}
	cmd.Flags().BoolVar(&asJSON, "json", false, "print JSON")
	return cmd
}

func newGroupDeleteCmd(a *app) *cobra.Command {
	return &cobra.Command{
		Use:   "delete GROUP",
		Short: "Delete a group's settings (the default group is reset instead)",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return a.withStore(func(st *udr.Store) error { return st.DeleteGroup(args[0]) })
		},
	}
}
