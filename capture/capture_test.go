package capture_test

import (
	"bytes"
	"context"
	"encoding/binary"
	"log/slog"
	"net/netip"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gopacket/gopacket"
	"github.com/gopacket/gopacket/layers"
	"github.com/gopacket/gopacket/pcapgo"

	"github.com/simgate/simgate/capture"
	"github.com/simgate/simgate/core/n2"
	"github.com/simgate/simgate/gtp/gtpu"
)

// The taps have the signatures of core/n2's and gtp/gtpu's.
var (
	_ n2.Tap   = (*capture.Interface)(nil)
	_ gtpu.Tap = (*capture.Interface)(nil)
)

// TestDatagram: a datagram is written as one IP/UDP packet in the right
// direction, with the payload unchanged, lengths and checksums correct,
// the timestamp of the tap call and the pcapng direction flag.
func TestDatagram(t *testing.T) {
	tests := []struct {
		name          string
		out           bool
		local, remote string
		src, dst      string // expected packet addresses
		v6            bool
		payload       []byte
	}{
		{"v4 out", true, "127.0.0.1:8805", "127.0.0.2:8806", "127.0.0.1:8805", "127.0.0.2:8806", false, []byte("pfcp")},
		{"v4 in", false, "127.0.0.1:8805", "127.0.0.2:8806", "127.0.0.2:8806", "127.0.0.1:8805", false, []byte{1, 2, 3}},
		{"v6 in", false, "[fd00::1]:3000", "[fd00::2]:3001", "[fd00::2]:3001", "[fd00::1]:3000", true, bytes.Repeat([]byte{0xab}, 1401)},
		{"v4-mapped unmapped", true, "[::ffff:10.0.0.1]:9899", "10.0.0.2:40000", "10.0.0.1:9899", "10.0.0.2:40000", false, []byte("sctp")},
		{"mixed families", true, "10.0.0.1:9899", "[2001:db8::2]:40000", "[::ffff:10.0.0.1]:9899", "[2001:db8::2]:40000", true, []byte("x")},
		{"zone dropped", false, "[fe80::1%eth0]:3000", "[fe80::2%eth0]:3001", "[fe80::2]:3001", "[fe80::1]:3000", true, []byte("gtp")},
		{"empty payload", true, "127.0.0.1:1", "127.0.0.1:2", "127.0.0.1:1", "127.0.0.1:2", false, nil},
		{"largest v4", true, "127.0.0.1:1", "127.0.0.1:2", "127.0.0.1:1", "127.0.0.1:2", false, make([]byte, 65507)},
		{"largest v6", true, "[::1]:1", "[::1]:2", "[::1]:1", "[::1]:2", true, make([]byte, 65527)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			clock := newFakeClock()
			w, path := openTemp(t, capture.Config{Now: clock.Now})
			i := w.Interface("n4", capture.KindN4)
			i.Datagram(tt.out, ap(tt.local), ap(tt.remote), tt.payload)
			at := clock.t // the tap took the last tick
			if err := w.Close(); err != nil {
				t.Fatal(err)
			}
			rb := readCapture(t, path)
			if len(rb.packets) != 1 {
				t.Fatalf("%d packets", len(rb.packets))
			}
			p := rb.packets[0]
			checksumsOK(t, p.data)
			if !p.ci.Timestamp.Equal(at) {
				t.Errorf("timestamp %v, want %v", p.ci.Timestamp, at)
			}
			wantDir := pcapgo.NgEpbFlagDirectionInbound
			if tt.out {
				wantDir = pcapgo.NgEpbFlagDirectionOutbound
			}
			if p.flags != wantDir {
				t.Errorf("direction flag %v, want %v", p.flags, wantDir)
			}
			first := layers.LayerTypeIPv4
			if tt.v6 {
				first = layers.LayerTypeIPv6
			}
			if v := p.data[0] >> 4; (v == 6) != tt.v6 {
				t.Fatalf("IP version %d", v)
			}
			pkt := gopacket.NewPacket(p.data, first, gopacket.Default)
			if el := pkt.ErrorLayer(); el != nil {
				t.Fatalf("decode: %v", el.Error())
			}
			nf, tf := pkt.NetworkLayer().NetworkFlow(), pkt.TransportLayer().TransportFlow()
			src := netip.MustParseAddrPort(tt.src)
			dst := netip.MustParseAddrPort(tt.dst)
			// (gopacket prints IPv4-mapped IPv6 addresses as IPv4; the
			// version is checked by decoding as first.)
			if gotSrc, _ := netip.ParseAddr(nf.Src().String()); gotSrc.Unmap() != src.Addr().Unmap() {
				t.Errorf("source %v, want %v", gotSrc, src.Addr())
			}
			if gotDst, _ := netip.ParseAddr(nf.Dst().String()); gotDst.Unmap() != dst.Addr().Unmap() {
				t.Errorf("destination %v, want %v", gotDst, dst.Addr())
			}
			if tf.Src().String() != itoa(src.Port()) || tf.Dst().String() != itoa(dst.Port()) {
				t.Errorf("ports %v -> %v, want %d -> %d", tf.Src(), tf.Dst(), src.Port(), dst.Port())
			}
			if got := pkt.TransportLayer().LayerPayload(); !bytes.Equal(got, tt.payload) {
				t.Errorf("payload %d octets, want %d", len(got), len(tt.payload))
			}
		})
	}
}

