package main

import (
	"crypto/rand"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"
)

// movie is one movie as the catalogue describes it and as a user saves it
// in a collection. Field order is the JSON order SPEC shows.
type movie struct {
	Title       string `json:"title"`
	Description string `json:"description"`
	Genres      string `json:"genres"`
	UUID        string `json:"uuid"`
}

// collection is one collection with its movies, as GET shows it.
type collection struct {
	UUID        string  `json:"uuid"`
	Title       string  `json:"title"`
	Description string  `json:"description"`
	Movies      []movie `json:"movies"`
}

// collectionSummary is a collection without its movies, as the list shows it.
type collectionSummary struct {
	Title       string `json:"title"`
	UUID        string `json:"uuid"`
	Description string `json:"description"`
}

// collectionInput is the body of POST and PUT /collection/. A field that
// is absent or null is nil.
type collectionInput struct {
	Title       *string
	Description *string
	Movies      *[]movie
	// Genres counts the genres of Movies (countGenres), when they are set.
	// The movies' strings, and so the genres' names, may be cut from one
	// copy of the body's list (parseMovies): what keeps one past the
	// request keeps a copy of it, as the response cache does.
	Genres map[string]int
}

// Limits of what one collection may hold, so that one request's work and
// memory stay proportional to its own size. Characters are counted as
// Unicode code points; genres, whose names are stored as the keys of a
// collection's genre counts, in bytes.
const (
	maxTitleChars            = 200
	maxDescriptionChars      = 2000
	maxMovies                = 1000
	maxMovieTitleChars       = 500
	maxMovieDescriptionChars = 5000
	maxGenresBytes           = 1000
	// maxGenreBytes caps one genre's name.
	maxGenreBytes = 100
	// maxCollectionGenres and maxCollectionGenreBytes cap the distinct
	// genres of one collection, in number and in the bytes of their names
	// as JSON writes them (a control character takes six). Each is a
	// count stored with the collection, and reading a list sums the
	// counts of every collection listed: the caps keep that within a
	// small multiple of a list's own size, 1,000 collections or not. A
	// real catalogue has a few dozen genres of a few bytes each.
	maxCollectionGenres     = 100
	maxCollectionGenreBytes = 2000
)

// parseCollectionInput reads and validates a collection body and brings
// it to its stored form: movie UUIDs in lowercase canonical form and each
// movie kept once, first occurrence first. create requires a title. Every
// problem is reported, by field path.
func parseCollectionInput(o jsonObject, create bool) (collectionInput, fieldProblems) {
	p := fieldProblems{}
	var in collectionInput
	in.Title = o.str(p, "title", "title")
	switch {
	case in.Title == nil && create && p["title"] == "":
		p["title"] = "is required"
	case in.Title != nil:
		checkText(p, "title", *in.Title, maxTitleChars, true)
	}
	in.Description = o.str(p, "description", "description")
	if in.Description != nil {
		checkText(p, "description", *in.Description, maxDescriptionChars, false)
	}
	switch raw := o["movies"]; {
	case raw == nil || isNull(raw):
	case raw[0] != '[':
		p["movies"] = "must be a list"
	default:
		if movies, genres, ok := parseMovies(p, raw); ok {
			in.Movies, in.Genres = &movies, genres
		}
	}
	return in, p
}

