// Package worker keeps users' sync files current (docs/sync.md §4): it takes "user U is owed a new
// file" work from the SQS queue, or without SQS claims stale users from PostgreSQL, and has
// syncsvc build them; failed builds are retried with back-off and eventually dead-lettered; a
// sweeper re-sends work for users who lag too long, collects replaced objects and reports the
// backlog.
//
// Run's context is the process's life: cancelling it abandons in-flight builds the way a crash
// would (locks and queue leases lapse, another worker takes over). Shutdown is the graceful
// stop: no new work is taken and in-flight builds finish.
package worker

import (
	"context"
	"errors"
	"log/slog"
	"strconv"
	"sync"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/redis/go-redis/v9"

	"github.com/bca-app/backend/internal/domain"
	"github.com/bca-app/backend/internal/outbox"
	"github.com/bca-app/backend/internal/syncqueue"
	"github.com/bca-app/backend/internal/syncsvc"
)

// Options tune the worker; Defaults are the production values.
type Options struct {
	// Concurrency is how many users are built at once.
	Concurrency int
	// Retry is the back-off and dead-letter policy for failed builds.
	Retry syncsvc.RetryPolicy
	// BusyDelay is when to look again at a user someone else was building.
	BusyDelay time.Duration

	// PollInterval is how often the PostgreSQL queue is polled when no NOTIFY woke it.
	PollInterval time.Duration
	// Lease is how long a PostgreSQL claim holds a user: a crashed worker's users come back
	// after it.
	Lease time.Duration

	// Visibility is how long a received SQS message stays hidden; the heartbeat extends it every
	// third of it while the build runs, so a crashed worker's messages return within it.
	// WaitTime is the long-poll wait, shorter than Visibility.
	Visibility, WaitTime time.Duration

	// SweepInterval is how often the sweeper runs; LagThreshold is how long a user's file may
	// lag before the work is sent again (docs/sync.md §4.4), which is checked every
	// ResendInterval (SQS only: a lost or dropped message costs at most about
	// LagThreshold + ResendInterval).
	SweepInterval, LagThreshold, ResendInterval time.Duration
	// GarbageBatch objects are deleted per round, RebuildBatch files of an older builder marked
	// per sweep, and tombstones expired within TombstoneLookback are looked for.
	GarbageBatch, RebuildBatch int
	TombstoneLookback          time.Duration

	// PassTimeout bounds one pass of a periodic job (a sweep, a re-send of lagging users, each
	// part of a scheduled invocation); CallTimeout bounds each call around a build (a claim of
	// the PostgreSQL queue, settling a claim or a message, recording a failure, handing a task
	// on) and, on top of WaitTime, one SQS receive. A hung PostgreSQL or SQS costs a loop that
	// long, then it tries again; no loop waits on a dependency without a deadline
	// (docs/operations.md).
	PassTimeout, CallTimeout time.Duration

	// UploadUnusedFor is how old an upload attached to nothing must be before the scheduled
	// Lambda invocation removes it (UPLOAD_UNUSED_TTL; the long-running process runs the
	// uploads' own sweeper loop instead).
	UploadUnusedFor time.Duration
}

// Defaults are the production options.
func Defaults() Options {
	return Options{
		Concurrency:       4,
		Retry:             syncsvc.RetryPolicy{MaxAttempts: 8, BaseBackoff: time.Second, MaxBackoff: 5 * time.Minute, Park: time.Hour},
		BusyDelay:         500 * time.Millisecond,
		PollInterval:      time.Second,
		Lease:             2 * time.Minute,
		Visibility:        15 * time.Second,
		WaitTime:          5 * time.Second,
		SweepInterval:     30 * time.Second,
		LagThreshold:      10 * time.Second,
		ResendInterval:    2 * time.Second,
		GarbageBatch:      100,
		RebuildBatch:      100,
		TombstoneLookback: 7 * 24 * time.Hour,
		PassTimeout:       2 * time.Minute,
		CallTimeout:       10 * time.Second,
		UploadUnusedFor:   24 * time.Hour,
	}
}

