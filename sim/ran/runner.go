package ran

import (
	"context"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/netip"
	"strconv"
	"sync"
	"time"

	"github.com/simgate/simgate/core/udr"
	"github.com/simgate/simgate/endorse/verify"
	"github.com/simgate/simgate/gtp/gtpu"
	"github.com/simgate/simgate/sim/aka"
	"github.com/simgate/simgate/sim/gnb"
	"github.com/simgate/simgate/sim/ue"
)

// Options are a run's collaborators.
type Options struct {
	// Logger receives the run's log lines (default: discard).
	Logger *slog.Logger
	// Progress, if set, gets a progress line every second; with TTY the
	// line is rewritten in place, otherwise each is a plain line.
	Progress io.Writer
	TTY      bool
	// NewUE makes the UEs (default: sim/ue).
	NewUE NewUEFunc
	// Attached, if set, is called once every UE has attached or failed
	// (and, with Config.Token, fetched its token), before holding and
	// deregistration, with the report so far. Results may be called from it.
	Attached func(Report)

	// The user plane (Config.Token, Config.SOCKS):
	// Verifier checks the tokens (default: one reading Config.JWKSURL).
	Verifier *verify.Verifier
	// RootCAs is the UEs' trust store for an https token_url (simgate's CA;
	// nil: the host's).
	RootCAs *x509.CertPool
	// N3Tap, if set, sees every GTP-U datagram of the gNBs (captures).
	N3Tap gtpu.Tap
	// N3Port is the gNBs' GTP-U port (default 2152) and UPFPort the port
	// they send to (default 2152): tests on shared hosts move them.
	N3Port, UPFPort uint16
}

// Runner is one load run; it runs once.
type Runner struct {
	cfg   Config
	opt   Options
	log   *slog.Logger
	file  *udr.SIMFile // when the UEs come from a SIM file
	cards []udr.SIMCard
	suci  suciParams
	ea    []uint8
	ia    []uint8

	st     *stats
	ues    []*simUE
	gnbs   []*gnb.GNB
	attach sync.WaitGroup
	dereg  sync.WaitGroup

	up       *userPlane
	verifier *verify.Verifier
	runCtx   context.Context // the Run's context, for the token fetches
	tokens   sync.WaitGroup
}

// Result is what became of one UE.
type Result struct {
	IMSI string
	IMEI string
	// Failure is the cause of a failed attach, "" if it attached.
	Failure string
	// Sessions are the UE's PDU sessions as its gNB holds them.
	Sessions []gnb.Session
	// Token is the outcome of the UE's token fetch with Config.Token; nil
	// if it fetched none.
	Token *TokenResult
}

// New prepares a run: it checks the configuration and loads the SIMs.
func New(cfg Config, opt Options) (*Runner, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	r := &Runner{cfg: cfg, opt: opt, log: opt.Logger, st: newStats()}
	if r.log == nil {
		r.log = slog.New(slog.DiscardHandler)
	}
	if r.opt.NewUE == nil {
		r.opt.NewUE = newSimUE
	}
	if err := r.newVerifier(); err != nil {
		return nil, err
	}
	r.suci, _ = cfg.SUCI.params() // validated
	r.ea, _ = algorithmIDs(cfg.Ciphering, "NEA", 0)
	r.ia, _ = algorithmIDs(cfg.Integrity, "NIA", 1)
	switch {
	case cfg.SIMFile != "":
		f, err := udr.ReadSIMFile(cfg.SIMFile)
		if err != nil {
			return nil, fmt.Errorf("ran: %w", err)
		}
		n := cfg.UEs
		if n == 0 {
			n = len(f.SIMs)
		}
		if n > len(f.SIMs) {
			return nil, fmt.Errorf("ran: ues: %d, but the SIM file %s holds %d SIMs", n, cfg.SIMFile, len(f.SIMs))
		}
		if n == 0 {
			return nil, fmt.Errorf("ran: the SIM file %s holds no SIMs", cfg.SIMFile)
		}
		r.file, r.cards = f, f.SIMs[:n]
	case cfg.IMSIFrom != "":
		if cfg.UEs == 0 {
			return nil, errors.New("ran: ues: give how many UEs to attach from imsi_from")
		}
		cards, err := derivedCards(cfg)
		if err != nil {
			return nil, err
		}
		r.cards = cards
	default:
		return nil, errors.New("ran: give a SIM file (sim_file) or a first IMSI (imsi_from)")
	}
	return r, nil
}

