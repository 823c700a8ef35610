// Package capture writes pcapng captures of simgate's own traffic: N2, N3,
// N4 and the inner IP packets of the userspace stacks.
//
// A process given --pcap opens one [Writer] and asks it for an [Interface]
// per interface it owns ("n2", "n3", "n4", "ue-ip", "dn-ip"). Each becomes a
// pcapng Interface Description Block (link type LINKTYPE_RAW: IPv4 or IPv6
// packets without a link-layer header) and hands its traffic to the writer
// through taps that match what the rest of simgate exposes:
//
//   - [Interface.Datagram]: one UDP datagram a socket sent or received (N2
//     in SCTP-over-UDP mode, RFC 6951; GTP-U on N3; PFCP on N4), written as
//     IPv4 or IPv6 with a UDP header, lengths and checksums filled in;
//   - [Interface.Message]: one SCTP user message of a kernel SCTP
//     association, which the process never sees as a packet: it is written
//     as IP/SCTP with DATA chunks (RFC 9260 3.3.1), TSN and stream sequence
//     numbers counting per association and direction, one verification tag
//     per endpoint and a correct CRC32c;
//   - [Interface.Packet]: one raw IPv4 or IPv6 packet of a userspace stack,
//     which no kernel capture sees;
//   - [WrapPacketConn]: a socket wrapper tapping every datagram it carries
//     (the shape gtp/pfcp.Start accepts).
//
// Framing and file writes happen on one goroutine owned by the writer's
// context. The taps only copy the bytes and queue them: a tap never waits
// for the disk, and when the bounded queue is full the packet is dropped and
// counted. The counts go into pcapng Interface Statistics Blocks and a log
// line when the writer closes.
//
// A nil *Writer and a nil *Interface are valid and discard everything, so
// code without --pcap needs no conditionals.
package capture

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/netip"
	"os"
	"runtime"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gopacket/gopacket"
	"github.com/gopacket/gopacket/layers"
	"github.com/gopacket/gopacket/pcapgo"
)

// Kind says what an interface carries; it becomes the description of the
// interface in the capture.
type Kind uint8

const (
	// KindN2 is NGAP over SCTP (TS 38.412): SCTP-over-UDP datagrams
	// (Datagram) or kernel SCTP user messages (Message).
	KindN2 Kind = iota + 1
	// KindN3 is GTP-U over UDP (TS 29.281).
	KindN3
	// KindN4 is PFCP over UDP (TS 29.244).
	KindN4
	// KindIP is the inner IP packets of a userspace IP stack (Packet).
	KindIP
)

// String is the interface description written to the capture.
func (k Kind) String() string {
	switch k {
	case KindN2:
		return "N2: NGAP over SCTP (TS 38.412); SCTP over UDP (RFC 6951), or kernel SCTP messages framed as IP/SCTP DATA"
	case KindN3:
		return "N3: GTP-U over UDP (TS 29.281)"
	case KindN4:
		return "N4: PFCP over UDP (TS 29.244)"
	case KindIP:
		return "inner IP packets of a userspace IP stack"
	}
	return fmt.Sprintf("kind %d", uint8(k))
}

// Defaults applied to zero Config fields.
const (
	DefaultQueueLen      = 8192
	DefaultFlushInterval = time.Second
)

// Config configures a Writer. The zero value is usable.
type Config struct {
	// Now is the clock packets are stamped with when a tap sees them
	// (default time.Now).
	Now func() time.Time
	// QueueLen bounds the packets waiting for the writer goroutine
	// (default 8192); beyond it packets are dropped and counted.
	QueueLen int
	// FlushInterval: buffered packets reach the file at least this often
	// (default 1s).
	FlushInterval time.Duration
	// Logger receives the summary when the writer closes and write errors
	// (default: discard).
	Logger *slog.Logger
}

// Writer writes one pcapng file. Its methods are safe for concurrent use.
type Writer struct {
	cfg   Config
	log   *slog.Logger
	name  string    // for log lines: the path, or "stream"
	file  io.Closer // closed at the end; nil if the caller owns the io.Writer
	out   *bufio.Writer
	queue chan record
	stop  chan struct{}
	done  chan struct{}
	start time.Time

	closeOnce sync.Once

	// mu guards closed against concurrent taps: a tap queues under the read
	// lock, so once closed is set under the write lock nothing more is
	// queued and the queue can be drained to the end.
	mu     sync.RWMutex
	closed bool

	// fmu guards the pcapng writer and the interface list.
	fmu    sync.Mutex
	ng     *pcapgo.NgWriter
	ifaces []*Interface
	byName map[string]*Interface
	err    error // first write error; nothing is written after it

	pool sync.Pool // *[]byte payload copies
}

