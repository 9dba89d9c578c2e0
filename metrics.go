package main

import (
	"database/sql"
	"maps"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
)

// metrics holds the service's Prometheus metrics, on a registry of its
// own rather than the global default, so that what /metrics shows is
// exactly what is registered here and tests can build as many as they like.
//
// It is never nil in the service: a counter or catalogue built on its own
// gets noMetrics, which nobody reads.
type metrics struct {
	reg *prometheus.Registry

	requests *prometheus.CounterVec   // method, route, code
	duration *prometheus.HistogramVec // route

	catalogueAttempts map[string]prometheus.Counter // by outcome, fixed at construction
	catalogueRetries  prometheus.Counter
	sharedCalls       prometheus.Counter
	stalePages        prometheus.Counter
	breaker           prometheus.Gauge
	flushFailures     prometheus.Counter
	lockouts          prometheus.Counter
	rateLimits        *prometheus.CounterVec // limit

	// series caches the request metrics of each (method, pattern, code)
	// seen so far. Reads are one map lookup without a lock; a new
	// combination copies the map under seriesMu. There are few
	// combinations (known methods × registered patterns × status codes)
	// and all appear within minutes, so the copies stop early.
	series   atomic.Pointer[map[requestKey]requestSeries]
	seriesMu sync.Mutex
}

// requestKey is what one request's metrics are labelled by, before the
// pattern is turned into its route label.
type requestKey struct {
	method  string // methodLabel's result
	pattern string // r.Pattern as ServeMux set it; "" when nothing matched
	code    int
}

// requestSeries are the metrics of one requestKey, resolved once.
type requestSeries struct {
	count    prometheus.Counter
	duration prometheus.Observer
}

// durationBuckets (seconds) span a cached collection read (well under a
// millisecond) to a /movies/ request that retries a slow catalogue for
// tens of seconds.
var durationBuckets = []float64{.001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30}

// catalogueOutcomes are the values of catalogue_attempts_total's outcome
// label: "ok"; attemptFailure's class; or "cancelled", an attempt cut
// short because nobody waited for it any more, which says nothing about
// the catalogue. Anything else counts as "other", so the label's values
// stay this fixed set.
var catalogueOutcomes = []string{"ok", "status", "timeout", "network", "invalid_body", "error_body", "request", "cancelled", "other"}

// promCounter returns a Prometheus counter without labels.
func promCounter(name, help string) prometheus.Counter {
	return prometheus.NewCounter(prometheus.CounterOpts{Name: name, Help: help})
}

// noMetrics is where what is measured goes when nobody reads it: the
// metrics of a counter or catalogue made without newApp, in tests.
var noMetrics = newMetrics()

// newMetrics returns the service's metrics with the Go runtime, process
// and build collectors registered. Pools and the request count are added
// by registerDB and registerCounter once they exist.
func newMetrics() *metrics {
	m := &metrics{
		reg: prometheus.NewRegistry(),
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "http_requests_total",
			Help: "HTTP requests answered by the API, by method, route pattern and status code.",
		}, []string{"method", "route", "code"}),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "http_request_duration_seconds",
			Help:    "Time to answer an API request, by route pattern.",
			Buckets: durationBuckets,
		}, []string{"route"}),
		catalogueRetries: promCounter("catalogue_retries_total",
			"Catalogue attempts made after a failed one."),
		sharedCalls: promCounter("catalogue_shared_calls_total",
			"Requests for a catalogue page that joined a call already in flight instead of making their own."),
		stalePages: promCounter("catalogue_stale_pages_served_total",
			"Remembered catalogue pages served because the catalogue failed or counted as down."),
		breaker: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "catalogue_breaker_state",
			Help: "The catalogue circuit breaker: 0 closed, 1 open, 2 half-open.",
		}),
		flushFailures: promCounter("request_counter_flush_failures_total",
			"Failed attempts to persist the request count; the count stays pending and goes with a later one."),
		lockouts: promCounter("login_lockouts_total",
			"Usernames locked after too many failed logins."),
		rateLimits: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "rate_limited_requests_total",
			Help: "Requests refused with 429 by a rate limit, by limit.",
		}, []string{"limit"}),
	}
	attempts := prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "catalogue_attempts_total",
		Help: "Catalogue attempts, by outcome: ok, or why the attempt failed.",
	}, []string{"outcome"})
	// Every outcome is resolved now, so each series exists (at 0) from
	// the first scrape and rate() sees its first increase.
	m.catalogueAttempts = make(map[string]prometheus.Counter, len(catalogueOutcomes))
	for _, o := range catalogueOutcomes {
		m.catalogueAttempts[o] = attempts.WithLabelValues(o)
	}
	m.series.Store(&map[requestKey]requestSeries{})

	m.reg.MustRegister(
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
		collectors.NewBuildInfoCollector(),
		m.requests, m.duration, attempts, m.catalogueRetries, m.sharedCalls,
		m.stalePages, m.breaker, m.flushFailures, m.lockouts, m.rateLimits,
	)
	return m
}

