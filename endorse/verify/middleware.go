package verify

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"mime"
	"net/http"
	"strconv"
	"strings"
)

// TokenParam is the query or form parameter that carries the token in
// Endorse's redirect mode (spec 1.4).
const TokenParam = "soracom_endorse_token"

// maxFormBody bounds a form body read for the token.
const maxFormBody = 64 << 10

// ErrNoToken: the request carries no token.
var ErrNoToken = errors.New("no token")

type claimsKey struct{}

// NewContext returns ctx carrying verified claims c.
func NewContext(ctx context.Context, c *Claims) context.Context {
	return context.WithValue(ctx, claimsKey{}, c)
}

// FromContext returns the verified claims the middleware put in ctx.
func FromContext(ctx context.Context) (*Claims, bool) {
	c, ok := ctx.Value(claimsKey{}).(*Claims)
	return c, ok && c != nil
}

// TokenFromRequest finds the token: "Authorization: Bearer" (RFC 6750 2.1),
// else soracom_endorse_token in the query, else in an
// application/x-www-form-urlencoded body (spec 1.4: the JP docs put it in
// the query, the EN guide in a POST body). Reading the form consumes the
// body; its values stay in r.PostForm.
func TokenFromRequest(r *http.Request) (string, error) {
	if h := r.Header.Get("Authorization"); h != "" {
		scheme, tok, ok := strings.Cut(h, " ")
		if !ok || !strings.EqualFold(scheme, "Bearer") {
			return "", fmt.Errorf("%w: Authorization is not a Bearer token", ErrNoToken)
		}
		if tok = strings.TrimSpace(tok); tok == "" {
			return "", fmt.Errorf("%w: empty Bearer token", ErrNoToken)
		}
		return tok, nil
	}
	if tok := r.URL.Query().Get(TokenParam); tok != "" {
		return tok, nil
	}
	if r.Body != nil && (r.Method == http.MethodPost || r.Method == http.MethodPut || r.Method == http.MethodPatch) {
		ct, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type"))
		if ct == "application/x-www-form-urlencoded" {
			r.Body = http.MaxBytesReader(nil, r.Body, maxFormBody)
			if err := r.ParseForm(); err != nil {
				return "", fmt.Errorf("%w: reading the form body: %v", ErrNoToken, err)
			}
			if tok := r.PostForm.Get(TokenParam); tok != "" {
				return tok, nil
			}
		}
	}
	return "", fmt.Errorf("%w: send Authorization: Bearer <token> or %s", ErrNoToken, TokenParam)
}

// MiddlewareOption configures Middleware.
type MiddlewareOption func(*middleware)

type middleware struct {
	v      *Verifier
	next   http.Handler
	expect func(*http.Request) (Expect, error)
}

// ExpectFrom adds a per-request binding, for example the nonce stored in the
// caller's session (VerifyExpect). An error from fn answers 401 with it.
func ExpectFrom(fn func(*http.Request) (Expect, error)) MiddlewareOption {
	return func(m *middleware) { m.expect = fn }
}

// Middleware verifies the request's token (TokenFromRequest) and calls next
// with the claims in the request context (FromContext). Otherwise it answers
// with a JSON body {"error": ..., "reason": ...} and, per RFC 6750 3, a
// WWW-Authenticate challenge: 401 for a missing or invalid token, 503 when
// the keys cannot be fetched (ErrKeySource: not the client's fault).
func (v *Verifier) Middleware(next http.Handler, opts ...MiddlewareOption) http.Handler {
	m := &middleware{v: v, next: next}
	for _, o := range opts {
		o(m)
	}
	return m
}

func (m *middleware) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	tok, err := TokenFromRequest(r)
	if err != nil {
		// RFC 6750 3.1: no error code when the request had no credentials.
		w.Header().Set("WWW-Authenticate", `Bearer realm="soracom-endorse"`)
		writeError(w, http.StatusUnauthorized, "missing_token", err)
		return
	}
	var e Expect
	if m.expect != nil {
		if e, err = m.expect(r); err != nil {
			m.reject(w, fmt.Errorf("%w: %v", ErrBinding, err))
			return
		}
	}
	c, err := m.v.VerifyExpect(r.Context(), tok, e)
	if err != nil {
		m.reject(w, err)
		return
	}
	m.next.ServeHTTP(w, r.WithContext(NewContext(r.Context(), c)))
}

func (m *middleware) reject(w http.ResponseWriter, err error) {
	if errors.Is(err, ErrKeySource) || errors.Is(err, context.DeadlineExceeded) {
		writeError(w, http.StatusServiceUnavailable, "temporarily_unavailable", err)
		return
	}
	w.Header().Set("WWW-Authenticate", `Bearer realm="soracom-endorse", error="invalid_token", error_description=`+strconv.Quote(challengeText(err.Error())))
	writeError(w, http.StatusUnauthorized, "invalid_token", err)
}

// challengeText keeps a reason within the quoted-string characters
// RFC 6750 3 allows for error_description (%x20-21 / %x23-5B / %x5D-7E).
func challengeText(s string) string {
	b := []byte(s)
	for i, c := range b {
		if c < 0x20 || c > 0x7e || c == '"' || c == '\\' {
			b[i] = '\''
		}
	}
	if len(b) > 200 {
		b = b[:200]
	}
	return string(b)
}

func writeError(w http.ResponseWriter, status int, code string, err error) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(struct {
		Error  string `json:"error"`
		Reason string `json:"reason"`
	}{code, err.Error()})
}
