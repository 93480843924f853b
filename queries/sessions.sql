-- name: CreateSession :one
INSERT INTO sessions (user_id, refresh_hash, device_token, user_agent, expires_at)
VALUES ($1, $2, $3, $4, $5)
RETURNING *;

-- name: GetLiveSessionForAuth :one
-- Run on every authenticated request: the session must be live and its user usable. When the
-- request names an acting profile, whether it is one of the user's live, unlocked profiles is
-- answered in the same round trip (an id comparison, never a text search).
SELECT s.id, s.user_id, u.role,
       EXISTS (SELECT 1 FROM profiles p
               WHERE p.id = sqlc.arg(acting_profile_id) AND p.user_id = s.user_id
                 AND p.deleted_at IS NULL AND p.locked_at IS NULL)::boolean AS acting_ok
FROM sessions s JOIN users u ON u.id = s.user_id
WHERE s.id = sqlc.arg(id) AND s.user_id = sqlc.arg(user_id)
  AND s.revoked_at IS NULL AND s.expires_at > now()
  AND u.deactivated_at IS NULL AND u.locked_at IS NULL;

-- name: RotateRefreshToken :one
-- Compare-and-set on the current secret: of two refreshes racing with one secret only one wins.
UPDATE sessions
SET refresh_hash = sqlc.arg(new_hash),
    device_token = coalesce(sqlc.narg(device_token), device_token),
    last_used_at = now(),
    expires_at   = sqlc.arg(expires_at)
WHERE refresh_hash = sqlc.arg(old_hash) AND revoked_at IS NULL AND expires_at > now()
RETURNING *;

-- name: RetireRefreshToken :exec
INSERT INTO retired_refresh_tokens (refresh_hash, session_id) VALUES ($1, $2)
ON CONFLICT (refresh_hash) DO NOTHING;

-- name: FindRetiredRefreshToken :one
SELECT session_id FROM retired_refresh_tokens WHERE refresh_hash = $1;

-- name: RevokeSession :execrows
UPDATE sessions SET revoked_at = now(), revoke_reason = $3
WHERE id = $1 AND user_id = $2 AND revoked_at IS NULL;

-- name: RevokeSessionByID :exec
UPDATE sessions SET revoked_at = now(), revoke_reason = $2
WHERE id = $1 AND revoked_at IS NULL;

-- name: RevokeUserSessions :many
-- Revokes every live session of a user except one (0 = none kept); returns what was revoked.
UPDATE sessions SET revoked_at = now(), revoke_reason = sqlc.arg(reason)
WHERE user_id = sqlc.arg(user_id) AND revoked_at IS NULL AND id <> sqlc.arg(keep_session_id)
RETURNING id;

-- name: ListLiveSessions :many
SELECT * FROM sessions
WHERE user_id = $1 AND revoked_at IS NULL AND expires_at > now()
  AND id < sqlc.arg(before_id)
ORDER BY id DESC
LIMIT sqlc.arg(max_rows);

-- name: ListDeviceTokensOfUsers :many
-- Push targets: device tokens of the live sessions of the given users.
SELECT id AS session_id, user_id, device_token::text AS device_token
FROM sessions
WHERE user_id = ANY(sqlc.arg(user_ids)::bigint[]) AND revoked_at IS NULL AND expires_at > now()
  AND device_token IS NOT NULL;

-- name: ClearDeviceToken :exec
UPDATE sessions SET device_token = NULL WHERE device_token = $1;

-- name: SetSessionDeviceToken :exec
-- A device may send its current FCM token with a message; keep the session's copy current.
UPDATE sessions SET device_token = sqlc.arg(device_token)
WHERE id = sqlc.arg(id) AND revoked_at IS NULL AND device_token IS DISTINCT FROM sqlc.arg(device_token);
