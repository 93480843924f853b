package moderation_test

import (
	"context"
	"log/slog"
	"math"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/bca-app/backend/gen/db"
	"github.com/bca-app/backend/internal/domain"
	"github.com/bca-app/backend/internal/moderation"
)

// The admin's look-ups (docs/product.md §9; README "Admin and moderation": searchUsers,
// getAdminUser, listUserProfiles, listReports, listAuditLog, getPipelineFigures).

func userIDs(us []db.User) []int64 {
	var out []int64
	for _, u := range us {
		out = append(out, u.ID)
	}
	return out
}

// TestSearchUsers: a case-insensitive prefix (folded the way the keys are) of the login id,
// the nickname or the e-mail, newest first, paged by id. The prefix is a byte range, so "_" and
// "%" are plain characters, not patterns. A blank query is refused.
func TestSearchUsers(t *testing.T) {
	ctx := context.Background()
	w := setup(t, options{})
	under := w.user(t, "ab_cd")
	plain := w.user(t, "abxcd")
	elodie := w.user(t, "Elodie")
	if _, err := w.pool.Exec(ctx, "UPDATE users SET nickname = 'Élodie Ω', nickname_key = $2, email = 'Zed@Example.com', email_key = 'zed@example.com' WHERE id = $1",
		elodie, domain.Key("Élodie Ω")); err != nil {
		t.Fatal(err)
	}
	// Nicknames whose next character after the prefix is outside ASCII, and outside the Basic
	// Multilingual Plane: the range's upper bound must lie past both.
	zoe, emoji := w.user(t, "ninauser"), w.user(t, "omaruser")
	for id, nick := range map[int64]string{zoe: "Zoë", emoji: "Emoji🙂"} {
		if _, err := w.pool.Exec(ctx, "UPDATE users SET nickname = $2, nickname_key = $3 WHERE id = $1", id, nick, domain.Key(nick)); err != nil {
			t.Fatal(err)
		}
	}
	search := func(q string, before int64, limit int) []int64 {
		t.Helper()
		us, err := w.mod.SearchUsers(ctx, q, before, limit)
		if err != nil {
			t.Fatalf("search %q: %v", q, err)
		}
		return userIDs(us)
	}
	const all = 1 << 62
	cases := []struct {
		q    string
		want []int64
	}{
		{"AB", []int64{plain, under}},         // login ids, newest first
		{"ab_", []int64{under}},               // "_" is not a wildcard
		{"%", nil},                            // nor is "%"
		{"NICK AB", []int64{plain, under}},    // nicknames ("nick <login id>")
		{"  ÉLODIE ω", []int64{elodie}},       // folded and trimmed like the keys
		{"zed@EXAMPLE", []int64{elodie}},      // e-mail
		{"abxcd@example.com", []int64{plain}}, // a whole e-mail
		{"abxcd@example.com.", nil},           // longer than every key
		{"b", nil},                            // a prefix, not a substring
		{"elodie", []int64{elodie}},           // the login id "Elodie"
		{"ZO", []int64{zoe}},                  // followed by "ë"
		{"emoji", []int64{emoji}},             // followed by "🙂"
		{"\U0010FFFF", nil},                   // the range's own upper bound matches nothing
	}
	for _, c := range cases {
		if got := search(c.q, all, 10); !slices.Equal(got, c.want) {
			t.Errorf("search %q: %v, want %v", c.q, got, c.want)
		}
	}
	// Paging: one at a time, newest first, each page before the previous one's id.
	if got := search("ab", all, 1); !slices.Equal(got, []int64{plain}) {
		t.Errorf("first page %v", got)
	}
	if got := search("ab", plain, 1); !slices.Equal(got, []int64{under}) {
		t.Errorf("second page %v", got)
	}
	if got := search("ab", under, 1); len(got) != 0 {
		t.Errorf("third page %v", got)
	}
	for _, q := range []string{"", "   ", "\t"} {
		_, err := w.mod.SearchUsers(ctx, q, all, 10)
		isKind(t, "blank query "+strings.TrimSpace(q), err, domain.KindInvalid)
	}
}

