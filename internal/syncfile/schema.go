package syncfile

import (
	"fmt"
	"strings"
)

// column is one column of a file table: its name and the declaration that follows the name in
// the CREATE TABLE statement.
type column struct{ name, decl string }

// table describes one table of the file and how a row type R maps onto it. Everything the
// package does to a table (DDL, insert, update, delete, select, comparison) is derived from this
// one description, so the column order cannot drift between writing and reading.
type table[R any] struct {
	name        string
	columns     []column // in the reference file's order; the first is the uuid primary key
	constraints []string // table constraints, written after the columns as the reference does
	// fields returns pointers to r's fields, one per column and in column order. Scanning uses
	// them directly; writing and comparing dereference them with sqlValue.
	fields func(r *R) []any
	// check rejects values the app cannot interpret; nil when every Go value is acceptable.
	check func(r *R) error
}

// createSQL returns the CREATE TABLE statement as the app's reference file stores it in
// sqlite_master. SQLAlchemy, which produced that file, separates definitions with ", \n\t";
// reproducing it byte for byte keeps our sqlite_master identical to the reference.
func (t table[R]) createSQL() string {
	defs := make([]string, 0, len(t.columns)+len(t.constraints))
	for _, c := range t.columns {
		defs = append(defs, c.name+" "+c.decl)
	}
	defs = append(defs, t.constraints...)
	return `CREATE TABLE "` + t.name + "\" (\n\t" + strings.Join(defs, ", \n\t") + "\n)"
}

func (t table[R]) quotedColumns() []string {
	names := make([]string, len(t.columns))
	for i, c := range t.columns {
		names[i] = `"` + c.name + `"`
	}
	return names
}

func (t table[R]) selectSQL() string {
	return "SELECT " + strings.Join(t.quotedColumns(), ", ") + ` FROM "` + t.name + `" ORDER BY uuid`
}

func (t table[R]) insertSQL() string {
	params := make([]string, len(t.columns))
	for i := range params {
		params[i] = fmt.Sprintf("?%d", i+1)
	}
	return `INSERT INTO "` + t.name + `" (` + strings.Join(t.quotedColumns(), ", ") +
		") VALUES (" + strings.Join(params, ", ") + ")"
}

// updateSQL takes the same arguments as insertSQL (uuid first), so one value slice serves both.
func (t table[R]) updateSQL() string {
	sets := make([]string, 0, len(t.columns)-1)
	for i, name := range t.quotedColumns()[1:] {
		sets = append(sets, fmt.Sprintf("%s = ?%d", name, i+2))
	}
	return `UPDATE "` + t.name + `" SET ` + strings.Join(sets, ", ") + " WHERE uuid = ?1"
}

func (t table[R]) deleteSQL() string {
	return `DELETE FROM "` + t.name + `" WHERE uuid = ?1`
}

// values returns r's column values as SQLite stores them (int64, string or nil), uuid first.
// The values are comparable with ==, which is how Update decides whether a row changed.
func (t table[R]) values(r R) []any {
	vals := t.fields(&r)
	for i, p := range vals {
		vals[i] = sqlValue(p)
	}
	return vals
}

// sqlValue dereferences a field pointer into the value SQLite stores: NULL for a nil optional,
// 0/1 for a bool, the plain integer for an enum.
func sqlValue(p any) any {
	switch v := p.(type) {
	case *int64:
		return *v
	case *string:
		return *v
	case *bool:
		if *v {
			return int64(1)
		}
		return int64(0)
	case *RelationStatus:
		return int64(*v)
	case **int64:
		if *v == nil {
			return nil
		}
		return **v
	case **string:
		if *v == nil {
			return nil
		}
		return **v
	}
	// The table descriptors below are the only callers; a new field type must be added here.
	panic(fmt.Sprintf("syncfile: no SQL mapping for field type %T", p))
}

func profileTable() table[Profile] {
	return table[Profile]{
		name: "TB_PROFILE",
		columns: []column{
			{"uuid", "INTEGER NOT NULL PRIMARY KEY AUTOINCREMENT"},
			{"name", "TEXT NOT NULL"},
			{"team_name", "TEXT"},
			{"description", "TEXT"},
			{"data", "TEXT NOT NULL"},
			{"image_url", "TEXT"},
			{"email", "TEXT"},
			{"phone", "TEXT"},
			{"sns", "TEXT"},
			{"address", "TEXT"},
			{"commit_id", "TEXT NOT NULL"},
			{"created_at", "INTEGER NOT NULL"},
			{"modified_at", "INTEGER NOT NULL"},
			{"deleted_at", "INTEGER"},
			{"why_deleted", "TEXT"},
			{"private", "INTEGER NOT NULL"},
		},
		fields: func(p *Profile) []any {
			return []any{&p.ID, &p.Name, &p.TeamName, &p.Description, &p.Data, &p.ImageURL,
				&p.Email, &p.Phone, &p.SNS, &p.Address, &p.CommitID, &p.CreatedAt,
				&p.ModifiedAt, &p.DeletedAt, &p.WhyDeleted, &p.Private}
		},
	}
}

