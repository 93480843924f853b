-- name: CreateFile :one
INSERT INTO files (owner_user_id, storage_key, content_type, size, md5)
VALUES ($1, $2, $3, $4, $5)
RETURNING *;

-- name: GetFile :one
SELECT * FROM files WHERE id = $1;

-- name: GetOwnedFile :one
SELECT * FROM files WHERE id = $1 AND owner_user_id = $2;

-- name: DeleteFileIfUnreferenced :one
-- Removes the metadata row of a file nothing points at any more and returns its storage key, so
-- the object can be removed after the transaction commits.
DELETE FROM files f
WHERE f.id = $1
  AND NOT EXISTS (SELECT 1 FROM users u WHERE u.image_file_id = f.id)
  AND NOT EXISTS (SELECT 1 FROM profiles p WHERE p.image_file_id = f.id)
  AND NOT EXISTS (SELECT 1 FROM cards c WHERE c.preview_file_id = f.id)
  AND NOT EXISTS (SELECT 1 FROM chat_events e WHERE e.image_file_id = f.id)
RETURNING f.storage_key;

-- name: GetFileForRead :one
-- A file by its public id, with what it is attached to, for the read rule of docs/product.md §7:
-- a file may be read by whoever may see what it belongs to. in_viewers_chat: the file is an
-- image posted in a room while one of the viewer's live profiles took part in it.
SELECT f.*,
       EXISTS (SELECT 1 FROM users u WHERE u.image_file_id = f.id)::boolean AS account_image,
       coalesce((SELECT array_agg(p.id ORDER BY p.id) FROM profiles p WHERE p.image_file_id = f.id), '{}')::bigint[] AS profile_ids,
       coalesce((SELECT array_agg(c.id ORDER BY c.id) FROM cards c WHERE c.preview_file_id = f.id), '{}')::bigint[] AS card_ids,
       EXISTS (SELECT 1 FROM chat_events e
               JOIN chat_participants cp ON cp.room_id = e.room_id
               JOIN profiles pr ON pr.id = cp.profile_id
               WHERE e.image_file_id = f.id AND pr.user_id = sqlc.arg(viewer_user_id)
                 AND pr.deleted_at IS NULL AND pr.locked_at IS NULL
                 AND e.event_index >= cp.first_event_index
                 AND (cp.left_event_index IS NULL OR e.event_index <= cp.left_event_index))::boolean AS in_viewers_chat
FROM files f
WHERE f.public_id = sqlc.arg(public_id);

-- name: FileUsageOfOwner :one
-- Bytes stored for an account's uploads, for the storage quota.
SELECT coalesce(sum(size), 0)::bigint AS bytes FROM files WHERE owner_user_id = $1;

-- name: DeleteUnattachedFiles :many
-- The sweeper: removes uploads older than the cutoff that nothing refers to, a batch at a time,
-- and returns their storage keys so the objects can be removed after the commit.
DELETE FROM files f
WHERE f.id IN (
    SELECT g.id FROM files g
    WHERE g.created_at < sqlc.arg(cutoff)
      AND NOT EXISTS (SELECT 1 FROM users u WHERE u.image_file_id = g.id)
      AND NOT EXISTS (SELECT 1 FROM profiles p WHERE p.image_file_id = g.id)
      AND NOT EXISTS (SELECT 1 FROM cards c WHERE c.preview_file_id = g.id)
      AND NOT EXISTS (SELECT 1 FROM chat_events e WHERE e.image_file_id = g.id)
    ORDER BY g.created_at
    LIMIT sqlc.arg(max_rows)
    FOR UPDATE SKIP LOCKED)
RETURNING f.storage_key;
