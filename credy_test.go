package main

import (
	"bytes"
	"context"
	"crypto/tls"
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// The fake catalogue answers like the live one: Django REST framework
// pagination with absolute https links to its own public host, movies
// under "results", 10 a page, basic auth required.
const (
	catLiveURL  = "https://demo.credy.in/api/v1/maya/movies/"
	catUser     = "maya-user"
	catPassword = "s3cret-Pa55word"
	catTotal    = 45466 // movies in the catalogue: 4547 pages, the last with 6
	catLastPage = 4547
	catRawError = "database exploded at db-7.internal" // what the catalogue says when it fails
)

// catNow is the pinned clock of every test catalogue, for Retry-After dates.
var catNow = time.Date(2025, 3, 14, 15, 9, 26, 0, time.UTC)

// catStep is what the fake catalogue does with one call.
type catStep struct {
	kind       string // ok, status, drop, hang, truncated, error_body, not_json
	status     int    // for kind status
	retryAfter string // Retry-After header, for kind status
}

var (
	catOK        = catStep{kind: "ok"}
	catDrop      = catStep{kind: "drop"}
	catHang      = catStep{kind: "hang"}
	catTruncated = catStep{kind: "truncated"}
	catErrorBody = catStep{kind: "error_body"}
	catNotJSON   = catStep{kind: "not_json"}
)

func catStatus(code int) catStep { return catStep{kind: "status", status: code} }

func catRetryAfter(code int, after string) catStep {
	return catStep{kind: "status", status: code, retryAfter: after}
}

// catFake is an httptest catalogue that fails on cue.
type catFake struct {
	srv     *httptest.Server
	dataKey string // "results" as the live catalogue, or "data"

	mu        sync.Mutex
	calls     int
	pageCalls map[int]int
	pages     []string  // the page query parameter of each call, "" when absent
	steps     []catStep // steps[i] is what call i+1 does; later calls succeed
	// plan, when set, decides instead of steps from the page and how many
	// times that page was asked for, this call included.
	plan   func(page, call int) catStep
	gate   chan struct{} // when set, successful answers wait until it closes
	active int           // calls being answered now
	// requestIDs is the X-Request-ID of each call.
	requestIDs []string
	stop       chan struct{} // closed at cleanup: hung calls end
}

// catNewFake starts a fake catalogue whose calls follow steps.
func catNewFake(t *testing.T, steps ...catStep) *catFake {
	t.Helper()
	f := &catFake{dataKey: "results", pageCalls: map[int]int{}, steps: steps, stop: make(chan struct{})}
	f.srv = httptest.NewServer(f)
	t.Cleanup(func() {
		close(f.stop)
		f.srv.Close()
	})
	return f
}

// URL is where the fake's movie list is, as MOVIES_API_URL would say.
func (f *catFake) URL() string { return f.srv.URL + "/api/v1/maya/movies/" }

// Calls returns how many requests reached the fake.
func (f *catFake) Calls() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.calls
}

// Active returns how many calls the fake is answering now.
func (f *catFake) Active() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.active
}

// Pages returns the page parameter of every call so far.
func (f *catFake) Pages() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]string(nil), f.pages...)
}

func (f *catFake) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	raw := r.URL.Query().Get("page")
	page := 1
	if raw != "" {
		page, _ = strconv.Atoi(raw)
	}
	f.mu.Lock()
	f.calls++
	f.active++
	defer func() {
		f.mu.Lock()
		f.active--
		f.mu.Unlock()
	}()
	f.pageCalls[page]++
	f.pages = append(f.pages, raw)
	f.requestIDs = append(f.requestIDs, r.Header.Get("X-Request-ID"))
	step := catOK
	switch {
	case f.plan != nil:
		step = f.plan(page, f.pageCalls[page])
	case f.calls <= len(f.steps):
		step = f.steps[f.calls-1]
	}
	gate := f.gate
	f.mu.Unlock()

	if user, pass, ok := r.BasicAuth(); !ok || user != catUser || pass != catPassword {
		catWrite(w, http.StatusUnauthorized, `{"detail": "Invalid username/password."}`)
		return
	}
	switch step.kind {
	case "status":
		if step.retryAfter != "" {
			w.Header().Set("Retry-After", step.retryAfter)
		}
		catWrite(w, step.status, `{"is_success": false, "error": {"code": "server_error", "message": "`+catRawError+`"}}`)
		return
	case "drop":
		conn, _, err := w.(http.Hijacker).Hijack()
		if err == nil {
			conn.Close()
		}
		return
	case "hang":
		select {
		case <-r.Context().Done():
		case <-f.stop:
		}
		return
	case "error_body":
		catWrite(w, http.StatusOK, `{"is_success": false, "error": {"code": "server_error", "message": "`+catRawError+`"}}`)
		return
	case "not_json":
		w.Header().Set("Content-Type", "text/html")
		w.WriteHeader(http.StatusOK)
		io.WriteString(w, "<html><body>502 Bad Gateway</body></html>")
		return
	}

	if page < 1 || page > catLastPage {
		catWrite(w, http.StatusNotFound, `{"detail": "Invalid page."}`)
		return
	}
	if gate != nil {
		select {
		case <-gate:
		case <-f.stop:
			return
		}
	}
	body := f.pageBody(page)
	if step.kind == "truncated" {
		body = body[:len(body)/2]
	}
	catWrite(w, http.StatusOK, string(body))
}

