package moderation_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/redis/go-redis/v9"

	"github.com/bca-app/backend/gen/db"
	"github.com/bca-app/backend/internal/access"
	"github.com/bca-app/backend/internal/auth"
	"github.com/bca-app/backend/internal/card"
	"github.com/bca-app/backend/internal/domain"
	"github.com/bca-app/backend/internal/moderation"
	"github.com/bca-app/backend/internal/profile"
	"github.com/bca-app/backend/internal/ratelimit"
	"github.com/bca-app/backend/internal/redisconn"
	"github.com/bca-app/backend/internal/testenv"
)

// The service side of docs/product.md §9 (admin and moderation), tested against real PostgreSQL
// and Redis: locks, session revocation, rebuilds and role changes here; reports and their
// resolution in reports_test.go; the admin's look-ups and figures in reads_test.go. The HTTP
// layer (who may call what, status codes) is internal/e2e/admin_test.go's.

func TestMain(m *testing.M) { testenv.Main(m) }

// world is one test's database, Redis prefix and services.
type world struct {
	pool     *pgxpool.Pool
	rdb      redis.UniversalClient
	prefix   string
	notes    *testenv.Bumps
	mod      *moderation.Service
	rep      *moderation.Reporter
	profiles *profile.Service
	cards    *card.Service
	limiter  *ratelimit.Limiter
}

type options struct {
	perMinute int                   // reports per account and minute; 0 means 1000
	redis     redis.UniversalClient // the service's Redis, when not the test's own
}

func setup(t *testing.T, o options) *world {
	t.Helper()
	pool := testenv.Pool(t)
	url, prefix := testenv.Redis(t)
	rdb := testenv.RedisClient(t, url)
	w := &world{pool: pool, rdb: rdb, prefix: prefix, notes: &testenv.Bumps{}}
	serviceRedis := rdb
	if o.redis != nil {
		serviceRedis = o.redis
	}
	log := slog.New(slog.DiscardHandler)
	var err error
	if w.mod, err = moderation.New(moderation.Deps{Pool: pool, Notifier: w.notes, Redis: serviceRedis, KeyPrefix: prefix, Log: log}); err != nil {
		t.Fatal(err)
	}
	// Profiles and cards are only fixtures and the reporters' read rules: their bumps are not
	// the moderation's, so they go nowhere.
	if w.profiles, err = profile.New(profile.Deps{Pool: pool}); err != nil {
		t.Fatal(err)
	}
	if w.cards, err = card.New(card.Deps{Pool: pool}); err != nil {
		t.Fatal(err)
	}
	if w.limiter, err = ratelimit.New(ratelimit.Deps{Redis: serviceRedis, KeyPrefix: prefix}); err != nil {
		t.Fatal(err)
	}
	per := o.perMinute
	if per == 0 {
		per = 1000
	}
	if w.rep, err = moderation.NewReporter(moderation.ReportDeps{Moderation: w.mod, Profiles: w.profiles, Cards: w.cards, Limiter: w.limiter, PerMinute: per}); err != nil {
		t.Fatal(err)
	}
	return w
}

// stoppedRedis is a client, bounded the way the API's is (one dial attempt, no retries), of
// a Redis server that has stopped.
func stoppedRedis(t *testing.T) redis.UniversalClient {
	t.Helper()
	down := testenv.RedisServer(t)
	rdb, err := redisconn.Open(down.URL(), time.Second)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { rdb.Close() })
	if err := down.Stop(); err != nil {
		t.Fatal(err)
	}
	return rdb
}

// user inserts an account (login id, nickname and email derived from name) and returns its id.
func (w *world) user(t *testing.T, name string) int64 {
	t.Helper()
	var id int64
	key := domain.Key(name)
	if err := w.pool.QueryRow(context.Background(), `
		INSERT INTO users (login_id, login_key, nickname, nickname_key, email, email_key, password_hash)
		VALUES ($1, $2, 'nick ' || $1, 'nick ' || $2, $1 || '@example.com', $2 || '@example.com', 'x') RETURNING id`,
		name, key).Scan(&id); err != nil {
		t.Fatalf("user %s: %v", name, err)
	}
	return id
}

// profile creates a public profile of the user.
func (w *world) profile(t *testing.T, userID int64, name string) int64 {
	t.Helper()
	public := false
	p, err := w.profiles.CreateMine(context.Background(), userID, profile.CreateInput{Name: name, Private: &public})
	if err != nil {
		t.Fatalf("profile %s: %v", name, err)
	}
	return p.ID
}

// actor creates a user with one public profile and returns it acting as that profile.
func (w *world) actor(t *testing.T, name string) access.Caller {
	t.Helper()
	id := w.user(t, name)
	return access.Caller{UserID: id, ActingProfileID: w.profile(t, id, name)}
}

// card creates a card of the acting profile (public unless private).
func (w *world) card(t *testing.T, owner access.Caller, name string, private bool) int64 {
	t.Helper()
	c, err := w.cards.Create(context.Background(), owner, card.Input{Name: &name, Private: &private})
	if err != nil {
		t.Fatalf("card %s: %v", name, err)
	}
	return c.ID
}