// op says which tap queued a record.
type op uint8

const (
	opDatagram op = iota + 1
	opMessage
	opPacket
	opFlush
)

// record is one queued tap call, or a flush request (done set).
type record struct {
	iface         *Interface
	op            op
	out           bool
	stream        uint16
	ppid          uint32
	local, remote netip.AddrPort
	at            time.Time
	data          *[]byte
	done          chan error
}

// Open creates (or truncates) the pcapng file at path and starts its writer
// goroutine, which runs until Close or until ctx ends; either way the queue
// is drained, statistics are written and the file is closed.
func Open(ctx context.Context, path string, cfg Config) (*Writer, error) {
	f, err := os.Create(path)
	if err != nil {
		return nil, fmt.Errorf("capture: %w", err)
	}
	return start(ctx, f, f, path, cfg), nil
}

// New writes a pcapng stream to w, like Open; w is not closed.
func New(ctx context.Context, w io.Writer, cfg Config) *Writer {
	return start(ctx, w, nil, "stream", cfg)
}

func start(ctx context.Context, w io.Writer, c io.Closer, name string, cfg Config) *Writer {
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.QueueLen <= 0 {
		cfg.QueueLen = DefaultQueueLen
	}
	if cfg.FlushInterval <= 0 {
		cfg.FlushInterval = DefaultFlushInterval
	}
	log := cfg.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	wr := &Writer{
		cfg:    cfg,
		log:    log,
		name:   name,
		file:   c,
		out:    bufio.NewWriterSize(w, 64<<10),
		queue:  make(chan record, cfg.QueueLen),
		stop:   make(chan struct{}),
		done:   make(chan struct{}),
		start:  cfg.Now(),
		byName: make(map[string]*Interface),
	}
	go wr.run(ctx)
	return wr
}

// Interface returns the interface called name, adding it to the capture
// with the given kind if it is new (a name seen before returns the same
// Interface, whatever kind is asked for). It returns nil, which discards,
// when w is nil or closed.
func (w *Writer) Interface(name string, kind Kind) *Interface {
	if w == nil {
		return nil
	}
	w.mu.RLock()
	defer w.mu.RUnlock()
	if w.closed {
		return nil
	}
	w.fmu.Lock()
	defer w.fmu.Unlock()
	if i := w.byName[name]; i != nil {
		return i
	}
	i := &Interface{w: w, name: name, kind: kind, id: len(w.ifaces), start: w.cfg.Now()}
	w.addInterfaceLocked(name, kind.String())
	w.ifaces = append(w.ifaces, i)
	w.byName[name] = i
	return i
}

// addInterfaceLocked writes an Interface Description Block, and the
// Section Header Block before the first one. fmu is held.
func (w *Writer) addInterfaceLocked(name, description string) {
	if w.err != nil {
		return
	}
	desc := pcapgo.NgInterface{
		Name:                name,
		Description:         description,
		OS:                  runtime.GOOS,
		LinkType:            layers.LinkTypeRaw,
		TimestampResolution: 9,
	}
	if w.ng == nil {
		ng, err := pcapgo.NewNgWriterInterface(w.out, desc, pcapgo.NgWriterOptions{SectionInfo: pcapgo.NgSectionInfo{
			Hardware:    runtime.GOARCH,
			OS:          runtime.GOOS,
			Application: "simgate",
		}})
		if err != nil {
			w.fail(fmt.Errorf("section header: %w", err))
			return
		}
		w.ng = ng
		return
	}
	if _, err := w.ng.AddInterface(desc); err != nil {
		w.fail(fmt.Errorf("interface %s: %w", name, err))
	}
}

// fail records the first write error. fmu is held.
func (w *Writer) fail(err error) {
	if w.err == nil {
		w.err = fmt.Errorf("capture: %s: %w", w.name, err)
		w.log.Error("capture: write failed; capturing stops", "file", w.name, "err", err)
	}
}

// Flush writes everything tapped before the call to the file (or the
// io.Writer) and returns the first write error so far.
func (w *Writer) Flush() error {
	if w == nil {
		return nil
	}
	done := make(chan error, 1)
	select {
	case w.queue <- record{op: opFlush, done: done}:
	case <-w.done:
		return w.Err()
	}
	select {
	case err := <-done:
		return err
	case <-w.done:
		return w.Err()
	}
}

// Close stops capturing, writes what is queued and the interface
// statistics, flushes and closes the file. It returns the first error of
// the whole capture. Calling it again returns the same.
func (w *Writer) Close() error {
	if w == nil {
		return nil
	}
	w.closeOnce.Do(func() { close(w.stop) })
	<-w.done
	return w.Err()
}

