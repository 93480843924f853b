package syncfiletest

import (
	"context"
	"database/sql"
	"fmt"

	"github.com/bca-app/backend/internal/syncfile"
)

// Read returns every row of the file at path, each table sorted by id, in one read-only
// transaction (a consistent snapshot). The column lists are written out here on purpose, apart
// from syncfile's table descriptions (docs/sync.md §1).
func Read(ctx context.Context, path string) (syncfile.Contents, error) {
	var c syncfile.Contents
	err := readTx(ctx, path, func(tx *sql.Tx) error {
		var err error
		if c.Profiles, err = rows(ctx, tx, `SELECT uuid, name, team_name, description, data, image_url,
			email, phone, sns, address, commit_id, created_at, modified_at, deleted_at, why_deleted,
			private FROM "TB_PROFILE" ORDER BY uuid`, func(p *syncfile.Profile) []any {
			return []any{&p.ID, &p.Name, &p.TeamName, &p.Description, &p.Data, &p.ImageURL,
				&p.Email, &p.Phone, &p.SNS, &p.Address, &p.CommitID, &p.CreatedAt,
				&p.ModifiedAt, &p.DeletedAt, &p.WhyDeleted, &p.Private}
		}); err != nil {
			return err
		}
		if c.Relations, err = rows(ctx, tx, `SELECT uuid, commit_id, created_at, modified_at, status,
			from_profile_id, to_profile_id FROM "TB_PROFILE_RELATION" ORDER BY uuid`, func(r *syncfile.Relation) []any {
			return []any{&r.ID, &r.CommitID, &r.CreatedAt, &r.ModifiedAt, &r.Status,
				&r.FromProfileID, &r.ToProfileID}
		}); err != nil {
			return err
		}
		if c.Cards, err = rows(ctx, tx, `SELECT uuid, name, data, preview_url, commit_id, created_at,
			modified_at, deleted_at, why_deleted, private, profile_id FROM "TB_CARD" ORDER BY uuid`, func(k *syncfile.Card) []any {
			return []any{&k.ID, &k.Name, &k.Data, &k.PreviewURL, &k.CommitID, &k.CreatedAt,
				&k.ModifiedAt, &k.DeletedAt, &k.WhyDeleted, &k.Private, &k.ProfileID}
		}); err != nil {
			return err
		}
		c.Subscriptions, err = rows(ctx, tx, `SELECT uuid, commit_id, created_at, modified_at,
			card_profile_id, card_id, subscribed_profile_id FROM "TB_CARD_SUBSCRIPTION" ORDER BY uuid`, func(s *syncfile.Subscription) []any {
			return []any{&s.ID, &s.CommitID, &s.CreatedAt, &s.ModifiedAt, &s.CardProfileID,
				&s.CardID, &s.SubscribedProfileID}
		})
		return err
	})
	if err != nil {
		return syncfile.Contents{}, fmt.Errorf("syncfiletest: read %s: %w", path, err)
	}
	return c, nil
}

func rows[R any](ctx context.Context, tx *sql.Tx, query string, fields func(*R) []any) ([]R, error) {
	rs, err := tx.QueryContext(ctx, query)
	if err != nil {
		return nil, err
	}
	defer rs.Close()
	var out []R
	for rs.Next() {
		var r R
		if err := rs.Scan(fields(&r)...); err != nil {
			return nil, err
		}
		out = append(out, r)
	}
	return out, rs.Err()
}
