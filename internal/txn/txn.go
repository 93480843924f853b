// Package txn is the one way services write to PostgreSQL: Runner.Do owns begin, commit and
// rollback, retries the whole transaction (boundedly) when PostgreSQL aborts it with a
// serialization failure (40001) or a deadlock (40P01), and runs after-commit hooks — sync file
// bumps (docs/sync.md §4.1), chat delivery, pushes, file releases — once the change is durable.
//
// A service that joins a caller's transaction takes the same *Tx.
//
// Lock order. Every write takes its row locks first, in the order its own rules give (the pair
// lock of two profiles before anything about them; rooms by ascending id), and the sync_states
// rows last: the users a change makes stale are collected while the transaction runs and bumped
// in one statement, sorted by user id, just before the commit. So two transactions never hold a
// sync_states row while waiting for a domain row, or the other way round.
package txn

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/bca-app/backend/gen/db"
)

// Bump says user UserID's file must reach at least Version.
type Bump struct {
	UserID  int64
	Version int64
	// Covered says the file was already behind before this bump: the task sent when it fell
	// behind still stands (its builder builds again when it publishes behind), so a producer
	// that sends one queue message per task sends none for this bump (docs/sync.md §4.2).
	Covered bool
}

// Notifier delivers bumps after commit (to SQS, or nowhere when the worker polls the table).
// It must not fail the request: a lost notification only delays the build (the sweeper).
type Notifier interface {
	Notify(ctx context.Context, bumps []Bump)
}

// MaxAttempts bounds how often Do runs a transaction that PostgreSQL keeps aborting with a
// serialization failure or a deadlock. The last error is returned; the HTTP layer answers it
// with 503 and Retry-After (the write changed nothing).
const MaxAttempts = 5

// hookTimeout bounds the after-commit work of one transaction; it runs even when the caller's
// context has ended, because the change is committed.
const hookTimeout = 10 * time.Second

// Runner runs transactions on a pool. The zero Notifier drops sync notifications (the worker
// finds stale users in the table itself).
type Runner struct {
	Pool     *pgxpool.Pool
	Notifier Notifier
	// Options are the transaction options (isolation, read-only); zero is READ COMMITTED.
	Options pgx.TxOptions
}

// Tx is what a write function gets: queries bound to the transaction, the raw transaction for
// statements sqlc does not know, and places to record sync bumps and after-commit work.
type Tx struct {
	Q   *db.Queries
	Raw pgx.Tx

	stale []int64 // users whose files the change makes stale, bumped just before the commit
	bumps []Bump  // bumps made directly (Add) or by the pre-commit MarkUsersStale
	after []func(context.Context)
}

// Do runs fn in a transaction and commits when it returns nil. fn may run more than once (a
// serialization failure or a deadlock restarts it from the beginning, at most MaxAttempts
// times), so it must set, not accumulate, whatever it hands out of the closure; what it
// registers on the Tx is per attempt. After the commit the sync bumps are notified and the
// AfterCommit hooks run in order.
func (r Runner) Do(ctx context.Context, fn func(*Tx) error) error {
	for attempt := 1; ; attempt++ {
		t, err := r.once(ctx, fn)
		if err == nil {
			t.finish(ctx, r.Notifier)
			return nil
		}
		if !Retryable(err) || attempt >= MaxAttempts || ctx.Err() != nil {
			return err
		}
		// Jittered, growing pause: the transactions that collided do not collide again.
		pause := time.Duration(rand.Int64N(int64(attempt)*int64(5*time.Millisecond))) + time.Millisecond
		select {
		case <-ctx.Done():
			return err
		case <-time.After(pause):
		}
	}
}

// Do runs fn in a READ COMMITTED transaction on pool without sync notifications.
func Do(ctx context.Context, pool *pgxpool.Pool, fn func(*Tx) error) error {
	return Runner{Pool: pool}.Do(ctx, fn)
}

