package syncsvc

import (
	"bytes"
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/bca-app/backend/gen/db"
	"github.com/bca-app/backend/internal/access"
	"github.com/bca-app/backend/internal/files"
	"github.com/bca-app/backend/internal/profile"
	"github.com/bca-app/backend/internal/syncfile"
	"github.com/bca-app/backend/internal/txn"
)

// TombstoneTTL is how long a user's own deleted profile stays in their file (docs/sync.md §2).
const TombstoneTTL = 30 * 24 * time.Hour

// Snapshot is what one user's file must hold at a version: the rows of docs/sync.md §2 read in one
// consistent view of the database, together with the wanted_version that view had. Every change
// up to Version is in Contents (bumps commit with the changes they announce).
type Snapshot struct {
	UserID   int64
	Version  int64
	At       time.Time // the database's time when the view was taken
	Contents syncfile.Contents
}

// Snapshot reads what userID's file must hold now. It is the one definition of a file's rows:
// every build, full or incremental, by the worker or on request, starts from it.
func (s *Service) Snapshot(ctx context.Context, userID int64) (Snapshot, error) {
	snap := Snapshot{UserID: userID}
	read := txn.Runner{Pool: s.pool, Options: pgx.TxOptions{IsoLevel: pgx.RepeatableRead, AccessMode: pgx.ReadOnly}}
	err := read.Do(ctx, func(t *txn.Tx) error {
		// The first statement fixes the transaction's view, so wanted_version and the rows below
		// belong together; now() is the transaction's start, a lower bound of that view's time.
		var err error
		if snap.At, err = t.Q.SyncSnapshotTime(ctx); err != nil {
			return err
		}
		st, err := t.Q.GetSyncState(ctx, userID)
		switch {
		case errors.Is(err, pgx.ErrNoRows):
			snap.Version = 0
		case err != nil:
			return fmt.Errorf("state: %w", err)
		default:
			snap.Version = st.WantedVersion
		}
		snap.Contents, err = readContents(ctx, t.Q, userID)
		return err
	})
	if err != nil {
		return Snapshot{}, fmt.Errorf("sync snapshot of user %d: %w", userID, err)
	}
	return snap, nil
}

