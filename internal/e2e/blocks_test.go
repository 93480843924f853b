package e2e

import (
	"net/http"
	"testing"

	"github.com/bca-app/backend/gen/apiclient"
)

// TestBlockCoversEveryProfileOfTheBlockedUser: when profile T blocks one profile A1 of user U,
// T is hidden from all of U's profiles and from U acting as no profile (docs/product.md §5): its
// profile and cards read as absent, and none of U's profiles may follow T or subscribe to its
// cards. The same holds the other way round: A1 may not subscribe to the cards of another
// profile of T's user.
func TestBlockCoversEveryProfileOfTheBlockedUser(t *testing.T) {
	e := New(t)
	blockerUser := e.SignUp(t)
	blocker := chatter{User: blockerUser, Profile: e.NewProfile(t, blockerUser, map[string]any{"name": "Blocker", "private": false}).Id} // T
	blocked := e.newChatter(t)                                                                                                           // A1 of user U
	a2 := e.NewProfile(t, blocked.User, map[string]any{"name": "Second self"}).Id
	card := e.NewCard(t, blocker.User, blocker.Profile, map[string]any{"name": "T's card", "data": map[string]any{}})
	otherOfBlocker := e.NewProfile(t, blocker.User, map[string]any{"name": "Blocker's other", "private": false}).Id
	otherCard := e.NewCard(t, blocker.User, otherOfBlocker, map[string]any{"name": "other card", "data": map[string]any{}})

	u := e.As(blocked.Token())
	readProfile := func(acting *int64) int {
		t.Helper()
		r, err := u.GetProfileWithResponse(ctx, blocker.Profile, &apiclient.GetProfileParams{XProfileId: acting})
		if err != nil {
			t.Fatal(err)
		}
		return r.StatusCode()
	}
	readCard := func(acting *int64) int {
		t.Helper()
		r, err := u.GetCardWithResponse(ctx, card.Id, &apiclient.GetCardParams{XProfileId: acting})
		if err != nil {
			t.Fatal(err)
		}
		return r.StatusCode()
	}
	// Before the block everything is readable, so the 404s below come from the block.
	for _, acting := range []*int64{nil, &blocked.Profile, &a2} {
		if got := readProfile(acting); got != http.StatusOK {
			t.Fatalf("before the block: profile read acting as %v: %d, want 200", acting, got)
		}
		if got := readCard(acting); got != http.StatusOK {
			t.Fatalf("before the block: card read acting as %v: %d, want 200", acting, got)
		}
	}

	e.relate(t, blocker, blocked, "BLOCK")

	for name, acting := range map[string]*int64{"no acting profile": nil, "the blocked profile": &blocked.Profile, "another profile of the blocked user": &a2} {
		if got := readProfile(acting); got != http.StatusNotFound {
			t.Errorf("%s reads the blocker's profile: %d, want 404", name, got)
		}
		if got := readCard(acting); got != http.StatusNotFound {
			t.Errorf("%s reads the blocker's card: %d, want 404", name, got)
		}
	}
	sub, err := u.SubscribeCardWithResponse(ctx, card.Id, &apiclient.SubscribeCardParams{XProfileId: a2}, apiclient.SubscribeCardJSONRequestBody{})
	if err != nil {
		t.Fatal(err)
	}
	if sub.StatusCode() != http.StatusNotFound {
		t.Errorf("another profile of the blocked user subscribes to the blocker's card: %d, want 404: %s", sub.StatusCode(), sub.Body)
	}
	follow, err := u.SetRelationWithResponse(ctx, blocker.Profile, &apiclient.SetRelationParams{XProfileId: a2}, apiclient.SetRelationJSONRequestBody{Status: "FOLLOW"})
	if err != nil {
		t.Fatal(err)
	}
	if follow.StatusCode() != http.StatusNotFound {
		t.Errorf("another profile of the blocked user follows the blocker: %d, want 404: %s", follow.StatusCode(), follow.Body)
	}
	// The blocker's side: its block covers every profile of U, and it cannot save their cards;
	// U's cards are not hidden from the blocker's other profile (the block is T's, not its user's).
	a2Public := e.NewProfile(t, blocked.User, map[string]any{"name": "Public self", "private": false}).Id
	uCard := e.NewCard(t, blocked.User, a2Public, map[string]any{"name": "U's card", "data": map[string]any{}})
	tc := e.As(blocker.Token())
	sub, err = tc.SubscribeCardWithResponse(ctx, uCard.Id, &apiclient.SubscribeCardParams{XProfileId: blocker.Profile}, apiclient.SubscribeCardJSONRequestBody{})
	if err != nil {
		t.Fatal(err)
	}
	if sub.StatusCode() != http.StatusNotFound {
		t.Errorf("the blocker subscribes to a card of another profile of the blocked user: %d, want 404: %s", sub.StatusCode(), sub.Body)
	}
	sub, err = tc.SubscribeCardWithResponse(ctx, uCard.Id, &apiclient.SubscribeCardParams{XProfileId: otherOfBlocker}, apiclient.SubscribeCardJSONRequestBody{})
	if err != nil {
		t.Fatal(err)
	}
	if sub.StatusCode() != http.StatusOK {
		t.Errorf("the blocker's other profile subscribes to U's card: %d, want 200: %s", sub.StatusCode(), sub.Body)
	}
	// And T's other profile stays readable to U: only T blocked.
	r, err := u.GetCardWithResponse(ctx, otherCard.Id, &apiclient.GetCardParams{XProfileId: &a2})
	if err != nil {
		t.Fatal(err)
	}
	if r.StatusCode() != http.StatusOK {
		t.Errorf("U reads a card of the blocker's other profile: %d, want 200", r.StatusCode())
	}

	// Unblocking restores everything.
	del, err := e.As(blocker.Token()).DeleteRelationWithResponse(ctx, blocked.Profile, &apiclient.DeleteRelationParams{XProfileId: blocker.Profile})
	if err != nil {
		t.Fatal(err)
	}
	if del.StatusCode()/100 != 2 {
		t.Fatalf("unblock: %d %s", del.StatusCode(), del.Body)
	}
	if got := readProfile(&a2); got != http.StatusOK {
		t.Errorf("after the unblock: %d, want 200", got)
	}
}

