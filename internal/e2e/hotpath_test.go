package e2e

import (
	"context"
	"net/http"
	"testing"

	"github.com/bca-app/backend/gen/apiclient"
	"github.com/bca-app/backend/internal/config"
	"github.com/bca-app/backend/internal/testenv"
)

// flushPrefix deletes every Redis key of the environment: what a Redis flush or restart does.
func flushPrefix(t *testing.T, cfg config.Config) {
	t.Helper()
	n, err := testenv.DeleteRedisKeys(ctx, testenv.RedisClient(t, cfg.RedisURL), cfg.RedisKeyPrefix)
	if err != nil {
		t.Fatal(err)
	}
	if n == 0 {
		t.Fatal("the authentication cache wrote nothing to Redis")
	}
}

func myAccountStatus(t *testing.T, e *Env, s *Server, token string) int {
	t.Helper()
	r, err := e.Client(s, token).GetMyAccountWithResponse(ctx)
	if err != nil {
		t.Fatal(err)
	}
	return r.StatusCode()
}

// TestLostCacheNeverRevivesASession: the session checks are cached in Redis, and losing that
// cache (flush, restart, eviction) only sends requests back to PostgreSQL; a signed-out session
// stays signed out, a live one keeps working (docs/product.md §3).
func TestLostCacheNeverRevivesASession(t *testing.T) {
	e := New(t)
	u := e.SignUp(t)
	second, _ := e.Anon().SignInWithResponse(ctx, nil, apiclient.SignInJSONRequestBody{Login: u.LoginID, Password: Password})
	Status(t, "second session", second.StatusCode(), http.StatusOK, second.Body)
	other := second.JSON200.AccessToken
	for range 2 { // the second round is answered from the cache
		if s := myAccountStatus(t, e, e.Server, u.Token()); s != http.StatusOK {
			t.Fatalf("live token: %d", s)
		}
		if s := myAccountStatus(t, e, e.Server, other); s != http.StatusOK {
			t.Fatalf("other live token: %d", s)
		}
	}
	rv, _ := e.As(other).RevokeSessionWithResponse(ctx, u.Session.SessionId)
	Status(t, "revoke the first session", rv.StatusCode(), http.StatusNoContent, rv.Body)
	if s := myAccountStatus(t, e, e.Server, u.Token()); s != http.StatusUnauthorized {
		t.Fatalf("revoked session: %d", s)
	}
	flushPrefix(t, e.Config)
	for range 2 {
		if s := myAccountStatus(t, e, e.Server, u.Token()); s != http.StatusUnauthorized {
			t.Fatalf("revoked session after the cache was lost: %d", s)
		}
		if s := myAccountStatus(t, e, e.Server, other); s != http.StatusOK {
			t.Fatalf("live session after the cache was lost: %d", s)
		}
	}
}

// TestRedisOutageFallsBackToPostgreSQL: with Redis down, requests are authenticated against
// PostgreSQL, and a sign-out is refused with 503 (changing nothing) rather than made in a way a
// process with a cached record could miss. After a restart (all keys lost) everything works.
func TestRedisOutageFallsBackToPostgreSQL(t *testing.T) {
	rs := testenv.RedisServer(t)
	e := New(t, func(c *config.Config) { c.RedisURL = rs.URL() })
	u := e.SignUp(t)
	if s := myAccountStatus(t, e, e.Server, u.Token()); s != http.StatusOK {
		t.Fatalf("before the outage: %d", s)
	}
	if err := rs.Restart(context.Background()); err != nil {
		t.Fatal(err)
	}
	if s := myAccountStatus(t, e, e.Server, u.Token()); s != http.StatusOK {
		t.Fatalf("after a restart that lost every key: %d", s)
	}
	if err := rs.Stop(); err != nil {
		t.Fatal(err)
	}
	if s := myAccountStatus(t, e, e.Server, u.Token()); s != http.StatusOK {
		t.Fatalf("Redis down: the session is checked in PostgreSQL: %d", s)
	}
	out, err := e.As(u.Token()).SignOutWithResponse(ctx)
	if err != nil {
		t.Fatal(err)
	}
	Status(t, "sign out with Redis down", out.StatusCode(), http.StatusServiceUnavailable, out.Body)
	if out.HTTPResponse.Header.Get("Retry-After") == "" {
		t.Fatal("503 needs Retry-After")
	}
	if n := e.Count(t, "SELECT count(*) FROM sessions WHERE id = $1 AND revoked_at IS NULL", u.Session.SessionId); n != 1 {
		t.Fatal("a refused sign-out changes nothing")
	}
}

