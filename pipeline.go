package main

import (
	"cmp"
	"context"
	"database/sql"
	"errors"
	"fmt"
	"slices"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/stdlib"
)

// writePipeline folds PostgreSQL's concurrent one-statement writes
// (writeOne) into one transaction, sent in one round trip: a pgx batch,
// which the server runs as one implicit transaction. Its invariant, as
// groupCommit's: each caller learns its own write's outcome, and only once
// that outcome is committed. A statement that fails rolls the whole batch
// back; each write of it then runs again on its own, in its caller's
// goroutine, so that no caller gets another's error. A batch whose fate is
// unknown (the connection broke, or an error came from something other
// than the server's rollback) reports that error to each of its writes, as
// a lone statement would, and runs none again.
//
// Locks: a batch takes one write per user (the rest wait for the next
// batch), in ascending user order, and each write locks rows of its own
// user only. So two batches, of this process or of another instance, lock
// users in the same order and cannot wait on each other in a cycle. A
// batch waits at most batchLockTimeout for each row lock (held by a long
// transaction of another instance, say); then it is rolled back and its
// writes run alone, each waiting as long as its caller does. So a user
// whose row stays locked delays each batch that carries one of its writes
// by batchLockTimeout, not by the lock's whole length. (Nothing remembers
// the locked user: while it keeps writing, each such batch pauses, then
// runs alone.) One batch is in flight at a time: while it runs, the next
// gathers. (Four in flight made batches smaller, and cost
// 10-15% of the crowd's throughput with 10% writes.)
//
// Why: a PostgreSQL write costs its server about 190 µs of CPU as a
// transaction of its own, 105-130 µs within a batch of 8 (pgbench on this
// project's statements, on 2 cores); the WAL flush and the wake-up of a
// waiting committer are paid once a batch. Savepoints, which would let a
// failing write fail alone, cost more than they save there (240-265 µs a
// write), hence the rerun.
type writePipeline struct {
	pool     *sql.DB
	requests chan *pipedWrite
	maxBatch int
	quit     chan struct{} // closed by close: no more writes are taken
	done     chan struct{} // closed once the last batch is answered
	// batched counts the writes answered from a committed batch.
	batched atomic.Uint64
}

// batchLockTimeout is how long a batch waits for a row lock before it
// gives up and its writes run alone.
const batchLockTimeout = 100 * time.Millisecond

// batchSetup starts each batch: its lock_timeout, for this transaction
// only (set_config's is_local).
var batchSetup = fmt.Sprintf(`SELECT set_config('lock_timeout', '%dms', true)`, batchLockTimeout.Milliseconds())

// pipedWrite is one caller's statement, waiting for its batch.
type pipedWrite struct {
	ctx context.Context
	// user is the user whose rows the statement locks.
	user   int64
	query  string
	args   []any
	scan   func(rowScanner) error
	result chan error // buffered: the pipeline never waits for the caller
}

// rowScanner is the one row a statement returns: a *sql.Row, or a row
// of a pgx batch.
type rowScanner interface {
	Scan(dest ...any) error
}

// errRunAlone tells a caller of writePipeline.run to run its write in a
// transaction of its own: it was alone, or its batch was rolled back.
var errRunAlone = errors.New("run the write alone")

func newWritePipeline(pool *sql.DB, maxBatch int) *writePipeline {
	p := &writePipeline{pool: pool, requests: make(chan *pipedWrite), maxBatch: maxBatch,
		quit: make(chan struct{}), done: make(chan struct{})}
	go p.loop()
	return p
}

// run queues w and returns its outcome once committed, errRunAlone, or
// why it was not run. It returns at once when w.ctx ends before the write
// is taken into a batch; once taken, the write is answered when its batch
// is, each of its batch's lock waits bounded by batchLockTimeout. Once the
// pipeline is closed, it returns errDatabaseClosed.
func (p *writePipeline) run(w *pipedWrite) error {
	w.result = make(chan error, 1)
	select {
	case p.requests <- w:
	case <-w.ctx.Done():
		return w.ctx.Err()
	case <-p.quit:
		return errDatabaseClosed
	}
	return <-w.result
}

// close stops the pipeline once the writes taken so far are answered.
func (p *writePipeline) close() {
	close(p.quit)
	<-p.done
}

