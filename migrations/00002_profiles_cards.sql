-- +goose Up
-- Relations, cards, subscriptions, and the per-user sync state that every visible change bumps in
-- the same transaction (the outbox of docs/sync.md §4).

-- One relation per ordered pair. Status numbers are the ones the sync file uses:
-- 1 FOLLOW, 2 HIDE, 3 BLOCK, 4 FOLLOW_REQUESTED.
CREATE TABLE relations (
    id              bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    from_profile_id bigint      NOT NULL REFERENCES profiles (id),
    to_profile_id   bigint      NOT NULL REFERENCES profiles (id),
    status          smallint    NOT NULL CHECK (status BETWEEN 1 AND 4),
    version         bigint      NOT NULL DEFAULT 1,
    created_at      timestamptz NOT NULL DEFAULT now(),
    modified_at     timestamptz NOT NULL DEFAULT now(),
    CHECK (from_profile_id <> to_profile_id)
);
CREATE UNIQUE INDEX relations_pair_uq ON relations (from_profile_id, to_profile_id);
CREATE INDEX relations_to_idx ON relations (to_profile_id, status);

CREATE TABLE cards (
    id              bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    profile_id      bigint      NOT NULL REFERENCES profiles (id),
    name            text        NOT NULL,
    data            jsonb       NOT NULL DEFAULT '{}' CHECK (jsonb_typeof(data) = 'object'),
    preview_file_id bigint      REFERENCES files (id),
    private         boolean     NOT NULL DEFAULT false,
    version         bigint      NOT NULL DEFAULT 1,
    created_at      timestamptz NOT NULL DEFAULT now(),
    modified_at     timestamptz NOT NULL DEFAULT now(),
    deleted_at      timestamptz,
    why_deleted     text,
    locked_at       timestamptz
);
CREATE INDEX cards_profile_idx ON cards (profile_id, id);

-- A subscription is live while its row exists: unsubscribing deletes it, so the unique index
-- is exactly "one live subscription per profile and card".
CREATE TABLE card_subscriptions (
    id          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    card_id     bigint      NOT NULL REFERENCES cards (id),
    profile_id  bigint      NOT NULL REFERENCES profiles (id),
    version     bigint      NOT NULL DEFAULT 1,
    created_at  timestamptz NOT NULL DEFAULT now(),
    modified_at timestamptz NOT NULL DEFAULT now()
);
CREATE UNIQUE INDEX card_subscriptions_uq ON card_subscriptions (profile_id, card_id);
CREATE INDEX card_subscriptions_card_idx ON card_subscriptions (card_id);

-- wanted_version counts changes to what the user's file holds; built_version is the change the
-- stored file reflects. stale_since is when the file first fell behind (for the sweeper and the
-- lag metric).
CREATE TABLE sync_states (
    user_id        bigint      PRIMARY KEY REFERENCES users (id),
    wanted_version bigint      NOT NULL DEFAULT 1,
    built_version  bigint      NOT NULL DEFAULT 0,
    stale_since    timestamptz DEFAULT now(),
    built_at       timestamptz,
    etag           text,
    size           bigint,
    storage_key    text,
    builder_schema integer,
    attempts       integer     NOT NULL DEFAULT 0,
    CHECK (built_version <= wanted_version)
);
CREATE INDEX sync_states_stale_idx ON sync_states (stale_since) WHERE built_version < wanted_version;

-- +goose Down
DROP TABLE sync_states;
DROP TABLE card_subscriptions;
DROP TABLE cards;
DROP TABLE relations;
