package main

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"strconv"
	"sync"
	"time"
)

// Accounts as stored: users, failed logins, and the cache of the account
// a request reads when it begins.

// user is an account as stored.
type user struct {
	ID           int64
	UUID         string // names the account in its tokens; never reused
	Username     string
	PasswordHash string
}

// account is the signed-in user as one request sees it: the row id, and
// the version of the user's collections when the request began.
type account struct {
	id      int64
	version int64
}

// CreateUser adds an account named by a new random UUID, which it
// returns, or errUsernameTaken when the name exists in any letter case.
// The unique index decides, so racing registrations of one name create
// one account.
func (s *Store) CreateUser(ctx context.Context, username, passwordHash string) (string, error) {
	id := newUUID()
	err := s.db.withTx(ctx, func(tx *writeTx) error {
		if err := tx.exec(qInsertUser, id, username, passwordHash); err != nil {
			return err
		}
		tx.changed()
		return nil
	})
	if isUniqueViolation(err) {
		return "", errUsernameTaken
	}
	if err != nil {
		return "", fmt.Errorf("create user: %w", err)
	}
	return id, nil
}

// UserByName finds an account by name in any letter case, folded exactly
// as the unique index folds it: ASCII letters only.
func (s *Store) UserByName(ctx context.Context, username string) (user, error) {
	var u user
	st, err := s.db.readStmt(ctx, `SELECT id, uuid, username, password_hash FROM users WHERE lower(username) = $1`)
	if err != nil {
		return u, fmt.Errorf("find user: %w", err)
	}
	err = st.QueryRowContext(ctx, asciiLower(username)).Scan(&u.ID, &u.UUID, &u.Username, &u.PasswordHash)
	if errors.Is(err, sql.ErrNoRows) {
		return u, errNotFound
	}
	if err != nil {
		return u, fmt.Errorf("find user: %w", err)
	}
	return u, nil
}

// asciiLower lower-cases ASCII letters only, as SQL's lower() does for
// the unique index: strings.ToLower would also fold, say, the Kelvin sign
// into "k" and let "\u212aate" log into "kate".
func asciiLower(s string) string {
	b := []byte(s)
	for i, c := range b {
		if 'A' <= c && c <= 'Z' {
			b[i] = c + 'a' - 'A'
		}
	}
	return string(b)
}

// LoginLock returns how long the lock on username (any letter case) has
// left, 0 when there is none, and whether failed logins are on record.
func (s *Store) LoginLock(ctx context.Context, username string, now time.Time) (left time.Duration, failures bool, err error) {
	st, err := s.db.readStmt(ctx, `SELECT locked_until FROM login_failures WHERE username = $1`)
	if err != nil {
		return 0, false, fmt.Errorf("read login lock: %w", err)
	}
	var until int64
	err = st.QueryRowContext(ctx, asciiLower(username)).Scan(&until)
	if errors.Is(err, sql.ErrNoRows) {
		return 0, false, nil
	}
	if err != nil {
		return 0, false, fmt.Errorf("read login lock: %w", err)
	}
	return max(time.Unix(until, 0).Sub(now), 0), true, nil
}

// LoginFailed records a failed login of username. The maxFailures-th
// failure within window of the first locks the name for window: locked
// reports that this failure did. Rows of windows long past are swept now
// and then, a few at a time.
func (s *Store) LoginFailed(ctx context.Context, username string, now time.Time, maxFailures int, window time.Duration) (locked bool, err error) {
	secs := int64(window / time.Second)
	err = s.db.withTx(ctx, func(tx *writeTx) error {
		var until int64
		if err := tx.queryRow(qLoginFailed, asciiLower(username), now.Unix(), maxFailures, secs).Scan(&until); err != nil {
			return err
		}
		locked = until == now.Unix()+secs
		if rand.N(100) == 0 {
			return tx.exec(qSweepLoginFailures, now.Unix()-secs)
		}
		return nil
	})
	if err != nil {
		return false, fmt.Errorf("record failed login: %w", err)
	}
	return locked, nil
}