// derivedCards builds cfg.UEs SIMs from cfg.IMSIFrom up with K and OPc
// derived from the seed (udr.DerivedK, udr.DerivedOPc), AMF 8000, SQN 0.
func derivedCards(cfg Config) ([]udr.SIMCard, error) {
	cards := make([]udr.SIMCard, cfg.UEs)
	imsi := cfg.IMSIFrom
	seed := []byte(cfg.Seed)
	for i := range cards {
		if i > 0 {
			next, ok := increment(imsi)
			if !ok {
				return nil, fmt.Errorf("ran: imsi_from %s: %d UEs overflow its %d digits", cfg.IMSIFrom, cfg.UEs, len(imsi))
			}
			imsi = next
		}
		cards[i] = udr.SIMCard{IMSI: imsi, MNCLen: len(cfg.MNC), K: udr.DerivedK(seed, imsi),
			OPc: udr.DerivedOPc(seed, imsi), AMF: [2]byte{0x80, 0x00}}
	}
	return cards, nil
}

// increment adds one to a decimal string, keeping its width.
func increment(s string) (string, bool) {
	b := []byte(s)
	for i := len(b) - 1; i >= 0; i-- {
		if b[i] < '9' {
			b[i]++
			return string(b), true
		}
		b[i] = '0'
	}
	return "", false
}

// imeiOf is the IMEI of a UE: the SIM's locked IMEI, or the configured TAC
// with the IMSI's last 6 digits as serial number, and the Luhn check digit
// (TS 23.003 6.2.1, Annex B).
func imeiOf(card udr.SIMCard, tac string) string {
	if card.IMEI != "" {
		return card.IMEI
	}
	snr := card.IMSI
	if len(snr) > 6 {
		snr = snr[len(snr)-6:]
	}
	for len(snr) < 6 {
		snr = "0" + snr
	}
	body := tac + snr
	return body + strconv.Itoa(udr.IMEICheckDigit(body))
}

// ueConfig is the sim/ue configuration of one UE.
func (r *Runner) ueConfig(card udr.SIMCard, imei string, s *simUE) ue.Config {
	c := ue.FromCard(card)
	// TS 23.003 6.2.2: IMEISV = TAC, SNR, SVN; the check digit is not sent.
	c.IMEISV = imei[:14] + "00"
	c.SUCI = ue.SUCIConfig{Scheme: r.suci.scheme, HNPublicKey: r.suci.key, KeyID: r.suci.keyID,
		RoutingIndicator: r.suci.ri}
	c.ServingMCC, c.ServingMNC = r.cfg.MCC, r.cfg.MNC
	c.Ciphering, c.Integrity = r.ea, r.ia
	c.DNN = r.cfg.DNN
	c.SNSSAI = ue.SNSSAI{SST: r.cfg.SST, SD: r.cfg.SD}
	c.Logger = r.log
	c.OnEvent = s.onUEEvent
	return c
}

