package main

import (
	"cmp"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"slices"
	"strings"
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
	Title       *string  `json:"title"`
	Description *string  `json:"description"`
	Movies      *[]movie `json:"movies"`
}

// normalize validates the input and brings it to its stored form: movie
// UUIDs in lowercase canonical form and each movie kept once, first
// occurrence first. create requires a title. It returns the problems by
// field name, or nil.
func (in *collectionInput) normalize(create bool) map[string]string {
	problems := map[string]string{}
	switch {
	case in.Title == nil && create:
		problems["title"] = "is required"
	case in.Title != nil && strings.TrimSpace(*in.Title) == "":
		problems["title"] = "must not be blank"
	case in.Title != nil && strings.IndexByte(*in.Title, 0) >= 0:
		problems["title"] = "must not contain the NUL character"
	}
	if in.Description != nil && strings.IndexByte(*in.Description, 0) >= 0 {
		problems["description"] = "must not contain the NUL character"
	}
	if in.Movies != nil {
		movies := make([]movie, 0, len(*in.Movies))
		seen := make(map[string]bool, len(*in.Movies))
		for i, m := range *in.Movies {
			field := fmt.Sprintf("movies[%d]", i)
			id, ok := canonicalUUID(m.UUID)
			switch {
			case m.UUID == "":
				problems[field+".uuid"] = "is required"
			case !ok:
				problems[field+".uuid"] = "is not a valid UUID"
			}
			if strings.TrimSpace(m.Title) == "" {
				problems[field+".title"] = "is required"
			}
			if strings.IndexByte(m.Title+m.Description+m.Genres, 0) >= 0 {
				problems[field] = "must not contain the NUL character"
			}
			for _, g := range splitGenres(m.Genres) {
				if len(g) > maxGenreBytes {
					problems[field+".genres"] = fmt.Sprintf("each genre must be at most %d bytes", maxGenreBytes)
				}
			}
			if !ok || seen[id] {
				continue
			}
			seen[id] = true
			m.UUID = id
			movies = append(movies, m)
		}
		in.Movies = &movies
	}
	if len(problems) > 0 {
		return problems
	}
	return nil
}

// maxGenreBytes caps one genre's name: genres are keys of the per-user
// tally, and PostgreSQL cannot index a key of more than about 2.7 KB.
const maxGenreBytes = 100

// canonicalUUID returns s in lowercase canonical form
// (xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx) and whether s is a UUID at all.
func canonicalUUID(s string) (string, bool) {
	if len(s) != 36 {
		return "", false
	}
	var b [36]byte
	for i := 0; i < 36; i++ {
		c := s[i]
		switch i {
		case 8, 13, 18, 23:
			if c != '-' {
				return "", false
			}
		default:
			switch {
			case '0' <= c && c <= '9', 'a' <= c && c <= 'f':
			case 'A' <= c && c <= 'F':
				c += 'a' - 'A'
			default:
				return "", false
			}
		}
		b[i] = c
	}
	return string(b[:]), true
}

// newUUID returns a random (version 4) UUID.
func newUUID() string {
	var b [16]byte
	rand.Read(b[:]) // never fails: crypto/rand panics rather than return an error
	b[6] = b[6]&0x0f | 0x40
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

// splitGenres returns the distinct genres of one movie entry: the
// comma-separated parts of genres, trimmed, empty parts skipped, in the
// order they first appear.
func splitGenres(genres string) []string {
	var out []string
	for part := range strings.SplitSeq(genres, ",") {
		g := strings.TrimSpace(part)
		if g != "" && !slices.Contains(out, g) {
			out = append(out, g)
		}
	}
	return out
}

// tallyGenres adds sign (+1 or -1) to tally for every genre of every movie.
func tallyGenres(tally map[string]int, movies []movie, sign int) {
	for _, m := range movies {
		for _, g := range splitGenres(m.Genres) {
			tally[g] += sign
		}
	}
}

// genreCount is how many movie entries carry one genre.
type genreCount struct {
	Genre string
	N     int
}

// favouriteGenres returns the top three genres: most frequent first, ties
// by name (A→Z), joined with ", "; "" when there are none.
func favouriteGenres(counts []genreCount) string {
	ranked := slices.Clone(counts)
	ranked = slices.DeleteFunc(ranked, func(c genreCount) bool { return c.N <= 0 })
	slices.SortFunc(ranked, func(a, b genreCount) int {
		if c := cmp.Compare(b.N, a.N); c != 0 {
			return c
		}
		return strings.Compare(a.Genre, b.Genre)
	})
	var sb strings.Builder
	for i, c := range ranked[:min(3, len(ranked))] {
		if i > 0 {
			sb.WriteString(", ")
		}
		sb.WriteString(c.Genre)
	}
	return sb.String()
}
