package chat

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	"github.com/redis/go-redis/v9"
)

// Ending streams from outside a stream: when an admin locks a user or a profile, or revokes a
// user's sessions (docs/product.md §9), every open stream of that user or profile closes at
// once on every replica. The order travels on the same pub/sub channel as events; each
// replica's hub closes its matching streams.

// endOrder names the streams to close: all of a user's, or those acting as one profile.
type endOrder struct {
	UserID    int64 `json:"user_id,omitempty"`
	ProfileID int64 `json:"profile_id,omitempty"`
}

// EndStreams publishes an order to close the streams of userID (when non-zero) and of
// profileID (when non-zero) on every replica. It needs only Redis, so operator commands can use
// it without a running chat service.
func EndStreams(ctx context.Context, rdb redis.UniversalClient, keyPrefix string, userID, profileID int64) error {
	payload, err := json.Marshal(wireEvent{End: &endOrder{UserID: userID, ProfileID: profileID}})
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	if err := rdb.Publish(ctx, keyPrefix+"chat:events", payload).Err(); err != nil {
		return fmt.Errorf("publish end of chat streams: %w", err)
	}
	return nil
}

// EndStreams closes the streams of a user and/or a profile on every replica.
func (s *Service) EndStreams(ctx context.Context, userID, profileID int64) error {
	return EndStreams(ctx, s.rdb, s.set.RedisKeyPrefix, userID, profileID)
}

// end closes this replica's streams named by the order.
func (h *hub) end(o endOrder) {
	h.mu.Lock()
	defer h.mu.Unlock()
	for profileID, streams := range h.subs {
		for st := range streams {
			if (o.UserID != 0 && st.actor.UserID == o.UserID) || (o.ProfileID != 0 && profileID == o.ProfileID) {
				st.endOnce.Do(func() { close(st.ended) })
			}
		}
	}
}
