package main

import (
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"time"
)

// Every handler of the API and the request and response types it speaks.
// Handlers decode, validate, call the store or the catalogue, and encode;
// the rules they apply live in auth.go, collections.go and credy.go.

// credentials is the body of POST /register/ and POST /login/.
type credentials struct {
	Username, Password string
}

// decodeCredentials reads a register or login body.
func decodeCredentials(w http.ResponseWriter, r *http.Request) (credentials, error) {
	o, err := decode(w, r)
	if err != nil {
		return credentials{}, err
	}
	return parseCredentials(o)
}

// parseCredentials reads a register or login body. Both fields are
// required strings; whether they are well-formed is for the caller.
func parseCredentials(o jsonObject) (credentials, error) {
	p := fieldProblems{}
	var c credentials
	for _, f := range []struct {
		name string
		dst  *string
	}{{"username", &c.Username}, {"password", &c.Password}} {
		if v := o.str(p, f.name, f.name); v != nil {
			*f.dst = *v
		} else if p[f.name] == "" {
			p[f.name] = "is required"
		}
	}
	return c, p.err()
}

// tokenResponse is the body of a successful register or login.
type tokenResponse struct {
	AccessToken string `json:"access_token"`
}

// handleRegister serves POST /register/.
func (s *server) handleRegister(w http.ResponseWriter, r *http.Request) error {
	in, err := decodeCredentials(w, r)
	if err != nil {
		return err
	}
	if problems := validateCredentials(in.Username, in.Password); problems != nil {
		return invalidFields(problems)
	}
	hash, err := s.auth.hashPassword(r.Context(), in.Password)
	if err != nil {
		return err
	}
	id, err := s.store.CreateUser(r.Context(), in.Username, hash)
	if errors.Is(err, errUsernameTaken) {
		return &apiError{Code: codeConflict, Message: "this username is taken", Fields: map[string]string{"username": "is taken"}}
	}
	if err != nil {
		return err
	}
	token, err := s.auth.issue(id)
	if err != nil {
		return err
	}
	return encode(w, http.StatusCreated, tokenResponse{token})
}

// handleLogin serves POST /login/. An unknown name and a wrong password get
// the same answer after the same work. A name with too many recent
// failures is locked: 429, whatever the password.
func (s *server) handleLogin(w http.ResponseWriter, r *http.Request) error {
	in, err := decodeCredentials(w, r)
	if err != nil {
		return err
	}
	if hasNUL(in.Username) {
		return invalidFields(map[string]string{"username": "must not contain the NUL character"})
	}
	if problems := validateCredentials(in.Username, in.Password); problems != nil {
		if problems["password"] != "" {
			return invalidFields(map[string]string{"password": problems["password"]})
		}
		// No account can have such a name.
		return errBadCredentials
	}
	now := time.Now()
	var failures bool
	if s.login.MaxFailures > 0 {
		var locked time.Duration
		locked, failures, err = s.store.LoginLock(r.Context(), in.Username, now)
		if err != nil {
			return err
		}
		if locked > 0 {
			return &apiError{Code: codeTooManyRequests, Message: "too many failed logins for this username: try again later",
				RetryAfter: retryAfterSeconds(locked)}
		}
	}
	u, err := s.store.UserByName(r.Context(), in.Username)
	if err != nil && !errors.Is(err, errNotFound) {
		return err
	}
	ok, err := s.auth.checkPassword(r.Context(), u.PasswordHash, in.Password)
	if err != nil {
		return err
	}
	if !ok {
		if s.login.MaxFailures > 0 {
			locked, err := s.store.LoginFailed(r.Context(), in.Username, now, s.login.MaxFailures, s.login.Lockout)
			if err != nil {
				return err
			}
			if locked {
				s.metrics.lockouts.Inc()
				s.logger.WarnContext(r.Context(), "username locked after failed logins", "lockout", s.login.Lockout.String())
			}
		}
		return errBadCredentials
	}
	if failures {
		if err := s.store.LoginSucceeded(r.Context(), in.Username); err != nil {
			return err
		}
	}
	token, err := s.auth.issue(u.UUID)
	if err != nil {
		return err
	}
	return encode(w, http.StatusOK, tokenResponse{token})
}