// TestAdminUserLookups: GetUser reads any user (locked ones too); ListUserProfiles lists every
// profile of the user, locked and deleted ones included, paged after an id; unknown users are
// not found (docs/product.md §9).
func TestAdminUserLookups(t *testing.T) {
	ctx := context.Background()
	w := setup(t, options{})
	u := w.actor(t, "someone")
	locked := w.profile(t, u.UserID, "locked")
	deleted := w.profile(t, u.UserID, "deleted")
	w.profile(t, w.user(t, "another"), "not theirs")
	if _, err := w.mod.SetLock(ctx, admin, moderation.KindProfile, locked, true, "x"); err != nil {
		t.Fatal(err)
	}
	if _, err := w.mod.SetLock(ctx, admin, moderation.KindUser, u.UserID, true, "x"); err != nil {
		t.Fatal(err)
	}
	if _, err := w.pool.Exec(ctx, "UPDATE profiles SET deleted_at = now() WHERE id = $1", deleted); err != nil {
		t.Fatal(err)
	}
	got, err := w.mod.GetUser(ctx, u.UserID)
	if err != nil || got.ID != u.UserID || got.LockedAt == nil {
		t.Fatalf("get user: %+v %v", got, err)
	}
	ids := func(ps []db.Profile) []int64 {
		var out []int64
		for _, p := range ps {
			out = append(out, p.ID)
		}
		return out
	}
	page, err := w.mod.ListUserProfiles(ctx, u.UserID, 0, 2)
	if err != nil || !slices.Equal(ids(page), []int64{u.ActingProfileID, locked}) || page[1].LockedAt == nil {
		t.Fatalf("first page %v %v", ids(page), err)
	}
	page, err = w.mod.ListUserProfiles(ctx, u.UserID, locked, 2)
	if err != nil || !slices.Equal(ids(page), []int64{deleted}) || page[0].DeletedAt == nil {
		t.Fatalf("second page %v %v", ids(page), err)
	}
	_, err = w.mod.GetUser(ctx, 987654)
	isKind(t, "unknown user", err, domain.KindNotFound)
	_, err = w.mod.ListUserProfiles(ctx, 987654, 0, 10)
	isKind(t, "profiles of an unknown user", err, domain.KindNotFound)
	_, err = w.mod.GetReport(ctx, 987654)
	isKind(t, "unknown report", err, domain.KindNotFound)
}

