// Package syncfile writes and reads the per-user SQLite sync file that the Android app downloads
// and opens with Room (docs/sync.md §1).
//
// The app validates the file's schema against its own entities and refuses any difference, so
// the tables are created with the exact DDL of the app's reference file. The package knows
// nothing about where rows come from: callers select them (docs/sync.md §2) and hand them over as
// Contents. Build writes a new file; Update brings an existing file to the same rows in one
// transaction, so both paths yield the same row set for the same Contents.
package syncfile

import (
	"context"
	"crypto/md5"
	"database/sql"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	_ "modernc.org/sqlite" // registers the pure-Go "sqlite" driver
)

// SchemaVersion identifies the builder that wrote a file. It is stored in PRAGMA application_id
// (user_version must stay 0 for Room), so bumping it after a change to how files are built makes
// Update refuse older files and the caller rebuild them.
const SchemaVersion = 1

var (
	// ErrSchemaMismatch means the file was written by a different SchemaVersion; the caller
	// should discard it and Build a new one.
	ErrSchemaMismatch = errors.New("syncfile: file schema version differs from this builder")
	// ErrDanglingReference means a row's foreign key points at a row the Contents do not hold.
	// The file would be rejected or misread by the app, so nothing is written.
	ErrDanglingReference = errors.New("syncfile: dangling foreign key")
	// ErrInvalidRow means a row holds a value the app cannot interpret (or repeats an id).
	ErrInvalidRow = errors.New("syncfile: invalid row")
)

// Profile is one row of TB_PROFILE. Timestamps are Unix seconds (UTC); Data is compact JSON.
type Profile struct {
	ID                    int64
	Name                  string
	TeamName, Description *string
	Data                  string
	ImageURL              *string
	Email, Phone, SNS     *string
	Address               *string
	CommitID              string
	CreatedAt, ModifiedAt int64
	DeletedAt             *int64
	WhyDeleted            *string
	Private               bool
}

// RelationStatus is TB_PROFILE_RELATION.status as the app's enum numbers it.
type RelationStatus int64

// The relation statuses the app understands.
const (
	RelationFollow          RelationStatus = 1
	RelationHide            RelationStatus = 2
	RelationBlock           RelationStatus = 3
	RelationFollowRequested RelationStatus = 4
)

// Valid reports whether the app knows s.
func (s RelationStatus) Valid() bool {
	return s >= RelationFollow && s <= RelationFollowRequested
}

// Relation is one row of TB_PROFILE_RELATION.
type Relation struct {
	ID                         int64
	CommitID                   string
	CreatedAt, ModifiedAt      int64
	Status                     RelationStatus
	FromProfileID, ToProfileID int64
}

// Card is one row of TB_CARD.
type Card struct {
	ID                               int64
	Name, Data, PreviewURL, CommitID string
	CreatedAt, ModifiedAt            int64
	DeletedAt                        *int64
	WhyDeleted                       *string
	Private                          bool
	ProfileID                        int64
}

// Subscription is one row of TB_CARD_SUBSCRIPTION.
type Subscription struct {
	ID                                         int64
	CommitID                                   string
	CreatedAt, ModifiedAt                      int64
	CardProfileID, CardID, SubscribedProfileID int64
}

// Contents is every row of one file. Order does not matter.
type Contents struct {
	Profiles      []Profile
	Relations     []Relation
	Cards         []Card
	Subscriptions []Subscription
}

// TableStats counts the rows Update changed in one table.
type TableStats struct {
	Inserted, Updated, Deleted int
}

// Stats counts, per table, the rows Update changed.
type Stats struct {
	Profiles, Relations, Cards, Subscriptions TableStats
}

// busyTimeoutMillis bounds how long an operation waits for another connection's lock on the same
// file before failing, instead of failing at once with SQLITE_BUSY.
const busyTimeoutMillis = 5000

