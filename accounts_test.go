package main

import (
	"context"
	"fmt"
	"testing"
)

// TestAccountReadsPastOneStatement: a batch of more accounts than one
// statement reads finds every one of them, by UUID and, where ids are
// remembered, by id; unknown ones are simply not found.
func TestAccountReadsPastOneStatement(t *testing.T) {
	forEachBackend(t, func(t *testing.T, be backend) {
		ctx := context.Background()
		s := openTestStore(t, be)
		want := map[string]int64{}
		uuids := []string{"00000000-0000-4000-8000-000000000000"} // unknown
		var ids []int64
		for i := range 2*maxAccountsPerRead + 1 {
			uuid, a := newAccount(t, s, s, fmt.Sprintf("user%d", i))
			want[uuid] = a.id
			uuids = append(uuids, uuid)
			ids = append(ids, a.id)
		}
		found, err := s.readAccounts(ctx, uuids)
		if err != nil || len(found) != len(want) {
			t.Fatalf("by UUID: %d accounts found (%v), want %d", len(found), err, len(want))
		}
		for uuid, id := range want {
			if found[uuid].id != id {
				t.Fatalf("by UUID: %s has id %d, want %d", uuid, found[uuid].id, id)
			}
		}
		if !s.db.dialect.stableIDs {
			return
		}
		versions, err := s.readVersions(ctx, append(ids, -1))
		if err != nil || len(versions) != len(ids) {
			t.Fatalf("by id: %d accounts found (%v), want %d", len(versions), err, len(ids))
		}
	})
}