// Err is the first write error so far.
func (w *Writer) Err() error {
	if w == nil {
		return nil
	}
	w.fmu.Lock()
	defer w.fmu.Unlock()
	return w.err
}

// Stats are an interface's counters.
type Stats struct {
	Name    string
	Kind    Kind
	Packets uint64 // packets written (a fragmented SCTP message counts once per packet)
	Dropped uint64 // tap calls dropped: queue full, or after Close
	Errors  uint64 // tap calls that could not be written: bad input, write errors
}

// Stats returns the counters of every interface, in the order they were
// added.
func (w *Writer) Stats() []Stats {
	if w == nil {
		return nil
	}
	w.fmu.Lock()
	ifaces := append([]*Interface(nil), w.ifaces...)
	w.fmu.Unlock()
	out := make([]Stats, len(ifaces))
	for n, i := range ifaces {
		out[n] = i.Stats()
	}
	return out
}

// run is the writer goroutine.
func (w *Writer) run(ctx context.Context) {
	defer close(w.done)
	f := newFramer()
	tick := time.NewTicker(w.cfg.FlushInterval)
	defer tick.Stop()
	dirty := false
	for {
		select {
		case r := <-w.queue:
			w.handle(f, r)
			dirty = true
		case <-tick.C:
			if dirty {
				w.fmu.Lock()
				w.flushLocked()
				w.fmu.Unlock()
				dirty = false
			}
		case <-w.stop:
			w.finish(f)
			return
		case <-ctx.Done():
			w.finish(f)
			return
		}
	}
}

// handle frames and writes one record.
func (w *Writer) handle(f *framer, r record) {
	w.fmu.Lock()
	defer w.fmu.Unlock()
	if r.op == opFlush {
		w.flushLocked()
		r.done <- w.err
		return
	}
	defer w.release(r.data)
	i := r.iface
	if w.err != nil {
		i.errors.Add(1)
		return
	}
	flags := pcapgo.NgEpbFlags{Direction: pcapgo.NgEpbFlagDirectionInbound}
	if r.out {
		flags.Direction = pcapgo.NgEpbFlagDirectionOutbound
	}
	write := func(pkt []byte) error {
		ci := gopacket.CaptureInfo{Timestamp: r.at, CaptureLength: len(pkt), Length: len(pkt), InterfaceIndex: i.id}
		if err := w.ng.WritePacketWithOptions(ci, pkt, pcapgo.NgPacketOptions{Flags: &flags}); err != nil {
			w.fail(err)
			return err
		}
		i.packets.Add(1)
		return nil
	}
	var err error
	switch r.op {
	case opDatagram:
		err = f.datagram(i, r.out, r.local, r.remote, *r.data, write)
	case opMessage:
		err = f.message(i, r.out, r.local, r.remote, r.stream, r.ppid, *r.data, write)
	case opPacket:
		err = f.packet(*r.data, write)
	}
	if err != nil {
		i.errors.Add(1)
		i.noteError(err)
	}
}

func (w *Writer) flushLocked() {
	if w.err != nil || w.ng == nil {
		return
	}
	if err := w.ng.Flush(); err != nil {
		w.fail(err)
		return
	}
	if err := w.out.Flush(); err != nil {
		w.fail(err)
	}
}

// finish drains the queue, writes the statistics and closes the file.
func (w *Writer) finish(f *framer) {
	w.mu.Lock()
	w.closed = true
	w.mu.Unlock()
	for drained := false; !drained; {
		select {
		case r := <-w.queue:
			w.handle(f, r)
		default:
			drained = true
		}
	}
	w.fmu.Lock()
	defer w.fmu.Unlock()
	end := w.cfg.Now()
	if w.ng == nil && w.err == nil {
		// No interface was ever added: still leave a valid pcapng file.
		w.addInterfaceLocked("none", "no interface was captured")
	}
	for _, i := range w.ifaces {
		if w.err != nil {
			break
		}
		s := i.Stats()
		// pcapng Interface Statistics Block: isb_ifrecv counts what the tap
		// saw, isb_ifdrop what the full queue lost.
		err := w.ng.WriteInterfaceStats(i.id, pcapgo.NgInterfaceStatistics{
			LastUpdate:      end,
			StartTime:       i.start,
			EndTime:         end,
			PacketsReceived: i.seen.Load(),
			PacketsDropped:  s.Dropped,
		})
		if err != nil {
			w.fail(fmt.Errorf("statistics of %s: %w", i.name, err))
		}
		attrs := []any{"file", w.name, "interface", i.name, "packets", s.Packets, "dropped", s.Dropped, "errors", s.Errors}
		if e := i.firstError(); e != nil {
			attrs = append(attrs, "first_error", e.Error())
		}
		if s.Dropped > 0 || s.Errors > 0 {
			w.log.Warn("capture: packets lost", attrs...)
		} else {
			w.log.Debug("capture: interface done", attrs...)
		}
	}
	w.flushLocked()
	if w.file != nil {
		if err := w.file.Close(); err != nil && w.err == nil {
			w.err = fmt.Errorf("capture: %s: close: %w", w.name, err)
		}
	}
	w.log.Info("capture: closed", "file", w.name, "interfaces", len(w.ifaces), "duration", end.Sub(w.start))
}

