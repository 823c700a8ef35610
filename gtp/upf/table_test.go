package upf

import (
	"net/netip"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/simgate/simgate/gtp/pfcp"
)

func tableSession(seid uint64, teid uint32, ue netip.Addr) *Session {
	return &Session{UPSEID: seid, UEAddr: ue, Uplink: pfcp.FTEID{TEID: teid, Addr: n3IP}, teids: []uint32{teid},
		UserID: pfcp.UserID{IMSI: "001010000000001"}}
}

// TestTable: put, replace and remove keep the three indexes in step.
func TestTable(t *testing.T) {
	tb := NewTable()
	ue1, ue2 := netip.MustParseAddr("10.0.0.1"), netip.MustParseAddr("10.0.0.2")
	s1 := tableSession(1, 100, ue1)
	tb.put(s1, nil)
	s2 := tableSession(2, 200, ue2)
	tb.put(s2, nil)
	if tb.Len() != 2 {
		t.Fatalf("Len %d", tb.Len())
	}
	find := func(seid uint64, teid uint32, ue netip.Addr) (a, b, c *Session) {
		a, _ = tb.LookupBySEID(seid)
		b, _ = tb.LookupByTEID(teid)
		c, _ = tb.LookupByAddr(ue)
		return
	}
	if a, b, c := find(1, 100, ue1); a != s1 || b != s1 || c != s1 {
		t.Fatalf("s1 lookups: %v %v %v", a, b, c)
	}
	// An IPv4-mapped IPv6 form of the UE address finds it too.
	if s, ok := tb.LookupByAddr(netip.AddrFrom16(ue2.As16())); !ok || s != s2 {
		t.Error("v4-mapped lookup failed")
	}
	// Modification: same SEID, new TEID, same address.
	s1b := tableSession(1, 101, ue1)
	tb.put(s1b, s1)
	if a, b, c := find(1, 101, ue1); a != s1b || b != s1b || c != s1b {
		t.Fatalf("after replace: %v %v %v", a, b, c)
	}
	if _, ok := tb.LookupByTEID(100); ok {
		t.Error("old TEID still indexed")
	}
	// Replacement by another SEID (re-establishment), keeping the TEID.
	s3 := tableSession(3, 101, ue1)
	tb.put(s3, s1b)
	if _, ok := tb.LookupBySEID(1); ok {
		t.Error("replaced SEID still indexed")
	}
	if a, b, c := find(3, 101, ue1); a != s3 || b != s3 || c != s3 {
		t.Fatalf("after re-establishment: %v %v %v", a, b, c)
	}
	if tb.Len() != 2 {
		t.Fatalf("Len %d after replacements, want 2", tb.Len())
	}
	tb.remove(s3)
	tb.remove(s3) // twice: no effect
	if tb.Len() != 1 {
		t.Fatalf("Len %d after removal, want 1", tb.Len())
	}
	if a, b, c := find(3, 101, ue1); a != nil || b != nil || c != nil {
		t.Fatalf("removed session found: %v %v %v", a, b, c)
	}
	if all := tb.Sessions(); len(all) != 1 || all[0] != s2 {
		t.Fatalf("Sessions() = %v", all)
	}
}

// TestTableConcurrentReaders: readers see either the old or the new
// session while writers replace it, never nothing (run with -race).
func TestTableConcurrentReaders(t *testing.T) {
	tb := NewTable()
	const n = 256
	for i := range n {
		tb.put(tableSession(uint64(i+1), uint32(i+1), netip.AddrFrom4([4]byte{10, 0, byte(i >> 8), byte(i)})), nil)
	}
	var stop atomic.Bool
	var misses atomic.Int64
	var wg sync.WaitGroup
	for range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for !stop.Load() {
				for i := range n {
					s, ok := tb.LookupByTEID(uint32(i + 1))
					if !ok || s.UPSEID != uint64(i+1) || s.IMSI == "" {
						misses.Add(1)
					}
					if _, ok := tb.LookupByAddr(netip.AddrFrom4([4]byte{10, 0, byte(i >> 8), byte(i)})); !ok {
						misses.Add(1)
					}
				}
			}
		}()
	}
	for round := range 50 {
		for i := range n {
			old, _ := tb.LookupBySEID(uint64(i + 1))
			s := *old
			s.DownlinkAction = uint8(round)
			tb.put(&s, old)
		}
	}
	stop.Store(true)
	wg.Wait()
	if m := misses.Load(); m != 0 {
		t.Fatalf("%d lookups missed a session that was being replaced", m)
	}
}

// TestLookupAllocs: the fast-path lookups allocate nothing.
func TestLookupAllocs(t *testing.T) {
	tb := NewTable()
	ue := netip.MustParseAddr("10.0.0.1")
	tb.put(tableSession(1, 7, ue), nil)
	if a := testing.AllocsPerRun(1000, func() { tb.LookupByTEID(7) }); a != 0 {
		t.Errorf("LookupByTEID: %v allocations", a)
	}
	if a := testing.AllocsPerRun(1000, func() { tb.LookupByAddr(ue) }); a != 0 {
		t.Errorf("LookupByAddr: %v allocations", a)
	}
}
