package e2e

import (
	"fmt"
	"net/http"
	"slices"
	"sync"
	"testing"
	"unicode/utf8"

	"github.com/bca-app/backend/gen/api"
)

// autoRoomName is the predecessor's naming rule, restated for the test.
func autoRoomName(names ...string) string {
	n := ""
	for i, s := range names {
		if i > 0 {
			n += ", "
		}
		n += s
	}
	if utf8.RuneCountInString(n) >= 30 {
		n = string([]rune(n)[:28]) + "..."
	}
	return n
}

func activeIDs(r api.ChatRoom) []int64 {
	var ids []int64
	for _, p := range r.Participants {
		if p.Active {
			ids = append(ids, p.ProfileId)
		}
	}
	slices.Sort(ids)
	return ids
}

func sorted(ids ...int64) []int64 {
	slices.Sort(ids)
	return ids
}

func TestChatRoomLifecycle(t *testing.T) {
	e := New(t)
	owner, ann, bob := e.newChatter(t), e.newChatter(t), e.newChatter(t)

	created := e.newRoom(t, owner, nil, ann, bob)
	r := created.Room
	if r.Name != autoRoomName(ann.Name, bob.Name) || r.OwnerProfileId != owner.Profile || !r.Private || r.Version != 1 ||
		r.LastEventIndex != 1 || len(created.FailedInvitations) != 0 || r.UnreadCount != 0 || r.ReadEventIndex == nil || *r.ReadEventIndex != 1 {
		t.Fatalf("created room: named after the invitees, owned by the creator, private, two PARTICIPANT_IN events, read by the creator: %+v", created)
	}
	if !slices.Equal(activeIDs(r), sorted(owner.Profile, ann.Profile, bob.Profile)) {
		t.Fatalf("participants %+v", r.Participants)
	}
	for _, p := range r.Participants {
		if (p.IsOwner != nil && *p.IsOwner) != (p.ProfileId == owner.Profile) {
			t.Fatalf("is_owner of %d: %+v", p.ProfileId, p)
		}
	}

	// Every invitee reads from its own arrival on; the texts are the predecessor's.
	evs := e.events(t, ann, r.Id, "")
	if eventTypes(evs.Items) != "0:PARTICIPANT_IN 1:PARTICIPANT_IN" || evs.HasMore ||
		evs.Items[0].Message != ann.Name+"님이 들어왔습니다." || evs.Items[1].Message != bob.Name+"님이 들어왔습니다." ||
		*evs.Items[0].CausedByProfileId != owner.Profile || *evs.Items[0].TargetProfileId != ann.Profile {
		t.Fatalf("ann's events: %+v", evs)
	}
	if got := eventTypes(e.events(t, bob, r.Id, "").Items); got != "1:PARTICIPANT_IN" {
		t.Fatalf("bob reads only from his arrival: %s", got)
	}
	if got := eventTypes(e.events(t, owner, r.Id, "").Items); got != "0:PARTICIPANT_IN 1:PARTICIPANT_IN" {
		t.Fatalf("the creator reads everything: %s", got)
	}

	// A message, unread counts, the room list ordered by activity.
	other := e.newRoom(t, owner, map[string]any{"name": "  Second room ", "description": "d", "private": false}, bob)
	if other.Room.Name != "Second room" || other.Room.Private || other.Room.Description == nil || *other.Room.Description != "d" {
		t.Fatalf("named room: trimmed name, description, public: %+v", other.Room)
	}
	msg := e.post(t, ann, r.Id, "See you at 7!")
	if msg.EventIndex != 2 || msg.EventType != "MESSAGE_POSTED" || msg.Message != "See you at 7!" || *msg.CausedByProfileId != ann.Profile {
		t.Fatalf("posted: %+v", msg)
	}
	code, _, b := bob.do(t, e, "GET", "/api/v1/chats", nil)
	Status(t, "list rooms", code, http.StatusOK, b)
	list := decode[api.ChatRoomList](t, b)
	if len(list.Items) != 2 || list.Items[0].Id != r.Id || list.Items[1].Id != other.Room.Id || list.NextCursor != nil {
		t.Fatalf("bob's rooms, most recently active first: %+v", list)
	}
	if list.Items[0].UnreadCount != 2 || list.Items[1].UnreadCount != 1 {
		t.Fatalf("unread: %d, %d (want 2: his arrival and ann's message; 1: his arrival)", list.Items[0].UnreadCount, list.Items[1].UnreadCount)
	}
	code, _, b = bob.do(t, e, "GET", "/api/v1/chats?limit=1", nil)
	Status(t, "list rooms page 1", code, http.StatusOK, b)
	page := decode[api.ChatRoomList](t, b)
	if len(page.Items) != 1 || page.Items[0].Id != r.Id || page.NextCursor == nil {
		t.Fatalf("page 1: %+v", page)
	}
	code, _, b = bob.do(t, e, "GET", "/api/v1/chats?limit=1&cursor="+*page.NextCursor, nil)
	Status(t, "list rooms page 2", code, http.StatusOK, b)
	page = decode[api.ChatRoomList](t, b)
	if len(page.Items) != 1 || page.Items[0].Id != other.Room.Id || page.NextCursor != nil {
		t.Fatalf("page 2: %+v", page)
	}
	code, _, b = bob.do(t, e, "PUT", fmt.Sprintf("/api/v1/chats/%d/read-marker", r.Id), map[string]any{"event_index": 1})
	Status(t, "read marker", code, http.StatusOK, b)
	if m := decode[api.ReadMarker](t, b); m.EventIndex != 1 || m.UnreadCount != 1 {
		t.Fatalf("read marker: %+v", m)
	}
	code, _, b = bob.do(t, e, "PUT", fmt.Sprintf("/api/v1/chats/%d/read-marker", r.Id), map[string]any{"event_index": 0})
	Status(t, "read marker backwards", code, http.StatusOK, b)
	if m := decode[api.ReadMarker](t, b); m.EventIndex != 1 {
		t.Fatalf("a read marker never moves back: %+v", m)
	}
	code, _, b = bob.do(t, e, "PUT", fmt.Sprintf("/api/v1/chats/%d/read-marker", r.Id), map[string]any{"event_index": 999})
	Status(t, "read marker beyond the end", code, http.StatusOK, b)
	if m := decode[api.ReadMarker](t, b); m.EventIndex != 2 || m.UnreadCount != 0 {
		t.Fatalf("a read marker stops at the last event: %+v", m)
	}

	// Changing the room: owner only, If-Match with the strong ETag.
	path := fmt.Sprintf("/api/v1/chats/%d", r.Id)
	code, h, b := owner.do(t, e, "GET", path, nil)
	Status(t, "get room", code, http.StatusOK, b)
	etag := h.Get("ETag")
	if etag != `"1"` {
		t.Fatalf("ETag %q", etag)
	}
	code, _, b = owner.do(t, e, "PATCH", path, map[string]any{"name": "Trip"})
	Status(t, "patch without If-Match", code, http.StatusPreconditionRequired, b)
	code, _, b = owner.do(t, e, "PATCH", path, map[string]any{"name": "Trip"}, "If-Match", `"7"`)
	Status(t, "patch with a stale version", code, http.StatusPreconditionFailed, b)
	code, _, b = ann.do(t, e, "PATCH", path, map[string]any{"name": "Trip"}, "If-Match", etag)
	Status(t, "patch by a participant", code, http.StatusForbidden, b)
	code, h, b = owner.do(t, e, "PATCH", path, map[string]any{"name": "Trip", "description": "Alps"}, "If-Match", etag)
	Status(t, "patch", code, http.StatusOK, b)
	r = decode[api.ChatRoom](t, b)
	if r.Name != "Trip" || *r.Description != "Alps" || r.Version != 2 || h.Get("ETag") != `"2"` {
		t.Fatalf("patched: %+v, ETag %s", r, h.Get("ETag"))
	}
	code, _, b = owner.do(t, e, "PATCH", path, map[string]any{"private": false}, "If-Match", etag)
	Status(t, "second writer with the same version", code, http.StatusPreconditionFailed, b)
	code, _, b = owner.do(t, e, "PATCH", path, map[string]any{"description": ""}, "If-Match", `"2"`)
	Status(t, "clear description", code, http.StatusOK, b)
	if r = decode[api.ChatRoom](t, b); r.Description != nil {
		t.Fatalf("description not cleared: %+v", r)
	}
	stranger := e.newChatter(t)
	code, _, b = owner.do(t, e, "PATCH", path, map[string]any{"owner_profile_id": stranger.Profile}, "If-Match", `"3"`)
	Status(t, "hand over to a non-participant", code, http.StatusBadRequest, b)
	code, _, b = owner.do(t, e, "PATCH", path, map[string]any{"owner_profile_id": ann.Profile}, "If-Match", `"3"`)
	Status(t, "hand over", code, http.StatusOK, b)
	if r = decode[api.ChatRoom](t, b); r.OwnerProfileId != ann.Profile || r.Version != 4 {
		t.Fatalf("handed over: %+v", r)
	}
	evs = e.events(t, bob, r.Id, "?after=2")
	if eventTypes(evs.Items) != "3:ROOM_MODIFIED 4:ROOM_MODIFIED 5:ROOM_MODIFIED" || evs.Items[0].Message != "채팅방 정보가 변경되었습니다." ||
		evs.Items[2].Message != ann.Name+"님이 방장이 되었습니다." || *evs.Items[2].TargetProfileId != ann.Profile {
		t.Fatalf("room changes are events: %+v", evs.Items)
	}

	// Kick: owner only.
	code, _, b = owner.do(t, e, "DELETE", fmt.Sprintf("%s/participants/%d", path, bob.Profile), nil)
	Status(t, "kick by a former owner", code, http.StatusForbidden, b)
	code, _, b = ann.do(t, e, "DELETE", fmt.Sprintf("%s/participants/%d", path, bob.Profile), nil)
	Status(t, "kick", code, http.StatusNoContent, b)
	code, _, b = ann.do(t, e, "DELETE", fmt.Sprintf("%s/participants/%d", path, bob.Profile), nil)
	Status(t, "kick someone not in the room", code, http.StatusNotFound, b)
	evs = e.events(t, bob, r.Id, "?after=5")
	if eventTypes(evs.Items) != "6:PARTICIPANT_KICKED" || evs.Items[0].Message != bob.Name+"님이 내보내졌습니다." {
		t.Fatalf("bob reads up to his removal: %+v", evs.Items)
	}
	code, _, b = bob.do(t, e, "GET", "/api/v1/chats", nil)
	Status(t, "list rooms", code, http.StatusOK, b)
	if l := decode[api.ChatRoomList](t, b); len(l.Items) != 1 || l.Items[0].Id != other.Room.Id {
		t.Fatalf("a room one was removed from is no longer listed: %+v", l)
	}

	// The owner leaving hands the room to the longest-standing participant.
	code, _, b = ann.do(t, e, "DELETE", fmt.Sprintf("%s/participants/%d", path, ann.Profile), nil)
	Status(t, "owner leaves", code, http.StatusNoContent, b)
	r = e.room(t, owner, r.Id)
	if r.OwnerProfileId != owner.Profile || !slices.Equal(activeIDs(r), []int64{owner.Profile}) || r.Version != 5 {
		t.Fatalf("after the owner left: %+v", r)
	}
	evs = e.events(t, owner, r.Id, "?after=6")
	if eventTypes(evs.Items) != "7:PARTICIPANT_OUT 8:ROOM_MODIFIED" || evs.Items[0].Message != ann.Name+"님이 나가셨습니다." ||
		evs.Items[1].CausedByProfileId != nil || *evs.Items[1].TargetProfileId != owner.Profile {
		t.Fatalf("leave and hand-over events: %+v", evs.Items)
	}
	code, _, b = ann.do(t, e, "DELETE", fmt.Sprintf("%s/participants/%d", path, ann.Profile), nil)
	Status(t, "leave twice", code, http.StatusNotFound, b)

	// The last one leaving closes the room; former participants still see it, others do not.
	code, _, b = owner.do(t, e, "DELETE", fmt.Sprintf("%s/participants/%d", path, owner.Profile), nil)
	Status(t, "last one leaves", code, http.StatusNoContent, b)
	r = e.room(t, ann, r.Id)
	if r.Closed == nil || !*r.Closed || len(activeIDs(r)) != 0 || r.ReadEventIndex != nil {
		t.Fatalf("closed room: %+v", r)
	}
	code, _, b = stranger.do(t, e, "GET", path, nil)
	Status(t, "closed room for a stranger", code, http.StatusNotFound, b)
	code, _, b = owner.do(t, e, "POST", path+"/participants", map[string]any{"profile_ids": []int64{owner.Profile}})
	Status(t, "re-enter a closed room", code, http.StatusOK, b)
	if got := decode[api.ChatRoomCreated](t, b); len(got.FailedInvitations) != 1 || got.FailedInvitations[0].Code != "chat.invitation_refused" {
		t.Fatalf("a closed room takes nobody in: %+v", got)
	}
	if n := e.Count(t, "SELECT count(*) FROM chat_participants WHERE room_id = $1", r.Id); n != 3 {
		t.Fatalf("soft leave keeps every participation row: %d", n)
	}
}

