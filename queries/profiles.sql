-- name: CreateProfile :one
INSERT INTO profiles (user_id, name, team_name, description, data, private, can_anonymous_invite, is_follow_list_public)
VALUES ($1, $2, $3, $4, $5, $6, $7, $8)
RETURNING *;

-- name: GetActingProfile :one
-- The acting profile must be the caller's own, live and unlocked (an id comparison, never a
-- text search).
SELECT p.id FROM profiles p
WHERE p.id = sqlc.arg(profile_id) AND p.user_id = sqlc.arg(user_id)
  AND p.deleted_at IS NULL AND p.locked_at IS NULL;

-- name: GetProfileView :one
-- A profile with what the visibility rules need: whether it is live, and the
-- relations between it and the viewer (relation_towards: a BLOCK of any profile of the viewer's
-- user counts; 0 when none, or no acting profile).
SELECT sqlc.embed(p),
       EXISTS (SELECT 1 FROM live_profiles lp WHERE lp.id = p.id)::boolean AS live,
       relation_towards(sqlc.arg(viewer_profile_id), p.user_id, p.id)::smallint AS from_viewer,
       relation_towards(p.id, sqlc.arg(viewer_user_id), sqlc.arg(viewer_profile_id))::smallint AS to_viewer
FROM profiles p
WHERE p.id = sqlc.arg(profile_id);

-- name: ListProfilesOfUser :many
SELECT * FROM profiles
WHERE user_id = sqlc.arg(user_id) AND id > sqlc.arg(after_id)
ORDER BY id
LIMIT sqlc.arg(max_rows);

-- name: GetOwnProfile :one
SELECT * FROM profiles WHERE id = sqlc.arg(id) AND user_id = sqlc.arg(user_id);

-- name: UpdateProfile :one
-- Check-and-write in one statement: of two writers holding the same version only one matches.
UPDATE profiles
SET name                  = coalesce(sqlc.narg(name), name),
    team_name             = CASE WHEN sqlc.arg(set_team_name)::boolean THEN sqlc.narg(team_name) ELSE team_name END,
    description           = CASE WHEN sqlc.arg(set_description)::boolean THEN sqlc.narg(description) ELSE description END,
    data                  = coalesce(sqlc.narg(data), data),
    private               = coalesce(sqlc.narg(private), private),
    can_anonymous_invite  = coalesce(sqlc.narg(can_anonymous_invite), can_anonymous_invite),
    is_follow_list_public = coalesce(sqlc.narg(is_follow_list_public), is_follow_list_public),
    version               = version + 1,
    modified_at           = now()
WHERE id = sqlc.arg(id) AND user_id = sqlc.arg(user_id) AND version = sqlc.arg(version) AND deleted_at IS NULL
RETURNING *;

-- name: SoftDeleteProfile :one
UPDATE profiles
SET deleted_at = now(), why_deleted = sqlc.narg(why_deleted), version = version + 1, modified_at = now()
WHERE id = sqlc.arg(id) AND user_id = sqlc.arg(user_id) AND version = sqlc.arg(version) AND deleted_at IS NULL
RETURNING *;

-- name: SetProfileImage :one
-- Returns the changed row; the previous image id is read first (FOR UPDATE) by the caller.
UPDATE profiles SET image_file_id = sqlc.narg(image_file_id), version = version + 1, modified_at = now()
WHERE id = sqlc.arg(id) AND user_id = sqlc.arg(user_id) AND deleted_at IS NULL
RETURNING *;

-- name: LockOwnProfileForUpdate :one
SELECT * FROM profiles WHERE id = sqlc.arg(id) AND user_id = sqlc.arg(user_id) FOR UPDATE;

-- name: ListLiveProfileIDsOfUser :many
SELECT id FROM profiles WHERE user_id = $1 AND deleted_at IS NULL;