// observe records one answered request, from the access-log middleware
// (logRequests), which already has its status and duration, so that the
// response is wrapped only once.
func (m *metrics) observe(method, pattern string, code int, d time.Duration) {
	s := m.seriesFor(requestKey{method: methodLabel(method), pattern: pattern, code: code})
	s.count.Inc()
	s.duration.Observe(d.Seconds())
}

// seriesFor returns the metrics of k, resolving them on first use.
func (m *metrics) seriesFor(k requestKey) requestSeries {
	if s, ok := (*m.series.Load())[k]; ok {
		return s
	}
	m.seriesMu.Lock()
	defer m.seriesMu.Unlock()
	old := *m.series.Load()
	if s, ok := old[k]; ok {
		return s
	}
	route := routeLabel(k.pattern)
	s := requestSeries{
		count:    m.requests.WithLabelValues(k.method, route, strconv.Itoa(k.code)),
		duration: m.duration.WithLabelValues(route),
	}
	next := maps.Clone(old)
	next[k] = s
	m.series.Store(&next)
	return s
}

// methodLabel returns the method label of a request: a method HTTP
// defines, else "OTHER", so that a client inventing methods cannot add
// series without end.
func methodLabel(method string) string {
	switch method {
	case http.MethodGet, http.MethodHead, http.MethodPost, http.MethodPut, http.MethodPatch,
		http.MethodDelete, http.MethodOptions, http.MethodConnect, http.MethodTrace:
		return method
	}
	return "OTHER"
}

// unmatchedRoute is the route label of a request no pattern matched (a
// 404 or 405 from the router), whatever its path.
const unmatchedRoute = "unmatched"

// bareRoutes are the paths SPEC.md writes without a final slash; they are
// registered only in that form.
var bareRoutes = map[string]bool{"/healthz": true, "/readyz": true, "/openapi.json": true, "/docs": true}

// routeLabel turns a ServeMux pattern into the route that metrics and logs
// show. The router registers each API route twice, "GET /collection/{$}"
// and "GET /collection", so that both paths answer; both are labelled as
// SPEC.md writes the route, "GET /collection/". The paths SPEC.md writes
// without a final slash (bareRoutes) and trailing "{name...}" wildcards
// keep their form. No pattern, an unmatched request, is unmatchedRoute.
func routeLabel(pattern string) string {
	if pattern == "" {
		return unmatchedRoute
	}
	method, path, ok := strings.Cut(pattern, " ")
	if !ok {
		method, path = "", pattern
	}
	path = strings.TrimLeft(path, " \t")
	path = strings.TrimSuffix(path, "{$}")
	switch {
	case bareRoutes[strings.TrimSuffix(path, "/")]:
		path = strings.TrimSuffix(path, "/") // /healthz/ is /healthz
	case !strings.HasSuffix(path, "/") && !strings.HasSuffix(path, "...}"):
		path += "/"
	}
	if method == "" {
		return path
	}
	return method + " " + path
}

// catalogueAttempt counts one catalogue attempt by its outcome: "ok", the
// failed attempt's class (attemptFailure.class), or "cancelled".
func (m *metrics) catalogueAttempt(outcome string) {
	c, ok := m.catalogueAttempts[outcome]
	if !ok {
		c = m.catalogueAttempts["other"]
	}
	c.Inc()
}

// registerCounter exposes the request counter's count as the gauge
// request_count: what GET /request-count/ would answer, every instance on
// the database included. It is a gauge, not a counter, because a reset
// sets it back to 0.
func (m *metrics) registerCounter(count func() int64) {
	m.reg.MustRegister(prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Name: "request_count",
		Help: "Requests counted by the request counter, as GET /request-count/ answers; a reset sets it to 0.",
	}, func() float64 { return float64(count()) }))
}

// registerDB exposes the connection pool statistics of db (open, in use,
// idle, waits and the time waited, connections closed by limits) as the
// go_sql_* metrics labelled db_name=name. Register each pool once.
func (m *metrics) registerDB(name string, db *sql.DB) {
	m.reg.MustRegister(collectors.NewDBStatsCollector(db, name))
}
