package e2e

import (
	"bytes"
	"fmt"
	"image"
	"image/color"
	"image/png"
	"mime/multipart"
	"net/http"
	"strings"
	"testing"

	"github.com/bca-app/backend/gen/api"
	"github.com/bca-app/backend/internal/config"
)

// chatPNG is a small valid PNG.
func chatPNG(t testing.TB) []byte {
	t.Helper()
	img := image.NewRGBA(image.Rect(0, 0, 4, 4))
	img.Set(1, 1, color.RGBA{R: 200, A: 255})
	var b bytes.Buffer
	if err := png.Encode(&b, img); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

// chatImageBody is a multipart body with one part.
func chatImageBody(t testing.TB, field string, data []byte) (string, []byte) {
	t.Helper()
	var b bytes.Buffer
	w := multipart.NewWriter(&b)
	part, err := w.CreateFormFile(field, "picture.png")
	if err != nil {
		t.Fatal(err)
	}
	_, _ = part.Write(data)
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	return w.FormDataContentType(), b.Bytes()
}

func (e *Env) postImage(t testing.TB, c chatter, roomID int64, field string, data []byte) (int, []byte) {
	t.Helper()
	ct, body := chatImageBody(t, field, data)
	code, _, b := e.Raw(t, "POST", fmt.Sprintf("/api/v1/chats/%d/images", roomID), ct, body,
		"Authorization", "Bearer "+c.Token(), "X-Profile-Id", fmt.Sprint(c.Profile))
	return code, b
}

func TestChatEventPages(t *testing.T) {
	e := New(t)
	owner, ann := e.newChatter(t), e.newChatter(t)
	room := e.newRoom(t, owner, nil, ann).Room // event 0: ann comes in
	for i := 1; i <= 10; i++ {
		e.post(t, []chatter{owner, ann}[i%2], room.Id, fmt.Sprintf("message %d", i)) // events 1..10
	}
	cases := []struct {
		query string
		want  string
		more  bool
	}{
		{"?limit=3", "8 9 10", true},
		{"", "0 1 2 3 4 5 6 7 8 9 10", false},
		{"?before=8&limit=3", "5 6 7", true},
		{"?before=3&limit=3", "0 1 2", false},
		{"?after=-1&limit=4", "0 1 2 3", true},
		{"?after=6&limit=4", "7 8 9 10", false},
		{"?after=6&limit=3", "7 8 9", true},
		{"?after=2&before=6", "3 4 5", false},
		{"?after=2&before=6&limit=2", "3 4", true},
		{"?after=10", "", false},
		{"?before=0", "", false},
	}
	for _, c := range cases {
		got := e.events(t, owner, room.Id, c.query)
		var idx []string
		for _, ev := range got.Items {
			idx = append(idx, fmt.Sprint(ev.EventIndex))
		}
		if strings.Join(idx, " ") != c.want || got.HasMore != c.more {
			t.Errorf("%s: got [%s] more=%v, want [%s] more=%v", c.query, strings.Join(idx, " "), got.HasMore, c.want, c.more)
		}
	}
	for _, q := range []string{"?limit=0", "?limit=201", "?after=-2", "?before=-1", "?after=x"} {
		code, _, b := owner.do(t, e, "GET", fmt.Sprintf("/api/v1/chats/%d/events%s", room.Id, q), nil)
		Status(t, "events "+q, code, http.StatusBadRequest, b)
	}
}

func TestChatDeleteMessage(t *testing.T) {
	e := New(t)
	owner, ann := e.newChatter(t), e.newChatter(t)
	room := e.newRoom(t, owner, nil, ann).Room
	msg := e.post(t, ann, room.Id, "oops")
	path := fmt.Sprintf("/api/v1/chats/%d/events/", room.Id)

	code, _, b := owner.do(t, e, "DELETE", fmt.Sprint(path, msg.EventIndex), nil)
	Status(t, "delete someone else's message", code, http.StatusForbidden, b)
	if p := Problem(t, b); p.Code != "chat.not_author" {
		t.Fatalf("problem: %s", b)
	}
	code, _, b = owner.do(t, e, "DELETE", fmt.Sprint(path, 0), nil) // ann's arrival, caused by the owner
	Status(t, "delete a system event", code, http.StatusForbidden, b)
	code, _, b = ann.do(t, e, "DELETE", fmt.Sprint(path, 99), nil)
	Status(t, "delete a missing event", code, http.StatusNotFound, b)

	code, _, b = ann.do(t, e, "DELETE", fmt.Sprint(path, msg.EventIndex), nil)
	Status(t, "delete my message", code, http.StatusNoContent, b)
	code, _, b = ann.do(t, e, "DELETE", fmt.Sprint(path, msg.EventIndex), nil)
	Status(t, "delete it again", code, http.StatusNoContent, b)
	evs := e.events(t, owner, room.Id, "").Items
	if eventTypes(evs) != "0:PARTICIPANT_IN 1:MESSAGE_POSTED 2:MESSAGE_DELETED" {
		t.Fatalf("events: %s", eventTypes(evs))
	}
	if evs[1].Message != "메시지가 삭제되었습니다." || evs[1].Deleted == nil || !*evs[1].Deleted {
		t.Fatalf("the deleted message's content is replaced: %+v", evs[1])
	}
	if evs[2].Message != "메시지가 삭제되었습니다." || evs[2].TargetEventIndex == nil || *evs[2].TargetEventIndex != msg.EventIndex || *evs[2].CausedByProfileId != ann.Profile {
		t.Fatalf("MESSAGE_DELETED refers to the message: %+v", evs[2])
	}
	if n := e.Count(t, "SELECT count(*) FROM chat_events WHERE message LIKE '%oops%'"); n != 0 {
		t.Fatalf("the text is gone from the database: %d", n)
	}
}

func TestChatImageMessage(t *testing.T) {
	e := New(t, func(c *config.Config) { c.MaxUploadBytes = 4096 })
	owner, ann, outsider := e.newChatter(t), e.newChatter(t), e.newChatter(t)
	room := e.newRoom(t, owner, nil, ann).Room

	code, b := e.postImage(t, ann, room.Id, "file", chatPNG(t))
	Status(t, "post image", code, http.StatusCreated, b)
	ev := decode[api.ChatEvent](t, b)
	if ev.EventType != "MESSAGE_POSTED_IMAGE" || ev.ImageUrl == nil || ev.Message != "" || ev.EventIndex != 1 {
		t.Fatalf("image event: %+v", ev)
	}
	code, h, img := e.call(t, owner.Token(), 0, "GET", *ev.ImageUrl, nil)
	Status(t, "download the image", code, http.StatusOK, img)
	if h.Get("Content-Type") != "image/png" || !bytes.Equal(img, chatPNG(t)) {
		t.Fatalf("image served as %s", h.Get("Content-Type"))
	}

	before := e.Snapshot(t)
	code, b = e.postImage(t, outsider, room.Id, "file", chatPNG(t))
	Status(t, "outsider posts an image", code, http.StatusNotFound, b)
	code, b = e.postImage(t, ann, room.Id, "file", []byte("plain text, not an image"))
	Status(t, "not an image", code, http.StatusUnsupportedMediaType, b)
	code, b = e.postImage(t, ann, room.Id, "file", append(chatPNG(t), make([]byte, 8192)...))
	Status(t, "too large", code, http.StatusRequestEntityTooLarge, b)
	code, b = e.postImage(t, ann, room.Id, "picture", chatPNG(t))
	Status(t, "wrong field", code, http.StatusBadRequest, b)
	assertUnchanged(t, e, before)

	// Deleting the message releases the image.
	code, _, b = ann.do(t, e, "DELETE", fmt.Sprintf("/api/v1/chats/%d/events/%d", room.Id, ev.EventIndex), nil)
	Status(t, "delete the image message", code, http.StatusNoContent, b)
	if n := e.Count(t, "SELECT count(*) FROM files"); n != before["files"]-1 {
		t.Fatalf("files after delete: %d, want %d", n, before["files"]-1)
	}
	code, _, b = e.call(t, owner.Token(), 0, "GET", *ev.ImageUrl, nil)
	Status(t, "download a released image", code, http.StatusNotFound, b)
}

// TestChatRejectsBadInput: malformed ids, unknown fields, wrong types, empty and oversize
// messages are 4xx problem documents, and nothing is written.
func TestChatRejectsBadInput(t *testing.T) {
	e := New(t, func(c *config.Config) { c.MaxBodyBytes = 16 << 10 })
	owner, ann := e.newChatter(t), e.newChatter(t)
	room := e.newRoom(t, owner, nil, ann).Room
	other := e.newChatter(t)
	before := e.Snapshot(t)
	chats := "/api/v1/chats"
	roomPath := fmt.Sprintf("/api/v1/chats/%d", room.Id)
	events := roomPath + "/events"
	long := strings.Repeat("가", 4001)
	cases := []struct {
		name, method, path, body string
		headers                  []string
		status                   int
	}{
		{"ids as a string", "POST", chats, `{"invite_profile_ids":"[12]"}`, nil, 400},
		{"no invitees", "POST", chats, `{"invite_profile_ids":[]}`, nil, 400},
		{"id zero", "POST", chats, `{"invite_profile_ids":[0]}`, nil, 400},
		{"id as text", "POST", chats, `{"invite_profile_ids":["12"]}`, nil, 400},
		{"duplicate ids", "POST", chats, fmt.Sprintf(`{"invite_profile_ids":[%d,%d]}`, ann.Profile, ann.Profile), nil, 400},
		{"unknown field", "POST", chats, fmt.Sprintf(`{"invite_profile_ids":[%d],"inviting_profiles":"[1]"}`, ann.Profile), nil, 400},
		{"blank name", "POST", chats, fmt.Sprintf(`{"invite_profile_ids":[%d],"name":"   "}`, ann.Profile), nil, 400},
		{"empty name", "POST", chats, fmt.Sprintf(`{"invite_profile_ids":[%d],"name":""}`, ann.Profile), nil, 400},
		{"long name", "POST", chats, fmt.Sprintf(`{"invite_profile_ids":[%d],"name":"%s"}`, ann.Profile, strings.Repeat("n", 101)), nil, 400},
		{"private as text", "POST", chats, fmt.Sprintf(`{"invite_profile_ids":[%d],"private":"false"}`, ann.Profile), nil, 400},
		{"not JSON", "POST", chats, `{"invite_profile_ids":`, nil, 400},
		{"empty message", "POST", events, `{"message":""}`, nil, 400},
		{"blank message", "POST", events, `{"message":" \n\t "}`, nil, 400},
		{"oversize message", "POST", events, `{"message":"` + long + `"}`, nil, 400},
		{"message as number", "POST", events, `{"message":42}`, nil, 400},
		{"message with unknown field", "POST", events, `{"message":"hi","encrypted":true}`, nil, 400},
		{"message with NUL", "POST", events, `{"message":"a\u0000b"}`, nil, 400},
		{"body over the limit", "POST", events, `{"message":"` + strings.Repeat("x", 20<<10) + `"}`, nil, 413},
		{"room id text", "GET", "/api/v1/chats/abc", "", nil, 400},
		{"room id zero", "GET", "/api/v1/chats/0", "", nil, 400},
		{"room id negative", "POST", "/api/v1/chats/-1/events", `{"message":"hi"}`, nil, 400},
		{"room id overflow", "GET", "/api/v1/chats/99999999999999999999", "", nil, 400},
		{"event index negative", "DELETE", events + "/-1", "", nil, 400},
		{"profile id text", "DELETE", roomPath + "/participants/me", "", nil, 400},
		{"read marker below -1", "PUT", roomPath + "/read-marker", `{"event_index":-2}`, nil, 400},
		{"read marker as text", "PUT", roomPath + "/read-marker", `{"event_index":"1"}`, nil, 400},
		{"patch nothing", "PATCH", roomPath, `{}`, []string{"If-Match", `"1"`}, 400},
		{"patch unknown field", "PATCH", roomPath, `{"locked":true}`, []string{"If-Match", `"1"`}, 400},
		{"patch garbage If-Match", "PATCH", roomPath, `{"name":"x"}`, []string{"If-Match", "garbage"}, 412},
		{"participants empty", "POST", roomPath + "/participants", `{"profile_ids":[]}`, nil, 400},
		{"participants unknown field", "POST", roomPath + "/participants", fmt.Sprintf(`{"profile_ids":[%d],"x":1}`, other.Profile), nil, 400},
		{"cursor not ours", "GET", chats + "?cursor=bm90LWEtY3Vyc29y", "", nil, 400},
		{"limit too large", "GET", chats + "?limit=1000", "", nil, 400},
		{"Last-Event-ID malformed", "GET", chats + "/stream", "", []string{"Last-Event-ID", "12;3"}, 400},
		{"X-Profile-Id text", "GET", chats, "", []string{"X-Profile-Id", "abc"}, 400},
		{"X-Profile-Id of another user", "GET", chats, "", []string{"X-Profile-Id", fmt.Sprint(other.Profile)}, 403},
	}
	for _, c := range cases {
		headers := append([]string{"Authorization", "Bearer " + owner.Token(), "X-Profile-Id", fmt.Sprint(owner.Profile)}, c.headers...)
		ct := ""
		if c.body != "" {
			ct = "application/json"
		}
		code, _, b := e.Raw(t, c.method, c.path, ct, []byte(c.body), headers...)
		if code != c.status {
			t.Errorf("%s: status %d, want %d: %s", c.name, code, c.status, b)
			continue
		}
		if p := Problem(t, b); p.Status != c.status {
			t.Errorf("%s: problem %s", c.name, b)
		}
	}
	code, _, b := e.Raw(t, "GET", chats, "", nil, "Authorization", "Bearer "+owner.Token())
	Status(t, "no X-Profile-Id", code, http.StatusBadRequest, b)
	code, _, b = e.Raw(t, "GET", chats, "", nil, "X-Profile-Id", fmt.Sprint(owner.Profile))
	Status(t, "no token", code, http.StatusUnauthorized, b)
	assertUnchanged(t, e, before)
}
