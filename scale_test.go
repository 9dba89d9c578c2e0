package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// cluster is several instances of the service on one database, and the
// number of requests that reached any of them.
type cluster struct {
	t     *testing.T
	addrs []string
	sent  atomic.Int64
}

// call sends one request to instance i and counts it when it got an answer.
func (c *cluster) call(i int, method, path, token, body string) (int, []byte) {
	req, _ := http.NewRequest(method, "http://"+c.addrs[i%len(c.addrs)]+path, strings.NewReader(body))
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0, nil
	}
	defer res.Body.Close()
	c.sent.Add(1)
	b, _ := io.ReadAll(res.Body)
	return res.StatusCode, b
}

// TestThreeInstancesOnePostgres runs three instances of the service on one
// PostgreSQL database, started at once on a fresh database, and drives
// concurrent load across them.
func TestThreeInstancesOnePostgres(t *testing.T) {
	if os.Getenv("TEST_DATABASE_URL") == "" {
		t.Skip("TEST_DATABASE_URL is not set")
	}
	dsn := postgresBackend.dsn(t)
	c := &cluster{t: t}
	var stops []func() error
	done := make([]chan error, 3)
	for i := range 3 {
		addr := freeAddr(t)
		c.addrs = append(c.addrs, addr)
		ctx, cancel := context.WithCancel(context.Background())
		done[i] = make(chan error, 1)
		env := envOf(map[string]string{"ADDR": addr, "DATABASE_URL": dsn, "BCRYPT_COST": "4", "COUNTER_FLUSH_INTERVAL": "20ms"})
		go func() { done[i] <- run(ctx, []string{"movies"}, env, io.Discard, io.Discard) }()
		var once sync.Once
		var err error
		stops = append(stops, func() error {
			once.Do(func() { cancel(); err = <-done[i] })
			return err
		})
	}
	defer func() {
		for _, stop := range stops {
			stop()
		}
	}()
	for i := range 3 {
		deadline := time.Now().Add(20 * time.Second)
		for {
			if status, _ := c.call(i, "GET", "/healthz", "", ""); status == 200 {
				break
			}
			select {
			case err := <-done[i]:
				t.Fatalf("instance %d stopped: %v", i, err)
			default:
			}
			if time.Now().After(deadline) {
				t.Fatalf("instance %d not ready", i)
			}
			time.Sleep(20 * time.Millisecond)
		}
	}

	// One name registered from all three instances at once: one account.
	var created atomic.Int64
	var token atomic.Value
	var wg sync.WaitGroup
	for g := range 30 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			status, body := c.call(g, "POST", "/register/", "", `{"username":"Shared.Name","password":"password1"}`)
			switch status {
			case 201:
				created.Add(1)
				var tok tokenResponse
				json.Unmarshal(body, &tok)
				token.Store(tok.AccessToken)
			case 409:
			case 503: // hashing saturated: refused at once, which is allowed
			default:
				t.Errorf("register: %d %s", status, body)
			}
		}()
	}
	wg.Wait()
	if created.Load() != 1 {
		t.Fatalf("accounts created: got %d, want 1", created.Load())
	}
	// The token works on every instance: the generated secret is shared.
	tok := token.Load().(string)
	for i := range 3 {
		if status, body := c.call(i, "GET", "/collection/", tok, ""); status != 200 {
			t.Fatalf("token on instance %d: %d %s", i, status, body)
		}
	}

	// Collections written through one instance are readable through all.
	ids := make([]string, 30)
	for g := range ids {
		wg.Add(1)
		go func() {
			defer wg.Done()
			status, body := c.call(g, "POST", "/collection/", tok, fmt.Sprintf(`{"title":"C%d"}`, g))
			if status != 201 {
				t.Errorf("create: %d %s", status, body)
				return
			}
			var cc collectionCreated
			json.Unmarshal(body, &cc)
			ids[g] = cc.CollectionUUID
		}()
	}
	wg.Wait()
	for g, id := range ids {
		for i := range 3 {
			status, body := c.call(i, "GET", "/collection/"+id+"/", tok, "")
			if status != 200 || !strings.Contains(string(body), fmt.Sprintf(`"title":"C%d"`, g)) {
				t.Fatalf("collection %d through instance %d: %d %s", g, i, status, body)
			}
		}
	}

	// Dozens of PUTs of one collection from all instances: all succeed,
	// and the collection holds one writer's whole list.
	target := ids[0]
	const writers = 36
	lists := make([][]movie, writers)
	for w := range writers {
		for k := range 5 {
			lists[w] = append(lists[w], movie{
				Title:  fmt.Sprintf("W%d-%d", w, k),
				Genres: fmt.Sprintf("Genre%02d", w),
				UUID:   fmt.Sprintf("00000000-0000-4000-8000-%06d%06d", w, k),
			})
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			body, _ := json.Marshal(map[string]any{"movies": lists[w]})
			if status, resp := c.call(w, "PUT", "/collection/"+target+"/", tok, string(body)); status != 200 {
				t.Errorf("PUT by writer %d: %d %s", w, status, resp)
			}
		}()
	}
	// Plain requests alongside.
	for g := range 30 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range 20 {
				c.call(g, "GET", "/request-count/", tok, "")
				c.call(g, "GET", "/nowhere", "", "")
			}
		}()
	}
	wg.Wait()
	status, body := c.call(1, "GET", "/collection/"+target+"/", tok, "")
	var got collection
	if status != 200 || json.Unmarshal(body, &got) != nil || len(got.Movies) != 5 {
		t.Fatalf("collection after racing PUTs: %d %s", status, body)
	}
	w := -1
	fmt.Sscanf(got.Movies[0].Title, "W%d-", &w)
	if w < 0 || w >= writers || fmt.Sprint(got.Movies) != fmt.Sprint(lists[w]) {
		t.Fatalf("collection holds a mix of writers' lists: %+v", got.Movies)
	}
	// The genre tally followed the winning list, and only it.
	status, body = c.call(2, "GET", "/collection/", tok, "")
	if want := fmt.Sprintf(`"favourite_genres":"Genre%02d"`, w); status != 200 || !strings.Contains(string(body), want) {
		t.Fatalf("favourite genres after racing PUTs: %s, want %s", body, want)
	}

	// Stopped gracefully, the instances have persisted every request.
	for i, stop := range stops {
		if err := stop(); err != nil {
			t.Fatalf("instance %d: %v", i, err)
		}
	}
	store, err := openStore(context.Background(), dsn, poolConfig{})
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	if got, want := persistedCount(t, store), c.sent.Load(); got != want {
		t.Fatalf("persisted request count: got %d, want %d", got, want)
	}
}
