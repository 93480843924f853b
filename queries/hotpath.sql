-- name: GetSessionForAuthCache :one
-- The authentication cache's fill (docs/sync.md §3 polling, docs/product.md §3 sessions): the
-- session must be live and its user usable; the row also carries the role and the ids of the
-- user's live, unlocked profiles (the acting-profile check), so one round trip fills the cache.
SELECT s.id, s.user_id, u.role,
       coalesce((SELECT array_agg(p.id ORDER BY p.id) FROM profiles p
                 WHERE p.user_id = s.user_id AND p.deleted_at IS NULL AND p.locked_at IS NULL),
                '{}')::bigint[] AS acting_profile_ids
FROM sessions s JOIN users u ON u.id = s.user_id
WHERE s.id = sqlc.arg(id) AND s.user_id = sqlc.arg(user_id)
  AND s.revoked_at IS NULL AND s.expires_at > now()
  AND u.deactivated_at IS NULL AND u.locked_at IS NULL;

-- name: GetSessionUserID :one
SELECT user_id FROM sessions WHERE id = $1;
