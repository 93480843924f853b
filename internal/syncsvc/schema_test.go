package syncsvc_test

import (
	"context"
	"database/sql"
	"testing"

	_ "modernc.org/sqlite" // the reference file is read with the same driver the builder uses

	"github.com/bca-app/backend/internal/syncfile"
	"github.com/bca-app/backend/internal/syncfile/syncfiletest"
	"github.com/bca-app/backend/internal/syncsvc/synctest"
	"github.com/bca-app/backend/internal/testenv"
)

func TestMain(m *testing.M) { testenv.Main(m) }

var ctx = context.Background()

// androidBlank is the app's own empty file (docs/sync.md §1), kept next to the builder.
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
	c, err := syncfiletest.Read(ctx, path)
	if err != nil {
		t.Fatal(err)
	}
	if len(c.Profiles) != 2 || len(c.Relations) != 1 || len(c.Cards) != 2 || len(c.Subscriptions) != 1 {
		t.Fatalf("every table should have rows:\n%s", synctest.Describe(c))
	}
	if err := syncfiletest.CheckSchema(ctx, path, androidBlank); err != nil {
		t.Fatalf("the published file differs from the app's schema:\n%v", err)
	}
	d := openRO(t, path)
	var appID int
	if err := d.QueryRow(`PRAGMA application_id`).Scan(&appID); err != nil || appID != syncfile.SchemaVersion {
		t.Errorf("application_id %d (%v), want the builder's schema version %d", appID, err, syncfile.SchemaVersion)
	}
	var dangling int
	if err := d.QueryRow(`SELECT count(*) FROM pragma_foreign_key_check`).Scan(&dangling); err != nil || dangling != 0 {
		t.Errorf("dangling foreign keys: %d (%v)", dangling, err)
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