// loop takes a batch, the writes waiting, one per user, and sends it
// while the next gathers.
func (p *writePipeline) loop() {
	defer close(p.done)
	var carried []*pipedWrite // writes of a user already in the last batch
	for {
		batch := carried
		if len(batch) == 0 {
			select {
			case w := <-p.requests:
				batch = []*pipedWrite{w}
			case <-p.quit:
				return
			}
		}
		batch, carried = onePerUser(gather(p.requests, batch, p.maxBatch))
		p.commit(batch)
	}
}

// onePerUser splits batch into its first write of each user, in ascending
// user order, and the others, in the order they came.
func onePerUser(batch []*pipedWrite) (first, rest []*pipedWrite) {
	seen := make(map[int64]bool, len(batch))
	for _, w := range batch {
		if seen[w.user] {
			rest = append(rest, w)
			continue
		}
		seen[w.user] = true
		first = append(first, w)
	}
	slices.SortStableFunc(first, func(a, b *pipedWrite) int { return cmp.Compare(a.user, b.user) })
	return first, rest
}

// commit runs batch in one transaction and tells each caller its outcome.
func (p *writePipeline) commit(batch []*pipedWrite) {
	live := batch[:0:0]
	for _, w := range batch {
		if err := w.ctx.Err(); err != nil {
			w.result <- err // its caller has gone: not run
			continue
		}
		live = append(live, w)
	}
	if len(live) < 2 {
		for _, w := range live {
			w.result <- errRunAlone
		}
		return
	}
	outcomes, notApplied, err := p.together(live)
	for i, w := range live {
		switch {
		case err == nil:
			p.batched.Add(1)
			w.result <- outcomes[i]
		case notApplied:
			w.result <- errRunAlone // never sent, or rolled back
		default:
			w.result <- err // the batch's fate is unknown
		}
	}
}

// together sends batch as one pgx batch, one implicit transaction, and
// returns each write's outcome, or whether the batch is known not to
// have been applied and why it failed: never sent, or rolled back by
// the server, which then left the connection open and idle (an error that
// a proxy makes up leaves no such proof).
func (p *writePipeline) together(batch []*pipedWrite) (outcomes []error, notApplied bool, err error) {
	// Once sent, a batch runs to its end whether or not its callers stay.
	ctx, cancel := context.WithTimeout(context.Background(), writeTimeout)
	defer cancel()
	// A connection is waited for only while a caller's context lasts.
	acquire, stop := whileAnyWaits(ctx, batch)
	conn, err := p.pool.Conn(acquire)
	stop()
	if err != nil {
		return nil, true, err
	}
	defer conn.Close()
	outcomes = make([]error, len(batch))
	err = conn.Raw(func(driverConn any) error {
		pc := driverConn.(*stdlib.Conn).Conn()
		var b pgx.Batch
		b.Queue(batchSetup)
		for _, w := range batch {
			b.Queue(w.query, w.args...)
		}
		results := pc.SendBatch(ctx, &b)
		results.Exec() // batchSetup: an error of it is Close's too
		for i, w := range batch {
			outcomes[i] = w.scan(results.QueryRow())
		}
		err := results.Close()
		notApplied = err != nil && (pgconn.SafeToRetry(err) ||
			isServerError(err) && !pc.PgConn().IsClosed() && pc.PgConn().TxStatus() == 'I')
		return err
	})
	return outcomes, notApplied, err
}

// isServerError is whether err is an error the PostgreSQL server reported.
func isServerError(err error) bool {
	var pe *pgconn.PgError
	return errors.As(err, &pe)
}

// whileAnyWaits returns a context of parent's that ends once the context
// of every write of batch has ended, and a function that releases it.
func whileAnyWaits(parent context.Context, batch []*pipedWrite) (context.Context, func()) {
	ctx, cancel := context.WithCancel(parent)
	var waiting atomic.Int64
	waiting.Store(int64(len(batch)))
	stops := make([]func() bool, len(batch))
	for i, w := range batch {
		stops[i] = context.AfterFunc(w.ctx, func() {
			if waiting.Add(-1) == 0 {
				cancel()
			}
		})
	}
	return ctx, func() {
		for _, stop := range stops {
			stop()
		}
		cancel()
	}
}
