package outbox

import (
	"context"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/bca-app/backend/internal/txn"
)

// Writer runs a change and its sync bumps in one transaction, then notifies after commit. It is
// txn.Runner under its older name; every service that changes what sync files hold writes
// through it.
type Writer struct {
	Pool     *pgxpool.Pool
	Notifier Notifier
}

// Tx is what a write function gets (see txn.Tx).
type Tx = txn.Tx

// Write runs fn in a transaction with txn.Runner.Do: bounded retry of serialization failures
// and deadlocks, sync bumps in one sorted statement before the commit, notification and
// after-commit hooks after it.
func (w Writer) Write(ctx context.Context, fn func(*Tx) error) error {
	return w.Runner().Do(ctx, fn)
}

// Runner is the transaction helper behind the Writer.
func (w Writer) Runner() txn.Runner { return txn.Runner{Pool: w.Pool, Notifier: w.Notifier} }