// pageBody is one page as the live catalogue writes it. DRF's previous
// link of page 2 has no page parameter.
func (f *catFake) pageBody(page int) []byte {
	link := func(n int) *string {
		var s string
		switch {
		case n < 1 || n > catLastPage:
			return nil
		case n == 1:
			s = catLiveURL
		default:
			s = catLiveURL + "?page=" + strconv.Itoa(n)
		}
		return &s
	}
	movies := []movie{}
	for i := (page - 1) * 10; i < min(page*10, catTotal); i++ {
		m := movie{
			Title:       fmt.Sprintf("Movie %d", i+1),
			Description: fmt.Sprintf("The %d. movie of the catalogue.", i+1),
			Genres:      "Drama,Comedy",
			UUID:        fmt.Sprintf("00000000-0000-4000-8000-%012d", i+1),
		}
		if i == 0 {
			m = movie{Title: "Queerama", Description: "50 years after decriminalisation of homosexuality in the UK, ...",
				Genres: "", UUID: "57baf4f4-c9ef-4197-9e4f-acf04eae5b4d"}
		}
		movies = append(movies, m)
	}
	b, _ := json.Marshal(map[string]any{"count": catTotal, "next": link(page + 1), "previous": link(page - 1), f.dataKey: movies})
	return b
}

func catWrite(w http.ResponseWriter, status int, body string) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	io.WriteString(w, body)
}

// catSleeper stands in for real sleeping: it records each wait and
// returns at once, unless the call's context has already ended.
type catSleeper struct {
	mu    sync.Mutex
	waits []time.Duration
}

func (s *catSleeper) sleep(ctx context.Context, d time.Duration) error {
	s.mu.Lock()
	s.waits = append(s.waits, d)
	s.mu.Unlock()
	return ctx.Err()
}

func (s *catSleeper) Waits() []time.Duration {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]time.Duration(nil), s.waits...)
}

// catLogs is a log destination that tests can read while others write.
type catLogs struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *catLogs) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *catLogs) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// catEnv is the whole service in front of a fake catalogue.
type catEnv struct {
	h       http.Handler
	token   string
	cat     *catalogue
	fake    *catFake
	sleeper *catSleeper
	dsn     string
	t       *testing.T
}

// catConfig is the configuration that reaches fake with the right
// credentials, 5 attempts and a 5s attempt limit.
func catConfig(fake *catFake) catalogueConfig {
	return catalogueConfig{URL: fake.URL(), Username: catUser, Password: catPassword, Timeout: 5 * time.Second, MaxAttempts: 5}
}

// catServer builds the whole service around a catalogue client of cfg,
// with a recording sleeper and a fixed random source (0.5) for the
// jitter. logs may be nil.
func catServer(t *testing.T, fake *catFake, cfg catalogueConfig, publicURL string, logs io.Writer) *catEnv {
	t.Helper()
	if logs == nil {
		logs = io.Discard
	}
	app := newTestApp(t, withLogs(logs),
		withEnv("MOVIES_API_URL", cfg.URL),
		withEnv("MOVIES_API_USERNAME", cfg.Username),
		withEnv("MOVIES_API_PASSWORD", cfg.Password),
		withEnv("MOVIES_API_TIMEOUT", cfg.Timeout.String()),
		withEnv("MOVIES_API_MAX_ATTEMPTS", strconv.Itoa(cfg.MaxAttempts)),
		withEnv("MOVIES_STALE_IF_ERROR", cfg.StaleIfError.String()),
		withEnv("MOVIES_BREAKER_THRESHOLD", strconv.Itoa(cfg.BreakerThreshold)),
		withEnv("MOVIES_BREAKER_COOLDOWN", max(cfg.BreakerCooldown, time.Second).String()),
		withEnv("PUBLIC_URL", publicURL))
	cat := app.catalogue
	sleeper := &catSleeper{}
	cat.sleep = sleeper.sleep
	cat.rand = func() float64 { return 0.5 }
	cat.now = func() time.Time { return catNow }
	// Registered after the fake's cleanup, so it runs first: no shared
	// call is left talking to a closed fake.
	t.Cleanup(func() {
		catWaitFor(t, "catalogue calls to end", func() bool { return fake.Active() == 0 })
		cat.client.CloseIdleConnections()
	})
	return &catEnv{h: app.handler, token: app.newUser().token, cat: cat, fake: fake, sleeper: sleeper, dsn: app.dsn, t: t}
}

// get serves GET target with the env's token; mod, when set, changes the
// request first.
func (e *catEnv) get(ctx context.Context, target string, mod func(*http.Request)) *httptest.ResponseRecorder {
	r := httptest.NewRequestWithContext(ctx, http.MethodGet, target, nil)
	r.Header.Set("Authorization", "Bearer "+e.token)
	if mod != nil {
		mod(r)
	}
	w := httptest.NewRecorder()
	e.h.ServeHTTP(w, r)
	if ctx.Err() == nil { // an answer nobody waited for is not checked
		newOpenAPIValidator(e.t).check(e.t, r, nil, w.Code, w.Header(), w.Body.Bytes())
	}
	return w
}

func catDecodePage(t *testing.T, w *httptest.ResponseRecorder) moviesPage {
	t.Helper()
	if got, want := w.Code, http.StatusOK; got != want {
		t.Fatalf("status: got %d, want %d; body %s", got, want, w.Body)
	}
	if got, want := w.Header().Get("Content-Type"), "application/json"; got != want {
		t.Fatalf("Content-Type: got %q, want %q", got, want)
	}
	if !strings.Contains(w.Body.String(), `"data":[`) {
		t.Fatalf("data is not a list: %s", w.Body)
	}
	var p moviesPage
	if err := json.Unmarshal(w.Body.Bytes(), &p); err != nil {
		t.Fatalf("decode page: %v; body %s", err, w.Body)
	}
	return p
}

