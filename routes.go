package main

import (
	"bytes"
	"database/sql/driver"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"path"
	"strconv"
	"strings"
	"sync/atomic"
	"time"
)

// maxBodyBytes caps every request body.
const maxBodyBytes = 1 << 20

// server holds what the handlers need.
type server struct {
	logger    *slog.Logger
	access    accessLog
	store     *Store
	auth      *authenticator
	counter   *counter
	catalogue *catalogue
	publicURL string
	mux       *http.ServeMux
	// cache holds rendered collection reads; nil caches nothing.
	cache *responseCache
	login loginConfig
	// limiter bounds register and login requests per client address;
	// nil: no limit.
	limiter *addressLimiter
	metrics *metrics // nil: none
	// refused counts answers of database trouble since troubleLogged (Unix
	// nanoseconds) was last set, for dbTrouble.
	refused, troubleLogged atomic.Int64
	ready                  *readiness  // /readyz, turned off when shutdown begins
	cors                   *corsPolicy // nil: no CORS headers
}

// newServer returns the service's whole HTTP handler: the routes of
// addRoutes inside the counting, logging and recovering middleware.
func newServer(s *server) http.Handler {
	s.mux = http.NewServeMux()
	s.addRoutes()
	// The counter is outermost: it counts every request on arrival,
	// whatever happens to it next.
	return s.countRequests(s.uncounted())
}

// uncounted is the whole handler but for the request counter: every
// answer gets its request ID, is logged and measured; CORS preflights are
// answered before routing and authentication.
func (s *server) uncounted() http.Handler {
	return requestIDMiddleware(s.logRequests(s.cors.middleware(http.HandlerFunc(s.route))))
}

// addRoutes lists the whole API. Each path answers with and without its
// final slash; protected routes need a bearer token.
func (s *server) addRoutes() {
	s.handle("POST /register/", s.public(s.rateLimited(s.handleRegister)))
	s.handle("POST /login/", s.public(s.rateLimited(s.handleLogin)))
	s.handle("GET /healthz/", s.public(s.handleHealthz))
	s.handle("GET /readyz/", s.ready.handler(s.store.Ready))
	s.handle("GET /openapi.json", http.HandlerFunc(handleOpenAPI))
	s.handle("GET /docs/", s.public(handleDocs))
	s.handle("GET /docs/{file}", s.public(handleDocs))

	s.handle("GET /movies/", s.member(s.handleMovies))

	s.handle("POST /collection/", s.protected(s.handleCollectionCreate))
	s.handle("GET /collection/", s.protected(s.handleCollectionList))
	s.handle("GET /collection/{id}/", s.protected(s.handleCollectionGet))
	s.handle("PUT /collection/{id}/", s.protected(s.handleCollectionUpdate))
	s.handle("DELETE /collection/{id}/", s.protected(s.handleCollectionDelete))

	s.handle("GET /request-count/", s.member(s.handleRequestCount))
	s.handle("POST /request-count/reset/", s.member(s.handleRequestCountReset))
}

// handle registers pattern for its exact path, with and without the final
// slash. ServeMux would otherwise treat "/x/" as a whole subtree and
// redirect "/x" to it, which turns a POST into a GET.
func (s *server) handle(pattern string, h http.Handler) {
	method, path, _ := strings.Cut(pattern, " ")
	trimmed := strings.TrimSuffix(path, "/")
	s.mux.Handle(method+" "+trimmed, h)
	if trimmed != path {
		s.mux.Handle(method+" "+path+"{$}", h)
	}
}

// route dispatches to the matching route. Where none matches, it answers
// ServeMux's 404 or 405 (with its Allow header) in the JSON error shape.
func (s *server) route(w http.ResponseWriter, r *http.Request) {
	if !isCleanPath(r.URL.Path) {
		// ServeMux would redirect //collection/ or /a/../collection/ to
		// the clean path; no such path is a route of this API.
		s.writeError(w, r, errRouteNotFound)
		return
	}
	h, pattern := s.mux.Handler(r)
	if pattern != "" {
		s.mux.ServeHTTP(w, r)
		return
	}
	probe := &statusProbe{header: http.Header{}}
	h.ServeHTTP(probe, r)
	if probe.status == http.StatusMethodNotAllowed {
		allow := probe.header.Get("Allow")
		w.Header().Set("Allow", allow)
		s.writeError(w, r, newError(codeMethodNotAllowed, fmt.Sprintf("%s is not allowed here; allowed: %s", r.Method, allow)))
		return
	}
	s.writeError(w, r, errRouteNotFound)
}

