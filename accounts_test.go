package main

import (
	"context"
	"database/sql"
	"fmt"
	"path/filepath"
	"testing"
)

// TestAccountReadsPastOneStatement: a batch of more accounts than one
// statement reads finds every one of them, by UUID and, where ids are
// remembered, by id; unknown ones are simply not found.
func TestAccountReadsPastOneStatement(t *testing.T) {
	forEachBackend(t, func(t *testing.T, be backend) {
		ctx := context.Background()
		s := openTestStore(t, be)
		want := map[string]int64{}
		uuids := []string{"00000000-0000-4000-8000-000000000000"} // unknown
		var ids []int64
		for i := range 2*maxAccountsPerRead + 1 {
			uuid, a := newAccount(t, s, s, fmt.Sprintf("user%d", i))
			want[uuid] = a.id
			uuids = append(uuids, uuid)
			ids = append(ids, a.id)
		}
		found, err := s.readAccounts(ctx, uuids)
		if err != nil || len(found) != len(want) {
			t.Fatalf("by UUID: %d accounts found (%v), want %d", len(found), err, len(want))
		}
		for uuid, id := range want {
			if found[uuid].id != id {
				t.Fatalf("by UUID: %s has id %d, want %d", uuid, found[uuid].id, id)
			}
		}
		if !s.db.dialect.stableIDs {
			return
		}
		versions, err := s.readVersions(ctx, append(ids, -1))
		if err != nil || len(versions) != len(ids) {
			t.Fatalf("by id: %d accounts found (%v), want %d", len(versions), err, len(ids))
		}
	})
}

// TestAccountIDGivenAgainIsNotTakenForTheOldOne: where accounts are read
// by a remembered id (PostgreSQL), an id that has come to hold another
// account (a backup restored under the running service, an identity
// restarted) is found out by the UUID read with it: the token's own
// account is read, never the other one.
func TestAccountIDGivenAgainIsNotTakenForTheOldOne(t *testing.T) {
	forEachBackend(t, func(t *testing.T, be backend) {
		ctx := context.Background()
		s := openTestStore(t, be)
		kate, kateAcct := newAccount(t, s, s, "kate")
		_, tomAcct := newAccount(t, s, s, "tom")
		if s.ids == nil {
			return // SQLite remembers no ids
		}
		s.ids.put(kate, tomAcct.id) // as if tom now held kate's old id
		a, err := s.Account(ctx, kate)
		if err != nil || a != kateAcct {
			t.Fatalf("kate's token: %+v, %v; want kate's account %+v, not tom's %+v", a, err, kateAcct, tomAcct)
		}
		if id, _ := s.ids.get(kate); id != kateAcct.id {
			t.Fatalf("kate's id remembered as %d, want %d", id, kateAcct.id)
		}
	})
}

// TestNewAccountOnAnOldIDSeesNothingOfTheOld: SQLite gives a deleted
// last account's id to the next one. Answers another process cached for
// the deleted account, at the versions its writes reached, are never
// served to the new one when it has made as many writes: a new account's
// versions start at a random number.
func TestNewAccountOnAnOldIDSeesNothingOfTheOld(t *testing.T) {
	dsn := filepath.Join(t.TempDir(), "shared.db")
	a := newTestApp(t, withDSN(dsn))
	b := newTestApp(t, withDSN(dsn))
	old := a.newUser()
	a.newCollection(old) // one write
	if got := a.listCollections(old); len(got.Collections) != 1 {
		t.Fatalf("the old account lists %d collections, want 1", len(got.Collections))
	}
	// Through the other process: the old account goes, a new one comes,
	// on the same id, and makes as many writes as the old one had.
	var oldID int64
	b.store.db.read.QueryRow(`SELECT id FROM users WHERE username = $1`, old.name).Scan(&oldID)
	if _, err := b.store.db.write.Exec(`DELETE FROM users WHERE id = $1`, oldID); err != nil {
		t.Fatal(err)
	}
	next := b.newUser()
	var nextID int64
	b.store.db.read.QueryRow(`SELECT id FROM users WHERE username = $1`, next.name).Scan(&nextID)
	if nextID != oldID {
		t.Fatalf("the new account got id %d, not the old one's %d: this test needs it", nextID, oldID)
	}
	id := b.newCollection(next) // one write
	if got := a.listCollections(next); len(got.Collections) != 1 || got.Collections[0].UUID != id {
		t.Fatalf("the new account is shown %+v, want only its own collection %s", got.Collections, id)
	}
}

// TestNewAccountOnAnOrphanedIDStartsEmpty: an account deleted with
// foreign keys off (the sqlite3 shell's default) leaves its collections
// and version row behind; the next account, given its id, gets neither.
func TestNewAccountOnAnOrphanedIDStartsEmpty(t *testing.T) {
	dsn := filepath.Join(t.TempDir(), "orphans.db")
	app := newTestApp(t, withDSN(dsn))
	old := app.newUser()
	app.newCollection(old)
	app.newCollection(old)
	shell, err := sql.Open("sqlite", "file:"+dsn) // foreign keys off, as the shell has them
	if err != nil {
		t.Fatal(err)
	}
	defer shell.Close()
	if _, err := shell.Exec(`DELETE FROM users WHERE username = $1`, old.name); err != nil {
		t.Fatal(err)
	}
	next := app.newUser()
	if got := app.listCollections(next); len(got.Collections) != 0 {
		t.Fatalf("the new account is shown the deleted one's collections: %+v", got.Collections)
	}
	var orphans, count int
	app.store.db.read.QueryRow(`SELECT count(*) FROM collections`).Scan(&orphans)
	app.store.db.read.QueryRow(`SELECT collections FROM user_versions`).Scan(&count)
	if orphans != 0 || count != 0 {
		t.Fatalf("after the new account: %d collections stored, its count %d; want 0 and 0", orphans, count)
	}
}
