package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"go/ast"
	"go/parser"
	"go/token"
	"io"
	"mime"
	"net/http"
	"net/http/httptest"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"

	"github.com/getkin/kin-openapi/openapi3"
	"github.com/getkin/kin-openapi/openapi3filter"
	"github.com/getkin/kin-openapi/routers"
	"github.com/getkin/kin-openapi/routers/legacy"
)

// The document is OpenAPI 3.1 with 3.1 forms where they matter: nullable
// fields are `"type": ["string", "null"]` (3.0's `nullable` means nothing
// in 3.1), and `const` and `examples` are JSON Schema 2020-12 keywords.
// kin-openapi v0.153.0 validates a 3.1 document as 3.1 (Validate turns on
// its 3.1 rules by itself) and openapi3filter checks bodies of a 3.1
// document with its JSON Schema 2020-12 validator, so nothing had to be
// kept to the 3.0 subset. Redocly's linter reads the same forms.

// openAPIValidator checks requests and responses against openapi.json.
type openAPIValidator struct {
	doc    *openapi3.T
	router routers.Router
}

// loadOpenAPI loads and validates the embedded document once for the
// whole test binary: every test that checks traffic shares it.
var loadOpenAPI = sync.OnceValues(func() (*openAPIValidator, error) {
	data, err := docsFS.ReadFile("openapi.json")
	if err != nil {
		return nil, err
	}
	loader := openapi3.NewLoader()
	doc, err := loader.LoadFromData(data)
	if err != nil {
		return nil, fmt.Errorf("load openapi.json: %w", err)
	}
	// NewRouter validates the document first.
	router, err := legacy.NewRouter(doc)
	if err != nil {
		return nil, fmt.Errorf("route openapi.json: %w", err)
	}
	return &openAPIValidator{doc: doc, router: router}, nil
})

// newOpenAPIValidator returns the validator of the embedded openapi.json.
func newOpenAPIValidator(t testing.TB) *openAPIValidator {
	t.Helper()
	v, err := loadOpenAPI()
	if err != nil {
		t.Fatal(err)
	}
	return v
}

// check fails t unless one exchange with the server agrees with the
// document. req (with its body in reqBody, since the server has read
// req.Body) is matched to its operation, the path without its final "/"
// standing for the path with it, as the server serves both.
//
//   - A request the document calls valid gets a response the document
//     lists for the operation, with its headers and body.
//   - A request the document calls invalid (a field too long, no body, a
//     page of 0...) must not succeed: its response must be an error the
//     operation lists.
//   - A request to no operation (an unknown path, or a known path with
//     another method) must get the error envelope with a 404 or 405;
//     a CORS preflight may get a 204 instead. Files under /docs/ that the
//     page loads are not operations and are not checked.
//
// The server reads every request body as JSON, whatever its Content-Type
// (curl -d sends a form type), so the check does too.
func (v *openAPIValidator) check(t testing.TB, req *http.Request, reqBody []byte, status int, header http.Header, body []byte) {
	t.Helper()
	if err := v.validate(req, reqBody, status, header, body); err != nil {
		t.Errorf("openapi: %s %s → %d: %v", req.Method, req.URL.RequestURI(), status, err)
	}
}

