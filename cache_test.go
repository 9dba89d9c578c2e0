package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"maps"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"reflect"
	"slices"
	"strings"
	"sync"
	"testing"
	"unsafe"
)

func TestResponseCacheVersions(t *testing.T) {
	body := func(s string) []byte { return []byte(s) }
	tests := []struct {
		name string
		do   func(c *responseCache)
		// want is what get(1, id, version) finds, by "id@version"; absent
		// means a miss.
		want map[string]string
	}{
		{
			name: "answers are served at their version only",
			do:   func(c *responseCache) { c.put(1, "a", 3, body("A3")) },
			want: map[string]string{"a@3": "A3"},
		},
		{
			name: "an own write carries the answers it left alone forward",
			do: func(c *responseCache) {
				c.put(1, "", 3, body("list"))
				c.put(1, "a", 3, body("A3"))
				c.put(1, "b", 3, body("B3"))
				c.advance(1, 3, 4, "a")
			},
			want: map[string]string{"b@4": "B3"},
		},
		{
			name: "a write from a version the cache is not at carries nothing",
			do: func(c *responseCache) {
				c.put(1, "b", 3, body("B3"))
				c.advance(1, 4, 5, "a") // version 4 came from another process
			},
			want: map[string]string{"b@3": "B3"},
		},
		{
			name: "an older answer is not kept beside newer ones",
			do: func(c *responseCache) {
				c.put(1, "a", 4, body("A4"))
				c.put(1, "b", 3, body("B3"))
			},
			want: map[string]string{"a@4": "A4"},
		},
		{
			name: "a newer answer drops the older ones",
			do: func(c *responseCache) {
				c.put(1, "a", 3, body("A3"))
				c.put(1, "b", 4, body("B4"))
			},
			want: map[string]string{"b@4": "B4"},
		},
		{
			name: "a read that learned an own write's version first keeps the answers it left alone",
			do: func(c *responseCache) {
				c.put(1, "", 3, body("list"))
				c.put(1, "a", 3, body("A3"))
				c.put(1, "b", 3, body("B3"))
				c.put(1, "c", 4, body("C4")) // read at 4 before the write's handler told
				c.advance(1, 3, 4, "a")
			},
			want: map[string]string{"b@4": "B3", "c@4": "C4"},
		},
		{
			name: "an answer read at the new version beats the one set aside",
			do: func(c *responseCache) {
				c.put(1, "b", 3, body("B3"))
				c.put(1, "b", 4, body("B4"))
				c.advance(1, 3, 4, "a")
			},
			want: map[string]string{"b@4": "B4"},
		},
		{
			name: "answers set aside go when a write moves on from the new version",
			do: func(c *responseCache) {
				c.put(1, "b", 3, body("B3"))
				c.put(1, "c", 4, body("C4"))
				c.advance(1, 4, 5, "x")
				c.advance(1, 3, 4, "a") // too late: the cache is at 5
			},
			want: map[string]string{"c@5": "C4"},
		},
		{
			name: "answers two versions back are not set aside",
			do: func(c *responseCache) {
				c.put(1, "b", 3, body("B3"))
				c.put(1, "c", 5, body("C5"))
				c.advance(1, 4, 5, "a")
			},
			want: map[string]string{"c@5": "C5"},
		},
		{
			name: "users are apart",
			do: func(c *responseCache) {
				c.put(1, "a", 3, body("A3"))
				c.put(2, "a", 9, body("other"))
				c.advance(2, 9, 10, "a")
			},
			want: map[string]string{"a@3": "A3"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := newResponseCache(1 << 20)
			tt.do(c)
			for _, id := range []string{"", "a", "b"} {
				for v := int64(2); v <= 10; v++ {
					got, ok := c.get(1, id, v)
					want, wantOK := tt.want[fmt.Sprintf("%s@%d", id, v)]
					if ok != wantOK || string(got) != want {
						t.Errorf("get(%q, %d) = %q, %t; want %q, %t", id, v, got, ok, want, wantOK)
					}
				}
			}
			size := 0
			for _, u := range c.users {
				for ; u != nil; u = u.prev {
					for _, b := range u.bodies {
						size += len(b)
					}
					size += u.listBytes
				}
			}
			if size != c.size {
				t.Errorf("size %d, but the answers hold %d bytes", c.size, size)
			}
		})
	}
}

