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
	"slices"
	"strconv"
	"strings"
	"sync"
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
	maxPageBytes = 4 << 20
)

// catalogueConfig is where the catalogue is and how to call it.
type catalogueConfig struct {
	URL         string
	Username    string
	Password    string
	Timeout     time.Duration
	MaxAttempts int
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

	mu    sync.Mutex
	calls map[int]*catalogueCall // in-flight calls by page

	running sync.WaitGroup // shared calls still running, for tests
}

// catalogueCall is one in-flight catalogue call that several requests for
// the same page wait on.
type catalogueCall struct {
	done    chan struct{} // closed when page and err are set
	page    cataloguePage
	err     error
	waiters int                // requests still waiting; guarded by catalogue.mu
	cancel  context.CancelFunc // ends the call when nobody waits any more
}

// newCatalogue returns a catalogue client with one shared HTTP client.
// Missing credentials are not an error here: the server still starts and
// /movies/ explains what is missing.
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
	return &catalogue{
		cfg:    cfg,
		base:   base,
		logger: logger,
		client: newCatalogueClient(cfg.Timeout),
		now:    time.Now,
		sleep:  sleepContext,
		rand:   rand.Float64,
		calls:  map[int]*catalogueCall{},
	}
}

// newCatalogueClient returns the one HTTP client every catalogue call
// shares. Every request goes to the same host, so the keep-alive pool per
// host is as large as the whole pool: Go's default of 2 idle connections
// per host would close and redial connections under any real concurrency.
// Each phase of an attempt has its own limit, and the attempt as a whole is
// bounded by its context (cfg.Timeout), not by Client.Timeout, so that the
// caller's cancellation ends it too.
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

// errCatalogueNotConfigured answers /movies/ while the credentials are missing.
var errCatalogueNotConfigured = newError(codeUnavailable,
	"the movie catalogue is not configured: set MOVIES_API_USERNAME and MOVIES_API_PASSWORD")

// cataloguePage is one page as the catalogue sends it. The live catalogue
// lists the movies under "results" (Django REST framework's pagination);
// its published brief says "data": either is accepted.
type cataloguePage struct {
	IsSuccess *bool    `json:"is_success"`
	Count     int64    `json:"count"`
	Next      *string  `json:"next"`
	Previous  *string  `json:"previous"`
	Results   *[]movie `json:"results"`
	Data      *[]movie `json:"data"`
}

// movies returns the page's movies, never nil.
func (p cataloguePage) movies() []movie {
	var list []movie
	switch {
	case p.Results != nil:
		list = *p.Results
	case p.Data != nil:
		list = *p.Data
	}
	if list == nil {
		list = []movie{}
	}
	return list
}

// Page returns one page of the catalogue. Concurrent requests for the
// same page share one call, so a burst of users does not multiply the load
// on a catalogue that is already failing.
//
// The shared call runs on a context of its own, not the first caller's:
// a caller that goes away must not fail the others still waiting. It is
// cancelled when its last waiter has gone, and in any case ends within the
// retry budget. Each caller returns as soon as its own ctx ends.
func (c *catalogue) Page(ctx context.Context, page int) (cataloguePage, error) {
	c.mu.Lock()
	call, ok := c.calls[page]
	if !ok {
		budget := time.Duration(c.cfg.MaxAttempts) * (c.cfg.Timeout + maxBackoff)
		callCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), budget)
		call = &catalogueCall{done: make(chan struct{}), cancel: cancel}
		c.calls[page] = call
		c.running.Add(1)
		go c.run(callCtx, page, call)
	}
	call.waiters++
	c.mu.Unlock()

	select {
	case <-call.done:
		return call.page, call.err
	case <-ctx.Done():
		c.mu.Lock()
		call.waiters--
		if call.waiters == 0 {
			// Nobody wants the answer any more: stop retrying, and let
			// the next request for this page start afresh.
			call.cancel()
			if c.calls[page] == call {
				delete(c.calls, page)
			}
		}
		c.mu.Unlock()
		return cataloguePage{}, errRequestEnded
	}
}

// run makes the shared call and hands its result to every waiter.
func (c *catalogue) run(ctx context.Context, page int, call *catalogueCall) {
	defer c.running.Done()
	defer call.cancel()
	p, err := c.fetch(ctx, page)
	c.mu.Lock()
	if c.calls[page] == call {
		delete(c.calls, page)
	}
	c.mu.Unlock()
	call.page, call.err = p, err
	close(call.done)
}

// errRequestEnded is the error for a request whose context ended before
// the catalogue answered. The client has usually gone and never sees it;
// the access log then shows a 504 rather than a 500.
var errRequestEnded = newError(codeUpstreamTimeout, "the request ended before the movie catalogue answered")

