package main

import (
	"cmp"
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
	// ids remembers the id of each account's UUID where ids are not
	// reused (stableIDs), so that an account is read by its id, from
	// user_versions alone, in versionReads; nil elsewhere.
	ids          *accountIDs
	versionReads *freshBatch[int64, idVersion]
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
	if d.dialect.stableIDs {
		s.ids = &accountIDs{ids: map[string]int64{}}
		s.versionReads = newFreshBatch(s.readVersions)
	}
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

// CreateCollection stores c, movies and genre counts (countGenres of
// c.Movies, or nil to have them counted here) included, for the user in one transaction, and returns the
// user's version it made. It returns errNoSuchUser when the
// account is gone, and errLimitReached when the user already has
// maxCollections. The movies and their genre counts are encoded before
// the write begins, so the single writer only stores them: one row,
// however many movies and genres it holds.
func (s *Store) CreateCollection(ctx context.Context, userID int64, c collection, counts map[string]int) (int64, error) {
	if counts == nil && len(c.Movies) > 0 {
		counts = countGenres(c.Movies) // not counted by the caller
	}
	movies, genres := encodeMovies(c.Movies), encodeGenreCounts(counts)
	if s.db.dialect.writableCTEs {
		return s.createOne(ctx, userID, c, movies, genres)
	}
	created := createdAt(time.Now())
	var version int64
	err := s.db.withTx(ctx, func(tx *writeTx) error {
		tx.touch(userID)
		err := tx.queryRow(qCountCollection, userID, maxCollections).Scan(&version)
		if errors.Is(err, sql.ErrNoRows) {
			return whyNoCount(tx, userID)
		}
		if err != nil {
			return err
		}
		tx.leaves(userID, version)
		return tx.exec(qInsertCollection, c.UUID, userID, c.Title, c.Description, genres, movies, created)
	})
	if isForeignKeyViolation(err) {
		return 0, errNoSuchUser
	}
	if err != nil && !errors.Is(err, errNoSuchUser) && !errors.Is(err, errLimitReached) {
		return 0, fmt.Errorf("create collection: %w", err)
	}
	return version, err
}

// createOne is CreateCollection in one statement, for a dialect with
// writableCTEs: one round trip and one commit instead of three.
func (s *Store) createOne(ctx context.Context, userID int64, c collection, movies, genres string) (int64, error) {
	var version int64
	err := s.db.writeOne(ctx, userID, createQuery, func(row rowScanner) error {
		return row.Scan(&version)
	}, c.UUID, userID, c.Title, c.Description, movies, maxCollections, genres)
	if errors.Is(err, sql.ErrNoRows) {
		// The user is gone, or at the limit.
		var n int
		err = s.db.read.QueryRowContext(ctx, `SELECT collections FROM user_versions WHERE user_id = $1`, userID).Scan(&n)
		switch {
		case errors.Is(err, sql.ErrNoRows):
			return 0, errNoSuchUser
		case err == nil:
			return 0, errLimitReached
		}
	}
	if err != nil {
		return 0, fmt.Errorf("create collection: %w", err)
	}
	return version, nil
}

// createQuery counts one more collection for the user unless that would
// pass the limit ($6) and inserts the collection with its genre counts
// ($7), only when the user's row matched; it returns the user's new
// version, or no row. (A data-modifying WITH runs whether or not the
// query reads it.)
const createQuery = `WITH u AS (
		UPDATE user_versions SET collections = collections + 1, version = version + 1
		WHERE user_id = $2 AND collections < $6 RETURNING version),
	c AS (
		INSERT INTO collections (uuid, user_id, title, description, genres, movies)
		SELECT $1, $2, $3, $4, $7, $5 FROM u)
	SELECT version FROM u`

// createdAt is t as SQLite's created_at default writes it (strftime
// '%Y-%m-%dT%H:%M:%fZ'): UTC, to the millisecond.
func createdAt(t time.Time) string {
	return t.UTC().Format("2006-01-02T15:04:05.000Z")
}

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

// encodeMovies is the stored form of a collection's movies: what
// encoding/json writes of them, without HTML escaping, written by hand
// (a quarter of the time, and one allocation).
func encodeMovies(movies []movie) string {
	n := 2
	for _, m := range movies {
		n += len(m.Title) + len(m.Description) + len(m.Genres) + len(m.UUID) + 48
	}
	b := make([]byte, 0, n)
	b = append(b, '[')
	for i, m := range movies {
		if i > 0 {
			b = append(b, ',')
		}
		b = append(b, `{"title":`...)
		b = appendJSONString(b, m.Title)
		b = append(b, `,"description":`...)
		b = appendJSONString(b, m.Description)
		b = append(b, `,"genres":`...)
		b = appendJSONString(b, m.Genres)
		b = append(b, `,"uuid":`...)
		b = appendJSONString(b, m.UUID)
		b = append(b, '}')
	}
	return string(append(b, ']'))
}

// decodeMovies reads the stored form of a collection's movies.
func decodeMovies(stored string) ([]movie, error) {
	movies := []movie{}
	if err := json.Unmarshal([]byte(stored), &movies); err != nil {
		return nil, fmt.Errorf("stored movies: %w", err)
	}
	return movies, nil
}

// Collections returns the user's collections, oldest first, the user's
// count of each genre their movies carry, and the user's version they are
// at, read in one statement so that all come from one snapshot. The
// counts are summed here from each collection's own, as its row is read:
// SQLite's and PostgreSQL's JSON functions took about 8 µs a collection to
// do it. A user with more than maxHeldGenres genres (at most one
// collection's more are summed before the count is checked), or with a
// collection stored before the caps on its genres, gets the top three
// only, summed by the database in a statement of its own instead.
func (s *Store) Collections(ctx context.Context, userID int64) ([]collectionSummary, genreTotals, int64, error) {
	list, genres, version, err := s.collections(ctx, userID, `SELECT 0 AS kind, id AS ord, uuid, title, description, genres
		FROM collections WHERE user_id = $1
		UNION ALL
		SELECT 2, version, '', '', '', '' FROM user_versions WHERE user_id = $1
		ORDER BY 1, 2`)
	if errors.Is(err, errManyGenres) {
		list, genres, version, err = s.collections(ctx, userID, `SELECT 0 AS kind, id AS ord, uuid, title, description, '' AS genres
			FROM collections WHERE user_id = $1
			UNION ALL
			SELECT * FROM (SELECT 1, CAST(sum(CAST(t.value AS BIGINT)) AS BIGINT) AS n, t.key, '', '', ''
				FROM collections c, `+s.db.dialect.genreCounts+` AS t WHERE c.user_id = $1
				GROUP BY t.key ORDER BY n DESC, t.key COLLATE `+s.db.dialect.byteCollation+` LIMIT 3) AS top
			UNION ALL
			SELECT 2, version, '', '', '', '' FROM user_versions WHERE user_id = $1
			ORDER BY 1, 2`)
	}
	if err != nil {
		return nil, genreTotals{}, 0, fmt.Errorf("list collections: %w", err)
	}
	return list, genres, version, nil
}

// maxStoredGenreCounts is the most bytes a collection's stored genre
// counts take within the caps: its names, and each name's quotes, colon,
// count of at most four digits and comma. A collection stored before the
// caps may hold more: the database sums those.
const maxStoredGenreCounts = 2 + maxCollectionGenreBytes + maxCollectionGenres*len(`"":1000,`)

// errManyGenres is collections' answer for a user with more than
// maxHeldGenres genres, or a collection stored before the caps, when it
// sums them itself.
var errManyGenres = errors.New("more genres than a list holds")

// collections runs query, one of Collections', and reads its rows: kind 0
// a collection, with its genre counts to sum (or ""), 1 a genre summed by
// the database, 2 the user's version.
func (s *Store) collections(ctx context.Context, userID int64, query string) ([]collectionSummary, genreTotals, int64, error) {
	st, err := s.db.readStmt(ctx, query)
	if err != nil {
		return nil, genreTotals{}, 0, err
	}
	rows, err := st.QueryContext(ctx, userID)
	if err != nil {
		return nil, genreTotals{}, 0, err
	}
	defer rows.Close()
	list := []collectionSummary{}
	genres := genreTotals{counts: map[string]int{}}
	sums := genreSums{}
	var version int64
	var counts sql.RawBytes // each row's, read into one buffer
	for rows.Next() {
		var kind, ord int64
		var c collectionSummary
		if err := rows.Scan(&kind, &ord, &c.UUID, &c.Title, &c.Description, &counts); err != nil {
			return nil, genreTotals{}, 0, err
		}
		switch kind {
		case 0:
			list = append(list, c)
			if len(counts) == 0 {
				continue
			}
			if len(counts) > maxStoredGenreCounts {
				return nil, genreTotals{}, 0, errManyGenres // kept from before the caps
			}
			if err := addGenreCounts(sums, counts); err != nil {
				return nil, genreTotals{}, 0, fmt.Errorf("collection %s: %w", c.UUID, err)
			}
			if len(sums) > maxHeldGenres {
				return nil, genreTotals{}, 0, errManyGenres
			}
		case 1:
			genres.counts[c.UUID] = int(ord)
			genres.partial = true
		default:
			version = ord
		}
	}
	if err := rows.Err(); err != nil {
		return nil, genreTotals{}, 0, err
	}
	if !genres.partial {
		genres.counts = sums.counts()
	}
	return list, genres, version, nil
}

// maxHeldGenres is the most genre counts a read list holds: a user with
// more gets the top three only.
const maxHeldGenres = 1024

// genreTotals is a user's count of each genre their movies carry: every
// one, or, partial, only the top three, of a user with more than
// maxHeldGenres.
type genreTotals struct {
	counts  map[string]int
	partial bool
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

// UpdateCollection applies the fields of in that are set (movies, with
// their genre counts, replace the stored ones) in one transaction and
// returns the collection as stored and the user's version it made.
func (s *Store) UpdateCollection(ctx context.Context, userID int64, id string, in collectionInput) (storedCollection, int64, error) {
	var movies, genres *string
	if in.Movies != nil {
		counts := in.Genres
		if counts == nil && len(*in.Movies) > 0 {
			counts = countGenres(*in.Movies) // not counted by the caller
		}
		m, g := encodeMovies(*in.Movies), encodeGenreCounts(counts)
		movies, genres = &m, &g
	}
	if s.db.dialect.writableCTEs {
		return s.updateOne(ctx, userID, id, in, movies, genres)
	}
	var c storedCollection
	var version int64
	err := s.db.withTx(ctx, func(tx *writeTx) error {
		var err error
		c, err = scanCollection(id, tx.queryRow(qUpdateCollection, id, userID, in.Title, in.Description, genres, movies))
		if err != nil {
			return err
		}
		version, err = bumpUser(tx, userID, 0)
		return err
	})
	if err != nil && !errors.Is(err, errNotFound) {
		err = fmt.Errorf("update collection: %w", err)
	}
	return c, version, err
}

// updateOne is UpdateCollection in one statement, for a dialect with
// writableCTEs.
func (s *Store) updateOne(ctx context.Context, userID int64, id string, in collectionInput, movies, genres *string) (storedCollection, int64, error) {
	c := storedCollection{UUID: id}
	var version int64
	var stored string
	err := s.db.writeOne(ctx, userID, updateQuery, func(row rowScanner) error {
		return row.Scan(&c.Title, &c.Description, &stored, &version)
	}, id, userID, in.Title, in.Description, genres, movies)
	c.Movies = json.RawMessage(stored)
	switch {
	case errors.Is(err, sql.ErrNoRows):
		return c, 0, errNotFound
	case err != nil:
		return c, 0, fmt.Errorf("update collection: %w", err)
	}
	return c, version, nil
}

// updateQuery is qUpdateCollection and bumpUser in one statement, for a
// dialect with writableCTEs. It locks the collection's row, then the
// user's, as UpdateCollection's transaction does.
const updateQuery = `WITH c AS (
		UPDATE collections SET title = COALESCE($3, title), description = COALESCE($4, description),
			genres = COALESCE($5, genres), movies = COALESCE($6, movies)
		WHERE uuid = $1 AND user_id = $2 RETURNING title, description, movies),
	u AS (
		UPDATE user_versions SET version = version + 1 WHERE user_id = $2 AND EXISTS (SELECT FROM c) RETURNING version)
	SELECT c.title, c.description, c.movies, u.version FROM c, u`

// DeleteCollection removes one of the user's collections and returns the
// user's version it made, or errNotFound. The collection's genre counts
// go with its row.
func (s *Store) DeleteCollection(ctx context.Context, userID int64, id string) (int64, error) {
	var version int64
	err := s.db.withTx(ctx, func(tx *writeTx) error {
		res, err := tx.stmt(qDeleteCollection).ExecContext(tx.ctx, id, userID)
		if err != nil {
			return err
		}
		if n, err := res.RowsAffected(); err != nil || n == 0 {
			return cmp.Or(err, errNotFound)
		}
		version, err = bumpUser(tx, userID, -1)
		return err
	})
	if err != nil && !errors.Is(err, errNotFound) {
		err = fmt.Errorf("delete collection: %w", err)
	}
	return version, err
}

// countCollectionGenres fills in the genre counts of every collection
// stored before migration 5, from its movies, as a create counts them. It
// reads a few collections at a time: a stored movie list may be megabytes.
func countCollectionGenres(ctx context.Context, tx *sql.Tx) error {
	type stored struct {
		id     int64
		movies string
	}
	var after int64
	for {
		rows, err := tx.QueryContext(ctx, `SELECT id, movies FROM collections WHERE id > $1 ORDER BY id LIMIT 10`, after)
		if err != nil {
			return err
		}
		var batch []stored
		for rows.Next() {
			var c stored
			if err := rows.Scan(&c.id, &c.movies); err != nil {
				rows.Close()
				return err
			}
			batch = append(batch, c)
		}
		if err := errors.Join(rows.Err(), rows.Close()); err != nil {
			return err
		}
		if len(batch) == 0 {
			return nil
		}
		for _, c := range batch {
			movies, err := decodeMovies(c.movies)
			if err != nil {
				return fmt.Errorf("collection %d: %w", c.id, err)
			}
			genres := encodeGenreCounts(countGenres(movies))
			if _, err := tx.ExecContext(ctx, `UPDATE collections SET genres = $1 WHERE id = $2`, genres, c.id); err != nil {
				return err
			}
			after = c.id
		}
	}
}
