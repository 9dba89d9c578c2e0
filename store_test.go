package main

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"maps"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"
)

func TestMigrationsAreNumberedInOrder(t *testing.T) {
	for _, d := range []dialect{sqliteDialect, postgresDialect} {
		steps, err := migrations(d.schema)
		if err != nil {
			t.Fatalf("%s: %v", d.name, err)
		}
		if len(steps) != 6 {
			t.Fatalf("%s: %d migrations, want 6", d.name, len(steps))
		}
	}
	sqliteSteps, _ := migrations(sqliteDialect.schema)
	postgresSteps, _ := migrations(postgresDialect.schema)
	if len(sqliteSteps) != len(postgresSteps) {
		t.Fatal("the SQLite and PostgreSQL schemas must have the same migrations")
	}
	if _, err := migrations("-- migration 2: out of order\nSELECT 1;"); err == nil || !strings.Contains(err.Error(), "expected") {
		t.Fatalf("a gap in the numbering must be an error, got %v", err)
	}
}

func TestMigrateUpgradesAnExistingDatabase(t *testing.T) {
	forEachBackend(t, func(t *testing.T, be backend) {
		ctx := context.Background()
		dsn := be.dsn(t)
		// A database at schema version 2, as an earlier release left
		// it, with an account, a collection of two movies (stored out of
		// order, one with a quote and an accent) and an empty one.
		d := openAtVersion(t, dsn, 2)
		for _, stmt := range []string{
			`INSERT INTO users (username, password_hash) VALUES ('old.user', 'hash')`,
			`INSERT INTO collections (uuid, user_id, title, description) SELECT '57baf4f4-c9ef-4197-9e4f-acf04eae5b4d', id, 'kept', '' FROM users`,
			`INSERT INTO collections (uuid, user_id, title, description) SELECT '6d9e3f7a-1b2c-4d5e-8f90-123456789abc', id, 'empty', 'none' FROM users`,
			`INSERT INTO collection_movies (collection_id, position, movie_uuid, title, description, genres)
				SELECT id, 1, 'b0000000-0000-4000-8000-000000000002', 'Second', 'says "hi" in café', 'Drama,Comedy' FROM collections WHERE title = 'kept'`,
			`INSERT INTO collection_movies (collection_id, position, movie_uuid, title, description, genres)
				SELECT id, 0, 'a0000000-0000-4000-8000-000000000001', 'First', '', 'Drama' FROM collections WHERE title = 'kept'`,
			`INSERT INTO user_genres (user_id, genre, n) SELECT id, 'Drama', 2 FROM users`,
			`INSERT INTO user_genres (user_id, genre, n) SELECT id, 'Comedy', 1 FROM users`,
		} {
			if _, err := d.ExecContext(ctx, stmt); err != nil {
				t.Fatal(err)
			}
		}
		// Opening it with this build migrates it and keeps its data.
		s := reopenMigrated(t, d, dsn)
		u, err := s.UserByName(ctx, "OLD.USER")
		if err != nil {
			t.Fatalf("user after migration: %v", err)
		}
		if _, ok := canonicalUUID(u.UUID); !ok {
			t.Fatalf("account UUID after migration: %q", u.UUID)
		}
		if _, err := s.Account(ctx, u.UUID); err != nil {
			t.Fatalf("account after migration: %v", err)
		}
		list, genres, _, err := s.Collections(ctx, u.ID)
		if err != nil || len(list) != 2 || list[0].Title != "kept" || favouriteGenres(genres.counts) != "Drama, Comedy" {
			t.Fatalf("collections after migration: %+v, %+v, %v", list, genres, err)
		}
		kept, err := s.Collection(ctx, u.ID, list[0].UUID)
		want := []movie{
			{UUID: "a0000000-0000-4000-8000-000000000001", Title: "First", Genres: "Drama"},
			{UUID: "b0000000-0000-4000-8000-000000000002", Title: "Second", Description: `says "hi" in café`, Genres: "Drama,Comedy"},
		}
		if movies, _ := decodeMovies(string(kept.Movies)); err != nil || !slices.Equal(movies, want) {
			t.Fatalf("movies after migration: %s, %v", kept.Movies, err)
		}
		if empty, err := s.Collection(ctx, u.ID, list[1].UUID); err != nil || string(empty.Movies) != "[]" {
			t.Fatalf("empty collection after migration: %+v, %v", empty, err)
		}
		var counted int
		s.db.read.QueryRowContext(ctx, "SELECT collections FROM user_versions").Scan(&counted)
		if counted != 2 {
			t.Fatalf("collection count after migration: got %d, want 2", counted)
		}
		// The migrated genre counts go on: deleting the collection takes
		// its genres away again.
		if _, err := s.DeleteCollection(ctx, u.ID, list[0].UUID); err != nil {
			t.Fatal(err)
		}
		if _, genres, _, err := s.Collections(ctx, u.ID); err != nil || len(genres.counts) != 0 {
			t.Fatalf("genre counts after deleting the migrated collection: %+v, %v", genres, err)
		}
		steps, _ := migrations(s.db.dialect.schema)
		var version int
		s.db.read.QueryRowContext(ctx, "SELECT MAX(version) FROM schema_migrations").Scan(&version)
		if version != len(steps) {
			t.Fatalf("schema version: got %d, want %d", version, len(steps))
		}
	})
}

