package endorse

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"mime"
	"net/http"
	"net/url"
	"path"
	"strconv"
	"strings"
	"sync"

	"github.com/simgate/simgate/core/udr"
)

// Names the endpoint gives a meaning to (spec 1.4).
const (
	RedirectParam = "redirect_url"
	TokenParam    = "soracom_endorse_token"
)

// apiError is an error answer: JSON {"code","message"} as SORACOM's API
// errors (spec 1.10).
type apiError struct {
	status  int
	code    string
	message string
}

// Error answers of the token endpoint (doc.go lists them).
var (
	errNotSIM       = apiError{http.StatusForbidden, "END0001", "the request does not come from a SIM session"}
	errInactive     = apiError{http.StatusForbidden, "END0002", "the SIM is not active"}
	errDisabled     = apiError{http.StatusForbidden, "END0003", "Endorse is disabled for the SIM's group"}
	errRedirect     = apiError{http.StatusBadRequest, "END0004", "redirect_url is not an authorized redirect URL"}
	errMalformed    = apiError{http.StatusBadRequest, "END0005", "malformed request parameters"}
	errTooLarge     = apiError{http.StatusRequestEntityTooLarge, "END0006", "request body too large"}
	errMethod       = apiError{http.StatusMethodNotAllowed, "END0007", "method not allowed; use GET or POST"}
	errMediaType    = apiError{http.StatusUnsupportedMediaType, "END0008", "unsupported body type; use application/json or application/x-www-form-urlencoded"}
	errInternal     = apiError{http.StatusInternalServerError, "END0009", "internal error; no token was issued"}
	allowedMethods  = "GET, POST, OPTIONS"
	jsonContentType = []string{"application/json"}
	noStore         = []string{"no-store"}
)

// TokenHandler is the device-facing token endpoint: GET or POST answers
// {"token":"<JWT>"} or, with redirect_url, a redirect carrying the token. It
// serves whatever path it is mounted at.
type TokenHandler struct {
	issuer *Issuer
	res    Resolver
	groups Groups
	cfg    Config
	log    *slog.Logger
	bufs   sync.Pool
}

// NewTokenHandler returns the token endpoint issuing with is for the SIMs res
// finds, under the settings of their groups. log may be nil.
func NewTokenHandler(is *Issuer, res Resolver, groups Groups, log *slog.Logger) *TokenHandler {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &TokenHandler{
		issuer: is, res: res, groups: groups, cfg: is.cfg, log: log,
		bufs: sync.Pool{New: func() any { b := make([]byte, 0, 2048); return &b }},
	}
}

func (h *TokenHandler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	switch r.Method {
	case http.MethodGet, http.MethodPost, http.MethodOptions:
	default:
		w.Header().Set("Allow", allowedMethods)
		h.fail(w, r, errMethod, "", nil)
		return
	}
	id, err := h.res.Resolve(r)
	if err != nil {
		h.fail(w, r, apiErrorOf(err), "", err)
		return
	}
	name := id.Group
	if name == "" {
		name = udr.DefaultGroup
	}
	grp, err := h.groups.Group(name)
	if err != nil {
		h.fail(w, r, errInternal, "", fmt.Errorf("endorse: group %s of %s: %w", name, id.IMSI, err))
		return
	}
	g := grp.Endorse
	if g.AllowOrigin != "" {
		// Spec 1.2: the configured origin, on every answer to this group's
		// SIMs, so that a page can read errors too.
		hd := w.Header()
		hd.Set("Access-Control-Allow-Origin", g.AllowOrigin)
		hd.Add("Vary", "Origin")
	}
	if !g.Enabled {
		h.fail(w, r, errDisabled, "", nil)
		return
	}
	if !id.Active {
		h.fail(w, r, errInactive, "", nil)
		return
	}
	if r.Method == http.MethodOptions {
		h.preflight(w, r, g)
		return
	}
	params, redirect, aerr, detail := h.params(r)
	if aerr.status != 0 {
		h.fail(w, r, aerr, detail, nil)
		return
	}
	var target *url.URL
	if redirect != "" {
		if target, err = matchRedirect(redirect, g.AuthorizedRedirectURLs, h.cfg.RedirectMatch); err != nil {
			h.fail(w, r, errRedirect, "", err)
			return
		}
	}

	bp := h.bufs.Get().(*[]byte)
	defer h.bufs.Put(bp)
	b := append((*bp)[:0], `{"token":"`...)
	b, err = h.issuer.AppendToken(b, id, g, params)
	*bp = b
	if err != nil {
		h.fail(w, r, apiErrorOf(err), "", err)
		return
	}
	hd := w.Header()
	hd["Cache-Control"] = noStore
	if target != nil {
		tok := string(b[len(`{"token":"`):])
		// Spec 1.4: the token as query parameter soracom_endorse_token,
		// after '&' when the URL has a query already.
		q := TokenParam + "=" + tok
		if target.RawQuery != "" {
			q = target.RawQuery + "&" + q
		}
		target.RawQuery, target.ForceQuery = q, false
		hd.Set("Location", target.String())
		status := h.cfg.RedirectStatusGET
		if r.Method == http.MethodPost {
			status = h.cfg.RedirectStatusPOST
		}
		w.WriteHeader(status)
		return
	}
	b = append(b, `"}`...)
	*bp = b
	hd["Content-Type"] = jsonContentType
	hd["Content-Length"] = []string{strconv.Itoa(len(b))}
	w.WriteHeader(http.StatusOK)
	_, _ = w.Write(b)
}

