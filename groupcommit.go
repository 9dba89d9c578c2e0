package main

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"runtime"
	"sync/atomic"
	"time"
)

// groupCommit folds concurrent write transactions into one. Its
// invariant: every write runs whole or not at all, and its caller learns
// its own outcome only once that outcome is durable. A write that fails
// is rolled back to the savepoint taken before it, so it fails alone and
// the others of its batch commit; a write whose caller has gone before it
// starts is not run. If the batch's transaction itself fails (its COMMIT,
// or a savepoint that cannot be rolled back to), each write of it is run
// again in a transaction of its own, so that no caller gets another's
// error.
//
// Only SQLite uses it. PostgreSQL's writes are one statement each and
// share transactions through writePipeline, without savepoints.
//
// Why: SQLite has one writer, and a transaction costs a BEGIN, a COMMIT
// and a hand-over of the one connection however little it writes. Under
// load, while one batch commits, the next gathers, so a crowd of small
// writes pays those costs once per batch instead of once per write.
// Alone, a write waits for nobody but the writer: a batch starts as soon
// as the writer is free (after one yield, see gatherAfterYield) and no
// checkpointer holds it.
type groupCommit struct {
	db       *db
	requests chan *writeRequest
	maxBatch int
	// holds takes a channel from hold: the writer waits, between two
	// batches, until it is closed.
	holds chan chan struct{}
	// batches counts the batches taken, for the checkpointer.
	batches atomic.Uint64
	quit    chan struct{} // closed by close: no more writes are taken
	done    chan struct{}
}

// writeRequest is one caller's write, waiting for its batch.
type writeRequest struct {
	ctx    context.Context
	fn     func(*writeTx) error
	result chan error // buffered: the writer never waits for the caller
	err    error      // the write's own outcome, before COMMIT
}

// writeTimeout bounds one PostgreSQL write once it has started: it then
// runs to its end whether or not its caller is still there. SQLite's
// writes run with no deadline at all (see batchContext).
const writeTimeout = 30 * time.Second

// batchContext is what the writer runs SQLite's statements under: one
// that never ends. Stopping a statement half-way could roll back the
// whole batch; a statement's work is bounded by its own request's size,
// and a wait for another process's lock by busy_timeout. It also spares
// each statement the goroutine the driver starts to watch a context that
// can end (sqlite's interruptOnDone), which cost the writer, the one
// goroutine every write waits for, about 5% of its time.
var batchContext = context.Background()

func newGroupCommit(d *db, maxBatch int) *groupCommit {
	g := &groupCommit{db: d, requests: make(chan *writeRequest), maxBatch: maxBatch, holds: make(chan chan struct{}),
		quit: make(chan struct{}), done: make(chan struct{})}
	go g.loop()
	return g
}

// run queues fn and returns its outcome once it is committed, or why it
// was not. It returns at once when ctx ends before the write is taken
// into a batch, and errDatabaseClosed once the writer is closed.
func (g *groupCommit) run(ctx context.Context, fn func(*writeTx) error) error {
	req := &writeRequest{ctx: ctx, fn: fn, result: make(chan error, 1)}
	select {
	case g.requests <- req:
	case <-ctx.Done():
		return ctx.Err()
	case <-g.quit:
		return errDatabaseClosed
	}
	return <-req.result
}

// hold runs fn while the writer waits between two batches, so that no
// write through the writer is under way meanwhile. It returns false, and
// does not run fn, once the writer has stopped.
func (g *groupCommit) hold(fn func()) bool {
	release := make(chan struct{})
	select {
	case g.holds <- release:
	case <-g.done:
		return false
	}
	defer close(release)
	fn()
	return true
}

// close stops the writer once the writes it has taken are done; a write
// that comes after gets errDatabaseClosed.
func (g *groupCommit) close() {
	close(g.quit)
	<-g.done
}

// loop takes a batch, the first write and as many as are already waiting,
// and commits it; meanwhile the next batch gathers. Between batches it
// waits for whoever holds it.
func (g *groupCommit) loop() {
	defer close(g.done)
	for {
		var first *writeRequest
		select {
		case release := <-g.holds:
			<-release
			continue
		case req := <-g.requests:
			first = req
		case <-g.quit:
			return
		}
		batch := gather(g.requests, []*writeRequest{first}, g.maxBatch)
		g.commit(batch)
		g.batches.Add(1)
	}
}

// gatherAfterYield: a batch smaller than this waits for the writer to
// yield once and gathers again. Under load, the handlers that are a few
// µs from queueing their writes then join it; alone, a yield costs well
// under a µs. In the crowd's POST-alone row it took batches from about 4
// writes to about 15, and the CPU of a create from 212-240 µs to
// 198-208 µs: fewer BEGINs and COMMITs, and a commit writes a page that
// several writes changed once.
const gatherAfterYield = 8

