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
// WAL-index change key before writing; SQLite moves its commit counter by
// exactly one at the commit, so the key read back after it is the one our
// commit left when the counter moved by exactly one (the salt moves too
// when our commit restarts the WAL, the first commit after a checkpoint
// copied all of it back). If the key found before a commit is not the one
// our last commit left, another process committed in between, and the
// epoch moves on, which every entry read before carries. A request trusts
// the chain only while the key it reads is still the one our last commit
// left. A commit that changed no stored byte moves no key, so nothing is
// trusted after it until our next commit (the next move may be another
// process's). Anything else (another process's checkpoint restarting the
// WAL) makes a key differ from the one our commit left: entries are then
// read again, never served stale.
type ownCommits struct {
	wal *walIndex

	mu      sync.RWMutex
	last    changeKey // the key our last commit left, when lastOK
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
func (o *ownCommits) before() (key changeKey, ok bool) {
	if o == nil {
		return changeKey{}, false
	}
	return o.wal.changes()
}

// ownCommit is one commit of ours, as ownCommits learns of it.
type ownCommit struct {
	key   changeKey // the change key found before it, while the writer held the write lock
	keyOK bool      // false: unknown
	// wrote is true when the commit surely changed a stored byte, so that
	// it moves the change key; a commit that wrote nothing leaves the key
	// where it was, for another process's commit to move on.
	wrote    bool
	users    []int64       // the users whose rows it may change
	versions []userVersion // the versions it leaves users at
}

// chained reports whether nothing but our commits came since our last
// one; o.mu held.
func (o *ownCommits) chained(c ownCommit) bool {
	return c.keyOK && o.lastOK && c.key == o.last
}

// committed records c, committed, and tells the account cache the
// versions its writes left users at.
func (o *ownCommits) committed(c ownCommit) {
	if o == nil {
		return
	}
	o.mu.Lock()
	// What made an entry valid just before this commit: only such an
	// entry may take a version the commit wrote.
	epochBefore, chained := o.epoch, o.chained(c)
	var touchedBefore map[int64]int64
	if len(c.versions) > 0 {
		touchedBefore = make(map[int64]int64, len(c.versions))
		for _, v := range c.versions {
			touchedBefore[v.id] = o.touched[v.id]
		}
	}
	o.seq++
	if !chained {
		o.epoch++ // another process committed since our last commit
	}
	if len(o.touched)+len(c.users) > maxTouched {
		clear(o.touched)
		o.epoch++
	}
	for _, id := range c.users {
		o.touched[id] = o.seq
	}
	// The key the commit left, read back: ours when iChange moved by
	// exactly one, since only a commit moves it, and a commit that wrote
	// moves it (one that wrote nothing leaves it as it was, for the next
	// commit of another process to move by one). The salt moved too if
	// this commit found the WAL wholly copied back by a checkpoint and
	// started it over, which changes no data. Any other key (another
	// commit came in between, or the header was being written) trusts
	// nothing until our next commit.
	after, afterOK := o.wal.changes()
	o.last, o.lastOK = after, c.keyOK && c.wrote && afterOK && after.change == c.key.change+1
	st, trusted := commitStamp{epoch: o.epoch, seq: o.seq, key: o.last}, o.lastOK
	o.mu.Unlock()
	// Entries take the versions the commit wrote only at a key known to
	// be the one it left: a key read back past another commit would
	// vouch for what that commit changed too.
	if trusted && o.accounts != nil && len(c.versions) > 0 {
		validBefore := func(e accountEntry) bool {
			return e.seen == c.key ||
				chained && e.epoch == epochBefore && touchedBefore[e.acct.id] <= e.seq
		}
		o.accounts.wrote(st, validBefore, c.versions)
	}
}

// commitStamp is what ownCommits knew right after one of our commits.
// An account entry that holds what the commit wrote carries it: the entry
// is then exactly as valid as one read right after the commit.
type commitStamp struct {
	epoch, seq int64
	key        changeKey // the change key the commit left
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
func (o *ownCommits) valid(id, epoch, seq int64, key changeKey) bool {
	if o == nil {
		return false
	}
	o.mu.RLock()
	defer o.mu.RUnlock()
	return o.lastOK && key == o.last && epoch == o.epoch && o.touched[id] <= seq
}
