package main

import (
	"bytes"
	"encoding/json"
	"maps"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/golang-jwt/jwt/v5"
)

// The fuzz targets below run their seeds, and the inputs saved under
// testdata/fuzz, in every go test; go test -fuzz explores further.

// collectionBodySeeds are request bodies as clients send them, and as
// hostile ones do.
var collectionBodySeeds = []string{
	// As SPEC shows them.
	`{"title": "Weekend", "description": "optional", "movies": [{"title": "Queerama", "description": "50 years after decriminalisation", "genres": "", "uuid": "57baf4f4-c9ef-4197-9e4f-acf04eae5b4d"}]}`,
	`{"title": "Weekend"}`,
	`{}`,
	`{"movies": []}`,
	`{"title": null, "description": null, "movies": null}`,
	`{"title": "Thrills", "movies": [{"title": "Betrayal", "genres": "Action,Drama,Thriller", "uuid": "720E8796-5397-4E81-9BD7-763789463707"}, {"title": "Betrayal again", "uuid": "720e8796-5397-4e81-9bd7-763789463707"}]}`,
	`{"title": "Spaces", "movies": [{"title": "x", "genres": " Drama , ,Comedy,Drama ", "uuid": "00000000-0000-0000-0000-000000000000"}]}`,
	`{"title": "Unicode ✓ 🎬", "description": "é\u00e9\ud83c\udfac", "movies": [{"title": "Amélie", "uuid": "aaaaaaaa-bbbb-cccc-dddd-eeeeeeeeeeee", "genres": "Comédie,Romance"}]}`,
	`{"title": "unknown fields", "extra": {"nested": [1, 2, 3]}, "movies": [{"title": "t", "uuid": "57baf4f4-c9ef-4197-9e4f-acf04eae5b4d", "rating": 9.5}]}`,
	// Wrong types, blanks, NUL, bad UUIDs.
	`{"title": 5}`,
	`{"title": ["a"], "description": {}, "movies": {}}`,
	`{"title": "   "}`,
	`{"title": "\u0000"}`,
	`{"title": "ok", "description": "a\u0000b"}`,
	`{"title": "ok", "movies": [null, 1, "x", [], {}]}`,
	`{"title": "ok", "movies": [{"title": "t", "uuid": "57baf4f4c9ef41979e4facf04eae5b4d"}]}`,
	`{"title": "ok", "movies": [{"title": "t", "uuid": "{57baf4f4-c9ef-4197-9e4f-acf04eae5b4d}"}]}`,
	`{"title": "ok", "movies": [{"title": "t", "uuid": "57baf4f4-c9ef-4197-9e4f-acf04eae5b4g"}]}`,
	`{"title": "ok", "movies": [{"title": "t", "uuid": 57}]}`,
	`{"title": "ok", "movies": [{"title": "\u0000", "uuid": "57baf4f4-c9ef-4197-9e4f-acf04eae5b4d", "genres": "a\u0000"}]}`,
	`{"title": "ok", "movies": [{"title": " ", "uuid": ""}]}`,
	// Duplicate keys and keys in another case: the last one wins, and
	// "TITLE" is not "title".
	`{"title": "first", "title": "second"}`,
	`{"title": "ok", "title": 5}`,
	`{"TITLE": "upper", "Movies": [{"title": "t", "uuid": "57baf4f4-c9ef-4197-9e4f-acf04eae5b4d"}]}`,
	`{"title": "ok", "movies": [{"TITLE": "t", "UUID": "57baf4f4-c9ef-4197-9e4f-acf04eae5b4d"}]}`,
	`{"title": "ok", "movies": [{"title": "t", "uuid": "57baf4f4-c9ef-4197-9e4f-acf04eae5b4d", "uuid": "720e8796-5397-4e81-9bd7-763789463707"}]}`,
	// Numbers, nesting, escapes, invalid UTF-8, trailing data.
	`{"title": 1e999999, "description": -0.0e-99999, "movies": 123456789012345678901234567890}`,
	`{"title": "deep", "extra": ` + strings.Repeat("[", 200) + strings.Repeat("]", 200) + `}`,
	strings.Repeat(`{"a":`, 100) + `1` + strings.Repeat(`}`, 100),
	`{"title": "\ud800 lone surrogate", "description": "\udc00\ud800"}`,
	"{\"title\": \"bad \xff\xfe utf-8\", \"movies\": [{\"title\": \"\xc3\", \"uuid\": \"57baf4f4-c9ef-4197-9e4f-acf04eae5b4d\"}]}",
	"{\"ti\xfftle\": \"key with invalid utf-8\"}",
	`{"title": "ok"} {"title": "again"}`,
	`{"title": "ok"}   ` + "\n\t\r",
	` [{"title": "array"}]`,
	`null`,
	`"just a string"`,
	`{"title": "a\u2028b\u2029c<>&", "description": "\"\\\/\b\f\n\r\t"}`,
	"{\"title\":\"x\",\"movies\":[" + strings.Repeat(`{"title":"t","uuid":"57baf4f4-c9ef-4197-9e4f-acf04eae5b4d"},`, 30) + "{}]}",
	`{"title": "` + strings.Repeat("é", maxTitleChars) + `"}`,
	`{"title": "` + strings.Repeat("é", maxTitleChars+1) + `"}`,
	`{"title": "ok", "movies": [{"title": "t", "uuid": "57baf4f4-c9ef-4197-9e4f-acf04eae5b4d", "genres": "` + strings.Repeat("g", maxGenreBytes) + `,` + strings.Repeat("h", maxGenreBytes+1) + `"}]}`,
	``,
	`{`,
	`{"title": "unterminated`,
}

