-- Row and advisory locks that give concurrent writes one fixed order (docs/product.md §5, §6):
-- the pair lock of two profiles first, then the rows of the change, the sync_states rows last.

-- name: LockProfilePair :exec
-- Serialises every change between two profiles (relations both ways, subscriptions across
-- them), whichever of the two acts; transaction-scoped.
SELECT pg_advisory_xact_lock(hashtextextended('bca.profile.pair:' || least(sqlc.arg(a)::bigint, sqlc.arg(b)::bigint)::text
                                              || ':' || greatest(sqlc.arg(a)::bigint, sqlc.arg(b)::bigint)::text, 0));

-- name: LockOwnedCard :one
-- The caller's card under a row lock, for a conditional write (If-Match).
SELECT c.* FROM cards c JOIN profiles p ON p.id = c.profile_id
WHERE c.id = sqlc.arg(id) AND p.user_id = sqlc.arg(user_id)
FOR NO KEY UPDATE OF c;
