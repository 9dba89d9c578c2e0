package main

import (
	"container/list"
	"sync"
	"time"
)

// Bounds of the remembered catalogue pages. A real page is about 3 KiB,
// so the count binds first: 1,000 pages is some 3 MiB. The byte bound is
// there for a catalogue whose pages grow far larger than they are today.
const (
	staleMaxPages = 1000
	staleMaxBytes = 16 << 20
)

// Rough per-value costs in memory beyond the text itself, for
// stalePageSize: a movie's four string headers, and a page's struct, map
// entry and list element.
const (
	staleMovieOverhead = 4 * 16
	stalePageOverhead  = 256
)

// stalePages remembers the catalogue pages last fetched successfully, so
// that /movies/ can still answer while the catalogue fails. It lives in
// memory only, holds at most maxPages pages and maxBytes bytes (as
// stalePageSize estimates them), and evicts the page least recently
// stored or served. It is safe for concurrent use.
//
// Pages are stored as a copy of what put is given, and get hands out
// that stored copy to every caller: it must be treated as read-only, as
// handleMovies treats a page shared by the callers of one catalogue call.
type stalePages struct {
	maxPages int
	maxBytes int64

	mu     sync.Mutex
	bytes  int64                 // sum of the entries' sizes
	order  *list.List            // of *staleEntry, most recently used first
	byPage map[int]*list.Element // the element of each page in order
}

// staleEntry is one remembered page.
type staleEntry struct {
	page      int
	p         cataloguePage
	fetchedAt time.Time
	size      int64
}

// newStalePages returns an empty store bounded to maxPages pages and
// maxBytes bytes. With either bound 0 or less it keeps nothing.
func newStalePages(maxPages int, maxBytes int64) *stalePages {
	return &stalePages{
		maxPages: maxPages,
		maxBytes: maxBytes,
		order:    list.New(),
		byPage:   map[int]*list.Element{},
	}
}

// put remembers p as page, fetched at fetchedAt, in place of any older
// copy of it, evicting the least recently used pages to stay within the
// bounds. A page larger than the byte bound is not kept, and its older
// copy is dropped: it is no longer what the catalogue sends. A copy
// fetched before the one already kept is ignored.
func (s *stalePages) put(page int, p cataloguePage, fetchedAt time.Time) {
	p = cloneCataloguePage(p)
	size := stalePageSize(p)

	s.mu.Lock()
	defer s.mu.Unlock()
	if el, ok := s.byPage[page]; ok {
		if el.Value.(*staleEntry).fetchedAt.After(fetchedAt) {
			return
		}
		s.removeLocked(el)
	}
	if s.maxPages <= 0 || size > s.maxBytes {
		return
	}
	s.byPage[page] = s.order.PushFront(&staleEntry{page: page, p: p, fetchedAt: fetchedAt, size: size})
	s.bytes += size
	for s.order.Len() > s.maxPages || s.bytes > s.maxBytes {
		s.removeLocked(s.order.Back())
	}
}

// get returns the remembered page and its age at now, when there is one
// younger than maxAge. A maxAge of 0 or less never serves a page.
func (s *stalePages) get(page int, now time.Time, maxAge time.Duration) (p cataloguePage, age time.Duration, ok bool) {
	if maxAge <= 0 {
		return cataloguePage{}, 0, false
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	el, ok := s.byPage[page]
	if !ok {
		return cataloguePage{}, 0, false
	}
	e := el.Value.(*staleEntry)
	age = max(now.Sub(e.fetchedAt), 0) // a clock stepped back: as good as new
	if age >= maxAge {
		return cataloguePage{}, 0, false
	}
	s.order.MoveToFront(el)
	return e.p, age, true
}

// removeLocked forgets the entry of el.
func (s *stalePages) removeLocked(el *list.Element) {
	e := s.order.Remove(el).(*staleEntry)
	delete(s.byPage, e.page)
	s.bytes -= e.size
}

// cloneCataloguePage returns a copy of p that shares no memory a caller
// could change (strings are immutable), with its movies under Results.
func cloneCataloguePage(p cataloguePage) cataloguePage {
	ms := p.movies()
	movies := make([]*movie, len(ms))
	for i := range ms {
		movies[i] = &ms[i]
	}
	var count *int64
	if p.Count != nil {
		n := *p.Count
		count = &n
	}
	return cataloguePage{
		Count:    count,
		Next:     cloneString(p.Next),
		Previous: cloneString(p.Previous),
		Results:  &movies,
	}
}

// cloneString returns a pointer to a copy of *s, or nil.
func cloneString(s *string) *string {
	if s == nil {
		return nil
	}
	c := *s
	return &c
}

// stalePageSize estimates the memory p takes: its text plus a fixed cost
// per movie and per page. It is an estimate for a bound, not an exact
// account.
func stalePageSize(p cataloguePage) int64 {
	n := int64(stalePageOverhead)
	if p.Next != nil {
		n += int64(len(*p.Next))
	}
	if p.Previous != nil {
		n += int64(len(*p.Previous))
	}
	for _, m := range p.movies() {
		n += staleMovieOverhead + int64(len(m.Title)+len(m.Description)+len(m.Genres)+len(m.UUID))
	}
	return n
}