// FuzzCollectionBody checks that no request body upsets the parsing of a
// collection, and that what it accepts is in the stored form: every limit
// kept, UUIDs canonical and distinct, and parsing it again changes nothing.
func FuzzCollectionBody(f *testing.F) {
	for _, s := range collectionBodySeeds {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		o, err := parseObject(body)
		if err != nil {
			return
		}
		for _, create := range []bool{true, false} {
			in, problems := parseCollectionInput(o, create)
			if len(problems) > 0 {
				continue
			}
			checkStoredForm(t, in, create)

			again, err := json.Marshal(encodedInput(in))
			if err != nil {
				t.Fatalf("create=%t: encode %+v: %v", create, in, err)
			}
			o2, err := parseObject(again)
			if err != nil {
				t.Fatalf("create=%t: the accepted body encoded again as %s is refused: %v", create, again, err)
			}
			in2, problems := parseCollectionInput(o2, create)
			if len(problems) > 0 {
				t.Fatalf("create=%t: the accepted body encoded again as %s has problems %v", create, again, problems)
			}
			if !reflect.DeepEqual(in, in2) {
				t.Fatalf("create=%t: parsing %s again gives\n%+v\nwant\n%+v", create, again, in2, in)
			}
		}
	})
}

// checkStoredForm fails t when an accepted collection body breaks a rule
// of SPEC's "Conventions" or "Collections".
func checkStoredForm(t *testing.T, in collectionInput, create bool) {
	t.Helper()
	text := func(field, s string, maxChars int, required bool) {
		t.Helper()
		switch {
		case !utf8.ValidString(s):
			t.Fatalf("create=%t: %s %q is not valid UTF-8", create, field, s)
		case utf8.RuneCountInString(s) > maxChars:
			t.Fatalf("create=%t: %s has %d characters, over %d", create, field, utf8.RuneCountInString(s), maxChars)
		case strings.IndexByte(s, 0) >= 0:
			t.Fatalf("create=%t: %s %q holds NUL", create, field, s)
		case required && strings.TrimSpace(s) == "":
			t.Fatalf("create=%t: %s %q is blank", create, field, s)
		}
	}
	if create && in.Title == nil {
		t.Fatalf("create accepted without a title")
	}
	if in.Title != nil {
		text("title", *in.Title, maxTitleChars, true)
	}
	if in.Description != nil {
		text("description", *in.Description, maxDescriptionChars, false)
	}
	if in.Movies == nil {
		return
	}
	if len(*in.Movies) > maxMovies {
		t.Fatalf("create=%t: %d movies, over %d", create, len(*in.Movies), maxMovies)
	}
	seen := map[string]bool{}
	for i, m := range *in.Movies {
		if id, ok := canonicalUUID(m.UUID); !ok || id != m.UUID {
			t.Fatalf("create=%t: movie %d: uuid %q is not in canonical form", create, i, m.UUID)
		}
		if seen[m.UUID] {
			t.Fatalf("create=%t: movie %d: uuid %s listed twice", create, i, m.UUID)
		}
		seen[m.UUID] = true
		text("movie title", m.Title, maxMovieTitleChars, true)
		text("movie description", m.Description, maxMovieDescriptionChars, false)
		text("movie genres", m.Genres, maxGenresBytes, false)
		if len(m.Genres) > maxGenresBytes {
			t.Fatalf("create=%t: movie %d: genres of %d bytes, over %d", create, i, len(m.Genres), maxGenresBytes)
		}
		for _, g := range referenceSplitGenres(m.Genres) {
			if len(g) > maxGenreBytes {
				t.Fatalf("create=%t: movie %d: genre %q of %d bytes, over %d", create, i, g, len(g), maxGenreBytes)
			}
		}
	}
}

