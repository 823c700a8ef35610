package metrics

import (
	"context"
	"encoding/binary"
	"net"
	"net/netip"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/simgate/simgate/core/smf"
	"github.com/simgate/simgate/gtp/dn"
	"github.com/simgate/simgate/gtp/gtpu"
	"github.com/simgate/simgate/gtp/pfcp"
	"github.com/simgate/simgate/gtp/upf"
	"github.com/simgate/simgate/sim/device"
	"github.com/simgate/simgate/sim/gnb"
)

// ipv4 builds an IPv4 packet (RFC 791) with a valid header checksum.
func ipv4(src, dst netip.Addr, proto uint8, payload []byte) []byte {
	p := make([]byte, 20+len(payload))
	p[0], p[8], p[9] = 0x45, 64, proto
	binary.BigEndian.PutUint16(p[2:], uint16(len(p)))
	s, d := src.As4(), dst.As4()
	copy(p[12:], s[:])
	copy(p[16:], d[:])
	var sum uint32
	for i := 0; i < 20; i += 2 {
		sum += uint32(binary.BigEndian.Uint16(p[i:]))
	}
	for sum > 0xffff {
		sum = sum&0xffff + sum>>16
	}
	binary.BigEndian.PutUint16(p[10:], ^uint16(sum))
	copy(p[20:], payload)
	return p
}

// sendUDP sends datagrams to to from a fresh loopback socket.
func sendUDP(t *testing.T, to netip.AddrPort, dgrams ...[]byte) {
	t.Helper()
	c, err := net.DialUDP("udp", nil, net.UDPAddrFromAddrPort(to))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	for _, d := range dgrams {
		if _, err := c.Write(d); err != nil {
			t.Fatal(err)
		}
	}
}

// gpdu is a G-PDU (TS 29.281 5.1) for teid with payload, no options.
func gpdu(teid uint32, payload []byte) []byte {
	b := make([]byte, 8+len(payload))
	b[0], b[1] = 0x30, gtpu.MsgGPDU
	binary.BigEndian.PutUint16(b[2:], uint16(len(payload)))
	binary.BigEndian.PutUint32(b[4:], teid)
	copy(b[8:], payload)
	return b
}

func TestPFCPAndUPF(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	ucfg := upf.DefaultConfig()
	ucfg.N4Addr, ucfg.N3Addr, ucfg.HeartbeatInterval = "127.0.0.1:0", "127.0.0.1", 0
	u, err := upf.Start(ctx, ucfg, nil)
	if err != nil {
		t.Fatal(err)
	}
	node, err := pfcp.Listen(ctx, "127.0.0.1:0", pfcp.Config{HeartbeatInterval: -1})
	if err != nil {
		t.Fatal(err)
	}
	defer func() { node.Close(); <-node.Done(); cancel(); <-u.Done() }()
	c, err := pfcp.NewClient(node)
	if err != nil {
		t.Fatal(err)
	}

	r := New()
	if err := r.AddPFCP("smf", node); err != nil {
		t.Fatal(err)
	}
	if err := r.AddPFCP("upf", u.Node()); err != nil {
		t.Fatal(err)
	}
	if err := r.AddUPF(u); err != nil {
		t.Fatal(err)
	}
	want(t, r, 0, "simgate_upf_sessions")

	if _, err := c.Associate(ctx, u.Addr()); err != nil {
		t.Fatal(err)
	}
	for i := range 3 {
		req := pfcp.SessionRequest{Peer: u.Addr(), UEAddr: netip.AddrFrom4([4]byte{10, 45, 0, byte(i + 1)}), DNN: "internet", QFI: 1}
		if _, err := c.EstablishSession(ctx, req); err != nil {
			t.Fatal(err)
		}
	}
	want(t, r, 3, "simgate_upf_sessions")
	// Association Setup and three Session Establishments each way.
	want(t, r, 4, "simgate_pfcp_requests_sent_total", "node", "smf")
	want(t, r, 4, "simgate_pfcp_responses_received_total", "node", "smf")
	want(t, r, 0, "simgate_pfcp_requests_received_total", "node", "smf")
	want(t, r, 4, "simgate_pfcp_requests_received_total", "node", "upf")
	want(t, r, 0, "simgate_pfcp_timeouts_total", "node", "smf")

	// A datagram too short for the PFCP header (TS 29.244 7.2.2), and one of
	// PFCP version 2: both dropped by the UPF's node.
	sendUDP(t, u.Addr(), []byte{0x20, 0x01}, []byte{0x40, 0x01, 0x00, 0x04, 0, 0, 1, 0})
	eventually(t, r, 1, "simgate_pfcp_dropped_messages_total", "node", "upf", "reason", "malformed")
	eventually(t, r, 1, "simgate_pfcp_dropped_messages_total", "node", "upf", "reason", "version_not_supported")
	want(t, r, 0, "simgate_pfcp_dropped_messages_total", "node", "smf", "reason", "malformed")

	// Names tell nodes apart; the same name twice is refused.
	if err := r.AddPFCP("smf", node); err == nil {
		t.Error("AddPFCP with a name taken: no error")
	}
	if err := r.AddPFCP("", node); err == nil {
		t.Error("AddPFCP without a name: no error")
	}
	if err := r.AddUPF(u); err == nil {
		t.Error("AddUPF twice: no error")
	}
	lint(t, r)
}

