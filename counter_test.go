package main

import (
	"context"
	"errors"
	"fmt"
	"net/http/httptest"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// requestCount reads GET /request-count/ (which counts itself).
func (a *testApp) requestCount(token string) int64 {
	a.t.Helper()
	res := a.do("GET", "/request-count/", token, nil).mustStatus(a.t, 200)
	n, ok := res.json(a.t)["requests"].(float64)
	if !ok {
		a.t.Fatalf("requests is not a number: %s", res.body)
	}
	return int64(n)
}

// persistedCount reads the count as stored in the database.
func persistedCount(t testing.TB, s *Store) int64 {
	t.Helper()
	n, err := s.SyncRequests(context.Background(), "reader", 0)
	if err != nil {
		t.Fatal(err)
	}
	return n
}

// flushModes are the counter's two ways of persisting.
var flushModes = []struct {
	name     string
	interval time.Duration
}{
	{"batched", 10 * time.Millisecond},
	{"write-through", 0},
}

func TestCounterExactUnderConcurrency(t *testing.T) {
	forEachBackend(t, testCounterExactUnderConcurrency)
}

func testCounterExactUnderConcurrency(t *testing.T, be backend) {
	for _, mode := range flushModes {
		t.Run(mode.name, func(t *testing.T) {
			app := newTestApp(t, be.fresh(t), withFlushInterval(mode.interval))
			token := app.newUser().token
			before := app.requestCount(token)
			goroutines, each := 100, 1000
			if mode.interval == 0 || testing.Short() {
				each = 100 // a write per request: keep the run short
			}
			var wg sync.WaitGroup
			for g := range goroutines {
				wg.Add(1)
				go func() {
					defer wg.Done()
					for i := range each {
						// Cheap requests that never touch the database.
						path := "/no-such-path"
						if (g+i)%2 == 0 {
							path = "/collection/"
						}
						rec := httptest.NewRecorder()
						app.handler.ServeHTTP(rec, httptest.NewRequest("GET", path, nil))
					}
				}()
			}
			wg.Wait()
			want := before + int64(goroutines*each) + 1
			if got := app.requestCount(token); got != want {
				t.Fatalf("count: got %d, want %d", got, want)
			}
			app.close()
			db := newTestApp(t, withDSN(app.dsn))
			if got := persistedCount(t, db.store); got != want {
				t.Fatalf("persisted after stop: got %d, want %d", got, want)
			}
		})
	}
}

func TestCounterCountsEveryOutcome(t *testing.T) { forEachBackend(t, testCounterCountsEveryOutcome) }

func testCounterCountsEveryOutcome(t *testing.T, be backend) {
	for _, mode := range flushModes {
		t.Run(mode.name, func(t *testing.T) {
			app := newTestApp(t, be.fresh(t), withFlushInterval(mode.interval))
			u := app.newUser() // 1 request
			requests := []struct {
				method, path, token string
				body                any
				status              int
			}{
				{"GET", "/collection/", u.token, nil, 200},
				{"GET", "/collection/", "", nil, 401},
				{"GET", "/collection/", "bad", nil, 401},
				{"GET", "/nowhere", u.token, nil, 404},
				{"DELETE", "/register/", "", nil, 405},
				{"POST", "/collection/", u.token, `{"title":"` + string(make([]byte, 2<<20)) + `"}`, 413},
				{"POST", "/collection/", u.token, `{`, 400},
				{"GET", "/healthz", "", nil, 200},
				{"POST", "/login/", "", map[string]string{"username": u.name, "password": "wrong password"}, 401},
			}
			for _, r := range requests {
				app.do(r.method, r.path, r.token, r.body).mustStatus(t, r.status)
			}
			if got, want := app.requestCount(u.token), int64(1+len(requests)+1); got != want {
				t.Fatalf("count: got %d, want %d", got, want)
			}
		})
	}
}

func TestCounterReset(t *testing.T) { forEachBackend(t, testCounterReset) }

func testCounterReset(t *testing.T, be backend) {
	for _, mode := range flushModes {
		t.Run(mode.name, func(t *testing.T) {
			app := newTestApp(t, be.fresh(t), withFlushInterval(mode.interval))
			token := app.newUser().token
			for range 5 {
				app.requestCount(token)
			}
			res := app.do("POST", "/request-count/reset/", token, nil).mustStatus(t, 200)
			if got := res.json(t)["message"]; got != "request count reset successfully" {
				t.Fatalf("message: %v", got)
			}
			if got := app.requestCount(token); got != 1 {
				t.Fatalf("after reset: got %d, want 1", got)
			}
			if got := app.requestCount(token); got != 2 {
				t.Fatalf("second read after reset: got %d, want 2", got)
			}
			app.do("POST", "/request-count/reset/", "", nil).mustStatus(t, 401)
			app.close()
			if got := persistedCount(t, newTestApp(t, withDSN(app.dsn)).store); got != 3 {
				t.Fatalf("persisted after reset and stop: got %d, want 3", got)
			}
		})
	}
}

func TestCounterSurvivesGracefulRestart(t *testing.T) {
	dsn := filepath.Join(t.TempDir(), "movies.db")
	addr, stop := startRun(t, map[string]string{"DATABASE_URL": dsn, "JWT_SECRET": "restart secret"})
	_, body := httpJSON(t, "POST", "http://"+addr+"/register/", "", `{"username":"counter","password":"password1"}`)
	token := body["access_token"].(string)
	for range 9 {
		httpJSON(t, "GET", "http://"+addr+"/nowhere", "", "")
	}
	if err := stop(); err != nil {
		t.Fatal(err)
	}
	addr, _ = startRun(t, map[string]string{"DATABASE_URL": dsn, "JWT_SECRET": "restart secret"})
	// Readiness polls of /healthz count too, so compare with what the
	// server says before and after our own requests.
	_, body = httpJSON(t, "GET", "http://"+addr+"/request-count/", token, "")
	first := int64(body["requests"].(float64))
	if first < 1+9+1+1 {
		t.Fatalf("count after restart: got %d, want at least %d", first, 12)
	}
	_, body = httpJSON(t, "GET", "http://"+addr+"/request-count/", token, "")
	if got := int64(body["requests"].(float64)); got != first+1 {
		t.Fatalf("next count: got %d, want %d", got, first+1)
	}
}

func TestCounterSharedByTwoServers(t *testing.T) { forEachBackend(t, testCounterSharedByTwoServers) }

func testCounterSharedByTwoServers(t *testing.T, be backend) {
	for _, mode := range flushModes {
		t.Run(mode.name, func(t *testing.T) {
			dsn := be.dsn(t)
			a := newTestApp(t, withDSN(dsn), withFlushInterval(mode.interval))
			b := newTestApp(t, withDSN(dsn), withFlushInterval(mode.interval))
			token := a.newUser().token
			var sent atomic.Int64
			sent.Add(1) // the registration
			var wg sync.WaitGroup
			for i := range 8 {
				wg.Add(1)
				go func() {
					defer wg.Done()
					app := a
					if i%2 == 1 {
						app = b
					}
					for range 300 {
						req := httptest.NewRequest("GET", "/request-count/", nil)
						req.Header.Set("Authorization", "Bearer "+token)
						rec := httptest.NewRecorder()
						app.handler.ServeHTTP(rec, req)
						if rec.Code != 200 {
							t.Errorf("status %d", rec.Code)
						}
						sent.Add(1)
					}
				}()
			}
			wg.Wait()
			if mode.interval == 0 {
				// Write-through: each server already sees the other's requests.
				if got, want := a.requestCount(token), sent.Add(1); got != want {
					t.Fatalf("write-through count across servers: got %d, want %d", got, want)
				}
			}
			a.close()
			b.close()
			if got, want := persistedCount(t, newTestApp(t, withDSN(dsn)).store), sent.Load(); got != want {
				t.Fatalf("persisted: got %d, want %d", got, want)
			}
		})
	}
}

// flakyStore fails SyncRequests while fail is set. With lostCommit set,
// the write is made, but its answer lost, as when a connection dies while
// COMMIT is in flight.
type flakyStore struct {
	*Store
	fail, lostCommit atomic.Bool
	calls            atomic.Int64
}

func (f *flakyStore) SyncRequests(ctx context.Context, process string, total int64) (int64, error) {
	f.calls.Add(1)
	if f.fail.Load() {
		return 0, errors.New("database is locked")
	}
	n, err := f.Store.SyncRequests(ctx, process, total)
	if f.lostCommit.Load() {
		return 0, errors.New("connection reset by peer")
	}
	return n, err
}

// flakyCounter starts a counter persisting through a flakyStore on a fresh
// database of be, and returns the count persisted at its start.
func flakyCounter(t *testing.T, be backend) (*testApp, *flakyStore, *counter, int64) {
	t.Helper()
	app := newTestApp(t, be.fresh(t))
	flaky := &flakyStore{Store: app.store}
	ctr := newCounter(flaky, time.Hour, testLogger())
	if err := ctr.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	return app, flaky, ctr, persistedCount(t, app.store)
}

func TestCounterLostCommitCountsOnce(t *testing.T) {
	forEachBackend(t, testCounterLostCommitCountsOnce)
}

func testCounterLostCommitCountsOnce(t *testing.T, be backend) {
	app, flaky, ctr, start := flakyCounter(t, be)
	ctx := context.Background()
	for range 7 {
		ctr.countRequest(ctx)
	}
	flaky.lostCommit.Store(true)
	if err := ctr.flush(ctx); err == nil {
		t.Fatal("flush reported success with its answer lost")
	}
	flaky.lostCommit.Store(false)
	for range 3 {
		ctr.countRequest(ctx)
	}
	if err := ctr.flush(ctx); err != nil { // sends the same requests again, and 3 more
		t.Fatal(err)
	}
	if got, want := persistedCount(t, app.store), start+10; got != want {
		t.Fatalf("persisted after a lost COMMIT answer: got %d, want %d (counted twice?)", got, want)
	}
}

func TestCounterFailedFlushLosesNothing(t *testing.T) {
	forEachBackend(t, testCounterFailedFlushLosesNothing)
}

func testCounterFailedFlushLosesNothing(t *testing.T, be backend) {
	app, flaky, ctr, start := flakyCounter(t, be)
	ctx := context.Background()
	hit := func(n int) {
		for range n {
			ctr.countRequest(ctx)
		}
	}

	hit(10)
	flaky.fail.Store(true)
	if err := ctr.flush(ctx); err == nil {
		t.Fatal("flush succeeded on a failing database")
	}
	hit(5)
	if got, want := ctr.Count(), start+15; got != want {
		t.Fatalf("count while the database fails: got %d, want %d", got, want)
	}
	flaky.fail.Store(false)
	for range 2 { // the second flush must not add the same requests again
		if err := ctr.flush(ctx); err != nil {
			t.Fatal(err)
		}
		if got, want := persistedCount(t, app.store), start+15; got != want {
			t.Fatalf("persisted after recovery: got %d, want %d", got, want)
		}
	}

	// Stop retries a failing final flush until it succeeds.
	hit(3)
	flaky.fail.Store(true)
	go func() {
		for flaky.calls.Load() < 8 {
			time.Sleep(time.Millisecond)
		}
		flaky.fail.Store(false)
	}()
	stopCtx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	if err := ctr.Stop(stopCtx); err != nil {
		t.Fatalf("stop: %v", err)
	}
	if got, want := persistedCount(t, app.store), start+18; got != want {
		t.Fatalf("persisted after stop: got %d, want %d", got, want)
	}
}

// BenchmarkRequestCount serves GET /request-count/ with a token through
// the whole handler stack, with the counter batching, with it writing
// through on every request, and without the counter.
func BenchmarkRequestCount(b *testing.B) {
	for _, bc := range []struct {
		name     string
		interval time.Duration
		counted  bool
	}{
		{"without-counter", time.Hour, false},
		{"counter-batched", 100 * time.Millisecond, true},
		{"counter-write-through", 0, true},
	} {
		b.Run(bc.name, func(b *testing.B) {
			app := newTestApp(b, withFlushInterval(bc.interval))
			h := app.handler
			if !bc.counted {
				h = app.server.uncounted()
			}
			token := app.newUser().token
			b.ReportAllocs()
			b.ResetTimer()
			b.RunParallel(func(pb *testing.PB) {
				req := httptest.NewRequest("GET", "/request-count/", nil)
				req.Header.Set("Authorization", "Bearer "+token)
				for pb.Next() {
					rec := httptest.NewRecorder()
					h.ServeHTTP(rec, req)
					if rec.Code != 200 {
						panic(fmt.Sprint("status ", rec.Code))
					}
				}
			})
		})
	}
}
