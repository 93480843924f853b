package syncfile_test

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"math/rand/v2"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	. "github.com/bca-app/backend/internal/syncfile"
	"github.com/bca-app/backend/internal/syncfile/syncfiletest"
)

// handMade is a small content exercising every column, NULL and non-NULL optionals, empty
// strings, non-ASCII text, timestamps past 2038, and two cards sharing a preview URL.
func handMade() Contents {
	return Contents{
		Profiles: []Profile{
			{ID: 20, Name: "Redacted", Data: "{}", ImageURL: ptr("https://img/20"), CommitID: "c20",
				CreatedAt: 1, ModifiedAt: 2, Private: true},
			{ID: 10, Name: "김민수", TeamName: ptr("팀"), Description: ptr(""), Data: `{"a":[1,2]}`,
				ImageURL: ptr("https://img/10"), Email: ptr("kim@example.com"), Phone: ptr("+82"),
				SNS: ptr("@kim"), Address: ptr("Seoul"), CommitID: "c10", CreatedAt: 1_700_000_000,
				ModifiedAt: 4_102_444_800, DeletedAt: ptr(int64(4_102_444_801)), WhyDeleted: ptr("user request")},
		},
		Relations: []Relation{
			{ID: 5, CommitID: "r5", CreatedAt: 3, ModifiedAt: 4, Status: RelationFollow, FromProfileID: 10, ToProfileID: 20},
			{ID: 6, CommitID: "r6", CreatedAt: 3, ModifiedAt: 4, Status: RelationFollowRequested, FromProfileID: 20, ToProfileID: 10},
		},
		Cards: []Card{
			{ID: 7, Name: "card", Data: "{}", PreviewURL: "/uploads/same.png", CommitID: "k7", CreatedAt: 5, ModifiedAt: 6, ProfileID: 10},
			{ID: 8, Name: "card 2", Data: `{"x":"y"}`, PreviewURL: "/uploads/same.png", CommitID: "k8", CreatedAt: 5,
				ModifiedAt: 6, DeletedAt: ptr(int64(9)), WhyDeleted: ptr("spam"), Private: true, ProfileID: 20},
		},
		Subscriptions: []Subscription{
			{ID: 3, CommitID: "s3", CreatedAt: 7, ModifiedAt: 8, CardProfileID: 20, CardID: 8, SubscribedProfileID: 10},
		},
	}
}

func buildFile(t testing.TB, c Contents) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "user.sqlite")
	if err := Build(context.Background(), path, c); err != nil {
		t.Fatalf("Build: %v", err)
	}
	return path
}

func readFile(t testing.TB, path string) Contents {
	t.Helper()
	c, err := syncfiletest.Read(context.Background(), path)
	if err != nil {
		t.Fatalf("Read: %v", err)
	}
	return c
}

func TestBuildReadRoundTrip(t *testing.T) {
	t.Parallel()
	for name, c := range map[string]Contents{
		"empty":      {},
		"empty sets": {Profiles: []Profile{}, Relations: []Relation{}, Cards: []Card{}, Subscriptions: []Subscription{}},
		"hand made":  handMade(),
		"sized":      sizedContents(500),
	} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			path := buildFile(t, c)
			got := readFile(t, path)
			assertContents(t, "Read after Build", got, c)
			// Read sorts by id whatever the input order was.
			if ps := got.Profiles; len(ps) > 1 && ps[0].ID > ps[1].ID {
				t.Errorf("profiles not sorted by id: %d before %d", ps[0].ID, ps[1].ID)
			}
		})
	}
}

// TestStoredValues pins the SQLite encodings the app relies on (docs/sync.md §1), independently of
// Read: private as INTEGER 0/1, status as INTEGER, absent optionals as NULL, data as TEXT.
func TestStoredValues(t *testing.T) {
	t.Parallel()
	db := openRaw(t, buildFile(t, handMade()), true)
	got := queryStrings(t, db, `SELECT uuid, typeof(private), private, typeof(data), typeof(team_name),
		typeof(deleted_at), typeof(created_at) FROM TB_PROFILE ORDER BY uuid`)
	want := [][]string{
		{"10", "integer", "0", "text", "text", "integer", "integer"},
		{"20", "integer", "1", "text", "null", "null", "integer"},
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("TB_PROFILE storage = %v, want %v", got, want)
	}
	got = queryStrings(t, db, "SELECT uuid, typeof(status), status FROM TB_PROFILE_RELATION ORDER BY uuid")
	want = [][]string{{"5", "integer", "1"}, {"6", "integer", "4"}}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("TB_PROFILE_RELATION storage = %v, want %v", got, want)
	}
	got = queryStrings(t, db, "SELECT name, seq FROM sqlite_sequence ORDER BY name")
	want = [][]string{{"TB_CARD", "8"}, {"TB_CARD_SUBSCRIPTION", "3"}, {"TB_PROFILE", "20"}, {"TB_PROFILE_RELATION", "6"}}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("sqlite_sequence = %v, want %v", got, want)
	}
}

