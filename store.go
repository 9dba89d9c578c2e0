package main

import (
	"bytes"
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"sync"
	"time"
)

// Errors the store returns for conditions the caller answers as 4xx.
var (
	errNotFound      = errors.New("not found")
	errUsernameTaken = errors.New("username taken")
	errNoSuchUser    = errors.New("user does not exist")
	errLimitReached  = errors.New("collection limit reached")
)

// maxCollections is how many collections one user may keep.
const maxCollections = 1000

// Store keeps users, collections, settings and the request count in
// SQLite (the default) or PostgreSQL. Its methods are the queries; how
// the database is reached is db.go's.
type Store struct {
	db       *db
	accounts *accountCache // nil: every request reads its account
	// accountReads shares the account reads of concurrent requests.
	accountReads *freshBatch[string, account]
	existing     existingAccounts
	// writable is when Ready last found that a write can begin.
	writable struct {
		mu sync.Mutex
		at time.Time
	}
}

// openStore opens the database that dsn names, brings its schema up to
// date and prepares its queries.
func openStore(ctx context.Context, dsn string, pool poolConfig) (*Store, error) {
	d, err := openDB(ctx, dsn, pool)
	if err != nil {
		return nil, err
	}
	accounts, err := newAccountCache(ctx, d)
	if err != nil {
		d.Close()
		return nil, fmt.Errorf("open database: %w", err)
	}
	if d.own != nil && accounts != nil && accounts.wal != nil {
		d.own.accounts = accounts
	}
	s := &Store{db: d, accounts: accounts, existing: existingAccounts{at: map[string]time.Time{}}}
	s.accountReads = newFreshBatch(s.readAccounts)
	return s, nil
}

// Describe names the database for logs, without credentials.
func (s *Store) Describe() string { return s.db.Describe() }

// Close closes every connection.
func (s *Store) Close() error {
	s.accounts.close()
	return s.db.Close()
}

// Ready reports whether the database can serve reads and writes now: it
// answers a query, its file (SQLite) is still at its path, and a write
// transaction can begin. That last check takes the write lock, so once it
// succeeds it is not made again for readyEvery: readiness probes, which
// anyone may send, cannot make writes queue behind them.
func (s *Store) Ready(ctx context.Context) error {
	var one int
	if err := s.db.read.QueryRowContext(ctx, "SELECT 1").Scan(&one); err != nil {
		return fmt.Errorf("read: %w", err)
	}
	if err := s.db.checkFile(); err != nil {
		return err
	}
	s.writable.mu.Lock()
	defer s.writable.mu.Unlock()
	if time.Since(s.writable.at) < readyEvery {
		return nil
	}
	tx, err := s.db.write.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("begin a write: %w", err)
	}
	tx.Rollback()
	s.writable.at = time.Now()
	return nil
}

// readyEvery is how often Ready checks that a write can begin.
const readyEvery = time.Second

// Setting returns the stored value of key. When there is none it stores
// fallback first, unless another process stored a value before, which
// then wins: every process ends up with the same value.
func (s *Store) Setting(ctx context.Context, key, fallback string) (string, error) {
	if _, err := s.db.write.ExecContext(ctx,
		`INSERT INTO settings (key, value) VALUES ($1, $2) ON CONFLICT (key) DO NOTHING`, key, fallback); err != nil {
		return "", fmt.Errorf("store setting %s: %w", key, err)
	}
	var v string
	if err := s.db.write.QueryRowContext(ctx, `SELECT value FROM settings WHERE key = $1`, key).Scan(&v); err != nil {
		return "", fmt.Errorf("read setting %s: %w", key, err)
	}
	return v, nil
}

// SyncRequests records that process has counted total requests since it
// started, adds what of them the database did not hold yet to the
// persisted count, and returns that count. It is idempotent: the same
// total sent twice (a COMMIT whose answer was lost, then retried) adds
// nothing the second time. The share's row is locked first (PostgreSQL),
// so a retry waits for a COMMIT still in flight instead of racing it.
func (s *Store) SyncRequests(ctx context.Context, process string, total int64) (int64, error) {
	var count int64
	err := s.db.withTx(ctx, func(tx *writeTx) error {
		var held int64
		if err := tx.queryRow(qCounterShare, process).Scan(&held); err != nil && !errors.Is(err, sql.ErrNoRows) {
			return err
		}
		if err := tx.queryRow(qAddRequests, max(total-held, 0)).Scan(&count); err != nil {
			return err
		}
		if total == held {
			return nil
		}
		if err := tx.exec(qSetCounterShare, process, total); err != nil {
			return err
		}
		tx.changed() // the share's total, and the count, moved
		return nil
	})
	if err != nil {
		return 0, fmt.Errorf("persist request count: %w", err)
	}
	return count, nil
}

