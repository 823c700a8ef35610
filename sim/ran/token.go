package ran

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"os"
	"strconv"
	"syscall"
	"time"

	"github.com/simgate/simgate/endorse/verify"
	"github.com/simgate/simgate/gtp/gtpu"
	"github.com/simgate/simgate/sim/device"
	"github.com/simgate/simgate/sim/gnb"
)

// TokenResult is what came of one UE's token fetch (Config.Token).
type TokenResult struct {
	// Failure is "" when the token verified and named the UE's own IMSI
	// and IMEI, else the cause (Report's token-* failures).
	Failure string
	// IMSI and IMEI are what the verified token claimed.
	IMSI, IMEI string
	// Latency is the request's start to the verified claims.
	Latency time.Duration
	// JWT is the token as the endpoint gave it ("" if none came).
	JWT string
}

// maxTokenBody bounds the token endpoint's answer read.
const maxTokenBody = 64 << 10

// userPlane is the run's device side: one shared stack for every UE, one
// GTP-U endpoint the gNBs share (their TEID ranges are disjoint).
type userPlane struct {
	stack *device.Stack
	n3    *gnb.N3
}

// startUserPlane opens the UEs' stack and the gNBs' N3 endpoint when the
// run needs a user plane (token or socks).
func (r *Runner) startUserPlane(ctx context.Context) error {
	if !r.cfg.Token && r.cfg.SOCKS == "" {
		return nil
	}
	st, err := device.New(device.Config{RootCAs: r.opt.RootCAs, Logger: r.log})
	if err != nil {
		return fmt.Errorf("ran: %w", err)
	}
	var dns netip.Addr
	if r.cfg.DNS != "" {
		dns, _ = netip.ParseAddr(r.cfg.DNS) // validated
	}
	n3cfg := gnb.N3Config{Addr: r.cfg.N3, DNS: dns, UPFPort: r.opt.UPFPort, Logger: r.log,
		GTPU: gtpu.Config{Tap: r.opt.N3Tap, Logger: r.log}}
	if r.opt.N3Port != 0 {
		n3cfg.Addr = netip.AddrPortFrom(netip.MustParseAddr(r.cfg.N3), r.opt.N3Port).String()
	}
	// The endpoint outlives ctx: deregistration runs after it ends.
	n3, err := gnb.ListenN3(context.WithoutCancel(ctx), n3cfg, st)
	if err != nil {
		st.Close()
		return fmt.Errorf("ran: n3 %s (it must not be the UPF's N3 address): %w", r.cfg.N3, err)
	}
	r.up = &userPlane{stack: st, n3: n3}
	return nil
}

func (r *Runner) stopUserPlane() {
	if r.up == nil {
		return
	}
	_ = r.up.n3.Close()
	_ = r.up.stack.Close()
}

// N3Stats are the user plane's counters (zero without a user plane).
func (r *Runner) N3Stats() gnb.N3Stats {
	if r.up == nil {
		return gnb.N3Stats{}
	}
	return r.up.n3.Stats()
}

// verifier is the token verifier: Options.Verifier, or one reading the
// JWK Set at jwks_url.
func (r *Runner) newVerifier() error {
	if !r.cfg.Token {
		return nil
	}
	if r.opt.Verifier != nil {
		r.verifier = r.opt.Verifier
		return nil
	}
	if r.cfg.JWKSURL == "" {
		return errors.New("ran.jwks_url: the token run needs the network's JWK Set URL")
	}
	v, err := verify.New(verify.WithJWKS(r.cfg.JWKSURL), verify.WithIssuer(r.cfg.TokenIssuer))
	if err != nil {
		return fmt.Errorf("ran.jwks_url: %w", err)
	}
	r.verifier = v
	return nil
}

