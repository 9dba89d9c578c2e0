package main

import (
	"context"
	"sync"
	"time"
)

// flightGroup lets concurrent callers that ask for the same key share one
// call. Its invariant: while a call for a key runs, every caller asking
// for that key waits on it rather than starting another; the call runs on
// a context of its own, detached from the caller that started it, so that
// a caller who leaves never fails the others; each caller returns as soon
// as its own context ends; and when the last waiter has left, the call is
// cancelled and forgotten, so nobody pays for work nobody wants and the
// next caller starts afresh. A call never outlives its budget.
//
// x/sync/singleflight does not fit: its call runs on the first caller's
// context (cancelled with that caller, failing everyone) or on none (never
// cancelled, even when every caller has gone), and it cannot tell when
// the last waiter leaves.
type flightGroup[K comparable, V any] struct {
	mu    sync.Mutex
	calls map[K]*flight[V]
}

// flight is one shared call.
type flight[V any] struct {
	done    chan struct{} // closed when v and err are set
	v       V
	err     error
	waiters int                // callers still waiting; guarded by flightGroup.mu
	cancel  context.CancelFunc // ends the call
}

// do returns the result of fn for key, sharing a call already running for
// key. shared reports whether this caller joined a call another started.
// When ctx ends first, do returns ctx's error at once.
func (g *flightGroup[K, V]) do(ctx context.Context, key K, budget time.Duration, fn func(ctx context.Context) (V, error)) (v V, shared bool, err error) {
	g.mu.Lock()
	if g.calls == nil {
		g.calls = map[K]*flight[V]{}
	}
	f, shared := g.calls[key]
	if !shared {
		// WithoutCancel keeps the first caller's values (its request ID)
		// but not its cancellation.
		callCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), budget)
		f = &flight[V]{done: make(chan struct{}), cancel: cancel}
		g.calls[key] = f
		go g.run(callCtx, key, f, fn)
	}
	f.waiters++
	g.mu.Unlock()

	select {
	case <-f.done:
		return f.v, shared, f.err
	case <-ctx.Done():
		g.leave(key, f)
		return v, shared, ctx.Err()
	}
}

// leave takes one waiter off f; the last one cancels and forgets it.
func (g *flightGroup[K, V]) leave(key K, f *flight[V]) {
	g.mu.Lock()
	defer g.mu.Unlock()
	f.waiters--
	if f.waiters == 0 {
		f.cancel()
		g.forget(key, f)
	}
}

// forget removes f from the running calls, unless a newer call for key
// has already replaced it. g.mu must be held.
func (g *flightGroup[K, V]) forget(key K, f *flight[V]) {
	if g.calls[key] == f {
		delete(g.calls, key)
	}
}

// run makes the call and hands its result to every waiter.
func (g *flightGroup[K, V]) run(ctx context.Context, key K, f *flight[V], fn func(ctx context.Context) (V, error)) {
	defer f.cancel()
	v, err := fn(ctx)
	g.mu.Lock()
	g.forget(key, f)
	g.mu.Unlock()
	f.v, f.err = v, err
	close(f.done)
}