// Run attaches the UEs, holds them if configured, deregisters them and
// returns the report. Cancelling ctx stops starting UEs (those not started
// count as "not-started") and, with Hold, ends the hold; deregistration
// then still runs, bounded by the procedure timeout.
func (r *Runner) Run(ctx context.Context) (Report, error) {
	if r.ues != nil {
		return Report{}, errors.New("ran: a Runner runs once")
	}
	start := time.Now()
	r.runCtx = ctx
	r.ues = make([]*simUE, len(r.cards))
	for i := range r.cards {
		s := &simUE{r: r, card: &r.cards[i]}
		s.imei = imeiOf(r.cards[i], r.cfg.IMEITAC)
		u, err := r.opt.NewUE(r.ueConfig(r.cards[i], s.imei, s))
		if err != nil {
			return Report{}, fmt.Errorf("ran: ue %s: %w", r.cards[i].IMSI, err)
		}
		s.ue = u
		r.ues[i] = s
	}
	var socks net.Listener
	if r.cfg.SOCKS != "" {
		ln, err := net.Listen("tcp", r.cfg.SOCKS)
		if err != nil {
			return Report{}, fmt.Errorf("ran.socks: %w", err)
		}
		socks = ln
	}
	if err := r.startUserPlane(ctx); err != nil {
		if socks != nil {
			socks.Close()
		}
		return Report{}, err
	}
	if err := r.dialGNBs(ctx); err != nil {
		r.closeGNBs()
		r.stopUserPlane()
		if socks != nil {
			socks.Close()
		}
		return Report{}, err
	}
	stopProgress := r.progress(start)

	// Launch at the rate; then wait for every attach to end.
	b := newBucket(r.cfg.Rate, r.cfg.Burst, time.Now())
	r.attach.Add(len(r.ues))
	launched := 0
	for i, s := range r.ues {
		if err := b.wait(ctx); err != nil {
			break
		}
		s.g = r.gnbs[i%len(r.gnbs)]
		s.start()
		launched++
	}
	for _, s := range r.ues[launched:] {
		s.failure = "not-started"
		r.st.fail("not-started")
		r.attach.Done()
	}
	r.attach.Wait()
	r.tokens.Wait()
	socksDone := make(chan struct{})
	socksCtx, stopSOCKS := context.WithCancel(ctx)
	if socks != nil {
		go func() {
			defer close(socksDone)
			if err := r.serveSOCKS(socksCtx, socks); err != nil {
				r.log.Error("ran: socks", "err", err)
			}
		}()
	} else {
		close(socksDone)
	}
	if r.opt.Attached != nil {
		r.opt.Attached(r.st.report(len(r.ues), time.Since(start)))
	}
	if r.cfg.Hold {
		<-ctx.Done()
	}
	stopSOCKS()
	<-socksDone

	// Deregister every UE that is registered.
	for _, s := range r.ues[:launched] {
		gu := s.gu.Load()
		if gu == nil {
			continue
		}
		r.dereg.Add(1)
		if err := gu.Do(s.deregister); err != nil {
			r.dereg.Done()
		}
	}
	r.dereg.Wait()
	r.closeGNBs()
	r.stopUserPlane()
	stopProgress()
	rep := r.st.report(len(r.ues), time.Since(start))
	if err := r.saveSQNs(); err != nil {
		return rep, err
	}
	return rep, nil
}

// Results says what became of each UE. Call it from Options.Attached or
// after Run.
func (r *Runner) Results() []Result {
	out := make([]Result, len(r.ues))
	for i, s := range r.ues {
		out[i] = Result{IMSI: s.card.IMSI, IMEI: s.imei, Failure: s.failure}
		if gu := s.gu.Load(); gu != nil {
			out[i].Sessions = gu.Sessions()
		}
		out[i].Token = s.token.Load()
	}
	return out
}

// dialGNBs connects the gNBs at once. A gNB whose NG Setup fails is left
// nil (its UEs fail with "ng-setup-failure"); one that cannot connect at
// all is an error.
func (r *Runner) dialGNBs(ctx context.Context) error {
	n3, _ := netip.ParseAddr(r.cfg.N3) // validated
	r.gnbs = make([]*gnb.GNB, r.cfg.GNBs)
	errs := make([]error, r.cfg.GNBs)
	var wg sync.WaitGroup
	for i := range r.gnbs {
		gc := gnb.DefaultConfig()
		gc.Name = fmt.Sprintf("simgate-gnb-%d", i+1)
		gc.ID, gc.IDBits = r.cfg.GNBID+uint32(i), 32
		gc.MCC, gc.MNC, gc.TAC, gc.SST, gc.SD = r.cfg.MCC, r.cfg.MNC, r.cfg.TAC, r.cfg.SST, r.cfg.SD
		gc.N3 = n3
		if r.up != nil {
			gc.N3Endpoint = r.up.n3
		}
		// Disjoint downlink TEID ranges: gNBs share the N3 address.
		gc.TEIDBase = uint32(i)<<24 | 1
		gc.N2 = r.cfg.N2
		if gc.N2.Logger == nil {
			gc.N2.Logger = r.log
		}
		gc.Logger = r.log
		wg.Add(1)
		go func() {
			defer wg.Done()
			// The gNBs outlive ctx: deregistration runs after it ends.
			g, err := gnb.Dial(context.WithoutCancel(ctx), gc, r.cfg.AMF, gnb.HandlerFunc(r.onGNBEvent))
			r.gnbs[i], errs[i] = g, err
		}()
	}
	wg.Wait()
	for i, err := range errs {
		switch {
		case err == nil:
		case errors.Is(err, gnb.ErrNGSetupFailure):
			r.log.Warn("ran: NG setup failed", "gnb", i+1, "err", err)
		default:
			return fmt.Errorf("ran: gnb %d: %w", i+1, err)
		}
	}
	return nil
}

