package upf

import (
	"context"
	"log/slog"
	"net"
	"net/netip"
	"sync/atomic"
	"testing"
	"time"

	"github.com/simgate/simgate/gtp/gtpu"
	"github.com/simgate/simgate/gtp/pfcp"
)

const benchSessions = 100_000

// benchTable is a table of benchSessions sessions, as the GTP-U path will
// see it.
func benchTable(b *testing.B) (*Table, []uint32, []netip.Addr) {
	b.Helper()
	tb := NewTable()
	teids := make([]uint32, benchSessions)
	addrs := make([]netip.Addr, benchSessions)
	for i := range benchSessions {
		teids[i] = uint32(i)*2654435761 | 1
		addrs[i] = netip.AddrFrom4([4]byte{10, byte(i >> 16), byte(i >> 8), byte(i)})
		tb.put(tableSession(uint64(i+1), teids[i], addrs[i]), nil)
	}
	return tb, teids, addrs
}

func BenchmarkLookupByTEID(b *testing.B) {
	tb, teids, _ := benchTable(b)
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; b.Loop(); i++ {
		if _, ok := tb.LookupByTEID(teids[i%benchSessions]); !ok {
			b.Fatal("miss")
		}
	}
}

func BenchmarkLookupByAddr(b *testing.B) {
	tb, _, addrs := benchTable(b)
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; b.Loop(); i++ {
		if _, ok := tb.LookupByAddr(addrs[i%benchSessions]); !ok {
			b.Fatal("miss")
		}
	}
}

// BenchmarkLookupByTEIDParallel: lookups from every core at once, as a
// multi-queue GTP-U reader would do.
func BenchmarkLookupByTEIDParallel(b *testing.B) {
	tb, teids, _ := benchTable(b)
	var seed atomic.Uint32
	b.ReportAllocs()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		i := int(seed.Add(7919))
		for pb.Next() {
			if _, ok := tb.LookupByTEID(teids[i%benchSessions]); !ok {
				b.Error("miss")
				return
			}
			i++
		}
	})
}

func BenchmarkLookupByAddrParallel(b *testing.B) {
	tb, _, addrs := benchTable(b)
	var seed atomic.Uint32
	b.ReportAllocs()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		i := int(seed.Add(7919))
		for pb.Next() {
			if _, ok := tb.LookupByAddr(addrs[i%benchSessions]); !ok {
				b.Error("miss")
				return
			}
			i++
		}
	})
}

// BenchmarkEstablish: PFCP session establishments over loopback, SMF client
// to UPF, 8 x GOMAXPROCS in flight; reports establishments per second.
func BenchmarkEstablish(b *testing.B) {
	cfg := testConfig()
	cfg.T1 = time.Second
	u := startUPF(b, cfg, nil)
	c := startSMF(b, smfOpts{})
	associate(b, c, u)
	ctx := context.Background()
	var next atomic.Int64
	b.SetParallelism(8) // 8 x GOMAXPROCS requests in flight
	b.ReportAllocs()
	b.ResetTimer()
	start := time.Now()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			i := int(next.Add(1))
			req := ueReq(u, i)
			req.UEAddr = netip.AddrFrom4([4]byte{10, byte(i >> 16), byte(i >> 8), byte(i)})
			if _, err := c.EstablishSession(ctx, req); err != nil {
				b.Error(err)
				return
			}
		}
	})
	b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "sessions/s")
	if u.Sessions().Len() != b.N {
		b.Fatalf("%d sessions, want %d", u.Sessions().Len(), b.N)
	}
}

// sinkNetwork takes uplink packets and drops them.
type sinkNetwork struct{ n int }

func (s *sinkNetwork) Inject(pkt []byte) error  { s.n++; return nil }
func (s *sinkNetwork) SetDownlink(func([]byte)) {}

// BenchmarkUplink is the shim's per-packet uplink path: a decoded G-PDU
// looked up by TEID among 100000 sessions, its PDU Session Container, QFI
// and inner source checked, and handed to the network (here a sink, so the
// figure excludes the userspace stack).
func BenchmarkUplink(b *testing.B) {
	tab, teids, addrs := benchTable(b)
	u := &UPF{table: tab, log: slog.New(slog.DiscardHandler)}
	sink := &sinkNetwork{}
	d := NewDataPath(u, nil, sink)
	const k = 1234
	s, _ := tab.LookupByTEID(teids[k])
	inner := make([]byte, 100)
	inner[0], inner[3] = 0x45, 100
	a := addrs[k].As4()
	copy(inner[12:16], a[:])
	psc := &gtpu.PDUSession{Type: gtpu.UL, QFI: s.QFI}
	hl := gtpu.GPDUHeaderLen(psc)
	raw, err := gtpu.PrependGPDU(append(make([]byte, hl), inner...), hl, teids[k], psc)
	if err != nil {
		b.Fatal(err)
	}
	var p gtpu.Packet
	if p.Payload, err = p.Header.Decode(raw); err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	b.SetBytes(int64(len(inner)))
	for b.Loop() {
		if d.uplink(&p) != gtpu.Consume {
			b.Fatal("uplink not consumed")
		}
	}
	if sink.n == 0 {
		b.Fatal("nothing injected")
	}
}

// BenchmarkDownlink is the downlink path to the socket: a packet from the
// network looked up by destination, encapsulated with a DL PDU Session
// Container and sent in batches over loopback UDP to a gNB socket that
// drains it.
func BenchmarkDownlink(b *testing.B) {
	tab, _, addrs := benchTable(b)
	gnb, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		b.Fatal(err)
	}
	defer gnb.Close()
	go func() {
		buf := make([]byte, 65536)
		for {
			if _, err := gnb.Read(buf); err != nil {
				return
			}
		}
	}()
	const k = 4321
	s, _ := tab.LookupByAddr(addrs[k])
	m := *s
	m.Downlink = pfcp.FTEID{TEID: 0x77, Addr: netip.MustParseAddr("127.0.0.1")}
	m.DownlinkAction = pfcp.ActionForward
	m.QFI = 9
	tab.put(&m, s)
	conn, err := gtpu.Listen("127.0.0.1:0", gtpu.Config{})
	if err != nil {
		b.Fatal(err)
	}
	defer conn.Close()
	u := &UPF{table: tab, log: slog.New(slog.DiscardHandler)}
	d := NewDataPath(u, conn, &sinkNetwork{})
	d.port = uint16(gnb.LocalAddr().(*net.UDPAddr).Port)
	ctx, cancel := context.WithCancel(context.Background())
	d.ctx = ctx
	done := make(chan struct{})
	go func() { defer close(done); d.writeLoop(ctx) }()
	pkt := make([]byte, 1400)
	pkt[0], pkt[2], pkt[3] = 0x45, 1400>>8, 1400&0xff
	a := addrs[k].As4()
	copy(pkt[16:20], a[:])
	b.SetBytes(int64(len(pkt)))
	b.ReportAllocs()
	for b.Loop() {
		d.downlink(pkt)
	}
	for len(d.queue) > 0 {
		time.Sleep(time.Millisecond)
	}
	cancel()
	<-done
	if st := d.Stats(); st.DownlinkPackets == 0 || st.Drops[DropNoSession] != 0 {
		b.Fatalf("stats %+v", st)
	}
}
