package main

import (
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"net/http"
	"net/http/httptest"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"
)

func TestFavouriteGenres(t *testing.T) {
	tests := []struct {
		name   string
		counts map[string]int
		want   string
	}{
		{"none", nil, ""},
		{"one", map[string]int{"Drama": 1}, "Drama"},
		{"two", map[string]int{"Drama": 1, "Comedy": 2}, "Comedy, Drama"},
		{"top three by count", map[string]int{"A": 1, "B": 5, "C": 3, "D": 4}, "B, D, C"},
		{"ties by name", map[string]int{"Thriller": 2, "Action": 2, "Drama": 2, "Comedy": 2}, "Action, Comedy, Drama"},
		{"tie at the cut", map[string]int{"Z": 9, "Y": 1, "X": 1, "W": 1}, "Z, W, X"},
		{"zero counts skipped", map[string]int{"Gone": 0, "Here": 1}, "Here"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := favouriteGenres(tt.counts); got != tt.want {
				t.Fatalf("got %q, want %q", got, tt.want)
			}
		})
	}
}

func TestCountGenres(t *testing.T) {
	tests := []struct {
		name   string
		genres []string // one movie each
		want   map[string]int
	}{
		{"none", nil, map[string]int{}},
		{"empty", []string{""}, map[string]int{}},
		{"one", []string{"Drama"}, map[string]int{"Drama": 1}},
		{"several", []string{"Action,Drama,Thriller"}, map[string]int{"Action": 1, "Drama": 1, "Thriller": 1}},
		{"trimmed", []string{" Drama , Comedy ", "\tDrama\n"}, map[string]int{"Drama": 2, "Comedy": 1}},
		{"empty parts skipped", []string{",,Drama,, ,"}, map[string]int{"Drama": 1}},
		{"once per movie", []string{"Drama,Drama", "Drama, Drama ,Comedy"}, map[string]int{"Drama": 2, "Comedy": 1}},
		{"once per movie, the movie after too", []string{"A,B", "B,A", "A"}, map[string]int{"A": 3, "B": 2}},
		{"spaces inside kept", []string{"Science Fiction,Drama"}, map[string]int{"Science Fiction": 1, "Drama": 1}},
		{"case kept", []string{"drama", "Drama"}, map[string]int{"drama": 1, "Drama": 1}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var movies []movie
			for _, g := range tt.genres {
				movies = append(movies, movie{Genres: g})
			}
			if got := countGenres(movies); !maps.Equal(got, tt.want) {
				t.Fatalf("got %v, want %v", got, tt.want)
			}
		})
	}
}

func TestGenreNameBytes(t *testing.T) {
	tests := []struct {
		genre string
		want  int
	}{
		{"Drama", 5},
		{"<b>&", 4}, // not HTML-escaped
		{`"q"`, 5},
		{`a\b`, 4},
		{"a\nb", 4},
		{"\x01", 6},
		{"é", 2},
		{"\u2028", 6},
	}
	for _, tt := range tests {
		if got := genreNameBytes(map[string]int{tt.genre: 1}); got != tt.want {
			t.Errorf("%q: %d bytes, want %d", tt.genre, got, tt.want)
		}
	}
}

func TestAddGenreCounts(t *testing.T) {
	tests := []struct {
		name   string
		stored []string
		want   map[string]int // nil: malformed
	}{
		{"empty", []string{`{}`}, map[string]int{}},
		{"summed across collections", []string{`{"Drama":2,"War":1}`, `{"Drama":1}`}, map[string]int{"Drama": 3, "War": 1}},
		{"escaped names", []string{`{"a\"b":1,"\u00e9":2}`, `{"é":1}`}, map[string]int{`a"b`: 1, "é": 3}},
		{"one genre in two spellings", []string{`{"\u0041":1,"A":1}`}, map[string]int{"A": 2}},
		{"not an object", []string{`[]`}, nil},
		{"a count that is not a whole number", []string{`{"a":1.5}`}, nil},
		{"a negative count", []string{`{"a":-1}`}, nil},
		{"a trailing comma", []string{`{"a":1,}`}, nil},
		{"an unterminated name", []string{`{"a`}, nil},
		{"a leading zero", []string{`{"a":01}`}, nil},
		{"white space", []string{`{ "a":1}`}, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var stored [][]byte
			for _, s := range tt.stored {
				stored = append(stored, []byte(s))
			}
			got, err := sumGenreCounts(stored...)
			switch {
			case tt.want == nil && err == nil:
				t.Fatalf("read %v from malformed counts", got)
			case tt.want != nil && (err != nil || !maps.Equal(got, tt.want)):
				t.Fatalf("got %v, %v; want %v", got, err, tt.want)
			}
		})
	}
}

