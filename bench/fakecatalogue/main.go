// Command fakecatalogue stands in for the third-party movie catalogue
// during the load benchmark. It serves pages shaped like the live one's
// (Django REST framework pagination: count, next, previous and 10 results)
// behind basic auth, each after a fixed delay that plays the network and
// the catalogue's own work. Movies are generated from the page number, so
// a page always has the same content.
//
// The credentials are read from MOVIES_API_USERNAME and MOVIES_API_PASSWORD,
// the variables the service reads, so that one setting serves both.
//
// For chaos runs it can be taken down and brought back while it runs, and
// it counts the catalogue requests it receives:
//
//	POST /_chaos?down=1[&mode=503|drop|hang]  every catalogue request fails
//	POST /_chaos?down=0                       back to normal
//	GET  /_stats                              {"requests", "requests_while_down", "down", "mode"}
//
// While down, a request fails at once, before the delay and the
// credentials are checked, as a catalogue behind a failing load balancer
// does: mode 503 (the default) answers 503, drop closes the connection
// without an answer, hang holds it until the client gives up. These two
// endpoints need no credentials: the fake listens on loopback only.
//
// Usage:
//
//	MOVIES_API_USERNAME=u MOVIES_API_PASSWORD=p fakecatalogue -addr 127.0.0.1:8082 -delay 20ms
package main

import (
	"crypto/subtle"
	"encoding/json"
	"flag"
	"fmt"
	"log"
	"math/rand/v2"
	"net/http"
	"os"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

const (
	// count is the number of movies the live catalogue reports.
	count = 45466
	// pageSize is the number of movies on a page.
	pageSize = 10
)

var genres = []string{"Action", "Adventure", "Animation", "Comedy", "Crime", "Documentary",
	"Drama", "Family", "Fantasy", "History", "Horror", "Music", "Mystery", "Romance",
	"Science Fiction", "Thriller", "War", "Western"}

// movie is one catalogue entry.
type movie struct {
	Title       string `json:"title"`
	Description string `json:"description"`
	Genres      string `json:"genres"`
	UUID        string `json:"uuid"`
}

// page is one page of the catalogue.
type page struct {
	Count    int     `json:"count"`
	Next     *string `json:"next"`
	Previous *string `json:"previous"`
	Results  []movie `json:"results"`
}

func main() {
	addr := flag.String("addr", "127.0.0.1:8082", "listen address")
	delay := flag.Duration("delay", 20*time.Millisecond, "how long each answer waits")
	flag.Parse()

	user, pass := os.Getenv("MOVIES_API_USERNAME"), os.Getenv("MOVIES_API_PASSWORD")
	if user == "" || pass == "" {
		log.Fatal("set MOVIES_API_USERNAME and MOVIES_API_PASSWORD")
	}
	log.Fatal(http.ListenAndServe(*addr, newFake(user, pass, *delay)))
}

// Ways to fail while down.
const (
	mode503  = "503"
	modeDrop = "drop"
	modeHang = "hang"
)

// fake is the fake catalogue with its chaos switch and request counts.
type fake struct {
	mu   sync.Mutex
	down bool
	mode string // how to fail while down

	requests          atomic.Int64 // catalogue requests received
	requestsWhileDown atomic.Int64 // of which while down
}

// newFake returns the fake catalogue's handler, up.
func newFake(user, pass string, delay time.Duration) http.Handler {
	f := &fake{mode: mode503}
	mux := http.NewServeMux()
	mux.HandleFunc("POST /_chaos", f.handleChaos)
	mux.HandleFunc("GET /_stats", f.handleStats)
	mux.Handle("/", f.failWhileDown(handler(user, pass, delay)))
	return mux
}

// handleChaos takes the catalogue down (down=1, with an optional mode) or
// brings it back (down=0), and answers the new state.
func (f *fake) handleChaos(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	down, err := strconv.ParseBool(q.Get("down"))
	if err != nil {
		writeJSON(w, http.StatusBadRequest, map[string]string{"detail": "down must be 1 or 0"})
		return
	}
	mode := q.Get("mode")
	switch mode {
	case "":
		mode = mode503
	case mode503, modeDrop, modeHang:
	default:
		writeJSON(w, http.StatusBadRequest, map[string]string{"detail": "mode must be 503, drop or hang"})
		return
	}
	f.mu.Lock()
	f.down, f.mode = down, mode
	f.mu.Unlock()
	log.Printf("chaos: down=%v mode=%s", down, mode)
	f.handleStats(w, r)
}

// stats is the body of GET /_stats.
type stats struct {
	Requests          int64  `json:"requests"`
	RequestsWhileDown int64  `json:"requests_while_down"`
	Down              bool   `json:"down"`
	Mode              string `json:"mode"`
}

// handleStats answers how many catalogue requests arrived, in all and
// while down, and whether the catalogue is down now.
func (f *fake) handleStats(w http.ResponseWriter, r *http.Request) {
	f.mu.Lock()
	down, mode := f.down, f.mode
	f.mu.Unlock()
	writeJSON(w, http.StatusOK, stats{
		Requests:          f.requests.Load(),
		RequestsWhileDown: f.requestsWhileDown.Load(),
		Down:              down,
		Mode:              mode,
	})
}

// failWhileDown counts every catalogue request, and fails it while the
// catalogue is down instead of passing it to next.
func (f *fake) failWhileDown(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		f.requests.Add(1)
		f.mu.Lock()
		down, mode := f.down, f.mode
		f.mu.Unlock()
		if !down {
			next.ServeHTTP(w, r)
			return
		}
		f.requestsWhileDown.Add(1)
		switch mode {
		case modeDrop:
			if c, _, err := http.NewResponseController(w).Hijack(); err == nil {
				c.Close()
				return
			}
			writeJSON(w, http.StatusServiceUnavailable, map[string]string{"detail": "Service unavailable."})
		case modeHang:
			<-r.Context().Done()
		default:
			writeJSON(w, http.StatusServiceUnavailable, map[string]string{"detail": "Service unavailable."})
		}
	})
}

