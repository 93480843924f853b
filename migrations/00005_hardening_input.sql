-- +goose Up
-- Files and request input, hardened (docs/product.md §7, §2).
--
-- 1. Files get an unguessable public id: the only id that appears in a URL
--    (/api/v1/files/{public_id}). It is a random UUIDv4 (122 random bits), so it tells nothing
--    about order or count. The bigint id stays internal (foreign keys, preview_file_id).
-- 2. Every row that shows a file keeps the file's public id next to its file id, set by a
--    trigger from the files table, so every read that already loads the row can build the URL
--    without another look-up, and the two can never disagree.
-- 3. CHECK constraints back the input rules the API enforces: the login id pattern (no '@', so
--    a login id can never equal an email and sign-in is never ambiguous), name and text lengths,
--    no control characters in names. PostgreSQL text cannot hold NUL at all.

ALTER TABLE files ADD COLUMN public_id text NOT NULL DEFAULT gen_random_uuid()::text;
CREATE UNIQUE INDEX files_public_id_uq ON files (public_id);
-- The sweeper's look-up: old uploads, oldest first.
CREATE INDEX files_created_idx ON files (created_at);

ALTER TABLE users ADD COLUMN image_file_key text;
ALTER TABLE profiles ADD COLUMN image_file_key text;
ALTER TABLE cards ADD COLUMN preview_file_key text;
ALTER TABLE chat_events ADD COLUMN image_file_key text;

UPDATE users u SET image_file_key = f.public_id FROM files f WHERE f.id = u.image_file_id;
UPDATE profiles p SET image_file_key = f.public_id FROM files f WHERE f.id = p.image_file_id;
UPDATE cards c SET preview_file_key = f.public_id FROM files f WHERE f.id = c.preview_file_id;
UPDATE chat_events e SET image_file_key = f.public_id FROM files f WHERE f.id = e.image_file_id;

-- +goose StatementBegin
CREATE FUNCTION file_public_id(file_id bigint) RETURNS text
LANGUAGE sql STABLE AS $$ SELECT public_id FROM files WHERE id = file_id $$;
-- +goose StatementEnd

-- +goose StatementBegin
CREATE FUNCTION set_image_file_key() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    NEW.image_file_key := file_public_id(NEW.image_file_id);
    RETURN NEW;
END $$;
-- +goose StatementEnd

-- +goose StatementBegin
CREATE FUNCTION set_preview_file_key() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    NEW.preview_file_key := file_public_id(NEW.preview_file_id);
    RETURN NEW;
END $$;
-- +goose StatementEnd

CREATE TRIGGER users_image_file_key BEFORE INSERT OR UPDATE OF image_file_id, image_file_key ON users
    FOR EACH ROW EXECUTE FUNCTION set_image_file_key();
CREATE TRIGGER profiles_image_file_key BEFORE INSERT OR UPDATE OF image_file_id, image_file_key ON profiles
    FOR EACH ROW EXECUTE FUNCTION set_image_file_key();
CREATE TRIGGER chat_events_image_file_key BEFORE INSERT OR UPDATE OF image_file_id, image_file_key ON chat_events
    FOR EACH ROW EXECUTE FUNCTION set_image_file_key();
CREATE TRIGGER cards_preview_file_key BEFORE INSERT OR UPDATE OF preview_file_id, preview_file_key ON cards
    FOR EACH ROW EXECUTE FUNCTION set_preview_file_key();

-- Input invariants (docs/product.md §3, §4, §6, §8). Lengths are in characters, as in openapi.yaml.
ALTER TABLE users
    ADD CONSTRAINT users_login_id_ck CHECK (login_id ~ '^[A-Za-z0-9_-]{4,48}$'),
    ADD CONSTRAINT users_nickname_ck CHECK (char_length(nickname) BETWEEN 1 AND 48 AND nickname !~ '[[:cntrl:]]'),
    ADD CONSTRAINT users_email_ck CHECK (char_length(email) BETWEEN 3 AND 254 AND email LIKE '%@%' AND email !~ '[[:cntrl:]]'),
    ADD CONSTRAINT users_description_ck CHECK (char_length(description) <= 1024);
ALTER TABLE profiles
    ADD CONSTRAINT profiles_name_ck CHECK (char_length(name) BETWEEN 1 AND 100 AND name !~ '[[:cntrl:]]'),
    ADD CONSTRAINT profiles_team_name_ck CHECK (char_length(team_name) <= 100 AND team_name !~ '[[:cntrl:]]'),
    ADD CONSTRAINT profiles_description_ck CHECK (char_length(description) <= 2048);
ALTER TABLE cards
    ADD CONSTRAINT cards_name_ck CHECK (char_length(name) BETWEEN 1 AND 100 AND name !~ '[[:cntrl:]]');
ALTER TABLE chat_rooms
    ADD CONSTRAINT chat_rooms_name_ck CHECK (char_length(name) BETWEEN 1 AND 100 AND name !~ '[[:cntrl:]]'),
    ADD CONSTRAINT chat_rooms_description_ck CHECK (char_length(description) <= 1024);
ALTER TABLE chat_events
    ADD CONSTRAINT chat_events_message_ck CHECK (char_length(message) <= 4000);

-- +goose Down
ALTER TABLE chat_events DROP CONSTRAINT chat_events_message_ck;
ALTER TABLE chat_rooms DROP CONSTRAINT chat_rooms_description_ck, DROP CONSTRAINT chat_rooms_name_ck;
ALTER TABLE cards DROP CONSTRAINT cards_name_ck;
ALTER TABLE profiles DROP CONSTRAINT profiles_description_ck, DROP CONSTRAINT profiles_team_name_ck, DROP CONSTRAINT profiles_name_ck;
ALTER TABLE users DROP CONSTRAINT users_description_ck, DROP CONSTRAINT users_email_ck,
    DROP CONSTRAINT users_nickname_ck, DROP CONSTRAINT users_login_id_ck;
DROP TRIGGER cards_preview_file_key ON cards;
DROP TRIGGER chat_events_image_file_key ON chat_events;
DROP TRIGGER profiles_image_file_key ON profiles;
DROP TRIGGER users_image_file_key ON users;
DROP FUNCTION set_preview_file_key();
DROP FUNCTION set_image_file_key();
DROP FUNCTION file_public_id(bigint);
ALTER TABLE chat_events DROP COLUMN image_file_key;
ALTER TABLE cards DROP COLUMN preview_file_key;
ALTER TABLE profiles DROP COLUMN image_file_key;
ALTER TABLE users DROP COLUMN image_file_key;
DROP INDEX files_created_idx;
DROP INDEX files_public_id_uq;
ALTER TABLE files DROP COLUMN public_id;
