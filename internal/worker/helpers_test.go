package worker_test

import (
	"context"
	"encoding/json"
	"log/slog"
	"math/rand/v2"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	awsconfig "github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	"github.com/aws/aws-sdk-go-v2/service/sqs/types"
	dto "github.com/prometheus/client_model/go"

	"github.com/bca-app/backend/internal/outbox"
	"github.com/bca-app/backend/internal/syncqueue"
	"github.com/bca-app/backend/internal/syncsvc"
	"github.com/bca-app/backend/internal/syncsvc/synctest"
	"github.com/bca-app/backend/internal/testenv"
	"github.com/bca-app/backend/internal/worker"
)

func TestMain(m *testing.M) { testenv.Main(m) }

var ctx = context.Background()

// testQueue is a FIFO queue in moto with a dead-letter queue behind a redrive policy, as an
// operator would set it up.
type testQueue struct {
	client          *sqs.Client
	url, dlqURL     string
	maxReceiveCount int
}

func newTestQueue(t testing.TB, visibility time.Duration, maxReceiveCount int) *testQueue {
	t.Helper()
	endpoint := testenv.AWSEndpoint(t)
	cfg, err := awsconfig.LoadDefaultConfig(ctx, awsconfig.WithRegion("us-east-1"),
		awsconfig.WithCredentialsProvider(credentials.NewStaticCredentialsProvider("test", "test", "")))
	if err != nil {
		t.Fatal(err)
	}
	client := sqs.NewFromConfig(cfg, func(o *sqs.Options) { o.BaseEndpoint = aws.String(endpoint) })
	name := testenv.UniqueName("sync")
	dlq, err := client.CreateQueue(ctx, &sqs.CreateQueueInput{
		QueueName:  aws.String(name + "-dlq.fifo"),
		Attributes: map[string]string{"FifoQueue": "true"},
	})
	if err != nil {
		t.Fatal(err)
	}
	attrs, err := client.GetQueueAttributes(ctx, &sqs.GetQueueAttributesInput{
		QueueUrl: dlq.QueueUrl, AttributeNames: []types.QueueAttributeName{types.QueueAttributeNameQueueArn},
	})
	if err != nil {
		t.Fatal(err)
	}
	redrive, _ := json.Marshal(map[string]string{
		"deadLetterTargetArn": attrs.Attributes[string(types.QueueAttributeNameQueueArn)],
		"maxReceiveCount":     strconv.Itoa(maxReceiveCount),
	})
	main, err := client.CreateQueue(ctx, &sqs.CreateQueueInput{
		QueueName: aws.String(name + ".fifo"),
		Attributes: map[string]string{
			"FifoQueue":         "true",
			"VisibilityTimeout": strconv.Itoa(int(visibility / time.Second)),
			"RedrivePolicy":     string(redrive),
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	return &testQueue{client: client, url: aws.ToString(main.QueueUrl), dlqURL: aws.ToString(dlq.QueueUrl), maxReceiveCount: maxReceiveCount}
}

func (q *testQueue) queue(t testing.TB, e *synctest.Env, svc *syncsvc.Service) *syncqueue.SQS {
	t.Helper()
	sq, err := syncqueue.NewSQS(syncqueue.SQSDeps{Client: q.client, URL: q.url, Metrics: svc.Metrics(), Log: e.Log})
	if err != nil {
		t.Fatal(err)
	}
	return sq
}

// newWorker is worker.New for a test: missing dependencies fail it.
func newWorker(t testing.TB, d worker.Deps, o worker.Options) *worker.Worker {
	t.Helper()
	d.Options = o
	w, err := worker.New(d)
	if err != nil {
		t.Fatal(err)
	}
	return w
}

// newSender starts the API's background producer in front of q for a test and closes it at the
// end.
func newSender(t testing.TB, q *syncqueue.SQS, o syncqueue.SenderOptions, e *synctest.Env) *syncqueue.Sender {
	t.Helper()
	s, err := syncqueue.NewSender(syncqueue.SenderDeps{Queue: q, Options: o, Metrics: e.Svc.Metrics(), Log: e.Log})
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// depth is the number of messages in a queue, visible or in flight.
func (q *testQueue) depth(t testing.TB, url string) int {
	t.Helper()
	out, err := q.client.GetQueueAttributes(ctx, &sqs.GetQueueAttributesInput{
		QueueUrl: aws.String(url),
		AttributeNames: []types.QueueAttributeName{
			types.QueueAttributeNameApproximateNumberOfMessages, types.QueueAttributeNameApproximateNumberOfMessagesNotVisible,
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	a, _ := strconv.Atoi(out.Attributes[string(types.QueueAttributeNameApproximateNumberOfMessages)])
	b, _ := strconv.Atoi(out.Attributes[string(types.QueueAttributeNameApproximateNumberOfMessagesNotVisible)])
	return a + b
}

// fastOptions are worker options scaled down so faults heal within seconds.
func fastOptions() worker.Options {
	o := worker.Defaults()
	o.Concurrency = 3
	o.Retry = syncsvc.RetryPolicy{MaxAttempts: 1000, BaseBackoff: 50 * time.Millisecond, MaxBackoff: 500 * time.Millisecond, Park: time.Second}
	o.BusyDelay = 100 * time.Millisecond
	o.PollInterval = 200 * time.Millisecond
	o.Lease = 2 * time.Second
	o.Visibility = 2 * time.Second
	o.WaitTime = time.Second
	o.SweepInterval = 300 * time.Millisecond
	o.LagThreshold = 1500 * time.Millisecond
	o.ResendInterval = 300 * time.Millisecond
	return o
}

// runningWorker is a worker started by a test.
type runningWorker struct {
	w    *worker.Worker
	kill context.CancelFunc
	done chan error
}

func startWorker(t testing.TB, d worker.Deps, o worker.Options) *runningWorker {
	t.Helper()
	runCtx, kill := context.WithCancel(ctx)
	rw := &runningWorker{w: newWorker(t, d, o), kill: kill, done: make(chan error, 1)}
	go func() { rw.done <- rw.w.Run(runCtx) }()
	t.Cleanup(func() {
		rw.kill()
		<-rw.done
	})
	return rw
}

// stop shuts the worker down gracefully and waits for it.
func (rw *runningWorker) stop(t testing.TB) {
	t.Helper()
	sctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	if err := rw.w.Shutdown(sctx); err != nil {
		t.Fatalf("shutdown: %v", err)
	}
}

// chaosNotifier delivers bumps through a real producer, but drops some, duplicates some and
// sends some again later with an older version (reordered delivery).
type chaosNotifier struct {
	real  outbox.Notifier
	queue *syncqueue.SQS // set on the SQS path: duplicates need fresh deduplication ids

	mu                  sync.Mutex
	rng                 *rand.Rand
	held                []outbox.Bump // old bumps to deliver late
	seq                 int
	dropped, duplicated int
	reordered           int
}

func (c *chaosNotifier) Notify(ctx context.Context, bumps []outbox.Bump) {
	c.mu.Lock()
	var send, dup, late []outbox.Bump
	for _, b := range bumps {
		switch r := c.rng.IntN(100); {
		case r < 20:
			c.dropped++
			continue
		case r < 35:
			c.duplicated++
			dup = append(dup, b)
		case r < 50:
			c.held = append(c.held, b)
		}
		send = append(send, b)
	}
	if len(c.held) > 3 {
		late, c.held = c.held, nil
		c.reordered += len(late)
	}
	c.seq++
	seq := c.seq
	c.mu.Unlock()

	c.real.Notify(ctx, send)
	if len(dup)+len(late) == 0 {
		return
	}
	if c.queue == nil {
		c.real.Notify(ctx, append(dup, late...))
		return
	}
	// Same task again, under a deduplication id SQS has not seen.
	if err := c.queue.Send(ctx, append(dup, late...), "-chaos-"+strconv.Itoa(seq)); err != nil {
		slog.Default().Warn("chaos re-send", "err", err)
	}
}

func itoa(n int64) string { return strconv.FormatInt(n, 10) }

func gauge(t testing.TB, g interface{ Write(*dto.Metric) error }) float64 {
	t.Helper()
	var m dto.Metric
	if err := g.Write(&m); err != nil {
		t.Fatal(err)
	}
	return m.GetGauge().GetValue()
}
