package syncqueue_test

import (
	"context"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/sqs"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/bca-app/backend/internal/outbox"
	"github.com/bca-app/backend/internal/syncqueue"
	"github.com/bca-app/backend/internal/testenv"
)

// senderOptions are small, fast options for the tests: one sender goroutine, so what it takes
// from the buffer is predictable.
func senderOptions() syncqueue.SenderOptions {
	return syncqueue.SenderOptions{Buffer: 100, Concurrency: 1, Timeout: 10 * time.Second, Attempts: 3,
		BaseBackoff: 10 * time.Millisecond, MaxBackoff: 40 * time.Millisecond}
}

// newSender starts a Sender in front of q; the test's end closes it.
func (e *env) newSender(t *testing.T, q *syncqueue.SQS, o syncqueue.SenderOptions) *syncqueue.Sender {
	t.Helper()
	s, err := syncqueue.NewSender(syncqueue.SenderDeps{Queue: q, Options: o, Metrics: e.metrics, Log: e.log})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		closed := make(chan struct{})
		go func() { defer close(closed); _ = s.Close(ctx) }()
		select {
		case <-closed:
		case <-time.After(15 * time.Second):
			t.Error("Close at the end of the test still waiting 5 s after its context ended")
		}
	})
	return s
}

// gate holds requests until it is opened.
type gate struct {
	once sync.Once
	ch   chan struct{}
}

func newGate() *gate { return &gate{ch: make(chan struct{})} }

func (g *gate) open() { g.once.Do(func() { close(g.ch) }) }

// wait holds r until the gate opens or r's client gives up.
func (g *gate) wait(r *http.Request) {
	select {
	case <-g.ch:
	case <-r.Context().Done():
	}
}

// gatedSender starts a sender in front of the queue whose SendMessageBatch calls wait until the
// returned gate opens: at the latest when the test ends, before the sender and the proxy close.
func (e *env) gatedSender(t *testing.T, queueURL string, o syncqueue.SenderOptions) (*syncqueue.Sender, *gate, *testenv.DelayProxy, *calls) {
	t.Helper()
	g := newGate()
	px, c, client := proxy(t, func(r *http.Request, action string, _ int) time.Duration {
		if action == "SendMessageBatch" {
			g.wait(r)
		}
		return 0
	})
	s := e.newSender(t, e.queue(t, client, queueURL), o)
	t.Cleanup(g.open) // cleanups run last first: before the sender's and the proxy's
	return s, g, px, c
}

// hungSender starts a sender in front of the queue whose SendMessageBatch calls SQS holds for
// longer than a test waits: only a deadline ends them.
func (e *env) hungSender(t *testing.T, queueURL string) (*syncqueue.Sender, *testenv.DelayProxy) {
	t.Helper()
	px, _, client := proxy(t, func(_ *http.Request, action string, _ int) time.Duration {
		if action == "SendMessageBatch" {
			return time.Minute
		}
		return 0
	})
	o := senderOptions()
	o.Timeout = time.Minute
	return e.newSender(t, e.queue(t, client, queueURL), o), px
}

// within runs f and fails the test if it has not returned after 10 s.
func within(t *testing.T, what string, f func()) {
	t.Helper()
	done := make(chan struct{})
	go func() { defer close(done); f() }()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatalf("%s: still waiting after 10 s", what)
	}
}

// TestSenderNotifyReturnsWhileSQSHoldsItsSend: Notify only buffers (docs/sync.md §4.2), so it
// returns while SQS has not answered the sender's call; once SQS answers, every task arrives and
// the pending gauge is back to 0.
func TestSenderNotifyReturnsWhileSQSHoldsItsSend(t *testing.T) {
	e := newEnv(t)
	p := e.provision(t, 15)
	s, g, px, _ := e.gatedSender(t, p.QueueURL, senderOptions())
	bumps, want := bumpsOf(25)
	within(t, "the first Notify", func() { s.Notify(t.Context(), bumps[:1]) })
	testenv.Eventually(t, 10*time.Second, func() bool { return px.Held() == 1 }, "the sender's call held by SQS")
	within(t, "Notify while SQS holds the sender's call", func() { s.Notify(t.Context(), bumps[1:]) })
	if n := testutil.ToFloat64(e.metrics.SendPending); n != 24 {
		t.Errorf("send pending = %v while SQS holds the first call; want 24", n)
	}
	g.open()
	if got := tasks(t, drain(t, e.queue(t, nil, p.QueueURL), 25)); !slices.Equal(got, want) {
		t.Errorf("received %v; want %v", got, want)
	}
	testenv.Eventually(t, 10*time.Second, func() bool { return testutil.ToFloat64(e.metrics.SendPending) == 0 }, "send pending back to 0")
	if n := testutil.ToFloat64(e.metrics.SendDropped) + testutil.ToFloat64(e.metrics.NotifyFailures); n != 0 {
		t.Errorf("%v bumps dropped or failed; want none", n)
	}
}

