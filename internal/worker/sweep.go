package worker

import (
	"context"
	"crypto/rand"
	"errors"
	"strconv"
	"time"

	"github.com/bca-app/backend/internal/outbox"
)

// sweep runs the sweeper every SweepInterval until ctx ends (docs/sync.md §4.4): it re-sends work for
// users whose file lags too long (a lost message only delays an update), marks files that
// changed with time (expired tombstones, an older builder), deletes replaced objects and sets
// the backlog gauges. One worker sweeps per interval; the others skip.
func (w *Worker) sweep(ctx context.Context) {
	for {
		w.pass(ctx, func(ctx context.Context) {
			if w.sweeperTurn(ctx) {
				_ = w.sweepOnce(ctx) // each failure is logged; the next round tries again
			}
		})
		if !sleep(ctx, w.opts.SweepInterval) {
			return
		}
	}
}

// resend re-sends the work of lagging users every ResendInterval until ctx ends (SQS only):
// the safety net under the API's background sender, so a bump it dropped or a process that
// died with bumps in its buffer delays a user by seconds.
func (w *Worker) resend(ctx context.Context) {
	for {
		w.pass(ctx, func(ctx context.Context) {
			if w.electedFor(ctx, "sync:resender", w.opts.ResendInterval) {
				_ = w.resendLagging(ctx) // logged; the next round tries again
			}
		})
		if !sleep(ctx, w.opts.ResendInterval) {
			return
		}
	}
}

// pass runs one pass of a periodic job under PassTimeout, so a dependency that hangs costs the
// loop one pass, not the rest of the process's life.
func (w *Worker) pass(ctx context.Context, job func(context.Context)) {
	pctx, cancel := context.WithTimeout(ctx, w.opts.PassTimeout)
	defer cancel()
	job(pctx)
}

// sweeperTurn elects this worker as the sweeper for one interval.
func (w *Worker) sweeperTurn(ctx context.Context) bool {
	return w.electedFor(ctx, "sync:sweeper", w.opts.SweepInterval)
}

// electedFor elects this worker for one interval of a periodic job. Without Redis every worker
// runs it, which costs queries but nothing else.
func (w *Worker) electedFor(ctx context.Context, key string, interval time.Duration) bool {
	if w.Redis == nil {
		return true
	}
	ok, err := w.Redis.SetNX(ctx, w.KeyPrefix+key, rand.Text(), interval*9/10).Result()
	if err != nil {
		w.Log.WarnContext(ctx, "election of a periodic sync job; running it anyway", "job", key, "err", err)
		return true
	}
	return ok
}

// sweepOnce runs one sweep; it logs each failure and returns them all.
func (w *Worker) sweepOnce(ctx context.Context) error {
	var errs []error
	if bumps, err := w.Sync.MarkTimeStale(ctx, w.opts.TombstoneLookback, w.opts.RebuildBatch); err != nil {
		w.Log.ErrorContext(ctx, "sweeper: mark time-stale files", "err", err)
		errs = append(errs, err)
	} else if len(bumps) > 0 {
		w.Log.InfoContext(ctx, "sweeper: files changed by time", "users", len(bumps))
		w.Notifier.Notify(ctx, bumps)
	}
	if w.Queue != nil {
		if err := w.resendLagging(ctx); err != nil {
			errs = append(errs, err)
		}
		if err := w.Queue.UpdateDepthGauges(ctx); err != nil {
			w.Log.WarnContext(ctx, "sweeper: queue depth", "err", err)
			errs = append(errs, err)
		}
	}
	for {
		n, err := w.Sync.CollectGarbage(ctx, w.opts.GarbageBatch)
		if err != nil {
			w.Log.ErrorContext(ctx, "sweeper: collect garbage", "err", err)
			errs = append(errs, err)
			break
		}
		if n < w.opts.GarbageBatch {
			break
		}
	}
	if err := w.Sync.UpdateBacklogGauges(ctx); err != nil {
		w.Log.ErrorContext(ctx, "sweeper: backlog gauges", "err", err)
		errs = append(errs, err)
	}
	return errors.Join(errs...)
}

// resendLagging sends the work again for users whose file has lagged longer than LagThreshold
// and who are not waiting for a back-off. Claiming them holds them for another LagThreshold, so
// each lagging user is re-sent at most once per threshold. The PostgreSQL queue needs no
// re-send: its claims lapse by themselves.
func (w *Worker) resendLagging(ctx context.Context) error {
	const batch = 500
	for {
		claims, err := w.Sync.ClaimStale(ctx, w.opts.LagThreshold, w.opts.LagThreshold, batch)
		if err != nil {
			w.Log.ErrorContext(ctx, "sweeper: lagging users", "err", err)
			return err
		}
		if len(claims) == 0 {
			return nil
		}
		// A fresh deduplication id: the original message may still be inside SQS's five-minute
		// deduplication window.
		suffix := "-sweep-" + strconv.FormatInt(time.Now().UnixNano(), 36)
		bumps := make([]outbox.Bump, len(claims))
		for i, c := range claims {
			bumps[i] = outbox.Bump{UserID: c.UserID, Version: c.Version}
		}
		if err := w.Queue.Send(ctx, bumps, suffix); err != nil {
			w.Log.ErrorContext(ctx, "sweeper: re-send sync tasks", "users", len(claims), "err", err)
			return err
		}
		w.Sync.Metrics().Resent.Add(float64(len(claims)))
		w.Log.InfoContext(ctx, "sweeper: re-sent work for lagging users", "users", len(claims))
		if len(claims) < batch {
			return nil
		}
	}
}
