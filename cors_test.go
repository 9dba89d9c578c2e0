package main

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

// TestCORSConfig checks which CORS_ALLOWED_ORIGINS values start the server
// and which origins they allow.
func TestCORSConfig(t *testing.T) {
	tests := []struct {
		name    string
		allowed string
		wantErr bool
		allow   []string // origins that must be allowed
		deny    []string // origins that must not be
	}{
		{name: "unset", allowed: ""},
		{name: "blank", allowed: "  "},
		{
			name: "one origin", allowed: "https://app.example.com",
			allow: []string{"https://app.example.com"},
			deny:  []string{"http://app.example.com", "https://app.example.com:8443", "https://example.com", "null", ""},
		},
		{
			name: "several, spaced, with a final comma", allowed: " https://a.example , http://localhost:3000,",
			allow: []string{"https://a.example", "http://localhost:3000"},
			deny:  []string{"http://localhost:3001", "http://localhost"},
		},
		{
			name: "written with a default port, final slash and capitals", allowed: "HTTPS://App.Example.com:443/",
			allow: []string{"https://app.example.com"},
		},
		{name: "IPv6", allowed: "http://[::1]:8080", allow: []string{"http://[::1]:8080"}},
		{
			name: "any", allowed: "*",
			allow: []string{"https://anything.example", "http://localhost:1234"},
			deny:  []string{""},
		},
		{name: "no scheme", allowed: "app.example.com", wantErr: true},
		{name: "with a path", allowed: "https://app.example.com/app", wantErr: true},
		{name: "with a query", allowed: "https://app.example.com?x=1", wantErr: true},
		{name: "with a user", allowed: "https://me@app.example.com", wantErr: true},
		{name: "bad port", allowed: "https://app.example.com:99999", wantErr: true},
		{name: "null", allowed: "null", wantErr: true},
		{name: "one bad among good", allowed: "https://a.example,not an origin", wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := newCORS(tt.allowed)
			if tt.wantErr {
				if err == nil {
					t.Fatalf("newCORS(%q): no error, want one", tt.allowed)
				}
				if !strings.Contains(err.Error(), "CORS_ALLOWED_ORIGINS") {
					t.Errorf("error %q does not name CORS_ALLOWED_ORIGINS", err)
				}
				return
			}
			if err != nil {
				t.Fatalf("newCORS(%q): %v", tt.allowed, err)
			}
			if strings.TrimSpace(tt.allowed) == "" {
				if c != nil {
					t.Fatalf("newCORS(%q): got a policy, want nil", tt.allowed)
				}
				return
			}
			for _, o := range tt.allow {
				if !c.allows(o) {
					t.Errorf("%q not allowed", o)
				}
			}
			for _, o := range tt.deny {
				if c.allows(o) {
					t.Errorf("%q allowed", o)
				}
			}
		})
	}
}