// Build creates a new file at path holding exactly c. It refuses to overwrite: the caller builds
// into a fresh temporary path and publishes it atomically. On any error nothing is left at path.
//
// The file has the reference schema, user_version 0, application_id SchemaVersion, and rollback
// journal mode, so it is one self-contained file (no -wal/-shm) once Build returns. Every foreign
// key must resolve; otherwise Build fails with ErrDanglingReference naming the rows.
func Build(ctx context.Context, path string, c Contents) (err error) {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return fmt.Errorf("syncfile: build %s: %w", path, err)
	}
	if err := f.Close(); err != nil {
		return errors.Join(fmt.Errorf("syncfile: build %s: %w", path, err), removeFiles(path))
	}
	defer func() {
		if err != nil {
			err = errors.Join(err, removeFiles(path))
		}
	}()

	// synchronous=OFF: until Build returns the file is private and is deleted on failure, so
	// the per-commit fsyncs buy nothing; one fsync at the end makes the finished file durable
	// before the caller renames or uploads it.
	if err := withTx(ctx, path, writeParams("OFF", true), nil, func(tx *sql.Tx) error {
		return fill(ctx, tx, c)
	}); err != nil {
		return fmt.Errorf("syncfile: build %s: %w", path, err)
	}
	if err := syncToDisk(path); err != nil {
		return fmt.Errorf("syncfile: build %s: %w", path, err)
	}
	return nil
}

func fill(ctx context.Context, tx *sql.Tx, c Contents) error {
	for _, ddl := range schemaDDL() {
		if _, err := tx.ExecContext(ctx, ddl); err != nil {
			return fmt.Errorf("create table: %w", err)
		}
	}
	// Room treats user_version 0 as a file it must validate rather than migrate.
	pragmas := []string{"PRAGMA user_version = 0", fmt.Sprintf("PRAGMA application_id = %d", SchemaVersion)}
	for _, p := range pragmas {
		if _, err := tx.ExecContext(ctx, p); err != nil {
			return fmt.Errorf("%s: %w", p, err)
		}
	}
	if err := deferForeignKeys(ctx, tx); err != nil {
		return err
	}
	// Parents first, although deferred checking makes the order irrelevant to the outcome.
	if err := insertRows(ctx, tx, profileTable(), c.Profiles); err != nil {
		return err
	}
	if err := insertRows(ctx, tx, cardTable(), c.Cards); err != nil {
		return err
	}
	if err := insertRows(ctx, tx, relationTable(), c.Relations); err != nil {
		return err
	}
	if err := insertRows(ctx, tx, subscriptionTable(), c.Subscriptions); err != nil {
		return err
	}
	return checkForeignKeys(ctx, tx)
}

// Update brings the existing file at path to exactly c in one transaction: rows whose id is not
// in c are deleted, new ids inserted, rows whose values differ updated, identical rows left
// alone. Afterwards the file holds the same rows as Build(c) would write. If the transaction
// fails the file is unchanged.
//
// A file written by another SchemaVersion yields ErrSchemaMismatch and is not touched; the caller
// should Build instead.
func Update(ctx context.Context, path string, c Contents) (Stats, error) {
	if err := requireFile(path); err != nil {
		return Stats{}, fmt.Errorf("syncfile: update %s: %w", path, err)
	}
	var st Stats
	// synchronous=FULL (SQLite's default): Update may be pointed at a file that is already
	// published, so a crash mid-transaction must leave the old content, which needs the journal
	// synced before the database is written.
	//
	// Foreign keys are not enforced statement by statement here: the file may have no index on
	// the child columns (docs/sync.md §1), so enforcement scans every child table for each deleted
	// profile or card, which made deleting 4,000 of 10,000 rows take 1.25 s instead of 55 ms.
	// checkForeignKeys below verifies the whole file, by primary key lookups, before COMMIT in
	// the same transaction, so the guarantee is the same.
	err := withTx(ctx, path, writeParams("FULL", false), nil, func(tx *sql.Tx) error {
		var id int64
		if err := tx.QueryRowContext(ctx, "PRAGMA application_id").Scan(&id); err != nil {
			return fmt.Errorf("read application_id: %w", err)
		}
		if id != SchemaVersion {
			return fmt.Errorf("%w: file has %d, builder has %d", ErrSchemaMismatch, id, SchemaVersion)
		}
		var err error
		if st.Profiles, err = syncRows(ctx, tx, profileTable(), c.Profiles); err != nil {
			return err
		}
		if st.Cards, err = syncRows(ctx, tx, cardTable(), c.Cards); err != nil {
			return err
		}
		if st.Relations, err = syncRows(ctx, tx, relationTable(), c.Relations); err != nil {
			return err
		}
		if st.Subscriptions, err = syncRows(ctx, tx, subscriptionTable(), c.Subscriptions); err != nil {
			return err
		}
		return checkForeignKeys(ctx, tx)
	})
	if err != nil {
		return Stats{}, fmt.Errorf("syncfile: update %s: %w", path, err)
	}
	return st, nil
}

