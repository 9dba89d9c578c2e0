package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net/url"
	"strconv"
	"strings"
	"time"
)

// config is every setting of the service. Each comes from an environment
// variable, which a command-line flag of the same meaning may override.
type config struct {
	Addr                 string
	DatabaseURL          string
	Catalogue            catalogueConfig
	JWTSecret            string
	TokenTTL             time.Duration
	BcryptCost           int
	PublicURL            string
	CounterFlushInterval time.Duration
	Pool                 poolConfig
	LogLevel             slog.Level
	ShutdownTimeout      time.Duration
	DrainDelay           time.Duration
	PprofAddr            string
	MetricsAddr          string
	CORSOrigins          string
	Login                loginConfig
}

// loginConfig is the defence of register and login against guessing and
// floods.
type loginConfig struct {
	MaxFailures int           // failed logins of one name that lock it; 0: never
	Lockout     time.Duration // the failure window and the lock's length
	RatePerIP   int           // register+login requests per address a minute; 0: no limit
}

// poolConfig sizes the database connection pool. SQLite always has one
// writer connection; MaxOpen sizes its reader pool, or PostgreSQL's pool.
type poolConfig struct {
	MaxOpen     int
	MaxIdle     int
	MaxLifetime time.Duration
	MaxIdleTime time.Duration
	// BusyTimeout is how long a SQLite write waits for a lock another
	// process holds before it fails (and is answered 503).
	BusyTimeout time.Duration
}

// setting describes one configuration variable: where it comes from, its
// default, and how it is parsed into the config.
type setting struct {
	env, flag, def, usage string
	parse                 func(string) error
}

// secretSettings are taken exactly as given: a space may be part of one.
var secretSettings = map[string]bool{"MOVIES_API_USERNAME": true, "MOVIES_API_PASSWORD": true, "JWT_SECRET": true}

