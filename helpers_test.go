package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// testApp is the whole service on a fresh database, built by the same
// newApp as production and driven in process through its real handler.
type testApp struct {
	*app
	t   testing.TB
	dsn string
}

// testLogger discards logs.
func testLogger() *slog.Logger {
	return slog.New(slog.NewTextHandler(io.Discard, nil))
}

// appOptions are the settings a test starts the service with: env holds
// environment variables as the service reads them; logs receives its logs.
type appOptions struct {
	env  map[string]string
	logs io.Writer
}

// withDSN runs the service on the database dsn names.
func withDSN(dsn string) func(*appOptions) { return withEnv("DATABASE_URL", dsn) }

// withFlushInterval sets how often the request counter persists.
func withFlushInterval(d time.Duration) func(*appOptions) {
	return withEnv("COUNTER_FLUSH_INTERVAL", d.String())
}

// withEnv sets one environment variable of the service.
func withEnv(name, value string) func(*appOptions) {
	return func(o *appOptions) { o.env[name] = value }
}

// withLogs sends the service's logs to w.
func withLogs(w io.Writer) func(*appOptions) { return func(o *appOptions) { o.logs = w } }

// newTestApp starts the service on a fresh SQLite file under t.TempDir()
// (or the database withDSN names), with the cheapest bcrypt cost, counter
// flushes an hour apart, and an unreachable catalogue with credentials.
func newTestApp(t testing.TB, opts ...func(*appOptions)) *testApp {
	t.Helper()
	o := appOptions{env: map[string]string{
		"DATABASE_URL":            filepath.Join(t.TempDir(), "test.db"),
		"BCRYPT_COST":             "4",
		"COUNTER_FLUSH_INTERVAL":  "1h",
		"TOKEN_TTL":               "1h",
		"MOVIES_API_URL":          "http://127.0.0.1:1/",
		"MOVIES_API_USERNAME":     "test",
		"MOVIES_API_PASSWORD":     "test",
		"MOVIES_API_TIMEOUT":      "1s",
		"MOVIES_API_MAX_ATTEMPTS": "1",
		// Off unless a test turns them on: most catalogue tests look at
		// one fetch at a time.
		"MOVIES_STALE_IF_ERROR":    "0",
		"MOVIES_BREAKER_THRESHOLD": "0",
	}, logs: io.Discard}
	for _, f := range opts {
		f(&o)
	}
	cfg, err := loadConfig(nil, func(k string) string { return o.env[k] }, io.Discard)
	if err != nil {
		t.Fatalf("config: %v", err)
	}
	a, err := newApp(context.Background(), cfg, slog.New(slog.NewTextHandler(o.logs, nil)), nil)
	if err != nil {
		t.Fatalf("start app: %v", err)
	}
	ta := &testApp{app: a, t: t, dsn: cfg.DatabaseURL}
	t.Cleanup(ta.close)
	return ta
}

// close stops the app as a graceful shutdown would: the counter persists
// what it holds, then the database closes. Closing twice is harmless.
func (a *testApp) close() {
	if a.app == nil {
		return
	}
	if err := a.app.close(); err != nil {
		a.t.Errorf("close app: %v", err)
	}
	a.app = nil
}

// response is what a request through the handler answered.
type response struct {
	status int
	header http.Header
	body   []byte
}

// json decodes the body into a generic value.
func (r response) json(t testing.TB) map[string]any {
	t.Helper()
	var v map[string]any
	if err := json.Unmarshal(r.body, &v); err != nil {
		t.Fatalf("body is not a JSON object: %v: %s", err, r.body)
	}
	return v
}

// errorCode returns the error envelope's code, failing the test when the
// body is not the envelope.
func (r response) errorCode(t testing.TB) string {
	t.Helper()
	var env struct {
		IsSuccess *bool `json:"is_success"`
		Error     struct {
			Code    string `json:"code"`
			Message string `json:"message"`
		} `json:"error"`
	}
	if err := json.Unmarshal(r.body, &env); err != nil || env.IsSuccess == nil || *env.IsSuccess || env.Error.Code == "" || env.Error.Message == "" {
		t.Fatalf("body is not the error envelope: %s", r.body)
	}
	if ct := r.header.Get("Content-Type"); ct != "application/json" {
		t.Fatalf("error Content-Type: got %q, want application/json", ct)
	}
	return env.Error.Code
}

