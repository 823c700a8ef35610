// Package gnb is a simulated gNB: NGAP over N2 for many UEs.
//
// A GNB holds one N2 association with the AMF (core/n2). It runs NG Setup,
// relays NAS between its UEs and the AMF (InitialUEMessage, Uplink and
// DownlinkNASTransport), answers InitialContextSetup (keeping KgNB and the UE
// security capabilities), sets up and releases PDU session resources with
// N3 downlink tunnels of its own, releases UE contexts, and handles NG Reset
// and Error Indication (TS 38.413). It never reads NAS: the UE side of each
// UE is a NAS value (sim/ue) that turns a downlink NAS PDU into uplink ones.
//
// N3 (Config.N3Endpoint, n3.go): an N3 endpoint is one batched GTP-U socket
// (gtp/gtpu) shared by the gNBs of a process. When a PDU session's
// resources are set up, the UE's address joins a UserPlane (sim/device's
// shared stack) with a send function that wraps its uplink packets in
// G-PDUs with a UL PDU Session Container (TS 29.281, TS 38.415) to the UPF's
// F-TEID; downlink G-PDUs are demultiplexed by the gNB's TEID back into the
// UserPlane; at session or context release the UE leaves it.
//
// Concurrency: one reader goroutine per association decodes NGAP and hands
// every UE-associated message to one of a few worker goroutines chosen by
// RAN-UE-NGAP-ID, so that the work of one UE runs in order on one goroutine
// and no UE has a goroutine of its own. The NAS calls and the Handler's
// events for a UE run on its worker.
package gnb

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/netip"
	"runtime"
	"sync"
	"sync/atomic"
	"time"

	"github.com/free5gc/ngap/aper"
	"github.com/free5gc/ngap/ie"
	"github.com/free5gc/ngap/message"

	"github.com/simgate/simgate/core/n2"
)

// Config configures a gNB. Zero fields take the defaults of DefaultConfig.
type Config struct {
	// Name is the RAN node name sent in NG Setup.
	Name string
	// ID is the gNB ID, IDBits (22..32) long (TS 38.413 9.3.1.6).
	ID     uint32
	IDBits int
	// MCC and MNC are the PLMN the gNB broadcasts; TAC its tracking area
	// code (24 bits).
	MCC, MNC string
	TAC      uint32
	// SST and SD are the slice the gNB supports; SD is "" or 6 hex digits.
	SST uint8
	SD  string
	// CellID is the 36-bit NR Cell Identity of the gNB's cell; 0 means the
	// gNB ID followed by cell 1.
	CellID uint64
	// N3 is the gNB's user-plane address, given to the core in PDU session
	// setup responses (default 127.0.0.1).
	N3 netip.Addr
	// TEIDBase is the first downlink TEID the gNB allocates (default 1);
	// gNBs sharing an N3 address take disjoint ranges.
	TEIDBase uint32
	// N3Endpoint, if set, carries the user plane of the gNB's PDU
	// sessions: once a session is set up its UE joins the endpoint's
	// UserPlane, with G-PDUs to and from the UPF; at release it leaves.
	// N3 defaults to the endpoint's address. Several gNBs may share one.
	N3Endpoint *N3
	// Workers is how many goroutines run UE work (default GOMAXPROCS).
	Workers int
	// SetupTimeout bounds the NG Setup exchange (default 10s).
	SetupTimeout time.Duration
	// N2 configures the association (transport, ports, timers).
	N2 n2.Config
	// Logger receives the gNB's log lines (default: discard).
	Logger *slog.Logger
}

// DefaultConfig is the gNB of flow.md's defaults: PLMN 001/01, TAC 1,
// slice SST 1, a 32-bit gNB ID 1.
func DefaultConfig() Config {
	return Config{
		Name: "simgate-gnb", ID: 1, IDBits: 32, MCC: "001", MNC: "01", TAC: 1, SST: 1,
		N3: netip.AddrFrom4([4]byte{127, 0, 0, 1}), TEIDBase: 1, SetupTimeout: 10 * time.Second,
	}
}

