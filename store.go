package main

import (
	"context"
	"database/sql"
	_ "embed"
	"errors"
	"fmt"
	"net/url"
	"regexp"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"

	"github.com/jackc/pgx/v5/pgconn"
	_ "github.com/jackc/pgx/v5/stdlib" // registers the "pgx" driver
	"modernc.org/sqlite"
	sqlite3 "modernc.org/sqlite/lib"
)

var (
	//go:embed schema.sql
	sqliteSchema string
	//go:embed schema_postgres.sql
	postgresSchema string
)

// Errors the store returns for conditions the caller answers as 4xx.
var (
	errNotFound      = errors.New("not found")
	errUsernameTaken = errors.New("username taken")
	errNoSuchUser    = errors.New("user does not exist")
)

// dialect holds what differs between SQLite and PostgreSQL. Queries are
// shared: both bind $1-style parameters and understand RETURNING and
// ON CONFLICT.
type dialect struct {
	name   string
	schema string
	// forUpdate locks a selected row until the transaction ends. SQLite
	// needs none: its writer holds the whole database.
	forUpdate string
	// lockMigrations serialises schema changes between processes.
	lockMigrations string
}

var (
	sqliteDialect   = dialect{name: "sqlite", schema: sqliteSchema}
	postgresDialect = dialect{
		name:           "postgres",
		schema:         postgresSchema,
		forUpdate:      " FOR UPDATE",
		lockMigrations: "SELECT pg_advisory_xact_lock(7340521)",
	}
)

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

// Store keeps users, collections, settings and the request count in
// SQLite (the default) or PostgreSQL.
type Store struct {
	dialect
	// write runs every write. For SQLite it is a single connection whose
	// transactions begin IMMEDIATE, so writers queue here instead of
	// failing with SQLITE_BUSY; for PostgreSQL it is the same pool as read.
	write *sql.DB
	read  *sql.DB
	desc  string

	// stmts holds prepared statements by pool and query text, so that
	// hot queries are parsed once per connection rather than per call.
	stmts sync.Map // stmtKey -> *sql.Stmt

	// version reads SQLite's data_version on a connection of its own
	// (the number is per connection); nil for PostgreSQL.
	versionStmt *sql.Stmt
	versionConn *sql.Conn
	versionMu   sync.Mutex
	// versionRunning is the read in progress; versionNext, one queued to
	// start when it ends. Both guarded by versionMu.
	versionRunning, versionNext *versionRead
}

type stmtKey struct {
	db    *sql.DB
	query string
}

// prepared returns query prepared on db, preparing it on first use.
func (s *Store) prepared(ctx context.Context, db *sql.DB, query string) (*sql.Stmt, error) {
	key := stmtKey{db, query}
	if st, ok := s.stmts.Load(key); ok {
		return st.(*sql.Stmt), nil
	}
	st, err := db.PrepareContext(ctx, query)
	if err != nil {
		return nil, err
	}
	if prev, loaded := s.stmts.LoadOrStore(key, st); loaded {
		st.Close()
		return prev.(*sql.Stmt), nil
	}
	return st, nil
}

// txStmt returns query prepared for use in tx: the statement prepared on
// the writer pool at open when it is one of writeQueries, else a new one.
// (Preparing on the pool here could wait forever for SQLite's single
// writer connection, which tx holds.)
func (s *Store) txStmt(ctx context.Context, tx *sql.Tx, query string) (*sql.Stmt, error) {
	if st, ok := s.stmts.Load(stmtKey{s.write, query}); ok {
		return tx.StmtContext(ctx, st.(*sql.Stmt)), nil
	}
	return tx.PrepareContext(ctx, query)
}

