package main

import (
	"bytes"
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime/debug"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// TestMain lets the test binary act as the server, so that a test can run
// it as a separate process and kill it.
func TestMain(m *testing.M) {
	if path := os.Getenv("MOVIES_TEST_READ_DB"); path != "" {
		// Another process reading the SQLite file, as the sqlite3 shell would.
		db, err := sql.Open("sqlite", path)
		if err == nil {
			var n int
			err = db.QueryRow(`SELECT count(*) FROM users`).Scan(&n)
			db.Close()
		}
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
		os.Exit(0)
	}
	if os.Getenv("MOVIES_TEST_SERVE") == "1" {
		if err := run(context.Background(), []string{"movies"}, os.Getenv, os.Stdout, os.Stderr); err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
		os.Exit(0)
	}
	os.Exit(m.Run())
}

// envOf returns a getenv over the given variables only.
func envOf(vars map[string]string) func(string) string {
	return func(k string) string { return vars[k] }
}

func TestConfigRejectsBadSettings(t *testing.T) {
	tests := []struct {
		name    string
		env     map[string]string
		args    []string
		mention string
	}{
		{"bad token TTL", map[string]string{"TOKEN_TTL": "abc"}, nil, "TOKEN_TTL"},
		{"zero attempts", map[string]string{"MOVIES_API_MAX_ATTEMPTS": "0"}, nil, "MOVIES_API_MAX_ATTEMPTS"},
		{"negative timeout", map[string]string{"MOVIES_API_TIMEOUT": "-1s"}, nil, "MOVIES_API_TIMEOUT"},
		{"relative catalogue URL", map[string]string{"MOVIES_API_URL": "demo/movies"}, nil, "MOVIES_API_URL"},
		{"bad flush interval", map[string]string{"COUNTER_FLUSH_INTERVAL": "often"}, nil, "COUNTER_FLUSH_INTERVAL"},
		{"bad public URL", map[string]string{"PUBLIC_URL": "example.com"}, nil, "PUBLIC_URL"},
		{"bad flag", nil, []string{"-token-ttl", "x"}, "-token-ttl"},
		{"bad bcrypt cost", map[string]string{"BCRYPT_COST": "3"}, nil, "BCRYPT_COST"},
	}
	for _, dsn := range []string{"mysql://u:secret@h/db", "host=db user=app password=secret dbname=movies"} {
		err := run(context.Background(), []string{"movies"}, envOf(map[string]string{"DATABASE_URL": dsn, "ADDR": "127.0.0.1:0"}), io.Discard, io.Discard)
		if err == nil || !strings.Contains(err.Error(), "DATABASE_URL") || strings.Contains(err.Error(), "secret") {
			t.Errorf("DATABASE_URL %q: got %v, want an error naming DATABASE_URL without the password", dsn, err)
		}
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var stderr bytes.Buffer
			_, err := loadConfig(append([]string{"movies"}, tt.args...), envOf(tt.env), &stderr)
			if err == nil || !strings.Contains(err.Error(), tt.mention) {
				t.Fatalf("got %v, want an error naming %s", err, tt.mention)
			}
		})
	}
}

