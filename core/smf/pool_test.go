package smf

import (
	"errors"
	"net/netip"
	"sync"
	"testing"
)

func TestNewPoolRejects(t *testing.T) {
	for _, s := range []string{"2001:db8::/64", "10.0.0.0/7", "10.0.0.0/31", "10.0.0.1/32", "::ffff:10.0.0.0/120"} {
		p := netip.MustParsePrefix(s)
		if _, err := NewPool(p); err == nil {
			t.Errorf("NewPool(%s): no error", s)
		}
	}
	if _, err := NewPool(netip.Prefix{}); err == nil {
		t.Error("NewPool(zero prefix): no error")
	}
}

func TestPoolSizeAndBounds(t *testing.T) {
	tests := []struct {
		prefix      string
		size        int
		first, last string
	}{
		{"10.45.0.0/16", 65534, "10.45.0.1", "10.45.255.254"},
		{"192.168.7.0/24", 254, "192.168.7.1", "192.168.7.254"},
		{"192.168.7.77/24", 254, "192.168.7.1", "192.168.7.254"}, // masked
		{"10.0.0.4/30", 2, "10.0.0.5", "10.0.0.6"},
	}
	for _, tc := range tests {
		t.Run(tc.prefix, func(t *testing.T) {
			p, err := NewPool(netip.MustParsePrefix(tc.prefix))
			if err != nil {
				t.Fatal(err)
			}
			if p.Size() != tc.size {
				t.Fatalf("Size = %d, want %d", p.Size(), tc.size)
			}
			seen := make(map[netip.Addr]bool, tc.size)
			var first, last netip.Addr
			for i := range tc.size {
				a, err := p.Alloc()
				if err != nil {
					t.Fatalf("Alloc %d: %v", i, err)
				}
				if seen[a] {
					t.Fatalf("Alloc %d: %s handed out twice", i, a)
				}
				if !p.Prefix().Contains(a) || !p.Contains(a) {
					t.Fatalf("Alloc %d: %s outside %s", i, a, p.Prefix())
				}
				seen[a] = true
				if i == 0 {
					first = a
				}
				last = a
			}
			if first.String() != tc.first || last.String() != tc.last {
				t.Errorf("first %s last %s, want %s and %s", first, last, tc.first, tc.last)
			}
			if _, err := p.Alloc(); !errors.Is(err, ErrPoolExhausted) {
				t.Fatalf("Alloc on a full pool: %v, want ErrPoolExhausted", err)
			}
			if p.InUse() != tc.size {
				t.Errorf("InUse = %d, want %d", p.InUse(), tc.size)
			}
		})
	}
}

// TestPoolReuse: released addresses come back oldest first, and only after
// every never-used address has been handed out.
func TestPoolReuse(t *testing.T) {
	p, err := NewPool(netip.MustParsePrefix("10.1.0.0/29")) // 6 hosts
	if err != nil {
		t.Fatal(err)
	}
	a1, _ := p.Alloc()
	a2, _ := p.Alloc()
	if err := p.Free(a2); err != nil {
		t.Fatal(err)
	}
	if err := p.Free(a1); err != nil {
		t.Fatal(err)
	}
	var got []netip.Addr
	for {
		a, err := p.Alloc()
		if err != nil {
			break
		}
		got = append(got, a)
	}
	want := []string{"10.1.0.3", "10.1.0.4", "10.1.0.5", "10.1.0.6", "10.1.0.2", "10.1.0.1"}
	if len(got) != len(want) {
		t.Fatalf("allocated %v, want %v", got, want)
	}
	for i := range want {
		if got[i].String() != want[i] {
			t.Fatalf("allocated %v, want %v", got, want)
		}
	}
}

func TestPoolFreeErrors(t *testing.T) {
	p, _ := NewPool(netip.MustParsePrefix("10.1.0.0/24"))
	a, _ := p.Alloc()
	for _, bad := range []netip.Addr{
		netip.MustParseAddr("10.1.0.0"),   // network
		netip.MustParseAddr("10.1.0.255"), // broadcast
		netip.MustParseAddr("10.1.1.1"),
		netip.MustParseAddr("2001:db8::1"),
		netip.MustParseAddr("10.1.0.2"), // in the pool, never allocated
		{},
	} {
		if err := p.Free(bad); err == nil {
			t.Errorf("Free(%v): no error", bad)
		}
	}
	if err := p.Free(netip.MustParseAddr("::ffff:" + a.String())); err != nil {
		t.Fatalf("Free(v4-mapped %s): %v", a, err)
	}
	if err := p.Free(a); err == nil {
		t.Error("double Free: no error")
	}
	if p.InUse() != 0 {
		t.Errorf("InUse = %d, want 0", p.InUse())
	}
}

// TestPoolQueueCompaction cycles far more addresses through the free queue
// than it holds, so the queue compacts, and checks nothing is lost.
func TestPoolQueueCompaction(t *testing.T) {
	p, _ := NewPool(netip.MustParsePrefix("10.2.0.0/20")) // 4094 hosts
	held := make([]netip.Addr, 0, p.Size())
	for range p.Size() {
		a, err := p.Alloc()
		if err != nil {
			t.Fatal(err)
		}
		held = append(held, a)
	}
	for round := range 20 {
		for _, a := range held[:3000] {
			if err := p.Free(a); err != nil {
				t.Fatalf("round %d: %v", round, err)
			}
		}
		seen := map[netip.Addr]bool{}
		for i := range 3000 {
			a, err := p.Alloc()
			if err != nil {
				t.Fatalf("round %d alloc %d: %v", round, i, err)
			}
			if seen[a] {
				t.Fatalf("round %d: %s twice", round, a)
			}
			seen[a] = true
			held[i] = a
		}
		if _, err := p.Alloc(); !errors.Is(err, ErrPoolExhausted) {
			t.Fatalf("round %d: pool not full: %v", round, err)
		}
	}
	if len(p.free)-p.head != 0 || cap(p.free) > 2*p.Size() {
		t.Errorf("free queue: %d queued, capacity %d", len(p.free)-p.head, cap(p.free))
	}
}

func TestPoolConcurrent(t *testing.T) {
	p, _ := NewPool(netip.MustParsePrefix("10.3.0.0/22")) // 1022 hosts
	var (
		mu    sync.Mutex
		owner = map[netip.Addr]int{}
		wg    sync.WaitGroup
	)
	for g := range 8 {
		wg.Go(func() {
			for range 2000 {
				a, err := p.Alloc()
				if err != nil {
					continue
				}
				mu.Lock()
				if o, dup := owner[a]; dup {
					mu.Unlock()
					t.Errorf("%s held by %d and %d", a, o, g)
					return
				}
				owner[a] = g
				mu.Unlock()
				mu.Lock()
				delete(owner, a)
				mu.Unlock()
				if err := p.Free(a); err != nil {
					t.Error(err)
					return
				}
			}
		})
	}
	wg.Wait()
	if p.InUse() != 0 {
		t.Errorf("InUse = %d, want 0", p.InUse())
	}
}

// BenchmarkPoolAllocFree: one Alloc and one Free on a /16 with 60,000
// addresses held.
func BenchmarkPoolAllocFree(b *testing.B) {
	p, _ := NewPool(netip.MustParsePrefix("10.45.0.0/16"))
	for range 60000 {
		if _, err := p.Alloc(); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportAllocs()
	for b.Loop() {
		a, err := p.Alloc()
		if err != nil {
			b.Fatal(err)
		}
		if err := p.Free(a); err != nil {
			b.Fatal(err)
		}
	}
}
