package main

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
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
	read := func() changeKey {
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
			t.Fatalf("the key moved without a commit: %+v, then %+v", before, again)
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
		after := read()
		if after == before {
			t.Fatalf("commit %d: the key still reads %+v", i, after)
		}
		// What tells a key after a rebuilt header from one before it.
		if after.salt == before.salt && after.frames <= before.frames {
			t.Fatalf("commit %d: the WAL's frames did not grow: %+v, then %+v", i, before, after)
		}
	}
}

// TestAccountCacheExactAcrossCommits: whatever commits, through this
// process or another, touching the user or not, a cached account always
// reads as the database holds it.
func TestAccountCacheExactAcrossCommits(t *testing.T) {
	ctx := context.Background()
	a, b := twoMappedStores(t)
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
		switch rng.IntN(5) {
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
		case 3: // the WAL copied back: the next commit starts it over
			_, err = writer.db.checkpoints.ExecContext(ctx, "PRAGMA wal_checkpoint(PASSIVE)")
		case 4: // the WAL started over by a checkpoint, with no commit
			_, err = writer.db.checkpoints.ExecContext(ctx, "PRAGMA wal_checkpoint(TRUNCATE)")
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

// twoMappedStores is twoStores where this system maps the WAL-index, so
// that the account cache and ownCommits are in play; else the test is
// skipped.
func twoMappedStores(t *testing.T) (*Store, *Store) {
	t.Helper()
	a, b := twoStores(t)
	if a.db.own == nil {
		t.Skip("the WAL-index cannot be mapped on this system")
	}
	return a, b
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

// TestOwnWritesLeaveTheAccountCached: a write through this process leaves
// its user's cached account at the version it wrote, so the user's next
// request reads no account; a write through another process, or any
// commit the cache did not see through, sends it back to the database.
func TestOwnWritesLeaveTheAccountCached(t *testing.T) {
	ctx := context.Background()
	a, b := twoMappedStores(t)
	reads := 0
	a.accountReads = newFreshBatch(func(ctx context.Context, keys []string) (map[string]account, error) {
		reads++
		return a.readAccounts(ctx, keys)
	})
	uuid, acct := newAccount(t, a, a, "kate")
	otto, _ := newAccount(t, a, a, "otto")
	bump := func(fail bool) func(*writeTx) error {
		return func(tx *writeTx) error {
			if _, err := bumpUser(tx, acct.id, 0); err != nil {
				return err
			}
			if fail {
				return errors.New("undone")
			}
			return nil
		}
	}
	// check reads the account through a's cache and the database, and
	// wants them equal, with wantReads reads of the cache's own.
	check := func(step string, wantReads int) {
		t.Helper()
		reads = 0
		got, err := a.Account(ctx, uuid)
		if err != nil {
			t.Fatal(err)
		}
		if reads != wantReads {
			t.Errorf("%s: %d account reads, want %d", step, reads, wantReads)
		}
		want, _ := a.readAccount(ctx, uuid)
		if got != want {
			t.Fatalf("%s: cached account %+v, the database holds %+v", step, got, want)
		}
	}

	version, err := a.CreateCollection(ctx, acct.id, collection{UUID: newUUID(), Title: "x"}, nil)
	if err != nil {
		t.Fatal(err)
	}
	check("after a create through this process", 0)
	if _, err := a.SyncRequests(ctx, "test", 1); err != nil {
		t.Fatal(err)
	}
	check("after a commit touching no user", 0)
	if err := a.db.withTx(ctx, bump(false)); err != nil {
		t.Fatal(err)
	}
	check("after a second write", 0)

	// One batch: a write that commits, then one of the same user that is
	// undone. The account stays at the first one's version.
	results := []*writeRequest{
		{ctx: ctx, fn: bump(false), result: make(chan error, 1)},
		{ctx: ctx, fn: bump(true), result: make(chan error, 1)},
	}
	if err := a.db.writer.together(results); err != nil {
		t.Fatal(err)
	}
	if results[0].err != nil || results[1].err == nil {
		t.Fatalf("batch outcomes %v, %v: want the first to commit, the second undone", results[0].err, results[1].err)
	}
	check("after a batch with an undone write", 0)
	if got, _ := a.Account(ctx, uuid); got.version != version+2 {
		t.Errorf("version %d after two more writes, want %d", got.version, version+2)
	}

	if err := b.db.withTx(ctx, bump(false)); err != nil {
		t.Fatal(err)
	}
	check("after a write through another process", 1)
	if err := a.db.withTx(ctx, bump(false)); err != nil {
		t.Fatal(err)
	}
	check("after this process writes again", 0)
	if _, err := b.SyncRequests(ctx, "test", 2); err != nil {
		t.Fatal(err)
	}
	check("after another process commits, touching no user", 1)

	// A commit that finds the WAL wholly checkpointed starts it over, with
	// a new salt: still nothing but this process's commit, so neither its
	// user nor another is read again.
	if err := a.db.withTx(ctx, bump(false)); err != nil {
		t.Fatal(err)
	}
	check("after this process writes again", 0)
	if _, err := a.Account(ctx, otto); err != nil {
		t.Fatal(err)
	}
	if _, err := a.db.checkpoints.ExecContext(ctx, "PRAGMA wal_checkpoint(PASSIVE)"); err != nil {
		t.Fatal(err)
	}
	before, _ := a.db.wal.changes()
	if err := a.db.withTx(ctx, bump(false)); err != nil {
		t.Fatal(err)
	}
	if after, _ := a.db.wal.changes(); before.salt == after.salt {
		t.Fatalf("the WAL did not start over (key %x, then %x): the test needs it to", before, after)
	}
	check("after a write that started the WAL over", 0)
	reads = 0
	if _, err := a.Account(ctx, otto); err != nil {
		t.Fatal(err)
	}
	if reads != 0 {
		t.Errorf("another user after a write that started the WAL over: %d account reads, want 0", reads)
	}
}

// TestWriteThroughLeavesAStaleEntryStale: an entry that was already stale
// when this process committed (its account deleted by another process,
// and its row id taken by a new account, while a request that had read it
// was still storing it) is not brought back to life by a write of the new
// account: the old token still finds no account.
func TestWriteThroughLeavesAStaleEntryStale(t *testing.T) {
	ctx := context.Background()
	a, b := twoMappedStores(t)
	// A request through a reads the old account, then stalls before it
	// stores the entry.
	oldID, stale := newAccount(t, a, a, "old")
	a.accounts.mu.RLock()
	staleEntry := a.accounts.entries[oldID]
	a.accounts.mu.RUnlock()

	// Meanwhile another process deletes it, and a new account takes its id.
	if _, err := b.db.write.ExecContext(ctx, `DELETE FROM users WHERE uuid = $1`, oldID); err != nil {
		t.Fatal(err)
	}
	_, fresh := newAccount(t, b, a, "new")
	if fresh.id != stale.id {
		t.Skipf("the new account got id %d, not the deleted one's %d", fresh.id, stale.id)
	}
	// The stalled request stores what it read.
	a.accounts.mu.Lock()
	a.accounts.entries[oldID] = staleEntry
	a.accounts.uuids[stale.id] = oldID
	a.accounts.mu.Unlock()

	// The new account writes through a.
	if _, err := a.CreateCollection(ctx, fresh.id, collection{UUID: newUUID(), Title: "x"}, nil); err != nil {
		t.Fatal(err)
	}
	if got, err := a.Account(ctx, oldID); !errors.Is(err, errNotFound) {
		t.Fatalf("the deleted account's token finds %+v (err %v)", got, err)
	}
}

// TestAccountCacheExactAcrossARebuiltHeader: when a process dies half-way
// through writing the WAL-index header, the next connection rebuilds it
// from the WAL and iChange starts again from 0 under the same salts. An
// account cached before must not be served when the header comes back to
// what it read then.
func TestAccountCacheExactAcrossARebuiltHeader(t *testing.T) {
	type header struct{ salt, iChange, mxFrame uint32 }
	tests := []struct {
		name string
		read header   // when the account is cached
		then []header // after another process writes it
	}{
		// iChange comes back to 5; the frames tell the keys apart.
		{"rebuilt from the WAL", header{7, 5, 40}, []header{{7, 6, 41}, {7, 0, 41}, {7, 5, 46}}},
		// A rebuild from an empty WAL has no salts to read back; the next
		// WAL keeps them at zero, and the same commits give the same keys.
		{"rebuilt twice from an empty WAL", header{0, 1, 2}, []header{{0, 2, 3}, {0, 0, 0}, {0, 1, 2}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ctx := context.Background()
			a, b := twoMappedStores(t)
			uuid, _ := newAccount(t, b, b, "kate")
			// a reads the header as this test writes it.
			wal := newFakeWAL()
			a.accounts.wal, a.db.own.wal = wal.w, wal.w
			wal.setFrames(tt.read.salt, tt.read.iChange, tt.read.mxFrame)
			cached, err := a.Account(ctx, uuid)
			if err != nil {
				t.Fatal(err)
			}
			if _, err := b.db.write.ExecContext(ctx, `UPDATE user_versions SET version = version + 1 WHERE user_id = (SELECT id FROM users WHERE uuid = $1)`, uuid); err != nil {
				t.Fatal(err)
			}
			for _, h := range tt.then {
				wal.setFrames(h.salt, h.iChange, h.mxFrame)
			}
			got, err := a.Account(ctx, uuid)
			if err != nil {
				t.Fatal(err)
			}
			if got.version != cached.version+1 {
				t.Fatalf("after a rebuilt header the account reads version %d; the database holds %d", got.version, cached.version+1)
			}
		})
	}
}

// TestAnotherProcessOpeningTheDatabaseKeepsTheKey: mapping the WAL-index
// must leave this process's SQLite locks on the -shm file in place.
// Closing a descriptor of the file would drop them all; another process
// opening the database would then take the WAL-index for unused and
// rebuild it under this one's connections, iChange back at 0.
func TestAnotherProcessOpeningTheDatabaseKeepsTheKey(t *testing.T) {
	ctx := context.Background()
	a, _ := twoMappedStores(t)
	for i := range 3 {
		if _, err := a.SyncRequests(ctx, "test", int64(i+1)); err != nil {
			t.Fatal(err)
		}
	}
	before, _ := a.db.wal.changes()
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), "MOVIES_TEST_READ_DB="+a.db.filePath)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("the other process: %v\n%s", err, out)
	}
	if after, _ := a.db.wal.changes(); after != before {
		t.Fatalf("another process reading the database moved the key from %+v to %+v", before, after)
	}
}