// TestSenderSendsOnlyTasksAndInBatchesOfTen: covered bumps are left out (docs/sync.md §4.2); 25
// buffered tasks go out in SendMessageBatch calls of at most 10 entries.
func TestSenderSendsOnlyTasksAndInBatchesOfTen(t *testing.T) {
	e := newEnv(t)
	p := e.provision(t, 15)
	s, g, px, c := e.gatedSender(t, p.QueueURL, senderOptions())
	bumps, want := bumpsOf(25)
	s.Notify(t.Context(), []outbox.Bump{{UserID: 100, Version: 1, Covered: true}})
	s.Notify(t.Context(), bumps[:1])
	testenv.Eventually(t, 10*time.Second, func() bool { return px.Held() == 1 }, "the first call held")
	// While the first call is held, 24 tasks and some covered bumps wait in the buffer.
	more := slices.Clone(bumps[1:])
	more = append(more, outbox.Bump{UserID: 101, Version: 1, Covered: true})
	s.Notify(t.Context(), more)
	g.open()
	if got := tasks(t, drain(t, e.queue(t, nil, p.QueueURL), 25)); !slices.Equal(got, want) {
		t.Errorf("received %v; want %v (no covered bump)", got, want)
	}
	// The sender takes what is waiting, up to 10 a call.
	if sizes := c.batchSizes("SendMessageBatch"); !slices.Equal(sizes, []int{1, 10, 10, 4}) {
		t.Errorf("SendMessageBatch calls of %v entries; want [1 10 10 4] (1, then 24 buffered tasks)", sizes)
	}
	if n := e.total(t, p.QueueURL); n != 0 {
		t.Errorf("%d messages left: covered bumps were sent", n)
	}
}

// TestSenderDropsWhatDoesNotFitItsBuffer: with the buffer full Notify drops the rest and counts
// it in bca_sync_send_dropped_total; what fitted is sent.
func TestSenderDropsWhatDoesNotFitItsBuffer(t *testing.T) {
	e := newEnv(t)
	p := e.provision(t, 15)
	o := senderOptions()
	o.Buffer = 2
	s, g, px, _ := e.gatedSender(t, p.QueueURL, o)
	bumps, _ := bumpsOf(6)
	s.Notify(t.Context(), bumps[:1])
	testenv.Eventually(t, 10*time.Second, func() bool { return px.Held() == 1 }, "the first call held")
	within(t, "Notify into a full buffer", func() { s.Notify(t.Context(), bumps[1:]) })
	if n := testutil.ToFloat64(e.metrics.SendDropped); n != 3 {
		t.Errorf("send dropped = %v; want 3 (5 bumps, room for 2)", n)
	}
	if n := testutil.ToFloat64(e.metrics.SendPending); n != 2 {
		t.Errorf("send pending = %v; want 2", n)
	}
	if !strings.Contains(e.logs.String(), "sweeper will re-send") {
		t.Errorf("the drop was not logged; log:\n%s", e.logs.String())
	}
	g.open()
	if got := tasks(t, drain(t, e.queue(t, nil, p.QueueURL), 3)); !slices.Equal(got, []string{"1:10", "2:20", "3:30"}) {
		t.Errorf("received %v; want the 3 bumps that fitted", got)
	}
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	if err := s.Close(ctx); err != nil {
		t.Fatal(err)
	}
	if n := e.total(t, p.QueueURL); n != 0 {
		t.Errorf("%d more messages: dropped bumps were sent", n)
	}
}