// ResetRequests sets the persisted request count to zero and process's
// share to total: what process counted so far is not counted again.
func (s *Store) ResetRequests(ctx context.Context, process string, total int64) error {
	err := s.db.withTx(ctx, func(tx *writeTx) error {
		if err := tx.exec(qResetRequests); err != nil {
			return err
		}
		return tx.exec(qSetCounterShare, process, total)
	})
	if err != nil {
		return fmt.Errorf("reset requests: %w", err)
	}
	return nil
}

// ForgetRequestShare drops process's share, once it has stopped counting.
func (s *Store) ForgetRequestShare(ctx context.Context, process string) error {
	err := s.db.withTx(ctx, func(tx *writeTx) error { return tx.exec(qForgetCounterShare, process) })
	if err != nil {
		return fmt.Errorf("forget request share: %w", err)
	}
	return nil
}

// CreateCollection stores c, movies included, for the user in one
// transaction, and returns the user's version it made and, withCounts,
// the counts it left the genres of c's movies at (else maybe nil: on
// SQLite reading them back costs the single writer a statement, worth it
// only when a cached list can use them). It returns
// errNoSuchUser when the account is gone, and errLimitReached when the
// user already has maxCollections. The movies are encoded and their
// genres counted before the write begins, so the single writer only
// stores them.
func (s *Store) CreateCollection(ctx context.Context, userID int64, c collection, withCounts bool) (int64, map[string]int, error) {
	movies, err := encodeMovies(c.Movies)
	if err != nil {
		return 0, nil, fmt.Errorf("create collection: %w", err)
	}
	tally := map[string]int{}
	tallyGenres(tally, c.Movies, +1)
	genres, err := newGenreDelta(tally)
	if err != nil {
		return 0, nil, fmt.Errorf("create collection: %w", err)
	}
	if s.db.dialect.writableCTEs {
		return s.createOne(ctx, userID, c, movies, genres)
	}
	var version int64
	var counts map[string]int
	err = s.db.withTx(ctx, func(tx *writeTx) error {
		tx.touch(userID)
		err := tx.queryRow(qCountCollection, userID, maxCollections).Scan(&version)
		if errors.Is(err, sql.ErrNoRows) {
			return whyNoCount(tx, userID)
		}
		if err != nil {
			return err
		}
		tx.leaves(userID, version)
		if err := tx.exec(qInsertCollection, c.UUID, userID, c.Title, c.Description, movies); err != nil {
			return err
		}
		if err := applyGenreDelta(tx, userID, genres); err != nil || !withCounts {
			return err
		}
		counts, err = genreCounts(tx, userID, genres.js)
		return err
	})
	if isForeignKeyViolation(err) {
		return 0, nil, errNoSuchUser
	}
	if err != nil && !errors.Is(err, errNoSuchUser) && !errors.Is(err, errLimitReached) {
		return 0, nil, fmt.Errorf("create collection: %w", err)
	}
	return version, counts, err
}

// createOne is CreateCollection in one statement, for a dialect with
// writableCTEs: one round trip and one commit instead of five. It locks
// the user's row, then the genres' in name order, as the transaction does.
func (s *Store) createOne(ctx context.Context, userID int64, c collection, movies string, genres genreDelta) (int64, map[string]int, error) {
	if genres.js == "" {
		genres.js = "{}"
	}
	var version int64
	var counted []byte
	err := s.db.writeOne(ctx, createQuery, func(row *sql.Row) error {
		return row.Scan(&version, &counted)
	}, c.UUID, userID, c.Title, c.Description, movies, maxCollections, genres.js)
	if errors.Is(err, sql.ErrNoRows) {
		// The user is gone, or at the limit.
		var n int
		err = s.db.read.QueryRowContext(ctx, `SELECT collections FROM users WHERE id = $1`, userID).Scan(&n)
		switch {
		case errors.Is(err, sql.ErrNoRows):
			return 0, nil, errNoSuchUser
		case err == nil:
			return 0, nil, errLimitReached
		}
	}
	if err != nil {
		return 0, nil, fmt.Errorf("create collection: %w", err)
	}
	counts := map[string]int{}
	if err := json.Unmarshal(counted, &counts); err != nil {
		return 0, nil, fmt.Errorf("create collection: %w", err)
	}
	return version, counts, nil
}