func TestCanonicalUUID(t *testing.T) {
	tests := []struct {
		in, want string
		ok       bool
	}{
		{"57baf4f4-c9ef-4197-9e4f-acf04eae5b4d", "57baf4f4-c9ef-4197-9e4f-acf04eae5b4d", true},
		{"57BAF4F4-C9EF-4197-9E4F-ACF04EAE5B4D", "57baf4f4-c9ef-4197-9e4f-acf04eae5b4d", true},
		{"57baf4f4c9ef41979e4facf04eae5b4d", "", false},
		{"57baf4f4-c9ef-4197-9e4f-acf04eae5b4", "", false},
		{"57baf4f4-c9ef-4197-9e4f-acf04eae5b4g", "", false},
		{"{57baf4f4-c9ef-4197-9e4f-acf04eae5b4}", "", false},
		{"", "", false},
	}
	for _, tt := range tests {
		got, ok := canonicalUUID(tt.in)
		if got != tt.want || ok != tt.ok {
			t.Errorf("canonicalUUID(%q) = %q, %v; want %q, %v", tt.in, got, ok, tt.want, tt.ok)
		}
	}
	if id := newUUID(); !strings.HasPrefix(id[14:], "4") {
		t.Errorf("newUUID %q is not version 4", id)
	} else if c, ok := canonicalUUID(id); !ok || c != id {
		t.Errorf("newUUID %q is not canonical", id)
	}
	// A collection's id: version 7, its first 48 bits the time in ms.
	at := time.UnixMilli(0x18bcfe5687b)
	id := newTimeUUID(at)
	if !strings.HasPrefix(id, "018bcfe5-687b-7") || !strings.ContainsRune("89ab", rune(id[19])) {
		t.Errorf("newTimeUUID(%v) = %q, want 018bcfe5-687b-7xxx-[89ab]xxx-...", at, id)
	}
	if c, ok := canonicalUUID(id); !ok || c != id {
		t.Errorf("newTimeUUID %q is not canonical", id)
	}
	if next := newTimeUUID(at.Add(time.Millisecond)); next <= id {
		t.Errorf("a later id %q sorts before %q", next, id)
	}
	if again := newTimeUUID(at); again == id {
		t.Errorf("two ids of one millisecond are both %q", id)
	}
}

// getCollection reads one collection through the API.
func (a *testApp) getCollection(u testUser, id string) collection {
	a.t.Helper()
	res := a.do("GET", "/collection/"+id+"/", u.token, nil).mustStatus(a.t, 200)
	var c collection
	if err := json.Unmarshal(res.body, &c); err != nil {
		a.t.Fatal(err)
	}
	return c
}

// listCollections reads the collection list through the API.
func (a *testApp) listCollections(u testUser) collectionListData {
	a.t.Helper()
	res := a.do("GET", "/collection/", u.token, nil).mustStatus(a.t, 200)
	var body collectionList
	if err := json.Unmarshal(res.body, &body); err != nil {
		a.t.Fatal(err)
	}
	if !body.IsSuccess {
		a.t.Fatalf("is_success false: %s", res.body)
	}
	return body.Data
}

func TestCollectionCreateAndGet(t *testing.T) { forEachBackend(t, testCollectionCreateAndGet) }

func testCollectionCreateAndGet(t *testing.T, be backend) {
	app := newTestApp(t, be.fresh(t))
	u := app.newUser()
	m1, m2 := newMovie("Drama,Comedy"), newMovie("")
	upper := m1
	upper.UUID = strings.ToUpper(m1.UUID)
	upper.Title = "Listed twice"

	res := app.do("POST", "/collection/", u.token, map[string]any{
		"title":       "Weekend",
		"description": "for Saturday",
		"movies":      []movie{m1, m2, upper},
	}).mustStatus(t, http.StatusCreated)
	id, _ := canonicalUUID(res.json(t)["collection_uuid"].(string))
	if id == "" {
		t.Fatalf("collection_uuid is not a canonical UUID: %s", res.body)
	}
	if want := `{"collection_uuid":"` + id + "\"}\n"; string(res.body) != want || res.header.Get("Content-Length") != strconv.Itoa(len(want)) {
		t.Fatalf("201 body %q (Content-Length %s), want %q", res.body, res.header.Get("Content-Length"), want)
	}

	got := app.getCollection(u, id)
	want := collection{UUID: id, Title: "Weekend", Description: "for Saturday", Movies: []movie{m1, m2}}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("got %+v\nwant %+v", got, want)
	}

	// Description and movies are optional; movies come back as [].
	id2 := app.do("POST", "/collection/", u.token, `{"title":"Bare"}`).mustStatus(t, 201).json(t)["collection_uuid"].(string)
	res = app.do("GET", "/collection/"+strings.ToUpper(id2)+"/", u.token, nil).mustStatus(t, 200)
	if !strings.Contains(string(res.body), `"description":""`) || !strings.Contains(string(res.body), `"movies":[]`) {
		t.Fatalf("bare collection: %s", res.body)
	}
}

