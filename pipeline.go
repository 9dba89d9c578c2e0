package main

import (
	"cmp"
	"context"
	"database/sql"
	"errors"
	"runtime"
	"slices"
	"sync/atomic"

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
// unknown (the connection broke) reports that error to each of its
// writes, as a lone statement would, and runs none again.
//
// Deadlocks: a batch takes one write per user (the rest wait for the next
// batch), in ascending user order, and each write locks rows of its own
// user only. So two batches, of this process or of another instance, lock
// users in the same order and cannot wait on each other in a cycle. Should
// PostgreSQL still break a deadlock by failing a batch, its writes run
// again alone, as above.
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
	done     chan struct{}
	// batched counts the writes committed in batches of two or more.
	batched atomic.Uint64
}

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
	p := &writePipeline{pool: pool, requests: make(chan *pipedWrite), maxBatch: maxBatch, done: make(chan struct{})}
	go p.loop()
	return p
}

// run queues w and returns its outcome once committed, errRunAlone, or
// why it was not run. It returns at once when w.ctx ends before the write
// is taken into a batch.
func (p *writePipeline) run(w *pipedWrite) error {
	w.result = make(chan error, 1)
	select {
	case p.requests <- w:
	case <-w.ctx.Done():
		return w.ctx.Err()
	}
	return <-w.result
}

// close stops the pipeline once the writes queued so far are done.
func (p *writePipeline) close() {
	close(p.requests)
	<-p.done
}

// loop takes a batch, the writes waiting, one per user, and sends it;
// meanwhile the next batch gathers.
func (p *writePipeline) loop() {
	defer close(p.done)
	var carried []*pipedWrite // writes of a user already in the last batch
	open := true
	for open || len(carried) > 0 {
		batch := carried
		if len(batch) == 0 {
			w, ok := <-p.requests
			if !ok {
				return
			}
			batch = []*pipedWrite{w}
		}
		batch, open = p.gather(batch, open)
		if open && len(batch) < gatherAfterYield {
			runtime.Gosched() // as groupCommit: let the writes about to come join
			batch, open = p.gather(batch, open)
		}
		batch, carried = onePerUser(batch)
		p.commit(batch)
	}
}

// gather adds to batch the writes already waiting, up to maxBatch; open
// is false once the pipeline is closed.
func (p *writePipeline) gather(batch []*pipedWrite, open bool) ([]*pipedWrite, bool) {
	for open && len(batch) < p.maxBatch {
		select {
		case w, ok := <-p.requests:
			if !ok {
				return batch, false
			}
			batch = append(batch, w)
		default:
			return batch, open
		}
	}
	return batch, open
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
	outcomes, err := p.together(live)
	if err == nil {
		// A statement the server rejected aborted the whole transaction,
		// whatever the batch's end reported.
		for _, o := range outcomes {
			if isServerError(o) {
				err = o
				break
			}
		}
	}
	for i, w := range live {
		switch {
		case err == nil:
			p.batched.Add(1)
			w.result <- outcomes[i]
		case isServerError(err), errors.Is(err, errNotSent), pgconn.SafeToRetry(err):
			w.result <- errRunAlone // rolled back, or never sent
		default:
			w.result <- err // the batch's fate is unknown
		}
	}
}

// isServerError is whether err is an error the PostgreSQL server reported.
func isServerError(err error) bool {
	var pe *pgconn.PgError
	return errors.As(err, &pe)
}

// errNotSent: a batch found no connection to go on.
var errNotSent = errors.New("batch not sent")

// together sends batch as one pgx batch, one implicit transaction, and
// returns each write's outcome. A *pgconn.PgError means the server
// rejected a statement or the commit, and rolled the whole batch back.
func (p *writePipeline) together(batch []*pipedWrite) ([]error, error) {
	// Once sent, a batch runs to its end whether or not its callers stay.
	ctx, cancel := context.WithTimeout(context.Background(), writeTimeout)
	defer cancel()
	// A connection is waited for only while one of the callers waits.
	acquire, stop := whileAnyWaits(ctx, batch)
	conn, err := p.pool.Conn(acquire)
	stop()
	if err != nil {
		return nil, errNotSent
	}
	defer conn.Close()
	outcomes := make([]error, len(batch))
	err = conn.Raw(func(driverConn any) error {
		pc := driverConn.(*stdlib.Conn).Conn()
		var b pgx.Batch
		for _, w := range batch {
			b.Queue(w.query, w.args...)
		}
		results := pc.SendBatch(ctx, &b)
		for i, w := range batch {
			outcomes[i] = w.scan(results.QueryRow())
		}
		return results.Close()
	})
	return outcomes, err
}

// whileAnyWaits returns a context of parent's that ends once every write
// of batch has lost its caller, and a function that releases it.
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
