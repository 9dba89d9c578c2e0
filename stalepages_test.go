package main

import (
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"
)

// stalePage returns a catalogue page numbered n whose movies' titles are
// padded to pad bytes, so that tests can tell pages apart by Count and
// size them at will.
func stalePage(n, pad int) cataloguePage {
	next := fmt.Sprintf("https://demo.credy.in/api/v1/maya/movies/?page=%d", n+1)
	movies := make([]movie, 10)
	for i := range movies {
		movies[i] = movie{
			Title:       fmt.Sprintf("Movie %d", (n-1)*10+i+1) + strings.Repeat(" ", pad),
			Description: "A film.",
			Genres:      "Drama,Comedy",
			UUID:        "720e8796-5397-4e81-9bd7-763789463707",
		}
	}
	return cataloguePage{Count: countOf(int64(n)), Next: &next, Results: moviePtrs(movies)}
}

// remembered lists the pages s holds, most recently used first.
func remembered(s *stalePages) []int {
	s.mu.Lock()
	defer s.mu.Unlock()
	var pages []int
	for el := s.order.Front(); el != nil; el = el.Next() {
		pages = append(pages, el.Value.(*staleEntry).page)
	}
	return pages
}

func TestStalePagesAge(t *testing.T) {
	fetched := time.Date(2025, 3, 14, 15, 9, 26, 0, time.UTC)
	tests := []struct {
		name    string
		now     time.Time
		maxAge  time.Duration
		wantOK  bool
		wantAge time.Duration
	}{
		{"just fetched", fetched, time.Hour, true, 0},
		{"some seconds old", fetched.Add(90*time.Second + 500*time.Millisecond), time.Hour, true, 90*time.Second + 500*time.Millisecond},
		{"just younger than the limit", fetched.Add(time.Hour - time.Nanosecond), time.Hour, true, time.Hour - time.Nanosecond},
		{"as old as the limit", fetched.Add(time.Hour), time.Hour, false, 0},
		{"older than the limit", fetched.Add(25 * time.Hour), 24 * time.Hour, false, 0},
		{"feature off", fetched, 0, false, 0},
		{"clock stepped back", fetched.Add(-time.Minute), time.Hour, true, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := newStalePages(10, 1<<20)
			s.put(2, stalePage(2, 0), fetched)
			p, age, ok := s.get(2, tt.now, tt.maxAge)
			if ok != tt.wantOK {
				t.Fatalf("served: got %v, want %v", ok, tt.wantOK)
			}
			if age != tt.wantAge {
				t.Fatalf("age: got %v, want %v", age, tt.wantAge)
			}
			if ok && *p.Count != 2 {
				t.Fatalf("served page %d, want page 2", *p.Count)
			}
		})
	}
}

func TestStalePagesMiss(t *testing.T) {
	now := time.Now()
	s := newStalePages(10, 1<<20)
	s.put(1, stalePage(1, 0), now)
	if _, _, ok := s.get(2, now, time.Hour); ok {
		t.Fatalf("page 2 served though only page 1 was stored")
	}
}

func TestStalePagesKeepsTheNewest(t *testing.T) {
	t0 := time.Date(2025, 3, 14, 15, 9, 26, 0, time.UTC)
	s := newStalePages(10, 1<<20)
	newer, older := stalePage(7, 0), stalePage(7, 5)
	(*newer.Results)[0].Title = "newer"
	(*older.Results)[0].Title = "older"

	s.put(7, older, t0)
	s.put(7, newer, t0.Add(time.Minute))
	s.put(7, older, t0) // a slow call finishing late
	p, age, ok := s.get(7, t0.Add(2*time.Minute), time.Hour)
	if !ok {
		t.Fatalf("page 7 not served")
	}
	if got, want := p.movies()[0].Title, "newer"; got != want {
		t.Fatalf("served title %q, want %q", got, want)
	}
	if got, want := age, time.Minute; got != want {
		t.Fatalf("age: got %v, want %v", got, want)
	}
	if pages, _ := s.stats(); pages != 1 {
		t.Fatalf("pages kept: got %d, want 1", pages)
	}
}

func TestStalePagesStoresACopy(t *testing.T) {
	now := time.Now()
	s := newStalePages(10, 1<<20)
	movies := []movie{{Title: "Queerama", UUID: "57baf4f4-c9ef-4197-9e4f-acf04eae5b4d"}}
	next := "https://demo.credy.in/api/v1/maya/movies/?page=2"
	// The live catalogue's "results", or the published brief's "data".
	for _, p := range []cataloguePage{{Count: countOf(1), Next: &next, Results: moviePtrs(movies)}, {Count: countOf(1), Next: &next, Data: moviePtrs(movies)}} {
		s.put(1, p, now)
		movies[0].Title = "changed"
		next = "changed"
		got, _, ok := s.get(1, now, time.Hour)
		if !ok {
			t.Fatalf("page 1 not served")
		}
		if got.movies()[0].Title != "Queerama" || *got.Next != "https://demo.credy.in/api/v1/maya/movies/?page=2" {
			t.Fatalf("served page changed with the caller's copy: %+v, next %q", got.movies(), *got.Next)
		}
		movies[0].Title = "Queerama"
		next = "https://demo.credy.in/api/v1/maya/movies/?page=2"
	}
}

func TestStalePagesCountBound(t *testing.T) {
	now := time.Now()
	s := newStalePages(3, 1<<20)
	for n := 1; n <= 3; n++ {
		s.put(n, stalePage(n, 0), now)
	}
	s.get(1, now, time.Hour) // page 1 is now the most recently used
	s.put(4, stalePage(4, 0), now)

	if got, want := fmt.Sprint(remembered(s)), "[4 1 3]"; got != want {
		t.Fatalf("pages kept, most recent first: got %s, want %s", got, want)
	}
	if _, _, ok := s.get(2, now, time.Hour); ok {
		t.Fatalf("page 2, the least recently used, still served")
	}
}

