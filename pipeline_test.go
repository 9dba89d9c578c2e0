package main

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"os"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// createWrite is the pipedWrite of a create of a collection id for user,
// scanning the version it makes into version.
func createWrite(user int64, id string, version *int64) *pipedWrite {
	return &pipedWrite{
		ctx: context.Background(), user: user, query: createQuery,
		args: []any{id, user, "title of " + id, "", "[]", maxCollections, "{}"},
		scan: func(row rowScanner) error { return row.Scan(version) },
	}
}

// TestPipelineBatchFailsAsAWholeThenEachRunsAlone: in one batch of
// PostgreSQL writes, a statement the server rejects (a collection id
// taken already) rolls back the whole batch, and each write, run again
// alone, gets its own outcome: the others are stored, the bad one is not,
// and none is stored twice. A batch with no bad statement commits every
// write with its own answer, a write that matched no row included.
func TestPipelineBatchFailsAsAWholeThenEachRunsAlone(t *testing.T) {
	ctx := context.Background()
	s, users := postgresStoreWithUsers(t, 4)
	_, other := newAccount(t, s, s, "other") // the one whose rename matches no row
	taken := newUUID()
	if _, err := s.CreateCollection(ctx, users[0], collection{UUID: taken, Title: "first"}, nil); err != nil {
		t.Fatal(err)
	}
	p := &writePipeline{pool: s.db.write} // no loop: batches are made by hand

	tests := []struct {
		name string
		// bad is the index of the write that takes an id taken already, or -1.
		bad int
	}{
		{"one bad write", 2},
		{"no bad write", -1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			versions := make([]int64, len(users)+1)
			ids := make([]string, len(users)+1)
			var batch []*pipedWrite
			for i, u := range users {
				ids[i] = newUUID()
				if i == tt.bad {
					ids[i] = taken
				}
				w := createWrite(u, ids[i], &versions[i])
				w.result = make(chan error, 1)
				batch = append(batch, w)
			}
			// A rename of a collection that is not there matches no row.
			var title string
			missing := &pipedWrite{ctx: ctx, user: other.id, query: updateQuery,
				args:   []any{newUUID(), other.id, ptr("x"), nil, nil, nil},
				scan:   func(row rowScanner) error { return row.Scan(&title, &title, &title, &versions[len(users)]) },
				result: make(chan error, 1)}
			batch = append(batch, missing)

			p.commit(batch)
			for i, w := range batch {
				err := <-w.result
				if tt.bad >= 0 {
					if !errors.Is(err, errRunAlone) {
						t.Fatalf("write %d of a failed batch: %v, want errRunAlone", i, err)
					}
					err = s.db.writeAlone(ctx, w.query, w.scan, w.args...)
				}
				switch {
				case w == missing && !errors.Is(err, sql.ErrNoRows):
					t.Errorf("the rename of a missing collection: %v, want no row", err)
				case i == tt.bad && !isUniqueViolation(err):
					t.Errorf("the bad write: %v, want its own unique violation", err)
				case w != missing && i != tt.bad && err != nil:
					t.Errorf("write %d: %v, want success", i, err)
				}
			}
			for i, u := range users {
				var n int
				if err := s.db.read.QueryRow(`SELECT count(*) FROM collections WHERE uuid = $1 AND user_id = $2`, ids[i], u).Scan(&n); err != nil {
					t.Fatal(err)
				}
				want := 1
				if i == tt.bad {
					want = 0 // the one stored is users[0]'s "first"
				}
				if n != want {
					t.Errorf("write %d: %d collections stored under its id, want %d", i, n, want)
				}
			}
		})
	}
}

func ptr[T any](v T) *T { return &v }

