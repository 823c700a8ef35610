package main

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"mime"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/simgate/simgate/endorse/verify"
)

// Names on the wire.
const (
	SessionCookie = "rp_session"
	PendingCookie = "rp_pending"
	// NonceParam is the request parameter that carries the second-factor
	// nonce through Endorse into the token's requestParameters (spec 1.3).
	NonceParam = "nonce"
	// RedirectParam is Endorse's redirect mode parameter (spec 1.4).
	RedirectParam = "redirect_url"
)

// Paths of the app.
const (
	PathHealth        = "/healthz"
	PathUpload        = "/upload"
	PathLogin         = "/login"
	PathLoginCallback = "/login/callback"
	PathPassword      = "/2fa/password"
	Path2FACallback   = "/2fa/callback"
	PathWhoami        = "/whoami"
	PathLogout        = "/logout"
)

// Defaults of Config.
const (
	DefaultSessionTTL = 12 * time.Hour
	DefaultPendingTTL = 5 * time.Minute
	DefaultMaxUpload  = 8 << 20
	// maxFormBody bounds the body of the password step.
	maxFormBody = 16 << 10
	// maxLiveEntries bounds each in-memory table (sessions, pending logins,
	// used token ids).
	maxLiveEntries = 1 << 20
	// usedTokenKeep is how long past its exp a used jti is remembered: the
	// verifier accepts a token up to its leeway past exp, at most
	// verify.MaxLeeway.
	usedTokenKeep = verify.MaxLeeway + time.Minute
)

// Config is what an App needs. Verifier, Devices, EndorseURL and PublicURL
// are required.
type Config struct {
	// Verifier checks Endorse tokens (key source, iss, leeway).
	Verifier *verify.Verifier
	// Devices are the registered IMSI+IMEI pairs.
	Devices *Devices
	// Users are the password-step accounts; nil means none.
	Users *Users
	// EndorseURL is where devices are sent for a token, e.g.
	// http://endorse.soracom.io/ (spec 1.2).
	EndorseURL string
	// PublicURL is this app's own base URL as devices reach it; callbacks
	// are PublicURL + /login/callback and /2fa/callback.
	PublicURL string
	// Uploads stores what POST /upload receives; nil keeps them in memory
	// up to 8 * MaxUpload bytes.
	Uploads UploadStore
	// MaxUpload bounds one upload (bytes); 0 means DefaultMaxUpload.
	MaxUpload int64
	// SessionTTL and PendingTTL are the lifetimes of a login session and of
	// a password step waiting for its second factor; 0 means the default.
	SessionTTL time.Duration
	PendingTTL time.Duration
	// Now is the clock; nil means time.Now.
	Now func() time.Time
	// Log may be nil.
	Log *slog.Logger
}

// Session is a logged-in device (and, after the second factor, user).
type Session struct {
	IMSI    string    `json:"imsi"`
	IMEI    string    `json:"imei"`
	User    string    `json:"user,omitempty"`
	Method  string    `json:"method"` // "endorse" or "password+endorse"
	Created time.Time `json:"created"`
	Expires time.Time `json:"expires"`
}

// pending is a password step waiting for its second factor.
type pending struct {
	user  string
	nonce string
}

// App is the relying party: an http.Handler with the upload gate, the
// Endorse login and the password + Endorse second factor.
type App struct {
	v          *verify.Verifier
	devices    *Devices
	users      *Users
	endorse    *url.URL
	public     string // PublicURL without a trailing '/'
	cookiePath string
	secure     bool
	uploads    UploadStore
	maxUpload  int64
	sessionTTL time.Duration
	pendingTTL time.Duration
	now        func() time.Time
	log        *slog.Logger

	sessions *table[Session]
	pendings *table[pending]
	used     *table[struct{}] // jti of tokens that opened a session

	mux *http.ServeMux
}

