package auth

import (
	"context"
	"encoding/json"
	"fmt"

	"github.com/redis/go-redis/v9"
)

// SessionEnd announces, to every API process, that sessions ended (sign-out, revocation,
// password change or reset, deactivation, refresh-token reuse), so what they hold open — live
// chat streams — ends within moments rather than at the next check. The session rows in
// PostgreSQL stay the truth; a lost announcement is caught by the streams' own periodic check.
type SessionEnd struct {
	UserID int64 `json:"user_id"`
	// SessionID is the one session that ended; 0 means every session of the user except
	// KeepSessionID (0: none kept).
	SessionID     int64 `json:"session_id,omitempty"`
	KeepSessionID int64 `json:"keep_session_id,omitempty"`
}

// Ends reports whether the announcement covers the session.
func (e SessionEnd) Ends(userID, sessionID int64) bool {
	if e.UserID != userID {
		return false
	}
	if e.SessionID != 0 {
		return e.SessionID == sessionID
	}
	return sessionID != e.KeepSessionID
}

// SessionEndChannel is the Redis pub/sub channel of the announcements.
func SessionEndChannel(keyPrefix string) string { return keyPrefix + "sessions:ended" }

// PublishSessionEnd announces ended sessions.
func PublishSessionEnd(ctx context.Context, rdb redis.UniversalClient, keyPrefix string, e SessionEnd) error {
	payload, err := json.Marshal(e)
	if err != nil {
		return fmt.Errorf("encode session end: %w", err)
	}
	if err := rdb.Publish(ctx, SessionEndChannel(keyPrefix), payload).Err(); err != nil {
		return fmt.Errorf("announce session end: %w", err)
	}
	return nil
}