// preflight answers a CORS preflight (Fetch standard, CORS protocol).
func (h *TokenHandler) preflight(w http.ResponseWriter, r *http.Request, g udr.EndorseConfig) {
	hd := w.Header()
	hd.Set("Allow", allowedMethods)
	if g.AllowOrigin != "" {
		hd.Set("Access-Control-Allow-Methods", "GET, POST")
		if req := r.Header.Get("Access-Control-Request-Headers"); req != "" {
			hd.Set("Access-Control-Allow-Headers", req)
			hd.Add("Vary", "Access-Control-Request-Headers")
		}
		hd.Set("Access-Control-Max-Age", "600")
	}
	w.WriteHeader(http.StatusNoContent)
}

// params collects the request parameters (query, then a POST body) and the
// reserved redirect_url. On failure it returns the error answer and a detail.
func (h *TokenHandler) params(r *http.Request) (map[string]string, string, apiError, string) {
	var params map[string]string
	redirect := ""
	put := func(k, v string, override bool) {
		if k == RedirectParam {
			if redirect == "" || override {
				redirect = v
			}
			return
		}
		if params == nil {
			params = make(map[string]string)
		}
		if _, ok := params[k]; ok && !override {
			return
		}
		params[k] = v
	}
	if r.URL.RawQuery != "" {
		q, err := url.ParseQuery(r.URL.RawQuery)
		if err != nil {
			return nil, "", errMalformed, "query: " + err.Error()
		}
		for k, vs := range q {
			put(k, vs[0], false)
		}
	}
	if r.Method != http.MethodPost || r.Body == nil || r.Body == http.NoBody {
		return params, redirect, apiError{}, ""
	}
	body, err := io.ReadAll(io.LimitReader(r.Body, h.cfg.MaxBodyBytes+1))
	if err != nil {
		return nil, "", errMalformed, "body: " + err.Error()
	}
	if int64(len(body)) > h.cfg.MaxBodyBytes {
		return nil, "", errTooLarge, fmt.Sprintf("more than %d bytes", h.cfg.MaxBodyBytes)
	}
	if len(bytes.TrimSpace(body)) == 0 {
		return params, redirect, apiError{}, ""
	}
	mt, _, err := mime.ParseMediaType(r.Header.Get("Content-Type"))
	if err != nil {
		return nil, "", errMediaType, ""
	}
	// Body values win over query values of the same name (a form's action
	// URL may carry defaults).
	var bodyParams []param
	switch mt {
	case "application/x-www-form-urlencoded":
		bodyParams, err = parseForm(string(body))
	case "application/json":
		bodyParams, err = parseJSONObject(body)
	default:
		return nil, "", errMediaType, ""
	}
	if err != nil {
		return nil, "", errMalformed, "body: " + err.Error()
	}
	seen := make(map[string]bool, len(bodyParams))
	for _, p := range bodyParams {
		if !seen[p.k] {
			seen[p.k] = true
			put(p.k, p.v, true)
		}
	}
	return params, redirect, apiError{}, ""
}

type param struct{ k, v string }

// parseForm parses an application/x-www-form-urlencoded body in order.
func parseForm(s string) ([]param, error) {
	var out []param
	for s != "" {
		var kv string
		kv, s, _ = strings.Cut(s, "&")
		if kv == "" {
			continue
		}
		if strings.Contains(kv, ";") {
			return nil, fmt.Errorf("invalid semicolon separator in form")
		}
		k, v, _ := strings.Cut(kv, "=")
		k, err := url.QueryUnescape(k)
		if err != nil {
			return nil, err
		}
		v, err = url.QueryUnescape(v)
		if err != nil {
			return nil, err
		}
		out = append(out, param{k, v})
	}
	return out, nil
}

