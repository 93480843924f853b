package worker_test

import (
	"context"
	"slices"
	"strconv"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/events"
	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	"github.com/aws/aws-sdk-go-v2/service/sqs/types"

	"github.com/bca-app/backend/internal/syncsvc/synctest"
)

// receiveEvent receives what the queue has (as Lambda's event source would) as an SQS event.
func (q *testQueue) receiveEvent(t testing.TB, want int) events.SQSEvent {
	t.Helper()
	var ev events.SQSEvent
	for deadline := time.Now().Add(15 * time.Second); len(ev.Records) < want; {
		if time.Now().After(deadline) {
			t.Fatalf("received %d messages, want %d", len(ev.Records), want)
		}
		out, err := q.client.ReceiveMessage(ctx, &sqs.ReceiveMessageInput{
			QueueUrl: aws.String(q.url), MaxNumberOfMessages: 10, WaitTimeSeconds: 1,
			MessageSystemAttributeNames: []types.MessageSystemAttributeName{types.MessageSystemAttributeNameAll},
		})
		if err != nil {
			t.Fatal(err)
		}
		for _, m := range out.Messages {
			ev.Records = append(ev.Records, events.SQSMessage{
				MessageId: aws.ToString(m.MessageId), ReceiptHandle: aws.ToString(m.ReceiptHandle),
				Body: aws.ToString(m.Body), Attributes: m.Attributes, EventSource: "aws:sqs",
			})
		}
	}
	return ev
}

func failedIDs(r events.SQSEventResponse) []string {
	var ids []string
	for _, f := range r.BatchItemFailures {
		ids = append(ids, f.ItemIdentifier)
	}
	slices.Sort(ids)
	return ids
}

// TestLambdaDriverReportsOnlyFailures: the Lambda driver builds the users of a batch as the
// receive loop does, deletes nothing itself (the event source deletes what is not reported)
// and reports exactly the undecodable message.
func TestLambdaDriverReportsOnlyFailures(t *testing.T) {
	p := newPipeline(t, "sqs", 5)
	world := p.e.NewWorld()
	world.Notifier = p.producer
	u := world.User(t)
	world.Profile(t, u, synctest.ProfileSpec{Name: "On Lambda"})
	poison, err := p.tq.client.SendMessage(ctx, &sqs.SendMessageInput{
		QueueUrl: aws.String(p.tq.url), MessageBody: aws.String("not a task"),
		MessageGroupId: aws.String("junk"), MessageDeduplicationId: aws.String("junk-1"),
	})
	if err != nil {
		t.Fatal(err)
	}
	ev := p.tq.receiveEvent(t, 2)
	w := newWorker(t, p.deps, fastOptions())
	ictx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	resp, err := w.HandleSQSEvent(ictx, ev)
	if err != nil {
		t.Fatal(err)
	}
	if got := failedIDs(resp); !slices.Equal(got, []string{aws.ToString(poison.MessageId)}) {
		t.Fatalf("reported %v, want only the undecodable message %s", got, aws.ToString(poison.MessageId))
	}
	if st := p.e.State(t, u); st.StorageKey == nil || st.BuiltVersion != st.WantedVersion {
		t.Fatalf("the user was not built: %+v", st)
	}
	if got, want := p.e.Published(t, u), p.e.Want(t, u); !synctest.Equal(got, want) {
		t.Fatalf("published:\n%s\nwant:\n%s", synctest.Describe(got), synctest.Describe(want))
	}
	// The driver deleted nothing: both messages are still in the queue, for the event source.
	if n := p.tq.depth(t, p.tq.url); n != len(ev.Records) {
		t.Fatalf("%d messages left in the queue, want all %d (Lambda deletes, not the driver)", n, len(ev.Records))
	}
}

// TestLambdaDriverHandsBackACutOffBuild: a build still running near the invocation's deadline
// is cut off: its lock is released, its message is visible again at once and reported.
func TestLambdaDriverHandsBackACutOffBuild(t *testing.T) {
	p := newPipeline(t, "sqs", 5)
	world := p.e.NewWorld()
	world.Notifier = p.producer
	u := world.User(t)
	world.Profile(t, u, synctest.ProfileSpec{})
	p.store.SetHook(func(ctx context.Context, op, _ string) error {
		if op == "put" {
			<-ctx.Done() // S3 hangs until the build gives up
			return ctx.Err()
		}
		return nil
	})
	ev := p.tq.receiveEvent(t, 1)
	opts := fastOptions()
	opts.Visibility = time.Minute // so only the hand-back can make it visible again soon
	w := newWorker(t, p.deps, opts)
	ictx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	start := time.Now()
	resp, err := w.HandleSQSEvent(ictx, ev)
	if err != nil {
		t.Fatal(err)
	}
	if time.Since(start) > 2*time.Second {
		t.Errorf("answered %v after the start, past the invocation's deadline", time.Since(start))
	}
	var want []string
	for _, r := range ev.Records {
		want = append(want, r.MessageId)
	}
	slices.Sort(want)
	if got := failedIDs(resp); !slices.Equal(got, want) {
		t.Fatalf("reported %v, want every message of the cut-off user %v", got, want)
	}
	if n, err := p.e.Redis.Exists(ctx, p.e.Prefix+"sync:lock:"+strconv.FormatInt(u, 10)).Result(); err != nil || n != 0 {
		t.Fatalf("the user's lock is still held (exists %d, err %v)", n, err)
	}
	p.store.SetHook(nil)
	again := p.tq.receiveEvent(t, len(ev.Records))
	if again.Records[0].Attributes["ApproximateReceiveCount"] != "2" {
		t.Errorf("receive count %s, want 2", again.Records[0].Attributes["ApproximateReceiveCount"])
	}
}
