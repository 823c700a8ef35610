package device

import (
	"context"
	"crypto/tls"
	"net"
	"net/http"
	"net/netip"
	"time"
)

// HTTPClient returns an HTTP client whose connections are opened as the UE
// ue (see Dial), names resolved by the UE. The client is the UE's own, made
// on first use and shared by later calls: its keep-alive connections (at
// most Config.IdleConnsPerUE, closed after Config.IdleConnTimeout idle) are
// the UE's, and go when the UE is removed. Do not modify it; copy it to
// change its fields. While ue is not on the stack, the client's requests
// fail with ErrUnknownUE.
func (s *Stack) HTTPClient(ue netip.Addr) *http.Client {
	u := s.lookup(ue)
	if u == nil {
		return s.newHTTPClient(ue)
	}
	u.mu.Lock()
	defer u.mu.Unlock()
	if u.client == nil {
		u.client = s.newHTTPClient(ue)
	}
	return u.client
}

func (s *Stack) newHTTPClient(ue netip.Addr) *http.Client {
	t := &http.Transport{
		DialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
			return s.Dial(ctx, ue, network, addr)
		},
		// No proxy from the host's environment: the UE is on its own network.
		Proxy:                 nil,
		MaxIdleConns:          s.cfg.IdleConnsPerUE,
		MaxIdleConnsPerHost:   s.cfg.IdleConnsPerUE,
		IdleConnTimeout:       s.cfg.IdleConnTimeout,
		TLSHandshakeTimeout:   10 * time.Second,
		ExpectContinueTimeout: time.Second,
		ForceAttemptHTTP2:     true,
	}
	if s.cfg.RootCAs != nil {
		t.TLSClientConfig = &tls.Config{RootCAs: s.cfg.RootCAs, MinVersion: tls.VersionTLS12}
	}
	return &http.Client{Transport: t}
}
