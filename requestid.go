package main

import (
	"context"
	"log/slog"
	"math/rand/v2"
	"net/http"
)

// requestIDHeader carries a request's ID, from the client and back, and on
// to the catalogue. It is X-Request-ID written as net/http keys headers,
// so that reading and setting it need not rewrite the name each time.
const requestIDHeader = "X-Request-Id"

// maxRequestIDLen is the longest client ID kept.
const maxRequestIDLen = 128

// requestIDKey is the context key of the request ID.
type requestIDKey struct{}

// requestIDMiddleware gives every request an ID: the client's own
// X-Request-ID when it is 1–128 characters of A-Za-z0-9._:-, else a new
// one. The ID is set on the response before next runs, so that every
// answer carries it, errors and panics included, and is put in the
// request's context for the logs (withRequestID) and the catalogue
// (setRequestIDHeader).
//
// Putting the ID in the context copies the request. ServeMux sets the
// matched pattern on the copy, so it is copied back to r once next
// returns: middleware outside this one (metrics, the access log) can read
// r.Pattern as if this one were not there.
func requestIDMiddleware(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		id := r.Header.Get(requestIDHeader)
		if !validRequestID(id) {
			id = newRequestID()
		}
		w.Header().Set(requestIDHeader, id)
		r2 := r.WithContext(context.WithValue(r.Context(), requestIDKey{}, id))
		defer func() { r.Pattern = r2.Pattern }()
		next.ServeHTTP(w, r2)
	})
}

// requestIDFrom returns the request ID in ctx, or "" when there is none.
func requestIDFrom(ctx context.Context) string {
	id, _ := ctx.Value(requestIDKey{}).(string)
	return id
}

// setRequestIDHeader sends the request ID in ctx, if any, on to another
// service in h.
func setRequestIDHeader(ctx context.Context, h http.Header) {
	if id := requestIDFrom(ctx); id != "" {
		h.Set(requestIDHeader, id)
	}
}

// validRequestID reports whether a client's ID can be kept: 1–128
// characters of A-Za-z0-9._:-, nothing that could break a log line or a
// header.
func validRequestID(id string) bool {
	if len(id) == 0 || len(id) > maxRequestIDLen {
		return false
	}
	for i := 0; i < len(id); i++ {
		c := id[i]
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' ||
			c == '.' || c == '_' || c == ':' || c == '-') {
			return false
		}
	}
	return true
}

// newRequestID returns 128 random bits as 32 lowercase hex digits, the
// shape of a W3C trace ID. math/rand/v2's generator is ChaCha8, seeded
// from the operating system in every process and kept per thread, so IDs
// are unique across processes and restarts with overwhelming probability
// (a collision is likely only after some 2^64 IDs), and making one touches
// no memory shared between cores. IDs need not be unguessable: a client
// may choose its own.
func newRequestID() string {
	return formatRequestID(rand.Uint64(), rand.Uint64())
}

// formatRequestID writes 128 bits as 32 lowercase hex digits.
func formatRequestID(hi, lo uint64) string {
	const digits = "0123456789abcdef"
	var b [32]byte
	for i := 15; i >= 0; i-- {
		b[i] = digits[hi&0xf]
		b[16+i] = digits[lo&0xf]
		hi >>= 4
		lo >>= 4
	}
	return string(b[:])
}

// withRequestID wraps a log handler so that every record logged with a
// context that carries a request ID (logger.InfoContext(ctx, …),
// logger.LogAttrs(ctx, …)) gets a request_id attribute. Records logged
// after WithGroup carry it inside that group; this service's logs use no
// groups.
func withRequestID(h slog.Handler) slog.Handler {
	return requestIDHandler{h}
}

// requestIDHandler is the handler withRequestID returns.
type requestIDHandler struct{ slog.Handler }

// Handle adds the request ID of ctx to r, then hands it on.
func (h requestIDHandler) Handle(ctx context.Context, r slog.Record) error {
	if id := requestIDFrom(ctx); id != "" {
		r.AddAttrs(slog.String("request_id", id))
	}
	return h.Handler.Handle(ctx, r)
}

// WithAttrs keeps the wrapper around the handler with attrs.
func (h requestIDHandler) WithAttrs(attrs []slog.Attr) slog.Handler {
	return requestIDHandler{h.Handler.WithAttrs(attrs)}
}

// WithGroup keeps the wrapper around the handler with the group.
func (h requestIDHandler) WithGroup(name string) slog.Handler {
	return requestIDHandler{h.Handler.WithGroup(name)}
}