// gather adds to batch what already waits on requests, up to maxBatch;
// a batch still smaller than gatherAfterYield then lets the goroutines
// about to send run (one yield) and gathers again. Both writers, SQLite's
// and PostgreSQL's (writePipeline), gather so.
func gather[T any](requests <-chan T, batch []T, maxBatch int) []T {
	batch = takeWaiting(requests, batch, maxBatch)
	if len(batch) < gatherAfterYield {
		runtime.Gosched()
		batch = takeWaiting(requests, batch, maxBatch)
	}
	return batch
}

// takeWaiting adds to batch what already waits on requests, up to
// maxBatch.
func takeWaiting[T any](requests <-chan T, batch []T, maxBatch int) []T {
	for len(batch) < maxBatch {
		select {
		case req := <-requests:
			batch = append(batch, req)
		default:
			return batch
		}
	}
	return batch
}

// commit runs a batch in one transaction and tells each caller its
// outcome.
func (g *groupCommit) commit(batch []*writeRequest) {
	live := batch[:0:0]
	for _, req := range batch {
		if err := req.ctx.Err(); err != nil {
			req.result <- err // its caller has gone: not run
			continue
		}
		live = append(live, req)
	}
	if len(live) == 0 {
		return
	}
	if len(live) == 1 {
		live[0].result <- g.alone(live[0])
		return
	}
	if err := g.together(live); err != nil {
		if isUnavailable(err) {
			// The database cannot take a write now (another process holds
			// the lock, say): each alone would wait as long again.
			for _, req := range live {
				req.result <- err
			}
			return
		}
		// The batch failed as a whole: each write again, on its own,
		// unless its caller has gone meanwhile.
		for _, req := range live {
			if err := req.ctx.Err(); err != nil {
				req.result <- err
				continue
			}
			req.result <- g.alone(req)
		}
		return
	}
	for _, req := range live {
		req.result <- req.err
	}
}

// alone runs one write in a transaction of its own.
func (g *groupCommit) alone(req *writeRequest) error {
	return runTx(batchContext, g.db, req.fn)
}

// runAlone runs fn in a transaction of its own on db. Once begun, the
// write runs to its end whatever its caller does, within writeTimeout.
func runAlone(ctx context.Context, d *db, fn func(*writeTx) error) error {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), writeTimeout)
	defer cancel()
	return runTx(ctx, d, fn)
}

// runTx runs fn in a transaction of its own on db, under ctx.
func runTx(ctx context.Context, d *db, fn func(*writeTx) error) error {
	tx, err := d.write.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	defer tx.Rollback()
	key, keyOK := d.own.before()
	var touched []int64
	var versions []userVersion
	var wrote bool
	if err := fn(&writeTx{tx: tx, db: d, ctx: ctx, touched: &touched, versions: &versions, wrote: &wrote}); err != nil {
		return err
	}
	return commit(d, tx, ownCommit{key: key, keyOK: keyOK, wrote: wrote, users: touched, versions: versions})
}

// commit commits tx and tells ownCommits about it.
func commit(d *db, tx *sql.Tx, c ownCommit) error {
	if err := tx.Commit(); err != nil {
		return err
	}
	d.own.committed(c)
	return nil
}

// together runs the writes of a batch in one transaction, each behind a
// savepoint, setting each one's own outcome. It returns an error only
// when the transaction as a whole failed.
func (g *groupCommit) together(batch []*writeRequest) error {
	ctx := batchContext
	tx, err := g.db.write.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	defer tx.Rollback()
	key, keyOK := g.db.own.before()
	var touched []int64
	var versions, mine []userVersion
	var wrote, mineWrote bool
	var bound [numWriteQueries]*sql.Stmt
	for _, req := range batch {
		w := &writeTx{tx: tx, db: g.db, ctx: ctx, touched: &touched, versions: &mine, wrote: &mineWrote, bound: &bound}
		if err := w.exec(qSavepoint); err != nil {
			return fmt.Errorf("savepoint: %w", err)
		}
		mine, mineWrote = mine[:0], false
		req.err = req.fn(w)
		if req.err == nil {
			versions = append(versions, mine...)
			wrote = wrote || mineWrote
		} else if err := w.exec(qRollbackToSavepoint); err != nil {
			return errors.Join(req.err, fmt.Errorf("roll back to savepoint: %w", err))
		}
		if err := w.exec(qReleaseSavepoint); err != nil {
			return fmt.Errorf("release savepoint: %w", err)
		}
	}
	return commit(g.db, tx, ownCommit{key: key, keyOK: keyOK, wrote: wrote, users: touched, versions: versions})
}
