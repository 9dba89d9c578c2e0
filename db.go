package main

import (
	"context"
	"database/sql"
	_ "embed"
	"errors"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"time"

	_ "github.com/jackc/pgx/v5/stdlib" // registers the "pgx" driver
)

// This file is how the store reaches its database: the two dialects, the
// connection pools, statement caches, migrations and the write-transaction
// type. The queries themselves are in store.go.

var (
	//go:embed schema.sql
	sqliteSchema string
	//go:embed schema_postgres.sql
	postgresSchema string
)

// dialect holds what differs between SQLite and PostgreSQL. Queries are
// shared: both bind $1-style parameters and understand RETURNING and
// ON CONFLICT.
type dialect struct {
	name   string
	schema string
	// lockRows is whether "SELECT … FOR UPDATE" is needed to lock a row
	// until the transaction ends. SQLite has no such clause and needs
	// none: its single writer holds the whole database.
	lockRows bool
	// groupCommit is whether concurrent writes share transactions (see
	// groupCommit): worth it with one writer (SQLite), not with many.
	groupCommit bool
	// lockMigrations serialises schema changes between processes; ""
	// when the write transaction itself does (SQLite's IMMEDIATE lock).
	lockMigrations string
	// changeCounter is a query answering a number that moves whenever
	// any connection commits, or "" when there is no cheap one.
	changeCounter string
	// byteCollation orders text by its bytes, as Go compares strings.
	byteCollation string
	// jsonTexts is a subquery answering the strings of the JSON list $1.
	jsonTexts string
	// genreCounts is a table function answering (key, value) for each
	// genre count of collection c, its JSON object genres.
	genreCounts string
	// writableCTEs is whether one statement can change several tables
	// (WITH ... UPDATE): a write then takes one round trip instead of a
	// transaction's several. SQLite cannot, and batches its writes instead.
	writableCTEs bool
	// stableIDs is whether a row id, once given, is not given again (an
	// identity column's), so that the id a UUID was found to have may be
	// remembered (and checked, as it is read, against the UUID). SQLite
	// gives a deleted last row's id to the next one.
	stableIDs bool
}

var (
	sqliteDialect = dialect{
		name:          "sqlite",
		schema:        sqliteSchema,
		groupCommit:   true,
		changeCounter: "PRAGMA data_version",
		byteCollation: "BINARY",
		jsonTexts:     "SELECT value FROM json_each($1)",
		genreCounts:   "json_each(c.genres)",
	}
	postgresDialect = dialect{
		name:           "postgres",
		schema:         postgresSchema,
		lockRows:       true,
		lockMigrations: "SELECT pg_advisory_xact_lock(7340521)",
		byteCollation:  `"C"`,
		jsonTexts:      "SELECT json_array_elements_text(CAST($1 AS json))",
		genreCounts:    "json_each_text(CAST(c.genres AS json))",
		writableCTEs:   true,
		stableIDs:      true,
	}
)

// db is an open database: its dialect, its pools and their prepared
// statements.
type db struct {
	dialect dialect
	// write runs every write. For SQLite it is a single connection whose
	// transactions begin IMMEDIATE, so writers queue here instead of
	// failing with SQLITE_BUSY; for PostgreSQL it is the same pool as read.
	write *sql.DB
	read  *sql.DB
	// pools is every distinct pool, by name, to close.
	pools map[string]*sql.DB
	desc  string
	// file is the SQLite file as opened, to tell when its path no longer
	// leads to it; nil for PostgreSQL.
	file     os.FileInfo
	filePath string

	writeStmts [numWriteQueries]*sql.Stmt
	// writer runs every write, folding concurrent ones into one
	// transaction; nil where each write has a transaction of its own.
	writer *groupCommit
	// pipeline batches writeOne's statements (PostgreSQL); nil elsewhere.
	pipeline *writePipeline
	// wal reads SQLite's change counter; own tracks this process's
	// commits. Both nil where the WAL-index cannot be mapped.
	wal *walIndex
	own *ownCommits
	// checkpoints is SQLite's connection for the checkpointer.
	checkpoints  *sql.DB
	checkpointer *checkpointer
	// oneStmts holds the statements of writeOne, prepared on the writer
	// pool, by text.
	oneStmts sync.Map // string -> *sql.Stmt
	// readStmts holds read queries prepared on the read pool, by text,
	// so that hot queries are parsed once per connection, not per call.
	readStmts sync.Map // string -> *sql.Stmt
}

