package profile

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/bca-app/backend/gen/db"
	"github.com/bca-app/backend/internal/access"
	"github.com/bca-app/backend/internal/domain"
	"github.com/bca-app/backend/internal/txn"
)

// Relation is the acting profile's relation to a target (Status None when there is none).
type Relation struct {
	From, To   int64
	Status     access.Status
	CreatedAt  *time.Time
	ModifiedAt *time.Time
}

func relationOf(r db.Relation) Relation {
	return Relation{From: r.FromProfileID, To: r.ToProfileID, Status: access.Status(r.Status), CreatedAt: &r.CreatedAt, ModifiedAt: &r.ModifiedAt}
}

// target loads the relation target as the acting profile sees it. Hidden targets (except that a
// block may always be set), and the caller's own profiles (a profile cannot relate to one of the
// same user), are refused here.
func (s *Service) target(ctx context.Context, q *db.Queries, v access.Caller, targetID int64, blocking bool) (db.GetProfileViewRow, error) {
	row, err := q.GetProfileView(ctx, db.GetProfileViewParams{ProfileID: targetID, ViewerProfileID: v.ActingProfileID, ViewerUserID: v.UserID})
	if errors.Is(err, pgx.ErrNoRows) {
		return row, domain.NotFound("The profile")
	}
	if err != nil {
		return row, fmt.Errorf("load profile %d: %w", targetID, err)
	}
	if row.Profile.UserID == v.UserID {
		return row, domain.E(domain.KindInvalid, "relation.same_user", "A profile cannot relate to another profile of the same user.")
	}
	// Admins get no special powers over relations: the acting profile is an ordinary profile.
	facts := access.FactsOf(row.Profile.UserID, row.Profile.Private, row.Live, row.FromViewer, row.ToViewer)
	if blocking && !facts.Locked {
		return row, nil
	}
	if access.Profile(access.Caller{UserID: v.UserID, ActingProfileID: v.ActingProfileID}, facts) == access.Hidden {
		return row, domain.NotFound("The profile")
	}
	return row, nil
}

// LockPair takes the pair lock of two profiles, the first lock of every transaction that changes
// something between them (relations either way, subscriptions across them): so FOLLOW, BLOCK
// and subscribe on one pair run one after the other and lock the rest in one order.
func LockPair(ctx context.Context, q *db.Queries, a, b int64) error {
	if err := q.LockProfilePair(ctx, db.LockProfilePairParams{A: a, B: b}); err != nil {
		return fmt.Errorf("lock profile pair: %w", err)
	}
	return nil
}

var lockPair = LockPair

// GetRelation reads the acting profile's relation to the target.
func (s *Service) GetRelation(ctx context.Context, v access.Caller, targetID int64) (Relation, error) {
	if _, err := s.target(ctx, s.q, v, targetID, false); err != nil {
		return Relation{}, err
	}
	r, err := s.q.GetRelation(ctx, db.GetRelationParams{FromProfileID: v.ActingProfileID, ToProfileID: targetID})
	if errors.Is(err, pgx.ErrNoRows) {
		return Relation{From: v.ActingProfileID, To: targetID}, nil
	}
	if err != nil {
		return Relation{}, fmt.Errorf("load relation: %w", err)
	}
	return relationOf(r), nil
}