// parseCollectionInput reads a body's movies in one pass, as they come:
// what it keeps and what it refuses, for the bodies a careless or a
// hostile client sends, whatever the spelling of the JSON.
func TestParseMovies(t *testing.T) {
	const id, id2 = "57baf4f4-c9ef-4197-9e4f-acf04eae5b4d", "720e8796-5397-4e81-9bd7-763789463707"
	tooMany := strings.Repeat(`{"uuid":"`+id+`","title":"x"},`, maxMovies) + `{"uuid":"bad","title":"x"}`
	tests := []struct {
		name     string
		movies   string // the list
		want     []movie
		problems []string // paths, when refused
	}{
		{"none", `[]`, []movie{}, nil},
		{"one", `[{"uuid":"` + id + `","title":"Queerama","description":"d","genres":"Drama"}]`,
			[]movie{{UUID: id, Title: "Queerama", Description: "d", Genres: "Drama"}}, nil},
		{"space everywhere", " [ \n{ \"title\" : \"x\" ,\t\"uuid\"\r: \"" + id + "\" } , {\"uuid\":\"" + id2 + "\",\"title\":\"y\"}\n] ",
			[]movie{{UUID: id, Title: "x"}, {UUID: id2, Title: "y"}}, nil},
		{"names escaped", `[{"\u0075uid":"` + id + `","t\u0069tle":"x"}]`, []movie{{UUID: id, Title: "x"}}, nil},
		{"values escaped", `[{"uuid":"` + id + `","title":"Caf\u00e9 \"x\"\n","genres":"A\/B"}]`,
			[]movie{{UUID: id, Title: "Caf\u00e9 \"x\"\n", Genres: "A/B"}}, nil},
		{"not ASCII", `[{"uuid":"` + id + `","title":"Amélie 🎬"}]`, []movie{{UUID: id, Title: "Amélie 🎬"}}, nil},
		{"a name given twice keeps its last value", `[{"uuid":"bad","title":"x","uuid":"` + id + `"}]`, []movie{{UUID: id, Title: "x"}}, nil},
		{"the last value is the one checked", `[{"uuid":"` + id + `","title":"x","uuid":"bad"}]`, nil, []string{"movies[0].uuid"}},
		{"unknown members of any kind", `[{"x":{"a":["}",{"b":"]\""}],"c":null},"uuid":"` + id + `","y":[1,-2.5e3,true],"title":"x","z":"\\"}]`,
			[]movie{{UUID: id, Title: "x"}}, nil},
		{"UUID made canonical, a movie kept once", `[{"uuid":"` + strings.ToUpper(id) + `","title":"x"},{"uuid":"` + id + `","title":"again"}]`,
			[]movie{{UUID: id, Title: "x"}}, nil},
		{"each bad movie by its place", `[{"uuid":"` + id + `","title":"x"},7,{"title":"x"},{"uuid":"` + id2 + `","title":"x\u0000","genres":5},"s"]`,
			nil, []string{"movies[1]", "movies[2].uuid", "movies[3].title", "movies[3].genres", "movies[4]"}},
		{"text that is not UTF-8", "[{\"uuid\":\"" + id + "\",\"title\":\"\xff\"}]", nil, []string{"movies[0].title"}},
		{"a lone surrogate", `[{"uuid":"` + id + `","title":"\ud800"}]`, nil, []string{"movies[0].title"}},
		{"1,001 movies: the count only", "[" + tooMany + "]", nil, []string{"movies"}},
		{"1,001 items, the fewest bytes", "[" + strings.Repeat("1,", maxMovies) + "1]", nil, []string{"movies"}},
		{"1,000 items, each refused", "[" + strings.Repeat("1,", maxMovies-1) + "1]", nil, func() (paths []string) {
			for i := range maxMovies {
				paths = append(paths, "movies["+strconv.Itoa(i)+"]")
			}
			return paths
		}()},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			o, err := parseObject([]byte(`{"title":"t","movies":` + tt.movies + `}`))
			if err != nil {
				t.Fatal(err)
			}
			in, p := parseCollectionInput(o, true)
			got := slices.Sorted(maps.Keys(p))
			if want := slices.Sorted(slices.Values(tt.problems)); !slices.Equal(got, want) {
				t.Fatalf("problems %v, want at %v", p, want)
			}
			if tt.problems != nil {
				return
			}
			if in.Movies == nil || !slices.Equal(*in.Movies, tt.want) {
				t.Fatalf("movies %+v, want %+v", in.Movies, tt.want)
			}
		})
	}
}

func TestCollectionValidation(t *testing.T) { forEachBackend(t, testCollectionValidation) }

