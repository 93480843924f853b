package syncsvc_test

import (
	"context"
	"database/sql"
	"fmt"
	"reflect"
	"testing"

	_ "modernc.org/sqlite" // the reference file is read with the same driver the builder uses

	"github.com/bca-app/backend/internal/syncfile"
	"github.com/bca-app/backend/internal/syncsvc/synctest"
	"github.com/bca-app/backend/internal/testenv"
)

func TestMain(m *testing.M) { testenv.Main(m) }

var ctx = context.Background()

// androidBlank is the app's own empty file (SYNC.md §1), kept next to the builder.
const androidBlank = "../syncfile/testdata/android-blank.sqlite"

// TestSyncProducedFileHasTheAppSchema builds a file with rows in every table, the way the service
// publishes it, and compares each table's columns and foreign keys with the app's blank file:
// Room refuses the file on any difference.
func TestSyncProducedFileHasTheAppSchema(t *testing.T) {
	e := synctest.New(t, synctest.Options{})
	w := e.NewWorld()
	u, v := w.User(t), w.User(t)
	a := w.Profile(t, u, synctest.ProfileSpec{Name: "me", Data: `{"email": {"index": 0, "value": {"work": {"index": 0, "value": "me@x.test"}}}}`})
	b := w.Profile(t, v, synctest.ProfileSpec{Name: "them"})
	w.Relate(t, a, b, 1)
	card := w.Card(t, b, false)
	w.Subscribe(t, a, card)
	w.Card(t, a, true)

	f, err := e.Svc.Current(ctx, u)
	if err != nil {
		t.Fatal(err)
	}
	path := e.Download(t, f.Key)
	got, want := openRO(t, path), openRO(t, androidBlank)
	c, err := syncfile.Read(ctx, path)
	if err != nil {
		t.Fatal(err)
	}
	if len(c.Profiles) != 2 || len(c.Relations) != 1 || len(c.Cards) != 2 || len(c.Subscriptions) != 1 {
		t.Fatalf("every table should have rows:\n%s", synctest.Describe(c))
	}

	for _, table := range []string{"TB_PROFILE", "TB_PROFILE_RELATION", "TB_CARD", "TB_CARD_SUBSCRIPTION"} {
		for _, pragma := range []string{"table_info", "foreign_key_list"} {
			q := fmt.Sprintf(`SELECT * FROM pragma_%s('%s')`, pragma, table)
			if g, w := rowsOf(t, got, q), rowsOf(t, want, q); !reflect.DeepEqual(g, w) {
				t.Errorf("%s of %s differs from the app's file:\n got %v\nwant %v", pragma, table, g, w)
			}
		}
	}
	q := `SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name`
	if g, w := rowsOf(t, got, q), rowsOf(t, want, q); !reflect.DeepEqual(g, w) {
		t.Errorf("tables: got %v, want %v", g, w)
	}
	// Room validates explicitly created indexes; we may not add any.
	if n := rowsOf(t, got, `SELECT name FROM sqlite_master WHERE type = 'index' AND sql IS NOT NULL`); len(n) != 0 {
		t.Errorf("explicit indexes: %v", n)
	}
	if uv := rowsOf(t, got, `PRAGMA user_version`); uv[0][0] != "0" {
		t.Errorf("user_version %s, want 0", uv[0][0])
	}
	if id := rowsOf(t, got, `PRAGMA application_id`); id[0][0] != fmt.Sprint(syncfile.SchemaVersion) {
		t.Errorf("application_id %s, want the builder's schema version %d", id[0][0], syncfile.SchemaVersion)
	}
	if fk := rowsOf(t, got, `PRAGMA foreign_key_check`); len(fk) != 0 {
		t.Errorf("dangling foreign keys: %v", fk)
	}
}

func openRO(t *testing.T, path string) *sql.DB {
	t.Helper()
	d, err := sql.Open("sqlite", "file:"+path+"?mode=ro")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { d.Close() })
	return d
}

// rowsOf returns every row of query as strings, so answers of two files compare with DeepEqual.
func rowsOf(t *testing.T, d *sql.DB, query string) [][]string {
	t.Helper()
	rows, err := d.Query(query)
	if err != nil {
		t.Fatalf("%s: %v", query, err)
	}
	defer rows.Close()
	cols, err := rows.Columns()
	if err != nil {
		t.Fatal(err)
	}
	var out [][]string
	for rows.Next() {
		vals := make([]any, len(cols))
		ptrs := make([]any, len(cols))
		for i := range vals {
			ptrs[i] = &vals[i]
		}
		if err := rows.Scan(ptrs...); err != nil {
			t.Fatal(err)
		}
		row := make([]string, len(cols))
		for i, v := range vals {
			if b, ok := v.([]byte); ok {
				v = string(b)
			}
			row[i] = fmt.Sprint(v)
		}
		out = append(out, row)
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	return out
}