// createQuery counts one more collection for the user unless that would
// pass the limit ($6), inserts the collection, and adds the genre counts
// of its movies ($7, a JSON object of counts by genre), all only when the
// user's row matched; it returns the user's new version and the counts
// the genres were left at, or no row.
const createQuery = `WITH u AS (
		UPDATE users SET collections = collections + 1, version = version + 1
		WHERE id = $2 AND collections < $6 RETURNING version),
	c AS (
		INSERT INTO collections (uuid, user_id, title, description, movies)
		SELECT $1, $2, $3, $4, $5 FROM u RETURNING user_id),
	g AS (
		INSERT INTO user_genres (user_id, genre, n)
		SELECT c.user_id, t.key, CAST(t.value AS INTEGER) FROM c, json_each_text(CAST($7 AS JSON)) AS t
		ORDER BY t.key COLLATE "C"
		ON CONFLICT (user_id, genre) DO UPDATE SET n = user_genres.n + excluded.n
		RETURNING genre, n)
	SELECT u.version, COALESCE((SELECT json_object_agg(genre, n) FROM g), '{}') FROM u`

// whyNoCount tells why qCountCollection matched no user row: the user is
// gone, or at the limit.
func whyNoCount(tx *writeTx, userID int64) error {
	var version int64
	err := tx.queryRow(qBumpUser, userID, 0).Scan(&version)
	if errors.Is(err, sql.ErrNoRows) {
		return errNoSuchUser
	}
	if err != nil {
		return err
	}
	return errLimitReached
}

// A collection's movies are stored as the JSON list GET shows.

// encodeMovies is the stored form of a collection's movies.
func encodeMovies(movies []movie) (string, error) {
	if movies == nil {
		movies = []movie{}
	}
	b, err := marshal(movies)
	return string(bytes.TrimSuffix(b, []byte{'\n'})), err
}

// decodeMovies reads the stored form of a collection's movies.
func decodeMovies(stored string) ([]movie, error) {
	movies := []movie{}
	if err := json.Unmarshal([]byte(stored), &movies); err != nil {
		return nil, fmt.Errorf("stored movies: %w", err)
	}
	return movies, nil
}

// genreDelta is a change to a user's genre counts as the JSON object of
// counts by genre that the statements read ({counts}): made before a
// create's write begins, so that the single writer only runs statements.
type genreDelta struct {
	js     string // "" when no count changes
	lowers bool   // some count goes down
}

// newGenreDelta is tally as a genreDelta.
func newGenreDelta(tally map[string]int) (genreDelta, error) {
	if len(tally) == 0 {
		return genreDelta{}, nil
	}
	js, err := json.Marshal(tally)
	if err != nil {
		return genreDelta{}, err
	}
	d := genreDelta{js: string(js)}
	for _, n := range tally {
		d.lowers = d.lowers || n < 0
	}
	return d, nil
}

// applyGenreTally adds tally to the user's genre counts and drops the
// genres that it brought to zero: only the genres of this write are
// touched, whatever else the user has, in two statements however many
// there are.
func applyGenreTally(tx *writeTx, userID int64, tally map[string]int) error {
	d, err := newGenreDelta(tally)
	if err != nil {
		return err
	}
	return applyGenreDelta(tx, userID, d)
}

// applyGenreDelta is applyGenreTally with the tally already encoded.
func applyGenreDelta(tx *writeTx, userID int64, d genreDelta) error {
	if d.js == "" {
		return nil
	}
	if err := tx.exec(qAddGenres, userID, d.js); err != nil {
		return err
	}
	if d.lowers {
		return tx.exec(qDropGenres, userID, d.js)
	}
	return nil
}

// genreCounts reads the user's counts of the genres that the tally
// (a genreDelta's JSON) raised, in one statement that answers them as one
// JSON object.
func genreCounts(tx *writeTx, userID int64, tally string) (map[string]int, error) {
	counts := map[string]int{}
	if tally == "" {
		return counts, nil
	}
	var counted []byte
	if err := tx.queryRow(qGenreCounts, userID, tally).Scan(&counted); err != nil {
		return nil, err
	}
	return counts, json.Unmarshal(counted, &counts)
}