// catDecodeError checks the status and the error envelope, and that the
// message gives away neither the catalogue's own text nor any secret.
func catDecodeError(t *testing.T, w *httptest.ResponseRecorder, status int, code string) errorBody {
	t.Helper()
	if got, want := w.Code, status; got != want {
		t.Fatalf("status: got %d, want %d; body %s", got, want, w.Body)
	}
	if !strings.Contains(w.Body.String(), `"is_success":false`) {
		t.Fatalf("is_success: want false; body %s", w.Body)
	}
	var e errorBody
	if err := json.Unmarshal(w.Body.Bytes(), &e); err != nil {
		t.Fatalf("decode error: %v; body %s", err, w.Body)
	}
	if got, want := e.Error.Code, code; got != want {
		t.Fatalf("error code: got %q, want %q; body %s", got, want, w.Body)
	}
	if e.Error.Message == "" {
		t.Fatalf("error message is empty")
	}
	for _, secret := range []string{catRawError, catUser, catPassword, "127.0.0.1", "demo.credy.in"} {
		if strings.Contains(w.Body.String(), secret) {
			t.Fatalf("error body reveals %q: %s", secret, w.Body)
		}
	}
	return e
}

func catStr(s string) *string { return &s }

func catDeref(p *string) string {
	if p == nil {
		return "null"
	}
	return *p
}

func TestMoviesPages(t *testing.T) {
	tests := []struct {
		name         string
		target       string
		dataKey      string
		wantPageSent string // the page parameter the catalogue received
		wantNext     *string
		wantPrevious *string
		wantLen      int
		wantFirst    movie
	}{
		{
			name: "no page is page 1", target: "/movies/", wantPageSent: "1",
			wantNext: catStr("http://example.com/movies/?page=2"), wantPrevious: nil, wantLen: 10,
			wantFirst: movie{Title: "Queerama", Description: "50 years after decriminalisation of homosexuality in the UK, ...", Genres: "", UUID: "57baf4f4-c9ef-4197-9e4f-acf04eae5b4d"},
		},
		{
			name: "page 2 links back to page 1", target: "/movies/?page=2", wantPageSent: "2",
			wantNext: catStr("http://example.com/movies/?page=3"), wantPrevious: catStr("http://example.com/movies/?page=1"), wantLen: 10,
			wantFirst: movie{Title: "Movie 11", Description: "The 11. movie of the catalogue.", Genres: "Drama,Comedy", UUID: "00000000-0000-4000-8000-000000000011"},
		},
		{
			name: "page is passed through", target: "/movies/?page=321", wantPageSent: "321",
			wantNext: catStr("http://example.com/movies/?page=322"), wantPrevious: catStr("http://example.com/movies/?page=320"), wantLen: 10,
			wantFirst: movie{Title: "Movie 3201", Description: "The 3201. movie of the catalogue.", Genres: "Drama,Comedy", UUID: "00000000-0000-4000-8000-000000003201"},
		},
		{
			name: "last page has no next", target: "/movies/?page=4547", wantPageSent: "4547",
			wantNext: nil, wantPrevious: catStr("http://example.com/movies/?page=4546"), wantLen: 6,
			wantFirst: movie{Title: "Movie 45461", Description: "The 45461. movie of the catalogue.", Genres: "Drama,Comedy", UUID: "00000000-0000-4000-8000-000000045461"},
		},
		{
			name: "path without final slash", target: "/movies?page=3", wantPageSent: "3",
			wantNext: catStr("http://example.com/movies/?page=4"), wantPrevious: catStr("http://example.com/movies/?page=2"), wantLen: 10,
			wantFirst: movie{Title: "Movie 21", Description: "The 21. movie of the catalogue.", Genres: "Drama,Comedy", UUID: "00000000-0000-4000-8000-000000000021"},
		},
		{
			name: "leading zeros are the same page", target: "/movies/?page=007", wantPageSent: "7",
			wantNext: catStr("http://example.com/movies/?page=8"), wantPrevious: catStr("http://example.com/movies/?page=6"), wantLen: 10,
			wantFirst: movie{Title: "Movie 61", Description: "The 61. movie of the catalogue.", Genres: "Drama,Comedy", UUID: "00000000-0000-4000-8000-000000000061"},
		},
		{
			name: "catalogue answering under data as its brief says", target: "/movies/?page=2", dataKey: "data", wantPageSent: "2",
			wantNext: catStr("http://example.com/movies/?page=3"), wantPrevious: catStr("http://example.com/movies/?page=1"), wantLen: 10,
			wantFirst: movie{Title: "Movie 11", Description: "The 11. movie of the catalogue.", Genres: "Drama,Comedy", UUID: "00000000-0000-4000-8000-000000000011"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			fake := catNewFake(t)
			if tt.dataKey != "" {
				fake.dataKey = tt.dataKey
			}
			env := catServer(t, fake, catConfig(fake), "", nil)
			p := catDecodePage(t, env.get(t.Context(), tt.target, nil))
			if got, want := p.Count, int64(catTotal); got != want {
				t.Errorf("count: got %d, want %d", got, want)
			}
			if got, want := catDeref(p.Next), catDeref(tt.wantNext); got != want {
				t.Errorf("next: got %s, want %s", got, want)
			}
			if got, want := catDeref(p.Previous), catDeref(tt.wantPrevious); got != want {
				t.Errorf("previous: got %s, want %s", got, want)
			}
			if got, want := len(p.Data), tt.wantLen; got != want {
				t.Fatalf("movies: got %d, want %d", got, want)
			}
			if got, want := p.Data[0], tt.wantFirst; got != want {
				t.Errorf("first movie: got %+v, want %+v", got, want)
			}
			if got, want := strings.Join(fake.Pages(), ","), tt.wantPageSent; got != want {
				t.Errorf("catalogue asked for page: got %s, want %s", got, want)
			}
		})
	}
}

