package main

import (
	"log/slog"
	"net/http"
	"time"
)

// accessRecorder is the ResponseWriter that the access log and the
// metrics read: it remembers the final status a handler wrote and counts
// the body bytes. Unwrap lets http.ResponseController reach the
// connection's own writer, for Flush and deadlines.
type accessRecorder struct {
	http.ResponseWriter
	status int   // the final status written; 0 while none is
	bytes  int64 // body bytes written
}

// recordAccess returns a recorder of w, or w itself when it already is
// one, so that the access log and the metrics share one wrapper whichever
// of them is outside.
func recordAccess(w http.ResponseWriter) *accessRecorder {
	if ar, ok := w.(*accessRecorder); ok {
		return ar
	}
	return &accessRecorder{ResponseWriter: w}
}

// WriteHeader records the first final status. An informational 1xx (103
// Early Hints, say) may come before it and is not the answer's status;
// 101 Switching Protocols is final.
func (ar *accessRecorder) WriteHeader(code int) {
	if ar.status == 0 && (code >= 200 || code == http.StatusSwitchingProtocols) {
		ar.status = code
	}
	ar.ResponseWriter.WriteHeader(code)
}

// Write writes body bytes, after an implicit 200 when no status was
// written, as net/http does.
func (ar *accessRecorder) Write(b []byte) (int, error) {
	if ar.status == 0 {
		ar.status = http.StatusOK
	}
	n, err := ar.ResponseWriter.Write(b)
	ar.bytes += int64(n)
	return n, err
}

// Unwrap returns the wrapped writer, for http.ResponseController.
func (ar *accessRecorder) Unwrap() http.ResponseWriter { return ar.ResponseWriter }

// code is the status the client got: the one written, or the 200 that
// net/http sends for a handler that wrote nothing.
func (ar *accessRecorder) code() int {
	if ar.status == 0 {
		return http.StatusOK
	}
	return ar.status
}

// logAccess writes the one log line of a finished request: method, route
// (routeLabel of the pattern that matched), path, status, duration and
// body bytes. The request ID comes from r's context through the
// withRequestID log handler, like every other line of the request.
func logAccess(logger *slog.Logger, r *http.Request, ar *accessRecorder, d time.Duration) {
	logger.LogAttrs(r.Context(), slog.LevelInfo, "request",
		slog.String("method", r.Method),
		slog.String("route", routeLabel(r.Pattern)),
		slog.String("path", r.URL.Path),
		slog.Int("status", ar.code()),
		slog.Float64("duration_ms", float64(d.Microseconds())/1000),
		slog.Int64("bytes", ar.bytes))
}
