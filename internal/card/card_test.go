package card_test

import (
	"context"
	"slices"
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

type world struct {
	pool     *pgxpool.Pool
	profiles *profile.Service
	cards    *card.Service
	notes    *testenv.Bumps
}

func setup(t *testing.T) world {
	t.Helper()
	pool := testenv.Pool(t)
	rec := &testenv.Bumps{}
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
	if bumps := w.notes.All(); !slices.ContainsFunc(bumps, func(b outbox.Bump) bool { return b.UserID == owner.UserID }) {
		t.Fatalf("creating a card bumps its owner's file: %+v", bumps)
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
