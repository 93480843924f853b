-- name: MarkUsersStale :many
-- The outbox write: one bump per affected user, in the transaction of the change. Callers pass
-- ids sorted ascending so concurrent transactions lock rows in one order.
INSERT INTO sync_states AS s (user_id)
SELECT unnest(sqlc.arg(user_ids)::bigint[])
ON CONFLICT (user_id) DO UPDATE
SET wanted_version = s.wanted_version + 1,
    stale_since    = CASE WHEN s.built_version >= s.wanted_version THEN now() ELSE s.stale_since END
RETURNING user_id, wanted_version;

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
