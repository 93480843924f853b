package worker

import (
	"context"
	"slices"
	"sync"
	"time"

	"github.com/bca-app/backend/internal/syncqueue"
)

// consumePostgres is one loop of the PostgreSQL queue: claim a stale user (FOR UPDATE SKIP
// LOCKED, with a lease), build, settle the claim; when nothing is stale, wait for a NOTIFY or
// the poll interval. take ends the loop; ctx ends in-flight work.
func (w *Worker) consumePostgres(ctx, take context.Context, wake *signal) {
	for take.Err() == nil {
		woken := wake.wait() // before claiming, so a NOTIFY during the claim is not missed
		claims, err := w.Sync.ClaimStale(ctx, 0, w.opts.Lease, 1)
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
	var err error
	switch o, _ := w.attempt(ctx, userID); o {
	case settled:
		// A publish clears the claim itself; this ends it when nothing was published.
		err = w.Sync.ReleaseClaim(ctx, userID)
	case later:
		err = w.Sync.Defer(ctx, userID, w.opts.BusyDelay)
	case retry, parked, aborted:
		// RecordFailure scheduled the retry; an aborted claim lapses with its lease.
	}
	if err != nil && ctx.Err() == nil {
		w.Log.WarnContext(ctx, "settle sync claim", "user_id", userID, "err", err)
	}
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
	defer conn.Close(context.WithoutCancel(ctx))
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
// visibility window.
func (w *Worker) consumeSQS(ctx, take context.Context) {
	for take.Err() == nil {
		ds, err := w.Queue.Receive(take, w.opts.WaitTime, w.opts.Visibility)
		if err != nil {
			if take.Err() != nil {
				return
			}
			w.Log.ErrorContext(ctx, "receive sync tasks", "err", err)
			sleep(take, time.Second)
			continue
		}
		w.HandleDeliveries(ctx, ds)
	}
}

// HandleDeliveries processes received task messages: each user in them is built once (one
// build answers all of a user's messages) under the visibility heartbeat, then its messages
// are acknowledged, hidden until the retry, or left to reappear when ctx ended mid-build.
// Undecodable messages go to the dead-letter path. It is the one code path of every driver of
// the worker: the receive loop here, and an event-driven driver that is handed the messages.
func (w *Worker) HandleDeliveries(ctx context.Context, ds []syncqueue.Delivery) {
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
		w.rejectInvalid(ctx, invalid)
	}
	var wg sync.WaitGroup
	for userID, uds := range byUser {
		wg.Go(func() { w.handleMessages(ctx, userID, uds) })
	}
	wg.Wait()
}

// handleMessages builds userID for the messages and settles them.
func (w *Worker) handleMessages(ctx context.Context, userID int64, ds []syncqueue.Delivery) {
	stopHeartbeat := w.Queue.KeepHidden(ctx, ds, w.opts.Visibility)
	o, retryAt := w.attempt(ctx, userID)
	stopHeartbeat()
	var err error
	switch o {
	case settled, parked:
		// Parked users are in PostgreSQL as dead-lettered; the sweeper comes back for them.
		err = w.Queue.Ack(ctx, ds)
	case retry, later:
		err = w.Queue.Hide(ctx, ds, time.Until(retryAt))
	case aborted:
		return // the messages reappear when their visibility lapses
	}
	if err != nil && ctx.Err() == nil {
		w.Log.WarnContext(ctx, "settle sync tasks", "user_id", userID, "messages", len(ds), "err", err)
	}
}

// rejectInvalid handles messages that are not tasks. With a redrive policy SQS moves them to
// the dead-letter queue after its receive limit; they are hidden until then so they do not
// spin. Without one they are deleted once they have come back as often as a failing build may.
func (w *Worker) rejectInvalid(ctx context.Context, ds []syncqueue.Delivery) {
	ids := make([]string, len(ds))
	for i, d := range ds {
		ids[i] = d.ID
		if d.Receives <= 1 { // counted once, not at every redelivery
			w.Sync.Metrics().DeadLetters.Inc()
		}
	}
	w.Log.ErrorContext(ctx, "undecodable sync task messages", "message_ids", ids)
	if w.Queue.HasRedrive(ctx) {
		if err := w.Queue.Hide(ctx, ds, w.opts.Retry.BaseBackoff); err != nil {
			w.Log.WarnContext(ctx, "hide undecodable sync tasks", "err", err)
		}
		return
	}
	expired := slices.DeleteFunc(slices.Clone(ds), func(d syncqueue.Delivery) bool { return d.Receives < w.opts.Retry.MaxAttempts })
	if len(expired) > 0 {
		if err := w.Queue.Ack(ctx, expired); err != nil {
			w.Log.WarnContext(ctx, "drop undecodable sync tasks", "err", err)
		}
	}
}