func TestMoviesLinkBase(t *testing.T) {
	tests := []struct {
		name      string
		publicURL string
		mod       func(*http.Request)
		wantNext  string
		wantPrev  string
	}{
		{name: "from the request's host", wantNext: "http://example.com/movies/?page=3", wantPrev: "http://example.com/movies/?page=1"},
		{name: "host with port", mod: func(r *http.Request) { r.Host = "localhost:8000" },
			wantNext: "http://localhost:8000/movies/?page=3", wantPrev: "http://localhost:8000/movies/?page=1"},
		{name: "over TLS", mod: func(r *http.Request) { r.TLS = &tls.ConnectionState{} },
			wantNext: "https://example.com/movies/?page=3", wantPrev: "https://example.com/movies/?page=1"},
		{name: "behind a TLS proxy", mod: func(r *http.Request) { r.Header.Set("X-Forwarded-Proto", "https") },
			wantNext: "https://example.com/movies/?page=3", wantPrev: "https://example.com/movies/?page=1"},
		{name: "behind a chain of proxies", mod: func(r *http.Request) { r.Header.Set("X-Forwarded-Proto", "HTTPS, http") },
			wantNext: "https://example.com/movies/?page=3", wantPrev: "https://example.com/movies/?page=1"},
		{name: "PUBLIC_URL", publicURL: "https://movies.example.org",
			wantNext: "https://movies.example.org/movies/?page=3", wantPrev: "https://movies.example.org/movies/?page=1"},
		{name: "PUBLIC_URL with a path wins over the host", publicURL: "https://example.org/api",
			mod:      func(r *http.Request) { r.Host = "10.0.0.5:8000" },
			wantNext: "https://example.org/api/movies/?page=3", wantPrev: "https://example.org/api/movies/?page=1"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			fake := catNewFake(t)
			env := catServer(t, fake, catConfig(fake), tt.publicURL, nil)
			p := catDecodePage(t, env.get(t.Context(), "/movies/?page=2", tt.mod))
			if got, want := catDeref(p.Next), tt.wantNext; got != want {
				t.Errorf("next: got %s, want %s", got, want)
			}
			if got, want := catDeref(p.Previous), tt.wantPrev; got != want {
				t.Errorf("previous: got %s, want %s", got, want)
			}
		})
	}
}

func TestMoviesRewriteLink(t *testing.T) {
	const base = "http://example.com/movies/"
	tests := []struct {
		name string
		link *string
		want *string
	}{
		{"null stays null", nil, nil},
		{"empty is null", catStr(""), nil},
		{"DRF next", catStr("https://demo.credy.in/api/v1/maya/movies/?page=3"), catStr(base + "?page=3")},
		{"DRF previous of page 2 has no page", catStr("https://demo.credy.in/api/v1/maya/movies/"), catStr(base + "?page=1")},
		{"other parameters are dropped", catStr("https://demo.credy.in/api/v1/maya/movies/?format=json&page=7"), catStr(base + "?page=7")},
		{"relative link", catStr("/api/v1/maya/movies/?page=12"), catStr(base + "?page=12")},
		{"page that is no page", catStr("https://demo.credy.in/api/v1/maya/movies/?page=last"), nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got, want := catDeref(rewriteLink(tt.link, base)), catDeref(tt.want); got != want {
				t.Fatalf("got %s, want %s", got, want)
			}
		})
	}
}

func TestMoviesBadPage(t *testing.T) {
	for _, page := range []string{"0", "00", "-1", "abc", "1.5", "", "+1", "%201", "1e3", "0x10"} {
		t.Run("page="+page, func(t *testing.T) {
			fake := catNewFake(t)
			env := catServer(t, fake, catConfig(fake), "", nil)
			e := catDecodeError(t, env.get(t.Context(), "/movies/?page="+page, nil), http.StatusBadRequest, codeInvalid)
			if got, want := e.Error.Fields["page"], "must be a positive integer"; got != want {
				t.Errorf("fields.page: got %q, want %q", got, want)
			}
			if got, want := fake.Calls(), 0; got != want {
				t.Errorf("catalogue calls: got %d, want %d", got, want)
			}
		})
	}
}

func TestMoviesPageTooLargeIsNotFound(t *testing.T) {
	fake := catNewFake(t)
	env := catServer(t, fake, catConfig(fake), "", nil)
	catDecodeError(t, env.get(t.Context(), "/movies/?page=99999999999999999999999", nil), http.StatusNotFound, codeNotFound)
	if got := fake.Calls(); got != 0 {
		t.Errorf("catalogue calls: got %d, want 0", got)
	}
}

func TestMoviesMissingCredentials(t *testing.T) {
	tests := []struct{ name, user, password string }{
		{"no username", "", catPassword},
		{"no password", catUser, ""},
		{"neither", "", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			fake := catNewFake(t)
			cfg := catConfig(fake)
			cfg.Username, cfg.Password = tt.user, tt.password
			env := catServer(t, fake, cfg, "", nil)
			if env.cat.Configured() {
				t.Fatalf("Configured: got true, want false")
			}
			e := catDecodeError(t, env.get(t.Context(), "/movies/", nil), http.StatusServiceUnavailable, codeUnavailable)
			if !strings.Contains(e.Error.Message, "not configured") || strings.Contains(e.Error.Message, "MOVIES_API") {
				t.Errorf("message should say the catalogue is not configured, without naming server settings: %q", e.Error.Message)
			}
			if got, want := fake.Calls(), 0; got != want {
				t.Errorf("catalogue calls: got %d, want %d", got, want)
			}
		})
	}
}

