package main

import (
	"context"
	"errors"
	"log/slog"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"time"
)

// counter counts every request the server receives. Counting is one
// atomic add to one of several padded shards, so that cores do not fight
// over one cache line; a background loop persists what was counted with
// one short transaction per interval (see Store.SyncRequests), which also
// brings in what other processes sharing the database have persisted
// meanwhile.
//
// Count = base + local, where local is every request this process has
// counted (the shards' sum) and base is kept, under mu, to the database's
// total less what of local it holds. Only other processes' requests and
// resets change base, so this process's own requests are always counted
// exactly; other processes' show up within one interval of their flush.
type counter struct {
	store    counterStore
	interval time.Duration // 0: persist on every request
	logger   *slog.Logger
	// process names this process's share of the persisted count.
	process string
	metrics *metrics

	shards [counterShards]paddedInt64
	base   atomic.Int64

	mu        sync.Mutex // serialises flushes and resets
	persisted int64      // how much of local the database holds

	// writeThrough shares flushes between requests when every request
	// persists its count (interval 0): each waits for a flush that began
	// after it was counted, so its count is persisted when it goes on, yet
	// a slow database queues one flush, not one per request.
	writeThrough *freshRead[struct{}]

	stop chan struct{}
	done chan struct{}
}

// counterShards is a power of two comfortably above the core counts the
// service runs on; more only makes reads slower.
const counterShards = 16

// paddedInt64 fills a cache line, so that shards do not share one.
type paddedInt64 struct {
	atomic.Int64
	_ [56]byte
}

// counterStore persists the count; Store implements it.
type counterStore interface {
	SyncRequests(ctx context.Context, process string, total int64) (int64, error)
	ResetRequests(ctx context.Context, process string, total int64) error
	ForgetRequestShare(ctx context.Context, process string) error
}

func newCounter(store counterStore, interval time.Duration, logger *slog.Logger) *counter {
	c := &counter{store: store, interval: interval, logger: logger, process: newUUID(), metrics: noMetrics}
	c.writeThrough = newFreshRead(func(ctx context.Context) (struct{}, error) { return struct{}{}, c.flush(ctx) })
	return c
}

// writeThroughTimeout bounds how long a request waits for the flush of
// its count when every request persists it: past that, the count stays
// pending for the next flush, and the request goes on.
const writeThroughTimeout = time.Second

// add counts one request.
func (c *counter) add() {
	c.shards[rand.Uint32()%counterShards].Add(1)
}

// local is every request this process has counted.
func (c *counter) local() int64 {
	var n int64
	for i := range c.shards {
		n += c.shards[i].Load()
	}
	return n
}

// Start loads the persisted count and, unless every request persists its
// own count, starts the background flushes.
func (c *counter) Start(ctx context.Context) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.persisted = c.local()
	total, err := c.store.SyncRequests(ctx, c.process, c.persisted)
	if err != nil {
		return err
	}
	c.base.Store(total - c.persisted)
	if c.interval > 0 {
		c.stop, c.done = make(chan struct{}), make(chan struct{})
		go c.loop()
	}
	return nil
}

func (c *counter) loop() {
	defer close(c.done)
	every(c.interval, c.stop, func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if err := c.flush(ctx); err != nil {
			// The count stays pending and goes with the next flush.
			c.metrics.flushFailures.Inc()
			c.logger.Warn("persist request count failed; will retry", "err", err)
		}
	})
}

// Stop ends the background flushes and persists what is pending, retrying
// until ctx ends.
func (c *counter) Stop(ctx context.Context) error {
	if c.stop != nil {
		close(c.stop)
		<-c.done
		c.stop = nil
	}
	for {
		err := c.flush(ctx)
		if err == nil {
			// The share is no longer needed: every request it held is in
			// the count. Left behind, it would only take a row.
			if ferr := c.store.ForgetRequestShare(ctx, c.process); ferr != nil {
				c.logger.Warn("forget request share failed", "err", ferr)
			}
			return nil
		}
		if ctx.Err() != nil || errors.Is(err, errDatabaseGone) {
			return err
		}
		c.logger.Warn("persist request count failed; retrying", "err", err)
		select {
		case <-ctx.Done():
			return err
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// flush persists what was counted since the last flush. It sends this
// process's whole total, which the store makes idempotent: a flush whose
// outcome is unknown (an error after COMMIT was sent) is simply sent again
// with a larger total by a later flush, and nothing is counted twice.
func (c *counter) flush(ctx context.Context) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	local := c.local()
	total, err := c.store.SyncRequests(ctx, c.process, local)
	if err != nil {
		return err
	}
	c.persisted = local
	c.base.Store(total - local)
	return nil
}

// Count returns the number of requests: all persisted ones plus this
// process's pending ones.
func (c *counter) Count() int64 { return c.base.Load() + c.local() }

// Reset sets the count to zero everywhere. This process's pending count
// is dropped with it; other processes' pending counts are added when they
// next flush, since those requests were not yet persisted.
func (c *counter) Reset(ctx context.Context) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	// Requests counted from here on are the new count's.
	local := c.local()
	if err := c.store.ResetRequests(ctx, c.process, local); err != nil {
		return err
	}
	c.persisted = local
	c.base.Store(-local)
	return nil
}

// countRequest counts one request. With no persistence interval it also
// writes the count through before the request goes on.
func (c *counter) countRequest(ctx context.Context) {
	c.add()
	if c.interval > 0 {
		return
	}
	// Not cancelled by a client that hangs up: a commit cut short could
	// leave it unknown whether the count was written.
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), writeThroughTimeout)
	defer cancel()
	if _, err := c.writeThrough.get(ctx); err != nil {
		c.metrics.flushFailures.Inc()
		c.logger.WarnContext(ctx, "persist request count failed; will retry", "err", err)
	}
}
