package main

import (
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// What one hostile user can try, and what the service answers.

// TestCollectionLimits sends bodies at every limit and one over it: at the
// limit is stored, one over is a 400 naming the field, and changes nothing.
func TestCollectionLimits(t *testing.T) { forEachBackend(t, testCollectionLimits) }

func testCollectionLimits(t *testing.T, be backend) {
	app := newTestApp(t, be.fresh(t))
	u := app.newUser()
	m := newMovie("Drama")
	withMovie := func(f func(*movie)) []movie { c := m; f(&c); return []movie{c} }
	genres := func(n, each int) string { // n distinct genres of each bytes, comma-separated
		parts := make([]string, n)
		for i := range parts {
			parts[i] = fmt.Sprintf("%0*d", each, i)
		}
		return strings.Join(parts, ",")
	}
	manyMovies := func(n int) []movie {
		out := make([]movie, n)
		for i := range out {
			out[i] = newMovie("")
		}
		return out
	}
	manyGenres := func(movies, each int) []movie { // distinct genres across movies
		out := manyMovies(movies)
		for i := range out {
			parts := make([]string, each)
			for j := range parts {
				parts[j] = fmt.Sprintf("m%dg%d", i, j)
			}
			out[i].Genres = strings.Join(parts, ",")
		}
		return out
	}
	named := func(names ...string) []movie { // movies that carry these genres, 9 a movie
		var out []movie
		for len(names) > 0 {
			n := min(9, len(names))
			out = append(out, newMovie(strings.Join(names[:n], ",")))
			names = names[n:]
		}
		return out
	}
	sized := func(n, each int, fill string) []string { // n distinct genres of each characters of fill
		out := make([]string, n)
		for i := range out {
			id := fmt.Sprintf("g%d", i)
			out[i] = id + strings.Repeat(fill, each-len(id))
		}
		return out
	}
	tests := []struct {
		name  string
		body  map[string]any
		field string // "" when the body is within the limits
	}{
		{"title of 200 characters", map[string]any{"title": strings.Repeat("é", 200)}, ""},
		{"title of 201 characters", map[string]any{"title": strings.Repeat("é", 201)}, "title"},
		{"description of 2,000", map[string]any{"title": "t", "description": strings.Repeat("<", 2000)}, ""},
		{"description of 2,001", map[string]any{"title": "t", "description": strings.Repeat("<", 2001)}, "description"},
		{"1,000 movies", map[string]any{"title": "t", "movies": manyMovies(1000)}, ""},
		{"1,001 movies", map[string]any{"title": "t", "movies": manyMovies(1001)}, "movies"},
		{"movie title of 500", map[string]any{"title": "t", "movies": withMovie(func(m *movie) { m.Title = strings.Repeat("x", 500) })}, ""},
		{"movie title of 501", map[string]any{"title": "t", "movies": withMovie(func(m *movie) { m.Title = strings.Repeat("x", 501) })}, "movies[0].title"},
		{"movie description of 5,000", map[string]any{"title": "t", "movies": withMovie(func(m *movie) { m.Description = strings.Repeat("x", 5000) })}, ""},
		{"movie description of 5,001", map[string]any{"title": "t", "movies": withMovie(func(m *movie) { m.Description = strings.Repeat("x", 5001) })}, "movies[0].description"},
		{"genres of 1,000 bytes", map[string]any{"title": "t", "movies": withMovie(func(m *movie) { m.Genres = genres(100, 9) + "x" })}, ""},
		{"genres of 1,001 bytes", map[string]any{"title": "t", "movies": withMovie(func(m *movie) { m.Genres = genres(100, 9) + "xy" })}, "movies[0].genres"},
		{"a genre of 100 bytes", map[string]any{"title": "t", "movies": withMovie(func(m *movie) { m.Genres = strings.Repeat("g", 100) })}, ""},
		{"a genre of 101 bytes", map[string]any{"title": "t", "movies": withMovie(func(m *movie) { m.Genres = strings.Repeat("g", 101) })}, "movies[0].genres"},
		{"100 distinct genres in a collection", map[string]any{"title": "t", "movies": manyGenres(10, 10)}, ""},
		{"101 distinct genres in a collection", map[string]any{"title": "t", "movies": append(manyGenres(10, 10), newMovie("one more"))}, "movies"},
		{"distinct genres of 2,000 bytes together", map[string]any{"title": "t", "movies": named(sized(20, 100, "x")...)}, ""},
		{"distinct genres of 2,001 bytes together", map[string]any{"title": "t", "movies": named(append(sized(20, 100, "x"), "y")...)}, "movies"},
		{"a control character counts as six bytes", map[string]any{"title": "t", "movies": named(sized(5, 84, "\x01")...)}, "movies"},
		{"a movie listed twice counts its genres once", map[string]any{"title": "t", "movies": func() []movie {
			first := named(sized(60, 10, "x")...)
			again := named(sized(60, 10, "y")...)
			for i := range again {
				again[i].UUID = first[i%len(first)].UUID // dropped: listed before
			}
			return append(append(first, named(sized(30, 10, "z")...)...), again...)
		}()}, ""},
		{"the same genre in two movies counts once", map[string]any{"title": "t", "movies": append(named(sized(20, 100, "x")...), named(sized(20, 100, "x")...)...)}, ""},
		// The bomb that took minutes: 40,000 genres in one movie.
		{"40,000 genres", map[string]any{"title": "t", "movies": withMovie(func(m *movie) { m.Genres = genres(40000, 3) })}, "movies[0].genres"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			before := app.listCollections(u)
			res := app.do("POST", "/collection/", u.token, tt.body)
			if tt.field == "" {
				res.mustStatus(t, http.StatusCreated)
				return
			}
			res.mustStatus(t, http.StatusBadRequest)
			var e errorBody
			json.Unmarshal(res.body, &e)
			if e.Error.Fields[tt.field] == "" {
				t.Fatalf("fields: got %v, want a problem with %q", e.Error.Fields, tt.field)
			}
			if after := app.listCollections(u); len(after.Collections) != len(before.Collections) {
				t.Fatal("a refused body changed the collections")
			}
		})
	}
}

