package upf

import (
	"encoding/binary"
	"net/netip"
	"sort"
	"sync"
	"sync/atomic"
	"time"

	"github.com/simgate/simgate/gtp/pfcp"
)

// Session is one PFCP session as the UPF holds it. A *Session in the table
// is never changed: a modification stores a new one, so readers may keep
// and read the pointer without locks. Do not modify it.
type Session struct {
	UPSEID uint64         // ours
	CP     pfcp.FSEID     // the SMF's F-SEID
	Peer   netip.AddrPort // the SMF's PFCP address (the association)
	// User ID IE (TS 29.244 8.2.101): IMSI, IMEI, MSISDN, NAI.
	pfcp.UserID
	UEAddr netip.Addr // the UE's IP address (the PDRs' UE IP Address)
	// Uplink is the local N3 F-TEID of the uplink PDR: G-PDUs from the gNB
	// arrive with this TEID.
	Uplink pfcp.FTEID
	// Downlink is the gNB's F-TEID, from the Outer Header Creation of the
	// downlink FAR; zero until the SMF supplies it.
	Downlink       pfcp.FTEID
	DownlinkAction uint8 // Apply Action of the downlink FAR (pfcp.ActionForward...)
	QFI            uint8
	PDNType        uint8
	DNN            string
	Established    time.Time

	// The rules as received, local F-TEIDs filled in where the UPF chose them.
	PDRs []pfcp.PDR
	FARs []pfcp.FAR
	QERs []pfcp.QER

	teids []uint32 // every local TEID of the PDRs: the table's TEID keys
}

// TEIDs lists the local TEIDs the session is found by.
func (s *Session) TEIDs() []uint32 { return append([]uint32(nil), s.teids...) }

const (
	shardBits = 6
	shards    = 1 << shardBits
)

// The shards are padded to a cache line each so that readers on different
// cores do not contend on one line.
type teidShard struct {
	mu sync.RWMutex
	m  map[uint32]*Session
	_  [64 - 32]byte
}

// addrShard keys IPv4 addresses by their 32 bits, which hash faster than
// a netip.Addr.
type addrShard struct {
	mu sync.RWMutex
	m4 map[uint32]*Session
	m6 map[netip.Addr]*Session
	_  [64 - 40]byte
}

func (sh *addrShard) get(a netip.Addr) (*Session, bool) {
	if a.Is4() {
		s, ok := sh.m4[v4key(a)]
		return s, ok
	}
	s, ok := sh.m6[a]
	return s, ok
}

func (sh *addrShard) set(a netip.Addr, s *Session) {
	if a.Is4() {
		sh.m4[v4key(a)] = s
	} else {
		sh.m6[a] = s
	}
}

func (sh *addrShard) del(a netip.Addr) {
	if a.Is4() {
		delete(sh.m4, v4key(a))
	} else {
		delete(sh.m6, a)
	}
}

func v4key(a netip.Addr) uint32 {
	b := a.As4()
	return binary.BigEndian.Uint32(b[:])
}

type seidShard struct {
	mu sync.RWMutex
	m  map[uint64]*Session
	_  [64 - 32]byte
}

// Table is the UPF's session table, indexed by UP SEID, by local (uplink)
// TEID and by UE address. Lookups are safe for any number of concurrent
// readers, take one uncontended read lock on a shard and allocate nothing;
// writers are serialised.
type Table struct {
	wmu  sync.Mutex // serialises writers
	teid [shards]teidShard
	addr [shards]addrShard
	seid [shards]seidShard
	n    atomic.Int64
}

// NewTable returns an empty table.
func NewTable() *Table {
	t := &Table{}
	for i := range shards {
		t.teid[i].m = make(map[uint32]*Session)
		t.addr[i].m4 = make(map[uint32]*Session)
		t.addr[i].m6 = make(map[netip.Addr]*Session)
		t.seid[i].m = make(map[uint64]*Session)
	}
	return t
}

func teidIndex(teid uint32) int { return int((teid * 0x9e3779b1) >> (32 - shardBits)) }

func seidIndex(seid uint64) int { return int((seid * 0x9e3779b97f4a7c15) >> (64 - shardBits)) }