// TestCachedReadsMatchTheDatabase drives random writes of one user's
// collections through two processes on one database, and after each
// checks that every read through either, cached or not, answers what the
// database holds.
func TestCachedReadsMatchTheDatabase(t *testing.T) {
	forEachBackend(t, func(t *testing.T, be backend) {
		ctx := context.Background()
		dsn := be.dsn(t)
		apps := []*testApp{newTestApp(t, withDSN(dsn)), newTestApp(t, withDSN(dsn))}
		u := apps[0].newUser()
		acct, err := apps[0].store.UserByName(ctx, u.name)
		if err != nil {
			t.Fatal(err)
		}
		genres := []string{"Drama", "Comedy", "Horror", "War", "Crime", "Musical"}
		movies := func(rng *rand.Rand) []movie {
			m := make([]movie, rng.IntN(3))
			for i := range m {
				m[i] = newMovie(genres[rng.IntN(len(genres))] + "," + genres[rng.IntN(len(genres))])
			}
			return m
		}
		rng := rand.New(rand.NewPCG(3, 4))
		ids := []string{apps[0].newCollection(u, movies(rng)...), apps[1].newCollection(u, movies(rng)...)}
		var deleted []string
		for i := range 150 {
			app := apps[rng.IntN(2)]
			id := ids[rng.IntN(len(ids))]
			switch rng.IntN(5) {
			case 0, 1:
				app.do("PUT", "/collection/"+id+"/", u.token, map[string]any{"title": "renamed " + string(rune('a'+i%26))}).mustStatus(t, 200)
			case 2:
				app.do("PUT", "/collection/"+id+"/", u.token, map[string]any{"movies": movies(rng)}).mustStatus(t, 200)
			case 3:
				ids = append(ids, app.newCollection(u, movies(rng)...))
			case 4:
				if len(ids) > 1 {
					app.do("DELETE", "/collection/"+id+"/", u.token, nil).mustStatus(t, 204)
					ids = slices.DeleteFunc(ids, func(s string) bool { return s == id })
					deleted = append(deleted, id)
				}
			}
			list, _, _, err := apps[0].store.Collections(ctx, acct.ID)
			if err != nil {
				t.Fatal(err)
			}
			// The favourite genres recounted from every stored movie.
			var all []movie
			for _, id := range ids {
				stored, err := apps[0].store.Collection(ctx, acct.ID, id)
				if err != nil {
					t.Fatal(err)
				}
				movies, err := decodeMovies(string(stored.Movies))
				if err != nil {
					t.Fatal(err)
				}
				all = append(all, movies...)
			}
			favourites := favouriteGenres(countGenres(all))
			for _, app := range apps {
				got := app.listCollections(u)
				if !reflect.DeepEqual(got.Collections, list) || got.FavouriteGenres != favourites {
					t.Fatalf("step %d: list %+v, the database has %+v, %q", i, got, list, favourites)
				}
				for _, id := range ids {
					stored, err := apps[0].store.Collection(ctx, acct.ID, id)
					if err != nil {
						t.Fatal(err)
					}
					want, err := decodeMovies(string(stored.Movies))
					if err != nil {
						t.Fatal(err)
					}
					got := app.getCollection(u, id)
					if got.Title != stored.Title || !slices.Equal(got.Movies, want) {
						t.Fatalf("step %d: collection %+v, the database has %+v", i, got, stored)
					}
				}
				for _, id := range deleted {
					app.do("GET", "/collection/"+id+"/", u.token, nil).mustStatus(t, 404)
				}
			}
		}
	})
}