// attemptFailure describes one failed catalogue attempt. Its err is for
// the log only: the client never sees the catalogue's own error text.
type attemptFailure struct {
	class      string // what went wrong: status, timeout, network, invalid_body, error_body
	status     int    // the catalogue's HTTP status; 0 when there was no response
	err        error
	timeout    bool          // the attempt ran out of time
	retryAfter time.Duration // the catalogue's Retry-After; -1 when it sent none
	final      *apiError     // set when retrying cannot help: answer this
}

// fetch gets one page, retrying failed attempts with backoff. It stops at
// once when ctx ends. Every error it returns is an *apiError.
func (c *catalogue) fetch(ctx context.Context, page int) (cataloguePage, error) {
	if c.base == nil {
		return cataloguePage{}, newError(codeUnavailable, "the movie catalogue URL is not valid: check MOVIES_API_URL")
	}
	var last *attemptFailure
	for n := 1; n <= c.cfg.MaxAttempts; n++ {
		p, f := c.attempt(ctx, page)
		if f == nil {
			return p, nil
		}
		if ctx.Err() != nil {
			return cataloguePage{}, errRequestEnded
		}
		last = f
		attrs := []any{"page", page, "attempt", n, "max_attempts", c.cfg.MaxAttempts, "class", f.class}
		if f.status != 0 {
			attrs = append(attrs, "status", f.status)
		}
		if f.err != nil {
			attrs = append(attrs, "err", f.err.Error())
		}
		if f.final != nil {
			c.logger.Warn("catalogue attempt failed; not retrying", attrs...)
			return cataloguePage{}, f.final
		}
		if f.retryAfter > maxRetryAfter {
			secs := int64((f.retryAfter + time.Second - 1) / time.Second)
			c.logger.Warn("catalogue attempt failed; it asks for a long wait, not retrying", append(attrs, "retry_after", f.retryAfter.String())...)
			return cataloguePage{}, &apiError{
				Code:       codeUnavailable,
				Message:    fmt.Sprintf("the movie catalogue is busy and asks to wait %d seconds: try again later", secs),
				RetryAfter: strconv.FormatInt(secs, 10),
			}
		}
		if n == c.cfg.MaxAttempts {
			c.logger.Warn("catalogue attempt failed; giving up", attrs...)
			break
		}
		wait := c.wait(n, f.retryAfter)
		c.logger.Warn("catalogue attempt failed; retrying", append(attrs, "wait", wait.String())...)
		if err := c.sleep(ctx, wait); err != nil {
			return cataloguePage{}, errRequestEnded
		}
	}
	return cataloguePage{}, giveUp(last, c.cfg.MaxAttempts)
}

// giveUp is the error once every attempt has failed: 504 when the last
// one ran out of time, else 502. A Retry-After from the last answer is
// passed on, as the best guess of when to try again.
func giveUp(last *attemptFailure, attempts int) *apiError {
	tries := fmt.Sprintf("%d attempts", attempts)
	if attempts == 1 {
		tries = "1 attempt"
	}
	e := &apiError{Code: codeUpstream, Message: "the movie catalogue is unavailable: giving up after " + tries}
	if last != nil && last.timeout {
		e = &apiError{Code: codeUpstreamTimeout, Message: "the movie catalogue did not answer in time: giving up after " + tries}
	}
	if last != nil && last.retryAfter > 0 {
		e.RetryAfter = strconv.FormatInt(int64((last.retryAfter+time.Second-1)/time.Second), 10)
	}
	return e
}

// wait is how long to wait after the n-th failed attempt: the jittered
// backoff, or the catalogue's Retry-After when that is longer, never more
// than maxBackoff.
func (c *catalogue) wait(n int, retryAfter time.Duration) time.Duration {
	return min(max(backoff(n, c.rand()), retryAfter), maxBackoff)
}

// backoff returns the wait after the n-th failed attempt (n >= 1) for a
// random r in [0, 1): an exponential step of baseBackoff*2^(n-1), capped at
// maxBackoff, with "equal jitter": half the step is fixed and half random,
// so the wait lies in [step/2, step). The fixed half keeps a minimum
// spacing from a failing catalogue; the random half spreads the retries of
// many requests so that they do not arrive together.
func backoff(n int, r float64) time.Duration {
	step := maxBackoff
	if n < 1 {
		n = 1
	}
	if n <= 30 { // beyond that the shift would overflow; the cap applies anyway
		step = min(baseBackoff<<(n-1), maxBackoff)
	}
	half := step / 2
	return half + time.Duration(r*float64(step-half))
}