// MD5File returns the lowercase hex MD5 of the file's bytes and its size: the app compares the
// ETag with the MD5 of its local copy, so this is the one definition of a file's ETag.
func MD5File(path string) (string, int64, error) {
	f, err := os.Open(path)
	if err != nil {
		return "", 0, fmt.Errorf("syncfile: md5 %s: %w", path, err)
	}
	defer f.Close()
	h := md5.New()
	n, err := io.Copy(h, f)
	if err != nil {
		return "", 0, fmt.Errorf("syncfile: md5 %s: %w", path, err)
	}
	return hex.EncodeToString(h.Sum(nil)), n, nil
}

// writeParams are the DSN parameters for writing. mode=rw never creates a file (Build creates it
// itself, exclusively); foreign_keys makes SQLite enforce references as rows are written (see
// Update for why it may not); journal_mode=DELETE keeps the file self-contained and converts a
// file someone opened in WAL mode back; _txlock=immediate takes the write lock at BEGIN so a
// concurrent writer waits for the busy timeout instead of failing on lock upgrade.
func writeParams(synchronous string, enforceForeignKeys bool) []string {
	fk := "0"
	if enforceForeignKeys {
		fk = "1"
	}
	return []string{
		"mode=rw",
		fmt.Sprintf("_pragma=busy_timeout(%d)", busyTimeoutMillis),
		"_pragma=foreign_keys(" + fk + ")",
		"_pragma=journal_mode(DELETE)",
		"_pragma=synchronous(" + synchronous + ")",
		"_txlock=immediate",
	}
}

// dsn turns a file path into a SQLite URI. The driver splits the DSN at the first '?' and SQLite
// decodes %XX in URI paths, so '%', '?' and '#' in the path must be escaped; an absolute path
// keeps "file:" from reading a leading "//" as an authority.
func dsn(path string, params []string) (string, error) {
	abs, err := filepath.Abs(path)
	if err != nil {
		return "", fmt.Errorf("resolve path: %w", err)
	}
	escaped := strings.NewReplacer("%", "%25", "?", "%3f", "#", "%23").Replace(filepath.ToSlash(abs))
	return "file:" + escaped + "?" + strings.Join(params, "&"), nil
}

// withTx opens the file with params, runs fn in one transaction on a single connection, commits
// if fn succeeds, and closes the database before returning, so no handle outlives the call.
func withTx(ctx context.Context, path string, params []string, opts *sql.TxOptions, fn func(*sql.Tx) error) (err error) {
	name, err := dsn(path, params)
	if err != nil {
		return err
	}
	db, err := sql.Open("sqlite", name)
	if err != nil {
		return fmt.Errorf("open: %w", err)
	}
	defer func() {
		if cerr := db.Close(); cerr != nil {
			err = errors.Join(err, fmt.Errorf("close: %w", cerr))
		}
	}()
	// One connection: per-connection pragmas and the transaction must share it.
	db.SetMaxOpenConns(1)

	tx, err := db.BeginTx(ctx, opts)
	if err != nil {
		return fmt.Errorf("begin: %w", err)
	}
	if err := fn(tx); err != nil {
		return errors.Join(err, ignoreDone(tx.Rollback()))
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("commit: %w", err)
	}
	return nil
}

func ignoreDone(err error) error {
	if errors.Is(err, sql.ErrTxDone) {
		return nil
	}
	return err
}