// do sends a request with an optional body (a string is sent as is,
// anything else as JSON) and bearer token.
func (a *testApp) do(method, path, token string, body any) response {
	a.t.Helper()
	var rd io.Reader
	switch b := body.(type) {
	case nil:
	case string:
		rd = strings.NewReader(b)
	case []byte:
		rd = bytes.NewReader(b)
	default:
		js, err := json.Marshal(b)
		if err != nil {
			a.t.Fatalf("marshal body: %v", err)
		}
		rd = bytes.NewReader(js)
	}
	headers := map[string]string{}
	if token != "" {
		headers["Authorization"] = "Bearer " + token
	}
	return a.doWith(method, path, rd, headers)
}

// doWith sends a request with the given body and headers.
// Every exchange is checked against openapi.json: the document describes
// what the tests see, or a test fails naming the operation and mismatch.
func (a *testApp) doWith(method, path string, body io.Reader, headers map[string]string) response {
	a.t.Helper()
	var reqBody []byte
	if body != nil {
		var err error
		if reqBody, err = io.ReadAll(body); err != nil {
			a.t.Fatalf("read request body: %v", err)
		}
	}
	req := httptest.NewRequest(method, path, bytes.NewReader(reqBody))
	for k, v := range headers {
		req.Header.Set(k, v)
	}
	rec := httptest.NewRecorder()
	a.handler.ServeHTTP(rec, req)
	newOpenAPIValidator(a.t).check(a.t, req, reqBody, rec.Code, rec.Header(), rec.Body.Bytes())
	return response{status: rec.Code, header: rec.Header(), body: rec.Body.Bytes()}
}

// mustStatus fails the test unless the response has the wanted status.
func (r response) mustStatus(t testing.TB, want int) response {
	t.Helper()
	if r.status != want {
		t.Fatalf("status: got %d, want %d; body: %s", r.status, want, r.body)
	}
	return r
}

var userSeq atomic.Int64

// testUser is a registered account.
type testUser struct {
	name, password, token string
}

// newUser registers a fresh account through the API.
func (a *testApp) newUser() testUser {
	a.t.Helper()
	u := testUser{name: fmt.Sprintf("user%d", userSeq.Add(1)), password: "correct horse"}
	res := a.do("POST", "/register/", "", map[string]string{"username": u.name, "password": u.password}).mustStatus(a.t, http.StatusCreated)
	u.token = res.json(a.t)["access_token"].(string)
	return u
}

var movieSeq atomic.Int64

// newMovie returns a movie with a fresh UUID and the given genres.
func newMovie(genres string) movie {
	n := movieSeq.Add(1)
	return movie{
		Title:       fmt.Sprintf("Movie %d", n),
		Description: "about movie " + fmt.Sprint(n),
		Genres:      genres,
		UUID:        fmt.Sprintf("00000000-0000-4000-8000-%012d", n),
	}
}

// newCollection creates a collection of movies for u and returns its UUID.
func (a *testApp) newCollection(u testUser, movies ...movie) string {
	a.t.Helper()
	if movies == nil {
		movies = []movie{}
	}
	res := a.do("POST", "/collection/", u.token, map[string]any{"title": "Collection of " + u.name, "movies": movies}).mustStatus(a.t, http.StatusCreated)
	return res.json(a.t)["collection_uuid"].(string)
}

// newAccount registers name through create and reads its account through
// read (the same store, or another process's on the same database).
func newAccount(t *testing.T, create, read *Store, name string) (string, account) {
	t.Helper()
	ctx := context.Background()
	uuid, err := create.CreateUser(ctx, name, "hash")
	if err != nil {
		t.Fatal(err)
	}
	acct, err := read.Account(ctx, uuid)
	if err != nil {
		t.Fatal(err)
	}
	return uuid, acct
}
