package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"time"
)

// Retry policy. The catalogue fails often but briefly, so a few quick
// retries with a growing, jittered wait recover most requests without
// piling load on it while it is down.
const (
	// baseBackoff is the wait after the first failed attempt, before jitter.
	baseBackoff = 100 * time.Millisecond
	// maxBackoff caps the wait between two catalogue attempts, a honoured
	// Retry-After included, so that MaxAttempts*(Timeout+maxBackoff)
	// bounds one /movies/ request (config.writeTimeout relies on it).
	maxBackoff = 2 * time.Second
	// maxRetryAfter is the longest Retry-After worth retrying for inside
	// one request; one over maxBackoff is still waited for only up to
	// maxBackoff, at worst costing one early attempt. The catalogue asking
	// for more ends the retries at once with a 503 that passes its
	// Retry-After on: the client can wait better than a request held open.
	maxRetryAfter = 5 * time.Second
	// drainBytes is how much of an unwanted body is read before closing
	// it, so that its connection can go back to the keep-alive pool; a
	// longer body is not worth reading and costs a new connection.
	drainBytes = 4 << 10
	// maxPageBytes caps a catalogue page. A real page of 10 movies is a
	// few KiB; anything near this is not a page.
	maxPageBytes = 10 << 20
)

// catalogueConfig is where the catalogue is and how to call it.
type catalogueConfig struct {
	URL         string
	Username    string
	Password    string
	Timeout     time.Duration
	MaxAttempts int
	// StaleIfError is how old a remembered page may be and still stand in
	// for a failed fetch; 0: never.
	StaleIfError time.Duration
	// BreakerThreshold fetches in a row that gave up open the breaker for
	// BreakerCooldown; 0: never.
	BreakerThreshold int
	BreakerCooldown  time.Duration
}

// catalogue is the client of the third-party movie catalogue. It retries
// failed attempts and lets concurrent requests for the same page share
// one call. Its clock, sleeper and random source are fields so that tests
// pin them instead of sleeping.
type catalogue struct {
	cfg    catalogueConfig
	base   *url.URL // parsed cfg.URL; nil when it does not parse
	logger *slog.Logger
	client *http.Client

	now   func() time.Time
	sleep func(ctx context.Context, d time.Duration) error
	rand  func() float64 // in [0, 1), for the backoff's jitter

	flights flightGroup[int, cataloguePage] // in-flight calls by page
	breaker *breaker
	stale   *stalePages // pages fetched successfully, to stand in
	metrics *metrics
}

// newCatalogue returns a catalogue client with one shared HTTP client.
// Missing credentials are not an error here: the server still starts and
// /movies/ answers that the catalogue is not configured.
func newCatalogue(cfg catalogueConfig, logger *slog.Logger) *catalogue {
	if cfg.MaxAttempts < 1 {
		cfg.MaxAttempts = 1
	}
	if cfg.Timeout <= 0 {
		cfg.Timeout = 5 * time.Second
	}
	base, err := url.Parse(cfg.URL)
	if err != nil || base.Host == "" {
		base = nil
	}
	maxPages := staleMaxPages
	if cfg.StaleIfError <= 0 {
		maxPages = 0
	}
	c := &catalogue{
		cfg:     cfg,
		base:    base,
		logger:  logger,
		client:  newCatalogueClient(cfg.Timeout),
		now:     time.Now,
		sleep:   sleepContext,
		rand:    rand.Float64,
		stale:   newStalePages(maxPages, staleMaxBytes),
		metrics: noMetrics,
	}
	c.breaker = newBreaker(cfg.BreakerThreshold, cfg.BreakerCooldown, func() time.Time { return c.now() })
	return c
}