func itoa(p uint16) string { return strconv.Itoa(int(p)) }

// sctpPacket is a decoded framed SCTP packet with one DATA chunk.
type sctpPacket struct {
	src, dst netip.AddrPort
	vtag     uint32
	data     *layers.SCTPData
	flags    pcapgo.NgEpbFlag
}

func decodeSCTP(t *testing.T, p packet) sctpPacket {
	t.Helper()
	checksumsOK(t, p.data)
	first := layers.LayerTypeIPv4
	if p.data[0]>>4 == 6 {
		first = layers.LayerTypeIPv6
	}
	pkt := gopacket.NewPacket(p.data, first, gopacket.Default)
	if el := pkt.ErrorLayer(); el != nil {
		t.Fatalf("decode: %v", el.Error())
	}
	sc, _ := pkt.Layer(layers.LayerTypeSCTP).(*layers.SCTP)
	data, _ := pkt.Layer(layers.LayerTypeSCTPData).(*layers.SCTPData)
	if sc == nil || data == nil {
		t.Fatalf("not SCTP DATA: %v", pkt)
	}
	var chunks int
	for _, l := range pkt.Layers() {
		if l.LayerType() == layers.LayerTypeSCTPData {
			chunks++
		}
	}
	if chunks != 1 {
		t.Fatalf("%d DATA chunks", chunks)
	}
	nf := pkt.NetworkLayer().NetworkFlow()
	s, _ := netip.ParseAddr(nf.Src().String())
	d, _ := netip.ParseAddr(nf.Dst().String())
	return sctpPacket{
		src:   netip.AddrPortFrom(s, uint16(sc.SrcPort)),
		dst:   netip.AddrPortFrom(d, uint16(sc.DstPort)),
		vtag:  sc.VerificationTag,
		data:  data,
		flags: p.flags,
	}
}