func (c *config) settings() []setting {
	return []setting{
		{"ADDR", "addr", ":8000", "`address` to listen on, such as :8000 or 127.0.0.1:8000", str(&c.Addr)},
		{"DATABASE_URL", "database-url", "movies.db", "SQLite file `path`, or postgres://… URL", str(&c.DatabaseURL)},
		{"MOVIES_API_URL", "movies-api-url", "https://demo.credy.in/api/v1/maya/movies/", "catalogue `URL`", absURL(&c.Catalogue.URL)},
		{"MOVIES_API_USERNAME", "", "", "catalogue basic-auth user", str(&c.Catalogue.Username)},
		{"MOVIES_API_PASSWORD", "", "", "catalogue basic-auth password", str(&c.Catalogue.Password)},
		{"MOVIES_API_TIMEOUT", "movies-api-timeout", "5s", "time limit of one catalogue attempt (a `duration` such as 5s)", positiveDuration(&c.Catalogue.Timeout)},
		{"MOVIES_API_MAX_ATTEMPTS", "movies-api-max-attempts", "5", "catalogue attempts per page, a `number` from 1 to 20", intIn(&c.Catalogue.MaxAttempts, 1, 20)},
		{"MOVIES_STALE_IF_ERROR", "movies-stale-if-error", "24h", "how old a remembered catalogue page may be and still stand in when the catalogue fails (a `duration`); 0: never", nonNegativeDuration(&c.Catalogue.StaleIfError)},
		{"MOVIES_BREAKER_THRESHOLD", "movies-breaker-threshold", "3", "page fetches in a row that gave up before the catalogue counts as down (a `number`); 0: never", intIn(&c.Catalogue.BreakerThreshold, 0, 1000)},
		{"MOVIES_BREAKER_COOLDOWN", "movies-breaker-cooldown", "10s", "how long the catalogue counts as down before one request probes it (a `duration`)", positiveDuration(&c.Catalogue.BreakerCooldown)},
		{"JWT_SECRET", "", "", "HS256 key; none: generated once and kept in the database", str(&c.JWTSecret)},
		{"TOKEN_TTL", "token-ttl", "24h", "access-token lifetime (a `duration` such as 24h)", positiveDuration(&c.TokenTTL)},
		{"BCRYPT_COST", "bcrypt-cost", "10", "bcrypt work factor for passwords, a `number` from 4 to 31", intIn(&c.BcryptCost, 4, 31)},
		{"PUBLIC_URL", "public-url", "", "public base `URL` for next/previous links", optionalURL(&c.PublicURL)},
		{"COUNTER_FLUSH_INTERVAL", "counter-flush-interval", "100ms", "how often the request count is persisted (a `duration`); 0: on every request", nonNegativeDuration(&c.CounterFlushInterval)},
		{"DB_MAX_OPEN_CONNS", "db-max-open-conns", "0", "database pool size (a `number`); 0: 2 per CPU for SQLite readers, 10 for PostgreSQL", intIn(&c.Pool.MaxOpen, 0, 1000)},
		{"DB_MAX_IDLE_CONNS", "db-max-idle-conns", "0", "idle connections kept (a `number`); 0: as many as open", intIn(&c.Pool.MaxIdle, 0, 1000)},
		{"DB_CONN_MAX_LIFETIME", "db-conn-max-lifetime", "30m", "PostgreSQL connection lifetime (a `duration`); 0: unlimited", nonNegativeDuration(&c.Pool.MaxLifetime)},
		{"DB_CONN_MAX_IDLE_TIME", "db-conn-max-idle-time", "5m", "PostgreSQL idle connection lifetime (a `duration`); 0: unlimited", nonNegativeDuration(&c.Pool.MaxIdleTime)},
		{"DB_BUSY_TIMEOUT", "db-busy-timeout", "5s", "how long a SQLite statement waits for a lock another process holds (a `duration`); then 503", positiveDuration(&c.Pool.BusyTimeout)},
		{"LOG_LEVEL", "log-level", "info", "log `level`: debug, info, warn or error", logLevel(&c.LogLevel)},
		{"PPROF_ADDR", "pprof-addr", "", "serve net/http/pprof on this `address` (keep it on loopback); none: off", str(&c.PprofAddr)},
		{"LOGIN_MAX_FAILURES", "login-max-failures", "5", "failed logins of one username within LOGIN_LOCKOUT that lock it (a `number`); 0: no lock", intIn(&c.Login.MaxFailures, 0, 1000)},
		{"LOGIN_LOCKOUT", "login-lockout", "15m", "the failure window and the lock's length (a `duration`)", positiveDuration(&c.Login.Lockout)},
		{"AUTH_RATE_PER_IP", "auth-rate-per-ip", "60", "register and login requests one client address may make a minute (a `number`); 0: no limit", intIn(&c.Login.RatePerIP, 0, 1_000_000)},
		{"METRICS_ADDR", "metrics-addr", "", "serve Prometheus metrics at /metrics on this `address`, a listener apart from the API; none: off", str(&c.MetricsAddr)},
		{"CORS_ALLOWED_ORIGINS", "cors-allowed-origins", "", "comma-separated `origins` allowed to call the API from a browser (* for any); none: no CORS headers", corsOrigins(&c.CORSOrigins)},
		{"SHUTDOWN_DRAIN_DELAY", "shutdown-drain-delay", "0", "after SIGINT/SIGTERM, how long /readyz answers 503 while the server still serves, so that a load balancer sees it before the listener closes (a `duration`); 0: close at once", nonNegativeDuration(&c.DrainDelay)},
		{"SHUTDOWN_TIMEOUT", "shutdown-timeout", "30s", "how long shutdown waits for requests in flight (a `duration`)", positiveDuration(&c.ShutdownTimeout)},
	}
}