// sessions inserts n live sessions of the user.
func (w *world) sessions(t *testing.T, userID int64, n int) []int64 {
	t.Helper()
	var ids []int64
	for range n {
		var id int64
		if err := w.pool.QueryRow(context.Background(), `
			INSERT INTO sessions (user_id, refresh_hash, expires_at)
			VALUES ($1, convert_to(gen_random_uuid()::text, 'UTF8'), now() + interval '1 day') RETURNING id`, userID).Scan(&id); err != nil {
			t.Fatal(err)
		}
		ids = append(ids, id)
	}
	return ids
}

func (w *world) count(t *testing.T, sql string, args ...any) int {
	t.Helper()
	var n int
	if err := w.pool.QueryRow(context.Background(), sql, args...).Scan(&n); err != nil {
		t.Fatalf("%s: %v", sql, err)
	}
	return n
}

func (w *world) lockedAt(t *testing.T, table string, id int64) *time.Time {
	t.Helper()
	var at *time.Time
	if err := w.pool.QueryRow(context.Background(), "SELECT locked_at FROM "+pgx.Identifier{table}.Sanitize()+" WHERE id = $1", id).Scan(&at); err != nil {
		t.Fatalf("%s %d: %v", table, id, err)
	}
	return at
}

func (w *world) wanted(t *testing.T, userID int64) int64 {
	t.Helper()
	var v int64
	err := w.pool.QueryRow(context.Background(), "SELECT wanted_version FROM sync_states WHERE user_id = $1", userID).Scan(&v)
	if errors.Is(err, pgx.ErrNoRows) {
		return 0
	}
	if err != nil {
		t.Fatal(err)
	}
	return v
}

// audits reads the audit entries of a target, oldest first, straight from the table.
func (w *world) audits(t *testing.T, kind string, id int64) []db.AuditLog {
	t.Helper()
	rows, err := w.pool.Query(context.Background(), "SELECT * FROM audit_log WHERE target_kind = $1 AND target_id = $2 ORDER BY id", kind, id)
	if err != nil {
		t.Fatal(err)
	}
	out, err := pgx.CollectRows(rows, pgx.RowToStructByPos[db.AuditLog])
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func actions(entries []db.AuditLog) []string {
	var out []string
	for _, e := range entries {
		out = append(out, e.Action)
	}
	return out
}

// generation is the user's cached-session generation in Redis: a new value means every API
// process checks the user's sessions in PostgreSQL again (auth.ForgetUser).
func (w *world) generation(t *testing.T, userID int64) string {
	t.Helper()
	v, err := w.rdb.Get(context.Background(), auth.UserKey(w.prefix, userID, "gen")).Result()
	if err != nil && !errors.Is(err, redis.Nil) {
		t.Fatal(err)
	}
	return v
}

// snapshot is the whole database's content: one digest per table. Two equal snapshots mean no
// row was added, removed or changed in between (the e2e snapshot only counts rows).
func (w *world) snapshot(t *testing.T) map[string]string {
	t.Helper()
	ctx := context.Background()
	rows, err := w.pool.Query(ctx, `SELECT tablename FROM pg_tables WHERE schemaname = 'public' AND tablename <> 'goose_db_version'`)
	if err != nil {
		t.Fatal(err)
	}
	tables, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]string{}
	for _, table := range tables {
		var digest string
		q := "SELECT coalesce(md5(string_agg(x::text, '|' ORDER BY x::text)), '') FROM " + pgx.Identifier{table}.Sanitize() + " x"
		if err := w.pool.QueryRow(ctx, q).Scan(&digest); err != nil {
			t.Fatalf("snapshot %s: %v", table, err)
		}
		out[table] = digest
	}
	return out
}

func (w *world) unchanged(t *testing.T, what string, before map[string]string) {
	t.Helper()
	after := w.snapshot(t)
	for table := range before {
		if before[table] != after[table] {
			t.Errorf("%s changed table %s", what, table)
		}
	}
	if len(after) != len(before) {
		t.Errorf("%s changed the set of tables", what)
	}
	if b := w.notes.Take(); len(b) != 0 {
		t.Errorf("%s notified sync bumps %v", what, b)
	}
}

// listen subscribes to the session-end channel (docs/architecture.md, "Ending live streams from
// outside") and returns the announcements as they arrive.
func (w *world) listen(t *testing.T) <-chan auth.SessionEnd {
	t.Helper()
	ctx := context.Background()
	sub := w.rdb.Subscribe(ctx, auth.SessionEndChannel(w.prefix))
	if _, err := sub.Receive(ctx); err != nil {
		t.Fatalf("subscribe: %v", err)
	}
	out := make(chan auth.SessionEnd, 64)
	done := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for m := range sub.Channel() {
			var e auth.SessionEnd
			if err := json.Unmarshal([]byte(m.Payload), &e); err != nil {
				e = auth.SessionEnd{SessionID: -1}
			}
			select {
			case out <- e:
			case <-done:
				return
			}
		}
	}()
	t.Cleanup(func() {
		close(done)
		_ = sub.Close()
		wg.Wait()
	})
	return out
}