// parseMovies reads the movies of a collection body, the list raw, each
// kept once, and counts their genres. It reads the list in one pass, each
// movie as it comes; ok is false when there are more than maxMovies, and
// then no movie is read.
func parseMovies(p fieldProblems, raw []byte) (movies []movie, genres map[string]int, ok bool) {
	// More than maxMovies items take more than 2*maxMovies bytes; a list
	// that long is counted first, more cheaply than its movies are read.
	if len(raw) > 2*maxMovies && hasMoreItems(raw, maxMovies) {
		p["movies"] = fmt.Sprintf("must hold at most %d movies", maxMovies)
		return nil, nil, false
	}
	movies = make([]movie, 0, min(len(raw)/minMovieBytes+1, maxMovies))
	var seen stringSet
	// The movies' plain strings are cut from one copy of the list, not
	// copied one by one: they are read for this request only.
	text := string(raw)
	i := skipSpace(raw, 1)
	for n := 0; raw[i] != ']'; n++ {
		var m movie
		var valid bool
		m, valid, i = parseMovie(p, n, raw, text, i)
		if valid && seen.add(m.UUID) {
			movies = append(movies, m)
		}
		i = nextItem(raw, i)
	}
	// The distinct genres of the movies kept, as they will be counted.
	genres = countGenres(movies)
	if len(genres) > maxCollectionGenres || genreNameBytes(genres) > maxCollectionGenreBytes {
		p["movies"] = fmt.Sprintf("must have at most %d distinct genres in all, of at most %d bytes together",
			maxCollectionGenres, maxCollectionGenreBytes)
	}
	return movies, genres, true
}

// hasMoreItems reports whether the list raw has more than n items.
func hasMoreItems(raw []byte, n int) bool {
	i := skipSpace(raw, 1)
	for ; raw[i] != ']'; n-- {
		if n == 0 {
			return true
		}
		i = nextItem(raw, valueEnd(raw, i))
	}
	return false
}

// minMovieBytes is a first guess at how many bytes of a body a movie
// takes, to size what parseMovies keeps (a UUID and a title take 60,
// the catalogue's movies with their descriptions 200 to 400).
const minMovieBytes = 128

// genreNameBytes is how many bytes the names of genres take as JSON
// writes them, without their quotes.
func genreNameBytes(genres map[string]int) int {
	n := 0
	var buf []byte
	for g := range genres {
		if plainRun(g, 0) == len(g) {
			n += len(g) // written as it is
			continue
		}
		buf = appendJSONString(buf[:0], g)
		n += len(buf) - 2
	}
	return n
}

// parseMovie reads and validates movie n of a collection body, the value
// at i of the list raw (whose copy is text), and returns where that value
// ends; valid is false when the movie has problems. A field's path ("movies[3].uuid")
// is built only for a problem: a valid movie costs no path.
func parseMovie(p fieldProblems, n int, raw []byte, text string, i int) (m movie, valid bool, end int) {
	problem := func(name, what string) {
		p["movies["+strconv.Itoa(n)+"]"+name] = what
		valid = false
	}
	if raw[i] != '{' {
		problem("", "must be an object")
		return m, false, valueEnd(raw, i)
	}
	// Where each field's value is in raw: a name given twice keeps its
	// last; end 0: absent.
	var fields [numMovieFields]struct {
		start, end int
		plain      bool // scanString's: its text is raw[start+1 : end-1]
	}
	for i = skipSpace(raw, i+1); raw[i] != '}'; {
		nameEnd, plainName := scanString(raw, i)
		f := movieField(raw[i:nameEnd], plainName)
		i = skipSpace(raw, skipSpace(raw, nameEnd)+1) // past the colon
		valueStart, isPlain := i, false
		if raw[i] == '"' {
			i, isPlain = scanString(raw, i)
		} else {
			i = valueEnd(raw, i)
		}
		if f >= 0 {
			fields[f].start, fields[f].end, fields[f].plain = valueStart, i, isPlain
		}
		i = nextItem(raw, i)
	}
	end = i + 1
	valid = true
	var values [numMovieFields]string
	var bad [numMovieFields]bool
	for f, field := range fields {
		var what string
		switch {
		case field.plain:
			values[f] = text[field.start+1 : field.end-1]
		case field.end > 0:
			values[f], what = stringValue(raw[field.start:field.end])
		}
		if what != "" {
			problem("."+movieFields[f], what)
			bad[f] = true
		}
	}
	m = movie{Title: values[fieldTitle], Description: values[fieldDescription], Genres: values[fieldGenres], UUID: values[fieldUUID]}
	if !bad[fieldUUID] {
		id, ok := canonicalUUID(m.UUID)
		switch {
		case m.UUID == "":
			problem(".uuid", "is required")
		case !ok:
			problem(".uuid", "is not a valid UUID")
		}
		m.UUID = id
	}
	if !bad[fieldTitle] {
		if what := textProblem(m.Title, maxMovieTitleChars, true); what != "" {
			problem(".title", what)
		}
	}
	if what := textProblem(m.Description, maxMovieDescriptionChars, false); what != "" {
		problem(".description", what)
	}
	if what := genresProblem(m.Genres); what != "" {
		problem(".genres", what)
	}
	return m, valid, end
}

