-- name: CreateCard :one
INSERT INTO cards (profile_id, name, data, preview_file_id, private)
VALUES ($1, $2, $3, $4, $5)
RETURNING *;

-- name: GetCardView :one
-- A card with its profile's visibility facts relative to the viewer (relation_towards: a BLOCK
-- of any profile of the viewer's user counts), and whether the acting profile subscribes to it.
SELECT sqlc.embed(c),
       p.user_id AS owner_user_id,
       p.private AS profile_private,
       EXISTS (SELECT 1 FROM live_profiles lp WHERE lp.id = p.id)::boolean AS profile_live,
       relation_towards(sqlc.arg(viewer_profile_id), p.user_id, p.id)::smallint AS from_viewer,
       relation_towards(p.id, sqlc.arg(viewer_user_id), sqlc.arg(viewer_profile_id))::smallint AS to_viewer,
       EXISTS (SELECT 1 FROM card_subscriptions s WHERE s.card_id = c.id AND s.profile_id = sqlc.arg(viewer_profile_id))::boolean AS subscribed
FROM cards c
JOIN profiles p ON p.id = c.profile_id
WHERE c.id = sqlc.arg(card_id);

-- name: ListCardsOfProfile :many
-- Live cards of a profile; private ones only when include_private, or when the viewer's acting
-- profile subscribes to them.
SELECT c.* FROM cards c
WHERE c.profile_id = sqlc.arg(profile_id)
  AND c.deleted_at IS NULL
  AND (sqlc.arg(include_locked)::boolean OR c.locked_at IS NULL)
  AND (NOT c.private OR sqlc.arg(include_private)::boolean
       OR EXISTS (SELECT 1 FROM card_subscriptions s WHERE s.card_id = c.id AND s.profile_id = sqlc.arg(viewer_profile_id)))
  AND c.id > sqlc.arg(after_id)
ORDER BY c.id
LIMIT sqlc.arg(max_rows);

-- name: UpdateCard :one
UPDATE cards c
SET name            = coalesce(sqlc.narg(name), c.name),
    data            = coalesce(sqlc.narg(data), c.data),
    private         = coalesce(sqlc.narg(private), c.private),
    preview_file_id = coalesce(sqlc.narg(preview_file_id), c.preview_file_id),
    version         = c.version + 1,
    modified_at     = now()
FROM profiles p
WHERE c.id = sqlc.arg(id) AND p.id = c.profile_id AND p.user_id = sqlc.arg(user_id)
  AND c.version = sqlc.arg(version) AND c.deleted_at IS NULL
RETURNING c.*;

-- name: SoftDeleteCard :one
UPDATE cards c
SET deleted_at = now(), why_deleted = sqlc.narg(why_deleted), version = c.version + 1, modified_at = now()
FROM profiles p
WHERE c.id = sqlc.arg(id) AND p.id = c.profile_id AND p.user_id = sqlc.arg(user_id)
  AND c.version = sqlc.arg(version) AND c.deleted_at IS NULL
RETURNING c.*;

-- name: SoftDeleteCardsOfProfile :many
UPDATE cards SET deleted_at = now(), why_deleted = 'profile_deleted', version = version + 1, modified_at = now()
WHERE profile_id = $1 AND deleted_at IS NULL
RETURNING id;

-- name: GetOwnedCard :one
SELECT c.* FROM cards c JOIN profiles p ON p.id = c.profile_id
WHERE c.id = sqlc.arg(id) AND p.user_id = sqlc.arg(user_id);

-- name: GetSubscription :one
SELECT * FROM card_subscriptions WHERE profile_id = $1 AND card_id = $2;

-- name: Subscribe :one
-- Idempotent, also under concurrency: a second subscribe (or a concurrent one) finds the
-- existing row through the conflict instead of a snapshot that may not see it yet.
INSERT INTO card_subscriptions (profile_id, card_id) VALUES ($1, $2)
ON CONFLICT (profile_id, card_id) DO UPDATE SET profile_id = excluded.profile_id
RETURNING id, card_id, profile_id, version, created_at, modified_at, (xmax = 0)::boolean AS created;

-- name: Unsubscribe :execrows
DELETE FROM card_subscriptions WHERE profile_id = $1 AND card_id = $2;