// NewApp checks cfg and builds the app.
func NewApp(cfg Config) (*App, error) {
	if cfg.Verifier == nil {
		return nil, errors.New("relying-party: no verifier")
	}
	if cfg.Devices == nil {
		return nil, errors.New("relying-party: no device registry")
	}
	endorseURL, err := checkBaseURL("endorse URL", cfg.EndorseURL, true)
	if err != nil {
		return nil, err
	}
	public, err := checkBaseURL("public URL", cfg.PublicURL, false)
	if err != nil {
		return nil, err
	}
	a := &App{
		v:          cfg.Verifier,
		devices:    cfg.Devices,
		users:      cfg.Users,
		endorse:    endorseURL,
		public:     strings.TrimSuffix(public.String(), "/"),
		cookiePath: strings.TrimSuffix(public.Path, "/") + "/",
		secure:     public.Scheme == "https",
		uploads:    cfg.Uploads,
		maxUpload:  cfg.MaxUpload,
		sessionTTL: cfg.SessionTTL,
		pendingTTL: cfg.PendingTTL,
		now:        cfg.Now,
		log:        cfg.Log,
		sessions:   newTable[Session](maxLiveEntries),
		pendings:   newTable[pending](maxLiveEntries),
		used:       newTable[struct{}](maxLiveEntries),
	}
	if a.users == nil {
		a.users = &Users{hashes: map[string][]byte{}}
	}
	if a.maxUpload == 0 {
		a.maxUpload = DefaultMaxUpload
	}
	if a.maxUpload < 0 {
		return nil, fmt.Errorf("relying-party: max upload %d: must be positive", a.maxUpload)
	}
	if a.uploads == nil {
		a.uploads = NewMemoryUploads(8 * a.maxUpload)
	}
	if a.sessionTTL == 0 {
		a.sessionTTL = DefaultSessionTTL
	}
	if a.pendingTTL == 0 {
		a.pendingTTL = DefaultPendingTTL
	}
	if a.sessionTTL < 0 || a.pendingTTL < 0 {
		return nil, errors.New("relying-party: session and pending lifetimes must be positive")
	}
	if a.now == nil {
		a.now = time.Now
	}
	if a.log == nil {
		a.log = slog.New(slog.DiscardHandler)
	}

	mux := http.NewServeMux()
	mux.Handle(PathHealth, methods(http.HandlerFunc(a.health), http.MethodGet))
	// The upload body is the file; the token comes in Authorization: Bearer
	// (or ?soracom_endorse_token=), checked by the verifier's middleware.
	mux.Handle(PathUpload, methods(noForm(a.v.Middleware(http.HandlerFunc(a.upload))), http.MethodPost))
	mux.Handle(PathLogin, methods(http.HandlerFunc(a.login), http.MethodGet))
	// Spec 1.4: the token arrives as soracom_endorse_token in the query
	// (JP docs) or a form body (EN guide); the middleware takes either.
	mux.Handle(PathLoginCallback, methods(a.v.Middleware(http.HandlerFunc(a.loginCallback)), http.MethodGet, http.MethodPost))
	mux.Handle(PathPassword, methods(http.HandlerFunc(a.password), http.MethodPost))
	mux.Handle(Path2FACallback, methods(http.HandlerFunc(a.secondFactorCallback), http.MethodGet, http.MethodPost))
	mux.Handle(PathWhoami, methods(http.HandlerFunc(a.whoami), http.MethodGet))
	mux.Handle(PathLogout, methods(http.HandlerFunc(a.logout), http.MethodPost))
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		writeError(w, http.StatusNotFound, "not_found", "no such endpoint: "+r.URL.Path)
	})
	a.mux = mux
	return a, nil
}