// parseJSONObject parses a JSON object of scalar members in order: strings
// as they are, numbers and booleans as their JSON text.
func parseJSONObject(b []byte) ([]param, error) {
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.UseNumber()
	tok, err := dec.Token()
	if err != nil {
		return nil, err
	}
	if d, ok := tok.(json.Delim); !ok || d != '{' {
		return nil, errors.New("want a JSON object")
	}
	var out []param
	for dec.More() {
		kt, err := dec.Token()
		if err != nil {
			return nil, err
		}
		k := kt.(string) // object keys are always strings
		vt, err := dec.Token()
		if err != nil {
			return nil, err
		}
		var v string
		switch x := vt.(type) {
		case string:
			v = x
		case json.Number:
			v = x.String()
		case bool:
			v = strconv.FormatBool(x)
		default:
			return nil, fmt.Errorf("member %q: want a string, number or boolean", k)
		}
		out = append(out, param{k, v})
	}
	if _, err := dec.Token(); err != nil { // the closing '}'
		return nil, err
	}
	if _, err := dec.Token(); err != io.EOF {
		return nil, errors.New("data after the JSON object")
	}
	return out, nil
}

// matchRedirect parses raw and checks it against the authorised URLs.
func matchRedirect(raw string, allowed []string, mode string) (*url.URL, error) {
	u, err := parseRedirect(raw)
	if err != nil {
		return nil, fmt.Errorf("endorse: redirect_url %q: %w", raw, err)
	}
	for _, a := range allowed {
		au, err := url.Parse(a)
		if err != nil || (au.Scheme != "http" && au.Scheme != "https") || au.Host == "" {
			continue // the store validates; an unusable entry admits nothing
		}
		if !strings.EqualFold(u.Scheme, au.Scheme) || hostPort(u) != hostPort(au) {
			continue
		}
		up, ap := pathOf(u), pathOf(au)
		switch mode {
		case MatchPrefix:
			// At or below ap, at a '/' boundary: "/app" admits "/app" and
			// "/app/x", not "/apple"; "/app/" admits "/app/x", not "/app".
			if up == ap || strings.HasPrefix(up, strings.TrimSuffix(ap, "/")+"/") {
				return u, nil
			}
		default:
			if up == ap {
				return u, nil
			}
		}
	}
	return nil, fmt.Errorf("endorse: redirect_url %q: not in authorizedRedirectUrls", raw)
}

// parseRedirect accepts only URLs that a browser reads the same way: absolute
// http or https, a host, no user information, no backslash, control
// character or space, and no dot segments in the path.
func parseRedirect(raw string) (*url.URL, error) {
	for i := 0; i < len(raw); i++ {
		if c := raw[i]; c <= ' ' || c == '\\' || c == 0x7f {
			return nil, errors.New("contains a space, control character or backslash")
		}
	}
	u, err := url.Parse(raw)
	if err != nil {
		return nil, err
	}
	switch {
	case u.Scheme != "http" && u.Scheme != "https":
		return nil, errors.New("not an absolute http or https URL")
	case u.Host == "" || u.Opaque != "":
		return nil, errors.New("no host")
	case u.User != nil:
		return nil, errors.New("user information is not allowed")
	}
	if p := pathOf(u); path.Clean(p) != strings.TrimSuffix(p, "/") && path.Clean(p) != p {
		return nil, errors.New("path has dot segments or empty segments")
	}
	return u, nil
}

func pathOf(u *url.URL) string {
	if u.Path == "" {
		return "/"
	}
	return u.Path
}

// hostPort is the lower-case host with the scheme's default port removed.
func hostPort(u *url.URL) string {
	host, port := strings.ToLower(u.Hostname()), u.Port()
	if (u.Scheme == "http" && port == "80") || (u.Scheme == "https" && port == "443") {
		port = ""
	}
	if port == "" {
		return host
	}
	return host + ":" + port
}

// apiErrorOf maps an error of Issue or a Resolver to its answer.
func apiErrorOf(err error) apiError {
	switch {
	case errors.Is(err, ErrUnknownSource):
		return errNotSIM
	case errors.Is(err, ErrInactive):
		return errInactive
	case errors.Is(err, ErrDisabled):
		return errDisabled
	}
	return errInternal // ErrIdentity, ErrGroupSettings, store or signing failures
}

// fail writes an error answer; nothing is issued.
func (h *TokenHandler) fail(w http.ResponseWriter, r *http.Request, e apiError, detail string, cause error) {
	msg := e.message
	if detail != "" {
		msg += ": " + detail
	}
	lvl := slog.LevelDebug
	if e.status >= 500 {
		lvl = slog.LevelError
	}
	h.log.Log(r.Context(), lvl, "endorse: refused", "remote", r.RemoteAddr, "code", e.code, "status", e.status, "detail", detail, "err", cause)
	WriteError(w, e.status, e.code, msg)
}

// WriteError answers with status and the SORACOM API error body
// {"code","message"} (spec 1.10), not cached. The Beam entry points answer
// their errors the same way.
func WriteError(w http.ResponseWriter, status int, code, msg string) {
	b, _ := json.Marshal(struct {
		Code    string `json:"code"`
		Message string `json:"message"`
	}{code, msg})
	hd := w.Header()
	hd["Content-Type"] = jsonContentType
	hd["Cache-Control"] = noStore
	hd.Del("Location")
	w.WriteHeader(status)
	_, _ = w.Write(b)
}