// newCatalogueClient returns the one HTTP client every catalogue call
// shares. Every request goes to the same host, so the keep-alive pool per
// host is as large as the whole pool: Go's default of 2 idle connections
// per host would close and redial connections under any real concurrency.
// Each phase of an attempt has its own limit, and the attempt as a whole is
// bounded by its context (cfg.Timeout), not by Client.Timeout, so that the
// caller's cancellation ends it too.
//
// Redirects are never followed: Go would forward the credentials to any
// port or scheme of the same host name. A 3xx is answered as it is, and
// counts as a failed attempt.
//
// net/http itself replays a GET once when a reused keep-alive connection
// turns out to be dead before any answer: a stale connection is not a
// failure of the catalogue, so that replay is left on, and the catalogue
// may then see one request more than there were attempts.
func newCatalogueClient(timeout time.Duration) *http.Client {
	dialer := &net.Dialer{Timeout: timeout, KeepAlive: 30 * time.Second}
	return &http.Client{
		Transport: &http.Transport{
			Proxy:                 http.ProxyFromEnvironment,
			DialContext:           dialer.DialContext,
			ForceAttemptHTTP2:     true,
			MaxIdleConns:          128,
			MaxIdleConnsPerHost:   128,
			IdleConnTimeout:       90 * time.Second,
			TLSHandshakeTimeout:   timeout,
			ResponseHeaderTimeout: timeout,
			ExpectContinueTimeout: time.Second,
		},
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
}

// sleepContext waits d, or less if ctx ends first, and then returns
// ctx's error.
func sleepContext(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}

// Configured reports whether the catalogue credentials are set.
func (c *catalogue) Configured() bool { return c.cfg.Username != "" && c.cfg.Password != "" }

// errCatalogueNotConfigured answers /movies/ while the credentials are
// missing. The operator's hint is in the log at start-up, not here.
var errCatalogueNotConfigured = newError(codeUnavailable, "the movie catalogue is not configured on this server")

// cataloguePage is one page as the catalogue sends it. The live catalogue
// lists the movies under "results" (Django REST framework's pagination);
// its published brief says "data": either is accepted.
type cataloguePage struct {
	IsSuccess *bool     `json:"is_success"`
	Count     *int64    `json:"count"`
	Next      *string   `json:"next"`
	Previous  *string   `json:"previous"`
	Results   *[]*movie `json:"results"`
	Data      *[]*movie `json:"data"`
}

// movies returns the page's movies, never nil.
func (p cataloguePage) movies() []movie {
	var list []*movie
	switch {
	case p.Results != nil:
		list = *p.Results
	case p.Data != nil:
		list = *p.Data
	}
	out := make([]movie, len(list))
	for i, m := range list {
		out[i] = *m
	}
	return out
}

// Page returns one page of the catalogue. Concurrent requests for the
// same page share one call (see flightGroup), so a burst of users does not
// multiply the load on a catalogue that is already failing. The call ends
// within the retry budget; each caller returns as soon as its own ctx ends.
//
// When the fetch fails, or the catalogue counts as down, a remembered copy
// of the page younger than StaleIfError stands in: stale reports one, and
// age how long ago it was fetched.
func (c *catalogue) Page(ctx context.Context, page int) (p cataloguePage, age time.Duration, stale bool, err error) {
	budget := time.Duration(c.cfg.MaxAttempts) * (c.cfg.Timeout + maxBackoff)
	p, shared, err := c.flights.do(ctx, page, budget, func(ctx context.Context) (cataloguePage, error) {
		return c.guardedFetch(ctx, page)
	})
	if shared {
		c.metrics.sharedCalls.Inc()
	}
	switch {
	case err == nil:
		return p, 0, false, nil
	case ctx.Err() != nil:
		return p, 0, false, errRequestEnded
	case staleFallback(err):
		if sp, age, ok := c.stale.get(page, c.now(), c.cfg.StaleIfError); ok {
			return sp, age, true, nil
		}
	}
	return p, 0, false, err
}

// guardedFetch is fetch behind the circuit breaker: while the catalogue
// counts as down it makes no call and fails at once. A page fetched is
// remembered, to stand in later.
func (c *catalogue) guardedFetch(ctx context.Context, page int) (cataloguePage, error) {
	ticket, wait, ok := c.breaker.acquire()
	c.metrics.breaker.Set(float64(c.breaker.state()))
	if !ok {
		return cataloguePage{}, catalogueDownError(wait)
	}
	attempts := c.cfg.MaxAttempts
	if ticket.probe {
		// One attempt tells whether the catalogue is back; the requests
		// for this page that wait on the probe wait for no more.
		attempts = 1
	}
	p, err := c.fetch(ctx, page, attempts)
	c.breaker.done(ticket, fetchOutcome(ctx, err))
	c.metrics.breaker.Set(float64(c.breaker.state()))
	if err == nil {
		c.stale.put(page, p, c.now())
	}
	return p, err
}

// errRequestEnded is the error for a request whose context ended before
// the catalogue answered. The client has usually gone and never sees it;
// the access log then shows a 504 rather than a 500.
var errRequestEnded = newError(codeUpstreamTimeout, "the request ended before the movie catalogue answered")

// fetch gets one page in at most attempts attempts, retrying failed ones
// with backoff. It stops at once when ctx ends, and gives up early when
// the breaker opens meanwhile: other fetches found the catalogue down.
// Every error it returns is an *apiError.
func (c *catalogue) fetch(ctx context.Context, page, attempts int) (cataloguePage, error) {
	if c.base == nil {
		c.logger.Error("MOVIES_API_URL is not a valid URL")
		return cataloguePage{}, errCatalogueNotConfigured
	}
	var last verdict
	for n := 1; n <= attempts; n++ {
		p, v := c.attempt(ctx, page)
		if ctx.Err() != nil && v.class != "ok" {
			c.metrics.catalogueAttempt("cancelled")
			return cataloguePage{}, errRequestEnded
		}
		c.metrics.catalogueAttempt(v.class)
		if v.class == "ok" {
			return p, nil
		}
		last = v
		attrs := v.logAttrs(page, n, attempts)
		switch {
		case v.final != nil:
			c.logger.WarnContext(ctx, "catalogue attempt failed; not retrying", attrs...)
			return cataloguePage{}, v.final
		case v.hasRetryAfter && v.retryAfter > maxRetryAfter:
			c.logger.WarnContext(ctx, "catalogue attempt failed; it asks for a long wait, not retrying", append(attrs, "retry_after", v.retryAfter.String())...)
			return cataloguePage{}, tooLongWait(v.retryAfter)
		case n == attempts:
			c.logger.WarnContext(ctx, "catalogue attempt failed; giving up", attrs...)
			continue
		case c.breaker.state() == breakerOpen:
			c.logger.WarnContext(ctx, "catalogue attempt failed; the catalogue counts as down, giving up", attrs...)
			return cataloguePage{}, giveUp(v, n)
		}
		wait := c.wait(n, v)
		c.metrics.catalogueRetries.Inc()
		c.logger.WarnContext(ctx, "catalogue attempt failed; retrying", append(attrs, "wait", wait.String())...)
		if err := c.sleep(ctx, wait); err != nil {
			return cataloguePage{}, errRequestEnded
		}
	}
	return cataloguePage{}, giveUp(last, attempts)
}

// attempt makes one catalogue request, limited to cfg.Timeout, and
// returns the page, or the verdict on why it failed.
func (c *catalogue) attempt(ctx context.Context, page int) (cataloguePage, verdict) {
	actx, cancel := context.WithTimeout(ctx, c.cfg.Timeout)
	defer cancel()

	u := *c.base
	u.User = nil // the credentials go in the Authorization header only
	q := u.Query()
	q.Set("page", strconv.Itoa(page))
	u.RawQuery = q.Encode()
	req, err := http.NewRequestWithContext(actx, http.MethodGet, u.String(), nil)
	if err != nil {
		c.logger.Error("MOVIES_API_URL makes no valid request", "err", err)
		return cataloguePage{}, verdict{class: "request", err: err, final: errCatalogueNotConfigured}
	}
	req.SetBasicAuth(c.cfg.Username, c.cfg.Password)
	req.Header.Set("Accept", "application/json")
	// The ID of the request that started this call: the flight's context
	// keeps the values of the first caller's.
	setRequestIDHeader(ctx, req.Header)

	resp, err := c.client.Do(req)
	if err != nil {
		return cataloguePage{}, classify(0, nil, transportError(actx, err), c.now())
	}
	defer resp.Body.Close()
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		drain(resp.Body)
		v := classify(resp.StatusCode, resp.Header, nil, c.now())
		if v.status == http.StatusUnauthorized || v.status == http.StatusForbidden {
			c.logger.Error("the catalogue refuses our credentials: check MOVIES_API_USERNAME and MOVIES_API_PASSWORD")
		}
		return cataloguePage{}, v
	}
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxPageBytes+1))
	if err != nil {
		return cataloguePage{}, classify(0, nil, transportError(actx, fmt.Errorf("read catalogue page: %w", err)), c.now())
	}
	p, err := parsePage(body)
	if err != nil {
		class := "invalid_body"
		if errors.Is(err, errCatalogueSaysNo) {
			class = "error_body"
		}
		return cataloguePage{}, verdict{class: class, status: resp.StatusCode, err: err}
	}
	return p, verdict{class: "ok", status: resp.StatusCode}
}