// movieField is which field of a movie the member name raw (a JSON
// string, quotes included) names, or -1. A plain name (scanString) is
// compared as it is; any other is decoded first.
func movieField(raw []byte, plain bool) int {
	name := string(raw[1 : len(raw)-1]) // not copied: only compared
	if !plain {
		name = unquote(raw)
	}
	switch name {
	case "title":
		return fieldTitle
	case "description":
		return fieldDescription
	case "genres":
		return fieldGenres
	case "uuid":
		return fieldUUID
	}
	return -1
}

// The members of a movie, as parseMovie reads them.
const (
	fieldTitle = iota
	fieldDescription
	fieldGenres
	fieldUUID
	numMovieFields
)

var movieFields = [numMovieFields]string{
	fieldTitle:       "title",
	fieldDescription: "description",
	fieldGenres:      "genres",
	fieldUUID:        "uuid",
}

// checkText records a problem at field when s is too long, holds NUL, or
// is blank where required.
func checkText(p fieldProblems, field, s string, maxChars int, required bool) {
	if what := textProblem(s, maxChars, required); what != "" {
		p[field] = what
	}
}

// textProblem tells what is wrong with s, when it is too long, holds NUL,
// or is blank where required; "" when nothing is.
func textProblem(s string, maxChars int, required bool) string {
	switch {
	case len(s) > maxChars && (len(s) > 4*maxChars || utf8.RuneCountInString(s) > maxChars):
		return fmt.Sprintf("must be at most %d characters", maxChars)
	case hasNUL(s):
		return "must not contain the NUL character"
	case required && strings.TrimSpace(s) == "":
		return "is required and must not be blank"
	}
	return ""
}

// genresProblem tells what is wrong with a movie's genres, when they are
// too long in all or in one genre, or hold NUL; "" when nothing is.
func genresProblem(genres string) string {
	switch {
	case len(genres) > maxGenresBytes:
		return fmt.Sprintf("must be at most %d bytes", maxGenresBytes)
	case hasNUL(genres):
		return "must not contain the NUL character"
	case len(genres) <= maxGenreBytes:
		return "" // no genre of it can be longer
	}
	for g := range strings.SplitSeq(genres, ",") {
		g = strings.TrimSpace(g)
		if len(g) > maxGenreBytes {
			return fmt.Sprintf("each genre must be at most %d bytes", maxGenreBytes)
		}
	}
	return ""
}

// canonicalUUID returns s in lowercase canonical form
// (xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx) and whether s is a UUID at all.
func canonicalUUID(s string) (string, bool) {
	if len(s) != 36 || s[8] != '-' || s[13] != '-' || s[18] != '-' || s[23] != '-' {
		return "", false
	}
	var b [36]byte
	upper := false
	for i := range 36 {
		c := s[i]
		if i == 8 || i == 13 || i == 18 || i == 23 {
			b[i] = c
			continue
		}
		lower := lowerHex[c]
		if lower == 0 {
			return "", false
		}
		upper = upper || lower != c
		b[i] = lower
	}
	if !upper {
		return s, true // already canonical: no copy
	}
	return string(b[:]), true
}

// lowerHex maps each hex digit to its lowercase form, and every other
// byte to 0.
var lowerHex = func() (t [256]byte) {
	for _, c := range "0123456789abcdef" {
		t[c] = byte(c)
	}
	for _, c := range "ABCDEF" {
		t[c] = byte(c) + 'a' - 'A'
	}
	return t
}()