func TestGTPU(t *testing.T) {
	conn, err := gtpu.Listen("127.0.0.1:0", gtpu.Config{})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- conn.Serve(ctx, func(p *gtpu.Packet) gtpu.Action { return gtpu.UnknownTEID }) }()
	defer func() {
		cancel()
		if err := <-done; err != nil {
			t.Error(err)
		}
		conn.Close()
	}()
	r := New()
	if err := r.AddGTPU("n3", conn); err != nil {
		t.Fatal(err)
	}
	echo, err := gtpu.EchoRequest(7)
	if err != nil {
		t.Fatal(err)
	}
	bad := gpdu(1, []byte{1, 2, 3, 4})
	bad[0] = 0x50 // GTP version 2
	sendUDP(t, conn.LocalAddr(),
		echo,                             // answered: TS 29.281 7.2.1
		gpdu(42, []byte{0x45, 0, 0, 20}), // unknown TEID: Error Indication
		[]byte{0x30, 0xff, 0},            // shorter than the header
		bad,
	)
	eventually(t, r, 4, "simgate_gtpu_packets_total", "conn", "n3", "direction", "rx")
	tests := []struct {
		v      float64
		name   string
		labels []string
	}{
		{1, "simgate_gtpu_echo_requests_total", nil},
		{1, "simgate_gtpu_error_indications_sent_total", nil},
		{2, "simgate_gtpu_packets_total", []string{"direction", "tx"}},
		{float64(len(echo) + 12 + 3 + len(bad)), "simgate_gtpu_bytes_total", []string{"direction", "rx"}},
		{2, "simgate_gtpu_drops_total", []string{"reason", gtpu.DropMalformed.String()}},
		{1, "simgate_gtpu_drops_total", []string{"reason", gtpu.DropUnknownTEID.String()}},
		{0, "simgate_gtpu_drops_total", []string{"reason", gtpu.DropHandler.String()}},
		{1, "simgate_gtpu_malformed_total", []string{"error", "short"}},
		{1, "simgate_gtpu_malformed_total", []string{"error", "version"}},
		{0, "simgate_gtpu_malformed_total", []string{"error", "ext_truncated"}},
	}
	for _, tc := range tests {
		want(t, r, tc.v, tc.name, append([]string{"conn", "n3"}, tc.labels...)...)
	}
	if err := r.AddGTPU("n3", conn); err == nil {
		t.Error("AddGTPU with a name taken: no error")
	}
	if err := r.AddGTPU(strings.Repeat("n", 100), conn); err == nil {
		t.Error("AddGTPU with a 100-byte name: no error")
	}
	lint(t, r)
}

func TestGTPUErrorNames(t *testing.T) {
	seen := map[string]bool{}
	for e := gtpu.Error(1); int(e) < gtpu.NumErrors; e++ {
		n := gtpuErrorName(e)
		if strings.HasPrefix(n, "error_") || seen[n] {
			t.Errorf("gtpu error %d (%v): label %q: missing or repeated", e, e, n)
		}
		seen[n] = true
	}
	if n := gtpuErrorName(gtpu.Error(gtpu.NumErrors)); n != "error_"+strconv.Itoa(gtpu.NumErrors) {
		t.Errorf("unknown error label %q", n)
	}
}

