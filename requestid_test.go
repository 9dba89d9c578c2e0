package main

import (
	"bytes"
	"context"
	crand "crypto/rand"
	"encoding/binary"
	"encoding/json"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
)

// generatedID is the shape of an ID the server makes.
var generatedID = regexp.MustCompile(`^[0-9a-f]{32}$`)

// serveWithID sends one request with the given X-Request-ID header
// values through requestIDMiddleware and returns the response's ID and
// the one the handler found in its context.
func serveWithID(t *testing.T, sent ...string) (header, inContext string) {
	t.Helper()
	h := requestIDMiddleware(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		inContext = requestIDFrom(r.Context())
		w.WriteHeader(http.StatusNoContent)
	}))
	r := httptest.NewRequest("GET", "/collection/", nil)
	for _, v := range sent {
		r.Header.Add("X-Request-ID", v)
	}
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, r)
	if got := len(rec.Header().Values("X-Request-ID")); got != 1 {
		t.Fatalf("response has %d X-Request-ID headers, want 1", got)
	}
	return rec.Header().Get("X-Request-ID"), inContext
}

func TestRequestIDEchoedWhenValid(t *testing.T) {
	for _, id := range []string{
		"a",
		"abc-123",
		"0b6f7c1e-8a5e-4a4e-9e51-3c9d1f1b8a77",
		"1-67891233-abcdef012345678912345678",
		"a.b_c:d-E",
		strings.Repeat("x", 128),
	} {
		t.Run(id[:min(len(id), 20)], func(t *testing.T) {
			header, ctx := serveWithID(t, id)
			if header != id {
				t.Fatalf("X-Request-ID: got %q, want %q", header, id)
			}
			if ctx != id {
				t.Fatalf("ID in the context: got %q, want %q", ctx, id)
			}
		})
	}
}

func TestRequestIDReplacedWhenInvalid(t *testing.T) {
	tests := []struct {
		name string
		sent []string
	}{
		{"none", nil},
		{"empty", []string{""}},
		{"too long", []string{strings.Repeat("x", 129)}},
		{"space", []string{"a b"}},
		{"slash", []string{"a/b"}},
		{"quote", []string{`a"b`}},
		{"tab", []string{"a\tb"}},
		{"not ASCII", []string{"é"}},
		{"equals", []string{"a=b"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			header, ctx := serveWithID(t, tt.sent...)
			if !generatedID.MatchString(header) {
				t.Fatalf("X-Request-ID: got %q, want a new ID", header)
			}
			if ctx != header {
				t.Fatalf("ID in the context: got %q, want the response's %q", ctx, header)
			}
		})
	}
}

func TestRequestIDFirstOfSeveralHeaders(t *testing.T) {
	if header, _ := serveWithID(t, "first", "second"); header != "first" {
		t.Fatalf("X-Request-ID: got %q, want the first one sent", header)
	}
}

func TestRequestIDGeneratedUniqueAndWellFormed(t *testing.T) {
	const workers, each = 8, 20000
	ids := make([][]string, workers)
	var wg sync.WaitGroup
	for i := range workers {
		wg.Go(func() {
			for range each {
				ids[i] = append(ids[i], newRequestID())
			}
		})
	}
	wg.Wait()
	seen := make(map[string]bool, workers*each)
	for _, list := range ids {
		for _, id := range list {
			if !generatedID.MatchString(id) || !validRequestID(id) {
				t.Fatalf("generated ID %q is not 32 lowercase hex digits", id)
			}
			if seen[id] {
				t.Fatalf("generated ID %q twice", id)
			}
			seen[id] = true
		}
	}
}

func TestRequestIDOnEveryResponse(t *testing.T) {
	// Set before next runs, so that even an answer written by a handler
	// that fails carries it.
	h := requestIDMiddleware(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Error(w, "no", http.StatusInternalServerError)
	}))
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest("GET", "/", nil))
	if !generatedID.MatchString(rec.Header().Get("X-Request-ID")) {
		t.Fatalf("X-Request-ID of a 500: got %q", rec.Header().Get("X-Request-ID"))
	}
}

// logLines decodes the JSON log lines in buf.
func logLines(t *testing.T, buf *bytes.Buffer) []map[string]any {
	t.Helper()
	var lines []map[string]any
	for _, l := range strings.Split(strings.TrimSpace(buf.String()), "\n") {
		if l == "" {
			continue
		}
		var m map[string]any
		if err := json.Unmarshal([]byte(l), &m); err != nil {
			t.Fatalf("log line %q: %v", l, err)
		}
		lines = append(lines, m)
	}
	return lines
}