// TestSenderTriesAFailingBatchAttemptsTimesThenCountsIt: a batch SQS refuses is tried Attempts
// times in all, then counted in bca_sync_notify_failures_total and left to the sweeper.
func TestSenderTriesAFailingBatchAttemptsTimesThenCountsIt(t *testing.T) {
	for _, attempts := range []int{1, 4} {
		t.Run(fmt.Sprintf("attempts=%d", attempts), func(t *testing.T) {
			e := newEnv(t)
			// The SDK's own retries are off, so each HTTP call is one attempt of the sender's.
			_, c, client := proxy(t, nil, func(o *sqs.Options) { o.RetryMaxAttempts = 1 })
			o := senderOptions()
			o.Attempts = attempts
			s := e.newSender(t, e.queue(t, client, missingQueueURL(t)), o)
			s.Notify(t.Context(), []outbox.Bump{{UserID: 1, Version: 1}, {UserID: 1, Version: 2, Covered: true}})
			testenv.Eventually(t, 10*time.Second, func() bool { return testutil.ToFloat64(e.metrics.NotifyFailures) > 0 }, "the failure counted")
			ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
			defer cancel()
			if err := s.Close(ctx); err != nil {
				t.Fatal(err)
			}
			if n := c.count("SendMessageBatch"); n != attempts {
				t.Errorf("%d SendMessageBatch calls; want %d", n, attempts)
			}
			if n := testutil.ToFloat64(e.metrics.NotifyFailures); n != 1 {
				t.Errorf("notify failures = %v; want 1", n)
			}
			if !strings.Contains(e.logs.String(), "send sync tasks failed") {
				t.Errorf("the failure was not logged; log:\n%s", e.logs.String())
			}
		})
	}
}

// TestSenderGivesUpOnAHungCallAfterItsTimeoutAndRetries: Timeout bounds one call; the next
// attempt delivers the task, once.
func TestSenderGivesUpOnAHungCallAfterItsTimeoutAndRetries(t *testing.T) {
	e := newEnv(t)
	p := e.provision(t, 15)
	_, c, client := proxy(t, func(_ *http.Request, action string, n int) time.Duration {
		if action == "SendMessageBatch" && n == 1 {
			return time.Minute // longer than the test waits: only the sender's Timeout ends it
		}
		return 0
	})
	o := senderOptions()
	o.Timeout = 300 * time.Millisecond
	s := e.newSender(t, e.queue(t, client, p.QueueURL), o)
	s.Notify(t.Context(), []outbox.Bump{{UserID: 7, Version: 3}})
	if got := tasks(t, drain(t, e.queue(t, nil, p.QueueURL), 1)); !slices.Equal(got, []string{"7:3"}) {
		t.Errorf("received %v; want [7:3]", got)
	}
	if n := c.count("SendMessageBatch"); n != 2 {
		t.Errorf("%d SendMessageBatch calls; want 2 (the hung one and its retry)", n)
	}
	if n := testutil.ToFloat64(e.metrics.NotifyFailures); n != 0 {
		t.Errorf("notify failures = %v; want 0", n)
	}
}

// TestSenderCloseSendsWhatIsBuffered: Close takes no more bumps and returns once everything
// buffered is in the queue; a second Close is harmless.
func TestSenderCloseSendsWhatIsBuffered(t *testing.T) {
	e := newEnv(t)
	p := e.provision(t, 15)
	s, g, px, _ := e.gatedSender(t, p.QueueURL, senderOptions())
	bumps, want := bumpsOf(25)
	s.Notify(t.Context(), bumps[:1])
	testenv.Eventually(t, 10*time.Second, func() bool { return px.Held() == 1 }, "the first call held")
	s.Notify(t.Context(), bumps[1:])
	closed := make(chan error, 1)
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		closed <- s.Close(ctx)
	}()
	g.open()
	select {
	case err := <-closed:
		if err != nil {
			t.Fatalf("Close: %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Close still waiting after 10 s")
	}
	// Everything is in the queue when Close returns: no waiting here.
	if n := e.total(t, p.QueueURL); n != 25 {
		t.Fatalf("queue holds %d messages when Close returned; want 25", n)
	}
	if got := tasks(t, drain(t, e.queue(t, nil, p.QueueURL), 25)); !slices.Equal(got, want) {
		t.Errorf("received %v; want %v", got, want)
	}
	if n := testutil.ToFloat64(e.metrics.SendPending); n != 0 {
		t.Errorf("send pending = %v after Close; want 0", n)
	}
	within(t, "a second Close", func() {
		if err := s.Close(t.Context()); err != nil {
			t.Errorf("second Close: %v", err)
		}
	})
}

