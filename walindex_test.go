package main

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"path/filepath"
	"testing"
)

// TestWALIndexSeesEveryCommit: the counter read from the WAL-index header
// moves with every commit, by this process's writer or another's, and
// stands still while nothing commits.
func TestWALIndexSeesEveryCommit(t *testing.T) {
	ctx := context.Background()
	s, other := twoStores(t)
	w := s.accounts.wal
	if w == nil {
		t.Skip("the WAL-index cannot be mapped on this system")
	}
	read := func() int64 {
		t.Helper()
		v, ok := w.changes()
		if !ok {
			t.Fatal("the WAL-index header is not readable while nothing writes")
		}
		return v
	}
	for i := range 200 {
		before := read()
		if again := read(); again != before {
			t.Fatalf("the counter moved without a commit: %d, then %d", before, again)
		}
		writer := s
		if i%2 == 1 {
			writer = other
		}
		if i%50 == 49 { // the WAL starts over after a full checkpoint
			if _, err := other.db.write.ExecContext(ctx, "PRAGMA wal_checkpoint(TRUNCATE)"); err != nil {
				t.Fatal(err)
			}
			before = read()
		}
		if _, err := writer.SyncRequests(ctx, "test", int64(i+1)); err != nil {
			t.Fatal(err)
		}
		if after := read(); after == before {
			t.Fatalf("commit %d: the counter still reads %d", i, after)
		}
	}
}

// TestAccountCacheExactAcrossCommits: whatever commits, through this
// process or another, touching the user or not, a cached account always
// reads as the database holds it.
func TestAccountCacheExactAcrossCommits(t *testing.T) {
	ctx := context.Background()
	a, b := twoStores(t)
	if a.db.own == nil {
		t.Skip("the WAL-index cannot be mapped on this system")
	}
	var ids []string
	for i := range 3 {
		id, err := a.CreateUser(ctx, fmt.Sprintf("user%d", i), "hash")
		if err != nil {
			t.Fatal(err)
		}
		ids = append(ids, id)
	}
	rng := rand.New(rand.NewPCG(1, 2))
	for i := range 600 {
		writer := []*Store{a, b}[rng.IntN(2)]
		who := ids[rng.IntN(len(ids))]
		acct, err := writer.readAccount(ctx, who)
		if err != nil {
			t.Fatal(err)
		}
		switch rng.IntN(3) {
		case 0: // a write touching the user
			err = writer.db.withTx(ctx, func(tx *writeTx) error {
				_, err := bumpUser(tx, acct.id, 0)
				return err
			})
		case 1: // a write touching no user
			_, err = writer.SyncRequests(ctx, "test", int64(i+1))
		case 2: // a write that fails and leaves nothing
			writer.db.withTx(ctx, func(tx *writeTx) error {
				bumpUser(tx, acct.id, 0)
				return errors.New("undone")
			})
		}
		if err != nil {
			t.Fatal(err)
		}
		// Not every step: an entry must also stay right across several
		// commits it did not see.
		if rng.IntN(3) != 0 {
			continue
		}
		for _, s := range []*Store{a, b} {
			for _, id := range ids {
				got, err := s.Account(ctx, id)
				want, _ := s.readAccount(ctx, id)
				if err != nil || got != want {
					t.Fatalf("step %d: cached account %+v (err %v), the database holds %+v", i, got, err, want)
				}
			}
		}
	}
}

// twoStores opens one fresh SQLite file twice: two processes, as far as
// either can tell.
func twoStores(t *testing.T) (*Store, *Store) {
	t.Helper()
	dsn := filepath.Join(t.TempDir(), "test.db")
	var stores [2]*Store
	for i := range stores {
		s, err := openStore(context.Background(), dsn, poolConfig{})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { s.Close() })
		stores[i] = s
	}
	return stores[0], stores[1]
}
