package e2e

import (
	"fmt"
	"net/http"
	"sync"
	"testing"

	"github.com/jackc/pgx/v5"
)

// TestChatConcurrentPostsGetGapFreeIndexes: N participants post M messages each into one room
// at once, while someone keeps entering and leaving it. Every event gets exactly one index, the
// indexes are exactly 0..last with no gap and no duplicate, and every message is there once.
func TestChatConcurrentPostsGetGapFreeIndexes(t *testing.T) {
	const N, M, churn = 8, 25, 10
	e := New(t)
	owner := e.newChatter(t)
	posters := make([]chatter, N)
	for i := range posters {
		posters[i] = e.newChatter(t)
	}
	room := e.newRoom(t, owner, map[string]any{"private": false, "name": "Busy"}, posters...).Room
	systemBefore := room.LastEventIndex + 1 // the posters' PARTICIPANT_IN events
	visitor := e.newChatter(t)
	path := fmt.Sprintf("/api/v1/chats/%d", room.Id)

	var wg sync.WaitGroup
	errs := make(chan error, N*M+2*churn)
	for i, p := range posters {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for j := range M {
				code, _, b := p.do(t, e, "POST", path+"/events", map[string]any{"message": fmt.Sprintf("m-%d-%d", i, j)})
				if code != http.StatusCreated {
					errs <- fmt.Errorf("post %d/%d: %d %s", i, j, code, b)
				}
			}
		}()
	}
	wg.Add(1)
	go func() {
		defer wg.Done()
		for range churn {
			if code, _, b := visitor.do(t, e, "POST", path+"/participants", map[string]any{"profile_ids": []int64{visitor.Profile}}); code != http.StatusOK {
				errs <- fmt.Errorf("enter: %d %s", code, b)
			}
			if code, _, b := visitor.do(t, e, "DELETE", fmt.Sprintf("%s/participants/%d", path, visitor.Profile), nil); code != http.StatusNoContent {
				errs <- fmt.Errorf("leave: %d %s", code, b)
			}
		}
	}()
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}

	rows, err := e.Server.App.Pool.Query(ctx, "SELECT event_index, event_type, message FROM chat_events WHERE room_id = $1 ORDER BY event_index", room.Id)
	if err != nil {
		t.Fatal(err)
	}
	type ev struct {
		Index         int64
		Type, Message string
	}
	events, err := pgx.CollectRows(rows, pgx.RowToStructByPos[ev])
	if err != nil {
		t.Fatal(err)
	}
	want := int(systemBefore) + N*M + 2*churn
	if len(events) != want {
		t.Fatalf("%d events, want %d", len(events), want)
	}
	seen := map[string]int{}
	for i, e := range events {
		if e.Index != int64(i) {
			t.Fatalf("event %d has index %d: indexes must be exactly 0..%d", i, e.Index, want-1)
		}
		if e.Type == "MESSAGE_POSTED" {
			seen[e.Message]++
		}
	}
	for i := range N {
		for j := range M {
			if n := seen[fmt.Sprintf("m-%d-%d", i, j)]; n != 1 {
				t.Fatalf("message m-%d-%d stored %d times", i, j, n)
			}
		}
	}
	if last := e.Count(t, "SELECT last_event_index FROM chat_rooms WHERE id = $1", room.Id); last != want-1 {
		t.Fatalf("room's last_event_index %d, want %d", last, want-1)
	}
	// Each poster's read marker followed its own posts; the room list agrees with the log.
	r := e.room(t, posters[0], room.Id)
	if r.LastEventIndex != int64(want-1) || r.ReadEventIndex == nil || r.UnreadCount != r.LastEventIndex-*r.ReadEventIndex {
		t.Fatalf("room after the rush: %+v", r)
	}
}