// newUUID returns a random (version 4) UUID.
func newUUID() string {
	var b [16]byte
	rand.Read(b[:]) // never fails: crypto/rand panics rather than return an error
	return formatUUID(b, 4)
}

// newTimeUUID returns a version 7 UUID (RFC 9562): now's Unix time in
// milliseconds, then 74 random bits. Collections get these: ids made one
// after another sort together, so a create adds to the end of the uuid
// index, where a random id would rewrite a page of it picked at random,
// a page more in SQLite's WAL for every create.
func newTimeUUID(now time.Time) string {
	var b [16]byte
	binary.BigEndian.PutUint64(b[:8], uint64(now.UnixMilli())<<16)
	rand.Read(b[6:]) // never fails, as above
	return formatUUID(b, 7)
}

// formatUUID sets b's version and variant bits and returns it in
// canonical form.
func formatUUID(b [16]byte, version byte) string {
	b[6] = b[6]&0x0f | version<<4
	b[8] = b[8]&0x3f | 0x80
	var s [36]byte
	hex.Encode(s[0:8], b[0:4])
	s[8] = '-'
	hex.Encode(s[9:13], b[4:6])
	s[13] = '-'
	hex.Encode(s[14:18], b[6:8])
	s[18] = '-'
	hex.Encode(s[19:23], b[8:10])
	s[23] = '-'
	hex.Encode(s[24:], b[10:])
	return string(s[:])
}

// countGenres returns how many of movies carry each genre. A movie's
// genres are the comma-separated parts of its genres, trimmed, empty
// parts skipped, each counted once per movie. Linear in the length of
// the genres.
func countGenres(movies []movie) map[string]int {
	counts := map[string]int{}
	var mine stringSet // the current movie's genres counted so far
	for _, m := range movies {
		mine.clear()
		for rest := m.Genres; rest != ""; {
			var part string
			part, rest, _ = strings.Cut(rest, ",")
			if g := strings.TrimSpace(part); g != "" && mine.add(g) {
				counts[g]++
			}
		}
	}
	return counts
}

// stringSet is a set of strings that holds its first few in a slice,
// looked through one by one, cheaper than a map's hashing for the few
// genres of a movie or the few movies of a list, and the rest in a map,
// so that a set of many stays linear.
type stringSet struct {
	few  []string
	many map[string]bool
}

// setFew is how many strings a stringSet holds in its slice.
const setFew = 8

// add adds s, and reports whether s was not in the set already.
func (set *stringSet) add(s string) bool {
	if len(set.few) < setFew {
		if slices.Contains(set.few, s) {
			return false
		}
		if set.few == nil {
			set.few = make([]string, 0, setFew)
		}
		set.few = append(set.few, s)
		return true
	}
	// The slice is full: the map holds what it holds, and the rest.
	if len(set.many) == 0 {
		if set.many == nil {
			set.many = make(map[string]bool, 2*setFew)
		}
		for _, f := range set.few {
			set.many[f] = true
		}
	}
	if set.many[s] {
		return false
	}
	set.many[s] = true
	return true
}

// clear empties the set, keeping its memory.
func (set *stringSet) clear() {
	set.few = set.few[:0]
	clear(set.many)
}

// encodeGenreCounts is the stored form of a collection's genre counts:
// the JSON object encoding/json writes of them, without HTML escaping (a
// "<" stays one byte, not six), written by hand.
func encodeGenreCounts(counts map[string]int) string {
	genres := make([]string, 0, len(counts))
	for g := range counts {
		genres = append(genres, g)
	}
	slices.Sort(genres)
	n := 2
	for _, g := range genres {
		n += len(g) + 24
	}
	b := make([]byte, 0, n)
	b = append(b, '{')
	for i, g := range genres {
		if i > 0 {
			b = append(b, ',')
		}
		b = appendJSONString(b, g)
		b = append(b, ':')
		b = strconv.AppendInt(b, int64(counts[g]), 10)
	}
	return string(append(b, '}'))
}

