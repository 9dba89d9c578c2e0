package main

import (
	"context"
	"log/slog"
	"net/http"
	"sync/atomic"
	"time"
)

// readiness answers GET /readyz: whether this instance should be sent
// traffic. It is not ready while it drains for shutdown, or while its
// database does not answer. The catalogue's health never counts: an
// instance cannot cure a catalogue outage, and taking every instance out
// for one would turn a degraded /movies/ into a total outage.
//
// The zero value is ready to use.
type readiness struct {
	draining atomic.Bool

	// timeout bounds one database check; 0 means defaultReadyTimeout.
	timeout time.Duration
	// logger, when set, records why a check failed; the client is only
	// told in general terms.
	logger *slog.Logger
}

// defaultReadyTimeout is how long a readiness check waits for the
// database: long enough for a busy pool, short enough for a probe.
const defaultReadyTimeout = time.Second

// readyRetryAfter is the Retry-After of a 503 from /readyz, in seconds.
const readyRetryAfter = "1"

// readyBody is the JSON body of /readyz.
type readyBody struct {
	Status string `json:"status"`
	Reason string `json:"reason,omitempty"`
}

// drain turns /readyz to 503 at once and for good. run calls it when
// SIGINT or SIGTERM arrives, before Shutdown, so that load balancers stop
// sending requests while those in flight finish.
func (rd *readiness) drain() { rd.draining.Store(true) }

// handler serves GET /readyz: 200 {"status":"ready"} when not draining and
// ping succeeds within the timeout; else 503 {"status":"not ready",
// "reason":…} with Retry-After. ping is the caller's check: a database
// query (Store.Ping), or one that also proves the database can be written.
func (rd *readiness) handler(ping func(ctx context.Context) error) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		if rd.draining.Load() {
			rd.notReady(w, "shutting down")
			return
		}
		timeout := rd.timeout
		if timeout <= 0 {
			timeout = defaultReadyTimeout
		}
		ctx, cancel := context.WithTimeout(r.Context(), timeout)
		err := ping(ctx)
		cancel()
		if err != nil {
			if rd.logger != nil && r.Context().Err() == nil {
				rd.logger.WarnContext(r.Context(), "readiness check failed", "err", err)
			}
			rd.notReady(w, "the database does not answer")
			return
		}
		writeJSON(w, http.StatusOK, []byte(`{"status":"ready"}`+"\n"))
	}
}

// notReady answers 503 with the reason.
func (rd *readiness) notReady(w http.ResponseWriter, reason string) {
	w.Header().Set("Retry-After", readyRetryAfter)
	encode(w, http.StatusServiceUnavailable, readyBody{Status: "not ready", Reason: reason})
}