func TestCatalogueRecovers(t *testing.T) {
	tests := []struct {
		name     string
		failure  catStep
		timeout  time.Duration
		wantWait time.Duration // the one wait before the second attempt
	}{
		{name: "500", failure: catStatus(500), wantWait: 75 * time.Millisecond},
		{name: "502", failure: catStatus(502), wantWait: 75 * time.Millisecond},
		{name: "503", failure: catStatus(503), wantWait: 75 * time.Millisecond},
		{name: "504", failure: catStatus(504), wantWait: 75 * time.Millisecond},
		{name: "dropped connection", failure: catDrop, wantWait: 75 * time.Millisecond},
		{name: "hung attempt", failure: catHang, timeout: 50 * time.Millisecond, wantWait: 75 * time.Millisecond},
		{name: "truncated JSON", failure: catTruncated, wantWait: 75 * time.Millisecond},
		{name: "200 with is_success false", failure: catErrorBody, wantWait: 75 * time.Millisecond},
		{name: "200 that is not JSON", failure: catNotJSON, wantWait: 75 * time.Millisecond},
		{name: "429 with Retry-After seconds", failure: catRetryAfter(429, "1"), wantWait: time.Second},
		{name: "503 with Retry-After date", failure: catRetryAfter(503, catNow.Add(2*time.Second).Format(http.TimeFormat)), wantWait: 2 * time.Second},
		{name: "Retry-After shorter than the backoff", failure: catRetryAfter(503, "0"), wantWait: 75 * time.Millisecond},
		{name: "Retry-After of a few seconds is capped", failure: catRetryAfter(429, "4"), wantWait: maxBackoff},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			fake := catNewFake(t, tt.failure)
			cfg := catConfig(fake)
			if tt.timeout != 0 {
				cfg.Timeout = tt.timeout
			}
			env := catServer(t, fake, cfg, "", nil)
			p := catDecodePage(t, env.get(t.Context(), "/movies/?page=3", nil))
			if got, want := len(p.Data), 10; got != want {
				t.Errorf("movies: got %d, want %d", got, want)
			}
			if got, want := fake.Calls(), 2; got != want {
				t.Errorf("catalogue calls: got %d, want %d", got, want)
			}
			if got, want := fmt.Sprint(env.sleeper.Waits()), fmt.Sprint([]time.Duration{tt.wantWait}); got != want {
				t.Errorf("waits: got %s, want %s", got, want)
			}
		})
	}
}

func TestCatalogueFailures(t *testing.T) {
	repeat := func(s catStep, n int) []catStep {
		steps := make([]catStep, n)
		for i := range steps {
			steps[i] = s
		}
		return steps
	}
	tests := []struct {
		name        string
		steps       []catStep
		target      string
		password    string
		attempts    int
		timeout     time.Duration
		wantStatus  int
		wantCode    string
		wantMessage string
		wantCalls   int
		wantRetry   string // Retry-After header
	}{
		{name: "5xx every time", steps: repeat(catStatus(500), 5), attempts: 5,
			wantStatus: 502, wantCode: codeUpstream, wantMessage: "the movie catalogue is unavailable: giving up after 5 attempts", wantCalls: 5},
		{name: "mixed failures", steps: []catStep{catDrop, catStatus(503), catTruncated}, attempts: 3,
			wantStatus: 502, wantCode: codeUpstream, wantMessage: "the movie catalogue is unavailable: giving up after 3 attempts", wantCalls: 3},
		{name: "is_success false every time", steps: repeat(catErrorBody, 2), attempts: 2,
			wantStatus: 502, wantCode: codeUpstream, wantMessage: "giving up after 2 attempts", wantCalls: 2},
		{name: "one attempt allowed", steps: repeat(catStatus(502), 1), attempts: 1,
			wantStatus: 502, wantCode: codeUpstream, wantMessage: "the movie catalogue is unavailable: giving up after 1 attempt", wantCalls: 1},
		{name: "every attempt times out", steps: repeat(catHang, 3), attempts: 3, timeout: 250 * time.Millisecond,
			wantStatus: 504, wantCode: codeUpstreamTimeout, wantMessage: "the movie catalogue did not answer in time: giving up after 3 attempts", wantCalls: 3},
		{name: "last attempt times out", steps: []catStep{catStatus(500), catHang}, attempts: 2, timeout: 250 * time.Millisecond,
			wantStatus: 504, wantCode: codeUpstreamTimeout, wantMessage: "giving up after 2 attempts", wantCalls: 2},
		{name: "last attempt is not a timeout", steps: []catStep{catHang, catStatus(500)}, attempts: 2, timeout: 50 * time.Millisecond,
			wantStatus: 502, wantCode: codeUpstream, wantMessage: "giving up after 2 attempts", wantCalls: 2},
		{name: "429 to the end passes Retry-After on", steps: repeat(catRetryAfter(429, "2"), 2), attempts: 2,
			wantStatus: 502, wantCode: codeUpstream, wantMessage: "giving up after 2 attempts", wantCalls: 2, wantRetry: "2"},
		{name: "501 is not retried", steps: []catStep{catStatus(501)}, attempts: 5,
			wantStatus: 502, wantCode: codeUpstream, wantMessage: "refused the request (status 501)", wantCalls: 1},
		{name: "400 is not retried", steps: []catStep{catStatus(400)}, attempts: 5,
			wantStatus: 502, wantCode: codeUpstream, wantMessage: "refused the request (status 400)", wantCalls: 1},
		{name: "403 is not retried", steps: []catStep{catStatus(403)}, attempts: 5,
			wantStatus: 502, wantCode: codeUpstream, wantMessage: "the movie catalogue refused this server's credentials", wantCalls: 1},
		{name: "wrong credentials", password: "wrong", attempts: 5,
			wantStatus: 502, wantCode: codeUpstream, wantMessage: "the movie catalogue refused this server's credentials", wantCalls: 1},
		{name: "page past the end", target: "/movies/?page=4548", attempts: 5,
			wantStatus: 404, wantCode: codeNotFound, wantMessage: "page not found", wantCalls: 1},
		{name: "long Retry-After ends the retries", steps: []catStep{catRetryAfter(503, "120")}, attempts: 5,
			wantStatus: 503, wantCode: codeUnavailable, wantMessage: "asks to wait 120 seconds", wantCalls: 1, wantRetry: "120"},
		{name: "long Retry-After on 429", steps: []catStep{catRetryAfter(429, "6")}, attempts: 5,
			wantStatus: 503, wantCode: codeUnavailable, wantMessage: "asks to wait 6 seconds", wantCalls: 1, wantRetry: "6"},
		{name: "long Retry-After as a date", steps: []catStep{catRetryAfter(503, catNow.Add(10*time.Minute).Format(http.TimeFormat))}, attempts: 5,
			wantStatus: 503, wantCode: codeUnavailable, wantMessage: "asks to wait 600 seconds", wantCalls: 1, wantRetry: "600"},
		{name: "long Retry-After after a retry", steps: []catStep{catStatus(500), catRetryAfter(503, "30")}, attempts: 5,
			wantStatus: 503, wantCode: codeUnavailable, wantMessage: "asks to wait 30 seconds", wantCalls: 2, wantRetry: "30"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			fake := catNewFake(t, tt.steps...)
			cfg := catConfig(fake)
			cfg.MaxAttempts = tt.attempts
			if tt.timeout != 0 {
				cfg.Timeout = tt.timeout
			}
			if tt.password != "" {
				cfg.Password = tt.password
			}
			target := tt.target
			if target == "" {
				target = "/movies/?page=3"
			}
			env := catServer(t, fake, cfg, "", nil)
			w := env.get(t.Context(), target, nil)
			e := catDecodeError(t, w, tt.wantStatus, tt.wantCode)
			if !strings.Contains(e.Error.Message, tt.wantMessage) {
				t.Errorf("message: got %q, want it to contain %q", e.Error.Message, tt.wantMessage)
			}
			if got, want := fake.Calls(), tt.wantCalls; got != want {
				t.Errorf("catalogue calls: got %d, want %d", got, want)
			}
			if got, want := w.Header().Get("Retry-After"), tt.wantRetry; got != want {
				t.Errorf("Retry-After: got %q, want %q", got, want)
			}
			if got, want := len(env.sleeper.Waits()), tt.wantCalls-1; got != want {
				t.Errorf("waits: got %d, want %d", got, want)
			}
		})
	}
}

