package main

import (
	"sync"
	"testing"
	"time"
)

// testClock is a clock that moves only when told to.
type testClock struct {
	mu sync.Mutex
	t  time.Time
}

func newTestClock() *testClock {
	return &testClock{t: time.Date(2025, 3, 14, 15, 9, 26, 0, time.UTC)}
}

func (c *testClock) now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *testClock) advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

// breakerCall makes one call through b that ends with outcome, and reports
// whether b let it through.
func breakerCall(b *breaker, outcome breakerOutcome) bool {
	t, _, ok := b.acquire()
	if ok {
		b.done(t, outcome)
	}
	return ok
}

// openBreaker returns a breaker with threshold 3 and a 10s cooldown that
// has just opened.
func openBreaker(t *testing.T) (*breaker, *testClock) {
	t.Helper()
	clock := newTestClock()
	b := newBreaker(3, 10*time.Second, clock.now)
	for range 3 {
		breakerCall(b, outcomeFailure)
	}
	if got, want := b.state(), breakerOpen; got != want {
		t.Fatalf("after 3 failures: state %v, want %v", got, want)
	}
	return b, clock
}

func TestBreakerCountsFailuresInARow(t *testing.T) {
	const (
		S = outcomeSuccess
		F = outcomeFailure
		A = outcomeAbandoned
	)
	tests := []struct {
		name      string
		threshold int
		outcomes  []breakerOutcome
		want      breakerState
	}{
		{"threshold 0 never opens", 0, []breakerOutcome{F, F, F, F, F, F, F, F, F, F}, breakerClosed},
		{"one short of the threshold", 3, []breakerOutcome{F, F}, breakerClosed},
		{"exactly the threshold", 3, []breakerOutcome{F, F, F}, breakerOpen},
		{"threshold 1", 1, []breakerOutcome{F}, breakerOpen},
		{"a success resets the run", 3, []breakerOutcome{F, F, S, F, F}, breakerClosed},
		{"a new run after a success", 3, []breakerOutcome{F, F, S, F, F, F}, breakerOpen},
		{"abandoned calls neither reset nor count", 3, []breakerOutcome{F, A, F, A, A}, breakerClosed},
		{"abandoned calls in a run of failures", 3, []breakerOutcome{F, A, F, A, F}, breakerOpen},
		{"successes only", 3, []breakerOutcome{S, S, S, S}, breakerClosed},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b := newBreaker(tt.threshold, 10*time.Second, newTestClock().now)
			for i, o := range tt.outcomes {
				if !breakerCall(b, o) {
					t.Fatalf("call %d refused while closed", i+1)
				}
			}
			if got := b.state(); got != tt.want {
				t.Fatalf("state: got %v, want %v", got, tt.want)
			}
			_, _, ok := b.acquire()
			if got, want := ok, tt.want == breakerClosed; got != want {
				t.Fatalf("next call let through: got %v, want %v", got, want)
			}
		})
	}
}

func TestBreakerOpenRefusesWithCooldownLeft(t *testing.T) {
	b, clock := openBreaker(t)
	end := clock.now().Add(10 * time.Second)
	for _, left := range []time.Duration{10 * time.Second, 7 * time.Second, time.Second, time.Millisecond} {
		clock.advance(end.Sub(clock.now()) - left)
		ticket, wait, ok := b.acquire()
		if ok {
			t.Fatalf("%v before the end of the cooldown: call let through", left)
		}
		if wait != left {
			t.Fatalf("%v before the end of the cooldown: wait %v, want %v", left, wait, left)
		}
		b.done(ticket, outcomeSuccess) // a refused ticket changes nothing
		if got, want := b.state(), breakerOpen; got != want {
			t.Fatalf("%v before the end of the cooldown: state %v, want %v", left, got, want)
		}
	}
}

func TestBreakerLetsOneProbeThrough(t *testing.T) {
	b, clock := openBreaker(t)
	clock.advance(10 * time.Second)
	if got, want := b.state(), breakerHalfOpen; got != want {
		t.Fatalf("after the cooldown: state %v, want %v", got, want)
	}

	const callers = 50
	var (
		wg      sync.WaitGroup
		mu      sync.Mutex
		probes  []breakerTicket
		refused int
	)
	start := make(chan struct{})
	for range callers {
		wg.Go(func() {
			<-start
			ticket, wait, ok := b.acquire()
			mu.Lock()
			defer mu.Unlock()
			if !ok {
				refused++
				if wait != 0 {
					t.Errorf("refused while the probe is out: wait %v, want 0", wait)
				}
				return
			}
			probes = append(probes, ticket)
		})
	}
	close(start)
	wg.Wait()
	if got, want := len(probes), 1; got != want {
		t.Fatalf("calls let through after the cooldown: got %d, want %d", got, want)
	}
	if !probes[0].probe {
		t.Fatalf("the call let through is not marked as the probe")
	}
	if got, want := refused, callers-1; got != want {
		t.Fatalf("calls refused: got %d, want %d", got, want)
	}
	if _, _, ok := b.acquire(); ok {
		t.Fatalf("a second call let through while the probe is out")
	}
}

