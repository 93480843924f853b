-- +goose Up
-- Chat: rooms, participations and the ordered event log of each room (docs/product.md §8).
--
-- Ordering: every event of a room gets the next event_index of that room, allocated by
-- `UPDATE chat_rooms SET last_event_index = last_event_index + 1 … RETURNING` in the transaction
-- that inserts the event. The row lock on the room serialises the writers of one room, and a
-- rolled-back transaction gives its index back, so the indexes of a room are exactly
-- 0, 1, 2, … with no gap and no duplicate (the unique index is the backstop).

CREATE TABLE chat_rooms (
    id                    bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    name                  text        NOT NULL CHECK (name <> ''),
    description           text,
    owner_profile_id      bigint      NOT NULL REFERENCES profiles (id),
    created_by_profile_id bigint      NOT NULL REFERENCES profiles (id),
    private               boolean     NOT NULL DEFAULT true,
    -- version counts changes of the room's settings (name, description, private, owner): the
    -- ETag / If-Match of updateChatRoom. Joins, leaves and messages do not change it.
    version               bigint      NOT NULL DEFAULT 1,
    last_event_index      bigint      NOT NULL DEFAULT -1 CHECK (last_event_index >= -1),
    last_event_at         timestamptz NOT NULL DEFAULT now(),
    created_at            timestamptz NOT NULL DEFAULT now(),
    modified_at           timestamptz NOT NULL DEFAULT now(),
    -- set when the last participant leaves; a closed room takes no event any more.
    closed_at             timestamptz
);

-- A participation of a profile in a room. Leaving is soft: the row stays (events keep pointing
-- at it, and it bounds what the former participant may still read); joining again adds a row.
-- first_event_index .. left_event_index is the range of events this participation may read.
CREATE TABLE chat_participants (
    id                bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    room_id           bigint      NOT NULL REFERENCES chat_rooms (id),
    profile_id        bigint      NOT NULL REFERENCES profiles (id),
    joined_at         timestamptz NOT NULL DEFAULT now(),
    first_event_index bigint      NOT NULL CHECK (first_event_index >= 0),
    read_event_index  bigint      NOT NULL DEFAULT -1 CHECK (read_event_index >= -1),
    left_at           timestamptz,
    left_event_index  bigint,
    kicked            boolean     NOT NULL DEFAULT false,
    CHECK ((left_at IS NULL) = (left_event_index IS NULL)),
    CHECK (left_event_index IS NULL OR left_event_index >= first_event_index)
);
-- At most one live participation per room and profile.
CREATE UNIQUE INDEX chat_participants_live_uq ON chat_participants (room_id, profile_id) WHERE left_at IS NULL;
CREATE INDEX chat_participants_profile_idx ON chat_participants (profile_id, room_id);

CREATE TABLE chat_events (
    id                       bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    room_id                  bigint      NOT NULL REFERENCES chat_rooms (id),
    event_index              bigint      NOT NULL CHECK (event_index >= 0),
    event_type               text        NOT NULL CHECK (event_type IN ('PARTICIPANT_IN', 'PARTICIPANT_OUT', 'PARTICIPANT_KICKED',
                                                                      'MESSAGE_POSTED', 'MESSAGE_POSTED_IMAGE', 'MESSAGE_DELETED', 'ROOM_MODIFIED')),
    message                  text        NOT NULL,
    -- who did it (NULL for what the server does by itself, e.g. handing over ownership)
    caused_by_profile_id     bigint      REFERENCES profiles (id),
    caused_by_participant_id bigint      REFERENCES chat_participants (id),
    -- whom it is about: the profile that came in, left or was removed, or the new owner
    target_profile_id        bigint      REFERENCES profiles (id),
    -- MESSAGE_DELETED: the event_index of the deleted message
    target_event_index       bigint,
    image_file_id            bigint      REFERENCES files (id),
    deleted_at               timestamptz,
    created_at               timestamptz NOT NULL DEFAULT now()
);
CREATE UNIQUE INDEX chat_events_room_index_uq ON chat_events (room_id, event_index);
CREATE INDEX chat_events_image_idx ON chat_events (image_file_id) WHERE image_file_id IS NOT NULL;

-- +goose Down
DROP TABLE chat_events;
DROP TABLE chat_participants;
DROP TABLE chat_rooms;