// validate is check without the testing.TB, so that the self-test can see
// the error.
func (v *openAPIValidator) validate(req *http.Request, reqBody []byte, status int, header http.Header, body []byte) error {
	ctx := context.Background()
	r := req.Clone(ctx)
	r.Body = io.NopCloser(bytes.NewReader(reqBody))
	r.GetBody = func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(reqBody)), nil }
	r.ContentLength = int64(len(reqBody))
	if len(reqBody) > 0 && !isJSONMediaType(r.Header.Get("Content-Type")) {
		r.Header.Set("Content-Type", "application/json")
	}
	head := r.Method == http.MethodHead
	if head {
		r.Method = http.MethodGet // HEAD is GET without the body
	}
	if strings.HasPrefix(r.URL.Path, "/docs/") {
		if r.URL.Path != "/docs/" {
			return nil // a file of the page, not an operation
		}
		r.URL.Path = "/docs"
	}

	route, params, err := v.findRoute(r)
	if err != nil {
		return v.validateUnrouted(req, status, header, body)
	}
	op := route.Method + " " + route.Path

	in := &openapi3filter.RequestValidationInput{
		Request:    r,
		PathParams: params,
		Route:      route,
		Options: &openapi3filter.Options{
			AuthenticationFunc:    openapi3filter.NoopAuthenticationFunc,
			IncludeResponseStatus: true,
			SkipSettingDefaults:   true,
			MultiError:            true,
			ExcludeResponseBody:   head,
		},
	}
	if reqErr := openapi3filter.ValidateRequest(ctx, in); reqErr != nil && status < 400 {
		return fmt.Errorf("%s: the document calls the request invalid, yet the server answered %d: %v", op, status, reqErr)
	}
	out := &openapi3filter.ResponseValidationInput{
		RequestValidationInput: in,
		Status:                 status,
		Header:                 header,
		Options:                in.Options,
	}
	out.SetBodyBytes(body)
	if err := openapi3filter.ValidateResponse(ctx, out); err != nil {
		return fmt.Errorf("%s: %v", op, err)
	}
	return nil
}

// findRoute finds r's operation, trying the path with a final "/" when the
// path without one names none.
func (v *openAPIValidator) findRoute(r *http.Request) (*routers.Route, map[string]string, error) {
	route, params, err := v.router.FindRoute(r)
	if err == nil || strings.HasSuffix(r.URL.Path, "/") {
		return route, params, err
	}
	slashed := *r.URL
	slashed.Path += "/"
	slashed.RawPath = ""
	r2 := r.Clone(r.Context())
	r2.URL = &slashed
	route, params, err2 := v.router.FindRoute(r2)
	if err2 != nil {
		return nil, nil, err
	}
	r.URL = &slashed // so that ValidateRequest matches the path parameters
	return route, params, nil
}

// validateUnrouted checks the answer to a request that matches no
// operation of the document.
func (v *openAPIValidator) validateUnrouted(req *http.Request, status int, header http.Header, body []byte) error {
	if req.Method == http.MethodOptions && req.Header.Get("Access-Control-Request-Method") != "" && status == http.StatusNoContent {
		return nil // a CORS preflight answered
	}
	if status != http.StatusNotFound && status != http.StatusMethodNotAllowed {
		return fmt.Errorf("no operation of the document matches, yet the server answered %d", status)
	}
	if ct := header.Get("Content-Type"); !isJSONMediaType(ct) {
		return fmt.Errorf("error answer has Content-Type %q, want application/json", ct)
	}
	if header.Get("X-Request-ID") == "" {
		return errors.New("error answer has no X-Request-ID")
	}
	var value any
	if err := json.Unmarshal(body, &value); err != nil {
		return fmt.Errorf("error answer is not JSON: %v", err)
	}
	schema := v.doc.Components.Schemas["Error"].Value
	if err := schema.VisitJSON(value, openapi3.EnableJSONSchema2020(), openapi3.VisitAsResponse()); err != nil {
		return fmt.Errorf("error answer does not match components/schemas/Error: %v", err)
	}
	return nil
}

// isJSONMediaType reports whether a Content-Type value is application/json.
func isJSONMediaType(v string) bool {
	mt, _, err := mime.ParseMediaType(v)
	return err == nil && mt == "application/json"
}

// openAPIOperations returns "METHOD /path/" for every operation of the
// document, sorted, with path templates as the document writes them
// ("GET /collection/{uuid}/").
func openAPIOperations(t testing.TB) []string {
	t.Helper()
	v := newOpenAPIValidator(t)
	var ops []string
	for path, item := range v.doc.Paths.Map() {
		for method := range item.Operations() {
			ops = append(ops, method+" "+path)
		}
	}
	slices.Sort(ops)
	return ops
}

