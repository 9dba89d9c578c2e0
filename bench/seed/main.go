// Command seed fills a running service with a crowd of users for the crowd
// benchmark (bench/crowd.sh), through the API as a client would: each user
// registers, then creates its collections of movies with random genres.
// Users are seeded in parallel; a 429 or 503 answer is retried after its
// Retry-After.
//
// It writes one line per user: the access token, then the UUIDs of the
// user's collections, separated by spaces, as bench/crowd.lua reads them.
//
// Usage:
//
//	seed -url http://127.0.0.1:8000 -users 300 -collections 3 -movies 10 -out users.txt
package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log"
	"math/rand/v2"
	"net/http"
	"os"
	"strconv"
	"strings"
	"sync"
	"time"
)

// genres is a small, realistic set, as the catalogue uses them.
var genres = []string{"Action", "Adventure", "Animation", "Comedy", "Crime", "Documentary",
	"Drama", "Family", "Fantasy", "History", "Horror", "Music", "Mystery", "Romance",
	"Science Fiction", "Thriller", "War", "Western"}

var titleWords = []string{"Evening", "Shadows", "Road", "Paper", "Moons", "Harbour", "Lights",
	"Iron", "Meadow", "Quiet", "Storm", "Glass", "Kingdom", "Northern", "Line", "Salt", "Smoke",
	"Orchard", "River", "Winter", "Garden", "Silent", "City", "Last", "Summer"}

type movie struct {
	UUID        string `json:"uuid"`
	Title       string `json:"title"`
	Description string `json:"description"`
	Genres      string `json:"genres"`
}

type collection struct {
	Title       string  `json:"title"`
	Description string  `json:"description"`
	Movies      []movie `json:"movies"`
}

type seeder struct {
	base        string
	client      *http.Client
	prefix      string
	password    string
	collections int
	movies      int
}

func main() {
	base := flag.String("url", "http://127.0.0.1:8000", "the service's base URL")
	users := flag.Int("users", 300, "users to create")
	collections := flag.Int("collections", 3, "collections per user")
	movies := flag.Int("movies", 10, "movies per collection")
	parallel := flag.Int("parallel", 8, "users seeded at once")
	prefix := flag.String("prefix", "", "username prefix; default: crowd and a random tag")
	out := flag.String("out", "", "file for the token and collection lines; default: stdout")
	timeout := flag.Duration("timeout", 5*time.Minute, "give up after this long")
	flag.Parse()
	if *users < 1 || *collections < 1 || *movies < 0 || *parallel < 1 {
		log.Fatal("seed: -users, -collections and -parallel must be at least 1, -movies at least 0")
	}
	if *prefix == "" {
		*prefix = fmt.Sprintf("crowd%06x-", rand.IntN(1<<24))
	}

	ctx, cancel := context.WithTimeout(context.Background(), *timeout)
	defer cancel()

	s := &seeder{
		base: strings.TrimRight(*base, "/"),
		client: &http.Client{
			Timeout:   30 * time.Second,
			Transport: &http.Transport{MaxIdleConnsPerHost: *parallel, DisableCompression: true},
		},
		prefix:      *prefix,
		password:    "correct horse battery",
		collections: *collections,
		movies:      *movies,
	}

	start := time.Now()
	lines := make([]string, *users)
	next := make(chan int)
	errc := make(chan error, *parallel)
	var wg sync.WaitGroup
	for range *parallel {
		wg.Add(1)
		go func() {
			defer wg.Done()
			rng := rand.New(rand.NewPCG(rand.Uint64(), rand.Uint64()))
			for i := range next {
				line, err := s.user(ctx, rng, i)
				if err != nil {
					errc <- err
					cancel()
					return
				}
				lines[i] = line
			}
		}()
	}
feed:
	for i := range *users {
		select {
		case next <- i:
		case <-ctx.Done():
			break feed
		}
	}
	close(next)
	wg.Wait()
	close(errc)
	if err := <-errc; err != nil {
		log.Fatalf("seed: %v", err)
	}
	if err := ctx.Err(); err != nil {
		log.Fatalf("seed: %v", err)
	}

	w := io.Writer(os.Stdout)
	if *out != "" {
		f, err := os.Create(*out)
		if err != nil {
			log.Fatalf("seed: %v", err)
		}
		defer f.Close()
		w = f
	}
	bw := bufio.NewWriter(w)
	for _, l := range lines {
		fmt.Fprintln(bw, l)
	}
	if err := bw.Flush(); err != nil {
		log.Fatalf("seed: %v", err)
	}
	fmt.Fprintf(os.Stderr, "seeded %d users with %d collections of %d movies each in %.1fs\n",
		*users, *collections, *movies, time.Since(start).Seconds())
}

