-- name: GetRelation :one
SELECT * FROM relations WHERE from_profile_id = $1 AND to_profile_id = $2;

-- name: UpsertRelation :one
-- One row per ordered pair (unique index); a new status replaces the old one.
INSERT INTO relations (from_profile_id, to_profile_id, status)
VALUES ($1, $2, $3)
ON CONFLICT (from_profile_id, to_profile_id) DO UPDATE
SET status = excluded.status, version = relations.version + 1, modified_at = now()
RETURNING *;

-- name: DeleteRelation :one
DELETE FROM relations WHERE from_profile_id = $1 AND to_profile_id = $2 RETURNING *;

-- name: AcceptFollowRequest :one
UPDATE relations SET status = 1, version = version + 1, modified_at = now()
WHERE from_profile_id = $1 AND to_profile_id = $2 AND status = 4
RETURNING *;

-- name: RejectFollowRequest :one
DELETE FROM relations WHERE from_profile_id = $1 AND to_profile_id = $2 AND status = 4 RETURNING *;

-- name: ListRelatedProfiles :many
-- Profiles on the other end of relations of one profile, for follower/following/request lists,
-- with the facts the visibility rules need relative to the viewer (relation_towards: a BLOCK of
-- any profile of the viewer's user counts).
-- incoming = true lists relations TO the profile (followers, requests), else FROM it.
SELECT sqlc.embed(p),
       r.created_at AS related_at,
       r.status AS relation_status,
       relation_towards(sqlc.arg(viewer_profile_id), p.user_id, p.id)::smallint AS from_viewer,
       relation_towards(p.id, sqlc.arg(viewer_user_id), sqlc.arg(viewer_profile_id))::smallint AS to_viewer
FROM relations r
JOIN profiles p ON p.id = CASE WHEN sqlc.arg(incoming)::boolean THEN r.from_profile_id ELSE r.to_profile_id END
JOIN live_profiles lp ON lp.id = p.id
WHERE (CASE WHEN sqlc.arg(incoming)::boolean THEN r.to_profile_id ELSE r.from_profile_id END) = sqlc.arg(profile_id)
  AND r.status = ANY(sqlc.arg(statuses)::smallint[])
  AND p.id > sqlc.arg(after_id)
  AND (sqlc.arg(include_deleted)::boolean OR p.deleted_at IS NULL)
ORDER BY p.id
LIMIT sqlc.arg(max_rows);

-- name: DeleteSubscriptionsBetween :many
-- A block removes the subscriptions in both directions between the two profiles.
DELETE FROM card_subscriptions s
USING cards c
WHERE c.id = s.card_id
  AND ((s.profile_id = sqlc.arg(a) AND c.profile_id = sqlc.arg(b)) OR (s.profile_id = sqlc.arg(b) AND c.profile_id = sqlc.arg(a)))
RETURNING s.card_id, s.profile_id;
