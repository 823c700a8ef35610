package endorse

import (
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"reflect"
	"regexp"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/simgate/simgate/core/udr"
)

var fullIdentity = Identity{
	IMSI: "295050913244223", IMEI: "867698047437580", MSISDN: "818012345678",
	SIMID: "8981100001234567890", Group: "default", Active: true,
}

func TestTokenFormat(t *testing.T) {
	for _, alg := range []string{RS256, ES256} {
		t.Run(alg, func(t *testing.T) {
			clk := newClock()
			is := newTestIssuer(t, alg, clk)
			g := udr.DefaultEndorse()
			g.ParametersToEndorse.RequestParameters = true
			tok, err := is.Issue(fullIdentity, g, map[string]string{"username": "foo"})
			if err != nil {
				t.Fatal(err)
			}
			d := verify(t, is.keys, tok, clk.Now())
			kid := is.keys.Signing().KID
			// Spec 1.5: exactly kid then alg, no typ.
			if want := `{"kid":"` + kid + `","alg":"` + alg + `"}`; d.headerRaw != want {
				t.Errorf("header %s, want %s", d.headerRaw, want)
			}
			if d.alg != alg || !ValidKID(d.kid) {
				t.Errorf("alg %s kid %s", d.alg, d.kid)
			}
			// Spec 1.6: the member order and values of the 2023 real token,
			// which has this iat and 600 s lifetime.
			re := regexp.MustCompile(`^\{"iss":"https://soracom.io","aud":"soracom-endorse-audience","exp":1679924190,"jti":"([A-Za-z0-9_-]{22})","iat":1679923590,"nbf":1679923530,"sub":"soracom-endorse","soracom-endorse-claim":\{"imsi":"295050913244223","imei":"867698047437580","requestParameters":\{"username":"foo"\}\}\}$`)
			m := re.FindStringSubmatch(d.payloadRaw)
			if m == nil {
				t.Fatalf("payload %s", d.payloadRaw)
			}
			if b, err := base64.RawURLEncoding.DecodeString(m[1]); err != nil || len(b) != 16 {
				t.Errorf("jti %s is not 16 bytes base64url: %v", m[1], err)
			}
			sig := strings.Split(tok, ".")[2]
			raw, _ := base64.RawURLEncoding.DecodeString(sig)
			want := map[string]int{RS256: 256, ES256: 64}[alg] // RFC 7518 3.3 (2048-bit), 3.4 (R||S)
			if len(raw) != want {
				t.Errorf("signature %d bytes, want %d", len(raw), want)
			}
		})
	}
}

func TestTokenJTIUnique(t *testing.T) {
	clk := newClock()
	is := newTestIssuer(t, ES256, clk)
	seen := map[string]bool{}
	for range 200 {
		tok, err := is.Issue(fullIdentity, udr.DefaultEndorse(), nil)
		if err != nil {
			t.Fatal(err)
		}
		d := verify(t, is.keys, tok, clk.Now())
		jti := d.claims["jti"].(string)
		if seen[jti] {
			t.Fatalf("jti %s repeated", jti)
		}
		seen[jti] = true
	}
}

