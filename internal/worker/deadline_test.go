package worker_test

import (
	"context"
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/bca-app/backend/internal/postgres"
	"github.com/bca-app/backend/internal/syncqueue"
	"github.com/bca-app/backend/internal/syncsvc/synctest"
	"github.com/bca-app/backend/internal/testenv"
)

// TestSyncWorkerOutlivesAHungSQS: an SQS that accepts connections and never answers costs each
// receive WaitTime + CallTimeout and each sweep pass PassTimeout; then the loops try again, so
// the worker builds the waiting users as soon as SQS answers (docs/operations.md). Without the
// deadlines every consumer and the sweeper would wait on their first call for as long as the
// stall lasts.
func TestSyncWorkerOutlivesAHungSQS(t *testing.T) {
	p := newPipeline(t, "sqs", 10)
	proxy := testenv.NewDelayProxy(t, testenv.AWSEndpoint(t))
	var hung atomic.Bool
	var receives, attributes atomic.Int64
	hung.Store(true)
	proxy.SetDelay(func(r *http.Request) time.Duration {
		target := r.Header.Get("X-Amz-Target")
		switch {
		case strings.HasSuffix(target, ".ReceiveMessage"):
			receives.Add(1)
		case strings.HasSuffix(target, ".GetQueueAttributes"):
			attributes.Add(1)
		}
		if hung.Load() {
			return time.Minute // longer than the test waits: only a deadline ends it
		}
		return 0
	})
	// The worker reaches SQS through the proxy; the test's producer goes straight to it.
	client := sqs.NewFromConfig(aws.Config{Region: "us-east-1", Credentials: p.tq.client.Options().Credentials},
		func(o *sqs.Options) { o.BaseEndpoint = aws.String(proxy.URL) })
	q, err := syncqueue.NewSQS(syncqueue.SQSDeps{Client: client, URL: p.tq.url, Metrics: p.e.Svc.Metrics(), Log: p.e.Log})
	if err != nil {
		t.Fatal(err)
	}
	p.deps.Queue = q
	o := fastOptions()
	o.CallTimeout, o.PassTimeout = 300*time.Millisecond, 500*time.Millisecond
	startWorker(t, p.deps, o)

	// Each consumer's receive gives up after WaitTime + CallTimeout (1.3 s) and, a second
	// later, comes again; each sweep gives up on the queue's gauges after PassTimeout.
	testenv.Eventually(t, 20*time.Second, func() bool {
		return receives.Load() >= int64(3*o.Concurrency) && attributes.Load() >= 3
	}, "receives and sweeps come again after their deadlines")

	hung.Store(false)
	w := p.e.NewWorld()
	w.Notifier = p.producer
	u := w.User(t)
	w.Profile(t, u, synctest.ProfileSpec{})
	waitDrained(t, p.e, 30*time.Second)
}

// TestSyncBuildAgainstAHungStoreFails: a build whose upload the store never answers fails after
// BuildTimeout like any other failure (recorded, retried with back-off) instead of holding the
// user and a worker slot for as long as the store hangs; the user's file is built once the
// store answers.
func TestSyncBuildAgainstAHungStoreFails(t *testing.T) {
	eachQueue(t, func(t *testing.T, mode string) {
		p := newPipeline(t, mode, 10)
		const buildTimeout = 300 * time.Millisecond
		p.e.Settings.BuildTimeout = buildTimeout
		p.deps.Sync = p.e.NewService(p.store)
		var hung atomic.Bool
		hung.Store(true)
		p.store.SetHook(func(ctx context.Context, op, _ string) error {
			if op == "put" && hung.Load() {
				<-ctx.Done() // an upload that never gets an answer
				return ctx.Err()
			}
			return nil
		})
		w := p.e.NewWorld()
		w.Notifier = p.producer
		u := w.User(t)
		w.Profile(t, u, synctest.ProfileSpec{})
		startWorker(t, p.deps, fastOptions())
		var lastError string
		testenv.Eventually(t, 20*time.Second, func() bool {
			var attempts int
			var msg *string
			if err := p.e.Pool.QueryRow(ctx, `SELECT attempts, last_error FROM sync_states WHERE user_id = $1`, u).Scan(&attempts, &msg); err != nil {
				t.Fatal(err)
			}
			if msg != nil {
				lastError = *msg
			}
			return attempts >= 2
		}, "two builds against the hung store fail and are recorded")
		if !strings.Contains(lastError, "deadline") {
			t.Errorf("last error %q; want the build's deadline", lastError)
		}
		hung.Store(false)
		waitDrained(t, p.e, 30*time.Second)
	})
}

