package main

import "sync"

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
// before, the ones it left alone move on with it (advance).
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
	u.version = to
	c.drop(u, "")
	for _, id := range changed {
		c.drop(u, id)
	}
}

// drop forgets u's answer for id.
func (c *responseCache) drop(u *userAnswers, id string) {
	if body, ok := u.bodies[id]; ok {
		c.size -= len(body)
		delete(u.bodies, id)
	}
}

// dropAll forgets all of u's answers.
func (c *responseCache) dropAll(u *userAnswers) {
	for id := range u.bodies {
		c.drop(u, id)
	}
}