// Queries of the write transactions, prepared once at open (see
// writeQueries) so that SQLite parses each once, not on every write.
const (
	qInsertCollection = `INSERT INTO collections (uuid, user_id, title, description) VALUES ($1, $2, $3, $4) RETURNING id`
	qInsertMovie      = `INSERT INTO collection_movies (collection_id, position, movie_uuid, title, description, genres) VALUES ($1, $2, $3, $4, $5, $6)`
	qAddGenre         = `INSERT INTO user_genres (user_id, genre, n) VALUES ($1, $2, $3) ON CONFLICT (user_id, genre) DO UPDATE SET n = user_genres.n + excluded.n`
	qDropUnusedGenres = `DELETE FROM user_genres WHERE user_id = $1 AND n <= 0`
	qFindCollection   = `SELECT id FROM collections WHERE uuid = $1 AND user_id = $2`
	qMovieGenres      = `SELECT genres FROM collection_movies WHERE collection_id = $1`
	qSetTitle         = `UPDATE collections SET title = $1 WHERE id = $2`
	qSetDescription   = `UPDATE collections SET description = $1 WHERE id = $2`
	qDeleteMovies     = `DELETE FROM collection_movies WHERE collection_id = $1`
	qDeleteCollection = `DELETE FROM collections WHERE id = $1`
	qInsertUser       = `INSERT INTO users (username, password_hash) VALUES ($1, $2) RETURNING id`
)

// writeQueries lists the statements to prepare on the writer at open.
func (s *Store) writeQueries() []string {
	return []string{counterUpdate, collectionQuery, qInsertCollection, qInsertMovie, qAddGenre,
		qDropUnusedGenres, qFindCollection + s.forUpdate, qMovieGenres, qSetTitle, qSetDescription,
		qDeleteMovies, qDeleteCollection, qInsertUser}
}

// txExec runs query in tx as a prepared statement.
func (s *Store) txExec(ctx context.Context, tx *sql.Tx, query string, args ...any) error {
	st, err := s.txStmt(ctx, tx, query)
	if err != nil {
		return err
	}
	_, err = st.ExecContext(ctx, args...)
	return err
}

// Version returns a number that changes whenever a transaction commits
// to the database, from any connection of this process or another. ok is
// false when the backend cannot tell cheaply (PostgreSQL): then nothing
// read from it may be cached.
//
// Concurrent callers share reads: each caller gets the result of a read
// that started after it called, so it never sees a version older than a
// commit that finished before it asked, yet under load one read serves
// many requests.
func (s *Store) Version(ctx context.Context) (v int64, ok bool) {
	if s.versionStmt == nil {
		return 0, false
	}
	s.versionMu.Lock()
	if c := s.versionNext; c != nil {
		// A read queued to start after the running one: it starts after
		// this call, so its answer will do.
		s.versionMu.Unlock()
		<-c.done
		return c.v, c.ok
	}
	c := &versionRead{done: make(chan struct{})}
	if prev := s.versionRunning; prev != nil {
		// The running read may have started before this call: queue a
		// new one, which later callers join, and run it when prev ends.
		s.versionNext = c
		s.versionMu.Unlock()
		<-prev.done
		s.versionMu.Lock()
		s.versionNext = nil
	}
	s.versionRunning = c
	s.versionMu.Unlock()

	c.ok = s.versionStmt.QueryRowContext(ctx).Scan(&c.v) == nil

	s.versionMu.Lock()
	s.versionRunning = nil
	s.versionMu.Unlock()
	close(c.done)
	return c.v, c.ok
}

// versionRead is one read of the data version that several callers share.
type versionRead struct {
	done chan struct{} // closed when v and ok are set
	v    int64
	ok   bool
}

// openStore opens the database that dsn names and brings its schema up
// to date: a postgres:// or postgresql:// URL, or else a SQLite file path.
func openStore(ctx context.Context, dsn string, pool poolConfig) (*Store, error) {
	var s *Store
	var err error
	scheme, _, hasScheme := strings.Cut(dsn, "://")
	switch scheme = strings.ToLower(scheme); {
	case hasScheme && (scheme == "postgres" || scheme == "postgresql"):
		s, err = openPostgres(dsn, pool)
	case hasScheme && scheme != "sqlite":
		// Not echoed: it may hold a password.
		return nil, errors.New("DATABASE_URL must be a postgres:// or postgresql:// URL, or a SQLite file path")
	case strings.Contains(dsn, "=") && strings.Contains(dsn, " "):
		return nil, errors.New("DATABASE_URL looks like PostgreSQL keyword=value settings: write it as a postgres:// URL")
	default:
		s, err = openSQLite(dsn, pool)
	}
	if err != nil {
		return nil, err
	}
	if err := s.migrate(ctx); err != nil {
		s.Close()
		return nil, err
	}
	for _, q := range s.writeQueries() {
		if _, err := s.prepared(ctx, s.write, q); err != nil {
			s.Close()
			return nil, fmt.Errorf("prepare: %w", err)
		}
	}
	if s.dialect.name == "sqlite" {
		if err := s.openVersion(ctx); err != nil {
			s.Close()
			return nil, fmt.Errorf("open database: %w", err)
		}
	}
	return s, nil
}

