-- +goose Up
-- A profile is live when neither it nor its owner's account is locked and the account is not
-- deactivated (docs/product.md §4). Deleted profiles can be live: their tombstones are still
-- shown to those allowed to see them. Every query that needs the predicate joins this view
-- (or asks EXISTS of it) instead of copying it; PostgreSQL inlines it.
CREATE VIEW live_profiles AS
SELECT p.id, p.user_id
FROM profiles p
JOIN users u ON u.id = p.user_id
WHERE p.locked_at IS NULL AND u.locked_at IS NULL AND u.deactivated_at IS NULL;

-- +goose Down
DROP VIEW live_profiles;