// TestReadsRacingWritesAreNeverOlder drives one user's renames and
// creates through one process while other requests read the same user
// as fast as they can, so that reads often learn a write's version before
// its handler has told the cache what it changed. After each write is
// answered, its writer reads it back: the collection and the list show
// that write or a later one, never an earlier one; and at the end every
// read answers what the database holds.
func TestReadsRacingWritesAreNeverOlder(t *testing.T) {
	forEachBackend(t, func(t *testing.T, be backend) {
		app := newTestApp(t, withDSN(be.dsn(t)))
		u := app.newUser()
		ids := []string{app.newCollection(u, newMovie("Drama")), app.newCollection(u, newMovie("War,Drama"))}
		// send answers the status and the body of a request as u, its
		// body sent as JSON unless nil; safe in any goroutine.
		send := func(method, path string, body any) (int, []byte) {
			var js []byte
			if body != nil {
				js, _ = json.Marshal(body)
			}
			req := httptest.NewRequest(method, path, bytes.NewReader(js))
			req.Header.Set("Authorization", "Bearer "+u.token)
			rec := httptest.NewRecorder()
			app.handler.ServeHTTP(rec, req)
			return rec.Code, rec.Body.Bytes()
		}
		get := func(path string) (int, []byte) { return send("GET", path, nil) }
		// titles reads the list: each collection's title by UUID.
		titles := func() (map[string]string, error) {
			code, body := get("/collection/")
			var l collectionList
			if err := json.Unmarshal(body, &l); code != http.StatusOK || err != nil {
				return nil, fmt.Errorf("list: %d %s", code, body)
			}
			m := map[string]string{}
			for _, c := range l.Data.Collections {
				m[c.UUID] = c.Title
			}
			return m, nil
		}
		const writes = 30
		done := make(chan struct{})
		var readers, writers sync.WaitGroup
		for range 4 {
			readers.Add(1)
			go func() {
				defer readers.Done()
				for i := 0; ; i++ {
					select {
					case <-done:
						return
					default:
					}
					path := "/collection/"
					if i%2 == 1 {
						path = "/collection/" + ids[i/2%len(ids)] + "/"
					}
					if code, body := get(path); code != http.StatusOK {
						t.Errorf("GET %s: %d %s", path, code, body)
						return
					}
				}
			}()
		}
		// One writer renames each collection; only it renames that one, so
		// after its k-th rename nothing may show an older title.
		for w, id := range ids {
			writers.Add(1)
			go func() {
				defer writers.Done()
				for k := range writes {
					title := fmt.Sprintf("w%d-%02d", w, k)
					if code, body := send("PUT", "/collection/"+id+"/", map[string]any{"title": title}); code != http.StatusOK {
						t.Errorf("rename: %d %s", code, body)
						return
					}
					code, body := get("/collection/" + id + "/")
					var c collection
					if err := json.Unmarshal(body, &c); code != http.StatusOK || err != nil || c.Title < title {
						t.Errorf("after rename %q, GET answered %d %s", title, code, body)
						return
					}
					m, err := titles()
					if err != nil || m[id] < title {
						t.Errorf("after rename %q, the list shows %q (%v)", title, m[id], err)
						return
					}
				}
			}()
		}
		// And one creates and deletes, reading each one back: the list
		// holds what it made and kept, and a deleted one is gone.
		writers.Add(1)
		go func() {
			defer writers.Done()
			var kept []string
			for k := range writes {
				code, body := send("POST", "/collection/", map[string]any{"title": fmt.Sprint("new ", k), "movies": []movie{newMovie("Comedy,War")}})
				var c collectionCreated
				if err := json.Unmarshal(body, &c); code != http.StatusCreated || err != nil {
					t.Errorf("create: %d %s", code, body)
					return
				}
				id := c.CollectionUUID
				if code, body := get("/collection/" + id + "/"); code != http.StatusOK {
					t.Errorf("after create %d, GET answered %d %s", k, code, body)
					return
				}
				if k%2 == 1 {
					if code, body := send("DELETE", "/collection/"+id+"/", nil); code != http.StatusNoContent {
						t.Errorf("delete: %d %s", code, body)
						return
					}
					if code, body := get("/collection/" + id + "/"); code != http.StatusNotFound {
						t.Errorf("after delete %d, GET answered %d %s", k, code, body)
						return
					}
				} else {
					kept = append(kept, id)
				}
				m, err := titles()
				if _, ok := m[id]; err != nil || ok != (k%2 == 0) {
					t.Errorf("after write %d, the list holds %s: %t (%v)", k, id, ok, err)
					return
				}
				for _, id := range kept {
					if _, ok := m[id]; !ok {
						t.Errorf("after write %d, the list lacks %s", k, id)
						return
					}
				}
			}
		}()
		writers.Wait()
		close(done)
		readers.Wait()

		acct, err := app.store.UserByName(context.Background(), u.name)
		if err != nil {
			t.Fatal(err)
		}
		list, counts, _, err := app.store.Collections(context.Background(), acct.ID)
		if err != nil {
			t.Fatal(err)
		}
		if got := app.listCollections(u); !reflect.DeepEqual(got.Collections, list) || got.FavouriteGenres != favouriteGenres(counts.counts) {
			t.Errorf("list at the end: %+v, the database has %+v, %q", got, list, favouriteGenres(counts.counts))
		}
		for _, id := range ids {
			if got, want := app.getCollection(u, id).Title, fmt.Sprintf("w%d-%02d", slices.Index(ids, id), writes-1); got != want {
				t.Errorf("collection %s at the end: %q, want %q", id, got, want)
			}
		}
	})
}

