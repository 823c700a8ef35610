package main

import (
	"github.com/spf13/cobra"

	"github.com/simgate/simgate/gtp/dn"
)

// newCACmd is `simgate ca`: simgate's certificate authority, which issues
// the HTTPS certificate of the in-network Endorse endpoint.
func newCACmd(a *app) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "ca",
		Short: "Simgate's certificate authority for in-network HTTPS (export)",
		Long: `simgate keeps its own certificate authority in <data-dir>/ca (made on first
use). It issues the certificate of https://endorse.soracom.io inside the data
network; device code trusts it by adding the exported certificate.`,
	}
	cmd.AddCommand(&cobra.Command{
		Use:   "export",
		Short: "Print the CA certificate (PEM) for device trust stores",
		Args:  cobra.NoArgs,
		RunE: func(*cobra.Command, []string) error {
			ca, err := dn.LoadOrCreateCA(a.dataDir)
			if err != nil {
				return err
			}
			_, err = a.stdout.Write(ca.PEM())
			return err
		},
	})
	return cmd
}