func TestCatalogueLogsAttemptsWithoutSecrets(t *testing.T) {
	fake := catNewFake(t, catDrop, catStatus(503))
	logs := &catLogs{}
	env := catServer(t, fake, catConfig(fake), "", logs)
	catDecodePage(t, env.get(t.Context(), "/movies/?page=3", nil))
	out := logs.String()
	for _, want := range []string{
		`level=WARN msg="catalogue attempt failed; retrying" page=3 attempt=1 max_attempts=5 class=network err=EOF wait=75ms`,
		`level=WARN msg="catalogue attempt failed; retrying" page=3 attempt=2 max_attempts=5 class=status status=503 wait=150ms`,
	} {
		if !strings.Contains(out, want) {
			t.Errorf("log lacks %q:\n%s", want, out)
		}
	}
	for _, secret := range []string{catUser, catPassword, "bWF5YS11c2Vy" /* base64 of the user */} {
		if strings.Contains(out, secret) {
			t.Errorf("log reveals %q:\n%s", secret, out)
		}
	}
}

func TestCatalogueCancelMidBackoff(t *testing.T) {
	fake := catNewFake(t, catStatus(503), catStatus(503), catStatus(503))
	env := catServer(t, fake, catConfig(fake), "", nil)
	waiting, slept := make(chan struct{}), make(chan struct{})
	var once sync.Once
	env.cat.sleep = func(ctx context.Context, d time.Duration) error {
		once.Do(func() { close(waiting) })
		<-ctx.Done() // a long backoff that only the caller's leaving ends
		close(slept)
		return ctx.Err()
	}

	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan *httptest.ResponseRecorder)
	go func() { done <- env.get(ctx, "/movies/?page=3", nil) }()
	select {
	case <-waiting:
	case <-time.After(10 * time.Second):
		t.Fatalf("no backoff after the first failure")
	}
	cancel()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		t.Fatalf("the request did not end when its context did")
	}
	<-slept // the shared call's backoff has ended too
	if got, want := fake.Calls(), 1; got != want {
		t.Errorf("catalogue calls: got %d, want %d", got, want)
	}
}

func TestCatalogueCallerDeadlineCutsAttempt(t *testing.T) {
	fake := catNewFake(t, catHang)
	env := catServer(t, fake, catConfig(fake), "", nil) // 5s attempts
	ctx, cancel := context.WithTimeout(t.Context(), 100*time.Millisecond)
	defer cancel()
	start := time.Now()
	env.get(ctx, "/movies/?page=3", nil)
	if got := time.Since(start); got > 3*time.Second {
		t.Errorf("request took %v after its 100ms deadline", got)
	}
	catWaitFor(t, "the hung call to end", func() bool { return fake.Active() == 0 })
	if got, want := fake.Calls(), 1; got != want {
		t.Errorf("catalogue calls: got %d, want %d", got, want)
	}
}

// catWaitFor polls until cond holds, or fails the test.
func catWaitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(time.Millisecond)
	}
}

