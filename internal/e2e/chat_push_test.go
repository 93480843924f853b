package e2e

import (
	"fmt"
	"net/http"
	"slices"
	"strconv"
	"testing"
	"time"

	"github.com/bca-app/backend/gen/api"
	"github.com/bca-app/backend/gen/apiclient"
	"github.com/bca-app/backend/internal/config"
	"github.com/bca-app/backend/internal/push/fcmtest"
	"github.com/bca-app/backend/internal/testenv"
)

// onDevice signs c in again from a device with an FCM token: another session of the same user.
func (e *Env) onDevice(t testing.TB, c chatter, token string) chatter {
	t.Helper()
	resp, err := e.Anon().SignInWithResponse(ctx, &apiclient.SignInParams{XClientToken: &token},
		apiclient.SignInJSONRequestBody{Login: c.LoginID, Password: Password})
	if err != nil {
		t.Fatal(err)
	}
	Status(t, "sign in on "+token, resp.StatusCode(), http.StatusOK, resp.Body)
	c.Session = *resp.JSON200
	return c
}

func tokensOf(msgs []fcmtest.Message) []string {
	var out []string
	for _, m := range msgs {
		out = append(out, m.Token)
	}
	slices.Sort(out)
	return out
}

// TestChatPushThroughFCM drives the real firebase client against the loopback FCM: every event
// is a data message with plain string values to the devices of the room's participants except
// the device that caused it; a posted text also carries a notification; a token FCM calls
// unregistered is cleared, and the request that caused the push never notices.
func TestChatPushThroughFCM(t *testing.T) {
	fake := fcmtest.New(t)
	e := New(t, func(c *config.Config) { c.FirebaseCertificate = fake.Credentials(); c.FCMEndpoint = fake.Endpoint() })
	owner, ann, bob := e.newChatter(t), e.newChatter(t), e.newChatter(t)
	ownerPhone := e.onDevice(t, owner, "owner-phone")
	annTablet := e.onDevice(t, ann, "ann-tablet")
	annPhone := e.onDevice(t, ann, "ann-phone")
	e.onDevice(t, bob, "bob-phone")

	room := e.newRoom(t, ownerPhone, map[string]any{"name": "Trip"}, ann, bob).Room
	// Two PARTICIPANT_IN events, caused from the owner's phone: data only, to everyone else.
	msgs := fake.Wait(t, streamWait, "arrival pushes", func(m []fcmtest.Message) bool { return len(m) >= 6 })
	for _, m := range msgs {
		if m.Token == "owner-phone" || m.Data["event_type"] != "PARTICIPANT_IN" || m.Notification != nil {
			t.Fatalf("arrival push: %+v", m)
		}
	}
	if got := tokensOf(msgs); !slices.Equal(got, []string{"ann-phone", "ann-phone", "ann-tablet", "ann-tablet", "bob-phone", "bob-phone"}) {
		t.Fatalf("arrival pushes went to %v", got)
	}

	// A text from ann's phone (which also sends its current token).
	n := len(fake.Messages())
	code, _, b := annPhone.do(t, e, "POST", fmt.Sprintf("/api/v1/chats/%d/events", room.Id), map[string]any{"message": "See you at 7!"}, "X-Client-Token", "ann-phone")
	Status(t, "post", code, http.StatusCreated, b)
	ev := decode[api.ChatEvent](t, b)
	msgs = fake.Wait(t, streamWait, "message pushes", func(m []fcmtest.Message) bool { return len(m) >= n+3 })[n:]
	if got := tokensOf(msgs); !slices.Equal(got, []string{"ann-tablet", "bob-phone", "owner-phone"}) {
		t.Fatalf("message pushed to %v; want the other participants and ann's other device, never the sending device", got)
	}
	want := map[string]string{
		"type": "chat", "room_id": strconv.FormatInt(room.Id, 10), "event_index": strconv.FormatInt(ev.EventIndex, 10),
		"event_type": "MESSAGE_POSTED", "message": "See you at 7!", "caused_by_profile_id": strconv.FormatInt(ann.Profile, 10),
	}
	for _, m := range msgs {
		for k, v := range want {
			if m.Data[k] != v {
				t.Errorf("push data %s = %q, want %q (plain string): %+v", k, m.Data[k], v, m.Data)
			}
		}
		if m.Data["created_at"] == "" || m.Data["uuid"] == "" || m.Data["caused_by_participant_id"] == "" {
			t.Errorf("push data lacks created_at, uuid or caused_by_participant_id: %+v", m.Data)
		}
		if m.Notification == nil || m.Notification.Title != "Trip" || m.Notification.Body != "See you at 7!" {
			t.Errorf("a posted text shows a notification titled with the room: %+v", m.Notification)
		}
	}

	// bob uninstalled the app: FCM answers UNREGISTERED, the token is cleared, the post succeeds.
	fake.Unregister("bob-phone")
	e.post(t, annTablet, room.Id, "Bob?")
	if !testenv.WaitFor(streamWait, func() bool {
		return e.Count(t, "SELECT count(*) FROM sessions WHERE device_token = 'bob-phone'") == 0
	}) {
		t.Fatalf("unregistered token not cleared; FCM rejected %v", fake.Rejected())
	}
	n = len(fake.Messages())
	e.post(t, annTablet, room.Id, "Bob is gone")
	fake.Wait(t, streamWait, "pushes after the token was cleared", func(m []fcmtest.Message) bool { return len(m) >= n+2 })
	time.Sleep(200 * time.Millisecond) // wall time on purpose: an absence is shown by waiting; nothing more comes
	if got := tokensOf(fake.Messages()[n:]); !slices.Equal(got, []string{"ann-phone", "owner-phone"}) {
		t.Fatalf("after clearing: pushed to %v", got)
	}
}

