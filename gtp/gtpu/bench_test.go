package gtpu

import (
	"context"
	"net/netip"
	"sync/atomic"
	"testing"
	"time"

	"github.com/wmnsk/go-gtp/gtpv1/message"
)

// benchInner is a 64-octet inner IPv4/UDP packet (its content does not
// matter to GTP-U).
var benchInner = func() []byte {
	b := make([]byte, 64)
	b[0], b[9] = 0x45, 17
	return b
}()

func benchGPDU(b *testing.B, teid uint32) []byte {
	return gpdu(b, teid, &PDUSession{Type: UL, QFI: 9}, benchInner)
}

// BenchmarkDecodeGPDU: Decode of an uplink G-PDU with a PDU Session
// Container, in place.
func BenchmarkDecodeGPDU(b *testing.B) {
	pkt := benchGPDU(b, 0x100)
	b.SetBytes(int64(len(pkt)))
	b.ReportAllocs()
	var h Header
	for b.Loop() {
		if _, err := h.Decode(pkt); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkDecodeGPDUGoGTP: go-gtp's parser on the same G-PDU.
func BenchmarkDecodeGPDUGoGTP(b *testing.B) {
	pkt := benchGPDU(b, 0x100)
	b.SetBytes(int64(len(pkt)))
	b.ReportAllocs()
	for b.Loop() {
		m, err := message.Parse(pkt)
		if err != nil || m.TEID() != 0x100 {
			b.Fatal(err)
		}
	}
}

// BenchmarkEncodeGPDU: PrependGPDU of a UL header with PDU Session
// Container in front of a 64-octet payload, in place.
func BenchmarkEncodeGPDU(b *testing.B) {
	buf := make([]byte, 64+len(benchInner))
	copy(buf[64:], benchInner)
	psc := &PDUSession{Type: UL, QFI: 9}
	b.SetBytes(int64(GPDUHeaderLen(psc) + len(benchInner)))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := PrependGPDU(buf, 64, 0x100, psc); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkEncodeGPDUGoGTP: go-gtp building the same G-PDU.
func BenchmarkEncodeGPDUGoGTP(b *testing.B) {
	b.SetBytes(int64(16 + len(benchInner)))
	b.ReportAllocs()
	for b.Loop() {
		h := message.NewHeaderWithExtensionHeaders(0x34, MsgGPDU, 0x100, 0, benchInner,
			message.NewExtensionHeader(ExtPDUSessionContainer, []byte{0x10, 0x09}, ExtNone))
		if _, err := message.Marshal(&message.TPDU{Header: h}); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkUplinkPath: what Serve does per received datagram, without the
// socket: decode, dispatch, the handler's tunnel lookup by TEID and QFI
// check, then either consume (hand the T-PDU on, as the UPF's uplink does)
// or rewrite the TEID and queue it for sending (a relay).
func BenchmarkUplinkPath(b *testing.B) {
	type tunnel struct {
		qfi     uint8
		packets uint64
		next    uint32
		to      netip.AddrPort
	}
	tunnels := make(map[uint32]*tunnel, 1024)
	for i := range uint32(1024) {
		tunnels[0x100+i] = &tunnel{qfi: 9, next: 0x10000 + i, to: netip.MustParseAddrPort("127.0.0.1:2152")}
	}
	c := listen(b, Config{})
	for _, forward := range []bool{false, true} {
		name := map[bool]string{false: "consume", true: "forward"}[forward]
		b.Run(name, func(b *testing.B) {
			h := func(p *Packet) Action {
				t := tunnels[p.Header.TEID]
				if t == nil {
					return UnknownTEID
				}
				if !p.Header.HasPDUSession || p.Header.PDUSession.Type != UL || p.Header.PDUSession.QFI != t.qfi {
					return Drop
				}
				t.packets++
				if !forward {
					return Consume
				}
				_ = SetTEID(p.Data, t.next)
				p.Addr = t.to
				return Forward
			}
			pkts := make([]Packet, 64)
			teids := make([]uint32, len(pkts))
			for i := range pkts {
				teids[i] = 0x100 + uint32(i*7)
				pkts[i].Data = benchGPDU(b, teids[i])
			}
			w := newWriter(len(pkts))
			b.SetBytes(int64(len(pkts[0].Data)))
			b.ReportAllocs()
			i := 0
			for b.Loop() {
				p := &pkts[i]
				_ = SetTEID(p.Data, teids[i]) // as received: forwarding rewrote it
				p.Payload, p.Err = p.Header.Decode(p.Data)
				c.process(p, h, &w)
				if i++; i == len(pkts) {
					i, w.n = 0, 0 // a batch done; the socket write is not measured here
				}
			}
			if s := c.Stats(); s.Drops[DropHandler]+s.Drops[DropUnknownTEID]+s.Drops[DropMalformed] != 0 {
				b.Fatalf("drops: %+v", s)
			}
		})
	}
}

// BenchmarkRelay moves G-PDUs through a relay on loopback: a sender (a
// Conn) floods b.N packets of one size (at most relayWindow in flight, so
// that the relay, not a socket buffer, sets the pace), the relay rewrites
// each TEID and sends it on, and a receiver counts. The relay is a Conn
// (recvmmsg, then sendmmsg with UDP GSO where the kernel has it, or
// without: NoGSO) or go-gtp's UPlaneConn.RelayTo, in the same run;
// "direct" sends straight to the receiver, to measure the harness itself.
// ns/op is per packet; pkts/s is packets received over the time to the
// last one; cpu-ns/pkt is the process's CPU time (user+system, all
// threads) per packet, so a relay's own cost is its cpu-ns/pkt minus
// direct's. Both ratios are logged.
func BenchmarkRelay(b *testing.B) {
	type result struct{ pps, cpu float64 }
	var direct, ours, theirs result
	b.Run("direct", func(b *testing.B) {
		direct.pps, direct.cpu = runRelay(b, func(_ *testing.B, dst netip.AddrPort) (netip.AddrPort, uint32) {
			return dst, relayTEIDOut
		})
	})
	ourRelay := func(noGSO bool) relayStart {
		return func(b *testing.B, dst netip.AddrPort) (netip.AddrPort, uint32) {
			relay := listen(b, Config{ReadBuffer: 4 << 20, WriteBuffer: 4 << 20, NoGSO: noGSO})
			serve(b, relay, func(p *Packet) Action {
				if p.Header.TEID != relayTEIDIn {
					return UnknownTEID
				}
				_ = SetTEID(p.Data, relayTEIDOut)
				p.Addr = dst
				return Forward
			})
			return relay.LocalAddr(), relayTEIDIn
		}
	}
	b.Run("gtpu.Conn", func(b *testing.B) {
		ours.pps, ours.cpu = runRelay(b, ourRelay(false))
	})
	// The relay without UDP GSO: sendmmsg alone (the harness keeps it).
	b.Run("gtpu.Conn-NoGSO", func(b *testing.B) {
		runRelay(b, ourRelay(true))
	})
	b.Run("go-gtp.UPlaneConn", func(b *testing.B) {
		start := goGTPRelay()
		if start == nil {
			b.Skip("go-gtp's relay needs -tags gogtprelay (see relay_gogtp_test.go)")
		}
		theirs.pps, theirs.cpu = runRelay(b, start)
	})
	if ours.pps > 0 && theirs.pps > 0 {
		b.Logf("relay packets/s: gtpu.Conn %.0f, go-gtp UPlaneConn %.0f: %.2fx", ours.pps, theirs.pps, ours.pps/theirs.pps)
	}
	if o, t := ours.cpu-direct.cpu, theirs.cpu-direct.cpu; direct.cpu > 0 && o > 0 && t > 0 {
		b.Logf("relay CPU per packet (minus direct's %.0f ns): gtpu.Conn %.0f ns, go-gtp UPlaneConn %.0f ns: %.2fx", direct.cpu, o, t, t/o)
	}
}

const (
	relayTEIDIn  = 0x1111
	relayTEIDOut = 0x2222
	relayWindow  = 512
)

// runRelay sends b.N G-PDUs through the relay that start sets up (given
// the receiver's address, it returns the relay's and the TEID to send) and
// returns the packets per second received and the CPU time per packet.
// relayStart sets up a relay to dst and returns its address and the TEID
// to send it.
type relayStart func(b *testing.B, dst netip.AddrPort) (netip.AddrPort, uint32)

func runRelay(b *testing.B, start relayStart) (pps, cpuPerPacket float64) {
	rx := listen(b, Config{ReadBuffer: 4 << 20})
	tx := listen(b, Config{WriteBuffer: 4 << 20})
	relay, teid := start(b, rx.LocalAddr())

	var got, bad, lastNanos atomic.Int64
	progress := make(chan struct{}, 1)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		pkts := make([]Packet, 64)
		for ctx.Err() == nil {
			n, err := rx.ReadBatch(pkts)
			if err != nil {
				return
			}
			for _, p := range pkts[:n] {
				if p.Err != nil || p.Header.TEID != relayTEIDOut {
					bad.Add(1)
				}
			}
			got.Add(int64(n))
			lastNanos.Store(time.Now().UnixNano())
			select {
			case progress <- struct{}{}:
			default:
			}
		}
	}()
	defer func() {
		cancel()
		rx.uc.SetReadDeadline(time.Unix(1, 0))
		<-done
	}()

	pkt := benchGPDU(b, teid)
	batch := make([]Packet, 64)
	for i := range batch {
		batch[i] = Packet{Addr: relay, Data: pkt}
	}
	b.SetBytes(int64(len(pkt)))
	b.ReportAllocs()
	b.ResetTimer()
	cpu0 := cpuTime(b)
	begin := time.Now()
	n := int64(b.N)
	var sent, written int64 // written: counted as lost after a stall
	for sent < n {
		inflight := sent - got.Load() - written
		if inflight >= relayWindow {
			select {
			case <-progress:
			case <-time.After(100 * time.Millisecond):
				written = sent - got.Load() // stalled: what is in flight was lost
			}
			continue
		}
		k := min(int64(len(batch)), n-sent, relayWindow-inflight)
		if _, err := tx.WriteBatch(batch[:k]); err != nil {
			b.Fatal(err)
		}
		sent += k
	}
	for got.Load() < n {
		before := got.Load()
		select {
		case <-progress:
		case <-time.After(200 * time.Millisecond):
		}
		if got.Load() == before {
			break // the rest is lost
		}
	}
	b.StopTimer()
	cpu := cpuTime(b) - cpu0
	if bad.Load() != 0 {
		b.Fatalf("%d packets arrived without the relay's TEID", bad.Load())
	}
	received := got.Load()
	if received == 0 {
		b.Fatal("nothing arrived through the relay")
	}
	elapsed := time.Duration(lastNanos.Load() - begin.UnixNano())
	pps = float64(received) / elapsed.Seconds()
	cpuPerPacket = float64(cpu.Nanoseconds()) / float64(received)
	b.ReportMetric(pps, "pkts/s")
	b.ReportMetric(cpuPerPacket, "cpu-ns/pkt")
	b.ReportMetric(100*float64(n-received)/float64(n), "loss%")
	return pps, cpuPerPacket
}
