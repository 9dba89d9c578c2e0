package main

import (
	"sync"
	"time"
)

// breakerState is what a breaker currently lets through, as metrics show it.
type breakerState int

const (
	// breakerClosed lets every catalogue call through.
	breakerClosed breakerState = iota
	// breakerOpen lets no catalogue call through until its cooldown ends.
	breakerOpen
	// breakerHalfOpen lets one probe through; others are refused until
	// that probe is done.
	breakerHalfOpen
)

// String names the state for logs and metrics labels.
func (s breakerState) String() string {
	switch s {
	case breakerClosed:
		return "closed"
	case breakerOpen:
		return "open"
	case breakerHalfOpen:
		return "half_open"
	}
	return "unknown"
}

// breakerOutcome is how one catalogue call let through by a breaker ended.
type breakerOutcome int

const (
	// outcomeSuccess: the catalogue answered (a page, or a 404 for a page
	// past the end).
	outcomeSuccess breakerOutcome = iota
	// outcomeFailure: the call gave up without an answer from a working
	// catalogue.
	outcomeFailure
	// outcomeAbandoned: nobody wanted the answer any more and the call
	// was cut short. It says nothing about the catalogue.
	outcomeAbandoned
)

// String names the outcome for logs and test failures.
func (o breakerOutcome) String() string {
	switch o {
	case outcomeSuccess:
		return "success"
	case outcomeFailure:
		return "failure"
	case outcomeAbandoned:
		return "abandoned"
	}
	return "unknown"
}

// breakerTicket is a breaker's permission for one catalogue call. The
// zero ticket, from a refused acquire, is safe to hand back to done.
type breakerTicket struct {
	gen   uint64 // the breaker's generation when the ticket was given
	probe bool   // the call is the one probe of a half-open breaker
}

// breaker is a circuit breaker for the catalogue: after threshold calls
// in a row that failed, it counts the catalogue as down for cooldown and
// lets no call through; then it lets one probe through, whose success
// closes it and whose failure opens it for another full cooldown.
//
// Invariant: while the breaker is not closed, at most one catalogue call
// is let through at a time, and none before the cooldown since it last
// opened has passed. It holds because the breaker is in exactly one of
// three states, read under mu: closed (every acquire succeeds, failures
// in a row are counted), open (every acquire is refused until openUntil)
// and half-open (openUntil has passed: the first acquire takes the one
// probe slot, and every other is refused until that probe's ticket comes
// back). Every change of state, and every probe handed out, advances a
// generation; a ticket from an older generation changes nothing, so the
// calls still in flight when the breaker opened can neither close it nor
// prolong it, and a ticket handed back twice cannot end a later probe.
// Each acquire that succeeds must be followed by exactly one done.
type breaker struct {
	threshold int           // failures in a row that open it; 0: never opens
	cooldown  time.Duration // how long it stays open
	now       func() time.Time

	mu        sync.Mutex
	gen       uint64    // advances on every change of state and every probe
	failures  int       // failures in a row while closed
	open      bool      // open or half-open
	openUntil time.Time // when an open breaker turns half-open
	probing   bool      // a half-open breaker's probe is out
}

// newBreaker returns a closed breaker. A threshold of 0 or less makes one
// that never opens.
func newBreaker(threshold int, cooldown time.Duration, now func() time.Time) *breaker {
	return &breaker{threshold: max(threshold, 0), cooldown: max(cooldown, 0), now: now, gen: 1}
}

// acquire asks to make one catalogue call. When ok, the call may go and
// its ticket must be handed back to done once the call has ended. When
// not ok, no call may be made: wait is how long the breaker stays open,
// 0 while a probe is out (its result is due shortly).
func (b *breaker) acquire() (t breakerTicket, wait time.Duration, ok bool) {
	if b.threshold == 0 {
		return breakerTicket{}, 0, true
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	if !b.open {
		return breakerTicket{gen: b.gen}, 0, true
	}
	if now := b.now(); now.Before(b.openUntil) {
		return breakerTicket{}, b.openUntil.Sub(now), false
	}
	if b.probing {
		return breakerTicket{}, 0, false
	}
	b.probing = true
	b.gen++
	return breakerTicket{gen: b.gen, probe: true}, 0, true
}

// done records how the call of ticket t ended.
func (b *breaker) done(t breakerTicket, outcome breakerOutcome) {
	if b.threshold == 0 {
		return
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	if t.gen != b.gen {
		return // from before the last change of state
	}
	switch {
	case t.probe && outcome == outcomeSuccess:
		b.gen++
		b.open, b.probing, b.failures = false, false, 0
	case t.probe && outcome == outcomeFailure:
		b.openLocked()
	case t.probe: // abandoned: the next acquire may probe
		b.gen++
		b.probing = false
	case outcome == outcomeSuccess:
		b.failures = 0
	case outcome == outcomeFailure:
		b.failures++
		if b.failures >= b.threshold {
			b.openLocked()
		}
	}
}

// openLocked opens the breaker for a full cooldown from now.
func (b *breaker) openLocked() {
	b.gen++
	b.open, b.probing, b.failures = true, false, 0
	b.openUntil = b.now().Add(b.cooldown)
}

// state reports the breaker's state: half-open once the cooldown has
// passed, whether or not the probe is out.
func (b *breaker) state() breakerState {
	if b.threshold == 0 {
		return breakerClosed
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	switch {
	case !b.open:
		return breakerClosed
	case b.now().Before(b.openUntil):
		return breakerOpen
	}
	return breakerHalfOpen
}
