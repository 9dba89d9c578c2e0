package main

import (
	"database/sql"
	"io"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
)

func TestRouteLabel(t *testing.T) {
	tests := []struct {
		name, pattern, want string
	}{
		{"unmatched", "", "unmatched"},
		{"exact path of a slash route", "GET /collection/{$}", "GET /collection/"},
		{"slashless twin", "GET /collection", "GET /collection/"},
		{"wildcard, exact", "GET /collection/{id}/{$}", "GET /collection/{id}/"},
		{"wildcard, slashless", "PUT /collection/{id}", "PUT /collection/{id}/"},
		{"nested", "POST /request-count/reset", "POST /request-count/reset/"},
		{"already in SPEC form", "GET /movies/", "GET /movies/"},
		{"bare healthz", "GET /healthz", "GET /healthz"},
		{"bare readyz", "GET /readyz", "GET /readyz"},
		{"bare openapi", "GET /openapi.json", "GET /openapi.json"},
		{"bare docs", "GET /docs", "GET /docs"},
		{"rest wildcard", "GET /files/{path...}", "GET /files/{path...}"},
		{"no method", "/collection/{$}", "/collection/"},
		{"root", "GET /{$}", "GET /"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := routeLabel(tt.pattern); got != tt.want {
				t.Fatalf("routeLabel(%q): got %q, want %q", tt.pattern, got, tt.want)
			}
		})
	}
}

func TestMetricsMethodLabel(t *testing.T) {
	for method, want := range map[string]string{
		"GET": "GET", "HEAD": "HEAD", "POST": "POST", "PUT": "PUT", "PATCH": "PATCH",
		"DELETE": "DELETE", "OPTIONS": "OPTIONS", "CONNECT": "CONNECT", "TRACE": "TRACE",
		"BREW": "OTHER", "get": "OTHER", "": "OTHER", strings.Repeat("X", 1000): "OTHER",
	} {
		if got := methodLabel(method); got != want {
			t.Errorf("methodLabel(%.20q): got %q, want %q", method, got, want)
		}
	}
}

// TestMetricsServeMuxSetsPatternOnSameRequest pins what the middleware
// relies on: ServeMux sets r.Pattern on the request it is handed, so a
// middleware outside it reads the pattern after ServeHTTP returns.
func TestMetricsServeMuxSetsPatternOnSameRequest(t *testing.T) {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /collection/{id}/{$}", func(http.ResponseWriter, *http.Request) {})
	r := httptest.NewRequest("GET", "/collection/abc/", nil)
	mux.ServeHTTP(httptest.NewRecorder(), r)
	if got, want := r.Pattern, "GET /collection/{id}/{$}"; got != want {
		t.Fatalf("r.Pattern after ServeHTTP: got %q, want %q", got, want)
	}

	r = httptest.NewRequest("GET", "/nowhere", nil)
	mux.ServeHTTP(httptest.NewRecorder(), r)
	if r.Pattern != "" {
		t.Fatalf("r.Pattern of an unmatched request: got %q, want none", r.Pattern)
	}
}

// testMux registers routes as the server does: each path ending in "/"
// twice, with "{$}" and without the final slash.
func testMux() *http.ServeMux {
	mux := http.NewServeMux()
	ok := func(w http.ResponseWriter, r *http.Request) { w.Write([]byte("{}")) }
	for _, p := range []string{"GET /collection/", "GET /collection/{id}/", "DELETE /collection/{id}/"} {
		method, path, _ := strings.Cut(p, " ")
		mux.HandleFunc(method+" "+strings.TrimSuffix(path, "/"), ok)
		mux.HandleFunc(method+" "+path+"{$}", ok)
	}
	mux.HandleFunc("GET /healthz", ok)
	mux.HandleFunc("GET /boom", func(http.ResponseWriter, *http.Request) { panic("boom") })
	return mux
}

// scrape gets /metrics from the admin handler and parses it.
func scrape(t *testing.T, m *metrics) map[string]*dto.MetricFamily {
	t.Helper()
	rec := httptest.NewRecorder()
	adminHandler(m, false, testLogger()).ServeHTTP(rec, httptest.NewRequest("GET", "/metrics", nil))
	if rec.Code != http.StatusOK {
		t.Fatalf("GET /metrics: status %d: %s", rec.Code, rec.Body)
	}
	if ct := rec.Header().Get("Content-Type"); !strings.HasPrefix(ct, "text/plain") {
		t.Fatalf("GET /metrics: Content-Type %q, want text/plain", ct)
	}
	p := expfmt.NewTextParser(model.UTF8Validation)
	families, err := p.TextToMetricFamilies(rec.Body)
	if err != nil {
		t.Fatalf("parse /metrics: %v", err)
	}
	return families
}