// isCleanPath reports whether p is already in the form ServeMux cleans
// paths to: rooted, no empty, "." or ".." elements, final slash kept.
func isCleanPath(p string) bool {
	if p == "" || p[0] != '/' {
		return false
	}
	c := path.Clean(p)
	if strings.HasSuffix(p, "/") && c != "/" {
		c += "/"
	}
	return c == p
}

// statusProbe records what ServeMux would answer to an unmatched request.
type statusProbe struct {
	header http.Header
	status int
}

func (p *statusProbe) Header() http.Header         { return p.header }
func (p *statusProbe) Write(b []byte) (int, error) { return len(b), nil }
func (p *statusProbe) WriteHeader(status int)      { p.status = status }

// handlerFunc is a handler that returns its error for writeError to answer.
type handlerFunc func(w http.ResponseWriter, r *http.Request) error

// userHandlerFunc is a handler for a signed-in user.
type userHandlerFunc func(w http.ResponseWriter, r *http.Request, acct account) error

// public adapts a handler that needs no token.
func (s *server) public(h handlerFunc) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if err := h(w, r); err != nil {
			s.writeError(w, r, err)
		}
	})
}

// rateLimited refuses a request with 429 when its client address has used
// its allowance.
func (s *server) rateLimited(h handlerFunc) handlerFunc {
	return func(w http.ResponseWriter, r *http.Request) error {
		if ok, wait := s.limiter.allow(clientAddress(r)); !ok {
			s.metrics.rateLimits.WithLabelValues("auth_ip").Inc()
			return &apiError{Code: codeTooManyRequests, Message: "too many requests from this address: try again later",
				RetryAfter: retryAfterSeconds(wait)}
		}
		return h(w, r)
	}
}

// protected adapts a handler that needs a valid bearer token of an
// account that exists, and passes it the account as it stands now.
func (s *server) protected(h userHandlerFunc) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		acct, err := s.signedIn(r)
		if err == nil {
			err = h(w, r, acct)
		}
		if err != nil {
			s.writeError(w, r, err)
		}
	})
}

// member adapts a handler that needs a valid bearer token of an account
// that exists, but reads nothing of the account: whether it exists may be
// as read up to accountRecheck ago on PostgreSQL (Store.AccountExists);
// SQLite answers it exactly from its account cache.
func (s *server) member(h handlerFunc) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		err := s.exists(r)
		if err == nil {
			err = h(w, r)
		}
		if err != nil {
			s.writeError(w, r, err)
		}
	})
}

// exists checks the request's token and that its account exists.
func (s *server) exists(r *http.Request) error {
	uuid, err := s.auth.accountFromRequest(r)
	if err != nil {
		return err
	}
	if s.store.accounts != nil {
		_, err = s.store.Account(r.Context(), uuid) // exact, and as cheap
	} else {
		err = s.store.AccountExists(r.Context(), uuid)
	}
	if errors.Is(err, errNotFound) {
		return errUnauthorized
	}
	return err
}

// signedIn returns the account of the request's token, or a 401 when the
// token is invalid or its account does not exist (any more, or in this
// database).
func (s *server) signedIn(r *http.Request) (account, error) {
	uuid, err := s.auth.accountFromRequest(r)
	if err != nil {
		return account{}, err
	}
	acct, err := s.store.Account(r.Context(), uuid)
	if errors.Is(err, errNotFound) {
		return account{}, errUnauthorized
	}
	return acct, err
}

// countRequests counts each request as it arrives, before anything else
// can answer it.
func (s *server) countRequests(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s.counter.countRequest(r.Context())
		next.ServeHTTP(w, r)
	})
}

