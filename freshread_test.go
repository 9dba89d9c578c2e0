package main

import (
	"context"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// TestFreshReadNeverAnswersAnOlderRead checks freshRead's promise: a
// caller's answer comes from a read that started after it called, while
// concurrent callers share reads.
func TestFreshReadNeverAnswersAnOlderRead(t *testing.T) {
	var state, reads atomic.Int64 // state moves on; each read reports it as it starts
	f := newFreshRead(func(context.Context) (int64, error) {
		reads.Add(1)
		v := state.Load()
		time.Sleep(100 * time.Microsecond) // a read takes a while
		return v, nil
	})
	const callers, calls = 16, 200
	var wg sync.WaitGroup
	for range callers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range calls {
				seen := state.Add(1) // a change this caller has seen committed
				got, err := f.get(context.Background())
				if err != nil || got < seen {
					t.Errorf("got %d (err %v) after state %d was committed", got, err, seen)
					return
				}
			}
		}()
	}
	wg.Wait()
	if n := reads.Load(); n >= callers*calls {
		t.Errorf("%d reads for %d calls: concurrent callers did not share", n, callers*calls)
	}
}