// encodedInput is in as a client would send it: the fields that are set.
func encodedInput(in collectionInput) map[string]any {
	v := map[string]any{}
	if in.Title != nil {
		v["title"] = *in.Title
	}
	if in.Description != nil {
		v["description"] = *in.Description
	}
	if in.Movies != nil {
		v["movies"] = *in.Movies
	}
	return v
}

// FuzzCountGenres checks countGenres against SPEC's rule, read plainly
// (referenceSplitGenres), for two movies.
func FuzzCountGenres(f *testing.F) {
	for _, s := range []string{
		"", "Drama", "Action,Drama,Thriller", "Drama,Drama", " Drama , drama ,DRAMA",
		",", ",,,", " , , ", "a,,b", ",a,", "Science Fiction,TV Movie",
		"\t\nHorror\r\n", "\u00a0Drama\u00a0", "\u3000Anime,Anime\u3000", "\u200bZero,Zero",
		"Comédie,Comédie", "a\x00b,a\x00b", "\xff,\xfe\xff, \xff ", "\xc3,\xa9", "a" + strings.Repeat(",b", 500),
		strings.Repeat("x", 2000), strings.Repeat(" , ", 300),
	} {
		f.Add(s, "Drama, "+s)
	}
	f.Fuzz(func(t *testing.T, a, b string) {
		got := countGenres([]movie{{Genres: a}, {Genres: b}})
		want := map[string]int{}
		for _, s := range []string{a, b} {
			for _, g := range referenceSplitGenres(s) {
				want[g]++
			}
		}
		if !maps.Equal(got, want) {
			t.Fatalf("countGenres(%q, %q) = %v, want %v", a, b, got, want)
		}
	})
}

// referenceSplitGenres is SPEC's rule read literally: cut at every comma,
// trim each part, skip empty parts and parts already listed.
func referenceSplitGenres(s string) []string {
	var out []string
	start := 0
	for i := 0; i <= len(s); i++ {
		if i < len(s) && s[i] != ',' {
			continue
		}
		part := strings.TrimSpace(s[start:i])
		start = i + 1
		if part != "" && !slices.Contains(out, part) {
			out = append(out, part)
		}
	}
	return out
}