// TestMigrateFromVersion4CountsEachCollectionsGenres: a database as the
// release before per-collection genre counts left it gets each
// collection's counts as this build counts them, and its favourite
// genres stay what they were.
func TestMigrateFromVersion4CountsEachCollectionsGenres(t *testing.T) {
	forEachBackend(t, func(t *testing.T, be backend) {
		ctx := context.Background()
		dsn := be.dsn(t)
		d := openAtVersion(t, dsn, 4)
		movies := map[string][]movie{
			"a0000000-0000-4000-8000-000000000001": {newMovie(" Drama ,drama,Drama"), newMovie(`<é> "q"`), newMovie("")},
			"a0000000-0000-4000-8000-000000000002": {newMovie("Drama,War")},
			"a0000000-0000-4000-8000-000000000003": nil,
		}
		for i := range 25 { // more than the migration counts at a time
			movies[fmt.Sprintf("c0000000-0000-4000-8000-%012d", i)] = []movie{newMovie(fmt.Sprintf("Extra,Genre %d", i%4))}
		}
		if _, err := d.ExecContext(ctx, `INSERT INTO users (uuid, username, password_hash) VALUES ('b0000000-0000-4000-8000-000000000001', 'kate', 'hash')`); err != nil {
			t.Fatal(err)
		}
		for id, m := range movies {
			if _, err := d.ExecContext(ctx, `INSERT INTO collections (uuid, user_id, title, description, movies) SELECT $1, id, 't', '', $2 FROM users`, id, encodeMovies(m)); err != nil {
				t.Fatal(err)
			}
		}
		s := reopenMigrated(t, d, dsn)
		var all []movie
		for id, m := range movies {
			all = append(all, m...)
			var stored string
			if err := s.db.read.QueryRowContext(ctx, `SELECT genres FROM collections WHERE uuid = $1`, id).Scan(&stored); err != nil {
				t.Fatal(err)
			}
			if want := encodeGenreCounts(countGenres(m)); stored != want {
				t.Errorf("collection %s: genre counts %s, want %s", id, stored, want)
			}
		}
		u, err := s.UserByName(ctx, "kate")
		if err != nil {
			t.Fatal(err)
		}
		_, genres, _, err := s.Collections(ctx, u.ID)
		if err != nil || !maps.Equal(genres.counts, countGenres(all)) {
			t.Fatalf("genre counts after migration: %v (%v), want %v", genres.counts, err, countGenres(all))
		}
	})
}