// sample returns the metric of family name whose labels include all of
// labels, or nil.
func sample(families map[string]*dto.MetricFamily, name string, labels map[string]string) *dto.Metric {
	f := families[name]
	if f == nil {
		return nil
	}
	for _, m := range f.GetMetric() {
		n := 0
		for _, lp := range m.GetLabel() {
			if v, ok := labels[lp.GetName()]; ok && v == lp.GetValue() {
				n++
			}
		}
		if n == len(labels) {
			return m
		}
	}
	return nil
}

// value returns the value of a counter or gauge sample, or -1 when absent.
func value(families map[string]*dto.MetricFamily, name string, labels map[string]string) float64 {
	m := sample(families, name, labels)
	switch {
	case m == nil:
		return -1
	case m.Counter != nil:
		return m.Counter.GetValue()
	case m.Gauge != nil:
		return m.Gauge.GetValue()
	case m.Untyped != nil:
		return m.Untyped.GetValue()
	}
	return -1
}

// send makes one request through h and returns its status.
func send(h http.Handler, method, target string) int {
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest(method, target, nil))
	return rec.Code
}

func TestMetricsCountsRequestsByRoute(t *testing.T) {
	m := newMetrics()
	h := measured(m, testMux())

	for range 3 {
		send(h, "GET", "/collection/")
	}
	for range 2 {
		send(h, "GET", "/collection")
	}
	send(h, "GET", "/collection/0b6f7c1e-8a5e-4a4e-9e51-3c9d1f1b8a77/")
	send(h, "GET", "/collection/another-id")
	send(h, "GET", "/healthz")
	send(h, "GET", "/no/such/path/1")
	send(h, "GET", "/no/such/path/2")
	send(h, "POST", "/collection/") // 405 from the mux
	send(h, "BREW", "/coffee")

	f := scrape(t, m)
	tests := []struct {
		name   string
		labels map[string]string
		want   float64
	}{
		{"both forms of one route are one series", map[string]string{"method": "GET", "route": "GET /collection/", "code": "200"}, 5},
		{"a wildcard route, not its raw paths", map[string]string{"method": "GET", "route": "GET /collection/{id}/", "code": "200"}, 2},
		{"a bare route keeps its form", map[string]string{"method": "GET", "route": "GET /healthz", "code": "200"}, 1},
		{"unmatched paths are one value", map[string]string{"method": "GET", "route": "unmatched", "code": "404"}, 2},
		{"wrong method", map[string]string{"method": "POST", "route": "unmatched", "code": "405"}, 1},
		{"unknown method", map[string]string{"method": "OTHER", "route": "unmatched", "code": "404"}, 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := value(f, "http_requests_total", tt.labels); got != tt.want {
				t.Fatalf("http_requests_total%v: got %v, want %v", tt.labels, got, tt.want)
			}
		})
	}
	for _, m := range f["http_requests_total"].GetMetric() {
		for _, lp := range m.GetLabel() {
			if lp.GetName() == "route" && strings.Contains(lp.GetValue(), "0b6f7c1e") {
				t.Fatalf("a raw path became a route label: %q", lp.GetValue())
			}
		}
	}

	hist := sample(f, "http_request_duration_seconds", map[string]string{"route": "GET /collection/"})
	if hist == nil || hist.Histogram == nil {
		t.Fatalf("http_request_duration_seconds{route=\"GET /collection/\"} missing: %v", f["http_request_duration_seconds"])
	}
	if got, want := hist.Histogram.GetSampleCount(), uint64(5); got != want {
		t.Fatalf("duration sample count: got %d, want %d", got, want)
	}
	if got, want := len(hist.Histogram.GetBucket()), len(durationBuckets)+1; got != want {
		t.Fatalf("duration buckets: got %d, want %d (with +Inf)", got, want)
	}
}

func TestMetricsCountsPanicAs500(t *testing.T) {
	m := newMetrics()
	// A recoverer outside the metrics, as logRequests is.
	recoverer := func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			defer func() {
				if recover() != nil {
					w.WriteHeader(http.StatusInternalServerError)
				}
			}()
			next.ServeHTTP(w, r)
		})
	}
	h := recoverer(measured(m, testMux()))
	if got, want := send(h, "GET", "/boom"), http.StatusInternalServerError; got != want {
		t.Fatalf("status: got %d, want %d", got, want)
	}
	labels := map[string]string{"method": "GET", "route": "GET /boom/", "code": "500"}
	if got := value(scrape(t, m), "http_requests_total", labels); got != 1 {
		t.Fatalf("http_requests_total%v: got %v, want 1", labels, got)
	}
}