func TestChatPublicRoomEntry(t *testing.T) {
	e := New(t)
	owner, ann := e.newChatter(t), e.newChatter(t)
	room := e.newRoom(t, owner, map[string]any{"private": false, "name": "Open"}, ann).Room
	e.post(t, ann, room.Id, "before carl")
	carl := e.newChatter(t)
	path := fmt.Sprintf("/api/v1/chats/%d", room.Id)

	seen := e.room(t, carl, room.Id)
	if seen.ReadEventIndex != nil || seen.UnreadCount != 0 || len(seen.Participants) != 2 {
		t.Fatalf("a public room seen from outside: participants, no marker: %+v", seen)
	}
	code, _, b := carl.do(t, e, "GET", path+"/events", nil)
	Status(t, "outsider reads events", code, http.StatusForbidden, b)
	dave := e.newChatter(t)
	code, _, b = carl.do(t, e, "POST", path+"/participants", map[string]any{"profile_ids": []int64{dave.Profile}})
	Status(t, "outsider invites", code, http.StatusForbidden, b)

	code, _, b = carl.do(t, e, "POST", path+"/participants", map[string]any{"profile_ids": []int64{carl.Profile}})
	Status(t, "enter", code, http.StatusOK, b)
	got := decode[api.ChatRoomCreated](t, b)
	if len(got.FailedInvitations) != 0 || !slices.Contains(activeIDs(got.Room), carl.Profile) || got.Room.UnreadCount != 0 {
		t.Fatalf("entered: %+v", got)
	}
	evs := e.events(t, carl, room.Id, "")
	if eventTypes(evs.Items) != "2:PARTICIPANT_IN" || *evs.Items[0].CausedByProfileId != carl.Profile || evs.Items[0].Message != carl.Name+"님이 들어왔습니다." {
		t.Fatalf("an entrant reads from its arrival: %+v", evs.Items)
	}
	code, _, b = carl.do(t, e, "POST", path+"/participants", map[string]any{"profile_ids": []int64{carl.Profile}})
	Status(t, "enter twice", code, http.StatusOK, b)
	if got := decode[api.ChatRoomCreated](t, b); len(got.FailedInvitations) != 1 || got.FailedInvitations[0].Code != "chat.already_participant" {
		t.Fatalf("entering twice: %+v", got)
	}
	if n := e.Count(t, "SELECT count(*) FROM chat_participants WHERE room_id = $1 AND profile_id = $2", room.Id, carl.Profile); n != 1 {
		t.Fatalf("one live participation: %d", n)
	}

	// Across a BLOCK with the owner the room does not exist.
	blocked, blocker := e.newChatter(t), e.newChatter(t)
	e.relate(t, owner, blocked, "BLOCK")
	e.relate(t, blocker, owner, "BLOCK")
	for _, c := range []chatter{blocked, blocker} {
		code, _, b = c.do(t, e, "GET", path, nil)
		Status(t, "blocked reads the room", code, http.StatusNotFound, b)
		code, _, b = c.do(t, e, "POST", path+"/participants", map[string]any{"profile_ids": []int64{c.Profile}})
		Status(t, "blocked enters", code, http.StatusNotFound, b)
	}

	// A private room cannot be entered, and does not show itself.
	private := e.newRoom(t, owner, nil, ann).Room
	code, _, b = carl.do(t, e, "POST", fmt.Sprintf("/api/v1/chats/%d/participants", private.Id), map[string]any{"profile_ids": []int64{carl.Profile}})
	Status(t, "enter a private room", code, http.StatusNotFound, b)
}

