package main

import (
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/simgate/simgate/core/udr"
	"github.com/simgate/simgate/endorse"
)

// provision stores SIMs and groups in dir's subscriber store.
func provision(t *testing.T, dir string, sims []udr.SIM, groups []udr.Group) {
	t.Helper()
	st, err := udr.OpenDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	for _, g := range groups {
		if err := st.PutGroup(g); err != nil {
			t.Fatal(err)
		}
	}
	for _, s := range sims {
		s.K = [16]byte{1}
		s.OPc = [16]byte{2}
		if err := st.AddSIM(s); err != nil {
			t.Fatal(err)
		}
	}
}

// verifyIssued checks a `token issue` output against the exported key and
// returns the header JSON and the claims.
func verifyIssued(t *testing.T, dir, out string) (string, map[string]any) {
	t.Helper()
	tok := strings.TrimSpace(out)
	if strings.Count(out, "\n") != 1 || strings.Count(tok, ".") != 2 {
		t.Fatalf("output is not one token line: %q", out)
	}
	pemOut, errs, code := runCmd(t, "keys", "export", "--data-dir", dir)
	if code != 0 {
		t.Fatal(errs)
	}
	blk, _ := pem.Decode([]byte(pemOut))
	pub, err := x509.ParsePKIXPublicKey(blk.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	claims := jwt.MapClaims{}
	_, err = jwt.ParseWithClaims(tok, claims, func(*jwt.Token) (any, error) { return pub, nil },
		jwt.WithValidMethods([]string{"RS256"}), jwt.WithAudience(endorse.Audience), jwt.WithSubject(endorse.Subject),
		jwt.WithIssuer(endorse.DefaultIssuer), jwt.WithExpirationRequired())
	if err != nil {
		t.Fatalf("issued token does not verify: %v", err)
	}
	hdr, _ := base64.RawURLEncoding.DecodeString(strings.Split(tok, ".")[0])
	return string(hdr), claims
}

func TestTokenIssue(t *testing.T) {
	dir := t.TempDir()
	provision(t, dir, []udr.SIM{
		{IMSI: "295050913244223", MSISDN: "818012345678", SIMID: "8981100001234567890", Group: "iot"},
		{IMSI: "295050913244224", Status: udr.StatusInactive},
		{IMSI: "295050913244225", Group: "off"},
		{IMSI: "295050913244226", IMEILock: "867698047437580"},
	}, []udr.Group{
		{Name: "iot", Endorse: udr.EndorseConfig{Enabled: true, TokenTimeoutSeconds: 180,
			ParametersToEndorse: udr.EndorseParams{IMSI: true, MSISDN: true, SIMID: true, RequestParameters: true}}},
		{Name: "off", Endorse: udr.EndorseConfig{Enabled: false, TokenTimeoutSeconds: 600}},
	})
	kid := keysList(t, dir)[0].KID
	tests := []struct {
		name  string
		args  []string
		claim map[string]any
		ttl   float64
	}{
		{"not provisioned, default group", []string{"--imsi", "001010000000001", "--imei", "490154203237518", "--param", "a=b"},
			map[string]any{"imsi": "001010000000001", "imei": "490154203237518"}, 600},
		{"not provisioned, no IMEI", []string{"--imsi", "001010000000001"},
			map[string]any{"imsi": "001010000000001"}, 600},
		{"not provisioned, group from the store", []string{"--imsi", "001010000000002", "--group", "iot", "--msisdn", "8190", "--sim-id", "x1", "--param", "n=1"},
			map[string]any{"imsi": "001010000000002", "msisdn": "8190", "simId": "x1", "requestParameters": map[string]any{"n": "1"}}, 180},
		{"provisioned, its group's settings", []string{"--imsi", "295050913244223", "--imei", "490154203237518", "--param", "username=sora", "--param", "q=a=b,c"},
			map[string]any{"imsi": "295050913244223", "msisdn": "818012345678", "simId": "8981100001234567890",
				"requestParameters": map[string]any{"username": "sora", "q": "a=b,c"}}, 180},
		{"provisioned with an IMEI lock", []string{"--imsi", "295050913244226", "--imei", "867698047437580"},
			map[string]any{"imsi": "295050913244226", "imei": "867698047437580"}, 600},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			out, errs, code := runCmd(t, append([]string{"token", "issue", "--data-dir", dir}, tt.args...)...)
			if code != 0 {
				t.Fatalf("code %d: %s", code, errs)
			}
			hdr, claims := verifyIssued(t, dir, out)
			if want := `{"kid":"` + kid + `","alg":"RS256"}`; hdr != want {
				t.Errorf("header %s, want %s", hdr, want)
			}
			if got := claims["soracom-endorse-claim"]; !reflect.DeepEqual(got, tt.claim) {
				t.Errorf("claim %v, want %v", got, tt.claim)
			}
			iat := claims["iat"].(float64)
			if claims["exp"].(float64)-iat != tt.ttl || iat-claims["nbf"].(float64) != 60 ||
				time.Since(time.Unix(int64(iat), 0)).Abs() > time.Minute {
				t.Errorf("times %v", claims)
			}
		})
	}
}