func testCollectionValidation(t *testing.T, be backend) {
	app := newTestApp(t, be.fresh(t))
	u := app.newUser()
	existing := app.newCollection(u, newMovie("Drama"))
	good := `{"uuid":"57baf4f4-c9ef-4197-9e4f-acf04eae5b4d","title":"Queerama"}`
	tests := []struct {
		name       string
		body       string
		status     int
		field      string
		createOnly bool // PUT may leave the title out
	}{
		{"missing title", `{"description":"x"}`, 400, "title", true},
		{"null title", `{"title":null}`, 400, "title", true},
		{"blank title", `{"title":"   "}`, 400, "title", false},
		{"title not a string", `{"title":5}`, 400, "title", false},
		{"description not a string", `{"title":"t","description":[]}`, 400, "description", false},
		{"movies not a list", `{"title":"t","movies":{}}`, 400, "movies", false},
		{"movies a string", `{"title":"t","movies":"abc"}`, 400, "movies", false},
		{"movie not an object", `{"title":"t","movies":[1]}`, 400, "movies[0]", false},
		{"movie null", `{"title":"t","movies":[null]}`, 400, "movies[0]", false},
		{"movie without uuid", `{"title":"t","movies":[{"title":"x"}]}`, 400, "movies[0].uuid", false},
		{"movie without title", `{"title":"t","movies":[` + good + `,{"uuid":"720e8796-5397-4e81-9bd7-763789463707"}]}`, 400, "movies[1].title", false},
		{"movie with bad uuid", `{"title":"t","movies":[{"uuid":"not-a-uuid","title":"x"}]}`, 400, "movies[0].uuid", false},
		{"movie uuid not a string", `{"title":"t","movies":[{"uuid":"57baf4f4-c9ef-4197-9e4f-acf04eae5b4d","title":"x"},{"uuid":7,"title":"x"}]}`, 400, "movies[1].uuid", false},
		{"NUL in title", `{"title":"a\u0000b"}`, 400, "title", false},
		{"NUL in a movie", `{"title":"t","movies":[{"uuid":"57baf4f4-c9ef-4197-9e4f-acf04eae5b4d","title":"x\u0000"}]}`, 400, "movies[0].title", false},
		{"malformed JSON", `{"title":`, 400, "", false},
		{"null body", `null`, 400, "", false},
		{"genre too long", `{"title":"t","movies":[{"uuid":"57baf4f4-c9ef-4197-9e4f-acf04eae5b4d","title":"x","genres":"Drama,` + strings.Repeat("g", 101) + `"}]}`, 400, "movies[0].genres", false},
		{"JSON array", `[]`, 400, "", false},
		{"trailing garbage", `{"title":"t"}]`, 400, "", false},
		{"2 MiB body", `{"title":"` + strings.Repeat("x", 2<<20) + `"}`, 413, "", false},
	}
	before := app.listCollections(u)
	for _, tt := range tests {
		for _, method := range []string{"POST", "PUT"} {
			if method == "PUT" && tt.createOnly {
				continue
			}
			t.Run(method+" "+tt.name, func(t *testing.T) {
				path := "/collection/"
				if method == "PUT" {
					path += existing + "/"
				}
				res := app.do(method, path, u.token, tt.body).mustStatus(t, tt.status)
				res.errorCode(t)
				if tt.field != "" {
					var env struct {
						Error struct{ Fields map[string]string } `json:"error"`
					}
					json.Unmarshal(res.body, &env)
					if _, ok := env.Error.Fields[tt.field]; !ok {
						t.Fatalf("fields: got %v, want a problem with %q", env.Error.Fields, tt.field)
					}
				}
			})
		}
	}
	after := app.listCollections(u)
	if fmt.Sprint(before) != fmt.Sprint(after) {
		t.Fatalf("rejected requests changed the collections:\nbefore %+v\nafter  %+v", before, after)
	}
	if got := app.getCollection(u, existing); got.Title != "Collection of "+u.name || len(got.Movies) != 1 {
		t.Fatalf("rejected PUTs changed the collection: %+v", got)
	}
}

func TestCollectionListOrderAndIsolation(t *testing.T) {
	forEachBackend(t, testCollectionListOrderAndIsolation)
}

func testCollectionListOrderAndIsolation(t *testing.T, be backend) {
	app := newTestApp(t, be.fresh(t))
	alice, bob := app.newUser(), app.newUser()
	if got := app.listCollections(alice); got.Collections == nil || len(got.Collections) != 0 || got.FavouriteGenres != "" {
		t.Fatalf("empty list: %+v", got)
	}
	res := app.do("GET", "/collection/", alice.token, nil)
	if !strings.Contains(string(res.body), `"collections":[]`) {
		t.Fatalf("empty list must be [], not null: %s", res.body)
	}
	var ids []string
	for i := range 3 {
		id := app.do("POST", "/collection/", alice.token, map[string]string{"title": fmt.Sprint("A", i), "description": fmt.Sprint("d", i)}).mustStatus(t, 201).json(t)["collection_uuid"].(string)
		ids = append(ids, id)
		app.newCollection(bob)
	}
	got := app.listCollections(alice)
	if len(got.Collections) != 3 {
		t.Fatalf("alice sees %d collections, want 3: %+v", len(got.Collections), got)
	}
	for i, c := range got.Collections {
		want := collectionSummary{Title: fmt.Sprint("A", i), UUID: ids[i], Description: fmt.Sprint("d", i)}
		if c != want {
			t.Errorf("collection %d: got %+v, want %+v", i, c, want)
		}
	}
	if strings.Contains(string(app.do("GET", "/collection/", alice.token, nil).body), `"movies"`) {
		t.Error("the list must not include movies")
	}
}

