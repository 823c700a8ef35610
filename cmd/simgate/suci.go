package main

import (
	"fmt"

	"github.com/spf13/cobra"

	"github.com/simgate/simgate/sim/suci"
)

func newSUCICmd(a *app) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "suci",
		Short: "Conceal a SUPI into a SUCI and de-conceal it (TS 33.501 6.12, Annex C)",
	}
	cmd.AddCommand(newSUCIConcealCmd(a), newSUCIDeconcealCmd(a), newSUCIKeygenCmd(a))
	return cmd
}

func newSUCIConcealCmd(a *app) *cobra.Command {
	var supiArg, scheme, hnPub, routing, ephPriv string
	var keyID uint8
	var mncLen int
	cmd := &cobra.Command{
		Use:   "conceal --supi imsi-... --scheme null|A|B [--hn-pub HEX --key-id N] [--routing R] [--eph-priv HEX]",
		Short: "Print the SUCI for a SUPI",
		Long: `Print the SUCI (TS 23.003 2.2B: suci-0-<mcc>-<mnc>-<routing>-<scheme>-<keyid>-<output>)
that a UE would send for the SUPI. Profiles A and B need the home network public
key (--hn-pub, as printed by 'simgate suci keygen') and its id; --eph-priv fixes
the ephemeral key for reproducible output. The SUPI does not carry the MNC
length: --mnc-len says it (default 2).`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			supi, err := suci.ParseSUPI(supiArg, mncLen)
			if err != nil {
				return fmt.Errorf("--supi: %w", err)
			}
			sch, err := suci.ParseScheme(scheme)
			if err != nil {
				return fmt.Errorf("--scheme: %w", err)
			}
			p := suci.Params{RoutingIndicator: routing, Scheme: sch, KeyID: keyID}
			if sch != suci.SchemeNull {
				if hnPub == "" {
					return fmt.Errorf("--hn-pub: scheme %s needs the home network public key", sch)
				}
				if p.HNPublicKey, err = suci.ParsePublicKey(sch, hnPub); err != nil {
					return fmt.Errorf("--hn-pub: %w", err)
				}
				if ephPriv != "" {
					eph, err := suci.ParsePrivateKey(sch, ephPriv)
					if err != nil {
						return fmt.Errorf("--eph-priv: %w", err)
					}
					p.EphemeralKey = eph.Bytes()
				}
			}
			s, err := suci.Conceal(supi, p)
			if err != nil {
				return err
			}
			_, err = fmt.Fprintln(a.stdout, s.String())
			return err
		},
	}
	f := cmd.Flags()
	f.StringVar(&supiArg, "supi", "", "SUPI, e.g. imsi-001010000000001")
	f.IntVar(&mncLen, "mnc-len", 2, "MNC length of the IMSI (2 or 3)")
	f.StringVar(&scheme, "scheme", "null", "protection scheme: null, A or B")
	f.StringVar(&hnPub, "hn-pub", "", "home network public key (hex; Profile B compressed or uncompressed)")
	f.Uint8Var(&keyID, "key-id", 0, "home network public key id (0 for the null scheme, 1-255 otherwise)")
	f.StringVar(&routing, "routing", suci.DefaultRoutingIndicator, "routing indicator (1-4 digits)")
	f.StringVar(&ephPriv, "eph-priv", "", "ephemeral private key (hex), for reproducible output")
	_ = cmd.MarkFlagRequired("supi")
	return cmd
}

func newSUCIDeconcealCmd(a *app) *cobra.Command {
	var suciArg, hnPriv string
	cmd := &cobra.Command{
		Use:   "deconceal --suci STRING [--hn-priv HEX]",
		Short: `De-conceal a SUCI and print {"supi": "imsi-..."}`,
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			s, err := suci.Parse(suciArg)
			if err != nil {
				return fmt.Errorf("--suci: %w", err)
			}
			var key *suci.PrivateKey
			if s.Scheme != suci.SchemeNull {
				if hnPriv == "" {
					return fmt.Errorf("--hn-priv: scheme %s needs the home network private key", s.Scheme)
				}
				if key, err = suci.ParsePrivateKey(s.Scheme, hnPriv); err != nil {
					return fmt.Errorf("--hn-priv: %w", err)
				}
			}
			supi, err := suci.Deconceal(s, key)
			if err != nil {
				return fmt.Errorf("deconceal: %w", err)
			}
			return writeJSON(a.stdout, map[string]string{"supi": supi.String()})
		},
	}
	f := cmd.Flags()
	f.StringVar(&suciArg, "suci", "", "SUCI string (suci-0-...)")
	f.StringVar(&hnPriv, "hn-priv", "", "home network private key (hex) for Profiles A and B")
	_ = cmd.MarkFlagRequired("suci")
	return cmd
}

func newSUCIKeygenCmd(a *app) *cobra.Command {
	var scheme string
	cmd := &cobra.Command{
		Use:   "keygen --scheme A|B",
		Short: "Generate a home network key pair and print it as JSON hex",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			sch, err := suci.ParseScheme(scheme)
			if err != nil || sch == suci.SchemeNull {
				return fmt.Errorf("--scheme: want A or B, got %q", scheme)
			}
			k, err := suci.GenerateKey(sch)
			if err != nil {
				return err
			}
			return writeJSON(a.stdout, map[string]string{
				"scheme": sch.String(), "private_key": k.Hex(), "public_key": k.PublicKey().Hex(),
			})
		},
	}
	cmd.Flags().StringVar(&scheme, "scheme", "A", "profile: A (X25519) or B (P-256)")
	return cmd
}