func TestBreakerProbeOutcome(t *testing.T) {
	tests := []struct {
		name    string
		outcome breakerOutcome
		want    breakerState
		// wantWait is how long the next caller is told to wait.
		wantWait time.Duration
	}{
		{"success closes", outcomeSuccess, breakerClosed, 0},
		{"failure opens for a full cooldown", outcomeFailure, breakerOpen, 10 * time.Second},
		{"abandoned frees the probe slot", outcomeAbandoned, breakerHalfOpen, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b, clock := openBreaker(t)
			clock.advance(12 * time.Second)
			probe, _, ok := b.acquire()
			if !ok || !probe.probe {
				t.Fatalf("after the cooldown: got ok %v probe %v, want a probe", ok, probe.probe)
			}
			clock.advance(3 * time.Second) // the probe takes a while
			b.done(probe, tt.outcome)
			if got := b.state(); got != tt.want {
				t.Fatalf("state: got %v, want %v", got, tt.want)
			}
			next, wait, ok := b.acquire()
			if got, want := ok, tt.wantWait == 0; got != want {
				t.Fatalf("next call let through: got %v, want %v", got, want)
			}
			if wait != tt.wantWait {
				t.Fatalf("next call's wait: got %v, want %v", wait, tt.wantWait)
			}
			if got, want := next.probe, tt.want == breakerHalfOpen; got != want {
				t.Fatalf("next call is a probe: got %v, want %v", got, want)
			}
		})
	}
}

func TestBreakerClosedByProbeCountsAfresh(t *testing.T) {
	b, clock := openBreaker(t)
	clock.advance(10 * time.Second)
	probe, _, _ := b.acquire()
	b.done(probe, outcomeSuccess)
	breakerCall(b, outcomeFailure)
	breakerCall(b, outcomeFailure)
	if got, want := b.state(), breakerClosed; got != want {
		t.Fatalf("2 failures after closing: state %v, want %v", got, want)
	}
	breakerCall(b, outcomeFailure)
	if got, want := b.state(), breakerOpen; got != want {
		t.Fatalf("3 failures after closing: state %v, want %v", got, want)
	}
}

func TestBreakerIgnoresCallsFromBeforeItOpened(t *testing.T) {
	clock := newTestClock()
	b := newBreaker(3, 10*time.Second, clock.now)
	var inFlight []breakerTicket
	for range 5 {
		ticket, _, _ := b.acquire()
		inFlight = append(inFlight, ticket)
	}
	for _, ticket := range inFlight[:3] {
		b.done(ticket, outcomeFailure)
	}
	b.done(inFlight[3], outcomeSuccess) // must not close it
	b.done(inFlight[4], outcomeFailure)
	clock.advance(9 * time.Second)
	_, wait, ok := b.acquire()
	if ok || wait != time.Second {
		t.Fatalf("9s after opening: got ok %v wait %v, want refused with 1s left", ok, wait)
	}

	// A probe ticket handed back twice cannot end a later probe.
	clock.advance(time.Second)
	first, _, _ := b.acquire()
	b.done(first, outcomeAbandoned)
	second, _, ok := b.acquire()
	if !ok {
		t.Fatalf("no probe after the first was abandoned")
	}
	b.done(first, outcomeFailure)
	if got, want := b.state(), breakerHalfOpen; got != want {
		t.Fatalf("after a stale probe ticket: state %v, want %v", got, want)
	}
	b.done(second, outcomeSuccess)
	if got, want := b.state(), breakerClosed; got != want {
		t.Fatalf("after the probe succeeded: state %v, want %v", got, want)
	}
}

func TestBreakerStateString(t *testing.T) {
	for s, want := range map[breakerState]string{breakerClosed: "closed", breakerOpen: "open", breakerHalfOpen: "half_open"} {
		if got := s.String(); got != want {
			t.Errorf("%d: got %q, want %q", s, got, want)
		}
	}
}