// TestSenderCloseEndsWithItsContextWhenSQSHangs: Close gives up when its context ends, with an
// error, even though SQS never answers; the abandoned send counts as failed, and a bump notified
// after Close is dropped and counted, not sent.
func TestSenderCloseEndsWithItsContextWhenSQSHangs(t *testing.T) {
	e := newEnv(t)
	p := e.provision(t, 15)
	s, px := e.hungSender(t, p.QueueURL)
	s.Notify(t.Context(), []outbox.Bump{{UserID: 1, Version: 1}})
	testenv.Eventually(t, 10*time.Second, func() bool { return px.Held() == 1 }, "the send held")
	within(t, "Close with a hung SQS", func() {
		ctx, cancel := context.WithTimeout(t.Context(), 300*time.Millisecond)
		defer cancel()
		if err := s.Close(ctx); err == nil {
			t.Error("Close returned no error although the buffer was not sent")
		}
	})
	if n := testutil.ToFloat64(e.metrics.NotifyFailures); n != 1 {
		t.Errorf("notify failures = %v; want the abandoned bump, 1", n)
	}
	s.Notify(t.Context(), []outbox.Bump{{UserID: 2, Version: 1}, {UserID: 3, Version: 1}})
	if n := testutil.ToFloat64(e.metrics.SendDropped); n != 2 {
		t.Errorf("send dropped = %v after Notify on a closed sender; want 2", n)
	}
	testenv.Eventually(t, 10*time.Second, func() bool { return px.Held() == 0 }, "the abandoned call released")
	if n := e.total(t, p.QueueURL); n != 0 {
		t.Errorf("queue holds %d messages; want none", n)
	}
}

// TestSenderCountsWhatCloseLeftBehind: the bumps still buffered when Close's context ends are
// counted as dropped (the sweeper re-sends them), and the pending gauge goes back to 0.
func TestSenderCountsWhatCloseLeftBehind(t *testing.T) {
	e := newEnv(t)
	p := e.provision(t, 15)
	s, px := e.hungSender(t, p.QueueURL)
	bumps, _ := bumpsOf(25)
	s.Notify(t.Context(), bumps)
	testenv.Eventually(t, 10*time.Second, func() bool { return px.Held() == 1 }, "the first send held")
	within(t, "Close with a hung SQS", func() {
		ctx, cancel := context.WithTimeout(t.Context(), 300*time.Millisecond)
		defer cancel()
		if err := s.Close(ctx); err == nil || !strings.Contains(err.Error(), "left") {
			t.Errorf("Close: %v; want an error saying how many tasks were left", err)
		}
	})
	failed, dropped := testutil.ToFloat64(e.metrics.NotifyFailures), testutil.ToFloat64(e.metrics.SendDropped)
	if failed+dropped != 25 || dropped < 15 {
		t.Errorf("after Close: %v failed (the abandoned batch) and %v dropped (left in the buffer); want 25 in all, at least 15 dropped", failed, dropped)
	}
	if n := testutil.ToFloat64(e.metrics.SendPending); n != 0 {
		t.Errorf("pending = %v after Close; want 0", n)
	}
}

// TestSenderTakesDefaultsForOptionsLeftAtZero: a zero SenderOptions is the production one, not
// a sender that times out at once and buffers nothing.
func TestSenderTakesDefaultsForOptionsLeftAtZero(t *testing.T) {
	e := newEnv(t)
	p := e.provision(t, 15)
	s := e.newSender(t, e.queue(t, nil, p.QueueURL), syncqueue.SenderOptions{})
	bumps, _ := bumpsOf(25)
	s.Notify(t.Context(), bumps)
	testenv.Eventually(t, 10*time.Second, func() bool { return e.total(t, p.QueueURL) == 25 }, "every task sent")
	if f, d := testutil.ToFloat64(e.metrics.NotifyFailures), testutil.ToFloat64(e.metrics.SendDropped); f != 0 || d != 0 {
		t.Errorf("%v failed and %v dropped with default options; want none", f, d)
	}
}

// TestNewSenderRefusesMissingDependencies: no queue, metrics or log is an error at construction.
func TestNewSenderRefusesMissingDependencies(t *testing.T) {
	e := newEnv(t)
	_, err := syncqueue.NewSender(syncqueue.SenderDeps{Options: senderOptions()})
	for _, dep := range []string{"Queue", "Metrics", "Log"} {
		if err == nil || !strings.Contains(err.Error(), dep) {
			t.Errorf("NewSender without dependencies: %v; want an error naming %s", err, dep)
		}
	}
	q := e.queue(t, nil, missingQueueURL(t))
	if _, err := syncqueue.NewSender(syncqueue.SenderDeps{Queue: q, Options: senderOptions(), Metrics: e.metrics}); err == nil || !strings.Contains(err.Error(), "Log") {
		t.Errorf("NewSender without a log: %v; want an error naming Log", err)
	}
}