// TestTokenGroupSettings covers each parametersToEndorse item and the
// lifetime.
func TestTokenGroupSettings(t *testing.T) {
	params := map[string]string{"username": "sora", "sessionId": "123"}
	tests := []struct {
		name    string
		p       udr.EndorseParams
		timeout int
		id      Identity
		want    map[string]any
		ttl     int64
	}{
		{"default: imsi and imei", udr.DefaultEndorse().ParametersToEndorse, 600, fullIdentity,
			map[string]any{"imsi": fullIdentity.IMSI, "imei": fullIdentity.IMEI}, 600},
		{"imsi only", udr.EndorseParams{IMSI: true}, 180, fullIdentity,
			map[string]any{"imsi": fullIdentity.IMSI}, 180},
		{"imei only", udr.EndorseParams{IMEI: true}, 600, fullIdentity,
			map[string]any{"imei": fullIdentity.IMEI}, 600},
		{"msisdn", udr.EndorseParams{MSISDN: true}, 600, fullIdentity,
			map[string]any{"msisdn": fullIdentity.MSISDN}, 600},
		{"simId", udr.EndorseParams{SIMID: true}, 600, fullIdentity,
			map[string]any{"simId": fullIdentity.SIMID}, 600},
		{"requestParameters", udr.EndorseParams{RequestParameters: true}, 6000, fullIdentity,
			map[string]any{"requestParameters": map[string]any{"username": "sora", "sessionId": "123"}}, 6000},
		{"all", udr.EndorseParams{IMSI: true, IMEI: true, MSISDN: true, SIMID: true, RequestParameters: true}, 600, fullIdentity,
			map[string]any{"imsi": fullIdentity.IMSI, "imei": fullIdentity.IMEI, "msisdn": fullIdentity.MSISDN,
				"simId": fullIdentity.SIMID, "requestParameters": map[string]any{"username": "sora", "sessionId": "123"}}, 600},
		{"nothing", udr.EndorseParams{}, 600, fullIdentity, map[string]any{}, 600},
		{"missing imei, msisdn, sim id are left out", udr.EndorseParams{IMSI: true, IMEI: true, MSISDN: true, SIMID: true}, 600,
			Identity{IMSI: "001010000000001", Active: true}, map[string]any{"imsi": "001010000000001"}, 600},
		{"timeout 0 is the default 600", udr.DefaultEndorse().ParametersToEndorse, 0, fullIdentity,
			map[string]any{"imsi": fullIdentity.IMSI, "imei": fullIdentity.IMEI}, 600},
	}
	clk := newClock()
	is := newTestIssuer(t, ES256, clk)
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			g := udr.EndorseConfig{Enabled: true, ParametersToEndorse: tt.p, TokenTimeoutSeconds: tt.timeout}
			tok, err := is.Issue(tt.id, g, params)
			if err != nil {
				t.Fatal(err)
			}
			d := verify(t, is.keys, tok, clk.Now())
			if !reflect.DeepEqual(d.claim, tt.want) {
				t.Errorf("claim %v, want %v", d.claim, tt.want)
			}
			iat, exp, nbf := d.claims["iat"].(float64), d.claims["exp"].(float64), d.claims["nbf"].(float64)
			if int64(exp-iat) != tt.ttl || iat-nbf != 60 || int64(iat) != clk.Now().Unix() {
				t.Errorf("iat %v exp %v nbf %v, want ttl %d", iat, exp, nbf, tt.ttl)
			}
		})
	}
}

func TestTokenLifetimeEnforced(t *testing.T) {
	clk := newClock()
	is := newTestIssuer(t, ES256, clk)
	tok, err := is.Issue(fullIdentity, udr.EndorseConfig{Enabled: true, TokenTimeoutSeconds: 180}, nil)
	if err != nil {
		t.Fatal(err)
	}
	now := clk.Now()
	if _, err := verifyErr(is.keys, tok, now.Add(179*time.Second)); err != nil {
		t.Errorf("valid token refused before exp: %v", err)
	}
	if _, err := verifyErr(is.keys, tok, now.Add(181*time.Second)); err == nil {
		t.Error("expired token accepted")
	}
	if _, err := verifyErr(is.keys, tok, now.Add(-59*time.Second)); err != nil {
		t.Errorf("token refused within nbf skew: %v", err)
	}
	if _, err := verifyErr(is.keys, tok, now.Add(-61*time.Second)); err == nil {
		t.Error("token accepted before nbf")
	}
}

func TestIssueRefusals(t *testing.T) {
	clk := newClock()
	is := newTestIssuer(t, ES256, clk)
	inactive := fullIdentity
	inactive.Active = false
	tests := []struct {
		name string
		id   Identity
		g    udr.EndorseConfig
		want error
	}{
		{"disabled", fullIdentity, udr.EndorseConfig{Enabled: false, TokenTimeoutSeconds: 600}, ErrDisabled},
		{"inactive", inactive, udr.DefaultEndorse(), ErrInactive},
		{"no imsi", Identity{Active: true}, udr.DefaultEndorse(), ErrIdentity},
		{"imsi not digits", Identity{IMSI: "29505091324422x", Active: true}, udr.DefaultEndorse(), ErrIdentity},
		{"imsi too long", Identity{IMSI: "2950509132442231", Active: true}, udr.DefaultEndorse(), ErrIdentity},
		{"negative timeout", fullIdentity, udr.EndorseConfig{Enabled: true, TokenTimeoutSeconds: -1}, ErrGroupSettings},
		{"timeout over max", fullIdentity, udr.EndorseConfig{Enabled: true, TokenTimeoutSeconds: 365*86400 + 1}, ErrGroupSettings},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tok, err := is.Issue(tt.id, tt.g, nil)
			if !errors.Is(err, tt.want) || tok != "" {
				t.Fatalf("got %q, %v; want %v", tok, err, tt.want)
			}
		})
	}
}