func TestBuildDanglingForeignKeyLeavesNoFile(t *testing.T) {
	t.Parallel()
	c := handMade()
	c.Cards[0].ProfileID = 99         // card 7 → missing profile
	c.Subscriptions[0].CardID = 12345 // subscription 3 → missing card
	c.Relations[1].ToProfileID = 77   // relation 6 → missing profile
	path := filepath.Join(t.TempDir(), "user.sqlite")

	err := Build(context.Background(), path, c)
	if !errors.Is(err, ErrDanglingReference) {
		t.Fatalf("Build error = %v, want ErrDanglingReference", err)
	}
	for _, want := range []string{
		"3 rows",
		"TB_CARD uuid=7: profile_id has no row in TB_PROFILE",
		"TB_CARD_SUBSCRIPTION uuid=3: card_id has no row in TB_CARD",
		"TB_PROFILE_RELATION uuid=6: to_profile_id has no row in TB_PROFILE",
	} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not mention %q", err, want)
		}
	}
	assertNoFiles(t, path)
}

func assertNoFiles(t *testing.T, path string) {
	t.Helper()
	for _, p := range []string{path, path + "-journal", path + "-wal", path + "-shm"} {
		if _, err := os.Stat(p); !errors.Is(err, fs.ErrNotExist) {
			t.Errorf("%s exists after a failed build (stat: %v)", p, err)
		}
	}
}

func TestBuildRejectsInvalidRows(t *testing.T) {
	t.Parallel()
	for name, tc := range map[string]struct {
		mutate func(*Contents)
		is     error
		text   string
	}{
		"duplicate profile id": {func(c *Contents) { c.Profiles[1].ID = c.Profiles[0].ID }, nil, "TB_PROFILE uuid=20"},
		"unknown status":       {func(c *Contents) { c.Relations[0].Status = 0 }, ErrInvalidRow, "relation 5 has status 0"},
	} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			c := handMade()
			tc.mutate(&c)
			path := filepath.Join(t.TempDir(), "user.sqlite")
			err := Build(context.Background(), path, c)
			if err == nil || !strings.Contains(err.Error(), tc.text) {
				t.Fatalf("Build error = %v, want one mentioning %q", err, tc.text)
			}
			if tc.is != nil && !errors.Is(err, tc.is) {
				t.Errorf("Build error = %v, want %v", err, tc.is)
			}
			assertNoFiles(t, path)
		})
	}
}