func TestCollectionOwnership(t *testing.T) { forEachBackend(t, testCollectionOwnership) }

func testCollectionOwnership(t *testing.T, be backend) {
	app := newTestApp(t, be.fresh(t))
	alice, bob := app.newUser(), app.newUser()
	id := app.newCollection(alice, newMovie("Drama"))
	tests := []struct {
		name, method, id string
		body             any
	}{
		{"another user's GET", "GET", id, nil},
		{"another user's PUT", "PUT", id, map[string]string{"title": "stolen"}},
		{"another user's DELETE", "DELETE", id, nil},
		{"unknown GET", "GET", "00000000-0000-4000-8000-000000000000", nil},
		{"unknown PUT", "PUT", "00000000-0000-4000-8000-000000000000", map[string]string{"title": "x"}},
		{"unknown DELETE", "DELETE", "00000000-0000-4000-8000-000000000000", nil},
		{"malformed GET", "GET", "not-a-uuid", nil},
		{"malformed PUT", "PUT", "12345", map[string]string{"title": "x"}},
		{"malformed DELETE", "DELETE", "zzzzzzzz-zzzz-zzzz-zzzz-zzzzzzzzzzzz", nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			res := app.do(tt.method, "/collection/"+tt.id+"/", bob.token, tt.body).mustStatus(t, 404)
			if got := res.errorCode(t); got != "not_found" {
				t.Fatalf("code %q", got)
			}
		})
	}
	if got := app.getCollection(alice, id); got.Title != "Collection of "+alice.name || len(got.Movies) != 1 {
		t.Fatalf("bob changed alice's collection: %+v", got)
	}
	if got := app.listCollections(bob); len(got.Collections) != 0 || got.FavouriteGenres != "" {
		t.Fatalf("bob sees alice's data: %+v", got)
	}
}

func TestCollectionUpdate(t *testing.T) { forEachBackend(t, testCollectionUpdate) }

func testCollectionUpdate(t *testing.T, be backend) {
	app := newTestApp(t, be.fresh(t))
	u := app.newUser()
	m1, m2, m3 := newMovie("Drama"), newMovie("Comedy"), newMovie("Horror")
	tests := []struct {
		name string
		body string
		want func(c collection) collection
	}{
		{"empty object changes nothing", `{}`, func(c collection) collection { return c }},
		{"nulls count as absent", `{"title":null,"description":null,"movies":null}`, func(c collection) collection { return c }},
		{"title alone", `{"title":"New title"}`, func(c collection) collection { c.Title = "New title"; return c }},
		{"description alone", `{"description":"New description"}`, func(c collection) collection { c.Description = "New description"; return c }},
		{"description emptied", `{"description":""}`, func(c collection) collection { c.Description = ""; return c }},
		{"movies replace the list", `{"movies":[` + mustJSON(m3) + `,` + mustJSON(m1) + `]}`, func(c collection) collection { c.Movies = []movie{m3, m1}; return c }},
		{"movies emptied", `{"movies":[]}`, func(c collection) collection { c.Movies = []movie{}; return c }},
		{"all fields", `{"title":"T","description":"D","movies":[` + mustJSON(m2) + `]}`, func(c collection) collection {
			return collection{UUID: c.UUID, Title: "T", Description: "D", Movies: []movie{m2}}
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			id := app.newCollection(u, m1, m2)
			before := app.getCollection(u, id)
			res := app.do("PUT", "/collection/"+id+"/", u.token, tt.body).mustStatus(t, 200)
			var answered collection
			json.Unmarshal(res.body, &answered)
			want := tt.want(before)
			if fmt.Sprint(answered) != fmt.Sprint(want) {
				t.Fatalf("PUT answered %+v\nwant %+v", answered, want)
			}
			if got := app.getCollection(u, id); fmt.Sprint(got) != fmt.Sprint(want) {
				t.Fatalf("GET after PUT: %+v\nwant %+v", got, want)
			}
		})
	}
}

func TestCollectionDelete(t *testing.T) { forEachBackend(t, testCollectionDelete) }