// SetRelation applies FOLLOW, HIDE or BLOCK from the acting profile to the target (docs/product.md §5).
func (s *Service) SetRelation(ctx context.Context, v access.Caller, targetID int64, want access.Status) (Relation, error) {
	var out Relation
	err := s.out.Do(ctx, func(t *txn.Tx) error {
		if err := lockPair(ctx, t.Q, v.ActingProfileID, targetID); err != nil {
			return err
		}
		target, err := s.target(ctx, t.Q, v, targetID, want == access.Block)
		if err != nil {
			return err
		}
		if target.Profile.DeletedAt != nil {
			return domain.NotFound("The profile")
		}
		// The stored relation, not the effective one (target.FromViewer reads BLOCK when the
		// acting profile blocks another profile of the target's user).
		current := access.None
		if stored, err := t.Q.GetRelation(ctx, db.GetRelationParams{FromProfileID: v.ActingProfileID, ToProfileID: targetID}); err == nil {
			current = access.Status(stored.Status)
		} else if !errors.Is(err, pgx.ErrNoRows) {
			return fmt.Errorf("load relation: %w", err)
		}
		status := want
		switch want {
		case access.Follow:
			switch {
			case current.Accepted():
				status = access.Follow // HIDE → FOLLOW shows the profile again
			case current == access.FollowRequested:
				status = access.FollowRequested // still waiting for the owner
			case target.Profile.Private:
				status = access.FollowRequested
			}
		case access.Hide:
			if !current.Accepted() {
				return domain.E(domain.KindConflict, "relation.follow_required", "Only a profile you follow can be hidden.")
			}
		case access.Block:
			removed, err := t.Q.DeleteSubscriptionsBetween(ctx, db.DeleteSubscriptionsBetweenParams{A: v.ActingProfileID, B: targetID})
			if err != nil {
				return fmt.Errorf("remove subscriptions across the block: %w", err)
			}
			for _, r := range removed {
				if err := t.OwnersChanged(ctx, r.ProfileID); err != nil {
					return err
				}
			}
		default:
			return domain.Invalid("status", "must be FOLLOW, HIDE or BLOCK")
		}
		r, err := t.Q.UpsertRelation(ctx, db.UpsertRelationParams{FromProfileID: v.ActingProfileID, ToProfileID: targetID, Status: int16(status)})
		if err != nil {
			return fmt.Errorf("store relation: %w", err)
		}
		out = relationOf(r)
		// The acting profile's file gains the relation and the target row; the target's owner
		// may gain or lose sight of the acting profile (a follow grants reading back).
		return t.OwnersChanged(ctx, v.ActingProfileID, targetID)
	})
	return out, err
}

// DeleteRelation removes the acting profile's relation (unfollow, unblock, cancel a request).
func (s *Service) DeleteRelation(ctx context.Context, v access.Caller, targetID int64) error {
	return s.out.Do(ctx, func(t *txn.Tx) error {
		if err := lockPair(ctx, t.Q, v.ActingProfileID, targetID); err != nil {
			return err
		}
		_, err := t.Q.DeleteRelation(ctx, db.DeleteRelationParams{FromProfileID: v.ActingProfileID, ToProfileID: targetID})
		if errors.Is(err, pgx.ErrNoRows) {
			return domain.NotFound("The relation")
		}
		if err != nil {
			return fmt.Errorf("delete relation: %w", err)
		}
		return t.OwnersChanged(ctx, v.ActingProfileID, targetID)
	})
}

// ownTarget checks that profileID is the caller's own live profile (follow requests are the
// owner's business only).
func (s *Service) ownTarget(ctx context.Context, q *db.Queries, userID, profileID int64) error {
	p, err := q.GetOwnProfile(ctx, db.GetOwnProfileParams{ID: profileID, UserID: userID})
	if errors.Is(err, pgx.ErrNoRows) {
		return domain.Forbidden("profile.not_owner", "Only the profile's owner can manage its follow requests.")
	}
	if err != nil {
		return fmt.Errorf("load profile: %w", err)
	}
	if p.DeletedAt != nil || p.LockedAt != nil {
		return domain.NotFound("The profile")
	}
	return nil
}

// Listed is a profile in a list, with how much the viewer may see of it.
type Listed struct {
	View
	RelatedAt time.Time
	Status    access.Status
}

// ListFollowRequests lists pending requests to the caller's profile.
func (s *Service) ListFollowRequests(ctx context.Context, v access.Caller, profileID, afterID int64, limit int) ([]Listed, error) {
	if err := s.ownTarget(ctx, s.q, v.UserID, profileID); err != nil {
		return nil, err
	}
	return s.related(ctx, access.Caller{UserID: v.UserID, ActingProfileID: profileID}, profileID, true, []access.Status{access.FollowRequested}, true, afterID, limit)
}