// TestCreateKeepsACachedList: a create through the process whose cache
// holds the user's current list keeps that list, with the new collection
// and the favourite genres ranked anew, so the next list is no database
// read; when its list is behind (another process wrote), the create does
// not read its genres' counts back, and the next list is read whole.
// Either way it is the database's.
func TestCreateKeepsACachedList(t *testing.T) {
	forEachBackend(t, func(t *testing.T, be backend) {
		ctx := context.Background()
		dsn := be.dsn(t)
		app, other := newTestApp(t, withDSN(dsn)), newTestApp(t, withDSN(dsn))
		u := app.newUser()
		acct, err := app.store.UserByName(ctx, u.name)
		if err != nil {
			t.Fatal(err)
		}
		id := app.newCollection(u, newMovie("Drama,War"), newMovie("War"))
		for _, current := range []bool{true, false} {
			app.listCollections(u)
			if !current {
				other.do("PUT", "/collection/"+id+"/", u.token, map[string]any{"title": "elsewhere"}).mustStatus(t, 200)
			}
			app.newCollection(u, newMovie("Comedy"), newMovie("Comedy,Drama"), newMovie("Comedy"))
			a, err := app.store.readAccount(ctx, acct.UUID)
			if err != nil {
				t.Fatal(err)
			}
			if _, ok := app.server.cache.listAt(acct.ID, a.version); ok != current {
				t.Errorf("list cached after the create: %t, want %t", ok, current)
			}
			list, counts, _, err := app.store.Collections(ctx, acct.ID)
			if err != nil {
				t.Fatal(err)
			}
			got := app.listCollections(u)
			if !reflect.DeepEqual(got.Collections, list) || got.FavouriteGenres != favouriteGenres(counts.counts) {
				t.Fatalf("current %t: list %+v, the database has %+v, %q", current, got, list, favouriteGenres(counts.counts))
			}
		}
	})
}

// TestResponseCacheWritesKeepTheList: a rename or a create by this
// process writes the change into the cached list, which moves on to the
// new version with the answers the write left alone, and is rendered by
// the next read.
func TestResponseCacheWritesKeepTheList(t *testing.T) {
	c := newResponseCache(1 << 20)
	list := &cachedList{
		collections: []collectionSummary{{UUID: "a", Title: "old", Description: "d"}, {UUID: "b", Title: "B"}},
		genres:      genreTotals{counts: map[string]int{"Drama": 3, "War": 2, "Crime": 1}},
	}
	c.putList(1, 3, list, []byte("list at 3"))
	c.put(1, "a", 3, []byte("A3"))
	c.put(1, "b", 3, []byte("B3"))

	// render is what the next read of the list answers at version.
	render := func(version int64) (collectionListData, bool) {
		t.Helper()
		if body, ok := c.get(1, "", version); ok {
			t.Fatalf("the list's old body %q is served at version %d", body, version)
		}
		l, ok := c.listAt(1, version)
		if !ok {
			return collectionListData{}, false
		}
		return l.data(), true
	}

	c.renamed(1, 3, 4, storedCollection{UUID: "a", Title: "new", Description: "e"})
	got, ok := render(4)
	want := collectionListData{
		Collections:     []collectionSummary{{UUID: "a", Title: "new", Description: "e"}, {UUID: "b", Title: "B"}},
		FavouriteGenres: "Drama, War, Crime",
	}
	if !ok || !reflect.DeepEqual(got, want) {
		t.Fatalf("list after the rename: %+v, %t; want %+v", got, ok, want)
	}
	if _, ok := c.get(1, "a", 4); ok {
		t.Error("the renamed collection's old answer was kept")
	}
	if got, ok := c.get(1, "b", 4); !ok || string(got) != "B3" {
		t.Errorf("the other collection's answer: %q, %t", got, ok)
	}

	// A create of a collection whose movies carry Comedy three times and
	// Drama once: Comedy passes War and Crime, Drama moves on.
	c.created(1, 4, 5, collectionSummary{UUID: "c", Title: "C"}, map[string]int{"Comedy": 3, "Drama": 1})
	got, ok = render(5)
	want.Collections = append(want.Collections, collectionSummary{UUID: "c", Title: "C"})
	want.FavouriteGenres = "Drama, Comedy, War"
	if !ok || !reflect.DeepEqual(got, want) {
		t.Fatalf("list after the create: %+v, %t; want %+v", got, ok, want)
	}
	if got, ok := c.get(1, "b", 5); !ok || string(got) != "B3" {
		t.Errorf("the other collection's answer after the create: %q, %t", got, ok)
	}

	// A delete takes a collection's counts away, which the cache does not
	// know: the list goes, the other answers move on.
	c.advance(1, 5, 6, "c")
	if got, ok := render(6); ok {
		t.Errorf("a list was kept across a delete: %+v", got)
	}
	if got, ok := c.get(1, "b", 6); !ok || string(got) != "B3" {
		t.Errorf("the other collection's answer after a delete: %q, %t", got, ok)
	}

	// A read at the version of a rename that got there before the
	// rename's handler told: the rename still makes its list.
	c.put(1, "a", 7, []byte("A7"))
	c.renamed(1, 6, 7, storedCollection{UUID: "b", Title: "raced"})
	if _, ok := render(7); ok {
		t.Errorf("a list was made up at version 7 from none at 6")
	}
	c.putList(1, 7, &cachedList{collections: []collectionSummary{{UUID: "b", Title: "B"}}}, []byte("list at 7"))
	c.put(1, "b", 8, []byte("B8"))
	c.renamed(1, 7, 8, storedCollection{UUID: "b", Title: "raced"})
	got, ok = render(8)
	if want := (collectionListData{Collections: []collectionSummary{{UUID: "b", Title: "raced"}}}); !ok || !reflect.DeepEqual(got, want) {
		t.Errorf("list after a rename that a read raced: %+v, %t; want %+v", got, ok, want)
	}
	if got, ok := c.get(1, "a", 8); !ok || string(got) != "A7" {
		t.Errorf("the other collection's answer after a rename that a read raced: %q, %t", got, ok)
	}

	// From a version the cache is not at, nothing is written in.
	c.renamed(1, 9, 10, storedCollection{UUID: "b", Title: "elsewhere"})
	c.created(1, 10, 11, collectionSummary{UUID: "d"}, nil)
	for v := int64(9); v <= 11; v++ {
		if _, ok := render(v); ok {
			t.Errorf("a list was made up for version %d, whose predecessor was never cached", v)
		}
	}
}

