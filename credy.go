package main

import (
	"log/slog"
	"net/http"
	"time"
)

// maxBackoff caps the wait between two catalogue attempts.
const maxBackoff = 2 * time.Second

// catalogueConfig is where the catalogue is and how to call it.
type catalogueConfig struct {
	URL         string
	Username    string
	Password    string
	Timeout     time.Duration
	MaxAttempts int
}

// catalogue is the client of the third-party movie catalogue.
type catalogue struct {
	cfg    catalogueConfig
	logger *slog.Logger
}

func newCatalogue(cfg catalogueConfig, logger *slog.Logger) *catalogue {
	return &catalogue{cfg: cfg, logger: logger}
}

// Configured reports whether the catalogue credentials are set.
func (c *catalogue) Configured() bool { return c.cfg.Username != "" && c.cfg.Password != "" }

// handleMovies serves GET /movies/.
func (s *server) handleMovies(w http.ResponseWriter, r *http.Request, _ int64) error {
	return newError(codeUnavailable, "the movie catalogue is not available yet")
}
