package main

import (
	"context"
	"database/sql"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
)

// backend is a database the store and handler tests run against.
type backend struct {
	name string
	// dsn returns the DATABASE_URL of a fresh, empty database.
	dsn func(t testing.TB) string
}

// fresh is newTestApp's option for a fresh database of this backend.
func (b backend) fresh(t testing.TB) func(*appOptions) { return withDSN(b.dsn(t)) }

var sqliteBackend = backend{"sqlite", func(t testing.TB) string {
	return filepath.Join(t.TempDir(), "test.db")
}}

// postgresBackend gives each test its own schema in the database that
// TEST_DATABASE_URL names, and drops it afterwards.
var postgresBackend = backend{"postgres", func(t testing.TB) string {
	base := os.Getenv("TEST_DATABASE_URL")
	admin := postgresAdmin(t)
	schema := fmt.Sprintf("test_%d_%d", os.Getpid(), schemaSeq.Add(1))
	if _, err := admin.Exec("CREATE SCHEMA " + schema); err != nil {
		t.Fatalf("create schema: %v", err)
	}
	t.Cleanup(func() { admin.Exec("DROP SCHEMA " + schema + " CASCADE") })
	u, err := url.Parse(base)
	if err != nil {
		t.Fatalf("TEST_DATABASE_URL: %v", err)
	}
	q := u.Query()
	q.Set("search_path", schema)
	u.RawQuery = q.Encode()
	return u.String()
}}

var (
	schemaSeq  atomic.Int64
	adminOnce  sync.Once
	adminDB    *sql.DB
	adminError error
)

func postgresAdmin(t testing.TB) *sql.DB {
	t.Helper()
	adminOnce.Do(func() {
		adminDB, adminError = sql.Open("pgx", os.Getenv("TEST_DATABASE_URL"))
		if adminError == nil {
			adminError = adminDB.PingContext(context.Background())
		}
	})
	if adminError != nil {
		t.Fatalf("TEST_DATABASE_URL does not answer: %v", adminError)
	}
	return adminDB
}

// backends lists SQLite, and PostgreSQL when TEST_DATABASE_URL is set.
func backends() []backend {
	if os.Getenv("TEST_DATABASE_URL") == "" {
		return []backend{sqliteBackend}
	}
	return []backend{sqliteBackend, postgresBackend}
}

// forEachBackend runs test once per backend, as subtests named after them.
func forEachBackend(t *testing.T, test func(t *testing.T, be backend)) {
	for _, be := range backends() {
		t.Run(be.name, func(t *testing.T) { test(t, be) })
	}
}
