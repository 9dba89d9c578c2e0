package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"path"
	"strings"
	"time"
)

// maxBodyBytes caps every request body.
const maxBodyBytes = 1 << 20

// server holds what the handlers need.
type server struct {
	logger    *slog.Logger
	store     *Store
	auth      *authenticator
	counter   *counter
	catalogue *catalogue
	publicURL string
	mux       *http.ServeMux
	cache     *responseCache
}

// newServer returns the service's whole HTTP handler: the routes of
// addRoutes inside the counting, logging and recovering middleware.
func newServer(logger *slog.Logger, store *Store, auth *authenticator, counter *counter, catalogue *catalogue, publicURL string) http.Handler {
	s := newRoutes(logger, store, auth, counter, catalogue, publicURL)
	// The counter is outermost: it counts every request on arrival,
	// whatever happens to it next.
	return counter.middleware(s.uncounted())
}

// newRoutes builds the server and its routes.
func newRoutes(logger *slog.Logger, store *Store, auth *authenticator, counter *counter, catalogue *catalogue, publicURL string) *server {
	s := &server{
		logger:    logger,
		store:     store,
		auth:      auth,
		counter:   counter,
		catalogue: catalogue,
		publicURL: publicURL,
		mux:       http.NewServeMux(),
		cache:     newResponseCache(8 << 20),
	}
	s.addRoutes()
	return s
}

// uncounted is the whole handler but for the request counter.
func (s *server) uncounted() http.Handler {
	return s.logRequests(http.HandlerFunc(s.route))
}

// addRoutes lists the whole API. Each path answers with and without its
// final slash; protected routes need a bearer token.
func (s *server) addRoutes() {
	s.handle("POST /register/", s.public(s.handleRegister))
	s.handle("POST /login/", s.public(s.handleLogin))
	s.handle("GET /healthz", s.public(s.handleHealthz))

	s.handle("GET /movies/", s.protected(s.handleMovies))

	s.handle("POST /collection/", s.protected(s.handleCollectionCreate))
	s.handle("GET /collection/", s.protected(s.handleCollectionList))
	s.handle("GET /collection/{id}/", s.protected(s.handleCollectionGet))
	s.handle("PUT /collection/{id}/", s.protected(s.handleCollectionUpdate))
	s.handle("DELETE /collection/{id}/", s.protected(s.handleCollectionDelete))

	s.handle("GET /request-count/", s.protected(s.handleRequestCount))
	s.handle("POST /request-count/reset/", s.protected(s.handleRequestCountReset))
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
	switch probe.status {
	case http.StatusMethodNotAllowed:
		w.Header().Set("Allow", probe.header.Get("Allow"))
		s.writeError(w, r, newError(codeMethodNotAllowed, fmt.Sprintf("%s is not allowed here; allowed: %s", r.Method, probe.header.Get("Allow"))))
	case http.StatusNotFound:
		s.writeError(w, r, errRouteNotFound)
	default:
		s.writeError(w, r, errRouteNotFound)
	}
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
type userHandlerFunc func(w http.ResponseWriter, r *http.Request, userID int64) error

// public adapts a handler that needs no token.
func (s *server) public(h handlerFunc) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if err := h(w, r); err != nil {
			s.writeError(w, r, err)
		}
	})
}

// protected adapts a handler that needs a valid bearer token and passes it
// the token's user id.
func (s *server) protected(h userHandlerFunc) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		userID, err := s.auth.userFromRequest(r)
		if err == nil {
			err = h(w, r, userID)
		}
		if err != nil {
			s.writeError(w, r, err)
		}
	})
}

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
	case r.Context().Err() != nil && errors.Is(err, r.Context().Err()):
		// The client went away or its deadline passed: not a bug, and
		// nobody reads this answer.
		s.logger.Debug("request ended by the client", "method", r.Method, "path", r.URL.Path)
		ae = newError(codeUnavailable, "the request was cancelled")
	default:
		s.logger.Error("internal error", "method", r.Method, "path", r.URL.Path, "err", err)
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
	b, err := json.Marshal(v)
	if err != nil {
		return fmt.Errorf("encode response: %w", err)
	}
	return writeJSON(w, status, b)
}

// writeJSON writes an already-encoded JSON body.
func writeJSON(w http.ResponseWriter, status int, body []byte) error {
	h := w.Header()
	h["Content-Type"] = []string{"application/json"}
	w.WriteHeader(status)
	w.Write(body)
	w.Write(newline) // so that curl's output ends its line
	return nil
}

