package profile_test

import (
	"context"
	"errors"
	"fmt"
	"testing"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/bca-app/backend/internal/access"
	"github.com/bca-app/backend/internal/domain"
	"github.com/bca-app/backend/internal/profile"
	"github.com/bca-app/backend/internal/testenv"
)

func TestMain(m *testing.M) { testenv.Main(m) }

func setup(t *testing.T) (*pgxpool.Pool, *profile.Service) {
	t.Helper()
	pool := testenv.Pool(t)
	s, err := profile.New(profile.Deps{Pool: pool})
	if err != nil {
		t.Fatal(err)
	}
	return pool, s
}

func user(t *testing.T, pool *pgxpool.Pool, name string) int64 {
	t.Helper()
	var id int64
	if err := pool.QueryRow(context.Background(), `
		INSERT INTO users (login_id, login_key, nickname, nickname_key, email, email_key, password_hash)
		VALUES ('user_' || $1, 'user_' || $1, $1, $1, $1 || '@example.com', $1 || '@example.com', 'x') RETURNING id`, name).Scan(&id); err != nil {
		t.Fatal(err)
	}
	return id
}

func create(t *testing.T, s *profile.Service, userID int64, private bool) int64 {
	t.Helper()
	p, err := s.CreateMine(context.Background(), userID, profile.CreateInput{Name: fmt.Sprint("p", userID), Private: &private})
	if err != nil {
		t.Fatal(err)
	}
	return p.ID
}

func visibility(t *testing.T, s *profile.Service, v access.Caller, id int64) string {
	t.Helper()
	view, err := s.Get(context.Background(), v, id)
	var e *domain.Error
	switch {
	case errors.As(err, &e) && e.Kind == domain.KindNotFound:
		return "hidden"
	case err != nil:
		t.Fatal(err)
	case view.Visibility == access.Full:
		return "full"
	case view.Visibility == access.Redacted:
		return "redacted"
	}
	return "?"
}

// TestReadRulesAgainstTheDatabase runs the read rules of docs/product.md §4 on real rows: a
// pending request grants nothing, an accepted follow does, a BLOCK hides, and a profile whose
// owner is deactivated or locked (not in live_profiles) vanishes for everyone but its owner.
func TestReadRulesAgainstTheDatabase(t *testing.T) {
	ctx := context.Background()
	pool, s := setup(t)
	owner, viewer := user(t, pool, "owner"), user(t, pool, "viewer")
	target := create(t, s, owner, true)
	acting := create(t, s, viewer, false)
	v := access.Caller{UserID: viewer, ActingProfileID: acting}
	mine := access.Caller{UserID: owner}

	if got := visibility(t, s, v, target); got != "redacted" {
		t.Fatalf("private, no relation: %s", got)
	}
	if r, err := s.SetRelation(ctx, v, target, access.Follow); err != nil || r.Status != access.FollowRequested {
		t.Fatalf("follow of a private profile: %+v %v", r, err)
	}
	if got := visibility(t, s, v, target); got != "redacted" {
		t.Fatalf("a pending request grants nothing: %s", got)
	}
	if _, err := s.AcceptFollowRequest(ctx, owner, target, acting); err != nil {
		t.Fatal(err)
	}
	if got := visibility(t, s, v, target); got != "full" {
		t.Fatalf("accepted follow: %s", got)
	}
	if _, err := s.SetRelation(ctx, access.Caller{UserID: owner, ActingProfileID: target}, acting, access.Block); err != nil {
		t.Fatal(err)
	}
	if got := visibility(t, s, v, target); got != "hidden" {
		t.Fatalf("target blocks the viewer: %s", got)
	}
	if _, err := pool.Exec(ctx, `DELETE FROM relations WHERE from_profile_id = $1`, target); err != nil {
		t.Fatal(err)
	}
	if got := visibility(t, s, v, target); got != "full" {
		t.Fatalf("block lifted, follow kept: %s", got)
	}
	for _, col := range []string{"deactivated_at", "locked_at"} {
		if _, err := pool.Exec(ctx, `UPDATE users SET `+col+` = now() WHERE id = $1`, owner); err != nil {
			t.Fatal(err)
		}
		if got := visibility(t, s, v, target); got != "hidden" {
			t.Fatalf("owner's %s set: %s", col, got)
		}
		if got := visibility(t, s, mine, target); got != "full" {
			t.Fatalf("the owner still reads its profile with %s set: %s", col, got)
		}
		if _, err := pool.Exec(ctx, `UPDATE users SET `+col+` = NULL WHERE id = $1`, owner); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := pool.Exec(ctx, `UPDATE profiles SET locked_at = now() WHERE id = $1`, target); err != nil {
		t.Fatal(err)
	}
	if got := visibility(t, s, v, target); got != "hidden" {
		t.Fatalf("locked profile: %s", got)
	}
}

// TestRelationRules: no relation to a profile of the same user, HIDE needs an accepted follow
// (docs/product.md §5).
func TestRelationRules(t *testing.T) {
	ctx := context.Background()
	pool, s := setup(t)
	u, other := user(t, pool, "u"), user(t, pool, "other")
	a, b := create(t, s, u, false), create(t, s, u, false)
	pub := create(t, s, other, false)
	v := access.Caller{UserID: u, ActingProfileID: a}
	if _, err := s.SetRelation(ctx, v, b, access.Follow); err == nil {
		t.Fatal("a profile followed another profile of the same user")
	}
	if _, err := s.SetRelation(ctx, v, pub, access.Hide); err == nil {
		t.Fatal("HIDE without an accepted follow")
	}
	if r, err := s.SetRelation(ctx, v, pub, access.Follow); err != nil || r.Status != access.Follow {
		t.Fatalf("follow of a public profile: %+v %v", r, err)
	}
	if r, err := s.SetRelation(ctx, v, pub, access.Hide); err != nil || r.Status != access.Hide {
		t.Fatalf("hide after follow: %+v %v", r, err)
	}
}
