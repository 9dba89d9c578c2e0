package main

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strconv"
	"sync/atomic"
	"testing"
	"time"
)

// readyz sends GET /readyz to h and returns the status, the decoded body
// and the Retry-After header.
func readyz(t *testing.T, h http.Handler) (int, readyBody, string) {
	t.Helper()
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest("GET", "/readyz", nil))
	if ct := rec.Header().Get("Content-Type"); ct != "application/json" {
		t.Fatalf("Content-Type: got %q, want application/json", ct)
	}
	var body readyBody
	if err := json.Unmarshal(rec.Body.Bytes(), &body); err != nil {
		t.Fatalf("body %q: %v", rec.Body, err)
	}
	return rec.Code, body, rec.Header().Get("Retry-After")
}

// wantNotReady checks a 503 answer with a reason and a Retry-After of at
// least one whole second.
func wantNotReady(t *testing.T, status int, body readyBody, retryAfter string) {
	t.Helper()
	if status != http.StatusServiceUnavailable || body.Status != "not ready" || body.Reason == "" {
		t.Fatalf("got %d %+v, want 503 not ready with a reason", status, body)
	}
	if n, err := strconv.Atoi(retryAfter); err != nil || n < 1 {
		t.Fatalf("Retry-After: got %q, want whole seconds >= 1", retryAfter)
	}
}

func TestReadinessReadyWhenDatabaseAnswers(t *testing.T) {
	var rd readiness
	status, body, _ := readyz(t, rd.handler(func(context.Context) error { return nil }))
	if status != http.StatusOK || body.Status != "ready" || body.Reason != "" {
		t.Fatalf("got %d %+v, want 200 ready", status, body)
	}
}

func TestReadinessNotReadyWhenPingFails(t *testing.T) {
	var rd readiness
	status, body, retryAfter := readyz(t, rd.handler(func(context.Context) error {
		return errors.New("SELECT 1: disk I/O error")
	}))
	wantNotReady(t, status, body, retryAfter)
	if got, want := body.Reason, "the database does not answer"; got != want {
		t.Fatalf("reason: got %q, want %q (and never the error's own text)", got, want)
	}
}

func TestReadinessPingIsTimeBound(t *testing.T) {
	rd := readiness{timeout: 50 * time.Millisecond}
	start := time.Now()
	status, body, retryAfter := readyz(t, rd.handler(func(ctx context.Context) error {
		<-ctx.Done() // a database that hangs
		return ctx.Err()
	}))
	wantNotReady(t, status, body, retryAfter)
	if d := time.Since(start); d > 2*time.Second {
		t.Fatalf("a hanging database held /readyz for %s", d)
	}
}

func TestReadinessDrainTurnsNotReadyAtOnce(t *testing.T) {
	var rd readiness
	var pings atomic.Int32
	h := rd.handler(func(context.Context) error { pings.Add(1); return nil })
	if status, _, _ := readyz(t, h); status != http.StatusOK {
		t.Fatalf("before drain: got %d, want 200", status)
	}
	rd.drain()
	status, body, retryAfter := readyz(t, h)
	wantNotReady(t, status, body, retryAfter)
	if got, want := body.Reason, "shutting down"; got != want {
		t.Fatalf("reason: got %q, want %q", got, want)
	}
	if got := pings.Load(); got != 1 {
		t.Fatalf("database pinged %d times, want once: draining needs no query", got)
	}
}

func TestReadinessWithStore(t *testing.T) {
	store, err := openStore(context.Background(), filepath.Join(t.TempDir(), "ready.db"), poolConfig{})
	if err != nil {
		t.Fatal(err)
	}
	var rd readiness
	h := rd.handler(store.Ready)
	if status, body, _ := readyz(t, h); status != http.StatusOK {
		t.Fatalf("open database: got %d %+v, want 200", status, body)
	}
	store.Close()
	status, body, retryAfter := readyz(t, h)
	wantNotReady(t, status, body, retryAfter)
}