// TestSyncPollWithoutPostgreSQL: HEAD /sync and the 304 answer come from the state read with the
// session in Redis; a write that makes the file stale and a new build show at once
// (docs/sync.md §3).
func TestSyncPollWithoutPostgreSQL(t *testing.T) {
	e := New(t)
	u := e.SignUp(t)
	c := e.As(u.Token())
	first, err := c.HeadSyncFileWithResponse(ctx, &apiclient.HeadSyncFileParams{}) // builds the file
	if err != nil {
		t.Fatal(err)
	}
	Status(t, "first HEAD", first.StatusCode(), http.StatusOK, nil)
	etag := first.HTTPResponse.Header.Get("ETag")
	if _, err := c.HeadSyncFileWithResponse(ctx, &apiclient.HeadSyncFileParams{}); err != nil { // fills the cache
		t.Fatal(err)
	}
	pool := e.Server.App.Pool
	before := pool.Stat().AcquireCount()
	const polls = 20
	for range polls {
		h, err := c.HeadSyncFileWithResponse(ctx, &apiclient.HeadSyncFileParams{})
		if err != nil {
			t.Fatal(err)
		}
		if h.StatusCode() != http.StatusOK || h.HTTPResponse.Header.Get("ETag") != etag || h.HTTPResponse.Header.Get("Sync-Pending") != "false" {
			t.Fatalf("HEAD: %d %v", h.StatusCode(), h.HTTPResponse.Header)
		}
		g, err := c.GetSyncFileWithResponse(ctx, &apiclient.GetSyncFileParams{IfNoneMatch: &etag})
		if err != nil {
			t.Fatal(err)
		}
		Status(t, "conditional GET", g.StatusCode(), http.StatusNotModified, g.Body)
	}
	if used := pool.Stat().AcquireCount() - before; used > polls/4 {
		t.Fatalf("%d polls took %d PostgreSQL connections", 2*polls, used)
	}

	// A write to the user's own profile makes the file stale: the poll says so at once.
	e.NewCard(t, u, e.FirstProfile(t, u), map[string]any{"name": "new card"})
	h, _ := c.HeadSyncFileWithResponse(ctx, &apiclient.HeadSyncFileParams{})
	if h.HTTPResponse.Header.Get("Sync-Pending") != "true" || h.HTTPResponse.Header.Get("ETag") != etag {
		t.Fatalf("after a write: %v", h.HTTPResponse.Header)
	}
	// The new build is served at once too.
	userID := int64(e.Count(t, "SELECT id::int FROM users WHERE login_id = $1", u.LoginID))
	if _, err := e.Server.App.Sync.Sync(context.Background(), userID); err != nil {
		t.Fatal(err)
	}
	h, _ = c.HeadSyncFileWithResponse(ctx, &apiclient.HeadSyncFileParams{})
	if h.HTTPResponse.Header.Get("Sync-Pending") != "false" || h.HTTPResponse.Header.Get("ETag") == etag {
		t.Fatalf("after the build: %v", h.HTTPResponse.Header)
	}
	full, err := c.GetSyncFileWithResponse(ctx, &apiclient.GetSyncFileParams{})
	if err != nil {
		t.Fatal(err)
	}
	Status(t, "full GET", full.StatusCode(), http.StatusOK, nil)
	if full.HTTPResponse.Header.Get("ETag") != h.HTTPResponse.Header.Get("ETag") || int64(len(full.Body)) != full.HTTPResponse.ContentLength {
		t.Fatalf("full GET: %v, %d bytes", full.HTTPResponse.Header, len(full.Body))
	}
}
