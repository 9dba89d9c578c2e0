package main

import (
	"context"
	"database/sql"
)

// writeTx is one write in a transaction. Work that runs inside one takes
// a *writeTx, not the store, so it cannot reach the writer pool by
// mistake: on SQLite that pool is the one connection the transaction
// already holds, and a second use of it would wait until the context ends.
// Its statements run on the transaction's own context, not the caller's:
// a client hanging up half-way through a statement must not roll back the
// other writes committed with it (see groupCommit).
type writeTx struct {
	tx  *sql.Tx
	db  *db // for its prepared statements only
	ctx context.Context
	// touched lists the users whose rows the transaction changes, for
	// ownCommits; shared by the writes of one batch.
	touched *[]int64
	// versions lists the versions this write leaves its users at, for
	// ownCommits to pass on once the write is committed; the write's own.
	versions *[]userVersion
	// wrote is set once the write has surely changed a stored byte, so
	// that its commit moves SQLite's change counter (see ownCommits); the
	// write's own. SQLite writes no page for an UPDATE that stores what
	// was there, so a statement that matched a row is not enough.
	wrote *bool
	// bound is the statements bound to tx so far, shared by the writes
	// of one batch, so that each is bound once a transaction; nil: bound
	// at each use.
	bound *[numWriteQueries]*sql.Stmt
}

// userVersion is the version a write leaves a user at.
type userVersion struct {
	id, version int64
}

// touch records that the transaction changes user id's row.
func (t *writeTx) touch(id int64) {
	if t.touched != nil {
		*t.touched = append(*t.touched, id)
	}
}

// leaves records that the write, once committed, leaves user id at
// version (the user_versions.version it set, one past the one stored: so
// the write changed a stored byte).
func (t *writeTx) leaves(id, version int64) {
	if t.versions != nil {
		*t.versions = append(*t.versions, userVersion{id, version})
	}
	t.changed()
}

// changed records that the write has changed a stored byte.
func (t *writeTx) changed() {
	if t.wrote != nil {
		*t.wrote = true
	}
}

// stmt returns q bound to this transaction.
func (t *writeTx) stmt(q writeQuery) *sql.Stmt {
	if t.bound == nil {
		return t.tx.StmtContext(t.ctx, t.db.writeStmts[q])
	}
	if t.bound[q] == nil {
		t.bound[q] = t.tx.StmtContext(t.ctx, t.db.writeStmts[q])
	}
	return t.bound[q]
}

func (t *writeTx) exec(q writeQuery, args ...any) error {
	_, err := t.stmt(q).ExecContext(t.ctx, args...)
	return err
}

func (t *writeTx) queryRow(q writeQuery, args ...any) *sql.Row {
	return t.stmt(q).QueryRowContext(t.ctx, args...)
}
