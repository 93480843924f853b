package worker

import (
	"context"
	"errors"
	"slices"
	"sync"
	"time"

	"github.com/bca-app/backend/internal/syncqueue"
	"github.com/bca-app/backend/internal/syncsvc"
)

// consumePostgres is one loop of the PostgreSQL queue: claim a stale user (FOR UPDATE SKIP
// LOCKED, with a lease), build, settle the claim; when nothing is stale, wait for a NOTIFY or
// the poll interval. take ends the loop; ctx ends in-flight work.
func (w *Worker) consumePostgres(ctx, take context.Context, wake *signal) {
	for take.Err() == nil {
		woken := wake.wait() // before claiming, so a NOTIFY during the claim is not missed
		cctx, cancel := w.callContext(ctx)
		claims, err := w.Sync.ClaimStale(cctx, 0, w.opts.Lease, 1)
		cancel()
		if err != nil {
			if ctx.Err() != nil {
				return
			}
			w.Log.ErrorContext(ctx, "claim stale sync users", "err", err)
			sleep(take, w.opts.PollInterval)
			continue
		}
		if len(claims) == 0 {
			select {
			case <-woken:
			case <-time.After(w.opts.PollInterval):
			case <-take.Done():
			}
			continue
		}
		for _, c := range claims {
			w.settleClaim(ctx, c.UserID)
		}
	}
}

// settleClaim builds a claimed user and records the result on the claim.
func (w *Worker) settleClaim(ctx context.Context, userID int64) {
	o, _ := w.attempt(ctx, userID)
	cctx, cancel := w.callContext(ctx)
	defer cancel()
	var err error
	switch o {
	case settled:
		// A publish clears the claim itself; this ends it when nothing was published.
		err = w.Sync.ReleaseClaim(cctx, userID)
	case later:
		err = w.Sync.Defer(cctx, userID, w.opts.BusyDelay)
	case aborted:
		if errors.Is(context.Cause(ctx), syncsvc.ErrStopping) {
			w.releaseClaim(ctx, userID)
		}
		// Otherwise (a crash) the claim lapses with its lease.
	case retry, parked:
		// RecordFailure scheduled the retry.
	}
	if err != nil && ctx.Err() == nil {
		w.Log.WarnContext(ctx, "settle sync claim", "user_id", userID, "err", err)
	}
}

// releaseClaim ends the claim of a build the draining worker cut off (syncsvc.ErrStopping), so
// another worker claims the user at once instead of after the lease: the PostgreSQL queue's
// counterpart of returnToQueue. It works on after ctx is cancelled, within releaseTimeout.
func (w *Worker) releaseClaim(ctx context.Context, userID int64) {
	rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), releaseTimeout)
	defer cancel()
	if err := w.Sync.ReleaseClaim(rctx, userID); err != nil {
		w.Log.WarnContext(ctx, "release the claim of a cut-off build; it lapses with its lease", "user_id", userID, "err", err)
		return
	}
	w.Log.InfoContext(ctx, "released the claim of a cut-off build", "user_id", userID)
}

// listen wakes the PostgreSQL consumers when the API signals new stale users (LISTEN/NOTIFY),
// reconnecting after errors; polling covers the gaps.
func (w *Worker) listen(ctx context.Context, wake *signal) {
	for ctx.Err() == nil {
		err := w.listenOnce(ctx, wake)
		if ctx.Err() != nil {
			return
		}
		w.Log.WarnContext(ctx, "listen for sync notifications; polling meanwhile", "err", err)
		sleep(ctx, w.opts.PollInterval)
	}
}

func (w *Worker) listenOnce(ctx context.Context, wake *signal) error {
	pc, err := w.Pool.Acquire(ctx)
	if err != nil {
		return err
	}
	// The connection keeps its LISTEN state, so it never goes back to the pool.
	conn := pc.Hijack()
	defer func() {
		cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), releaseTimeout)
		defer cancel()
		_ = conn.Close(cctx)
	}()
	if _, err := conn.Exec(ctx, "LISTEN "+syncqueue.NotifyChannel); err != nil {
		return err
	}
	wake.broadcast() // work may have been signalled while not listening
	for {
		if _, err := conn.WaitForNotification(ctx); err != nil {
			return err
		}
		wake.broadcast()
	}
}

// consumeSQS is one loop of the SQS consumer: receive a batch and handle it. The receive's
// visibility is short (SYNC_VISIBILITY) and its wait shorter (SYNC_RECEIVE_WAIT), so neither a
// dead worker's messages nor a long-poll it left open hide a user's tasks for longer than one
// visibility window. A receive under way when the worker stops taking work completes (it is
// not cancelled, so SQS hands out no messages that nobody reads), and what it brought is
// returned to the queue at once, unprocessed.
func (w *Worker) consumeSQS(ctx, take context.Context) {
	for take.Err() == nil {
		rctx, cancel := context.WithTimeout(ctx, w.opts.WaitTime+w.opts.CallTimeout)
		ds, err := w.Queue.Receive(rctx, w.opts.WaitTime, w.opts.Visibility)
		cancel()
		if err != nil {
			if take.Err() != nil {
				return
			}
			w.Log.ErrorContext(ctx, "receive sync tasks", "err", err)
			sleep(take, time.Second)
			continue
		}
		if take.Err() != nil {
			w.returnToQueue(ctx, ds)
			return
		}
		w.HandleDeliveries(ctx, ds)
	}
}