// cataloguePageSeeds are catalogue bodies, as the live catalogue sends
// them, as its brief describes them, and broken ones.
var cataloguePageSeeds = []string{
	// The start of the live page 1.
	`{
  "count": 45466,
  "next": "https://demo.credy.in/api/v1/maya/movies/?page=2",
  "previous": null,
  "results": [
    {
      "title": "Queerama",
      "description": "50 years after decriminalisation of homosexuality in the UK, director Daisy Asquith mines the jewels of the BFI archive to take us into the relationships, desires, fears and expressions of gay men and women in the 20th century.",
      "genres": "",
      "uuid": "57baf4f4-c9ef-4197-9e4f-acf04eae5b4d"
    },
    {
      "title": "Betrayal",
      "description": "When one of her hits goes wrong, a professional assassin ends up with a suitcase full of a million dollars belonging to a mob boss ...",
      "genres": "Action,Drama,Thriller",
      "uuid": "720e8796-5397-4e81-9bd7-763789463707"
    }
  ]
}`,
	`{"count": 45466, "next": "https://demo.credy.in/api/v1/maya/movies/?page=3", "previous": "https://demo.credy.in/api/v1/maya/movies/?page=1", "data": [{"title": "t", "description": "d", "genres": "Drama,Comedy", "uuid": "57baf4f4-c9ef-4197-9e4f-acf04eae5b4d"}]}`,
	`{"count": 0, "next": null, "previous": null, "results": []}`,
	`{"is_success": true, "count": 1, "data": [{}]}`,
	// The catalogue's own error shape, sometimes sent with status 200.
	`{"is_success": false, "error": {"code": "server_error", "message": "Something went wrong"}}`,
	`{"is_success": false, "count": 1, "results": []}`,
	// Missing, null or odd members.
	`{"count": 1}`,
	`{"results": []}`,
	`{"count": null, "results": []}`,
	`{"count": -1, "results": []}`,
	`{"count": 1, "results": null}`,
	`{"count": 1, "results": null, "data": []}`,
	`{"count": 1, "results": [null]}`,
	`{"count": 1, "data": [{"title": "t"}, null]}`,
	`{"count": 1, "results": [], "data": [null]}`,
	`{"count": 1, "results": [1, "x", []]}`,
	`{"count": "45466", "results": []}`,
	`{"count": 1.5, "results": []}`,
	`{"count": 1e3, "results": []}`,
	`{"count": 99999999999999999999999, "results": []}`,
	`{"count": 9223372036854775807, "results": []}`,
	`{"count": -0, "results": []}`,
	`{"count": 1, "results": [{"title": 5, "uuid": null}]}`,
	`{"count": 1, "results": {"title": "not a list"}}`,
	`{"count": 1, "next": 5, "results": []}`,
	`{"count": 1, "is_success": "yes", "results": []}`,
	// Duplicate keys and keys in another case.
	`{"count": 1, "results": [{"title": "a"}], "results": [null]}`,
	`{"count": 1, "results": [null], "results": [{"title": "a"}]}`,
	`{"count": 1, "results": [], "count": -5}`,
	`{"COUNT": 2, "RESULTS": [{"TITLE": "upper", "UUID": "57BAF4F4-C9EF-4197-9E4F-ACF04EAE5B4D"}]}`,
	`{"count": 1, "Results": [null], "results": []}`,
	// Strings, nesting and bytes no catalogue should send.
	`{"count": 1, "results": [{"title": "a\u0000b", "genres": "\ud800", "uuid": "x"}]}`,
	"{\"count\": 1, \"results\": [{\"title\": \"\xff\xfe\", \"description\": \"\xc3\"}]}",
	`{"count": 1, "results": [], "extra": ` + strings.Repeat("[", 500) + strings.Repeat("]", 500) + `}`,
	strings.Repeat("[", 20000) + strings.Repeat("]", 20000),
	`[]`,
	`null`,
	`"page"`,
	`{"count": 1, "results": []} trailing`,
	`<html><body>502 Bad Gateway</body></html>`,
	``,
}

// FuzzCataloguePage checks that no catalogue body upsets parsePage, and
// that a page it accepts has what the handler relies on.
func FuzzCataloguePage(f *testing.F) {
	for _, s := range cataloguePageSeeds {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		p, err := parsePage(body)
		if err != nil {
			return
		}
		if p.Count == nil || *p.Count < 0 {
			t.Fatalf("accepted a page without a count, or a negative one: %s", body)
		}
		list := p.Results
		if list == nil {
			list = p.Data
		}
		if list == nil {
			t.Fatalf("accepted a page without a list of movies: %s", body)
		}
		movies := p.movies()
		if movies == nil {
			t.Fatalf("movies() is nil for the accepted page %s", body)
		}
		if got, want := len(movies), len(*list); got != want {
			t.Fatalf("movies() has %d movies, the page lists %d: %s", got, want, body)
		}
	})
}