func testCollectionDelete(t *testing.T, be backend) {
	app := newTestApp(t, be.fresh(t))
	u := app.newUser()
	keep := app.newCollection(u, newMovie("Drama"))
	id := app.newCollection(u, newMovie("Comedy"), newMovie("Comedy"))
	res := app.do("DELETE", "/collection/"+id+"/", u.token, nil).mustStatus(t, http.StatusNoContent)
	if len(res.body) != 0 {
		t.Fatalf("204 with a body: %q", res.body)
	}
	app.do("GET", "/collection/"+id+"/", u.token, nil).mustStatus(t, 404)
	app.do("DELETE", "/collection/"+id+"/", u.token, nil).mustStatus(t, 404)
	var rows int
	app.store.db.read.QueryRow(`SELECT count(*) FROM collections`).Scan(&rows)
	if rows != 1 {
		t.Fatalf("collections left: got %d, want 1 (the other one)", rows)
	}
	if got := app.listCollections(u); len(got.Collections) != 1 || got.Collections[0].UUID != keep || got.FavouriteGenres != "Drama" {
		t.Fatalf("after delete: %+v", got)
	}
}

func TestMovieDataIsPerUser(t *testing.T) { forEachBackend(t, testMovieDataIsPerUser) }

func testMovieDataIsPerUser(t *testing.T, be backend) {
	app := newTestApp(t, be.fresh(t))
	alice, bob := app.newUser(), app.newUser()
	m := newMovie("Drama")
	aliceID := app.newCollection(alice, m)
	changed := m
	changed.Title, changed.Genres, changed.Description = "Bob's title", "Horror", "Bob's words"
	bobID := app.newCollection(bob, changed)

	if got := app.getCollection(alice, aliceID).Movies[0]; got != m {
		t.Fatalf("alice's movie changed by bob's save: %+v", got)
	}
	if got := app.getCollection(bob, bobID).Movies[0]; got != changed {
		t.Fatalf("bob's movie: %+v", got)
	}
	if got := app.listCollections(alice).FavouriteGenres; got != "Drama" {
		t.Fatalf("alice's genres: %q", got)
	}
}

func TestFavouriteGenresThroughAPI(t *testing.T) { forEachBackend(t, testFavouriteGenresThroughAPI) }

// manyGenres gives the user collections whose movies carry n distinct
// genres in all, "g0000" on, each once: as many per collection as one
// may hold.
func manyGenres(a *testApp, u testUser, n int) {
	a.t.Helper()
	for first := 0; first < n; first += maxCollectionGenres {
		var movies []movie
		for g := first; g < min(first+maxCollectionGenres, n); g += 10 {
			var genres []string
			for i := g; i < min(g+10, n); i++ {
				genres = append(genres, fmt.Sprintf("g%04d", i))
			}
			movies = append(movies, newMovie(strings.Join(genres, ",")))
		}
		a.newCollection(u, movies...)
	}
}

func testFavouriteGenresThroughAPI(t *testing.T, be backend) {
	tests := []struct {
		name  string
		setup func(a *testApp, u testUser)
		want  string
	}{
		{"none", func(a *testApp, u testUser) { a.newCollection(u) }, ""},
		{"movies without genres", func(a *testApp, u testUser) { a.newCollection(u, newMovie(""), newMovie(" , ")) }, ""},
		{"fewer than three", func(a *testApp, u testUser) { a.newCollection(u, newMovie("Drama"), newMovie("Drama,Comedy")) }, "Drama, Comedy"},
		{"ties by name", func(a *testApp, u testUser) {
			a.newCollection(u, newMovie("Thriller,Action"), newMovie("Comedy,Drama"))
		}, "Action, Comedy, Drama"},
		{"spaces and empty parts", func(a *testApp, u testUser) {
			a.newCollection(u, newMovie(" Drama ,, Comedy"), newMovie("Drama,"), newMovie("Horror"))
		}, "Drama, Comedy, Horror"},
		{"a genre once per movie", func(a *testApp, u testUser) {
			a.newCollection(u, newMovie("Drama,Drama,Drama"), newMovie("Comedy"), newMovie("Comedy"))
		}, "Comedy, Drama"},
		{"a movie in two collections counts twice", func(a *testApp, u testUser) {
			m := newMovie("Western")
			a.newCollection(u, m, newMovie("Drama"))
			a.newCollection(u, m, newMovie("Comedy"))
		}, "Western, Comedy, Drama"},
		{"across collections", func(a *testApp, u testUser) {
			a.newCollection(u, newMovie("Drama"), newMovie("Action"))
			a.newCollection(u, newMovie("Drama"), newMovie("Crime"), newMovie("Crime"), newMovie("Crime"))
			a.newCollection(u, newMovie("Action"))
		}, "Crime, Action, Drama"},
		{"after a delete", func(a *testApp, u testUser) {
			a.newCollection(u, newMovie("Drama"), newMovie("Comedy"))
			id := a.newCollection(u, newMovie("Horror"), newMovie("Horror"), newMovie("Horror"))
			a.do("DELETE", "/collection/"+id+"/", u.token, nil).mustStatus(a.t, 204)
		}, "Comedy, Drama"},
		{"after movies are replaced", func(a *testApp, u testUser) {
			id := a.newCollection(u, newMovie("Horror"), newMovie("Horror"))
			a.newCollection(u, newMovie("Drama"))
			a.do("PUT", "/collection/"+id+"/", u.token, map[string]any{"movies": []movie{newMovie("Comedy,Drama")}}).mustStatus(a.t, 200)
		}, "Drama, Comedy"},
		{"a title change keeps them", func(a *testApp, u testUser) {
			id := a.newCollection(u, newMovie("Horror"))
			a.do("PUT", "/collection/"+id+"/", u.token, map[string]any{"title": "x"}).mustStatus(a.t, 200)
		}, "Horror"},
		// Genres past the first maxHeldGenres+1 by name: not among any
		// that a cut by name would keep.
		{"more genres than a list holds", func(a *testApp, u testUser) {
			manyGenres(a, u, maxHeldGenres+100)
			a.newCollection(u, newMovie("g1100"), newMovie("g1100,g1050"), newMovie("g1100"))
		}, "g1100, g1050, g0000"},
		{"a create after a list that held only the top genres", func(a *testApp, u testUser) {
			manyGenres(a, u, maxHeldGenres+100)
			if got := a.listCollections(u).FavouriteGenres; got != "g0000, g0001, g0002" {
				a.t.Fatalf("favourite_genres before the create: %q", got)
			}
			// g1090 was not among the top genres the list held.
			a.newCollection(u, newMovie("g1090"))
		}, "g1090, g0000, g0001"},
	}
	app := newTestApp(t, be.fresh(t))
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			u := app.newUser()
			tt.setup(app, u)
			if got := app.listCollections(u).FavouriteGenres; got != tt.want {
				t.Fatalf("favourite_genres: got %q, want %q", got, tt.want)
			}
		})
	}
}

