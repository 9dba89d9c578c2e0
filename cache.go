package main

import (
	"slices"
	"sync"
)

// responseCache keeps rendered answers of the collection reads, by user.
// A user's answers are tagged with the user's version they were read at
// (users.version, which every write to the user's collections moves on by
// one in its transaction) and are served only to a request that read that
// same version when it began. So a write by any process sharing the
// database makes the user's answers stale at once, and only that user's:
// the cache never serves data older than the database. A nil cache caches
// nothing.
//
// A write made by this process knows what it changed, and the version it
// moved the user to; when the user's answers are at the version just
// before, the ones it left alone move on with it (advance), and a rename
// is written into the cached list (renamed).
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
	list    *collectionListData // what bodies[""] says, when known
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

// put caches body for the user's collection id as read at version. An
// answer older than the user's others is not kept; a newer one drops
// them. When the cache is full it starts over: simpler than an LRU, and a
// full cache of a database that keeps changing holds mostly stale answers
// anyway.
func (c *responseCache) put(userID int64, id string, version int64, body []byte) {
	c.putAnswer(userID, id, version, body, nil)
}

// putAnswer is put, with what the list says when id is "".
func (c *responseCache) putAnswer(userID int64, id string, version int64, body []byte, list *collectionListData) {
	if c == nil || len(body) > c.maxBytes/4 {
		return // an answer that would crowd out the others is not kept
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	u := c.users[userID]
	switch {
	case u != nil && version < u.version:
		return
	case u != nil && version > u.version:
		c.dropAll(u)
		u.version = version
	}
	if c.size+len(body) > c.maxBytes {
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
	if id == "" {
		u.list = list
	}
}

// advance records that a write of this process moved the user from
// version from to version to, changing the list and the collections
// named: the user's other answers at from stay true at to.
func (c *responseCache) advance(userID, from, to int64, changed ...string) {
	if c == nil {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	u := c.users[userID]
	if u == nil || u.version != from {
		return
	}
	c.advanceLocked(u, to, changed...)
}

// advanceLocked moves u on to version to, without its list and the
// collections changed.
func (c *responseCache) advanceLocked(u *userAnswers, to int64, changed ...string) {
	u.version = to
	c.drop(u, "")
	for _, id := range changed {
		c.drop(u, id)
	}
}

// putList caches the user's list, read at version: body, which says list.
func (c *responseCache) putList(userID, version int64, list *collectionListData, body []byte) {
	c.putAnswer(userID, "", version, body, list)
}

// renamed records that a write of this process moved the user from
// version from to version to by giving collection r its title and
// description: the user's other answers at from stay true at to, and so
// does the cached list with r's new names written in. (A rename changes
// neither the order of the list nor the favourite genres; a list that
// holds later writes than from is still true with them.)
func (c *responseCache) renamed(userID, from, to int64, r storedCollection) {
	if c == nil {
		return
	}
	c.mu.RLock()
	var list *collectionListData
	if u := c.users[userID]; u != nil && u.version == from {
		list = u.list
	}
	c.mu.RUnlock()
	c.advance(userID, from, to, r.UUID)
	if list == nil {
		return
	}
	i := slices.IndexFunc(list.Collections, func(s collectionSummary) bool { return s.UUID == r.UUID })
	if i < 0 {
		return
	}
	patched := &collectionListData{Collections: slices.Clone(list.Collections), FavouriteGenres: list.FavouriteGenres}
	patched.Collections[i].Title, patched.Collections[i].Description = r.Title, r.Description
	if body, err := marshal(collectionList{IsSuccess: true, Data: *patched}); err == nil {
		c.putList(userID, to, patched, body)
	}
}

// drop forgets u's answer for id.
func (c *responseCache) drop(u *userAnswers, id string) {
	if body, ok := u.bodies[id]; ok {
		c.size -= len(body)
		delete(u.bodies, id)
	}
	if id == "" {
		u.list = nil
	}
}

// dropAll forgets all of u's answers.
func (c *responseCache) dropAll(u *userAnswers) {
	for id := range u.bodies {
		c.drop(u, id)
	}
}
