package card_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/bca-app/backend/internal/card"
	"github.com/bca-app/backend/internal/testenv"
)

// TestShareExpiryFollowsTheClock: a new share link's expires_at must lie ahead of the service's
// clock and at most MaxShareLifetime beyond it (docs/product.md §6). Moving the injected clock
// forward turns an accepted expiry into a refused one and a refused one into an accepted one.
func TestShareExpiryFollowsTheClock(t *testing.T) {
	ctx := context.Background()
	w := setup(t)
	clock := &testenv.Clock{}
	cards, err := card.New(card.Deps{Pool: w.pool, Now: clock.Now})
	if err != nil {
		t.Fatal(err)
	}
	shares, err := card.NewShares(card.SharesDeps{Pool: w.pool, Cards: cards, Secret: []byte(strings.Repeat("k", 32))})
	if err != nil {
		t.Fatal(err)
	}
	owner := w.actor(t, "owner")
	name := "Card"
	c, err := cards.Create(ctx, owner, card.Input{Name: &name})
	if err != nil {
		t.Fatal(err)
	}
	create := func(expires time.Time) error {
		_, err := shares.Create(ctx, owner, c.ID, card.ShareInput{ExpiresAt: &expires})
		return err
	}
	soon := time.Now().Add(time.Hour)
	far := time.Now().Add(card.MaxShareLifetime + 24*time.Hour)
	if err := create(soon); err != nil {
		t.Fatalf("an hour ahead: %v", err)
	}
	if err := create(far); code(err) != "request.invalid" {
		t.Fatalf("beyond the longest lifetime: %v", err)
	}
	clock.Advance(48 * time.Hour)
	if err := create(soon); code(err) != "request.invalid" {
		t.Fatalf("an expiry behind the service's clock: %v", err)
	}
	if err := create(far); err != nil {
		t.Fatalf("within the longest lifetime of the service's clock: %v", err)
	}
}