func TestStalePagesByteBound(t *testing.T) {
	now := time.Now()
	size := stalePageSize(stalePage(1, 1000))
	s := newStalePages(100, 3*size+size/2) // room for three and a half
	for n := 1; n <= 5; n++ {
		s.put(n, stalePage(n, 1000), now)
		pages, bytes := s.stats()
		if bytes > s.maxBytes {
			t.Fatalf("after page %d: %d bytes kept, over the bound of %d", n, bytes, s.maxBytes)
		}
		if got, want := pages, min(n, 3); got != want {
			t.Fatalf("after page %d: %d pages kept, want %d", n, got, want)
		}
	}
	if got, want := fmt.Sprint(remembered(s)), "[5 4 3]"; got != want {
		t.Fatalf("pages kept, most recent first: got %s, want %s", got, want)
	}

	// A small page fits beside them without evicting any.
	s.put(6, cataloguePage{Count: countOf(6), Results: moviePtrs(nil)}, now)
	if got, want := fmt.Sprint(remembered(s)), "[6 5 4 3]"; got != want {
		t.Fatalf("pages kept after a small one: got %s, want %s", got, want)
	}
}

func TestStalePagesOverTheCapNotKept(t *testing.T) {
	now := time.Now()
	small := stalePage(1, 0)
	s := newStalePages(100, stalePageSize(small)*4)
	s.put(1, small, now)
	s.put(2, stalePage(2, 0), now)

	huge := stalePage(1, 10000)
	s.put(1, huge, now.Add(time.Second))
	if _, _, ok := s.get(1, now.Add(time.Second), time.Hour); ok {
		t.Fatalf("a page over the byte bound was served")
	}
	if got, want := fmt.Sprint(remembered(s)), "[2]"; got != want {
		t.Fatalf("pages kept: got %s, want %s (the huge page evicts nothing, and drops its older copy)", got, want)
	}
	if _, bytes := s.stats(); bytes != stalePageSize(stalePage(2, 0)) {
		t.Fatalf("bytes kept: got %d, want %d", bytes, stalePageSize(stalePage(2, 0)))
	}
}

func TestStalePagesZeroBoundsKeepNothing(t *testing.T) {
	now := time.Now()
	for _, s := range []*stalePages{newStalePages(0, 1<<20), newStalePages(10, 0)} {
		s.put(1, stalePage(1, 0), now)
		if pages, bytes := s.stats(); pages != 0 || bytes != 0 {
			t.Fatalf("bounds %d pages %d bytes: kept %d pages, %d bytes", s.maxPages, s.maxBytes, pages, bytes)
		}
	}
}

func TestStalePagesConcurrentUse(t *testing.T) {
	start := time.Date(2025, 3, 14, 15, 9, 26, 0, time.UTC)
	size := stalePageSize(stalePage(1, 0))
	s := newStalePages(8, 6*size)
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Go(func() {
			for i := range 500 {
				n := (g*7+i)%20 + 1
				now := start.Add(time.Duration(i) * time.Millisecond)
				if i%3 == 0 {
					s.put(n, stalePage(n, 0), now)
					continue
				}
				if p, age, ok := s.get(n, now, time.Hour); ok {
					if *p.Count != int64(n) || len(p.movies()) != 10 {
						t.Errorf("asked for page %d, served page %d with %d movies", n, *p.Count, len(p.movies()))
					}
					if age < 0 || age > time.Second {
						t.Errorf("page %d: age %v out of range", n, age)
					}
				}
				s.stats()
			}
		})
	}
	wg.Wait()

	pages, bytes := s.stats()
	if pages > 8 || bytes > 6*size {
		t.Fatalf("kept %d pages, %d bytes: over the bounds of 8 pages, %d bytes", pages, bytes, 6*size)
	}
	var sum int64
	for _, n := range remembered(s) {
		sum += s.byPage[n].Value.(*staleEntry).size
	}
	if sum != bytes || len(s.byPage) != pages {
		t.Fatalf("books out of step: entries sum to %d bytes in %d map entries, stats say %d bytes, %d pages", sum, len(s.byPage), bytes, pages)
	}
}

func TestStalePagesDefaultBounds(t *testing.T) {
	// A wordy page: every description 1,000 bytes, several times the
	// live catalogue's usual length. The count should bind before the
	// bytes do, so that the byte bound only guards against pages that are
	// not like the catalogue's at all.
	p := stalePage(1, 0)
	for i := range *p.Results {
		(*p.Results)[i].Description = strings.Repeat("x", 1000)
	}
	if got, limit := staleMaxPages*stalePageSize(p), int64(staleMaxBytes); got > limit {
		t.Fatalf("%d wordy pages take %d bytes, over the byte bound of %d", staleMaxPages, got, limit)
	}
}

// countOf is a page's count as the catalogue's JSON gives it.
func countOf(n int64) *int64 { return &n }

// moviePtrs lists pointers into movies, as a decoded page holds them:
// changing movies changes what they point at.
func moviePtrs(movies []movie) *[]*movie {
	ptrs := make([]*movie, len(movies))
	for i := range movies {
		ptrs[i] = &movies[i]
	}
	return &ptrs
}

// stats reports how many pages are remembered and their estimated size,
// for these tests.
func (s *stalePages) stats() (pages int, bytes int64) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.order.Len(), s.bytes
}
