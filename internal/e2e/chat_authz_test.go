package e2e

import (
	"fmt"
	"net/http"
	"slices"
	"testing"
	"time"

	"github.com/bca-app/backend/gen/api"
)

// chatFixture is a room with one profile in each standing.
type chatFixture struct {
	room                                        api.ChatRoom
	owner, participant, former, outsider, block chatter
	guest                                       int64 // a profile anyone may invite (can_anonymous_invite)
	ownerMsg, participantMsg, formerMsg         int64 // event indexes of their messages
}

func (e *Env) chatFixture(t *testing.T, private bool) chatFixture {
	t.Helper()
	f := chatFixture{owner: e.newChatter(t), participant: e.newChatter(t), former: e.newChatter(t), outsider: e.newChatter(t), block: e.newChatter(t)}
	f.room = e.newRoom(t, f.owner, map[string]any{"private": private, "name": "Matrix"}, f.participant, f.former).Room
	f.ownerMsg = e.post(t, f.owner, f.room.Id, "owner's").EventIndex
	f.participantMsg = e.post(t, f.participant, f.room.Id, "participant's").EventIndex
	f.formerMsg = e.post(t, f.former, f.room.Id, "former's").EventIndex
	code, _, b := f.former.do(t, e, "DELETE", fmt.Sprintf("/api/v1/chats/%d/participants/%d", f.room.Id, f.former.Profile), nil)
	Status(t, "former leaves", code, http.StatusNoContent, b)
	e.relate(t, f.owner, f.block, "BLOCK")
	f.guest = e.NewProfile(t, e.SignUp(t), map[string]any{"name": "Guest", "can_anonymous_invite": true}).Id
	return f
}

