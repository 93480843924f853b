package worker_test

import (
	"context"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sqs"

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
