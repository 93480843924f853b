-- +goose Up
-- What the sync worker needs beyond the outbox columns of 00002: retry scheduling, dead-letter
-- tracking, and a list of objects to delete later.

-- not_before: no worker or sweeper takes the user before this time. A claim sets it to the end
-- of its lease (a crashed worker's claim lapses), a failure to the end of its back-off, a
-- publish clears it.
-- attempts (00002) counts failures since the last publish; after too many the user is
-- dead-lettered: dead_lettered_at is set, a metric counts it, and the user is parked (not_before
-- an hour ahead) instead of being retried in a tight loop.
ALTER TABLE sync_states
    ADD COLUMN not_before       timestamptz,
    ADD COLUMN last_error       text,
    ADD COLUMN dead_lettered_at timestamptz;

-- Objects that are, or may become, unreferenced: a replaced file (kept for a grace period, so a
-- download or presigned URL that started before the switch still finds it) and a file being
-- uploaded (removed from this list when it is published; if the worker dies first, the object
-- is collected when the entry expires). The sweeper deletes objects whose time has come.
CREATE TABLE sync_garbage (
    storage_key  text        PRIMARY KEY,
    delete_after timestamptz NOT NULL
);
CREATE INDEX sync_garbage_due_idx ON sync_garbage (delete_after);

-- The sweeper's look-ups: dead-lettered users (a gauge), files written by an older builder
-- (rebuilt after a builder change), and own profiles whose 30-day tombstone just expired.
CREATE INDEX sync_states_dead_idx ON sync_states (dead_lettered_at) WHERE dead_lettered_at IS NOT NULL;
CREATE INDEX sync_states_builder_idx ON sync_states (builder_schema);
CREATE UNIQUE INDEX sync_states_storage_key_uq ON sync_states (storage_key);
CREATE INDEX profiles_deleted_idx ON profiles (deleted_at) WHERE deleted_at IS NOT NULL;

-- +goose Down
DROP INDEX profiles_deleted_idx;
DROP INDEX sync_states_storage_key_uq;
DROP INDEX sync_states_builder_idx;
DROP INDEX sync_states_dead_idx;
DROP TABLE sync_garbage;
ALTER TABLE sync_states
    DROP COLUMN dead_lettered_at,
    DROP COLUMN last_error,
    DROP COLUMN not_before;
