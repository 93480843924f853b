-- +goose Up
-- Share links of cards (docs/product.md §6 "Sharing"). A link is a random token of 256 bits that
-- is never derived from ids. The database keeps only its SHA-256 (to find the link) and the token
-- sealed with a key derived from SECRET_KEY (so the owner can list the link again): a leaked
-- database alone hands out no working link.
CREATE TABLE card_shares (
    id                 bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    card_id            bigint      NOT NULL REFERENCES cards (id),
    token_hash         bytea       NOT NULL CHECK (octet_length(token_hash) = 32),
    token_sealed       bytea       NOT NULL,
    created_by_user_id bigint      NOT NULL REFERENCES users (id),
    created_at         timestamptz NOT NULL DEFAULT now(),
    expires_at         timestamptz,
    max_uses           integer     CHECK (max_uses > 0),
    use_count          integer     NOT NULL DEFAULT 0 CHECK (use_count >= 0),
    revoked_at         timestamptz,
    CHECK (max_uses IS NULL OR use_count <= max_uses)
);
CREATE UNIQUE INDEX card_shares_token_uq ON card_shares (token_hash);
CREATE INDEX card_shares_card_idx ON card_shares (card_id, id);

-- +goose Down
DROP TABLE card_shares;
