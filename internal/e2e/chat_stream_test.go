package e2e

import (
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/bca-app/backend/gen/api"
	"github.com/bca-app/backend/internal/config"
	"github.com/bca-app/backend/internal/testenv"
)

const streamWait = 5 * time.Second

// TestChatStreamAcrossProcesses: a message posted through one API process reaches a stream held
// on another (Redis pub/sub), and a reconnect with Last-Event-ID misses nothing and repeats
// nothing.
func TestChatStreamAcrossProcesses(t *testing.T) {
	e := New(t, withChatHeartbeat(250*time.Millisecond))
	second := e.StartServer(e.Config)
	ann, bob := e.newChatter(t), e.newChatter(t)
	room := e.newRoom(t, ann, nil, bob).Room

	s := e.openStream(t, second, bob, "")
	for i := range 3 {
		e.post(t, ann, room.Id, fmt.Sprintf("live %d", i)) // through the first process
	}
	got := s.collect(t, 3, streamWait)
	for i, ev := range got {
		if ev.Message != fmt.Sprintf("live %d", i) || ev.EventIndex != int64(1+i) || ev.RoomId != room.Id {
			t.Fatalf("live event %d: %+v", i, ev)
		}
	}
	lastID := fmt.Sprintf("%d:%d", room.Id, got[2].EventIndex)
	s.Close()

	// Missed while away: more messages, and a room bob was invited into meanwhile.
	for i := range 4 {
		e.post(t, ann, room.Id, fmt.Sprintf("missed %d", i))
	}
	carl := e.newChatter(t)
	e.relate(t, bob, carl, "FOLLOW")
	code, _, b := carl.do(t, e, "POST", "/api/v1/chats", map[string]any{"invite_profile_ids": []int64{bob.Profile}})
	Status(t, "carl invites bob", code, http.StatusCreated, b)
	newRoom := decode[api.ChatRoomCreated](t, b).Room

	s = e.openStream(t, second, bob, lastID+","+fmt.Sprintf("%d:-1", newRoom.Id))
	replay := s.collect(t, 5, streamWait)
	var texts []string
	for _, ev := range replay {
		texts = append(texts, fmt.Sprintf("%d:%d:%s", ev.RoomId-room.Id, ev.EventIndex, ev.Message))
	}
	want := []string{"0:4:missed 0", "0:5:missed 1", "0:6:missed 2", "0:7:missed 3", fmt.Sprintf("%d:0:%s님이 들어왔습니다.", newRoom.Id-room.Id, bob.Name)}
	if strings.Join(texts, "|") != strings.Join(want, "|") {
		t.Fatalf("replay after Last-Event-ID:\n got %v\nwant %v", texts, want)
	}
	// Then live, from both rooms, through the other process.
	e.post(t, ann, room.Id, "after reconnect")
	code, _, b = carl.do(t, e, "POST", fmt.Sprintf("/api/v1/chats/%d/events", newRoom.Id), map[string]any{"message": "hi bob"})
	Status(t, "carl posts", code, http.StatusCreated, b)
	live := s.collect(t, 2, streamWait)
	if live[0].Message != "after reconnect" || live[0].EventIndex != 8 || live[1].Message != "hi bob" || live[1].EventIndex != 1 {
		t.Fatalf("live after replay: %+v", live)
	}
	s.quiet(t, 600*time.Millisecond) // heartbeats re-check the database: still nothing twice

	// A room joined while streaming comes in from the arrival on; a departure is the last event.
	dave := e.newChatter(t)
	e.relate(t, bob, dave, "FOLLOW")
	code, _, b = dave.do(t, e, "POST", "/api/v1/chats", map[string]any{"invite_profile_ids": []int64{bob.Profile}, "name": "Dave's"})
	Status(t, "dave invites bob", code, http.StatusCreated, b)
	daves := decode[api.ChatRoomCreated](t, b).Room
	_, in := s.next(t, streamWait)
	if in.RoomId != daves.Id || in.EventType != "PARTICIPANT_IN" || in.EventIndex != 0 {
		t.Fatalf("arrival in a new room: %+v", in)
	}
	code, _, b = dave.do(t, e, "DELETE", fmt.Sprintf("/api/v1/chats/%d/participants/%d", daves.Id, bob.Profile), nil)
	Status(t, "dave removes bob", code, http.StatusNoContent, b)
	_, out := s.next(t, streamWait)
	if out.RoomId != daves.Id || out.EventType != "PARTICIPANT_KICKED" || *out.TargetProfileId != bob.Profile {
		t.Fatalf("removal: %+v", out)
	}
	code, _, b = dave.do(t, e, "POST", fmt.Sprintf("/api/v1/chats/%d/events", daves.Id), map[string]any{"message": "bob is gone"})
	Status(t, "dave posts", code, http.StatusCreated, b)
	s.quiet(t, 600*time.Millisecond)
}

