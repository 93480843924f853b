-- name: CreateProfile :one
INSERT INTO profiles (user_id, name, team_name, description, data, private, can_anonymous_invite, is_follow_list_public)
VALUES ($1, $2, $3, $4, $5, $6, $7, $8)
RETURNING *;