// catWaiters returns how many requests wait on the shared call for page.
func catWaiters(c *catalogue, page int) int { return c.flights.waiting(page) }

func TestMoviesSingleFlight(t *testing.T) {
	const n = 20
	fake := catNewFake(t)
	fake.gate = make(chan struct{})
	env := catServer(t, fake, catConfig(fake), "", nil)

	results := make(chan *httptest.ResponseRecorder, n)
	for range n {
		go func() { results <- env.get(t.Context(), "/movies/?page=7", nil) }()
	}
	catWaitFor(t, "20 requests to wait on one call", func() bool { return catWaiters(env.cat, 7) == n })
	close(fake.gate)

	var first string
	for range n {
		w := <-results
		catDecodePage(t, w)
		if first == "" {
			first = w.Body.String()
		}
		if got, want := w.Body.String(), first; got != want {
			t.Errorf("bodies differ: got %s, want %s", got, want)
		}
	}
	if got, want := fake.Calls(), 1; got != want {
		t.Errorf("catalogue calls: got %d, want %d", got, want)
	}
	// Once answered, the next request makes a call of its own.
	catDecodePage(t, env.get(t.Context(), "/movies/?page=7", nil))
	if got, want := fake.Calls(), 2; got != want {
		t.Errorf("catalogue calls after the burst: got %d, want %d", got, want)
	}
}

func TestMoviesSingleFlightOutlivesFirstCaller(t *testing.T) {
	fake := catNewFake(t)
	fake.gate = make(chan struct{})
	env := catServer(t, fake, catConfig(fake), "", nil)

	ctx, cancel := context.WithCancel(t.Context())
	firstDone := make(chan *httptest.ResponseRecorder, 1)
	go func() { firstDone <- env.get(ctx, "/movies/?page=9", nil) }()
	catWaitFor(t, "the first request to wait", func() bool { return catWaiters(env.cat, 9) == 1 })
	second := make(chan *httptest.ResponseRecorder, 1)
	go func() { second <- env.get(t.Context(), "/movies/?page=9", nil) }()
	catWaitFor(t, "the second request to join", func() bool { return catWaiters(env.cat, 9) == 2 })

	cancel()
	select {
	case <-firstDone: // returns at once, although the call goes on
	case <-time.After(5 * time.Second):
		t.Fatalf("the first request did not end with its context")
	}
	close(fake.gate)
	p := catDecodePage(t, <-second)
	if got, want := catDeref(p.Next), "http://example.com/movies/?page=10"; got != want {
		t.Errorf("next: got %s, want %s", got, want)
	}
	if got, want := fake.Calls(), 1; got != want {
		t.Errorf("catalogue calls: got %d, want %d", got, want)
	}
}

func TestBackoff(t *testing.T) {
	tests := []struct {
		attempt int
		r       float64
		want    time.Duration
	}{
		{1, 0, 50 * time.Millisecond},
		{1, 0.5, 75 * time.Millisecond},
		{1, 0.999, 99950 * time.Microsecond},
		{2, 0.5, 150 * time.Millisecond},
		{3, 0.5, 300 * time.Millisecond},
		{4, 0.5, 600 * time.Millisecond},
		{5, 0, 800 * time.Millisecond},
		{5, 0.5, 1200 * time.Millisecond},
		{6, 0.5, 1500 * time.Millisecond}, // 3.2s step, capped at 2s
		{7, 0, time.Second},
		{7, 0.999, 1999 * time.Millisecond},
		{20, 0.5, 1500 * time.Millisecond},
		{64, 0.5, 1500 * time.Millisecond}, // no overflow
		{1000, 0.5, 1500 * time.Millisecond},
		{0, 0.5, 75 * time.Millisecond}, // nonsense is the first wait
	}
	for _, tt := range tests {
		t.Run(fmt.Sprintf("attempt %d r %v", tt.attempt, tt.r), func(t *testing.T) {
			if got, want := backoff(tt.attempt, tt.r), tt.want; got != want {
				t.Fatalf("got %v, want %v", got, want)
			}
		})
	}

	for _, r := range []float64{0, 0.25, 0.5, 0.75, 0.999999} {
		prev := time.Duration(0)
		for n := 1; n <= 40; n++ {
			got := backoff(n, r)
			step := min(baseBackoff<<min(n-1, 30), maxBackoff)
			if got < step/2 || got > step {
				t.Errorf("attempt %d r %v: %v is outside its jitter bounds [%v, %v]", n, r, got, step/2, step)
			}
			if got > maxBackoff {
				t.Errorf("attempt %d r %v: %v is over the cap %v", n, r, got, maxBackoff)
			}
			if got < prev {
				t.Errorf("attempt %d r %v: %v is shorter than the wait before, %v", n, r, got, prev)
			}
			prev = got
		}
	}
}

func TestCatalogueParseRetryAfter(t *testing.T) {
	tests := []struct {
		header string
		want   time.Duration
	}{
		{"", -1},
		{"0", 0},
		{"3", 3 * time.Second},
		{" 120 ", 120 * time.Second},
		{"-1", -1},
		{"1.5", -1},
		{"soon", -1},
		{catNow.Add(4 * time.Second).Format(http.TimeFormat), 4 * time.Second},
		{catNow.Add(-time.Hour).Format(http.TimeFormat), 0},
		{catNow.Add(90 * time.Second).Format(time.RFC850), 90 * time.Second},
	}
	for _, tt := range tests {
		t.Run(tt.header, func(t *testing.T) {
			got, ok := parseRetryAfter(tt.header, catNow)
			if !ok {
				got = -1 // the table's "none"
			}
			if want := tt.want; got != want {
				t.Fatalf("got %v, want %v", got, want)
			}
		})
	}
}

