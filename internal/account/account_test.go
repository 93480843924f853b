package account_test

import (
	"context"
	"errors"
	"log/slog"
	"testing"
	"time"

	"github.com/bca-app/backend/gen/db"
	"github.com/bca-app/backend/internal/account"
	"github.com/bca-app/backend/internal/auth"
	"github.com/bca-app/backend/internal/config"
	"github.com/bca-app/backend/internal/domain"
	"github.com/bca-app/backend/internal/mail"
	"github.com/bca-app/backend/internal/outbox"
	"github.com/bca-app/backend/internal/ratelimit"
	"github.com/bca-app/backend/internal/testenv"
)

func TestMain(m *testing.M) { testenv.Main(m) }

// newService builds the account service on its own database and Redis prefix.
func newService(t *testing.T, now func() time.Time) *account.Service {
	t.Helper()
	pool := testenv.Pool(t)
	redisURL, prefix := testenv.Redis(t)
	rdb := testenv.RedisClient(t, redisURL)
	hasher, err := auth.NewHasher(auth.HasherDeps{Params: config.PasswordHashing{MemoryKiB: 1024, Iterations: 1, Parallelism: 1}})
	if err != nil {
		t.Fatal(err)
	}
	log := slog.New(slog.DiscardHandler)
	signer, err := auth.NewSigner(auth.SignerDeps{Key: []byte("0123456789abcdef0123456789abcdef"), TTL: 15 * time.Minute})
	if err != nil {
		t.Fatal(err)
	}
	authn, err := auth.NewAuthenticator(auth.AuthenticatorDeps{Signer: signer, Redis: rdb, KeyPrefix: prefix, Queries: db.New(pool), Log: log})
	if err != nil {
		t.Fatal(err)
	}
	limiter, err := ratelimit.New(ratelimit.Deps{Redis: rdb, KeyPrefix: prefix})
	if err != nil {
		t.Fatal(err)
	}
	s, err := account.New(account.Deps{
		Pool: pool, Hasher: hasher, Signer: signer,
		Authn:   authn,
		Limiter: limiter, Mailer: mail.LogSender{Log: log}, Log: log, Notifier: outbox.Nop{},
		Settings: account.Settings{
			AccessTokenTTL: 15 * time.Minute, RefreshTokenTTL: 24 * time.Hour, EmailTokenTTL: time.Hour,
			PublicBaseURL: "http://127.0.0.1", PerAddressPerMinute: 1000, PerAccountPerMinute: 1000,
		},
		Now: now,
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.Wait)
	return s
}

func code(err error) string {
	var e *domain.Error
	if errors.As(err, &e) {
		return e.Code
	}
	return ""
}

// TestSignInLockLapsesWithTheClock: five wrong passwords lock the account for a while
// (docs/product.md §3), even against the right password; once the clock passes the lock, the
// right password signs in and clears the count. The clock moves instead of the test sleeping.
func TestSignInLockLapsesWithTheClock(t *testing.T) {
	ctx := context.Background()
	clk := &testenv.Clock{}
	s := newService(t, clk.Now)
	c := account.Client{Address: "192.0.2.1"}
	if _, err := s.SignUp(ctx, account.SignUpInput{LoginID: "lockme", Nickname: "Lock Me", Email: "lock@example.com", Password: "Correct-horse-1"}, c); err != nil {
		t.Fatal(err)
	}
	for i := range 5 {
		if _, err := s.SignIn(ctx, "lockme", "wrong-password-1", c); code(err) != "account.invalid_credentials" {
			t.Fatalf("failure %d: %v", i+1, err)
		}
	}
	_, err := s.SignIn(ctx, "lockme", "Correct-horse-1", c)
	var e *domain.Error
	if !errors.As(err, &e) || e.Code != "account.temporarily_locked" {
		t.Fatalf("after five failures the right password must meet the lock: %v", err)
	}
	if e.RetryAfter <= 0 || e.RetryAfter > time.Hour {
		t.Fatalf("Retry-After %v, want within (0, 1h]", e.RetryAfter)
	}
	// The lock is set by the database's clock; move ours beyond it.
	clk.Advance(e.RetryAfter + time.Second)
	if _, err := s.SignIn(ctx, "lockme", "Correct-horse-1", c); err != nil {
		t.Fatalf("the lock lapsed, the right password signs in: %v", err)
	}
	// The success cleared the count: one more failure does not lock again.
	if _, err := s.SignIn(ctx, "lockme", "wrong-password-1", c); code(err) != "account.invalid_credentials" {
		t.Fatal(err)
	}
	if _, err := s.SignIn(ctx, "lockme", "Correct-horse-1", c); err != nil {
		t.Fatalf("one failure after a success must not lock: %v", err)
	}
}

// TestSignUpDuplicatesNameEveryField: id, nickname and email are unique case-insensitively, and
// the 409 names every clashing field (docs/product.md §3).
func TestSignUpDuplicatesNameEveryField(t *testing.T) {
	ctx := context.Background()
	s := newService(t, nil)
	c := account.Client{Address: "192.0.2.2"}
	if _, err := s.SignUp(ctx, account.SignUpInput{LoginID: "first", Nickname: "Nick", Email: "a@example.com", Password: "Correct-horse-1"}, c); err != nil {
		t.Fatal(err)
	}
	_, err := s.SignUp(ctx, account.SignUpInput{LoginID: "FIRST", Nickname: "nick", Email: "A@Example.com", Password: "Correct-horse-1"}, c)
	var e *domain.Error
	if !errors.As(err, &e) || e.Kind != domain.KindConflict {
		t.Fatalf("duplicate sign-up: %v", err)
	}
	fields := map[string]bool{}
	for _, f := range e.Fields {
		fields[f.Field] = true
	}
	for _, f := range []string{"id", "nickname", "email"} {
		if !fields[f] {
			t.Errorf("the conflict does not name %s: %+v", f, e.Fields)
		}
	}
}