func relationTable() table[Relation] {
	return table[Relation]{
		name: "TB_PROFILE_RELATION",
		columns: []column{
			{"uuid", "INTEGER NOT NULL PRIMARY KEY AUTOINCREMENT"},
			{"commit_id", "TEXT NOT NULL"},
			{"created_at", "INTEGER NOT NULL"},
			{"modified_at", "INTEGER NOT NULL"},
			{"status", "INTEGER NOT NULL"},
			{"from_profile_id", "INTEGER NOT NULL"},
			{"to_profile_id", "INTEGER NOT NULL"},
		},
		constraints: []string{
			`FOREIGN KEY(from_profile_id) REFERENCES "TB_PROFILE" (uuid)`,
			`FOREIGN KEY(to_profile_id) REFERENCES "TB_PROFILE" (uuid)`,
		},
		fields: func(r *Relation) []any {
			return []any{&r.ID, &r.CommitID, &r.CreatedAt, &r.ModifiedAt, &r.Status,
				&r.FromProfileID, &r.ToProfileID}
		},
		// The app maps status through an enum; an unknown value would break it at read time,
		// far from the server bug that produced it.
		check: func(r *Relation) error {
			if !r.Status.Valid() {
				return fmt.Errorf("%w: relation %d has status %d", ErrInvalidRow, r.ID, r.Status)
			}
			return nil
		},
	}
}

// cardTable leaves out the reference file's `UNIQUE (preview_url)`. The service database does
// not make preview URLs unique, so keeping it would turn two visible cards sharing an image into
// a failed build for every user who sees both (the predecessor's whole-rebuild 500s). Room
// validates only explicitly created indexes (origin "c"), not the automatic index a UNIQUE
// constraint creates, so the app accepts the file either way (docs/sync.md §1).
func cardTable() table[Card] {
	return table[Card]{
		name: "TB_CARD",
		columns: []column{
			{"uuid", "INTEGER NOT NULL PRIMARY KEY AUTOINCREMENT"},
			{"name", "TEXT NOT NULL"},
			{"data", "TEXT NOT NULL"},
			{"preview_url", "TEXT NOT NULL"},
			{"commit_id", "TEXT NOT NULL"},
			{"created_at", "INTEGER NOT NULL"},
			{"modified_at", "INTEGER NOT NULL"},
			{"deleted_at", "INTEGER"},
			{"why_deleted", "TEXT"},
			{"private", "INTEGER NOT NULL"},
			{"profile_id", "INTEGER NOT NULL"},
		},
		constraints: []string{
			`FOREIGN KEY(profile_id) REFERENCES "TB_PROFILE" (uuid)`,
		},
		fields: func(c *Card) []any {
			return []any{&c.ID, &c.Name, &c.Data, &c.PreviewURL, &c.CommitID, &c.CreatedAt,
				&c.ModifiedAt, &c.DeletedAt, &c.WhyDeleted, &c.Private, &c.ProfileID}
		},
	}
}

func subscriptionTable() table[Subscription] {
	return table[Subscription]{
		name: "TB_CARD_SUBSCRIPTION",
		columns: []column{
			{"uuid", "INTEGER NOT NULL PRIMARY KEY AUTOINCREMENT"},
			{"commit_id", "TEXT NOT NULL"},
			{"created_at", "INTEGER NOT NULL"},
			{"modified_at", "INTEGER NOT NULL"},
			{"card_profile_id", "INTEGER NOT NULL"},
			{"card_id", "INTEGER NOT NULL"},
			{"subscribed_profile_id", "INTEGER NOT NULL"},
		},
		constraints: []string{
			`FOREIGN KEY(card_profile_id) REFERENCES "TB_PROFILE" (uuid)`,
			`FOREIGN KEY(card_id) REFERENCES "TB_CARD" (uuid)`,
			`FOREIGN KEY(subscribed_profile_id) REFERENCES "TB_PROFILE" (uuid)`,
		},
		fields: func(s *Subscription) []any {
			return []any{&s.ID, &s.CommitID, &s.CreatedAt, &s.ModifiedAt, &s.CardProfileID,
				&s.CardID, &s.SubscribedProfileID}
		},
	}
}

// schemaDDL returns the statements that create the file's tables, in the reference file's order
// (TB_PROFILE first, so its AUTOINCREMENT creates sqlite_sequence in the same place).
func schemaDDL() []string {
	return []string{
		profileTable().createSQL(),
		relationTable().createSQL(),
		cardTable().createSQL(),
		subscriptionTable().createSQL(),
	}
}