// marker is an announcement only the test publishes: the next one read after a call that must
// not announce anything must be the marker (Redis delivers one channel's messages in order).
var marker = auth.SessionEnd{SessionID: 987654321}

func (w *world) nextEnd(t *testing.T, ch <-chan auth.SessionEnd) auth.SessionEnd {
	t.Helper()
	select {
	case e := <-ch:
		return e
	case <-time.After(10 * time.Second):
		t.Fatal("no session-end announcement within 10 s")
	}
	return auth.SessionEnd{}
}

// noEnd asserts that nothing was announced since the last read of ch.
func (w *world) noEnd(t *testing.T, ch <-chan auth.SessionEnd, what string) {
	t.Helper()
	if err := auth.PublishSessionEnd(context.Background(), w.rdb, w.prefix, marker); err != nil {
		t.Fatal(err)
	}
	if e := w.nextEnd(t, ch); e != marker {
		t.Errorf("%s announced %+v", what, e)
	}
}

func code(err error) string {
	if e, ok := domain.AsError(err); ok {
		return e.Code
	}
	return ""
}

func isKind(t *testing.T, what string, err error, kind domain.Kind) {
	t.Helper()
	if !domain.IsKind(err, kind) {
		t.Errorf("%s: error %v, want kind %d", what, err, kind)
	}
}

var admin = moderation.Actor{Name: "bcactl:test", RequestID: "req-1"}

// TestNewRefusesMissingDependencies: a wiring mistake fails at start with the names of what is
// missing (docs/architecture.md, "Constructors").
func TestNewRefusesMissingDependencies(t *testing.T) {
	if _, err := moderation.New(moderation.Deps{}); err == nil || !strings.Contains(err.Error(), "Pool") || !strings.Contains(err.Error(), "Log") {
		t.Errorf("New without Pool and Log: %v", err)
	}
	if _, err := moderation.NewReporter(moderation.ReportDeps{}); err == nil ||
		!strings.Contains(err.Error(), "Moderation") || !strings.Contains(err.Error(), "Limiter") ||
		!strings.Contains(err.Error(), "Profiles") || !strings.Contains(err.Error(), "Cards") {
		t.Errorf("NewReporter without dependencies: %v", err)
	}
}

type userLockDetails struct {
	Profiles        []int64 `json:"profiles"`
	SessionsRevoked *int    `json:"sessions_revoked"`
}

