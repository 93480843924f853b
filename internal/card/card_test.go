package card_test

import (
	"context"
	"sync"
	"testing"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/bca-app/backend/internal/access"
	"github.com/bca-app/backend/internal/card"
	"github.com/bca-app/backend/internal/domain"
	"github.com/bca-app/backend/internal/outbox"
	"github.com/bca-app/backend/internal/profile"
	"github.com/bca-app/backend/internal/testenv"
)

func TestMain(m *testing.M) { testenv.Main(m) }

// recorder keeps the bumps the outbox hands over after commit.
type recorder struct {
	mu    sync.Mutex
	bumps []outbox.Bump
}

func (r *recorder) Notify(_ context.Context, b []outbox.Bump) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.bumps = append(r.bumps, b...)
}

func (r *recorder) users() map[int64]bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	m := map[int64]bool{}
	for _, b := range r.bumps {
		m[b.UserID] = true
	}
	return m
}

type world struct {
	pool     *pgxpool.Pool
	profiles *profile.Service
	cards    *card.Service
	notes    *recorder
}

func setup(t *testing.T) world {
	t.Helper()
	pool := testenv.Pool(t)
	rec := &recorder{}
	profiles, err := profile.New(profile.Deps{Pool: pool, Notifier: rec})
	if err != nil {
		t.Fatal(err)
	}
	cards, err := card.New(card.Deps{Pool: pool, Notifier: rec})
	if err != nil {
		t.Fatal(err)
	}
	return world{pool: pool, profiles: profiles, cards: cards, notes: rec}
}

// actor creates a user with one public profile and returns it as a viewer.
func (w world) actor(t *testing.T, name string) access.Caller {
	t.Helper()
	var id int64
	if err := w.pool.QueryRow(context.Background(), `
		INSERT INTO users (login_id, login_key, nickname, nickname_key, email, email_key, password_hash)
		VALUES ('user_' || $1, 'user_' || $1, $1, $1, $1 || '@example.com', $1 || '@example.com', 'x') RETURNING id`, name).Scan(&id); err != nil {
		t.Fatal(err)
	}
	public := false
	p, err := w.profiles.CreateMine(context.Background(), id, profile.CreateInput{Name: name, Private: &public})
	if err != nil {
		t.Fatal(err)
	}
	return access.Caller{UserID: id, ActingProfileID: p.ID}
}

func code(err error) string {
	if e, ok := domain.AsError(err); ok {
		return e.Code
	}
	return ""
}

// TestSubscribeRules: not one's own card, a private card not without its owner's share (it reads
// as absent), twice is
// one subscription, not across a BLOCK, and the owner's sync file is bumped after commit
// (docs/product.md §6, docs/sync.md §4).
func TestSubscribeRules(t *testing.T) {
	ctx := context.Background()
	w := setup(t)
	owner, fan := w.actor(t, "owner"), w.actor(t, "fan")
	name := "Card"
	pub, err := w.cards.Create(ctx, owner, card.Input{Name: &name})
	if err != nil {
		t.Fatal(err)
	}
	if !w.notes.users()[owner.UserID] {
		t.Fatalf("creating a card bumps its owner's file: %+v", w.notes.bumps)
	}
	private := true
	secret, err := w.cards.Create(ctx, owner, card.Input{Name: &name, Private: &private})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := w.cards.Subscribe(ctx, owner, pub.ID, ""); code(err) != "card.own_card" {
		t.Fatalf("own card: %v", err)
	}
	if _, err := w.cards.Subscribe(ctx, fan, secret.ID, ""); code(err) != "resource.not_found" {
		t.Fatalf("private card without a share: %v", err)
	}
	for range 2 {
		if _, err := w.cards.Subscribe(ctx, fan, pub.ID, ""); err != nil {
			t.Fatal(err)
		}
	}
	var n int
	if err := w.pool.QueryRow(ctx, `SELECT count(*) FROM card_subscriptions WHERE card_id = $1`, pub.ID).Scan(&n); err != nil || n != 1 {
		t.Fatalf("subscribing twice: %d rows, %v", n, err)
	}
	if _, err := w.profiles.SetRelation(ctx, owner, fan.ActingProfileID, access.Block); err != nil {
		t.Fatal(err)
	}
	if err := w.pool.QueryRow(ctx, `SELECT count(*) FROM card_subscriptions WHERE card_id = $1`, pub.ID).Scan(&n); err != nil || n != 0 {
		t.Fatalf("a block removes the subscription: %d rows, %v", n, err)
	}
	if _, err := w.cards.Subscribe(ctx, fan, pub.ID, ""); code(err) != "resource.not_found" {
		t.Fatalf("subscribing across a block: %v", err)
	}
}
