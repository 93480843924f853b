// Package access holds the visibility and permission rules of docs/product.md §4–§6 as pure functions.
// Every read path (profile read, card read, card lists, follower lists, vCard, chat, the sync
// file) asks these functions, so a rule changes in one place.
package access

import "time"

// Status is a relation status, numbered as in the sync file.
type Status int16

// Relation statuses.
const (
	None            Status = 0
	Follow          Status = 1
	Hide            Status = 2
	Block           Status = 3
	FollowRequested Status = 4
)

// String is the API spelling of the status.
func (s Status) String() string {
	switch s {
	case Follow:
		return "FOLLOW"
	case Hide:
		return "HIDE"
	case Block:
		return "BLOCK"
	case FollowRequested:
		return "FOLLOW_REQUESTED"
	}
	return ""
}

// ParseStatus reads the API spelling.
func ParseStatus(s string) (Status, bool) {
	for _, st := range []Status{Follow, Hide, Block, FollowRequested} {
		if st.String() == s {
			return st, true
		}
	}
	return None, false
}

// Accepted reports whether the relation is an accepted follow (FOLLOW, or HIDE which still follows).
func (s Status) Accepted() bool { return s == Follow || s == Hide }

// Caller is who makes a request, the one caller type every service takes: a signed-in user
// (maybe an admin), from one session, maybe acting as one of their profiles. Operator commands
// and background work have no session (SessionID 0).
type Caller struct {
	UserID          int64
	Admin           bool
	ActingProfileID int64 // 0 when not acting as a profile
	SessionID       int64
	// TokenID and ExpiresAt are the request's access token: sign-out blacklists the id until the
	// token would have expired, and a live chat stream ends when it does.
	TokenID   string
	ExpiresAt time.Time
}

// ProfileFacts are what the rules need to know about a target profile and its relations with
// the viewer's acting profile.
type ProfileFacts struct {
	OwnerUserID int64
	Private     bool
	Locked      bool // the profile, or its owner's account, is locked or deactivated
	// FromViewer is the acting profile's relation to the target; ToViewer the target's relation
	// to the acting profile.
	FromViewer Status
	ToViewer   Status
}

// FactsOf is the one place rows become ProfileFacts: the profile's owner and privacy, whether
// it is live (the live_profiles view: neither the profile nor its owner's account locked, the
// account not deactivated), and the relations between it and the viewer as the SQL function
// relation_towards gives them: BLOCK when either side blocks any profile of the other's user
// (so a BLOCK covers every profile of the blocked user, and a viewer acting as no profile),
// otherwise the relation with the acting profile (0 when none, or no acting profile).
func FactsOf(ownerUserID int64, private, live bool, fromViewer, toViewer int16) ProfileFacts {
	return ProfileFacts{
		OwnerUserID: ownerUserID, Private: private, Locked: !live,
		FromViewer: Status(fromViewer), ToViewer: Status(toViewer),
	}
}

// Visibility is how much of a profile a viewer may see.
type Visibility int

// Visibilities, from nothing to everything.
const (
	Hidden   Visibility = iota // as if absent (404)
	Redacted                   // id, name, image and timestamps only
	Full
)

// Profile decides how much of a profile the viewer may see (docs/product.md §4). Deleted profiles
// follow the same rule: those who could see them before still can, with a deleted marker.
func Profile(v Caller, f ProfileFacts) Visibility {
	switch {
	case v.UserID == f.OwnerUserID, v.Admin:
		return Full
	case f.Locked, f.ToViewer == Block:
		return Hidden
	case !f.Private:
		return Full
	case f.FromViewer.Accepted(), f.ToViewer.Accepted():
		// A pending request (FOLLOW_REQUESTED) grants nothing.
		return Full
	}
	return Redacted
}

// CardFacts describe a card for the card rules.
type CardFacts struct {
	Profile    ProfileFacts
	Private    bool
	Deleted    bool
	Locked     bool
	Subscribed bool // the acting profile subscribes to this card
}

// CanReadCard decides whether the viewer may read the card (docs/product.md §6): owners and admins
// always; others need a live, unlocked card of a profile they may fully read, and for a private
// card an existing subscription. Subscribers keep seeing a deleted card, as a tombstone.
func CanReadCard(v Caller, c CardFacts) bool {
	if v.UserID == c.Profile.OwnerUserID || v.Admin {
		return true
	}
	if c.Locked || Profile(v, c.Profile) != Full {
		return false
	}
	if c.Deleted || c.Private {
		return c.Subscribed
	}
	return true
}

// SubscribeRefusal says why the acting profile may not subscribe to a card; "" means it may.
func SubscribeRefusal(v Caller, c CardFacts) string {
	switch {
	case v.UserID == c.Profile.OwnerUserID:
		return "card.own_card"
	case c.Deleted, c.Locked, c.Profile.Locked:
		return "card.not_found"
	case c.Profile.FromViewer == Block, c.Profile.ToViewer == Block:
		return "card.not_found"
	case c.Subscribed:
		return ""
	case c.Private:
		return "card.private"
	case !CanReadCard(v, c):
		return "card.not_found"
	}
	return ""
}

// SubscribeThroughLinkRefusal is SubscribeRefusal for a caller holding a live share link of the
// card (docs/product.md §6 "Sharing"): the owner handed the card out, so a private card, or a card
// of a profile the caller may not read, may be saved; own, deleted and locked cards and a BLOCK
// in either direction still refuse.
func SubscribeThroughLinkRefusal(v Caller, c CardFacts) string {
	switch r := SubscribeRefusal(v, c); r {
	case "", "card.own_card":
		return r
	}
	if c.Deleted || c.Locked || c.Profile.Locked || c.Profile.FromViewer == Block || c.Profile.ToViewer == Block {
		return "card.not_found"
	}
	return ""
}

// FollowListVisible decides whether the viewer may see a profile's followers or following
// list: the owner always, others only when the list is public and the profile fully readable.
func FollowListVisible(v Caller, f ProfileFacts, listPublic bool) bool {
	if v.UserID == f.OwnerUserID || v.Admin {
		return true
	}
	return listPublic && Profile(v, f) == Full
}