func openSQLite(path string, pool poolConfig) (*Store, error) {
	path = strings.TrimPrefix(strings.TrimPrefix(path, "sqlite://"), "sqlite:")
	if path == "" || path == ":memory:" {
		return nil, fmt.Errorf("%q is not a SQLite file path", path)
	}
	// PRAGMAs go in the DSN so that every pooled connection gets them;
	// busy_timeout first, so the others wait rather than fail.
	base := "file:" + (&url.URL{Path: path}).EscapedPath() +
		"?_pragma=busy_timeout(10000)&_pragma=journal_mode(WAL)&_pragma=synchronous(NORMAL)&_pragma=foreign_keys(ON)"
	write, err := sql.Open("sqlite", base+"&_txlock=immediate")
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
	// One more for the connection that reads data_version.
	read.SetMaxOpenConns(n + 1)
	read.SetMaxIdleConns(n + 1)
	read.SetConnMaxLifetime(0)
	read.SetConnMaxIdleTime(0)
	return &Store{dialect: sqliteDialect, write: write, read: read, desc: "sqlite:" + path}, nil
}

// openVersion sets up Version for SQLite: PRAGMA data_version, on one
// connection kept for it, changes whenever another connection (our writer
// or another process) commits.
func (s *Store) openVersion(ctx context.Context) error {
	conn, err := s.read.Conn(ctx)
	if err != nil {
		return err
	}
	st, err := conn.PrepareContext(ctx, "PRAGMA data_version")
	if err != nil {
		conn.Close()
		return err
	}
	s.versionConn, s.versionStmt = conn, st
	return nil
}

func openPostgres(dsn string, pool poolConfig) (*Store, error) {
	u, err := url.Parse(dsn)
	if err != nil {
		return nil, errors.New("DATABASE_URL is not a valid URL")
	}
	db, err := sql.Open("pgx", dsn)
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
	db.SetMaxOpenConns(n)
	db.SetMaxIdleConns(idle)
	db.SetConnMaxLifetime(pool.MaxLifetime)
	db.SetConnMaxIdleTime(pool.MaxIdleTime)
	// Describe the database without its password.
	return &Store{dialect: postgresDialect, write: db, read: db, desc: "postgres://" + u.Host + u.Path}, nil
}

// Describe names the database for logs, without credentials.
func (s *Store) Describe() string { return s.desc }

// Close closes every connection.
func (s *Store) Close() error {
	s.stmts.Range(func(_, st any) bool { st.(*sql.Stmt).Close(); return true })
	if s.versionConn != nil {
		s.versionStmt.Close()
		s.versionConn.Close()
	}
	err := s.write.Close()
	if s.read != s.write {
		err = errors.Join(err, s.read.Close())
	}
	return err
}