// TestMigrateFromVersion5KeepsEachUsersVersion: moving the versions and
// collection counts to user_versions keeps each user's, so answers cached
// at a version stay told apart from what comes after, and the limit
// still counts what the user has.
func TestMigrateFromVersion5KeepsEachUsersVersion(t *testing.T) {
	forEachBackend(t, func(t *testing.T, be backend) {
		ctx := context.Background()
		dsn := be.dsn(t)
		d := openAtVersion(t, dsn, 5)
		for _, stmt := range []string{
			`INSERT INTO users (uuid, username, password_hash, version, collections) VALUES ('b0000000-0000-4000-8000-000000000001', 'kate', 'hash', 41, 999)`,
			`INSERT INTO users (uuid, username, password_hash, version, collections) VALUES ('b0000000-0000-4000-8000-000000000002', 'tom', 'hash', 7, 0)`,
		} {
			if _, err := d.ExecContext(ctx, stmt); err != nil {
				t.Fatal(err)
			}
		}
		s := reopenMigrated(t, d, dsn)
		for uuid, want := range map[string]int64{"b0000000-0000-4000-8000-000000000001": 41, "b0000000-0000-4000-8000-000000000002": 7} {
			if a, err := s.Account(ctx, uuid); err != nil || a.version != want {
				t.Fatalf("account %s after migration: %+v, %v; want version %d", uuid, a, err, want)
			}
		}
		kate, err := s.UserByName(ctx, "kate")
		if err != nil {
			t.Fatal(err)
		}
		if _, err := s.CreateCollection(ctx, kate.ID, collection{UUID: newUUID(), Title: "the 1000th"}, nil); err != nil {
			t.Fatalf("kate's 1000th collection: %v", err)
		}
		if _, err := s.CreateCollection(ctx, kate.ID, collection{UUID: newUUID(), Title: "one too many"}, nil); !errors.Is(err, errLimitReached) {
			t.Fatalf("kate's 1001st collection: got %v, want errLimitReached", err)
		}
		if a, err := s.Account(ctx, "b0000000-0000-4000-8000-000000000001"); err != nil || a.version != 42 {
			t.Fatalf("kate after one create: %+v, %v; want version 42", a, err)
		}
		// An account made after the migration by a build that knows
		// nothing of user_versions (an older one, still running while a
		// newer one starts) works all the same: the trigger makes its row.
		if _, err := s.db.write.ExecContext(ctx, `INSERT INTO users (uuid, username, password_hash) VALUES ('b0000000-0000-4000-8000-000000000003', 'ann', 'hash')`); err != nil {
			t.Fatal(err)
		}
		ann, err := s.Account(ctx, "b0000000-0000-4000-8000-000000000003")
		if err != nil {
			t.Fatalf("an account an older build made: %v", err)
		}
		if _, err := s.CreateCollection(ctx, ann.id, collection{UUID: newUUID(), Title: "ann's"}, nil); err != nil {
			t.Fatalf("a collection of an account an older build made: %v", err)
		}
	})
}

// TestCountsStoredBeforeTheCapsAreSummedByTheDatabase: a collection
// whose stored genre counts are larger than the caps now allow (stored
// before them) has its user's genres summed by the database, top three
// only, and right.
func TestCountsStoredBeforeTheCapsAreSummedByTheDatabase(t *testing.T) {
	forEachBackend(t, func(t *testing.T, be backend) {
		ctx := context.Background()
		s := openTestStore(t, be)
		_, acct := newAccount(t, s, s, "kate")
		movies := []movie{newMovie("War,Drama"), newMovie("War")}
		if _, err := s.CreateCollection(ctx, acct.id, collection{UUID: newUUID(), Title: "t", Movies: movies}, countGenres(movies)); err != nil {
			t.Fatal(err)
		}
		// As an earlier build stored it: 150 distinct genres of 20 bytes.
		var old []movie
		for i := range 150 {
			old = append(old, newMovie(fmt.Sprintf("genre %014d", i)))
		}
		old = append(old, newMovie("Drama"), newMovie("Drama"))
		counts := encodeGenreCounts(countGenres(old))
		if len(counts) <= maxStoredGenreCounts {
			t.Fatalf("the old collection's counts take %d bytes, within the caps", len(counts))
		}
		if _, err := s.db.write.ExecContext(ctx, `INSERT INTO collections (uuid, user_id, title, description, genres, movies) VALUES ($1, $2, 'old', '', $3, $4)`,
			newUUID(), acct.id, counts, encodeMovies(old)); err != nil {
			t.Fatal(err)
		}
		list, genres, _, err := s.Collections(ctx, acct.id)
		if err != nil || len(list) != 2 || !genres.partial || !maps.Equal(genres.counts, map[string]int{"Drama": 3, "War": 2, "genre 00000000000000": 1}) {
			t.Fatalf("list %d collections, genres %+v, %v", len(list), genres, err)
		}
	})
}

