package syncfiletest_test

import (
	"context"
	"database/sql"
	"path/filepath"
	"reflect"
	"testing"

	"github.com/bca-app/backend/internal/syncfile"
	"github.com/bca-app/backend/internal/syncfile/syncfiletest"
)

var reference = filepath.Join("..", "testdata", "android-blank.sqlite")

// TestReadAndCheckSchema: Read and the schema check agree with syncfile.Build, and the check
// notices a file that differs from the Android app's (docs/sync.md §1).
func TestReadAndCheckSchema(t *testing.T) {
	ctx := context.Background()
	team, deleted := "team", int64(30)
	want := syncfile.Contents{
		Profiles: []syncfile.Profile{
			{ID: 1, Name: "a", TeamName: &team, Data: "{}", CommitID: "c1", CreatedAt: 10, ModifiedAt: 20, Private: true},
			{ID: 2, Name: "b", Data: "{}", CommitID: "c2", CreatedAt: 10, ModifiedAt: 20, DeletedAt: &deleted},
		},
		Relations: []syncfile.Relation{{ID: 5, CommitID: "r", CreatedAt: 1, ModifiedAt: 2, Status: syncfile.RelationFollow, FromProfileID: 1, ToProfileID: 2}},
		Cards:     []syncfile.Card{{ID: 7, Name: "card", Data: "{}", PreviewURL: "p", CommitID: "k", CreatedAt: 1, ModifiedAt: 2, ProfileID: 2}},
		Subscriptions: []syncfile.Subscription{
			{ID: 9, CommitID: "s", CreatedAt: 1, ModifiedAt: 2, CardProfileID: 2, CardID: 7, SubscribedProfileID: 1},
		},
	}
	path := filepath.Join(t.TempDir(), "user.sqlite")
	if err := syncfile.Build(ctx, path, want); err != nil {
		t.Fatal(err)
	}
	got, err := syncfiletest.Read(ctx, path)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("read %+v, built %+v", got, want)
	}
	if err := syncfiletest.CheckSchema(ctx, path, reference); err != nil {
		t.Fatalf("a built file differs from the reference: %v", err)
	}

	raw, err := sql.Open("sqlite", "file:"+path+"?mode=rw")
	if err != nil {
		t.Fatal(err)
	}
	_, err = raw.Exec(`CREATE INDEX extra ON "TB_CARD" (name)`)
	raw.Close()
	if err != nil {
		t.Fatal(err)
	}
	if err := syncfiletest.CheckSchema(ctx, path, reference); err == nil {
		t.Fatal("an explicit index passed the check")
	}
	if _, err := syncfiletest.Read(ctx, filepath.Join(t.TempDir(), "absent.sqlite")); err == nil {
		t.Fatal("reading a missing file succeeded")
	}
}
