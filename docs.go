package main

import (
	"bytes"
	"compress/gzip"
	"crypto/sha256"
	"embed"
	"encoding/hex"
	"io"
	"net/http"
	"path"
	"strconv"
	"strings"
	"sync"
	"time"
)

// docsFS holds the OpenAPI document and the Swagger UI page that shows
// it, so that the binary serves both with no file beside it and the page
// loads nothing from another host. docs/ holds our index.html and init.js,
// and the few files of the swagger-ui-dist package (pinned in package.json)
// that the page loads, with their licence. The two large ones are kept
// gzip-compressed (name.gz): that saves 1.4 MB of binary and of every
// first page load.
//
//go:embed openapi.json docs
var docsFS embed.FS

// docsCSP lets the Swagger UI page use what this server sends and nothing
// else: no inline script (hence init.js), no inline style, no other host.
// Images may also be data: URLs, which swagger-ui.css uses for its icons.
// Swagger UI 5.35 needs no 'unsafe-inline' for styles: React sets its
// style properties through the DOM, which the policy does not restrict, and
// TestDocsBrowser fails on any violation the page reports.
const docsCSP = "default-src 'self'; img-src 'self' data:; " +
	"frame-ancestors 'none'; base-uri 'none'; form-action 'self'"

// staticFile is one embedded file, ready to serve with its validator.
type staticFile struct {
	body        []byte // as embedded: gzip-compressed when gzipped
	gzipped     bool
	contentType string
	etag        string
	// plain returns a gzipped body decompressed, for a client that does
	// not accept gzip. It decompresses once, on first need.
	plain func() []byte
}

// contentTypes names the media type of each kind of embedded file, rather
// than leaving it to the machine's mime tables.
var contentTypes = map[string]string{
	".html": "text/html; charset=utf-8",
	".js":   "text/javascript; charset=utf-8",
	".css":  "text/css; charset=utf-8",
	".json": "application/json",
	".png":  "image/png",
	".txt":  "text/plain; charset=utf-8",
	"":      "text/plain; charset=utf-8", // LICENSE, NOTICE
}

// docsFiles returns the embedded files by the path they are served at,
// relative to the site's root ("docs/init.js"). They are hashed for their
// ETags on first use, not at start-up.
var docsFiles = sync.OnceValue(func() map[string]*staticFile {
	files := map[string]*staticFile{}
	names := []string{"openapi.json"}
	entries, _ := docsFS.ReadDir("docs") // cannot fail: go:embed checked it
	for _, e := range entries {
		names = append(names, "docs/"+e.Name())
	}
	for _, name := range names {
		body, _ := docsFS.ReadFile(name)
		sum := sha256.Sum256(body)
		f := &staticFile{body: body, etag: `"` + hex.EncodeToString(sum[:8]) + `"`}
		if trimmed, ok := strings.CutSuffix(name, ".gz"); ok {
			name, f.gzipped = trimmed, true
			f.plain = sync.OnceValue(func() []byte { return gunzip(body) })
		}
		f.contentType = contentTypes[path.Ext(name)]
		files[name] = f
	}
	return files
})

// gunzip decompresses an embedded file; TestDocsGzipped checks that each
// one decompresses.
func gunzip(b []byte) []byte {
	zr, err := gzip.NewReader(bytes.NewReader(b))
	if err != nil {
		return nil
	}
	plain, _ := io.ReadAll(zr)
	return plain
}

// serve answers the file: compressed as embedded when it is gzipped and
// the client accepts gzip, plain otherwise. The ETag, which differs
// between the two, lets a browser revalidate with a 304 instead of
// downloading the file again; no-cache makes it revalidate, so that a new
// binary's files are seen at once.
func (f *staticFile) serve(w http.ResponseWriter, r *http.Request) {
	h := w.Header()
	body, etag := f.body, f.etag
	if f.gzipped {
		h.Add("Vary", "Accept-Encoding")
		if acceptsGzip(r.Header.Get("Accept-Encoding")) {
			h.Set("Content-Encoding", "gzip")
		} else {
			body, etag = f.plain(), strings.TrimSuffix(etag, `"`)+`-plain"`
		}
	}
	h.Set("Content-Type", f.contentType)
	h.Set("ETag", etag)
	h.Set("Cache-Control", "no-cache")
	h.Set("X-Content-Type-Options", "nosniff")
	// ServeContent answers If-None-Match, Range and HEAD.
	http.ServeContent(w, r, "", time.Time{}, bytes.NewReader(body))
}

// acceptsGzip reports whether an Accept-Encoding header value accepts
// gzip: named (or matched by "*") without q=0 (RFC 9110, section 12.5.3).
func acceptsGzip(header string) bool {
	accepted := false
	for part := range strings.SplitSeq(header, ",") {
		coding, params, _ := strings.Cut(part, ";")
		coding = strings.ToLower(strings.TrimSpace(coding))
		if coding != "gzip" && coding != "x-gzip" && coding != "*" {
			continue
		}
		q := 1.0
		if name, value, ok := strings.Cut(strings.TrimSpace(params), "="); ok && strings.EqualFold(strings.TrimSpace(name), "q") {
			if v, err := strconv.ParseFloat(strings.TrimSpace(value), 64); err == nil {
				q = v
			}
		}
		if coding != "*" {
			return q > 0 // an explicit gzip entry wins over "*"
		}
		accepted = q > 0
	}
	return accepted
}

// handleOpenAPI serves GET /openapi.json: the API's OpenAPI 3.1 document.
func handleOpenAPI(w http.ResponseWriter, r *http.Request) {
	docsFiles()["openapi.json"].serve(w, r)
}

// handleDocs serves GET /docs and GET /docs/{file}: the Swagger UI page
// for /openapi.json, and the files it loads.
func handleDocs(w http.ResponseWriter, r *http.Request) error {
	name := r.PathValue("file")
	if name == "" {
		name = "index.html"
	}
	f := docsFiles()["docs/"+name]
	if f == nil {
		return errRouteNotFound
	}
	w.Header().Set("Content-Security-Policy", docsCSP)
	w.Header().Set("Referrer-Policy", "no-referrer")
	f.serve(w, r)
	return nil
}
