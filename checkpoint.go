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
// PASSIVE checkpoint takes no lock that writers or readers wait on; the
// writer keeps a far higher limit of its own (writerCheckpointPages) in
// case this one cannot keep up.
type checkpointer struct {
	db   *sql.DB
	stop chan struct{}
	done chan struct{}
}

const (
	// checkpointEvery is how often the WAL is copied back: at most that
	// many WAL restarts a second, and a WAL of what a second's writes add.
	checkpointEvery = 250 * time.Millisecond
	// writerCheckpointPages is the WAL size (in pages) at which the
	// writer checkpoints itself, as SQLite does by default at 1,000.
	writerCheckpointPages = 20_000
)

func startCheckpointer(db *sql.DB, every time.Duration) *checkpointer {
	c := &checkpointer{db: db, stop: make(chan struct{}), done: make(chan struct{})}
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
		c.db.ExecContext(ctx, "PRAGMA wal_checkpoint(PASSIVE)")
	})
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
