package ran

import (
	"context"
	"time"
)

// bucket is a token bucket (rate tokens per second, at most burst stored):
// each registration takes a token, so starts are paced at the rate with
// bursts of at most burst after a pause. It belongs to one goroutine.
type bucket struct {
	rate   float64 // tokens per second; 0 means unlimited
	burst  float64
	tokens float64
	last   time.Time
}

func newBucket(rate float64, burst int, now time.Time) *bucket {
	b := float64(max(burst, 1))
	// Timers wake late by up to a few hundred microseconds; a bucket that
	// holds at least minWindow of tokens keeps that lateness as credit
	// instead of losing it, so high rates are met.
	b = max(b, rate*minWindow.Seconds())
	return &bucket{rate: rate, burst: b, tokens: b, last: now}
}

// minWindow is the least time's worth of tokens the bucket holds.
const minWindow = 5 * time.Millisecond

// reserve takes a token at time now and says how long to wait until it may
// be used (0 if at once).
func (b *bucket) reserve(now time.Time) time.Duration {
	if b.rate <= 0 {
		return 0
	}
	if el := now.Sub(b.last); el > 0 {
		b.tokens = min(b.burst, b.tokens+el.Seconds()*b.rate)
		b.last = now
	}
	b.tokens--
	if b.tokens >= 0 {
		return 0
	}
	return time.Duration(-b.tokens / b.rate * float64(time.Second))
}

// wait takes a token, sleeping until it is due or ctx ends.
func (b *bucket) wait(ctx context.Context) error {
	d := b.reserve(time.Now())
	if d <= 0 {
		return ctx.Err()
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}