// TestPostgresClaimAgainstAHungDatabaseEnds: a claim of the PostgreSQL queue whose database
// stops answering gives up after CallTimeout, is logged, and the consumer claims again; the
// user waiting is built as soon as the database answers (docs/operations.md, "Deadlines").
// Without the deadline the one consumer would wait on its first claim for as long as the
// database hangs: its connection stays open, only the answer never comes.
func TestPostgresClaimAgainstAHungDatabaseEnds(t *testing.T) {
	h := newHungDatabasePipeline(t)
	h.proxy.Hold()
	h.world.Profile(t, h.world.User(t), synctest.ProfileSpec{}) // a user to claim while the database hangs
	testenv.Eventually(t, 20*time.Second, func() bool { return h.logged("claim stale sync users") >= 3 },
		"claims against the hung database give up and come again")
	h.proxy.Release()
	waitDrained(t, h.p.e, 30*time.Second)
}

// TestAFailedBuildAgainstAHungDatabaseIsNotWaitedOn: the database stops answering in the middle
// of a build (after the upload, before the publish). The build fails after BuildTimeout, and
// recording the failure gives up after CallTimeout instead of holding the consumer; it goes
// back to claiming, and the user is built once the database answers.
func TestAFailedBuildAgainstAHungDatabaseIsNotWaitedOn(t *testing.T) {
	h := newHungDatabasePipeline(t)
	var once sync.Once
	h.p.store.SetHook(func(_ context.Context, op, _ string) error {
		if op == "put" {
			once.Do(h.proxy.Hold) // the upload succeeds; what follows finds the database hung
		}
		return nil
	})
	h.world.Profile(t, h.world.User(t), synctest.ProfileSpec{})
	testenv.Eventually(t, 20*time.Second, func() bool {
		return h.logged("record sync failure") >= 1 && h.logged("claim stale sync users") >= 3
	}, "recording the failure gives up, and claims come again")
	h.proxy.Release()
	waitDrained(t, h.p.e, 30*time.Second)
}

// hungDatabasePipeline is a PostgreSQL-queue pipeline with one consumer whose claims and builds
// reach the database through a proxy that can stop forwarding (testenv.HoldProxy); its LISTEN
// and the test's own statements go straight to the database. It counts the worker's log
// records by message.
type hungDatabasePipeline struct {
	p     *pipeline
	proxy *testenv.HoldProxy
	world *synctest.World

	mu   sync.Mutex
	logs map[string]int
}

func newHungDatabasePipeline(t *testing.T) *hungDatabasePipeline {
	t.Helper()
	h := &hungDatabasePipeline{p: newPipeline(t, "postgres", 10), logs: map[string]int{}}
	u, err := url.Parse(h.p.e.Pool.Config().ConnString())
	if err != nil {
		t.Fatal(err)
	}
	h.proxy = testenv.NewHoldProxy(t, u.Host)
	t.Cleanup(h.proxy.Release) // before the pool closes (cleanups run last first)
	u.Host = h.proxy.Addr
	cfg, err := pgxpool.ParseConfig(u.String())
	if err != nil {
		t.Fatal(err)
	}
	// Four open connections, handed out without the liveness ping pgxpool makes after a
	// second idle: a statement goes out on a connection the hung database never answers. (A
	// new connection would fail on its own after postgres.ConnectTimeout, and the ping would
	// put the same wait on the acquire: neither would show whether the caller has a deadline.)
	cfg.ConnConfig.ConnectTimeout = postgres.ConnectTimeout
	cfg.MinConns, cfg.MaxConns = 4, 4
	cfg.ShouldPing = func(context.Context, pgxpool.ShouldPingParams) bool { return false }
	proxied, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(proxied.Close)
	direct := h.p.e.Pool
	h.p.e.Settings.BuildTimeout = 500 * time.Millisecond
	h.p.e.Pool = proxied
	h.p.deps.Sync = h.p.e.NewService(h.p.store)
	h.p.e.Pool = direct
	h.p.deps.Log = slog.New(countingHandler{Handler: h.p.e.Log.Handler(), count: h.count})
	o := fastOptions()
	o.Concurrency, o.CallTimeout = 1, 300*time.Millisecond
	startWorker(t, h.p.deps, o)

	h.world = h.p.e.NewWorld()
	h.world.Notifier = h.p.producer
	h.world.Profile(t, h.world.User(t), synctest.ProfileSpec{})
	waitDrained(t, h.p.e, 30*time.Second) // claims and builds work through the proxy
	return h
}

func (h *hungDatabasePipeline) count(msg string) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.logs[msg]++
}

func (h *hungDatabasePipeline) logged(msg string) int {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.logs[msg]
}

// countingHandler reports the message of every record to count and passes the record on.
type countingHandler struct {
	slog.Handler
	count func(msg string)
}

func (h countingHandler) Handle(ctx context.Context, r slog.Record) error {
	h.count(r.Message)
	return h.Handler.Handle(ctx, r)
}

func (h countingHandler) WithAttrs(attrs []slog.Attr) slog.Handler {
	return countingHandler{Handler: h.Handler.WithAttrs(attrs), count: h.count}
}

func (h countingHandler) WithGroup(name string) slog.Handler {
	return countingHandler{Handler: h.Handler.WithGroup(name), count: h.count}
}