func (r Runner) once(ctx context.Context, fn func(*Tx) error) (*Tx, error) {
	raw, err := r.Pool.BeginTx(ctx, r.Options)
	if err != nil {
		return nil, fmt.Errorf("begin: %w", err)
	}
	committed := false
	defer func() {
		if !committed {
			rollback(ctx, raw)
		}
	}()
	t := &Tx{Q: db.New(raw), Raw: raw}
	if err := fn(t); err != nil {
		return nil, err
	}
	if err := t.markStale(ctx); err != nil {
		return nil, err
	}
	if err := raw.Commit(ctx); err != nil {
		return nil, fmt.Errorf("commit: %w", err)
	}
	committed = true
	return t, nil
}

func (t *Tx) finish(ctx context.Context, n Notifier) {
	if len(t.bumps) == 0 && len(t.after) == 0 {
		return
	}
	hctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), hookTimeout)
	defer cancel()
	if len(t.bumps) > 0 && n != nil {
		n.Notify(hctx, t.bumps)
	}
	for _, f := range t.after {
		f(hctx)
	}
}

// Retryable reports whether PostgreSQL aborted the transaction in a way that running it again
// may cure: a serialization failure (40001) or a deadlock (40P01).
func Retryable(err error) bool {
	var pgErr *pgconn.PgError
	return errors.As(err, &pgErr) && (pgErr.Code == "40001" || pgErr.Code == "40P01")
}

// AfterCommit registers work to run once the transaction has committed (never when it rolls
// back). Hooks must not fail the request: they log their own errors. Their context outlives the
// request's, bounded.
func (t *Tx) AfterCommit(f func(ctx context.Context)) { t.after = append(t.after, f) }

// Add records bumps made inside the transaction, to be notified after commit.
func (t *Tx) Add(b []Bump) { t.bumps = append(t.bumps, b...) }

// Stale records users whose sync files the change makes stale; they are bumped together, in
// ascending order, just before the commit.
func (t *Tx) Stale(userIDs ...int64) { t.stale = append(t.stale, userIDs...) }

// ProfilesChanged makes stale the files of everyone whose file holds one of the profiles.
func (t *Tx) ProfilesChanged(ctx context.Context, profileIDs ...int64) error {
	users, err := t.Q.AudienceOfProfiles(ctx, profileIDs)
	if err != nil {
		return fmt.Errorf("audience of profiles: %w", err)
	}
	t.Stale(users...)
	return nil
}

// CardsChanged makes stale the files of everyone whose file holds one of the cards.
func (t *Tx) CardsChanged(ctx context.Context, cardIDs ...int64) error {
	users, err := t.Q.AudienceOfCards(ctx, cardIDs)
	if err != nil {
		return fmt.Errorf("audience of cards: %w", err)
	}
	t.Stale(users...)
	return nil
}

// OwnersChanged makes stale the files of the profiles' owners (a relation or subscription of
// theirs changed).
func (t *Tx) OwnersChanged(ctx context.Context, profileIDs ...int64) error {
	users, err := t.Q.OwnersOfProfiles(ctx, profileIDs)
	if err != nil {
		return fmt.Errorf("owners of profiles: %w", err)
	}
	t.Stale(users...)
	return nil
}

// markStale bumps wanted_version of every recorded user once, in ascending user id order.
func (t *Tx) markStale(ctx context.Context) error {
	ids := slices.Clone(t.stale)
	slices.Sort(ids)
	ids = slices.Compact(ids)
	if len(ids) == 0 {
		return nil
	}
	rows, err := t.Q.MarkUsersStale(ctx, ids)
	if err != nil {
		return fmt.Errorf("mark sync files stale: %w", err)
	}
	for _, r := range rows {
		t.bumps = append(t.bumps, Bump{UserID: r.UserID, Version: r.WantedVersion, Covered: r.Covered})
	}
	return nil
}

// rollbackTimeout bounds the rollback of a transaction that did not commit. It runs after the
// caller's cancellation too (the connection must not go back to the pool mid-transaction), but
// a hung database costs it this long, not for ever; pgx then closes the connection.
const rollbackTimeout = 5 * time.Second

// rollback ends raw, which did not commit.
func rollback(ctx context.Context, raw pgx.Tx) {
	rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), rollbackTimeout)
	defer cancel()
	_ = raw.Rollback(rctx)
}
