package main

import (
	"context"
	"sync"
	"time"
)

// freshBatch reads many keys in one query on behalf of concurrent callers,
// with freshRead's promise: every caller's answer comes from a query that
// started after it called. Callers that arrive while a query runs gather
// into the next one, which starts when the running one ends; so under load
// one query answers a crowd, and alone a caller waits for nobody.
//
// Why: on PostgreSQL every request reads its account (there is no change
// counter to cache it by), and one round trip per request made the
// database, not the service, the limit; on SQLite it turns the account
// cache's misses after a write into one statement instead of many.
type freshBatch[K comparable, V any] struct {
	// read returns the value of each key of keys that exists.
	read func(ctx context.Context, keys []K) (map[K]V, error)

	mu      sync.Mutex
	running bool
	next    *batchCall[K, V] // gathering, to start when the running one ends
}

// batchCall is one query that several callers share.
type batchCall[K comparable, V any] struct {
	keys  map[K]bool
	done  chan struct{} // closed when found and err are set
	found map[K]V
	err   error
}

// batchTimeout bounds one shared query: it runs on no caller's context,
// since a caller that leaves must not fail the others.
const batchTimeout = 5 * time.Second

func newFreshBatch[K comparable, V any](read func(context.Context, []K) (map[K]V, error)) *freshBatch[K, V] {
	return &freshBatch[K, V]{read: read}
}

// get returns key's value from a query that started after get was called;
// ok is false when the key does not exist.
func (b *freshBatch[K, V]) get(ctx context.Context, key K) (v V, ok bool, err error) {
	b.mu.Lock()
	c := b.next
	if c == nil {
		c = &batchCall[K, V]{keys: map[K]bool{}, done: make(chan struct{})}
		b.next = c
	}
	c.keys[key] = true
	if !b.running {
		b.running = true
		go b.loop()
	}
	b.mu.Unlock()
	select {
	case <-c.done:
		v, ok = c.found[key]
		return v, ok, c.err
	case <-ctx.Done():
		return v, false, ctx.Err()
	}
}

// loop runs the gathered queries one after another until none is waiting.
func (b *freshBatch[K, V]) loop() {
	for {
		b.mu.Lock()
		c := b.next
		b.next = nil
		if c == nil {
			b.running = false
			b.mu.Unlock()
			return
		}
		b.mu.Unlock()
		keys := make([]K, 0, len(c.keys))
		for k := range c.keys {
			keys = append(keys, k)
		}
		ctx, cancel := context.WithTimeout(context.Background(), batchTimeout)
		c.found, c.err = b.read(ctx, keys)
		cancel()
		close(c.done)
	}
}