// TestLockUser pins what an admin's lock of a user does in one transaction (docs/product.md §3
// "admin lock: revoke sessions", §9): the lock, the revocation of exactly the user's live
// sessions, a bump of every file holding one of its profiles (and no other), and one audit
// entry naming the profiles and the revoked count; after commit, the cached sessions are
// forgotten and the user's streams are ended. Locking again changes nothing and writes and
// announces nothing; unlocking clears the lock without bringing sessions back.
func TestLockUser(t *testing.T) {
	ctx := context.Background()
	w := setup(t, options{})
	target := w.actor(t, "target")
	second := w.profile(t, target.UserID, "second")
	fan, bystander := w.actor(t, "fanatic"), w.actor(t, "bystander")
	// The fan's file holds the target's second profile through a subscription to its card.
	c := w.card(t, access.Caller{UserID: target.UserID, ActingProfileID: second}, "card", false)
	if _, err := w.cards.Subscribe(ctx, fan, c, ""); err != nil {
		t.Fatal(err)
	}
	live := w.sessions(t, target.UserID, 2)
	old := w.sessions(t, target.UserID, 1)[0]
	if _, err := w.pool.Exec(ctx, "UPDATE sessions SET revoked_at = now(), revoke_reason = 'signed_out' WHERE id = $1", old); err != nil {
		t.Fatal(err)
	}
	other := w.sessions(t, bystander.UserID, 1)[0]
	ends := w.listen(t)
	w.notes.Take()
	versions := map[int64]int64{target.UserID: w.wanted(t, target.UserID), fan.UserID: w.wanted(t, fan.UserID), bystander.UserID: w.wanted(t, bystander.UserID)}
	gen := w.generation(t, target.UserID)

	st, err := w.mod.SetLock(ctx, admin, moderation.KindUser, target.UserID, true, "spam wave")
	if err != nil {
		t.Fatal(err)
	}
	if !st.Changed || st.LockedAt == nil || st.Kind != moderation.KindUser || st.ID != target.UserID {
		t.Fatalf("lock state %+v", st)
	}
	if at := w.lockedAt(t, "users", target.UserID); at == nil || !at.Equal(*st.LockedAt) {
		t.Fatalf("users.locked_at %v, state says %v", at, st.LockedAt)
	}
	for _, id := range live {
		if n := w.count(t, "SELECT count(*)::int FROM sessions WHERE id = $1 AND revoked_at IS NOT NULL AND revoke_reason = 'locked_by_admin'", id); n != 1 {
			t.Errorf("live session %d not revoked as locked_by_admin", id)
		}
	}
	if n := w.count(t, "SELECT count(*)::int FROM sessions WHERE id = $1 AND revoke_reason = 'signed_out'", old); n != 1 {
		t.Errorf("the already revoked session %d was revoked again", old)
	}
	if n := w.count(t, "SELECT count(*)::int FROM sessions WHERE id = $1 AND revoked_at IS NULL", other); n != 1 {
		t.Errorf("another user's session %d was revoked", other)
	}
	// Bumps: the owner and the fan, each once, in the table and to the notifier; not the bystander.
	bumps := w.notes.Take()
	for _, u := range []int64{target.UserID, fan.UserID} {
		if got := w.wanted(t, u); got != versions[u]+1 || !slices.Equal(bumps[u], []int64{got}) {
			t.Errorf("user %d: wanted %d → %d, notified %v; want one bump", u, versions[u], got, bumps[u])
		}
	}
	if got := w.wanted(t, bystander.UserID); got != versions[bystander.UserID] || bumps[bystander.UserID] != nil {
		t.Errorf("the bystander was bumped: %d → %d, notified %v", versions[bystander.UserID], got, bumps[bystander.UserID])
	}
	// One audit entry with the actor, the reason, the request id and the details.
	entries := w.audits(t, moderation.KindUser, target.UserID)
	if len(entries) != 1 {
		t.Fatalf("audit entries %v, want one lock_user", actions(entries))
	}
	e := entries[0]
	if e.Action != "lock_user" || e.Actor != admin.Name || e.ActorUserID != nil || e.Reason == nil || *e.Reason != "spam wave" ||
		e.RequestID == nil || *e.RequestID != admin.RequestID {
		t.Errorf("audit entry %+v", e)
	}
	var d userLockDetails
	if err := json.Unmarshal(e.Details, &d); err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(d.Profiles, []int64{target.ActingProfileID, second}) || d.SessionsRevoked == nil || *d.SessionsRevoked != 2 {
		t.Errorf("audit details %s", e.Details)
	}
	if g := w.generation(t, target.UserID); g == "" || g == gen {
		t.Errorf("the user's cached sessions were not forgotten (generation %q → %q)", gen, g)
	}
	if end := w.nextEnd(t, ends); end != (auth.SessionEnd{UserID: target.UserID}) {
		t.Errorf("announcement %+v, want the whole user", end)
	}

	// Again: nothing changes, nothing is written or announced.
	before := w.snapshot(t)
	st, err = w.mod.SetLock(ctx, admin, moderation.KindUser, target.UserID, true, "twice")
	if err != nil || st.Changed || st.LockedAt == nil {
		t.Fatalf("second lock: %+v %v", st, err)
	}
	w.unchanged(t, "a second lock", before)
	w.noEnd(t, ends, "a second lock")

	// Unlock: the lock goes, the revoked sessions stay revoked, no stream is ended.
	st, err = w.mod.SetLock(ctx, admin, moderation.KindUser, target.UserID, false, "appeal granted")
	if err != nil || !st.Changed || st.LockedAt != nil {
		t.Fatalf("unlock: %+v %v", st, err)
	}
	if w.lockedAt(t, "users", target.UserID) != nil {
		t.Fatal("still locked after the unlock")
	}
	if n := w.count(t, "SELECT count(*)::int FROM sessions WHERE user_id = $1 AND revoked_at IS NULL", target.UserID); n != 0 {
		t.Errorf("%d sessions live again after the unlock", n)
	}
	entries = w.audits(t, moderation.KindUser, target.UserID)
	if got := actions(entries); !slices.Equal(got, []string{"lock_user", "unlock_user"}) {
		t.Fatalf("audit entries %v", got)
	}
	d = userLockDetails{}
	if err := json.Unmarshal(entries[1].Details, &d); err != nil || d.SessionsRevoked != nil || len(d.Profiles) != 2 {
		t.Errorf("unlock details %s (%v)", entries[1].Details, err)
	}
	if b := w.notes.Take(); len(b[target.UserID]) != 1 || len(b[fan.UserID]) != 1 || b[bystander.UserID] != nil {
		t.Errorf("unlock bumps %v", b)
	}
	w.noEnd(t, ends, "an unlock")
	// Unlocking what is unlocked is a no-op too.
	before = w.snapshot(t)
	if st, err := w.mod.SetLock(ctx, admin, moderation.KindUser, target.UserID, false, "twice"); err != nil || st.Changed {
		t.Fatalf("second unlock: %+v %v", st, err)
	}
	w.unchanged(t, "a second unlock", before)
}

