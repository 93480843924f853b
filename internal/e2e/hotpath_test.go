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

// TestMyAccountWithoutPostgreSQL: getMyAccount answers from the account cached with the session
// in Redis, and every change of the account shows at once, on every process (docs/product.md §3).
func TestMyAccountWithoutPostgreSQL(t *testing.T) {
	e := New(t)
	other := e.StartServer(e.Config) // a second API process on the same PostgreSQL and Redis
	u := e.SignUp(t)
	verifyToken := mailToken(t, waitMails(t, e.Server, u.Email, verifySubject, 1)[0])
	read := func(s *Server) (apiclient.Account, string) {
		t.Helper()
		r, err := e.Client(s, u.Token()).GetMyAccountWithResponse(ctx)
		if err != nil {
			t.Fatal(err)
		}
		Status(t, "getMyAccount", r.StatusCode(), http.StatusOK, r.Body)
		return *r.JSON200, string(r.Body)
	}
	_, first := read(e.Server) // fills the cache
	pools := []*Server{e.Server, other}
	var before [2]int64
	for i, s := range pools {
		before[i] = s.App.Pool.Stat().AcquireCount()
	}
	const reads = 20
	for i := range reads {
		if _, body := read(pools[i%2]); body != first {
			t.Fatalf("read %d differs from the first:\n%s\n%s", i, body, first)
		}
	}
	for i, s := range pools {
		if used := s.App.Pool.Stat().AcquireCount() - before[i]; used > reads/8 {
			t.Fatalf("process %d: %d reads took %d PostgreSQL connections", i, reads/2, used)
		}
	}

	// Each change is made on one process and read at once on the other, whose cache was warm.
	steps := []struct {
		name   string
		change func()
		check  func(apiclient.Account) bool
	}{
		{"nickname", func() {
			r, _ := e.Client(e.Server, u.Token()).UpdateMyAccountWithResponse(ctx, apiclient.UpdateMyAccountJSONRequestBody{Nickname: ptr("Renamed")})
			Status(t, "rename", r.StatusCode(), http.StatusOK, r.Body)
		}, func(a apiclient.Account) bool { return a.Nickname == "Renamed" }},
		{"description", func() {
			r, _ := e.Client(e.Server, u.Token()).UpdateMyAccountWithResponse(ctx, apiclient.UpdateMyAccountJSONRequestBody{Description: ptr("about me")})
			Status(t, "describe", r.StatusCode(), http.StatusOK, r.Body)
		}, func(a apiclient.Account) bool { return a.Description != nil && *a.Description == "about me" }},
		{"login id", func() {
			r, _ := e.Client(e.Server, u.Token()).UpdateMyAccountWithResponse(ctx, apiclient.UpdateMyAccountJSONRequestBody{Id: ptr(u.LoginID + "x"), Password: ptr(Password)})
			Status(t, "new id", r.StatusCode(), http.StatusOK, r.Body)
			u.LoginID += "x"
		}, func(a apiclient.Account) bool { return a.Id == u.LoginID }},
		{"image set", func() {
			r := setAccountImage(t, e, u.Token(), pngBytes(t))
			Status(t, "set image", r.StatusCode(), http.StatusOK, r.Body)
		}, func(a apiclient.Account) bool { return a.ImageUrl != nil }},
		{"image deleted", func() {
			r, _ := e.Client(e.Server, u.Token()).DeleteAccountImageWithResponse(ctx)
			Status(t, "delete image", r.StatusCode(), http.StatusOK, r.Body)
		}, func(a apiclient.Account) bool { return a.ImageUrl == nil }},
		{"email verified", func() {
			Status(t, "verify", verifyEmail(t, e, verifyToken, "application/json").StatusCode(), http.StatusOK, nil)
		}, func(a apiclient.Account) bool { return a.EmailVerified }},
		{"admin role", func() { e.setRole(t, u, true) }, func(a apiclient.Account) bool { return a.Role == apiclient.AccountRoleAdmin }},
	}
	for _, step := range steps {
		read(other) // warm: the cached account is the one before the change
		step.change()
		if a, body := read(other); !step.check(a) {
			t.Fatalf("after the %s change the other process answers %s", step.name, body)
		}
	}
}