// user registers user i and creates its collections; it returns the line
// "token uuid1 uuid2 ...".
func (s *seeder) user(ctx context.Context, rng *rand.Rand, i int) (string, error) {
	var reg struct {
		AccessToken string `json:"access_token"`
	}
	creds := map[string]string{"username": s.prefix + strconv.Itoa(i), "password": s.password}
	if err := s.call(ctx, "/register/", "", creds, http.StatusCreated, &reg); err != nil {
		return "", fmt.Errorf("register user %d: %w", i, err)
	}
	if reg.AccessToken == "" {
		return "", fmt.Errorf("register user %d: no access_token in the answer", i)
	}
	fields := []string{reg.AccessToken}
	for c := range s.collections {
		var created struct {
			UUID string `json:"collection_uuid"`
		}
		if err := s.call(ctx, "/collection/", reg.AccessToken, s.collection(rng, i, c), http.StatusCreated, &created); err != nil {
			return "", fmt.Errorf("user %d, collection %d: %w", i, c+1, err)
		}
		if created.UUID == "" {
			return "", fmt.Errorf("user %d, collection %d: no collection_uuid in the answer", i, c+1)
		}
		fields = append(fields, created.UUID)
	}
	return strings.Join(fields, " "), nil
}

// collection makes collection c of user i, with random movies.
func (s *seeder) collection(rng *rand.Rand, i, c int) collection {
	col := collection{
		Title:       fmt.Sprintf("%s nights %d", titleWords[rng.IntN(len(titleWords))], c+1),
		Description: fmt.Sprintf("Collection %d of crowd user %d", c+1, i),
		Movies:      make([]movie, 0, s.movies),
	}
	for range s.movies {
		col.Movies = append(col.Movies, randomMovie(rng))
	}
	return col
}

// randomMovie makes a movie with a random UUID and one to three genres,
// and now and then none, as in the catalogue.
func randomMovie(rng *rand.Rand) movie {
	n := 1 + rng.IntN(3)
	if rng.IntN(20) == 0 {
		n = 0
	}
	g := make([]string, 0, n)
	for range n {
		g = append(g, genres[rng.IntN(len(genres))])
	}
	title := titleWords[rng.IntN(len(titleWords))] + " " + titleWords[rng.IntN(len(titleWords))]
	return movie{
		UUID:        uuid(rng),
		Title:       title,
		Description: "A film about " + strings.ToLower(title) + ", told in a couple of sentences as the catalogue does.",
		Genres:      strings.Join(g, ","),
	}
}

// uuid returns a random version-4 UUID drawn from rng.
func uuid(rng *rand.Rand) string {
	hi, lo := rng.Uint64(), rng.Uint64()
	hi = hi&^0xf000 | 0x4000     // version 4
	lo = lo&^(0xc<<60) | 0x8<<60 // RFC 4122 variant
	return fmt.Sprintf("%08x-%04x-%04x-%04x-%012x",
		hi>>32, hi>>16&0xffff, hi&0xffff, lo>>48, lo&0xffffffffffff)
}

// call POSTs body as JSON to path and decodes an answer with status want
// into v. A 429 or 503 is retried after its Retry-After (at most 10 s, a
// few times); any other status is an error.
func (s *seeder) call(ctx context.Context, path, token string, body any, want int, v any) error {
	payload, err := json.Marshal(body)
	if err != nil {
		return err
	}
	for attempt := 1; ; attempt++ {
		req, err := http.NewRequestWithContext(ctx, http.MethodPost, s.base+path, bytes.NewReader(payload))
		if err != nil {
			return err
		}
		req.Header.Set("Content-Type", "application/json")
		if token != "" {
			req.Header.Set("Authorization", "Bearer "+token)
		}
		resp, err := s.client.Do(req)
		if err != nil {
			return err
		}
		answer, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
		resp.Body.Close()
		if err != nil {
			return err
		}
		switch {
		case resp.StatusCode == want:
			return json.Unmarshal(answer, v)
		case (resp.StatusCode == http.StatusTooManyRequests || resp.StatusCode == http.StatusServiceUnavailable) && attempt < 20:
			wait := time.Second
			if n, err := strconv.Atoi(resp.Header.Get("Retry-After")); err == nil && n >= 1 {
				wait = time.Duration(min(n, 10)) * time.Second
			}
			select {
			case <-time.After(wait):
			case <-ctx.Done():
				return ctx.Err()
			}
		default:
			return errors.New("POST " + path + ": status " + strconv.Itoa(resp.StatusCode) + ": " + strings.TrimSpace(string(answer[:min(len(answer), 300)])))
		}
	}
}
