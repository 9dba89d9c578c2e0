package main

import (
	"bytes"
	"context"
	"database/sql/driver"
	"errors"
	"fmt"
	"log/slog"
	"net/http/httptest"
	"strings"
	"testing"
)

// TestWriteErrorTellsClientGoneFromDatabaseTrouble: a request whose client
// has gone is answered without an error in the log, even when the driver
// reports the connection it abandoned as bad (pgx closes a connection
// whose query was cancelled); the same error with the client still there
// is database trouble, logged; anything else is a bug, logged.
func TestWriteErrorTellsClientGoneFromDatabaseTrouble(t *testing.T) {
	gone, cancel := context.WithCancel(context.Background())
	cancel()
	badConn := fmt.Errorf("create collection: %w", driver.ErrBadConn)
	tests := []struct {
		name   string
		ctx    context.Context
		err    error
		status int
		logged string // in an ERROR line; "" for none
	}{
		{"client gone, its context's error", gone, fmt.Errorf("list: %w", context.Canceled), 503, ""},
		{"client gone, the connection its cancel closed", gone, badConn, 503, ""},
		{"client here, a bad connection", context.Background(), badConn, 503, "database unavailable"},
		{"client here, a bug", context.Background(), errors.New("boom"), 500, "internal error"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var logs bytes.Buffer
			s := &server{logger: slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelInfo}))}
			r := httptest.NewRequest("GET", "/collection/", nil).WithContext(tt.ctx)
			w := httptest.NewRecorder()
			s.writeError(w, r, tt.err)
			if w.Code != tt.status {
				t.Errorf("status %d, want %d", w.Code, tt.status)
			}
			errorLines := ""
			for line := range strings.Lines(logs.String()) {
				if strings.Contains(line, "level=ERROR") {
					errorLines += line
				}
			}
			switch {
			case tt.logged == "" && errorLines != "":
				t.Errorf("logged %q, want no error", errorLines)
			case tt.logged != "" && !strings.Contains(errorLines, tt.logged):
				t.Errorf("logged %q, want an error saying %q", errorLines, tt.logged)
			}
		})
	}
}