// TestLockProfileAndCard: a profile lock bumps the profile's audience, forgets its owner's
// cached sessions (they list the live profiles) and ends the streams acting as it; a card lock
// bumps the card's audience only and ends nothing. Each writes its audit entry with the owner
// in the details (docs/product.md §9).
func TestLockProfileAndCard(t *testing.T) {
	ctx := context.Background()
	w := setup(t, options{})
	owner := w.actor(t, "owner")
	other := w.profile(t, owner.UserID, "other")
	fan, bystander := w.actor(t, "fanatic"), w.actor(t, "bystander")
	c := w.card(t, owner, "card", false)
	otherCard := w.card(t, access.Caller{UserID: owner.UserID, ActingProfileID: other}, "other card", false)
	if _, err := w.cards.Subscribe(ctx, fan, c, ""); err != nil {
		t.Fatal(err)
	}
	if _, err := w.cards.Subscribe(ctx, bystander, otherCard, ""); err != nil {
		t.Fatal(err)
	}
	ends := w.listen(t)
	w.notes.Take()
	gen := w.generation(t, owner.UserID)

	st, err := w.mod.SetLock(ctx, moderation.AdminActor(fan.UserID, "r2"), moderation.KindProfile, owner.ActingProfileID, true, "impersonation")
	if err != nil || !st.Changed || st.LockedAt == nil {
		t.Fatalf("lock profile: %+v %v", st, err)
	}
	if w.lockedAt(t, "profiles", owner.ActingProfileID) == nil || w.lockedAt(t, "profiles", other) != nil || w.lockedAt(t, "users", owner.UserID) != nil {
		t.Fatal("the lock did not land on exactly the profile")
	}
	// The audience of this profile only: not the bystander, who holds the owner's other profile.
	if b := w.notes.Take(); len(b[owner.UserID]) != 1 || len(b[fan.UserID]) != 1 || b[bystander.UserID] != nil {
		t.Errorf("profile lock bumps %v", b)
	}
	entries := w.audits(t, moderation.KindProfile, owner.ActingProfileID)
	if len(entries) != 1 || entries[0].Action != "lock_profile" || entries[0].ActorUserID == nil || *entries[0].ActorUserID != fan.UserID ||
		entries[0].Actor != fmt.Sprintf("user:%d", fan.UserID) || string(entries[0].Details) != fmt.Sprintf(`{"user_id": %d}`, owner.UserID) {
		t.Errorf("profile lock audit %+v (%s)", entries, detailsOf(entries))
	}
	if g := w.generation(t, owner.UserID); g == "" || g == gen {
		t.Errorf("the owner's cached sessions were not forgotten")
	}
	if end := w.nextEnd(t, ends); end != (auth.SessionEnd{ProfileID: owner.ActingProfileID}) {
		t.Errorf("announcement %+v, want the profile", end)
	}
	if _, err := w.mod.SetLock(ctx, admin, moderation.KindProfile, owner.ActingProfileID, false, "ok"); err != nil {
		t.Fatal(err)
	}
	w.notes.Take()
	w.noEnd(t, ends, "a profile unlock")

	st, err = w.mod.SetLock(ctx, admin, moderation.KindCard, c, true, "scam")
	if err != nil || !st.Changed {
		t.Fatalf("lock card: %+v %v", st, err)
	}
	if w.lockedAt(t, "cards", c) == nil || w.lockedAt(t, "cards", otherCard) != nil || w.lockedAt(t, "profiles", owner.ActingProfileID) != nil {
		t.Fatal("the lock did not land on exactly the card")
	}
	if b := w.notes.Take(); len(b[owner.UserID]) != 1 || len(b[fan.UserID]) != 1 || b[bystander.UserID] != nil {
		t.Errorf("card lock bumps %v", b)
	}
	entries = w.audits(t, moderation.KindCard, c)
	if len(entries) != 1 || entries[0].Action != "lock_card" || string(entries[0].Details) != fmt.Sprintf(`{"profile_id": %d}`, owner.ActingProfileID) {
		t.Errorf("card lock audit %v (%s)", actions(entries), detailsOf(entries))
	}
	w.noEnd(t, ends, "a card lock")
}

func detailsOf(entries []db.AuditLog) string {
	var parts []string
	for _, e := range entries {
		parts = append(parts, string(e.Details))
	}
	return strings.Join(parts, "; ")
}

