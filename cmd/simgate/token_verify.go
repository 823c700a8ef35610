package main

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/spf13/cobra"

	"github.com/simgate/simgate/endorse/verify"
)

// tokenSubcommands are the commands under `simgate token`.
var tokenSubcommands = []func(*app) *cobra.Command{
	newTokenVerifyCmd,
	newTokenDecodeCmd,
	newTokenIssueCmd,
}

func newTokenCmd(a *app) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "token",
		Short: "Work with Endorse tokens (issue, verify, decode)",
	}
	for _, mk := range tokenSubcommands {
		cmd.AddCommand(mk(a))
	}
	return cmd
}

func newTokenVerifyCmd(a *app) *cobra.Command {
	var (
		jwks, keysURL, keyFile string
		iss, aud, sub          string
		imsi, imei             string
		params                 []string
		leeway                 time.Duration
	)
	cmd := &cobra.Command{
		Use:   "verify [--jwks URL | --keys-url URL | --key FILE.pem] TOKEN",
		Short: "Verify an Endorse token and print its claims as JSON",
		Long: `Verify an Endorse token (JWS compact, RS256 or ES256): the key named by its kid,
the signature, iss, aud, sub, exp and nbf, and any binding asked for. On
success print the verified claims as JSON and exit 0; otherwise print the
reason and exit non-zero. TOKEN "-" reads the token from standard input.

Key sources (exactly one):
  --jwks URL       a JWK Set, e.g. http://127.0.0.1:8080/.well-known/jwks.json
  --keys-url URL   PEM keys at URL/soracom-public-keys/{kid}; for real SORACOM
                   tokens: ` + verify.SORACOMKeysURL + `
  --key FILE.pem   a PEM public key file (one key answers any kid; several
                   keys need "kid:" PEM headers)`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			tok, err := tokenArg(cmd, args[0])
			if err != nil {
				return err
			}
			opts := []verify.Option{
				verify.WithIssuer(iss), verify.WithAudience(aud), verify.WithSubject(sub), verify.WithLeeway(leeway),
			}
			switch {
			case jwks != "":
				opts = append(opts, verify.WithJWKS(jwks))
			case keysURL != "":
				opts = append(opts, verify.WithKeysURL(keysURL))
			case keyFile != "":
				opts = append(opts, verify.WithPEMFile(keyFile))
			}
			if imsi != "" {
				opts = append(opts, verify.WithIMSI(imsi))
			}
			if imei != "" {
				opts = append(opts, verify.WithIMEI(imei))
			}
			for _, p := range params {
				name, value, ok := strings.Cut(p, "=")
				if !ok || name == "" {
					return fmt.Errorf("token verify: --param %q: want name=value", p)
				}
				opts = append(opts, verify.WithRequestParameter(name, value))
			}
			v, err := verify.New(opts...)
			if err != nil {
				return fmt.Errorf("token verify: %w", err)
			}
			claims, err := v.Verify(cmd.Context(), tok)
			if err != nil {
				return fmt.Errorf("token verify: %w", err)
			}
			return writeJSON(a.stdout, claims)
		},
	}
	f := cmd.Flags()
	f.StringVar(&jwks, "jwks", "", "JWK Set URL")
	f.StringVar(&keysURL, "keys-url", "", "base URL of PEM keys at /soracom-public-keys/{kid}")
	f.StringVar(&keyFile, "key", "", "PEM public key file")
	f.StringVar(&iss, "iss", verify.DefaultIssuer, "required issuer (iss)")
	f.StringVar(&aud, "aud", verify.DefaultAudience, "required audience (aud)")
	f.StringVar(&sub, "sub", verify.DefaultSubject, "required subject (sub)")
	f.DurationVar(&leeway, "leeway", verify.DefaultLeeway, "clock skew tolerated on exp and nbf (at most 5m)")
	f.StringVar(&imsi, "imsi", "", "require this IMSI in the token")
	f.StringVar(&imei, "imei", "", "require this IMEI in the token")
	f.StringArrayVar(&params, "param", nil, "require request parameter name=value (repeatable), e.g. a nonce")
	cmd.MarkFlagsMutuallyExclusive("jwks", "keys-url", "key")
	cmd.MarkFlagsOneRequired("jwks", "keys-url", "key")
	return cmd
}

// decoded is the output of `token decode`. Status comes first so that no
// reader can miss that nothing was checked.
type decoded struct {
	Status    string            `json:"status"`
	Warning   string            `json:"warning"`
	Header    json.RawMessage   `json:"header"`
	Claims    json.RawMessage   `json:"claims,omitempty"`
	Payload   string            `json:"payload,omitempty"`
	Times     map[string]string `json:"times,omitempty"`
	Signature int               `json:"signature_bytes"`
}

func newTokenDecodeCmd(a *app) *cobra.Command {
	return &cobra.Command{
		Use:   "decode TOKEN",
		Short: "Show a token's header and claims WITHOUT verifying it (UNVERIFIED)",
		Long: `Decode any JWS compact token (a simgate or a real SORACOM token) and print its
header and claims as JSON, labelled "status": "UNVERIFIED": neither the
signature nor any claim is checked, so nothing shown may be trusted. Use
"simgate token verify" for that. TOKEN "-" reads the token from standard input.`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			tok, err := tokenArg(cmd, args[0])
			if err != nil {
				return err
			}
			parts, err := verify.Split(tok)
			if err != nil {
				return fmt.Errorf("token decode: %w", err)
			}
			if !json.Valid(parts.Header) {
				return fmt.Errorf("token decode: %w: header is not JSON", verify.ErrMalformed)
			}
			out := decoded{
				Status:    "UNVERIFIED",
				Warning:   "signature and claims were NOT checked; use `simgate token verify`",
				Header:    parts.Header,
				Signature: len(parts.Signature),
			}
			switch {
			case json.Valid(parts.Payload):
				out.Claims = parts.Payload
				out.Times = claimTimes(parts.Payload)
			case utf8.Valid(parts.Payload):
				out.Payload = string(parts.Payload)
			default:
				out.Payload = "base64url:" + base64.RawURLEncoding.EncodeToString(parts.Payload)
			}
			fmt.Fprintln(a.stderr, "simgate: UNVERIFIED: the token's signature and claims were not checked")
			return writeJSON(a.stdout, out)
		},
	}
}

// claimTimes renders the NumericDate claims present as RFC 3339 UTC.
func claimTimes(payload []byte) map[string]string {
	var c map[string]json.RawMessage
	if json.Unmarshal(payload, &c) != nil {
		return nil
	}
	out := map[string]string{}
	for _, name := range []string{"iat", "nbf", "exp"} {
		var d verify.NumericDate
		if raw, ok := c[name]; ok && json.Unmarshal(raw, &d) == nil && d != 0 {
			out[name] = d.String()
		}
	}
	if len(out) == 0 {
		return nil
	}
	return out
}

// tokenArg returns the token argument, or standard input for "-", without
// surrounding white space.
func tokenArg(cmd *cobra.Command, arg string) (string, error) {
	if arg == "-" {
		b, err := io.ReadAll(io.LimitReader(cmd.InOrStdin(), verify.MaxTokenLen+1024))
		if err != nil {
			return "", fmt.Errorf("token: reading standard input: %w", err)
		}
		arg = string(b)
	}
	tok := strings.TrimSpace(arg)
	if tok == "" {
		return "", errors.New("token: empty token")
	}
	return tok, nil
}

func writeJSON(w io.Writer, v any) error {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	enc.SetIndent("", "  ")
	if err := enc.Encode(v); err != nil {
		return err
	}
	_, err := w.Write(buf.Bytes())
	return err
}
