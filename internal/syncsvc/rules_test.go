package syncsvc_test

import (
	"slices"
	"testing"

	"github.com/bca-app/backend/internal/syncfile"
	"github.com/bca-app/backend/internal/syncsvc/synctest"
)

// Relation statuses as the database and the file number them.
const (
	follow          = 1
	hide            = 2
	block           = 3
	followRequested = 4
)

// scenario is a small world around user U exercising every rule of docs/sync.md §2.
type scenario struct {
	u, v, gone int64 // U; another user V; a deactivated user

	a, a2      int64 // U's live profiles (a public, a2 private)
	tomb, old  int64 // U's deleted profiles: 10 days ago (tombstone) and 40 days ago (gone)
	lockedOwn  int64 // U's locked profile
	pub, priv  int64 // V's public profile; V's private profile nobody follows
	followed   int64 // V's private profile a follows (accepted), but a blocks followsA, also V's
	requested  int64 // V's private profile a asked to follow (pending)
	blocker    int64 // V's public profile that blocks a and a2 (a follows it)
	blocksA    int64 // V's public profile that blocks only a (a follows it): a BLOCK covers all of U
	followsA   int64 // V's private profile that follows a (a blocks it)
	lockedV    int64 // V's locked profile a follows
	goneP      int64 // the deactivated user's profile a follows
	hiddenOnly int64 // V's private profile a2 hides (HIDE still follows)

	ownCard, ownDeletedCard, ownLockedCard int64
	pubCard, deletedCard, lockedCard       int64 // on pub; a subscribes to all three
	privProfileCard                        int64 // on priv; a subscribes to it
}

func buildScenario(t *testing.T, e *synctest.Env) scenario {
	t.Helper()
	w := e.NewWorld()
	var s scenario
	s.u, s.v, s.gone = w.User(t), w.User(t), w.User(t)

	s.a = w.Profile(t, s.u, synctest.ProfileSpec{Name: "A", Data: `{"phone": {"index": 1, "value": {"home": {"index": 3, "value": "+82 2 000"}, "mobile": {"index": 0, "value": "+82 10 111"}}}, "email": {"index": 0, "value": {"work": {"index": 0, "value": "a@x.test"}}}}`})
	s.a2 = w.Profile(t, s.u, synctest.ProfileSpec{Name: "A2", Private: true})
	s.tomb = w.Profile(t, s.u, synctest.ProfileSpec{Name: "tombstone"})
	s.old = w.Profile(t, s.u, synctest.ProfileSpec{Name: "long gone"})
	s.lockedOwn = w.Profile(t, s.u, synctest.ProfileSpec{Name: "locked own"})

	s.pub = w.Profile(t, s.v, synctest.ProfileSpec{Name: "Pub", Data: `{"sns": {"index": 0, "value": {"x": {"index": 0, "value": "@pub"}}}}`})
	s.priv = w.Profile(t, s.v, synctest.ProfileSpec{Name: "Priv", Private: true, Data: `{"email": {"index": 0, "value": {"w": {"index": 0, "value": "secret@x.test"}}}}`})
	s.followed = w.Profile(t, s.v, synctest.ProfileSpec{Name: "Followed", Private: true, Data: `{"email": {"index": 0, "value": {"w": {"index": 0, "value": "f@x.test"}}}}`})
	s.requested = w.Profile(t, s.v, synctest.ProfileSpec{Name: "Requested", Private: true, Data: `{"email": {"index": 0, "value": {"w": {"index": 0, "value": "r@x.test"}}}}`})
	s.blocker = w.Profile(t, s.v, synctest.ProfileSpec{Name: "Blocker", Data: `{"email": {"index": 0, "value": {"w": {"index": 0, "value": "b@x.test"}}}}`})
	s.blocksA = w.Profile(t, s.v, synctest.ProfileSpec{Name: "BlocksA", Data: `{"email": {"index": 0, "value": {"w": {"index": 0, "value": "ba@x.test"}}}}`})
	s.followsA = w.Profile(t, s.v, synctest.ProfileSpec{Name: "FollowsA", Private: true, Data: `{"email": {"index": 0, "value": {"w": {"index": 0, "value": "fa@x.test"}}}}`})
	s.lockedV = w.Profile(t, s.v, synctest.ProfileSpec{Name: "LockedV"})
	s.hiddenOnly = w.Profile(t, s.v, synctest.ProfileSpec{Name: "Hidden", Private: true, Data: `{"email": {"index": 0, "value": {"w": {"index": 0, "value": "h@x.test"}}}}`})
	s.goneP = w.Profile(t, s.gone, synctest.ProfileSpec{Name: "Deactivated"})

	w.Relate(t, s.a, s.pub, follow)
	w.Relate(t, s.a, s.followed, follow)
	w.Relate(t, s.a, s.requested, followRequested)
	w.Relate(t, s.a, s.blocker, follow)
	w.Relate(t, s.blocker, s.a, block)
	w.Relate(t, s.blocker, s.a2, block)
	w.Relate(t, s.a, s.blocksA, follow)
	w.Relate(t, s.blocksA, s.a, block)
	w.Relate(t, s.a, s.followsA, block)
	w.Relate(t, s.followsA, s.a, follow)
	w.Relate(t, s.a, s.lockedV, follow)
	w.Relate(t, s.a, s.goneP, follow)
	w.Relate(t, s.a2, s.hiddenOnly, hide)
	w.Relate(t, s.lockedOwn, s.pub, follow)
	w.Relate(t, s.pub, s.a, follow) // incoming: not in U's file
	w.Relate(t, s.tomb, s.priv, followRequested)

	s.ownCard = w.Card(t, s.a, false)
	s.ownDeletedCard = w.Card(t, s.a, false)
	s.ownLockedCard = w.Card(t, s.a, false)
	s.pubCard = w.Card(t, s.pub, false)
	s.deletedCard = w.Card(t, s.pub, false)
	s.lockedCard = w.Card(t, s.pub, false)
	s.privProfileCard = w.Card(t, s.priv, true)
	for _, c := range []int64{s.pubCard, s.deletedCard, s.lockedCard, s.privProfileCard} {
		w.Subscribe(t, s.a, c)
	}

	w.Exec(t, []int64{s.tomb}, nil, `UPDATE profiles SET deleted_at = now() - interval '10 days', why_deleted = 'DELETE_REQUESTED', version = version + 1 WHERE id = $1`, s.tomb)
	w.Exec(t, []int64{s.old}, nil, `UPDATE profiles SET deleted_at = now() - interval '40 days', version = version + 1 WHERE id = $1`, s.old)
	w.Exec(t, []int64{s.lockedOwn, s.lockedV}, nil, `UPDATE profiles SET locked_at = now() WHERE id = ANY($1)`, []int64{s.lockedOwn, s.lockedV})
	w.Exec(t, []int64{s.goneP}, nil, `UPDATE users SET deactivated_at = now() WHERE id = $1`, s.gone)
	w.Exec(t, nil, []int64{s.ownDeletedCard, s.deletedCard}, `UPDATE cards SET deleted_at = now(), why_deleted = 'DELETE_REQUESTED', version = version + 1 WHERE id = ANY($1)`,
		[]int64{s.ownDeletedCard, s.deletedCard})
	w.Exec(t, nil, []int64{s.ownLockedCard, s.lockedCard}, `UPDATE cards SET locked_at = now() WHERE id = ANY($1)`, []int64{s.ownLockedCard, s.lockedCard})
	return s
}

