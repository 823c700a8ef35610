package endorse

import (
	"encoding/json"
	"net/http"
	"slices"
	"strings"
)

// Paths of the key endpoints.
const (
	PublicKeysPath = "/soracom-public-keys/" // + kid, as the real key bucket (spec 1.8)
	JWKSPath       = "/.well-known/jwks.json"
	DiscoveryPath  = "/.well-known/openid-configuration"
)

// NewKeysHandler serves the public keys for verifiers: PEM
// SubjectPublicKeyInfo at /soracom-public-keys/{kid}, the JWK Set at
// /.well-known/jwks.json and discovery metadata (issuer, jwks_uri, algorithms)
// at /.well-known/openid-configuration. Only GET and HEAD are allowed.
func NewKeysHandler(keys *Keys, cfg Config) http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET "+PublicKeysPath+"{kid}", func(w http.ResponseWriter, r *http.Request) {
		kid := r.PathValue("kid")
		if !ValidKID(kid) {
			writeKeyError(w, http.StatusNotFound, "END0010", "not a key id: want v1-<32 hex>-x509.pem")
			return
		}
		pemBytes, ok := keys.PublicKeyPEM(kid)
		if !ok {
			writeKeyError(w, http.StatusNotFound, "END0011", "no such key")
			return
		}
		hd := publicHeaders(w)
		hd.Set("Content-Type", "application/x-pem-file")
		// A kid names one key for ever; the key leaves when its tokens
		// have all expired.
		hd.Set("Cache-Control", "public, max-age=86400")
		_, _ = w.Write(pemBytes)
	})
	mux.HandleFunc("GET "+JWKSPath, func(w http.ResponseWriter, r *http.Request) {
		hd := publicHeaders(w)
		hd.Set("Content-Type", "application/jwk-set+json") // RFC 7517 8.5.1
		hd.Set("Cache-Control", "public, max-age=300")
		_, _ = w.Write(keys.JWKS())
	})
	mux.HandleFunc("GET "+DiscoveryPath, func(w http.ResponseWriter, r *http.Request) {
		base := cfg.PublicBaseURL
		if base == "" {
			scheme := "http"
			if r.TLS != nil {
				scheme = "https"
			}
			base = scheme + "://" + r.Host
		}
		var algs []string
		for _, k := range keys.List() {
			if !slices.Contains(algs, k.Algorithm) {
				algs = append(algs, k.Algorithm)
			}
		}
		b, _ := json.Marshal(struct {
			Issuer  string   `json:"issuer"`
			JWKSURI string   `json:"jwks_uri"`
			Algs    []string `json:"id_token_signing_alg_values_supported"`
		}{cfg.Issuer, strings.TrimSuffix(base, "/") + JWKSPath, algs})
		hd := publicHeaders(w)
		hd.Set("Content-Type", "application/json")
		hd.Set("Cache-Control", "public, max-age=300")
		_, _ = w.Write(b)
	})
	return mux
}

// publicHeaders lets browser code fetch the public keys.
func publicHeaders(w http.ResponseWriter) http.Header {
	hd := w.Header()
	hd.Set("Access-Control-Allow-Origin", "*")
	return hd
}

func writeKeyError(w http.ResponseWriter, status int, code, msg string) {
	WriteError(w, status, code, msg)
}
