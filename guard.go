package main

import (
	"context"
	"net"
	"net/http"
	"sync"
	"time"

	"golang.org/x/time/rate"
)

// The defences of the two endpoints anyone may call: a per-address rate
// limit, and bounded password hashing that sheds load instead of queueing.

// hashSlots bounds bcrypt work. At most one hash per CPU runs at once
// (more would only make each slower); a request waits for a slot at most
// maxWait and is otherwise refused, so that a flood is answered with 503s
// at once instead of with answers seconds late. Registrations may hold at
// most half the slots (at least one), so a login always finds room among
// the others: a flood of registrations never starves logins.
type hashSlots struct {
	all      chan struct{}
	register chan struct{}
	maxWait  time.Duration
}

// maxHashWait is how long a register or login waits for a hashing slot
// before it is refused with 503.
const maxHashWait = 100 * time.Millisecond

func newHashSlots(cpus int, maxWait time.Duration) *hashSlots {
	cpus = max(cpus, 1)
	return &hashSlots{
		all:      make(chan struct{}, cpus),
		register: make(chan struct{}, max(cpus/2, 1)),
		maxWait:  maxWait,
	}
}

// errHashingBusy answers a register or login refused for lack of a slot.
var errHashingBusy = &apiError{Code: codeUnavailable, Message: "the server is busy hashing passwords: try again in a moment", RetryAfter: "1"}

// run runs fn, a bcrypt computation, once a slot is free. It returns
// errHashingBusy when none frees up within maxWait, or ctx's error when
// the request ends first.
func (h *hashSlots) run(ctx context.Context, registration bool, fn func()) error {
	t := time.NewTimer(h.maxWait)
	defer t.Stop()
	if registration {
		if err := acquire(ctx, t, h.register); err != nil {
			return err
		}
		defer func() { <-h.register }()
	}
	if err := acquire(ctx, t, h.all); err != nil {
		return err
	}
	defer func() { <-h.all }()
	if err := ctx.Err(); err != nil {
		return err
	}
	fn()
	return nil
}

// acquire takes a slot of sem, unless t fires or ctx ends first.
func acquire(ctx context.Context, t *time.Timer, sem chan struct{}) error {
	select {
	case sem <- struct{}{}:
		return nil
	case <-t.C:
		return errHashingBusy
	case <-ctx.Done():
		return ctx.Err()
	}
}

// addressLimiter allows each client address perMinute requests a minute
// (a token bucket of that size, refilled evenly). Its memory is bounded:
// at most maxAddresses buckets are kept; when that many are, those idle
// for a minute (full again, so forgetting them changes nothing) are
// dropped, and if none is, all are: a flood from that many addresses at
// once gets one fresh minute.
type addressLimiter struct {
	perMinute    int
	maxAddresses int
	now          func() time.Time

	mu      sync.Mutex
	buckets map[string]*addressBucket
}

type addressBucket struct {
	limiter *rate.Limiter
	seen    time.Time
}

// maxAddresses bounds the rate limiter's memory (about 200 bytes each).
const maxAddresses = 100_000

// newAddressLimiter returns a limiter of perMinute requests per address,
// or nil (no limit) when perMinute is 0.
func newAddressLimiter(perMinute, maxAddresses int, now func() time.Time) *addressLimiter {
	if perMinute <= 0 {
		return nil
	}
	return &addressLimiter{perMinute: perMinute, maxAddresses: maxAddresses, now: now, buckets: map[string]*addressBucket{}}
}

// allow takes one request of addr's allowance, or returns how long until
// there is one.
func (l *addressLimiter) allow(addr string) (ok bool, retryAfter time.Duration) {
	if l == nil {
		return true, 0
	}
	now := l.now()
	l.mu.Lock()
	defer l.mu.Unlock()
	b := l.buckets[addr]
	if b == nil {
		if len(l.buckets) >= l.maxAddresses {
			l.sweep(now)
		}
		b = &addressBucket{limiter: rate.NewLimiter(rate.Limit(float64(l.perMinute)/60), l.perMinute)}
		l.buckets[addr] = b
	}
	b.seen = now
	r := b.limiter.ReserveN(now, 1)
	if d := r.DelayFrom(now); d > 0 {
		r.CancelAt(now)
		return false, d
	}
	return true, 0
}

// sweep drops the buckets idle for a minute; when that frees less than a
// tenth of them, it drops them all, so that a flood of addresses costs a
// sweep per tenth of the bound, not one per new address.
func (l *addressLimiter) sweep(now time.Time) {
	for addr, b := range l.buckets {
		if now.Sub(b.seen) >= time.Minute {
			delete(l.buckets, addr)
		}
	}
	if len(l.buckets) > l.maxAddresses-l.maxAddresses/10 {
		clear(l.buckets)
	}
}

// clientAddress is the address a rate limit applies to: the connection's
// peer, an IPv6 one by its /64 (what one host is usually given).
// X-Forwarded-For is not trusted, since any client can send it.
func clientAddress(r *http.Request) string {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		host = r.RemoteAddr
	}
	if ip := net.ParseIP(host); ip != nil && ip.To4() == nil {
		return ip.Mask(net.CIDRMask(64, 128)).String() + "/64"
	}
	return host
}
