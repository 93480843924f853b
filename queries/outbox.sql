-- name: MarkUsersStale :many
-- The outbox write: one bump per affected user, in the transaction of the change. Callers pass
-- ids sorted ascending so concurrent transactions lock rows in one order.
-- covered: the file was already behind before this bump (stale_since is an earlier
-- transaction's), so the task sent when it fell behind still stands for the user, and its
-- builder builds again when it publishes behind (docs/sync.md §4.2): no second message is
-- needed. A file that was current (stale_since becomes this transaction's now()) or a
-- dead-lettered user is not covered.
INSERT INTO sync_states AS s (user_id)
SELECT unnest(sqlc.arg(user_ids)::bigint[])
ON CONFLICT (user_id) DO UPDATE
SET wanted_version = s.wanted_version + 1,
    stale_since    = CASE WHEN s.built_version >= s.wanted_version THEN now() ELSE s.stale_since END
RETURNING user_id, wanted_version,
          (COALESCE(s.stale_since <> now(), false) AND s.dead_lettered_at IS NULL)::bool AS covered;

-- name: AudienceOfProfiles :many
-- Users whose sync file holds any of the profiles: their owners, owners of profiles with a
-- relation to them, and owners of profiles subscribed to their cards. Computed per profile, so
-- a change to one profile never reaches the audience of the owner's other profiles.
SELECT p.user_id FROM profiles p WHERE p.id = ANY(sqlc.arg(profile_ids)::bigint[])
UNION
SELECT fp.user_id FROM relations r JOIN profiles fp ON fp.id = r.from_profile_id
WHERE r.to_profile_id = ANY(sqlc.arg(profile_ids)::bigint[])
UNION
SELECT sp.user_id FROM card_subscriptions s
JOIN cards c ON c.id = s.card_id
JOIN profiles sp ON sp.id = s.profile_id
WHERE c.profile_id = ANY(sqlc.arg(profile_ids)::bigint[]);

-- name: AudienceOfCards :many
-- Users whose sync file holds any of the cards: the owners and the subscribers.
SELECT p.user_id FROM cards c JOIN profiles p ON p.id = c.profile_id WHERE c.id = ANY(sqlc.arg(card_ids)::bigint[])
UNION
SELECT sp.user_id FROM card_subscriptions s JOIN profiles sp ON sp.id = s.profile_id
WHERE s.card_id = ANY(sqlc.arg(card_ids)::bigint[]);

-- name: OwnersOfProfiles :many
SELECT DISTINCT user_id FROM profiles WHERE id = ANY(sqlc.arg(profile_ids)::bigint[]);
