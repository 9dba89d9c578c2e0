package main

import (
	"database/sql"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// catClock is a settable clock for the catalogue's breaker and memory.
type catClock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *catClock) Now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.now }
func (c *catClock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
}

// outageServer is the whole service in front of fake, with stale-if-error
// and the breaker as given, on a clock the test moves. The catalogue fails
// whenever down is set.
func outageServer(t *testing.T, staleIfError time.Duration, threshold int) (*catEnv, *catClock, *atomic.Bool) {
	t.Helper()
	down := &atomic.Bool{}
	fake := catNewFake(t)
	fake.plan = func(page, call int) catStep {
		if down.Load() {
			return catStatus(503)
		}
		return catOK
	}
	cfg := catConfig(fake)
	cfg.MaxAttempts = 2
	cfg.StaleIfError, cfg.BreakerThreshold, cfg.BreakerCooldown = staleIfError, threshold, 10*time.Second
	env := catServer(t, fake, cfg, "", nil)
	clock := &catClock{now: catNow}
	env.cat.now = clock.Now
	return env, clock, down
}

func TestMoviesStaleIfError(t *testing.T) {
	env, clock, down := outageServer(t, time.Hour, 0)
	fresh := env.get(t.Context(), "/movies/?page=2", nil)
	catDecodePage(t, fresh)
	for _, h := range []string{"Age", "Cache-Status"} {
		if v := fresh.Header().Get(h); v != "" {
			t.Errorf("fresh answer has %s: %q", h, v)
		}
	}

	down.Store(true)
	clock.Advance(90 * time.Second)
	w := env.get(t.Context(), "/movies/?page=2", nil)
	p := catDecodePage(t, w)
	if got, want := w.Header().Get("Age"), "90"; got != want {
		t.Errorf("Age: got %q, want %q", got, want)
	}
	if got, want := w.Header().Get("Cache-Status"), "movies; hit; detail=upstream-error"; got != want {
		t.Errorf("Cache-Status: got %q, want %q", got, want)
	}
	if got, want := catDeref(p.Next), "http://example.com/movies/?page=3"; got != want {
		t.Errorf("next of the remembered page: got %s, want %s", got, want)
	}
	// A page never fetched has nothing to stand in: the error as usual.
	catDecodeError(t, env.get(t.Context(), "/movies/?page=5", nil), http.StatusBadGateway, codeUpstream)
	// Too old: the error as usual.
	clock.Advance(time.Hour)
	catDecodeError(t, env.get(t.Context(), "/movies/?page=2", nil), http.StatusBadGateway, codeUpstream)
}

func TestMoviesStaleIfErrorOff(t *testing.T) {
	env, _, down := outageServer(t, 0, 0)
	catDecodePage(t, env.get(t.Context(), "/movies/?page=2", nil))
	down.Store(true)
	catDecodeError(t, env.get(t.Context(), "/movies/?page=2", nil), http.StatusBadGateway, codeUpstream)
}

func TestMoviesBreaker(t *testing.T) {
	env, clock, down := outageServer(t, time.Hour, 3)
	catDecodePage(t, env.get(t.Context(), "/movies/?page=1", nil)) // remembered
	down.Store(true)
	for range 3 { // three fetches in a row give up: the breaker opens
		catDecodeError(t, env.get(t.Context(), "/movies/?page=7", nil), http.StatusBadGateway, codeUpstream)
	}
	calls := env.fake.Calls()

	// While open: no catalogue call; an unseen page is 503 with the
	// cooldown left, a remembered one is served.
	clock.Advance(4 * time.Second)
	w := env.get(t.Context(), "/movies/?page=8", nil)
	catDecodeError(t, w, http.StatusServiceUnavailable, codeUpstreamUnavailable)
	if got, want := w.Header().Get("Retry-After"), "6"; got != want {
		t.Errorf("Retry-After while open: got %q, want %q", got, want)
	}
	if got := env.get(t.Context(), "/movies/?page=1", nil); got.Code != http.StatusOK || got.Header().Get("Cache-Status") == "" {
		t.Errorf("remembered page while open: status %d, Cache-Status %q", got.Code, got.Header().Get("Cache-Status"))
	}
	if got := env.fake.Calls(); got != calls {
		t.Fatalf("catalogue calls while open: %d, want none", got-calls)
	}

	// After the cooldown one request probes; the catalogue is still down,
	// so the breaker opens for another cooldown.
	clock.Advance(6 * time.Second)
	catDecodeError(t, env.get(t.Context(), "/movies/?page=8", nil), http.StatusBadGateway, codeUpstream)
	if got, want := env.fake.Calls()-calls, 1; got != want { // one probe, of one attempt
		t.Fatalf("catalogue calls of the probe: got %d, want %d", got, want)
	}
	catDecodeError(t, env.get(t.Context(), "/movies/?page=8", nil), http.StatusServiceUnavailable, codeUpstreamUnavailable)

	// The catalogue is back: the next probe succeeds and closes it.
	down.Store(false)
	clock.Advance(10 * time.Second)
	catDecodePage(t, env.get(t.Context(), "/movies/?page=8", nil))
	catDecodePage(t, env.get(t.Context(), "/movies/?page=9", nil))
}