var newline = []byte{'\n'}

// decode reads one JSON value from the request body into v. An empty,
// malformed, oversized or trailing-garbage body, or a known field of the
// wrong type, is an apiError the client can act on.
func decode(w http.ResponseWriter, r *http.Request, v any) error {
	if r.ContentLength > maxBodyBytes {
		return errTooLarge
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxBodyBytes))
	var tooLarge *http.MaxBytesError
	if errors.As(err, &tooLarge) {
		return errTooLarge
	}
	if err != nil {
		return newError(codeInvalid, "the request body could not be read")
	}
	// Only an object will do: not an array, a string, or null.
	if trimmed := bytes.TrimLeft(body, " \t\r\n"); len(trimmed) == 0 || trimmed[0] != '{' {
		if len(trimmed) > 0 && !json.Valid(body) {
			return newError(codeInvalid, "the request body is not valid JSON")
		}
		return newError(codeInvalid, "the request body must be a JSON object")
	}
	// Unmarshal also rejects anything but white space after the object.
	err = json.Unmarshal(body, v)
	var typeErr *json.UnmarshalTypeError
	switch {
	case err == nil:
		return nil
	case errors.As(err, &typeErr) && typeErr.Field != "":
		return &apiError{Code: codeInvalid, Message: "some fields are invalid",
			Fields: map[string]string{typeErr.Field: "must be " + jsonKind(typeErr.Type.Kind().String())}}
	default:
		return newError(codeInvalid, "the request body is not valid JSON")
	}
}

var errTooLarge = newError(codeTooLarge, fmt.Sprintf("the request body must not exceed %d bytes", maxBodyBytes))

// jsonKind names a Go kind as JSON calls it.
func jsonKind(kind string) string {
	switch kind {
	case "string":
		return "a string"
	case "slice", "array":
		return "a list"
	case "struct", "map", "ptr":
		return "an object"
	case "bool":
		return "true or false"
	default:
		return "a number"
	}
}

// handleHealthz serves GET /healthz.
func (s *server) handleHealthz(w http.ResponseWriter, r *http.Request) error {
	if err := s.store.Ping(r.Context()); err != nil {
		s.logger.Error("health check failed", "err", err)
		return newError(codeUnavailable, "the database does not answer")
	}
	return writeJSON(w, http.StatusOK, []byte(`{"status":"ok"}`))
}

// statusRecorder remembers the status a handler wrote, for the access log.
type statusRecorder struct {
	http.ResponseWriter
	status int
}

func (sr *statusRecorder) WriteHeader(status int) {
	if sr.status == 0 {
		sr.status = status
	}
	sr.ResponseWriter.WriteHeader(status)
}

func (sr *statusRecorder) Write(b []byte) (int, error) {
	if sr.status == 0 {
		sr.status = http.StatusOK
	}
	return sr.ResponseWriter.Write(b)
}

func (sr *statusRecorder) Unwrap() http.ResponseWriter { return sr.ResponseWriter }

// logRequests writes one log line per request and turns a panic into a
// 500 instead of a dropped connection.
func (s *server) logRequests(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		sr := &statusRecorder{ResponseWriter: w}
		defer func() {
			if p := recover(); p != nil {
				if p == http.ErrAbortHandler {
					panic(p)
				}
				s.logger.Error("panic serving request", "method", r.Method, "path", r.URL.Path, "panic", fmt.Sprint(p))
				if sr.status == 0 {
					s.writeError(sr, r, errors.New("panic"))
				}
			}
			status := sr.status
			if status == 0 {
				status = http.StatusOK
			}
			s.logger.LogAttrs(r.Context(), slog.LevelInfo, "request",
				slog.String("method", r.Method),
				slog.String("path", r.URL.Path),
				slog.Int("status", status),
				slog.Float64("duration_ms", float64(time.Since(start).Microseconds())/1000))
		}()
		next.ServeHTTP(sr, r)
	})
}

// collectionID returns the {id} of the path in canonical form, or a 404:
// a malformed UUID names no collection.
func collectionID(r *http.Request) (string, error) {
	id, ok := canonicalUUID(r.PathValue("id"))
	if !ok {
		return "", errCollectionNotFound
	}
	return id, nil
}