// attempt makes one catalogue request, limited to cfg.Timeout. It returns
// the page, or why the attempt failed and whether retrying can help.
func (c *catalogue) attempt(ctx context.Context, page int) (cataloguePage, *attemptFailure) {
	actx, cancel := context.WithTimeout(ctx, c.cfg.Timeout)
	defer cancel()

	u := *c.base
	u.User = nil // the credentials go in the Authorization header only
	q := u.Query()
	q.Set("page", strconv.Itoa(page))
	u.RawQuery = q.Encode()
	req, err := http.NewRequestWithContext(actx, http.MethodGet, u.String(), nil)
	if err != nil {
		return cataloguePage{}, &attemptFailure{class: "request", err: fmt.Errorf("build catalogue request: %w", err), retryAfter: -1,
			final: newError(codeUnavailable, "the movie catalogue URL is not valid: check MOVIES_API_URL")}
	}
	req.SetBasicAuth(c.cfg.Username, c.cfg.Password)
	req.Header.Set("Accept", "application/json")

	resp, err := c.client.Do(req)
	if err != nil {
		return cataloguePage{}, transportFailure(actx, err)
	}
	defer resp.Body.Close()

	switch {
	case resp.StatusCode >= 200 && resp.StatusCode < 300:
		return c.readPage(actx, resp)
	case resp.StatusCode == http.StatusNotFound:
		drain(resp.Body)
		return cataloguePage{}, &attemptFailure{class: "status", status: resp.StatusCode, retryAfter: -1,
			final: newError(codeNotFound, "page not found")}
	case resp.StatusCode == http.StatusUnauthorized || resp.StatusCode == http.StatusForbidden:
		drain(resp.Body)
		// Retrying cannot fix credentials, and hammering the catalogue
		// with wrong ones may get the account locked.
		return cataloguePage{}, &attemptFailure{class: "status", status: resp.StatusCode, retryAfter: -1,
			final: newError(codeUpstream, "the movie catalogue rejected our credentials: check MOVIES_API_USERNAME and MOVIES_API_PASSWORD")}
	case resp.StatusCode == http.StatusTooManyRequests ||
		(resp.StatusCode >= 500 && resp.StatusCode != http.StatusNotImplemented):
		drain(resp.Body)
		return cataloguePage{}, &attemptFailure{class: "status", status: resp.StatusCode,
			retryAfter: parseRetryAfter(resp.Header.Get("Retry-After"), c.now())}
	default:
		// 501, another 4xx or an unfollowed 3xx: the same request will
		// get the same answer.
		drain(resp.Body)
		return cataloguePage{}, &attemptFailure{class: "status", status: resp.StatusCode, retryAfter: -1,
			final: newError(codeUpstream, fmt.Sprintf("the movie catalogue refused the request (status %d)", resp.StatusCode))}
	}
}

// readPage reads and decodes a successful response. A body that is cut
// off, is not JSON, or is the catalogue's {"is_success": false} error
// shape (which it sometimes sends with status 200) is a failed attempt.
func (c *catalogue) readPage(ctx context.Context, resp *http.Response) (cataloguePage, *attemptFailure) {
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxPageBytes+1))
	if err != nil {
		return cataloguePage{}, transportFailure(ctx, fmt.Errorf("read catalogue page: %w", err))
	}
	if len(body) > maxPageBytes {
		return cataloguePage{}, &attemptFailure{class: "invalid_body", status: resp.StatusCode, retryAfter: -1,
			err:   fmt.Errorf("catalogue page is over %d bytes", maxPageBytes),
			final: newError(codeUpstream, "the movie catalogue sent a page too large to be one")}
	}
	var p cataloguePage
	if err := json.Unmarshal(body, &p); err != nil {
		return cataloguePage{}, &attemptFailure{class: "invalid_body", status: resp.StatusCode, retryAfter: -1,
			err: fmt.Errorf("decode catalogue page: %w", err)}
	}
	if p.IsSuccess != nil && !*p.IsSuccess {
		return cataloguePage{}, &attemptFailure{class: "error_body", status: resp.StatusCode, retryAfter: -1,
			err: errors.New("catalogue answered is_success false")}
	}
	if p.Results == nil && p.Data == nil {
		return cataloguePage{}, &attemptFailure{class: "invalid_body", status: resp.StatusCode, retryAfter: -1,
			err: errors.New("catalogue page has neither results nor data")}
	}
	return p, nil
}

// transportFailure classifies an error with no usable response: a dropped
// connection, a refused dial, or the attempt running out of time. All of
// them are worth another attempt. The URL is left out of the logged error:
// it is the catalogue's, and may say more than the log needs.
func transportFailure(actx context.Context, err error) *attemptFailure {
	var uerr *url.Error
	if errors.As(err, &uerr) {
		err = uerr.Err
	}
	var nerr net.Error
	if errors.Is(actx.Err(), context.DeadlineExceeded) || errors.Is(err, context.DeadlineExceeded) ||
		(errors.As(err, &nerr) && nerr.Timeout()) {
		return &attemptFailure{class: "timeout", err: err, timeout: true, retryAfter: -1}
	}
	return &attemptFailure{class: "network", err: err, retryAfter: -1}
}