// FuzzTokenVerify feeds arbitrary tokens to the authenticator: it never
// panics, and accepts nothing but a token it could have issued, for an
// account UUID, unexpired.
func FuzzTokenVerify(f *testing.F) {
	a := &authenticator{secret: []byte("fuzzing secret"), ttl: time.Hour, now: time.Now, verified: map[string]verifiedToken{}}
	a.parser = jwt.NewParser(jwt.WithValidMethods([]string{"HS256"}), jwt.WithExpirationRequired())
	good, _ := a.issue("57baf4f4-c9ef-4197-9e4f-acf04eae5b4d")
	for _, seed := range []string{
		good, "", "a.b.c", good + "x", strings.ToUpper(good),
		"eyJhbGciOiJub25lIn0.eyJzdWIiOiIxIn0.",
		"eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxIiwiZXhwIjoiOTk5OTk5OTk5OSJ9.x",
	} {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, token string) {
		account, err := a.verify(token)
		if err != nil {
			return
		}
		if id, ok := canonicalUUID(account); !ok || id != account {
			t.Fatalf("accepted a token whose account is %q", account)
		}
		if token != good {
			// Only a token signed with the secret passes: re-signing
			// its claims must give the same signature.
			parts := strings.Split(token, ".")
			if len(parts) != 3 {
				t.Fatalf("accepted %q", token)
			}
		}
	})
}

// FuzzSplitMatchesEncodingJSON checks that the scanner that splits request
// bodies finds exactly the members, elements and strings encoding/json
// finds, at every depth, for any JSON it accepts.
func FuzzSplitMatchesEncodingJSON(f *testing.F) {
	for _, s := range collectionBodySeeds {
		f.Add([]byte(s))
	}
	for _, s := range []string{
		` { "a" : [ 1 , -2.5e+3 , true , null , "x\"]}" , { "b" : { } } , [ ] ] , "a\u0062" : "\ud83d\ude00" } `,
		`{"k":"v","k":"last"}`,
		`["\\", "\"", "{[", 0, false]`,
		`{"a\\":"\\\\","b\"":"\\\"\\","c":["\\\\\"]"]}`,
		"{\"bad utf-8 \xff\":\"\xfe\"}",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		if !json.Valid(body) {
			return
		}
		checkSplit(t, bytes.Trim(body, " \t\r\n"))
	})
}

// checkSplit compares the scanner's reading of the valid JSON value raw
// with encoding/json's, and goes on into its parts.
func checkSplit(t *testing.T, raw []byte) {
	t.Helper()
	switch raw[0] {
	case '{':
		var want map[string]json.RawMessage
		if err := json.Unmarshal(raw, &want); err != nil {
			t.Fatalf("encoding/json refuses %s: %v", raw, err)
		}
		got := splitObject(raw)
		if len(got) != len(want) {
			t.Fatalf("%s: members %q, want %q", raw, got, want)
		}
		for name, v := range want {
			if !bytes.Equal(got[name], v) {
				t.Fatalf("%s: member %q is %s, want %s", raw, name, got[name], v)
			}
			checkSplit(t, v)
		}
	case '[':
		var want []json.RawMessage
		if err := json.Unmarshal(raw, &want); err != nil {
			t.Fatalf("encoding/json refuses %s: %v", raw, err)
		}
		var got []json.RawMessage // as parseMovies walks a list
		for i := skipSpace(raw, 1); raw[i] != ']'; {
			end := valueEnd(raw, i)
			got = append(got, raw[i:end])
			i = nextItem(raw, end)
		}
		if len(got) != len(want) {
			t.Fatalf("%s: elements %q, want %q", raw, got, want)
		}
		for i := range want {
			if !bytes.Equal(got[i], want[i]) {
				t.Fatalf("%s: element %d is %s, want %s", raw, i, got[i], want[i])
			}
			checkSplit(t, want[i])
		}
	case '"':
		var want string
		if err := json.Unmarshal(raw, &want); err != nil {
			t.Fatalf("encoding/json refuses %s: %v", raw, err)
		}
		if got := unquote(raw); got != want {
			t.Fatalf("%s: text %q, want %q", raw, got, want)
		}
		end, plain := scanString(raw, 0)
		if end != len(raw) || plain && (string(raw[1:end-1]) != want || !isPlainText(want)) {
			t.Fatalf("%s: scanString ends at %d of %d, plain %t; text %q", raw, end, len(raw), plain, want)
		}
		// A member's value: its text when it is valid text, else refused.
		got, problem := stringValue(raw)
		if ok := validText(raw); ok != (problem == "") || ok && got != want {
			t.Fatalf("%s: stringValue %q, %q; valid text: %t, want %q", raw, got, problem, ok, want)
		}
	}
}