// postgresStoreWithUsers opens a store on a fresh PostgreSQL database
// with n accounts, and returns their ids; it skips the test without
// TEST_DATABASE_URL.
func postgresStoreWithUsers(t *testing.T, n int) (*Store, []int64) {
	t.Helper()
	if os.Getenv("TEST_DATABASE_URL") == "" {
		t.Skip("PostgreSQL only: TEST_DATABASE_URL is not set")
	}
	s := openTestStore(t, postgresBackend)
	var users []int64
	for i := range n {
		_, acct := newAccount(t, s, s, fmt.Sprintf("user%d", i))
		users = append(users, acct.id)
	}
	return s, users
}

// TestPipelineAcrossInstances: two instances on one PostgreSQL database,
// many callers each creating and renaming collections of the same few
// users, batched: no write fails (no deadlock between batches that lock
// the same users), each gets a version of its own, and every user ends
// with exactly the collections created for it.
func TestPipelineAcrossInstances(t *testing.T) {
	if os.Getenv("TEST_DATABASE_URL") == "" {
		t.Skip("PostgreSQL only: TEST_DATABASE_URL is not set")
	}
	ctx := context.Background()
	dsn := postgresBackend.dsn(t)
	var stores []*Store
	for range 2 {
		s, err := openStore(ctx, dsn, poolConfig{})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { s.Close() })
		stores = append(stores, s)
	}
	const users, callers, writesEach = 5, 64, 8
	var ids []int64
	var first []string // a collection of each user, to rename
	for i := range users {
		_, acct := newAccount(t, stores[0], stores[1], fmt.Sprintf("user%d", i))
		ids = append(ids, acct.id)
		c := newUUID()
		if _, err := stores[0].CreateCollection(ctx, acct.id, collection{UUID: c, Title: "first"}, nil); err != nil {
			t.Fatal(err)
		}
		first = append(first, c)
	}
	type made struct {
		user    int
		version int64
		created bool
	}
	var mu sync.Mutex
	var all []made
	var wg sync.WaitGroup
	for c := range callers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			s := stores[c%2]
			for j := range writesEach {
				u := (c + j) % users
				var m made
				var err error
				if j%2 == 0 {
					m.version, err = s.CreateCollection(ctx, ids[u], collection{UUID: newUUID(), Title: "new"}, nil)
					m.created = true
				} else {
					title := fmt.Sprintf("renamed by %d", c)
					_, m.version, err = s.UpdateCollection(ctx, ids[u], first[u], collectionInput{Title: &title})
				}
				if err != nil {
					t.Errorf("caller %d, write %d: %v", c, j, err)
					return
				}
				m.user = u
				mu.Lock()
				all = append(all, m)
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	if t.Failed() {
		return
	}
	if stores[0].db.pipeline.batched.Load()+stores[1].db.pipeline.batched.Load() == 0 {
		t.Fatal("no write was batched: the test did not test batches")
	}
	seen := map[[2]int64]bool{}
	created := make([]int, users)
	for _, m := range all {
		key := [2]int64{int64(m.user), m.version}
		if seen[key] {
			t.Errorf("user %d: version %d given to two writes", m.user, m.version)
		}
		seen[key] = true
		if m.created {
			created[m.user]++
		}
	}
	for u, id := range ids {
		var rows, counted int
		if err := stores[1].db.read.QueryRow(`SELECT (SELECT count(*) FROM collections WHERE user_id = $1), collections FROM user_versions WHERE user_id = $1`, id).Scan(&rows, &counted); err != nil {
			t.Fatal(err)
		}
		if rows != created[u]+1 || counted != rows {
			t.Errorf("user %d: %d collections stored, %d counted, want %d", u, rows, counted, created[u]+1)
		}
	}
}

