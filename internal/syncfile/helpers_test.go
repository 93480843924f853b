package syncfile_test

import (
	"cmp"
	"context"
	"database/sql"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"testing"

	. "github.com/bca-app/backend/internal/syncfile"
	"github.com/bca-app/backend/internal/syncfile/syncfiletest"
)

// referenceDB is the Android app's own empty sync file (docs/sync.md §1), kept in testdata;
// TestReferenceCopyIsPinned guards it.
func referenceDB(t testing.TB) string {
	t.Helper()
	p := filepath.Join("testdata", "android-blank.sqlite")
	if _, err := os.Stat(p); err != nil {
		t.Fatalf("reference file: %v", err)
	}
	return p
}

// openRaw opens a file for the test's own queries, bypassing the package.
func openRaw(t testing.TB, path string, readOnly bool) *sql.DB {
	t.Helper()
	mode := "rw"
	if readOnly {
		mode = "ro"
	}
	db, err := sql.Open("sqlite", "file:"+path+"?mode="+mode)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return db
}

// queryStrings returns every row of query as strings ("NULL" for NULL), so rows from different
// files can be compared with reflect.DeepEqual.
func queryStrings(t testing.TB, db *sql.DB, query string, args ...any) [][]string {
	t.Helper()
	rows, err := syncfiletest.Strings(context.Background(), db, query, args...)
	if err != nil {
		t.Fatal(err)
	}
	return rows
}

// normalized returns c with every table sorted by id and empty tables as nil, the form Read
// returns.
func normalized(c Contents) Contents {
	return Contents{
		Profiles:      sortedByID(c.Profiles, func(p Profile) int64 { return p.ID }),
		Relations:     sortedByID(c.Relations, func(r Relation) int64 { return r.ID }),
		Cards:         sortedByID(c.Cards, func(c Card) int64 { return c.ID }),
		Subscriptions: sortedByID(c.Subscriptions, func(s Subscription) int64 { return s.ID }),
	}
}

func sortedByID[R any](rows []R, id func(R) int64) []R {
	if len(rows) == 0 {
		return nil
	}
	out := slices.Clone(rows)
	slices.SortFunc(out, func(a, b R) int { return cmp.Compare(id(a), id(b)) })
	return out
}

func assertContents(t testing.TB, what string, got, want Contents) {
	t.Helper()
	got, want = normalized(got), normalized(want)
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("%s: contents differ\n got: %s\nwant: %s", what, describe(got), describe(want))
	}
}

func describe(c Contents) string {
	return fmt.Sprintf("%d profiles %+v\n%d relations %+v\n%d cards %+v\n%d subscriptions %+v",
		len(c.Profiles), c.Profiles, len(c.Relations), c.Relations, len(c.Cards), c.Cards,
		len(c.Subscriptions), c.Subscriptions)
}

func ptr[T any](v T) *T { return &v }

// universe bounds the ids randomContents draws from.
type universe struct{ profiles, cards, relations, subscriptions int64 }

// randomContents draws one consistent file content from u. Each id is present with probability
// 0.7 and takes one of three variants, chosen so consecutive draws share identical rows (left
// untouched by Update), changed rows with a new commit_id, and changed rows that keep their
// commit_id (Update must compare every column, not only commit_id). Foreign keys always resolve:
// rows whose parent is absent are left out.
func randomContents(rng *rand.Rand, u universe) Contents {
	var c Contents
	present := func() (variant int, ok bool) { return rng.IntN(3), rng.IntN(10) < 7 }

	profiles := map[int64]bool{}
	for id := int64(1); id <= u.profiles; id++ {
		if v, ok := present(); ok {
			c.Profiles = append(c.Profiles, profileVariant(id, v))
			profiles[id] = true
		}
	}
	cardOwner := map[int64]int64{}
	for id := int64(1); id <= u.cards; id++ {
		v, ok := present()
		card := cardVariant(id, v, u.profiles)
		if ok && profiles[card.ProfileID] {
			c.Cards = append(c.Cards, card)
			cardOwner[id] = card.ProfileID
		}
	}
	for id := int64(1); id <= u.relations; id++ {
		v, ok := present()
		rel := relationVariant(id, v, u.profiles)
		if ok && profiles[rel.FromProfileID] && profiles[rel.ToProfileID] {
			c.Relations = append(c.Relations, rel)
		}
	}
	for id := int64(1); id <= u.subscriptions; id++ {
		v, ok := present()
		sub := subscriptionVariant(id, v, u)
		owner, cardOK := cardOwner[sub.CardID]
		sub.CardProfileID = owner
		if ok && cardOK && profiles[sub.SubscribedProfileID] {
			c.Subscriptions = append(c.Subscriptions, sub)
		}
	}
	// Input order must not matter.
	rng.Shuffle(len(c.Profiles), func(i, j int) { c.Profiles[i], c.Profiles[j] = c.Profiles[j], c.Profiles[i] })
	return c
}

func commitOf(kind string, id int64, variant int) string {
	if variant == 2 {
		variant = 0 // same version token as variant 0, different columns
	}
	return fmt.Sprintf("%s%d-%d", kind, id, variant)
}

