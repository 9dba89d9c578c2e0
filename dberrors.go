package main

import (
	"database/sql"
	"database/sql/driver"
	"errors"
	"fmt"
	"net"
	"strings"

	"github.com/jackc/pgx/v5/pgconn"
	"modernc.org/sqlite"
	sqlite3 "modernc.org/sqlite/lib"
)

// What the database's errors mean: which are the client's doing (a taken
// name, a user gone), which mean "come back later" (503), and which may
// simply be tried again.

// isUniqueViolation reports whether err is a UNIQUE or PRIMARY KEY
// constraint failure, by the driver's error code.
func isUniqueViolation(err error) bool {
	var se *sqlite.Error
	if errors.As(err, &se) {
		return se.Code() == sqlite3.SQLITE_CONSTRAINT_UNIQUE || se.Code() == sqlite3.SQLITE_CONSTRAINT_PRIMARYKEY
	}
	var pe *pgconn.PgError
	return errors.As(err, &pe) && pe.Code == "23505"
}

// isForeignKeyViolation reports whether err is a foreign key failure.
func isForeignKeyViolation(err error) bool {
	var se *sqlite.Error
	if errors.As(err, &se) {
		return se.Code() == sqlite3.SQLITE_CONSTRAINT_FOREIGNKEY
	}
	var pe *pgconn.PgError
	return errors.As(err, &pe) && pe.Code == "23503"
}

// errDatabaseGone is the error of a write to a SQLite file that is no
// longer at its path: removed (with its folder, say) or replaced. Writes
// to the open, unlinked file would be acknowledged and then lost.
var errDatabaseGone = errors.New("the database file is no longer at its path")

// errDatabaseClosed answers a write that comes once the store is closed
// (a handler still running when shutdown gives up waiting): unavailable.
var errDatabaseClosed = fmt.Errorf("the database is closed: %w", sql.ErrConnDone)

// isUnavailable reports whether err means the database cannot serve now,
// for a while, rather than a bug: busy past the busy timeout, locked,
// read-only, out of space, its file gone, or the server unreachable or
// shutting down. The client is told to come back (503), not that the
// server is broken (500).
func isUnavailable(err error) bool {
	if errors.Is(err, errDatabaseGone) || errors.Is(err, driver.ErrBadConn) || errors.Is(err, sql.ErrConnDone) {
		return true
	}
	var se *sqlite.Error
	if errors.As(err, &se) {
		switch se.Code() & 0xff { // the primary result code
		case sqlite3.SQLITE_BUSY, sqlite3.SQLITE_LOCKED, sqlite3.SQLITE_READONLY, sqlite3.SQLITE_IOERR,
			sqlite3.SQLITE_CANTOPEN, sqlite3.SQLITE_FULL, sqlite3.SQLITE_PROTOCOL:
			return true
		}
		return false
	}
	var pe *pgconn.PgError
	if errors.As(err, &pe) {
		// Connection exceptions, insufficient resources, operator
		// intervention (shutdown), a read-only or recovering server.
		return strings.HasPrefix(pe.Code, "08") || strings.HasPrefix(pe.Code, "53") ||
			strings.HasPrefix(pe.Code, "57") || strings.HasPrefix(pe.Code, "40") || pe.Code == "25006"
	}
	var ce *pgconn.ConnectError
	var ne net.Error
	return errors.As(err, &ce) || errors.As(err, &ne) || pgconn.Timeout(err)
}

// maxTxRetries is how many times a write that lost a deadlock is run.
const maxTxRetries = 3

// isRetryable reports whether err is PostgreSQL failing a transaction to
// break a deadlock or a serialization conflict: running it again is safe.
func isRetryable(err error) bool {
	var pe *pgconn.PgError
	return errors.As(err, &pe) && (pe.Code == "40P01" || pe.Code == "40001")
}
