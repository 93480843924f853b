package worker_test

import (
	"context"
	"errors"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sqs"

	"github.com/bca-app/backend/gen/db"
	"github.com/bca-app/backend/internal/outbox"
	"github.com/bca-app/backend/internal/storage"
	"github.com/bca-app/backend/internal/syncqueue"
	"github.com/bca-app/backend/internal/syncsvc"
	"github.com/bca-app/backend/internal/syncsvc/synctest"
	"github.com/bca-app/backend/internal/testenv"
	"github.com/bca-app/backend/internal/worker"
)

// pipeline is one worker on one queue kind, with the producer the API would use.
type pipeline struct {
	e        *synctest.Env
	store    *synctest.FaultyStore
	tq       *testQueue
	producer outbox.Notifier
	deps     worker.Deps
}

func newPipeline(t testing.TB, mode string, maxReceiveCount int) *pipeline {
	t.Helper()
	base, err := storage.NewLocal(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	p := &pipeline{store: synctest.NewFaultyStore(base)}
	p.e = synctest.New(t, synctest.Options{Store: p.store})
	p.producer = syncqueue.PGNotifier{Pool: p.e.Pool, Log: p.e.Log}
	p.deps = worker.Deps{Sync: p.e.Svc, Pool: p.e.Pool, Redis: p.e.Redis, KeyPrefix: p.e.Prefix, Log: p.e.Log}
	if mode == "sqs" {
		p.tq = newTestQueue(t, 2*time.Second, maxReceiveCount)
		q := p.tq.queue(t, p.e, p.e.Svc)
		p.producer, p.deps.Queue = q, q
	}
	p.deps.Notifier = p.producer
	return p
}

func eachQueue(t *testing.T, test func(t *testing.T, mode string)) {
	for _, mode := range []string{"postgres", "sqs"} {
		t.Run(mode, func(t *testing.T) { test(t, mode) })
	}
}

// TestSyncBurstsCoalesce: fifty changes to one user before the worker looks give one build and,
// on SQS, one message: the changes after the first are covered by its task (docs/sync.md §4.2).
func TestSyncBurstsCoalesce(t *testing.T) {
	eachQueue(t, func(t *testing.T, mode string) {
		p := newPipeline(t, mode, 10)
		w := p.e.NewWorld()
		w.Notifier = p.producer
		u := w.User(t)
		prof := w.Profile(t, u, synctest.ProfileSpec{})
		for i := range 50 {
			w.Exec(t, []int64{prof}, nil, `UPDATE profiles SET name = $2, version = version + 1 WHERE id = $1`, prof, itoa(int64(i)))
		}
		if p.tq != nil {
			if n := p.tq.depth(t, p.tq.url); n != 1 {
				t.Fatalf("51 changes of one user sent %d messages, want 1", n)
			}
		}
		startWorker(t, p.deps, fastOptions())
		waitDrained(t, p.e, 30*time.Second)
		builds := p.e.Svc.Metrics().Builds
		// The publish commits before its counter and push are recorded: wait for them (bounded).
		testenv.WaitFor(5*time.Second, func() bool {
			return counter(t, builds.WithLabelValues(string(syncsvc.Published))) >= 1 && len(p.e.Push.To(u)) >= 1
		})
		if n := counter(t, builds.WithLabelValues(string(syncsvc.Published))); n != 1 {
			t.Fatalf("%v builds published, want 1", n)
		}
		if got := p.e.Published(t, u); got.Profiles[0].Name != "49" {
			t.Fatalf("the one build has the last change: %s", synctest.Describe(got))
		}
		if p.tq != nil {
			if !testenv.WaitFor(10*time.Second, func() bool { return p.tq.depth(t, p.tq.url) == 0 }) {
				t.Fatalf("%d messages left in the queue", p.tq.depth(t, p.tq.url))
			}
		}
		if len(p.e.Push.To(u)) != 1 {
			t.Fatalf("one push for the burst, got %d", len(p.e.Push.To(u)))
		}
	})
}

// TestSyncChangeDuringBuildIsBuiltByTheSameTask: a change committed while the user's file is
// being built sends no message of its own (the file is already behind), so the worker that holds
// the task builds again when its publish finds the user behind. With the resender off, nothing
// else could bring the change.
func TestSyncChangeDuringBuildIsBuiltByTheSameTask(t *testing.T) {
	p := newPipeline(t, "sqs", 10)
	w := p.e.NewWorld()
	w.Notifier = p.producer
	u := w.User(t)
	prof := w.Profile(t, u, synctest.ProfileSpec{})
	if n := p.tq.depth(t, p.tq.url); n != 1 {
		t.Fatalf("%d messages for one user's first changes, want 1", n)
	}
	var changed atomic.Bool
	writeErr := make(chan error, 1)
	p.store.SetHook(func(context.Context, string, string) error {
		if changed.CompareAndSwap(false, true) { // the first build's upload
			writeErr <- w.TryWrite(ctx, func(ctx context.Context, tx *outbox.Tx) error {
				if _, err := tx.Raw.Exec(ctx, `UPDATE profiles SET name = 'during the build', version = version + 1 WHERE id = $1`, prof); err != nil {
					return err
				}
				return tx.ProfilesChanged(ctx, prof)
			})
		}
		return nil
	})
	if n := p.tq.depth(t, p.tq.url); n != 1 {
		t.Fatalf("%d messages before the build, want 1", n)
	}
	o := fastOptions()
	o.SweepInterval, o.LagThreshold, o.ResendInterval = time.Hour, time.Hour, time.Hour
	startWorker(t, p.deps, o)
	select {
	case err := <-writeErr:
		if err != nil {
			t.Fatalf("change during the build: %v", err)
		}
	case <-time.After(20 * time.Second):
		t.Fatal("no build uploaded a file within 20 s")
	}
	// The change sent nothing: the queue holds at most the task being built (the worker may
	// already have settled it).
	if n := p.tq.depth(t, p.tq.url); n > 1 {
		t.Fatalf("%d messages after the change during the build, want at most the one being built", n)
	}
	waitDrained(t, p.e, 20*time.Second)
	if got := p.e.Published(t, u); len(got.Profiles) != 1 || got.Profiles[0].Name != "during the build" {
		t.Fatalf("the file lacks the change made during the first build: %s", synctest.Describe(got))
	}
	if n := counter(t, p.e.Svc.Metrics().Resent); n != 0 {
		t.Fatalf("the resender re-sent %v users; the worker alone should have built the change", n)
	}
}

// TestSyncLostMessagesAreResent: with every message lost, the sweeper sends the work again once a
// user has lagged longer than the threshold (SQS); the PostgreSQL queue needs no message.
func TestSyncLostMessagesAreResent(t *testing.T) {
	eachQueue(t, func(t *testing.T, mode string) {
		p := newPipeline(t, mode, 10)
		w := p.e.NewWorld() // its notifier drops everything
		u := w.User(t)
		w.Profile(t, u, synctest.ProfileSpec{})
		startWorker(t, p.deps, fastOptions())
		waitDrained(t, p.e, 30*time.Second)
		if mode == "sqs" && counter(t, p.e.Svc.Metrics().Resent) == 0 {
			t.Fatal("the sweeper should have re-sent the work")
		}
	})
}

// TestSyncPoisonUserIsDeadLettered: a user whose build always fails is retried with back-off, then
// dead-lettered (counted, parked, its message removed) while other users go on.
func TestSyncPoisonUserIsDeadLettered(t *testing.T) {
	eachQueue(t, func(t *testing.T, mode string) {
		p := newPipeline(t, mode, 10)
		w := p.e.NewWorld()
		w.Notifier = p.producer
		poison, healthy := w.User(t), w.User(t)
		w.Profile(t, poison, synctest.ProfileSpec{})
		prefix := "sync/" + itoa(poison) + "/"
		p.store.SetHook(func(_ context.Context, op, key string) error {
			if op == "put" && len(key) > len(prefix) && key[:len(prefix)] == prefix {
				return errors.New("this user's files cannot be written")
			}
			return nil
		})
		opts := fastOptions()
		opts.Retry.MaxAttempts = 3
		opts.Retry.Park = time.Hour
		startWorker(t, p.deps, opts)
		w.Profile(t, healthy, synctest.ProfileSpec{})

		var st db.SyncState
		if !testenv.WaitFor(30*time.Second, func() bool {
			var err error
			if st, err = db.New(p.e.Pool).GetSyncState(ctx, poison); err != nil {
				t.Fatal(err)
			}
			return st.DeadLetteredAt != nil
		}) {
			t.Fatalf("never dead-lettered: %+v", st)
		}
		if st.Attempts != 3 || st.LastError == nil || st.NotBefore == nil || time.Until(*st.NotBefore) < 30*time.Minute {
			t.Fatalf("dead-lettered state: %+v", st)
		}
		if n := counter(t, p.e.Svc.Metrics().DeadLetters); n != 1 {
			t.Fatalf("dead letters metric %v", n)
		}
		// The healthy user may still be in flight: wait for its file, bounded.
		testenv.Eventually(t, 10*time.Second, func() bool { return p.e.State(t, healthy).StorageKey != nil },
			"the healthy user's file (a poison user must not hold up the others)")
		if p.tq != nil {
			if !testenv.WaitFor(10*time.Second, func() bool { return p.tq.depth(t, p.tq.url) == 0 }) {
				t.Fatalf("the dead-lettered user's message is removed, %d left", p.tq.depth(t, p.tq.url))
			}
		}
	})
}

// TestSyncUndecodableMessagesReachTheDeadLetterQueue: a message that is not a task is left to the
// queue's redrive policy, which moves it to the dead-letter queue.
func TestSyncUndecodableMessagesReachTheDeadLetterQueue(t *testing.T) {
	p := newPipeline(t, "sqs", 2)
	if _, err := p.tq.client.SendMessage(ctx, &sqs.SendMessageInput{
		QueueUrl: aws.String(p.tq.url), MessageBody: aws.String(`{"resource": "dbsync_event"}`),
		MessageGroupId: aws.String("junk"), MessageDeduplicationId: aws.String("junk-1"),
	}); err != nil {
		t.Fatal(err)
	}
	startWorker(t, p.deps, fastOptions())
	if !testenv.WaitFor(30*time.Second, func() bool { return p.tq.depth(t, p.tq.dlqURL) == 1 }) {
		t.Fatalf("not in the dead-letter queue; main queue holds %d", p.tq.depth(t, p.tq.url))
	}
	if n := counter(t, p.e.Svc.Metrics().DeadLetters); n != 1 {
		t.Fatalf("dead letters metric %v", n)
	}
}

// TestSyncShutdownDrainsInFlightBuilds: a graceful stop waits for the build in progress, which
// completes and is published.
func TestSyncShutdownDrainsInFlightBuilds(t *testing.T) {
	eachQueue(t, func(t *testing.T, mode string) {
		p := newPipeline(t, mode, 10)
		w := p.e.NewWorld()
		w.Notifier = p.producer
		u := w.User(t)
		inPut, release := make(chan struct{}), make(chan struct{})
		p.store.SetHook(func(_ context.Context, op, _ string) error {
			if op == "put" {
				close(inPut)
				<-release
			}
			return nil
		})
		rw := startWorker(t, p.deps, fastOptions())
		w.Profile(t, u, synctest.ProfileSpec{})
		<-inPut
		stopped := make(chan struct{})
		go func() { rw.stop(t); close(stopped) }()
		select {
		case <-stopped:
			t.Fatal("shutdown returned while a build was in flight")
		case <-time.After(300 * time.Millisecond):
		}
		close(release)
		select {
		case <-stopped:
		case <-time.After(10 * time.Second):
			t.Fatal("shutdown did not return after the build finished")
		}
		if st := p.e.State(t, u); st.StorageKey == nil || st.BuiltVersion != st.WantedVersion {
			t.Fatalf("the drained build is published: %+v", st)
		}
	})
}

// TestSyncSweeperReportsBacklog: the gauges show lagging and dead-lettered users and the queue.
func TestSyncSweeperReportsBacklog(t *testing.T) {
	p := newPipeline(t, "sqs", 10)
	w := p.e.NewWorld()
	u := w.User(t)
	w.Profile(t, u, synctest.ProfileSpec{})
	if _, err := p.e.Pool.Exec(ctx, `UPDATE sync_states SET stale_since = now() - interval '1 minute', dead_lettered_at = now(), not_before = now() + interval '1 hour' WHERE user_id = $1`, u); err != nil {
		t.Fatal(err)
	}
	newWorker(t, p.deps, fastOptions()).SweepOnce(ctx)
	m := p.e.Svc.Metrics()
	if got := gauge(t, m.StaleUsers); got != 1 {
		t.Errorf("stale users %v", got)
	}
	if got := gauge(t, m.OldestStaleSeconds); got < 59 {
		t.Errorf("oldest stale %v s", got)
	}
	if got := gauge(t, m.DeadLetteredUsers); got != 1 {
		t.Errorf("dead-lettered users %v", got)
	}
	if got := gauge(t, m.QueueMessages.WithLabelValues("dead_letter", "visible")); got != 0 {
		t.Errorf("dead-letter queue depth %v", got)
	}
}

// TestSyncSenderOverflowIsResent: the API's background sender, its buffer full, drops tasks
// instead of blocking the request; the users stay stale in sync_states and the resender sends
// their work again, so every file converges.
func TestSyncSenderOverflowIsResent(t *testing.T) {
	p := newPipeline(t, "sqs", 10)
	w := p.e.NewWorld() // its notifier drops everything: the bumps are sent below
	for range 30 {
		w.Profile(t, w.User(t), synctest.ProfileSpec{})
	}
	rows, err := p.e.Pool.Query(ctx, `SELECT user_id, wanted_version FROM sync_states WHERE built_version < wanted_version`)
	if err != nil {
		t.Fatal(err)
	}
	var bumps []outbox.Bump
	for rows.Next() {
		var b outbox.Bump
		if err := rows.Scan(&b.UserID, &b.Version); err != nil {
			t.Fatal(err)
		}
		bumps = append(bumps, b)
	}
	if rows.Close(); rows.Err() != nil || len(bumps) < 30 {
		t.Fatalf("%d stale users (%v)", len(bumps), rows.Err())
	}
	opts := syncqueue.DefaultSenderOptions()
	opts.Buffer, opts.Concurrency = 10, 1
	sender := newSender(t, p.deps.Queue, opts, p.e)
	sender.Notify(ctx, bumps) // returns at once, whatever does not fit is dropped
	dropped := counter(t, p.e.Svc.Metrics().SendDropped)
	if dropped == 0 {
		t.Fatalf("dropped %v of %d bumps with a buffer of %d", dropped, len(bumps), opts.Buffer)
	}
	if err := sender.Close(ctx); err != nil {
		t.Fatal(err)
	}
	startWorker(t, p.deps, fastOptions())
	waitDrained(t, p.e, 60*time.Second)
	if counter(t, p.e.Svc.Metrics().Resent) == 0 {
		t.Fatal("the resender should have re-sent the dropped users' work")
	}
}
