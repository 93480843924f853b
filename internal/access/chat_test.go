package access

import "testing"

func TestInvite(t *testing.T) {
	cases := []struct {
		name string
		f    InviteFacts
		want string
	}{
		{"absent, deleted or locked", InviteFacts{}, InviteNotFound},
		{"deleted even if following", InviteFacts{ToRequester: Follow}, InviteNotFound},
		{"target follows requester", InviteFacts{Alive: true, ToRequester: Follow}, InviteOK},
		{"target hides requester (still follows)", InviteFacts{Alive: true, ToRequester: Hide}, InviteOK},
		{"target accepts anonymous invitations", InviteFacts{Alive: true, AnonymousInvite: true}, InviteOK},
		{"no relation", InviteFacts{Alive: true}, InviteRefused},
		{"pending request grants nothing", InviteFacts{Alive: true, ToRequester: FollowRequested}, InviteRefused},
		{"requester follows target is not enough", InviteFacts{Alive: true, FromRequester: Follow}, InviteRefused},
		{"target blocks requester", InviteFacts{Alive: true, ToRequester: Block}, InviteRefused},
		{"requester blocks target, target anonymous", InviteFacts{Alive: true, FromRequester: Block, AnonymousInvite: true}, InviteRefused},
		{"requester blocks target, target follows", InviteFacts{Alive: true, FromRequester: Block, ToRequester: Follow}, InviteRefused},
		{"own other profile, anonymous", InviteFacts{Alive: true, SameUser: true, AnonymousInvite: true}, InviteRefused},
	}
	for _, c := range cases {
		if got := Invite(c.f); got != c.want {
			t.Errorf("%s: got %q, want %q", c.name, got, c.want)
		}
	}
}

func TestRoomAccess(t *testing.T) {
	cases := []struct {
		name  string
		f     RoomFacts
		want  RoomAccess
		enter bool
	}{
		{"participant of a private room", RoomFacts{Private: true, Live: true}, RoomMember, false},
		{"owner", RoomFacts{Private: true, Live: true, Owner: true}, RoomMember, false},
		{"former participant", RoomFacts{Private: true, Former: true}, RoomHistory, false},
		{"former participant of a closed room", RoomFacts{Closed: true, Former: true}, RoomHistory, false},
		{"former participant of a public room may come back", RoomFacts{Former: true}, RoomHistory, true},
		{"outsider, private room", RoomFacts{Private: true}, RoomHidden, false},
		{"outsider, public room", RoomFacts{}, RoomVisible, true},
		{"outsider, closed public room", RoomFacts{Closed: true}, RoomHidden, false},
		{"outsider blocked with the owner", RoomFacts{BlockedWithOwner: true}, RoomHidden, false},
	}
	for _, c := range cases {
		if got := Room(c.f); got != c.want {
			t.Errorf("%s: got %d, want %d", c.name, got, c.want)
		}
		if got := CanEnterRoom(c.f); got != c.enter {
			t.Errorf("%s: may enter %v, want %v", c.name, got, c.enter)
		}
	}
}
