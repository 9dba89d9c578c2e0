package main

import (
	"context"
	"sync"
)

// freshRead shares one read among concurrent callers, with one promise:
// every caller gets the result of a read that started after it called.
// So a caller never sees a value older than a change that finished before
// it asked, yet under load one read serves many callers. At most one read
// runs at a time; a caller that arrives while one runs queues a next read,
// which every later caller joins, and which starts when the running one
// ends.
//
// x/sync/singleflight does not fit: it hands a caller the result of a
// call already in flight, which may have started before the caller asked
// and so may miss a change the caller has already seen committed.
type freshRead[T any] struct {
	read func(ctx context.Context) (T, error)

	mu      sync.Mutex
	running *freshCall[T] // the read in progress
	next    *freshCall[T] // the read queued to start when running ends
}

// freshCall is one read that several callers share.
type freshCall[T any] struct {
	done chan struct{} // closed when v and err are set
	v    T
	err  error
}

func newFreshRead[T any](read func(ctx context.Context) (T, error)) *freshRead[T] {
	return &freshRead[T]{read: read}
}

// get returns the result of a read that started after get was called.
// The read runs on the context of the caller that starts it.
func (f *freshRead[T]) get(ctx context.Context) (T, error) {
	f.mu.Lock()
	if c := f.next; c != nil {
		// Queued to start after the running read: it starts after this
		// call, so its answer will do.
		f.mu.Unlock()
		<-c.done
		return c.v, c.err
	}
	c := &freshCall[T]{done: make(chan struct{})}
	if prev := f.running; prev != nil {
		// The running read may have started before this call: queue a
		// new one, which later callers join, and run it when prev ends.
		f.next = c
		f.mu.Unlock()
		<-prev.done
		f.mu.Lock()
		f.next = nil
	}
	f.running = c
	f.mu.Unlock()

	c.v, c.err = f.read(ctx)

	f.mu.Lock()
	f.running = nil
	f.mu.Unlock()
	close(c.done)
	return c.v, c.err
}
