package gtpu

import (
	"bytes"
	"net/netip"
	"slices"
	"syscall"
	"testing"
	"time"

	"golang.org/x/net/ipv4"
)

// TestPack: which queued datagrams share one segmented (GSO) message.
func TestPack(t *testing.T) {
	if gsoMaxSegments == 1 {
		t.Skip("no UDP GSO on this system")
	}
	a, b := netip.MustParseAddrPort("127.0.0.1:1"), netip.MustParseAddrPort("127.0.0.1:2")
	type dg struct {
		len int
		to  netip.AddrPort
	}
	run := func(n, l int, to netip.AddrPort) []dg { return slices.Repeat([]dg{{l, to}}, n) }
	cases := []struct {
		name  string
		in    []dg
		gso   bool
		first []int // message boundaries
	}{
		{"one run", run(3, 100, a), true, []int{0, 3}},
		{"without GSO", run(3, 100, a), false, []int{0, 1, 2, 3}},
		{"a shorter datagram ends a run", slices.Concat(run(2, 100, a), run(1, 50, a), run(1, 100, a)), true, []int{0, 3, 4}},
		{"a longer one starts a new run", slices.Concat(run(1, 100, a), run(2, 150, a)), true, []int{0, 1, 3}},
		{"destinations", slices.Concat(run(1, 100, a), run(2, 100, b), run(1, 100, a)), true, []int{0, 1, 3, 4}},
		{"at most 64 segments", run(70, 100, a), true, []int{0, 64, 70}},
		{"at most 64 KiB", run(10, 9000, a), true, []int{0, 7, 10}},
		{"empty datagrams alone", run(2, 0, a), true, []int{0, 1, 2}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			w := newWriter(len(tc.in))
			for _, d := range tc.in {
				w.add(make([]byte, d.len), d.to)
			}
			nm := w.pack(tc.gso)
			if got := w.first[:nm+1]; !slices.Equal(got, tc.first) {
				t.Fatalf("messages start at %v, want %v", got, tc.first)
			}
			for m := range nm {
				msg := w.msgs[m]
				if len(msg.Buffers) != tc.first[m+1]-tc.first[m] || msg.Addr.String() != tc.in[tc.first[m]].to.String() {
					t.Errorf("message %d: %d buffers to %s", m, len(msg.Buffers), msg.Addr)
				}
				if (msg.OOB != nil) != (len(msg.Buffers) > 1) {
					t.Errorf("message %d: %d buffers, control message %x", m, len(msg.Buffers), msg.OOB)
				}
			}
		})
	}
}

// TestWriteBatchGSO: runs of equal datagrams, shorter ones, other sizes and
// two destinations all arrive intact and in order, with and without GSO.
func TestWriteBatchGSO(t *testing.T) {
	for _, noGSO := range []bool{false, true} {
		t.Run(map[bool]string{false: "GSO", true: "NoGSO"}[noGSO], func(t *testing.T) {
			tx := listen(t, Config{NoGSO: noGSO})
			if !noGSO && !tx.gso.Load() {
				t.Skip("the kernel does not segment UDP (UDP_SEGMENT)")
			}
			rx := []*Conn{listen(t, Config{ReadBuffer: 1 << 20}), listen(t, Config{ReadBuffer: 1 << 20})}
			var out []Packet
			want := make([][][]byte, 2)
			add := func(n, size, to int) {
				for range n {
					seq := len(out)
					b := gpdu(t, uint32(seq), nil, bytes.Repeat([]byte{byte(seq)}, size))
					out = append(out, Packet{Addr: rx[to].LocalAddr(), Data: b})
					want[to] = append(want[to], b)
				}
			}
			add(20, 100, 0)
			add(1, 50, 0)
			add(10, 100, 1)
			add(5, 200, 0)
			add(80, 300, 1)
			if n, err := tx.WriteBatch(out); n != len(out) || err != nil {
				t.Fatalf("WriteBatch: %d %v", n, err)
			}
			for i, c := range rx {
				var got [][]byte
				pkts := make([]Packet, 16)
				for len(got) < len(want[i]) {
					c.uc.SetReadDeadline(time.Now().Add(10 * time.Second))
					n, err := c.ReadBatch(pkts)
					if err != nil {
						t.Fatalf("receiver %d after %d: %v", i, len(got), err)
					}
					for _, p := range pkts[:n] {
						if p.Addr != tx.LocalAddr() {
							t.Fatalf("from %s", p.Addr)
						}
						got = append(got, bytes.Clone(p.Data))
					}
				}
				for j := range want[i] {
					if !bytes.Equal(got[j], want[i][j]) {
						t.Fatalf("receiver %d datagram %d:\n got %x\nwant %x", i, j, got[j], want[i][j])
					}
				}
			}
			if s := tx.Stats(); s.TxPackets != uint64(len(out)) || s.Drops[DropSend] != 0 {
				t.Errorf("stats %+v", s)
			}
		})
	}
}

// refuseGSO refuses segmented messages with err, as a kernel does when the
// route's device cannot segment (EIO) or the segments exceed its MTU
// (EINVAL); sendmmsg stops at the first message it refuses.
type refuseGSO struct {
	batchConn
	err     error
	refused int
}

func (r *refuseGSO) WriteBatch(ms []ipv4.Message, flags int) (int, error) {
	for i, m := range ms {
		if m.OOB != nil {
			r.refused++
			if i == 0 {
				return -1, r.err
			}
			return r.batchConn.WriteBatch(ms[:i], flags)
		}
	}
	return r.batchConn.WriteBatch(ms, flags)
}

func TestGSOFallback(t *testing.T) {
	for _, tc := range []struct {
		err     error
		disable bool
	}{{syscall.EIO, true}, {syscall.EINVAL, false}} {
		t.Run(tc.err.Error(), func(t *testing.T) {
			tx := listen(t, Config{})
			if !tx.gso.Load() {
				t.Skip("the kernel does not segment UDP (UDP_SEGMENT)")
			}
			fake := &refuseGSO{batchConn: tx.bc, err: tc.err}
			tx.bc = fake
			rx := listen(t, Config{})
			out := []Packet{{Addr: rx.LocalAddr(), Data: gpdu(t, 100, nil, []byte{1})}}
			for i := range 6 {
				out = append(out, Packet{Addr: rx.LocalAddr(), Data: gpdu(t, uint32(i), nil, []byte{2, 3})})
			}
			if n, err := tx.WriteBatch(out); n != len(out) || err != nil {
				t.Fatalf("WriteBatch: %d %v", n, err)
			}
			if fake.refused == 0 || tx.gso.Load() == tc.disable {
				t.Errorf("refused %d, GSO still on: %v", fake.refused, tx.gso.Load())
			}
			pkts := make([]Packet, len(out))
			got := 0
			for got < len(out) {
				rx.uc.SetReadDeadline(time.Now().Add(10 * time.Second))
				n, err := rx.ReadBatch(pkts)
				if err != nil {
					t.Fatal(err)
				}
				got += n
			}
			if s := tx.Stats(); s.TxPackets != uint64(len(out)) || s.Drops[DropSend] != 0 {
				t.Errorf("stats %+v", s)
			}
		})
	}
}
