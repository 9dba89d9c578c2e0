package main

import "sync"

// responseCache keeps rendered answers of the collection reads. An entry
// is tagged with the user's version it was read at (users.version, which
// every write to the user's collections moves on in its transaction) and
// is served only to a request that read that same version when it began.
// So a write by any process sharing the database makes the user's entries
// stale at once, and only that user's: the cache never serves data older
// than the database. A nil cache caches nothing.
type responseCache struct {
	mu       sync.RWMutex
	entries  map[cacheKey]cacheEntry
	size     int // bytes held in entries
	maxBytes int
}

// cacheKey names one cached answer: a user's list (id "") or one of the
// user's collections.
type cacheKey struct {
	userID int64
	id     string
}

type cacheEntry struct {
	version int64
	body    []byte
}

func newResponseCache(maxBytes int) *responseCache {
	return &responseCache{entries: map[cacheKey]cacheEntry{}, maxBytes: maxBytes}
}

// get returns the body cached for key at version, if any.
func (c *responseCache) get(key cacheKey, version int64) ([]byte, bool) {
	if c == nil {
		return nil, false
	}
	c.mu.RLock()
	e, ok := c.entries[key]
	c.mu.RUnlock()
	if !ok || e.version != version {
		return nil, false
	}
	return e.body, true
}

// put caches body for key as read at version. When the cache is full it
// starts over: simpler than an LRU, and a full cache of a database that
// keeps changing holds mostly stale entries anyway.
func (c *responseCache) put(key cacheKey, version int64, body []byte) {
	if c == nil || len(body) > c.maxBytes/4 {
		return // an entry that would crowd out the others is not kept
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if old, ok := c.entries[key]; ok {
		if old.version > version {
			return // a newer answer is already there
		}
		c.size -= len(old.body)
	}
	if c.size+len(body) > c.maxBytes {
		clear(c.entries)
		c.size = 0
	}
	c.entries[key] = cacheEntry{version: version, body: body}
	c.size += len(body)
}
