package main

import (
	"io"
	"log/slog"
	"net/http"
	"strconv"
	"sync"
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

// accessLog writes the one log line of each finished request: method,
// route (routeLabel of the pattern that matched), path, status, duration
// and body bytes, and the request ID from r's context, like every other
// line of the request.
//
// When out is set, it is where logger writes its JSON lines, and the line
// is formatted here, as slog's JSONHandler would write it (same keys, same
// order, same escaping) at a fraction of the cost: the access line was
// the largest cost of a cached read. Otherwise it goes through logger.
type accessLog struct {
	logger *slog.Logger
	out    io.Writer
}

// accessBufs holds the buffers lines are formatted in.
var accessBufs = sync.Pool{New: func() any { b := make([]byte, 0, 512); return &b }}

func (l accessLog) write(r *http.Request, ar *accessRecorder, start time.Time, d time.Duration) {
	ctx := r.Context()
	if l.out == nil {
		l.logger.LogAttrs(ctx, slog.LevelInfo, "request",
			slog.String("method", r.Method),
			slog.String("route", routeLabel(r.Pattern)),
			slog.String("path", r.URL.Path),
			slog.Int("status", ar.code()),
			slog.Float64("duration_ms", durationMillis(d)),
			slog.Int64("bytes", ar.bytes))
		return
	}
	if !l.logger.Enabled(ctx, slog.LevelInfo) {
		return
	}
	bp := accessBufs.Get().(*[]byte)
	b := append((*bp)[:0], `{"time":"`...)
	b = start.Add(d).AppendFormat(b, time.RFC3339Nano)
	b = append(b, `","level":"INFO","msg":"request","method":`...)
	b = appendJSONString(b, r.Method)
	b = append(b, `,"route":`...)
	b = appendJSONString(b, routeLabel(r.Pattern))
	b = append(b, `,"path":`...)
	b = appendJSONString(b, r.URL.Path)
	b = append(b, `,"status":`...)
	b = strconv.AppendInt(b, int64(ar.code()), 10)
	b = append(b, `,"duration_ms":`...)
	b = strconv.AppendFloat(b, durationMillis(d), 'f', -1, 64)
	b = append(b, `,"bytes":`...)
	b = strconv.AppendInt(b, ar.bytes, 10)
	if id := requestIDFrom(ctx); id != "" {
		b = append(b, `,"request_id":`...)
		b = appendJSONString(b, id)
	}
	b = append(b, "}\n"...)
	l.out.Write(b)        // the log writer never fails a whole line but on close
	if cap(b) <= 64<<10 { // a huge path's buffer is not kept
		*bp = b
		accessBufs.Put(bp)
	}
}

// durationMillis is d in milliseconds, to the microsecond.
func durationMillis(d time.Duration) float64 {
	return float64(d.Microseconds()) / 1000
}
