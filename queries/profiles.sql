-- name: CreateProfile :one
INSERT INTO profiles (user_id, name, team_name, description, data, private, can_anonymous_invite, is_follow_list_public)
VALUES ($1, $2, $3, $4, $5, $6, $7, $8)
RETURNING *;

-- name: GetActingProfile :one
-- The acting profile must be the caller's own, live and unlocked (an id comparison, never a
-- text search).
SELECT p.id FROM profiles p
WHERE p.id = sqlc.arg(profile_id) AND p.user_id = sqlc.arg(user_id)
  AND p.deleted_at IS NULL AND p.locked_at IS NULL;