// startToken has s fetch its token on a goroutine of its own (the UE's
// worker must not wait for the network). It runs on the UE's worker.
func (s *simUE) startToken(gu *gnb.UE) {
	r := s.r
	if !r.cfg.Token || r.up == nil {
		return
	}
	se, ok := gu.Session(sessionPSI)
	if !ok || !se.UEAddr.IsValid() {
		s.token.Store(&TokenResult{Failure: "token-no-address"})
		r.st.fail("token-no-address")
		return
	}
	r.tokens.Add(1)
	go func() {
		defer r.tokens.Done()
		res := r.fetchToken(r.runCtx, s, se.UEAddr)
		s.token.Store(&res)
		if res.Failure != "" {
			r.st.fail(res.Failure)
			r.log.Info("ran: token", "imsi", s.card.IMSI, "ue", se.UEAddr, "failure", res.Failure)
			return
		}
		r.st.sample(LatencyToken, res.Latency)
	}()
}

// fetchToken gets a token as the UE at addr, verifies it and checks that it
// names the UE's IMSI and IMEI.
func (r *Runner) fetchToken(ctx context.Context, s *simUE, addr netip.Addr) TokenResult {
	ctx, cancel := context.WithTimeout(ctx, r.cfg.Timeout)
	defer cancel()
	start := time.Now()
	tok, failure := r.getToken(ctx, r.up.stack.HTTPClient(addr))
	if failure != "" {
		return TokenResult{Failure: failure}
	}
	claims, err := r.verifier.Verify(ctx, tok)
	if err != nil {
		r.log.Info("ran: token does not verify", "imsi", s.card.IMSI, "err", err)
		if errors.Is(err, verify.ErrKeySource) {
			return TokenResult{Failure: "token-keys", JWT: tok}
		}
		return TokenResult{Failure: "token-verify", JWT: tok}
	}
	res := TokenResult{IMSI: claims.Endorse.IMSI, IMEI: claims.Endorse.IMEI, Latency: time.Since(start), JWT: tok}
	switch {
	case res.IMSI != s.card.IMSI:
		res.Failure = "token-imsi-mismatch"
	case res.IMEI != s.imei:
		res.Failure = "token-imei-mismatch"
	}
	return res
}

// getToken asks the token endpoint; the answer is {"token":"<JWT>"}
// (endorse.TokenHandler).
func (r *Runner) getToken(ctx context.Context, c *http.Client) (string, string) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, r.cfg.TokenURL, nil)
	if err != nil {
		return "", "token-request"
	}
	resp, err := c.Do(req)
	if err != nil {
		r.log.Debug("ran: token request", "err", err)
		return "", netFailure(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxTokenBody))
	if err != nil {
		return "", netFailure(err)
	}
	if resp.StatusCode != http.StatusOK {
		return "", "token-http-" + strconv.Itoa(resp.StatusCode)
	}
	var v struct {
		Token string `json:"token"`
	}
	if err := json.Unmarshal(body, &v); err != nil || v.Token == "" {
		return "", "token-malformed"
	}
	return v.Token, ""
}

// netFailure names why a request got no answer.
func netFailure(err error) string {
	var dnsErr *net.DNSError
	switch {
	case errors.As(err, &dnsErr):
		return "token-dns"
	case errors.Is(err, context.Canceled):
		return "token-cancelled"
	case errors.Is(err, context.DeadlineExceeded), errors.Is(err, os.ErrDeadlineExceeded):
		return "token-timeout"
	case errors.Is(err, device.ErrUnknownUE):
		return "token-no-session"
	case errors.Is(err, syscall.ECONNREFUSED):
		return "token-refused"
	case errors.Is(err, syscall.ECONNRESET):
		return "token-reset"
	}
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		return "token-timeout"
	}
	return "token-connect"
}

// serveSOCKS serves SOCKS5 for the attached UEs on ln until ctx ends.
func (r *Runner) serveSOCKS(ctx context.Context, ln net.Listener) error {
	byIMSI := make(map[string]*simUE, len(r.ues))
	for _, s := range r.ues {
		byIMSI[s.card.IMSI] = s
	}
	return r.up.stack.ServeSOCKS(ctx, ln, func(imsi string) (netip.Addr, bool) {
		s := byIMSI[imsi]
		if s == nil {
			return netip.Addr{}, false
		}
		gu := s.gu.Load()
		if gu == nil || gu.Released() {
			return netip.Addr{}, false
		}
		se, ok := gu.Session(sessionPSI)
		if !ok || !se.UEAddr.IsValid() {
			return netip.Addr{}, false
		}
		return se.UEAddr, true
	})
}
