package syncfile_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"testing"

	. "github.com/bca-app/backend/internal/syncfile"
)

// BenchmarkBuild measures a full build (create, insert, foreign key check, fsync, close) against
// the row count; docs/sync.md asks for full-build time versus row count.
func BenchmarkBuild(b *testing.B) {
	for _, n := range []int{100, 1_000, 10_000} {
		b.Run(fmt.Sprintf("rows=%d", n), func(b *testing.B) {
			c := sizedContents(n)
			dir := b.TempDir()
			var size int64
			b.ReportAllocs()
			i := 0
			for b.Loop() {
				path := filepath.Join(dir, fmt.Sprintf("user-%d.sqlite", i))
				i++
				if err := Build(context.Background(), path, c); err != nil {
					b.Fatal(err)
				}
				b.StopTimer()
				st, err := os.Stat(path)
				if err != nil {
					b.Fatal(err)
				}
				size = st.Size()
				if err := os.Remove(path); err != nil {
					b.Fatal(err)
				}
				b.StartTimer()
			}
			b.ReportMetric(float64(size), "file-bytes")
		})
	}
}

// BenchmarkUpdate measures the incremental path on a 10,000-row file: a typical small change and
// a mass deletion (which is where per-statement foreign key enforcement would be quadratic).
func BenchmarkUpdate(b *testing.B) {
	base := sizedContents(10_000)
	for name, next := range map[string]Contents{
		"rows=10000/1pct-changed":       changedFraction(base, 100),
		"rows=10000/half-profiles-gone": withoutUpperHalfOfProfiles(base),
	} {
		b.Run(name, func(b *testing.B) {
			dir := b.TempDir()
			basePath := filepath.Join(dir, "base.sqlite")
			if err := Build(context.Background(), basePath, base); err != nil {
				b.Fatal(err)
			}
			baseBytes, err := os.ReadFile(basePath)
			if err != nil {
				b.Fatal(err)
			}
			path := filepath.Join(dir, "user.sqlite")
			b.ReportAllocs()
			for b.Loop() {
				b.StopTimer()
				if err := os.WriteFile(path, baseBytes, 0o600); err != nil {
					b.Fatal(err)
				}
				b.StartTimer()
				if _, err := Update(context.Background(), path, next); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// changedFraction gives every nth row of each table a new commit_id.
func changedFraction(c Contents, n int) Contents {
	out := Contents{
		Profiles: slices.Clone(c.Profiles), Relations: slices.Clone(c.Relations),
		Cards: slices.Clone(c.Cards), Subscriptions: slices.Clone(c.Subscriptions),
	}
	for i := 0; i < len(out.Profiles); i += n {
		out.Profiles[i].CommitID += "'"
	}
	for i := 0; i < len(out.Relations); i += n {
		out.Relations[i].CommitID += "'"
	}
	for i := 0; i < len(out.Cards); i += n {
		out.Cards[i].CommitID += "'"
	}
	for i := 0; i < len(out.Subscriptions); i += n {
		out.Subscriptions[i].CommitID += "'"
	}
	return out
}

// withoutUpperHalfOfProfiles drops the profiles with the higher half of ids and every row that
// refers to them.
func withoutUpperHalfOfProfiles(c Contents) Contents {
	keep := int64(len(c.Profiles) / 2)
	var out Contents
	for _, p := range c.Profiles {
		if p.ID <= keep {
			out.Profiles = append(out.Profiles, p)
		}
	}
	cards := map[int64]bool{}
	for _, card := range c.Cards {
		if card.ProfileID <= keep {
			out.Cards = append(out.Cards, card)
			cards[card.ID] = true
		}
	}
	for _, r := range c.Relations {
		if r.FromProfileID <= keep && r.ToProfileID <= keep {
			out.Relations = append(out.Relations, r)
		}
	}
	for _, s := range c.Subscriptions {
		if cards[s.CardID] && s.CardProfileID <= keep && s.SubscribedProfileID <= keep {
			out.Subscriptions = append(out.Subscriptions, s)
		}
	}
	return out
}