func TestRequestIDInLogLines(t *testing.T) {
	var buf bytes.Buffer
	logger := slog.New(withRequestID(slog.NewJSONHandler(&buf, nil)))
	h := requestIDMiddleware(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		logger.InfoContext(r.Context(), "handling")
		logger.With("user", 7).WarnContext(r.Context(), "with attrs")
		logger.LogAttrs(r.Context(), slog.LevelInfo, "log attrs")
		logger.Info("no context")
	}))
	rec := httptest.NewRecorder()
	r := httptest.NewRequest("GET", "/", nil)
	r.Header.Set("X-Request-ID", "trace-me.1")
	h.ServeHTTP(rec, r)

	lines := logLines(t, &buf)
	if len(lines) != 4 {
		t.Fatalf("got %d log lines, want 4:\n%s", len(lines), buf.String())
	}
	for _, l := range lines[:3] {
		if got, want := l["request_id"], "trace-me.1"; got != want {
			t.Errorf("%q: request_id %v, want %q", l["msg"], got, want)
		}
	}
	if got := lines[1]["user"]; got != float64(7) {
		t.Errorf("attrs of With lost: user %v", got)
	}
	if _, ok := lines[3]["request_id"]; ok {
		t.Errorf("a line logged without the context has a request_id: %v", lines[3])
	}
}

func TestRequestIDLogHandlerKeepsLevel(t *testing.T) {
	var buf bytes.Buffer
	logger := slog.New(withRequestID(slog.NewJSONHandler(&buf, &slog.HandlerOptions{Level: slog.LevelWarn})))
	ctx := context.WithValue(context.Background(), requestIDKey{}, "x")
	logger.InfoContext(ctx, "dropped")
	if buf.Len() != 0 {
		t.Fatalf("a line below the level was written: %s", buf.String())
	}
}

func TestRequestIDSentOn(t *testing.T) {
	h := http.Header{}
	setRequestIDHeader(context.Background(), h)
	if _, ok := h["X-Request-Id"]; ok {
		t.Fatalf("a header without an ID to send: %v", h)
	}
	setRequestIDHeader(context.WithValue(context.Background(), requestIDKey{}, "abc"), h)
	if got := h.Get("X-Request-ID"); got != "abc" {
		t.Fatalf("X-Request-ID sent on: got %q, want %q", got, "abc")
	}
}

// benchWriter is a ResponseWriter that costs nothing, so that the
// benchmarks measure the middleware alone.
type benchWriter struct{ h http.Header }

func (w *benchWriter) Header() http.Header         { return w.h }
func (w *benchWriter) Write(b []byte) (int, error) { return len(b), nil }
func (w *benchWriter) WriteHeader(int)             {}

// BenchmarkRequestID compares sources of new IDs, all written the same
// way: the one used (two math/rand/v2 numbers), 16 bytes of crypto/rand,
// and a random prefix per process with an atomic sequence (one cache line
// that every core writes).
func BenchmarkRequestID(b *testing.B) {
	var p [8]byte
	crand.Read(p[:])
	prefix := binary.BigEndian.Uint64(p[:])
	var seq atomic.Uint64
	for _, bb := range []struct {
		name string
		gen  func() string
	}{
		{"math_rand", newRequestID},
		{"crypto_rand", func() string {
			var b [16]byte
			crand.Read(b[:])
			return formatRequestID(binary.BigEndian.Uint64(b[:8]), binary.BigEndian.Uint64(b[8:]))
		}},
		{"prefix_seq", func() string { return formatRequestID(prefix, seq.Add(1)) }},
	} {
		b.Run(bb.name, func(b *testing.B) {
			b.ReportAllocs()
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					if len(bb.gen()) != 32 {
						b.Fatal("bad length")
					}
				}
			})
		})
	}
}

// BenchmarkRequestIDMiddleware is the cost of the middleware on a request
// with no ID and on one with a valid ID of its own.
func BenchmarkRequestIDMiddleware(b *testing.B) {
	h := requestIDMiddleware(http.HandlerFunc(func(http.ResponseWriter, *http.Request) {}))
	for _, sent := range []string{"", "0b6f7c1e-8a5e-4a4e-9e51-3c9d1f1b8a77"} {
		name := "generated"
		if sent != "" {
			name = "echoed"
		}
		b.Run(name, func(b *testing.B) {
			b.ReportAllocs()
			b.RunParallel(func(pb *testing.PB) {
				w := &benchWriter{h: http.Header{}}
				r := httptest.NewRequest("GET", "/", nil)
				if sent != "" {
					r.Header.Set("X-Request-ID", sent)
				}
				for pb.Next() {
					h.ServeHTTP(w, r)
				}
			})
		})
	}
}