// copyIn copies b into a pooled buffer.
func (w *Writer) copyIn(b []byte) *[]byte {
	p, _ := w.pool.Get().(*[]byte)
	if p == nil || cap(*p) < len(b) {
		c := max(len(b), 2048)
		s := make([]byte, 0, c)
		p = &s
	}
	*p = append((*p)[:0], b...)
	return p
}

func (w *Writer) release(p *[]byte) {
	if p != nil && cap(*p) <= 1<<16 {
		w.pool.Put(p)
	}
}

// enqueue queues r without waiting; it reports false (and releases the
// copy) when the writer is closed or the queue is full.
func (w *Writer) enqueue(r record) bool {
	w.mu.RLock()
	defer w.mu.RUnlock()
	if w.closed {
		w.release(r.data)
		return false
	}
	select {
	case w.queue <- r:
		return true
	default:
		w.release(r.data)
		return false
	}
}

// Interface is one captured interface: a pcapng Interface Description
// Block and the taps writing to it. Its methods may be called from many
// goroutines; payloads are copied before they return. A nil *Interface
// discards everything.
type Interface struct {
	w     *Writer
	name  string
	kind  Kind
	id    int
	start time.Time

	seen, packets, dropped, errors atomic.Uint64
	firstErr                       atomic.Pointer[error]

	ipID uint16 // IPv4 identification; only the writer goroutine touches it
}

// Name is the interface's name in the capture.
func (i *Interface) Name() string {
	if i == nil {
		return ""
	}
	return i.name
}

// Stats returns the interface's counters.
func (i *Interface) Stats() Stats {
	if i == nil {
		return Stats{}
	}
	return Stats{Name: i.name, Kind: i.kind, Packets: i.packets.Load(), Dropped: i.dropped.Load(), Errors: i.errors.Load()}
}

func (i *Interface) noteError(err error) {
	err = fmt.Errorf("capture: %s: %w", i.name, err)
	i.firstErr.CompareAndSwap(nil, &err)
}

func (i *Interface) firstError() error {
	if p := i.firstErr.Load(); p != nil {
		return *p
	}
	return nil
}

func (i *Interface) submit(r record, payload []byte) {
	i.seen.Add(1)
	r.iface = i
	r.at = i.w.cfg.Now()
	r.data = i.w.copyIn(payload)
	if !i.w.enqueue(r) {
		i.dropped.Add(1)
	}
}

// Datagram captures one UDP datagram a socket of this interface sent (out)
// or received: it is written as an IPv4 or IPv6 packet with a UDP header
// from local to remote (out) or from remote to local. IPv4-mapped IPv6
// addresses count as IPv4. It has the signature of the core/n2 and
// gtp/gtpu taps.
func (i *Interface) Datagram(out bool, local, remote netip.AddrPort, payload []byte) {
	if i == nil {
		return
	}
	i.submit(record{op: opDatagram, out: out, local: local, remote: remote}, payload)
}

// Message captures one SCTP user message of a kernel SCTP association
// (local, remote): it is written as IP/SCTP packets with DATA chunks on the
// given stream with the given PPID (host order), fragmented as an SCTP
// stack would on a 1500-octet path MTU. It has the signature of the
// core/n2 tap.
func (i *Interface) Message(out bool, local, remote netip.AddrPort, stream uint16, ppid uint32, payload []byte) {
	if i == nil {
		return
	}
	i.submit(record{op: opMessage, out: out, local: local, remote: remote, stream: stream, ppid: ppid}, payload)
}

// Packet captures one raw IPv4 or IPv6 packet a userspace stack sent (out)
// or received; out sets the pcapng direction flag.
func (i *Interface) Packet(out bool, pkt []byte) {
	if i == nil {
		return
	}
	i.submit(record{op: opPacket, out: out}, pkt)
}