func TestTokenIssueErrors(t *testing.T) {
	dir := t.TempDir()
	provision(t, dir, []udr.SIM{
		{IMSI: "295050913244224", Status: udr.StatusInactive},
		{IMSI: "295050913244225", Group: "off"},
		{IMSI: "295050913244226", IMEILock: "867698047437580"},
	}, []udr.Group{{Name: "off", Endorse: udr.EndorseConfig{Enabled: false, TokenTimeoutSeconds: 600}}})
	tests := []struct {
		name string
		args []string
		want string
	}{
		{"no imsi", nil, `"imsi" not set`},
		{"imsi not digits", []string{"--imsi", "29505091324422x"}, "--imsi"},
		{"imsi too long", []string{"--imsi", "2950509132442231"}, "--imsi"},
		{"imei length", []string{"--imsi", "001010000000001", "--imei", "12345"}, "--imei"},
		{"imei check digit", []string{"--imsi", "001010000000001", "--imei", "490154203237519"}, "check digit"},
		{"param without =", []string{"--imsi", "001010000000001", "--param", "novalue"}, "want name=value"},
		{"param empty name", []string{"--imsi", "001010000000001", "--param", "=v"}, "want name=value"},
		{"param reserved", []string{"--imsi", "001010000000001", "--param", "redirect_url=x"}, "reserved"},
		{"param twice", []string{"--imsi", "001010000000001", "--param", "a=1", "--param", "a=2"}, "given twice"},
		{"bad group name", []string{"--imsi", "001010000000001", "--group", "a b"}, "--group"},
		{"bad msisdn", []string{"--imsi", "001010000000001", "--msisdn", "+81"}, "--msisdn"},
		{"bad sim id", []string{"--imsi", "001010000000001", "--sim-id", "a/b"}, "--sim-id"},
		{"inactive SIM", []string{"--imsi", "295050913244224"}, "not active"},
		{"Endorse disabled", []string{"--imsi", "295050913244225"}, "disabled"},
		{"group of a provisioned SIM", []string{"--imsi", "295050913244224", "--group", "x"}, "is provisioned"},
		{"IMEI lock", []string{"--imsi", "295050913244226", "--imei", "490154203237518"}, "IMEI lock"},
		{"IMEI lock, no IMEI", []string{"--imsi", "295050913244226"}, "IMEI lock"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			out, errs, code := runCmd(t, append([]string{"token", "issue", "--data-dir", dir}, tt.args...)...)
			if code == 0 || out != "" {
				t.Fatalf("issued: %q", out)
			}
			if line := errLine(errs); !strings.Contains(line, tt.want) {
				t.Fatalf("stderr %q, want one line with %q", errs, tt.want)
			}
		})
	}
}

// TestTokenIssueJSONParams: values with quotes and non-ASCII survive.
func TestTokenIssueJSONParams(t *testing.T) {
	dir := t.TempDir()
	provision(t, dir, nil, []udr.Group{{Name: "p", Endorse: udr.EndorseConfig{Enabled: true, TokenTimeoutSeconds: 60,
		ParametersToEndorse: udr.EndorseParams{RequestParameters: true}}}})
	out, errs, code := runCmd(t, "token", "issue", "--data-dir", dir, "--imsi", "001010000000001", "--group", "p", "--param", `q="日本"<>`)
	if code != 0 {
		t.Fatal(errs)
	}
	_, claims := verifyIssued(t, dir, out)
	b, _ := json.Marshal(claims["soracom-endorse-claim"])
	if string(b) != `{"requestParameters":{"q":"\"日本\"\u003c\u003e"}}` {
		t.Fatalf("claim %s", b)
	}
}