// TestCORSMiddleware checks the headers a browser gets, preflight and
// actual requests, from allowed and other origins.
func TestCORSMiddleware(t *testing.T) {
	// next stands for the API: a JSON answer, 405 for OPTIONS as the
	// router gives it.
	next := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("X-Request-ID", "req-1")
		if r.Method == http.MethodOptions {
			w.WriteHeader(http.StatusMethodNotAllowed)
			w.Write([]byte(`{"is_success":false,"error":{"code":"method_not_allowed","message":"no"}}`))
			return
		}
		w.Write([]byte(`{"requests":1}`))
	})
	const site, other = "https://app.example.com", "https://evil.example"
	corsHeaders := []string{
		"Access-Control-Allow-Origin", "Access-Control-Allow-Methods", "Access-Control-Allow-Headers",
		"Access-Control-Max-Age", "Access-Control-Expose-Headers", "Access-Control-Allow-Credentials",
	}
	tests := []struct {
		name       string
		allowed    string
		method     string
		origin     string
		preflight  bool // sends Access-Control-Request-Method
		wantStatus int
		want       map[string]string // headers that must have these values
		wantNoCORS bool              // no Access-Control-* header at all
		wantVary   bool
	}{
		{
			name: "preflight from an allowed origin", allowed: site, method: "OPTIONS", origin: site, preflight: true,
			wantStatus: 204, wantVary: true,
			want: map[string]string{
				"Access-Control-Allow-Origin":  site,
				"Access-Control-Allow-Methods": corsAllowMethods,
				"Access-Control-Allow-Headers": corsAllowHeaders,
				"Access-Control-Max-Age":       corsMaxAge,
			},
		},
		{
			name: "request from an allowed origin", allowed: site, method: "GET", origin: site,
			wantStatus: 200, wantVary: true,
			want: map[string]string{
				"Access-Control-Allow-Origin":   site,
				"Access-Control-Expose-Headers": corsExposeHeaders,
				"X-Request-ID":                  "req-1",
			},
		},
		{
			name: "OPTIONS without Access-Control-Request-Method is no preflight", allowed: site, method: "OPTIONS", origin: site,
			wantStatus: 405, wantVary: true,
			want: map[string]string{"Access-Control-Allow-Origin": site},
		},
		{
			name: "preflight from another origin", allowed: site, method: "OPTIONS", origin: other, preflight: true,
			wantStatus: 405, wantNoCORS: true, wantVary: true,
		},
		{
			name: "request from another origin", allowed: site, method: "GET", origin: other,
			wantStatus: 200, wantNoCORS: true, wantVary: true,
		},
		{
			name: "request without Origin", allowed: site, method: "GET",
			wantStatus: 200, wantNoCORS: true, wantVary: true,
		},
		{
			name: "none configured: preflight", allowed: "", method: "OPTIONS", origin: site, preflight: true,
			wantStatus: 405, wantNoCORS: true,
		},
		{
			name: "none configured: request", allowed: "", method: "GET", origin: site,
			wantStatus: 200, wantNoCORS: true,
		},
		{
			name: "any origin: preflight", allowed: "*", method: "OPTIONS", origin: other, preflight: true,
			wantStatus: 204, wantVary: true,
			want: map[string]string{"Access-Control-Allow-Origin": other},
		},
		{
			name: "any origin: request", allowed: "*", method: "POST", origin: other,
			wantStatus: 200, wantVary: true,
			want: map[string]string{"Access-Control-Allow-Origin": other, "Access-Control-Expose-Headers": corsExposeHeaders},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := newCORS(tt.allowed)
			if err != nil {
				t.Fatal(err)
			}
			req := httptest.NewRequest(tt.method, "/request-count/", nil)
			if tt.origin != "" {
				req.Header.Set("Origin", tt.origin)
			}
			if tt.preflight {
				req.Header.Set("Access-Control-Request-Method", "GET")
				req.Header.Set("Access-Control-Request-Headers", "authorization")
			}
			rec := httptest.NewRecorder()
			c.middleware(next).ServeHTTP(rec, req)

			if got, want := rec.Code, tt.wantStatus; got != want {
				t.Fatalf("status: got %d, want %d", got, want)
			}
			for k, want := range tt.want {
				if got := rec.Header().Get(k); got != want {
					t.Errorf("%s: got %q, want %q", k, got, want)
				}
			}
			if tt.wantNoCORS {
				for _, k := range corsHeaders {
					if v := rec.Header().Values(k); len(v) > 0 {
						t.Errorf("%s: got %q, want none", k, v)
					}
				}
			}
			if got := rec.Header().Get("Vary") == "Origin"; got != tt.wantVary {
				t.Errorf("Vary: got %q, want Origin: %v", rec.Header().Get("Vary"), tt.wantVary)
			}
			if got := rec.Header().Get("Access-Control-Allow-Credentials"); got != "" {
				t.Errorf("Access-Control-Allow-Credentials: got %q, want none", got)
			}
		})
	}
}

// TestCORSAllowHeaders checks that a browser may send what the API reads.
func TestCORSAllowHeaders(t *testing.T) {
	for _, h := range []string{"Authorization", "Content-Type", "X-Request-ID"} {
		if !strings.Contains(corsAllowHeaders, h) {
			t.Errorf("Access-Control-Allow-Headers lacks %s", h)
		}
	}
	for _, h := range []string{"X-Request-ID", "Retry-After", "Age", "Cache-Status"} {
		if !strings.Contains(corsExposeHeaders, h) {
			t.Errorf("Access-Control-Expose-Headers lacks %s", h)
		}
	}
}