// TestChatProfileDeletionLeavesRooms: deleting a profile ends its participations inside the
// deletion's transaction — PARTICIPANT_OUT in each room, ownership handed on, a room left empty
// closed — and the events reach live streams once that transaction has committed.
func TestChatProfileDeletionLeavesRooms(t *testing.T) {
	e := New(t, withChatHeartbeat(time.Second))
	owner, ann, bob := e.newChatter(t), e.newChatter(t), e.newChatter(t)
	owned := e.newRoom(t, owner, map[string]any{"name": "Owned"}, ann, bob).Room
	e.relate(t, owner, ann, "FOLLOW")
	code, _, b := ann.do(t, e, "POST", "/api/v1/chats", map[string]any{"invite_profile_ids": []int64{owner.Profile}, "name": "Ann's"})
	Status(t, "ann's room", code, http.StatusCreated, b)
	joined := decode[api.ChatRoomCreated](t, b).Room
	alone := e.newRoom(t, owner, map[string]any{"name": "Alone"}, bob).Room
	code, _, b = bob.do(t, e, "DELETE", fmt.Sprintf("/api/v1/chats/%d/participants/%d", alone.Id, bob.Profile), nil)
	Status(t, "bob leaves", code, http.StatusNoContent, b)
	s := e.openStream(t, e.Server, ann, "")

	code, h, b := e.call(t, owner.Token(), owner.Profile, "GET", fmt.Sprintf("/api/v1/profiles/%d", owner.Profile), nil)
	Status(t, "get profile", code, http.StatusOK, b)
	code, _, b = e.call(t, owner.Token(), 0, "DELETE", fmt.Sprintf("/api/v1/profiles/%d", owner.Profile), nil, "If-Match", h.Get("ETag"))
	Status(t, "delete profile", code, http.StatusNoContent, b)

	r := e.room(t, ann, owned.Id)
	if r.OwnerProfileId != ann.Profile || !slices.Equal(activeIDs(r), sorted(ann.Profile, bob.Profile)) {
		t.Fatalf("owned room after the owner's profile was deleted: %+v", r)
	}
	evs := e.events(t, bob, owned.Id, fmt.Sprintf("?after=%d", owned.LastEventIndex))
	if eventTypes(evs.Items) != "2:PARTICIPANT_OUT 3:ROOM_MODIFIED" || evs.Items[0].Message != owner.Name+"님이 나가셨습니다." {
		t.Fatalf("events of the owned room: %+v", evs.Items)
	}
	if got := e.events(t, ann, joined.Id, "?after=0").Items; eventTypes(got) != "1:PARTICIPANT_OUT" {
		t.Fatalf("events of ann's room: %s", eventTypes(got))
	}
	if n := e.Count(t, "SELECT count(*) FROM chat_rooms WHERE id = $1 AND closed_at IS NOT NULL", alone.Id); n != 1 {
		t.Fatal("a room left empty is closed")
	}
	if n := e.Count(t, "SELECT count(*) FROM chat_participants WHERE profile_id = $1 AND left_at IS NULL", owner.Profile); n != 0 {
		t.Fatalf("%d live participations remain", n)
	}
	// After the commit the stream hears of it: in the owned room the departure and the new owner,
	// in ann's room the departure.
	got := s.collect(t, 3, streamWait)
	var seen []string
	for _, ev := range got {
		seen = append(seen, fmt.Sprintf("%d:%s", ev.RoomId, ev.EventType))
	}
	slices.Sort(seen)
	want := []string{fmt.Sprintf("%d:PARTICIPANT_OUT", owned.Id), fmt.Sprintf("%d:ROOM_MODIFIED", owned.Id), fmt.Sprintf("%d:PARTICIPANT_OUT", joined.Id)}
	slices.Sort(want)
	if !slices.Equal(seen, want) {
		t.Fatalf("stream after the deletion: %v, want %v", seen, want)
	}
}

func TestDeactivationLeavesRooms(t *testing.T) {
	e := New(t)
	owner, ann := e.newChatter(t), e.newChatter(t)
	room := e.newRoom(t, owner, map[string]any{"name": "Before"}, ann).Room
	code, _, b := e.call(t, ann.Token(), 0, "POST", "/api/v1/account/deactivate", map[string]any{"password": Password, "confirm": true})
	Status(t, "deactivate", code, http.StatusNoContent, b)
	r := e.room(t, owner, room.Id)
	if !slices.Equal(activeIDs(r), sorted(owner.Profile)) {
		t.Fatalf("the deactivated user's profile left the room: %+v", r.Participants)
	}
	evs := e.events(t, owner, room.Id, fmt.Sprintf("?after=%d", room.LastEventIndex))
	if len(evs.Items) != 1 || evs.Items[0].EventType != "PARTICIPANT_OUT" || evs.Items[0].Message != ann.Name+"님이 나가셨습니다." {
		t.Fatalf("a PARTICIPANT_OUT event: %+v", evs.Items)
	}
}