func TestSyncFileContentsFollowTheRules(t *testing.T) {
	e := synctest.New(t, synctest.Options{})
	s := buildScenario(t, e)

	f, err := e.Svc.Current(ctx, s.u)
	if err != nil {
		t.Fatal(err)
	}
	if f.Pending {
		t.Error("a file built on request from the current database owes nothing")
	}
	c := e.Published(t, s.u)
	if want := e.Want(t, s.u); !synctest.Equal(c, want) {
		t.Fatalf("published file differs from a fresh build:\n%s\nwant\n%s", synctest.Describe(c), synctest.Describe(want))
	}
	t.Logf("U's file:\n%s", synctest.Describe(c))

	profiles := map[int64]syncfile.Profile{}
	for _, p := range c.Profiles {
		profiles[p.ID] = p
	}
	full := func(id int64, what string) syncfile.Profile {
		t.Helper()
		p, ok := profiles[id]
		if !ok {
			t.Fatalf("%s (%d) is missing", what, id)
		}
		return p
	}
	redacted := func(id int64, what string) {
		t.Helper()
		p, ok := profiles[id]
		if !ok {
			t.Fatalf("%s (%d) is missing", what, id)
		}
		if p.Data != "{}" || !p.Private || p.Email != nil || p.Phone != nil || p.SNS != nil || p.Address != nil ||
			p.TeamName != nil || p.Description != nil || p.WhyDeleted != nil || p.Name == "" || p.CommitID == "" {
			t.Errorf("%s (%d) should be redacted: %+v", what, id, p)
		}
	}
	absent := func(id int64, what string) {
		t.Helper()
		if _, ok := profiles[id]; ok {
			t.Errorf("%s (%d) must not be in the file", what, id)
		}
	}

	// Own profiles, with main contacts derived from data and data as compact JSON.
	a := full(s.a, "own profile")
	if a.Phone == nil || *a.Phone != "+82 10 111" || a.Email == nil || *a.Email != "a@x.test" {
		t.Errorf("main contacts of A: phone %v email %v", a.Phone, a.Email)
	}
	if a.CommitID != "1" || a.DeletedAt != nil || a.Private {
		t.Errorf("own profile columns: %+v", a)
	}
	if want := `{"email":{"index":0,"value":{"work":{"index":0,"value":"a@x.test"}}},"phone":{"index":1,"value":{"home":{"index":3,"value":"+82 2 000"},"mobile":{"index":0,"value":"+82 10 111"}}}}`; a.Data != want {
		t.Errorf("data is not compact JSON of the stored object:\n got %s\nwant %s", a.Data, want)
	}
	full(s.a2, "own private profile")
	tomb := full(s.tomb, "own deleted profile (10 days)")
	if tomb.DeletedAt == nil || tomb.WhyDeleted == nil || tomb.CommitID != "2" {
		t.Errorf("tombstone: %+v", tomb)
	}
	absent(s.old, "own profile deleted 40 days ago")
	absent(s.lockedOwn, "own locked profile")

	// Targets of relations.
	if p := full(s.pub, "followed public profile"); p.SNS == nil || *p.SNS != "@pub" {
		t.Errorf("public profile's main sns: %v", p.SNS)
	}
	// a blocks followsA, a profile of V: the BLOCK covers every profile of V (docs/product.md §5),
	// so a's follow of V's private profile grants nothing any more.
	redacted(s.followed, "private profile a follows, of a user a blocks")
	redacted(s.requested, "private profile with a pending request")
	redacted(s.blocker, "profile that blocks all of U's profiles")
	// A BLOCK of one profile of U covers U (docs/product.md §5): A2 may not read it either.
	redacted(s.blocksA, "profile that blocks only A")
	if p := full(s.followsA, "private profile that follows A"); p.Email == nil || *p.Email != "fa@x.test" {
		t.Errorf("a private profile that follows one of U's profiles is readable: %+v", p)
	}
	if p := full(s.hiddenOnly, "private profile A2 hides (still follows)"); p.Email == nil || *p.Email != "h@x.test" {
		t.Errorf("HIDE still follows: %+v", p)
	}
	absent(s.lockedV, "locked relation target")
	absent(s.goneP, "deactivated user's profile")
	redacted(s.priv, "owner of a subscribed card U may not read")

	relations := map[[2]int64]syncfile.RelationStatus{}
	for _, r := range c.Relations {
		relations[[2]int64{r.FromProfileID, r.ToProfileID}] = r.Status
	}
	wantRelations := map[[2]int64]syncfile.RelationStatus{
		{s.a, s.pub}: follow, {s.a, s.followed}: follow, {s.a, s.requested}: followRequested,
		{s.a, s.blocker}: follow, {s.a, s.blocksA}: follow, {s.a, s.followsA}: block, {s.a2, s.hiddenOnly}: hide,
		{s.tomb, s.priv}: followRequested,
	}
	if len(relations) != len(wantRelations) {
		t.Errorf("relations: got %v, want %v", relations, wantRelations)
	}
	for k, st := range wantRelations {
		if relations[k] != st {
			t.Errorf("relation %v: status %d, want %d", k, relations[k], st)
		}
	}

	cards := map[int64]syncfile.Card{}
	for _, k := range c.Cards {
		cards[k.ID] = k
	}
	ids := slices.Sorted(func(yield func(int64) bool) {
		for id := range cards {
			if !yield(id) {
				return
			}
		}
	})
	if want := []int64{s.ownCard, s.pubCard, s.deletedCard, s.privProfileCard}; !slices.Equal(ids, want) {
		t.Errorf("cards: got %v, want own live %d, subscribed %d, subscribed deleted %d, subscribed private %d", ids, want[0], want[1], want[2], want[3])
	}
	if k := cards[s.deletedCard]; k.DeletedAt == nil || k.WhyDeleted == nil || k.CommitID != "2" {
		t.Errorf("a deleted subscribed card is a tombstone: %+v", k)
	}
	if k := cards[s.ownCard]; k.Data != `{"n":1,"title":"t"}` || k.PreviewURL != "" || k.ProfileID != s.a {
		t.Errorf("own card columns: %+v", k)
	}
	var subscribed []int64
	for _, sub := range c.Subscriptions {
		if sub.SubscribedProfileID != s.a {
			t.Errorf("subscription of another profile: %+v", sub)
		}
		subscribed = append(subscribed, sub.CardID)
	}
	slices.Sort(subscribed)
	if want := []int64{s.pubCard, s.deletedCard, s.privProfileCard}; !slices.Equal(subscribed, want) {
		t.Errorf("subscriptions to cards %v, want %v (never the locked card)", subscribed, want)
	}
}

// TestSyncOtherUsersFilesSeeTheirOwnSide checks the rules from the other end: V's file holds V's
// profiles (the locked one not even for its owner) and none of U's, and the deactivated user's
// file is empty.
func TestSyncOtherUsersFilesSeeTheirOwnSide(t *testing.T) {
	e := synctest.New(t, synctest.Options{})
	s := buildScenario(t, e)

	v := e.Want(t, s.v)
	var ids []int64
	for _, p := range v.Profiles {
		ids = append(ids, p.ID)
	}
	slices.Sort(ids)
	want := []int64{s.pub, s.priv, s.followed, s.requested, s.blocker, s.blocksA, s.followsA, s.hiddenOnly, s.a, s.a2}
	slices.Sort(want)
	if !slices.Equal(ids, want) {
		t.Errorf("V's profiles: got %v, want V's unlocked ones and A (target of Pub and Blocker)\n%s", ids, synctest.Describe(v))
	}
	if gone := e.Want(t, s.gone); len(gone.Profiles)+len(gone.Relations)+len(gone.Cards)+len(gone.Subscriptions) != 0 {
		t.Errorf("a deactivated user's file is empty:\n%s", synctest.Describe(gone))
	}
}