func (r *Runner) closeGNBs() {
	for _, g := range r.gnbs {
		if g != nil {
			_ = g.Close()
		}
	}
}

func (r *Runner) onGNBEvent(u *gnb.UE, ev gnb.Event) {
	if s, ok := u.NAS().(*simUE); ok {
		s.onGNBEvent(u, ev)
	}
}

// progress prints a line a second until the returned func is called,
// which prints the last one.
func (r *Runner) progress(start time.Time) func() {
	w := r.opt.Progress
	if w == nil {
		return func() {}
	}
	// The rate is that of the last interval; the final line gives the
	// average over the run.
	var lastAt time.Time
	var lastReg int
	line := func(final bool) string {
		p := r.st.snapshot()
		now := time.Now()
		el := now.Sub(start)
		from, base := lastAt, lastReg
		if final || from.IsZero() {
			from, base = start, 0
		}
		rate := 0.0
		if d := now.Sub(from).Seconds(); d > 0 {
			rate = float64(p.registered-base) / d
		}
		lastAt, lastReg = now, p.registered
		return fmt.Sprintf("ran: %5.1fs ues %d started %d registered %d sessions %d failed %d deregistered %d (%.0f reg/s)",
			el.Seconds(), len(r.ues), p.started, p.registered, p.sessions, p.failed, p.deregistered, rate)
	}
	print := func(final bool) {
		switch {
		case r.opt.TTY && final:
			fmt.Fprintf(w, "\r\x1b[K%s\n", line(final))
		case r.opt.TTY:
			fmt.Fprintf(w, "\r\x1b[K%s", line(final))
		default:
			fmt.Fprintln(w, line(final))
		}
	}
	stop := make(chan struct{})
	done := make(chan struct{})
	go func() {
		defer close(done)
		t := time.NewTicker(time.Second)
		defer t.Stop()
		for {
			select {
			case <-t.C:
				print(false)
			case <-stop:
				print(true)
				return
			}
		}
	}()
	return func() {
		close(stop)
		<-done
	}
}

// saveSQNs writes the USIMs' sequence numbers back to the SIM file, so
// that the next run starts where this one ended.
func (r *Runner) saveSQNs() error {
	if r.file == nil {
		return nil
	}
	changed := false
	for _, s := range r.ues {
		if sqn, ok := highestSQN(s.ue.USIMState()); ok && sqn != s.card.SQN {
			s.card.SQN = sqn
			changed = true
		}
	}
	if !changed {
		return nil
	}
	if err := udr.WriteSIMFile(r.cfg.SIMFile, r.file); err != nil {
		return fmt.Errorf("ran: saving SQNs: %w", err)
	}
	return nil
}

// highestSQN is SQN_MS, the highest sequence number the USIM accepted
// (TS 33.102 C.2.2): SEQ_MS || IND of the largest array entry.
func highestSQN(st aka.State) (uint64, bool) {
	if st.INDBits <= 0 || st.INDBits > aka.MaxINDBits {
		return 0, false
	}
	best := -1
	for i, v := range st.SEQ {
		if v > 0 && (best < 0 || v > st.SEQ[best]) {
			best = i
		}
	}
	if best < 0 {
		return 0, false
	}
	return st.SEQ[best]<<st.INDBits | uint64(best), true
}
