package gnb

import "sync"

// queue is a worker's unbounded job queue. The reader never blocks on it:
// a blocked reader could stop the AMF's writes, which could stop our
// workers' writes, a deadlock. Its length is bounded by the UEs' work in
// flight.
type queue struct {
	mu     sync.Mutex
	items  []job
	closed bool
	wake   chan struct{}
}

func newQueue() *queue { return &queue{wake: make(chan struct{}, 1)} }

// push appends j unless the queue is closed.
func (q *queue) push(j job) bool {
	q.mu.Lock()
	if q.closed {
		q.mu.Unlock()
		return false
	}
	q.items = append(q.items, j)
	q.mu.Unlock()
	q.signal()
	return true
}

func (q *queue) signal() {
	select {
	case q.wake <- struct{}{}:
	default:
	}
}

// close refuses further jobs; those queued are still taken.
func (q *queue) close() {
	q.mu.Lock()
	q.closed = true
	q.mu.Unlock()
	q.signal()
}

// take waits for jobs and returns them all, leaving spare as the new
// backing array; it returns false once the queue is closed and empty.
func (q *queue) take(spare []job) ([]job, bool) {
	for {
		q.mu.Lock()
		if len(q.items) > 0 {
			items := q.items
			q.items = spare[:0]
			q.mu.Unlock()
			return items, true
		}
		if q.closed {
			q.mu.Unlock()
			return nil, false
		}
		q.mu.Unlock()
		<-q.wake
	}
}
