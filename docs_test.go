package main

import (
	"bytes"
	"compress/gzip"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

// TestDocsPage checks what a browser gets from /docs: the page and its
// files with their types, the Content-Security-Policy that keeps it to
// this server, and JSON errors for anything else.
func TestDocsPage(t *testing.T) {
	h := newTestApp(t).handler
	tests := []struct {
		name, method, path string
		status             int
		contentType        string
		bodyHas            string
	}{
		{"page", "GET", "/docs", 200, "text/html; charset=utf-8", `src="/docs/init.js"`},
		{"page with final slash", "GET", "/docs/", 200, "text/html; charset=utf-8", `src="/docs/swagger-ui-bundle.js"`},
		{"initializer", "GET", "/docs/init.js", 200, "text/javascript; charset=utf-8", `url: "/openapi.json"`},
		{"bundle", "GET", "/docs/swagger-ui-bundle.js", 200, "text/javascript; charset=utf-8", "SwaggerUIBundle"},
		{"styles", "GET", "/docs/swagger-ui.css", 200, "text/css; charset=utf-8", ".swagger-ui"},
		{"licence", "GET", "/docs/LICENSE", 200, "text/plain; charset=utf-8", "Apache License"},
		{"head", "HEAD", "/docs", 200, "text/html; charset=utf-8", ""},
		{"unknown file", "GET", "/docs/nope.js", 404, "application/json", `"code":"not_found"`},
		{"compressed name", "GET", "/docs/swagger-ui-bundle.js.gz", 404, "application/json", `"code":"not_found"`},
		{"nested path", "GET", "/docs/a/init.js", 404, "application/json", `"code":"not_found"`},
		{"other method", "POST", "/docs", 405, "application/json", `"code":"method_not_allowed"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rec := httptest.NewRecorder()
			h.ServeHTTP(rec, httptest.NewRequest(tt.method, tt.path, nil))
			res := rec.Result()
			body, _ := io.ReadAll(res.Body)
			if got, want := res.StatusCode, tt.status; got != want {
				t.Fatalf("status: got %d, want %d", got, want)
			}
			if got, want := res.Header.Get("Content-Type"), tt.contentType; got != want {
				t.Errorf("Content-Type: got %q, want %q", got, want)
			}
			if got, want := res.Header.Get("X-Content-Type-Options"), "nosniff"; tt.status == 200 && got != want {
				t.Errorf("X-Content-Type-Options: got %q, want %q", got, want)
			}
			if !strings.Contains(string(body), tt.bodyHas) {
				t.Errorf("body does not contain %q", tt.bodyHas)
			}
			if tt.status == 200 {
				csp := res.Header.Get("Content-Security-Policy")
				if !strings.Contains(csp, "default-src 'self'") || strings.Contains(csp, "http") || strings.Contains(csp, "unsafe") {
					t.Errorf("Content-Security-Policy: got %q, want this server only", csp)
				}
			}
		})
	}
}

// TestDocsGzipped checks that a large file is sent compressed to a client
// that accepts gzip, plain to one that does not, the same bytes either way.
func TestDocsGzipped(t *testing.T) {
	h := newTestApp(t).handler
	get := func(acceptEncoding string) *http.Response {
		req := httptest.NewRequest("GET", "/docs/swagger-ui-bundle.js", nil)
		if acceptEncoding != "" {
			req.Header.Set("Accept-Encoding", acceptEncoding)
		}
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		return rec.Result()
	}

	plainRes := get("")
	plain, _ := io.ReadAll(plainRes.Body)
	if got := plainRes.Header.Get("Content-Encoding"); got != "" {
		t.Fatalf("without Accept-Encoding: Content-Encoding %q, want none", got)
	}
	if len(plain) < 1<<20 || !bytes.Contains(plain, []byte("SwaggerUIBundle")) {
		t.Fatalf("plain bundle: %d bytes, not the bundle", len(plain))
	}

	zipped := get("br, gzip;q=0.8")
	if got, want := zipped.Header.Get("Content-Encoding"), "gzip"; got != want {
		t.Fatalf("with gzip accepted: Content-Encoding %q, want %q", got, want)
	}
	if got, want := zipped.Header.Get("Vary"), "Accept-Encoding"; got != want {
		t.Errorf("Vary: got %q, want %q", got, want)
	}
	zr, err := gzip.NewReader(zipped.Body)
	if err != nil {
		t.Fatal(err)
	}
	unzipped, err := io.ReadAll(zr)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(unzipped, plain) {
		t.Error("the gzipped and plain bundles differ")
	}
	if zipped.Header.Get("ETag") == plainRes.Header.Get("ETag") {
		t.Error("the gzipped and plain bundles have the same ETag")
	}

	for name, f := range docsFiles() {
		if f.gzipped && len(f.plain()) == 0 {
			t.Errorf("%s does not decompress", name)
		}
	}
}

// TestDocsAcceptsGzip checks the reading of Accept-Encoding.
func TestDocsAcceptsGzip(t *testing.T) {
	for header, want := range map[string]bool{
		"":                       false,
		"gzip":                   true,
		"GZIP":                   true,
		"gzip, deflate, br":      true,
		"deflate, br":            false,
		"gzip;q=0":               false,
		"gzip; q=0.5":            true,
		"*":                      true,
		"*;q=0":                  false,
		"gzip;q=0, *":            false,
		"identity":               false,
		"br;q=1.0, gzip;q=0.001": true,
	} {
		if got := acceptsGzip(header); got != want {
			t.Errorf("acceptsGzip(%q): got %v, want %v", header, got, want)
		}
	}
}
