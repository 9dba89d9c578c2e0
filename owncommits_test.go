package main

import (
	"context"
	"encoding/binary"
	"testing"
	"time"
)

// fakeWAL is a WAL-index header in memory, as SQLite lays it out: two
// equal copies, isInit set, iChange at byte 8, mxFrame at 16 and the
// first salt at 32.
type fakeWAL struct{ w *walIndex }

func newFakeWAL() fakeWAL {
	mem := make([]byte, walIndexMapped)
	f := fakeWAL{&walIndex{mem: mem}}
	f.set(7, 1)
	return f
}

// set writes the header with salt and iChange, and as many frames as
// commits: each commit writes at least one.
func (f fakeWAL) set(salt, iChange uint32) { f.setFrames(salt, iChange, iChange) }

// setFrames writes the header with salt, iChange and mxFrame.
func (f fakeWAL) setFrames(salt, iChange, mxFrame uint32) {
	for _, base := range []int{0, walHeaderBytes} {
		f.w.mem[base+12] = 1
		binary.NativeEndian.PutUint32(f.w.mem[base+8:], iChange)
		binary.NativeEndian.PutUint32(f.w.mem[base+16:], mxFrame)
		binary.NativeEndian.PutUint32(f.w.mem[base+32:], salt)
	}
}

func (f fakeWAL) key() changeKey {
	k, ok := f.w.changes()
	if !ok {
		panic("fake header unreadable")
	}
	return k
}

// TestOwnCommitsTrustOnlyWhatTheyWrote: after a commit of ours, entries
// of users it did not touch stay trusted at the key it left, but only
// when the commit surely wrote (else that key can be another process's
// commit) and only when nothing but our commit moved the key.
func TestOwnCommitsTrustOnlyWhatTheyWrote(t *testing.T) {
	const kate, otto = 1, 2
	wal := newFakeWAL()
	o := newOwnCommits(wal.w)
	// commit is a commit of ours that found the key as it stands, wrote
	// or not, touched users, and left the header at (salt, iChange).
	commit := func(wrote bool, salt, iChange uint32, users ...int64) {
		c := ownCommit{key: wal.key(), keyOK: true, wrote: wrote, users: users}
		wal.set(salt, iChange)
		o.committed(c)
	}

	// A first commit of ours chains the key.
	commit(true, 7, 2, kate)
	epoch, seq := o.stamp()
	if !o.valid(otto, epoch, seq, wal.key()) || !o.valid(kate, epoch, seq, wal.key()) {
		t.Fatal("entries stamped after our commit are not valid at the key it left")
	}

	// The next one touches kate only.
	commit(true, 7, 3, kate)
	if !o.valid(otto, epoch, seq, wal.key()) || o.valid(kate, epoch, seq, wal.key()) {
		t.Error("after a commit touching kate: want otto's entry valid and kate's not")
	}

	// A commit that wrote nothing leaves the key; another process's commit
	// then moves it to the key ours would have left.
	commit(false, 7, 3)
	wal.set(7, 4) // another process
	if o.valid(otto, epoch, seq, wal.key()) {
		t.Error("after a commit of ours that wrote nothing, another process's commit is trusted as ours")
	}
	// Our next commit does not chain to it: the entries read before stay
	// stale, those read after are valid.
	commit(true, 7, 5, kate)
	if o.valid(otto, epoch, seq, wal.key()) {
		t.Error("an entry read before another process's commit is trusted after our next commit")
	}
	epoch, seq = o.stamp()
	if !o.valid(otto, epoch, seq, wal.key()) {
		t.Error("an entry read after our commit is not trusted")
	}

	// A commit that wrote nothing, and another process's commit landing
	// before ours is read back: the key moved by one, but not by ours.
	commit(false, 7, 6)
	if o.valid(otto, epoch, seq, wal.key()) {
		t.Error("another process's commit right after one of ours that wrote nothing is trusted as ours")
	}
	commit(true, 7, 7, kate)
	epoch, seq = o.stamp()

	// A commit said to write that left the key where it was: nothing is
	// trusted after it, whoever moves the key next.
	commit(true, 7, 7, kate) // the key as it was
	wal.set(7, 8)            // another process
	if o.valid(otto, epoch, seq, wal.key()) {
		t.Error("after a commit of ours that moved nothing, another process's commit is trusted as ours")
	}
	commit(true, 7, 9, kate)
	epoch, seq = o.stamp()

	// A commit that restarts the WAL (a new salt) is still ours when
	// iChange moved by one...
	commit(true, 8, 10, kate)
	if !o.valid(otto, epoch, seq, wal.key()) {
		t.Error("an entry is not trusted after our commit that restarted the WAL")
	}
	// ...and not when another process committed too before it was read.
	commit(true, 9, 12, kate)
	if o.valid(otto, epoch, seq, wal.key()) {
		t.Error("another process's commit right after our restarting one is trusted as ours")
	}
}

