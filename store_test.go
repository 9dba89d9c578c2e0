package main

import (
	"context"
	"fmt"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"
)

func TestVersionChangesAfterEveryCommit(t *testing.T) {
	ctx := context.Background()
	dsn := filepath.Join(t.TempDir(), "test.db")
	s, err := openStore(ctx, dsn, poolConfig{})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	other, err := openStore(ctx, dsn, poolConfig{}) // another process, as far as s can tell
	if err != nil {
		t.Fatal(err)
	}
	defer other.Close()

	// Readers hammer Version meanwhile, so that reads are shared.
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				select {
				case <-stop:
					return
				default:
					s.Version(ctx)
				}
			}
		}()
	}
	defer func() { close(stop); wg.Wait() }()

	for i := range 200 {
		before, ok := s.Version(ctx)
		if !ok {
			t.Fatal("SQLite must report a version")
		}
		writer := s
		if i%2 == 1 {
			writer = other
		}
		if _, err := writer.AddRequests(ctx, 1); err != nil {
			t.Fatal(err)
		}
		if after, _ := s.Version(ctx); after == before {
			t.Fatalf("write %d: version still %d after a commit", i, after)
		}
	}
}

func TestMigrationsAreNumberedInOrder(t *testing.T) {
	for _, d := range []dialect{sqliteDialect, postgresDialect} {
		steps, err := migrations(d.schema)
		if err != nil {
			t.Fatalf("%s: %v", d.name, err)
		}
		if len(steps) != 2 {
			t.Fatalf("%s: %d migrations, want 2", d.name, len(steps))
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
		// A database at schema version 1, as the first release left it.
		s, err := openStore(ctx, dsn, poolConfig{})
		if err != nil {
			t.Fatal(err)
		}
		for _, stmt := range []string{"DROP TABLE user_genres", "DROP TABLE collection_movies", "DROP TABLE collections", "DELETE FROM schema_migrations WHERE version = 2"} {
			if _, err := s.db.write.ExecContext(ctx, stmt); err != nil {
				t.Fatal(err)
			}
		}
		id, err := s.CreateUser(ctx, "old.user", "hash")
		if err != nil {
			t.Fatal(err)
		}
		s.Close()

		// Opening it with this build migrates it and keeps its data.
		s, err = openStore(ctx, dsn, poolConfig{})
		if err != nil {
			t.Fatalf("migrate: %v", err)
		}
		defer s.Close()
		if u, err := s.UserByName(ctx, "OLD.USER"); err != nil || u.ID != id {
			t.Fatalf("user after migration: %+v, %v", u, err)
		}
		if err := s.CreateCollection(ctx, id, collection{UUID: newUUID(), Title: "new table"}); err != nil {
			t.Fatalf("collections after migration: %v", err)
		}
		var version int
		s.db.read.QueryRowContext(ctx, "SELECT MAX(version) FROM schema_migrations").Scan(&version)
		if version != 2 {
			t.Fatalf("schema version: got %d, want 2", version)
		}
	})
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
			UNION ALL SELECT m.name, 'key (' || group_concat(COALESCE(ii.name, '?'), ', ') || ')' FROM sqlite_master m, pragma_index_list(m.name) il, pragma_index_info(il.name) ii
				WHERE m.type = 'table' AND il."unique" = 1 AND il.origin != 'pk' GROUP BY m.name, il.name
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
		case "key":
			if strings.Contains(rest, "?") {
				continue // an expression index: counted by its "sql" row
			}
		}
		shape[table] = append(shape[table], what)
	}
	for _, v := range shape {
		slices.Sort(v)
	}
	return shape
}