// TestChatAuthorizationMatrix walks every chat operation for a profile in each standing — the
// owner, a participant, a former participant, an outsider, and a profile the owner blocks —
// over a public and a private room. Each cell is the expected status ("listed"/"streamed" for
// the list and the stream, which answer 200 either way and differ in what they contain).
func TestChatAuthorizationMatrix(t *testing.T) {
	e := New(t, withChatHeartbeat(200*time.Millisecond))
	roles := []string{"owner", "participant", "former", "outsider", "blocked"}
	type row struct {
		op      string
		public  [5]string
		private [5]string
	}
	matrix := []row{
		//                          owner     participant former    outsider  blocked
		{"getChatRoom", [5]string{"200", "200", "200", "200", "404"}, [5]string{"200", "200", "200", "404", "404"}},
		{"listChatEvents", [5]string{"200", "200", "200", "403", "404"}, [5]string{"200", "200", "200", "404", "404"}},
		{"listChatRooms", [5]string{"listed", "listed", "unlisted", "unlisted", "unlisted"}, [5]string{"listed", "listed", "unlisted", "unlisted", "unlisted"}},
		{"streamChatEvents", [5]string{"streamed", "streamed", "silent", "silent", "silent"}, [5]string{"streamed", "streamed", "silent", "silent", "silent"}},
		{"postChatMessage", [5]string{"201", "201", "403", "403", "404"}, [5]string{"201", "201", "403", "404", "404"}},
		{"postChatImage", [5]string{"201", "201", "403", "403", "404"}, [5]string{"201", "201", "403", "404", "404"}},
		{"deleteChatMessage own", [5]string{"204", "204", "403", "403", "404"}, [5]string{"204", "204", "403", "404", "404"}},
		{"deleteChatMessage other's", [5]string{"403", "403", "403", "403", "404"}, [5]string{"403", "403", "403", "404", "404"}},
		{"setChatReadMarker", [5]string{"200", "200", "403", "403", "404"}, [5]string{"200", "200", "403", "404", "404"}},
		{"updateChatRoom", [5]string{"200", "403", "403", "403", "404"}, [5]string{"200", "403", "403", "404", "404"}},
		{"addChatParticipants invite", [5]string{"200", "200", "403", "403", "404"}, [5]string{"200", "200", "403", "404", "404"}},
		{"addChatParticipants self", [5]string{"already", "already", "entered", "entered", "404"}, [5]string{"already", "already", "refused", "404", "404"}},
		{"removeChatParticipant kick", [5]string{"204", "403", "403", "403", "404"}, [5]string{"204", "403", "403", "404", "404"}},
		{"removeChatParticipant leave", [5]string{"204", "204", "404", "404", "404"}, [5]string{"204", "204", "404", "404", "404"}},
	}
	for _, kind := range []string{"public", "private"} {
		for ri, role := range roles {
			t.Run(kind+"/"+role, func(t *testing.T) {
				f := e.chatFixture(t, kind == "private")
				me := []chatter{f.owner, f.participant, f.former, f.outsider, f.block}[ri]
				room := fmt.Sprintf("/api/v1/chats/%d", f.room.Id)
				ownMsg := []int64{f.ownerMsg, f.participantMsg, f.formerMsg, f.participantMsg, f.participantMsg}[ri]
				othersMsg := f.participantMsg
				if me.Profile == f.participant.Profile {
					othersMsg = f.ownerMsg
				}
				kickTarget := f.participant.Profile
				if me.Profile == f.participant.Profile {
					kickTarget = f.owner.Profile
				}
				for _, r := range matrix {
					want := r.public[ri]
					if kind == "private" {
						want = r.private[ri]
					}
					var got string
					status := func(code int, _ http.Header, _ []byte) string { return fmt.Sprint(code) }
					switch r.op {
					case "getChatRoom":
						got = status(me.do(t, e, "GET", room, nil))
					case "listChatEvents":
						got = status(me.do(t, e, "GET", room+"/events", nil))
					case "listChatRooms":
						code, _, b := me.do(t, e, "GET", "/api/v1/chats", nil)
						Status(t, "list rooms", code, http.StatusOK, b)
						got = "unlisted"
						for _, it := range decode[api.ChatRoomList](t, b).Items {
							if it.Id == f.room.Id {
								got = "listed"
							}
						}
					case "streamChatEvents":
						s := e.openStream(t, e.Server, me, "")
						text := fmt.Sprintf("for the stream of %s", role)
						e.post(t, f.owner, f.room.Id, text)
						got = "silent"
						select {
						case ev := <-s.events:
							if ce := decode[api.ChatEvent](t, []byte(ev.Data)); ce.Message == text {
								got = "streamed"
							}
						case <-time.After(400 * time.Millisecond):
						}
						s.Close()
					case "postChatMessage":
						got = status(me.do(t, e, "POST", room+"/events", map[string]any{"message": "hello"}))
					case "postChatImage":
						code, _ := e.postImage(t, me, f.room.Id, "file", chatPNG(t))
						got = fmt.Sprint(code)
					case "deleteChatMessage own":
						got = status(me.do(t, e, "DELETE", fmt.Sprintf("%s/events/%d", room, ownMsg), nil))
					case "deleteChatMessage other's":
						got = status(me.do(t, e, "DELETE", fmt.Sprintf("%s/events/%d", room, othersMsg), nil))
					case "setChatReadMarker":
						got = status(me.do(t, e, "PUT", room+"/read-marker", map[string]any{"event_index": 1}))
					case "updateChatRoom":
						version := e.Count(t, "SELECT version FROM chat_rooms WHERE id = $1", f.room.Id)
						got = status(me.do(t, e, "PATCH", room, map[string]any{"name": "Renamed"}, "If-Match", fmt.Sprintf(`"%d"`, version)))
					case "addChatParticipants invite":
						got = status(me.do(t, e, "POST", room+"/participants", map[string]any{"profile_ids": []int64{f.guest}}))
					case "addChatParticipants self":
						code, _, b := me.do(t, e, "POST", room+"/participants", map[string]any{"profile_ids": []int64{me.Profile}})
						got = fmt.Sprint(code)
						if code == http.StatusOK {
							res := decode[api.ChatRoomCreated](t, b)
							switch {
							case len(res.FailedInvitations) == 1 && res.FailedInvitations[0].Code == "chat.already_participant":
								got = "already"
							case len(res.FailedInvitations) == 1 && res.FailedInvitations[0].Code == "chat.invitation_refused":
								got = "refused"
							case len(res.FailedInvitations) == 0 && slices.Contains(activeIDs(res.Room), me.Profile):
								got = "entered"
								// back out so the later cells see the original standing
								code, _, b := me.do(t, e, "DELETE", fmt.Sprintf("%s/participants/%d", room, me.Profile), nil)
								Status(t, "leave again", code, http.StatusNoContent, b)
							}
						}
					case "removeChatParticipant kick":
						got = status(me.do(t, e, "DELETE", fmt.Sprintf("%s/participants/%d", room, kickTarget), nil))
					case "removeChatParticipant leave":
						got = status(me.do(t, e, "DELETE", fmt.Sprintf("%s/participants/%d", room, me.Profile), nil))
					}
					if got != want {
						t.Errorf("%s as %s of a %s room: %s, want %s", r.op, role, kind, got, want)
					}
				}
			})
		}
	}
}