// openDB opens the database that dsn names, brings its schema up to date
// and prepares the write queries.
func openDB(ctx context.Context, dsn string, pool poolConfig) (*db, error) {
	d, err := openPools(dsn, pool)
	if err != nil {
		return nil, err
	}
	if err := d.migrate(ctx); err != nil {
		d.Close()
		return nil, err
	}
	for q := range numWriteQueries {
		if writeQueryText[q] == "" {
			d.Close()
			return nil, fmt.Errorf("prepare: write query %d has no SQL", q)
		}
		st, err := d.write.PrepareContext(ctx, d.dialect.sqlFor(q))
		if err != nil {
			d.Close()
			return nil, fmt.Errorf("prepare: %w", err)
		}
		d.writeStmts[q] = st
	}
	if d.file != nil {
		if d.wal, err = openWALIndex(d.filePath); err == nil {
			d.own = newOwnCommits(d.wal)
		} // else nil: the change counter is read with a query
	}
	if d.dialect.groupCommit {
		d.writer = newGroupCommit(d, maxWriteBatch)
	}
	if d.dialect.writableCTEs {
		d.pipeline = newWritePipeline(d.write, maxWriteBatch)
	}
	if d.checkpoints != nil {
		d.checkpointer = startCheckpointer(d.checkpoints, d.writer, checkpointEvery)
	}
	return d, nil
}

// openPools opens the connection pools of the database that dsn names: a
// postgres:// or postgresql:// URL, or else a SQLite file path.
func openPools(dsn string, pool poolConfig) (*db, error) {
	scheme, _, hasScheme := strings.Cut(dsn, "://")
	switch scheme = strings.ToLower(scheme); {
	case hasScheme && (scheme == "postgres" || scheme == "postgresql"):
		return openPostgres(dsn, pool)
	case hasScheme && scheme != "sqlite":
		// Not echoed: it may hold a password.
		return nil, errors.New("DATABASE_URL must be a postgres:// or postgresql:// URL, or a SQLite file path")
	case strings.Contains(dsn, "=") && strings.Contains(dsn, " "):
		return nil, errors.New("DATABASE_URL looks like PostgreSQL keyword=value settings: write it as a postgres:// URL")
	default:
		return openSQLite(dsn, pool)
	}
}

func openSQLite(path string, pool poolConfig) (*db, error) {
	path = strings.TrimPrefix(strings.TrimPrefix(path, "sqlite://"), "sqlite:")
	if path == "" || path == ":memory:" {
		return nil, fmt.Errorf("%q is not a SQLite file path", path)
	}
	if dir := filepath.Dir(path); dir != "" {
		if fi, err := os.Stat(dir); err != nil || !fi.IsDir() {
			return nil, fmt.Errorf("SQLite database %s: folder %s does not exist", path, dir)
		}
	}
	// PRAGMAs go in the DSN so that every pooled connection gets them;
	// busy_timeout first, so the others wait rather than fail.
	busy := pool.BusyTimeout
	if busy <= 0 {
		busy = 5 * time.Second
	}
	base := "file:" + (&url.URL{Path: path}).EscapedPath() +
		fmt.Sprintf("?_pragma=busy_timeout(%d)", busy.Milliseconds()) +
		"&_pragma=journal_mode(WAL)&_pragma=synchronous(NORMAL)&_pragma=foreign_keys(ON)"
	write, err := sql.Open("sqlite", base+"&_txlock=immediate"+
		fmt.Sprintf("&_pragma=wal_autocheckpoint(%d)", writerCheckpointPages))
	if err != nil {
		return nil, err
	}
	write.SetMaxOpenConns(1)
	write.SetMaxIdleConns(1)
	write.SetConnMaxLifetime(0)
	write.SetConnMaxIdleTime(0)

	read, err := sql.Open("sqlite", base+"&_pragma=query_only(1)")
	if err != nil {
		write.Close()
		return nil, err
	}
	n := pool.MaxOpen
	if n == 0 {
		n = max(4, 2*runtime.NumCPU())
	}
	// One more for the connection that reads the change counter.
	read.SetMaxOpenConns(n + 1)
	read.SetMaxIdleConns(n + 1)
	read.SetConnMaxLifetime(0)
	read.SetConnMaxIdleTime(0)
	checkpoints, err := sql.Open("sqlite", base)
	if err != nil {
		write.Close()
		read.Close()
		return nil, err
	}
	checkpoints.SetMaxOpenConns(1)
	d := &db{dialect: sqliteDialect, write: write, read: read, pools: map[string]*sql.DB{"write": write, "read": read, "checkpoint": checkpoints}, desc: "sqlite:" + path, filePath: path}
	d.checkpoints = checkpoints
	// Open the file now, to know which file it is.
	if err := write.Ping(); err != nil {
		d.Close()
		return nil, fmt.Errorf("open SQLite database %s: %w", path, err)
	}
	if d.file, err = os.Stat(path); err != nil {
		d.Close()
		return nil, fmt.Errorf("open SQLite database %s: %w", path, err)
	}
	return d, nil
}