// TestInviteRespectsTheOwnersBlocks: a participant may not bring into a room a profile the
// room's owner blocked, one that blocked the owner, or another profile of a user the owner
// blocked (docs/product.md §8), although each of them follows the participant.
func TestInviteRespectsTheOwnersBlocks(t *testing.T) {
	e := New(t)
	owner, participant := e.newChatter(t), e.newChatter(t)
	room := e.newRoom(t, owner, map[string]any{"name": "Blocks"}, participant).Room

	blockedByOwner, blocksOwner, fine := e.newChatter(t), e.newChatter(t), e.newChatter(t)
	sibling := e.newChatter(t) // its user's first profile is blocked by the owner; we invite a second one
	second := e.NewProfile(t, sibling.User, map[string]any{"name": "Sibling"}).Id
	for _, c := range []chatter{blockedByOwner, blocksOwner, fine, {User: sibling.User, Profile: second}} {
		e.relate(t, c, participant, "FOLLOW")
	}
	e.relate(t, owner, blockedByOwner, "BLOCK")
	e.relate(t, blocksOwner, owner, "BLOCK")
	e.relate(t, owner, sibling, "BLOCK")

	res, err := e.As(participant.Token()).AddChatParticipantsWithResponse(ctx, room.Id,
		&apiclient.AddChatParticipantsParams{XProfileId: participant.Profile},
		apiclient.AddChatParticipantsJSONRequestBody{ProfileIds: []int64{blockedByOwner.Profile, blocksOwner.Profile, second, fine.Profile}})
	if err != nil {
		t.Fatal(err)
	}
	if res.JSON200 == nil {
		t.Fatalf("invite: %d %s", res.StatusCode(), res.Body)
	}
	failed := map[int64]string{}
	for _, f := range res.JSON200.FailedInvitations {
		failed[f.ProfileId] = f.Code
	}
	for name, id := range map[string]int64{"blocked by the owner": blockedByOwner.Profile, "blocking the owner": blocksOwner.Profile, "another profile of a user the owner blocked": second} {
		if failed[id] != "chat.invitation_refused" {
			t.Errorf("invite a profile %s: failure %q, want chat.invitation_refused", name, failed[id])
		}
	}
	if code, ok := failed[fine.Profile]; ok {
		t.Errorf("invite a profile without a block: refused with %q", code)
	}
	in := map[int64]bool{}
	for _, p := range res.JSON200.Room.Participants {
		if p.Active {
			in[p.ProfileId] = true
		}
	}
	if !in[fine.Profile] || in[blockedByOwner.Profile] || in[blocksOwner.Profile] || in[second] {
		t.Errorf("participants after the invitation: %v", in)
	}
}