// TestClassify checks the retry policy alone, without a network: what
// each status or transport error means for the next attempt.
func TestClassify(t *testing.T) {
	retryAfter := func(v string) http.Header { return http.Header{"Retry-After": {v}} }
	tests := []struct {
		name       string
		status     int
		header     http.Header
		err        error
		class      string
		retry      bool   // another attempt may help
		finalCode  string // the answer when not retrying
		retryAfter time.Duration
	}{
		{"dropped connection", 0, nil, io.ErrUnexpectedEOF, "network", true, "", 0},
		{"attempt timed out", 0, nil, context.DeadlineExceeded, "timeout", true, "", 0},
		{"500", 500, http.Header{}, nil, "status", true, "", 0},
		{"503 with Retry-After", 503, retryAfter("3"), nil, "status", true, "", 3 * time.Second},
		{"429 with an HTTP date", 429, retryAfter(catNow.Add(2 * time.Second).Format(http.TimeFormat)), nil, "status", true, "", 2 * time.Second},
		{"501", 501, http.Header{}, nil, "status", false, codeUpstream, 0},
		{"404", 404, http.Header{}, nil, "status", false, codeNotFound, 0},
		{"401", 401, http.Header{}, nil, "status", false, codeUpstream, 0},
		{"403", 403, http.Header{}, nil, "status", false, codeUpstream, 0},
		{"400", 400, http.Header{}, nil, "status", false, codeUpstream, 0},
		{"302", 302, http.Header{}, nil, "status", false, codeUpstream, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			v := classify(tt.status, tt.header, tt.err, catNow)
			if got, want := v.class, tt.class; got != want {
				t.Errorf("class: got %q, want %q", got, want)
			}
			if got, want := v.final == nil, tt.retry; got != want {
				t.Errorf("retry: got %v, want %v (final %v)", got, want, v.final)
			}
			if v.final != nil && v.final.Code != tt.finalCode {
				t.Errorf("final code: got %q, want %q", v.final.Code, tt.finalCode)
			}
			if got, want := v.retryAfter, tt.retryAfter; got != want {
				t.Errorf("retry after: got %v, want %v", got, want)
			}
		})
	}
}

// TestChaos runs 1,000 requests for different pages against a catalogue
// that fails 30% of attempts at random (5xx, dropped connections, hangs)
// and reports how many succeeded and how many catalogue calls each cost.
// The failures are a function of a fixed seed, the page and the call
// number, so a run does not depend on scheduling.
func TestChaos(t *testing.T) {
	if testing.Short() {
		t.Skip("chaos run skipped in -short mode")
	}
	const (
		requests    = 1000
		workers     = 32
		failureRate = 0.3
		seed        = 20250314
	)
	kinds := []catStep{catStatus(500), catStatus(502), catStatus(503), catStatus(504), catDrop, catHang}
	fake := catNewFake(t)
	fake.plan = func(page, call int) catStep {
		r := rand.New(rand.NewPCG(seed, uint64(page)<<16|uint64(call)))
		if r.Float64() >= failureRate {
			return catOK
		}
		return kinds[r.IntN(len(kinds))]
	}
	cfg := catConfig(fake)
	cfg.Timeout = time.Second // what a hang costs; long enough that a slow machine times out only hangs
	env := catServer(t, fake, cfg, "", nil)
	jitter := rand.New(rand.NewPCG(seed, 0))
	var jitterMu sync.Mutex
	env.cat.rand = func() float64 {
		jitterMu.Lock()
		defer jitterMu.Unlock()
		return jitter.Float64()
	}

	start := time.Now()
	pages := make(chan int)
	statuses := make(chan int, requests)
	var wg sync.WaitGroup
	for range workers {
		wg.Go(func() {
			for n := range pages {
				w := env.get(t.Context(), "/movies/?page="+strconv.Itoa(n), nil)
				// Not catDecodePage: t.Fatalf belongs to the test's own goroutine.
				var page moviesPage
				var fail errorBody
				switch {
				case w.Code == http.StatusOK && json.Unmarshal(w.Body.Bytes(), &page) == nil && len(page.Data) == 10:
				case w.Code != http.StatusOK && json.Unmarshal(w.Body.Bytes(), &fail) == nil && statusOf[fail.Error.Code] == w.Code:
				default:
					t.Errorf("status %d with an unexpected body: %s", w.Code, w.Body)
				}
				statuses <- w.Code
			}
		})
	}
	for page := 1; page <= requests; page++ {
		pages <- page
	}
	close(pages)
	wg.Wait()
	close(statuses)

	byStatus := map[int]int{}
	for s := range statuses {
		byStatus[s]++
	}
	ok := float64(byStatus[http.StatusOK]) / requests
	perRequest := float64(fake.Calls()) / requests
	t.Logf("chaos: %d requests, %.0f%% of attempts failing: %.1f%% succeeded, %.3f catalogue calls per request, statuses %v, %v",
		requests, failureRate*100, ok*100, perRequest, byStatus, time.Since(start).Round(time.Millisecond))
	// With 5 attempts a request fails only when all 5 do: 0.3^5, 0.24%.
	if ok < 0.98 {
		t.Errorf("only %.1f%% of requests succeeded, want at least 98%%", ok*100)
	}
	if perRequest > 1.6 {
		t.Errorf("%.3f catalogue calls per request, want at most 1.6 (about 1/0.7)", perRequest)
	}
	for s := range byStatus {
		if s != http.StatusOK && s != http.StatusBadGateway && s != http.StatusGatewayTimeout {
			t.Errorf("status %d answered %d times; want only 200, 502 or 504", s, byStatus[s])
		}
	}
}