// deferForeignKeys postpones enforcement to COMMIT for this transaction, so checkForeignKeys can
// name every dangling row instead of SQLite failing the first insert with an anonymous "FOREIGN
// KEY constraint failed". COMMIT still refuses a violation if one slipped past the check.
func deferForeignKeys(ctx context.Context, tx *sql.Tx) error {
	if _, err := tx.ExecContext(ctx, "PRAGMA defer_foreign_keys = ON"); err != nil {
		return fmt.Errorf("defer foreign keys: %w", err)
	}
	return nil
}

// maxNamedViolations bounds the error message when a selection bug leaves many rows dangling.
const maxNamedViolations = 10

// checkForeignKeys returns ErrDanglingReference naming the rows whose foreign keys do not
// resolve, or nil when PRAGMA foreign_key_check finds none.
func checkForeignKeys(ctx context.Context, tx *sql.Tx) error {
	rows, err := tx.QueryContext(ctx, `SELECT c."table", c.rowid, c.parent, f."from"
		FROM pragma_foreign_key_check AS c
		JOIN pragma_foreign_key_list(c."table") AS f ON f.id = c.fkid
		ORDER BY c."table", c.rowid, f."from"`)
	if err != nil {
		return fmt.Errorf("foreign key check: %w", err)
	}
	var (
		named []string
		total int
	)
	for rows.Next() {
		var (
			table, parent, column string
			rowID                 int64
		)
		if err := rows.Scan(&table, &rowID, &parent, &column); err != nil {
			rows.Close()
			return fmt.Errorf("foreign key check: %w", err)
		}
		total++
		if len(named) < maxNamedViolations {
			named = append(named, fmt.Sprintf("%s uuid=%d: %s has no row in %s", table, rowID, column, parent))
		}
	}
	if err := errors.Join(rows.Err(), rows.Close()); err != nil {
		return fmt.Errorf("foreign key check: %w", err)
	}
	if total == 0 {
		return nil
	}
	if total > len(named) {
		named = append(named, fmt.Sprintf("and %d more", total-len(named)))
	}
	return fmt.Errorf("%w: %d rows: %s", ErrDanglingReference, total, strings.Join(named, "; "))
}

func insertRows[R any](ctx context.Context, tx *sql.Tx, t table[R], rows []R) error {
	if len(rows) == 0 {
		return nil
	}
	stmt, err := tx.PrepareContext(ctx, t.insertSQL())
	if err != nil {
		return fmt.Errorf("prepare insert into %s: %w", t.name, err)
	}
	defer stmt.Close()
	for _, r := range rows {
		vals, err := t.checkedValues(r)
		if err != nil {
			return err
		}
		if _, err := stmt.ExecContext(ctx, vals...); err != nil {
			return fmt.Errorf("insert into %s uuid=%d: %w", t.name, vals[0], err)
		}
	}
	return nil
}

func (t table[R]) checkedValues(r R) ([]any, error) {
	if t.check != nil {
		if err := t.check(&r); err != nil {
			return nil, err
		}
	}
	return t.values(r), nil
}

// syncRows makes table t hold exactly want and counts what it changed.
func syncRows[R any](ctx context.Context, tx *sql.Tx, t table[R], want []R) (TableStats, error) {
	var st TableStats
	have, err := readRows(ctx, tx, t)
	if err != nil {
		return st, err
	}
	haveIDs := make([]int64, len(have)) // sorted, as readRows returns them
	current := make(map[int64][]any, len(have))
	for i, r := range have {
		vals := t.values(r)
		haveIDs[i] = vals[0].(int64)
		current[haveIDs[i]] = vals
	}

	insert, update, del, err := prepareWrites(ctx, tx, t)
	if err != nil {
		return st, err
	}
	defer func() { insert.Close(); update.Close(); del.Close() }()

	seen := make(map[int64]bool, len(want))
	for _, r := range want {
		vals, err := t.checkedValues(r)
		if err != nil {
			return st, err
		}
		id := vals[0].(int64)
		if seen[id] {
			return st, fmt.Errorf("%w: %s uuid=%d appears twice", ErrInvalidRow, t.name, id)
		}
		seen[id] = true
		old, exists := current[id]
		switch {
		case !exists:
			if _, err := insert.ExecContext(ctx, vals...); err != nil {
				return st, fmt.Errorf("insert into %s uuid=%d: %w", t.name, id, err)
			}
			st.Inserted++
		case !equalValues(old, vals):
			if _, err := update.ExecContext(ctx, vals...); err != nil {
				return st, fmt.Errorf("update %s uuid=%d: %w", t.name, id, err)
			}
			st.Updated++
		}
	}
	for _, id := range haveIDs {
		if seen[id] {
			continue
		}
		if _, err := del.ExecContext(ctx, id); err != nil {
			return st, fmt.Errorf("delete from %s uuid=%d: %w", t.name, id, err)
		}
		st.Deleted++
	}
	if st.Deleted > 0 {
		if err := resetSequence(ctx, tx, t.name); err != nil {
			return st, err
		}
	}
	return st, nil
}

