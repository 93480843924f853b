-- The sync pipeline (docs/sync.md): what a user's file holds, the per-user build state, and the
-- worker's claims, retries and garbage.
--
-- "Locked" below always means the row, or the account owning it, is locked or deactivated
-- (not in the live_profiles view; access.ProfileFacts.Locked): such rows never reach anyone's
-- file.

-- name: SyncSnapshotTime :one
-- The first statement of a snapshot transaction; now() is the transaction's start.
SELECT now()::timestamptz AS snapshot_at;

-- name: SyncOwnProfiles :many
-- P(U): the user's profiles that are not locked, deleted ones only while their tombstone lasts.
SELECT p.id, p.name, p.team_name, p.description, p.data, p.image_file_id, p.image_file_key, p.private, p.version,
       p.created_at, p.modified_at, p.deleted_at, p.why_deleted
FROM profiles p
JOIN live_profiles lp ON lp.id = p.id
WHERE p.user_id = sqlc.arg(user_id)
  AND (p.deleted_at IS NULL OR p.deleted_at > now() - sqlc.arg(tombstone_ms)::bigint * interval '1 millisecond');

-- name: SyncRelationsFrom :many
-- Relations from the given profiles, any status, whose target is not locked.
SELECT r.id, r.from_profile_id, r.to_profile_id, r.status, r.version, r.created_at, r.modified_at
FROM relations r
JOIN live_profiles tp ON tp.id = r.to_profile_id
WHERE r.from_profile_id = ANY(sqlc.arg(profile_ids)::bigint[]);

-- name: SyncSubscriptionsOf :many
-- Subscriptions of the given profiles whose card (and the card's profile and account) is not
-- locked.
SELECT s.id, s.card_id, s.profile_id, c.profile_id AS card_profile_id, s.version, s.created_at, s.modified_at
FROM card_subscriptions s
JOIN cards c ON c.id = s.card_id
JOIN live_profiles cp ON cp.id = c.profile_id
WHERE s.profile_id = ANY(sqlc.arg(profile_ids)::bigint[])
  AND c.locked_at IS NULL;

-- name: SyncCards :many
-- The live, unlocked cards of the owner profiles, and the cards with the given ids (subscribed
-- cards, already filtered for locks; deleted ones come back as tombstones).
SELECT c.id, c.profile_id, c.name, c.data, c.preview_file_id, c.preview_file_key, c.private, c.version,
       c.created_at, c.modified_at, c.deleted_at, c.why_deleted
FROM cards c
WHERE (c.profile_id = ANY(sqlc.arg(owner_profile_ids)::bigint[]) AND c.deleted_at IS NULL AND c.locked_at IS NULL)
   OR c.id = ANY(sqlc.arg(card_ids)::bigint[]);

-- name: SyncProfilesByID :many
-- Other users' profiles the file refers to (relation targets, owners of subscribed cards), with
-- their owner for the visibility rules. The callers have already left out locked ones.
SELECT p.id, p.user_id, p.name, p.team_name, p.description, p.data, p.image_file_id, p.image_file_key, p.private, p.version,
       p.created_at, p.modified_at, p.deleted_at, p.why_deleted
FROM profiles p
WHERE p.id = ANY(sqlc.arg(profile_ids)::bigint[]);

-- name: SyncRelationsTowards :many
-- Relations from the given profiles to the viewer's profiles: "T follows or blocks A" is half of
-- the visibility rule.
SELECT r.from_profile_id, r.to_profile_id, r.status
FROM relations r
WHERE r.from_profile_id = ANY(sqlc.arg(from_ids)::bigint[])
  AND r.to_profile_id = ANY(sqlc.arg(to_ids)::bigint[]);

-- name: EnsureSyncState :exec
-- A user who never had a change recorded gets a row at version 0 (nothing owed), so building
-- the first file on request has a row to compare-and-set.
INSERT INTO sync_states (user_id, wanted_version, built_version, stale_since)
VALUES (sqlc.arg(user_id), 0, 0, NULL)
ON CONFLICT (user_id) DO NOTHING;

-- name: GetSyncState :one
SELECT * FROM sync_states WHERE user_id = sqlc.arg(user_id);

-- name: PublishSyncFile :one
-- The pointer switch: records the new file, unless someone already published this version or a
-- newer one (a stale builder, e.g. one whose lock expired, loses here). A rebuild of the same
-- version wins only if nobody published since the builder read expected_key. stale_since
-- becomes the snapshot time when changes arrived after the snapshot, so lag stays measured from
-- the oldest change the file still lacks.
WITH old AS (
    SELECT o.user_id, o.storage_key AS old_key, o.stale_since AS old_stale_since
    FROM sync_states o WHERE o.user_id = sqlc.arg(user_id) FOR UPDATE
)
UPDATE sync_states s
SET built_version    = sqlc.arg(version),
    etag             = sqlc.arg(etag),
    size             = sqlc.arg(size),
    storage_key      = sqlc.arg(storage_key),
    builder_schema   = sqlc.arg(builder_schema),
    built_at         = now(),
    attempts         = 0,
    last_error       = NULL,
    dead_lettered_at = NULL,
    not_before       = NULL,
    stale_since      = CASE WHEN s.wanted_version > sqlc.arg(version) THEN sqlc.arg(snapshot_at)::timestamptz END
FROM old
WHERE s.user_id = old.user_id
  AND (s.built_version < sqlc.arg(version)
       OR (s.built_version = sqlc.arg(version) AND s.storage_key IS NOT DISTINCT FROM sqlc.narg(expected_key)))
RETURNING old.old_key, s.wanted_version,
          COALESCE(EXTRACT(EPOCH FROM clock_timestamp() - old.old_stale_since), -1)::float8 AS lag_seconds;

-- name: AddSyncGarbage :exec
INSERT INTO sync_garbage (storage_key, delete_after)
VALUES (sqlc.arg(storage_key), now() + sqlc.arg(after_ms)::bigint * interval '1 millisecond')
ON CONFLICT (storage_key) DO UPDATE SET delete_after = EXCLUDED.delete_after;

-- name: RemoveSyncGarbage :exec
DELETE FROM sync_garbage WHERE storage_key = sqlc.arg(storage_key);

-- name: TakeDueSyncGarbage :many
-- Inside the collector's transaction: the rows stay locked until their objects are deleted, so
-- two collectors never work on the same key.
-- A key that is some user's live pointer is never taken (an upload published after its entry
-- expired, e.g. by a builder paused for an hour).
SELECT g.storage_key FROM sync_garbage g
WHERE g.delete_after <= now()
  AND NOT EXISTS (SELECT 1 FROM sync_states s WHERE s.storage_key = g.storage_key)