// Deps are what the worker works with.
type Deps struct {
	Sync *syncsvc.Service
	// Queue is the SQS queue; nil means the PostgreSQL queue (sync_states) is used.
	Queue *syncqueue.SQS
	// Pool is for LISTEN in PostgreSQL mode.
	Pool *pgxpool.Pool
	// Notifier announces bumps the sweeper makes (the same producer the API uses).
	Notifier outbox.Notifier
	// Redis elects one sweeper among the workers (best effort: two sweepers are only wasteful).
	Redis     redis.UniversalClient
	KeyPrefix string
	Log       *slog.Logger
	// Uploads removes unused uploads (files.Service); the scheduled Lambda invocation runs one
	// pass of it. Nil: no upload sweep.
	Uploads UploadSweeper
	// Now is the clock the worker compares times with (back-off and retry delays, heartbeats);
	// nil is time.Now.
	Now func() time.Time
	// Options are the worker's settings: Defaults with the configured ones.
	Options Options
}

// UploadSweeper removes uploads older than unusedFor that nothing refers to and says how many
// it removed (files.Service.Sweep).
type UploadSweeper interface {
	Sweep(ctx context.Context, unusedFor time.Duration) (int, error)
}

// Worker is one worker process's loops.
type Worker struct {
	Deps
	opts Options

	stopOnce sync.Once
	stopping chan struct{}
	done     chan struct{}
	running  sync.Once
}

// New returns a worker; Run starts it. It refuses missing dependencies (Queue, Redis and Uploads
// may be nil: see Deps).
func New(d Deps) (*Worker, error) {
	if err := domain.RequireDeps("sync worker", map[string]any{"Sync": d.Sync, "Pool": d.Pool, "Notifier": d.Notifier, "Log": d.Log}); err != nil {
		return nil, err
	}
	o := d.Options
	if o.ResendInterval <= 0 {
		o.ResendInterval = o.SweepInterval
	}
	def := Defaults()
	if o.PassTimeout <= 0 {
		o.PassTimeout = def.PassTimeout
	}
	if o.CallTimeout <= 0 {
		o.CallTimeout = def.CallTimeout
	}
	if d.Now == nil {
		d.Now = time.Now
	}
	return &Worker{Deps: d, opts: o, stopping: make(chan struct{}), done: make(chan struct{})}, nil
}

// Run works until ctx ends (abandoning in-flight builds) or Shutdown is called (finishing
// them). It returns nil after a graceful shutdown.
func (w *Worker) Run(ctx context.Context) error {
	started := false
	w.running.Do(func() { started = true })
	if !started {
		return errors.New("worker: Run called twice")
	}
	defer close(w.done)
	// take ends when the worker must stop taking new work; ctx ends in-flight work too.
	take, stopTaking := context.WithCancel(ctx)
	defer stopTaking()
	go func() {
		select {
		case <-w.stopping:
			stopTaking()
		case <-take.Done():
		}
	}()

	mode := "postgres"
	if w.Queue != nil {
		mode = "sqs"
	}
	w.Log.InfoContext(ctx, "sync worker started", "queue", mode, "concurrency", w.opts.Concurrency)
	var wg sync.WaitGroup
	wg.Go(func() { w.sweep(take) })
	wg.Go(func() { w.heartbeat(take) })
	if w.Queue != nil {
		wg.Go(func() { w.resend(take) })
		for range w.opts.Concurrency {
			wg.Go(func() { w.consumeSQS(ctx, take) })
		}
	} else {
		wake := newSignal()
		wg.Go(func() { w.listen(take, wake) })
		for range w.opts.Concurrency {
			wg.Go(func() { w.consumePostgres(ctx, take, wake) })
		}
	}
	wg.Wait()
	if ctx.Err() != nil {
		w.Log.WarnContext(ctx, "sync worker stopped without draining")
		return ctx.Err()
	}
	w.Log.InfoContext(ctx, "sync worker stopped")
	return nil
}

