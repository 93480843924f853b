package e2e

import (
	"fmt"
	"net/http"
	"testing"

	"github.com/bca-app/backend/gen/api"
)

// Regression (issue 15): a range or pattern violation of a parameter named "body" in errors[];
// the problem must name the parameter, as a type error already did. Nothing is changed.
func TestParameterErrorsNameTheParameter(t *testing.T) {
	e := New(t)
	c := e.newChatter(t)
	for _, tc := range []struct {
		name, path, field string
		headers           []string
	}{
		{"limit below range", "/api/v1/profiles?limit=0", "limit", nil},
		{"limit above range", "/api/v1/profiles?limit=1000", "limit", nil},
		{"limit not a number", "/api/v1/profiles?limit=abc", "limit", nil},
		{"path id below range", "/api/v1/profiles/0", "profile_id", nil},
		{"path id not a number", "/api/v1/profiles/abc", "profile_id", nil},
		{"header below range", "/api/v1/cards", "X-Profile-Id", []string{"X-Profile-Id", "0"}},
		{"header pattern", "/api/v1/chats/stream", "Last-Event-ID", []string{"X-Profile-Id", fmt.Sprint(c.Profile), "Last-Event-ID", "12;3"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			before := e.Snapshot(t)
			status, _, b := e.Raw(t, "GET", tc.path, "", nil, append([]string{"Authorization", "Bearer " + c.Token()}, tc.headers...)...)
			Status(t, tc.name, status, http.StatusBadRequest, b)
			p := Problem(t, b)
			if p.Errors == nil || len(*p.Errors) == 0 {
				t.Fatalf("no errors[]: %s", b)
			}
			for _, fe := range *p.Errors {
				if fe.Field != tc.field {
					t.Fatalf("errors[] names %q, want %q: %s", fe.Field, tc.field, b)
				}
			}
			if after := e.Snapshot(t); fmt.Sprint(after) != fmt.Sprint(before) {
				t.Fatalf("a rejected request changed rows: %v → %v", before, after)
			}
		})
	}
}

// The lists a client without the sync file needs: my saved cards, my outgoing follow requests,
// my blocked profiles. Each shows only the acting profile's own rows, pages with next_cursor,
// and refuses a profile that is not the caller's.
func TestMyListsWithoutSyncFile(t *testing.T) {
	e := New(t)
	me, private, blocked, cardOwner, stranger := e.newChatter(t), e.newChatter(t), e.newChatter(t), e.newChatter(t), e.newChatter(t)

	// Outgoing follow request: my first profile is private, and so is the other's.
	code, _, b := me.do(t, e, "PUT", fmt.Sprintf("/api/v1/profiles/%d/relation", private.Profile), map[string]any{"status": "FOLLOW"})
	Status(t, "follow a private profile", code, http.StatusOK, b)
	code, _, b = e.call(t, me.Token(), 0, "GET", fmt.Sprintf("/api/v1/profiles/%d/outgoing-follow-requests", me.Profile), nil)
	Status(t, "outgoing requests", code, http.StatusOK, b)
	reqs := decode[api.FollowRequestList](t, b)
	if len(reqs.Items) != 1 || reqs.Items[0].Profile.Id != private.Profile || reqs.Items[0].RequestedAt.IsZero() {
		t.Fatalf("outgoing requests: %s", b)
	}
	// The receiving side sees none of its own outgoing.
	code, _, b = e.call(t, private.Token(), 0, "GET", fmt.Sprintf("/api/v1/profiles/%d/outgoing-follow-requests", private.Profile), nil)
	Status(t, "no outgoing requests", code, http.StatusOK, b)
	if n := len(decode[api.FollowRequestList](t, b).Items); n != 0 {
		t.Fatalf("receiver has %d outgoing requests: %s", n, b)
	}
	// Accepted: no longer pending.
	code, _, b = e.call(t, private.Token(), 0, "POST", fmt.Sprintf("/api/v1/profiles/%d/follow-requests/%d", private.Profile, me.Profile), nil)
	Status(t, "accept", code, http.StatusOK, b)
	code, _, b = e.call(t, me.Token(), 0, "GET", fmt.Sprintf("/api/v1/profiles/%d/outgoing-follow-requests", me.Profile), nil)
	Status(t, "outgoing after accept", code, http.StatusOK, b)
	if n := len(decode[api.FollowRequestList](t, b).Items); n != 0 {
		t.Fatalf("an accepted request is still listed: %s", b)
	}

	// Blocked profiles, paged one by one.
	e.relate(t, me, blocked, "BLOCK")
	e.relate(t, me, stranger, "BLOCK")
	var got []int64
	cursor := ""
	for range 5 {
		code, _, b = e.call(t, me.Token(), 0, "GET", fmt.Sprintf("/api/v1/profiles/%d/blocked?limit=1%s", me.Profile, cursor), nil)
		Status(t, "blocked", code, http.StatusOK, b)
		page := decode[api.ProfileList](t, b)
		for _, p := range page.Items {
			got = append(got, p.Id)
		}
		if page.NextCursor == nil {
			break
		}
		cursor = "&cursor=" + *page.NextCursor
	}
	if fmt.Sprint(got) != fmt.Sprint([]int64{blocked.Profile, stranger.Profile}) {
		t.Fatalf("blocked profiles %v, want %v", got, []int64{blocked.Profile, stranger.Profile})
	}

	// Saved cards: a public card of a profile I follow.
	e.relate(t, me, cardOwner, "FOLLOW")
	card := e.NewCard(t, cardOwner.User, cardOwner.Profile, map[string]any{"name": "Work card", "private": false})
	code, _, b = me.do(t, e, "PUT", fmt.Sprintf("/api/v1/cards/%d/subscription", card.Id), map[string]any{})
	Status(t, "subscribe", code, http.StatusOK, b)
	code, _, b = me.do(t, e, "GET", "/api/v1/subscriptions", nil)
	Status(t, "subscriptions", code, http.StatusOK, b)
	subs := decode[api.CardSubscriptionList](t, b)
	if len(subs.Items) != 1 || subs.Items[0].CardId != card.Id || subs.Items[0].ProfileId != me.Profile || !subs.Items[0].Subscribed || subs.Items[0].CreatedAt == nil {
		t.Fatalf("subscriptions: %s", b)
	}
	code, _, b = cardOwner.do(t, e, "GET", "/api/v1/subscriptions", nil)
	Status(t, "other's subscriptions", code, http.StatusOK, b)
	if n := len(decode[api.CardSubscriptionList](t, b).Items); n != 0 {
		t.Fatalf("someone else's subscriptions listed: %s", b)
	}

	// Someone else's profile: refused, for all three.
	code, _, b = e.call(t, stranger.Token(), me.Profile, "GET", "/api/v1/subscriptions", nil)
	Status(t, "subscriptions as another's profile", code, http.StatusForbidden, b)
	for _, path := range []string{"outgoing-follow-requests", "blocked"} {
		code, _, b = e.call(t, stranger.Token(), 0, "GET", fmt.Sprintf("/api/v1/profiles/%d/%s", me.Profile, path), nil)
		if code != http.StatusForbidden && code != http.StatusNotFound {
			t.Fatalf("%s of another's profile: status %d: %s", path, code, b)
		}
	}
	// Anonymous: 401.
	code, _, b = e.call(t, "", 0, "GET", fmt.Sprintf("/api/v1/profiles/%d/blocked", me.Profile), nil)
	Status(t, "anonymous", code, http.StatusUnauthorized, b)
}