func TestDevicesAndGNBN3(t *testing.T) {
	st, err := device.New(device.Config{})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	n3, err := gnb.ListenN3(ctx, gnb.N3Config{Addr: "127.0.0.1:0"}, st)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { n3.Close(); <-n3.Done() }()
	r := New()
	if err := r.AddDevices(st); err != nil {
		t.Fatal(err)
	}
	if err := r.AddGNBN3(n3); err != nil {
		t.Fatal(err)
	}

	ue := netip.MustParseAddr("10.45.0.9")
	if err := st.AddUE(ue, netip.Addr{}, func([]byte) {}); err != nil {
		t.Fatal(err)
	}
	want(t, r, 1, "simgate_devices_ues")
	// Downlink to an address no UE has is dropped (and not IPv4 too).
	pkt := ipv4(netip.MustParseAddr("192.0.2.1"), netip.MustParseAddr("10.45.0.10"), 17, make([]byte, 8))
	if err := st.Deliver(pkt); err == nil {
		t.Fatal("Deliver to no UE: no error")
	}
	if err := st.Deliver([]byte{0x60, 0, 0}); err == nil {
		t.Fatal("Deliver of a non-IPv4 packet: no error")
	}
	want(t, r, 2, "simgate_devices_drops_total", "direction", "downlink")
	want(t, r, 0, "simgate_devices_packets_total", "direction", "downlink")

	// A G-PDU for a TEID no tunnel has: dropped by the gNBs' socket, which
	// answers with an Error Indication (TS 29.281 7.3.1).
	sendUDP(t, n3.Addr(), gpdu(0xdead, pkt))
	eventually(t, r, 1, "simgate_gtpu_drops_total", "conn", "gnb_n3", "reason", gtpu.DropUnknownTEID.String())
	want(t, r, 1, "simgate_gtpu_error_indications_sent_total", "conn", "gnb_n3")
	want(t, r, 0, "simgate_gnb_n3_tunnels")
	want(t, r, 0, "simgate_gnb_n3_packets_total", "direction", "downlink")
	lint(t, r)
}

func TestDN(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	d, err := dn.Start(ctx, dn.DefaultConfig())
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	r := New()
	if err := r.AddDN(d); err != nil {
		t.Fatal(err)
	}
	// An ICMP echo request (RFC 792 type 8) to a foreign host is dropped.
	ping := ipv4(netip.MustParseAddr("10.45.0.1"), netip.MustParseAddr("198.51.100.7"), 1, []byte{8, 0, 0xf7, 0xff, 0, 0, 0, 0})
	for range 2 {
		if err := d.Inject(ping); err != nil {
			t.Fatal(err)
		}
	}
	want(t, r, 2, "simgate_dn_drops_total", "reason", "foreign_ping")
	want(t, r, 0, "simgate_dn_nat_flows_active", "transport", "tcp")
	want(t, r, 0, "simgate_dn_dns_queries_total", "resolver", "local")
	lint(t, r)
}

// fakeN4 is an N4 that is never reached: the SMF only counts here.
type fakeN4 struct{ smf.N4 }

func TestSMF(t *testing.T) {
	cfg := smf.DefaultConfig()
	cfg.DNNs = []string{"internet@1=10.45.0.0/16", "iot=10.46.0.0/24"}
	s, err := smf.New(cfg, fakeN4{}, nil)
	if err != nil {
		t.Fatal(err)
	}
	internet, ok := s.Pool("internet", 1, "")
	if !ok {
		t.Fatal("no internet pool")
	}
	iot, ok := s.Pool("iot", 0, "")
	if !ok {
		t.Fatal("no iot pool")
	}
	r := New()
	if err := r.AddSMF(s, internet, internet); err == nil {
		t.Error("AddSMF with a pool twice: no error")
	}
	if err := r.AddSMF(s, internet, iot); err != nil {
		t.Fatal(err)
	}
	for range 3 {
		if _, err := internet.Alloc(); err != nil {
			t.Fatal(err)
		}
	}
	want(t, r, 0, "simgate_smf_ues")
	want(t, r, 3, "simgate_smf_pdu_sessions", "pool", "10.45.0.0/16")
	want(t, r, 0, "simgate_smf_pdu_sessions", "pool", "10.46.0.0/24")
	want(t, r, 65534, "simgate_smf_pool_addresses", "pool", "10.45.0.0/16")
	want(t, r, 254, "simgate_smf_pool_addresses", "pool", "10.46.0.0/24")
	lint(t, r)
}

