-- +goose Up
-- A BLOCK applies to every profile of the blocked user (docs/product.md §5): when profile T
-- blocks one profile of user U, T treats all of U's profiles, and U itself when it acts as no
-- profile, as blocked. relation_towards is the one place that rule becomes a relation status;
-- every query that hands the visibility and invitation rules (internal/access) a relation
-- between a profile and a viewer asks it instead of reading the relations table directly.
--
-- relation_towards(from_id, to_user_id, to_profile_id) is profile from_id's relation towards a
-- viewer: BLOCK (3) when from_id blocks any profile of user to_user_id, otherwise from_id's
-- relation to profile to_profile_id (0 when none, or when to_profile_id is 0: no acting profile).

-- The look-up "does T block anyone of user U": T's blocks only.
CREATE INDEX relations_blocks_idx ON relations (from_profile_id, to_profile_id) WHERE status = 3;

-- +goose StatementBegin
CREATE FUNCTION relation_towards(from_id bigint, to_user_id bigint, to_profile_id bigint) RETURNS smallint
LANGUAGE sql STABLE PARALLEL SAFE AS $$
SELECT CASE
    WHEN EXISTS (SELECT 1 FROM relations b JOIN profiles bp ON bp.id = b.to_profile_id
                 WHERE b.from_profile_id = relation_towards.from_id AND b.status = 3
                   AND bp.user_id = relation_towards.to_user_id)
    THEN 3::smallint
    ELSE coalesce((SELECT r.status FROM relations r
                   WHERE r.from_profile_id = relation_towards.from_id
                     AND r.to_profile_id = relation_towards.to_profile_id), 0::smallint)
END
$$;
-- +goose StatementEnd

-- +goose Down
DROP FUNCTION relation_towards(bigint, bigint, bigint);
DROP INDEX relations_blocks_idx;
