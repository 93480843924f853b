package syncsvc_test

import (
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"testing"

	"github.com/bca-app/backend/internal/syncfile"
	"github.com/bca-app/backend/internal/syncsvc/synctest"
)

// Benchmarks of building a sync file from PostgreSQL. They assert nothing about speed; record
// results with the machine and date:
//
//	go run ./cmd/bcactl with-services -- go test -run '^$' -bench Sync -benchmem ./internal/syncsvc/

// seedRows gives a user one profile and n/4 followed profiles of another user, each with a card
// the user subscribes to: n rows in the file (plus the user's own profile).
func seedRows(b *testing.B, e *synctest.Env, n int) int64 {
	b.Helper()
	w := e.NewWorld()
	u, v := w.User(b), w.User(b)
	a := w.Profile(b, u, synctest.ProfileSpec{Name: "me"})
	targets := n / 4
	stmts := []struct {
		sql  string
		args []any
	}{
		{`INSERT INTO profiles (user_id, name, team_name, data, private)
		 SELECT $1, 'profile ' || g, 'team', ('{"email": {"index": 0, "value": {"work": {"index": 0, "value": "p' || g || '@x.test"}}}, "phone": {"index": 1, "value": {"m": {"index": 0, "value": "+82 10 ' || g || '"}}}}')::jsonb, g % 2 = 0
		 FROM generate_series(1, $2) g`, []any{v, targets}},
		{`INSERT INTO relations (from_profile_id, to_profile_id, status) SELECT $2, id, 1 + id % 4 FROM profiles WHERE user_id = $1`, []any{v, a}},
		{`INSERT INTO cards (profile_id, name, data) SELECT id, 'card of ' || id, '{"title": "CEO", "company": "ACME"}' FROM profiles WHERE user_id = $1`, []any{v}},
		{`INSERT INTO card_subscriptions (card_id, profile_id) SELECT c.id, $2 FROM cards c JOIN profiles p ON p.id = c.profile_id WHERE p.user_id = $1`, []any{v, a}},
	}
	for _, st := range stmts {
		if _, err := e.Pool.Exec(ctx, st.sql, st.args...); err != nil {
			b.Fatalf("%s: %v", st.sql, err)
		}
	}
	return u
}

// BenchmarkSyncFullBuild measures a full build from the database: the snapshot queries, the
// visibility rules, writing the SQLite file and hashing it.
func BenchmarkSyncFullBuild(b *testing.B) {
	for _, n := range []int{100, 1_000, 10_000} {
		b.Run(fmt.Sprintf("rows=%d", n), func(b *testing.B) {
			e := synctest.New(b, synctest.Options{})
			u := seedRows(b, e, n)
			dir := b.TempDir()
			var size int64
			var rows int
			b.ReportAllocs()
			i := 0
			for b.Loop() {
				snap, err := e.Svc.Snapshot(ctx, u)
				if err != nil {
					b.Fatal(err)
				}
				path := filepath.Join(dir, fmt.Sprintf("f%d.sqlite", i))
				i++
				if err := syncfile.Build(ctx, path, snap.Contents); err != nil {
					b.Fatal(err)
				}
				if _, size, err = syncfile.MD5File(path); err != nil {
					b.Fatal(err)
				}
				b.StopTimer()
				rows = len(snap.Contents.Profiles) + len(snap.Contents.Relations) + len(snap.Contents.Cards) + len(snap.Contents.Subscriptions)
				os.Remove(path)
				b.StartTimer()
			}
			b.ReportMetric(float64(rows), "rows")
			b.ReportMetric(float64(size), "file-bytes")
		})
	}
}

// BenchmarkSyncRebuildAndPublish is the whole rebuild on request: lock, snapshot, build, MD5,
// store (local directory), compare-and-set, push; and reports the peak heap it needed.
func BenchmarkSyncRebuildAndPublish(b *testing.B) {
	for _, n := range []int{100, 1_000, 10_000} {
		b.Run(fmt.Sprintf("rows=%d", n), func(b *testing.B) {
			e := synctest.New(b, synctest.Options{})
			u := seedRows(b, e, n)
			if _, err := e.Svc.Current(ctx, u); err != nil {
				b.Fatal(err)
			}
			runtime.GC()
			var before runtime.MemStats
			runtime.ReadMemStats(&before)
			b.ReportAllocs()
			for b.Loop() {
				if _, err := e.Svc.Rebuild(ctx, u); err != nil {
					b.Fatal(err)
				}
			}
			var after runtime.MemStats
			runtime.ReadMemStats(&after)
			b.ReportMetric(float64(after.HeapSys)/(1<<20), "heap-sys-MiB")
		})
	}
}
