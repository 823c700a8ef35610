package beam

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"sync"
	"time"

	"github.com/simgate/simgate/core/udr"
	"github.com/simgate/simgate/endorse"
)

// apiError is an error answer: JSON {"code","message"} as SORACOM API errors.
type apiError struct {
	status  int
	code    string
	message string
}

// Error answers of the HTTP entry points (doc.go lists them).
var (
	errNotSIM      = apiError{http.StatusForbidden, "BEM0001", "the request does not come from a SIM session"}
	errInactive    = apiError{http.StatusForbidden, "BEM0002", "the SIM is not active"}
	errNoEntry     = apiError{http.StatusNotFound, "BEM0003", "no Beam entry point is configured for this path"}
	errUnreachable = apiError{http.StatusBadGateway, "BEM0004", "the destination could not be reached"}
	errTimeout     = apiError{http.StatusGatewayTimeout, "BEM0005", "the destination did not answer in time"}
	errPath        = apiError{http.StatusBadRequest, "BEM0006", "malformed request path"}
	errMethod      = apiError{http.StatusMethodNotAllowed, "BEM0007", "CONNECT is not supported"}
	errInternal    = apiError{http.StatusInternalServerError, "BEM0008", "internal error; nothing was forwarded"}
)

// HTTPEntry is an HTTP entry point (spec 2.1): the HTTP entry point on
// port 8888, whose entries map a path to a destination, or, with
// Options.EntryPoint WebsiteEntryPoint, the Website entry point on port
// 18080 (and 80), whose single entry maps the whole path. It forwards each
// request, tagged by Tag, to the entry's destination and relays the answer.
// It is safe for concurrent use.
type HTTPEntry struct {
	s    settings
	tr   *http.Transport
	bufs *bufferPool
}

// NewHTTPEntry returns an HTTP entry point under o.
func NewHTTPEntry(o Options) (*HTTPEntry, error) {
	s, err := o.settings(HTTPEntryPoint, "http")
	if err != nil {
		return nil, err
	}
	h := &HTTPEntry{s: s, bufs: &bufferPool{}}
	h.tr = &http.Transport{
		Proxy: nil, // never an environment proxy: the destination is dialled as configured
		DialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
			ctx, cancel := context.WithTimeout(ctx, s.dialTimeout)
			defer cancel()
			return s.dial(ctx, network, addr)
		},
		TLSClientConfig:       s.tls.Clone(), // nil stays nil: system roots
		TLSHandshakeTimeout:   s.dialTimeout,
		ResponseHeaderTimeout: s.respTimeout,
		ForceAttemptHTTP2:     true,
		MaxIdleConns:          256,
		MaxIdleConnsPerHost:   64,
		IdleConnTimeout:       90 * time.Second,
		ExpectContinueTimeout: time.Second,
	}
	return h, nil
}

// CloseIdleConnections closes the idle connections to destinations; call it
// when the entry point is shut down.
func (h *HTTPEntry) CloseIdleConnections() { h.tr.CloseIdleConnections() }

// plan is what ServeHTTP decided for one request before forwarding it.
type plan struct {
	dest          *url.URL
	path, rawPath string // destination path, decoded and escaped
	entry         udr.BeamEntry
	id            endorse.Identity
	now           time.Time
}

// ServeHTTP forwards a device's request through the group's entry for its
// path, or answers an error (doc.go lists them).
func (h *HTTPEntry) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.Method == http.MethodConnect {
		w.Header().Set("Allow", "GET, HEAD, POST, PUT, PATCH, DELETE, OPTIONS")
		h.fail(w, r, errMethod, nil)
		return
	}
	escPath := r.URL.EscapedPath()
	if hasDotSegment(escPath) {
		h.fail(w, r, errPath, nil)
		return
	}
	id, err := h.s.res.Resolve(r)
	if err != nil {
		if errors.Is(err, endorse.ErrUnknownSource) {
			h.fail(w, r, errNotSIM, err)
		} else {
			h.fail(w, r, errInternal, err)
		}
		return
	}
	if !id.Active {
		h.fail(w, r, errInactive, nil)
		return
	}
	cfg, err := h.s.group(id)
	if err != nil {
		h.fail(w, r, errInternal, err)
		return
	}
	m, ok := lookup(cfg, h.s.ep, escPath)
	if !ok {
		h.fail(w, r, errNoEntry, nil)
		return
	}
	dest, err := destination(m.entry.Destination, false, "http", "https")
	if err != nil {
		h.fail(w, r, errInternal, fmt.Errorf("beam: entry %s: %w", m.key, err))
		return
	}
	p := &plan{dest: dest, rawPath: joinPath(dest.EscapedPath(), m.rest), entry: m.entry, id: id, now: h.s.now()}
	if p.path, err = url.PathUnescape(p.rawPath); err != nil {
		h.fail(w, r, errPath, err)
		return
	}
	// An identity that cannot be sent is refused before anything is
	// forwarded.
	if err := checkIdentity(p.entry, p.id); err != nil {
		h.fail(w, r, errInternal, err)
		return
	}
	proxy := &httputil.ReverseProxy{
		Rewrite:      func(pr *httputil.ProxyRequest) { rewrite(pr, p) },
		Transport:    h.tr,
		BufferPool:   h.bufs,
		ErrorHandler: h.proxyError,
	}
	proxy.ServeHTTP(w, r)
}

// rewrite turns the device's request into the destination's.
func rewrite(pr *httputil.ProxyRequest, p *plan) {
	out := pr.Out
	u := *p.dest
	u.User = nil
	u.Fragment, u.RawFragment = "", ""
	u.Path, u.RawPath = p.path, p.rawPath
	switch q := out.URL.RawQuery; {
	case u.RawQuery == "":
		u.RawQuery = q
	case q != "":
		u.RawQuery += "&" + q
	}
	u.ForceQuery = false
	out.URL = &u
	out.Host = "" // the destination's host
	// Tag cannot fail: ServeHTTP checked the same identity.
	_ = Tag(out.Header, p.entry, p.id, p.now)
	for k := range out.Trailer {
		if isSoracom(k) {
			delete(out.Trailer, k)
		}
	}
}

// proxyError answers a failure to reach the destination.
func (h *HTTPEntry) proxyError(w http.ResponseWriter, r *http.Request, err error) {
	if r.Context().Err() != nil {
		// The device went away; nobody reads an answer.
		h.s.log.Debug("beam: device gone", "remote", r.RemoteAddr, "err", err)
		return
	}
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		h.fail(w, r, errTimeout, err)
		return
	}
	h.fail(w, r, errUnreachable, err)
}

// fail writes an error answer; nothing is forwarded.
func (h *HTTPEntry) fail(w http.ResponseWriter, r *http.Request, e apiError, cause error) {
	lvl := slog.LevelDebug
	switch {
	case e.status >= 500 && e.status != http.StatusInternalServerError:
		lvl = slog.LevelInfo // destination trouble
	case e.status >= 500:
		lvl = slog.LevelError
	}
	h.s.log.Log(r.Context(), lvl, "beam: refused", "remote", r.RemoteAddr, "path", r.URL.Path, "code", e.code, "status", e.status, "err", cause)
	endorse.WriteError(w, e.status, e.code, e.message)
}

// bufferPool lends ReverseProxy its copy buffers.
type bufferPool struct{ p sync.Pool }

func (b *bufferPool) Get() []byte {
	if v, ok := b.p.Get().(*[]byte); ok {
		return *v
	}
	return make([]byte, 32<<10)
}

func (b *bufferPool) Put(buf []byte) { b.p.Put(&buf) }
