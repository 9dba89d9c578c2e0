package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strings"
	"testing"
	"time"
)

func TestAccessRecorder(t *testing.T) {
	tests := []struct {
		name      string
		handler   func(w http.ResponseWriter)
		wantCode  int
		wantBytes int64
	}{
		{"nothing written", func(w http.ResponseWriter) {}, 200, 0},
		{"body only", func(w http.ResponseWriter) { w.Write([]byte("hello")) }, 200, 5},
		{"status and body", func(w http.ResponseWriter) {
			w.WriteHeader(http.StatusCreated)
			w.Write([]byte("he"))
			w.Write([]byte("llo"))
		}, 201, 5},
		{"no body", func(w http.ResponseWriter) { w.WriteHeader(http.StatusNoContent) }, 204, 0},
		{"second status ignored", func(w http.ResponseWriter) {
			w.WriteHeader(http.StatusNotFound)
			w.WriteHeader(http.StatusOK)
		}, 404, 0},
		{"early hints are not the status", func(w http.ResponseWriter) {
			w.WriteHeader(http.StatusEarlyHints)
			w.WriteHeader(http.StatusAccepted)
		}, 202, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rec := httptest.NewRecorder()
			ar := recordAccess(rec)
			tt.handler(ar)
			if got := ar.code(); got != tt.wantCode {
				t.Fatalf("code: got %d, want %d", got, tt.wantCode)
			}
			if ar.bytes != tt.wantBytes {
				t.Fatalf("bytes: got %d, want %d", ar.bytes, tt.wantBytes)
			}
			if got := int64(rec.Body.Len()); got != tt.wantBytes {
				t.Fatalf("bytes the client got: %d, want %d", got, tt.wantBytes)
			}
		})
	}
}

func TestAccessRecorderSharedAndUnwrapped(t *testing.T) {
	rec := httptest.NewRecorder()
	ar := recordAccess(rec)
	if recordAccess(ar) != ar {
		t.Fatal("a recorder of a recorder: want the same one, so a response is wrapped once")
	}
	if err := http.NewResponseController(ar).Flush(); err != nil {
		t.Fatalf("Flush through the recorder: %v", err)
	}
	if !rec.Flushed {
		t.Fatal("Flush did not reach the wrapped writer")
	}
}

func TestAccessLogLine(t *testing.T) {
	for _, direct := range []bool{false, true} {
		t.Run(fmt.Sprintf("direct=%t", direct), func(t *testing.T) {
			var buf bytes.Buffer
			log := accessLog{logger: slog.New(withRequestID(slog.NewJSONHandler(&buf, nil)))}
			if direct {
				log.out = &buf
			}
			mux := http.NewServeMux()
			mux.HandleFunc("GET /collection/{id}/{$}", func(w http.ResponseWriter, r *http.Request) {
				w.WriteHeader(http.StatusNotFound)
				w.Write([]byte(`{"no":"such"}`))
			})
			// An access log as the server would wrap it, inside the request ID.
			h := requestIDMiddleware(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				start := time.Now()
				ar := recordAccess(w)
				mux.ServeHTTP(ar, r)
				log.write(r, ar, start, time.Since(start))
			}))
			r := httptest.NewRequest("GET", "/collection/0b6f7c1e-8a5e-4a4e-9e51-3c9d1f1b8a77/", nil)
			r.Header.Set("X-Request-ID", "req-42")
			h.ServeHTTP(httptest.NewRecorder(), r)

			lines := logLines(t, &buf)
			if len(lines) != 1 {
				t.Fatalf("got %d log lines, want 1:\n%s", len(lines), buf.String())
			}
			l := lines[0]
			for key, want := range map[string]any{
				"msg":        "request",
				"level":      "INFO",
				"request_id": "req-42",
				"method":     "GET",
				"route":      "GET /collection/{id}/",
				"path":       "/collection/0b6f7c1e-8a5e-4a4e-9e51-3c9d1f1b8a77/",
				"status":     float64(404),
				"bytes":      float64(len(`{"no":"such"}`)),
			} {
				if got := l[key]; got != want {
					t.Errorf("%s: got %v, want %v", key, got, want)
				}
			}
			if d, ok := l["duration_ms"].(float64); !ok || d < 0 {
				t.Errorf("duration_ms: got %v, want a duration", l["duration_ms"])
			}
			if ts, _ := l["time"].(string); ts == "" {
				t.Error("the line has no time")
			} else if _, err := time.Parse(time.RFC3339Nano, ts); err != nil {
				t.Errorf("time: %v", err)
			}
		})
	}
}

// TestAccessLineIsSlogs: the access line written directly is, byte for
// byte, the one slog's JSONHandler writes, whatever the path holds:
// quotes, control bytes, bytes that are not UTF-8, line separators.
func TestAccessLineIsSlogs(t *testing.T) {
	paths := []string{
		"/collection/",
		`/a"b\c`,
		"/tab\there\nnew\rline\x00\x1f\x7f",
		"/not-utf8-\xff\xfe-\xc3",
		"/sep\u2028\u2029",
		"/<script>&amp;",
		"/caf\u00e9/\U0001F3AC",
	}
	rng := rand.New(rand.NewPCG(7, 8))
	for range 500 {
		p := make([]byte, rng.IntN(24))
		for i := range p {
			p[i] = byte(rng.IntN(256))
		}
		paths = append(paths, "/"+string(p))
	}
	// stable blanks the fields that differ between two writes.
	stable := regexp.MustCompile(`"time":"[^"]*"|"duration_ms":[0-9.e+-]*`)
	start := time.Date(2026, 11, 26, 20, 0, 0, 123456789, time.UTC)
	for _, p := range paths {
		var lines [2]string
		for i, direct := range []bool{false, true} {
			var buf bytes.Buffer
			log := accessLog{logger: slog.New(withRequestID(slog.NewJSONHandler(&buf, nil)))}
			if direct {
				log.out = &buf
			}
			r := httptest.NewRequest("PURGE", "/", nil)
			r.URL.Path = p
			r = r.WithContext(context.WithValue(r.Context(), requestIDKey{}, "id-1"))
			ar := &accessRecorder{ResponseWriter: httptest.NewRecorder(), status: 418, bytes: 7}
			log.write(r, ar, start, 1234567*time.Nanosecond)
			lines[i] = buf.String()
		}
		if !json.Valid([]byte(lines[1])) {
			t.Fatalf("path %q: the direct line is not JSON: %s", p, lines[1])
		}
		if a, b := stable.ReplaceAllString(lines[0], "_"), stable.ReplaceAllString(lines[1], "_"); a != b {
			t.Fatalf("path %q:\nslog:   %s\ndirect: %s", p, a, b)
		}
		if !strings.Contains(lines[1], `"duration_ms":1.234,`) {
			t.Fatalf("path %q: duration_ms is not 1.234 in %s", p, lines[1])
		}
	}
}