// Ping reports whether the database answers.
func (s *Store) Ping(ctx context.Context) error {
	var one int
	return s.read.QueryRowContext(ctx, "SELECT 1").Scan(&one)
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

// migrate applies, in one transaction, every migration the database has
// not seen yet. Concurrent starts are serialised: by the SQLite write lock
// that an IMMEDIATE transaction takes, or by a PostgreSQL advisory lock.
func (s *Store) migrate(ctx context.Context) error {
	steps, err := migrations(s.schema)
	if err != nil {
		return err
	}
	tx, err := s.write.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("migrate: %w", err)
	}
	defer tx.Rollback()
	if s.lockMigrations != "" {
		if _, err := tx.ExecContext(ctx, s.lockMigrations); err != nil {
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
		if _, err := tx.ExecContext(ctx, `INSERT INTO schema_migrations (version) VALUES ($1)`, v); err != nil {
			return fmt.Errorf("migrate to version %d: %w", v, err)
		}
	}
	return tx.Commit()
}

// withTx runs fn in a write transaction and commits it if fn succeeds.
func (s *Store) withTx(ctx context.Context, fn func(*sql.Tx) error) error {
	tx, err := s.write.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	defer tx.Rollback()
	if err := fn(tx); err != nil {
		return err
	}
	return tx.Commit()
}

// user is an account as stored.
type user struct {
	ID           int64
	Username     string
	PasswordHash string
}

// CreateUser adds an account and returns its id, or errUsernameTaken when
// the name exists in any letter case. The unique index decides, so racing
// registrations of one name create one account.
func (s *Store) CreateUser(ctx context.Context, username, passwordHash string) (int64, error) {
	var id int64
	st, err := s.prepared(ctx, s.write, qInsertUser)
	if err != nil {
		return 0, fmt.Errorf("create user: %w", err)
	}
	err = st.QueryRowContext(ctx, username, passwordHash).Scan(&id)
	if isUniqueViolation(err) {
		return 0, errUsernameTaken
	}
	if err != nil {
		return 0, fmt.Errorf("create user: %w", err)
	}
	return id, nil
}

// UserByName finds an account by name in any letter case.
func (s *Store) UserByName(ctx context.Context, username string) (user, error) {
	var u user
	st, err := s.prepared(ctx, s.read, `SELECT id, username, password_hash FROM users WHERE lower(username) = $1`)
	if err != nil {
		return u, fmt.Errorf("find user: %w", err)
	}
	err = st.QueryRowContext(ctx, strings.ToLower(username)).Scan(&u.ID, &u.Username, &u.PasswordHash)
	if errors.Is(err, sql.ErrNoRows) {
		return u, errNotFound
	}
	if err != nil {
		return u, fmt.Errorf("find user: %w", err)
	}
	return u, nil
}

// Setting returns the stored value of key. When there is none it stores
// fallback first, unless another process stored a value before, which
// then wins: every process ends up with the same value.
func (s *Store) Setting(ctx context.Context, key, fallback string) (string, error) {
	if _, err := s.write.ExecContext(ctx,
		`INSERT INTO settings (key, value) VALUES ($1, $2) ON CONFLICT (key) DO NOTHING`, key, fallback); err != nil {
		return "", fmt.Errorf("store setting %s: %w", key, err)
	}
	var v string
	if err := s.write.QueryRowContext(ctx, `SELECT value FROM settings WHERE key = $1`, key).Scan(&v); err != nil {
		return "", fmt.Errorf("read setting %s: %w", key, err)
	}
	return v, nil
}

// AddRequests adds delta to the persisted request count in one atomic
// statement and returns the new total.
//
// It runs in an explicit transaction so that an error means the change
// was not made: a statement cut short by its context after it ran, but
// outside a transaction, would leave the caller unable to tell, and
// retrying would count the same requests twice.
func (s *Store) AddRequests(ctx context.Context, delta int64) (int64, error) {
	var total int64
	err := s.withTx(ctx, func(tx *sql.Tx) error {
		st, err := s.txStmt(ctx, tx, counterUpdate)
		if err != nil {
			return err
		}
		return st.QueryRowContext(ctx, delta).Scan(&total)
	})
	if err != nil {
		return 0, fmt.Errorf("add requests: %w", err)
	}
	return total, nil
}

const counterUpdate = `UPDATE request_counter SET value = value + $1 WHERE id = 1 RETURNING value`

// ResetRequests sets the persisted request count to zero.
func (s *Store) ResetRequests(ctx context.Context) error {
	if _, err := s.write.ExecContext(ctx, `UPDATE request_counter SET value = 0 WHERE id = 1`); err != nil {
		return fmt.Errorf("reset requests: %w", err)
	}
	return nil
}

// CreateCollection stores c, movies included, for the user in one
// transaction. It returns errNoSuchUser when the account is gone.
func (s *Store) CreateCollection(ctx context.Context, userID int64, c collection) error {
	err := s.withTx(ctx, func(tx *sql.Tx) error {
		st, err := s.txStmt(ctx, tx, qInsertCollection)
		if err != nil {
			return err
		}
		var id int64
		if err := st.QueryRowContext(ctx, c.UUID, userID, c.Title, c.Description).Scan(&id); err != nil {
			return err
		}
		if err := s.insertMovies(ctx, tx, id, c.Movies); err != nil {
			return err
		}
		tally := map[string]int{}
		tallyGenres(tally, c.Movies, +1)
		return s.applyGenreTally(ctx, tx, userID, tally)
	})
	if isForeignKeyViolation(err) {
		return errNoSuchUser
	}
	if err != nil {
		return fmt.Errorf("create collection: %w", err)
	}
	return nil
}

// insertMovies adds movies to a collection, in their order.
func (s *Store) insertMovies(ctx context.Context, tx *sql.Tx, collectionID int64, movies []movie) error {
	st, err := s.txStmt(ctx, tx, qInsertMovie)
	if err != nil {
		return err
	}
	for i, m := range movies {
		if _, err := st.ExecContext(ctx, collectionID, i, m.UUID, m.Title, m.Description, m.Genres); err != nil {
			return err
		}
	}
	return nil
}

// applyGenreTally adds tally to the user's genre counts and drops the
// genres that no movie carries any more. Genres are applied in name order
// so that concurrent PostgreSQL transactions lock rows in one order.
func (s *Store) applyGenreTally(ctx context.Context, tx *sql.Tx, userID int64, tally map[string]int) error {
	genres := make([]string, 0, len(tally))
	for g, n := range tally {
		if n != 0 {
			genres = append(genres, g)
		}
	}
	if len(genres) == 0 {
		return nil
	}
	slices.Sort(genres)
	st, err := s.txStmt(ctx, tx, qAddGenre)
	if err != nil {
		return err
	}
	for _, g := range genres {
		if _, err := st.ExecContext(ctx, userID, g, tally[g]); err != nil {
			return err
		}
	}
	return s.txExec(ctx, tx, qDropUnusedGenres, userID)
}

// Collections returns the user's collections, oldest first, and their
// genre counts, read in one statement so that both come from one snapshot.
func (s *Store) Collections(ctx context.Context, userID int64) ([]collectionSummary, []genreCount, error) {
	st, err := s.prepared(ctx, s.read,
		`SELECT 0 AS kind, id AS ord, uuid, title, description FROM collections WHERE user_id = $1
		 UNION ALL
		 SELECT 1, n, genre, '', '' FROM user_genres WHERE user_id = $1
		 ORDER BY 1, 2`)
	if err != nil {
		return nil, nil, fmt.Errorf("list collections: %w", err)
	}
	rows, err := st.QueryContext(ctx, userID)
	if err != nil {
		return nil, nil, fmt.Errorf("list collections: %w", err)
	}
	defer rows.Close()
	list := []collectionSummary{}
	var genres []genreCount
	for rows.Next() {
		var kind, ord int64
		var c collectionSummary
		if err := rows.Scan(&kind, &ord, &c.UUID, &c.Title, &c.Description); err != nil {
			return nil, nil, fmt.Errorf("list collections: %w", err)
		}
		if kind == 0 {
			list = append(list, c)
		} else {
			genres = append(genres, genreCount{Genre: c.UUID, N: int(ord)})
		}
	}
	if err := rows.Err(); err != nil {
		return nil, nil, fmt.Errorf("list collections: %w", err)
	}
	return list, genres, nil
}

// Collection returns one of the user's collections with its movies, or
// errNotFound when the user has no collection with that UUID.
func (s *Store) Collection(ctx context.Context, userID int64, id string) (collection, error) {
	st, err := s.prepared(ctx, s.read, collectionQuery)
	if err != nil {
		return collection{}, fmt.Errorf("get collection: %w", err)
	}
	c, err := scanCollection(ctx, st, userID, id)
	if err != nil && !errors.Is(err, errNotFound) {
		err = fmt.Errorf("get collection: %w", err)
	}
	return c, err
}

// collectionQuery reads a collection and its movies in one statement, so
// both come from one snapshot.
const collectionQuery = `SELECT c.title, c.description, m.movie_uuid, m.title, m.description, m.genres
	FROM collections c LEFT JOIN collection_movies m ON m.collection_id = c.id
	WHERE c.uuid = $1 AND c.user_id = $2
	ORDER BY m.position`

// scanCollection runs collectionQuery, prepared as st.
func scanCollection(ctx context.Context, st *sql.Stmt, userID int64, id string) (collection, error) {
	c := collection{UUID: id, Movies: []movie{}}
	rows, err := st.QueryContext(ctx, id, userID)
	if err != nil {
		return c, err
	}
	defer rows.Close()
	found := false
	for rows.Next() {
		found = true
		var mid, mtitle, mdesc, mgenres sql.NullString
		if err := rows.Scan(&c.Title, &c.Description, &mid, &mtitle, &mdesc, &mgenres); err != nil {
			return c, err
		}
		if mid.Valid {
			c.Movies = append(c.Movies, movie{UUID: mid.String, Title: mtitle.String, Description: mdesc.String, Genres: mgenres.String})
		}
	}
	if err := rows.Err(); err != nil {
		return c, err
	}
	if !found {
		return c, errNotFound
	}
	return c, nil
}

// lockCollection finds the user's collection and, on PostgreSQL, locks its
// row until tx ends, so that concurrent writers of one collection take
// turns. It returns the row id and the movies' genres.
func (s *Store) lockCollection(ctx context.Context, tx *sql.Tx, userID int64, id string) (int64, []movie, error) {
	find, err := s.txStmt(ctx, tx, qFindCollection+s.forUpdate)
	if err != nil {
		return 0, nil, err
	}
	var rowID int64
	err = find.QueryRowContext(ctx, id, userID).Scan(&rowID)
	if errors.Is(err, sql.ErrNoRows) {
		return 0, nil, errNotFound
	}
	if err != nil {
		return 0, nil, err
	}
	genres, err := s.txStmt(ctx, tx, qMovieGenres)
	if err != nil {
		return 0, nil, err
	}
	rows, err := genres.QueryContext(ctx, rowID)
	if err != nil {
		return 0, nil, err
	}
	defer rows.Close()
	var old []movie
	for rows.Next() {
		var m movie
		if err := rows.Scan(&m.Genres); err != nil {
			return 0, nil, err
		}
		old = append(old, m)
	}
	return rowID, old, rows.Err()
}

// UpdateCollection applies the fields of in that are set (movies replace
// the whole list) in one transaction and returns the collection as stored.
func (s *Store) UpdateCollection(ctx context.Context, userID int64, id string, in collectionInput) (collection, error) {
	var c collection
	err := s.withTx(ctx, func(tx *sql.Tx) error {
		rowID, old, err := s.lockCollection(ctx, tx, userID, id)
		if err != nil {
			return err
		}
		if in.Title != nil {
			if err := s.txExec(ctx, tx, qSetTitle, *in.Title, rowID); err != nil {
				return err
			}
		}
		if in.Description != nil {
			if err := s.txExec(ctx, tx, qSetDescription, *in.Description, rowID); err != nil {
				return err
			}
		}
		if in.Movies != nil {
			if err := s.txExec(ctx, tx, qDeleteMovies, rowID); err != nil {
				return err
			}
			if err := s.insertMovies(ctx, tx, rowID, *in.Movies); err != nil {
				return err
			}
			tally := map[string]int{}
			tallyGenres(tally, old, -1)
			tallyGenres(tally, *in.Movies, +1)
			if err := s.applyGenreTally(ctx, tx, userID, tally); err != nil {
				return err
			}
		}
		st, err := s.txStmt(ctx, tx, collectionQuery)
		if err != nil {
			return err
		}
		c, err = scanCollection(ctx, st, userID, id)
		return err
	})
	if err != nil && !errors.Is(err, errNotFound) {
		err = fmt.Errorf("update collection: %w", err)
	}
	return c, err
}

// DeleteCollection removes one of the user's collections and its movie
// entries, or returns errNotFound.
func (s *Store) DeleteCollection(ctx context.Context, userID int64, id string) error {
	err := s.withTx(ctx, func(tx *sql.Tx) error {
		rowID, old, err := s.lockCollection(ctx, tx, userID, id)
		if err != nil {
			return err
		}
		if err := s.txExec(ctx, tx, qDeleteCollection, rowID); err != nil {
			return err
		}
		tally := map[string]int{}
		tallyGenres(tally, old, -1)
		return s.applyGenreTally(ctx, tx, userID, tally)
	})
	if err != nil && !errors.Is(err, errNotFound) {
		err = fmt.Errorf("delete collection: %w", err)
	}
	return err
}