func prepareWrites[R any](ctx context.Context, tx *sql.Tx, t table[R]) (insert, update, del *sql.Stmt, err error) {
	stmts := make([]*sql.Stmt, 0, 3)
	for _, query := range []string{t.insertSQL(), t.updateSQL(), t.deleteSQL()} {
		stmt, err := tx.PrepareContext(ctx, query)
		if err != nil {
			for _, s := range stmts {
				s.Close()
			}
			return nil, nil, nil, fmt.Errorf("prepare %q: %w", query, err)
		}
		stmts = append(stmts, stmt)
	}
	return stmts[0], stmts[1], stmts[2], nil
}

// equalValues compares two rows' column values; values holds only int64, string and nil, so ==
// is exact.
func equalValues(a, b []any) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

// resetSequence makes the table's sqlite_sequence entry what a full build of the current rows
// would hold (the highest uuid, or no entry for an empty table). AUTOINCREMENT never lowers it
// after deletes, and without this an updated file would differ from a full build in the one
// table Read does not return.
func resetSequence(ctx context.Context, tx *sql.Tx, tableName string) error {
	queries := []string{
		`DELETE FROM sqlite_sequence WHERE name = ?1 AND NOT EXISTS (SELECT 1 FROM "` + tableName + `")`,
		`UPDATE sqlite_sequence SET seq = (SELECT max(uuid) FROM "` + tableName + `") WHERE name = ?1
			AND seq <> (SELECT max(uuid) FROM "` + tableName + `")`,
	}
	for _, q := range queries {
		if _, err := tx.ExecContext(ctx, q, tableName); err != nil {
			return fmt.Errorf("reset sqlite_sequence for %s: %w", tableName, err)
		}
	}
	return nil
}

func readRows[R any](ctx context.Context, tx *sql.Tx, t table[R]) ([]R, error) {
	rows, err := tx.QueryContext(ctx, t.selectSQL())
	if err != nil {
		return nil, fmt.Errorf("select from %s: %w", t.name, err)
	}
	defer rows.Close()
	var out []R
	for rows.Next() {
		var r R
		if err := rows.Scan(t.fields(&r)...); err != nil {
			return nil, fmt.Errorf("scan %s: %w", t.name, err)
		}
		out = append(out, r)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("select from %s: %w", t.name, err)
	}
	return out, nil
}

// requireFile turns a missing file into an fs.ErrNotExist error; SQLite would report only
// "unable to open database file".
func requireFile(path string) error {
	_, err := os.Stat(path)
	return err
}

// syncToDisk flushes the finished file, which Build wrote with synchronous=OFF.
func syncToDisk(path string) error {
	f, err := os.OpenFile(path, os.O_RDWR, 0)
	if err != nil {
		return fmt.Errorf("open for fsync: %w", err)
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return fmt.Errorf("fsync: %w", err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("close after fsync: %w", err)
	}
	return nil
}

// removeFiles deletes a failed build and any rollback journal SQLite may have left next to it.
func removeFiles(path string) error {
	var errs []error
	for _, p := range []string{path, path + "-journal"} {
		if err := os.Remove(p); err != nil && !errors.Is(err, os.ErrNotExist) {
			errs = append(errs, fmt.Errorf("remove failed build: %w", err))
		}
	}
	return errors.Join(errs...)
}
