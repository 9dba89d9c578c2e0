package main

import (
	"maps"
	"slices"
	"strings"
	"sync"
)

// responseCache keeps rendered answers of the collection reads, by user.
// A user's answers are tagged with the user's version they were read at
// (user_versions.version, which every write to the user's collections
// moves on by one in its transaction) and are served only to a request
// that read that same version when it began. So a write by any process
// sharing the database makes the user's answers stale at once, and only
// that user's: the cache never serves data older than the database. A nil
// cache caches nothing.
//
// A write made by this process knows what it changed, and the version it
// moved the user to; when the user's answers are at the version just
// before, the ones it left alone move on with it (advance), and the list
// takes the change in: a rename (renamed), a new collection and the
// genre counts it moved (created). The list is kept as data, read at
// exactly its version, and rendered by the next request that reads it.
//
// A read can learn the version such a write made before the write's
// handler has told the cache what it changed: it misses, and caches its
// answer at the new version. The answers at the version before are then
// kept aside (userAnswers.prev), so that the write, when it tells, still
// carries the ones it left alone forward, and the list with its change.
type responseCache struct {
	mu       sync.RWMutex
	users    map[int64]*userAnswers
	size     int // bytes held in answers
	maxBytes int
}

// userAnswers is one user's cached answers, all at one version, by
// collection UUID ("" for the list).
type userAnswers struct {
	version int64
	bodies  map[string][]byte
	// list is the user's list at exactly version, when known; bodies[""]
	// is it rendered, when it has been since the last change.
	list      *cachedList
	listBytes int // what list is counted as in size
	// prev is the user's answers at version-1, set aside when an answer
	// at version came first, until this process's write that made
	// version says what it changed (changeList). Never served.
	prev *userAnswers
}

// cachedList is what GET /collection/ says, as data: the collections,
// oldest first, and the user's genre counts, which the favourite genres
// are ranked from.
type cachedList struct {
	collections []collectionSummary
	genres      genreTotals
}

// data is the list as GET /collection/ shows it.
func (l *cachedList) data() collectionListData {
	return collectionListData{Collections: l.collections, FavouriteGenres: favouriteGenres(l.genres.counts)}
}

// summaryBytes is about what one collection of a cached list holds.
func summaryBytes(s collectionSummary) int {
	return len(s.UUID) + len(s.Title) + len(s.Description) + 64
}

// bytes is about what l holds.
func (l *cachedList) bytes() int {
	n := 0
	for _, s := range l.collections {
		n += summaryBytes(s)
	}
	for g := range l.genres.counts {
		n += genreBytes(g)
	}
	return n
}

// genreBytes is about what one genre count of a cached list holds.
func genreBytes(g string) int {
	return len(g) + 32
}

func newResponseCache(maxBytes int) *responseCache {
	return &responseCache{users: map[int64]*userAnswers{}, maxBytes: maxBytes}
}

// get returns the body cached for the user's collection id ("": the list)
// at version, if any.
func (c *responseCache) get(userID int64, id string, version int64) ([]byte, bool) {
	if c == nil {
		return nil, false
	}
	c.mu.RLock()
	defer c.mu.RUnlock()
	u := c.users[userID]
	if u == nil || u.version != version {
		return nil, false
	}
	body, ok := u.bodies[id]
	return body, ok
}

// listAt returns a copy of the user's list as cached at version, to
// render, if there is one.
func (c *responseCache) listAt(userID, version int64) (*cachedList, bool) {
	if c == nil {
		return nil, false
	}
	c.mu.RLock()
	defer c.mu.RUnlock()
	u := c.users[userID]
	if u == nil || u.version != version || u.list == nil {
		return nil, false
	}
	return &cachedList{collections: slices.Clone(u.list.collections), genres: genreTotals{counts: maps.Clone(u.list.genres.counts), partial: u.list.genres.partial}}, true
}

// put caches body for the user's collection id as read at version. An
// answer older than the user's others is not kept; a newer one drops
// them. When the cache is full it starts over: simpler than an LRU, and a
// full cache of a database that keeps changing holds mostly stale answers
// anyway.
func (c *responseCache) put(userID int64, id string, version int64, body []byte) {
	c.putAnswer(userID, id, version, body, nil)
}

// putList caches the user's list, read at exactly version, and body,
// which renders it. The cache keeps list; the caller must not change it.
func (c *responseCache) putList(userID, version int64, list *cachedList, body []byte) {
	c.putAnswer(userID, "", version, body, list)
}

