package e2e

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/bca-app/backend/gen/api"
	"github.com/bca-app/backend/internal/config"
)

// chatter is a signed-up user acting as its first profile.
type chatter struct {
	User
	Profile int64
	Name    string
}

func (e *Env) newChatter(t testing.TB) chatter {
	t.Helper()
	u := e.SignUp(t)
	id := e.FirstProfile(t, u)
	var name string
	if err := e.Server.App.Pool.QueryRow(ctx, "SELECT name FROM profiles WHERE id = $1", id).Scan(&name); err != nil {
		t.Fatal(err)
	}
	return chatter{User: u, Profile: id, Name: name}
}

// as sends a JSON request as the chatter's acting profile to the main server.
func (c chatter) do(t testing.TB, e *Env, method, path string, body any, headers ...string) (int, http.Header, []byte) {
	t.Helper()
	return e.call(t, c.Token(), c.Profile, method, path, body, headers...)
}

// relate sets from's relation to to through the API; a follow of a private profile is
// accepted by its owner, so the result is an accepted FOLLOW.
func (e *Env) relate(t testing.TB, from, to chatter, status string) {
	t.Helper()
	code, _, b := from.do(t, e, "PUT", fmt.Sprintf("/api/v1/profiles/%d/relation", to.Profile), map[string]any{"status": status})
	Status(t, "set relation "+status, code, http.StatusOK, b)
	if rel := decode[api.Relation](t, b); rel.Status != nil && *rel.Status == "FOLLOW_REQUESTED" {
		code, _, b = e.call(t, to.Token(), 0, "POST", fmt.Sprintf("/api/v1/profiles/%d/follow-requests/%d", to.Profile, from.Profile), nil)
		Status(t, "accept follow request", code, http.StatusOK, b)
	}
}

// newRoom creates a room as owner; every invitee is made to follow the owner first.
func (e *Env) newRoom(t testing.TB, owner chatter, body map[string]any, invitees ...chatter) api.ChatRoomCreated {
	t.Helper()
	ids := []int64{}
	for _, c := range invitees {
		e.relate(t, c, owner, "FOLLOW")
		ids = append(ids, c.Profile)
	}
	if body == nil {
		body = map[string]any{}
	}
	body["invite_profile_ids"] = ids
	code, h, b := owner.do(t, e, "POST", "/api/v1/chats", body)
	Status(t, "create room", code, http.StatusCreated, b)
	created := decode[api.ChatRoomCreated](t, b)
	if h.Get("ETag") != strconv.Quote(strconv.FormatInt(created.Room.Version, 10)) {
		t.Fatalf("create room: ETag %q for version %d", h.Get("ETag"), created.Room.Version)
	}
	return created
}

func (e *Env) post(t testing.TB, c chatter, roomID int64, text string) api.ChatEvent {
	t.Helper()
	code, _, b := c.do(t, e, "POST", fmt.Sprintf("/api/v1/chats/%d/events", roomID), map[string]any{"message": text})
	Status(t, "post message", code, http.StatusCreated, b)
	return decode[api.ChatEvent](t, b)
}

func (e *Env) events(t testing.TB, c chatter, roomID int64, query string) api.ChatEventList {
	t.Helper()
	code, _, b := c.do(t, e, "GET", fmt.Sprintf("/api/v1/chats/%d/events%s", roomID, query), nil)
	Status(t, "list events "+query, code, http.StatusOK, b)
	return decode[api.ChatEventList](t, b)
}

func (e *Env) room(t testing.TB, c chatter, roomID int64) api.ChatRoom {
	t.Helper()
	code, _, b := c.do(t, e, "GET", fmt.Sprintf("/api/v1/chats/%d", roomID), nil)
	Status(t, "get room", code, http.StatusOK, b)
	return decode[api.ChatRoom](t, b)
}

func eventTypes(events []api.ChatEvent) string {
	s := make([]string, len(events))
	for i, e := range events {
		s[i] = fmt.Sprintf("%d:%s", e.EventIndex, e.EventType)
	}
	return strings.Join(s, " ")
}

// sseEvent is one event read from a chat stream.
type sseEvent struct {
	ID    string
	Event string
	Data  string
}

// sseClient reads a chat stream in the background. The stream never ends by itself, so it is
// read with a plain client; its opening answer is checked against the spec by hand.
type sseClient struct {
	resp       *http.Response
	cancel     context.CancelFunc
	events     chan sseEvent
	done       chan struct{}
	mu         sync.Mutex
	heartbeats int
}

