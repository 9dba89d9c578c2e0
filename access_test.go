package main

import (
	"net/http"
	"net/http/httptest"
	"testing"
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