// TestCollectionCountLimit: a user may keep 1,000 collections; the
// 1,001st create is a 409 limit_reached; deleting one makes room.
func TestCollectionCountLimit(t *testing.T) { forEachBackend(t, testCollectionCountLimit) }

func testCollectionCountLimit(t *testing.T, be backend) {
	app := newTestApp(t, be.fresh(t))
	u := app.newUser()
	id := app.newCollection(u)
	// As if the user had made 999 more: the limit is on the stored count.
	if _, err := app.store.db.write.Exec(`UPDATE user_versions SET collections = $1`, maxCollections); err != nil {
		t.Fatal(err)
	}
	res := app.do("POST", "/collection/", u.token, map[string]any{"title": "one too many"}).mustStatus(t, http.StatusConflict)
	if got := res.errorCode(t); got != codeLimitReached {
		t.Fatalf("code: got %q, want %q", got, codeLimitReached)
	}
	app.do("DELETE", "/collection/"+id+"/", u.token, nil).mustStatus(t, http.StatusNoContent)
	app.newCollection(u)
	// Another user is not affected by this one's count.
	app.newCollection(app.newUser())
}

// TestListIsNotHTMLEscaped: text full of <, > and & comes back as sent,
// not six times longer as \u003c.
func TestListIsNotHTMLEscaped(t *testing.T) {
	app := newTestApp(t)
	u := app.newUser()
	desc := strings.Repeat("<>&", 600)
	app.do("POST", "/collection/", u.token, map[string]any{"title": "a<b", "description": desc}).mustStatus(t, http.StatusCreated)
	res := app.do("GET", "/collection/", u.token, nil).mustStatus(t, http.StatusOK)
	if !strings.Contains(string(res.body), desc) || len(res.body) > len(desc)+300 {
		t.Fatalf("list of %d bytes for a %d-byte description: escaped?", len(res.body), len(desc))
	}
}

// TestResponseCacheKeepsWithinItsCap: an answer too large for the cache
// is served but not kept, and the cache never holds more than its cap.
func TestResponseCacheKeepsWithinItsCap(t *testing.T) {
	c := newResponseCache(1000)
	c.put(1, "", 1, make([]byte, 600))
	if _, ok := c.get(1, "", 1); ok {
		t.Fatal("kept an entry over a quarter of the cap")
	}
	for i := range 20 {
		c.put(int64(i%3), fmt.Sprint(i), int64(i/3), make([]byte, 200))
		if c.size > c.maxBytes {
			t.Fatalf("cache holds %d bytes, over its cap of %d", c.size, c.maxBytes)
		}
	}
}

// TestTokensOutliveNeitherAccountNorDatabase: a token names its account by
// a UUID that is never reused, so a token from another database, or of a
// deleted account, opens nothing, even when a new account took the old
// one's row number.
func TestTokensOutliveNeitherAccountNorDatabase(t *testing.T) {
	forEachBackend(t, testTokensOutliveNeitherAccountNorDatabase)
}

