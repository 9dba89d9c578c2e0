package main

import (
	"context"
	"os"
	"strings"
	"testing"
	"time"
)

// TestCheckpointerKeepsTheWALSmall: the writer leaves checkpoints to the
// checkpointer, which keeps the WAL file to about what is written between
// two of its runs, well under the writer's own limit.
func TestCheckpointerKeepsTheWALSmall(t *testing.T) {
	ctx := context.Background()
	path := sqliteBackend.dsn(t)
	s, err := openStore(ctx, path, poolConfig{})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if _, err := s.CreateUser(ctx, "walker", "hash"); err != nil {
		t.Fatal(err)
	}
	u, err := s.UserByName(ctx, "walker")
	if err != nil {
		t.Fatal(err)
	}
	big := make([]movie, 100)
	for i := range big {
		big[i] = newMovie("Drama")
		big[i].Description = strings.Repeat("d", 4000)
	}
	const pageSize = 4096
	var written int64
	for round := range 10 {
		for range 5 { // about 500 pages a round
			c := collection{UUID: newUUID(), Title: "big", Movies: big}
			if _, _, err := s.CreateCollection(ctx, u.ID, c); err != nil {
				t.Fatal(err)
			}
			written += 100 * 4000
		}
		// Give the checkpointer a run between rounds.
		time.Sleep(checkpointEvery + 100*time.Millisecond)
		fi, err := os.Stat(path + "-wal")
		if err != nil {
			t.Fatal(err)
		}
		if limit := int64(writerCheckpointPages) * pageSize; fi.Size() >= limit {
			t.Fatalf("round %d: WAL of %d bytes: the writer's own limit was reached", round, fi.Size())
		}
		if fi.Size() > 3*written/int64(round+1) {
			t.Fatalf("round %d: WAL of %d bytes after %d written in all: no checkpoint between rounds", round, fi.Size(), written)
		}
	}
}
