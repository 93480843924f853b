package httpapi

import (
	"maps"
	"net/http/httptest"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/bca-app/backend/gen/api"
	"github.com/bca-app/backend/gen/db"
	"github.com/bca-app/backend/internal/access"
	"github.com/bca-app/backend/internal/profile"
)

// TestAKeptProfileAnswerIsWhatTheGeneratedResponseWrites: getProfile answers from its memo
// with profileBody, which must write the same status, headers and bytes as the generated
// GetProfile200JSONResponse would for the same view, full, redacted and deleted.
func TestAKeptProfileAnswerIsWhatTheGeneratedResponseWrites(t *testing.T) {
	team, deleted, key := "Labs <&>", time.Date(2026, 11, 30, 1, 2, 3, 0, time.UTC), "img-key"
	base := db.Profile{ID: 7, UserID: 3, Name: "Jane \u2028 <b>", TeamName: &team, Private: false, Version: 4,
		CreatedAt: time.Date(2026, 1, 2, 3, 4, 5, 6, time.UTC), ModifiedAt: time.Date(2026, 2, 3, 4, 5, 6, 7, time.UTC),
		Data: []byte(`{"phone":{"index":0,"value":{"m":{"index":0,"value":"+82 10"}}},"email":{"index":1,"value":{"w":{"index":0,"value":"j@x.test"}}}}`)}
	withImage := base
	withImage.ImageFileKey = &key
	gone := base
	gone.DeletedAt = &deleted
	views := map[string]profile.View{
		"full":     {Profile: base, Visibility: access.Full},
		"mine":     {Profile: withImage, Visibility: access.Full, Mine: true},
		"redacted": {Profile: base, Visibility: access.Redacted},
		"deleted":  {Profile: gone, Visibility: access.Full, Mine: true},
	}
	for name, v := range views {
		t.Run(name, func(t *testing.T) {
			want := httptest.NewRecorder()
			if err := (api.GetProfile200JSONResponse{Body: profileOf(v), Headers: api.GetProfile200ResponseHeaders{ETag: etag(v)}}).VisitGetProfileResponse(want); err != nil {
				t.Fatal(err)
			}
			body, err := encodeProfile(v)
			if err != nil {
				t.Fatal(err)
			}
			got := httptest.NewRecorder()
			if err := (profileBody{body: body, etag: v.ETag()}).VisitGetProfileResponse(got); err != nil {
				t.Fatal(err)
			}
			if got.Code != want.Code || !maps.EqualFunc(got.Header(), want.Header(), func(a, b []string) bool { return strings.Join(a, ",") == strings.Join(b, ",") }) {
				t.Errorf("status %d, headers %v; the generated response writes %d, %v", got.Code, got.Header(), want.Code, want.Header())
			}
			if got.Body.String() != want.Body.String() {
				t.Errorf("body\n%s\nthe generated response writes\n%s", got.Body, want.Body)
			}
		})
	}
}

// TestEveryWriteOfAProfileRowBumpsItsVersion: the memo of getProfile's answers, like the ETag,
// relies on a profile's version changing with every write to what an answer shows. Every UPDATE
// of profiles in queries/ either sets version = version + 1 or touches only locked_at (a locked
// profile is not shown at all).
func TestEveryWriteOfAProfileRowBumpsItsVersion(t *testing.T) {
	files, err := filepath.Glob("../../queries/*.sql")
	if err != nil || len(files) == 0 {
		t.Fatalf("queries: %v, %d files", err, len(files))
	}
	update := regexp.MustCompile(`(?is)\bUPDATE\s+profiles\b(?:\s+\w+)?\s+SET\s+(.*?)(?:\bWHERE\b|\bFROM\b|\bRETURNING\b|;|$)`)
	assignment := regexp.MustCompile(`(?m)(?:^|,)\s*(?:\w+\.)?(\w+)\s*=`)
	bump := regexp.MustCompile(`(?i)\bversion\s*=\s*version\s*\+\s*1\b`)
	seen := 0
	for _, f := range files {
		src, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		for _, stmt := range strings.Split(string(src), "-- name:") {
			for _, m := range update.FindAllStringSubmatch(stmt, -1) {
				seen++
				if bump.MatchString(m[1]) {
					continue
				}
				for _, a := range assignment.FindAllStringSubmatch(m[1], -1) {
					if a[1] != "locked_at" {
						t.Errorf("%s: an UPDATE of profiles sets %s without bumping version:\n%s", f, a[1], strings.TrimSpace(stmt))
					}
				}
			}
		}
	}
	if seen < 4 {
		t.Fatalf("found %d UPDATEs of profiles in queries/; the pattern no longer finds them", seen)
	}
}