// TestCreatedRanksGenresAsARecount: however creates move the genre
// counts, the cached list holds what a recount of every genre holds, and
// names the top three a recount names.
func TestCreatedRanksGenresAsARecount(t *testing.T) {
	genres := []string{"Action", "Comedy", "Crime", "Drama", "Horror", "Musical", "War", "Western"}
	rng := rand.New(rand.NewPCG(5, 6))
	for run := range 200 {
		c := newResponseCache(1 << 20)
		counts := map[string]int{"Drama": 2}
		c.putList(1, 1, &cachedList{collections: []collectionSummary{{UUID: "0"}}, genres: genreTotals{counts: map[string]int{"Drama": 2}}}, []byte("one"))
		for v := int64(1); v <= 20; v++ {
			created := map[string]int{}
			for range rng.IntN(4) {
				g := genres[rng.IntN(len(genres))]
				n := 1 + rng.IntN(2)
				created[g] += n
				counts[g] += n
			}
			c.created(1, v, v+1, collectionSummary{UUID: fmt.Sprint(v)}, created)
			l, ok := c.listAt(1, v+1)
			if !ok {
				t.Fatalf("run %d: no list at version %d", run, v+1)
			}
			if !maps.Equal(l.genres.counts, counts) || l.data().FavouriteGenres != favouriteGenres(counts) {
				t.Fatalf("run %d, version %d: counts %v, favourite genres %q; a recount says %v, %q", run, v+1, l.genres.counts, l.data().FavouriteGenres, counts, favouriteGenres(counts))
			}
		}
	}
}