// loadConfig reads every setting from flags, then the environment, then the
// defaults. A value that cannot be parsed stops the start with its name.
func loadConfig(args []string, getenv func(string) string, stderr io.Writer) (config, error) {
	var c config
	settings := c.settings()

	if len(args) > 0 {
		args = args[1:]
	}
	fs := flag.NewFlagSet("movies", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprintf(stderr, "Usage: movies [flags]\n\nEvery setting is an environment variable; a flag, where there is one, overrides it.\n\n")
		fs.PrintDefaults()
		fmt.Fprintf(stderr, "\nSecrets have no flag (a flag shows in the process list), only their variable:\n")
		for _, s := range settings {
			if s.flag == "" {
				fmt.Fprintf(stderr, "  %s\n    \t%s\n", s.env, s.usage)
			}
		}
	}
	flagValues := map[string]*string{}
	for _, s := range settings {
		if s.flag != "" {
			// Secrets have no flag: a flag shows up in the process list.
			flagValues[s.flag] = fs.String(s.flag, "", fmt.Sprintf("%s (env %s, default %q)", s.usage, s.env, s.def))
		}
	}
	if err := fs.Parse(args); err != nil {
		return c, err
	}
	if fs.NArg() > 0 {
		return c, fmt.Errorf("unexpected argument %q", fs.Arg(0))
	}
	set := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { set[f.Name] = true })

	var errs []error
	for _, s := range settings {
		v, from := s.def, s.env
		if s.flag != "" && set[s.flag] {
			v, from = *flagValues[s.flag], "-"+s.flag
		} else if e := getenv(s.env); e != "" {
			v = e
		}
		if !secretSettings[s.env] {
			v = strings.TrimSpace(v)
		}
		if err := s.parse(v); err != nil {
			errs = append(errs, fmt.Errorf("invalid %s: %w", from, err))
		}
	}
	if err := errors.Join(errs...); err != nil {
		return c, err
	}
	return c, nil
}

// writeTimeout bounds how long a response may take to write: long enough
// for every catalogue attempt and the waits between them.
func (c config) writeTimeout() time.Duration {
	return time.Duration(c.Catalogue.MaxAttempts)*(c.Catalogue.Timeout+maxBackoff) + 10*time.Second
}

func str(p *string) func(string) error {
	return func(v string) error { *p = v; return nil }
}

func positiveDuration(p *time.Duration) func(string) error {
	return func(v string) error {
		d, err := time.ParseDuration(v)
		if err != nil || d <= 0 {
			return fmt.Errorf("%q is not a positive duration such as 5s", v)
		}
		*p = d
		return nil
	}
}

func nonNegativeDuration(p *time.Duration) func(string) error {
	return func(v string) error {
		if v == "0" {
			*p = 0
			return nil
		}
		d, err := time.ParseDuration(v)
		if err != nil || d < 0 {
			return fmt.Errorf("%q is not a duration such as 100ms, or 0", v)
		}
		*p = d
		return nil
	}
}

func intIn(p *int, lo, hi int) func(string) error {
	return func(v string) error {
		n, err := strconv.Atoi(v)
		if err != nil || n < lo || n > hi {
			return fmt.Errorf("%q is not a whole number from %d to %d", v, lo, hi)
		}
		*p = n
		return nil
	}
}

func absURL(p *string) func(string) error {
	return func(v string) error {
		u, err := url.Parse(v)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			// Not echoed: a URL may carry a password or a token.
			return errors.New("the value is not an absolute http(s) URL")
		}
		*p = v
		return nil
	}
}

func optionalURL(p *string) func(string) error {
	return func(v string) error {
		if v == "" {
			*p = ""
			return nil
		}
		if err := absURL(p)(v); err != nil {
			return err
		}
		*p = strings.TrimRight(v, "/")
		return nil
	}
}

func corsOrigins(p *string) func(string) error {
	return func(v string) error {
		if _, err := newCORS(v); err != nil {
			return err
		}
		*p = v
		return nil
	}
}

func logLevel(p *slog.Level) func(string) error {
	return func(v string) error {
		if err := p.UnmarshalText([]byte(v)); err != nil {
			return fmt.Errorf("%q is not one of debug, info, warn, error", v)
		}
		return nil
	}
}
