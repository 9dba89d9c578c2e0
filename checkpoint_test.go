package main

import (
	"context"
	"encoding/binary"
	"fmt"
	"io"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// TestCheckpointerKeepsTheWALSmall: the writer leaves checkpoints to the
// checkpointer, which keeps the WAL file to about what is written between
// two of its runs, well under the writer's own limit.
func TestCheckpointerKeepsTheWALSmall(t *testing.T) {
	ctx := context.Background()
	s := openTestStore(t, sqliteBackend)
	path := s.db.filePath
	_, u := newAccount(t, s, s, "walker")
	big := make([]movie, 100)
	for i := range big {
		big[i] = newMovie("Drama")
		big[i].Description = strings.Repeat("d", 4000)
	}
	const pageSize = 4096
	var written int64
	for round := range 10 {
		for range 5 { // about 500 pages a round
			c := collection{UUID: newUUID(), Title: "big", Movies: big}
			if _, err := s.CreateCollection(ctx, u.id, c, countGenres(c.Movies)); err != nil {
				t.Fatal(err)
			}
			written += 100 * 4000
		}
		// Give the checkpointer a run between rounds.
		time.Sleep(checkpointEvery + 100*time.Millisecond)
		fi, err := os.Stat(path + "-wal")
		if err != nil {
			t.Fatal(err)
		}
		if limit := int64(writerCheckpointPages) * pageSize; fi.Size() >= limit {
			t.Fatalf("round %d: WAL of %d bytes: the writer's own limit was reached", round, fi.Size())
		}
		if fi.Size() > 3*written/int64(round+1) {
			t.Fatalf("round %d: WAL of %d bytes after %d written in all: no checkpoint between rounds", round, fi.Size(), written)
		}
	}
}

// TestCheckpointerRestartsTheWALUnderSteadyWrites: with writes queued
// back to back, so that the writer never waits for one, a checkpointer's
// run over a WAL of restartFrames or more still has the WAL start over
// (its header's checkpoint sequence number moves on) at the next write.
// Otherwise it would grow to the writer's own limit, where the writer
// holds every write up while it checkpoints. A run may miss, as its
// design allows: a reader's snapshot stops its second copy short, or the
// last copy takes longer than holdAtMost on a busy machine; the next run
// (250 ms later in the service) tries again. So each round allows a few.
func TestCheckpointerRestartsTheWALUnderSteadyWrites(t *testing.T) {
	ctx := context.Background()
	s := openTestStore(t, sqliteBackend)
	path := s.db.filePath
	// The test runs the checkpointer itself.
	s.db.checkpointer.close()
	s.db.checkpointer = nil
	c := &checkpointer{db: s.db.checkpoints, writer: s.db.writer}

	movies := make([]movie, 10)
	for i := range movies {
		movies[i] = newMovie("Drama")
		movies[i].Description = strings.Repeat("d", 200)
	}
	stop := make(chan struct{})
	var wg sync.WaitGroup
	var writes atomic.Int64
	errs := make(chan error, 16)
	for i := range 16 {
		_, u := newAccount(t, s, s, fmt.Sprintf("steady%d", i))
		wg.Go(func() {
			for {
				select {
				case <-stop:
					return
				default:
				}
				c := collection{UUID: newTimeUUID(time.Now()), Title: "steady", Movies: movies}
				if _, err := s.CreateCollection(ctx, u.id, c, countGenres(c.Movies)); err != nil {
					errs <- err
					return
				}
				// Deleted again, to stay within the per-user limit.
				if _, err := s.DeleteCollection(ctx, u.id, c.UUID); err != nil {
					errs <- err
					return
				}
				writes.Add(2)
			}
		})
	}
	defer func() {
		close(stop)
		wg.Wait()
		close(errs)
		for err := range errs {
			t.Error(err)
		}
	}()

	// sequence reads the WAL header's checkpoint sequence number.
	sequence := func() uint32 {
		f, err := os.Open(path + "-wal")
		if err != nil {
			t.Fatal(err)
		}
		defer f.Close()
		var hdr [16]byte
		if _, err := io.ReadFull(f, hdr[:]); err != nil {
			t.Fatal(err)
		}
		return binary.BigEndian.Uint32(hdr[12:])
	}
	for round := range 3 {
		// Copy back as the WAL grows, until it is long enough.
		for {
			frames, _, err := c.checkpoint(ctx)
			if err != nil {
				t.Fatal(err)
			}
			if frames >= restartFrames {
				break
			}
			time.Sleep(10 * time.Millisecond)
		}
		before := sequence()
		const runs = 5
		for run := 1; ; run++ {
			c.run(ctx)
			// Let every writer have a write through, then look.
			for n := writes.Load() + 32; writes.Load() < n && len(errs) == 0; {
				time.Sleep(time.Millisecond)
			}
			if sequence() != before {
				break
			}
			if run == runs {
				t.Fatalf("round %d: the WAL did not start over after %d checkpointer runs under steady writes (sequence %d)", round, runs, before)
			}
		}
	}
}
