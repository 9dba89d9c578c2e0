package main

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// The catalogue's retry policy, apart from the loop that sends, drains
// and sleeps (catalogue.fetch): what an attempt's outcome means, how long
// to wait, and what to answer when the attempts run out. Pure functions of
// their arguments, table-tested without a network.

// verdict is what one attempt's outcome means for the retry loop. Its err
// is for the log only: the client never sees the catalogue's own text.
type verdict struct {
	class   string // ok, status, timeout, network, invalid_body, error_body
	status  int    // the catalogue's HTTP status; 0 when there was no response
	err     error
	timeout bool // the attempt ran out of time
	// retryAfter is the catalogue's Retry-After, when hasRetryAfter.
	retryAfter    time.Duration
	hasRetryAfter bool
	final         *apiError // set when retrying cannot help: answer this
}

func (v verdict) logAttrs(page, n, maxAttempts int) []any {
	attrs := []any{"page", page, "attempt", n, "max_attempts", maxAttempts, "class", v.class}
	if v.status != 0 {
		attrs = append(attrs, "status", v.status)
	}
	if v.err != nil {
		attrs = append(attrs, "err", v.err.Error())
	}
	return attrs
}

// classify decides what an answer without a usable page means: a status
// other than 2xx (with its header), or, when status is 0, the transport
// error err. It is the whole retry policy: network errors, timeouts, 429
// and 5xx but 501 are worth another attempt; 404 is the page's own answer;
// 401/403 cannot be fixed by retrying (and retrying wrong credentials may
// lock the account); 501, other 4xx and an unfollowed 3xx will get the
// same answer again.
func classify(status int, header http.Header, err error, now time.Time) verdict {
	if status == 0 {
		var nerr net.Error
		if errors.Is(err, context.DeadlineExceeded) || (errors.As(err, &nerr) && nerr.Timeout()) {
			return verdict{class: "timeout", err: err, timeout: true}
		}
		return verdict{class: "network", err: err}
	}
	v := verdict{class: "status", status: status}
	switch {
	case status == http.StatusNotFound:
		v.final = newError(codeNotFound, "page not found")
	case status == http.StatusUnauthorized || status == http.StatusForbidden:
		v.final = newError(codeUpstream, "the movie catalogue refused this server's credentials")
	case status == http.StatusTooManyRequests || (status >= 500 && status != http.StatusNotImplemented):
		v.retryAfter, v.hasRetryAfter = parseRetryAfter(header.Get("Retry-After"), now)
	default:
		v.final = newError(codeUpstream, fmt.Sprintf("the movie catalogue refused the request (status %d)", status))
	}
	return v
}

// tooLongWait is the answer when the catalogue asks for a wait longer than
// a request should be held open: 503, passing its Retry-After on.
func tooLongWait(d time.Duration) *apiError {
	secs := retryAfterSeconds(d)
	return &apiError{
		Code:       codeUnavailable,
		Message:    fmt.Sprintf("the movie catalogue is busy and asks to wait %s seconds: try again later", secs),
		RetryAfter: secs,
	}
}

// retryAfterSeconds writes d as a Retry-After value: whole seconds,
// rounded up, at least 1.
func retryAfterSeconds(d time.Duration) string {
	return strconv.FormatInt(max(1, int64((d+time.Second-1)/time.Second)), 10)
}

// giveUp is the error once every attempt has failed: 504 when the last
// one ran out of time, else 502. A Retry-After from the last answer is
// passed on, as the best guess of when to try again.
func giveUp(last verdict, attempts int) *apiError {
	tries := fmt.Sprintf("%d attempts", attempts)
	if attempts == 1 {
		tries = "1 attempt"
	}
	e := &apiError{Code: codeUpstream, Message: "the movie catalogue is unavailable: giving up after " + tries}
	if last.timeout {
		e = &apiError{Code: codeUpstreamTimeout, Message: "the movie catalogue did not answer in time: giving up after " + tries}
	}
	if last.hasRetryAfter && last.retryAfter > 0 {
		e.RetryAfter = retryAfterSeconds(last.retryAfter)
	}
	return e
}

// wait is how long to wait after the n-th failed attempt: the jittered
// backoff, or the catalogue's Retry-After when that is longer, never more
// than maxBackoff.
func (c *catalogue) wait(n int, v verdict) time.Duration {
	d := backoff(n, c.rand())
	if v.hasRetryAfter {
		d = max(d, v.retryAfter)
	}
	return min(d, maxBackoff)
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

// parseRetryAfter reads a Retry-After header, either delay-seconds or an
// HTTP date relative to now (0 for a date already past). ok is false when
// there is none or it cannot be read.
func parseRetryAfter(v string, now time.Time) (d time.Duration, ok bool) {
	v = strings.TrimSpace(v)
	if v == "" {
		return 0, false
	}
	if secs, err := strconv.ParseUint(v, 10, 32); err == nil {
		return time.Duration(secs) * time.Second, true
	}
	if t, err := http.ParseTime(v); err == nil {
		return max(t.Sub(now), 0), true
	}
	return 0, false
}