// TestMessageNumbering: kernel SCTP messages become DATA chunks numbered as
// a stack numbers them (RFC 9260 6.5, 6.9): per association and direction
// consecutive TSNs and one verification tag (the receiver's, different
// each way), per stream consecutive SSNs, fragments with B/E flags sharing
// one SSN, and the message reassembling to the original bytes.
func TestMessageNumbering(t *testing.T) {
	w, path := openTemp(t, capture.Config{})
	i := w.Interface("n2", capture.KindN2)
	amf, gnb1, gnb2 := ap("10.0.0.1:38412"), ap("10.0.0.2:40000"), ap("[fd00::2]:40001")
	amf6 := ap("[fd00::1]:38412")
	type call struct {
		out           bool
		local, remote netip.AddrPort
		stream        uint16
		payload       []byte
	}
	big := bytes.Repeat([]byte("0123456789abcdef"), 400) // 6400 octets: 5 fragments over IPv4
	calls := []call{
		{false, amf, gnb1, 0, []byte("setup request")},
		{true, amf, gnb1, 0, []byte("setup response")},
		{true, amf, gnb1, 1, []byte("downlink 1")},
		{false, amf6, gnb2, 0, []byte("other association")},
		{false, amf, gnb1, 1, []byte("uplink 1")},
		{true, amf, gnb1, 1, big},
		{true, amf, gnb1, 1, []byte("downlink 3")},
		{true, amf, gnb1, 0, []byte("stream 0 again")},
	}
	for _, c := range calls {
		i.Message(c.out, c.local, c.remote, c.stream, 60, c.payload)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	rb := readCapture(t, path)
	if want := len(calls) - 1 + 5; len(rb.packets) != want {
		t.Fatalf("%d packets, want %d", len(rb.packets), want)
	}

	type dirKey struct{ src, dst netip.AddrPort }
	tags := map[dirKey]uint32{}
	nextTSN := map[dirKey]uint32{}
	type streamKey struct {
		dirKey
		stream uint16
	}
	nextSSN := map[streamKey]uint16{}
	var reassembled []byte
	n := 0
	for _, c := range calls {
		var got []byte
		for first := true; ; first = false {
			s := decodeSCTP(t, rb.packets[n])
			n++
			wantSrc, wantDst := c.remote, c.local
			wantFlag := pcapgo.NgEpbFlagDirectionInbound
			if c.out {
				wantSrc, wantDst, wantFlag = c.local, c.remote, pcapgo.NgEpbFlagDirectionOutbound
			}
			if s.src != wantSrc || s.dst != wantDst || s.flags != wantFlag {
				t.Fatalf("packet %d: %v -> %v flag %v, want %v -> %v flag %v", n, s.src, s.dst, s.flags, wantSrc, wantDst, wantFlag)
			}
			k := dirKey{s.src, s.dst}
			if s.vtag == 0 {
				t.Fatalf("packet %d: verification tag 0", n)
			}
			if tag, ok := tags[k]; ok && tag != s.vtag {
				t.Fatalf("packet %d: verification tag %#x, earlier %#x", n, s.vtag, tag)
			}
			tags[k] = s.vtag
			if rev, ok := tags[dirKey{s.dst, s.src}]; ok && rev == s.vtag {
				t.Fatalf("packet %d: both directions carry tag %#x", n, s.vtag)
			}
			if want, ok := nextTSN[k]; ok && s.data.TSN != want {
				t.Fatalf("packet %d: TSN %d, want %d", n, s.data.TSN, want)
			}
			nextTSN[k] = s.data.TSN + 1
			sk := streamKey{k, c.stream}
			if s.data.StreamId != c.stream || s.data.StreamSequence != nextSSN[sk] {
				t.Fatalf("packet %d: stream %d SSN %d, want %d/%d", n, s.data.StreamId, s.data.StreamSequence, c.stream, nextSSN[sk])
			}
			if s.data.PayloadProtocol != 60 || s.data.Unordered || s.data.BeginFragment != first {
				t.Fatalf("packet %d: %+v", n, s.data)
			}
			got = append(got, s.data.Payload...)
			if len(s.data.Payload) > 1500-20-12-16 {
				t.Fatalf("packet %d: %d octets of data beyond the path MTU", n, len(s.data.Payload))
			}
			if s.data.EndFragment {
				break
			}
		}
		k := dirKey{c.remote, c.local}
		if c.out {
			k = dirKey{c.local, c.remote}
		}
		nextSSN[streamKey{k, c.stream}]++
		if !bytes.Equal(got, c.payload) {
			t.Fatalf("message %q reassembles to %q", c.payload, got)
		}
		if bytes.Equal(c.payload, big) {
			reassembled = got
		}
	}
	if reassembled == nil {
		t.Fatal("big message not seen")
	}
	// The two associations have their own tags.
	if tags[dirKey{gnb2, amf6}] == tags[dirKey{gnb1, amf}] {
		t.Error("two associations share a verification tag")
	}
}

// TestBadInput: what cannot be framed is counted as an error with a clear
// first error in the log, and nothing is written for it; the capture stays
// valid.
func TestBadInput(t *testing.T) {
	var logs lockedBuffer
	w, path := openTemp(t, capture.Config{Logger: slog.New(slog.NewTextHandler(&logs, nil))})
	i := w.Interface("n2", capture.KindN2)
	ipi := w.Interface("ue-ip", capture.KindIP)
	good := ap("127.0.0.1:1")
	i.Datagram(true, netip.AddrPort{}, good, []byte("x"))               // no local address
	i.Datagram(true, good, good, make([]byte, 65508))                   // too large for IPv4
	i.Datagram(true, ap("[::1]:1"), ap("[::1]:2"), make([]byte, 65528)) // too large for IPv6
	i.Message(true, good, ap("127.0.0.1:2"), 0, 60, nil)                // SCTP has no empty messages
	i.Message(true, good, netip.AddrPort{}, 0, 60, []byte("x"))         // no remote address
	ipi.Packet(true, []byte{0x45, 0, 0})                                // truncated IPv4
	ipi.Packet(false, append([]byte{0x60}, make([]byte, 30)...))        // truncated IPv6
	ipi.Packet(false, append([]byte{0x20}, make([]byte, 60)...))        // version 2
	ipi.Packet(false, nil)
	i.Datagram(true, good, good, []byte("still fine"))
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	stats := w.Stats()
	if stats[0].Errors != 5 || stats[0].Packets != 1 || stats[1].Errors != 4 || stats[1].Packets != 0 {
		t.Fatalf("stats %+v", stats)
	}
	if n := len(readCapture(t, path).packets); n != 1 {
		t.Fatalf("%d packets written", n)
	}
	for _, want := range []string{"interface=n2", "errors=5", `first_error="capture: n2: datagram: invalid address`, "interface=ue-ip", "not an IPv4 or IPv6 packet"} {
		if !strings.Contains(logs.String(), want) {
			t.Errorf("log lacks %q:\n%s", want, logs.String())
		}
	}
}

type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (b *lockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.Write(p)
}

func (b *lockedBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.String()
}

// TestInterfaces: each interface gets a pcapng Interface Description Block
// with its name, description and link type LINKTYPE_RAW, packets refer to
// theirs, a name asked for twice is one interface, and the statistics
// block of each counts what its tap saw.
func TestInterfaces(t *testing.T) {
	w, path := openTemp(t, capture.Config{})
	n2i := w.Interface("n2", capture.KindN2)
	n3 := w.Interface("n3", capture.KindN3)
	if again := w.Interface("n2", capture.KindN4); again != n2i {
		t.Fatal("same name, new interface")
	}
	n3.Datagram(true, ap("127.0.0.1:2152"), ap("127.0.0.2:2152"), []byte{0x30, 0xff, 0, 0, 0, 0, 0, 1})
	n2i.Datagram(true, ap("127.0.0.1:9899"), ap("127.0.0.2:9899"), []byte("sctp"))
	n2i.Datagram(false, ap("127.0.0.1:9899"), ap("127.0.0.2:9899"), []byte("sctp"))
	// An interface added after packets were written.
	ue := w.Interface("ue-ip", capture.KindIP)
	ue.Packet(true, tcpSegment(t, ap("10.45.0.2:1"), ap("10.45.0.1:2"), 1, 0, true, false, ""))
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	rb := readCapture(t, path)
	if rb.section.Application != "simgate" {
		t.Errorf("section application %q", rb.section.Application)
	}
	want := []struct {
		name string
		kind capture.Kind
		recv uint64
	}{{"n2", capture.KindN2, 2}, {"n3", capture.KindN3, 1}, {"ue-ip", capture.KindIP, 1}}
	if len(rb.ifaces) != len(want) {
		t.Fatalf("%d interfaces", len(rb.ifaces))
	}
	for id, wi := range want {
		got := rb.ifaces[id]
		if got.Name != wi.name || got.Description != wi.kind.String() || got.LinkType != layers.LinkTypeRaw {
			t.Errorf("interface %d: %q %q %v", id, got.Name, got.Description, got.LinkType)
		}
		st, ok := rb.stats[id]
		if !ok || st.PacketsReceived != wi.recv || st.PacketsDropped != 0 {
			t.Errorf("interface %d statistics %+v (present %v), want %d received", id, st, ok, wi.recv)
		}
	}
	gotIfaces := []int{}
	for _, p := range rb.packets {
		gotIfaces = append(gotIfaces, p.ci.InterfaceIndex)
	}
	if len(gotIfaces) != 4 || gotIfaces[0] != 1 || gotIfaces[1] != 0 || gotIfaces[2] != 0 || gotIfaces[3] != 2 {
		t.Errorf("packets on interfaces %v, want [1 0 0 2]", gotIfaces)
	}
	// IPv4 identification counts per interface.
	id1 := binary.BigEndian.Uint16(rb.packets[1].data[4:])
	id2 := binary.BigEndian.Uint16(rb.packets[2].data[4:])
	if id2 != id1+1 {
		t.Errorf("IPv4 IDs %d, %d", id1, id2)
	}
}

// gate is an io.Writer whose writes wait until it is opened.
type gate struct {
	entered chan struct{}
	open    chan struct{}
	once    sync.Once
	mu      sync.Mutex
	buf     bytes.Buffer
}

func (g *gate) Write(p []byte) (int, error) {
	g.once.Do(func() { close(g.entered) })
	<-g.open
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.buf.Write(p)
}

// TestDropsWhenFull: with the writer stuck on a slow disk, taps do not
// wait: the queue fills, the excess is dropped and counted, in Stats, in
// the statistics block (isb_ifdrop) and in the log.
func TestDropsWhenFull(t *testing.T) {
	g := &gate{entered: make(chan struct{}), open: make(chan struct{})}
	var logs lockedBuffer
	const queue, extra = 4, 3
	w := capture.New(context.Background(), g, capture.Config{QueueLen: queue, Logger: slog.New(slog.NewTextHandler(&logs, nil))})
	i := w.Interface("n3", capture.KindN3)
	flushed := make(chan error, 1)
	go func() { flushed <- w.Flush() }() // blocks the writer goroutine in Write
	<-g.entered
	for range queue + extra {
		i.Datagram(true, ap("127.0.0.1:2152"), ap("127.0.0.2:2152"), []byte("g-pdu"))
	}
	if s := i.Stats(); s.Dropped != extra {
		t.Fatalf("dropped %d while stuck, want %d", s.Dropped, extra)
	}
	close(g.open)
	if err := <-flushed; err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	if s := i.Stats(); s.Packets != queue || s.Dropped != extra || s.Errors != 0 {
		t.Fatalf("stats %+v", s)
	}
	rb := readFrom(t, bytes.NewReader(g.buf.Bytes()))
	if len(rb.packets) != queue {
		t.Fatalf("%d packets in the file", len(rb.packets))
	}
	if st := rb.stats[0]; st.PacketsReceived != queue+extra || st.PacketsDropped != extra {
		t.Fatalf("statistics block %+v", st)
	}
	if !strings.Contains(logs.String(), "capture: packets lost") || !strings.Contains(logs.String(), "dropped=3") {
		t.Errorf("log:\n%s", logs.String())
	}
}

// TestContextEndsWriter: when the context ends the writer goroutine
// finishes the file (queued packets and statistics) and stops; taps after
// that are dropped and counted, and Close returns at once.
func TestContextEndsWriter(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	path := t.TempDir() + "/ctx.pcapng"
	w, err := capture.Open(ctx, path, capture.Config{})
	if err != nil {
		t.Fatal(err)
	}
	i := w.Interface("n4", capture.KindN4)
	i.Datagram(true, ap("127.0.0.1:8805"), ap("127.0.0.2:8805"), pfcpHeartbeat(t, 1, true))
	if err := w.Flush(); err != nil {
		t.Fatal(err)
	}
	cancel()
	done := make(chan error)
	go func() { done <- w.Close() }()
	select {
	case err := <-done:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("writer did not stop with its context")
	}
	i.Datagram(true, ap("127.0.0.1:8805"), ap("127.0.0.2:8805"), pfcpHeartbeat(t, 2, true))
	if s := i.Stats(); s.Packets != 1 || s.Dropped != 1 {
		t.Fatalf("stats %+v", s)
	}
	if w.Interface("late", capture.KindIP) != nil {
		t.Error("interface added to a closed writer")
	}
	if err := w.Flush(); err != nil {
		t.Errorf("Flush after close: %v", err)
	}
	rb := readCapture(t, path)
	if len(rb.packets) != 1 || rb.stats[0].PacketsReceived != 1 {
		t.Fatalf("%d packets, statistics %+v", len(rb.packets), rb.stats)
	}
}

// TestFlush: after Flush the packets tapped before it are in the file,
// while the writer is still open.
func TestFlush(t *testing.T) {
	w, path := openTemp(t, capture.Config{FlushInterval: time.Hour})
	i := w.Interface("ue-ip", capture.KindIP)
	pkts, up := httpExchange(t, ap("10.45.0.2:40000"), ap("10.45.0.1:80"))
	for n, p := range pkts {
		i.Packet(up[n], p)
	}
	if err := w.Flush(); err != nil {
		t.Fatal(err)
	}
	rb := readCapture(t, path)
	if len(rb.packets) != len(pkts) {
		t.Fatalf("%d packets after Flush, want %d", len(rb.packets), len(pkts))
	}
	for n, p := range rb.packets {
		if !bytes.Equal(p.data, pkts[n]) {
			t.Fatalf("packet %d changed", n)
		}
		checksumsOK(t, p.data)
	}
}

// TestEmptyCapture: a writer closed without interfaces leaves a valid
// pcapng file with no packets.
func TestEmptyCapture(t *testing.T) {
	w, path := openTemp(t, capture.Config{})
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
	rb := readCapture(t, path)
	if len(rb.packets) != 0 || len(rb.ifaces) != 1 || rb.ifaces[0].Name != "none" {
		t.Fatalf("%d packets, interfaces %+v", len(rb.packets), rb.ifaces)
	}
}

// TestNil: without --pcap the writer is nil and everything is a no-op.
func TestNil(t *testing.T) {
	var w *capture.Writer
	i := w.Interface("n2", capture.KindN2)
	if i != nil {
		t.Fatal("nil writer returned an interface")
	}
	i.Datagram(true, ap("127.0.0.1:1"), ap("127.0.0.1:2"), []byte("x"))
	i.Message(true, ap("127.0.0.1:1"), ap("127.0.0.1:2"), 0, 60, []byte("x"))
	i.Packet(true, []byte{0x45})
	var tap n2.Tap = i
	tap.Datagram(false, ap("127.0.0.1:1"), ap("127.0.0.1:2"), nil)
	if i.Name() != "" || i.Stats() != (capture.Stats{}) || w.Stats() != nil {
		t.Error("nil interface has state")
	}
	if err := w.Flush(); err != nil {
		t.Error(err)
	}
	if err := w.Close(); err != nil {
		t.Error(err)
	}
}

// TestOpenError: a path that cannot be created is a clear error.
func TestOpenError(t *testing.T) {
	_, err := capture.Open(context.Background(), t.TempDir()+"/missing/dir/x.pcapng", capture.Config{})
	if err == nil || !strings.Contains(err.Error(), "capture:") {
		t.Fatalf("error %v", err)
	}
}

// failing is an io.Writer that fails once it has taken limit bytes.
type failing struct{ limit int }

func (f *failing) Write(p []byte) (int, error) {
	if len(p) > f.limit {
		return 0, errDiskFull
	}
	f.limit -= len(p)
	return len(p), nil
}

var errDiskFull = &diskFull{}

type diskFull struct{}

func (*diskFull) Error() string { return "disk full" }

// TestWriteError: a failing disk stops the capture, counts what is lost
// and returns the error from Flush and Close, wrapped.
func TestWriteError(t *testing.T) {
	var logs lockedBuffer
	w := capture.New(context.Background(), &failing{limit: 100}, capture.Config{Logger: slog.New(slog.NewTextHandler(&logs, nil))})
	i := w.Interface("n3", capture.KindN3)
	big := make([]byte, 70000)
	i.Packet(true, append([]byte{0x45}, big[:1000]...)) // > the 64 KiB buffer eventually
	for range 80 {
		i.Packet(true, append([]byte{0x45}, big[:1000]...))
	}
	err := w.Flush()
	if err == nil || !strings.Contains(err.Error(), "disk full") || !strings.Contains(err.Error(), "capture: stream") {
		t.Fatalf("Flush: %v", err)
	}
	i.Packet(true, append([]byte{0x45}, big[:1000]...))
	if err := w.Close(); err == nil {
		t.Fatal("Close after a write error returned nil")
	}
	if s := i.Stats(); s.Errors == 0 || s.Packets+s.Errors != 82 {
		t.Fatalf("stats %+v", s)
	}
	if !strings.Contains(logs.String(), "capturing stops") {
		t.Errorf("log:\n%s", logs.String())
	}
}

// TestConcurrentTaps: many goroutines tapping several interfaces at once
// (run with -race) lose nothing when the queue is large enough, and each
// goroutine's packets keep their order.
func TestConcurrentTaps(t *testing.T) {
	const goroutines, each = 8, 200
	w, path := openTemp(t, capture.Config{QueueLen: goroutines * each})
	ifaces := []*capture.Interface{
		w.Interface("n2", capture.KindN2), w.Interface("n3", capture.KindN3),
		w.Interface("n4", capture.KindN4), w.Interface("ue-ip", capture.KindIP),
	}
	var wg sync.WaitGroup
	for g := range goroutines {
		wg.Go(func() {
			i := ifaces[g%len(ifaces)]
			local := netip.AddrPortFrom(netip.AddrFrom4([4]byte{127, 0, 0, 1}), uint16(1000+g))
			remote := ap("127.0.0.2:9")
			for n := range each {
				payload := binary.BigEndian.AppendUint32(nil, uint32(n))
				switch g % len(ifaces) {
				case 0:
					i.Message(n%2 == 0, local, remote, uint16(n%3), 60, payload)
				case 3:
					i.Packet(true, tcpSegment(t, local, remote, uint32(n), 0, true, false, ""))
				default:
					i.Datagram(n%2 == 0, local, remote, payload)
				}
			}
		})
	}
	wg.Wait()
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	rb := readCapture(t, path)
	if len(rb.packets) != goroutines*each {
		t.Fatalf("%d packets, want %d", len(rb.packets), goroutines*each)
	}
	last := map[int64]uint32{}
	var prev time.Time
	for _, p := range rb.packets {
		checksumsOK(t, p.data)
		if p.ci.Timestamp.Before(prev) {
			// Stamped at the tap, queued after: order across goroutines
			// may differ by a little, but never by much.
			if prev.Sub(p.ci.Timestamp) > time.Second {
				t.Fatalf("timestamps go back %v", prev.Sub(p.ci.Timestamp))
			}
		}
		prev = p.ci.Timestamp
		if p.ci.InterfaceIndex == 3 {
			continue
		}
		pkt := gopacket.NewPacket(p.data, layers.LayerTypeIPv4, gopacket.Default)
		var port uint16
		var seq uint32
		switch l := pkt.TransportLayer().(type) {
		case *layers.UDP:
			port = uint16(l.SrcPort)
			if port == 9 {
				port = uint16(l.DstPort)
			}
			seq = binary.BigEndian.Uint32(l.Payload)
		case *layers.SCTP:
			port = uint16(l.SrcPort)
			if port == 9 {
				port = uint16(l.DstPort)
			}
			d := pkt.Layer(layers.LayerTypeSCTPData).(*layers.SCTPData)
			seq = binary.BigEndian.Uint32(d.Payload)
		default:
			t.Fatalf("transport %T", l)
		}
		k := int64(p.ci.InterfaceIndex)<<16 | int64(port)
		if got, ok := last[k]; ok && seq != got+1 {
			t.Fatalf("interface %d port %d: %d after %d", p.ci.InterfaceIndex, port, seq, got)
		}
		last[k] = seq
	}
}