// Collections returns the user's collections, oldest first, their top
// three genre counts, and the user's version they are at, read in one
// statement so that all come from one snapshot. The genres come off the
// user_genres_top index: three rows, however many genres the user has.
func (s *Store) Collections(ctx context.Context, userID int64) ([]collectionSummary, []genreCount, int64, error) {
	st, err := s.db.readStmt(ctx, `SELECT 0 AS kind, id AS ord, uuid, title, description FROM collections WHERE user_id = $1
		UNION ALL
		SELECT * FROM (SELECT 1, n, genre, '', '' FROM user_genres WHERE user_id = $1
			ORDER BY n DESC, genre COLLATE `+s.db.dialect.byteCollation+` LIMIT 3) AS top
		UNION ALL
		SELECT 2, version, '', '', '' FROM users WHERE id = $1
		ORDER BY 1, 2`)
	if err != nil {
		return nil, nil, 0, fmt.Errorf("list collections: %w", err)
	}
	rows, err := st.QueryContext(ctx, userID)
	if err != nil {
		return nil, nil, 0, fmt.Errorf("list collections: %w", err)
	}
	defer rows.Close()
	list := []collectionSummary{}
	var genres []genreCount
	var version int64
	for rows.Next() {
		var kind, ord int64
		var c collectionSummary
		if err := rows.Scan(&kind, &ord, &c.UUID, &c.Title, &c.Description); err != nil {
			return nil, nil, 0, fmt.Errorf("list collections: %w", err)
		}
		switch kind {
		case 0:
			list = append(list, c)
		case 1:
			genres = append(genres, genreCount{Genre: c.UUID, N: int(ord)})
		default:
			version = ord
		}
	}
	if err := rows.Err(); err != nil {
		return nil, nil, 0, fmt.Errorf("list collections: %w", err)
	}
	return list, genres, version, nil
}

// storedCollection is a collection as stored and as GET shows it: its
// movies are the stored JSON list, passed on without being decoded.
type storedCollection struct {
	UUID        string          `json:"uuid"`
	Title       string          `json:"title"`
	Description string          `json:"description"`
	Movies      json.RawMessage `json:"movies"`
}

// body is c as GET and PUT /collection/{id}/ answer it, a body for
// writeJSON. The stored movies go in as they are: they are JSON this
// service wrote, and encoding/json would check and compact them again,
// byte by byte, which was most of the CPU of answering a rename.
func (c storedCollection) body() []byte {
	b := make([]byte, 0, 64+len(c.UUID)+len(c.Title)+len(c.Description)+len(c.Movies))
	b = append(b, `{"uuid":`...)
	b = appendJSONString(b, c.UUID)
	b = append(b, `,"title":`...)
	b = appendJSONString(b, c.Title)
	b = append(b, `,"description":`...)
	b = appendJSONString(b, c.Description)
	b = append(b, `,"movies":`...)
	if len(c.Movies) == 0 {
		b = append(b, "[]"...)
	}
	b = append(b, c.Movies...)
	return append(b, "}\n"...)
}

// Collection returns one of the user's collections with its movies, or
// errNotFound when the user has no collection with that UUID.
func (s *Store) Collection(ctx context.Context, userID int64, id string) (storedCollection, error) {
	st, err := s.db.readStmt(ctx, `SELECT title, description, movies FROM collections WHERE uuid = $1 AND user_id = $2`)
	if err != nil {
		return storedCollection{}, fmt.Errorf("get collection: %w", err)
	}
	c, err := scanCollection(id, st.QueryRowContext(ctx, id, userID))
	if err != nil && !errors.Is(err, errNotFound) {
		err = fmt.Errorf("get collection: %w", err)
	}
	return c, err
}

// scanCollection reads collection id from row: its title, description and
// stored movies.
func scanCollection(id string, row *sql.Row) (storedCollection, error) {
	c := storedCollection{UUID: id}
	var movies string
	err := row.Scan(&c.Title, &c.Description, &movies)
	if errors.Is(err, sql.ErrNoRows) {
		return c, errNotFound
	}
	c.Movies = json.RawMessage(movies)
	return c, err
}

// bumpUser moves the user's version on, so that cached reads of the user
// go stale, adds delta to their collection count, and returns the new
// version.
func bumpUser(tx *writeTx, userID int64, delta int) (int64, error) {
	tx.touch(userID)
	var version int64
	if err := tx.queryRow(qBumpUser, userID, delta).Scan(&version); err != nil {
		return 0, err
	}
	tx.leaves(userID, version)
	return version, nil
}