ORDER BY g.delete_after
LIMIT sqlc.arg(max_keys)
FOR UPDATE SKIP LOCKED;

-- name: DeleteSyncGarbage :exec
DELETE FROM sync_garbage WHERE storage_key = ANY(sqlc.arg(storage_keys)::text[]);

-- name: ClaimStaleUsers :many
-- Takes up to max_users users whose file has lagged for at least min_stale_ms and whom nobody
-- holds, oldest first, and holds them for lease_ms: the PostgreSQL queue of the worker (with
-- min_stale_ms 0) and the sweeper's "re-send lagging users" (with its threshold).
UPDATE sync_states s
SET not_before = now() + sqlc.arg(lease_ms)::bigint * interval '1 millisecond'
WHERE s.user_id IN (
    SELECT c.user_id FROM sync_states c
    WHERE c.built_version < c.wanted_version
      AND c.stale_since <= now() - sqlc.arg(min_stale_ms)::bigint * interval '1 millisecond'
      AND (c.not_before IS NULL OR c.not_before <= now())
    ORDER BY c.stale_since
    LIMIT sqlc.arg(max_users)
    FOR UPDATE SKIP LOCKED)
RETURNING s.user_id, s.wanted_version;

-- name: ReleaseSyncClaim :exec
-- Nothing was owed after all (another builder got there first).
UPDATE sync_states SET not_before = NULL WHERE user_id = sqlc.arg(user_id);

-- name: DeferSyncUser :exec
-- Someone else is building the user right now; look again shortly.
UPDATE sync_states SET not_before = now() + sqlc.arg(delay_ms)::bigint * interval '1 millisecond'
WHERE user_id = sqlc.arg(user_id);

-- name: RecordSyncFailure :one
-- A failed build: count it and schedule the retry with exponential back-off (with jitter); at
-- max_attempts the user is dead-lettered and parked for park_ms.
UPDATE sync_states
SET attempts         = attempts + 1,
    last_error       = sqlc.arg(error),
    dead_lettered_at = CASE WHEN attempts + 1 >= sqlc.arg(max_attempts)::int THEN now() END,
    not_before       = now() + interval '1 millisecond' * CASE
        WHEN attempts + 1 >= sqlc.arg(max_attempts)::int THEN sqlc.arg(park_ms)::bigint::float8
        ELSE LEAST(sqlc.arg(max_backoff_ms)::bigint, sqlc.arg(base_backoff_ms)::bigint << LEAST(attempts, 30))::float8
             * (0.75 + random() / 2)
    END
WHERE user_id = sqlc.arg(user_id)
RETURNING attempts, (dead_lettered_at IS NOT NULL)::bool AS dead_lettered, not_before;

-- name: SyncBacklog :one
-- Gauges: users whose file lags, the oldest lag, and dead-lettered users.
SELECT
    (SELECT count(*) FROM sync_states WHERE built_version < wanted_version)::bigint AS stale_users,
    COALESCE((SELECT EXTRACT(EPOCH FROM now() - min(stale_since)) FROM sync_states
              WHERE built_version < wanted_version), 0)::float8 AS oldest_stale_seconds,
    (SELECT count(*) FROM sync_states WHERE dead_lettered_at IS NOT NULL)::bigint AS dead_lettered_users;

-- name: UsersWithExpiredTombstones :many
-- Users whose file was built while one of their deleted profiles was still a tombstone that has
-- expired since (a change of the file that no write caused). Looks back lookback_ms only: the
-- sweeper runs far more often than that.
SELECT DISTINCT p.user_id
FROM profiles p
JOIN sync_states s ON s.user_id = p.user_id
WHERE p.deleted_at IS NOT NULL
  AND p.deleted_at <= now() - sqlc.arg(tombstone_ms)::bigint * interval '1 millisecond'
  AND p.deleted_at > now() - (sqlc.arg(tombstone_ms)::bigint + sqlc.arg(lookback_ms)::bigint) * interval '1 millisecond'
  AND s.built_at < p.deleted_at + sqlc.arg(tombstone_ms)::bigint * interval '1 millisecond'
  AND s.built_version >= s.wanted_version;

-- name: UsersWithOutdatedBuilder :many
-- Files written by an older builder (docs/sync.md §1: a builder change triggers rebuilds), a batch at
-- a time so a deploy does not rebuild everyone at once.
SELECT user_id FROM sync_states
WHERE builder_schema < sqlc.arg(builder_schema)::int AND built_version >= wanted_version
ORDER BY user_id
LIMIT sqlc.arg(max_users);

-- name: NotifySyncWorkers :exec
-- Wakes the workers polling PostgreSQL (they LISTEN on this channel) after a commit that made
-- files stale; without it they find the work at their next poll.
SELECT pg_notify('bca_sync_stale', '');