// logRequests writes one log line per request, measures it, and turns a
// panic into a 500 instead of a dropped connection.
func (s *server) logRequests(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		ar := recordAccess(w)
		defer func() {
			if p := recover(); p != nil {
				if p == http.ErrAbortHandler {
					panic(p)
				}
				s.logger.ErrorContext(r.Context(), "panic serving request", "method", r.Method, "path", r.URL.Path, "panic", fmt.Sprint(p))
				if ar.status == 0 {
					s.writeError(ar, r, errors.New("panic"))
				}
			}
			d := time.Since(start)
			s.access.write(r, ar, start, d)
			s.metrics.observe(r.Method, r.Pattern, ar.code(), d)
		}()
		next.ServeHTTP(ar, r)
	})
}

// errDatabaseUnavailable answers a request the database cannot serve now.
var errDatabaseUnavailable = &apiError{Code: codeUnavailable, Message: "the database is busy or unavailable: try again shortly", RetryAfter: "2"}

// dbTrouble logs that the database cannot serve, once per episode: at
// most once every dbTroubleEvery, with how many requests were refused
// since the last line.
func (s *server) dbTrouble(r *http.Request, err error) {
	refused := s.refused.Add(1)
	now := time.Now().UnixNano()
	last := s.troubleLogged.Load()
	if now-last < int64(dbTroubleEvery) || !s.troubleLogged.CompareAndSwap(last, now) {
		return
	}
	s.refused.Add(-refused)
	s.logger.ErrorContext(r.Context(), "database unavailable: answering 503", "err", err, "refused", refused)
}

// dbTroubleEvery is how often database trouble is logged while it lasts.
const dbTroubleEvery = 10 * time.Second

// errorBody is the JSON shape of every error.
type errorBody struct {
	IsSuccess bool        `json:"is_success"`
	Error     errorDetail `json:"error"`
}

type errorDetail struct {
	Code    string            `json:"code"`
	Message string            `json:"message"`
	Fields  map[string]string `json:"fields,omitempty"`
}

// writeError answers err. An apiError is shown as it is; anything else is
// a bug, logged here and answered 500 without its text.
func (s *server) writeError(w http.ResponseWriter, r *http.Request, err error) {
	var ae *apiError
	switch {
	case errors.As(err, &ae):
	case r.Context().Err() != nil && (errors.Is(err, r.Context().Err()) || errors.Is(err, driver.ErrBadConn)):
		// The client went away or its deadline passed: not a bug, and
		// nobody reads this answer. (pgx closes a connection whose query
		// was cancelled, and database/sql then reports it as bad.)
		s.logger.DebugContext(r.Context(), "request ended by the client", "method", r.Method, "path", r.URL.Path)
		ae = newError(codeUnavailable, "the request was cancelled")
	case isUnavailable(err):
		s.dbTrouble(r, err)
		ae = errDatabaseUnavailable
	default:
		s.logger.ErrorContext(r.Context(), "internal error", "method", r.Method, "path", r.URL.Path, "err", err)
		ae = newError(codeInternal, "something went wrong on our side")
	}
	if ae.Code == codeUnauthorized {
		w.Header().Set("WWW-Authenticate", `Bearer`)
	}
	if ae.RetryAfter != "" {
		w.Header().Set("Retry-After", ae.RetryAfter)
	}
	encode(w, ae.status(), errorBody{Error: errorDetail{Code: ae.Code, Message: ae.Message, Fields: ae.Fields}})
}

// encode writes v as the JSON body of a response with the given status.
func encode(w http.ResponseWriter, status int, v any) error {
	b, err := marshal(v)
	if err != nil {
		return err
	}
	return writeJSON(w, status, b)
}

// marshal encodes v as JSON without HTML escaping, ending in a newline
// (so that curl's output ends its line): a response body as writeJSON
// takes it. The answers are read by programs, and escaping makes text
// with <, > or & up to six times longer.
func marshal(v any) ([]byte, error) {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		return nil, fmt.Errorf("encode response: %w", err)
	}
	return buf.Bytes(), nil
}

// writeJSON writes an already-encoded JSON body, which ends in a newline,
// in one piece and with its length: a body longer than net/http's 2 KB
// buffer would otherwise go out chunked, in more writes and more bytes.
func writeJSON(w http.ResponseWriter, status int, body []byte) error {
	h := w.Header()
	h["Content-Type"] = []string{"application/json"}
	h["Content-Length"] = []string{strconv.Itoa(len(body))}
	w.WriteHeader(status)
	w.Write(body)
	return nil
}
