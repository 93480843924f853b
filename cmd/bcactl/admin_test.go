package main

import (
	"context"
	"strconv"
	"testing"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/bca-app/backend/internal/testenv"
)

func TestMain(m *testing.M) { testenv.Main(m) }

// TestModerationVerbs runs the bcactl verbs against a real database and Redis: each changes the
// row, bumps the owner's sync state and leaves an audit entry naming the operator; bad input
// changes nothing.
func TestModerationVerbs(t *testing.T) {
	ctx := context.Background()
	dbURL := testenv.Database(t)
	redisURL, prefix := testenv.Redis(t)
	t.Setenv("DATABASE_URL", dbURL)
	t.Setenv("REDIS_URL", redisURL)
	t.Setenv("REDIS_KEY_PREFIX", prefix)
	pool, err := pgxpool.New(ctx, dbURL)
	if err != nil {
		t.Fatal(err)
	}
	defer pool.Close()
	count := func(q string, args ...any) int {
		t.Helper()
		var n int
		if err := pool.QueryRow(ctx, q, args...).Scan(&n); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
		return n
	}
	var userID, profileID int64
	if err := pool.QueryRow(ctx, `INSERT INTO users (login_id, login_key, nickname, nickname_key, email, email_key, password_hash)
		VALUES ('Mod_Target', 'mod_target', 'Mod', 'mod', 'mod@example.com', 'mod@example.com', 'x') RETURNING id`).Scan(&userID); err != nil {
		t.Fatal(err)
	}
	if err := pool.QueryRow(ctx, `INSERT INTO profiles (user_id, name) VALUES ($1, 'P') RETURNING id`, userID).Scan(&profileID); err != nil {
		t.Fatal(err)
	}
	if _, err := pool.Exec(ctx, `INSERT INTO sessions (user_id, refresh_hash, expires_at) VALUES ($1, 'h', now() + interval '1 day')`, userID); err != nil {
		t.Fatal(err)
	}

	steps := []struct {
		args  []string
		check string // a count that must be 1 afterwards
	}{
		{[]string{"admin", "grant", "mod_target"}, "SELECT count(*)::int FROM users WHERE role = 'admin' AND id = $1"},
		{[]string{"admin", "revoke", "MOD_TARGET"}, "SELECT count(*)::int FROM users WHERE role = 'user' AND id = $1"},
		{[]string{"lock", "profile", itoa(profileID), "spam", "wave"}, "SELECT count(*)::int FROM profiles WHERE locked_at IS NOT NULL AND user_id = $1"},
		{[]string{"unlock", "profile", itoa(profileID), "appeal"}, "SELECT count(*)::int FROM profiles WHERE locked_at IS NULL AND user_id = $1"},
		{[]string{"lock", "user", itoa(userID), "abuse"}, "SELECT count(*)::int FROM users WHERE locked_at IS NOT NULL AND id = $1"},
		{[]string{"unlock", "user", itoa(userID), "appeal"}, "SELECT count(*)::int FROM users WHERE locked_at IS NULL AND id = $1"},
		{[]string{"revoke-sessions", itoa(userID), "stolen", "phone"}, "SELECT (count(*) = 0)::int FROM sessions WHERE revoked_at IS NULL AND user_id = $1"},
		{[]string{"rebuild", itoa(userID), "support", "ticket"}, "SELECT count(*)::int FROM sync_states WHERE built_version < wanted_version AND user_id = $1"},
	}
	for _, s := range steps {
		if err := run(ctx, s.args); err != nil {
			t.Fatalf("bcactl %v: %v", s.args, err)
		}
		if count(s.check, userID) != 1 {
			t.Fatalf("bcactl %v did not take effect", s.args)
		}
	}
	// grant, revoke, lock/unlock profile, lock/unlock user (the same lock of the user also
	// revoked its session), revoke-sessions, rebuild.
	if n := count(`SELECT count(*)::int FROM audit_log WHERE actor LIKE 'bcactl:%' AND actor_user_id IS NULL AND request_id IS NULL`); n != len(steps) {
		t.Fatalf("%d audit entries, want %d", n, len(steps))
	}
	if n := count(`SELECT count(*)::int FROM audit_log WHERE action = 'lock_profile' AND reason = 'spam wave' AND target_id = $1`, profileID); n != 1 {
		t.Fatalf("lock_profile entry missing its reason")
	}

	entries := count(`SELECT count(*)::int FROM audit_log`)
	for _, bad := range [][]string{
		{"lock", "video", "1", "x"}, {"lock", "user", "abc", "x"}, {"lock", "user", "0", "x"}, {"lock", "user", itoa(userID)},
		{"unlock", "card", "999999", "x"}, {"revoke-sessions", "999999", "x"}, {"admin", "grant", "nobody"},
	} {
		if err := run(ctx, bad); err == nil {
			t.Errorf("bcactl %v succeeded", bad)
		}
	}
	if n := count(`SELECT count(*)::int FROM audit_log`); n != entries {
		t.Fatalf("bad commands wrote %d audit entries", n-entries)
	}
}

func itoa(v int64) string { return strconv.FormatInt(v, 10) }
