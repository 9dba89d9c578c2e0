package main

import (
	"context"
	"log/slog"
	"net/http"
	"strconv"
	"sync"
	"sync/atomic"
	"time"
)

// counter counts every request the server receives. Counting is one
// atomic add; a background loop persists what was counted with one atomic
// UPDATE … RETURNING per interval, which also brings in what other
// processes sharing the database have persisted meanwhile.
//
// The invariant, kept under mu: shown = persisted + pending, where
// persisted is the database total as of the last flush and pending is
// what this process counted since. So this process's answer is always
// exact for its own requests, and other processes' requests show up
// within one interval of their flush.
type counter struct {
	store    counterStore
	interval time.Duration // 0: persist on every request
	logger   *slog.Logger

	shown atomic.Int64

	mu        sync.Mutex // serialises flushes and resets
	persisted int64

	stop chan struct{}
	done chan struct{}
}

// counterStore persists the count; Store implements it.
type counterStore interface {
	AddRequests(ctx context.Context, delta int64) (int64, error)
	ResetRequests(ctx context.Context) error
}

func newCounter(store counterStore, interval time.Duration, logger *slog.Logger) *counter {
	return &counter{store: store, interval: interval, logger: logger}
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
	c.persisted = total
	c.shown.Store(total)
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

// flush persists the pending count. On failure nothing changes, so the
// same requests are persisted by a later flush, once.
func (c *counter) flush(ctx context.Context) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	pending := c.shown.Load() - c.persisted
	total, err := c.store.AddRequests(ctx, pending)
	if err != nil {
		return err
	}
	// total = persisted + pending + what others persisted (less what a
	// reset elsewhere removed): only that last part is new to shown.
	c.shown.Add(total - c.persisted - pending)
	c.persisted = total
	return nil
}

// Count returns the number of requests: all persisted ones plus this
// process's pending ones.
func (c *counter) Count() int64 { return c.shown.Load() }

// Reset sets the count to zero everywhere. This process's pending count
// is dropped with it; other processes' pending counts are added when they
// next flush, since those requests were not yet persisted.
func (c *counter) Reset(ctx context.Context) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if err := c.store.ResetRequests(ctx); err != nil {
		return err
	}
	// Requests that arrive meanwhile stay in shown - persisted, as pending.
	c.shown.Add(-c.shown.Load())
	c.persisted = 0
	return nil
}

// middleware counts each request as it arrives, before anything else
// can answer it.
func (c *counter) middleware(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c.shown.Add(1)
		if c.interval == 0 {
			if err := c.flush(r.Context()); err != nil {
				c.logger.Warn("persist request count failed; will retry", "err", err)
			}
		}
		next.ServeHTTP(w, r)
	})
}

// handleRequestCount serves GET /request-count/.
func (s *server) handleRequestCount(w http.ResponseWriter, r *http.Request, _ int64) error {
	b := make([]byte, 0, 32)
	b = append(b, `{"requests":`...)
	b = strconv.AppendInt(b, s.counter.Count(), 10)
	b = append(b, '}')
	return writeJSON(w, http.StatusOK, b)
}

// handleRequestCountReset serves POST /request-count/reset/.
func (s *server) handleRequestCountReset(w http.ResponseWriter, r *http.Request, _ int64) error {
	if err := s.counter.Reset(r.Context()); err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, []byte(`{"message":"request count reset successfully"}`))
}
