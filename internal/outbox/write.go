package outbox

import (
	"context"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/bca-app/backend/gen/db"
	"github.com/bca-app/backend/internal/postgres"
)

// Writer runs a change and its outbox bumps in one transaction, then notifies after commit.
// Every service that changes what sync files hold writes through it.
type Writer struct {
	Pool     *pgxpool.Pool
	Notifier Notifier
}

// Tx is what a write function gets: queries bound to the transaction, the raw transaction for
// helpers of other packages, and a place to record the bumps.
type Tx struct {
	Q     *db.Queries
	Raw   pgx.Tx
	bumps []Bump
}

// Add records bumps made inside the transaction.
func (t *Tx) Add(b []Bump) { t.bumps = append(t.bumps, b...) }

// ProfilesChanged bumps the audience of the profiles.
func (t *Tx) ProfilesChanged(ctx context.Context, profileIDs ...int64) error {
	b, err := ProfilesChanged(ctx, t.Q, profileIDs...)
	t.Add(b)
	return err
}

// CardsChanged bumps the audience of the cards.
func (t *Tx) CardsChanged(ctx context.Context, cardIDs ...int64) error {
	b, err := CardsChanged(ctx, t.Q, cardIDs...)
	t.Add(b)
	return err
}

// OwnersChanged bumps the owners of the profiles.
func (t *Tx) OwnersChanged(ctx context.Context, profileIDs ...int64) error {
	b, err := OwnersChanged(ctx, t.Q, profileIDs...)
	t.Add(b)
	return err
}

// Write runs fn in a transaction; after a successful commit the recorded bumps are notified.
func (w Writer) Write(ctx context.Context, fn func(*Tx) error) error {
	var t *Tx
	err := postgres.InTx(ctx, w.Pool, func(tx pgx.Tx) error {
		t = &Tx{Q: db.New(tx), Raw: tx}
		return fn(t)
	})
	if err != nil {
		return err
	}
	if len(t.bumps) > 0 && w.Notifier != nil {
		w.Notifier.Notify(context.WithoutCancel(ctx), t.bumps)
	}
	return nil
}