func profileVariant(id int64, v int) Profile {
	p := Profile{
		ID: id, Name: fmt.Sprintf("profile %d", id), Data: `{"k":1}`,
		CommitID: commitOf("p", id, v), CreatedAt: 1_700_000_000 + id, ModifiedAt: 1_700_000_000 + id,
	}
	switch v {
	case 1:
		p.TeamName, p.Description = ptr("team"), ptr("")
		p.ImageURL, p.Email, p.Phone = ptr("https://img/"+fmt.Sprint(id)), ptr("a@b.c"), ptr("+1")
		p.SNS, p.Address = ptr("@x"), ptr("Seoul")
		p.DeletedAt, p.WhyDeleted = ptr(int64(1_800_000_000)), ptr("gone")
		p.ModifiedAt += 100
		p.Private = true
	case 2:
		p.Data = `{"k":2}`
		p.Email = ptr("changed@b.c")
	}
	return p
}

func cardVariant(id int64, v int, profiles int64) Card {
	c := Card{
		ID: id, Name: fmt.Sprintf("card %d", id), Data: `{}`,
		// Preview URLs repeat across cards on purpose: the file must accept that (no UNIQUE).
		PreviewURL: fmt.Sprintf("/uploads/%d.png", id%5),
		CommitID:   commitOf("c", id, v), CreatedAt: 1_600_000_000, ModifiedAt: 1_600_000_000,
		ProfileID: 1 + (id*7)%profiles,
	}
	switch v {
	case 1:
		c.DeletedAt, c.WhyDeleted, c.Private = ptr(int64(1_650_000_000)), ptr("spam"), true
	case 2:
		c.ProfileID = 1 + (id*7+1)%profiles // a foreign key column changes, commit_id does not
	}
	return c
}

func relationVariant(id int64, v int, profiles int64) Relation {
	return Relation{
		ID: id, CommitID: commitOf("r", id, v), CreatedAt: 1, ModifiedAt: int64(1 + v%2),
		Status:        RelationStatus(1 + (id+int64(v))%4),
		FromProfileID: 1 + (id*3)%profiles, ToProfileID: 1 + (id*5+int64(v))%profiles,
	}
}

func subscriptionVariant(id int64, v int, u universe) Subscription {
	return Subscription{
		ID: id, CommitID: commitOf("s", id, v), CreatedAt: 2, ModifiedAt: 2,
		CardID:              1 + (id*11+int64(v))%u.cards,
		SubscribedProfileID: 1 + (id*13)%u.profiles,
	}
}

// sizedContents returns a valid file content of about n rows, split as a typical user's file
// is: many known profiles and relations to them, cards, and subscriptions to those cards.
func sizedContents(n int) Contents {
	nProfiles := max(1, n*30/100)
	nCards := max(1, n*25/100)
	nRelations := n * 25 / 100
	nSubs := n - nProfiles - nCards - nRelations
	data := `{"title":"Director","company":"B.Ca","links":["https://example.com/a","https://example.com/b"],"bio":"Lorem ipsum dolor sit amet, consectetur adipiscing elit."}`
	var c Contents
	for i := range nProfiles {
		id := int64(i + 1)
		c.Profiles = append(c.Profiles, Profile{
			ID: id, Name: fmt.Sprintf("Profile %d", id), TeamName: ptr("Team"), Data: data,
			ImageURL: ptr(fmt.Sprintf("https://cdn.example.com/p/%d.jpg", id)),
			Email:    ptr(fmt.Sprintf("user%d@example.com", id)), Phone: ptr("+82 10 1234 5678"),
			CommitID: fmt.Sprintf("%032x", id), CreatedAt: 1_700_000_000, ModifiedAt: 1_700_000_000 + id,
			Private: id%4 == 0,
		})
	}
	for i := range nCards {
		id := int64(i + 1)
		c.Cards = append(c.Cards, Card{
			ID: id, Name: fmt.Sprintf("Card %d", id), Data: data,
			PreviewURL: fmt.Sprintf("https://cdn.example.com/c/%d.png", id),
			CommitID:   fmt.Sprintf("%032x", id), CreatedAt: 1_700_000_000, ModifiedAt: 1_700_000_000,
			ProfileID: 1 + int64(i)%int64(nProfiles),
		})
	}
	for i := range nRelations {
		id := int64(i + 1)
		c.Relations = append(c.Relations, Relation{
			ID: id, CommitID: fmt.Sprintf("%032x", id), CreatedAt: 1_700_000_000, ModifiedAt: 1_700_000_000,
			Status: RelationFollow, FromProfileID: 1, ToProfileID: 1 + int64(i)%int64(nProfiles),
		})
	}
	for i := range nSubs {
		id := int64(i + 1)
		card := c.Cards[i%nCards]
		c.Subscriptions = append(c.Subscriptions, Subscription{
			ID: id, CommitID: fmt.Sprintf("%032x", id), CreatedAt: 1_700_000_000, ModifiedAt: 1_700_000_000,
			CardProfileID: card.ProfileID, CardID: card.ID, SubscribedProfileID: 1,
		})
	}
	return c
}
