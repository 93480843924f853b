-- +goose Up
-- Accounts, sessions, one-time email tokens and uploaded files.
-- Login id, nickname and email keep the case the user typed; uniqueness is on normalised keys
-- (NFC, case-folded) computed by the application, so "Jane" and "jane" cannot both exist.

CREATE TABLE users (
    id                  bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    login_id            text        NOT NULL,
    login_key           text        NOT NULL,
    nickname            text        NOT NULL,
    nickname_key        text        NOT NULL,
    email               text        NOT NULL,
    email_key           text        NOT NULL,
    password_hash       text        NOT NULL,
    description         text,
    image_file_id       bigint,
    role                text        NOT NULL DEFAULT 'user' CHECK (role IN ('user', 'admin')),
    email_verified_at   timestamptz,
    failed_signins      integer     NOT NULL DEFAULT 0 CHECK (failed_signins >= 0),
    signin_locked_until timestamptz,
    deactivated_at      timestamptz,
    deactivation_reason text,
    locked_at           timestamptz,
    created_at          timestamptz NOT NULL DEFAULT now(),
    modified_at         timestamptz NOT NULL DEFAULT now()
);
-- Deactivated accounts keep their keys: freeing them would let someone impersonate the old owner.
CREATE UNIQUE INDEX users_login_key_uq ON users (login_key);
CREATE UNIQUE INDEX users_nickname_key_uq ON users (nickname_key);
CREATE UNIQUE INDEX users_email_key_uq ON users (email_key);

CREATE TABLE files (
    id            bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    owner_user_id bigint      NOT NULL REFERENCES users (id),
    storage_key   text        NOT NULL UNIQUE,
    content_type  text        NOT NULL,
    size          bigint      NOT NULL CHECK (size >= 0),
    md5           text        NOT NULL,
    created_at    timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX files_owner_idx ON files (owner_user_id);

ALTER TABLE users ADD CONSTRAINT users_image_file_fk FOREIGN KEY (image_file_id) REFERENCES files (id);

CREATE TABLE sessions (
    id           bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    user_id      bigint      NOT NULL REFERENCES users (id),
    -- SHA-256 of the current refresh secret; the secret itself is never stored.
    refresh_hash bytea       NOT NULL,
    device_token text,
    user_agent   text,
    created_at   timestamptz NOT NULL DEFAULT now(),
    last_used_at timestamptz NOT NULL DEFAULT now(),
    expires_at   timestamptz NOT NULL,
    revoked_at   timestamptz,
    revoke_reason text
);
CREATE UNIQUE INDEX sessions_refresh_hash_uq ON sessions (refresh_hash);
CREATE INDEX sessions_user_live_idx ON sessions (user_id) WHERE revoked_at IS NULL;

-- Refresh secrets that were rotated away. Presenting one again means it was copied: the whole
-- session is revoked.
CREATE TABLE retired_refresh_tokens (
    refresh_hash bytea       PRIMARY KEY,
    session_id   bigint      NOT NULL REFERENCES sessions (id) ON DELETE CASCADE,
    retired_at   timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE email_tokens (
    id         bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    user_id    bigint      NOT NULL REFERENCES users (id),
    purpose    text        NOT NULL CHECK (purpose IN ('verify_email', 'reset_password')),
    token_hash bytea       NOT NULL UNIQUE,
    email      text        NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now(),
    expires_at timestamptz NOT NULL,
    used_at    timestamptz
);
CREATE INDEX email_tokens_user_idx ON email_tokens (user_id, purpose);

-- Profiles are created here because sign-up may carry the first one.
CREATE TABLE profiles (
    id                    bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    user_id               bigint      NOT NULL REFERENCES users (id),
    name                  text        NOT NULL,
    team_name             text,
    description           text,
    data                  jsonb       NOT NULL DEFAULT '{}' CHECK (jsonb_typeof(data) = 'object'),
    image_file_id         bigint      REFERENCES files (id),
    private               boolean     NOT NULL DEFAULT true,
    can_anonymous_invite  boolean     NOT NULL DEFAULT false,
    is_follow_list_public boolean     NOT NULL DEFAULT false,
    version               bigint      NOT NULL DEFAULT 1,
    created_at            timestamptz NOT NULL DEFAULT now(),
    modified_at           timestamptz NOT NULL DEFAULT now(),
    deleted_at            timestamptz,
    why_deleted           text,
    locked_at             timestamptz
);
CREATE INDEX profiles_user_idx ON profiles (user_id);

-- +goose Down
DROP TABLE profiles;
DROP TABLE email_tokens;
DROP TABLE retired_refresh_tokens;
DROP TABLE sessions;
ALTER TABLE users DROP CONSTRAINT users_image_file_fk;
DROP TABLE files;
DROP TABLE users;