// AcceptFollowRequest turns a pending request into FOLLOW.
func (s *Service) AcceptFollowRequest(ctx context.Context, userID, profileID, requesterID int64) (Relation, error) {
	var out Relation
	err := s.out.Do(ctx, func(t *txn.Tx) error {
		if err := lockPair(ctx, t.Q, requesterID, profileID); err != nil {
			return err
		}
		if err := s.ownTarget(ctx, t.Q, userID, profileID); err != nil {
			return err
		}
		r, err := t.Q.AcceptFollowRequest(ctx, db.AcceptFollowRequestParams{FromProfileID: requesterID, ToProfileID: profileID})
		if errors.Is(err, pgx.ErrNoRows) {
			return domain.NotFound("The follow request")
		}
		if err != nil {
			return fmt.Errorf("accept follow request: %w", err)
		}
		out = relationOf(r)
		return t.OwnersChanged(ctx, requesterID, profileID)
	})
	return out, err
}

// RejectFollowRequest removes a pending request.
func (s *Service) RejectFollowRequest(ctx context.Context, userID, profileID, requesterID int64) error {
	return s.out.Do(ctx, func(t *txn.Tx) error {
		if err := lockPair(ctx, t.Q, requesterID, profileID); err != nil {
			return err
		}
		if err := s.ownTarget(ctx, t.Q, userID, profileID); err != nil {
			return err
		}
		_, err := t.Q.RejectFollowRequest(ctx, db.RejectFollowRequestParams{FromProfileID: requesterID, ToProfileID: profileID})
		if errors.Is(err, pgx.ErrNoRows) {
			return domain.NotFound("The follow request")
		}
		if err != nil {
			return fmt.Errorf("reject follow request: %w", err)
		}
		return t.OwnersChanged(ctx, requesterID, profileID)
	})
}

// ListFollows lists followers (incoming) or followed profiles (outgoing) of a profile. The owner
// sees hidden entries too; others see plain follows only, and only when the list is public.
func (s *Service) ListFollows(ctx context.Context, v access.Caller, profileID int64, incoming bool, afterID int64, limit int) ([]Listed, error) {
	subject, facts, err := s.view(ctx, v, profileID)
	if err != nil {
		return nil, err
	}
	if !access.FollowListVisible(v, facts, subject.Profile.IsFollowListPublic) {
		return nil, domain.Forbidden("profile.follow_list_private", "This profile's follow lists are not public.")
	}
	statuses := []access.Status{access.Follow}
	owner := subject.Mine || v.Admin
	if owner {
		statuses = append(statuses, access.Hide)
	}
	return s.related(ctx, v, profileID, incoming, statuses, owner, afterID, limit)
}

func (s *Service) related(ctx context.Context, v access.Caller, profileID int64, incoming bool, statuses []access.Status, includeDeleted bool, afterID int64, limit int) ([]Listed, error) {
	st := make([]int16, len(statuses))
	for i, x := range statuses {
		st[i] = int16(x)
	}
	rows, err := s.q.ListRelatedProfiles(ctx, db.ListRelatedProfilesParams{
		Incoming: incoming, ViewerProfileID: v.ActingProfileID, ViewerUserID: v.UserID, ProfileID: profileID, Statuses: st,
		AfterID: afterID, IncludeDeleted: includeDeleted, MaxRows: int32(limit),
	})
	if err != nil {
		return nil, fmt.Errorf("list related profiles: %w", err)
	}
	out := make([]Listed, 0, len(rows))
	for _, r := range rows {
		// live: the query joins live_profiles.
		vis := access.Profile(v, access.FactsOf(r.Profile.UserID, r.Profile.Private, true, r.FromViewer, r.ToViewer))
		if vis == access.Hidden {
			continue // e.g. the listed profile blocks the viewer
		}
		out = append(out, Listed{View: View{Profile: r.Profile, Visibility: vis, Mine: r.Profile.UserID == v.UserID}, RelatedAt: r.RelatedAt, Status: access.Status(r.RelationStatus)})
	}
	return out, nil
}