// handleHealthz serves GET /healthz: a liveness check, 200 while the
// process can answer at all. Whether it can serve (the database) is
// /readyz's question.
func (s *server) handleHealthz(w http.ResponseWriter, r *http.Request) error {
	return writeJSON(w, http.StatusOK, []byte(`{"status":"ok"}`+"\n"))
}

// moviesPage is the body of GET /movies/.
type moviesPage struct {
	Count    int64   `json:"count"`
	Next     *string `json:"next"`
	Previous *string `json:"previous"`
	Data     []movie `json:"data"`
}

// handleMovies serves GET /movies/: one page of the catalogue, with its
// next and previous links pointing back at this server.
func (s *server) handleMovies(w http.ResponseWriter, r *http.Request) error {
	page, err := pageParam(r.URL.Query())
	if err != nil {
		return err
	}
	if !s.catalogue.Configured() {
		return errCatalogueNotConfigured
	}
	p, age, stale, err := s.catalogue.Page(r.Context(), page)
	if err != nil {
		return err
	}
	if stale {
		s.metrics.stalePages.Inc()
		ageHeader, cacheStatus := staleAnswerHeaders(age)
		w.Header().Set("Age", ageHeader)
		w.Header().Set("Cache-Status", cacheStatus)
	}
	base := moviesBaseURL(r, s.publicURL)
	movies := p.movies() // a copy: the page itself is shared
	for i := range movies {
		if id, ok := canonicalUUID(movies[i].UUID); ok {
			movies[i].UUID = id
		}
	}
	return encode(w, http.StatusOK, moviesPage{
		Count:    *p.Count,
		Next:     rewriteLink(p.Next, base),
		Previous: rewriteLink(p.Previous, base),
		Data:     movies,
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
	o, err := decode(w, r)
	if err != nil {
		return collectionInput{}, err
	}
	in, problems := parseCollectionInput(o, create)
	return in, problems.err()
}

// collectionCreated is the body of a 201 from POST /collection/.
type collectionCreated struct {
	CollectionUUID string `json:"collection_uuid"`
}

// handleCollectionCreate serves POST /collection/.
func (s *server) handleCollectionCreate(w http.ResponseWriter, r *http.Request, acct account) error {
	in, err := decodeCollection(w, r, true)
	if err != nil {
		return err
	}
	c := collection{UUID: newTimeUUID(time.Now()), Title: *in.Title}
	if in.Description != nil {
		c.Description = *in.Description
	}
	if in.Movies != nil {
		c.Movies = *in.Movies
	}
	version, err := s.store.CreateCollection(r.Context(), acct.id, c, in.Genres)
	if errors.Is(err, errNoSuchUser) {
		return errUnauthorized
	}
	if errors.Is(err, errLimitReached) {
		return newError(codeLimitReached, fmt.Sprintf("a user may keep at most %d collections", maxCollections))
	}
	if err != nil {
		return err
	}
	s.cache.created(acct.id, version-1, version, collectionSummary{Title: c.Title, UUID: c.UUID, Description: c.Description}, in.Genres)
	// As encode would write collectionCreated{c.UUID}: a canonical UUID
	// needs no escaping.
	return writeJSON(w, http.StatusCreated, []byte(`{"collection_uuid":"`+c.UUID+"\"}\n"))
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

// handleCollectionList serves GET /collection/: the body cached at the
// user's version, or the list cached there rendered, or else the list read
// from the database, which is cached at the version it was read at.
func (s *server) handleCollectionList(w http.ResponseWriter, r *http.Request, acct account) error {
	if body, ok := s.cache.get(acct.id, "", acct.version); ok {
		return writeJSON(w, http.StatusOK, body)
	}
	list, ok := s.cache.listAt(acct.id, acct.version)
	version := acct.version
	if !ok {
		collections, genres, v, err := s.store.Collections(r.Context(), acct.id)
		if err != nil {
			return err
		}
		list, version = &cachedList{collections: collections, genres: genres}, v
	}
	body, err := marshal(collectionList{IsSuccess: true, Data: list.data()})
	if err != nil {
		return err
	}
	s.cache.putList(acct.id, version, list, body)
	return writeJSON(w, http.StatusOK, body)
}

// cached answers 200 with the body cached for the user's collection id
// at the user's version, or else with the body load renders, which it
// caches at that version. The version was read when the request
// began, before the data: a write landing in between makes the entry
// stale at once, never stale data look current. Another user's write, or
// a counter flush, leaves the entry alone.
func (s *server) cached(w http.ResponseWriter, r *http.Request, acct account, id string, load func() ([]byte, error)) error {
	if body, ok := s.cache.get(acct.id, id, acct.version); ok {
		return writeJSON(w, http.StatusOK, body)
	}
	body, err := load()
	if err != nil {
		return err
	}
	s.cache.put(acct.id, id, acct.version, body)
	return writeJSON(w, http.StatusOK, body)
}

// handleCollectionGet serves GET /collection/{id}/.
func (s *server) handleCollectionGet(w http.ResponseWriter, r *http.Request, acct account) error {
	id, err := collectionID(r)
	if err != nil {
		return err
	}
	return s.cached(w, r, acct, id, func() ([]byte, error) {
		c, err := s.store.Collection(r.Context(), acct.id, id)
		if errors.Is(err, errNotFound) {
			return nil, errCollectionNotFound
		}
		if err != nil {
			return nil, err
		}
		return c.body(), nil
	})
}

// handleCollectionUpdate serves PUT /collection/{id}/.
func (s *server) handleCollectionUpdate(w http.ResponseWriter, r *http.Request, acct account) error {
	id, err := collectionID(r)
	if err != nil {
		return err
	}
	in, err := decodeCollection(w, r, false)
	if err != nil {
		return err
	}
	c, version, err := s.store.UpdateCollection(r.Context(), acct.id, id, in)
	if errors.Is(err, errNotFound) {
		return errCollectionNotFound
	}
	if err != nil {
		return err
	}
	body := c.body()
	if in.Movies == nil {
		s.cache.renamed(acct.id, version-1, version, c)
	} else {
		s.cache.advance(acct.id, version-1, version, id)
	}
	// The answer is GET's at the version this write made.
	s.cache.put(acct.id, id, version, body)
	return writeJSON(w, http.StatusOK, body)
}

// handleCollectionDelete serves DELETE /collection/{id}/.
func (s *server) handleCollectionDelete(w http.ResponseWriter, r *http.Request, acct account) error {
	id, err := collectionID(r)
	if err != nil {
		return err
	}
	version, err := s.store.DeleteCollection(r.Context(), acct.id, id)
	if errors.Is(err, errNotFound) {
		return errCollectionNotFound
	}
	if err != nil {
		return err
	}
	s.cache.advance(acct.id, version-1, version, id)
	w.WriteHeader(http.StatusNoContent)
	return nil
}

// handleRequestCount serves GET /request-count/.
func (s *server) handleRequestCount(w http.ResponseWriter, r *http.Request) error {
	b := make([]byte, 0, 32)
	b = append(b, `{"requests":`...)
	b = strconv.AppendInt(b, s.counter.Count(), 10)
	b = append(b, "}\n"...)
	return writeJSON(w, http.StatusOK, b)
}

// handleRequestCountReset serves POST /request-count/reset/.
func (s *server) handleRequestCountReset(w http.ResponseWriter, r *http.Request) error {
	if err := s.counter.Reset(r.Context()); err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, []byte(`{"message":"request count reset successfully"}`+"\n"))
}
