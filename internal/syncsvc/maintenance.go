package syncsvc

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/bca-app/backend/gen/db"
	"github.com/bca-app/backend/internal/outbox"
	"github.com/bca-app/backend/internal/syncfile"
	"github.com/bca-app/backend/internal/txn"
)

// The worker's bookkeeping in PostgreSQL: claims, retries, dead letters, garbage and the
// sweeper's look-ups. The worker decides when; these say what it means in the database.

// Claim is a user whose file is owed, as the queue or a claim names it.
type Claim struct {
	UserID  int64
	Version int64
}

// ClaimStale takes up to max users whose file has lagged for at least minStale and whom no one
// holds, and holds them for lease (FOR UPDATE SKIP LOCKED: concurrent claimers never get the
// same user). A claim that is never settled lapses with its lease.
func (s *Service) ClaimStale(ctx context.Context, minStale, lease time.Duration, max int) ([]Claim, error) {
	rows, err := s.q.ClaimStaleUsers(ctx, db.ClaimStaleUsersParams{
		MinStaleMs: minStale.Milliseconds(), LeaseMs: lease.Milliseconds(), MaxUsers: int32(max),
	})
	if err != nil {
		return nil, fmt.Errorf("claim stale sync users: %w", err)
	}
	claims := make([]Claim, len(rows))
	for i, r := range rows {
		claims[i] = Claim{UserID: r.UserID, Version: r.WantedVersion}
	}
	return claims, nil
}

// ReleaseClaim ends a claim that found nothing owed.
func (s *Service) ReleaseClaim(ctx context.Context, userID int64) error {
	if err := s.q.ReleaseSyncClaim(ctx, userID); err != nil {
		return fmt.Errorf("release sync claim of user %d: %w", userID, err)
	}
	return nil
}

// Defer keeps claimers and the sweeper away from the user for delay (someone else is building).
func (s *Service) Defer(ctx context.Context, userID int64, delay time.Duration) error {
	if err := s.q.DeferSyncUser(ctx, db.DeferSyncUserParams{UserID: userID, DelayMs: delay.Milliseconds()}); err != nil {
		return fmt.Errorf("defer sync user %d: %w", userID, err)
	}
	return nil
}

// RetryPolicy says how failed builds are retried.
type RetryPolicy struct {
	// MaxAttempts failures in a row dead-letter the user.
	MaxAttempts int
	// BaseBackoff doubles with each failure, up to MaxBackoff (with ±25 % jitter).
	BaseBackoff, MaxBackoff time.Duration
	// Park is how long a dead-lettered user is left alone before the sweeper tries again (a new
	// change's message also tries again).
	Park time.Duration
}

// Failure is how a failed build was recorded.
type Failure struct {
	Attempts     int
	DeadLettered bool
	RetryAt      time.Time
}

// RecordFailure counts a failed build of userID and schedules the retry; at p.MaxAttempts the
// user is dead-lettered (logged, counted, parked).
func (s *Service) RecordFailure(ctx context.Context, userID int64, cause error, p RetryPolicy) (Failure, error) {
	msg := cause.Error()
	if len(msg) > 2000 {
		msg = msg[:2000]
	}
	row, err := s.q.RecordSyncFailure(ctx, db.RecordSyncFailureParams{
		UserID: userID, Error: &msg, MaxAttempts: int32(p.MaxAttempts), ParkMs: p.Park.Milliseconds(),
		MaxBackoffMs: p.MaxBackoff.Milliseconds(), BaseBackoffMs: p.BaseBackoff.Milliseconds(),
	})
	if errors.Is(err, pgx.ErrNoRows) { // no state row: nothing is owed, nothing to schedule
		return Failure{RetryAt: s.now().Add(p.BaseBackoff)}, nil
	}
	if err != nil {
		return Failure{}, fmt.Errorf("record sync failure of user %d: %w", userID, err)
	}
	f := Failure{Attempts: int(row.Attempts), DeadLettered: row.DeadLettered, RetryAt: valueOr(row.NotBefore, s.now())}
	if f.DeadLettered {
		s.metrics.DeadLetters.Inc()
		s.log.ErrorContext(ctx, "sync file dead-lettered after repeated failures", "user_id", userID,
			"attempts", f.Attempts, "retry_at", f.RetryAt, "err", cause)
	}
	return f, nil
}

// UpdateBacklogGauges sets the stale-users, oldest-lag and dead-letter gauges.
func (s *Service) UpdateBacklogGauges(ctx context.Context) error {
	b, err := s.q.SyncBacklog(ctx)
	if err != nil {
		return fmt.Errorf("sync backlog: %w", err)
	}
	s.metrics.StaleUsers.Set(float64(b.StaleUsers))
	s.metrics.OldestStaleSeconds.Set(b.OldestStaleSeconds)
	s.metrics.DeadLetteredUsers.Set(float64(b.DeadLetteredUsers))
	return nil
}

// CollectGarbage deletes up to max objects whose time has come (replaced files after their
// grace period, uploads whose builder died). Rows stay locked while their objects are deleted,
// so concurrent collectors split the work; a failed delete is retried next time.
func (s *Service) CollectGarbage(ctx context.Context, max int) (int, error) {
	var deleted int
	err := txn.Do(ctx, s.pool, func(tx *txn.Tx) error {
		q := tx.Q
		keys, err := q.TakeDueSyncGarbage(ctx, int32(max))
		if err != nil {
			return err
		}
		done := make([]string, 0, len(keys))
		for _, key := range keys {
			if err := s.store.Delete(ctx, key); err != nil {
				s.log.WarnContext(ctx, "delete sync file object", "key", key, "err", err)
				continue
			}
			done = append(done, key)
		}
		deleted = len(done)
		return q.DeleteSyncGarbage(ctx, done)
	})
	if err != nil {
		return 0, fmt.Errorf("collect sync garbage: %w", err)
	}
	s.metrics.GarbageDeleted.Add(float64(deleted))
	return deleted, nil
}

// MarkTimeStale bumps users whose file changes with time rather than with a write: an own
// profile's tombstone expired after the file was built, or the file was written by an older
// builder (at most max of those per call, so a deploy does not rebuild everyone at once).
func (s *Service) MarkTimeStale(ctx context.Context, lookback time.Duration, max int) ([]outbox.Bump, error) {
	expired, err := s.q.UsersWithExpiredTombstones(ctx, db.UsersWithExpiredTombstonesParams{
		TombstoneMs: TombstoneTTL.Milliseconds(), LookbackMs: lookback.Milliseconds(),
	})
	if err != nil {
		return nil, fmt.Errorf("users with expired tombstones: %w", err)
	}
	outdated, err := s.q.UsersWithOutdatedBuilder(ctx, db.UsersWithOutdatedBuilderParams{
		BuilderSchema: syncfile.SchemaVersion, MaxUsers: int32(max),
	})
	if err != nil {
		return nil, fmt.Errorf("users with outdated files: %w", err)
	}
	ids := append(expired, outdated...)
	if len(ids) == 0 {
		return nil, nil
	}
	return outbox.MarkStale(ctx, s.q, ids...)
}