// UpdateCollection applies the fields of in that are set (movies replace
// the whole list) in one transaction and returns the collection as stored
// and the user's version it made. A rename is one statement; new movies
// first read (and, on PostgreSQL, lock) the old ones, whose genres leave
// the user's counts.
func (s *Store) UpdateCollection(ctx context.Context, userID int64, id string, in collectionInput) (storedCollection, int64, error) {
	if in.Movies == nil && s.db.dialect.writableCTEs {
		return s.rename(ctx, userID, id, in)
	}
	var movies *string
	tally := map[string]int{}
	if in.Movies != nil {
		encoded, err := encodeMovies(*in.Movies)
		if err != nil {
			return storedCollection{}, 0, fmt.Errorf("update collection: %w", err)
		}
		movies = &encoded
		tallyGenres(tally, *in.Movies, +1)
	}
	var c storedCollection
	var version int64
	err := s.db.withTx(ctx, func(tx *writeTx) error {
		if movies != nil {
			var old string
			err := tx.queryRow(qLockCollection, id, userID).Scan(&old)
			if err != nil {
				return noRowsIsNotFound(err)
			}
			if err := untallyMovies(tally, old); err != nil {
				return err
			}
		}
		var err error
		c, err = scanCollection(id, tx.queryRow(qUpdateCollection, id, userID, in.Title, in.Description, movies))
		if err != nil {
			return err
		}
		if version, err = bumpUser(tx, userID, 0); err != nil {
			return err
		}
		return applyGenreTally(tx, userID, tally)
	})
	if err != nil && !errors.Is(err, errNotFound) {
		err = fmt.Errorf("update collection: %w", err)
	}
	return c, version, err
}

// rename is UpdateCollection without movies, in one statement.
func (s *Store) rename(ctx context.Context, userID int64, id string, in collectionInput) (storedCollection, int64, error) {
	c := storedCollection{UUID: id}
	var version int64
	var movies string
	err := s.db.writeOne(ctx, renameQuery, func(row *sql.Row) error {
		return row.Scan(&c.Title, &c.Description, &movies, &version)
	}, id, userID, in.Title, in.Description)
	c.Movies = json.RawMessage(movies)
	switch {
	case errors.Is(err, sql.ErrNoRows):
		return c, 0, errNotFound
	case err != nil:
		return c, 0, fmt.Errorf("update collection: %w", err)
	}
	return c, version, nil
}

// renameQuery is qUpdateCollection without movies, and bumpUser, in one
// statement, for a dialect with writableCTEs. It locks the collection's
// row, then the user's, as UpdateCollection's transaction does.
const renameQuery = `WITH c AS (
		UPDATE collections SET title = COALESCE($3, title), description = COALESCE($4, description)
		WHERE uuid = $1 AND user_id = $2 RETURNING title, description, movies),
	u AS (
		UPDATE users SET version = version + 1 WHERE id = $2 AND EXISTS (SELECT FROM c) RETURNING version)
	SELECT c.title, c.description, c.movies, u.version FROM c, u`

// DeleteCollection removes one of the user's collections and returns the
// user's version it made, or errNotFound.
func (s *Store) DeleteCollection(ctx context.Context, userID int64, id string) (int64, error) {
	var version int64
	err := s.db.withTx(ctx, func(tx *writeTx) error {
		var old string
		if err := tx.queryRow(qDeleteCollection, id, userID).Scan(&old); err != nil {
			return noRowsIsNotFound(err)
		}
		var err error
		if version, err = bumpUser(tx, userID, -1); err != nil {
			return err
		}
		tally := map[string]int{}
		if err := untallyMovies(tally, old); err != nil {
			return err
		}
		return applyGenreTally(tx, userID, tally)
	})
	if err != nil && !errors.Is(err, errNotFound) {
		err = fmt.Errorf("delete collection: %w", err)
	}
	return version, err
}

// untallyMovies takes the genres of stored movies off tally.
func untallyMovies(tally map[string]int, stored string) error {
	movies, err := decodeMovies(stored)
	if err != nil {
		return err
	}
	tallyGenres(tally, movies, -1)
	return nil
}

// noRowsIsNotFound turns "no row" into errNotFound.
func noRowsIsNotFound(err error) error {
	if errors.Is(err, sql.ErrNoRows) {
		return errNotFound
	}
	return err
}