// TestRefusedAdminActionsChangeNothing: a missing or too long reason, an unknown kind, an
// unknown id (for every kind and every action) and an unknown login are refused with the
// right kind of error, and leave every table, the outbox notifications and the stream
// announcements as they were (docs/product.md §9: "a reason is required").
func TestRefusedAdminActionsChangeNothing(t *testing.T) {
	ctx := context.Background()
	w := setup(t, options{})
	u := w.actor(t, "someone")
	c := w.card(t, u, "card", false)
	w.sessions(t, u.UserID, 1)
	ends := w.listen(t)
	w.notes.Take()
	before := w.snapshot(t)
	long := strings.Repeat("é", 251) // 502 bytes, 251 characters: the limit is in bytes
	const missing = 987654
	cases := []struct {
		name string
		kind domain.Kind
		call func() error
	}{
		{"lock user, no reason", domain.KindInvalid, func() error {
			_, err := w.mod.SetLock(ctx, admin, moderation.KindUser, u.UserID, true, "")
			return err
		}},
		{"lock profile, reason over 500 bytes", domain.KindInvalid, func() error {
			_, err := w.mod.SetLock(ctx, admin, moderation.KindProfile, u.ActingProfileID, true, long)
			return err
		}},
		{"lock card, no reason", domain.KindInvalid, func() error {
			_, err := w.mod.SetLock(ctx, admin, moderation.KindCard, c, true, "")
			return err
		}},
		{"lock user, a reason of blanks", domain.KindInvalid, func() error {
			_, err := w.mod.SetLock(ctx, admin, moderation.KindUser, u.UserID, true, " \t\n ")
			return err
		}},
		{"lock a room", domain.KindInvalid, func() error {
			_, err := w.mod.SetLock(ctx, admin, "room", u.ActingProfileID, true, "why")
			return err
		}},
		{"lock a report", domain.KindInvalid, func() error {
			_, err := w.mod.SetLock(ctx, admin, moderation.KindReport, 1, true, "why")
			return err
		}},
		{"lock unknown user", domain.KindNotFound, func() error {
			_, err := w.mod.SetLock(ctx, admin, moderation.KindUser, missing, true, "why")
			return err
		}},
		{"unlock unknown user", domain.KindNotFound, func() error {
			_, err := w.mod.SetLock(ctx, admin, moderation.KindUser, missing, false, "why")
			return err
		}},
		{"lock unknown profile", domain.KindNotFound, func() error {
			_, err := w.mod.SetLock(ctx, admin, moderation.KindProfile, missing, true, "why")
			return err
		}},
		{"lock unknown card", domain.KindNotFound, func() error {
			_, err := w.mod.SetLock(ctx, admin, moderation.KindCard, missing, true, "why")
			return err
		}},
		{"lock user id 0", domain.KindNotFound, func() error {
			_, err := w.mod.SetLock(ctx, admin, moderation.KindUser, 0, true, "why")
			return err
		}},
		{"revoke sessions, no reason", domain.KindInvalid, func() error {
			_, err := w.mod.RevokeSessions(ctx, admin, u.UserID, "")
			return err
		}},
		{"revoke sessions of unknown user", domain.KindNotFound, func() error {
			_, err := w.mod.RevokeSessions(ctx, admin, missing, "why")
			return err
		}},
		{"rebuild, reason over 500 bytes", domain.KindInvalid, func() error {
			_, _, err := w.mod.Rebuild(ctx, admin, u.UserID, strings.Repeat("x", 501))
			return err
		}},
		{"rebuild unknown user", domain.KindNotFound, func() error {
			_, _, err := w.mod.Rebuild(ctx, admin, missing, "why")
			return err
		}},
		{"grant admin to unknown login", domain.KindNotFound, func() error {
			_, err := w.mod.SetRole(ctx, admin, "nobody", true)
			return err
		}},
	}
	for _, tc := range cases {
		isKind(t, tc.name, tc.call(), tc.kind)
		w.unchanged(t, tc.name, before)
	}
	w.noEnd(t, ends, "refused actions")

	// The limit is 500 bytes inclusive.
	if _, err := w.mod.SetLock(ctx, admin, moderation.KindCard, c, true, strings.Repeat("x", 500)); err != nil {
		t.Errorf("a reason of exactly 500 bytes: %v", err)
	}
}

// TestUserChangesRefusedWhileTheSessionStoreIsDown: a lock of a user and a revocation of its
// sessions first make every API process forget the user's cached sessions; when Redis cannot
// take that, the change is refused with a retryable 503 and nothing is written, so no process
// keeps trusting a session the database has revoked (docs/product.md §3, §9).
func TestUserChangesRefusedWhileTheSessionStoreIsDown(t *testing.T) {
	ctx := context.Background()
	rdb := stoppedRedis(t)
	w := setup(t, options{redis: rdb})
	u := w.actor(t, "someone")
	w.sessions(t, u.UserID, 2)
	if _, err := w.mod.SetRole(ctx, admin, "someone", true); err == nil {
		t.Error("granting the admin role with Redis down succeeded")
	}
	rep, err := w.rep.ReportProfile(ctx, w.actor(t, "reporter"), u.ActingProfileID, spam())
	if err != nil {
		t.Fatal(err)
	}
	w.notes.Take()
	before := w.snapshot(t)
	for name, call := range map[string]func() error{
		// A role is cached with the session records, and so is a lock (docs/product.md §9).
		"revoke admin": func() error {
			_, err := w.mod.SetRole(ctx, admin, "someone", false)
			return err
		},
		"resolve a report by locking the user": func() error {
			_, err := w.mod.Resolve(ctx, admin, rep.ID, moderation.ActionLockUser, nil)
			return err
		},
		"lock user": func() error {
			_, err := w.mod.SetLock(ctx, admin, moderation.KindUser, u.UserID, true, "abuse")
			return err
		},
		"unlock user": func() error {
			_, err := w.mod.SetLock(ctx, admin, moderation.KindUser, u.UserID, false, "abuse")
			return err
		},
		"revoke sessions": func() error {
			_, err := w.mod.RevokeSessions(ctx, admin, u.UserID, "stolen phone")
			return err
		},
	} {
		err := call()
		e, ok := domain.AsError(err)
		if !ok || e.Kind != domain.KindUnavailable || e.Code != "auth.cache_unavailable" || e.RetryAfter <= 0 {
			t.Errorf("%s with Redis down: %v", name, err)
		}
		w.unchanged(t, name+" with Redis down", before)
	}
	// What does not end sessions goes through; the stream announcement is only logged.
	if st, err := w.mod.SetLock(ctx, admin, moderation.KindProfile, u.ActingProfileID, true, "spam"); err != nil || !st.Changed {
		t.Errorf("profile lock with Redis down: %+v %v", st, err)
	}
}

