package profile

import (
	"context"

	"github.com/bca-app/backend/internal/access"
)

// ListOutgoing lists the profiles that the caller's own profile has a relation of one status
// to: its pending follow requests (FollowRequested) or the profiles it blocks (Block).
func (s *Service) ListOutgoing(ctx context.Context, v access.Caller, profileID int64, status access.Status, afterID int64, limit int) ([]Listed, error) {
	if err := s.ownTarget(ctx, s.q, v.UserID, profileID); err != nil {
		return nil, err
	}
	return s.related(ctx, access.Caller{UserID: v.UserID, ActingProfileID: profileID}, profileID, false, []access.Status{status}, true, afterID, limit)
}