func TestConfigDefaultsAndPrecedence(t *testing.T) {
	c, err := loadConfig([]string{"movies", "-addr", ":9999"}, envOf(map[string]string{"ADDR": ":7777", "TOKEN_TTL": "1h"}), io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	if c.Addr != ":9999" {
		t.Errorf("flag must override the environment: Addr %q", c.Addr)
	}
	if c.TokenTTL != time.Hour || c.DatabaseURL != "movies.db" || c.Catalogue.MaxAttempts != 5 ||
		c.Catalogue.Timeout != 5*time.Second || c.CounterFlushInterval != 100*time.Millisecond {
		t.Errorf("defaults: %+v", c)
	}
	c, err = loadConfig(nil, envOf(map[string]string{"COUNTER_FLUSH_INTERVAL": "0"}), io.Discard)
	if err != nil || c.CounterFlushInterval != 0 {
		t.Errorf("COUNTER_FLUSH_INTERVAL=0: %v, %v", c.CounterFlushInterval, err)
	}
}

// freeAddr returns a loopback address with a free port.
func freeAddr(t testing.TB) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

// waitReady polls /healthz until the server at addr answers.
func waitReady(t testing.TB, addr string) {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for time.Now().Before(deadline) {
		res, err := http.Get("http://" + addr + "/healthz")
		if err == nil {
			res.Body.Close()
			if res.StatusCode == 200 {
				return
			}
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Fatalf("server at %s did not become ready", addr)
}

// httpJSON sends a request to a running server and decodes its JSON answer.
func httpJSON(t testing.TB, method, url, token, body string) (int, map[string]any) {
	t.Helper()
	req, _ := http.NewRequest(method, url, strings.NewReader(body))
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, url, err)
	}
	defer res.Body.Close()
	var v map[string]any
	json.NewDecoder(res.Body).Decode(&v)
	return res.StatusCode, v
}

// startRun runs the whole service with run() and returns its address and
// a stop function that shuts it down gracefully and returns run's error.
func startRun(t testing.TB, env map[string]string) (string, func() error) {
	t.Helper()
	addr := freeAddr(t)
	vars := map[string]string{"ADDR": addr, "BCRYPT_COST": "4"}
	for k, v := range env {
		vars[k] = v
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- run(ctx, []string{"movies"}, envOf(vars), io.Discard, io.Discard) }()
	waitReady(t, addr)
	var once sync.Once
	var err error
	stop := func() error {
		once.Do(func() {
			cancel()
			err = <-done
		})
		return err
	}
	t.Cleanup(func() { stop() })
	return addr, stop
}

func TestRunServesAndStopsGracefully(t *testing.T) {
	dsn := filepath.Join(t.TempDir(), "movies.db")
	addr, stop := startRun(t, map[string]string{"DATABASE_URL": dsn})
	base := "http://" + addr

	status, body := httpJSON(t, "POST", base+"/register/", "", `{"username":"alice","password":"password1"}`)
	if status != 201 {
		t.Fatalf("register: %d %v", status, body)
	}
	token := body["access_token"].(string)
	if status, _ := httpJSON(t, "GET", base+"/collection/", "", ""); status != 401 {
		t.Fatalf("without token: got %d, want 401", status)
	}
	if status, _ := httpJSON(t, "GET", base+"/collection/", token, ""); status != 200 {
		t.Fatalf("with token: got %d, want 200", status)
	}
	if status, body := httpJSON(t, "GET", base+"/movies/", token, ""); status != 503 {
		t.Fatalf("movies without catalogue credentials: got %d %v, want 503", status, body)
	}
	if err := stop(); err != nil {
		t.Fatalf("run returned %v after a graceful stop", err)
	}

	// The token issued before the restart still works with a generated secret.
	addr, _ = startRun(t, map[string]string{"DATABASE_URL": dsn})
	if status, _ := httpJSON(t, "GET", "http://"+addr+"/collection/", token, ""); status != 200 {
		t.Fatalf("token after restart: got %d, want 200", status)
	}
}

func TestRunFailsOnBusyPort(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	env := envOf(map[string]string{"ADDR": ln.Addr().String(), "DATABASE_URL": filepath.Join(t.TempDir(), "x.db")})
	err = run(context.Background(), []string{"movies"}, env, io.Discard, io.Discard)
	if err == nil || !strings.Contains(err.Error(), "listen") {
		t.Fatalf("got %v, want a listen error", err)
	}
}

// TestAcknowledgedWritesSurviveKill9 runs the server as a separate
// process, kills it with SIGKILL right after a 201, and checks that the
// account and the collection are there.
func TestAcknowledgedWritesSurviveKill9(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a server process")
	}
	dsn := filepath.Join(t.TempDir(), "movies.db")
	addr := freeAddr(t)
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), "MOVIES_TEST_SERVE=1", "ADDR="+addr, "DATABASE_URL="+dsn, "BCRYPT_COST=4")
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer cmd.Process.Kill()
	waitReady(t, addr)

	status, body := httpJSON(t, "POST", "http://"+addr+"/register/", "", `{"username":"durable","password":"password1"}`)
	if status != 201 {
		t.Fatalf("register: %d %v", status, body)
	}
	token := body["access_token"].(string)
	status, body = httpJSON(t, "POST", "http://"+addr+"/collection/", token, `{"title":"Kept","movies":[{"uuid":"57baf4f4-c9ef-4197-9e4f-acf04eae5b4d","title":"Queerama","genres":"Drama"}]}`)
	if status != 201 {
		t.Fatalf("create collection: %d %v", status, body)
	}
	if err := cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	cmd.Wait()

	app := newTestApp(t, withDSN(dsn))
	u, err := app.store.UserByName(context.Background(), "durable")
	if err != nil {
		t.Fatalf("account lost after kill -9: %v", err)
	}
	c, err := app.store.Collection(context.Background(), u.ID, body["collection_uuid"].(string))
	if movies, _ := decodeMovies(string(c.Movies)); err != nil || len(movies) != 1 {
		t.Fatalf("collection after kill -9: %+v, %v", c, err)
	}
}

// TestTuneGCLeavesWhatTheEnvironmentSets: the collector's defaults apply
// only where GOGC or GOMEMLIMIT is unset, so an operator's setting wins.
func TestTuneGCLeavesWhatTheEnvironmentSets(t *testing.T) {
	const gcBefore, limitBefore = 150, int64(3 << 30)
	defer debug.SetGCPercent(debug.SetGCPercent(gcBefore))
	defer debug.SetMemoryLimit(debug.SetMemoryLimit(limitBefore))
	tests := []struct {
		name      string
		env       map[string]string
		gcPercent int
		limit     int64
	}{
		{"neither set", nil, defaultGCPercent, defaultMemoryLimit},
		{"GOGC set", map[string]string{"GOGC": "150"}, gcBefore, defaultMemoryLimit},
		{"GOMEMLIMIT set", map[string]string{"GOMEMLIMIT": "3GiB"}, defaultGCPercent, limitBefore},
		{"both set", map[string]string{"GOGC": "off", "GOMEMLIMIT": "3GiB"}, gcBefore, limitBefore},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			// The runtime read the real environment at start: stand in for
			// what it would have set from tt.env.
			debug.SetGCPercent(gcBefore)
			debug.SetMemoryLimit(limitBefore)
			tuneGC(envOf(tt.env))
			gcPercent := debug.SetGCPercent(gcBefore)
			if limit := debug.SetMemoryLimit(-1); gcPercent != tt.gcPercent || limit != tt.limit {
				t.Errorf("GOGC %d, memory limit %d; want %d and %d", gcPercent, limit, tt.gcPercent, tt.limit)
			}
		})
	}
}