// returnToQueue makes messages visible again at once (ChangeMessageVisibility 0): this worker
// will not process them, another consumer may. It works on after ctx is cancelled, within
// releaseTimeout.
func (w *Worker) returnToQueue(ctx context.Context, ds []syncqueue.Delivery) {
	if len(ds) == 0 {
		return
	}
	rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), releaseTimeout)
	defer cancel()
	if err := w.Queue.Hide(rctx, ds, 0); err != nil {
		w.Log.WarnContext(ctx, "return sync tasks to the queue; they reappear after their visibility", "messages", len(ds), "err", err)
		return
	}
	w.Log.InfoContext(ctx, "returned unprocessed sync tasks to the queue", "messages", len(ds))
}

// releaseTimeout bounds the calls that hand work back while the worker stops.
const releaseTimeout = 3 * time.Second

// settler is what a driver does with a user's messages once the attempt is over. The receive
// loop deletes and hides them itself; the Lambda driver leaves the deleting to Lambda's event
// source (a message not reported as failed is deleted) and reports the others as failed.
type settler interface {
	// done: the work is settled (built, nothing owed, or parked in PostgreSQL).
	done(ctx context.Context, ds []syncqueue.Delivery) error
	// again: retry after d (back-off, or someone else holds the user).
	again(ctx context.Context, ds []syncqueue.Delivery, d time.Duration) error
	// abandoned: the build was cut off; stopping says the process hands it back on purpose
	// (syncsvc.ErrStopping) rather than dying.
	abandoned(ctx context.Context, ds []syncqueue.Delivery, stopping bool)
}

// pollerSettler settles the receive loop's messages with SQS calls.
type pollerSettler struct{ w *Worker }

func (p pollerSettler) done(ctx context.Context, ds []syncqueue.Delivery) error {
	return p.w.Queue.Ack(ctx, ds)
}

func (p pollerSettler) again(ctx context.Context, ds []syncqueue.Delivery, d time.Duration) error {
	return p.w.Queue.Hide(ctx, ds, d)
}

func (p pollerSettler) abandoned(ctx context.Context, ds []syncqueue.Delivery, stopping bool) {
	if stopping {
		p.w.returnToQueue(ctx, ds)
	}
	// Otherwise (a crash) the messages reappear when their visibility lapses.
}

// HandleDeliveries processes received task messages: each user in them is built once (one
// build answers all of a user's messages) under the visibility heartbeat, then its messages
// are acknowledged, hidden until the retry, or left to reappear when ctx ended mid-build
// (returned at once when ctx ended with syncsvc.ErrStopping). Undecodable messages go to the
// dead-letter path. It is the receive loop's driver of handle, the one code path of every
// driver of the worker (HandleSQSEvent is the Lambda one).
func (w *Worker) HandleDeliveries(ctx context.Context, ds []syncqueue.Delivery) {
	w.handle(ctx, ds, pollerSettler{w})
}

// handle groups the messages by user, builds each user once and has s settle the messages.
func (w *Worker) handle(ctx context.Context, ds []syncqueue.Delivery, s settler) {
	byUser := map[int64][]syncqueue.Delivery{}
	var invalid []syncqueue.Delivery
	for _, d := range ds {
		if d.Valid {
			byUser[d.UserID] = append(byUser[d.UserID], d)
		} else {
			invalid = append(invalid, d)
		}
	}
	if len(invalid) > 0 {
		w.rejectInvalid(ctx, invalid, s)
	}
	var wg sync.WaitGroup
	for userID, uds := range byUser {
		wg.Go(func() { w.handleMessages(ctx, userID, uds, s) })
	}
	wg.Wait()
}

// handleMessages builds userID for the messages and settles them.
func (w *Worker) handleMessages(ctx context.Context, userID int64, ds []syncqueue.Delivery, s settler) {
	stopHeartbeat := w.Queue.KeepHidden(ctx, ds, w.opts.Visibility)
	o, retryAt := w.attempt(ctx, userID)
	stopHeartbeat()
	cctx, cancel := w.callContext(ctx)
	defer cancel()
	var err error
	switch o {
	case settled, parked:
		// Parked users are in PostgreSQL as dead-lettered; the sweeper comes back for them.
		err = s.done(cctx, ds)
	case retry, later:
		err = s.again(cctx, ds, retryAt.Sub(w.Now()))
	case aborted:
		s.abandoned(ctx, ds, errors.Is(context.Cause(ctx), syncsvc.ErrStopping))
		return
	}
	if err != nil && ctx.Err() == nil {
		w.Log.WarnContext(ctx, "settle sync tasks", "user_id", userID, "messages", len(ds), "err", err)
	}
}

// rejectInvalid handles messages that are not tasks. With a redrive policy SQS moves them to
// the dead-letter queue after its receive limit; they are hidden until then so they do not
// spin. Without one they are deleted once they have come back as often as a failing build may.
func (w *Worker) rejectInvalid(ctx context.Context, ds []syncqueue.Delivery, s settler) {
	ids := make([]string, len(ds))
	for i, d := range ds {
		ids[i] = d.ID
		if d.Receives <= 1 { // counted once, not at every redelivery
			w.Sync.Metrics().DeadLetters.Inc()
		}
	}
	w.Log.ErrorContext(ctx, "undecodable sync task messages", "message_ids", ids)
	cctx, cancel := w.callContext(ctx)
	defer cancel()
	if w.Queue.HasRedrive(cctx) {
		if err := s.again(cctx, ds, w.opts.Retry.BaseBackoff); err != nil {
			w.Log.WarnContext(ctx, "hide undecodable sync tasks", "err", err)
		}
		return
	}
	expired := slices.DeleteFunc(slices.Clone(ds), func(d syncqueue.Delivery) bool { return d.Receives < w.opts.Retry.MaxAttempts })
	if len(expired) > 0 {
		if err := s.done(cctx, expired); err != nil {
			w.Log.WarnContext(ctx, "drop undecodable sync tasks", "err", err)
		}
	}
}