func mustJSON(v any) string {
	b, err := json.Marshal(v)
	if err != nil {
		panic(err)
	}
	return string(b)
}

// BenchmarkCollectionList measures GET /collection/ through the whole
// handler stack for a user with 200 collections of 25 movies each.
func BenchmarkCollectionList(b *testing.B) {
	app := newTestApp(b)
	u := app.newUser()
	genres := []string{"Action", "Drama", "Comedy", "Thriller", "Horror", "Crime", "Romance", "Western"}
	for i := range 200 {
		movies := make([]movie, 25)
		for j := range movies {
			movies[j] = newMovie(genres[(i+j)%len(genres)] + "," + genres[(i*j)%len(genres)])
		}
		app.newCollection(u, movies...)
	}
	if got := app.listCollections(u); len(got.Collections) != 200 || got.FavouriteGenres == "" {
		b.Fatalf("seeded list: %d collections, genres %q", len(got.Collections), got.FavouriteGenres)
	}
	cache := app.server.cache
	for _, bc := range []struct {
		name  string
		cache *responseCache
	}{
		{"cached", cache},
		{"uncached", nil},
	} {
		b.Run(bc.name, func(b *testing.B) {
			app.server.cache = bc.cache
			req := httptest.NewRequest("GET", "/collection/", nil)
			req.Header.Set("Authorization", "Bearer "+u.token)
			b.ReportAllocs()
			for b.Loop() {
				rec := httptest.NewRecorder()
				app.handler.ServeHTTP(rec, req)
				if rec.Code != 200 {
					b.Fatalf("status %d", rec.Code)
				}
			}
		})
	}
}

// BenchmarkCollectionAnswer renders the answer of GET or PUT
// /collection/{id}/ for a collection of 10 movies, as the service does
// (body) and as encoding/json would.
func BenchmarkCollectionAnswer(b *testing.B) {
	movies := make([]movie, 10)
	for i := range movies {
		movies[i] = newMovie("Action,Drama,Thriller")
		movies[i].Description = strings.Repeat("A movie about things that happen. ", 7)
	}
	stored := encodeMovies(movies)
	c := storedCollection{UUID: "6f1c0e2a-9a4e-4c4e-8f51-3f0f6f0d2b1a", Title: "Weekend", Description: "for Saturday", Movies: json.RawMessage(stored)}
	b.Run("body", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			c.body()
		}
	})
	b.Run("encoding/json", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if _, err := marshal(c); err != nil {
				b.Fatal(err)
			}
		}
	})
}