// genreSums is the sums of stored genre counts by each genre's name as
// stored: a JSON string, quotes included. Each sum is kept behind a
// pointer, so that adding to a genre already summed costs no allocation,
// with the genre's name read once, however many collections carry it.
type genreSums map[string]*genreSum

type genreSum struct {
	genre string
	n     int
}

// addGenreCounts adds a collection's stored genre counts (the form
// encodeGenreCounts writes: a JSON object of whole numbers) to sums. Text
// that is not such an object is an error, never a panic: it is read
// strictly, byte by byte.
func addGenreCounts(sums genreSums, stored []byte) error {
	if len(stored) < 2 || stored[0] != '{' || stored[len(stored)-1] != '}' {
		return errMalformedCounts
	}
	i, end := 1, len(stored)-1
	for i < end {
		if stored[i] != '"' {
			return errMalformedCounts
		}
		j := i + 1 // past the name's closing quote
		escaped := false
		for ; j < end && stored[j] != '"'; j++ {
			if stored[j] < 0x20 {
				return errMalformedCounts
			}
			if stored[j] == '\\' {
				escaped = true
				j++
			}
		}
		if j >= end {
			return errMalformedCounts
		}
		name := stored[i : j+1]
		i = j + 1
		if i >= end || stored[i] != ':' {
			return errMalformedCounts
		}
		i++
		n, digits := 0, 0
		for ; i < end && '0' <= stored[i] && stored[i] <= '9' && digits < 9; i, digits = i+1, digits+1 {
			n = n*10 + int(stored[i]-'0')
		}
		if digits == 0 || (digits > 1 && stored[i-digits] == '0') || (i < end && stored[i] != ',') {
			return errMalformedCounts
		}
		if i < end {
			i++ // the comma
			if i == end {
				return errMalformedCounts
			}
		}
		if sum := sums[string(name)]; sum != nil {
			sum.n += n
			continue
		}
		genre, ok := storedName(name, escaped)
		if !ok {
			return errMalformedCounts
		}
		sums[string(name)] = &genreSum{genre: genre, n: n}
	}
	return nil
}

// counts is the sums by genre: names stored in two spellings add up.
func (sums genreSums) counts() map[string]int {
	counts := make(map[string]int, len(sums))
	for _, sum := range sums {
		counts[sum.genre] += sum.n
	}
	return counts
}

var errMalformedCounts = errors.New("stored genre counts are malformed")

// storedName is the text of the JSON string name, quotes included, and
// whether it is one.
func storedName(name []byte, escaped bool) (string, bool) {
	if !escaped {
		return string(name[1 : len(name)-1]), utf8.Valid(name)
	}
	var s string
	err := json.Unmarshal(name, &s)
	return s, err == nil
}

// topGenres returns the three genres of counts that favouriteGenres
// names, in its order: one pass, however many genres there are.
func topGenres(counts map[string]int) []genreCount {
	top := make([]genreCount, 0, 4)
	for g, n := range counts {
		if n <= 0 {
			continue
		}
		c := genreCount{Genre: g, N: n}
		i := len(top)
		for i > 0 && ranksBefore(c, top[i-1]) {
			i--
		}
		if i < 3 {
			top = slices.Insert(top, i, c)[:min(len(top)+1, 3)]
		}
	}
	return top
}

// ranksBefore reports whether a comes before b among the favourite
// genres: more frequent first, ties by name.
func ranksBefore(a, b genreCount) bool {
	if a.N != b.N {
		return a.N > b.N
	}
	return a.Genre < b.Genre
}

// genreCount is how many movie entries carry one genre.
type genreCount struct {
	Genre string
	N     int
}

// favouriteGenres returns the top three genres: most frequent first, ties
// by name (A→Z), joined with ", "; "" when there are none.
func favouriteGenres(counts map[string]int) string {
	var sb strings.Builder
	for i, c := range topGenres(counts) {
		if i > 0 {
			sb.WriteString(", ")
		}
		sb.WriteString(c.Genre)
	}
	return sb.String()
}
