package profile

import (
	"context"
	"errors"
	"fmt"
	"strconv"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/bca-app/backend/gen/db"
	"github.com/bca-app/backend/internal/access"
	"github.com/bca-app/backend/internal/domain"
	"github.com/bca-app/backend/internal/files"
	"github.com/bca-app/backend/internal/outbox"
	"github.com/bca-app/backend/internal/txn"
)

// LeaveChatsFunc ends a profile's chat participations inside the deleting transaction.
type LeaveChatsFunc func(ctx context.Context, t *txn.Tx, profileID int64) error

// Service implements profiles and relations.
type Service struct {
	q          *db.Queries
	out        txn.Runner
	files      *files.Service
	leaveChats LeaveChatsFunc
}

// Deps are the collaborators of the Service.
type Deps struct {
	Pool *pgxpool.Pool // required
	// Notifier hears the sync bumps after commit; nil drops them (the worker polls the table).
	Notifier outbox.Notifier
	// Files releases replaced images; nil only where no image is ever set (package tests).
	Files *files.Service
	// LeaveChats, nil when chat is not wired, ends a deleted profile's chat participations.
	LeaveChats LeaveChatsFunc
}

// New wires a Service; it refuses missing required dependencies.
func New(d Deps) (*Service, error) {
	if err := domain.RequireDeps("profile", map[string]any{"Pool": d.Pool}); err != nil {
		return nil, err
	}
	return &Service{q: db.New(d.Pool), out: txn.Runner{Pool: d.Pool, Notifier: d.Notifier}, files: d.Files, leaveChats: d.LeaveChats}, nil
}

// View is a profile as one viewer may see it.
type View struct {
	Profile    db.Profile
	Visibility access.Visibility
	Mine       bool
}

// ETag is the strong entity tag of the view: the version, marked when redacted so a viewer
// whose access changes never gets a 304 for the other representation.
func (v View) ETag() string {
	if v.Visibility == access.Redacted {
		return `"` + strconv.FormatInt(v.Profile.Version, 10) + `-r"`
	}
	return domain.ETag(v.Profile.Version)
}

// Get returns a profile as the viewer may see it, or not found.
func (s *Service) Get(ctx context.Context, v access.Caller, profileID int64) (View, error) {
	view, _, err := s.view(ctx, v, profileID)
	return view, err
}

func (s *Service) view(ctx context.Context, v access.Caller, profileID int64) (View, access.ProfileFacts, error) {
	row, err := s.q.GetProfileView(ctx, db.GetProfileViewParams{ProfileID: profileID, ViewerProfileID: v.ActingProfileID, ViewerUserID: v.UserID})
	if errors.Is(err, pgx.ErrNoRows) {
		return View{}, access.ProfileFacts{}, domain.NotFound("The profile")
	}
	if err != nil {
		return View{}, access.ProfileFacts{}, fmt.Errorf("load profile %d: %w", profileID, err)
	}
	facts := access.FactsOf(row.Profile.UserID, row.Profile.Private, row.Live, row.FromViewer, row.ToViewer)
	view := View{Profile: row.Profile, Mine: row.Profile.UserID == v.UserID, Visibility: access.Profile(v, facts)}
	if view.Visibility == access.Hidden {
		return View{}, facts, domain.NotFound("The profile")
	}
	return view, facts, nil
}

// ListMine pages through the caller's profiles, deleted ones included.
func (s *Service) ListMine(ctx context.Context, userID, afterID int64, limit int) ([]db.Profile, error) {
	rows, err := s.q.ListProfilesOfUser(ctx, db.ListProfilesOfUserParams{UserID: userID, AfterID: afterID, MaxRows: int32(limit)})
	if err != nil {
		return nil, fmt.Errorf("list profiles: %w", err)
	}
	return rows, nil
}

// CreateMine creates a profile of the caller.
func (s *Service) CreateMine(ctx context.Context, userID int64, in CreateInput) (db.Profile, error) {
	var p db.Profile
	err := s.out.Do(ctx, func(t *txn.Tx) error {
		var err error
		if p, err = Create(ctx, t.Q, userID, in); err != nil {
			return err
		}
		return t.OwnersChanged(ctx, p.ID)
	})
	return p, err
}

// UpdateInput is a partial change; nil fields stay, an empty team name or description clears it.
type UpdateInput struct {
	Name, TeamName, Description                     *string
	Data                                            any
	Private, CanAnonymousInvite, IsFollowListPublic *bool
}