// TestCreatedKeepsTheCacheBounded: a list that creates would take past
// maxHeldGenres keeps its top three, as a list read from the database
// does; a list that would outgrow a quarter of the cache, or whose answer
// is refused, is dropped; and the genres a list keeps are its own copies,
// not parts of the movies' long genres strings.
func TestCreatedKeepsTheCacheBounded(t *testing.T) {
	genres := func(from, n int) map[string]int {
		counts := map[string]int{}
		for i := from; i < from+n; i++ {
			counts[fmt.Sprintf("g%04d", i)] = 1
		}
		return counts
	}
	t.Run("past maxHeldGenres", func(t *testing.T) {
		c := newResponseCache(64 << 20)
		c.putList(1, 1, &cachedList{collections: []collectionSummary{}, genres: genreTotals{counts: genres(0, maxHeldGenres-10)}}, []byte("list"))
		more := genres(maxHeldGenres-10, 20)
		more["g0007"] = 5 // now 6: the top genre
		c.created(1, 1, 2, collectionSummary{UUID: "a"}, more)
		l, ok := c.listAt(1, 2)
		if !ok || !l.genres.partial || len(l.genres.counts) != 3 || l.data().FavouriteGenres != "g0007, g0000, g0001" {
			t.Fatalf("list after the create: %t, %+v, %q", ok, l.genres, l.data().FavouriteGenres)
		}
		checkSize(t, c)
		c.created(1, 2, 3, collectionSummary{UUID: "b"}, genres(0, 1))
		if _, ok := c.listAt(1, 3); ok {
			t.Fatal("a list holding the top genres only took a create's counts")
		}
		checkSize(t, c)
	})
	t.Run("past a quarter of the cache", func(t *testing.T) {
		c := newResponseCache(64 << 10)
		c.putList(1, 1, &cachedList{collections: []collectionSummary{}, genres: genreTotals{counts: genres(0, 100)}}, []byte("list"))
		c.created(1, 1, 2, collectionSummary{UUID: "a"}, genres(100, 400))
		if l, ok := c.listAt(1, 2); ok {
			t.Fatalf("a list of %d bytes was kept in a cache of %d", l.bytes(), c.maxBytes)
		}
		checkSize(t, c)
	})
	t.Run("past a quarter of the cache, a read first", func(t *testing.T) {
		c := newResponseCache(64 << 10)
		c.putList(1, 1, &cachedList{collections: []collectionSummary{}, genres: genreTotals{counts: genres(0, 100)}}, []byte("list"))
		c.put(1, "b", 2, []byte("B2")) // a read that learned the create's version first
		c.created(1, 1, 2, collectionSummary{UUID: "a"}, genres(100, 400))
		if l, ok := c.listAt(1, 2); ok {
			t.Fatalf("a list of %d bytes was kept in a cache of %d", l.bytes(), c.maxBytes)
		}
		checkSize(t, c)
	})
	t.Run("an answer refused", func(t *testing.T) {
		c := newResponseCache(64 << 10)
		c.putList(1, 1, &cachedList{collections: []collectionSummary{}}, []byte("list"))
		big := &cachedList{collections: []collectionSummary{{UUID: "a", Title: strings.Repeat("t", 20<<10)}}}
		c.putList(1, 1, big, []byte("a body too large to keep"))
		if _, ok := c.listAt(1, 1); ok {
			t.Fatal("the list stayed when its answer was refused")
		}
	})
	t.Run("own copies", func(t *testing.T) {
		c := newResponseCache(64 << 20)
		c.putList(1, 1, &cachedList{collections: []collectionSummary{}}, []byte("list"))
		genres := "Drama," + strings.Repeat(" ", 990)
		counts := countGenres([]movie{{Genres: genres}})
		c.created(1, 1, 2, collectionSummary{UUID: "a"}, counts)
		l, _ := c.listAt(1, 2)
		c.mu.RLock()
		defer c.mu.RUnlock()
		for g := range c.users[1].list.genres.counts {
			if start := unsafe.StringData(genres); uintptr(unsafe.Pointer(unsafe.StringData(g)))-uintptr(unsafe.Pointer(start)) < uintptr(len(genres)) {
				t.Fatalf("the cached genre %q is part of the movie's genres", g)
			}
		}
		if l.data().FavouriteGenres != "Drama" {
			t.Fatalf("favourite genres %q", l.data().FavouriteGenres)
		}
	})
}

// checkSize fails t unless the bytes the cache counts are the bytes it
// holds: its answers, and its lists as cachedList.bytes counts them.
func checkSize(t *testing.T, c *responseCache) {
	t.Helper()
	c.mu.RLock()
	defer c.mu.RUnlock()
	held := 0
	var add func(u *userAnswers)
	add = func(u *userAnswers) {
		for _, body := range u.bodies {
			held += len(body)
		}
		if u.list != nil {
			held += u.list.bytes()
		}
		if u.prev != nil {
			add(u.prev)
		}
	}
	for _, u := range c.users {
		add(u)
	}
	if c.size != held {
		t.Fatalf("the cache counts %d bytes and holds %d", c.size, held)
	}
}