// transportError is err, marked as a timeout when the attempt's own time
// ran out. The URL is left out: it is the catalogue's, and may say more
// than the log needs.
func transportError(actx context.Context, err error) error {
	var uerr *url.Error
	if errors.As(err, &uerr) {
		err = uerr.Err
	}
	if errors.Is(actx.Err(), context.DeadlineExceeded) && !errors.Is(err, context.DeadlineExceeded) {
		err = errors.Join(err, context.DeadlineExceeded)
	}
	return err
}

var errCatalogueSaysNo = errors.New("catalogue answered is_success false")

// parsePage decodes a 2xx body into a page. A body that is too large, is
// not JSON, is the catalogue's {"is_success": false} error shape (which it
// sometimes sends with status 200), or is not shaped like a page (a
// non-negative integer count, a list of movie objects with string fields)
// is an error: a failed attempt, worth retrying.
func parsePage(body []byte) (cataloguePage, error) {
	var p cataloguePage
	if len(body) > maxPageBytes {
		return p, fmt.Errorf("catalogue page is over %d bytes", maxPageBytes)
	}
	if err := json.Unmarshal(body, &p); err != nil {
		return p, fmt.Errorf("decode catalogue page: %w", err)
	}
	if p.IsSuccess != nil && !*p.IsSuccess {
		return p, errCatalogueSaysNo
	}
	list := p.Results
	if list == nil {
		list = p.Data
	}
	switch {
	case list == nil:
		return p, errors.New("catalogue page has neither results nor data")
	case p.Count == nil || *p.Count < 0:
		return p, errors.New("catalogue page has no count, or a negative one")
	}
	for _, m := range *list {
		if m == nil {
			return p, errors.New("catalogue page lists a movie that is not an object")
		}
	}
	return p, nil
}

// drain reads a little of an unwanted body so that its connection can be
// reused; the caller closes it.
func drain(body io.Reader) {
	io.CopyN(io.Discard, body, drainBytes)
}