// checkBaseURL accepts an absolute http(s) URL with a host and no user
// information or fragment; a query is allowed only when query is true.
func checkBaseURL(what, raw string, query bool) (*url.URL, error) {
	u, err := url.Parse(raw)
	if err != nil {
		return nil, fmt.Errorf("relying-party: %s: %w", what, err)
	}
	switch {
	case u.Scheme != "http" && u.Scheme != "https":
		return nil, fmt.Errorf("relying-party: %s %q: want an http or https URL", what, raw)
	case u.Host == "" || u.Opaque != "":
		return nil, fmt.Errorf("relying-party: %s %q: no host", what, raw)
	case u.User != nil:
		return nil, fmt.Errorf("relying-party: %s %q: user information is not allowed", what, raw)
	case u.Fragment != "" || (!query && (u.RawQuery != "" || u.ForceQuery)):
		return nil, fmt.Errorf("relying-party: %s %q: no query or fragment allowed", what, raw)
	}
	return u, nil
}

// ServeHTTP implements http.Handler.
func (a *App) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	h := w.Header()
	// Tokens travel in callback URLs: keep them out of Referer headers and
	// caches.
	h.Set("Referrer-Policy", "no-referrer")
	h.Set("Cache-Control", "no-store")
	h.Set("X-Content-Type-Options", "nosniff")
	a.mux.ServeHTTP(w, r)
}

// methods answers 405 (JSON, with Allow) to other methods. GET admits HEAD.
func methods(h http.Handler, allowed ...string) http.Handler {
	allow := strings.Join(allowed, ", ")
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		for _, m := range allowed {
			if r.Method == m || (m == http.MethodGet && r.Method == http.MethodHead) {
				h.ServeHTTP(w, r)
				return
			}
		}
		w.Header().Set("Allow", allow)
		writeError(w, http.StatusMethodNotAllowed, "method_not_allowed", "use "+allow)
	})
}

// noForm refuses an upload whose token could only come from a form body:
// the body is the file itself. With the token in Authorization: Bearer or
// the query, a form content type (curl's default for --data-binary) is just
// a label and the body is stored as sent.
func noForm(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mt, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type"))
		if mt == "application/x-www-form-urlencoded" && r.Header.Get("Authorization") == "" && !r.URL.Query().Has(verify.TokenParam) {
			writeError(w, http.StatusUnauthorized, "missing_token",
				"send the token in Authorization: Bearer (or ?"+verify.TokenParam+"=); the body of an upload is the file, not a form")
			return
		}
		h.ServeHTTP(w, r)
	})
}

func (a *App) health(w http.ResponseWriter, _ *http.Request) {
	writeJSON(w, http.StatusOK, map[string]any{"status": "ok", "devices": a.devices.Len(), "users": a.users.Len()})
}

// upload is the Wi-Fi offload gate: the middleware has verified the token;
// the IMSI+IMEI pair it names must be registered.
func (a *App) upload(w http.ResponseWriter, r *http.Request) {
	c, _ := verify.FromContext(r.Context())
	d, err := a.registered(c, "")
	if err != nil {
		a.refuse(w, r, "upload", c, err)
		return
	}
	r.Body = http.MaxBytesReader(w, r.Body, a.maxUpload)
	u, err := a.uploads.Save(Upload{
		ID: rand.Text(), IMSI: d.IMSI, IMEI: c.Endorse.IMEI, TokenID: c.ID,
		ContentType: r.Header.Get("Content-Type"), Received: a.now().UTC(),
	}, r.Body)
	var tooBig *http.MaxBytesError
	switch {
	case errors.As(err, &tooBig):
		writeError(w, http.StatusRequestEntityTooLarge, "too_large", fmt.Sprintf("an upload is at most %d bytes", a.maxUpload))
		return
	case errors.Is(err, errStoreFull):
		writeError(w, http.StatusInsufficientStorage, "store_full", err.Error())
		return
	case err != nil:
		a.log.Error("relying-party: upload", "imsi", d.IMSI, "err", err)
		writeError(w, http.StatusInternalServerError, "internal", "the upload could not be stored")
		return
	}
	a.log.Info("relying-party: upload stored", "id", u.ID, "imsi", u.IMSI, "imei", u.IMEI, "bytes", u.Bytes)
	writeJSON(w, http.StatusCreated, u)
}

// login starts the Endorse login: the device goes to Endorse, which sends
// it back to /login/callback with its token (spec 1.4).
func (a *App) login(w http.ResponseWriter, r *http.Request) {
	redirect(w, http.StatusFound, a.endorseRedirect(PathLoginCallback, nil))
}