// TestOpenAPIDocument checks that openapi.json loads and validates as
// OpenAPI 3.1, examples included, and describes every endpoint of the
// contract.
func TestOpenAPIDocument(t *testing.T) {
	v := newOpenAPIValidator(t)
	if got, want := v.doc.OpenAPI, "3.1.0"; got != want {
		t.Fatalf("openapi version: got %q, want %q", got, want)
	}
	if !v.doc.IsOpenAPI31OrLater() {
		t.Fatal("kin-openapi does not read the document as 3.1")
	}
	err := v.doc.Validate(context.Background(),
		openapi3.EnableExamplesValidation(),
		openapi3.EnableSchemaDefaultsValidation(),
		openapi3.EnableSchemaPatternValidation(),
		openapi3.EnableMultiError())
	if err != nil {
		t.Fatalf("validate openapi.json: %v", err)
	}

	want := []string{
		"DELETE /collection/{uuid}/",
		"GET /collection/",
		"GET /collection/{uuid}/",
		"GET /docs",
		"GET /healthz",
		"GET /movies/",
		"GET /openapi.json",
		"GET /readyz",
		"GET /request-count/",
		"POST /collection/",
		"POST /login/",
		"POST /register/",
		"POST /request-count/reset/",
		"PUT /collection/{uuid}/",
	}
	if got := openAPIOperations(t); !slices.Equal(got, want) {
		t.Errorf("operations:\n got %q\nwant %q", got, want)
	}

	public := map[string]bool{
		"POST /register/": true, "POST /login/": true, "GET /healthz": true,
		"GET /readyz": true, "GET /openapi.json": true, "GET /docs": true,
	}
	if got := v.doc.Security; len(got) != 1 || got[0]["bearerAuth"] == nil {
		t.Errorf("global security: got %v, want bearerAuth", got)
	}
	for path, item := range v.doc.Paths.Map() {
		for method, op := range item.Operations() {
			name := method + " " + path
			if isPublic := op.Security != nil && len(*op.Security) == 0; isPublic != public[name] {
				t.Errorf("%s: public is %v, want %v", name, isPublic, public[name])
			}
			for code, resp := range op.Responses.Map() {
				if resp.Value.Headers["X-Request-ID"] == nil {
					t.Errorf("%s: response %s does not list X-Request-ID", name, code)
				}
				if (code == "429" || code == "503") && resp.Value.Headers["Retry-After"] == nil {
					t.Errorf("%s: response %s does not list Retry-After", name, code)
				}
			}
		}
	}
}

