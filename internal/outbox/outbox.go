// Package outbox records, in the transaction of a change, which users' sync files the change
// makes stale (docs/sync.md §4.1), and hands the bumps to a Notifier after the commit.
package outbox

import (
	"context"
	"fmt"
	"slices"

	"github.com/bca-app/backend/gen/db"
	"github.com/bca-app/backend/internal/txn"
)

// Bump says user UserID's file must reach at least Version.
type Bump = txn.Bump

// Notifier delivers bumps after commit (to SQS, or nowhere when the worker polls the table).
// It must not fail the request: a lost notification only delays the build (the sweeper).
type Notifier = txn.Notifier

// Tx is what a write function gets (see txn.Tx).
type Tx = txn.Tx

// Nop drops notifications; the worker finds stale users in the table itself.
type Nop struct{}

// Notify does nothing.
func (Nop) Notify(context.Context, []Bump) {}

// MarkStale bumps wanted_version of each user once, inside the caller's transaction.
func MarkStale(ctx context.Context, q *db.Queries, userIDs ...int64) ([]Bump, error) {
	ids := slices.Clone(userIDs)
	slices.Sort(ids)
	ids = slices.Compact(ids)
	if len(ids) == 0 {
		return nil, nil
	}
	rows, err := q.MarkUsersStale(ctx, ids)
	if err != nil {
		return nil, fmt.Errorf("mark sync files stale: %w", err)
	}
	bumps := make([]Bump, len(rows))
	for i, r := range rows {
		bumps[i] = Bump{UserID: r.UserID, Version: r.WantedVersion, Covered: r.Covered}
	}
	return bumps, nil
}
