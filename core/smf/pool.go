package smf

import (
	"encoding/binary"
	"errors"
	"fmt"
	"net/netip"
	"sync"
)

// ErrPoolExhausted is returned by Pool.Alloc when every address is in use.
var ErrPoolExhausted = errors.New("address pool exhausted")

// Pool hands out the IPv4 host addresses of a prefix (its network and
// broadcast addresses excluded), each to one holder at a time. Alloc and Free
// are O(1): addresses never handed out are taken in order, then released
// ones in the order they were released, so a released address is reused as
// late as possible. A Pool is safe for concurrent use.
type Pool struct {
	prefix netip.Prefix
	base   uint32 // the first host address
	size   uint32 // number of host addresses

	mu    sync.Mutex
	next  uint32   // offsets below next have been handed out at least once
	free  []uint32 // released offsets, oldest first from head
	head  int
	used  []uint64 // bitmap of offsets in use
	inUse int
}

// Prefix lengths a Pool accepts: /8 keeps the bitmap at 2 MiB, /30 is the
// smallest with host addresses besides network and broadcast.
const (
	minPoolBits = 8
	maxPoolBits = 30
)

// NewPool returns a pool of the host addresses of an IPv4 prefix, /8 to /30.
func NewPool(prefix netip.Prefix) (*Pool, error) {
	if !prefix.IsValid() || !prefix.Addr().Is4() {
		return nil, fmt.Errorf("smf: pool %s: not an IPv4 prefix", prefix)
	}
	if b := prefix.Bits(); b < minPoolBits || b > maxPoolBits {
		return nil, fmt.Errorf("smf: pool %s: prefix length must be /%d to /%d", prefix, minPoolBits, maxPoolBits)
	}
	prefix = prefix.Masked()
	a := prefix.Addr().As4()
	n := uint32(1) << (32 - prefix.Bits())
	return &Pool{
		prefix: prefix,
		base:   binary.BigEndian.Uint32(a[:]) + 1,
		size:   n - 2,
		used:   make([]uint64, (n-2+63)/64),
	}, nil
}

// Prefix is the pool's prefix.
func (p *Pool) Prefix() netip.Prefix { return p.prefix }

// Size is the number of addresses the pool holds.
func (p *Pool) Size() int { return int(p.size) }

// InUse is the number of addresses handed out and not freed.
func (p *Pool) InUse() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.inUse
}

// Contains reports whether a is one of the pool's addresses.
func (p *Pool) Contains(a netip.Addr) bool {
	_, ok := p.offset(a)
	return ok
}

func (p *Pool) offset(a netip.Addr) (uint32, bool) {
	a = a.Unmap()
	if !a.Is4() {
		return 0, false
	}
	b := a.As4()
	off := binary.BigEndian.Uint32(b[:]) - p.base // wraps below base
	return off, off < p.size
}

func (p *Pool) addr(off uint32) netip.Addr {
	var b [4]byte
	binary.BigEndian.PutUint32(b[:], p.base+off)
	return netip.AddrFrom4(b)
}

// Alloc takes a free address.
func (p *Pool) Alloc() (netip.Addr, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	var off uint32
	switch {
	case p.next < p.size:
		off = p.next
		p.next++
	case p.head < len(p.free):
		off = p.free[p.head]
		p.head++
		// Drop the consumed front once it is most of the slice: amortised O(1).
		if p.head >= 1024 && p.head*2 >= len(p.free) {
			n := copy(p.free, p.free[p.head:])
			p.free = p.free[:n]
			p.head = 0
		}
	default:
		return netip.Addr{}, fmt.Errorf("smf: pool %s: %w", p.prefix, ErrPoolExhausted)
	}
	p.used[off/64] |= 1 << (off % 64)
	p.inUse++
	return p.addr(off), nil
}

// Free returns a to the pool. Freeing an address the pool does not hold or
// that is not in use is an error.
func (p *Pool) Free(a netip.Addr) error {
	off, ok := p.offset(a)
	if !ok {
		return fmt.Errorf("smf: pool %s: free %s: not in the pool", p.prefix, a)
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	w, bit := off/64, uint64(1)<<(off%64)
	if p.used[w]&bit == 0 {
		return fmt.Errorf("smf: pool %s: free %s: not in use", p.prefix, a)
	}
	p.used[w] &^= bit
	p.inUse--
	p.free = append(p.free, off)
	return nil
}