// Shutdown stops taking work and waits until in-flight builds have finished and Run returned,
// or ctx ends.
func (w *Worker) Shutdown(ctx context.Context) error {
	w.stopOnce.Do(func() { close(w.stopping) })
	select {
	case <-w.done:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// outcome is what to do with a user's work after one attempt.
type outcome int

const (
	settled outcome = iota // built, or nothing owed: forget the work
	retry                  // failed: retry at retryAt
	later                  // someone else is on it: look again after BusyDelay
	parked                 // dead-lettered: forget the work; the sweeper returns after Park
	aborted                // the worker is being killed: touch nothing
)

// maxRounds bounds how often one attempt builds a user whose file ends behind (changes were
// committed while it built) before it hands the task on (handOn): a user who keeps changing
// gets builds back to back, without keeping one consumer to itself.
const maxRounds = 3

// attempt runs one build of userID and records a failure. retryAt is when to retry. A build
// that publishes behind is repeated: the task it holds stands for the changes that arrived
// meanwhile, since their bumps sent no message of their own (docs/sync.md §4.2).
func (w *Worker) attempt(ctx context.Context, userID int64) (outcome, time.Time) {
	res, err := w.Sync.Sync(ctx, userID)
	for round := 1; err == nil && res.Behind && round < maxRounds; round++ {
		res, err = w.Sync.Sync(ctx, userID)
	}
	switch {
	case err == nil:
		w.Log.DebugContext(ctx, "sync", "user_id", userID, "outcome", res.Outcome, "version", res.Version, "mode", res.Mode, "behind", res.Behind)
		if res.Behind && !w.handOn(ctx, userID, res.Version+1) {
			return later, time.Now().Add(w.opts.BusyDelay)
		}
		return settled, time.Time{}
	case ctx.Err() != nil:
		return aborted, time.Time{}
	case errors.Is(err, syncsvc.ErrBusy), errors.Is(err, syncsvc.ErrLockLost):
		return later, w.Now().Add(w.opts.BusyDelay)
	}
	cctx, cancel := w.callContext(ctx)
	defer cancel()
	f, rerr := w.Sync.RecordFailure(cctx, userID, err, w.opts.Retry)
	if rerr != nil {
		w.Log.ErrorContext(ctx, "record sync failure", "user_id", userID, "err", rerr)
		return retry, w.Now().Add(w.opts.Retry.BaseBackoff)
	}
	if f.DeadLettered {
		return parked, f.RetryAt
	}
	w.Log.WarnContext(ctx, "sync build failed; will retry", "user_id", userID, "attempts", f.Attempts, "retry_at", f.RetryAt, "err", err)
	return retry, f.RetryAt
}

// callContext bounds one call the worker makes around its builds (a claim, settling a claim or
// a message, recording a failure, handing a task on): CallTimeout, so a dependency that stops
// answering costs a consumer that long, not its loop (docs/operations.md, "Deadlines").
func (w *Worker) callContext(ctx context.Context) (context.Context, context.CancelFunc) {
	return context.WithTimeout(ctx, w.opts.CallTimeout)
}

// handOn sends a new task for a user whose file is still behind after maxRounds builds, so the
// task being settled is not the last one standing for the user; false when it could not be
// sent (the caller keeps the current task instead). Without SQS nothing is sent: the user stays
// stale in sync_states and is claimed again.
func (w *Worker) handOn(ctx context.Context, userID, version int64) bool {
	if w.Queue == nil {
		return true
	}
	// A fresh deduplication id: the version may have been sent before.
	suffix := "-more-" + strconv.FormatInt(time.Now().UnixNano(), 36)
	cctx, cancel := w.callContext(ctx)
	defer cancel()
	if err := w.Queue.Send(cctx, []outbox.Bump{{UserID: userID, Version: version}}, suffix); err != nil {
		w.Log.WarnContext(ctx, "hand on the sync task of a user still behind; keeping the current one", "user_id", userID, "err", err)
		return false
	}
	return true
}

// signal wakes every waiter at once (a broadcast that, unlike sync.Cond, works with select).
type signal struct {
	mu sync.Mutex
	ch chan struct{}
}

func newSignal() *signal { return &signal{ch: make(chan struct{})} }

func (s *signal) wait() <-chan struct{} {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.ch
}

func (s *signal) broadcast() {
	s.mu.Lock()
	defer s.mu.Unlock()
	close(s.ch)
	s.ch = make(chan struct{})
}

// sleep waits for d or until ctx ends; false when ctx ended.
func sleep(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-ctx.Done():
		return false
	}
}