// drain reads a little of an unwanted body so that its connection can be
// reused; the caller closes it.
func drain(body io.Reader) {
	io.CopyN(io.Discard, body, drainBytes)
}

// parseRetryAfter reads a Retry-After header, either delay-seconds or an
// HTTP date relative to now. It returns -1 when there is none or it cannot
// be read, and 0 for a date already past.
func parseRetryAfter(v string, now time.Time) time.Duration {
	v = strings.TrimSpace(v)
	if v == "" {
		return -1
	}
	if secs, err := strconv.ParseUint(v, 10, 32); err == nil {
		return time.Duration(secs) * time.Second
	}
	if t, err := http.ParseTime(v); err == nil {
		return max(t.Sub(now), 0)
	}
	return -1
}

// moviesPage is the body of GET /movies/.
type moviesPage struct {
	Count    int64   `json:"count"`
	Next     *string `json:"next"`
	Previous *string `json:"previous"`
	Data     []movie `json:"data"`
}

// handleMovies serves GET /movies/: one page of the catalogue, with its
// next and previous links pointing back at this server.
func (s *server) handleMovies(w http.ResponseWriter, r *http.Request, _ int64) error {
	page, err := pageParam(r.URL.Query())
	if err != nil {
		return err
	}
	if !s.catalogue.Configured() {
		return errCatalogueNotConfigured
	}
	p, err := s.catalogue.Page(r.Context(), page)
	if err != nil {
		return err
	}
	base := moviesBaseURL(r, s.publicURL)
	// A copy: the page may be shared with other requests for it.
	movies := slices.Clone(p.movies())
	for i := range movies {
		if id, ok := canonicalUUID(movies[i].UUID); ok {
			movies[i].UUID = id
		}
	}
	return encode(w, http.StatusOK, moviesPage{
		Count:    p.Count,
		Next:     rewriteLink(p.Next, base),
		Previous: rewriteLink(p.Previous, base),
		Data:     movies,
	})
}

// pageParam reads the page query parameter: absent means 1; anything but
// a positive integer in plain digits is a 400.
func pageParam(q url.Values) (int, error) {
	vs, ok := q["page"]
	if !ok {
		return 1, nil
	}
	n, ok := positiveInt(vs[0])
	if !ok && vs[0] != "" && strings.Trim(vs[0], "0123456789") == "" && strings.Trim(vs[0], "0") != "" {
		// A positive integer too large to be any page: past the end.
		return 0, newError(codeNotFound, "page not found")
	}
	if !ok {
		return 0, &apiError{Code: codeInvalid, Message: "page must be a positive integer",
			Fields: map[string]string{"page": "must be a positive integer"}}
	}
	return n, nil
}

// positiveInt parses s as a positive integer of ASCII digits only (no
// sign, space or fraction), as a page number is written.
func positiveInt(s string) (int, bool) {
	if s == "" || strings.TrimLeft(s, "0123456789") != "" {
		return 0, false
	}
	n, err := strconv.Atoi(s)
	if err != nil || n < 1 {
		return 0, false
	}
	return n, true
}

// moviesBaseURL returns this server's /movies/ URL as its clients reach
// it: from PUBLIC_URL when set (behind a proxy that rewrites the host or
// path), else from the request's Host. The scheme is https when the
// request came over TLS or a proxy says so in X-Forwarded-Proto. Trusting
// that header from anyone is safe here: it only shapes links in the
// answer to the request that carried it.
func moviesBaseURL(r *http.Request, publicURL string) string {
	if publicURL != "" {
		return strings.TrimRight(publicURL, "/") + "/movies/"
	}
	if r.Host == "" {
		return "/movies/"
	}
	scheme := "http"
	proto, _, _ := strings.Cut(r.Header.Get("X-Forwarded-Proto"), ",")
	if r.TLS != nil || strings.EqualFold(strings.TrimSpace(proto), "https") {
		scheme = "https"
	}
	return scheme + "://" + r.Host + "/movies/"
}

// rewriteLink turns one of the catalogue's next/previous links into the
// same page of this server. The page number comes from the link's page
// parameter; a link without one is page 1, as Django REST framework
// writes the previous link of page 2. No link, or one that names no
// usable page, stays null.
func rewriteLink(link *string, base string) *string {
	if link == nil || *link == "" {
		return nil
	}
	u, err := url.Parse(*link)
	if err != nil {
		return nil
	}
	n := 1
	if vs, ok := u.Query()["page"]; ok {
		if n, ok = positiveInt(vs[0]); !ok {
			return nil
		}
	}
	s := base + "?page=" + strconv.Itoa(n)
	return &s
}