func (e *Env) openStream(t testing.TB, srv *Server, c chatter, lastEventID string) *sseClient {
	t.Helper()
	s, status, body := e.tryStream(t, srv, c, lastEventID)
	if s == nil {
		t.Fatalf("open stream: status %d: %s", status, body)
	}
	return s
}

// tryStream opens a stream; a refusal returns nil with the status and body.
func (e *Env) tryStream(t testing.TB, srv *Server, c chatter, lastEventID string) (*sseClient, int, []byte) {
	t.Helper()
	cctx, cancel := context.WithCancel(context.Background())
	req, err := http.NewRequestWithContext(cctx, "GET", srv.URL+"/api/v1/chats/stream", nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+c.Token())
	req.Header.Set("X-Profile-Id", strconv.FormatInt(c.Profile, 10))
	req.Header.Set("Accept", "text/event-stream")
	if lastEventID != "" {
		req.Header.Set("Last-Event-ID", lastEventID)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		cancel()
		t.Fatalf("open stream: %v", err)
	}
	if resp.StatusCode != http.StatusOK {
		defer cancel()
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		if err := checkProblem(resp, b); err != nil {
			t.Errorf("stream refusal is not a problem document: %v", err)
		}
		return nil, resp.StatusCode, b
	}
	if ct := resp.Header.Get("Content-Type"); ct != "text/event-stream" {
		t.Errorf("stream Content-Type %q, want text/event-stream as in openapi.yaml", ct)
	}
	s := &sseClient{resp: resp, cancel: cancel, events: make(chan sseEvent, 10000), done: make(chan struct{})}
	go s.read()
	t.Cleanup(s.Close)
	return s, resp.StatusCode, nil
}

func (s *sseClient) read() {
	defer close(s.done)
	defer close(s.events)
	sc := bufio.NewScanner(s.resp.Body)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	var cur sseEvent
	for sc.Scan() {
		line := sc.Text()
		switch {
		case line == "":
			if cur.Data != "" {
				s.events <- cur
			}
			cur = sseEvent{}
		case strings.HasPrefix(line, ":"):
			if strings.HasPrefix(line, ": ping") {
				s.mu.Lock()
				s.heartbeats++
				s.mu.Unlock()
			}
		case strings.HasPrefix(line, "id: "):
			cur.ID = strings.TrimPrefix(line, "id: ")
		case strings.HasPrefix(line, "event: "):
			cur.Event = strings.TrimPrefix(line, "event: ")
		case strings.HasPrefix(line, "data: "):
			cur.Data = strings.TrimPrefix(line, "data: ")
		}
	}
}

// Close disconnects.
func (s *sseClient) Close() {
	s.cancel()
	s.resp.Body.Close()
	<-s.done
}

func (s *sseClient) Heartbeats() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.heartbeats
}

// next returns the next event, decoded, or fails after timeout.
func (s *sseClient) next(t testing.TB, timeout time.Duration) (sseEvent, api.ChatEvent) {
	t.Helper()
	select {
	case ev, ok := <-s.events:
		if !ok {
			t.Fatal("stream ended")
		}
		if ev.Event != "chat" {
			t.Fatalf("SSE event type %q, want chat", ev.Event)
		}
		ce := decode[api.ChatEvent](t, []byte(ev.Data))
		if want := fmt.Sprintf("%d:%d", ce.RoomId, ce.EventIndex); ev.ID != want {
			t.Fatalf("SSE id %q, want %q", ev.ID, want)
		}
		return ev, ce
	case <-time.After(timeout):
		t.Fatalf("no stream event within %v", timeout)
	}
	return sseEvent{}, api.ChatEvent{}
}

// collect reads n events.
func (s *sseClient) collect(t testing.TB, n int, timeout time.Duration) []api.ChatEvent {
	t.Helper()
	out := make([]api.ChatEvent, 0, n)
	deadline := time.Now().Add(timeout)
	for len(out) < n {
		_, ev := s.next(t, time.Until(deadline))
		out = append(out, ev)
	}
	return out
}

// quiet checks that no event arrives for d.
func (s *sseClient) quiet(t testing.TB, d time.Duration) {
	t.Helper()
	select {
	case ev, ok := <-s.events:
		if ok {
			t.Fatalf("unexpected stream event %s: %s", ev.ID, ev.Data)
		}
	case <-time.After(d):
	}
}

// ended reports whether the server closed the stream within d.
func (s *sseClient) ended(d time.Duration) bool {
	select {
	case <-s.done:
		return true
	case <-time.After(d):
		return false
	}
}

// withChatHeartbeat shortens the live streams' heartbeat (and their database re-check).
func withChatHeartbeat(d time.Duration) Option {
	return func(c *config.Config) { c.ChatHeartbeat = d }
}