// TestMetricsRouteThroughRequestID checks the route label with the
// request ID middleware, which copies the request, on either side.
func TestMetricsRouteThroughRequestID(t *testing.T) {
	for name, wrap := range map[string]func(*metrics) http.Handler{
		"request ID outside": func(m *metrics) http.Handler { return requestIDMiddleware(measured(m, testMux())) },
		"request ID inside":  func(m *metrics) http.Handler { return measured(m, requestIDMiddleware(testMux())) },
	} {
		t.Run(name, func(t *testing.T) {
			m := newMetrics()
			send(wrap(m), "GET", "/collection/")
			labels := map[string]string{"method": "GET", "route": "GET /collection/", "code": "200"}
			if got := value(scrape(t, m), "http_requests_total", labels); got != 1 {
				t.Fatalf("http_requests_total%v: got %v, want 1", labels, got)
			}
		})
	}
}

func TestMetricsOperationalSeries(t *testing.T) {
	m := newMetrics()
	db, err := sql.Open("sqlite", filepath.Join(t.TempDir(), "pool.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if err := db.Ping(); err != nil {
		t.Fatal(err)
	}
	m.registerDB("read", db)
	var count int64 = 41
	m.registerCounter(func() int64 { return count })
	count++

	m.catalogueAttempt("ok")
	m.catalogueAttempt("timeout")
	m.catalogueAttempt("timeout")
	m.catalogueAttempt("something new")
	m.catalogueRetries.Inc()
	m.sharedCalls.Add(2)
	m.stalePages.Inc()
	m.breaker.Set(2)
	m.flushFailures.Inc()
	m.lockouts.Inc()
	m.rateLimits.WithLabelValues("auth_ip").Inc()

	f := scrape(t, m)
	tests := []struct {
		name   string
		labels map[string]string
		want   float64
	}{
		{"catalogue_attempts_total", map[string]string{"outcome": "ok"}, 1},
		{"catalogue_attempts_total", map[string]string{"outcome": "timeout"}, 2},
		{"catalogue_attempts_total", map[string]string{"outcome": "network"}, 0},
		{"catalogue_attempts_total", map[string]string{"outcome": "other"}, 1},
		{"catalogue_attempts_total", map[string]string{"outcome": "cancelled"}, 0},
		{"catalogue_retries_total", nil, 1},
		{"catalogue_shared_calls_total", nil, 2},
		{"catalogue_stale_pages_served_total", nil, 1},
		{"catalogue_breaker_state", nil, 2},
		{"request_counter_flush_failures_total", nil, 1},
		{"request_count", nil, 42},
		{"login_lockouts_total", nil, 1},
		{"rate_limited_requests_total", map[string]string{"limit": "auth_ip"}, 1},
		{"go_sql_open_connections", map[string]string{"db_name": "read"}, 1},
		{"go_sql_max_open_connections", map[string]string{"db_name": "read"}, 0},
		{"go_sql_wait_count_total", map[string]string{"db_name": "read"}, 0},
	}
	for _, tt := range tests {
		if got := value(f, tt.name, tt.labels); got != tt.want {
			t.Errorf("%s%v: got %v, want %v", tt.name, tt.labels, got, tt.want)
		}
	}
	if got := len(f["go_sql_open_connections"].GetMetric()); got != 1 {
		t.Errorf("go_sql_open_connections: %d pools, want 1 (one pool registered under two names)", got)
	}
	for _, name := range []string{"go_goroutines", "go_memstats_heap_alloc_bytes", "go_gc_duration_seconds", "go_build_info",
		"process_cpu_seconds_total", "process_resident_memory_bytes", "process_open_fds"} {
		if f[name] == nil {
			t.Errorf("%s missing", name)
		}
	}
}

func TestMetricsAdminListener(t *testing.T) {
	m := newMetrics()
	send(measured(m, testMux()), "GET", "/collection/")
	for _, tt := range []struct {
		name     string
		profiles bool
		path     string
		method   string
		want     int
	}{
		{"metrics", false, "/metrics", "GET", 200},
		{"metrics by POST", false, "/metrics", "POST", 405},
		{"no API here", false, "/collection/", "GET", 404},
		{"no pprof unless asked", false, "/debug/pprof/", "GET", 404},
		{"pprof on the same listener", true, "/debug/pprof/", "GET", 200},
		{"metrics beside pprof", true, "/metrics", "GET", 200},
	} {
		t.Run(tt.name, func(t *testing.T) {
			addr := freeAddr(t)
			stop, err := serveAdmin(addr, m, tt.profiles, testLogger())
			if err != nil {
				t.Fatal(err)
			}
			defer stop()
			req, _ := http.NewRequest(tt.method, "http://"+addr+tt.path, nil)
			res, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			body, _ := io.ReadAll(res.Body)
			res.Body.Close()
			if res.StatusCode != tt.want {
				t.Fatalf("%s %s: got %d, want %d", tt.method, tt.path, res.StatusCode, tt.want)
			}
			if tt.path == "/metrics" && tt.want == 200 && !strings.Contains(string(body), `http_requests_total{code="200",method="GET",route="GET /collection/"} 1`) {
				t.Fatalf("GET /metrics lacks the request counted:\n%.2000s", body)
			}
		})
	}

	t.Run("busy address", func(t *testing.T) {
		addr := freeAddr(t)
		stop, err := serveAdmin(addr, m, false, testLogger())
		if err != nil {
			t.Fatal(err)
		}
		defer stop()
		if _, err := serveAdmin(addr, m, false, testLogger()); err == nil || !strings.Contains(err.Error(), addr) {
			t.Fatalf("second listener on %s: got %v, want an error naming the address", addr, err)
		}
	})
}

// BenchmarkMetricsMiddleware measures what the middleware adds to a
// request: through the router alone and with the metrics around it, and,
// to isolate the middleware's own cost, around a handler that does nothing
// (the request already carrying its pattern).
func BenchmarkMetricsMiddleware(b *testing.B) {
	mux := testMux()
	m := newMetrics()
	noop := http.HandlerFunc(func(http.ResponseWriter, *http.Request) {})
	for _, bb := range []struct {
		name string
		h    http.Handler
	}{
		{"mux", mux},
		{"mux+metrics", measured(m, mux)},
		{"noop", noop},
		{"noop+metrics", measured(m, noop)},
	} {
		b.Run(bb.name, func(b *testing.B) {
			b.ReportAllocs()
			b.RunParallel(func(pb *testing.PB) {
				w := &benchWriter{h: http.Header{}}
				r := httptest.NewRequest("GET", "/collection/0b6f7c1e-8a5e-4a4e-9e51-3c9d1f1b8a77/", nil)
				r.Pattern = "GET /collection/{id}/{$}"
				for pb.Next() {
					bb.h.ServeHTTP(w, r)
				}
			})
		})
	}
}

// TestMetricsOfTheService drives the whole service and reads its metrics
// as Prometheus would: requests by route pattern and status, the request
// count, rate-limit refusals and the database pools.
func TestMetricsOfTheService(t *testing.T) {
	app := newTestApp(t, withEnv("AUTH_RATE_PER_IP", "1"))
	u := app.newUser() // the address's one register or login of the minute
	for range 3 {
		app.do("GET", "/collection/", u.token, nil).mustStatus(t, http.StatusOK)
	}
	id := app.newCollection(u)
	app.do("GET", "/collection/"+id, u.token, nil).mustStatus(t, http.StatusOK)
	app.do("GET", "/no/such/path", "", nil).mustStatus(t, http.StatusNotFound)
	app.do("POST", "/login/", "", map[string]string{"username": u.name, "password": u.password}).mustStatus(t, http.StatusTooManyRequests)

	f := scrape(t, app.metrics)
	for _, tt := range []struct {
		name   string
		labels map[string]string
		want   float64
	}{
		{"http_requests_total", map[string]string{"method": "GET", "route": "GET /collection/", "code": "200"}, 3},
		{"http_requests_total", map[string]string{"method": "GET", "route": "GET /collection/{id}/", "code": "200"}, 1},
		{"http_requests_total", map[string]string{"method": "GET", "route": "unmatched", "code": "404"}, 1},
		{"http_requests_total", map[string]string{"method": "POST", "route": "POST /login/", "code": "429"}, 1},
		{"rate_limited_requests_total", map[string]string{"limit": "auth_ip"}, 1},
		{"request_count", nil, float64(app.counter.Count())},
	} {
		if got := value(f, tt.name, tt.labels); got != tt.want {
			t.Errorf("%s%v: got %v, want %v", tt.name, tt.labels, got, tt.want)
		}
	}
	if _, ok := f["go_sql_open_connections"]; !ok {
		t.Error("no database pool metrics")
	}
}

// measured is the service's measuring of requests (logRequests) alone,
// for these tests: it records what observe is given once next answers.
// measured records each request's method, route pattern, status code
// and duration once next has answered it.
//
// It reads the route from r.Pattern after next returns: ServeMux sets it
// on the very request it is given, so next must pass this r on to the mux
// rather than a copy (r.WithContext makes one; requestIDMiddleware copies
// the pattern back for this reason). A request nothing matched is counted
// as route "unmatched".
//
// A panic in next is counted as a 500 when no status was written yet,
// which is what a recovering middleware outside this one answers; the
// panic goes on unchanged.
func measured(m *metrics, next http.Handler) http.Handler {
	if m == nil {
		return next
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		ar := recordAccess(w)
		returned := false
		defer func() {
			code := ar.code()
			if !returned && ar.status == 0 {
				code = http.StatusInternalServerError
			}
			m.observe(r.Method, r.Pattern, code, time.Since(start))
		}()
		next.ServeHTTP(ar, r)
		returned = true
	})
}
