package main

import (
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"strings"

	"github.com/spf13/cobra"

	"github.com/simgate/simgate/core/udr"
	"github.com/simgate/simgate/sim/aka"
	"github.com/simgate/simgate/sim/kdf"
	"github.com/simgate/simgate/sim/milenage"
)

func newAKACmd(a *app) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "aka",
		Short: "Run the SIM algorithms: MILENAGE outputs and authentication vectors",
	}
	cmd.AddCommand(newAKAMilenageCmd(a), newAKAVectorCmd(a))
	return cmd
}

// hexArg decodes a hex flag of exactly n bytes.
func hexArg(flag, s string, n int) ([]byte, error) {
	s = strings.TrimPrefix(strings.ToLower(strings.TrimSpace(s)), "0x")
	b, err := hex.DecodeString(s)
	if err != nil {
		return nil, fmt.Errorf("--%s: not hex: %q", flag, s)
	}
	if len(b) != n {
		return nil, fmt.Errorf("--%s: want %d bytes (%d hex digits), got %d", flag, n, 2*n, len(b))
	}
	return b, nil
}

func hex16(flag, s string) (k [16]byte, err error) {
	b, err := hexArg(flag, s, 16)
	copy(k[:], b)
	return k, err
}

func h(b []byte) string { return hex.EncodeToString(b) }

func newAKAMilenageCmd(a *app) *cobra.Command {
	var k, op, opc, rnd, sqn, amf string
	cmd := &cobra.Command{
		Use:   "milenage --k HEX (--op HEX | --opc HEX) --rand HEX --sqn HEX --amf HEX",
		Short: "Compute MILENAGE f1..f5* (TS 35.206) and print them as JSON",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			key, err := hex16("k", k)
			if err != nil {
				return err
			}
			var m *milenage.Milenage
			switch {
			case (op == "") == (opc == ""):
				return fmt.Errorf("give exactly one of --op and --opc")
			case op != "":
				o, err := hex16("op", op)
				if err != nil {
					return err
				}
				m, err = milenage.NewOP(key, o)
				if err != nil {
					return err
				}
			default:
				o, err := hex16("opc", opc)
				if err != nil {
					return err
				}
				m, err = milenage.New(key, o)
				if err != nil {
					return err
				}
			}
			r, err := hex16("rand", rnd)
			if err != nil {
				return err
			}
			sb, err := hexArg("sqn", sqn, 6)
			if err != nil {
				return err
			}
			ab, err := hexArg("amf", amf, 2)
			if err != nil {
				return err
			}
			var s6 [6]byte
			var a2 [2]byte
			copy(s6[:], sb)
			copy(a2[:], ab)
			macA, macS := m.F1(r, s6, a2)
			res, ck, ik, ak := m.F2345(r)
			akS := m.F5Star(r)
			o := m.OPc()
			return writeJSON(a.stdout, map[string]string{
				"opc": h(o[:]), "mac_a": h(macA[:]), "mac_s": h(macS[:]), "res": h(res[:]),
				"ck": h(ck[:]), "ik": h(ik[:]), "ak": h(ak[:]), "ak_s": h(akS[:]),
			})
		},
	}
	f := cmd.Flags()
	f.StringVar(&k, "k", "", "subscriber key K (32 hex digits)")
	f.StringVar(&op, "op", "", "operator variant OP (32 hex digits)")
	f.StringVar(&opc, "opc", "", "OPc (32 hex digits)")
	f.StringVar(&rnd, "rand", "", "RAND (32 hex digits)")
	f.StringVar(&sqn, "sqn", "", "SQN (12 hex digits)")
	f.StringVar(&amf, "amf", "", "authentication management field (4 hex digits)")
	for _, n := range []string{"k", "rand", "sqn", "amf"} {
		_ = cmd.MarkFlagRequired(n)
	}
	return cmd
}

func newAKAVectorCmd(a *app) *cobra.Command {
	var imsi, rnd, snn string
	cmd := &cobra.Command{
		Use:   "vector --imsi IMSI [--rand HEX] [--snn NAME]",
		Short: "Generate an authentication vector from the store, advancing the SIM's SQN",
		Long: `Generate an authentication vector for a provisioned SIM the way the AuC does
(TS 33.102 6.3.2): a fresh RAND (or --rand), the next SQN, stored durably before
the vector is printed. With --snn (serving network name, e.g.
5G:mnc001.mcc001.3gppnetwork.org) the vector is a 5G one: the AMF separation bit
is set and xres_star and kausf (TS 33.501 A.2, A.4) are added.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := udr.ValidateIMSI(imsi, 2); err != nil {
				return fmt.Errorf("--imsi: %w", err)
			}
			fiveG := snn != ""
			if fiveG && !strings.HasPrefix(snn, "5G:") {
				return fmt.Errorf("--snn: %q is not a serving network name (5G:mnc<MNC>.mcc<MCC>.3gppnetwork.org)", snn)
			}
			st, err := a.openStore()
			if err != nil {
				return err
			}
			defer st.Close()
			auc, err := aka.NewAuC(st, rand.Reader, aka.AuCConfig{SeparationBit: fiveG})
			if err != nil {
				return err
			}
			var v aka.Vector
			if rnd != "" {
				r, err := hex16("rand", rnd)
				if err != nil {
					return err
				}
				v, err = auc.VectorWithRAND(imsi, r)
				if err != nil {
					return fmt.Errorf("vector for %s: %w", imsi, err)
				}
			} else if v, err = auc.Vector(imsi); err != nil {
				return fmt.Errorf("vector for %s: %w", imsi, err)
			}
			out := map[string]string{
				"rand": h(v.RAND[:]), "autn": h(v.AUTN[:]), "xres": h(v.XRES[:]),
				"ck": h(v.CK[:]), "ik": h(v.IK[:]), "sqn": h(v.SQN[:]),
			}
			if fiveG {
				var sqnAK [6]byte
				for i := range sqnAK {
					sqnAK[i] = v.SQN[i] ^ v.AK[i]
				}
				xs, err := kdf.RESStar(v.CK, v.IK, snn, v.RAND, v.XRES[:])
				if err != nil {
					return err
				}
				ka, err := kdf.KAUSF(v.CK, v.IK, snn, sqnAK)
				if err != nil {
					return err
				}
				out["xres_star"], out["kausf"] = h(xs[:]), h(ka[:])
			}
			return writeJSON(a.stdout, out)
		},
	}
	f := cmd.Flags()
	f.StringVar(&imsi, "imsi", "", "IMSI of a provisioned SIM")
	f.StringVar(&rnd, "rand", "", "use this RAND (32 hex digits) instead of a random one")
	f.StringVar(&snn, "snn", "", "serving network name: make a 5G vector with xres_star and kausf")
	_ = cmd.MarkFlagRequired("imsi")
	return cmd
}