// LoginSucceeded forgets the failed logins of username.
func (s *Store) LoginSucceeded(ctx context.Context, username string) error {
	err := s.db.withTx(ctx, func(tx *writeTx) error { return tx.exec(qLoginSucceeded, asciiLower(username)) })
	if err != nil {
		return fmt.Errorf("forget failed logins: %w", err)
	}
	return nil
}

// accountCache spares most requests their account's point read on SQLite.
// Its invariant: an entry is served only while the database's change
// counter (PRAGMA data_version, which moves whenever any connection of
// any process commits) still reads what it read just before the entry was
// read, and that counter is read anew for every request, by a read that
// began after the request did (freshRead). So no commit anywhere has come
// between the entry and the request, and the entry is what a point read
// would answer now. When anything commits, every entry is read again once.
// Concurrent requests share one read of the counter, so a quiet database
// answers a crowd with one small read at a time instead of one per
// request; a busy one costs one read more per request than none.
// PostgreSQL has no such counter: every request reads its account.
type accountCache struct {
	// wal reads the counter from the WAL-index header, without a query;
	// nil where it cannot be mapped. changes reads it with one.
	wal     *walIndex
	changes *freshRead[changeKey]
	conn    *sql.Conn // the counter is per connection: one kept for it
	stmt    *sql.Stmt
	max     int

	mu      sync.RWMutex
	entries map[string]accountEntry
	uuids   map[int64]string // the UUID of each entry's account, by id
}

type accountEntry struct {
	acct account
	seen changeKey // the change key read before acct was
	// epoch and seq: ownCommits' stamp, read before acct was
	epoch, seq int64
}

// maxCachedAccounts bounds the cache (about 100 bytes an entry).
const maxCachedAccounts = 100_000

// newAccountCache returns a cache for the database, or nil when its
// dialect has no change counter.
func newAccountCache(ctx context.Context, d *db) (*accountCache, error) {
	if d.dialect.changeCounter == "" {
		return nil, nil
	}
	conn, err := d.read.Conn(ctx)
	if err != nil {
		return nil, err
	}
	stmt, err := conn.PrepareContext(ctx, d.dialect.changeCounter)
	if err != nil {
		conn.Close()
		return nil, err
	}
	c := &accountCache{conn: conn, stmt: stmt, max: maxCachedAccounts, wal: d.wal,
		entries: map[string]accountEntry{}, uuids: map[int64]string{}}
	c.changes = newFreshRead(func(ctx context.Context) (changeKey, error) {
		var v int64
		err := c.stmt.QueryRowContext(ctx).Scan(&v)
		return changeKey{salt: uint32(v >> 32), change: uint32(v)}, err
	})
	return c, nil
}

func (c *accountCache) close() {
	if c != nil {
		c.stmt.Close()
		c.conn.Close()
	}
}

// seen reads the change counter now: from the WAL-index header when it
// is mapped, else with a query that began after the call. The two count
// differently, and a cache uses one of them all its life.
func (c *accountCache) seen(ctx context.Context) (changeKey, error) {
	if c.wal == nil {
		return c.changes.get(ctx)
	}
	if v, ok := c.wal.changes(); ok {
		return v, nil
	}
	return changeKey{}, errors.New("the WAL-index header is being written")
}

