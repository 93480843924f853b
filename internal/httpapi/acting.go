package httpapi

import (
	"context"
	"errors"
	"fmt"

	"github.com/jackc/pgx/v5"

	"github.com/bca-app/backend/gen/db"
	"github.com/bca-app/backend/internal/access"
	"github.com/bca-app/backend/internal/domain"
)

// viewer returns who is calling, acting as profileID when given. The acting profile must be one
// of the caller's live, unlocked profiles; another user's profile is a 403. Authentication
// already checked the request's X-Profile-Id with the session; other ids are looked up here.
func (s *Server) viewer(ctx context.Context, profileID *int64) (access.Caller, error) {
	p, err := mustPrincipal(ctx)
	if err != nil {
		return access.Caller{}, err
	}
	v := p.Caller
	v.ActingProfileID = 0
	if profileID == nil {
		return v, nil
	}
	if p.ActingProfileID != 0 && p.ActingProfileID == *profileID {
		v.ActingProfileID = p.ActingProfileID
		return v, nil
	}
	id, err := db.New(s.Pool).GetActingProfile(ctx, db.GetActingProfileParams{ProfileID: *profileID, UserID: p.UserID})
	if errors.Is(err, pgx.ErrNoRows) {
		return access.Caller{}, domain.Forbidden("profile.not_acting", "X-Profile-Id must be one of your own live profiles.")
	}
	if err != nil {
		return access.Caller{}, fmt.Errorf("check acting profile: %w", err)
	}
	v.ActingProfileID = id
	return v, nil
}

// actingViewer is viewer for operations that require X-Profile-Id.
func (s *Server) actingViewer(ctx context.Context, profileID int64) (access.Caller, error) {
	return s.viewer(ctx, &profileID)
}