// TestPipelineWaitsForAConnectionOnlyWhileACallerWaits: a batch that finds
// every connection taken gives up once all its callers have gone, rather
// than hold the writes after it for writeTimeout; it was not sent.
func TestPipelineWaitsForAConnectionOnlyWhileACallerWaits(t *testing.T) {
	if os.Getenv("TEST_DATABASE_URL") == "" {
		t.Skip("PostgreSQL only: TEST_DATABASE_URL is not set")
	}
	s := openTestStore(t, postgresBackend)
	s.db.write.SetMaxOpenConns(1)
	held, err := s.db.write.Conn(context.Background()) // the only connection
	if err != nil {
		t.Fatal(err)
	}
	defer held.Close()
	var batch []*pipedWrite
	var versions [2]int64
	for i := range 2 {
		ctx, cancel := context.WithTimeout(context.Background(), time.Duration(i+1)*50*time.Millisecond)
		defer cancel()
		w := createWrite(int64(i+1), newUUID(), &versions[i])
		w.ctx = ctx
		batch = append(batch, w)
	}
	done := make(chan error, 1)
	go func() {
		_, notApplied, err := (&writePipeline{pool: s.db.write}).together(batch)
		if !notApplied {
			err = fmt.Errorf("not known to be unapplied: %w", err)
		}
		done <- err
	}()
	select {
	case err := <-done:
		if !errors.Is(err, context.Canceled) {
			t.Fatalf("got %v, want the wait given up, not applied", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the batch still waits for a connection after its callers have gone")
	}
}

// TestPipelineALockedUserHoldsUpNoOther: while another transaction holds
// one user's row, writes for other users, batched with a write for that
// user or after it, are all answered, and the locked user's own write
// lands once the lock is gone.
func TestPipelineALockedUserHoldsUpNoOther(t *testing.T) {
	ctx := context.Background()
	s, users := postgresStoreWithUsers(t, 8)
	lock, err := s.db.write.BeginTx(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := lock.Exec(`SELECT 1 FROM user_versions WHERE user_id = $1 FOR UPDATE`, users[0]); err != nil {
		t.Fatal(err)
	}
	var released atomic.Bool
	lockedDone := make(chan error, 1)
	go func() {
		_, err := s.CreateCollection(ctx, users[0], collection{UUID: newUUID(), Title: "locked"}, nil)
		lockedDone <- err
	}()
	var wg sync.WaitGroup
	for round := range 3 {
		for _, u := range users[1:] {
			wg.Add(1)
			go func() {
				defer wg.Done()
				_, err := s.CreateCollection(ctx, u, collection{UUID: newUUID(), Title: "free"}, nil)
				switch {
				case err != nil:
					t.Errorf("round %d, user %d: %v", round, u, err)
				case released.Load():
					t.Errorf("round %d, user %d: answered only once the other user's lock was gone", round, u)
				}
			}()
		}
		time.Sleep(20 * time.Millisecond)
	}
	others := make(chan struct{})
	go func() { wg.Wait(); close(others) }()
	select {
	case <-others:
	case <-time.After(10 * time.Second):
		t.Error("writes of other users still wait on one user's lock after 10 s")
	}
	time.Sleep(batchLockTimeout) // the locked write keeps waiting, alone
	released.Store(true)
	if err := lock.Commit(); err != nil {
		t.Fatal(err)
	}
	<-others
	if err := <-lockedDone; err != nil {
		t.Fatalf("the locked user's write, once the lock is gone: %v", err)
	}
	var n int
	if err := s.db.read.QueryRow(`SELECT count(*) FROM collections`).Scan(&n); err != nil || n != 1+3*7 {
		t.Fatalf("%d collections stored (%v), want %d", n, err, 1+3*7)
	}
}

// TestWriteAfterCloseIsUnavailable: a write that comes once the store is
// closed (a handler still running when shutdown stops waiting) is
// answered "unavailable", on either backend, and does not panic.
func TestWriteAfterCloseIsUnavailable(t *testing.T) {
	forEachBackend(t, func(t *testing.T, be backend) {
		ctx := context.Background()
		s, err := openStore(ctx, be.dsn(t), poolConfig{})
		if err != nil {
			t.Fatal(err)
		}
		_, acct := newAccount(t, s, s, "late")
		s.Close()
		_, err = s.CreateCollection(ctx, acct.id, collection{UUID: newUUID(), Title: "late"}, nil)
		if !isUnavailable(err) {
			t.Fatalf("a create after close: %v, want an unavailable error", err)
		}
	})
}
