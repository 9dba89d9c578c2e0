// Command movies serves the movie-collections API described in README.md.
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"syscall"
	"time"
)

func main() {
	if err := run(context.Background(), os.Args, os.Getenv, os.Stdout, os.Stderr); err != nil {
		fmt.Fprintf(os.Stderr, "movies: %v\n", err)
		os.Exit(1)
	}
}

// run starts the service and blocks until ctx ends or SIGINT/SIGTERM arrives,
// then shuts down gracefully. Tests call it directly with their own
// environment, arguments and output streams.
func run(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) (err error) {
	ctx, stop := signal.NotifyContext(ctx, os.Interrupt, syscall.SIGTERM)
	defer stop()

	cfg, err := loadConfig(args, getenv, stderr)
	if err != nil {
		return err
	}

	logOut := newLogWriter(stdout, 100*time.Millisecond)
	defer logOut.Close()
	logger := slog.New(slog.NewJSONHandler(logOut, &slog.HandlerOptions{Level: cfg.LogLevel}))

	store, err := openStore(ctx, cfg.DatabaseURL, cfg.Pool)
	if err != nil {
		return fmt.Errorf("open database: %w", err)
	}
	defer store.Close()

	auth, err := newAuthenticator(ctx, store, cfg.JWTSecret, cfg.TokenTTL, cfg.BcryptCost)
	if err != nil {
		return err
	}

	counter := newCounter(store, cfg.CounterFlushInterval, logger)
	if err := counter.Start(ctx); err != nil {
		return fmt.Errorf("load request count: %w", err)
	}

	catalogue := newCatalogue(cfg.Catalogue, logger)
	if !catalogue.Configured() {
		logger.Warn("catalogue credentials are not set: /movies/ will answer 503 until MOVIES_API_USERNAME and MOVIES_API_PASSWORD are set")
	}

	srv := &http.Server{
		Handler:           newServer(logger, store, auth, counter, catalogue, cfg.PublicURL),
		ReadHeaderTimeout: 5 * time.Second,
		ReadTimeout:       30 * time.Second,
		WriteTimeout:      cfg.writeTimeout(),
		IdleTimeout:       120 * time.Second,
		MaxHeaderBytes:    64 << 10,
		ErrorLog:          slog.NewLogLogger(logger.Handler(), slog.LevelWarn),
	}

	// Listen first so that a busy port fails the start at once.
	// Whatever happens next, what the counter holds is persisted last.
	defer func() {
		flushCtx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if ferr := counter.Stop(flushCtx); ferr != nil {
			err = errors.Join(err, fmt.Errorf("persist request count: %w", ferr))
		}
	}()

	if cfg.PprofAddr != "" {
		stopPprof, err := servePprof(cfg.PprofAddr, logger)
		if err != nil {
			return err
		}
		defer stopPprof()
	}

	ln, err := net.Listen("tcp", cfg.Addr)
	if err != nil {
		return fmt.Errorf("listen on %s: %w", cfg.Addr, err)
	}
	logger.Info("listening", "addr", ln.Addr().String(), "database", store.Describe())

	serveErr := make(chan error, 1)
	go func() { serveErr <- srv.Serve(ln) }()

	select {
	case err = <-serveErr:
		// Serve only returns early on a listener failure.
	case <-ctx.Done():
		logger.Info("shutting down")
		shutdownCtx, cancel := context.WithTimeout(context.Background(), cfg.ShutdownTimeout)
		err = srv.Shutdown(shutdownCtx)
		cancel()
		if err != nil {
			// Requests still running past the timeout are cut off.
			srv.Close()
			err = fmt.Errorf("shutdown: requests still running after %s: %w", cfg.ShutdownTimeout, err)
		}
		<-serveErr
	}
	if errors.Is(err, http.ErrServerClosed) {
		err = nil
	}
	logger.Info("stopped")
	return err
}
