package main

import (
	"context"
	"errors"
	"sync/atomic"
	"testing"
	"time"
)

// TestFlightGroup checks flightGroup's invariant: one call per key while
// it runs, shared by every caller; a caller that leaves does not fail the
// others; the last one to leave cancels the call.
func TestFlightGroup(t *testing.T) {
	var g flightGroup[int, string]
	release := make(chan struct{})
	cancelled := make(chan struct{})
	var calls atomic.Int64
	fn := func(ctx context.Context) (string, error) {
		calls.Add(1)
		select {
		case <-release:
			return "page", nil
		case <-ctx.Done():
			close(cancelled)
			return "", ctx.Err()
		}
	}
	waitFor := func(what string, cond func() bool) {
		t.Helper()
		for deadline := time.Now().Add(5 * time.Second); !cond(); time.Sleep(time.Millisecond) {
			if time.Now().After(deadline) {
				t.Fatalf("timed out waiting for %s", what)
			}
		}
	}

	// Three callers share one call; the first leaves early.
	firstCtx, leave := context.WithCancel(context.Background())
	results := make(chan string, 3)
	go func() {
		_, _, err := g.do(firstCtx, 1, time.Minute, fn)
		results <- "first: " + errString(err)
	}()
	waitFor("the first caller", func() bool { return g.waiting(1) == 1 })
	for range 2 {
		go func() {
			v, shared, err := g.do(context.Background(), 1, time.Minute, fn)
			if !shared {
				t.Errorf("a later caller started its own call")
			}
			results <- v + errString(err)
		}()
	}
	waitFor("all three callers", func() bool { return g.waiting(1) == 3 })
	leave()
	if got, want := <-results, "first: "+context.Canceled.Error(); got != want {
		t.Fatalf("first caller: got %q, want %q", got, want)
	}
	close(release)
	for range 2 {
		if got := <-results; got != "page" {
			t.Fatalf("waiting caller: got %q, want page", got)
		}
	}
	if got := calls.Load(); got != 1 {
		t.Fatalf("calls: got %d, want 1", got)
	}

	// A caller alone that leaves cancels the call, and the next caller
	// starts afresh.
	release = make(chan struct{})
	ctx, cancel := context.WithCancel(context.Background())
	go func() { time.Sleep(10 * time.Millisecond); cancel() }()
	if _, _, err := g.do(ctx, 2, time.Minute, fn); !errors.Is(err, context.Canceled) {
		t.Fatalf("lone caller: got %v, want context.Canceled", err)
	}
	select {
	case <-cancelled:
	case <-time.After(5 * time.Second):
		t.Fatal("the call went on after its last waiter left")
	}
	if got := g.waiting(2); got != 0 {
		t.Fatalf("waiting after the last left: got %d, want 0", got)
	}
}

func errString(err error) string {
	if err == nil {
		return ""
	}
	return err.Error()
}

// waiting returns how many callers wait on the call for key; 0 when none
// runs.
func (g *flightGroup[K, V]) waiting(key K) int {
	g.mu.Lock()
	defer g.mu.Unlock()
	if f, ok := g.calls[key]; ok {
		return f.waiters
	}
	return 0
}
