// Command movies serves the movie-collections API described in README.md.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"runtime/debug"
	"syscall"
	"time"
)

func main() {
	tuneGC(os.Getenv)
	if err := run(context.Background(), os.Args, os.Getenv, os.Stdout, os.Stderr); err != nil {
		fmt.Fprintf(os.Stderr, "movies: %v\n", err)
		os.Exit(1)
	}
}

// The garbage collector's defaults for this service, when the environment
// does not set GOGC or GOMEMLIMIT. Every request allocates a few KB that
// die with it, over a live heap of a few tens of MB (the response cache,
// at most 32 MiB, and the requests in flight): Go's default GOGC of 100
// then spent about a tenth of the service's CPU on collection under a
// crowd. A target of 400 collects a quarter as often for a heap up to five
// times the live one, and the soft limit keeps it from growing past
// 1 GiB on that account: near the limit the collector works harder
// instead (see README, "Configuration").
const (
	defaultGCPercent   = 400
	defaultMemoryLimit = 1 << 30
)

// tuneGC applies the collector's defaults that the environment leaves
// unset.
func tuneGC(getenv func(string) string) {
	if getenv("GOGC") == "" {
		debug.SetGCPercent(defaultGCPercent)
	}
	if getenv("GOMEMLIMIT") == "" {
		debug.SetMemoryLimit(defaultMemoryLimit)
	}
}

// run starts the service and blocks until ctx ends or SIGINT/SIGTERM arrives,
// then shuts down gracefully. Tests call it directly with their own
// environment, arguments and output streams.
func run(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) (err error) {
	ctx, stop := signal.NotifyContext(ctx, os.Interrupt, syscall.SIGTERM)
	defer stop()

	cfg, err := loadConfig(args, getenv, stderr)
	if errors.Is(err, flag.ErrHelp) {
		return nil // -h: the usage is printed
	}
	if err != nil {
		return err
	}

	logOut := newLogWriter(stdout, 100*time.Millisecond)
	defer logOut.Close()
	logger := slog.New(slog.NewJSONHandler(logOut, &slog.HandlerOptions{Level: cfg.LogLevel}))

	a, err := newApp(ctx, cfg, logger, logOut)
	if err != nil {
		return err
	}
	// Whatever happens next, what the counter holds is persisted last.
	defer func() { err = errors.Join(err, a.close()) }()

	srv := &http.Server{
		Handler:           a.handler,
		ReadHeaderTimeout: 5 * time.Second,
		ReadTimeout:       30 * time.Second,
		WriteTimeout:      cfg.writeTimeout(),
		IdleTimeout:       120 * time.Second,
		MaxHeaderBytes:    64 << 10,
		ErrorLog:          slog.NewLogLogger(logger.Handler(), slog.LevelWarn),
	}
	stopAdmin, err := startAdmin(cfg, a.metrics, logger)
	if err != nil {
		return err
	}
	defer stopAdmin()
	// Listen first so that a busy port fails the start at once.
	ln, err := net.Listen("tcp", cfg.Addr)
	if err != nil {
		return fmt.Errorf("listen on %s: %w", cfg.Addr, err)
	}
	logger.Info("listening", "addr", ln.Addr().String(), "database", a.store.Describe())
	drain := func() {
		a.server.ready.drain()
		time.Sleep(cfg.DrainDelay)
	}
	return serve(ctx, srv, ln, cfg.ShutdownTimeout, drain, logger)
}

// startAdmin starts the admin listeners: metrics, and profiles on the same
// address or their own. Neither is reachable through the API's listener,
// and their requests are not counted.
func startAdmin(cfg config, m *metrics, logger *slog.Logger) (stop func(), err error) {
	var stops []func()
	stop = func() {
		for _, s := range stops {
			s()
		}
	}
	if cfg.MetricsAddr != "" {
		s, err := serveAdmin(cfg.MetricsAddr, m, cfg.PprofAddr == cfg.MetricsAddr, logger)
		if err != nil {
			return stop, err
		}
		stops = append(stops, s)
	}
	if cfg.PprofAddr != "" && cfg.PprofAddr != cfg.MetricsAddr {
		s, err := serveAdmin(cfg.PprofAddr, nil, true, logger)
		if err != nil {
			stop()
			return func() {}, err
		}
		stops = append(stops, s)
	}
	return stop, nil
}

