-- name: CreateUser :one
INSERT INTO users (login_id, login_key, nickname, nickname_key, email, email_key, password_hash, description, email_verified_at)
VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)
RETURNING *;

-- name: GetUserByID :one
SELECT * FROM users WHERE id = $1;

-- name: GetUserByEmailKey :one
SELECT * FROM users WHERE email_key = $1;

-- name: ListTakenUserKeys :one
-- Which of the given keys are already taken, to name every clashing field at once. A NULL key
-- is not asked about.
SELECT
    coalesce(bool_or(login_key = sqlc.narg(login_key)), false)::boolean       AS login_taken,
    coalesce(bool_or(nickname_key = sqlc.narg(nickname_key)), false)::boolean AS nickname_taken,
    coalesce(bool_or(email_key = sqlc.narg(email_key)), false)::boolean       AS email_taken
FROM users
WHERE (login_key = sqlc.narg(login_key) OR nickname_key = sqlc.narg(nickname_key) OR email_key = sqlc.narg(email_key))
  AND id <> sqlc.arg(except_user_id);

-- name: RecordFailedSignIn :one
-- Counts a failure atomically; from the fifth consecutive failure on, the account is locked for a
-- time that doubles with each further failure (1 min, 2 min, 4 min … capped at one hour). The
-- exponent is capped, not the product: 2^n minutes overflows an interval after ~40 failures.
UPDATE users
SET failed_signins = failed_signins + 1,
    signin_locked_until = CASE
        WHEN failed_signins + 1 >= sqlc.arg(threshold)::integer
        THEN now() + least(interval '1 hour', interval '1 minute' * power(2, least(failed_signins + 1 - sqlc.arg(threshold)::integer, 6)))
        ELSE signin_locked_until
    END
WHERE id = $1
RETURNING failed_signins, signin_locked_until;

-- name: ClearFailedSignIns :exec
UPDATE users SET failed_signins = 0, signin_locked_until = NULL
WHERE id = $1 AND (failed_signins <> 0 OR signin_locked_until IS NOT NULL);

-- name: UpdateUserPasswordHash :exec
UPDATE users SET password_hash = $2, modified_at = now() WHERE id = $1;

-- name: ResetUserPassword :exec
-- A reset also clears the sign-in lock: the owner proved control of the mailbox.
UPDATE users SET password_hash = $2, failed_signins = 0, signin_locked_until = NULL, modified_at = now()
WHERE id = $1;

-- name: UpdateUserProfileFields :one
UPDATE users
SET nickname     = coalesce(sqlc.narg(nickname), nickname),
    nickname_key = coalesce(sqlc.narg(nickname_key), nickname_key),
    login_id     = coalesce(sqlc.narg(login_id), login_id),
    login_key    = coalesce(sqlc.narg(login_key), login_key),
    description  = CASE WHEN sqlc.arg(set_description)::boolean THEN sqlc.narg(description) ELSE description END,
    modified_at  = now()
WHERE id = sqlc.arg(id)
RETURNING *;

-- name: SetUserImage :one
-- Returns the previous image so the caller can remove it once the change commits.
WITH prev AS (SELECT image_file_id FROM users WHERE id = $1 FOR UPDATE)
UPDATE users u SET image_file_id = $2, modified_at = now()
FROM prev
WHERE u.id = $1
RETURNING prev.image_file_id AS previous_file_id;

-- name: MarkEmailVerified :one
UPDATE users SET email_verified_at = coalesce(email_verified_at, now()), modified_at = now()
WHERE id = $1 AND email_key = $2
RETURNING *;

-- name: DeactivateUser :execrows
UPDATE users SET deactivated_at = now(), deactivation_reason = $2, modified_at = now()
WHERE id = $1 AND deactivated_at IS NULL;

-- name: SetUserRole :execrows
UPDATE users SET role = $2, modified_at = now() WHERE login_key = $1;

-- name: SetUserLocked :execrows
UPDATE users
SET locked_at = CASE WHEN sqlc.arg(locked)::boolean THEN coalesce(locked_at, now()) ELSE NULL END,
    modified_at = now()
WHERE id = $1;