// putAnswer is put, with the list when id is "".
func (c *responseCache) putAnswer(userID int64, id string, version int64, body []byte, list *cachedList) {
	if c == nil {
		return
	}
	cost := len(body)
	if list != nil {
		cost += list.bytes()
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	u := c.users[userID]
	if cost > c.maxBytes/4 {
		// An answer that would crowd out the others is not kept, nor is
		// the list it was rendered from: each read would render it again.
		if list != nil && u != nil && u.version == version {
			c.drop(u, "")
		}
		return
	}
	switch {
	case u != nil && version < u.version:
		return
	case u != nil && version > u.version:
		c.moveOn(u, version)
	}
	if c.size+cost > c.maxBytes {
		clear(c.users)
		c.size = 0
		u = nil
	}
	if u == nil {
		u = &userAnswers{version: version, bodies: map[string][]byte{}}
		c.users[userID] = u
	}
	c.drop(u, id)
	u.bodies[id] = body
	c.size += len(body)
	if list != nil {
		u.list, u.listBytes = list, cost-len(body)
		c.size += u.listBytes
	}
}

// advance records that a write of this process moved the user from
// version from to version to, changing the list and the collection
// changed: the user's other answers at from stay true at to.
func (c *responseCache) advance(userID, from, to int64, changed string) {
	c.changeList(userID, from, to, changed, nil)
}

// renamed records that a write of this process moved the user from
// version from to version to by giving collection r its title and
// description: the user's other answers at from stay true at to, and so
// does the list with r's new names in it. (A rename changes neither the
// order of the list nor the favourite genres.)
func (c *responseCache) renamed(userID, from, to int64, r storedCollection) {
	c.changeList(userID, from, to, r.UUID, func(l *cachedList) (int, bool) {
		i := slices.IndexFunc(l.collections, func(s collectionSummary) bool { return s.UUID == r.UUID })
		if i < 0 {
			return 0, false
		}
		s := &l.collections[i]
		grown := len(r.Title) + len(r.Description) - len(s.Title) - len(s.Description)
		s.Title, s.Description = r.Title, r.Description
		return grown, true
	})
}

// created records that a write of this process moved the user from
// version from to version to by creating collection s, whose movies carry
// the genres counted: the user's other answers at from stay true at to,
// and so does the list with s last and the counts added to the user's.
// A list that holds only the top genres (partial) cannot take them: it
// is dropped. One that would hold more than maxHeldGenres keeps its top
// three only, as a list read from the database would.
func (c *responseCache) created(userID, from, to int64, s collectionSummary, counts map[string]int) {
	c.changeList(userID, from, to, "", func(l *cachedList) (int, bool) {
		if l.genres.partial {
			return 0, false
		}
		l.collections = append(l.collections, s)
		grown := summaryBytes(s)
		if l.genres.counts == nil {
			l.genres.counts = make(map[string]int, len(counts))
		}
		for g, n := range counts {
			if _, ok := l.genres.counts[g]; ok {
				l.genres.counts[g] += n
				continue
			}
			// A copy: g may be part of a long movie's genres.
			l.genres.counts[strings.Clone(g)] = n
			grown += genreBytes(g)
		}
		if len(l.genres.counts) > maxHeldGenres {
			for g := range l.genres.counts {
				grown -= genreBytes(g)
			}
			top := map[string]int{}
			for _, g := range topGenres(l.genres.counts) {
				top[g.Genre] = g.N
				grown += genreBytes(g.Genre)
			}
			l.genres = genreTotals{counts: top, partial: true}
		}
		return grown, true
	})
}

// changeList moves the user from version from to version to, without the
// answer for collection changed ("": none), and changes the cached list
// with change, which tells how many bytes the list grew by; the list is
// dropped if change is nil or cannot make it true at to.
func (c *responseCache) changeList(userID, from, to int64, changed string, change func(*cachedList) (int, bool)) {
	if c == nil {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	u := c.users[userID]
	if u != nil && u.version == to && u.prev != nil && u.prev.version == from {
		c.catchUp(u, changed, change)
		return
	}
	if u == nil || u.version != from {
		return
	}
	list, listBytes := u.list, u.listBytes
	c.dropPrev(u) // answers set aside before from are of no use now
	u.version = to
	c.drop(u, "") // the list, and its bytes
	c.drop(u, changed)
	if list == nil || change == nil {
		return
	}
	grown, ok := change(list)
	if !ok || !c.fits(listBytes+grown) {
		return
	}
	u.list, u.listBytes = list, listBytes+grown
	c.size += u.listBytes
}

// catchUp is changeList for a user whose answers a read has already
// moved on to the write's version: of the answers set aside at the
// version before, those the write left alone join the new ones where
// these have none, and the list does with the change made.
func (c *responseCache) catchUp(u *userAnswers, changed string, change func(*cachedList) (int, bool)) {
	p := u.prev
	u.prev = nil
	for id, body := range p.bodies {
		c.size -= len(body)
		if _, ok := u.bodies[id]; id != "" && id != changed && !ok {
			u.bodies[id] = body
			c.size += len(body)
		}
	}
	c.size -= p.listBytes
	if u.list != nil || p.list == nil || change == nil {
		return
	}
	grown, ok := change(p.list)
	if !ok || !c.fits(p.listBytes+grown) {
		return
	}
	u.list, u.listBytes = p.list, p.listBytes+grown
	c.size += u.listBytes
}

// fits reports whether a list of n bytes may join the cache: one that
// would crowd out the others is not kept, as putAnswer keeps none.
func (c *responseCache) fits(n int) bool {
	return n <= c.maxBytes/4 && c.size+n <= c.maxBytes
}

// moveOn moves u to a newer version: its answers are dropped, or, when
// version is the next one, set aside for catchUp.
func (c *responseCache) moveOn(u *userAnswers, version int64) {
	c.dropPrev(u)
	if version == u.version+1 && (len(u.bodies) > 0 || u.list != nil) {
		u.prev = &userAnswers{version: u.version, bodies: u.bodies, list: u.list, listBytes: u.listBytes}
		u.bodies, u.list, u.listBytes = map[string][]byte{}, nil, 0
	} else {
		c.dropAll(u)
	}
	u.version = version
}

// drop forgets u's answer for id, and the list with the list's answer.
func (c *responseCache) drop(u *userAnswers, id string) {
	if body, ok := u.bodies[id]; ok {
		c.size -= len(body)
		delete(u.bodies, id)
	}
	if id == "" && u.list != nil {
		c.size -= u.listBytes
		u.list, u.listBytes = nil, 0
	}
}

// dropAll forgets all of u's answers, those set aside too.
func (c *responseCache) dropAll(u *userAnswers) {
	for id := range u.bodies {
		c.drop(u, id)
	}
	c.drop(u, "")
	c.dropPrev(u)
}

// dropPrev forgets the answers set aside for u.
func (c *responseCache) dropPrev(u *userAnswers) {
	if u.prev != nil {
		c.dropAll(u.prev)
		u.prev = nil
	}
}