// handler answers every GET with the page named by its page parameter.
func handler(user, pass string, delay time.Duration) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		t := time.NewTimer(delay)
		defer t.Stop()
		select {
		case <-t.C:
		case <-r.Context().Done():
			return
		}

		u, p, ok := r.BasicAuth()
		if !ok || subtle.ConstantTimeCompare([]byte(u), []byte(user)) != 1 ||
			subtle.ConstantTimeCompare([]byte(p), []byte(pass)) != 1 {
			w.Header().Set("WWW-Authenticate", `Basic realm="api"`)
			writeJSON(w, http.StatusUnauthorized, map[string]string{"detail": "Invalid username/password."})
			return
		}
		if r.Method != http.MethodGet {
			writeJSON(w, http.StatusMethodNotAllowed, map[string]string{"detail": "Method not allowed."})
			return
		}
		n := 1
		if v := r.URL.Query().Get("page"); v != "" {
			var err error
			if n, err = strconv.Atoi(v); err != nil || n < 1 {
				n = 0
			}
		}
		last := (count + pageSize - 1) / pageSize
		if n < 1 || n > last {
			writeJSON(w, http.StatusNotFound, map[string]string{"detail": "Invalid page."})
			return
		}
		writeJSON(w, http.StatusOK, makePage(n, last, "http://"+r.Host+r.URL.Path))
	})
}

// makePage builds page n of last, linking to its neighbours under base as
// Django REST framework does: the link to page 1 has no page parameter.
func makePage(n, last int, base string) page {
	p := page{Count: count, Results: make([]movie, 0, pageSize)}
	if n < last {
		next := base + "?page=" + strconv.Itoa(n+1)
		p.Next = &next
	}
	if n > 1 {
		prev := base
		if n > 2 {
			prev += "?page=" + strconv.Itoa(n-1)
		}
		p.Previous = &prev
	}
	rng := rand.New(rand.NewPCG(uint64(n), 0x6d6f76696573))
	for i := (n - 1) * pageSize; i < min(n*pageSize, count); i++ {
		var g []string
		for range rng.IntN(4) {
			g = append(g, genres[rng.IntN(len(genres))])
		}
		p.Results = append(p.Results, movie{
			Title:       fmt.Sprintf("Movie %d", i+1),
			Description: fmt.Sprintf("The story of movie number %d, told in a couple of sentences as the catalogue does.", i+1),
			Genres:      strings.Join(g, ","),
			UUID:        uuid(rng),
		})
	}
	return p
}

// uuid returns a random version-4 UUID drawn from rng.
func uuid(rng *rand.Rand) string {
	hi, lo := rng.Uint64(), rng.Uint64()
	hi = hi&^0xf000 | 0x4000     // version 4
	lo = lo&^(0xc<<60) | 0x8<<60 // RFC 4122 variant
	return fmt.Sprintf("%08x-%04x-%04x-%04x-%012x",
		hi>>32, hi>>16&0xffff, hi&0xffff, lo>>48, lo&0xffffffffffff)
}

// writeJSON answers v as JSON with status.
func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	if err := json.NewEncoder(w).Encode(v); err != nil {
		log.Printf("write answer: %v", err)
	}
}