func TestBuildRefusesExistingFile(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "user.sqlite")
	if err := os.WriteFile(path, []byte("keep me"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := Build(context.Background(), path, handMade()); !errors.Is(err, fs.ErrExist) {
		t.Fatalf("Build over an existing file: error = %v, want fs.ErrExist", err)
	}
	if b, err := os.ReadFile(path); err != nil || string(b) != "keep me" {
		t.Errorf("existing file changed: %q, %v", b, err)
	}
}

// TestPathNeedsEscaping builds where '?', '#', '%' and a space in the path would otherwise be
// read as URI syntax by the driver or SQLite.
func TestPathNeedsEscaping(t *testing.T) {
	t.Parallel()
	dir := filepath.Join(t.TempDir(), "a?b#c%20d e")
	if err := os.Mkdir(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, "user?.sqlite")
	if err := Build(context.Background(), path, handMade()); err != nil {
		t.Fatalf("Build: %v", err)
	}
	if _, err := Update(context.Background(), path, Contents{}); err != nil {
		t.Fatalf("Update: %v", err)
	}
	assertContents(t, "Read", readFile(t, path), Contents{})
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	if len(entries) != 1 || entries[0].Name() != "user?.sqlite" {
		t.Errorf("directory holds %v, want only user?.sqlite", entries)
	}
}

// TestUpdateMatchesBuild is the central property (docs/sync.md §2: the file is a function of the
// database, whichever path built it): Build(A) then Update to B, C, … reads exactly like a fresh
// Build of each, including sqlite_sequence, and Stats agree with an independent diff.
func TestUpdateMatchesBuild(t *testing.T) {
	t.Parallel()
	u := universe{profiles: 25, cards: 30, relations: 40, subscriptions: 30}
	const sequences, steps = 12, 4
	for seed := range uint64(sequences) {
		t.Run(fmt.Sprintf("seed=%d", seed), func(t *testing.T) {
			t.Parallel()
			rng := rand.New(rand.NewPCG(seed, 0x5eed))
			prev := randomContents(rng, u)
			path := buildFile(t, prev)
			for step := range steps {
				next := randomContents(rng, u)
				if step == steps-1 {
					next = Contents{} // everything deleted
				}
				stats, err := Update(context.Background(), path, next)
				if err != nil {
					t.Fatalf("step %d: Update: %v", step, err)
				}
				fresh := buildFile(t, next)
				got, want := readFile(t, path), readFile(t, fresh)
				assertContents(t, fmt.Sprintf("step %d: updated vs fresh build", step), got, want)
				assertContents(t, fmt.Sprintf("step %d: updated vs input", step), got, next)
				updatedDB, freshDB := openRaw(t, path, true), openRaw(t, fresh, true)
				const seq = "SELECT name, seq FROM sqlite_sequence ORDER BY name"
				if a, b := queryStrings(t, updatedDB, seq), queryStrings(t, freshDB, seq); !reflect.DeepEqual(a, b) {
					t.Errorf("step %d: sqlite_sequence %v, fresh build has %v", step, a, b)
				}
				if ok := queryStrings(t, updatedDB, "PRAGMA integrity_check"); ok[0][0] != "ok" {
					t.Errorf("step %d: integrity_check: %v", step, ok)
				}
				if want := expectedStats(prev, next); stats != want {
					t.Errorf("step %d: stats = %+v, want %+v", step, stats, want)
				}
				prev = next
			}
		})
	}
}

// expectedStats diffs two contents in memory, as an oracle for Update's counts.
func expectedStats(from, to Contents) Stats {
	return Stats{
		Profiles:      diffCount(from.Profiles, to.Profiles, func(p Profile) int64 { return p.ID }),
		Relations:     diffCount(from.Relations, to.Relations, func(r Relation) int64 { return r.ID }),
		Cards:         diffCount(from.Cards, to.Cards, func(c Card) int64 { return c.ID }),
		Subscriptions: diffCount(from.Subscriptions, to.Subscriptions, func(s Subscription) int64 { return s.ID }),
	}
}

func diffCount[R any](from, to []R, id func(R) int64) TableStats {
	var st TableStats
	old := map[int64]R{}
	for _, r := range from {
		old[id(r)] = r
	}
	for _, r := range to {
		prev, ok := old[id(r)]
		switch {
		case !ok:
			st.Inserted++
		case !reflect.DeepEqual(prev, r):
			st.Updated++
		}
		delete(old, id(r))
	}
	st.Deleted = len(old)
	return st
}

func TestUpdateStatsHandMade(t *testing.T) {
	t.Parallel()
	path := buildFile(t, handMade())
	next := handMade()
	next.Profiles[0].Email = ptr("new@example.com") // profile 20: column change, same commit_id
	next.Cards[0].CommitID = "k7-2"                 // card 7: new commit_id only
	next.Relations = next.Relations[:1]             // relation 6 deleted
	next.Subscriptions = nil                        // subscription 3 deleted …
	next.Cards = next.Cards[:1]                     // … so card 8 can go too
	next.Profiles = append(next.Profiles, Profile{ID: 30, Name: "new", Data: "{}", CommitID: "c30"})
	next.Relations = append(next.Relations,
		Relation{ID: 9, CommitID: "r9", Status: RelationBlock, FromProfileID: 10, ToProfileID: 30})

	stats, err := Update(context.Background(), path, next)
	if err != nil {
		t.Fatalf("Update: %v", err)
	}
	want := Stats{
		Profiles:      TableStats{Inserted: 1, Updated: 1},
		Relations:     TableStats{Inserted: 1, Deleted: 1},
		Cards:         TableStats{Updated: 1, Deleted: 1},
		Subscriptions: TableStats{Deleted: 1},
	}
	if stats != want {
		t.Errorf("stats = %+v, want %+v", stats, want)
	}
	assertContents(t, "Read after Update", readFile(t, path), next)
}

// TestUpdateWithoutChangesKeepsBytes: when nothing differs Update writes nothing, so the ETag
// stays (zero Stats) and the publish finds the same bytes.
func TestUpdateWithoutChangesKeepsBytes(t *testing.T) {
	t.Parallel()
	path := buildFile(t, handMade())
	before, size, err := MD5File(path)
	if err != nil {
		t.Fatal(err)
	}
	stats, err := Update(context.Background(), path, handMade())
	if err != nil {
		t.Fatalf("Update: %v", err)
	}
	if stats != (Stats{}) {
		t.Errorf("stats = %+v, want zero", stats)
	}
	after, sizeAfter, err := MD5File(path)
	if err != nil {
		t.Fatal(err)
	}
	if after != before || sizeAfter != size {
		t.Errorf("file changed by a no-op Update: %s/%d → %s/%d", before, size, after, sizeAfter)
	}
}

func TestUpdateSchemaMismatch(t *testing.T) {
	t.Parallel()
	path := buildFile(t, handMade())
	if _, err := openRaw(t, path, false).Exec("PRAGMA application_id = 2"); err != nil {
		t.Fatal(err)
	}
	before, _, err := MD5File(path)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := Update(context.Background(), path, Contents{}); !errors.Is(err, ErrSchemaMismatch) {
		t.Fatalf("Update error = %v, want ErrSchemaMismatch", err)
	}
	if after, _, _ := MD5File(path); after != before {
		t.Error("Update changed a file it refused")
	}
}

func TestUpdateFailureLeavesFileUnchanged(t *testing.T) {
	t.Parallel()
	for name, tc := range map[string]struct {
		mutate func(*Contents)
		is     error
		text   string
	}{
		"dangling": {func(c *Contents) { c.Profiles = c.Profiles[:1] }, ErrDanglingReference, "TB_CARD uuid=7: profile_id"},
		"duplicate": {func(c *Contents) { c.Cards = append(c.Cards, c.Cards[0]) }, ErrInvalidRow,
			"TB_CARD uuid=7 appears twice"},
		"unknown status": {func(c *Contents) { c.Relations[1].Status = 5 }, ErrInvalidRow, "relation 6 has status 5"},
	} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			path := buildFile(t, handMade())
			before, _, err := MD5File(path)
			if err != nil {
				t.Fatal(err)
			}
			c := handMade()
			c.Profiles[0].Name = "changed before the failure"
			tc.mutate(&c)
			_, err = Update(context.Background(), path, c)
			if !errors.Is(err, tc.is) || !strings.Contains(err.Error(), tc.text) {
				t.Fatalf("Update error = %v, want %v mentioning %q", err, tc.is, tc.text)
			}
			if after, _, _ := MD5File(path); after != before {
				t.Error("failed Update changed the file")
			}
			assertContents(t, "Read after failed Update", readFile(t, path), handMade())
		})
	}
}

func TestMissingFile(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "absent.sqlite")
	if _, err := Update(context.Background(), path, Contents{}); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("Update error = %v, want fs.ErrNotExist", err)
	}
	if _, err := syncfiletest.Read(context.Background(), path); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("Read error = %v, want fs.ErrNotExist", err)
	}
	if _, err := os.Stat(path); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("Update or Read created %s", path)
	}
}

func TestMD5File(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "f")
	if err := os.WriteFile(path, []byte("The quick brown fox jumps over the lazy dog"), 0o600); err != nil {
		t.Fatal(err)
	}
	sum, size, err := MD5File(path)
	if err != nil {
		t.Fatal(err)
	}
	if sum != "9e107d9d372bb6826bd81d3542a419d6" || size != 43 {
		t.Errorf("MD5File = %s, %d; want 9e107d9d372bb6826bd81d3542a419d6, 43", sum, size)
	}
}

func TestCanceledContext(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	path := filepath.Join(t.TempDir(), "user.sqlite")
	if err := Build(ctx, path, sizedContents(100)); !errors.Is(err, context.Canceled) {
		t.Errorf("Build error = %v, want context.Canceled", err)
	}
	assertNoFiles(t, path)
}