// BenchmarkGather is a scrape of a registry with the Go, process and
// build-info collectors and one GTP-U socket's.
func BenchmarkGather(b *testing.B) {
	conn, err := gtpu.Listen("127.0.0.1:0", gtpu.Config{})
	if err != nil {
		b.Fatal(err)
	}
	defer conn.Close()
	r := New()
	if err := r.AddGTPU("n3", conn); err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := r.Gatherer().Gather(); err != nil {
			b.Fatal(err)
		}
	}
}

// testNetwork is the data network side of a DataPath: it keeps the
// downlink function the data path installs.
type testNetwork struct {
	mu   sync.Mutex
	down func([]byte)
	up   int
}

func (n *testNetwork) Inject([]byte) error { n.mu.Lock(); n.up++; n.mu.Unlock(); return nil }
func (n *testNetwork) SetDownlink(f func([]byte)) {
	n.mu.Lock()
	n.down = f
	n.mu.Unlock()
}
func (n *testNetwork) downlink() func([]byte) { n.mu.Lock(); defer n.mu.Unlock(); return n.down }

func TestUPFDataPath(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	ucfg := upf.DefaultConfig()
	ucfg.N4Addr, ucfg.N3Addr, ucfg.HeartbeatInterval = "127.0.0.1:0", "127.0.0.1", 0
	u, err := upf.Start(ctx, ucfg, nil)
	if err != nil {
		t.Fatal(err)
	}
	conn, err := gtpu.Listen("127.0.0.1:0", gtpu.Config{})
	if err != nil {
		t.Fatal(err)
	}
	nw := &testNetwork{}
	d := upf.NewDataPath(u, conn, nw)
	served := make(chan error, 1)
	go func() { served <- d.Serve(ctx) }()
	defer func() {
		cancel()
		if err := <-served; err != nil {
			t.Error(err)
		}
		conn.Close()
		<-u.Done()
	}()
	r := New()
	if err := r.AddUPFDataPath(d); err != nil {
		t.Fatal(err)
	}
	if err := r.AddGTPU("n3", conn); err != nil {
		t.Fatal(err)
	}
	inner := ipv4(netip.MustParseAddr("10.45.0.1"), netip.MustParseAddr("192.0.2.1"), 17, make([]byte, 8))
	sendUDP(t, conn.LocalAddr(), gpdu(0xbeef, inner), gpdu(0xbeef, inner))
	eventually(t, r, 2, "simgate_upf_drops_total", "reason", upf.DropUnknownTEID.String())
	// Downlink to an address no session owns.
	var down func([]byte)
	for deadline := time.Now().Add(5 * time.Second); down == nil && time.Now().Before(deadline); time.Sleep(time.Millisecond) {
		down = nw.downlink()
	}
	if down == nil {
		t.Fatal("the data path set no downlink")
	}
	down(ipv4(netip.MustParseAddr("192.0.2.1"), netip.MustParseAddr("10.45.9.9"), 17, make([]byte, 8)))
	want(t, r, 1, "simgate_upf_drops_total", "reason", upf.DropNoSession.String())
	want(t, r, 0, "simgate_upf_packets_total", "direction", "uplink")
	want(t, r, 0, "simgate_upf_drops_total", "reason", upf.DropSpoofed.String())
	lint(t, r)
}

func TestAddNil(t *testing.T) {
	r := New()
	for name, err := range map[string]error{
		"AMF": r.AddAMF(nil), "SMF": r.AddSMF(nil), "PFCP": r.AddPFCP("n4", nil), "GTPU": r.AddGTPU("n3", nil),
		"UPF": r.AddUPF(nil), "UPFDataPath": r.AddUPFDataPath(nil), "DN": r.AddDN(nil),
		"Devices": r.AddDevices(nil), "GNBN3": r.AddGNBN3(nil),
	} {
		if err == nil {
			t.Errorf("Add%s(nil): no error", name)
		}
	}
	if _, err := r.Gatherer().Gather(); err != nil {
		t.Errorf("gather after refused adds: %v", err)
	}
}
