package access

// Chat rules (docs/product.md §8): who may be invited into a room, and what a profile may do with a room.

// Reasons an invitation is refused. They are the codes of the failed-invitation report, so they
// must not tell a requester more than it may know: a refusal for a BLOCK, for "does not follow
// you" and for "another profile of your own user" read the same.
const (
	InviteOK             = ""
	InviteNotFound       = "chat.profile_not_found"
	InviteRefused        = "chat.invitation_refused"
	InviteAlreadyPresent = "chat.already_participant"
)

// InviteFacts describe target T of an invitation by requester R.
type InviteFacts struct {
	// Alive: T exists, is not deleted, not locked, and its user is neither locked nor deactivated.
	Alive bool
	// SameUser: T belongs to R's user (another profile of the requester).
	SameUser bool
	// FromRequester is R's relation to T; ToRequester is T's relation to R.
	FromRequester Status
	ToRequester   Status
	// BlockedWithOwner: a BLOCK exists, in either direction, between T and the room's owner (a
	// participant may not bring in someone the owner blocked or who blocked the owner).
	BlockedWithOwner bool
	// AnonymousInvite: T accepts invitations from profiles it does not follow.
	AnonymousInvite bool
}

// Invite decides whether R may put T into a room; InviteOK means yes. Deleted and locked
// targets are answered like absent ones. A BLOCK in either direction, between T and R or
// between T and the room's owner, is checked before anything else, so can_anonymous_invite
// never opens a way around it. The relations come from relation_towards: a BLOCK of any
// profile of a user counts for all of that user's profiles.
func Invite(f InviteFacts) string {
	switch {
	case !f.Alive:
		return InviteNotFound
	case f.FromRequester == Block, f.ToRequester == Block, f.BlockedWithOwner:
		return InviteRefused
	case f.SameUser:
		// Refused exactly like any other refusal, so nobody learns that two profiles share a user.
		return InviteRefused
	case f.ToRequester.Accepted(), f.AnonymousInvite:
		return InviteOK
	}
	return InviteRefused
}

// RoomFacts describe a room relative to the acting profile.
type RoomFacts struct {
	Private bool
	Closed  bool
	Owner   bool // the acting profile owns the room
	Live    bool // the acting profile takes part in the room now
	Former  bool // the acting profile took part in it before
	// BlockedWithOwner: a BLOCK exists, in either direction, between the acting profile and the owner.
	BlockedWithOwner bool
}

// RoomAccess is what a profile may do with a room.
type RoomAccess int

// Room accesses, from nothing to everything.
const (
	// RoomHidden: as if the room did not exist (404).
	RoomHidden RoomAccess = iota
	// RoomVisible: a public room seen from outside: its detail and participants, no events; the
	// profile may enter it.
	RoomVisible
	// RoomHistory: a former participant: the detail and the events of its participations, but it
	// can no longer change anything (it may enter again if the room is public).
	RoomHistory
	// RoomMember: a live participant: read, post, invite, leave.
	RoomMember
)

// Room decides the acting profile's access to a room.
func Room(f RoomFacts) RoomAccess {
	switch {
	case f.Live:
		return RoomMember
	case f.Former:
		return RoomHistory
	case f.Closed, f.Private, f.BlockedWithOwner:
		return RoomHidden
	}
	return RoomVisible
}

// CanEnterRoom reports whether the acting profile may enter the room by itself (a public room
// it can see and is not in).
func CanEnterRoom(f RoomFacts) bool {
	return !f.Live && !f.Closed && !f.Private && !f.BlockedWithOwner
}