// isPlainText reports whether s is printable ASCII with no quote or
// backslash, read byte by byte.
func isPlainText(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < 0x20 || s[i] >= 0x80 || s[i] == '"' || s[i] == '\\' {
			return false
		}
	}
	return true
}

// A collection's answer, written by hand for speed, says what
// encoding/json says of it: valid JSON, one line, the same values,
// whatever the strings hold.
func FuzzCollectionAnswer(f *testing.F) {
	for _, s := range []string{"", "Weekend", `"quoted" \ back\slash`, "tab\tnew\nline\r\x00\x01\x1f\b\f",
		"<b>&amp;</b>", "line\u2028para\u2029", "emoji 🎬 é", "bad \xff\xfe utf-8", "\x7f"} {
		f.Add(s, s, s)
	}
	f.Fuzz(func(t *testing.T, title, description, movieText string) {
		movies := encodeMovies([]movie{{Title: movieText, Description: description, Genres: movieText, UUID: "720e8796-5397-4e81-9bd7-763789463707"}})
		c := storedCollection{UUID: "6f1c0e2a-9a4e-4c4e-8f51-3f0f6f0d2b1a", Title: title, Description: description, Movies: json.RawMessage(movies)}
		got := c.body()
		if !json.Valid(got) || !bytes.HasSuffix(got, []byte("}\n")) || bytes.Count(got, []byte("\n")) != 1 {
			t.Fatalf("not one line of JSON: %q", got)
		}
		want, err := marshal(c)
		if err != nil {
			t.Fatal(err)
		}
		var g, w any
		if err := json.Unmarshal(got, &g); err != nil {
			t.Fatal(err)
		}
		if err := json.Unmarshal(want, &w); err != nil {
			t.Fatal(err)
		}
		if !reflect.DeepEqual(g, w) {
			t.Fatalf("body says %q\nencoding/json says %q", got, want)
		}
	})
}

// A collection's stored form, written by hand for speed, says what
// encoding/json says of it: the movies, and the genre counts of those
// movies, whatever their strings hold.
func FuzzStoredForm(f *testing.F) {
	for _, s := range []string{"", "Drama", "Drama, Comedy,,Drama", `"quoted" \ back\slash`, "tab\tnew\nline\r\x01\x1f\b\f",
		"<b>&amp;</b>", "line\u2028para\u2029", "emoji 🎬 é", "\x7f"} {
		f.Add(s, s)
	}
	f.Fuzz(func(t *testing.T, a, b string) {
		if !utf8.ValidString(a) || !utf8.ValidString(b) {
			t.Skip() // a body with text that is not UTF-8 is refused
		}
		movies := []movie{{Title: a, Description: b, Genres: a, UUID: b}, {Title: b, Description: a, Genres: b + "," + a, UUID: a}}
		for _, tt := range []struct {
			name string
			got  string
			of   any
		}{
			{"movies", encodeMovies(movies), movies},
			{"no movies", encodeMovies(nil), []movie{}},
			{"genre counts", encodeGenreCounts(countGenres(movies)), countGenres(movies)},
		} {
			want, err := marshal(tt.of)
			if err != nil {
				t.Fatal(err)
			}
			var g, w any
			if err := json.Unmarshal([]byte(tt.got), &g); err != nil {
				t.Fatalf("%s: %q is not JSON: %v", tt.name, tt.got, err)
			}
			if err := json.Unmarshal(want, &w); err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(g, w) {
				t.Fatalf("%s: stored %q\nencoding/json says %q", tt.name, tt.got, want)
			}
		}
		// The stored counts read back, twice over, are the counts doubled.
		counts, stored := countGenres(movies), encodeGenreCounts(countGenres(movies))
		sums, err := sumGenreCounts([]byte(stored), []byte(stored))
		if err != nil {
			t.Fatalf("%q read back: %v", stored, err)
		}
		for g, n := range counts {
			counts[g] = 2 * n
		}
		if !maps.Equal(sums, counts) {
			t.Fatalf("%q read back twice: %v, want %v", stored, sums, counts)
		}
	})
}

// sumGenreCounts sums stored genre counts as a list does.
func sumGenreCounts(stored ...[]byte) (map[string]int, error) {
	sums := genreSums{}
	for _, s := range stored {
		if err := addGenreCounts(sums, s); err != nil {
			return nil, err
		}
	}
	return sums.counts(), nil
}

