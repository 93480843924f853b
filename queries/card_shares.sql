-- Share links of cards: docs/product.md §6 "Sharing".

-- name: CreateCardShare :one
INSERT INTO card_shares (card_id, token_hash, token_sealed, created_by_user_id, expires_at, max_uses)
VALUES ($1, $2, $3, $4, $5, $6)
RETURNING *;

-- name: ListCardShares :many
-- Every link of a card, newest first, revoked and expired ones included (the owner sees why a
-- link stopped working).
SELECT * FROM card_shares
WHERE card_id = sqlc.arg(card_id) AND (sqlc.arg(before_id)::bigint = 0 OR id < sqlc.arg(before_id))
ORDER BY id DESC
LIMIT sqlc.arg(max_rows);

-- name: RevokeCardShare :one
-- Idempotent: revoking a revoked link keeps its first revocation time.
UPDATE card_shares SET revoked_at = coalesce(revoked_at, now())
WHERE id = sqlc.arg(id) AND card_id = sqlc.arg(card_id)
RETURNING *;

-- name: ResolveCardShare :one
-- A link with everything that decides whether it still works: the link itself (revoked, expired,
-- used up) and its card and profile (deleted or locked, or an owner account that is gone).
-- for_update locks the link row so that counting a use cannot race past max_uses.
SELECT sqlc.embed(s), sqlc.embed(c),
       p.name AS profile_name,
       p.image_file_id AS profile_image_file_id,
       p.image_file_key AS profile_image_file_key,
       p.private AS profile_private,
       p.user_id AS owner_user_id,
       (p.deleted_at IS NOT NULL OR lp.id IS NULL)::boolean AS profile_dead,
       (s.expires_at IS NOT NULL AND s.expires_at <= now())::boolean AS expired
FROM card_shares s
JOIN cards c ON c.id = s.card_id
JOIN profiles p ON p.id = c.profile_id
LEFT JOIN live_profiles lp ON lp.id = p.id
WHERE s.token_hash = sqlc.arg(token_hash);

-- name: LockCardShare :one
SELECT id, use_count, max_uses, revoked_at, (expires_at IS NOT NULL AND expires_at <= now())::boolean AS expired
FROM card_shares WHERE id = $1 FOR UPDATE;

-- name: CountCardShareUse :execrows
-- Counts one use unless the link is used up, revoked or expired meanwhile.
UPDATE card_shares SET use_count = use_count + 1
WHERE id = $1 AND revoked_at IS NULL AND (expires_at IS NULL OR expires_at > now())
  AND (max_uses IS NULL OR use_count < max_uses);