func TestCollectionReadsSeeOtherProcessesWrites(t *testing.T) {
	forEachBackend(t, func(t *testing.T, be backend) {
		dsn := be.dsn(t)
		a, b := newTestApp(t, withDSN(dsn)), newTestApp(t, withDSN(dsn))
		u := a.newUser()
		id := a.newCollection(u, newMovie("Drama"))
		// Read twice through a, so that whatever a may cache is warm.
		for range 2 {
			a.listCollections(u)
			a.getCollection(u, id)
		}
		// Then write through b, another process on the same database.
		b.do("PUT", "/collection/"+id+"/", u.token, map[string]any{"title": "Changed by b", "movies": []movie{newMovie("Horror")}}).mustStatus(t, 200)
		second := b.newCollection(u)

		if got := a.getCollection(u, id); got.Title != "Changed by b" || got.Movies[0].Genres != "Horror" {
			t.Fatalf("a serves a stale collection: %+v", got)
		}
		list := a.listCollections(u)
		if len(list.Collections) != 2 || list.Collections[1].UUID != second || list.FavouriteGenres != "Horror" {
			t.Fatalf("a serves a stale list: %+v", list)
		}
		b.do("DELETE", "/collection/"+id+"/", u.token, nil).mustStatus(t, 204)
		a.do("GET", "/collection/"+id+"/", u.token, nil).mustStatus(t, 404)
	})
}

// BenchmarkCollectionStoredForm makes what a create of 10 movies stores
// before its write is queued: the movies' JSON and their genre counts'.
func BenchmarkCollectionStoredForm(b *testing.B) {
	genres := []string{"Action", "Drama,Thriller", "Comedy,Drama,Romance", "Horror"}
	movies := make([]movie, 10)
	for i := range movies {
		movies[i] = newMovie(genres[i%len(genres)])
		movies[i].Description = strings.Repeat("A movie about things that happen. ", 3)
	}
	b.ReportAllocs()
	for b.Loop() {
		encodeMovies(movies)
		encodeGenreCounts(countGenres(movies))
	}
}

// BenchmarkCollectionBody reads and checks the body of a create of 10
// movies, as bench/crowd.lua sends it.
func BenchmarkCollectionBody(b *testing.B) {
	genres := []string{"Action", "Drama,Thriller", "Comedy,Drama,Romance", "Horror"}
	movies := make([]movie, 10)
	for i := range movies {
		movies[i] = newMovie(genres[i%len(genres)])
		movies[i].Title = "Evening Shadows"
		movies[i].Description = "A film about evening shadows, told in a couple of sentences as the catalogue does."
	}
	body, err := json.Marshal(map[string]any{"title": "Salt night", "description": "created by wrk", "movies": movies})
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	b.SetBytes(int64(len(body)))
	for b.Loop() {
		o, err := parseObject(body)
		if err != nil {
			b.Fatal(err)
		}
		if in, p := parseCollectionInput(o, true); len(p) > 0 || in.Movies == nil || len(*in.Movies) != len(movies) {
			b.Fatalf("%v, %v", p, in.Movies)
		}
	}
}

func TestCollectionBodyOfUnknownLength(t *testing.T) {
	forEachBackend(t, testCollectionBodyOfUnknownLength)
}

// A body sent without a length (chunked), or with one past readAtOnce,
// is read as it comes, to the same limit as a small one with a length.
func testCollectionBodyOfUnknownLength(t *testing.T, be backend) {
	app := newTestApp(t, be.fresh(t))
	u := app.newUser()
	valid := `{"title":"chunked","movies":[{"uuid":"57baf4f4-c9ef-4197-9e4f-acf04eae5b4d","title":"x","genres":"Drama"}]}`
	tests := []struct {
		name   string
		body   string
		length int64 // -1: unknown
		status int
	}{
		{"unknown length", valid, -1, 201},
		{"unknown length, past the limit", `{"title":"` + strings.Repeat("x", maxBodyBytes) + `"}`, -1, 413},
		{"unknown length, malformed", `{"title":`, -1, 400},
		{"known length", valid, int64(len(valid)), 201},
		{"known length, shorter body", valid, int64(len(valid)) + 10, 400},
		{"known length past readAtOnce", `{"title":"padded"` + strings.Repeat(" ", readAtOnce) + `}`, int64(len(`{"title":"padded"}`) + readAtOnce), 201},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			req := httptest.NewRequest("POST", "/collection/", io.NopCloser(strings.NewReader(tt.body)))
			req.ContentLength = tt.length
			req.Header.Set("Authorization", "Bearer "+u.token)
			rec := httptest.NewRecorder()
			app.handler.ServeHTTP(rec, req)
			if rec.Code != tt.status {
				t.Fatalf("status %d, want %d: %s", rec.Code, tt.status, rec.Body)
			}
		})
	}
	if got := app.listCollections(u); len(got.Collections) != 3 || got.FavouriteGenres != "Drama" {
		t.Fatalf("after three good creates and three bad ones: %+v", got)
	}
}

// stringSet must answer as a map does, past its slice and after clear.
func TestStringSet(t *testing.T) {
	var set stringSet
	for round := range 3 {
		ref := map[string]bool{}
		for i := range 40 {
			s := strconv.Itoa((i * 7) % (10 + 10*round)) // repeats, more distinct each round
			if got, want := set.add(s), !ref[s]; got != want {
				t.Fatalf("round %d: add(%q) = %t, want %t", round, s, got, want)
			}
			ref[s] = true
		}
		set.clear()
	}
}
