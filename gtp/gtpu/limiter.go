package gtpu

import (
	"net/netip"
	"sync"
	"time"
)

// limiter is a token bucket per peer address: each peer may be sent burst
// messages at once and rate per second after that. It bounds the peers it
// remembers; a peer whose bucket has refilled is forgotten when room is
// needed, since a new bucket starts full anyway.
type limiter struct {
	rate  float64 // tokens per second; <= 0 allows nothing
	burst float64
	max   int

	mu    sync.Mutex
	peers map[netip.Addr]bucket
}

type bucket struct {
	tokens float64
	last   time.Time
}

func newLimiter(rate float64, burst, maxPeers int) *limiter {
	return &limiter{rate: rate, burst: float64(burst), max: maxPeers, peers: make(map[netip.Addr]bucket)}
}

// allow takes a token from peer's bucket at time now, if it has one.
func (l *limiter) allow(peer netip.Addr, now time.Time) bool {
	if l.rate <= 0 || l.burst < 1 {
		return false
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	b, ok := l.peers[peer]
	if !ok {
		if len(l.peers) >= l.max {
			l.prune(now)
			if len(l.peers) >= l.max {
				return false
			}
		}
		b = bucket{tokens: l.burst, last: now}
	}
	if d := now.Sub(b.last); d > 0 {
		b.tokens = min(l.burst, b.tokens+d.Seconds()*l.rate)
		b.last = now
	}
	ok = b.tokens >= 1
	if ok {
		b.tokens--
	}
	l.peers[peer] = b
	return ok
}

// prune forgets the peers whose buckets are full again at now.
func (l *limiter) prune(now time.Time) {
	for p, b := range l.peers {
		if b.tokens+now.Sub(b.last).Seconds()*l.rate >= l.burst {
			delete(l.peers, p)
		}
	}
}