// openAtVersion creates the database dsn names, fresh, with only its
// first n migrations applied, as an older release would have, and returns
// its writer pool.
func openAtVersion(t *testing.T, dsn string, n int) *sql.DB {
	t.Helper()
	d, err := openPools(dsn, poolConfig{})
	if err != nil {
		t.Fatal(err)
	}
	steps, err := migrations(d.dialect.schema)
	if err != nil {
		t.Fatal(err)
	}
	var older []string
	for i, step := range steps[:n] {
		older = append(older, fmt.Sprintf("-- migration %d: as released\n%s", i+1, step))
	}
	d.dialect.schema = strings.Join(older, "\n")
	if err := d.migrate(context.Background()); err != nil {
		t.Fatal(err)
	}
	return d.write
}

// reopenMigrated closes old, a database openAtVersion made, and opens it
// with this build, which brings its schema up to date.
func reopenMigrated(t *testing.T, old *sql.DB, dsn string) *Store {
	t.Helper()
	old.Close()
	s, err := openStore(context.Background(), dsn, poolConfig{})
	if err != nil {
		t.Fatalf("migrate: %v", err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

// TestSchemaParity compares what the two schema files build: the same
// tables, with the same columns, and the same unique keys (primary keys
// included). Column types differ by dialect and are not compared.
func TestSchemaParity(t *testing.T) {
	if len(backends()) < 2 {
		t.Skip("needs PostgreSQL: set TEST_DATABASE_URL")
	}
	var shapes []map[string][]string
	for _, be := range backends() {
		s, err := openStore(context.Background(), be.dsn(t), poolConfig{})
		if err != nil {
			t.Fatal(err)
		}
		defer s.Close()
		shapes = append(shapes, schemaShape(t, s))
	}
	t.Logf("sqlite schema: %v", shapes[0])
	if got, want := fmt.Sprint(shapes[1]), fmt.Sprint(shapes[0]); got != want {
		t.Fatalf("schemas differ:\npostgres: %s\nsqlite:   %s", got, want)
	}
}

// schemaShape lists each table's columns and unique keys, sorted.
func schemaShape(t *testing.T, s *Store) map[string][]string {
	t.Helper()
	ctx := context.Background()
	queries := map[string]string{
		// table, column or key
		"sqlite": `SELECT m.name, 'column ' || c.name FROM sqlite_master m, pragma_table_info(m.name) c WHERE m.type = 'table' AND m.name NOT LIKE 'sqlite_%'
			UNION ALL SELECT m.name, 'key (' || group_concat(c.name, ', ') || ')' FROM sqlite_master m, pragma_table_info(m.name) c WHERE m.type = 'table' AND c.pk > 0 GROUP BY m.name
			UNION ALL SELECT m.name, 'key (' || group_concat(ii.name, ', ') || ')' FROM sqlite_master m, pragma_index_list(m.name) il, pragma_index_info(il.name) ii
				WHERE m.type = 'table' AND il."unique" = 1 AND il.origin = 'u' GROUP BY m.name, il.name
			UNION ALL SELECT tbl_name, 'sql ' || sql FROM sqlite_master WHERE type = 'index' AND sql LIKE 'CREATE UNIQUE%'`,
		"postgres": `SELECT table_name, 'column ' || column_name FROM information_schema.columns WHERE table_schema = current_schema()
			UNION ALL SELECT tablename, 'index ' || indexdef FROM pg_indexes WHERE schemaname = current_schema() AND indexdef LIKE 'CREATE UNIQUE%'`,
	}
	rows, err := s.db.read.QueryContext(ctx, queries[s.db.dialect.name])
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	shape := map[string][]string{}
	keyCols := regexp.MustCompile(`\((.*)\)$`)
	for rows.Next() {
		var table, what string
		if err := rows.Scan(&table, &what); err != nil {
			t.Fatal(err)
		}
		switch kind, rest, _ := strings.Cut(what, " "); kind {
		case "sql", "index": // an index by its key: lower(username), not its name
			what = "key (" + strings.ReplaceAll(keyCols.FindStringSubmatch(rest)[1], `"`, "") + ")"
		}
		shape[table] = append(shape[table], what)
	}
	for _, v := range shape {
		slices.Sort(v)
	}
	return shape
}

// TestCreateCountsWhatItCreated: a create returns the user's new version
// and the genre counts of its movies, which the cached list adds to its
// own; the list read from the database sums them over every collection.
// A create for an account that is gone stores nothing.
func TestCreateCountsWhatItCreated(t *testing.T) {
	forEachBackend(t, func(t *testing.T, be backend) {
		ctx := context.Background()
		s := openTestStore(t, be)
		_, acct := newAccount(t, s, s, "kate")
		create := func(genres ...string) (int64, map[string]int, error) {
			var movies []movie
			for _, g := range genres {
				movies = append(movies, newMovie(g))
			}
			counts := countGenres(movies)
			version, err := s.CreateCollection(ctx, acct.id, collection{UUID: newUUID(), Title: "t", Movies: movies}, counts)
			return version, counts, err
		}
		tests := []struct {
			genres    []string
			want, sum map[string]int
		}{
			{[]string{"Drama,War", " Drama ,Drama"}, map[string]int{"Drama": 2, "War": 1}, map[string]int{"Drama": 2, "War": 1}},
			{nil, map[string]int{}, map[string]int{"Drama": 2, "War": 1}},
			{[]string{"War", "Comedy,Drama", "<é>"}, map[string]int{"War": 1, "Comedy": 1, "Drama": 1, "<é>": 1}, map[string]int{"War": 2, "Comedy": 1, "Drama": 3, "<é>": 1}},
		}
		for i, tt := range tests {
			version, counts, err := create(tt.genres...)
			if err != nil {
				t.Fatal(err)
			}
			if version != acct.version+int64(i)+1 {
				t.Errorf("create %d: version %d, want %d", i, version, acct.version+int64(i)+1)
			}
			if !maps.Equal(counts, tt.want) {
				t.Errorf("create %d: counts %v, want %v", i, counts, tt.want)
			}
			_, sum, listed, err := s.Collections(ctx, acct.id)
			if err != nil || !maps.Equal(sum.counts, tt.sum) || sum.partial || listed != version {
				t.Errorf("create %d: the list counts %v at version %d (%v), want %v at %d", i, sum, listed, err, tt.sum, version)
			}
		}
		acct.id = -1 // an account that is not there
		if _, _, err := create("Drama"); !errors.Is(err, errNoSuchUser) {
			t.Fatalf("create for a missing account: %v, want errNoSuchUser", err)
		}
	})
}

// openTestStore opens a store on a fresh database of be, closed when the
// test ends.
func openTestStore(t *testing.T, be backend) *Store {
	t.Helper()
	s, err := openStore(context.Background(), be.dsn(t), poolConfig{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

// TestCreatedAtAsSQLiteWritesIt: a collection's created_at, given by the
// service on SQLite, is written as the column's default would write it.
func TestCreatedAtAsSQLiteWritesIt(t *testing.T) {
	s := openTestStore(t, sqliteBackend)
	for _, ms := range []int64{0, 1, 999, 1_700_000_000_123, 1_800_000_000_000} {
		var want string
		if err := s.db.read.QueryRow(`SELECT strftime('%Y-%m-%dT%H:%M:%fZ', $1 / 1000.0, 'unixepoch')`, ms).Scan(&want); err != nil {
			t.Fatal(err)
		}
		if got := createdAt(time.UnixMilli(ms).In(time.FixedZone("east", 5*3600))); got != want {
			t.Errorf("%d ms: %s, SQLite writes %s", ms, got, want)
		}
	}
}