// loginCallback opens a session for the device named by the verified token.
func (a *App) loginCallback(w http.ResponseWriter, r *http.Request) {
	c, _ := verify.FromContext(r.Context())
	d, err := a.registered(c, "")
	if err != nil {
		a.refuse(w, r, "login", c, err)
		return
	}
	a.openSession(w, r, c, d, "", "endorse")
}

// password is the first factor: a valid password starts a pending login
// with a fresh nonce, and the device goes to Endorse with the nonce as a
// request parameter, so that the token it brings back is bound to this
// login (spec 1.3, 1.4).
func (a *App) password(w http.ResponseWriter, r *http.Request) {
	user, pass, err := credentials(r)
	if err != nil {
		writeError(w, http.StatusBadRequest, "bad_request", err.Error())
		return
	}
	if !a.users.Check(user, pass) {
		a.log.Info("relying-party: password refused", "user", user, "remote", r.RemoteAddr)
		writeError(w, http.StatusUnauthorized, "invalid_credentials", "wrong user name or password")
		return
	}
	now := a.now()
	id, nonce := rand.Text(), rand.Text()
	exp := now.Add(a.pendingTTL)
	if ok, err := a.pendings.add(id, pending{user: user, nonce: nonce}, exp, now); err != nil || !ok {
		writeError(w, http.StatusServiceUnavailable, "busy", "cannot start a login now")
		return
	}
	http.SetCookie(w, a.cookie(PendingCookie, id, a.cookiePath+"2fa/", a.pendingTTL))
	redirect(w, http.StatusSeeOther, a.endorseRedirect(Path2FACallback, url.Values{NonceParam: {nonce}}))
}

// secondFactorCallback finishes a password login: the token must carry the
// pending login's nonce in requestParameters, and name a registered device
// of that user.
func (a *App) secondFactorCallback(w http.ResponseWriter, r *http.Request) {
	tok, err := verify.TokenFromRequest(r)
	if err != nil {
		w.Header().Set("WWW-Authenticate", `Bearer realm="soracom-endorse"`)
		writeError(w, http.StatusUnauthorized, "missing_token", err.Error())
		return
	}
	// The pending login is used up by this attempt, whatever its outcome:
	// a nonce is good for one try.
	var p pending
	ok := false
	if ck, err := r.Cookie(PendingCookie); err == nil {
		p, ok = a.pendings.take(ck.Value, a.now())
	}
	http.SetCookie(w, a.cookie(PendingCookie, "", a.cookiePath+"2fa/", -1))
	if !ok {
		writeError(w, http.StatusUnauthorized, "no_pending_login",
			"no password step is waiting (it expired, was used, or was never made): POST "+PathPassword+" first")
		return
	}
	c, err := a.v.VerifyExpect(r.Context(), tok, verify.Expect{RequestParameters: map[string]string{NonceParam: p.nonce}})
	if err != nil {
		a.tokenRefused(w, r, "2fa", p.user, err)
		return
	}
	d, err := a.registered(c, p.user)
	if err != nil {
		a.refuse(w, r, "2fa", c, err)
		return
	}
	a.openSession(w, r, c, d, p.user, "password+endorse")
}

func (a *App) whoami(w http.ResponseWriter, r *http.Request) {
	s, ok := a.session(r)
	if !ok {
		writeError(w, http.StatusUnauthorized, "no_session", "log in first: GET "+PathLogin)
		return
	}
	writeJSON(w, http.StatusOK, s)
}

func (a *App) logout(w http.ResponseWriter, r *http.Request) {
	if ck, err := r.Cookie(SessionCookie); err == nil {
		a.sessions.remove(ck.Value)
	}
	http.SetCookie(w, a.cookie(SessionCookie, "", a.cookiePath, -1))
	writeJSON(w, http.StatusOK, map[string]string{"status": "logged_out"})
}