func openPostgres(dsn string, pool poolConfig) (*db, error) {
	u, err := url.Parse(dsn)
	if err != nil {
		return nil, errors.New("DATABASE_URL is not a valid URL")
	}
	conn, err := sql.Open("pgx", dsn)
	if err != nil {
		return nil, err
	}
	n := pool.MaxOpen
	if n == 0 {
		n = 10
	}
	idle := pool.MaxIdle
	if idle == 0 {
		idle = n
	}
	conn.SetMaxOpenConns(n)
	conn.SetMaxIdleConns(idle)
	conn.SetConnMaxLifetime(pool.MaxLifetime)
	conn.SetConnMaxIdleTime(pool.MaxIdleTime)
	// Describe the database without its password.
	return &db{dialect: postgresDialect, write: conn, read: conn, pools: map[string]*sql.DB{"pool": conn}, desc: "postgres://" + u.Host + u.Path}, nil
}

// Describe names the database for logs, without credentials.
func (d *db) Describe() string { return d.desc }

// maxWriteBatch is how many writes one transaction takes at most.
const maxWriteBatch = 64

// Close waits for the writes its writers have taken, then closes every
// statement and connection. A write being run alone at that moment (a
// handler still running when shutdown gave up waiting) fails.
func (d *db) Close() error {
	if d.writer != nil {
		d.writer.close()
	}
	if d.pipeline != nil {
		d.pipeline.close()
	}
	d.checkpointer.close()
	for _, st := range d.writeStmts {
		if st != nil {
			st.Close()
		}
	}
	d.readStmts.Range(func(_, st any) bool { st.(*sql.Stmt).Close(); return true })
	d.oneStmts.Range(func(_, st any) bool { st.(*sql.Stmt).Close(); return true })
	var err error
	for _, p := range d.pools {
		err = errors.Join(err, p.Close())
	}
	d.wal.release()
	return err
}

// readStmt returns query prepared on the read pool, preparing it on
// first use.
func (d *db) readStmt(ctx context.Context, query string) (*sql.Stmt, error) {
	return prepared(ctx, &d.readStmts, d.read, query)
}

// prepared returns query prepared on pool, preparing it the first time.
func prepared(ctx context.Context, stmts *sync.Map, pool *sql.DB, query string) (*sql.Stmt, error) {
	if st, ok := stmts.Load(query); ok {
		return st.(*sql.Stmt), nil
	}
	st, err := pool.PrepareContext(ctx, query)
	if err != nil {
		return nil, err
	}
	if prev, loaded := stmts.LoadOrStore(query, st); loaded {
		st.Close()
		return prev.(*sql.Stmt), nil
	}
	return st, nil
}

// writeOne runs query, a whole write in one statement that locks rows of
// user only, as a transaction of its own (where the dialect has
// writableCTEs), or, under load, in a batch with others (see
// writePipeline); run again like withTx's when it loses a deadlock. scan
// reads the row it returns.
func (d *db) writeOne(ctx context.Context, user int64, query string, scan func(rowScanner) error, args ...any) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if d.pipeline != nil {
		err := d.pipeline.run(&pipedWrite{ctx: ctx, user: user, query: query, args: args, scan: scan})
		if !errors.Is(err, errRunAlone) {
			return err
		}
	}
	return d.writeAlone(ctx, query, scan, args...)
}

