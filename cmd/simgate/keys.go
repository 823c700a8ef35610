package main

import (
	"fmt"

	"github.com/spf13/cobra"

	"github.com/simgate/simgate/endorse"
)

// endorseConfig is the endorse section of the loaded configuration.
func (a *app) endorseConfig() endorse.Config { return a.cfg.Endorse }

// openKeys opens the Endorse key ring in the data directory, creating the
// first key if there is none.
func (a *app) openKeys() (*endorse.Keys, error) {
	return endorse.OpenKeys(a.dataDir, a.endorseConfig(), endorse.WithLogger(a.logger()))
}

func newKeysCmd(a *app) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "keys",
		Short: "Manage the Endorse signing keys (list, rotate, export)",
		Long: `The Endorse token signing keys live in <data-dir>/endorse/keys.json (0600). The
first key is made on first use. Rotation makes a new key the signer; the old
public key stays published until every token it signed has expired.`,
	}
	cmd.AddCommand(newKeysListCmd(a), newKeysRotateCmd(a), newKeysExportCmd(a))
	a.flags.add(cmd.PersistentFlags(), "endorse")
	return cmd
}

func newKeysListCmd(a *app) *cobra.Command {
	return &cobra.Command{
		Use:   "list",
		Short: "List the published keys as JSON, the signing key first",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			k, err := a.openKeys()
			if err != nil {
				return err
			}
			return writeJSON(a.stdout, k.List())
		},
	}
}

func newKeysRotateCmd(a *app) *cobra.Command {
	return &cobra.Command{
		Use:   "rotate",
		Short: "Make a new signing key; print it as JSON",
		Long: `Make a new key of endorse.algorithm the signer. The old key loses its private
half and stays published until retired_at + endorse.max_token_timeout + 60 s.
A running server picks the new key up when it reloads the ring.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			k, err := a.openKeys()
			if err != nil {
				return err
			}
			info, err := k.Rotate()
			if err != nil {
				return err
			}
			return writeJSON(a.stdout, info)
		},
	}
}

func newKeysExportCmd(a *app) *cobra.Command {
	var jwks bool
	var kid string
	cmd := &cobra.Command{
		Use:   "export [--kid KID | --jwks]",
		Short: "Print the signing key's public half as PEM, or all published keys as a JWK Set",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if kid != "" && !endorse.ValidKID(kid) {
				return fmt.Errorf("keys export: --kid %q: want v1-<32 lowercase hex>-x509.pem", kid)
			}
			k, err := a.openKeys()
			if err != nil {
				return err
			}
			if jwks {
				_, err := fmt.Fprintf(a.stdout, "%s\n", k.JWKS())
				return err
			}
			if kid == "" {
				kid = k.Signing().KID
			}
			pem, ok := k.PublicKeyPEM(kid)
			if !ok {
				return fmt.Errorf("keys export: no published key %s", kid)
			}
			_, err = a.stdout.Write(pem)
			return err
		},
	}
	cmd.Flags().BoolVar(&jwks, "jwks", false, "print all published keys as a JWK Set (RFC 7517)")
	cmd.Flags().StringVar(&kid, "kid", "", "export this published key instead of the signing key")
	cmd.MarkFlagsMutuallyExclusive("jwks", "kid")
	return cmd
}