func testTokensOutliveNeitherAccountNorDatabase(t *testing.T, be backend) {
	secret := withEnv("JWT_SECRET", "one secret for both databases, long enough")
	first := newTestApp(t, be.fresh(t), secret)
	victim := first.newUser()
	first.newCollection(victim)
	old := first.newUser()

	// A fresh database under the same secret: the new account gets the
	// old one's row number, but not its identity.
	second := newTestApp(t, be.fresh(t), secret)
	second.newUser()
	for _, path := range []string{"/collection/", "/request-count/", "/movies/"} {
		second.do("GET", path, old.token, nil).mustStatus(t, http.StatusUnauthorized)
	}

	// The account deleted, its row number reused by the next registrant.
	if _, err := first.store.db.write.Exec(`DELETE FROM users WHERE lower(username) = $1`, strings.ToLower(victim.name)); err != nil {
		t.Fatal(err)
	}
	next := first.newUser()
	first.do("GET", "/collection/", victim.token, nil).mustStatus(t, http.StatusUnauthorized)
	if got := first.listCollections(next); len(got.Collections) != 0 {
		t.Fatalf("the new account sees %d collections of the deleted one", len(got.Collections))
	}
}

// TestLoginMatchesTheUniqueIndex: login folds letter case exactly as the
// unique index does (ASCII only), and refuses passwords register refuses.
func TestLoginMatchesTheUniqueIndex(t *testing.T) {
	app := newTestApp(t)
	app.do("POST", "/register/", "", `{"username":"kate","password":"correct horse"}`).mustStatus(t, http.StatusCreated)
	app.do("POST", "/login/", "", `{"username":"KATE","password":"correct horse"}`).mustStatus(t, http.StatusOK)
	// U+212A KELVIN SIGN lower-cases to "k" in Unicode, not in SQL.
	app.do("POST", "/login/", "", `{"username":"\u212aate","password":"correct horse"}`).mustStatus(t, http.StatusUnauthorized)
	// bcrypt reads 72 bytes: a longer password would log in by its prefix.
	app.do("POST", "/login/", "", `{"username":"kate","password":"correct horse`+strings.Repeat("x", 70)+`"}`).mustStatus(t, http.StatusBadRequest)
	// Member names match exactly: "USERNAME" is another, unknown member.
	app.do("POST", "/login/", "", `{"username":"kate","USERNAME":"nobody","password":"correct horse"}`).mustStatus(t, http.StatusOK)
	app.do("POST", "/login/", "", `{"USERNAME":"kate","password":"correct horse"}`).mustStatus(t, http.StatusBadRequest)
}

// TestLoginLockout: after LOGIN_MAX_FAILURES failed logins of one name in
// any letter case, every login of it is a 429 with Retry-After, the right
// password included, on every instance sharing the database.
func TestLoginLockout(t *testing.T) { forEachBackend(t, testLoginLockout) }

func testLoginLockout(t *testing.T, be backend) {
	dsn := be.dsn(t)
	opts := []func(*appOptions){withDSN(dsn), withEnv("LOGIN_MAX_FAILURES", "3"), withEnv("LOGIN_LOCKOUT", "1m")}
	a, b := newTestApp(t, opts...), newTestApp(t, opts...)
	u := a.newUser()
	login := func(app *testApp, name, password string) response {
		return app.do("POST", "/login/", "", map[string]string{"username": name, "password": password})
	}
	for _, name := range []string{u.name, strings.ToUpper(u.name), u.name} {
		login(a, name, "wrong password").mustStatus(t, http.StatusUnauthorized)
	}
	for _, app := range []*testApp{a, b} {
		res := login(app, u.name, u.password).mustStatus(t, http.StatusTooManyRequests)
		if got := res.errorCode(t); got != codeTooManyRequests {
			t.Fatalf("code: got %q", got)
		}
		if ra := res.header.Get("Retry-After"); ra == "" || ra == "0" {
			t.Fatalf("Retry-After: got %q, want whole seconds ≥ 1", ra)
		}
	}
	// Another name is not locked.
	other := a.newUser()
	login(b, other.name, other.password).mustStatus(t, http.StatusOK)
	// The lock ends with its time.
	if left, _, err := a.store.LoginLock(context.Background(), u.name, time.Now().Add(time.Minute+time.Second)); err != nil || left != 0 {
		t.Fatalf("lock a minute later: %v left, err %v", left, err)
	}
}

