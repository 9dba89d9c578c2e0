package main

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"sync"
)

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
	changes *freshRead[int64]
	conn    *sql.Conn // the counter is per connection: one kept for it
	stmt    *sql.Stmt
	max     int

	mu      sync.RWMutex
	entries map[string]accountEntry
}

type accountEntry struct {
	acct account
	seen int64 // the change counter read before acct was
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
	c := &accountCache{conn: conn, stmt: stmt, max: maxCachedAccounts, entries: map[string]accountEntry{}}
	c.changes = newFreshRead(func(ctx context.Context) (v int64, err error) {
		err = c.stmt.QueryRowContext(ctx).Scan(&v)
		return v, err
	})
	return c, nil
}

func (c *accountCache) close() {
	if c != nil {
		c.stmt.Close()
		c.conn.Close()
	}
}

// Account returns the account with that UUID as it stands now, or
// errNotFound when there is none.
func (s *Store) Account(ctx context.Context, uuid string) (account, error) {
	c := s.accounts
	if c == nil {
		return s.readAccount(ctx, uuid)
	}
	seen, err := c.changes.get(ctx)
	if err != nil {
		return s.readAccount(ctx, uuid)
	}
	c.mu.RLock()
	e, ok := c.entries[uuid]
	c.mu.RUnlock()
	if ok && e.seen == seen {
		return e.acct, nil
	}
	a, err := s.readAccount(ctx, uuid)
	if err != nil {
		return a, err
	}
	c.mu.Lock()
	if len(c.entries) >= c.max {
		clear(c.entries)
	}
	c.entries[uuid] = accountEntry{acct: a, seen: seen}
	c.mu.Unlock()
	return a, nil
}

// readAccount reads the account with one indexed point read.
func (s *Store) readAccount(ctx context.Context, uuid string) (account, error) {
	var a account
	st, err := s.db.readStmt(ctx, `SELECT id, version FROM users WHERE uuid = $1`)
	if err != nil {
		return a, fmt.Errorf("find account: %w", err)
	}
	err = st.QueryRowContext(ctx, uuid).Scan(&a.id, &a.version)
	if errors.Is(err, sql.ErrNoRows) {
		return a, errNotFound
	}
	if err != nil {
		return a, fmt.Errorf("find account: %w", err)
	}
	return a, nil
}