// TestRevokeSessions ends exactly the user's live sessions, as revoked_by_admin, with an audit
// entry counting them, forgets the cached sessions and ends the user's streams. A second call
// finds nothing to revoke but is still an admin action, so it is audited (docs/product.md §9).
func TestRevokeSessions(t *testing.T) {
	ctx := context.Background()
	w := setup(t, options{})
	u, other := w.actor(t, "someone"), w.actor(t, "other")
	w.sessions(t, u.UserID, 3)
	keep := w.sessions(t, other.UserID, 1)[0]
	ends := w.listen(t)
	gen := w.generation(t, u.UserID)
	n, err := w.mod.RevokeSessions(ctx, admin, u.UserID, "stolen phone")
	if err != nil || n != 3 {
		t.Fatalf("revoke: %d %v", n, err)
	}
	if k := w.count(t, "SELECT count(*)::int FROM sessions WHERE user_id = $1 AND (revoked_at IS NULL OR revoke_reason <> 'revoked_by_admin')", u.UserID); k != 0 {
		t.Errorf("%d sessions not revoked by the admin", k)
	}
	if k := w.count(t, "SELECT count(*)::int FROM sessions WHERE id = $1 AND revoked_at IS NULL", keep); k != 1 {
		t.Error("another user's session was revoked")
	}
	if g := w.generation(t, u.UserID); g == "" || g == gen {
		t.Error("cached sessions not forgotten")
	}
	if end := w.nextEnd(t, ends); end != (auth.SessionEnd{UserID: u.UserID}) {
		t.Errorf("announcement %+v", end)
	}
	if w.lockedAt(t, "users", u.UserID) != nil {
		t.Error("a revocation locked the user")
	}
	if n, err := w.mod.RevokeSessions(ctx, admin, u.UserID, "again"); err != nil || n != 0 {
		t.Fatalf("second revoke: %d %v", n, err)
	}
	entries := w.audits(t, moderation.KindUser, u.UserID)
	if got := detailsOf(entries); !slices.Equal(actions(entries), []string{"revoke_sessions", "revoke_sessions"}) ||
		got != `{"sessions_revoked": 3}; {"sessions_revoked": 0}` {
		t.Errorf("audit %v: %s", actions(entries), got)
	}
	if b := w.notes.Take(); len(b) != 0 {
		t.Errorf("a revocation bumped sync files: %v", b)
	}
}

// TestRebuildOwesANewFile: a forced rebuild owes the user exactly one new version in the
// outbox, returns it and notifies it after commit, with its audit entry; without a sync
// service in this process it is only owed (docs/sync.md; README "rebuildUserSync").
func TestRebuildOwesANewFile(t *testing.T) {
	ctx := context.Background()
	w := setup(t, options{})
	u, other := w.actor(t, "someone"), w.actor(t, "other")
	w.notes.Take()
	was, otherWas := w.wanted(t, u.UserID), w.wanted(t, other.UserID)
	wanted, rebuilt, err := w.mod.Rebuild(ctx, admin, u.UserID, "support ticket 311")
	if err != nil || rebuilt {
		t.Fatalf("rebuild: %d %v %v", wanted, rebuilt, err)
	}
	if wanted != was+1 || w.wanted(t, u.UserID) != wanted {
		t.Errorf("wanted %d → %d, returned %d", was, w.wanted(t, u.UserID), wanted)
	}
	if b := w.notes.Take(); !maps.EqualFunc(b, map[int64][]int64{u.UserID: {wanted}}, slices.Equal) {
		t.Errorf("notified %v, want only user %d at %d", b, u.UserID, wanted)
	}
	if w.wanted(t, other.UserID) != otherWas {
		t.Error("another user was bumped")
	}
	entries := w.audits(t, moderation.KindUser, u.UserID)
	if len(entries) != 1 || entries[0].Action != "rebuild_sync" || entries[0].Reason == nil || *entries[0].Reason != "support ticket 311" || entries[0].Details != nil {
		t.Errorf("audit %v %s", actions(entries), detailsOf(entries))
	}
}

