package endorse

import (
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"net/http"
	"net/http/httptest"
	"reflect"
	"strings"
	"testing"
)

func TestKeysHandler(t *testing.T) {
	clk := newClock()
	cfg := testConfig(RS256)
	k, dir := newTestKeys(t, cfg, clk)
	oldKID := k.Signing().KID
	k, err := OpenKeys(dir, testConfig(ES256), WithClock(clk.Now)) // an ES256 signer and a retired RS256 key
	if err != nil {
		t.Fatal(err)
	}
	newKID := k.Signing().KID
	h := NewKeysHandler(k, cfg)
	get := func(method, target string, mod func(*http.Request)) *httptest.ResponseRecorder {
		r := httptest.NewRequest(method, "http://keys.simgate"+target, nil)
		if mod != nil {
			mod(r)
		}
		w := httptest.NewRecorder()
		h.ServeHTTP(w, r)
		return w
	}

	for _, kid := range []string{newKID, oldKID} {
		w := get("GET", PublicKeysPath+kid, nil)
		blk, _ := pem.Decode(w.Body.Bytes())
		if w.Code != 200 || blk == nil || blk.Type != "PUBLIC KEY" || w.Header().Get("Content-Type") != "application/x-pem-file" {
			t.Fatalf("%s: %d %s", kid, w.Code, w.Body)
		}
		pub, err := x509.ParsePKIXPublicKey(blk.Bytes)
		if err != nil {
			t.Fatal(err)
		}
		if got, _ := KID(pub); got != kid {
			t.Errorf("served key has kid %s, want %s", got, kid)
		}
	}
	if w := get("HEAD", PublicKeysPath+newKID, nil); w.Code != 200 {
		t.Errorf("HEAD: %d", w.Code)
	}
	for target, want := range map[string]int{
		PublicKeysPath + "v1-00000000000000000000000000000000-x509.pem": 404,
		PublicKeysPath + "..%2fkeys.json":                               404,
		PublicKeysPath + "V1-" + newKID[3:]:                             404,
		"/keys.json":                                                    404,
	} {
		if w := get("GET", target, nil); w.Code != want {
			t.Errorf("%s: %d, want %d", target, w.Code, want)
		}
	}
	if w := get("POST", JWKSPath, nil); w.Code != http.StatusMethodNotAllowed {
		t.Errorf("POST jwks: %d", w.Code)
	}

	w := get("GET", JWKSPath, nil)
	if w.Code != 200 || w.Header().Get("Content-Type") != "application/jwk-set+json" || w.Body.String() != string(k.JWKS()) {
		t.Fatalf("jwks: %d %v %s", w.Code, w.Header(), w.Body)
	}
	if !strings.Contains(w.Body.String(), oldKID) || !strings.Contains(w.Body.String(), newKID) {
		t.Error("jwks lacks a key")
	}

	type disco struct {
		Issuer  string   `json:"issuer"`
		JWKSURI string   `json:"jwks_uri"`
		Algs    []string `json:"id_token_signing_alg_values_supported"`
	}
	decode := func(w *httptest.ResponseRecorder) disco {
		var d disco
		dec := json.NewDecoder(w.Body)
		dec.DisallowUnknownFields()
		if err := dec.Decode(&d); err != nil || w.Code != 200 {
			t.Fatalf("discovery: %d %v", w.Code, err)
		}
		return d
	}
	d := decode(get("GET", DiscoveryPath, nil))
	if want := (disco{DefaultIssuer, "http://keys.simgate/.well-known/jwks.json", []string{ES256, RS256}}); !reflect.DeepEqual(d, want) {
		t.Errorf("discovery %+v, want %+v", d, want)
	}
	cfg.PublicBaseURL = "https://keys.example.net/base/"
	h = NewKeysHandler(k, cfg)
	if d := decode(get("GET", DiscoveryPath, nil)); d.JWKSURI != "https://keys.example.net/base/.well-known/jwks.json" {
		t.Errorf("jwks_uri %s", d.JWKSURI)
	}
}