func TestChatInvitationRule(t *testing.T) {
	e := New(t)
	r := e.newChatter(t)
	follower, hider, stranger, pending, followedByR := e.newChatter(t), e.newChatter(t), e.newChatter(t), e.newChatter(t), e.newChatter(t)
	e.relate(t, follower, r, "FOLLOW")
	e.relate(t, hider, r, "FOLLOW")
	e.relate(t, hider, r, "HIDE")
	code, _, b := pending.do(t, e, "PUT", fmt.Sprintf("/api/v1/profiles/%d/relation", r.Profile), map[string]any{"status": "FOLLOW"})
	Status(t, "follow request", code, http.StatusOK, b)
	e.relate(t, r, followedByR, "FOLLOW")

	anon := e.NewProfile(t, e.SignUp(t), map[string]any{"name": "Anon", "can_anonymous_invite": true})
	blocksRUser, blockedByRUser := e.SignUp(t), e.SignUp(t)
	blocksR := e.NewProfile(t, blocksRUser, map[string]any{"name": "Blocks R", "can_anonymous_invite": true})
	blockedByR := e.NewProfile(t, blockedByRUser, map[string]any{"name": "Blocked by R", "can_anonymous_invite": true})
	e.relate(t, chatter{User: blocksRUser, Profile: blocksR.Id}, r, "BLOCK")
	e.relate(t, r, chatter{User: blockedByRUser, Profile: blockedByR.Id}, "BLOCK")
	followsButBlocked := e.newChatter(t)
	e.relate(t, followsButBlocked, r, "FOLLOW")
	e.relate(t, r, followsButBlocked, "BLOCK")
	own := e.NewProfile(t, r.User, map[string]any{"name": "R at home", "can_anonymous_invite": true})
	deleted, locked := e.newChatter(t), e.newChatter(t)
	e.relate(t, deleted, r, "FOLLOW")
	e.relate(t, locked, r, "FOLLOW")
	e.Exec(t, "UPDATE profiles SET deleted_at = now() WHERE id = $1", deleted.Profile)
	e.Exec(t, "UPDATE profiles SET locked_at = now() WHERE id = $1", locked.Profile)
	const absent = int64(1 << 40)

	want := map[int64]string{
		follower.Profile:          "",
		hider.Profile:             "",
		anon.Id:                   "",
		stranger.Profile:          "chat.invitation_refused",
		pending.Profile:           "chat.invitation_refused",
		followedByR.Profile:       "chat.invitation_refused",
		blocksR.Id:                "chat.invitation_refused",
		blockedByR.Id:             "chat.invitation_refused",
		followsButBlocked.Profile: "chat.invitation_refused",
		own.Id:                    "chat.invitation_refused",
		deleted.Profile:           "chat.profile_not_found",
		locked.Profile:            "chat.profile_not_found",
		absent:                    "chat.profile_not_found",
		r.Profile:                 "chat.already_participant",
	}
	ids := make([]int64, 0, len(want))
	for id := range want {
		ids = append(ids, id)
	}
	slices.Sort(ids)
	code, _, b = r.do(t, e, "POST", "/api/v1/chats", map[string]any{"invite_profile_ids": ids, "name": "Rule"})
	Status(t, "create with mixed invitations", code, http.StatusCreated, b)
	got := decode[api.ChatRoomCreated](t, b)
	failed := map[int64]api.FailedInvitation{}
	for _, f := range got.FailedInvitations {
		failed[f.ProfileId] = f
	}
	for id, code := range want {
		f, isFailed := failed[id]
		switch {
		case code == "" && isFailed:
			t.Errorf("profile %d: refused with %s, want invited", id, f.Code)
		case code != "" && !isFailed:
			t.Errorf("profile %d: invited, want %s", id, code)
		case code != "" && f.Code != code:
			t.Errorf("profile %d: %s, want %s", id, f.Code, code)
		}
	}
	// Another profile of the requester's own user is refused exactly like a stranger.
	if failed[own.Id].Code != failed[stranger.Profile].Code || failed[own.Id].Reason != failed[stranger.Profile].Reason {
		t.Errorf("own profile refusal %+v differs from a stranger's %+v", failed[own.Id], failed[stranger.Profile])
	}
	if !slices.Equal(activeIDs(got.Room), sorted(r.Profile, follower.Profile, hider.Profile, anon.Id)) {
		t.Errorf("participants: %v", activeIDs(got.Room))
	}

	// Nobody invitable: nothing is created.
	before := e.Snapshot(t)
	code, _, b = r.do(t, e, "POST", "/api/v1/chats", map[string]any{"invite_profile_ids": []int64{stranger.Profile, own.Id}})
	Status(t, "create with no invitable profile", code, http.StatusForbidden, b)
	if p := Problem(t, b); p.Code != "chat.invitation_refused" || p.Errors == nil || len(*p.Errors) != 2 {
		t.Fatalf("problem: %s", b)
	}
	assertUnchanged(t, e, before)
}

