package main

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// TestServesWithStdoutPipeNobodyReads runs the whole service with its
// standard output on a pipe that is never read, as when the process that
// should collect the logs hangs. The pipe fills after a few hundred log
// lines; every request must still be answered, and the service must
// still stop when asked.
func TestServesWithStdoutPipeNobodyReads(t *testing.T) {
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	// Closing the read end first turns the log writer's stuck write into
	// an error, so that it ends.
	defer w.Close()
	defer r.Close()

	addr := freeAddr(t)
	env := envOf(map[string]string{
		"ADDR":         addr,
		"DATABASE_URL": filepath.Join(t.TempDir(), "movies.db"),
		"BCRYPT_COST":  "4",
	})
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- run(ctx, []string{"movies"}, env, w, io.Discard) }()
	waitReady(t, addr)

	client := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{MaxIdleConnsPerHost: 8}}
	defer client.CloseIdleConnections()
	base := "http://" + addr

	send := func(method, path, body string) (int, error) {
		req, err := http.NewRequest(method, base+path, strings.NewReader(body))
		if err != nil {
			return 0, err
		}
		res, err := client.Do(req)
		if err != nil {
			return 0, err
		}
		res.Body.Close()
		return res.StatusCode, nil
	}

	// A few accounts, registered and logged in among the health checks:
	// few enough to stay under any per-address limit on sign-ups.
	const total, workers, accounts = 3000, 4, 10
	var next, answered atomic.Int64
	var failMu sync.Mutex
	var failures []string
	fail := func(format string, args ...any) {
		failMu.Lock()
		defer failMu.Unlock()
		failures = append(failures, fmt.Sprintf(format, args...))
		next.Store(total) // no point waiting for the rest
	}
	var wg sync.WaitGroup
	for range workers {
		wg.Go(func() {
			for {
				i := next.Add(1) - 1
				if i >= total {
					return
				}
				method, path, body, want := "GET", "/healthz", "", http.StatusOK
				if i%(total/accounts) == 0 {
					user := fmt.Sprintf("pipe%d", i)
					status, err := send("POST", "/register/", fmt.Sprintf(`{"username":%q,"password":"password1"}`, user))
					if err == nil && status == http.StatusServiceUnavailable {
						answered.Add(1) // hashing saturated: refused at once, an answer too
						continue
					}
					if err != nil || status != http.StatusCreated {
						fail("register %s: status %d, %v", user, status, err)
						continue
					}
					answered.Add(1)
					method, path, body, want = "POST", "/login/", fmt.Sprintf(`{"username":%q,"password":"password1"}`, user), http.StatusOK
				}
				status, err := send(method, path, body)
				if err != nil || status != want {
					fail("request %d, %s %s: status %d, %v", i, method, path, status, err)
					continue
				}
				answered.Add(1)
			}
		})
	}
	wg.Wait()
	for _, f := range failures {
		t.Error(f)
	}
	if got, want := answered.Load(), int64(total+accounts); got != want {
		t.Fatalf("answered requests: got %d, want %d", got, want)
	}

	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("run returned %v after a graceful stop", err)
		}
	case <-time.After(20 * time.Second):
		t.Fatal("the service did not stop within 20s of being asked")
	}
}
