package main

import (
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/http/pprof"
	"time"

	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// serveAdmin serves the operators' endpoints on a listener of their own,
// apart from the API: GET /metrics when m is not nil, and the runtime
// profiles under /debug/pprof/ when profiles is set. These requests never
// pass through the API's handler, so the request counter does not count
// them and the API never serves them.
//
// PPROF_ADDR may name the same address as METRICS_ADDR: then one listener
// serves both (one call with profiles set); on different addresses each
// gets its own call, serveAdmin(pprofAddr, nil, true, logger) standing in
// for servePprof.
//
// stop closes the listener and every connection, and returns once the
// listener's goroutine has ended.
func serveAdmin(addr string, m *metrics, profiles bool, logger *slog.Logger) (stop func(), err error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("listen for admin endpoints on %s: %w", addr, err)
	}
	srv := &http.Server{
		Handler:           adminHandler(m, profiles, logger),
		ReadHeaderTimeout: 5 * time.Second,
		IdleTimeout:       120 * time.Second,
		// No WriteTimeout: a CPU profile or trace streams for as long as
		// it was asked to run.
		ErrorLog: slog.NewLogLogger(logger.Handler(), slog.LevelWarn),
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		if err := srv.Serve(ln); !errors.Is(err, http.ErrServerClosed) {
			logger.Error("admin listener failed", "addr", ln.Addr().String(), "err", err)
		}
	}()
	logger.Info("serving admin endpoints", "addr", ln.Addr().String(), "metrics", m != nil, "pprof", profiles)
	return func() {
		srv.Close()
		<-done
	}, nil
}

// adminHandler routes the admin listener: /metrics from m's own registry
// and, when profiles is set, net/http/pprof.
func adminHandler(m *metrics, profiles bool, logger *slog.Logger) http.Handler {
	mux := http.NewServeMux()
	if m != nil {
		mux.Handle("GET /metrics", promhttp.HandlerFor(m.reg, promhttp.HandlerOpts{
			ErrorLog: slog.NewLogLogger(logger.Handler(), slog.LevelError),
			// A collector that fails leaves out its own metrics, not
			// every other one.
			ErrorHandling: promhttp.ContinueOnError,
			// Scrapes are few; more at once are refused, not queued.
			MaxRequestsInFlight: 8,
			Timeout:             10 * time.Second,
		}))
	}
	if profiles {
		mux.HandleFunc("/debug/pprof/", pprof.Index)
		mux.HandleFunc("/debug/pprof/cmdline", pprof.Cmdline)
		mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
		mux.HandleFunc("/debug/pprof/symbol", pprof.Symbol)
		mux.HandleFunc("/debug/pprof/trace", pprof.Trace)
	}
	return mux
}
