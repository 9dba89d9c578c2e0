package main

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"time"
)

// What /movies/ answers while the catalogue fails: which failures count
// against the breaker, which may be answered with a remembered page, and
// the headers and errors of those answers. The mechanics are breaker and
// stalePages.

// staleCacheStatus is the Cache-Status header (RFC 9211) of an answer
// made from a remembered page because the catalogue failed.
const staleCacheStatus = "movies; hit; detail=upstream-error"

// fetchOutcome is how one shared catalogue call ended, for the breaker.
// ctx is the call's own context, read before its owner cancels it. A page,
// or a 404 for a page past the end, is a success: the catalogue answered.
// A call cut short because every request waiting on it went away says
// nothing about the catalogue. Anything else is a failure, a refusal of
// our credentials included: it gives no page either, and a breaker that
// opens then also stops the account being hammered with them.
func fetchOutcome(ctx context.Context, err error) breakerOutcome {
	if err == nil {
		return outcomeSuccess
	}
	if errors.Is(ctx.Err(), context.Canceled) {
		return outcomeAbandoned
	}
	if e, ok := errors.AsType[*apiError](err); ok && e.Code == codeNotFound {
		return outcomeSuccess
	}
	return outcomeFailure
}

// staleFallback reports whether err, from fetching a page, may be
// answered with a remembered copy of that page instead: when the
// catalogue failed or counts as down, not when it said the page does not
// exist. errRequestEnded is one of them: its client has usually gone and
// never sees the answer, but when the shared call ran out of its budget
// the requests still waiting get the remembered page.
func staleFallback(err error) bool {
	e, ok := errors.AsType[*apiError](err)
	if !ok {
		return false
	}
	switch e.Code {
	case codeUpstream, codeUpstreamTimeout, codeUnavailable, codeUpstreamUnavailable:
		return true
	}
	return false
}

// staleAnswerHeaders returns the Age and Cache-Status headers of an
// answer made from a remembered page fetched age ago. Age is in whole
// seconds, rounded down (RFC 9111, section 5.1).
func staleAnswerHeaders(age time.Duration) (ageHeader, cacheStatus string) {
	return strconv.FormatInt(int64(max(age, 0)/time.Second), 10), staleCacheStatus
}

// catalogueDownError answers /movies/ while the breaker refuses calls and
// no remembered page can stand in. Retry-After is the cooldown left in
// whole seconds, rounded up and at least 1, as wait is 0 while the probe
// is out: its result decides what the next request gets.
func catalogueDownError(wait time.Duration) *apiError {
	secs := max(int64((wait+time.Second-1)/time.Second), 1)
	in := "1 second"
	if secs != 1 {
		in = fmt.Sprintf("%d seconds", secs)
	}
	return &apiError{
		Code:       codeUpstreamUnavailable,
		Message:    "the movie catalogue is unavailable: try again in " + in,
		RetryAfter: strconv.FormatInt(secs, 10),
	}
}