// writeAlone runs writeOne's statement as a transaction of its own.
func (d *db) writeAlone(ctx context.Context, query string, scan func(rowScanner) error, args ...any) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	st, err := prepared(ctx, &d.oneStmts, d.write, query)
	if err != nil {
		return err
	}
	for range maxTxRetries {
		if err = scan(st.QueryRowContext(ctx, args...)); !isRetryable(err) {
			return err
		}
	}
	return err
}

// checkFile returns errDatabaseGone when the SQLite file this database
// opened is no longer at its path. One stat call.
func (d *db) checkFile() error {
	if d.file == nil {
		return nil
	}
	fi, err := os.Stat(d.filePath)
	if err != nil || !os.SameFile(fi, d.file) {
		return errDatabaseGone
	}
	return nil
}

// withTx runs fn as one write and commits it if fn succeeds; concurrent
// writes share a transaction (see groupCommit). It returns once the write
// is committed, or with why it was not.
func (d *db) withTx(ctx context.Context, fn func(*writeTx) error) error {
	if err := d.checkFile(); err != nil {
		return err
	}
	if d.writer != nil {
		return d.writer.run(ctx, fn)
	}
	// PostgreSQL breaks a deadlock or a serialization conflict by failing
	// one transaction, which may simply run again.
	var err error
	for range maxTxRetries {
		if err = ctx.Err(); err != nil {
			return err
		}
		if err = runAlone(ctx, d, fn); !isRetryable(err) {
			return err
		}
	}
	return err
}

var migrationHeader = regexp.MustCompile(`(?m)^-- migration (\d+):.*$`)

// migrations splits a schema file into its numbered migrations.
func migrations(schema string) ([]string, error) {
	locs := migrationHeader.FindAllStringSubmatchIndex(schema, -1)
	var out []string
	for i, loc := range locs {
		n, _ := strconv.Atoi(schema[loc[2]:loc[3]])
		if n != i+1 {
			return nil, fmt.Errorf("schema: migration %d found where %d was expected", n, i+1)
		}
		end := len(schema)
		if i+1 < len(locs) {
			end = locs[i+1][0]
		}
		out = append(out, schema[loc[1]:end])
	}
	return out, nil
}

// migrationSteps are Go steps run right after the migration of their
// number, in its transaction: work that this build's own code must do,
// so that it is done exactly as this build would.
var migrationSteps = map[int]func(context.Context, *sql.Tx) error{
	5: countCollectionGenres,
}

// migrate applies, in one transaction, every migration the database has
// not seen yet. Concurrent starts are serialised: by the SQLite write lock
// that an IMMEDIATE transaction takes, or by a PostgreSQL advisory lock.
func (d *db) migrate(ctx context.Context) error {
	steps, err := migrations(d.dialect.schema)
	if err != nil {
		return err
	}
	tx, err := d.write.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("migrate: %w", err)
	}
	defer tx.Rollback()
	if d.dialect.lockMigrations != "" {
		if _, err := tx.ExecContext(ctx, d.dialect.lockMigrations); err != nil {
			return fmt.Errorf("migrate: lock: %w", err)
		}
	}
	if _, err := tx.ExecContext(ctx, `CREATE TABLE IF NOT EXISTS schema_migrations (version INTEGER PRIMARY KEY)`); err != nil {
		return fmt.Errorf("migrate: %w", err)
	}
	var current int
	if err := tx.QueryRowContext(ctx, `SELECT COALESCE(MAX(version), 0) FROM schema_migrations`).Scan(&current); err != nil {
		return fmt.Errorf("migrate: %w", err)
	}
	if current > len(steps) {
		return fmt.Errorf("migrate: the database is at schema version %d, newer than this build knows (%d)", current, len(steps))
	}
	for v := current + 1; v <= len(steps); v++ {
		if _, err := tx.ExecContext(ctx, steps[v-1]); err != nil {
			return fmt.Errorf("migrate to version %d: %w", v, err)
		}
		if step := migrationSteps[v]; step != nil {
			if err := step(ctx, tx); err != nil {
				return fmt.Errorf("migrate to version %d: %w", v, err)
			}
		}
		if _, err := tx.ExecContext(ctx, `INSERT INTO schema_migrations (version) VALUES ($1)`, v); err != nil {
			return fmt.Errorf("migrate to version %d: %w", v, err)
		}
	}
	return tx.Commit()
}