// decodeCollection reads and validates a collection body.
func decodeCollection(w http.ResponseWriter, r *http.Request, create bool) (collectionInput, error) {
	var in collectionInput
	if err := decode(w, r, &in); err != nil {
		return in, err
	}
	if problems := in.normalize(create); problems != nil {
		return in, invalidFields(problems)
	}
	return in, nil
}

// collectionCreated is the body of a 201 from POST /collection/.
type collectionCreated struct {
	CollectionUUID string `json:"collection_uuid"`
}

// handleCollectionCreate serves POST /collection/.
func (s *server) handleCollectionCreate(w http.ResponseWriter, r *http.Request, userID int64) error {
	in, err := decodeCollection(w, r, true)
	if err != nil {
		return err
	}
	c := collection{UUID: newUUID(), Title: *in.Title}
	if in.Description != nil {
		c.Description = *in.Description
	}
	if in.Movies != nil {
		c.Movies = *in.Movies
	}
	err = s.store.CreateCollection(r.Context(), userID, c)
	if errors.Is(err, errNoSuchUser) {
		return errUnauthorized
	}
	if err != nil {
		return err
	}
	return encode(w, http.StatusCreated, collectionCreated{c.UUID})
}

// collectionList is the body of GET /collection/.
type collectionList struct {
	IsSuccess bool               `json:"is_success"`
	Data      collectionListData `json:"data"`
}

type collectionListData struct {
	Collections     []collectionSummary `json:"collections"`
	FavouriteGenres string              `json:"favourite_genres"`
}

// handleCollectionList serves GET /collection/.
func (s *server) handleCollectionList(w http.ResponseWriter, r *http.Request, userID int64) error {
	return s.cached(w, r, cacheKey{userID: userID}, func() (any, error) {
		list, genres, err := s.store.Collections(r.Context(), userID)
		if err != nil {
			return nil, err
		}
		return collectionList{
			IsSuccess: true,
			Data:      collectionListData{Collections: list, FavouriteGenres: favouriteGenres(genres)},
		}, nil
	})
}

// cached answers 200 with the body cached for key if the database has not
// changed since it was read, else with load's value, which it caches.
func (s *server) cached(w http.ResponseWriter, r *http.Request, key cacheKey, load func() (any, error)) error {
	// The version is read before the data: a write landing in between
	// makes the entry stale at once, never stale data look current.
	var version int64
	cacheable := false
	if s.cache != nil {
		version, cacheable = s.store.Version(r.Context())
	}
	if cacheable {
		if body, ok := s.cache.get(key, version); ok {
			return writeJSON(w, http.StatusOK, body)
		}
	}
	v, err := load()
	if err != nil {
		return err
	}
	body, err := json.Marshal(v)
	if err != nil {
		return fmt.Errorf("encode response: %w", err)
	}
	if cacheable {
		s.cache.put(key, version, body)
	}
	return writeJSON(w, http.StatusOK, body)
}

// handleCollectionGet serves GET /collection/{id}/.
func (s *server) handleCollectionGet(w http.ResponseWriter, r *http.Request, userID int64) error {
	id, err := collectionID(r)
	if err != nil {
		return err
	}
	return s.cached(w, r, cacheKey{userID: userID, id: id}, func() (any, error) {
		c, err := s.store.Collection(r.Context(), userID, id)
		if errors.Is(err, errNotFound) {
			return nil, errCollectionNotFound
		}
		return c, err
	})
}

// handleCollectionUpdate serves PUT /collection/{id}/.
func (s *server) handleCollectionUpdate(w http.ResponseWriter, r *http.Request, userID int64) error {
	id, err := collectionID(r)
	if err != nil {
		return err
	}
	in, err := decodeCollection(w, r, false)
	if err != nil {
		return err
	}
	c, err := s.store.UpdateCollection(r.Context(), userID, id, in)
	if errors.Is(err, errNotFound) {
		return errCollectionNotFound
	}
	if err != nil {
		return err
	}
	return encode(w, http.StatusOK, c)
}

// handleCollectionDelete serves DELETE /collection/{id}/.
func (s *server) handleCollectionDelete(w http.ResponseWriter, r *http.Request, userID int64) error {
	id, err := collectionID(r)
	if err != nil {
		return err
	}
	err = s.store.DeleteCollection(r.Context(), userID, id)
	if errors.Is(err, errNotFound) {
		return errCollectionNotFound
	}
	if err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}
