package main

import (
	"context"
	"fmt"
	"math/rand/v2"
	"reflect"
	"slices"
	"testing"
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
				for _, b := range u.bodies {
					size += len(b)
				}
				size += u.listBytes
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
			list, counts, _, err := apps[0].store.Collections(ctx, acct.ID)
			if err != nil {
				t.Fatal(err)
			}
			for _, app := range apps {
				got := app.listCollections(u)
				if !reflect.DeepEqual(got.Collections, list) || got.FavouriteGenres != favouriteGenres(counts) {
					t.Fatalf("step %d: list %+v, the database has %+v, %q", i, got, list, favouriteGenres(counts))
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
			if !reflect.DeepEqual(got.Collections, list) || got.FavouriteGenres != favouriteGenres(counts) {
				t.Fatalf("current %t: list %+v, the database has %+v, %q", current, got, list, favouriteGenres(counts))
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
		top:         []genreCount{{"Drama", 3}, {"War", 2}, {"Crime", 1}},
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

	// A create that moved Comedy past War and Crime, and Drama on.
	c.created(1, 4, 5, collectionSummary{UUID: "c", Title: "C"}, map[string]int{"Comedy": 3, "Drama": 4})
	got, ok = render(5)
	want.Collections = append(want.Collections, collectionSummary{UUID: "c", Title: "C"})
	want.FavouriteGenres = "Drama, Comedy, War"
	if !ok || !reflect.DeepEqual(got, want) {
		t.Fatalf("list after the create: %+v, %t; want %+v", got, ok, want)
	}
	if got, ok := c.get(1, "b", 5); !ok || string(got) != "B3" {
		t.Errorf("the other collection's answer after the create: %q, %t", got, ok)
	}

	// A create whose counts were not read cannot rank the list anew: the
	// list goes, the other answers move on.
	c.created(1, 5, 6, collectionSummary{UUID: "d"}, nil)
	if got, ok := render(6); ok {
		t.Errorf("a list was ranked without the create's counts: %+v", got)
	}
	if got, ok := c.get(1, "b", 6); !ok || string(got) != "B3" {
		t.Errorf("the other collection's answer after a create without counts: %q, %t", got, ok)
	}

	// From a version the cache is not at, nothing is written in.
	c.renamed(1, 7, 8, storedCollection{UUID: "b", Title: "elsewhere"})
	c.created(1, 8, 9, collectionSummary{UUID: "d"}, nil)
	for v := int64(6); v <= 9; v++ {
		if _, ok := render(v); ok {
			t.Errorf("a list was made up for version %d, whose predecessor was never cached", v)
		}
	}
}

// TestCreatedRanksGenresAsARecount: however creates move the genre
// counts, the top three the cached list keeps name what a recount of
// every genre names.
func TestCreatedRanksGenresAsARecount(t *testing.T) {
	genres := []string{"Action", "Comedy", "Crime", "Drama", "Horror", "Musical", "War", "Western"}
	rng := rand.New(rand.NewPCG(5, 6))
	for run := range 200 {
		c := newResponseCache(1 << 20)
		counts := map[string]int{}
		c.putList(1, 1, &cachedList{collections: []collectionSummary{}}, []byte("empty"))
		for v := int64(1); v <= 20; v++ {
			touched := map[string]int{}
			for range rng.IntN(4) {
				g := genres[rng.IntN(len(genres))]
				counts[g] += 1 + rng.IntN(2)
				touched[g] = counts[g]
			}
			c.created(1, v, v+1, collectionSummary{UUID: fmt.Sprint(v)}, touched)
			var all []genreCount
			for g, n := range counts {
				all = append(all, genreCount{g, n})
			}
			l, ok := c.listAt(1, v+1)
			if !ok {
				t.Fatalf("run %d: no list at version %d", run, v+1)
			}
			if got, want := favouriteGenres(l.top), favouriteGenres(all); got != want {
				t.Fatalf("run %d, version %d: favourite genres %q, a recount says %q (counts %v)", run, v+1, got, want, counts)
			}
		}
	}
}
