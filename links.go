package main

import (
	"net/http"
	"net/url"
	"strconv"
	"strings"
)

// The /movies/ page parameter, and the next/previous links that point the
// catalogue's pages back at this server.

// pageParam reads the page query parameter: absent means 1; anything but
// a positive integer in plain digits is a 400.
func pageParam(q url.Values) (int, error) {
	vs, ok := q["page"]
	if !ok {
		return 1, nil
	}
	n, ok := positiveInt(vs[0])
	if !ok && vs[0] != "" && strings.Trim(vs[0], "0123456789") == "" && strings.Trim(vs[0], "0") != "" {
		// A positive integer too large to be any page: past the end.
		return 0, newError(codeNotFound, "page not found")
	}
	if !ok {
		return 0, &apiError{Code: codeInvalid, Message: "page must be a positive integer",
			Fields: map[string]string{"page": "must be a positive integer"}}
	}
	return n, nil
}

// positiveInt parses s as a positive integer of ASCII digits only (no
// sign, space or fraction), as a page number is written.
func positiveInt(s string) (int, bool) {
	if s == "" || strings.TrimLeft(s, "0123456789") != "" {
		return 0, false
	}
	n, err := strconv.Atoi(s)
	if err != nil || n < 1 {
		return 0, false
	}
	return n, true
}

// moviesBaseURL returns this server's /movies/ URL as its clients reach
// it: from PUBLIC_URL when set (behind a proxy that rewrites the host or
// path), else from the request's Host. The scheme is https when the
// request came over TLS or a proxy says so in X-Forwarded-Proto. Trusting
// that header from anyone is safe here: it only shapes links in the
// answer to the request that carried it.
func moviesBaseURL(r *http.Request, publicURL string) string {
	if publicURL != "" {
		return strings.TrimRight(publicURL, "/") + "/movies/"
	}
	if r.Host == "" {
		return "/movies/"
	}
	scheme := "http"
	proto, _, _ := strings.Cut(r.Header.Get("X-Forwarded-Proto"), ",")
	if r.TLS != nil || strings.EqualFold(strings.TrimSpace(proto), "https") {
		scheme = "https"
	}
	return scheme + "://" + r.Host + "/movies/"
}

// rewriteLink turns one of the catalogue's next/previous links into the
// same page of this server. The page number comes from the link's page
// parameter; a link without one is page 1, as Django REST framework
// writes the previous link of page 2. No link, or one that names no
// usable page, stays null.
func rewriteLink(link *string, base string) *string {
	if link == nil || *link == "" {
		return nil
	}
	u, err := url.Parse(*link)
	if err != nil {
		return nil
	}
	n := 1
	if vs, ok := u.Query()["page"]; ok {
		if n, ok = positiveInt(vs[0]); !ok {
			return nil
		}
	}
	s := base + "?page=" + strconv.Itoa(n)
	return &s
}
