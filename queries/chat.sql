-- Chat rooms, participations and events (docs/product.md §8). Writers of a room lock its row first
-- (LockChatRoom, or AppendChatEvent's UPDATE), so checks made after the lock hold until commit.

-- name: CreateChatRoom :one
INSERT INTO chat_rooms (name, description, owner_profile_id, created_by_profile_id, private)
VALUES (sqlc.arg(name), sqlc.narg(description), sqlc.arg(owner_profile_id), sqlc.arg(owner_profile_id), sqlc.arg(private))
RETURNING *;

-- name: LockChatRoom :one
SELECT * FROM chat_rooms WHERE id = $1 FOR UPDATE;

-- name: GetChatRoomAccess :one
-- A room with what the access rules need about the acting profile.
SELECT sqlc.embed(r),
       lp.id AS live_participant_id,
       coalesce(lp.read_event_index, -1)::bigint AS read_event_index,
       EXISTS (SELECT 1 FROM chat_participants fp
               WHERE fp.room_id = r.id AND fp.profile_id = sqlc.arg(profile_id) AND fp.left_at IS NOT NULL)::boolean AS former,
       EXISTS (SELECT 1 FROM profiles me, profiles owner
               WHERE me.id = sqlc.arg(profile_id) AND owner.id = r.owner_profile_id
                 AND (relation_towards(me.id, owner.user_id, owner.id) = 3
                   OR relation_towards(owner.id, me.user_id, me.id) = 3))::boolean AS blocked_with_owner
FROM chat_rooms r
LEFT JOIN chat_participants lp ON lp.room_id = r.id AND lp.profile_id = sqlc.arg(profile_id) AND lp.left_at IS NULL
WHERE r.id = sqlc.arg(room_id);

-- name: ListChatRoomsOfProfile :many
-- The rooms a profile takes part in, most recently active first; keyset-paginated on
-- (last_event_at, id).
SELECT sqlc.embed(r), p.read_event_index
FROM chat_participants p
JOIN chat_rooms r ON r.id = p.room_id
WHERE p.profile_id = sqlc.arg(profile_id) AND p.left_at IS NULL
  AND (r.last_event_at, r.id) < (sqlc.arg(before_at)::timestamptz, sqlc.arg(before_id)::bigint)
ORDER BY r.last_event_at DESC, r.id DESC
LIMIT sqlc.arg(max_rows);

-- name: ListChatParticipantsOfRooms :many
-- Participations (live and former) of rooms, oldest first, with the profile's current name and
-- image. Profiles that are locked, or whose account is locked or deactivated, are left out:
-- locked things vanish for everyone else.
SELECT p.id, p.room_id, p.profile_id, p.joined_at, p.left_at, p.kicked,
       pr.name, pr.image_file_id, pr.image_file_key
FROM chat_participants p
JOIN profiles pr ON pr.id = p.profile_id
JOIN live_profiles lp ON lp.id = pr.id
WHERE p.room_id = ANY(sqlc.arg(room_ids)::bigint[])
ORDER BY p.room_id, p.joined_at, p.id;

-- name: GetLiveChatParticipant :one
SELECT * FROM chat_participants WHERE room_id = $1 AND profile_id = $2 AND left_at IS NULL;

-- name: CountLiveChatParticipants :one
SELECT count(*) FROM chat_participants WHERE room_id = $1 AND left_at IS NULL;

-- name: OldestLiveChatParticipant :one
-- Who inherits the room when its owner leaves: the longest-standing participant.
SELECT * FROM chat_participants
WHERE room_id = $1 AND left_at IS NULL
ORDER BY joined_at, id
LIMIT 1;

-- name: AddChatParticipant :one
INSERT INTO chat_participants (room_id, profile_id, first_event_index, read_event_index)
VALUES ($1, $2, $3, $4)
RETURNING *;

-- name: MarkChatParticipantLeft :one
UPDATE chat_participants
SET left_at = now(), left_event_index = sqlc.arg(left_event_index)::bigint, kicked = sqlc.arg(kicked)
WHERE room_id = sqlc.arg(room_id) AND profile_id = sqlc.arg(profile_id) AND left_at IS NULL
RETURNING *;

-- name: ListLiveChatRoomIDsOfProfile :many
SELECT room_id FROM chat_participants WHERE profile_id = $1 AND left_at IS NULL ORDER BY room_id;

-- name: FindOneToOneChatRoom :one
-- A live room whose live participants are exactly the two profiles.
SELECT pa.room_id
FROM chat_participants pa
JOIN chat_participants pb ON pb.room_id = pa.room_id AND pb.profile_id = sqlc.arg(b) AND pb.left_at IS NULL
JOIN chat_rooms r ON r.id = pa.room_id AND r.closed_at IS NULL
WHERE pa.profile_id = sqlc.arg(a) AND pa.left_at IS NULL
  AND (SELECT count(*) FROM chat_participants c WHERE c.room_id = pa.room_id AND c.left_at IS NULL) = 2
ORDER BY pa.room_id
LIMIT 1;

-- name: LockChatPair :exec
-- Serialises the creation of 1:1 rooms between the same two profiles (transaction-scoped).
SELECT pg_advisory_xact_lock(hashtextextended('bca.chat.pair:' || least(sqlc.arg(a)::bigint, sqlc.arg(b)::bigint)::text
                                              || ':' || greatest(sqlc.arg(a)::bigint, sqlc.arg(b)::bigint)::text, 0));

-- name: GetChatInviteTargets :many
-- What the invitation rule needs about each target relative to the requesting profile and the
-- room's owner (the requester itself when creating a room). relation_towards: a BLOCK of any
-- profile of a user counts for all of them.
SELECT p.id, p.user_id, p.name, p.can_anonymous_invite,
       (p.deleted_at IS NULL AND EXISTS (SELECT 1 FROM live_profiles lp WHERE lp.id = p.id))::boolean AS alive,
       relation_towards(rq.id, p.user_id, p.id)::smallint AS from_requester,
       relation_towards(p.id, rq.user_id, rq.id)::smallint AS to_requester,
       (relation_towards(ow.id, p.user_id, p.id) = 3 OR relation_towards(p.id, ow.user_id, ow.id) = 3)::boolean AS blocked_with_owner
FROM profiles p
JOIN profiles rq ON rq.id = sqlc.arg(requester_id)
JOIN profiles ow ON ow.id = sqlc.arg(owner_id)
WHERE p.id = ANY(sqlc.arg(profile_ids)::bigint[]);

-- name: GetProfileName :one
SELECT name FROM profiles WHERE id = $1;

-- name: AppendChatEvent :one
-- Allocates the room's next event_index and inserts the event in one statement. The UPDATE
-- takes the room's row lock (held until commit), so indexes are gap-free and in commit order.
-- The causing profile's live participation, if any, is recorded and its read marker moves to
-- the new event. No row when the room is closed.
WITH slot AS (
    UPDATE chat_rooms r SET last_event_index = r.last_event_index + 1, last_event_at = now()
    WHERE r.id = sqlc.arg(room_id) AND r.closed_at IS NULL
    RETURNING r.id, r.last_event_index
), reader AS (
    UPDATE chat_participants p SET read_event_index = greatest(p.read_event_index, slot.last_event_index)
    FROM slot
    WHERE p.room_id = slot.id AND p.profile_id = sqlc.narg(caused_by_profile_id) AND p.left_at IS NULL
    RETURNING p.id
)
INSERT INTO chat_events (room_id, event_index, event_type, message, caused_by_profile_id, caused_by_participant_id,
                         target_profile_id, target_event_index, image_file_id)
SELECT slot.id, slot.last_event_index, sqlc.arg(event_type), sqlc.arg(message), sqlc.narg(caused_by_profile_id),
       (SELECT reader.id FROM reader), sqlc.narg(target_profile_id), sqlc.narg(target_event_index), sqlc.narg(image_file_id)
FROM slot
RETURNING *;

-- name: UpdateChatRoom :one
-- Check-and-write in one statement: only the owner, only from the version named by If-Match.
UPDATE chat_rooms
SET name             = coalesce(sqlc.narg(name), name),
    description      = CASE WHEN sqlc.arg(set_description)::boolean THEN sqlc.narg(description) ELSE description END,
    private          = coalesce(sqlc.narg(private), private),
    owner_profile_id = coalesce(sqlc.narg(new_owner_profile_id), owner_profile_id),
    version          = version + 1,
    modified_at      = now()
WHERE id = sqlc.arg(id) AND owner_profile_id = sqlc.arg(owner_profile_id) AND version = sqlc.arg(version)
  AND closed_at IS NULL
RETURNING *;

-- name: HandOverChatRoom :one
UPDATE chat_rooms SET owner_profile_id = $2, version = version + 1, modified_at = now()
WHERE id = $1
RETURNING *;

-- name: CloseChatRoom :one
UPDATE chat_rooms SET closed_at = now(), version = version + 1, modified_at = now()
WHERE id = $1 AND closed_at IS NULL
RETURNING *;

-- name: ListChatEventsAfter :many
-- Events the profile may read, ascending from after (exclusive) up to before (exclusive). A
-- profile reads what happened during its participations.
SELECT e.* FROM chat_events e
WHERE e.room_id = sqlc.arg(room_id)
  AND e.event_index > sqlc.arg(after_index) AND e.event_index < sqlc.arg(before_index)
  AND EXISTS (SELECT 1 FROM chat_participants p
              WHERE p.room_id = e.room_id AND p.profile_id = sqlc.arg(profile_id)
                AND e.event_index >= p.first_event_index
                AND (p.left_event_index IS NULL OR e.event_index <= p.left_event_index))
ORDER BY e.event_index
LIMIT sqlc.arg(max_rows);

-- name: ListChatEventsBefore :many
-- The newest events the profile may read below before (exclusive) and above after (exclusive),
-- newest first (the caller reverses the page).
SELECT e.* FROM chat_events e
WHERE e.room_id = sqlc.arg(room_id)
  AND e.event_index > sqlc.arg(after_index) AND e.event_index < sqlc.arg(before_index)
  AND EXISTS (SELECT 1 FROM chat_participants p
              WHERE p.room_id = e.room_id AND p.profile_id = sqlc.arg(profile_id)
                AND e.event_index >= p.first_event_index
                AND (p.left_event_index IS NULL OR e.event_index <= p.left_event_index))
ORDER BY e.event_index DESC
LIMIT sqlc.arg(max_rows);

-- name: GetChatEvent :one
SELECT * FROM chat_events WHERE room_id = $1 AND event_index = $2;

-- name: DeleteChatMessage :one
-- Replaces a message's content; returns the image it carried so the file can be released.
WITH old AS (
    SELECT e.id, e.image_file_id FROM chat_events e
    WHERE e.room_id = sqlc.arg(room_id) AND e.event_index = sqlc.arg(event_index) AND e.deleted_at IS NULL
    FOR UPDATE
)
UPDATE chat_events e
SET message = sqlc.arg(message), image_file_id = NULL, deleted_at = now()
FROM old
WHERE e.id = old.id
RETURNING old.image_file_id AS released_file_id;

-- name: SetChatReadMarker :one
-- Read markers only move forward and never past the room's last event.
UPDATE chat_participants p
SET read_event_index = greatest(p.read_event_index, least(sqlc.arg(event_index)::bigint, r.last_event_index))
FROM chat_rooms r
WHERE r.id = p.room_id AND p.room_id = sqlc.arg(room_id) AND p.profile_id = sqlc.arg(profile_id) AND p.left_at IS NULL
RETURNING p.read_event_index, r.last_event_index;

-- name: ListChatAudience :many
-- Who hears of a room's events: the live participants, plus the profiles the events are about
-- (someone who just left or was removed still learns of it), with their users for push.
SELECT p.id AS profile_id, p.user_id, r.name AS room_name,
       EXISTS (SELECT 1 FROM chat_participants c WHERE c.room_id = r.id AND c.profile_id = p.id AND c.left_at IS NULL)::boolean AS live
FROM chat_rooms r
JOIN profiles p ON p.id IN (SELECT c.profile_id FROM chat_participants c WHERE c.room_id = r.id AND c.left_at IS NULL)
                OR p.id = ANY(sqlc.arg(target_profile_ids)::bigint[])
WHERE r.id = sqlc.arg(room_id);

-- name: ListChatStreamPositions :many
-- The rooms a profile has ever taken part in, with their last event and whether the profile is
-- in them now: where a live stream starts and how it checks that it missed nothing.
SELECT r.id AS room_id, r.last_event_index, bool_or(p.left_at IS NULL)::boolean AS live
FROM chat_participants p
JOIN chat_rooms r ON r.id = p.room_id
WHERE p.profile_id = $1
GROUP BY r.id, r.last_event_index;
