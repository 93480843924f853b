-- Moderation (docs/product.md §9): reports, locks, the audit log and the admin's look-ups.

-- name: CreateReport :one
-- Idempotent: while the reporter profile's report about the same thing is open, the same row
-- comes back (the no-op update makes RETURNING see it).
INSERT INTO reports (reporter_user_id, reporter_profile_id, kind, target_key, target_profile_id, target_user_id,
                     target_card_id, target_room_id, target_event_index, reason, details, evidence)
VALUES (sqlc.arg(reporter_user_id), sqlc.arg(reporter_profile_id), sqlc.arg(kind), sqlc.arg(target_key),
        sqlc.arg(target_profile_id), sqlc.arg(target_user_id), sqlc.narg(target_card_id), sqlc.narg(target_room_id),
        sqlc.narg(target_event_index), sqlc.arg(reason), sqlc.narg(details), sqlc.narg(evidence))
ON CONFLICT (reporter_profile_id, target_key) WHERE status = 'open'
DO UPDATE SET status = reports.status
RETURNING *;

-- name: ListReportsOfUser :many
SELECT * FROM reports
WHERE reporter_user_id = sqlc.arg(user_id) AND id < sqlc.arg(before_id)
ORDER BY id DESC
LIMIT sqlc.arg(max_rows);

-- name: ListReportsForAdmin :many
SELECT * FROM reports
WHERE (sqlc.narg(status)::text IS NULL OR status = sqlc.narg(status))
  AND (sqlc.narg(kind)::text IS NULL OR kind = sqlc.narg(kind))
  AND id < sqlc.arg(before_id)
ORDER BY id DESC
LIMIT sqlc.arg(max_rows);

-- name: GetReport :one
SELECT * FROM reports WHERE id = $1;

-- name: ResolveReport :one
UPDATE reports
SET status = 'closed', resolution_action = sqlc.arg(action), resolution_note = sqlc.narg(note),
    resolved_by_user_id = sqlc.arg(resolved_by), resolved_at = now()
WHERE id = sqlc.arg(id) AND status = 'open'
RETURNING *;

-- name: GetProfileOwner :one
SELECT user_id FROM profiles WHERE id = $1;