func TestChatOneToOneRoomIsReused(t *testing.T) {
	e := New(t)
	a, b := e.newChatter(t), e.newChatter(t)
	first := e.newRoom(t, a, nil, b).Room
	if first.Name != b.Name {
		t.Fatalf("a 1:1 room is named after the other profile: %q", first.Name)
	}
	before := e.Snapshot(t)
	for _, who := range []struct {
		from chatter
		to   chatter
	}{{a, b}, {b, a}} {
		code, _, body := who.from.do(t, e, "POST", "/api/v1/chats", map[string]any{"invite_profile_ids": []int64{who.to.Profile}, "name": "again"})
		Status(t, "second 1:1 room", code, http.StatusConflict, body)
		p := decode[api.ExistingRoomProblem](t, body)
		if p.Code != "chat.room_exists" || p.Room.Id != first.Id || p.Status != http.StatusConflict {
			t.Fatalf("409 must carry the existing room: %s", body)
		}
	}
	assertUnchanged(t, e, before)

	// A group room of the two plus someone else is not a 1:1 room; a left 1:1 room is not live.
	c := e.newChatter(t)
	e.newRoom(t, a, nil, b, c)
	code, _, body := b.do(t, e, "DELETE", fmt.Sprintf("/api/v1/chats/%d/participants/%d", first.Id, b.Profile), nil)
	Status(t, "leave the 1:1 room", code, http.StatusNoContent, body)
	second := e.newRoom(t, a, nil, b).Room
	if second.Id == first.Id {
		t.Fatal("a new 1:1 room must be created once the old one has only one participant")
	}

	// Racing creators get one room.
	x, y := e.newChatter(t), e.newChatter(t)
	e.relate(t, y, x, "FOLLOW")
	var wg sync.WaitGroup
	statuses := make([]int, 8)
	for i := range statuses {
		wg.Add(1)
		go func() {
			defer wg.Done()
			statuses[i], _, _ = x.do(t, e, "POST", "/api/v1/chats", map[string]any{"invite_profile_ids": []int64{y.Profile}})
		}()
	}
	wg.Wait()
	slices.Sort(statuses)
	if statuses[0] != http.StatusCreated || statuses[1] != http.StatusConflict || statuses[len(statuses)-1] != http.StatusConflict {
		t.Fatalf("racing 1:1 creations: %v, want one 201 and the rest 409", statuses)
	}
	if n := e.Count(t, "SELECT count(*) FROM chat_rooms WHERE created_by_profile_id = $1", x.Profile); n != 1 {
		t.Fatalf("%d rooms", n)
	}
}
