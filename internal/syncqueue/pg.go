// Package syncqueue carries "user U's file is owed version V" from a commit to the sync worker
// (docs/sync.md §4.2): the producers the API calls after commit (Sender in front of the SQS FIFO
// queue, or PGNotifier waking workers that poll PostgreSQL), and the SQS calls the worker's
// drivers consume with (receive, visibility heartbeat, acknowledge). The API imports this
// package, never the worker.
package syncqueue

import (
	"context"
	"log/slog"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/bca-app/backend/gen/db"
	"github.com/bca-app/backend/internal/outbox"
)

// PGNotifier is the producer without SQS: after commit it wakes the workers that poll
// PostgreSQL (NOTIFY), which then claim the stale users from sync_states. A failed notify only
// delays the build to the next poll.
type PGNotifier struct {
	Pool *pgxpool.Pool
	Log  *slog.Logger
}

// NotifyChannel is the PostgreSQL channel NotifySyncWorkers signals.
const NotifyChannel = "bca_sync_stale"

// Notify signals the workers when a bump is a task (tasksOf): a covered bump's user is claimed
// for the task that covers it.
func (n PGNotifier) Notify(ctx context.Context, bumps []outbox.Bump) {
	if len(tasksOf(bumps)) == 0 {
		return
	}
	if err := db.New(n.Pool).NotifySyncWorkers(ctx); err != nil {
		n.Log.WarnContext(ctx, "notify sync workers", "err", err)
	}
}
