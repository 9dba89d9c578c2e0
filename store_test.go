package main

import (
	"context"
	"path/filepath"
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