func (c Config) withDefaults() Config {
	d := DefaultConfig()
	if c.Name == "" {
		c.Name = d.Name
	}
	if c.IDBits == 0 {
		c.IDBits = d.IDBits
	}
	if c.MCC == "" && c.MNC == "" {
		c.MCC, c.MNC = d.MCC, d.MNC
	}
	if c.SST == 0 {
		c.SST = d.SST
	}
	if c.CellID == 0 && c.IDBits >= 22 && c.IDBits <= 32 {
		c.CellID = uint64(c.ID)<<(36-c.IDBits) | 1
	}
	if !c.N3.IsValid() && c.N3Endpoint != nil {
		c.N3 = c.N3Endpoint.Addr().Addr()
	}
	if !c.N3.IsValid() {
		c.N3 = d.N3
	}
	if c.TEIDBase == 0 {
		c.TEIDBase = d.TEIDBase
	}
	if c.Workers <= 0 {
		c.Workers = runtime.GOMAXPROCS(0)
	}
	if c.SetupTimeout <= 0 {
		c.SetupTimeout = d.SetupTimeout
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	return c
}

// Validate checks the configuration.
func (c Config) Validate() error {
	var errs []error
	if c.IDBits < 22 || c.IDBits > 32 {
		errs = append(errs, fmt.Errorf("gnb: id_bits %d: want 22..32 (TS 38.413 9.3.1.6)", c.IDBits))
	} else if c.IDBits < 32 && uint64(c.ID) >= 1<<c.IDBits {
		errs = append(errs, fmt.Errorf("gnb: id %d does not fit in %d bits", c.ID, c.IDBits))
	}
	if _, err := plmnID(c.MCC, c.MNC); err != nil {
		errs = append(errs, fmt.Errorf("gnb: plmn: %w", err))
	}
	if c.TAC >= 1<<24 {
		errs = append(errs, fmt.Errorf("gnb: tac %#x exceeds 24 bits", c.TAC))
	}
	if _, err := sdBytes(c.SD); err != nil {
		errs = append(errs, fmt.Errorf("gnb: sd: %w", err))
	}
	if c.CellID >= 1<<36 {
		errs = append(errs, fmt.Errorf("gnb: cell_id %#x exceeds 36 bits", c.CellID))
	}
	if c.N3.IsValid() && !c.N3.Is4() {
		errs = append(errs, fmt.Errorf("gnb: n3 address %s is not IPv4", c.N3))
	}
	if len([]byte(c.Name)) > 150 {
		errs = append(errs, errors.New("gnb: name longer than 150 characters"))
	}
	if err := c.N2.Validate(); err != nil {
		errs = append(errs, fmt.Errorf("gnb: %w", err))
	}
	return errors.Join(errs...)
}

func sdBytes(sd string) ([]byte, error) {
	if sd == "" {
		return nil, nil
	}
	if len(sd) != 6 {
		return nil, fmt.Errorf("%q: want 6 hex digits", sd)
	}
	var b [3]byte
	for i := 0; i < 6; i++ {
		c := sd[i]
		var v byte
		switch {
		case c >= '0' && c <= '9':
			v = c - '0'
		case c >= 'a' && c <= 'f':
			v = c - 'a' + 10
		case c >= 'A' && c <= 'F':
			v = c - 'A' + 10
		default:
			return nil, fmt.Errorf("%q: want 6 hex digits", sd)
		}
		b[i/2] |= v << (4 * (1 - i%2))
	}
	return b[:], nil
}

// Errors callers can test with errors.Is.
var (
	// ErrNGSetupFailure: the AMF answered NG Setup with NGSetupFailure
	// (the error is a *SetupFailure).
	ErrNGSetupFailure = errors.New("NG setup failure")
	// ErrAssociationLost: the N2 association ended while the gNB ran.
	ErrAssociationLost = errors.New("N2 association lost")
	// ErrClosed: the gNB is closed.
	ErrClosed = errors.New("gnb closed")
	// ErrReleased: the UE's context is released.
	ErrReleased = errors.New("UE context released")
)

// SetupFailure is an NGSetupFailure from the AMF (TS 38.413 8.7.1.3).
type SetupFailure struct {
	Cause      string        // e.g. "Miscellaneous: Unknown PLMN or SNPN"
	TimeToWait time.Duration // 0 if absent
}

func (e *SetupFailure) Error() string {
	s := "gnb: NG setup failure: " + e.Cause
	if e.TimeToWait > 0 {
		s += fmt.Sprintf(" (time to wait %v)", e.TimeToWait)
	}
	return s
}

// Is makes errors.Is(err, ErrNGSetupFailure) true.
func (e *SetupFailure) Is(target error) bool { return target == ErrNGSetupFailure }

// AMFInfo is what the AMF said of itself in NGSetupResponse.
type AMFInfo struct {
	Name     string
	Capacity int64
	GUAMIs   []GUAMI
	PLMNs    []string // "<mcc>-<mnc>" of PLMNSupportList
}

// GUAMI is a served GUAMI (TS 23.003 2.10.1).
type GUAMI struct {
	MCC, MNC string
	Region   uint8
	Set      uint16
	Pointer  uint8
}

// NAS is the UE side of a UE: it takes one downlink NAS PDU and returns the
// uplink NAS PDUs it answers with (sim/ue.UE).
type NAS interface {
	Handle(dl []byte) (ul [][]byte, err error)
}

// SessionAddresser is implemented by a NAS that learnt the IPv4 address of
// a PDU session from its PDU Session Establishment Accept; the gNB records
// it with the session.
type SessionAddresser interface {
	SessionAddr(psi uint8) (netip.Addr, bool)
}

// EventKind says what happened to a UE.
type EventKind uint8

const (
	// EventNAS: a downlink NAS PDU went to the UE and its answers to the
	// AMF; Err is the UE's error, if any.
	EventNAS EventKind = iota + 1
	// EventContextSetup: InitialContextSetup completed (KgNB in place).
	EventContextSetup
	// EventSessionSetup: resources of PDU session PSI were set up.
	EventSessionSetup
	// EventSessionFailed: resources of PDU session PSI could not be set
	// up (Cause).
	EventSessionFailed
	// EventSessionReleased: resources of PDU session PSI were released.
	EventSessionReleased
	// EventReleased: the UE context is gone: released by the AMF (Cause)
	// or by NG Reset, or lost with the association (Err).
	EventReleased
	// EventErrorIndication: the AMF sent an Error Indication for the UE.
	EventErrorIndication
)

func (k EventKind) String() string {
	switch k {
	case EventNAS:
		return "nas"
	case EventContextSetup:
		return "context-setup"
	case EventSessionSetup:
		return "session-setup"
	case EventSessionFailed:
		return "session-failed"
	case EventSessionReleased:
		return "session-released"
	case EventReleased:
		return "released"
	case EventErrorIndication:
		return "error-indication"
	}
	return fmt.Sprintf("event(%d)", uint8(k))
}

// Event is one thing that happened to a UE.
type Event struct {
	Kind  EventKind
	PSI   uint8
	Cause string
	Err   error
}

// Handler receives the events of the gNB's UEs. Event runs on the UE's
// worker goroutine, after the gNB has answered the AMF; it may call the
// UE's methods, GNB.Attach and UE.Do, but not GNB.Close.
type Handler interface {
	Event(u *UE, ev Event)
}

// HandlerFunc adapts a function to Handler.
type HandlerFunc func(u *UE, ev Event)

// Event calls f.
func (f HandlerFunc) Event(u *UE, ev Event) { f(u, ev) }

// GNB is one simulated gNB with its N2 association.
type GNB struct {
	cfg      Config
	log      *slog.Logger
	conn     n2.Conn
	h        Handler
	plmn     [3]byte
	ueStream uint16
	inline   bool // tests: run jobs on the caller's goroutine

	setupCh chan message.Message
	amf     AMFInfo

	shards  []*shard
	nextRAN atomic.Uint32
	live    atomic.Int64

	mu       sync.Mutex
	byAMF    map[int64]uint32 // AMF-UE-NGAP-ID -> RAN-UE-NGAP-ID
	teids    map[uint32]teidOwner
	nextTEID uint32

	closeOnce sync.Once
	closing   chan struct{}
	done      chan struct{}
	err       error
	workers   sync.WaitGroup
	stopCtx   func() bool
}

type teidOwner struct {
	u   *UE
	psi uint8
}

// Dial connects to the AMF at cfg's address amf ("host" or "host:port"),
// runs NG Setup and returns the running gNB. Cancelling ctx closes the gNB,
// as Close does. An NGSetupFailure is a *SetupFailure (errors.Is
// ErrNGSetupFailure). h may be nil.
func Dial(ctx context.Context, cfg Config, amf string, h Handler) (*GNB, error) {
	cfg = cfg.withDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	setupCtx, cancel := context.WithTimeout(ctx, cfg.SetupTimeout)
	defer cancel()
	conn, err := n2.Dial(setupCtx, cfg.N2, amf)
	if err != nil {
		return nil, fmt.Errorf("gnb %s: %w", cfg.Name, err)
	}
	g, err := newGNB(cfg, conn, h)
	if err != nil {
		_ = conn.Close()
		return nil, err
	}
	g.start()
	if err := g.ngSetup(setupCtx); err != nil {
		_ = g.Close()
		return nil, err
	}
	g.stopCtx = context.AfterFunc(ctx, func() { _ = g.Close() })
	return g, nil
}

func newGNB(cfg Config, conn n2.Conn, h Handler) (*GNB, error) {
	plmn, err := plmnID(cfg.MCC, cfg.MNC)
	if err != nil {
		return nil, fmt.Errorf("gnb: %w", err)
	}
	if h == nil {
		h = HandlerFunc(func(*UE, Event) {})
	}
	g := &GNB{
		cfg: cfg, log: cfg.Logger.With("gnb", cfg.Name), conn: conn, h: h, plmn: plmn,
		setupCh: make(chan message.Message, 1),
		byAMF:   map[int64]uint32{}, teids: map[uint32]teidOwner{}, nextTEID: cfg.TEIDBase - 1,
		closing: make(chan struct{}), done: make(chan struct{}),
	}
	// TS 38.412 7: stream 0 is for non-UE-associated signalling.
	if conn.OutStreams() > 1 {
		g.ueStream = 1
	}
	g.shards = make([]*shard, cfg.Workers)
	for i := range g.shards {
		g.shards[i] = &shard{ues: map[uint32]*UE{}, q: newQueue()}
	}
	return g, nil
}

func (g *GNB) start() {
	for _, sh := range g.shards {
		g.workers.Add(1)
		go g.work(sh)
	}
	go g.readLoop()
}

// ngSetup runs NG Setup (TS 38.413 8.7.1).
func (g *GNB) ngSetup(ctx context.Context) error {
	req, err := g.setupRequest()
	if err != nil {
		return err
	}
	b, err := req.MarshalBinary()
	if err != nil {
		return fmt.Errorf("gnb %s: NGSetupRequest: %w", g.cfg.Name, err)
	}
	if err := g.conn.WriteMsg(b, 0); err != nil {
		return fmt.Errorf("gnb %s: NGSetupRequest: %w", g.cfg.Name, err)
	}
	select {
	case m := <-g.setupCh:
		switch m := m.(type) {
		case *message.NGSetupResponse:
			g.amf = amfInfo(m)
			g.log.Info("gnb: NG setup complete", "amf", g.amf.Name, "transport", g.conn.Transport())
			return nil
		case *message.NGSetupFailure:
			f := &SetupFailure{Cause: m.Cause.String()}
			if m.TimeToWait != nil {
				f.TimeToWait = timeToWait(m.TimeToWait.Value)
			}
			return fmt.Errorf("gnb %s: %w", g.cfg.Name, f)
		}
		return fmt.Errorf("gnb %s: NG setup: unexpected %T", g.cfg.Name, m)
	case <-g.done:
		return fmt.Errorf("gnb %s: NG setup: %w", g.cfg.Name, g.err)
	case <-ctx.Done():
		return fmt.Errorf("gnb %s: NG setup: no answer: %w", g.cfg.Name, ctx.Err())
	}
}

func (g *GNB) setupRequest() (*message.NGSetupRequest, error) {
	sd, err := sdBytes(g.cfg.SD)
	if err != nil {
		return nil, err
	}
	tac := [3]byte{byte(g.cfg.TAC >> 16), byte(g.cfg.TAC >> 8), byte(g.cfg.TAC)}
	return &message.NGSetupRequest{
		GlobalRANNodeID: &ie.GlobalRANNodeID{Choice: &ie.GlobalGNBID{
			PLMNIdentity: &ie.PLMNIdentity{Value: g.plmn[:]},
			GNBID:        &ie.GNBID{Choice: &ie.GNBIDForGNBID{Value: bitString(uint64(g.cfg.ID), g.cfg.IDBits)}},
		}},
		RANNodeName: &ie.RANNodeName{Value: aper.PrintableString(g.cfg.Name)},
		SupportedTAList: &ie.SupportedTAList{List: []ie.SupportedTAItem{{
			TAC: &ie.TAC{Value: tac[:]},
			BroadcastPLMNList: &ie.BroadcastPLMNList{List: []ie.BroadcastPLMNItem{{
				PLMNIdentity:        &ie.PLMNIdentity{Value: g.plmn[:]},
				TAISliceSupportList: &ie.SliceSupportList{List: []ie.SliceSupportItem{{SNSSAI: snssai(g.cfg.SST, sd)}}},
			}}},
		}}},
		DefaultPagingDRX: &ie.PagingDRX{Value: ie.PagingDRXPresentV128},
	}, nil
}

func snssai(sst uint8, sd []byte) *ie.SNSSAI {
	s := &ie.SNSSAI{SST: &ie.SST{Value: aper.OctetString{sst}}}
	if sd != nil {
		s.SD = &ie.SD{Value: aper.OctetString(sd)}
	}
	return s
}

func amfInfo(m *message.NGSetupResponse) AMFInfo {
	var info AMFInfo
	if m.AMFName != nil {
		info.Name = string(m.AMFName.Value)
	}
	if m.RelativeAMFCapacity != nil {
		info.Capacity = m.RelativeAMFCapacity.Value
	}
	if m.ServedGUAMIList != nil {
		for _, it := range m.ServedGUAMIList.List {
			if gu, ok := decodeGUAMI(it.GUAMI); ok {
				info.GUAMIs = append(info.GUAMIs, gu)
			}
		}
	}
	if m.PLMNSupportList != nil {
		for _, it := range m.PLMNSupportList.List {
			if it.PLMNIdentity == nil {
				continue
			}
			if mcc, mnc, err := decodePLMN(it.PLMNIdentity.Value); err == nil {
				info.PLMNs = append(info.PLMNs, mcc+"-"+mnc)
			}
		}
	}
	return info
}

func decodeGUAMI(gu *ie.GUAMI) (GUAMI, bool) {
	if gu == nil || gu.PLMNIdentity == nil || gu.AMFRegionID == nil || gu.AMFSetID == nil || gu.AMFPointer == nil {
		return GUAMI{}, false
	}
	mcc, mnc, err := decodePLMN(gu.PLMNIdentity.Value)
	if err != nil {
		return GUAMI{}, false
	}
	r, err1 := bitValue(gu.AMFRegionID.Value)
	s, err2 := bitValue(gu.AMFSetID.Value)
	p, err3 := bitValue(gu.AMFPointer.Value)
	if err1 != nil || err2 != nil || err3 != nil {
		return GUAMI{}, false
	}
	return GUAMI{MCC: mcc, MNC: mnc, Region: uint8(r), Set: uint16(s), Pointer: uint8(p)}, true
}

// timeToWait maps TimeToWait (TS 38.413 9.3.1.56) to a duration.
func timeToWait(v aper.Enumerated) time.Duration {
	switch v {
	case ie.TimeToWaitPresentV1s:
		return time.Second
	case ie.TimeToWaitPresentV2s:
		return 2 * time.Second
	case ie.TimeToWaitPresentV5s:
		return 5 * time.Second
	case ie.TimeToWaitPresentV10s:
		return 10 * time.Second
	case ie.TimeToWaitPresentV20s:
		return 20 * time.Second
	case ie.TimeToWaitPresentV60s:
		return 60 * time.Second
	}
	return 0
}

// uli is the UserLocationInformationNR of the gNB's one cell: its NR CGI
// and TAI (TS 38.413 9.3.1.16). It is built for each message: the encoder
// writes into bit strings, so IEs cannot be shared between goroutines.
func (g *GNB) uli() *ie.UserLocationInformation {
	tac := []byte{byte(g.cfg.TAC >> 16), byte(g.cfg.TAC >> 8), byte(g.cfg.TAC)}
	return &ie.UserLocationInformation{Choice: &ie.UserLocationInformationNR{
		NRCGI: &ie.NRCGI{
			PLMNIdentity:   &ie.PLMNIdentity{Value: bytes.Clone(g.plmn[:])},
			NRCellIdentity: &ie.NRCellIdentity{Value: bitString(g.cfg.CellID, 36)},
		},
		TAI: &ie.TAI{PLMNIdentity: &ie.PLMNIdentity{Value: bytes.Clone(g.plmn[:])}, TAC: &ie.TAC{Value: tac}},
	}}
}

// AMF is what the AMF said of itself in NG Setup.
func (g *GNB) AMF() AMFInfo { return g.amf }

// Config is the gNB's configuration, defaults applied.
func (g *GNB) Config() Config { return g.cfg }

// UEs is how many UE contexts the gNB holds.
func (g *GNB) UEs() int { return int(g.live.Load()) }

// Done is closed when the gNB has stopped: after Close, or when the
// association ended; Err then says why.
func (g *GNB) Done() <-chan struct{} { return g.done }

// Err is nil while the gNB runs or after Close, and wraps
// ErrAssociationLost if the association ended by itself.
func (g *GNB) Err() error {
	select {
	case <-g.done:
		return g.err
	default:
		return nil
	}
}

// Close ends the association and stops the gNB's goroutines. UEs still
// attached get no further events. It must not be called from a Handler.
func (g *GNB) Close() error {
	g.closeOnce.Do(func() {
		close(g.closing)
		_ = g.conn.Close()
	})
	<-g.done
	if g.stopCtx != nil {
		g.stopCtx()
	}
	return nil
}

// SessionByTEID finds the UE and PDU session that own a downlink TEID.
func (g *GNB) SessionByTEID(teid uint32) (*UE, Session, bool) {
	g.mu.Lock()
	o, ok := g.teids[teid]
	g.mu.Unlock()
	if !ok {
		return nil, Session{}, false
	}
	s, ok := o.u.Session(o.psi)
	return o.u, s, ok
}

// readLoop reads NGAP messages until the association ends.
func (g *GNB) readLoop() {
	buf := make([]byte, n2.DefaultMaxMessageSize)
	var err error
	for {
		var n int
		var ppid uint32
		n, _, ppid, err = g.conn.ReadMsg(buf)
		if errors.Is(err, io.ErrShortBuffer) {
			buf = make([]byte, n)
			continue
		}
		if err != nil {
			break
		}
		if ppid != n2.PPIDNGAP {
			g.log.Warn("gnb: dropped message with a PPID other than NGAP", "ppid", ppid)
			continue
		}
		g.receive(bytes.Clone(buf[:n]))
	}
	select {
	case <-g.closing:
		g.finish(nil)
	default:
		g.log.Warn("gnb: N2 association ended", "err", err)
		g.finish(fmt.Errorf("gnb %s: %w: %w", g.cfg.Name, ErrAssociationLost, err))
	}
}

// finish stops the workers (telling each UE it is lost if err is set) and
// marks the gNB done.
func (g *GNB) finish(err error) {
	for _, sh := range g.shards {
		if err != nil {
			sh.q.push(job{kind: jobLost, err: err})
		}
		sh.q.close()
	}
	g.workers.Wait()
	if n := g.cfg.N3Endpoint; n != nil {
		// The UEs' tunnels end with the gNB.
		n.closeOwned(g)
	}
	if err != nil {
		_ = g.conn.Close()
	}
	g.err = err
	close(g.done)
}

// parse decodes one NGAP PDU; the library's decoder is not trusted not to
// panic on hostile input.
func parse(b []byte) (m message.Message, err error) {
	defer func() {
		if r := recover(); r != nil {
			m, err = nil, fmt.Errorf("NGAP decoder panic: %v", r)
		}
	}()
	m, err = message.Parse(b)
	if err == nil && m == nil {
		err = errors.New("no message")
	}
	return m, err
}

// receive routes one received NGAP PDU: non-UE-associated procedures run
// here, UE-associated ones on the UE's worker.
func (g *GNB) receive(b []byte) {
	m, err := parse(b)
	if err != nil {
		// TS 38.413 10.2: a PDU that cannot be decoded is answered with an
		// Error Indication (transfer syntax error).
		g.log.Warn("gnb: undecodable NGAP PDU dropped", "len", len(b), "err", err)
		g.sendErrorIndication(-1, -1, protocolCause(ie.CauseProtocolPresentTransferSyntaxError))
		return
	}
	switch m := m.(type) {
	case *message.NGSetupResponse, *message.NGSetupFailure:
		select {
		case g.setupCh <- m:
		default:
			g.log.Warn("gnb: unexpected NG setup answer dropped", "type", fmt.Sprintf("%T", m))
		}
	case *message.DownlinkNASTransport:
		g.route(m.RANUENGAPID, m.AMFUENGAPID, m)
	case *message.InitialContextSetupRequest:
		g.route(m.RANUENGAPID, m.AMFUENGAPID, m)
	case *message.PDUSessionResourceSetupRequest:
		g.route(m.RANUENGAPID, m.AMFUENGAPID, m)
	case *message.PDUSessionResourceReleaseCommand:
		g.route(m.RANUENGAPID, m.AMFUENGAPID, m)
	case *message.UEContextReleaseCommand:
		g.routeRelease(m)
	case *message.ErrorIndication:
		if m.RANUENGAPID != nil {
			g.dispatch(job{kind: jobMsg, ran: uint32(m.RANUENGAPID.Value), amf: idOr(m.AMFUENGAPID), msg: m})
			return
		}
		g.log.Warn("gnb: error indication from the AMF", "cause", m.Cause.String())
	case *message.NGReset:
		g.ngReset(m)
	default:
		g.log.Info("gnb: NGAP message not handled", "procedure", m.ProcedureCode(), "type", fmt.Sprintf("%T", m))
	}
}

// route hands a UE-associated message to the worker of its RAN-UE-NGAP-ID.
func (g *GNB) route(ran *ie.RANUENGAPID, amf *ie.AMFUENGAPID, m message.Message) {
	if ran == nil || amf == nil {
		g.log.Warn("gnb: UE-associated message without its UE NGAP IDs dropped", "type", fmt.Sprintf("%T", m))
		g.sendErrorIndication(idOr(amf), -1, protocolCause(ie.CauseProtocolPresentAbstractSyntaxErrorFalselyConstructedMessage))
		return
	}
	id := uint32(ran.Value)
	g.dispatch(job{kind: jobMsg, ran: id, amf: amf.Value, msg: m})
}

func idOr(a *ie.AMFUENGAPID) int64 {
	if a == nil {
		return -1
	}
	return a.Value
}

// routeRelease routes a UE Context Release Command, which may name the UE
// by its AMF-UE-NGAP-ID alone (TS 38.413 9.2.2.5).
func (g *GNB) routeRelease(m *message.UEContextReleaseCommand) {
	if m.UENGAPIDs == nil {
		g.log.Warn("gnb: UE context release command without UE NGAP IDs dropped")
		return
	}
	switch ids := m.UENGAPIDs.Choice.(type) {
	case *ie.UENGAPIDPair:
		if ids.AMFUENGAPID == nil || ids.RANUENGAPID == nil {
			g.log.Warn("gnb: UE context release command with an incomplete ID pair dropped")
			return
		}
		g.dispatch(job{kind: jobMsg, ran: uint32(ids.RANUENGAPID.Value), amf: ids.AMFUENGAPID.Value, msg: m})
	case *ie.AMFUENGAPID:
		g.mu.Lock()
		ran, ok := g.byAMF[ids.Value]
		g.mu.Unlock()
		if !ok {
			g.log.Warn("gnb: UE context release command for an unknown AMF-UE-NGAP-ID", "amf_ue_ngap_id", ids.Value)
			g.sendErrorIndication(ids.Value, -1, radioCause(ie.CauseRadioNetworkPresentUnknownLocalUENGAPID))
			return
		}
		g.dispatch(job{kind: jobMsg, ran: ran, amf: ids.Value, msg: m})
	default:
		g.log.Warn("gnb: UE context release command with unknown UE NGAP IDs dropped")
	}
}

// ngReset releases every UE context, or those listed (TS 38.413 8.7.4.2.1),
// and acknowledges.
func (g *GNB) ngReset(m *message.NGReset) {
	if m.ResetType == nil {
		g.log.Warn("gnb: NG reset without reset type dropped")
		return
	}
	cause := m.Cause.String()
	ack := &message.NGResetAcknowledge{}
	var wg sync.WaitGroup
	switch rt := m.ResetType.Choice.(type) {
	case *ie.ResetAll:
		g.log.Info("gnb: NG reset of the whole interface", "cause", cause)
		for _, sh := range g.shards {
			wg.Add(1)
			g.dispatchTo(sh, job{kind: jobReset, cause: cause, wg: &wg})
		}
	case *ie.UEAssociatedLogicalNGConnectionList:
		list := &ie.UEAssociatedLogicalNGConnectionList{}
		for _, it := range rt.List {
			var ran uint32
			known := false
			if it.RANUENGAPID != nil {
				ran, known = uint32(it.RANUENGAPID.Value), true
			} else if it.AMFUENGAPID != nil {
				g.mu.Lock()
				ran, known = g.byAMF[it.AMFUENGAPID.Value]
				g.mu.Unlock()
			}
			if known {
				wg.Add(1)
				g.dispatch(job{kind: jobResetOne, ran: ran, cause: cause, wg: &wg})
			}
			list.List = append(list.List, it)
		}
		if len(list.List) > 0 {
			ack.UEAssociatedLogicalNGConnectionList = list
		}
	default:
		g.log.Warn("gnb: NG reset with an unknown reset type dropped")
		return
	}
	wg.Wait()
	g.sendNonUE(ack)
}

// sendNonUE sends a non-UE-associated message on stream 0.
func (g *GNB) sendNonUE(m message.Message) {
	b, err := m.MarshalBinary()
	if err == nil {
		err = g.conn.WriteMsg(b, 0)
	}
	if err != nil {
		g.log.Warn("gnb: send", "type", fmt.Sprintf("%T", m), "err", err)
	}
}

// sendUE sends a UE-associated message.
func (g *GNB) sendUE(m message.Message) error {
	b, err := m.MarshalBinary()
	if err != nil {
		return fmt.Errorf("gnb: encode %T: %w", m, err)
	}
	if err := g.conn.WriteMsg(b, g.ueStream); err != nil {
		return fmt.Errorf("gnb: send %T: %w", m, err)
	}
	return nil
}

// sendErrorIndication reports a protocol problem (TS 38.413 8.7.5); an ID
// below 0 is left out.
func (g *GNB) sendErrorIndication(amf, ran int64, cause *ie.Cause) {
	m := &message.ErrorIndication{Cause: cause}
	if amf >= 0 {
		m.AMFUENGAPID = &ie.AMFUENGAPID{Value: amf}
	}
	if ran >= 0 {
		m.RANUENGAPID = &ie.RANUENGAPID{Value: ran}
	}
	b, err := m.MarshalBinary()
	if err == nil {
		stream := uint16(0)
		if amf >= 0 && ran >= 0 {
			stream = g.ueStream
		}
		err = g.conn.WriteMsg(b, stream)
	}
	if err != nil {
		g.log.Debug("gnb: error indication not sent", "err", err)
	}
}

func radioCause(v aper.Enumerated) *ie.Cause {
	return &ie.Cause{Choice: &ie.CauseRadioNetwork{Value: v}}
}

func protocolCause(v aper.Enumerated) *ie.Cause {
	return &ie.Cause{Choice: &ie.CauseProtocol{Value: v}}
}

// allocTEID takes the next free downlink TEID for (u, psi).
func (g *GNB) allocTEID(u *UE, psi uint8) uint32 {
	g.mu.Lock()
	defer g.mu.Unlock()
	for {
		g.nextTEID++
		t := g.nextTEID
		if t == 0 {
			continue // TEID 0 is reserved for signalling (TS 29.281 5.1)
		}
		if _, used := g.teids[t]; !used {
			g.teids[t] = teidOwner{u: u, psi: psi}
			return t
		}
	}
}

func (g *GNB) freeTEID(t uint32) {
	g.mu.Lock()
	delete(g.teids, t)
	g.mu.Unlock()
	g.closeTunnel(t)
}
