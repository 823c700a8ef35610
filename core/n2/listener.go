package n2

import (
	"context"
	"fmt"
	"net"
	"sync"
)

// listenerBase is what both listeners (kernel and UDP) keep of their
// associations: the queue Accept reads, the set Close closes, and the tie
// to the caller's context.
type listenerBase[C interface {
	comparable
	Conn
}] struct {
	ctx      context.Context // cancelled by Close
	cancel   context.CancelFunc
	stopMu   sync.Mutex  // guards stop: ctx may fire while Listen sets it
	stop     func() bool // detaches Close from the caller's ctx
	accepted chan C

	mu     sync.Mutex
	conns  map[C]struct{}
	closed bool
}

func (b *listenerBase[C]) init() {
	b.ctx, b.cancel = context.WithCancel(context.Background())
	b.accepted = make(chan C, 64)
	b.conns = map[C]struct{}{}
}

// closeWith makes the end of ctx call closeFn (the listener's Close).
func (b *listenerBase[C]) closeWith(ctx context.Context, closeFn func()) {
	b.stopMu.Lock()
	b.stop = context.AfterFunc(ctx, closeFn)
	b.stopMu.Unlock()
}

// track adds c to the set Close closes; false once the listener is closed.
func (b *listenerBase[C]) track(c C) bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.closed {
		return false
	}
	b.conns[c] = struct{}{}
	return true
}

func (b *listenerBase[C]) untrack(c C) {
	b.mu.Lock()
	delete(b.conns, c)
	b.mu.Unlock()
}

// offer queues a tracked association for Accept; on Close, Close closes it.
func (b *listenerBase[C]) offer(c C) {
	select {
	case b.accepted <- c:
	case <-b.ctx.Done():
	}
}

func (b *listenerBase[C]) Accept(ctx context.Context) (Conn, error) {
	select {
	case c := <-b.accepted:
		return c, nil
	case <-ctx.Done():
		return nil, fmt.Errorf("n2: accept: %w", ctx.Err())
	case <-b.ctx.Done():
		return nil, fmt.Errorf("n2: accept: %w", net.ErrClosed)
	}
}

// shut detaches from the caller's context and cancels the listener's own.
func (b *listenerBase[C]) shut() {
	b.stopMu.Lock()
	if b.stop != nil {
		b.stop()
	}
	b.stopMu.Unlock()
	b.cancel()
}

// drain marks the listener closed and returns the associations to close.
func (b *listenerBase[C]) drain() []C {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.closed = true
	conns := make([]C, 0, len(b.conns))
	for c := range b.conns {
		conns = append(conns, c)
	}
	return conns
}