// TestListReportsAndAudit: the queue filters by status and kind and pages newest first; the
// audit log filters by actor, action, target kind and target id, each alone and together, and
// pages newest first.
func TestListReportsAndAudit(t *testing.T) {
	ctx := context.Background()
	w := setup(t, options{})
	reporter := w.actor(t, "reporter")
	a, b := w.reported(t, reporter, "alpha"), w.reported(t, reporter, "bravo")
	adminID := w.user(t, "theadmin")
	adm := moderation.AdminActor(adminID, "r")
	if _, err := w.mod.Resolve(ctx, adm, a.cardRep.ID, moderation.ActionLockTarget, nil); err != nil {
		t.Fatal(err)
	}
	repIDs := func(f moderation.ReportFilter, before int64, limit int) []int64 {
		t.Helper()
		rs, err := w.mod.ListReports(ctx, f, before, limit)
		if err != nil {
			t.Fatal(err)
		}
		var out []int64
		for _, r := range rs {
			out = append(out, r.ID)
		}
		return out
	}
	open, closed, cardKind, profileKind := "open", "closed", "card", "profile"
	const all = 1 << 62
	for _, c := range []struct {
		name string
		f    moderation.ReportFilter
		want []int64
	}{
		{"all", moderation.ReportFilter{}, []int64{b.cardRep.ID, b.profileRep.ID, a.cardRep.ID, a.profileRep.ID}},
		{"open", moderation.ReportFilter{Status: &open}, []int64{b.cardRep.ID, b.profileRep.ID, a.profileRep.ID}},
		{"closed", moderation.ReportFilter{Status: &closed}, []int64{a.cardRep.ID}},
		{"open cards", moderation.ReportFilter{Status: &open, Kind: &cardKind}, []int64{b.cardRep.ID}},
		{"profiles", moderation.ReportFilter{Kind: &profileKind}, []int64{b.profileRep.ID, a.profileRep.ID}},
	} {
		if got := repIDs(c.f, all, 10); !slices.Equal(got, c.want) {
			t.Errorf("reports %s: %v, want %v", c.name, got, c.want)
		}
	}
	if got := repIDs(moderation.ReportFilter{Status: &open}, b.profileRep.ID, 10); !slices.Equal(got, []int64{a.profileRep.ID}) {
		t.Errorf("open reports before %d: %v", b.profileRep.ID, got)
	}

	// The audit log so far: lock_card and resolve_report by the admin. Add an operator's entry.
	if _, err := w.mod.SetLock(ctx, admin, moderation.KindCard, b.card, true, "x"); err != nil {
		t.Fatal(err)
	}
	auditIDs := func(f moderation.AuditFilter, before int64, limit int) []string {
		t.Helper()
		es, err := w.mod.ListAudit(ctx, f, before, limit)
		if err != nil {
			t.Fatal(err)
		}
		var out []string
		for _, e := range es {
			out = append(out, e.Action+":"+e.TargetKind)
		}
		return out
	}
	lockCard, kindCard, kindReport := "lock_card", moderation.KindCard, moderation.KindReport
	for _, c := range []struct {
		name string
		f    moderation.AuditFilter
		want []string
	}{
		{"all", moderation.AuditFilter{}, []string{"lock_card:card", "resolve_report:report", "lock_card:card"}},
		{"by the admin", moderation.AuditFilter{ActorUserID: &adminID}, []string{"resolve_report:report", "lock_card:card"}},
		{"lock_card", moderation.AuditFilter{Action: &lockCard}, []string{"lock_card:card", "lock_card:card"}},
		{"reports", moderation.AuditFilter{TargetKind: &kindReport}, []string{"resolve_report:report"}},
		{"card b", moderation.AuditFilter{TargetKind: &kindCard, TargetID: &b.card}, []string{"lock_card:card"}},
		{"lock_card by the admin", moderation.AuditFilter{ActorUserID: &adminID, Action: &lockCard, TargetKind: &kindCard, TargetID: &a.card}, []string{"lock_card:card"}},
		{"the admin on card b", moderation.AuditFilter{ActorUserID: &adminID, TargetKind: &kindCard, TargetID: &b.card}, nil},
	} {
		if got := auditIDs(c.f, all, 10); !slices.Equal(got, c.want) {
			t.Errorf("audit %s: %v, want %v", c.name, got, c.want)
		}
	}
	es, err := w.mod.ListAudit(ctx, moderation.AuditFilter{}, all, 1)
	if err != nil || len(es) != 1 {
		t.Fatal(err)
	}
	if got := auditIDs(moderation.AuditFilter{}, es[0].ID, 10); !slices.Equal(got, []string{"resolve_report:report", "lock_card:card"}) {
		t.Errorf("audit before %d: %v", es[0].ID, got)
	}
}

