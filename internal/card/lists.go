package card

import (
	"context"
	"fmt"

	"github.com/bca-app/backend/gen/db"
)

// ListSubscriptions lists the acting profile's card subscriptions, oldest first, after the
// subscription id afterID. The caller has checked that the profile is the caller's own.
func (s *Service) ListSubscriptions(ctx context.Context, profileID, afterID int64, limit int) ([]db.CardSubscription, error) {
	rows, err := s.q.ListCardSubscriptionsOf(ctx, db.ListCardSubscriptionsOfParams{ProfileID: profileID, AfterID: afterID, MaxRows: int32(limit)})
	if err != nil {
		return nil, fmt.Errorf("list subscriptions of profile %d: %w", profileID, err)
	}
	return rows, nil
}