// FuzzAddGenreCounts reads stored genre counts that are not what
// encodeGenreCounts wrote: an error, never a panic, and whatever is read
// without one is JSON whose members are the counts read.
func FuzzAddGenreCounts(f *testing.F) {
	for _, s := range []string{`{}`, `{"Drama":2}`, `{"Drama":2,"War":1}`, `{"a\"b":3}`, `{"\u00e9":1}`, `{`, `}`, `{"`, `{"a"}`,
		`{"a":}`, `{"a":1,}`, `{"a":1,"b"`, `{"a":-1}`, `{"a":1.5}`, `{"a":1e3}`, `{ "a":1}`, `{"a":99999999999}`, `{"a\`, `[]`, `{"a":1}{"b":2}`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, stored []byte) {
		sums, err := sumGenreCounts(stored)
		if err != nil {
			return
		}
		var members map[string]uint32
		if err := json.Unmarshal(stored, &members); err != nil {
			t.Fatalf("%q read as %v, but it is not a JSON object of counts: %v", stored, sums, err)
		}
		// The members' counts summed by name, as encoding/json reads them.
		want := map[string]int{}
		dec := json.NewDecoder(bytes.NewReader(stored))
		dec.Token() // {
		for dec.More() {
			name, _ := dec.Token()
			var n int
			if err := dec.Decode(&n); err != nil {
				t.Fatal(err)
			}
			want[name.(string)] += n
		}
		if !maps.Equal(sums, want) {
			t.Fatalf("%q read as %v, JSON says %v", stored, sums, want)
		}
	})
}

// validJSONCases are bodies on the edges of JSON's grammar.
var validJSONCases = []string{
	``, ` `, `{}`, ` {} `, `{`, `}`, `[]`, `[`, `[,]`, `[1,]`, `[1 2]`, `{"a"}`, `{"a":}`, `{"a":1,}`,
	`{"a" : 1 , "b":[true,false,null]}`, `{1:2}`, `{"a":1}{}`, `{"a":1} x`, "{\"a\":1}\n\t\r ",
	`"x"`, `"\"\\\/\b\f\n\r\t"`, `"\u00e9\uD83D\uDE00"`, `"\u00g0"`, `"\u00e"`, `"\x"`, `"\`, `"abc`,
	"\"\x01\"", "\"\x7f\xff\xfe\"", "\"tab\tinside\"", `"a\"`,
	`0`, `-0`, `01`, `-`, `1.`, `1.5`, `.5`, `1e`, `1e+`, `1E-7`, `1e5.5`, `+1`, `-01`, `123456789012345678901234567890`, `1.0e+10`,
	`true`, `false`, `null`, `tru`, `nul`, `truex`, `nulll`, `True`, `[true,fals]`,
	"\xef\xbb\xbf{}", "{\"a\":\"\x00\"}", `[[[[]]]]`, `[[[]]`, `[{"a":[{"b":{}}]}]`, `{"a":{"b":{"c":[]}}}`,
}

// FuzzValidJSON checks validJSON against json.Valid.
func FuzzValidJSON(f *testing.F) {
	for _, s := range append(validJSONCases, collectionBodySeeds...) {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		if got, want := validJSON(body), json.Valid(body); got != want {
			t.Fatalf("validJSON(%q) = %v, json.Valid says %v", body, got, want)
		}
	})
}

// TestValidJSON checks validJSON against json.Valid on the edges of
// JSON's grammar, and at encoding/json's nesting limit.
func TestValidJSON(t *testing.T) {
	cases := validJSONCases
	for _, depth := range []int{maxJSONDepth - 1, maxJSONDepth, maxJSONDepth + 1} {
		cases = append(cases,
			strings.Repeat("[", depth)+strings.Repeat("]", depth),
			strings.Repeat(`{"a":`, depth-1)+"{}"+strings.Repeat("}", depth-1),
			strings.Repeat("[", depth)+strings.Repeat("]", depth-1))
	}
	for _, c := range cases {
		if got, want := validJSON([]byte(c)), json.Valid([]byte(c)); got != want {
			t.Errorf("validJSON(%.40q) = %v, json.Valid says %v", c, got, want)
		}
	}
}
