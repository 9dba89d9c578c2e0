package main

import (
	"bytes"
	"net/http"
	"strconv"
	"strings"
	"testing"
)

func TestRoutingErrorsAreJSON(t *testing.T) { forEachBackend(t, testRoutingErrorsAreJSON) }

func testRoutingErrorsAreJSON(t *testing.T, be backend) {
	app := newTestApp(t, be.fresh(t))
	u := app.newUser()
	tests := []struct {
		name, method, path string
		status             int
		code, allow        string
	}{
		{"unknown route", "GET", "/nope/", 404, "not_found", ""},
		{"unknown route with token", "GET", "/collections/", 404, "not_found", ""},
		{"root", "GET", "/", 404, "not_found", ""},
		{"wrong method on register", "GET", "/register/", 405, "method_not_allowed", "POST"},
		{"wrong method without slash", "DELETE", "/login", 405, "method_not_allowed", "POST"},
		{"wrong method on collection list", "PATCH", "/collection/", 405, "method_not_allowed", "GET, HEAD, POST"},
		{"wrong method on one collection", "POST", "/collection/00000000-0000-4000-8000-000000000000/", 405, "method_not_allowed", "DELETE, GET, HEAD, PUT"},
		{"wrong method on reset", "GET", "/request-count/reset/", 405, "method_not_allowed", "POST"},
		{"unclean path", "GET", "//collection/", 404, "not_found", ""},
		{"subpath of a collection", "GET", "/collection/00000000-0000-4000-8000-000000000000/movies/", 404, "not_found", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			res := app.do(tt.method, tt.path, u.token, nil).mustStatus(t, tt.status)
			if got := res.errorCode(t); got != tt.code {
				t.Fatalf("code: got %q, want %q", got, tt.code)
			}
			if got := res.header.Get("Allow"); got != tt.allow {
				t.Fatalf("Allow: got %q, want %q", got, tt.allow)
			}
		})
	}
}

func TestPathsAnswerWithoutFinalSlash(t *testing.T) {
	forEachBackend(t, testPathsAnswerWithoutFinalSlash)
}

func testPathsAnswerWithoutFinalSlash(t *testing.T, be backend) {
	app := newTestApp(t, be.fresh(t))
	u := app.newUser()
	id := app.newCollection(u, newMovie("Drama"))
	tests := []struct {
		method, path string
		body         any
		status       int
	}{
		{"POST", "/login", map[string]string{"username": u.name, "password": u.password}, 200},
		{"POST", "/collection", map[string]string{"title": "No slash"}, 201},
		{"GET", "/collection", nil, 200},
		{"GET", "/collection/" + id, nil, 200},
		{"PUT", "/collection/" + id, map[string]string{"title": "Renamed"}, 200},
		{"GET", "/request-count", nil, 200},
		{"POST", "/request-count/reset", nil, 200},
		{"DELETE", "/collection/" + id, nil, 204},
	}
	for _, tt := range tests {
		t.Run(tt.method+" "+tt.path, func(t *testing.T) {
			app.do(tt.method, tt.path, u.token, tt.body).mustStatus(t, tt.status)
		})
	}
}

func TestHealthz(t *testing.T) { forEachBackend(t, testHealthz) }

// testHealthz checks liveness apart from readiness: /healthz answers while
// the process lives, /readyz only while the database serves.
func testHealthz(t *testing.T, be backend) {
	ta := newTestApp(t, be.fresh(t))
	for _, path := range []string{"/healthz", "/healthz/", "/readyz", "/readyz/"} {
		res := ta.do("GET", path, "", nil).mustStatus(t, 200)
		if got := res.json(t)["status"]; got != "ok" && got != "ready" {
			t.Fatalf("%s status: got %v", path, got)
		}
	}
	h := ta.handler
	ta.close()
	closed := &testApp{t: t, app: &app{handler: h}}
	closed.do("GET", "/healthz", "", nil).mustStatus(t, http.StatusOK)
	res := closed.do("GET", "/readyz", "", nil).mustStatus(t, http.StatusServiceUnavailable)
	if strings.Contains(string(res.body), "sql") {
		t.Fatalf("readiness check leaks database text: %s", res.body)
	}
	if res.header.Get("Retry-After") == "" {
		t.Fatal("503 from /readyz without Retry-After")
	}
}

func TestSuccessResponsesAreJSON(t *testing.T) { forEachBackend(t, testSuccessResponsesAreJSON) }

// Success answers are JSON sent with their length, whatever their size
// (a body past net/http's 2 KB buffer would otherwise go out chunked),
// and end their line for curl.
func testSuccessResponsesAreJSON(t *testing.T, be backend) {
	app := newTestApp(t, be.fresh(t))
	u := app.newUser()
	var movies []movie
	for range 20 {
		movies = append(movies, newMovie("Drama,Comedy"))
	}
	id := app.newCollection(u, movies...)
	for _, path := range []string{"/collection/", "/collection/" + id + "/", "/request-count/"} {
		res := app.do("GET", path, u.token, nil).mustStatus(t, 200)
		if ct := res.header.Get("Content-Type"); ct != "application/json" {
			t.Errorf("%s Content-Type: got %q", path, ct)
		}
		if cl := res.header.Get("Content-Length"); cl != strconv.Itoa(len(res.body)) {
			t.Errorf("%s Content-Length: got %q for a body of %d bytes", path, cl, len(res.body))
		}
		if !bytes.HasSuffix(res.body, []byte("}\n")) || bytes.Count(res.body, []byte("\n")) != 1 {
			t.Errorf("%s: the body does not end in one newline: %q", path, res.body)
		}
	}
}
