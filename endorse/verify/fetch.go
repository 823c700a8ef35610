package verify

import (
	"context"
	"crypto"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"sync"
	"time"
)

// Defaults for the HTTP key sources.
const (
	DefaultMinRefetch   = time.Minute
	DefaultFetchTimeout = 10 * time.Second
	maxKeyBody          = 64 << 10 // one PEM key
	maxJWKSBody         = 1 << 20  // a JWK Set
)

// HTTPConfig configures the HTTP key sources (JWKS, KeysURL).
type HTTPConfig struct {
	// Client fetches the keys; nil means a client with DefaultFetchTimeout.
	Client *http.Client
	// MinRefetch is the least time between two fetches that did not find a
	// wanted kid, so that tokens naming made-up kids cannot make the
	// verifier hammer the key server; 0 means DefaultMinRefetch.
	MinRefetch time.Duration
	// Now is the clock; nil means time.Now.
	Now func() time.Time
}

func (c HTTPConfig) withDefaults() HTTPConfig {
	if c.Client == nil {
		c.Client = &http.Client{Timeout: DefaultFetchTimeout}
	}
	if c.MinRefetch <= 0 {
		c.MinRefetch = DefaultMinRefetch
	}
	if c.Now == nil {
		c.Now = time.Now
	}
	return c
}

// checkURL accepts absolute http(s) URLs with a host and no credentials.
func checkURL(what, raw string) (*url.URL, error) {
	u, err := url.Parse(raw)
	if err != nil {
		return nil, fmt.Errorf("verify: %s URL: %w", what, err)
	}
	if u.Scheme != "http" && u.Scheme != "https" {
		return nil, fmt.Errorf("verify: %s URL %q: scheme must be http or https", what, raw)
	}
	if u.Host == "" {
		return nil, fmt.Errorf("verify: %s URL %q: no host", what, raw)
	}
	if u.User != nil {
		return nil, fmt.Errorf("verify: %s URL: credentials in the URL are not accepted", what)
	}
	if u.RawQuery != "" || u.Fragment != "" {
		return nil, fmt.Errorf("verify: %s URL %q: no query or fragment allowed", what, raw)
	}
	return u, nil
}

// httpGet fetches url and returns its body (at most limit bytes) and status.
func httpGet(ctx context.Context, c *http.Client, url string, limit int64) ([]byte, int, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return nil, 0, err
	}
	resp, err := c.Do(req)
	if err != nil {
		return nil, 0, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, limit+1))
	if err != nil {
		return nil, resp.StatusCode, fmt.Errorf("GET %s: reading body: %w", url, err)
	}
	if int64(len(body)) > limit {
		return nil, resp.StatusCode, fmt.Errorf("GET %s: body exceeds %d bytes", url, limit)
	}
	return body, resp.StatusCode, nil
}

// errRateLimited is returned by gate.do when the last failed fetch is too
// recent to try again.
var errRateLimited = errors.New("refetch rate-limited")

// gate runs at most one fetch at a time (callers arriving meanwhile wait for
// its result instead of starting their own) and, after a fetch that did not
// find what was wanted, no other before MinRefetch has passed.
type gate struct {
	cfg HTTPConfig

	mu      sync.Mutex
	cooling time.Time // no fetch before this time
	running *fetchCall
}

type fetchCall struct {
	done chan struct{} // closed when err is set
	err  error
}

// do runs fetch unless one is running (then it waits for that one) or the
// gate is cooling down (errRateLimited). fetch reports found=false when it
// did not find what was wanted, which starts the cool-down. The fetch runs
// in its own goroutine under a context detached from the caller's
// cancellation but bounded by DefaultFetchTimeout, so a caller that gives up
// does not spoil the fetch for the others; the goroutine ends with it.
func (g *gate) do(ctx context.Context, fetch func(context.Context) (found bool, err error)) (started bool, err error) {
	g.mu.Lock()
	c := g.running
	if c == nil {
		if now := g.cfg.Now(); now.Before(g.cooling) {
			wait := g.cooling.Sub(now).Round(time.Millisecond)
			g.mu.Unlock()
			return false, fmt.Errorf("%w (next attempt in %s)", errRateLimited, wait)
		}
		started = true
		c = &fetchCall{done: make(chan struct{})}
		g.running = c
		fctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), DefaultFetchTimeout)
		go func() {
			defer cancel()
			found, err := fetch(fctx)
			g.mu.Lock()
			if !found || err != nil {
				g.cooling = g.cfg.Now().Add(g.cfg.MinRefetch)
			}
			g.running = nil
			g.mu.Unlock()
			c.err = err
			close(c.done)
		}()
	}
	g.mu.Unlock()
	select {
	case <-c.done:
		return started, c.err
	case <-ctx.Done():
		return started, ctx.Err()
	}
}

// lookupOrFetch returns the key lookup finds, fetching when it finds none.
// A caller that only waited on someone else's fetch (for another kid) and
// still misses tries once more itself, subject to the cool-down.
func (g *gate) lookupOrFetch(ctx context.Context, kid string, lookup func(string) (crypto.PublicKey, bool), fetch func(context.Context) (bool, error)) (crypto.PublicKey, error) {
	for range 2 {
		if k, ok := lookup(kid); ok {
			return k, nil
		}
		started, err := g.do(ctx, fetch)
		if k, ok := lookup(kid); ok {
			return k, nil
		}
		switch {
		case errors.Is(err, errRateLimited):
			return nil, fmt.Errorf("%w: %q is not cached and %v", ErrUnknownKID, kid, err)
		case ctx.Err() != nil:
			return nil, fmt.Errorf("verify: waiting for key %q: %w", kid, ctx.Err())
		case err != nil:
			return nil, fmt.Errorf("%w: %v", ErrKeySource, err)
		case started:
			return nil, fmt.Errorf("%w: %q", ErrUnknownKID, kid)
		}
	}
	return nil, fmt.Errorf("%w: %q", ErrUnknownKID, kid)
}