-- name: GetReportableChatMessage :one
-- A message the reporter profile may read: it took part in the room when the message was
-- posted (the same range rule as reading the room's events). Deleted messages are gone.
SELECT e.id, e.room_id, e.event_index, e.event_type, e.message, e.image_file_id, e.created_at,
       e.caused_by_profile_id::bigint AS author_profile_id, ap.user_id AS author_user_id
FROM chat_events e
JOIN profiles ap ON ap.id = e.caused_by_profile_id
WHERE e.room_id = sqlc.arg(room_id) AND e.event_index = sqlc.arg(event_index)
  AND e.event_type IN ('MESSAGE_POSTED', 'MESSAGE_POSTED_IMAGE') AND e.deleted_at IS NULL
  AND EXISTS (SELECT 1 FROM chat_participants cp
              WHERE cp.room_id = e.room_id AND cp.profile_id = sqlc.arg(reporter_profile_id)
                AND cp.first_event_index <= e.event_index
                AND (cp.left_event_index IS NULL OR cp.left_event_index >= e.event_index));

-- name: InsertAudit :one
INSERT INTO audit_log (actor_user_id, actor, action, target_kind, target_id, reason, request_id, details)
VALUES (sqlc.narg(actor_user_id), sqlc.arg(actor), sqlc.arg(action), sqlc.arg(target_kind), sqlc.arg(target_id),
        sqlc.narg(reason), sqlc.narg(request_id), sqlc.narg(details))
RETURNING *;

-- name: ListAudit :many
SELECT * FROM audit_log
WHERE (sqlc.narg(actor_user_id)::bigint IS NULL OR actor_user_id = sqlc.narg(actor_user_id))
  AND (sqlc.narg(action)::text IS NULL OR action = sqlc.narg(action))
  AND (sqlc.narg(target_kind)::text IS NULL OR target_kind = sqlc.narg(target_kind))
  AND (sqlc.narg(target_id)::bigint IS NULL OR target_id = sqlc.narg(target_id))
  AND id < sqlc.arg(before_id)
ORDER BY id DESC
LIMIT sqlc.arg(max_rows);

-- name: LockUserRow :one
-- Sets or clears the lock; changed says whether the row's state actually flipped.
WITH prev AS (SELECT users.id, users.locked_at FROM users WHERE users.id = sqlc.arg(target_id)::bigint FOR UPDATE)
UPDATE users u
SET locked_at = CASE WHEN sqlc.arg(locked)::boolean THEN coalesce(u.locked_at, now()) END,
    modified_at = CASE WHEN (prev.locked_at IS NULL) = sqlc.arg(locked)::boolean THEN now() ELSE u.modified_at END
FROM prev
WHERE u.id = prev.id
RETURNING u.id, u.locked_at, ((prev.locked_at IS NULL) = sqlc.arg(locked)::boolean)::boolean AS changed;

-- name: LockProfileRow :one
WITH prev AS (SELECT profiles.id, profiles.locked_at FROM profiles WHERE profiles.id = sqlc.arg(target_id)::bigint FOR UPDATE)
UPDATE profiles p
SET locked_at = CASE WHEN sqlc.arg(locked)::boolean THEN coalesce(p.locked_at, now()) END
FROM prev
WHERE p.id = prev.id
RETURNING p.id, p.user_id, p.locked_at, ((prev.locked_at IS NULL) = sqlc.arg(locked)::boolean)::boolean AS changed;

-- name: LockCardRow :one
WITH prev AS (SELECT cards.id, cards.locked_at FROM cards WHERE cards.id = sqlc.arg(target_id)::bigint FOR UPDATE)
UPDATE cards c
SET locked_at = CASE WHEN sqlc.arg(locked)::boolean THEN coalesce(c.locked_at, now()) END
FROM prev
WHERE c.id = prev.id
RETURNING c.id, c.profile_id, c.locked_at, ((prev.locked_at IS NULL) = sqlc.arg(locked)::boolean)::boolean AS changed;

-- name: ProfileIDsOfUser :many
SELECT id FROM profiles WHERE user_id = $1 ORDER BY id;

-- name: SearchUsers :many
-- Prefix of the case-folded login id, nickname or email: each a range [lo, hi) in byte order,
-- an index range scan (00009), OR-ed into one bitmap. Newest account first. For a broad prefix
-- the planner walks the primary key backwards instead and stops at the first page; its weak
-- spot is a prefix estimated broad whose accounts are all old (≈100 ms at 100k users, see the
-- README's benchmark).
SELECT * FROM users
WHERE (((login_key COLLATE "C") >= sqlc.arg(lo)::text AND (login_key COLLATE "C") < sqlc.arg(hi)::text)
    OR ((nickname_key COLLATE "C") >= sqlc.arg(lo)::text AND (nickname_key COLLATE "C") < sqlc.arg(hi)::text)
    OR ((email_key COLLATE "C") >= sqlc.arg(lo)::text AND (email_key COLLATE "C") < sqlc.arg(hi)::text))
  AND id < sqlc.arg(before_id)
ORDER BY id DESC
LIMIT sqlc.arg(max_rows);

-- name: ListProfilesOfUserForAdmin :many
-- Every profile of the user, locked and deleted ones included.
SELECT * FROM profiles
WHERE user_id = sqlc.arg(user_id) AND id > sqlc.arg(after_id)
ORDER BY id
LIMIT sqlc.arg(max_rows);

-- name: PipelineBacklog :one
-- The outbox (users whose file lags what they are owed), the part of it a worker may take now,
-- the oldest change not yet in its file, and the dead-lettered users.
SELECT count(*) FILTER (WHERE built_version < wanted_version)::bigint AS outbox_depth,
       count(*) FILTER (WHERE built_version < wanted_version AND dead_lettered_at IS NULL
                          AND (not_before IS NULL OR not_before <= now()))::bigint AS queue_depth,
       coalesce(EXTRACT(EPOCH FROM now() - min(stale_since) FILTER (WHERE built_version < wanted_version)), 0)::float8 AS oldest_pending_seconds,
       count(*) FILTER (WHERE dead_lettered_at IS NOT NULL)::bigint AS dead_lettered
FROM sync_states
WHERE built_version < wanted_version OR dead_lettered_at IS NOT NULL;

-- name: SetUserRoleByLogin :one
-- The role change of bcactl admin grant/revoke; the caller writes the audit entry in the same
-- transaction.
WITH prev AS (SELECT users.id, users.role FROM users WHERE users.login_key = sqlc.arg(login_key) FOR UPDATE)
UPDATE users u SET role = sqlc.arg(role), modified_at = now()
FROM prev
WHERE u.id = prev.id
RETURNING u.id, prev.role AS previous_role;