// Reasons a verified token is not accepted (403).
var (
	errNoPair       = errors.New("the token does not name both an IMSI and an IMEI (the Endorse group must enable parametersToEndorse.imsi and .imei)")
	errOtherDevice  = errors.New("this SIM is registered in another device")
	errUnregistered = errors.New("this IMSI+IMEI pair is not registered")
	errNotUsers     = errors.New("this device is not registered to the user")
)

// registered finds the registered device the claims name; with user, the
// device must be that user's.
func (a *App) registered(c *verify.Claims, user string) (Device, error) {
	imsi, imei := c.Endorse.IMSI, c.Endorse.IMEI
	if imsi == "" || imei == "" {
		return Device{}, errNoPair
	}
	d, ok := a.devices.Lookup(imsi, imei)
	if !ok {
		if a.devices.HasSIM(imsi) {
			// A stolen SIM in another handset: the network reports the
			// handset's IMEI, which the SIM cannot change.
			return Device{}, fmt.Errorf("%w: IMEI %s is not registered for IMSI %s", errOtherDevice, imei, imsi)
		}
		return Device{}, fmt.Errorf("%w: IMSI %s, IMEI %s", errUnregistered, imsi, imei)
	}
	if user != "" && d.User != user {
		return Device{}, fmt.Errorf("%w %s", errNotUsers, user)
	}
	return d, nil
}

// openSession makes a session for a device whose token was verified and
// whose pair is registered. A token opens one session only: its jti is
// remembered until it has expired.
func (a *App) openSession(w http.ResponseWriter, r *http.Request, c *verify.Claims, d Device, user, method string) {
	now := a.now()
	if c.ID == "" {
		writeError(w, http.StatusUnauthorized, "invalid_token", "the token has no jti, so it could be replayed")
		return
	}
	fresh, err := a.used.add(c.ID, struct{}{}, c.ExpiresAt.Time().Add(usedTokenKeep), now)
	if err != nil {
		writeError(w, http.StatusServiceUnavailable, "busy", err.Error())
		return
	}
	if !fresh {
		a.log.Warn("relying-party: token replayed", "jti", c.ID, "imsi", c.Endorse.IMSI, "remote", r.RemoteAddr)
		writeError(w, http.StatusUnauthorized, "token_used", "this token has already been used to log in")
		return
	}
	// A new session id at every login (no session fixation).
	if ck, err := r.Cookie(SessionCookie); err == nil {
		a.sessions.remove(ck.Value)
	}
	s := Session{IMSI: d.IMSI, IMEI: c.Endorse.IMEI, User: user, Method: method, Created: now.UTC(), Expires: now.Add(a.sessionTTL).UTC()}
	id := rand.Text()
	if ok, err := a.sessions.add(id, s, s.Expires, now); err != nil || !ok {
		writeError(w, http.StatusServiceUnavailable, "busy", "cannot open a session now")
		return
	}
	http.SetCookie(w, a.cookie(SessionCookie, id, a.cookiePath, a.sessionTTL))
	a.log.Info("relying-party: logged in", "method", method, "user", user, "imsi", s.IMSI, "imei", s.IMEI)
	writeJSON(w, http.StatusOK, struct {
		Status string `json:"status"`
		Session
	}{"logged_in", s})
}

func (a *App) session(r *http.Request) (Session, bool) {
	ck, err := r.Cookie(SessionCookie)
	if err != nil {
		return Session{}, false
	}
	s, _, ok := a.sessions.get(ck.Value, a.now())
	return s, ok
}

// refuse answers 403 for a valid token whose device is not accepted.
func (a *App) refuse(w http.ResponseWriter, r *http.Request, flow string, c *verify.Claims, err error) {
	lvl := slog.LevelInfo
	if errors.Is(err, errOtherDevice) {
		lvl = slog.LevelWarn
	}
	a.log.Log(r.Context(), lvl, "relying-party: device refused", "flow", flow, "imsi", c.Endorse.IMSI, "imei", c.Endorse.IMEI, "err", err)
	code := "device_not_registered"
	if errors.Is(err, errOtherDevice) {
		code = "imei_mismatch"
	}
	writeError(w, http.StatusForbidden, code, err.Error())
}