// TestPipelineFigures: the backlog is read from sync_states — users whose file lags (the
// outbox), of those the ones a worker may take now (not parked, not backing off), the oldest
// pending change and the dead-lettered users — and the same numbers reach /metrics; with no lag
// sample the percentiles are NaN and left out of the scrape rather than exported as NaN.
func TestPipelineFigures(t *testing.T) {
	ctx := context.Background()
	w := setup(t, options{})
	ids := []int64{w.user(t, "user1"), w.user(t, "user2"), w.user(t, "user3"), w.user(t, "user4"), w.user(t, "user5")}
	// Every file current, then: 1 lags, 2 is parked (current), 3 lags but backs off, 4 lags and
	// is parked; 5 stays current.
	if _, err := w.pool.Exec(ctx, `
		INSERT INTO sync_states (user_id, wanted_version, built_version, stale_since) SELECT unnest($1::bigint[]), 1, 1, NULL;
	`, ids); err != nil {
		t.Fatal(err)
	}
	if _, err := w.pool.Exec(ctx, `
		UPDATE sync_states SET wanted_version = 3, built_version = 2, stale_since = now() - interval '10 seconds' WHERE user_id = $1;`, ids[0]); err != nil {
		t.Fatal(err)
	}
	if _, err := w.pool.Exec(ctx, `UPDATE sync_states SET dead_lettered_at = now() WHERE user_id = $1`, ids[1]); err != nil {
		t.Fatal(err)
	}
	if _, err := w.pool.Exec(ctx, `
		UPDATE sync_states SET wanted_version = 5, built_version = 4, stale_since = now() - interval '100 seconds', not_before = now() + interval '1 hour' WHERE user_id = $1`, ids[2]); err != nil {
		t.Fatal(err)
	}
	if _, err := w.pool.Exec(ctx, `
		UPDATE sync_states SET wanted_version = 2, built_version = 1, stale_since = now() - interval '50 seconds', dead_lettered_at = now() WHERE user_id = $1`, ids[3]); err != nil {
		t.Fatal(err)
	}
	f, err := w.mod.PipelineFigures(ctx, 5*time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	if f.OutboxDepth != 3 || f.QueueDepth != 1 || f.DeadLettered != 2 || f.OldestPendingSeconds < 100 || f.OldestPendingSeconds > 3600 || f.Window != 5*time.Minute {
		t.Errorf("figures %+v; want outbox 3, queue 1, dead 2, oldest ≈ 100 s", f)
	}
	if f.Lag.Samples != 0 || !math.IsNaN(f.Lag.P50) || len(f.Workers) != 0 {
		t.Errorf("lag %+v, workers %v; want none", f.Lag, f.Workers)
	}
	c := w.mod.Collector()
	want := `
# HELP bca_pipeline_dead_lettered_users Users parked after too many failed builds.
# TYPE bca_pipeline_dead_lettered_users gauge
bca_pipeline_dead_lettered_users 2
# HELP bca_pipeline_outbox_depth Users whose sync file lags what they are owed.
# TYPE bca_pipeline_outbox_depth gauge
bca_pipeline_outbox_depth 3
# HELP bca_pipeline_queue_depth Lagging users a worker may take now.
# TYPE bca_pipeline_queue_depth gauge
bca_pipeline_queue_depth 1
# HELP bca_pipeline_workers Sync workers that reported in the last ten minutes.
# TYPE bca_pipeline_workers gauge
bca_pipeline_workers 0
`
	if err := testutil.CollectAndCompare(c, strings.NewReader(want),
		"bca_pipeline_dead_lettered_users", "bca_pipeline_outbox_depth", "bca_pipeline_queue_depth", "bca_pipeline_workers"); err != nil {
		t.Error(err)
	}
	if n := testutil.CollectAndCount(c, "bca_pipeline_sync_lag_seconds"); n != 0 {
		t.Errorf("%d lag series without a sample, want none", n)
	}
	reg := prometheus.NewPedanticRegistry()
	if err := reg.Register(c); err != nil {
		t.Fatalf("the collector does not describe what it collects: %v", err)
	}
	if _, err := reg.Gather(); err != nil {
		t.Errorf("gather: %v", err)
	}
}

// TestFiguresWithoutRedis: when the lag samples and heartbeats cannot be read, the figures
// answer an error and the scrape leaves them out instead of failing /metrics.
func TestFiguresWithoutRedis(t *testing.T) {
	rdb := stoppedRedis(t)
	w := setup(t, options{redis: rdb})
	if _, err := w.mod.PipelineFigures(context.Background(), time.Minute); err == nil {
		t.Error("figures without Redis: no error")
	}
	if n := testutil.CollectAndCount(w.mod.Collector()); n != 0 {
		t.Errorf("%d metrics collected from a failed read, want none", n)
	}
}

// TestFiguresNeedRedis: a service made without Redis (an operator command) answers the figures
// with an error instead of panicking.
func TestFiguresNeedRedis(t *testing.T) {
	w := setup(t, options{})
	mod, err := moderation.New(moderation.Deps{Pool: w.pool, Log: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := mod.PipelineFigures(context.Background(), time.Minute); err == nil {
		t.Error("figures without Redis: no error")
	}
}
