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
// HandleSQSEvent; a scheduled event (EventBridge, "source": "aws.events") runs one sweep, the
// job the long-running worker's sweeper loop does on its own (re-sending lagging users,
// collecting replaced objects, gauges). Anything else is refused.
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
		if w.sweeperTurn(ctx) {
			w.sweepOnce(ctx)
		}
		return map[string]string{"status": "swept"}, nil
	}
	return nil, errors.New("bca-worker: neither an SQS batch nor a scheduled event")
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
