package main

import (
	"context"
	"log/slog"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"time"
)

// counter counts every request the server receives. Counting is one
// atomic add to one of several padded shards, so that cores do not fight
// over one cache line; a background loop persists what was counted with
// one atomic UPDATE … RETURNING per interval, which also brings in what
// other processes sharing the database have persisted meanwhile.
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

	shards [counterShards]paddedInt64
	base   atomic.Int64

	mu        sync.Mutex // serialises flushes and resets
	persisted int64      // how much of local the database holds

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
	AddRequests(ctx context.Context, delta int64) (int64, error)
	ResetRequests(ctx context.Context) error
}

func newCounter(store counterStore, interval time.Duration, logger *slog.Logger) *counter {
	return &counter{store: store, interval: interval, logger: logger}
}

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
	total, err := c.store.AddRequests(ctx, 0)
	if err != nil {
		return err
	}
	c.persisted = c.local()
	c.base.Store(total - c.persisted)
	if c.interval > 0 {
		c.stop, c.done = make(chan struct{}), make(chan struct{})
		go c.loop()
	}
	return nil
}

func (c *counter) loop() {
	defer close(c.done)
	t := time.NewTicker(c.interval)
	defer t.Stop()
	for {
		select {
		case <-c.stop:
			return
		case <-t.C:
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			if err := c.flush(ctx); err != nil {
				// The count stays pending and goes with the next flush.
				c.logger.Warn("persist request count failed; will retry", "err", err)
			}
			cancel()
		}
	}
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
		if err == nil || ctx.Err() != nil {
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

// flush persists what was counted since the last flush. On failure
// nothing changes, so the same requests are persisted by a later flush,
// once.
func (c *counter) flush(ctx context.Context) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	local := c.local()
	total, err := c.store.AddRequests(ctx, local-c.persisted)
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
	if err := c.store.ResetRequests(ctx); err != nil {
		return err
	}
	// Requests counted from here on are the new count's.
	local := c.local()
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
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
	defer cancel()
	if err := c.flush(ctx); err != nil {
		c.logger.Warn("persist request count failed; will retry", "err", err)
	}
}