// TestRateLimitPerAddress: register and login share one allowance per
// client address; past it, 429 with Retry-After; another address is not
// affected.
func TestRateLimitPerAddress(t *testing.T) {
	app := newTestApp(t, withEnv("AUTH_RATE_PER_IP", "5"))
	from := func(addr, path string) response {
		req := httptest.NewRequest("POST", path, strings.NewReader(`{"username":"nobody","password":"wrong password"}`))
		req.RemoteAddr = addr + ":40000"
		rec := httptest.NewRecorder()
		app.handler.ServeHTTP(rec, req)
		return response{status: rec.Code, header: rec.Header(), body: rec.Body.Bytes()}
	}
	for i := range 5 {
		if res := from("192.0.2.1", []string{"/login/", "/register/"}[i%2]); res.status == http.StatusTooManyRequests {
			t.Fatalf("request %d refused within the allowance", i+1)
		}
	}
	res := from("192.0.2.1", "/login/").mustStatus(t, http.StatusTooManyRequests)
	if ra := res.header.Get("Retry-After"); ra == "" || ra == "0" {
		t.Fatalf("Retry-After: got %q", ra)
	}
	if res := from("192.0.2.2", "/login/"); res.status == http.StatusTooManyRequests {
		t.Fatal("another address was refused")
	}
}

// TestAddressLimiterMemoryIsBounded: a flood from more addresses than it
// keeps does not grow the limiter past its bound.
func TestAddressLimiterMemoryIsBounded(t *testing.T) {
	now := time.Now()
	l := newAddressLimiter(60, 1000, func() time.Time { return now })
	for i := range 100_000 {
		l.allow(fmt.Sprintf("10.%d.%d.%d", i>>16, i>>8&255, i&255))
		if len(l.buckets) > 1000 {
			t.Fatalf("%d buckets after %d addresses, over the bound of 1000", len(l.buckets), i+1)
		}
	}
}

// TestHashingShedsLoad: when every hashing slot is taken, a register is
// refused at once with 503 and Retry-After, and a login still finds a
// slot registrations may not take.
func TestHashingShedsLoad(t *testing.T) {
	h := newHashSlots(2, 50*time.Millisecond)
	release := make(chan struct{})
	started := make(chan struct{})
	go h.run(context.Background(), true, func() { close(started); <-release }) // a registration holds its one slot
	<-started
	err := h.run(context.Background(), true, func() { t.Error("a second registration ran") })
	if err != errHashingBusy || errHashingBusy.RetryAfter == "" {
		t.Fatalf("second registration: got %v, want errHashingBusy with Retry-After", err)
	}
	ran := false
	if err := h.run(context.Background(), false, func() { ran = true }); err != nil || !ran {
		t.Fatalf("a login during the registration: ran %v, err %v", ran, err)
	}
	close(release)
}

// TestCatalogueRedirectGetsNoCredentials: a catalogue answering with a
// redirect to another port of the same host gets a failed attempt; the
// redirect's target never sees a request, let alone the credentials.
func TestCatalogueRedirectGetsNoCredentials(t *testing.T) {
	var leaked atomic.Int64
	target := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		leaked.Add(1)
		w.Write([]byte(`{"count": 1, "next": null, "previous": null, "results": []}`))
	}))
	defer target.Close()
	redirecting := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, target.URL+"/steal", http.StatusFound)
	}))
	defer redirecting.Close()
	app := newTestApp(t, withEnv("MOVIES_API_URL", redirecting.URL+"/movies/"), withEnv("MOVIES_API_MAX_ATTEMPTS", "3"))
	u := app.newUser()
	res := app.do("GET", "/movies/", u.token, nil).mustStatus(t, http.StatusBadGateway)
	if got := res.errorCode(t); got != codeUpstream {
		t.Fatalf("code: got %q", got)
	}
	if n := leaked.Load(); n != 0 {
		t.Fatalf("the redirect's target got %d requests", n)
	}
}

// TestCataloguePageOverTenMiB: a body too large to be a page is a failed
// attempt, not a page.
func TestCataloguePageOverTenMiB(t *testing.T) {
	huge := `{"count": 1, "next": null, "previous": null, "results": [{"title": "` + strings.Repeat("x", maxPageBytes) + `"}]}`
	if _, err := parsePage([]byte(huge)); err == nil {
		t.Fatal("a page over 10 MiB was accepted")
	}
	for _, bad := range []string{
		`{"count": -1, "next": null, "previous": null, "results": []}`,
		`{"count": 1.5, "next": null, "previous": null, "results": []}`,
		`{"next": null, "previous": null, "results": []}`,
		`{"count": 1, "results": [null]}`,
		`{"count": 1, "results": [{"title": 7}]}`,
	} {
		if _, err := parsePage([]byte(bad)); err == nil {
			t.Errorf("accepted a page not shaped like one: %s", bad)
		}
	}
}

