package main

import "strings"

// The SQL of every write, in one list beside the names the code uses,
// prepared once on the writer at open (see openDB).

// writeQuery names one statement of the write transactions. Every one is
// prepared once on the writer at open, from writeQueryText, so that SQLite
// parses each once rather than on every write.
type writeQuery int

const (
	qAddRequests writeQuery = iota
	qResetRequests
	qCounterShare
	qSetCounterShare
	qForgetCounterShare
	qInsertUser
	qInsertCollection
	qCountCollection
	qBumpUser
	qLoginFailed
	qSweepLoginFailures
	qLoginSucceeded
	qUpdateCollection
	qDeleteCollection
	qSavepoint
	qRollbackToSavepoint
	qReleaseSavepoint
	numWriteQueries
)

// writeQueryText is the SQL of each writeQuery. " FOR UPDATE" is dropped
// where the dialect does not lock rows.
var writeQueryText = [numWriteQueries]string{
	qAddRequests:        `UPDATE request_counter SET value = value + $1 WHERE id = 1 RETURNING value`,
	qResetRequests:      `UPDATE request_counter SET value = 0 WHERE id = 1`,
	qCounterShare:       `SELECT total FROM counter_shares WHERE process = $1 FOR UPDATE`,
	qSetCounterShare:    `INSERT INTO counter_shares (process, total) VALUES ($1, $2) ON CONFLICT (process) DO UPDATE SET total = excluded.total`,
	qForgetCounterShare: `DELETE FROM counter_shares WHERE process = $1`,
	// qInsertUser adds an account; a trigger adds its user_versions row.
	qInsertUser: `INSERT INTO users (uuid, username, password_hash) VALUES ($1, $2, $3)`,
	// qInsertCollection is given its created_at ($7, as SQLite's default
	// writes it: createdAt), formatted before the write is queued, rather
	// than have the single writer format the time of each.
	qInsertCollection: `INSERT INTO collections (uuid, user_id, title, description, genres, movies, created_at) VALUES ($1, $2, $3, $4, $5, $6, $7)`,
	// qCountCollection counts one more collection for the user, unless
	// that would pass the limit ($2): then it matches no row. It locks
	// the user's row (PostgreSQL), so the user's creates take turns.
	qCountCollection: `UPDATE user_versions SET collections = collections + 1, version = version + 1 WHERE user_id = $1 AND collections < $2 RETURNING version`,
	qBumpUser:        `UPDATE user_versions SET collections = collections + $2, version = version + 1 WHERE user_id = $1 RETURNING version`,
	// qLoginFailed counts a failed login of $1 at $2 (Unix seconds): a
	// window of $4 seconds opens at the first failure, and the $3-th
	// failure within it locks the name for $4 seconds.
	qLoginFailed: `INSERT INTO login_failures AS f (username, failures, window_start, locked_until)
		VALUES ($1, 1, CAST($2 AS BIGINT), CASE WHEN 1 >= CAST($3 AS INTEGER) THEN CAST($2 AS BIGINT) + CAST($4 AS BIGINT) ELSE 0 END)
		ON CONFLICT (username) DO UPDATE SET
			failures = CASE WHEN f.window_start + CAST($4 AS BIGINT) <= CAST($2 AS BIGINT) THEN 1 ELSE f.failures + 1 END,
			window_start = CASE WHEN f.window_start + CAST($4 AS BIGINT) <= CAST($2 AS BIGINT) THEN CAST($2 AS BIGINT) ELSE f.window_start END,
			locked_until = CASE
				WHEN (CASE WHEN f.window_start + CAST($4 AS BIGINT) <= CAST($2 AS BIGINT) THEN 1 ELSE f.failures + 1 END) >= CAST($3 AS INTEGER)
				THEN CAST($2 AS BIGINT) + CAST($4 AS BIGINT) ELSE f.locked_until END
		RETURNING locked_until`,
	qSweepLoginFailures: `DELETE FROM login_failures WHERE username IN (
		SELECT username FROM login_failures WHERE window_start < $1 AND locked_until < $1 LIMIT 100)`,
	qLoginSucceeded: `DELETE FROM login_failures WHERE username = $1`,
	// qUpdateCollection sets the fields given (a NULL keeps one as it is;
	// $5 is the genre counts of the movies $6) and returns the collection
	// as stored.
	qUpdateCollection: `UPDATE collections SET title = COALESCE($3, title), description = COALESCE($4, description),
		genres = COALESCE($5, genres), movies = COALESCE($6, movies) WHERE uuid = $1 AND user_id = $2
		RETURNING title, description, movies`,
	qDeleteCollection: `DELETE FROM collections WHERE uuid = $1 AND user_id = $2`,
	// The savepoint each write of a shared transaction runs behind (see
	// groupCommit, SQLite's; PostgreSQL prepares them too, harmlessly).
	qSavepoint:           `SAVEPOINT w`,
	qRollbackToSavepoint: `ROLLBACK TO SAVEPOINT w`,
	qReleaseSavepoint:    `RELEASE SAVEPOINT w`,
}

// sqlFor returns the text of q in dialect d.
func (d dialect) sqlFor(q writeQuery) string {
	text := writeQueryText[q]
	if !d.lockRows {
		text = strings.Replace(text, " FOR UPDATE", "", 1)
	}
	return text
}
