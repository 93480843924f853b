-- +goose Up
-- Moderation (docs/product.md §9): reports from users, the append-only audit log of admin
-- actions, and the index that makes the admin's user search a range scan.

-- A report is made by a user acting as one of their profiles, about a profile, a card or one
-- chat message. target_key names the reported thing ("profile:7", "card:3",
-- "chat_message:12:40"): reporting the same thing again while the first report is open returns
-- the first one. A reported chat message is copied into evidence at report time, so the copy
-- outlives the author deleting the message; only admins can read it.
CREATE TABLE reports (
    id                   bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    reporter_user_id     bigint      NOT NULL REFERENCES users (id),
    reporter_profile_id  bigint      NOT NULL REFERENCES profiles (id),
    kind                 text        NOT NULL CHECK (kind IN ('profile', 'card', 'chat_message')),
    target_key           text        NOT NULL,
    -- the profile the report is about: the reported profile, the card's profile, the author
    target_profile_id    bigint      NOT NULL REFERENCES profiles (id),
    target_user_id       bigint      NOT NULL REFERENCES users (id),
    target_card_id       bigint      REFERENCES cards (id),
    target_room_id       bigint      REFERENCES chat_rooms (id),
    target_event_index   bigint,
    reason               text        NOT NULL CHECK (reason IN ('spam', 'harassment', 'inappropriate', 'impersonation', 'illegal', 'other')),
    details              text        CHECK (length(details) <= 1000),
    evidence             jsonb,
    status               text        NOT NULL DEFAULT 'open' CHECK (status IN ('open', 'closed')),
    resolution_action    text        CHECK (resolution_action IN ('dismiss', 'lock_target', 'lock_user')),
    resolution_note      text,
    resolved_by_user_id  bigint      REFERENCES users (id),
    resolved_at          timestamptz,
    created_at           timestamptz NOT NULL DEFAULT now(),
    CHECK ((status = 'closed') = (resolved_at IS NOT NULL)),
    CHECK ((kind = 'card') = (target_card_id IS NOT NULL)),
    CHECK ((kind = 'chat_message') = (target_room_id IS NOT NULL AND target_event_index IS NOT NULL))
);
CREATE UNIQUE INDEX reports_open_once_uq ON reports (reporter_profile_id, target_key) WHERE status = 'open';
CREATE INDEX reports_reporter_idx ON reports (reporter_user_id, id);
CREATE INDEX reports_queue_idx ON reports (status, kind, id);

-- Every admin action and every role change made with bcactl: who (an admin user, or an
-- operator at a shell), what, on which target, why, when and in which request. Written in the
-- transaction of the action. Nothing may change or remove a row: the trigger refuses UPDATE,
-- DELETE and TRUNCATE for every database role, the service's own included.
CREATE TABLE audit_log (
    id            bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    at            timestamptz NOT NULL DEFAULT now(),
    actor_user_id bigint      REFERENCES users (id),
    actor         text        NOT NULL CHECK (actor <> ''),
    action        text        NOT NULL CHECK (action <> ''),
    target_kind   text        NOT NULL CHECK (target_kind IN ('user', 'profile', 'card', 'report')),
    target_id     bigint      NOT NULL,
    reason        text,
    request_id    text,
    details       jsonb
);
CREATE INDEX audit_log_target_idx ON audit_log (target_kind, target_id, id);
CREATE INDEX audit_log_actor_idx ON audit_log (actor_user_id, id);
CREATE INDEX audit_log_action_idx ON audit_log (action, id);

-- +goose StatementBegin
CREATE FUNCTION audit_log_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'audit_log is append-only: % refused', TG_OP USING ERRCODE = 'insufficient_privilege';
END;
$$;
-- +goose StatementEnd
CREATE TRIGGER audit_log_no_change BEFORE UPDATE OR DELETE ON audit_log
    FOR EACH ROW EXECUTE FUNCTION audit_log_append_only();
CREATE TRIGGER audit_log_no_truncate BEFORE TRUNCATE ON audit_log
    FOR EACH STATEMENT EXECUTE FUNCTION audit_log_append_only();

-- The admin's user search: a case-insensitive prefix of login id, nickname or email. The keys
-- are already case-folded by the application; in byte order ("C") a prefix is one range
-- [prefix, prefix + U+10FFFF), an index range scan whatever the database collation.
CREATE INDEX users_login_key_prefix_idx ON users ((login_key COLLATE "C"));
CREATE INDEX users_nickname_key_prefix_idx ON users ((nickname_key COLLATE "C"));
CREATE INDEX users_email_key_prefix_idx ON users ((email_key COLLATE "C"));

-- +goose Down
DROP INDEX users_email_key_prefix_idx;
DROP INDEX users_nickname_key_prefix_idx;
DROP INDEX users_login_key_prefix_idx;
DROP TABLE audit_log;
DROP FUNCTION audit_log_append_only();
DROP TABLE reports;
