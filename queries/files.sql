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
