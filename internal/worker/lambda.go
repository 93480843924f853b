package worker

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/aws/aws-lambda-go/events"

	"github.com/bca-app/backend/internal/syncqueue"
	"github.com/bca-app/backend/internal/syncsvc"
)

// HandleSQSEvent is the Lambda driver of the worker (docs/sync.md §4.6): Lambda's SQS event
// source receives the messages and hands them over in a batch; they go through the same path
// as the receive loop's (handle: one build per user under its lock and the visibility
// heartbeat, compare-and-set publish, failures recorded and dead-lettered in PostgreSQL).
// What differs is who settles a message:
//   - settled work is not reported, so the event source deletes it (this driver deletes
//     nothing itself);
//   - work to retry is hidden until its back-off (as the receive loop does) and reported as a
//     failed batch item, so the event source leaves it in the queue;
//   - an undecodable message is reported as failed at every receive, so SQS's redrive policy
//     (maxReceiveCount) moves it to the dead-letter queue, as in the receive loop;
//   - a build cut off near the end of the invocation releases its lock, is returned to
//     visibility and is reported as failed.
//
// Every message not positively settled is reported, so nothing is deleted unprocessed.
func (w *Worker) HandleSQSEvent(ctx context.Context, ev events.SQSEvent) (events.SQSEventResponse, error) {
	ds := make([]syncqueue.Delivery, len(ev.Records))
	for i, r := range ev.Records {
		ds[i] = syncqueue.Decode(r.MessageId, r.ReceiptHandle, r.Body, r.Attributes["ApproximateReceiveCount"])
	}
	if deadline, ok := ctx.Deadline(); ok {
		// Stop building early enough to release the locks and answer before Lambda ends the
		// invocation (which would re-run the whole batch).
		margin := min(lambdaAnswerMargin, time.Until(deadline)/5)
		var cancel context.CancelFunc
		ctx, cancel = context.WithDeadlineCause(ctx, deadline.Add(-margin), syncsvc.ErrStopping)
		defer cancel()
	}
	ls := &lambdaSettler{w: w, settled: map[string]bool{}}
	w.handle(ctx, ds, ls)
	resp := events.SQSEventResponse{BatchItemFailures: []events.SQSBatchItemFailure{}}
	for _, d := range ds {
		if !ls.isSettled(d.ID) {
			resp.BatchItemFailures = append(resp.BatchItemFailures, events.SQSBatchItemFailure{ItemIdentifier: d.ID})
		}
	}
	w.Log.InfoContext(ctx, "sync task batch", "messages", len(ds), "failed", len(resp.BatchItemFailures))
	return resp, nil
}

// lambdaAnswerMargin is how long before the invocation's deadline builds are given up.
const lambdaAnswerMargin = 5 * time.Second

// HandleLambdaEvent is the function's entry point: an SQS batch (with "Records") goes to
// HandleSQSEvent; a scheduled event (EventBridge, "source": "aws.events") runs ScheduledSweep,
// the jobs the long-running worker's sweeper loops do on their own. Anything else is refused.
func (w *Worker) HandleLambdaEvent(ctx context.Context, raw json.RawMessage) (any, error) {
	var probe struct {
		Records []json.RawMessage `json:"Records"`
		Source  string            `json:"source"`
	}
	if err := json.Unmarshal(raw, &probe); err != nil {
		return nil, fmt.Errorf("bca-worker: the event is not a JSON object: %w", err)
	}
	switch {
	case probe.Records != nil:
		var ev events.SQSEvent
		if err := json.Unmarshal(raw, &ev); err != nil {
			return nil, fmt.Errorf("bca-worker: read the SQS event: %w", err)
		}
		return w.HandleSQSEvent(ctx, ev)
	case probe.Source == "aws.events":
		return w.ScheduledSweep(ctx)
	}
	return nil, errors.New("bca-worker: neither an SQS batch nor a scheduled event")
}

// SweepReport is the answer to a scheduled invocation.
type SweepReport struct {
	Status string `json:"status"` // "swept"
	// SyncSweep is "done", or "skipped" when another worker swept within SYNC_SWEEP_INTERVAL.
	SyncSweep string `json:"sync_sweep"`
	// UploadsRemoved counts the unused uploads removed (-1: no upload sweep configured).
	UploadsRemoved int `json:"uploads_removed"`
}

// ScheduledSweep runs one pass of each periodic job of a long-running worker process, for the
// scheduled (EventBridge) invocation on Lambda, where no loop runs between invocations:
//   - the sync sweep (docs/sync.md §4.4): re-sending lagging users' tasks, time-stale files,
//     replaced objects, gauges; skipped when another worker was elected within
//     SYNC_SWEEP_INTERVAL;
//   - the sweep of uploads attached to nothing for UploadUnusedFor (docs/product.md §7).
//
// Each pass has its own deadline (PassTimeout; within a shorter invocation, half of the time
// left less lambdaAnswerMargin) and runs even when the other failed; a failure of either is
// logged and fails the invocation (so Lambda's error metrics show it), after both ran.
func (w *Worker) ScheduledSweep(ctx context.Context) (SweepReport, error) {
	budget := w.opts.PassTimeout
	if deadline, ok := ctx.Deadline(); ok {
		left := time.Until(deadline)
		budget = min(budget, (left-min(lambdaAnswerMargin, left/5))/2)
	}
	rep := SweepReport{Status: "swept", SyncSweep: "skipped", UploadsRemoved: -1}
	var errs []error
	sctx, cancel := context.WithTimeout(ctx, budget)
	if w.sweeperTurn(sctx) {
		rep.SyncSweep = "done"
		if err := w.sweepOnce(sctx); err != nil {
			errs = append(errs, fmt.Errorf("sync sweep: %w", err))
		}
	}
	cancel()
	if w.Uploads != nil && w.opts.UploadUnusedFor > 0 {
		uctx, cancel := context.WithTimeout(ctx, budget)
		n, err := w.Uploads.Sweep(uctx, w.opts.UploadUnusedFor)
		cancel()
		rep.UploadsRemoved = n
		if err != nil {
			w.Log.ErrorContext(ctx, "sweeper: unused uploads", "err", err)
			errs = append(errs, fmt.Errorf("upload sweep: %w", err))
		}
	}
	w.Log.InfoContext(ctx, "scheduled sweep", "sync_sweep", rep.SyncSweep, "uploads_removed", rep.UploadsRemoved, "failed", len(errs))
	if err := errors.Join(errs...); err != nil {
		return rep, fmt.Errorf("bca-worker: scheduled sweep: %w", err)
	}
	return rep, nil
}

// lambdaSettler records which messages are settled; the rest are reported as failed.
type lambdaSettler struct {
	w       *Worker
	mu      sync.Mutex
	settled map[string]bool
}

func (l *lambdaSettler) isSettled(id string) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.settled[id]
}

func (l *lambdaSettler) done(_ context.Context, ds []syncqueue.Delivery) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, d := range ds {
		l.settled[d.ID] = true
	}
	return nil
}

func (l *lambdaSettler) again(ctx context.Context, ds []syncqueue.Delivery, d time.Duration) error {
	return l.w.Queue.Hide(ctx, ds, d)
}

func (l *lambdaSettler) abandoned(ctx context.Context, ds []syncqueue.Delivery, stopping bool) {
	if stopping {
		l.w.returnToQueue(ctx, ds)
	}
}