// Update changes the caller's profile if ifMatch names its current version.
func (s *Service) Update(ctx context.Context, userID, profileID int64, ifMatch *string, in UpdateInput) (db.Profile, error) {
	version, err := domain.IfMatch(ifMatch)
	if err != nil {
		return db.Profile{}, err
	}
	params := db.UpdateProfileParams{ID: profileID, UserID: userID, Version: version,
		Private: in.Private, CanAnonymousInvite: in.CanAnonymousInvite, IsFollowListPublic: in.IsFollowListPublic}
	if in.Name != nil {
		name, err := domain.Name("name", *in.Name, domain.MaxNameLength)
		if err != nil {
			return db.Profile{}, err
		}
		params.Name = &name
	}
	params.SetTeamName, params.TeamName = optionalText(in.TeamName, true)
	params.SetDescription, params.Description = optionalText(in.Description, false)
	if in.Data != nil {
		raw, err := domain.JSONObjectOf("data", in.Data)
		if err != nil {
			return db.Profile{}, err
		}
		params.Data = raw
	}
	var p db.Profile
	err = s.out.Do(ctx, func(t *txn.Tx) error {
		return domain.Conditional(version, func() (int64, error) { return s.lockOwn(ctx, t.Q, userID, profileID) }, func(current int64) error {
			params.Version = current
			var err error
			if p, err = t.Q.UpdateProfile(ctx, params); err != nil {
				return fmt.Errorf("update profile: %w", err)
			}
			return t.ProfilesChanged(ctx, p.ID)
		})
	})
	return p, err
}

// optionalText maps "absent" to unchanged and "" to cleared.
func optionalText(v *string, clean bool) (bool, *string) {
	if v == nil {
		return false, nil
	}
	s := *v
	if clean {
		s = domain.CleanName(s)
	}
	if s == "" {
		return true, nil
	}
	return true, &s
}

// lockOwn takes the row lock of the caller's live profile for a conditional write and returns
// its version; absent, someone else's or deleted is 404.
func (s *Service) lockOwn(ctx context.Context, q *db.Queries, userID, profileID int64) (int64, error) {
	cur, err := q.LockOwnProfileForUpdate(ctx, db.LockOwnProfileForUpdateParams{ID: profileID, UserID: userID})
	if err != nil {
		return 0, s.ownError(err)
	}
	if cur.DeletedAt != nil {
		return 0, domain.NotFound("The profile")
	}
	return cur.Version, nil
}

func (s *Service) ownError(err error) error {
	if errors.Is(err, pgx.ErrNoRows) {
		return domain.NotFound("The profile")
	}
	return fmt.Errorf("load own profile: %w", err)
}

// Delete soft-deletes the caller's profile: its cards are deleted, its chat participations end,
// and everyone whose file holds it receives the tombstone.
func (s *Service) Delete(ctx context.Context, userID, profileID int64, ifMatch *string) error {
	version, err := domain.IfMatch(ifMatch)
	if err != nil {
		return err
	}
	return s.out.Do(ctx, func(t *txn.Tx) error {
		var p db.Profile
		err := domain.Conditional(version, func() (int64, error) { return s.lockOwn(ctx, t.Q, userID, profileID) }, func(current int64) error {
			var err error
			if p, err = t.Q.SoftDeleteProfile(ctx, db.SoftDeleteProfileParams{ID: profileID, UserID: userID, Version: current}); err != nil {
				return fmt.Errorf("delete profile: %w", err)
			}
			return nil
		})
		if err != nil {
			return err
		}
		cardIDs, err := t.Q.SoftDeleteCardsOfProfile(ctx, p.ID)
		if err != nil {
			return fmt.Errorf("delete cards of profile: %w", err)
		}
		if len(cardIDs) > 0 {
			if err := t.CardsChanged(ctx, cardIDs...); err != nil {
				return err
			}
		}
		if s.leaveChats != nil {
			if err := s.leaveChats(ctx, t, p.ID); err != nil {
				return fmt.Errorf("leave chats: %w", err)
			}
		}
		return t.ProfilesChanged(ctx, p.ID)
	})
}

// SetImage sets (fileID > 0) or removes (0) the image of the caller's profile; the previous
// image is released after the change commits.
func (s *Service) SetImage(ctx context.Context, userID, profileID, fileID int64) (db.Profile, error) {
	var p db.Profile
	err := s.out.Do(ctx, func(t *txn.Tx) error {
		cur, err := t.Q.LockOwnProfileForUpdate(ctx, db.LockOwnProfileForUpdateParams{ID: profileID, UserID: userID})
		if err != nil {
			return s.ownError(err)
		}
		if cur.DeletedAt != nil {
			return domain.NotFound("The profile")
		}
		var image *int64
		if fileID > 0 {
			image = &fileID
		}
		if p, err = t.Q.SetProfileImage(ctx, db.SetProfileImageParams{ID: profileID, UserID: userID, ImageFileID: image}); err != nil {
			return fmt.Errorf("set profile image: %w", err)
		}
		if previous := cur.ImageFileID; previous != nil && *previous != fileID {
			t.AfterCommit(func(ctx context.Context) { s.files.ReleaseAfterCommit(ctx, *previous) })
		}
		return t.ProfilesChanged(ctx, p.ID)
	})
	return p, err
}