// TestDatabaseBusyIs503: another process holding SQLite's write lock makes
// writes wait DB_BUSY_TIMEOUT, then answer 503 with Retry-After, not 500;
// reads go on.
func TestDatabaseBusyIs503(t *testing.T) {
	app := newTestApp(t, withEnv("DB_BUSY_TIMEOUT", "200ms"))
	u := app.newUser()
	other, err := sql.Open("sqlite", app.dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer other.Close()
	conn, err := other.Conn(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	if _, err := conn.ExecContext(context.Background(), "BEGIN IMMEDIATE"); err != nil {
		t.Fatal(err)
	}
	res := app.do("POST", "/collection/", u.token, map[string]any{"title": "while locked"}).mustStatus(t, http.StatusServiceUnavailable)
	if got := res.errorCode(t); got != codeUnavailable || res.header.Get("Retry-After") == "" {
		t.Fatalf("code %q, Retry-After %q", got, res.header.Get("Retry-After"))
	}
	app.do("GET", "/collection/", u.token, nil).mustStatus(t, http.StatusOK)
	app.do("GET", "/readyz", "", nil).mustStatus(t, http.StatusServiceUnavailable)
	conn.ExecContext(context.Background(), "ROLLBACK")
	app.do("POST", "/collection/", u.token, map[string]any{"title": "after"}).mustStatus(t, http.StatusCreated)
	app.do("GET", "/readyz", "", nil).mustStatus(t, http.StatusOK)
}

// TestDatabaseFileGoneIs503: with the database's folder removed, writes
// are refused with 503 instead of acknowledged into an unlinked file, and
// the server is not ready.
func TestDatabaseFileGoneIs503(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "data")
	if err := os.Mkdir(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	app := newTestApp(t, withDSN(filepath.Join(dir, "movies.db")))
	u := app.newUser()
	if err := os.RemoveAll(dir); err != nil {
		t.Fatal(err)
	}
	app.do("POST", "/collection/", u.token, map[string]any{"title": "into the void"}).mustStatus(t, http.StatusServiceUnavailable)
	app.do("GET", "/readyz", "", nil).mustStatus(t, http.StatusServiceUnavailable)
	app.do("GET", "/healthz", "", nil).mustStatus(t, http.StatusOK)
	// Shutting down cannot persist the count either, and says so.
	if err := app.app.close(); err == nil {
		t.Fatal("closing without a database reported no error")
	}
	app.app = nil
}

// TestInvalidUTF8IsRefused: text that is not UTF-8, or holds a lone
// surrogate escape, is a 400, not silently replaced: "pass\xffword" and
// "pass\xfeword" must not become the same password.
func TestInvalidUTF8IsRefused(t *testing.T) {
	app := newTestApp(t)
	for _, body := range []string{
		"{\"username\":\"inv\",\"password\":\"pass\xff\xfeword\"}",
		`{"username":"inv","password":"pass\ud800word"}`,
		`{"username":"inv","password":"pass\udc00word"}`,
		`{"username":"inv","password":"\\ufffd\ud800 word"}`,
		`{"username":"inv","password":"pass word\ud83d"}`,
	} {
		res := app.do("POST", "/register/", "", body).mustStatus(t, http.StatusBadRequest)
		var e errorBody
		json.Unmarshal(res.body, &e)
		if e.Error.Fields["password"] == "" {
			t.Errorf("fields: got %v, want a problem with password", e.Error.Fields)
		}
	}
	// U+FFFD itself, sent as is or escaped, and real pairs are text.
	app.do("POST", "/register/", "", `{"username":"ok1","password":"pass\ufffdword"}`).mustStatus(t, http.StatusCreated)
	app.do("POST", "/register/", "", "{\"username\":\"ok2\",\"password\":\"pass\xef\xbf\xbdword\"}").mustStatus(t, http.StatusCreated)
	app.do("POST", "/register/", "", `{"username":"ok3","password":"pass\ud83d\ude00word"}`).mustStatus(t, http.StatusCreated)
	app.do("POST", "/register/", "", `{"username":"ok4","password":"pass\uFffd\\u1234"}`).mustStatus(t, http.StatusCreated)
}
