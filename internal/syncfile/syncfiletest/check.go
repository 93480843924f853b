// Package syncfiletest reads sync files for tests, independently of package syncfile: its own
// queries check what syncfile wrote (the rows, and the schema against the Android app's blank
// file), so a mistake in syncfile's column mapping cannot hide itself.
package syncfiletest

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"reflect"

	_ "modernc.org/sqlite" // registers the pure-Go "sqlite" driver
)

// CheckSchema compares a file's schema with a reference file (the Android app's blank file) the
// way Room does when it opens it: the same tables, and for each table the same columns (name,
// type, NOT NULL, default, primary key) and foreign keys. It also checks what Room requires of
// a new file: user_version 0 and no explicitly created index. Every difference is reported.
func CheckSchema(ctx context.Context, path, reference string) error {
	got, err := describeSchema(ctx, path)
	if err != nil {
		return fmt.Errorf("describe %s: %w", path, err)
	}
	want, err := describeSchema(ctx, reference)
	if err != nil {
		return fmt.Errorf("describe reference %s: %w", reference, err)
	}
	var errs []error
	if !reflect.DeepEqual(got.tables, want.tables) {
		errs = append(errs, fmt.Errorf("tables: got %v, want %v", got.tables, want.tables))
	}
	for _, table := range want.tables {
		for _, kind := range []string{"table_info", "foreign_key_list"} {
			if g, w := got.pragmas[table+"/"+kind], want.pragmas[table+"/"+kind]; !reflect.DeepEqual(g, w) {
				errs = append(errs, fmt.Errorf("%s of %s: got %v, want %v", kind, table, g, w))
			}
		}
	}
	if len(got.explicitIndexes) > 0 {
		errs = append(errs, fmt.Errorf("explicit indexes, which Room validates and the app does not have: %v", got.explicitIndexes))
	}
	if got.userVersion != 0 {
		errs = append(errs, fmt.Errorf("user_version %d, want 0 (Room treats the file as new)", got.userVersion))
	}
	return errors.Join(errs...)
}

type schema struct {
	tables          []string
	pragmas         map[string][][]string // "<table>/<pragma>" → rows
	explicitIndexes []string
	userVersion     int64
}

func describeSchema(ctx context.Context, path string) (schema, error) {
	s := schema{pragmas: map[string][][]string{}}
	err := readTx(ctx, path, func(tx *sql.Tx) error {
		tables, err := firstColumn(ctx, tx, `SELECT name FROM sqlite_master WHERE type = 'table' AND name <> 'sqlite_sequence' ORDER BY name`)
		if err != nil {
			return err
		}
		s.tables = tables
		for _, table := range tables {
			for _, kind := range []string{"table_info", "foreign_key_list"} {
				rows, err := Strings(ctx, tx, fmt.Sprintf(`SELECT * FROM pragma_%s(?)`, kind), table)
				if err != nil {
					return err
				}
				s.pragmas[table+"/"+kind] = rows
			}
		}
		if s.explicitIndexes, err = firstColumn(ctx, tx, `SELECT name FROM sqlite_master WHERE type = 'index' AND sql IS NOT NULL ORDER BY name`); err != nil {
			return err
		}
		return tx.QueryRowContext(ctx, `PRAGMA user_version`).Scan(&s.userVersion)
	})
	return s, err
}

func firstColumn(ctx context.Context, tx *sql.Tx, query string) ([]string, error) {
	rows, err := Strings(ctx, tx, query)
	out := make([]string, len(rows))
	for i, r := range rows {
		out[i] = r[0]
	}
	return out, err
}

// queryer is a database or a transaction.
type queryer interface {
	QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error)
}

// Strings returns every row of query as strings ("NULL" for NULL), comparable with
// reflect.DeepEqual.
func Strings(ctx context.Context, q queryer, query string, args ...any) ([][]string, error) {
	rows, err := q.QueryContext(ctx, query, args...)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", query, err)
	}
	defer rows.Close()
	cols, err := rows.Columns()
	if err != nil {
		return nil, err
	}
	var out [][]string
	for rows.Next() {
		vals := make([]any, len(cols))
		ptrs := make([]any, len(cols))
		for i := range vals {
			ptrs[i] = &vals[i]
		}
		if err := rows.Scan(ptrs...); err != nil {
			return nil, err
		}
		row := make([]string, len(cols))
		for i, v := range vals {
			switch v := v.(type) {
			case nil:
				row[i] = "NULL"
			case []byte:
				row[i] = string(v)
			default:
				row[i] = fmt.Sprint(v)
			}
		}
		out = append(out, row)
	}
	return out, rows.Err()
}

// readTx runs fn in one read-only transaction on the file at path (which must exist).
func readTx(ctx context.Context, path string, fn func(*sql.Tx) error) (err error) {
	if _, err := os.Stat(path); err != nil {
		return err
	}
	abs, err := filepath.Abs(path)
	if err != nil {
		return err
	}
	u := url.URL{Scheme: "file", OmitHost: true, Path: filepath.ToSlash(abs), RawQuery: "mode=ro&_pragma=busy_timeout(5000)"}
	db, err := sql.Open("sqlite", u.String())
	if err != nil {
		return fmt.Errorf("open: %w", err)
	}
	defer func() { err = errors.Join(err, db.Close()) }()
	db.SetMaxOpenConns(1)
	tx, err := db.BeginTx(ctx, &sql.TxOptions{ReadOnly: true})
	if err != nil {
		return fmt.Errorf("begin: %w", err)
	}
	defer tx.Rollback() //nolint:errcheck // read-only
	return fn(tx)
}
