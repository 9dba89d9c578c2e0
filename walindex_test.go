package main

import (
	"context"
	"path/filepath"
	"testing"
)

// TestWALIndexSeesEveryCommit: the counter read from the WAL-index header
// moves with every commit, by this process's writer or another's, and
// stands still while nothing commits.
func TestWALIndexSeesEveryCommit(t *testing.T) {
	ctx := context.Background()
	dsn := filepath.Join(t.TempDir(), "test.db")
	s, err := openStore(ctx, dsn, poolConfig{})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	other, err := openStore(ctx, dsn, poolConfig{}) // another process, as far as s can tell
	if err != nil {
		t.Fatal(err)
	}
	defer other.Close()
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