// TestOpenAPIValidator shows that check accepts exchanges that follow the
// document and catches those that do not.
func TestOpenAPIValidator(t *testing.T) {
	v := newOpenAPIValidator(t)
	jsonHeader := func(kv ...string) http.Header {
		h := http.Header{"Content-Type": {"application/json"}, "X-Request-Id": {"req-1"}}
		for i := 0; i+1 < len(kv); i += 2 {
			h.Set(kv[i], kv[i+1])
		}
		return h
	}
	const collectionID = "6f1c2a9e-8d4b-4c3a-9f0e-1b2c3d4e5f60"
	tests := []struct {
		name    string
		method  string
		target  string
		reqBody string
		status  int
		header  http.Header
		body    string
		wantErr string // "" when the exchange follows the document
	}{
		{
			name: "register", method: "POST", target: "/register/",
			reqBody: `{"username":"alice","password":"correct horse"}`,
			status:  201, header: jsonHeader(), body: `{"access_token":"x.y.z"}`,
		},
		{
			name: "register without the final slash", method: "POST", target: "/register",
			reqBody: `{"username":"alice","password":"correct horse"}`,
			status:  201, header: jsonHeader(), body: `{"access_token":"x.y.z"}`,
		},
		{
			name: "register answer without its token", method: "POST", target: "/register/",
			reqBody: `{"username":"alice","password":"correct horse"}`,
			status:  201, header: jsonHeader(), body: `{}`,
			wantErr: "POST /register/: response body doesn't match schema",
		},
		{
			name: "register answer without X-Request-ID", method: "POST", target: "/register/",
			reqBody: `{"username":"alice","password":"correct horse"}`,
			status:  201, header: http.Header{"Content-Type": {"application/json"}}, body: `{"access_token":"x.y.z"}`,
			wantErr: "X-Request-ID",
		},
		{
			name: "register refusing a bad username", method: "POST", target: "/register/",
			reqBody: `{"username":"al ice","password":"correct horse"}`,
			status:  400, header: jsonHeader(),
			body: `{"is_success":false,"error":{"code":"invalid_request","message":"some fields are invalid","fields":{"username":"is invalid"}}}`,
		},
		{
			name: "register accepting a bad username", method: "POST", target: "/register/",
			reqBody: `{"username":"al ice","password":"correct horse"}`,
			status:  201, header: jsonHeader(), body: `{"access_token":"x.y.z"}`,
			wantErr: "calls the request invalid",
		},
		{
			name: "a status the operation does not list", method: "POST", target: "/register/",
			reqBody: `{"username":"alice","password":"correct horse"}`,
			status:  404, header: jsonHeader(),
			body:    `{"is_success":false,"error":{"code":"not_found","message":"no"}}`,
			wantErr: "status is not supported",
		},
		{
			name: "429 without Retry-After", method: "POST", target: "/login/",
			reqBody: `{"username":"alice","password":"wrong password"}`,
			status:  429, header: jsonHeader(),
			body:    `{"is_success":false,"error":{"code":"too_many_requests","message":"later"}}`,
			wantErr: "Retry-After",
		},
		{
			name: "429 with Retry-After", method: "POST", target: "/login/",
			reqBody: `{"username":"alice","password":"wrong password"}`,
			status:  429, header: jsonHeader("Retry-After", "30"),
			body: `{"is_success":false,"error":{"code":"too_many_requests","message":"later"}}`,
		},
		{
			name: "stale movies page", method: "GET", target: "/movies/?page=2",
			status: 200, header: jsonHeader("Age", "12", "Cache-Status", "movies; hit; detail=upstream-error"),
			body: `{"count":45466,"next":"http://localhost/movies/?page=3","previous":null,"data":[{"title":"Queerama","description":"...","genres":"","uuid":"57baf4f4-c9ef-4197-9e4f-acf04eae5b4d"}]}`,
		},
		{
			name: "movies page 0 answered 200", method: "GET", target: "/movies/?page=0",
			status: 200, header: jsonHeader(),
			body:    `{"count":0,"next":null,"previous":null,"data":[]}`,
			wantErr: "calls the request invalid",
		},
		{
			name: "collection with a null list", method: "GET", target: "/collection/" + collectionID,
			status: 200, header: jsonHeader(),
			body:    `{"uuid":"` + collectionID + `","title":"Weekend","description":"","movies":null}`,
			wantErr: "GET /collection/{uuid}/: response body doesn't match schema",
		},
		{
			name: "collection title over 200 characters accepted", method: "POST", target: "/collection/",
			reqBody: `{"title":"` + strings.Repeat("é", 201) + `"}`,
			status:  201, header: jsonHeader(), body: `{"collection_uuid":"` + collectionID + `"}`,
			wantErr: "calls the request invalid",
		},
		{
			name: "collection title of 200 characters accepted", method: "POST", target: "/collection/",
			reqBody: `{"title":"` + strings.Repeat("é", 200) + `"}`,
			status:  201, header: jsonHeader(), body: `{"collection_uuid":"` + collectionID + `"}`,
		},
		{
			name: "blank collection title accepted", method: "POST", target: "/collection/",
			reqBody: `{"title":" \t "}`,
			status:  201, header: jsonHeader(), body: `{"collection_uuid":"` + collectionID + `"}`,
			wantErr: "calls the request invalid",
		},
		{
			name: "NUL in a description accepted", method: "POST", target: "/collection/",
			reqBody: `{"title":"Weekend","description":"a\u0000b"}`,
			status:  201, header: jsonHeader(), body: `{"collection_uuid":"` + collectionID + `"}`,
			wantErr: "calls the request invalid",
		},
		{
			name: "movie without uuid accepted", method: "POST", target: "/collection/",
			reqBody: `{"title":"Weekend","movies":[{"title":"Betrayal"}]}`,
			status:  201, header: jsonHeader(), body: `{"collection_uuid":"` + collectionID + `"}`,
			wantErr: "calls the request invalid",
		},
		{
			name: "created collection uuid in upper case", method: "POST", target: "/collection/",
			reqBody: `{"title":"Weekend"}`,
			status:  201, header: jsonHeader(), body: `{"collection_uuid":"` + strings.ToUpper(collectionID) + `"}`,
			wantErr: "response body doesn't match schema",
		},
		{
			name: "update with nulls", method: "PUT", target: "/collection/" + collectionID + "/",
			reqBody: `{"title":null,"description":null,"movies":null}`,
			status:  200, header: jsonHeader(),
			body: `{"uuid":"` + collectionID + `","title":"Weekend","description":"","movies":[]}`,
		},
		{
			name: "head", method: "HEAD", target: "/healthz",
			status: 200, header: jsonHeader(),
		},
		{
			name: "delete", method: "DELETE", target: "/collection/" + collectionID + "/",
			status: 204, header: http.Header{"X-Request-Id": {"req-1"}},
		},
		{
			name: "unknown route", method: "GET", target: "/nope/",
			status: 404, header: jsonHeader(),
			body: `{"is_success":false,"error":{"code":"not_found","message":"no such endpoint"}}`,
		},
		{
			name: "unknown route answered 200", method: "GET", target: "/nope/",
			status: 200, header: jsonHeader(), body: `{}`,
			wantErr: "no operation of the document matches",
		},
		{
			name: "wrong method", method: "PATCH", target: "/collection/",
			status: 405, header: jsonHeader("Allow", "GET, POST"),
			body: `{"is_success":false,"error":{"code":"method_not_allowed","message":"PATCH is not allowed here"}}`,
		},
		{
			name: "404 in another shape", method: "GET", target: "/nope/",
			status: 404, header: jsonHeader(), body: `{"error":"not found"}`,
			wantErr: "components/schemas/Error",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			req := httptest.NewRequest(tt.method, tt.target, strings.NewReader(tt.reqBody))
			req.Header.Set("Authorization", "Bearer x.y.z")
			err := v.validate(req, []byte(tt.reqBody), tt.status, tt.header, []byte(tt.body))
			switch {
			case tt.wantErr == "" && err != nil:
				t.Fatalf("got error %v, want none", err)
			case tt.wantErr != "" && err == nil:
				t.Fatalf("got no error, want one containing %q", tt.wantErr)
			case tt.wantErr != "" && !strings.Contains(err.Error(), tt.wantErr):
				t.Fatalf("got error %v, want one containing %q", err, tt.wantErr)
			}
		})
	}

	// check itself fails the test it is given.
	probe := &failRecorder{TB: t}
	req := httptest.NewRequest("POST", "/register/", nil)
	v.check(probe, req, nil, 201, jsonHeader(), []byte(`{}`))
	if !probe.failed {
		t.Error("check did not fail the test for a 201 register answer without access_token")
	}
}

