package main

import (
	"context"
	"errors"
	"path/filepath"
	"strconv"
	"sync"
	"testing"
	"time"
)

// TestGroupCommit checks groupCommit's invariant on a real SQLite file:
// concurrent writes share transactions, yet each caller gets its own
// outcome; a failing write fails alone and leaves no trace; a write whose
// caller has gone before it starts is not run.
func TestGroupCommit(t *testing.T) {
	s, err := openStore(context.Background(), filepath.Join(t.TempDir(), "test.db"), poolConfig{})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	const writers = 200
	errBad := errors.New("this write fails")
	var wg sync.WaitGroup
	results := make([]error, writers)
	for i := range writers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			results[i] = s.db.withTx(context.Background(), func(tx *writeTx) error {
				if err := tx.exec(qInsertUser, newUUID(), "user"+strconv.Itoa(i), "hash"); err != nil {
					return err
				}
				if i%3 == 0 {
					return errBad // after its insert: the insert must go too
				}
				return nil
			})
		}()
	}
	wg.Wait()
	want := 0
	for i, err := range results {
		switch {
		case i%3 == 0 && !errors.Is(err, errBad):
			t.Errorf("write %d: got %v, want its own error", i, err)
		case i%3 != 0 && err != nil:
			t.Errorf("write %d: got %v, want success", i, err)
		case i%3 != 0:
			want++
		}
	}
	var got int
	s.db.read.QueryRow(`SELECT count(*) FROM users`).Scan(&got)
	if got != want {
		t.Fatalf("users stored: got %d, want %d (failed writes must leave nothing)", got, want)
	}

	// A caller gone before its write starts: not run.
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	ran := false
	if err := s.db.withTx(ctx, func(*writeTx) error { ran = true; return nil }); !errors.Is(err, context.Canceled) || ran {
		t.Fatalf("cancelled write: ran %v, err %v", ran, err)
	}
}

// TestGroupCommitHold: while a hold's function runs, no write of the
// process commits; the writes queued meanwhile go through once it
// returns; once the writer has stopped, hold runs nothing.
func TestGroupCommitHold(t *testing.T) {
	s, err := openStore(context.Background(), filepath.Join(t.TempDir(), "test.db"), poolConfig{})
	if err != nil {
		t.Fatal(err)
	}
	g := s.db.writer
	done := make(chan error, 1)
	ok := g.hold(func() {
		go func() {
			done <- s.db.withTx(context.Background(), func(tx *writeTx) error {
				return tx.exec(qInsertUser, newUUID(), "held", "hash")
			})
		}()
		select {
		case err := <-done:
			t.Fatalf("a write went through during a hold: %v", err)
		case <-time.After(50 * time.Millisecond):
		}
	})
	if !ok {
		t.Fatal("hold on a running writer ran nothing")
	}
	if err := <-done; err != nil {
		t.Fatalf("the write queued during the hold: %v", err)
	}
	s.Close()
	if g.hold(func() { t.Error("hold ran its function on a stopped writer") }) {
		t.Error("hold on a stopped writer reported true")
	}
}