// tokenRefused answers a verification failure as the verifier's middleware
// does: 503 when the keys cannot be had, else 401.
func (a *App) tokenRefused(w http.ResponseWriter, r *http.Request, flow, user string, err error) {
	a.log.Info("relying-party: token refused", "flow", flow, "user", user, "err", err)
	if errors.Is(err, verify.ErrKeySource) || errors.Is(err, context.DeadlineExceeded) {
		writeError(w, http.StatusServiceUnavailable, "temporarily_unavailable", err.Error())
		return
	}
	w.Header().Set("WWW-Authenticate", `Bearer realm="soracom-endorse", error="invalid_token"`)
	writeError(w, http.StatusUnauthorized, "invalid_token", err.Error())
}

// endorseRedirect is the Endorse URL with redirect_url set to the callback
// at path, plus params (spec 1.3: Endorse copies them into
// requestParameters; 1.4: redirect_url is where the token is sent).
func (a *App) endorseRedirect(path string, params url.Values) string {
	u := *a.endorse
	q := u.Query()
	q.Set(RedirectParam, a.public+path)
	for k, vs := range params {
		q[k] = vs
	}
	u.RawQuery = q.Encode()
	return u.String()
}

func (a *App) cookie(name, value, path string, ttl time.Duration) *http.Cookie {
	ck := &http.Cookie{
		Name: name, Value: value, Path: path,
		HttpOnly: true, Secure: a.secure,
		// Lax: sent on the top-level GET that brings the device back from
		// Endorse, not on cross-site POSTs.
		SameSite: http.SameSiteLaxMode,
	}
	if ttl < 0 {
		ck.MaxAge = -1
	} else {
		ck.MaxAge = int(ttl / time.Second)
	}
	return ck
}

// credentials reads username and password from a form or JSON body.
func credentials(r *http.Request) (string, string, error) {
	r.Body = http.MaxBytesReader(nil, r.Body, maxFormBody)
	mt, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type"))
	var user, pass string
	switch mt {
	case "application/x-www-form-urlencoded":
		if err := r.ParseForm(); err != nil {
			return "", "", fmt.Errorf("form body: %w", err)
		}
		user, pass = r.PostForm.Get("username"), r.PostForm.Get("password")
	case "application/json":
		var b struct {
			Username string `json:"username"`
			Password string `json:"password"`
		}
		dec := json.NewDecoder(r.Body)
		if err := dec.Decode(&b); err != nil {
			return "", "", fmt.Errorf("JSON body: %w", err)
		}
		if _, err := dec.Token(); err != io.EOF {
			return "", "", errors.New("JSON body: data after the object")
		}
		user, pass = b.Username, b.Password
	default:
		return "", "", fmt.Errorf("content type %q: send username and password as a form or JSON", mt)
	}
	if user == "" || pass == "" {
		return "", "", errors.New("username and password are required")
	}
	return user, pass, nil
}

func redirect(w http.ResponseWriter, status int, to string) {
	w.Header().Set("Location", to)
	writeJSON(w, status, map[string]string{"redirect": to})
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false) // URLs keep their '&'
	var b []byte
	if err := enc.Encode(v); err != nil {
		status, b = http.StatusInternalServerError, []byte(`{"error":"internal","reason":"encoding the answer failed"}`+"\n")
	} else {
		b = buf.Bytes()
	}
	h := w.Header()
	h.Set("Content-Type", "application/json")
	h.Set("Content-Length", strconv.Itoa(len(b)))
	w.WriteHeader(status)
	_, _ = w.Write(b)
}

// writeError answers {"error": code, "reason": ...}, the shape of the
// verifier's middleware.
func writeError(w http.ResponseWriter, status int, code, reason string) {
	writeJSON(w, status, struct {
		Error  string `json:"error"`
		Reason string `json:"reason"`
	}{code, reason})
}