// TestOwnVersionsOnlyAtTheKeyTheCommitLeft: a commit of ours writes
// kate's version into her cached account, to be served at the key the
// commit left; when another process's commit lands before that key is
// read back, the key read back vouches for that commit too, and kate's
// account must be read again.
func TestOwnVersionsOnlyAtTheKeyTheCommitLeft(t *testing.T) {
	const kate = 1
	tests := []struct {
		name      string
		iChange   uint32 // read back after our commit, which found 1
		servedVer int64  // the version served at that key; 0: none
	}{
		{"only our commit", 2, 4},
		{"another process's commit too", 3, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			wal := newFakeWAL()
			o := newOwnCommits(wal.w)
			c := &accountCache{wal: wal.w, max: maxCachedAccounts, entries: map[string]accountEntry{}, uuids: map[int64]string{}}
			o.accounts = c
			epoch, seq := o.stamp()
			c.entries["kate"] = accountEntry{acct: account{id: kate, version: 3}, seen: wal.key(), epoch: epoch, seq: seq}
			c.uuids[kate] = "kate"

			commit := ownCommit{key: wal.key(), keyOK: true, wrote: true, users: []int64{kate}, versions: []userVersion{{kate, 4}}}
			wal.set(7, tt.iChange)
			o.committed(commit)
			e := c.entries["kate"]
			var served int64
			if e.seen == wal.key() || o.valid(kate, e.epoch, e.seq, wal.key()) {
				served = e.acct.version
			}
			if served != tt.servedVer {
				t.Errorf("kate's account served at version %d (0: read again); want %d", served, tt.servedVer)
			}
		})
	}
}

// TestACommitThatWroteNothingIsNotTrustedForAnother: through two
// processes on one file, a commit of this process that changes no stored
// byte, then a write through the other: this process reads the account
// again instead of taking the other's commit for its own.
func TestACommitThatWroteNothingIsNotTrustedForAnother(t *testing.T) {
	now := time.Now()
	tests := []struct {
		name    string
		nothing func(ctx context.Context, s *Store) error // a commit that changes no byte
	}{
		{"a counter flush with nothing new", func(ctx context.Context, s *Store) error {
			_, err := s.SyncRequests(ctx, "test", 1) // the total already stored
			return err
		}},
		{"a failed login stored again as it was (a lockout under a second)", func(ctx context.Context, s *Store) error {
			_, err := s.LoginFailed(ctx, "mallory", now, 5, 500*time.Millisecond)
			return err
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ctx := context.Background()
			a, b := twoMappedStores(t)
			uuid, acct := newAccount(t, a, a, "kate")
			// Once to store it, and a write of ours that chains the key.
			if err := tt.nothing(ctx, a); err != nil {
				t.Fatal(err)
			}
			if err := a.db.withTx(ctx, func(tx *writeTx) error { _, err := bumpUser(tx, acct.id, 0); return err }); err != nil {
				t.Fatal(err)
			}
			if _, err := a.Account(ctx, uuid); err != nil {
				t.Fatal(err)
			}
			if err := tt.nothing(ctx, a); err != nil {
				t.Fatal(err)
			}
			var version int64
			if err := b.db.withTx(ctx, func(tx *writeTx) (err error) {
				version, err = bumpUser(tx, acct.id, 0)
				return err
			}); err != nil {
				t.Fatal(err)
			}
			got, err := a.Account(ctx, uuid)
			if err != nil {
				t.Fatal(err)
			}
			if got.version != version {
				t.Errorf("account at version %d after another process wrote %d", got.version, version)
			}
		})
	}
}
