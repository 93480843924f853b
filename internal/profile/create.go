// Package profile owns profiles: creation, reading under the visibility rules, changes.
package profile

import (
	"context"
	"encoding/json"
	"fmt"

	"github.com/bca-app/backend/gen/db"
	"github.com/bca-app/backend/internal/domain"
)

// CreateInput is a new profile as the caller describes it.
type CreateInput struct {
	Name               string
	TeamName           *string
	Description        *string
	Data               any // a JSON object, already shape-checked against the API schema
	Private            *bool
	CanAnonymousInvite *bool
	IsFollowListPublic *bool
}

// Create inserts a profile of userID using q, which may be bound to the caller's transaction
// (sign-up creates the first profile in the same transaction as the account).
func Create(ctx context.Context, q *db.Queries, userID int64, in CreateInput) (db.Profile, error) {
	name, err := domain.Name("name", in.Name, domain.MaxNameLength)
	if err != nil {
		return db.Profile{}, err
	}
	raw := json.RawMessage("{}")
	if in.Data != nil {
		if raw, err = domain.JSONObjectOf("data", in.Data); err != nil {
			return db.Profile{}, err
		}
	}
	p, err := q.CreateProfile(ctx, db.CreateProfileParams{
		UserID:             userID,
		Name:               name,
		TeamName:           cleanOptional(in.TeamName),
		Description:        in.Description,
		Data:               raw,
		Private:            valueOr(in.Private, true),
		CanAnonymousInvite: valueOr(in.CanAnonymousInvite, false),
		IsFollowListPublic: valueOr(in.IsFollowListPublic, false),
	})
	if err != nil {
		return db.Profile{}, fmt.Errorf("create profile: %w", err)
	}
	return p, nil
}

func cleanOptional(s *string) *string {
	if s == nil {
		return nil
	}
	c := domain.CleanName(*s)
	return &c
}

func valueOr[T any](p *T, def T) T {
	if p == nil {
		return def
	}
	return *p
}
