package main

import (
	"context"
	"errors"
	"path/filepath"
	"strconv"
	"sync"
	"sync/atomic"
	"syscall"
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

// BenchmarkCreateCollections: creates of 10 movies each by 64 concurrent
// callers for 300 users on SQLite, through the group-commit writer, as
// POST /collection/ makes them: the writer's cost per create, without
// HTTP.
func BenchmarkCreateCollections(b *testing.B) {
	ctx := context.Background()
	s, err := openStore(ctx, filepath.Join(b.TempDir(), "bench.db"), poolConfig{})
	if err != nil {
		b.Fatal(err)
	}
	defer s.Close()
	users := make([]int64, 300)
	for i := range users {
		uuid, err := s.CreateUser(ctx, "user"+strconv.Itoa(i), "hash")
		if err != nil {
			b.Fatal(err)
		}
		a, err := s.Account(ctx, uuid)
		if err != nil {
			b.Fatal(err)
		}
		users[i] = a.id
	}
	movies := make([]movie, 10)
	for i := range movies {
		movies[i] = newMovie("Drama,Comedy")
		movies[i].Description = "A film about evening shadows, told in a couple of sentences as the catalogue does."
	}
	counts := countGenres(movies)
	var n atomic.Int64
	b.SetParallelism(32) // 64 callers on 2 cores
	cpu0 := processCPU(b)
	b.ResetTimer()
	defer func() { b.ReportMetric(float64(processCPU(b)-cpu0)/float64(b.N), "cpu-ns/op") }()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			i := n.Add(1)
			c := collection{UUID: newTimeUUID(time.Now()), Title: "Salt night", Movies: movies}
			if _, err := s.CreateCollection(ctx, users[i%int64(len(users))], c, counts); err != nil {
				b.Error(err)
				return
			}
		}
	})
}

// processCPU is the CPU time the process has used so far, user and
// system: a benchmark's cost that waiting on the disk does not inflate.
func processCPU(b *testing.B) time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		b.Fatal(err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
