package main

import (
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"strings"
)

// CORS answers. The methods and headers are those the API uses; the
// exposed headers are those a browser script needs to read from its
// answers. Browsers cache a preflight's answer for Max-Age seconds
// (Chromium at most 7200), so a changed setting is seen within an hour.
const (
	corsAllowMethods  = "GET, HEAD, POST, PUT, DELETE"
	corsAllowHeaders  = "Authorization, Content-Type, If-None-Match, X-Request-ID"
	corsExposeHeaders = "X-Request-ID, Retry-After, Age, Cache-Status"
	corsMaxAge        = "3600"
)

// corsPolicy lets browser scripts from the origins of CORS_ALLOWED_ORIGINS
// call the API. A nil *corsPolicy allows none and adds no header.
//
// Access-Control-Allow-Origin always names the request's own origin, even
// when any origin is allowed ("*"), as the contract has it. No
// Access-Control-Allow-Credentials is sent: the API authenticates with a
// bearer token that a script sets itself, never with cookies. For the same
// reason "*" allows every Origin value, "null" included: an answer holds
// nothing that the script could not ask for without a browser.
type corsPolicy struct {
	any     bool
	origins map[string]bool // serialized origins: "https://example.com:8443"
}

// newCORS reads CORS_ALLOWED_ORIGINS: origins (scheme://host[:port])
// separated by commas, or "*" for any. Empty means no CORS: nil, nil.
func newCORS(allowed string) (*corsPolicy, error) {
	if strings.TrimSpace(allowed) == "" {
		return nil, nil
	}
	c := &corsPolicy{origins: map[string]bool{}}
	for item := range strings.SplitSeq(allowed, ",") {
		item = strings.TrimSpace(item)
		switch item {
		case "":
			continue // "a,b," is a list of two
		case "*":
			c.any = true
			continue
		}
		origin, err := parseOrigin(item)
		if err != nil {
			return nil, fmt.Errorf("CORS_ALLOWED_ORIGINS: %q: %w", item, err)
		}
		c.origins[origin] = true
	}
	return c, nil
}

// parseOrigin checks that s is an origin, scheme://host[:port] (a final
// "/" tolerated), and returns it as a browser serializes it in its Origin
// header: scheme and host in lower case, no default port, no final "/".
func parseOrigin(s string) (string, error) {
	u, err := url.Parse(s)
	switch {
	case err != nil:
		return "", fmt.Errorf("not an origin: %w", err)
	case u.Scheme == "" || u.Host == "" || u.Opaque != "":
		return "", fmt.Errorf("not an origin: want scheme://host[:port]")
	case u.User != nil || (u.Path != "" && u.Path != "/") || u.RawQuery != "" || u.ForceQuery || u.Fragment != "":
		return "", fmt.Errorf("an origin has no user, path, query or fragment: want scheme://host[:port]")
	case u.Hostname() == "":
		return "", fmt.Errorf("not an origin: no host")
	}
	scheme, host, port := strings.ToLower(u.Scheme), strings.ToLower(u.Hostname()), u.Port()
	if port != "" {
		if n, err := strconv.Atoi(port); err != nil || n < 1 || n > 65535 {
			return "", fmt.Errorf("port %q is not a number from 1 to 65535", port)
		}
	}
	if (scheme == "http" && port == "80") || (scheme == "https" && port == "443") {
		port = ""
	}
	if strings.Contains(host, ":") {
		host = "[" + host + "]" // IPv6
	}
	if port != "" {
		host += ":" + port
	}
	return scheme + "://" + host, nil
}

// allows reports whether a request's Origin header names an allowed origin.
func (c *corsPolicy) allows(origin string) bool {
	if origin == "" {
		return false
	}
	return c.any || c.origins[strings.ToLower(origin)]
}

// middleware answers CORS preflights from allowed origins at once (204),
// before authentication and routing, and adds the CORS headers to every
// other answer to an allowed origin. A preflight from any other origin
// goes on to next like any request, which answers it as it would any
// OPTIONS request.
//
// Vary: Origin is on every answer, allowed or not, since whether the CORS
// headers are there depends on the Origin header: a shared cache must not
// hand one origin's answer to another.
func (c *corsPolicy) middleware(next http.Handler) http.Handler {
	if c == nil {
		return next
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h := w.Header()
		h.Add("Vary", "Origin")
		origin := r.Header.Get("Origin")
		if !c.allows(origin) {
			next.ServeHTTP(w, r)
			return
		}
		h.Set("Access-Control-Allow-Origin", origin)
		if r.Method == http.MethodOptions && r.Header.Get("Access-Control-Request-Method") != "" {
			h.Set("Access-Control-Allow-Methods", corsAllowMethods)
			h.Set("Access-Control-Allow-Headers", corsAllowHeaders)
			h.Set("Access-Control-Max-Age", corsMaxAge)
			w.WriteHeader(http.StatusNoContent)
			return
		}
		h.Set("Access-Control-Expose-Headers", corsExposeHeaders)
		next.ServeHTTP(w, r)
	})
}