// readContents selects the rows of user U's file (docs/sync.md §2) with q, which must see one
// consistent view of the database.
func readContents(ctx context.Context, q *db.Queries, userID int64) (syncfile.Contents, error) {
	var c syncfile.Contents
	own, err := q.SyncOwnProfiles(ctx, db.SyncOwnProfilesParams{UserID: userID, TombstoneMs: TombstoneTTL.Milliseconds()})
	if err != nil {
		return c, fmt.Errorf("own profiles: %w", err)
	}
	ownIDs := make([]int64, 0, len(own))
	liveIDs := make([]int64, 0, len(own)) // the profiles U can act as: the viewers of §2's rule
	isOwn := make(map[int64]bool, len(own))
	for _, p := range own {
		ownIDs = append(ownIDs, p.ID)
		isOwn[p.ID] = true
		if p.DeletedAt == nil {
			liveIDs = append(liveIDs, p.ID)
		}
		c.Profiles = append(c.Profiles, fullProfile(profileRow{
			ID: p.ID, Name: p.Name, TeamName: p.TeamName, Description: p.Description, Data: p.Data,
			ImageFileKey: p.ImageFileKey, Private: p.Private, Version: p.Version, CreatedAt: p.CreatedAt,
			ModifiedAt: p.ModifiedAt, DeletedAt: p.DeletedAt, WhyDeleted: p.WhyDeleted,
		}))
	}

	relations, err := q.SyncRelationsFrom(ctx, ownIDs)
	if err != nil {
		return c, fmt.Errorf("relations: %w", err)
	}
	subs, err := q.SyncSubscriptionsOf(ctx, ownIDs)
	if err != nil {
		return c, fmt.Errorf("subscriptions: %w", err)
	}
	// Profiles the file refers to that are not P(U): relation targets and owners of subscribed
	// cards. The queries above already left out the locked ones.
	var otherIDs []int64
	fromViewer := map[[2]int64]access.Status{} // (A, T) → A's relation to T, A one of U's profiles
	for _, r := range relations {
		c.Relations = append(c.Relations, syncfile.Relation{
			ID: r.ID, CommitID: commitID(r.Version), CreatedAt: r.CreatedAt.Unix(), ModifiedAt: r.ModifiedAt.Unix(),
			Status: syncfile.RelationStatus(r.Status), FromProfileID: r.FromProfileID, ToProfileID: r.ToProfileID,
		})
		fromViewer[[2]int64{r.FromProfileID, r.ToProfileID}] = access.Status(r.Status)
		if !isOwn[r.ToProfileID] {
			otherIDs = append(otherIDs, r.ToProfileID)
		}
	}
	cardIDs := make([]int64, 0, len(subs))
	for _, sub := range subs {
		c.Subscriptions = append(c.Subscriptions, syncfile.Subscription{
			ID: sub.ID, CommitID: commitID(sub.Version), CreatedAt: sub.CreatedAt.Unix(), ModifiedAt: sub.ModifiedAt.Unix(),
			CardProfileID: sub.CardProfileID, CardID: sub.CardID, SubscribedProfileID: sub.ProfileID,
		})
		cardIDs = append(cardIDs, sub.CardID)
		if !isOwn[sub.CardProfileID] {
			otherIDs = append(otherIDs, sub.CardProfileID)
		}
	}

	cards, err := q.SyncCards(ctx, db.SyncCardsParams{OwnerProfileIds: ownIDs, CardIds: dedupe(cardIDs)})
	if err != nil {
		return c, fmt.Errorf("cards: %w", err)
	}
	for _, k := range cards {
		c.Cards = append(c.Cards, syncfile.Card{
			ID: k.ID, Name: k.Name, Data: compactJSON(k.Data), PreviewURL: valueOr(files.OptionalURL(k.PreviewFileKey), ""),
			CommitID: commitID(k.Version), CreatedAt: k.CreatedAt.Unix(), ModifiedAt: k.ModifiedAt.Unix(),
			DeletedAt: unixOrNil(k.DeletedAt), WhyDeleted: k.WhyDeleted, Private: k.Private, ProfileID: k.ProfileID,
		})
	}

	otherIDs = dedupe(otherIDs)
	others, err := q.SyncProfilesByID(ctx, otherIDs)
	if err != nil {
		return c, fmt.Errorf("referenced profiles: %w", err)
	}
	// All of U's profiles, deleted ones too: a BLOCK of any of them blocks U (docs/product.md §5).
	towards, err := q.SyncRelationsTowards(ctx, db.SyncRelationsTowardsParams{FromIds: otherIDs, ToIds: ownIDs})
	if err != nil {
		return c, fmt.Errorf("relations towards own profiles: %w", err)
	}
	toViewer := make(map[[2]int64]access.Status, len(towards)) // (A, T) → T's relation to A
	for _, r := range towards {
		toViewer[[2]int64{r.ToProfileID, r.FromProfileID}] = access.Status(r.Status)
		if access.Status(r.Status) == access.Block {
			toViewer[[2]int64{0, r.FromProfileID}] = access.Block // T blocks U: every A of U
		}
	}
	// The same rule the other way (relation_towards in SQL): A blocking one profile of a user
	// blocks all of that user's profiles.
	userOf := make(map[int64]int64, len(others))
	for _, p := range others {
		userOf[p.ID] = p.UserID
	}
	blocksUser := map[[2]int64]bool{} // (A, user) → A blocks a profile of that user
	for k, st := range fromViewer {
		if u, ok := userOf[k[1]]; ok && st == access.Block {
			blocksUser[[2]int64{k[0], u}] = true
		}
	}
	for k := range blocksUser {
		for _, p := range others {
			if p.UserID == k[1] {
				fromViewer[[2]int64{k[0], p.ID}] = access.Block
			}
		}
	}
	for _, p := range others {
		row := profileRow{
			ID: p.ID, Name: p.Name, TeamName: p.TeamName, Description: p.Description, Data: p.Data,
			ImageFileKey: p.ImageFileKey, Private: p.Private, Version: p.Version, CreatedAt: p.CreatedAt,
			ModifiedAt: p.ModifiedAt, DeletedAt: p.DeletedAt, WhyDeleted: p.WhyDeleted,
		}
		// Only live profiles reach the file; the relations are filled in per acting profile.
		facts := access.FactsOf(p.UserID, p.Private, true, 0, 0)
		if visibility(userID, liveIDs, p.ID, facts, fromViewer, toViewer) == access.Full {
			c.Profiles = append(c.Profiles, fullProfile(row))
		} else {
			c.Profiles = append(c.Profiles, redactedProfile(row))
		}
	}
	sortContents(&c)
	return c, nil
}