// TestOpenAPIServed checks that GET /openapi.json answers the embedded
// document as JSON, and a 304 when revalidated.
func TestOpenAPIServed(t *testing.T) {
	rec := httptest.NewRecorder()
	handleOpenAPI(rec, httptest.NewRequest("GET", "/openapi.json", nil))
	want, _ := docsFS.ReadFile("openapi.json")
	if got, want := rec.Code, 200; got != want {
		t.Fatalf("status: got %d, want %d", got, want)
	}
	if got, want := rec.Header().Get("Content-Type"), "application/json"; got != want {
		t.Errorf("Content-Type: got %q, want %q", got, want)
	}
	if !bytes.Equal(rec.Body.Bytes(), want) {
		t.Error("body is not openapi.json")
	}
	etag := rec.Header().Get("ETag")
	if etag == "" {
		t.Fatal("no ETag")
	}

	req := httptest.NewRequest("GET", "/openapi.json", nil)
	req.Header.Set("If-None-Match", etag)
	rec = httptest.NewRecorder()
	handleOpenAPI(rec, req)
	if got, want := rec.Code, http.StatusNotModified; got != want {
		t.Errorf("revalidated: got %d, want %d", got, want)
	}
}

// failRecorder is a testing.TB whose failures are recorded, not reported.
type failRecorder struct {
	testing.TB
	failed bool
}

