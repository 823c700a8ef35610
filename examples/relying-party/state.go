package main

import (
	"errors"
	"sync"
	"time"
)

// errTableFull: an expiring table holds its maximum of live entries.
var errTableFull = errors.New("too many live entries; try again later")

// pruneEvery is the least time between two sweeps of expired entries.
const pruneEvery = time.Minute

// table is an in-memory map of entries that expire. Expired entries are
// invisible at once and swept out on a later insert; no goroutine is
// involved. It is safe for concurrent use.
type table[T any] struct {
	mu        sync.Mutex
	m         map[string]expiring[T]
	limit     int
	lastPrune time.Time
}

type expiring[T any] struct {
	v   T
	exp time.Time
}

func newTable[T any](limit int) *table[T] {
	return &table[T]{m: map[string]expiring[T]{}, limit: limit}
}

// add stores v under key until exp unless a live entry has the key; it
// reports whether v was stored.
func (t *table[T]) add(key string, v T, exp, now time.Time) (bool, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if e, ok := t.m[key]; ok && now.Before(e.exp) {
		return false, nil
	}
	if now.Sub(t.lastPrune) >= pruneEvery || len(t.m) >= t.limit {
		t.prune(now)
	}
	if len(t.m) >= t.limit {
		return false, errTableFull
	}
	t.m[key] = expiring[T]{v, exp}
	return true, nil
}

func (t *table[T]) prune(now time.Time) {
	for k, e := range t.m {
		if !now.Before(e.exp) {
			delete(t.m, k)
		}
	}
	t.lastPrune = now
}

// get returns the live entry under key.
func (t *table[T]) get(key string, now time.Time) (T, time.Time, bool) {
	t.mu.Lock()
	defer t.mu.Unlock()
	e, ok := t.m[key]
	if !ok || !now.Before(e.exp) {
		var zero T
		return zero, time.Time{}, false
	}
	return e.v, e.exp, true
}

// take removes the entry under key and returns it if it was live: of two
// concurrent takes, one wins.
func (t *table[T]) take(key string, now time.Time) (T, bool) {
	t.mu.Lock()
	defer t.mu.Unlock()
	e, ok := t.m[key]
	delete(t.m, key)
	if !ok || !now.Before(e.exp) {
		var zero T
		return zero, false
	}
	return e.v, true
}

// remove deletes key.
func (t *table[T]) remove(key string) {
	t.mu.Lock()
	delete(t.m, key)
	t.mu.Unlock()
}

// size is the number of stored entries, expired ones not yet swept included.
func (t *table[T]) size() int {
	t.mu.Lock()
	defer t.mu.Unlock()
	return len(t.m)
}
