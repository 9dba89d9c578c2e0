package main

import (
	"context"
	"encoding/binary"
	"testing"
)

// fakeWAL is a WAL-index header in memory, as SQLite lays it out: two
// equal copies, isInit set, iChange at byte 8 and the first salt at 32.
type fakeWAL struct{ w *walIndex }

func newFakeWAL() fakeWAL {
	mem := make([]byte, walIndexMapped)
	f := fakeWAL{&walIndex{mem: mem}}
	f.set(7, 1)
	return f
}

// set writes the header with salt and iChange.
func (f fakeWAL) set(salt, iChange uint32) {
	for _, base := range []int{0, walHeaderBytes} {
		f.w.mem[base+12] = 1
		binary.NativeEndian.PutUint32(f.w.mem[base+8:], iChange)
		binary.NativeEndian.PutUint32(f.w.mem[base+32:], salt)
	}
}

func (f fakeWAL) key() int64 {
	k, ok := f.w.changes()
	if !ok {
		panic("fake header unreadable")
	}
	return k
}

// TestOwnCommitsTrustOnlyWhatTheyWrote: between a COMMIT and the writer
// recording it, a request that reads the key the commit leaves may trust
// the entries of users the commit does not touch, but only when the
// commit surely wrote (else that key can be another process's commit);
// and after a commit that wrote nothing, nothing is trusted until a commit
// of ours chains again.
func TestOwnCommitsTrustOnlyWhatTheyWrote(t *testing.T) {
	const kate, otto = 1, 2
	wal := newFakeWAL()
	o := newOwnCommits(wal.w)
	// commitOf is a commit of ours beginning now, at the key as it stands.
	commitOf := func(wrote bool, users ...int64) ownCommit {
		return ownCommit{key: wal.key(), keyOK: true, wrote: wrote, users: users}
	}

	// A first commit of ours chains the key.
	c := commitOf(true, kate)
	wal.set(7, 2)
	o.committed(c)
	epoch, seq := o.stamp()
	if !o.valid(otto, epoch, seq, wal.key()) || !o.valid(kate, epoch, seq, wal.key()) {
		t.Fatal("entries stamped after our commit are not valid at the key it left")
	}

	// The next one, between its COMMIT and committed.
	c = commitOf(true, kate)
	o.committing(c)
	wal.set(7, 3) // the COMMIT moved the key
	if !o.valid(otto, epoch, seq, wal.key()) {
		t.Error("an entry of a user the commit under way does not touch is not trusted at the key it leaves")
	}
	if o.valid(kate, epoch, seq, wal.key()) {
		t.Error("an entry of a user the commit under way touches is trusted at the key it leaves")
	}
	o.committed(c)
	if !o.valid(otto, epoch, seq, wal.key()) || o.valid(kate, epoch, seq, wal.key()) {
		t.Error("after the commit: want otto's entry valid and kate's not")
	}

	// A commit that wrote nothing leaves the key; another process's commit
	// then moves it to the key ours would have left.
	c = commitOf(false)
	o.committing(c)
	o.committed(c)
	wal.set(7, 4) // another process
	if o.valid(otto, epoch, seq, wal.key()) {
		t.Error("after a commit of ours that wrote nothing, another process's commit is trusted as ours")
	}
	// Our next commit does not chain to it: the entries read before stay
	// stale, those read after are valid.
	c = commitOf(true, kate)
	o.committing(c)
	wal.set(7, 5)
	if o.valid(otto, epoch, seq, wal.key()) {
		t.Error("an entry read before another process's commit is trusted during our next commit")
	}
	o.committed(c)
	if o.valid(otto, epoch, seq, wal.key()) {
		t.Error("an entry read before another process's commit is trusted after our next commit")
	}
	epoch, seq = o.stamp()
	if !o.valid(otto, epoch, seq, wal.key()) {
		t.Error("an entry read after our commit is not trusted")
	}

	// A commit that restarts the WAL (a new salt) is still ours when
	// iChange moved by one; a COMMIT that fails trusts nothing after it.
	c = commitOf(true, kate)
	wal.set(8, 6)
	o.committed(c)
	if !o.valid(otto, epoch, seq, wal.key()) {
		t.Error("an entry is not trusted after our commit that restarted the WAL")
	}
	c = commitOf(true, kate)
	o.committing(c)
	o.abandoned()
	if o.valid(otto, epoch, seq, wal.key()) {
		t.Error("an entry is trusted after a COMMIT that failed")
	}
}

// TestACommitThatWroteNothingIsNotTrustedForAnother: through two
// processes on one file, a commit of this process that changes nothing,
// then a write through the other: this process reads the account again.
func TestACommitThatWroteNothingIsNotTrustedForAnother(t *testing.T) {
	ctx := context.Background()
	a, b := twoMappedStores(t)
	uuid, acct := newAccount(t, a, a, "kate")
	if _, err := a.SyncRequests(ctx, "test", 1); err != nil { // ours, chained
		t.Fatal(err)
	}
	if _, err := a.Account(ctx, uuid); err != nil {
		t.Fatal(err)
	}
	if _, err := a.SyncRequests(ctx, "test", 1); err != nil { // the same total: writes nothing
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
}