// TestSetRole: granting and revoking the admin role (bcactl admin grant|revoke, the only way to
// make an admin: docs/product.md §9) finds the account by its case-insensitive login id,
// writes the previous role in its audit entry and makes the user's cached sessions (which
// carry the role) stale.
func TestSetRole(t *testing.T) {
	ctx := context.Background()
	w := setup(t, options{})
	id := w.user(t, "Alice_1")
	op := moderation.Actor{Name: "bcactl:alice"}
	gen := w.generation(t, id)
	got, err := w.mod.SetRole(ctx, op, "  ALICE_1 ", true)
	if err != nil || got != id {
		t.Fatalf("grant: %d %v", got, err)
	}
	role := func() string {
		var r string
		if err := w.pool.QueryRow(ctx, "SELECT role FROM users WHERE id = $1", id).Scan(&r); err != nil {
			t.Fatal(err)
		}
		return r
	}
	if role() != "admin" {
		t.Fatal("not an admin after the grant")
	}
	g := w.generation(t, id)
	if g == "" || g == gen {
		t.Error("the grant did not forget the cached sessions")
	}
	if _, err := w.mod.SetRole(ctx, op, "alice_1", false); err != nil {
		t.Fatal(err)
	}
	if role() != "user" {
		t.Fatal("still an admin after the revoke")
	}
	if g2 := w.generation(t, id); g2 == g {
		t.Error("the revoke did not forget the cached sessions: the role would stay cached")
	}
	entries := w.audits(t, moderation.KindUser, id)
	if !slices.Equal(actions(entries), []string{"grant_admin", "revoke_admin"}) {
		t.Fatalf("audit %v", actions(entries))
	}
	for i, prev := range []string{"user", "admin"} {
		var d struct {
			LoginID      string `json:"login_id"`
			PreviousRole string `json:"previous_role"`
		}
		if err := json.Unmarshal(entries[i].Details, &d); err != nil || d.PreviousRole != prev || d.LoginID == "" {
			t.Errorf("entry %d details %s", i, entries[i].Details)
		}
		if entries[i].Actor != "bcactl:alice" || entries[i].ActorUserID != nil || entries[i].Reason != nil {
			t.Errorf("entry %d %+v", i, entries[i])
		}
	}
}

// TestLockStormOnOneUser: many admins lock the same user at once. The row lock makes exactly
// one of them change it: one "changed", one audit entry (counting every live session once), one
// bump per file. Then locks and unlocks race: every answered "changed" is exactly one audit
// entry, the entries alternate lock/unlock (each flips the state), and the final state is the
// last entry's.
func TestLockStormOnOneUser(t *testing.T) {
	ctx := context.Background()
	w := setup(t, options{})
	u := w.actor(t, "target")
	admins := []int64{w.user(t, "admin1"), w.user(t, "admin2"), w.user(t, "admin3")}
	w.sessions(t, u.UserID, 5)
	w.notes.Take()
	was := w.wanted(t, u.UserID)
	const n = 12
	run := func(lock func(i int) bool) []moderation.LockState {
		states := make([]moderation.LockState, n)
		errs := make([]error, n)
		testenv.AtOnce(n, func(i int) {
			states[i], errs[i] = w.mod.SetLock(ctx, moderation.AdminActor(admins[i%len(admins)], fmt.Sprint("storm-", i)), moderation.KindUser, u.UserID, lock(i), "storm")
		})
		for i, err := range errs {
			if err != nil {
				t.Fatalf("call %d: %v", i, err)
			}
		}
		return states
	}

	changed := 0
	for _, st := range run(func(int) bool { return true }) {
		if st.Changed {
			changed++
		}
		if st.LockedAt == nil {
			t.Error("a lock answered unlocked")
		}
	}
	entries := w.audits(t, moderation.KindUser, u.UserID)
	if changed != 1 || len(entries) != 1 {
		t.Fatalf("%d changed answers, audit %v; want exactly one winner", changed, actions(entries))
	}
	var d userLockDetails
	if err := json.Unmarshal(entries[0].Details, &d); err != nil || d.SessionsRevoked == nil || *d.SessionsRevoked != 5 {
		t.Errorf("winner's details %s", entries[0].Details)
	}
	if got := w.wanted(t, u.UserID); got != was+1 {
		t.Errorf("wanted %d → %d, want one bump", was, got)
	}
	if b := w.notes.Take(); len(b[u.UserID]) != 1 {
		t.Errorf("notified %v", b)
	}

	// Locks and unlocks at once.
	changed = 0
	for _, st := range run(func(i int) bool { return i%2 == 0 }) {
		if st.Changed {
			changed++
		}
	}
	entries = w.audits(t, moderation.KindUser, u.UserID)[1:]
	if len(entries) != changed {
		t.Fatalf("%d changed answers but %d audit entries", changed, len(entries))
	}
	want := "unlock_user" // the user starts locked
	for i, e := range entries {
		if e.Action != want {
			t.Fatalf("entry %d is %s, want %s: %v", i, e.Action, want, actions(entries))
		}
		want = map[string]string{"lock_user": "unlock_user", "unlock_user": "lock_user"}[want]
	}
	last := "lock_user" // the first storm's entry, when the second changed nothing
	if len(entries) > 0 {
		last = entries[len(entries)-1].Action
	}
	if locked := w.lockedAt(t, "users", u.UserID) != nil; locked != (last == "lock_user") {
		t.Errorf("locked %v, but the last audit entry is %s", locked, last)
	}
	if got := w.wanted(t, u.UserID); got != was+1+int64(changed) {
		t.Errorf("wanted version %d, want %d (one bump per change)", got, was+1+int64(changed))
	}
}