func addrIndex(a netip.Addr) int {
	var x uint64
	if a.Is4() {
		x = uint64(v4key(a))
	} else {
		b := a.As16()
		x = binary.LittleEndian.Uint64(b[:8]) ^ binary.LittleEndian.Uint64(b[8:])
	}
	return int((x * 0x9e3779b97f4a7c15) >> (64 - shardBits))
}

// LookupByTEID finds the session an uplink G-PDU with this TEID belongs to.
func (t *Table) LookupByTEID(teid uint32) (*Session, bool) {
	sh := &t.teid[teidIndex(teid)]
	sh.mu.RLock()
	s, ok := sh.m[teid]
	sh.mu.RUnlock()
	return s, ok
}

// LookupByAddr finds the session of the UE with this IP address.
func (t *Table) LookupByAddr(a netip.Addr) (*Session, bool) {
	a = a.Unmap()
	sh := &t.addr[addrIndex(a)]
	sh.mu.RLock()
	s, ok := sh.get(a)
	sh.mu.RUnlock()
	return s, ok
}

// LookupBySEID finds a session by its UP SEID.
func (t *Table) LookupBySEID(seid uint64) (*Session, bool) {
	sh := &t.seid[seidIndex(seid)]
	sh.mu.RLock()
	s, ok := sh.m[seid]
	sh.mu.RUnlock()
	return s, ok
}

// Len is the number of sessions.
func (t *Table) Len() int { return int(t.n.Load()) }

// Sessions returns every session, ordered by UP SEID.
func (t *Table) Sessions() []*Session {
	var out []*Session
	for i := range shards {
		sh := &t.seid[i]
		sh.mu.RLock()
		for _, s := range sh.m {
			out = append(out, s)
		}
		sh.mu.RUnlock()
	}
	sort.Slice(out, func(i, j int) bool { return out[i].UPSEID < out[j].UPSEID })
	return out
}

// put stores s, replacing old (nil: none). Keys of s are written before
// keys only old had are deleted, so a reader always finds old or s.
func (t *Table) put(s, old *Session) {
	t.wmu.Lock()
	defer t.wmu.Unlock()
	t.setSEID(s.UPSEID, s)
	for _, k := range s.teids {
		t.setTEID(k, s)
	}
	if s.UEAddr.IsValid() {
		t.setAddr(s.UEAddr, s)
	}
	if old == nil {
		t.n.Add(1)
		return
	}
	t.unindex(old)
	t.deleteSEID(old.UPSEID, old)
}

// remove deletes s.
func (t *Table) remove(s *Session) {
	t.wmu.Lock()
	defer t.wmu.Unlock()
	t.unindex(s)
	if t.deleteSEID(s.UPSEID, s) {
		t.n.Add(-1)
	}
}

// unindex deletes the TEID and address keys that still point at s.
func (t *Table) unindex(s *Session) {
	for _, k := range s.teids {
		sh := &t.teid[teidIndex(k)]
		sh.mu.Lock()
		if sh.m[k] == s {
			delete(sh.m, k)
		}
		sh.mu.Unlock()
	}
	if s.UEAddr.IsValid() {
		sh := &t.addr[addrIndex(s.UEAddr)]
		sh.mu.Lock()
		if cur, _ := sh.get(s.UEAddr); cur == s {
			sh.del(s.UEAddr)
		}
		sh.mu.Unlock()
	}
}

func (t *Table) deleteSEID(seid uint64, s *Session) bool {
	sh := &t.seid[seidIndex(seid)]
	sh.mu.Lock()
	defer sh.mu.Unlock()
	if sh.m[seid] == s {
		delete(sh.m, seid)
		return true
	}
	return false
}

func (t *Table) setSEID(k uint64, s *Session) {
	sh := &t.seid[seidIndex(k)]
	sh.mu.Lock()
	sh.m[k] = s
	sh.mu.Unlock()
}

func (t *Table) setTEID(k uint32, s *Session) {
	sh := &t.teid[teidIndex(k)]
	sh.mu.Lock()
	sh.m[k] = s
	sh.mu.Unlock()
}

func (t *Table) setAddr(k netip.Addr, s *Session) {
	sh := &t.addr[addrIndex(k)]
	sh.mu.Lock()
	sh.set(k, s)
	sh.mu.Unlock()
}