func TestMoviesBreakerOneProbeAtATime(t *testing.T) {
	env, clock, down := outageServer(t, 0, 1)
	down.Store(true)
	catDecodeError(t, env.get(t.Context(), "/movies/?page=1", nil), http.StatusBadGateway, codeUpstream)
	clock.Advance(10 * time.Second)
	env.fake.gate = make(chan struct{}) // the probe's answer waits
	down.Store(false)
	calls := env.fake.Calls()
	probe := make(chan int, 1)
	go func() { probe <- env.get(t.Context(), "/movies/?page=1", nil).Code }()
	catWaitFor(t, "the probe to reach the catalogue", func() bool { return env.fake.Active() == 1 })
	// Meanwhile other pages are refused at once, without a call.
	for page := range 5 {
		w := env.get(t.Context(), "/movies/?page="+string(rune('2'+page)), nil)
		catDecodeError(t, w, http.StatusServiceUnavailable, codeUpstreamUnavailable)
	}
	close(env.fake.gate)
	if got := <-probe; got != http.StatusOK {
		t.Fatalf("probe: got %d, want 200", got)
	}
	if got, want := env.fake.Calls()-calls, 1; got != want {
		t.Fatalf("catalogue calls: got %d, want %d (one probe)", got, want)
	}
}

func TestMoviesBreakerOff(t *testing.T) {
	env, _, down := outageServer(t, 0, 0)
	down.Store(true)
	for range 10 {
		catDecodeError(t, env.get(t.Context(), "/movies/?page=3", nil), http.StatusBadGateway, codeUpstream)
	}
	if got, want := env.fake.Calls(), 20; got != want { // every request tries, 2 attempts each
		t.Fatalf("catalogue calls: got %d, want %d", got, want)
	}
}

// TestMoviesWriteNothing checks that serving catalogue pages, fresh or
// remembered, commits nothing to the database: the pages live in memory
// only, and the only SQL is the token's account check.
func TestMoviesWriteNothing(t *testing.T) {
	env, _, down := outageServer(t, time.Hour, 3)
	other, err := sql.Open("sqlite", "file:"+env.dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer other.Close()
	conn, err := other.Conn(t.Context()) // data_version is per connection
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	version := func() (v int64) {
		if err := conn.QueryRowContext(t.Context(), "PRAGMA data_version").Scan(&v); err != nil {
			t.Fatal(err)
		}
		return v
	}
	before := version()
	for i := range 20 {
		down.Store(i >= 10)
		env.get(t.Context(), "/movies/?page=1", nil)
	}
	if after := version(); after != before {
		t.Fatalf("the database changed while serving /movies/ (data_version %d → %d)", before, after)
	}
	reset := httptest.NewRequest("POST", "/request-count/reset/", nil)
	reset.Header.Set("Authorization", "Bearer "+env.token)
	env.h.ServeHTTP(httptest.NewRecorder(), reset)
	if after := version(); after == before {
		t.Fatal("data_version did not move after a write: the check sees nothing")
	}
}

// TestRequestIDFollowsTheRequest: the client's X-Request-ID comes back on
// the answer, goes to the catalogue with every attempt, and is in every
// log line of the request, the retry warnings included.
func TestRequestIDFollowsTheRequest(t *testing.T) {
	fake := catNewFake(t, catStatus(503))
	var logs catLogs
	env := catServer(t, fake, catConfig(fake), "", &logs)
	w := env.get(t.Context(), "/movies/?page=2", func(r *http.Request) { r.Header.Set("X-Request-ID", "trace-me.1") })
	catDecodePage(t, w)
	if got := w.Header().Get("X-Request-ID"); got != "trace-me.1" {
		t.Errorf("answer's X-Request-ID: got %q", got)
	}
	fake.mu.Lock()
	ids := slices.Clone(fake.requestIDs)
	fake.mu.Unlock()
	if len(ids) != 2 || ids[0] != "trace-me.1" || ids[1] != "trace-me.1" {
		t.Errorf("X-Request-ID the catalogue got on each attempt: %q", ids)
	}
	var lines int
	for line := range strings.Lines(logs.String()) {
		if strings.Contains(line, "trace-me.1") {
			lines++
		} else if strings.Contains(line, "page=2") || strings.Contains(line, "/movies/") {
			t.Errorf("a line of the request without its ID: %s", line)
		}
	}
	if lines < 2 { // the retry warning and the access line
		t.Errorf("%d log lines carry the request ID, want at least 2:\n%s", lines, logs.String())
	}
	// An ID that could break a log line is replaced by a new one.
	w = env.get(t.Context(), "/movies/?page=2", func(r *http.Request) { r.Header.Set("X-Request-ID", "bad id\n") })
	if got := w.Header().Get("X-Request-ID"); got == "" || strings.ContainsAny(got, " \n") {
		t.Errorf("X-Request-ID for an invalid one: got %q", got)
	}
}
