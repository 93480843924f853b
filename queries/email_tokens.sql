-- name: CreateEmailToken :one
INSERT INTO email_tokens (user_id, purpose, token_hash, email, expires_at)
VALUES ($1, $2, $3, $4, $5)
RETURNING id;

-- name: ConsumeEmailToken :one
-- Single use: the first caller marks it used; a second, an expired or a wrong-purpose token finds nothing.
UPDATE email_tokens SET used_at = now()
WHERE token_hash = $1 AND purpose = $2 AND used_at IS NULL AND expires_at > now()
RETURNING user_id, email;

-- name: InvalidateEmailTokens :exec
-- Older links of the same purpose stop working once a new one is sent or one is used.
UPDATE email_tokens SET used_at = now()
WHERE user_id = $1 AND purpose = $2 AND used_at IS NULL;