func TestAppendJSONString(t *testing.T) {
	tests := []struct{ in, want string }{
		{"", `""`},
		{"sora", `"sora"`},
		{`a"b\c`, `"a\"b\\c"`},
		{"\n\r\t\b\f\x00\x1f", `"\n\r\t\b\f\u0000\u001f"`},
		{"<a&b>", `"\u003ca\u0026b\u003e"`},
		{"\xff", `"\ufffd"`},
		{"日本\u2028", `"日本\u2028"`},
	}
	for _, tt := range tests {
		if got := string(appendJSONString(nil, tt.in)); got != tt.want {
			t.Errorf("%q: got %s, want %s", tt.in, got, tt.want)
		}
		// Same bytes as encoding/json, which also escapes <, >, &.
		if std, _ := json.Marshal(tt.in); string(std) != tt.want {
			t.Errorf("%q: encoding/json gives %s", tt.in, std)
		}
	}
}

func FuzzAppendJSONString(f *testing.F) {
	for _, s := range []string{"", "a", "\"\\", "\x00\xff", "日本", "\u2028\u2029", "<>&"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		got := appendJSONString(nil, s)
		std, _ := json.Marshal(s)
		if string(got) != string(std) {
			t.Fatalf("%q: got %s, encoding/json %s", s, got, std)
		}
		var back string
		if err := json.Unmarshal(got, &back); err != nil {
			t.Fatalf("%q: invalid JSON %s: %v", s, got, err)
		}
		if utf8.ValidString(s) && back != s {
			t.Fatalf("%q round-trips to %q", s, back)
		}
	})
}

// TestRequestParametersEscaped checks that arbitrary names and values keep
// the payload valid JSON and come back unchanged, in sorted order.
func TestRequestParametersEscaped(t *testing.T) {
	clk := newClock()
	is := newTestIssuer(t, ES256, clk)
	params := map[string]string{"z\"q": "v\\1", "a\n": "<script>", "日本": "語", "": ""}
	g := udr.EndorseConfig{Enabled: true, ParametersToEndorse: udr.EndorseParams{RequestParameters: true}, TokenTimeoutSeconds: 60}
	tok, err := is.Issue(fullIdentity, g, params)
	if err != nil {
		t.Fatal(err)
	}
	d := verify(t, is.keys, tok, clk.Now())
	got := map[string]string{}
	for k, v := range d.claim["requestParameters"].(map[string]any) {
		got[k] = v.(string)
	}
	if !reflect.DeepEqual(got, params) {
		t.Fatalf("got %v, want %v", got, params)
	}
	if !strings.Contains(d.payloadRaw, `"requestParameters":{"":"","a\n":"\u003cscript\u003e","z\"q":"v\\1","日本":"語"}`) {
		t.Errorf("not sorted/escaped: %s", d.payloadRaw)
	}
}

func TestIssuerConfigurableIss(t *testing.T) {
	clk := newClock()
	cfg := testConfig(ES256)
	cfg.Issuer = "https://simgate.example/\"x"
	k, _ := newTestKeys(t, cfg, clk)
	is, err := NewIssuer(k, cfg, WithClock(clk.Now))
	if err != nil {
		t.Fatal(err)
	}
	tok, err := is.Issue(fullIdentity, udr.DefaultEndorse(), nil)
	if err != nil {
		t.Fatal(err)
	}
	d := verify(t, k, tok, clk.Now())
	if d.claims["iss"] != cfg.Issuer {
		t.Fatalf("iss %v", d.claims["iss"])
	}
	if _, err := NewIssuer(k, Config{}); err == nil {
		t.Error("NewIssuer accepted an invalid configuration")
	}
}

func ExampleIssuer_Issue() {
	dir, _ := os.MkdirTemp("", "endorse-example")
	defer os.RemoveAll(dir)
	cfg := DefaultConfig()
	cfg.Algorithm = ES256
	keys, err := OpenKeys(dir, cfg)
	if err != nil {
		panic(err)
	}
	is, _ := NewIssuer(keys, cfg)
	tok, err := is.Issue(Identity{IMSI: "001010000000001", IMEI: "490154203237518", Active: true}, udr.DefaultEndorse(), nil)
	fmt.Println(strings.Count(tok, "."), err)
	// Output: 2 <nil>
}
