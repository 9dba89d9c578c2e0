package main

import (
	"context"
	"database/sql"
	"time"
)

// checkpointer copies a SQLite file's WAL back into the database in the
// background, on a connection of its own, so that the writer does not.
// SQLite's default has the committing connection do it whenever the WAL
// passes 1,000 pages: under a crowd of writes that is many times a
// second, each time holding up every write behind it. (The commit after
// each then restarts the WAL; ownCommits knows that move as its own.) A
// PASSIVE checkpoint takes no lock that writers or readers wait on (the
// writer waits only for the held copy described below); the writer keeps
// a far higher limit of its own (writerCheckpointPages) in case this one
// cannot keep up.
//
// The WAL starts over from its beginning only at a write that finds all
// of it copied back, and under a steady stream of writes there is none:
// a checkpoint copies what the WAL held when it began, and by its end the
// writer has added more. Left at that, the WAL grows to the writer's
// limit, and the writer's own checkpoint holds every write up for the
// copy of the last stretch and two fsyncs, 40 to 60 ms twice a second
// under a crowd of creates. So once the WAL is past restartFrames, a run
// copies again (only what the first copy let through), then copies the
// little that is left with the writer held between two batches: a few
// ms, never more than holdAtMost, after which the writer's next batch
// starts the WAL over. It does not hold the writer when a reader's
// snapshot stopped the second copy short (the WAL could not start over
// anyway), nor when the writer has committed nothing since its last run.
type checkpointer struct {
	db *sql.DB
	// writer is held for the last copy; nil: never held.
	writer *groupCommit
	// batches is how many batches the writer had committed at the
	// last run.
	batches uint64
	stop    chan struct{}
	done    chan struct{}
}

const (
	// checkpointEvery is how often the WAL is copied back: at most that
	// many WAL restarts a second, and a WAL of what that time's writes add.
	// Each copy syncs the WAL and the database file, and under a crowd of
	// creates the kernel's work for those syncs was a tenth of the
	// service's CPU at 100 ms: at 250 ms, a create costs 8% less CPU (and
	// a page changed again within the time is copied once), while at 500
	// ms the longer last copy, with the writer held, showed in the p99.
	checkpointEvery = 250 * time.Millisecond
	// restartFrames is the WAL length, in frames (a page each), from
	// which a checkpointer's run ends with the writer held, so that the
	// WAL starts over: SQLite's own default checkpoint size.
	restartFrames = 1000
	// holdAtMost bounds the copy the writer is held for: on a disk so
	// slow that it does not end sooner, the WAL grows to the writer's
	// own limit instead, as it did before the hold.
	holdAtMost = 50 * time.Millisecond
	// writerCheckpointPages is the WAL size (in pages) at which the
	// writer checkpoints itself, as SQLite does by default at 1,000.
	writerCheckpointPages = 20_000
)

func startCheckpointer(db *sql.DB, writer *groupCommit, every time.Duration) *checkpointer {
	c := &checkpointer{db: db, writer: writer, stop: make(chan struct{}), done: make(chan struct{})}
	go c.loop(every)
	return c
}

func (c *checkpointer) loop(interval time.Duration) {
	defer close(c.done)
	every(interval, c.stop, func() {
		// A failure (the file gone, say) is seen by the requests and
		// readiness; the next run tries again.
		ctx, cancel := context.WithTimeout(context.Background(), 10*interval)
		defer cancel()
		c.run(ctx)
	})
}

// run copies the WAL back, and has it start over once it is long.
func (c *checkpointer) run(ctx context.Context) {
	frames, _, err := c.checkpoint(ctx)
	if err != nil || c.writer == nil || frames < restartFrames {
		return
	}
	// An idle writer's next write starts the WAL over by itself.
	batches := c.writer.batches.Load()
	if batches == c.batches {
		return
	}
	c.batches = batches
	frames, copied, err := c.checkpoint(ctx)
	if err != nil || copied < frames {
		return
	}
	c.writer.hold(func() {
		ctx, cancel := context.WithTimeout(ctx, holdAtMost)
		defer cancel()
		c.checkpoint(ctx)
	})
}

// checkpoint runs a PASSIVE checkpoint and returns how many frames the
// WAL held when it began and how many of those are copied back (both -1
// when another connection was checkpointing).
func (c *checkpointer) checkpoint(ctx context.Context) (frames, copied int, err error) {
	var busy int
	err = c.db.QueryRowContext(ctx, "PRAGMA wal_checkpoint(PASSIVE)").Scan(&busy, &frames, &copied)
	return frames, copied, err
}

// every calls fn every interval until stop is closed.
func every(interval time.Duration, stop <-chan struct{}, fn func()) {
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-stop:
			return
		case <-t.C:
			fn()
		}
	}
}

// close stops the checkpoints; a nil checkpointer does nothing.
func (c *checkpointer) close() {
	if c != nil {
		close(c.stop)
		<-c.done
	}
}