func (f *failRecorder) Helper()               {}
func (f *failRecorder) Errorf(string, ...any) { f.failed = true }
func (f *failRecorder) Fatalf(string, ...any) { f.failed = true }

// TestRoutesMatchDocument checks that every route of addRoutes has an
// operation in openapi.json and every operation a route. The routes are
// read from addRoutes' source, so that a route added there and not
// described fails here.
func TestRoutesMatchDocument(t *testing.T) {
	fset := token.NewFileSet()
	f, err := parser.ParseFile(fset, "routes.go", nil, 0)
	if err != nil {
		t.Fatal(err)
	}
	routes := map[string]bool{}
	ast.Inspect(f, func(n ast.Node) bool {
		fn, ok := n.(*ast.FuncDecl)
		if !ok || fn.Name.Name != "addRoutes" {
			return true
		}
		ast.Inspect(fn.Body, func(n ast.Node) bool {
			call, ok := n.(*ast.CallExpr)
			if sel, isSel := callee(call); ok && isSel && sel == "handle" && len(call.Args) > 0 {
				if lit, ok := call.Args[0].(*ast.BasicLit); ok && lit.Kind == token.STRING {
					pattern, _ := strconv.Unquote(lit.Value)
					routes[normalizeRoute(pattern)] = true
				}
			}
			return true
		})
		return false
	})
	if len(routes) < 10 {
		t.Fatalf("found only %d routes in addRoutes: %v", len(routes), routes)
	}
	ops := map[string]bool{}
	for _, op := range openAPIOperations(t) {
		ops[normalizeRoute(op)] = true
	}
	// The files the docs page loads are not operations of the API.
	delete(routes, "GET /docs/{}")
	for r := range routes {
		if !ops[r] {
			t.Errorf("route %q has no operation in openapi.json", r)
		}
	}
	for op := range ops {
		if !routes[op] {
			t.Errorf("operation %q has no route in addRoutes", op)
		}
	}
}

// callee names the method a call expression calls, if it is a selector.
func callee(call *ast.CallExpr) (string, bool) {
	if call == nil {
		return "", false
	}
	sel, ok := call.Fun.(*ast.SelectorExpr)
	if !ok {
		return "", false
	}
	return sel.Sel.Name, true
}

// normalizeRoute writes "GET /collection/{id}/" and the document's
// "GET /collection/{uuid}/" alike: path parameters by position, not name,
// and no final slash.
func normalizeRoute(pattern string) string {
	method, path, _ := strings.Cut(pattern, " ")
	parts := strings.Split(strings.TrimSuffix(path, "/"), "/")
	for i, p := range parts {
		if strings.HasPrefix(p, "{") {
			parts[i] = "{}"
		}
	}
	return method + " " + strings.Join(parts, "/")
}
