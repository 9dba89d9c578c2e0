package main

import "sync"

// ownCommits keeps a cached account valid across this process's own
// commits to a SQLite file, unless they touched its user: without it,
// every commit (a counter flush, another user's write) would send every
// request back to the database for its account.
//
// Its invariant: valid(e) holds only if every commit since e was read is
// one of ours and none of them touched e's user. The writer, holding the
// write lock (so no other process can commit meanwhile), reads the
// WAL-index change key before writing; SQLite moves the key by exactly one
// at the commit, so the key our commit leaves is that plus one. If the key
// found before a commit is not the one our last commit left, another
// process committed in between, and the epoch moves on, which every entry
// read before carries. A request trusts the chain only while the key it
// reads is still the one our last commit left. When our commit restarts
// the WAL (the first commit after a checkpoint copied all of it back), the
// salt in the key changes too; the key it left is then read back, taken
// only when the commit counter shows no other commit since. Anything else
// unforeseen (a transaction that wrote nothing, another process's
// checkpoint restarting the WAL) makes a key differ from the one foreseen:
// entries are then read again, never served stale.
type ownCommits struct {
	wal *walIndex

	mu      sync.RWMutex
	last    int64 // the key our last commit left, when lastOK
	lastOK  bool
	epoch   int64           // moves when another process's commit is seen
	seq     int64           // our commits so far
	touched map[int64]int64 // user id → seq of our last commit that touched it

	// accounts, when set, learns the versions our commits leave users
	// at (accountCache.wrote). Set before the first write.
	accounts *accountCache
}

// maxTouched bounds the touched users remembered; past it, the epoch
// moves on and they are forgotten.
const maxTouched = 100_000

func newOwnCommits(wal *walIndex) *ownCommits {
	return &ownCommits{wal: wal, touched: map[int64]int64{}}
}

// before reads the change key while the writer holds the write lock.
func (o *ownCommits) before() (key int64, ok bool) {
	if o == nil {
		return 0, false
	}
	return o.wal.changes()
}

// committed records a commit of ours that found key before it (ok false:
// unknown) and touched users, and tells the account cache the versions
// its writes left users at.
func (o *ownCommits) committed(key int64, ok bool, users []int64, versions []userVersion) {
	if o == nil {
		return
	}
	o.mu.Lock()
	// What made an entry valid just before this commit: only such an
	// entry may take a version the commit wrote.
	epochBefore, chained := o.epoch, ok && o.lastOK && key == o.last
	var touchedBefore map[int64]int64
	if len(versions) > 0 {
		touchedBefore = make(map[int64]int64, len(versions))
		for _, v := range versions {
			touchedBefore[v.id] = o.touched[v.id]
		}
	}
	o.seq++
	if !ok || !o.lastOK || key != o.last {
		o.epoch++ // another process committed since our last commit
	}
	if len(o.touched)+len(users) > maxTouched {
		clear(o.touched)
		o.epoch++
	}
	for _, id := range users {
		o.touched[id] = o.seq
	}
	// iChange, the low half of the key, moves by one; the salt stays...
	o.last, o.lastOK = key&^0xffffffff|int64(uint32(key)+1), ok
	// ...unless this commit found the WAL wholly copied back by a
	// checkpoint and started it over, which gives the WAL a new salt:
	// what changed no data. A commit that wrote a page does this, and
	// every write that leaves a user at a version wrote one. Only a
	// commit moves iChange, so if it is now just one past the key found
	// before, no other commit came in between.
	if after, afterOK := o.wal.changes(); ok && afterOK && len(versions) > 0 && uint32(after) == uint32(key)+1 {
		o.last = after
	}
	st := commitStamp{epoch: o.epoch, seq: o.seq, key: o.last}
	o.mu.Unlock()
	if ok && o.accounts != nil && len(versions) > 0 {
		validBefore := func(e accountEntry) bool {
			return e.seen == key ||
				chained && e.epoch == epochBefore && touchedBefore[e.acct.id] <= e.seq
		}
		o.accounts.wrote(st, validBefore, versions)
	}
}

// commitStamp is what ownCommits knew right after one of our commits.
// An account entry that holds what the commit wrote carries it: the entry
// is then exactly as valid as one read right after the commit.
type commitStamp struct {
	epoch, seq int64
	key        int64 // the change key the commit left
}

// stamp is what an entry read now carries: the epoch and our commits so
// far.
func (o *ownCommits) stamp() (epoch, seq int64) {
	if o == nil {
		return 0, 0
	}
	o.mu.RLock()
	defer o.mu.RUnlock()
	return o.epoch, o.seq
}

// valid reports whether an entry of user id stamped (epoch, seq) still
// holds, the change key being key now.
func (o *ownCommits) valid(id, epoch, seq, key int64) bool {
	if o == nil {
		return false
	}
	o.mu.RLock()
	defer o.mu.RUnlock()
	return o.lastOK && key == o.last && epoch == o.epoch && o.touched[id] <= seq
}
