package main

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// TestFreshBatchNeverAnswersAnOlderRead checks freshBatch's promise: a
// caller's answer comes from a query that started after it called, while
// concurrent callers, asking for different keys, share queries.
func TestFreshBatchNeverAnswersAnOlderRead(t *testing.T) {
	var state, queries, maxKeys atomic.Int64 // state moves on; each query reports it as it starts
	b := newFreshBatch(func(_ context.Context, keys []int) (map[int]int64, error) {
		queries.Add(1)
		if n := int64(len(keys)); n > maxKeys.Load() {
			maxKeys.Store(n)
		}
		v := state.Load()
		time.Sleep(100 * time.Microsecond) // a query takes a while
		found := map[int]int64{}
		for _, k := range keys {
			if k >= 0 {
				found[k] = v
			}
		}
		return found, nil
	})
	const callers, calls = 16, 200
	var wg sync.WaitGroup
	for i := range callers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range calls {
				seen := state.Add(1) // a change this caller has seen committed
				got, ok, err := b.get(context.Background(), i)
				if err != nil || !ok || got < seen {
					t.Errorf("key %d: got %d, %t (err %v) after state %d was committed", i, got, ok, err, seen)
					return
				}
			}
		}()
	}
	wg.Wait()
	if n := queries.Load(); n >= callers*calls {
		t.Errorf("%d queries for %d calls: concurrent callers did not share", n, callers*calls)
	}
	if maxKeys.Load() < 2 {
		t.Error("no query read more than one key")
	}
	if _, ok, err := b.get(context.Background(), -1); ok || err != nil {
		t.Errorf("a key that does not exist: ok %t, err %v", ok, err)
	}
}

// TestFreshBatchCallerLeaving: a caller whose context ends returns at
// once, and the query it joined still answers the others.
func TestFreshBatchCallerLeaving(t *testing.T) {
	release := make(chan struct{})
	started := make(chan struct{}, 10)
	b := newFreshBatch(func(ctx context.Context, keys []string) (map[string]bool, error) {
		started <- struct{}{}
		<-release
		found := map[string]bool{}
		for _, k := range keys {
			found[k] = true
		}
		return found, ctx.Err()
	})
	// The first query blocks; two callers gather behind it.
	go b.get(context.Background(), "first")
	<-started
	ctx, cancel := context.WithCancel(context.Background())
	leaving := make(chan error, 1)
	go func() { _, _, err := b.get(ctx, "leaving"); leaving <- err }()
	staying := make(chan bool, 1)
	go func() { _, ok, _ := b.get(context.Background(), "staying"); staying <- ok }()
	time.Sleep(10 * time.Millisecond)
	cancel()
	if err := <-leaving; !errors.Is(err, context.Canceled) {
		t.Fatalf("the caller that left got %v", err)
	}
	close(release)
	if !<-staying {
		t.Fatal("the query the other caller joined did not answer it")
	}
}