// Account returns the account with that UUID as it stands now, or
// errNotFound when there is none.
func (s *Store) Account(ctx context.Context, uuid string) (account, error) {
	c := s.accounts
	if c == nil {
		return s.readAccount(ctx, uuid)
	}
	seen, err := c.seen(ctx)
	if err != nil {
		return s.readAccount(ctx, uuid)
	}
	own := s.db.own
	epoch, seq := own.stamp()
	c.mu.RLock()
	e, ok := c.entries[uuid]
	c.mu.RUnlock()
	if ok && (e.seen == seen || own.valid(e.acct.id, e.epoch, e.seq, seen)) {
		return e.acct, nil
	}
	a, err := s.readAccount(ctx, uuid)
	if err != nil {
		return a, err
	}
	c.mu.Lock()
	if len(c.entries) >= c.max {
		clear(c.entries)
		clear(c.uuids)
	}
	c.entries[uuid] = accountEntry{acct: a, seen: seen, epoch: epoch, seq: seq}
	c.uuids[a.id] = uuid
	c.mu.Unlock()
	return a, nil
}

// wrote records the versions a commit of this process left users at,
// stamped with what ownCommits knew right after it: the entries of those
// users stay served until anything else touches them, instead of each
// going back to the database once. Only an entry that was valid just
// before the commit (validBefore) is written, so the commit's version is
// the only change to what it says; any other entry is left as it is, no
// more valid than it was.
func (c *accountCache) wrote(st commitStamp, validBefore func(accountEntry) bool, versions []userVersion) {
	latest := make(map[int64]int64, len(versions))
	for _, v := range versions {
		latest[v.id] = max(latest[v.id], v.version)
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	for id, version := range latest {
		uuid, ok := c.uuids[id]
		if !ok {
			continue
		}
		e, ok := c.entries[uuid]
		if !ok || e.acct.id != id || e.acct.version >= version || !validBefore(e) {
			continue
		}
		c.entries[uuid] = accountEntry{acct: account{id: id, version: version}, seen: st.key, epoch: st.epoch, seq: st.seq}
	}
}

// accountRecheck is how long an account known to exist is taken to still
// exist by the endpoints that read nothing of it (AccountExists).
const accountRecheck = time.Second

// AccountExists returns errNotFound unless the account with that UUID
// exists. An account found to exist is taken to exist for accountRecheck
// without asking again: only the request counter and the catalogue use
// this, and they read no user data. An account that does not exist is
// asked about every time, so a token from another database never opens
// anything; a deleted account's tokens stop working within a second.
func (s *Store) AccountExists(ctx context.Context, uuid string) error {
	now := time.Now()
	s.existing.mu.RLock()
	seen, ok := s.existing.at[uuid]
	s.existing.mu.RUnlock()
	if ok && now.Sub(seen) < accountRecheck {
		return nil
	}
	if _, err := s.readAccount(ctx, uuid); err != nil {
		return err
	}
	s.existing.mu.Lock()
	if len(s.existing.at) >= maxCachedAccounts {
		clear(s.existing.at)
	}
	s.existing.at[uuid] = now
	s.existing.mu.Unlock()
	return nil
}

// existingAccounts remembers when each account was last found to exist.
type existingAccounts struct {
	mu sync.RWMutex
	at map[string]time.Time
}

// readAccount reads the account as it stands now, in a query that
// concurrent requests share (see freshBatch): by its id when that is
// known (ids), else by its UUID.
func (s *Store) readAccount(ctx context.Context, uuid string) (account, error) {
	if id, ok := s.ids.get(uuid); ok {
		v, ok, err := s.versionReads.get(ctx, id)
		switch {
		case err != nil:
			return account{}, fmt.Errorf("find account: %w", err)
		case ok && v.uuid == uuid:
			return account{id: id, version: v.version}, nil
		}
		// Gone, or the id is another account's now (a backup restored
		// under this process, say): read by UUID.
		s.ids.forget(uuid)
	}
	a, ok, err := s.accountReads.get(ctx, uuid)
	switch {
	case err != nil:
		return a, fmt.Errorf("find account: %w", err)
	case !ok:
		return a, errNotFound
	}
	s.ids.put(uuid, a.id)
	return a, nil
}

// accountIDs is the id of each account's UUID, as found. An id is not
// given to another account where it is kept (stableIDs), so an entry
// stays right for as long as its account exists, and an account that is
// gone is found gone by its id; should the id be given again all the same
// (a restored backup, an identity restarted), the UUID read with it tells.
type accountIDs struct {
	mu  sync.RWMutex
	ids map[string]int64
}

// get returns uuid's id, if known; a nil accountIDs knows none.
func (m *accountIDs) get(uuid string) (int64, bool) {
	if m == nil {
		return 0, false
	}
	m.mu.RLock()
	id, ok := m.ids[uuid]
	m.mu.RUnlock()
	return id, ok
}

func (m *accountIDs) put(uuid string, id int64) {
	if m == nil {
		return
	}
	m.mu.Lock()
	if len(m.ids) >= maxCachedAccounts {
		clear(m.ids)
	}
	m.ids[uuid] = id
	m.mu.Unlock()
}

func (m *accountIDs) forget(uuid string) {
	m.mu.Lock()
	delete(m.ids, uuid)
	m.mu.Unlock()
}

// idVersion is the UUID and version of the account with some id.
type idVersion struct {
	uuid    string
	version int64
}

// readVersions reads the UUID and version of each of the accounts ids
// that exists, by primary key from user_versions. Only a dialect with
// stableIDs (PostgreSQL) reads accounts by id: the statement is
// PostgreSQL's, given the ids as an array literal.
func (s *Store) readVersions(ctx context.Context, ids []int64) (map[int64]idVersion, error) {
	st, err := s.db.readStmt(ctx, `SELECT user_id, uuid, version FROM user_versions WHERE user_id = ANY(CAST($1 AS BIGINT[]))`)
	if err != nil {
		return nil, err
	}
	found := make(map[int64]idVersion, len(ids))
	err = readInChunks(ctx, st, ids, func(ids []int64) string {
		list := make([]byte, 0, 2+8*len(ids))
		list = append(list, '{')
		for i, id := range ids {
			if i > 0 {
				list = append(list, ',')
			}
			list = strconv.AppendInt(list, id, 10)
		}
		return string(append(list, '}'))
	}, func(rows *sql.Rows) error {
		var id int64
		var v idVersion
		err := rows.Scan(&id, &v.uuid, &v.version)
		found[id] = v
		return err
	})
	return found, err
}

// readAccounts reads the accounts of uuids that exist, by indexed point
// reads.
func (s *Store) readAccounts(ctx context.Context, uuids []string) (map[string]account, error) {
	st, err := s.db.readStmt(ctx, `SELECT u.uuid, u.id, v.version FROM users u JOIN user_versions v ON v.user_id = u.id
		WHERE u.uuid IN (`+s.db.dialect.jsonTexts+`)`)
	if err != nil {
		return nil, err
	}
	found := make(map[string]account, len(uuids))
	err = readInChunks(ctx, st, uuids, func(uuids []string) string {
		list, _ := json.Marshal(uuids) // strings always marshal
		return string(list)
	}, func(rows *sql.Rows) error {
		var uuid string
		var a account
		err := rows.Scan(&uuid, &a.id, &a.version)
		found[uuid] = a
		return err
	})
	return found, err
}

// maxAccountsPerRead is the most accounts one statement reads.
const maxAccountsPerRead = 500

// readInChunks runs st for keys, a statement per up to maxAccountsPerRead
// of them given as list(chunk), and calls scan for each row it answers.
func readInChunks[K any](ctx context.Context, st *sql.Stmt, keys []K, list func([]K) string, scan func(*sql.Rows) error) error {
	for len(keys) > 0 {
		n := min(len(keys), maxAccountsPerRead)
		rows, err := st.QueryContext(ctx, list(keys[:n]))
		if err != nil {
			return err
		}
		keys = keys[n:]
		for rows.Next() {
			if err := scan(rows); err != nil {
				rows.Close()
				return err
			}
		}
		if err := rows.Close(); err != nil {
			return err
		}
		if err := rows.Err(); err != nil {
			return err
		}
	}
	return nil
}