// TestChatStreamCatchesUpWhatPubSubLost: an event that was committed but never published (a
// Redis hiccup) still reaches the stream, at the next heartbeat's re-check or with the next
// event, in order.
func TestChatStreamCatchesUpWhatPubSubLost(t *testing.T) {
	e := New(t, withChatHeartbeat(200*time.Millisecond))
	ann, bob := e.newChatter(t), e.newChatter(t)
	room := e.newRoom(t, ann, nil, bob).Room
	s := e.openStream(t, e.Server, bob, "")
	lost := func(text string) {
		e.Exec(t, `WITH slot AS (UPDATE chat_rooms SET last_event_index = last_event_index + 1 WHERE id = $1 RETURNING id, last_event_index)
			INSERT INTO chat_events (room_id, event_index, event_type, message, caused_by_profile_id)
			SELECT id, last_event_index, 'MESSAGE_POSTED', $2, $3 FROM slot`, room.Id, text, ann.Profile)
	}
	lost("unpublished 1")
	_, ev := s.next(t, streamWait)
	if ev.Message != "unpublished 1" || ev.EventIndex != 1 {
		t.Fatalf("heartbeat catch-up: %+v", ev)
	}
	lost("unpublished 2")
	e.post(t, ann, room.Id, "published") // arrives with a gap before it
	got := s.collect(t, 2, streamWait)
	if got[0].Message != "unpublished 2" || got[1].Message != "published" || got[1].EventIndex != 3 {
		t.Fatalf("gap filled in order: %+v", got)
	}
	s.quiet(t, 500*time.Millisecond)
	if s.Heartbeats() == 0 {
		t.Fatal("no heartbeat comment")
	}
}

func TestChatStreamLimitAndShutdown(t *testing.T) {
	e := New(t, withChatHeartbeat(200*time.Millisecond), func(c *config.Config) { c.ChatStreamsPerUser = 2 })
	second := e.StartServer(e.Config)
	ann := e.newChatter(t)
	other := ann
	other.Profile = e.NewProfile(t, ann.User, map[string]any{"name": "Ann's other"}).Id

	first := e.openStream(t, e.Server, ann, "")
	onSecond := e.openStream(t, second, other, "")
	if s, code, b := e.tryStream(t, e.Server, ann, ""); s != nil || code != http.StatusTooManyRequests {
		t.Fatalf("third stream of the user (over both processes): %d %s", code, b)
	} else if p := Problem(t, b); p.Code != "chat.too_many_streams" {
		t.Fatalf("problem %s", b)
	}
	code, h, b := e.call(t, ann.Token(), ann.Profile, "GET", "/api/v1/chats/stream", nil)
	if code != http.StatusTooManyRequests || h.Get("Retry-After") == "" {
		t.Fatalf("429 through the validating client, with Retry-After: %d %v %s", code, h, b)
	}
	first.Close()
	if !testenv.WaitFor(streamWait, func() bool {
		s, c, _ := e.tryStream(t, e.Server, ann, "")
		code = c
		return s != nil
	}) {
		t.Fatalf("a closed stream's slot was not given back: %d", code)
	}

	// Shutting a process down ends its streams promptly instead of waiting for the drain timeout.
	start := time.Now()
	second.Stop()
	if !onSecond.ended(5 * time.Second) {
		t.Fatal("the stream outlived its server")
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Fatalf("shutdown took %v with an open stream", d)
	}
}