// serve serves on ln until ctx ends, then shuts down: drain (readiness
// turns 503 at once), no new connections, requests in flight finish, and
// those still running after timeout are cut off.
func serve(ctx context.Context, srv *http.Server, ln net.Listener, timeout time.Duration, drain func(), logger *slog.Logger) (err error) {
	serveErr := make(chan error, 1)
	go func() { serveErr <- srv.Serve(ln) }()

	select {
	case err = <-serveErr:
		// Serve only returns early on a listener failure.
	case <-ctx.Done():
		logger.Info("shutting down")
		drain()
		shutdownCtx, cancel := context.WithTimeout(context.Background(), timeout)
		err = srv.Shutdown(shutdownCtx)
		cancel()
		if err != nil {
			srv.Close()
			err = fmt.Errorf("shutdown: requests still running after %s: %w", timeout, err)
		}
		<-serveErr
	}
	if errors.Is(err, http.ErrServerClosed) {
		err = nil
	}
	logger.Info("stopped")
	return err
}

// app is the service's dependency graph. newApp builds it, for run and for
// every test harness alike, so that what the tests exercise is what runs.
type app struct {
	store     *Store
	auth      *authenticator
	counter   *counter
	catalogue *catalogue
	metrics   *metrics
	server    *server
	handler   http.Handler
}

// newApp opens the database and builds everything the handler needs. The
// request counter's background persistence starts here; close stops it.
// jsonOut, when not nil, is where logger writes its JSON lines: access
// lines are then written there directly (see accessLog).
func newApp(ctx context.Context, cfg config, logger *slog.Logger, jsonOut io.Writer) (*app, error) {
	// Every line logged with a request's context carries its ID.
	logger = slog.New(withRequestID(logger.Handler()))
	store, err := openStore(ctx, cfg.DatabaseURL, cfg.Pool)
	if err != nil {
		return nil, fmt.Errorf("open database: %w", err)
	}
	auth, err := newAuthenticator(ctx, store, cfg.JWTSecret, cfg.TokenTTL, cfg.BcryptCost)
	if err != nil {
		store.Close()
		return nil, err
	}
	m := newMetrics()
	for name, p := range store.db.pools {
		m.registerDB(name, p)
	}
	ctr := newCounter(store, cfg.CounterFlushInterval, logger)
	ctr.metrics = m
	m.registerCounter(ctr.Count)
	if err := ctr.Start(ctx); err != nil {
		store.Close()
		return nil, fmt.Errorf("load request count: %w", err)
	}
	cat := newCatalogue(cfg.Catalogue, logger)
	cat.metrics = m
	if !cat.Configured() {
		logger.Warn("catalogue credentials are not set: /movies/ will answer 503 until MOVIES_API_USERNAME and MOVIES_API_PASSWORD are set")
	}
	cors, err := newCORS(cfg.CORSOrigins)
	if err != nil {
		store.Close()
		return nil, err
	}
	a := &app{store: store, auth: auth, counter: ctr, catalogue: cat, metrics: m}
	a.server = &server{
		logger:    logger,
		access:    accessLog{logger: logger, out: jsonOut},
		store:     store,
		auth:      auth,
		counter:   ctr,
		catalogue: cat,
		publicURL: cfg.PublicURL,
		cache:     newResponseCache(32 << 20),
		login:     cfg.Login,
		limiter:   newAddressLimiter(cfg.Login.RatePerIP, maxAddresses, time.Now),
		metrics:   m,
		ready:     &readiness{logger: logger},
		cors:      cors,
	}
	a.handler = newServer(a.server)
	return a, nil
}

// close persists what the counter holds, retrying for a while, then
// closes the database.
func (a *app) close() error {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	return errors.Join(a.counter.Stop(ctx), a.store.Close())
}
