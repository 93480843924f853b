package worker_test

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"

	"github.com/bca-app/backend/internal/outbox"
	"github.com/bca-app/backend/internal/storage"
	"github.com/bca-app/backend/internal/syncqueue"
	"github.com/bca-app/backend/internal/syncsvc"
	"github.com/bca-app/backend/internal/syncsvc/synctest"
	"github.com/bca-app/backend/internal/testenv"
	"github.com/bca-app/backend/internal/worker"
)

// TestSyncConvergence is docs/sync.md §4's acceptance test: many random writes by several users while
// messages are dropped, duplicated and reordered, a worker is killed in the middle of a build,
// storage fails now and then and Redis restarts; once the queue drains, every user's file holds
// exactly the rows of a fresh full build. It runs on both queues.
func TestSyncConvergence(t *testing.T) {
	for _, mode := range []string{"postgres", "sqs"} {
		t.Run(mode, func(t *testing.T) { testConvergence(t, mode) })
	}
}

func testConvergence(t *testing.T, mode string) {
	rs := testenv.RedisServer(t)
	base, err := storage.NewLocal(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	flaky := synctest.NewFaultyStore(base) // every worker's storage
	e := synctest.New(t, synctest.Options{RedisURL: rs.URL(), Store: flaky, Settings: func(s *syncsvc.Settings) {
		s.LockTTL = time.Second
		s.ReplacedGrace = 0
	}})
	opts := fastOptions()
	rng := rand.New(rand.NewPCG(uint64(time.Now().UnixNano()), 7))
	t.Logf("seed time %v", time.Now())

	// Three workers, each with its own service (as separate processes would have); the third
	// writes through a store that can stall a build so the test can kill it mid-build.
	svcs := []*syncsvc.Service{e.NewService(flaky), e.NewService(flaky)}
	victimStore := synctest.NewFaultyStore(flaky)
	victimSvc := e.NewService(victimStore)
	var tq *testQueue
	queueFor := func(svc *syncsvc.Service) *syncqueue.SQS { return nil }
	var producer outbox.Notifier = syncqueue.PGNotifier{Pool: e.Pool, Log: e.Log}
	if mode == "sqs" {
		tq = newTestQueue(t, opts.Visibility, 50)
		queueFor = func(svc *syncsvc.Service) *syncqueue.SQS { return tq.queue(t, e, svc) }
		producer = queueFor(e.Svc)
	}
	chaos := &chaosNotifier{real: producer, queue: queueFor(e.Svc), rng: rand.New(rand.NewPCG(rng.Uint64(), 1))}
	w := e.NewWorld()
	w.Notifier = chaos

	deps := func(svc *syncsvc.Service) worker.Deps {
		return worker.Deps{Sync: svc, Queue: queueFor(svc), Pool: e.Pool, Notifier: producer, Redis: e.Redis, KeyPrefix: e.Prefix, Log: e.Log}
	}
	workers := []*runningWorker{startWorker(t, deps(svcs[0]), opts), startWorker(t, deps(svcs[1]), opts)}
	victim := startWorker(t, deps(victimSvc), opts)

	// The world: several users with two profiles each.
	var users, profiles []int64
	for range 6 {
		u := w.User(t)
		users = append(users, u)
		for range 2 {
			profiles = append(profiles, w.Profile(t, u, synctest.ProfileSpec{Private: rng.IntN(2) == 0}))
		}
	}
	var cards synctest.Cards

	// Storage fails about one operation in eight while the writes go on.
	var storageFaults atomic.Int64
	faultRng := rand.New(rand.NewPCG(rng.Uint64(), 2))
	var faultMu sync.Mutex
	flaky.SetHook(func(_ context.Context, op, _ string) error {
		faultMu.Lock()
		fail := faultRng.IntN(8) == 0
		faultMu.Unlock()
		if fail && op != "delete" {
			storageFaults.Add(1)
			return errors.New("injected storage failure")
		}
		return nil
	})

	// Stray deliveries on the PostgreSQL path: builds of random users outside any claim.
	strayCtx, stopStrays := context.WithCancel(ctx)
	var strays sync.WaitGroup
	straySeed := rng.Uint64()
	if mode == "postgres" {
		strays.Go(func() {
			r := rand.New(rand.NewPCG(straySeed, 3))
			for sleepOrDone(strayCtx, 20*time.Millisecond) {
				_, _ = svcs[r.IntN(2)].Sync(strayCtx, users[r.IntN(len(users))])
			}
		})
	}

	start := time.Now()
	// Two writers, 150 random changes each, with the faults scheduled in between.
	const perWriter = 150
	var writers sync.WaitGroup
	var killed, restarted atomic.Bool
	for wi, seed := range []uint64{rng.Uint64(), rng.Uint64()} {
		writers.Go(func() {
			r := rand.New(rand.NewPCG(seed, uint64(10+wi)))
			for i := range perWriter {
				if err := w.RandomChange(ctx, r, profiles, &cards); err != nil {
					t.Errorf("write: %v", err)
					return
				}
				if wi == 0 && i == 40 {
					killVictim(t, victim, victimStore)
					killed.Store(true)
				}
				if wi == 1 && i == 90 {
					if err := rs.Restart(ctx); err != nil {
						t.Errorf("restart redis: %v", err)
					}
					restarted.Store(true)
				}
				time.Sleep(time.Duration(r.IntN(4)) * time.Millisecond) // wall time: the writers' pace
			}
		})
	}
	writers.Wait()
	stopStrays()
	strays.Wait()
	flaky.SetHook(nil)
	if !killed.Load() || !restarted.Load() {
		t.Fatal("faults were not all injected")
	}

	t.Logf("writes done after %v", time.Since(start).Round(time.Millisecond))
	waitDrained(t, e, 90*time.Second)
	t.Logf("drained after %v", time.Since(start).Round(time.Millisecond))
	for _, rw := range workers {
		rw.stop(t)
	}
	for _, u := range users {
		want := e.Want(t, u)
		if got := e.Published(t, u); !synctest.Equal(got, want) {
			t.Errorf("user %d: file differs from a full build\n got\n%s want\n%s", u, synctest.Describe(got), synctest.Describe(want))
		}
	}
	if tq != nil {
		if n := tq.depth(t, tq.dlqURL); n != 0 {
			t.Errorf("%d task messages were dead-lettered by SQS", n)
		}
	}
	chaos.mu.Lock()
	t.Logf("%s: storage faults %d, messages dropped %d, duplicated %d, re-sent late %d; builds %s; sweeper re-sent %v",
		mode, storageFaults.Load(), chaos.dropped, chaos.duplicated, chaos.reordered,
		outcomes(t, append(svcs, victimSvc, e.Svc)), counter(t, svcs[0].Metrics().Resent)+counter(t, svcs[1].Metrics().Resent))
	chaos.mu.Unlock()
}

// killVictim stalls the victim's next upload, then kills the worker while it holds the user's
// lock and the task (message or claim): nothing of its build is released or acknowledged.
func killVictim(t *testing.T, victim *runningWorker, store *synctest.FaultyStore) {
	inPut := make(chan struct{})
	var once sync.Once
	store.SetHook(func(ctx context.Context, op, _ string) error {
		if op != "put" {
			return nil
		}
		once.Do(func() { close(inPut) })
		<-ctx.Done()
		return ctx.Err()
	})
	select {
	case <-inPut:
	case <-time.After(30 * time.Second):
		t.Error("the victim never started a build")
		return
	}
	victim.kill()
	if err := <-victim.done; !errors.Is(err, context.Canceled) {
		t.Errorf("killed worker returned %v", err)
	}
	victim.done <- nil // for the cleanup
}

// waitDrained waits until every user's file is built at its wanted version.
func waitDrained(t testing.TB, e *synctest.Env, timeout time.Duration) {
	t.Helper()
	var lagging int
	if !testenv.WaitFor(timeout, func() bool {
		if err := e.Pool.QueryRow(ctx, `SELECT count(*) FROM sync_states WHERE built_version < wanted_version OR storage_key IS NULL`).Scan(&lagging); err != nil {
			t.Fatal(err)
		}
		return lagging == 0
	}) {
		rows, _ := e.Pool.Query(ctx, `SELECT user_id, wanted_version, built_version, attempts, not_before, last_error FROM sync_states WHERE built_version < wanted_version`)
		for rows.Next() {
			var u, wv, bv int64
			var attempts int
			var nb *time.Time
			var le *string
			_ = rows.Scan(&u, &wv, &bv, &attempts, &nb, &le)
			t.Logf("lagging user %d: wanted %d built %d attempts %d not_before %v error %v", u, wv, bv, attempts, nb, le)
		}
		rows.Close()
		t.Fatalf("%d users still lag after %v", lagging, timeout)
	}
}

func sleepOrDone(ctx context.Context, d time.Duration) bool {
	select {
	case <-ctx.Done():
		return false
	case <-time.After(d):
		return true
	}
}

func outcomesOf(t testing.TB, svc *syncsvc.Service) string {
	return outcomes(t, []*syncsvc.Service{svc})
}

// outcomes sums the builds metric of the services by outcome.
func outcomes(t testing.TB, svcs []*syncsvc.Service) string {
	t.Helper()
	sum := map[string]float64{}
	for _, svc := range svcs {
		for _, o := range []syncsvc.Outcome{syncsvc.Published, syncsvc.Unchanged, syncsvc.Skipped, syncsvc.Superseded, syncsvc.Busy, syncsvc.Failed} {
			sum[string(o)] += counter(t, svc.Metrics().Builds.WithLabelValues(string(o)))
		}
	}
	return fmt.Sprint(sum)
}

func counter(t testing.TB, c interface{ Write(*dto.Metric) error }) float64 {
	t.Helper()
	var m dto.Metric
	if err := c.Write(&m); err != nil {
		t.Fatal(err)
	}
	return m.GetCounter().GetValue()
}
