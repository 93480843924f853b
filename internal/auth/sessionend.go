package auth

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	"github.com/redis/go-redis/v9"
)

// SessionEnd is the one announcement, to every API process, that ends what sessions hold open
// — live chat streams — within moments rather than at the next check. It names, on one channel:
//   - one session (sign-out, revocation of one session, refresh-token reuse): UserID and
//     SessionID;
//   - every session of a user except one (password change): UserID and KeepSessionID;
//   - a whole user (password reset, deactivation, an admin's lock or revocation, docs/product.md
//     §3 and §9): UserID alone;
//   - a profile (an admin's lock of the profile, docs/product.md §9): ProfileID, which ends the
//     streams acting as that profile whoever's session they run in. It may come with UserID.
//
// PostgreSQL stays the truth; a lost announcement is caught by the streams' own periodic check.
type SessionEnd struct {
	UserID int64 `json:"user_id,omitempty"`
	// SessionID is the one session that ended; 0 means every session of the user except
	// KeepSessionID (0: none kept).
	SessionID     int64 `json:"session_id,omitempty"`
	KeepSessionID int64 `json:"keep_session_id,omitempty"`
	// ProfileID ends the streams acting as the profile.
	ProfileID int64 `json:"profile_id,omitempty"`
}

// Ends reports whether the announcement covers a stream of the session, acting as profileID
// (0: none).
func (e SessionEnd) Ends(userID, sessionID, profileID int64) bool {
	if e.ProfileID != 0 && e.ProfileID == profileID {
		return true
	}
	if e.UserID == 0 || e.UserID != userID {
		return false
	}
	if e.SessionID != 0 {
		return e.SessionID == sessionID
	}
	return e.KeepSessionID == 0 || sessionID != e.KeepSessionID
}

// SessionEndChannel is the Redis pub/sub channel of the announcements.
func SessionEndChannel(keyPrefix string) string { return keyPrefix + "sessions:ended" }

// publishTimeout bounds one announcement.
const publishTimeout = 2 * time.Second

// PublishSessionEnd announces ended sessions, users or profiles. It needs only Redis, so
// operator commands can use it without a running chat service.
func PublishSessionEnd(ctx context.Context, rdb redis.UniversalClient, keyPrefix string, e SessionEnd) error {
	payload, err := json.Marshal(e)
	if err != nil {
		return fmt.Errorf("encode session end: %w", err)
	}
	ctx, cancel := context.WithTimeout(ctx, publishTimeout)
	defer cancel()
	if err := rdb.Publish(ctx, SessionEndChannel(keyPrefix), payload).Err(); err != nil {
		return fmt.Errorf("announce session end: %w", err)
	}
	return nil
}