// visibility applies access.Profile (docs/product.md §4) for each profile U can act as: the file
// shows T in full if any of them may read it fully. A user without a live profile reads as a
// signed-in user acting as nobody. Hidden (T blocks U) is shown redacted, never left out: the
// file must still resolve U's relation to T.
func visibility(userID int64, liveIDs []int64, target int64, facts access.ProfileFacts,
	fromViewer, toViewer map[[2]int64]access.Status) access.Visibility {
	blocked := toViewer[[2]int64{0, target}] == access.Block // T blocks one of U's profiles
	if len(liveIDs) == 0 {
		if blocked {
			facts.ToViewer = access.Block
		}
		return access.Profile(access.Caller{UserID: userID}, facts)
	}
	best := access.Hidden
	for _, a := range liveIDs {
		f := facts
		f.FromViewer = fromViewer[[2]int64{a, target}]
		f.ToViewer = toViewer[[2]int64{a, target}]
		if blocked {
			f.ToViewer = access.Block
		}
		best = max(best, access.Profile(access.Caller{UserID: userID, ActingProfileID: a}, f))
		if best == access.Full {
			break
		}
	}
	return best
}

// profileRow is the profile columns both profile queries return.
type profileRow struct {
	ID                    int64
	Name                  string
	TeamName, Description *string
	Data                  []byte
	ImageFileKey          *string
	Private               bool
	Version               int64
	CreatedAt, ModifiedAt time.Time
	DeletedAt             *time.Time
	WhyDeleted            *string
}

func fullProfile(p profileRow) syncfile.Profile {
	main := profile.MainContacts(p.Data)
	return syncfile.Profile{
		ID: p.ID, Name: p.Name, TeamName: p.TeamName, Description: p.Description, Data: compactJSON(p.Data),
		ImageURL: files.OptionalURL(p.ImageFileKey), Email: main.Email, Phone: main.Phone, SNS: main.SNS, Address: main.Address,
		CommitID: commitID(p.Version), CreatedAt: p.CreatedAt.Unix(), ModifiedAt: p.ModifiedAt.Unix(),
		DeletedAt: unixOrNil(p.DeletedAt), WhyDeleted: p.WhyDeleted, Private: p.Private,
	}
}

// redactedProfile is what a user who may not read the profile learns (docs/sync.md §2): that it
// exists, its name, image and timestamps, and that it is private.
func redactedProfile(p profileRow) syncfile.Profile {
	return syncfile.Profile{
		ID: p.ID, Name: p.Name, Data: "{}", ImageURL: files.OptionalURL(p.ImageFileKey), CommitID: commitID(p.Version),
		CreatedAt: p.CreatedAt.Unix(), ModifiedAt: p.ModifiedAt.Unix(), DeletedAt: unixOrNil(p.DeletedAt), Private: true,
	}
}

// commitID is the row's version as the API's ETag carries it, without the quotes.
func commitID(version int64) string { return strconv.FormatInt(version, 10) }

// compactJSON writes stored JSON without insignificant whitespace (PostgreSQL's jsonb output
// has spaces after separators). The value was validated on the way in; if it somehow is not
// JSON, "{}" keeps the file readable.
func compactJSON(raw []byte) string {
	var b bytes.Buffer
	if err := json.Compact(&b, raw); err != nil {
		return "{}"
	}
	return b.String()
}

func unixOrNil(t *time.Time) *int64 {
	if t == nil {
		return nil
	}
	u := t.Unix()
	return &u
}

func valueOr[T any](p *T, def T) T {
	if p == nil {
		return def
	}
	return *p
}

func dedupe(ids []int64) []int64 {
	out := slices.Clone(ids)
	slices.Sort(out)
	return slices.Compact(out)
}

// sortContents orders every table by id, so equal contents always give a byte-identical full
// build (and an unchanged ETag).
func sortContents(c *syncfile.Contents) {
	slices.SortFunc(c.Profiles, func(a, b syncfile.Profile) int { return cmp.Compare(a.ID, b.ID) })
	slices.SortFunc(c.Relations, func(a, b syncfile.Relation) int { return cmp.Compare(a.ID, b.ID) })
	slices.SortFunc(c.Cards, func(a, b syncfile.Card) int { return cmp.Compare(a.ID, b.ID) })
	slices.SortFunc(c.Subscriptions, func(a, b syncfile.Subscription) int { return cmp.Compare(a.ID, b.ID) })
}
