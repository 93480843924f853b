package syncfile_test

import (
	"context"
	"crypto/sha256"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	. "github.com/bca-app/backend/internal/syncfile"
)

// droppedCardConstraint is the one definition Build leaves out of the reference DDL (see
// cardTable for why).
const droppedCardConstraint = "UNIQUE (preview_url), \n\t"

// TestSchemaMatchesReference checks what Room validates (docs/sync.md §1): for every table of the
// app's reference file, PRAGMA table_info and PRAGMA foreign_key_list of a built file equal the
// reference's; plus the table set, no explicit index, the DDL text, and the header values.
func TestSchemaMatchesReference(t *testing.T) {
	t.Parallel()
	ref := openRaw(t, referenceDB(t), true)
	refTables := queryStrings(t, ref, "SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name")
	if len(refTables) != 5 { // four app tables and sqlite_sequence
		t.Fatalf("reference file has tables %v; expected the four app tables and sqlite_sequence", refTables)
	}

	for name, c := range map[string]Contents{"empty": {}, "populated": sizedContents(200)} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			path := filepath.Join(t.TempDir(), "user.sqlite")
			if err := Build(context.Background(), path, c); err != nil {
				t.Fatalf("Build: %v", err)
			}
			for _, suffix := range []string{"-journal", "-wal", "-shm"} {
				if _, err := os.Stat(path + suffix); !os.IsNotExist(err) {
					t.Errorf("%s left behind (stat: %v)", path+suffix, err)
				}
			}
			got := openRaw(t, path, true)

			tables := queryStrings(t, got, "SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name")
			if !reflect.DeepEqual(tables, refTables) {
				t.Fatalf("tables = %v, reference has %v", tables, refTables)
			}
			for _, row := range refTables {
				table := row[0]
				for _, pragma := range []string{
					// cid, name, type, notnull, dflt_value, pk
					"SELECT cid, name, type, \"notnull\", dflt_value, pk FROM pragma_table_info(?1) ORDER BY cid",
					// id, seq, table, from, to, on_update, on_delete, match
					"SELECT * FROM pragma_foreign_key_list(?1) ORDER BY id, seq",
				} {
					want := queryStrings(t, ref, pragma, table)
					have := queryStrings(t, got, pragma, table)
					if !reflect.DeepEqual(have, want) {
						t.Errorf("%s of %s:\n got %v\nwant %v", pragma, table, have, want)
					}
				}
				// Room compares only explicitly created indexes (origin "c"); there must be none.
				if idx := queryStrings(t, got, "SELECT name, origin FROM pragma_index_list(?1)", table); len(idx) != 0 {
					t.Errorf("%s has indexes %v; the file must have no index the reference lacks", table, idx)
				}
			}
			if idx := queryStrings(t, got, "SELECT name FROM sqlite_master WHERE type = 'index'"); len(idx) != 0 {
				t.Errorf("indexes %v in sqlite_master", idx)
			}

			// The DDL text itself, as the reference stores it, minus the dropped UNIQUE.
			const ddl = "SELECT name, sql FROM sqlite_master WHERE type = 'table' ORDER BY name"
			want := queryStrings(t, ref, ddl)
			for _, row := range want {
				if row[0] == "TB_CARD" {
					if !strings.Contains(row[1], droppedCardConstraint) {
						t.Fatalf("reference TB_CARD DDL no longer holds %q: %s", droppedCardConstraint, row[1])
					}
					row[1] = strings.Replace(row[1], droppedCardConstraint, "", 1)
				}
			}
			if have := queryStrings(t, got, ddl); !reflect.DeepEqual(have, want) {
				t.Errorf("DDL differs:\n got %q\nwant %q", have, want)
			}

			for pragma, want := range map[string]string{
				"PRAGMA user_version":   "0",
				"PRAGMA application_id": "1",
			} {
				if have := queryStrings(t, got, pragma)[0][0]; have != want {
					t.Errorf("%s = %s, want %s", pragma, have, want)
				}
			}
			if SchemaVersion != 1 {
				t.Errorf("SchemaVersion changed to %d: update this test's expected application_id", SchemaVersion)
			}
			for _, pragma := range []string{"PRAGMA page_size", "PRAGMA encoding", "PRAGMA auto_vacuum", "PRAGMA journal_mode"} {
				if have, want := queryStrings(t, got, pragma), queryStrings(t, ref, pragma); !reflect.DeepEqual(have, want) {
					t.Errorf("%s = %v, reference has %v", pragma, have, want)
				}
			}
			// Header bytes 18/19 are 1 for rollback-journal files and 2 for WAL; Room opens
			// the downloaded file without -wal, so it must not be a WAL file.
			header := make([]byte, 20)
			f, err := os.Open(path)
			if err != nil {
				t.Fatal(err)
			}
			defer f.Close()
			if _, err := f.Read(header); err != nil {
				t.Fatal(err)
			}
			if header[18] != 1 || header[19] != 1 {
				t.Errorf("file format bytes 18/19 = %d/%d, want 1/1 (rollback journal)", header[18], header[19])
			}
		})
	}
}

// referenceSHA256 pins the app's blank file in testdata: it changes only when the app's
// schema does, and then this constant, the file and the builder change together.
const referenceSHA256 = "565b62e4e57b697fa24da366a8997a30688601aa1b1b4e45e53b742a99ce37f1"

// TestReferenceCopyIsPinned fails when testdata/android-blank.sqlite is edited by accident (a
// test that opened it read-write, a tool that rewrote it).
func TestReferenceCopyIsPinned(t *testing.T) {
	b, err := os.ReadFile(referenceDB(t))
	if err != nil {
		t.Fatal(err)
	}
	if got := fmt.Sprintf("%x", sha256.Sum256(b)); got != referenceSHA256 {
		t.Fatalf("testdata/android-blank.sqlite has SHA-256 %s, want %s: restore the app's blank file", got, referenceSHA256)
	}
}
