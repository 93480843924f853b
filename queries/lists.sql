-- name: ListCardSubscriptionsOf :many
-- The cards a profile saved, oldest first, paged by subscription id (listMySubscriptions).
SELECT * FROM card_subscriptions
WHERE profile_id = sqlc.arg(profile_id) AND id > sqlc.arg(after_id)
ORDER BY id
LIMIT sqlc.arg(max_rows);
