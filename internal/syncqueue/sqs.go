package syncqueue

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/aws/arn"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	"github.com/aws/aws-sdk-go-v2/service/sqs/types"

	"github.com/bca-app/backend/internal/domain"
	"github.com/bca-app/backend/internal/outbox"
	"github.com/bca-app/backend/internal/syncsvc"
)

// SQS is the SQS FIFO task queue of docs/sync.md §4.2, both ends: the producer's sends and the
// consumer's receive, acknowledge and visibility calls. A message says "user U's file is owed
// version V"; the data always comes from PostgreSQL.
type SQS struct {
	client  *sqs.Client
	url     string
	metrics *syncsvc.Metrics
	log     *slog.Logger

	dlqMu  sync.Mutex
	dlqURL string // from the queue's redrive policy, once found
}

// SQSDeps are what an SQS queue works with.
type SQSDeps struct {
	Client  *sqs.Client      // required
	URL     string           // the queue (AWS_TASK_SQS_URL); required
	Metrics *syncsvc.Metrics // required
	Log     *slog.Logger     // required
}

// NewSQS returns the queue at d.URL; it refuses missing dependencies.
func NewSQS(d SQSDeps) (*SQS, error) {
	if err := domain.RequireDeps("sqs queue", map[string]any{"Client": d.Client, "Metrics": d.Metrics, "Log": d.Log}); err != nil {
		return nil, err
	}
	if d.URL == "" {
		return nil, errors.New("sqs queue: no queue URL")
	}
	return &SQS{client: d.Client, url: d.URL, metrics: d.Metrics, log: d.Log}, nil
}

// message is the body of a task.
type message struct {
	UserID        int64 `json:"user_id"`
	WantedVersion int64 `json:"wanted_version"`
}

// notifyTimeout bounds a synchronous Notify.
const notifyTimeout = 3 * time.Second

// Notify sends the bumps now and waits for SQS (at most notifyTimeout). The API does not call it
// on the request path: it hands bumps to a Sender, which calls Send in the background. Failures
// are logged and counted, never returned: the sweeper re-sends lagging users.
func (q *SQS) Notify(ctx context.Context, bumps []outbox.Bump) {
	if bumps = tasksOf(bumps); len(bumps) == 0 {
		return
	}
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), notifyTimeout)
	defer cancel()
	if err := q.Send(ctx, bumps, ""); err != nil {
		q.log.WarnContext(ctx, "send sync tasks; the sweeper will re-send them", "users", len(bumps), "err", err)
	}
}

// tasksOf leaves out the covered bumps (docs/sync.md §4.2): their user's file was already
// behind, so the message sent when it fell behind still stands for the user and its builder
// builds again when it publishes behind. One message per task instead of one per change keeps
// a busy user's FIFO group at one message, however fast the changes come; without it every
// change was a message, and a user's group held a backlog that every consumer had to receive,
// build (or skip) and delete in order (see the pipeline section of docs/sync.md).
func tasksOf(bumps []outbox.Bump) []outbox.Bump {
	var out []outbox.Bump
	for _, b := range bumps {
		if !b.Covered {
			out = append(out, b)
		}
	}
	return out
}

// Send enqueues one message per bump (docs/sync.md §4.2): group = user id, so one user's
// messages are ordered and never processed in parallel while different users proceed
// independently; deduplication id = user id and version, so a retried send is not a second
// task. dedupSuffix distinguishes a deliberate re-send (the sweeper's) from the original, which
// SQS would otherwise drop as a duplicate for five minutes. Failed entries are counted in
// NotifyFailures; the error names them.
func (q *SQS) Send(ctx context.Context, bumps []outbox.Bump, dedupSuffix string) error {
	_, err := q.send(ctx, bumps, dedupSuffix)
	if err != nil {
		q.metrics.NotifyFailures.Add(float64(countFailed(bumps, err)))
	}
	return err
}

// sendError lists the bumps SQS did not take.
type sendError struct {
	failed []outbox.Bump
	errs   []error
}

func (e *sendError) Error() string { return errors.Join(e.errs...).Error() }

func countFailed(bumps []outbox.Bump, err error) int {
	var se *sendError
	if errors.As(err, &se) {
		return len(se.failed)
	}
	return len(bumps)
}

// send sends the bumps in batches of 10 (the SendMessageBatch limit) and returns the bumps that
// were not sent with the reasons.
func (q *SQS) send(ctx context.Context, bumps []outbox.Bump, dedupSuffix string) ([]outbox.Bump, error) {
	se := &sendError{}
	for start := 0; start < len(bumps); start += 10 {
		batch := bumps[start:min(start+10, len(bumps))]
		entries := make([]types.SendMessageBatchRequestEntry, len(batch))
		for i, b := range batch {
			body, _ := json.Marshal(message{UserID: b.UserID, WantedVersion: b.Version})
			user := strconv.FormatInt(b.UserID, 10)
			entries[i] = types.SendMessageBatchRequestEntry{
				Id:                     aws.String(strconv.Itoa(i)),
				MessageBody:            aws.String(string(body)),
				MessageGroupId:         aws.String(user),
				MessageDeduplicationId: aws.String(user + "-" + strconv.FormatInt(b.Version, 10) + dedupSuffix),
			}
		}
		out, err := q.client.SendMessageBatch(ctx, &sqs.SendMessageBatchInput{QueueUrl: &q.url, Entries: entries})
		if err != nil {
			se.failed = append(se.failed, batch...)
			se.errs = append(se.errs, err)
			continue
		}
		for _, f := range out.Failed {
			i, _ := strconv.Atoi(aws.ToString(f.Id))
			if i >= 0 && i < len(batch) {
				se.failed = append(se.failed, batch[i])
			}
			se.errs = append(se.errs, fmt.Errorf("entry %s: %s %s", aws.ToString(f.Id), aws.ToString(f.Code), aws.ToString(f.Message)))
		}
	}
	if len(se.errs) == 0 {
		return nil, nil
	}
	return se.failed, se
}

// Delivery is one received message.
type Delivery struct {
	Receipt string
	ID      string
	// UserID and WantedVersion are the task; Valid is false for a body that is not one.
	UserID, WantedVersion int64
	Valid                 bool
	// Receives is SQS's ApproximateReceiveCount.
	Receives int
}

// Receive long-polls for up to 10 messages for at most wait, hidden from other consumers for
// visibility.
func (q *SQS) Receive(ctx context.Context, wait, visibility time.Duration) ([]Delivery, error) {
	out, err := q.client.ReceiveMessage(ctx, &sqs.ReceiveMessageInput{
		QueueUrl:                    &q.url,
		MaxNumberOfMessages:         10,
		WaitTimeSeconds:             int32(wait / time.Second),
		VisibilityTimeout:           int32(visibility / time.Second),
		MessageSystemAttributeNames: []types.MessageSystemAttributeName{types.MessageSystemAttributeNameApproximateReceiveCount},
	})
	if err != nil {
		return nil, fmt.Errorf("receive sync tasks: %w", err)
	}
	ds := make([]Delivery, len(out.Messages))
	for i, m := range out.Messages {
		ds[i] = Decode(aws.ToString(m.MessageId), aws.ToString(m.ReceiptHandle), aws.ToString(m.Body),
			m.Attributes[string(types.MessageSystemAttributeNameApproximateReceiveCount)])
	}
	return ds, nil
}

// Decode turns a received message into a Delivery (the worker's loop and an event-driven driver
// receive messages differently but read them the same way).
func Decode(id, receipt, body, receiveCount string) Delivery {
	d := Delivery{ID: id, Receipt: receipt}
	d.Receives, _ = strconv.Atoi(receiveCount)
	var m message
	d.Valid = json.Unmarshal([]byte(body), &m) == nil && m.UserID > 0
	d.UserID, d.WantedVersion = m.UserID, m.WantedVersion
	return d
}

// Ack deletes processed messages.
func (q *SQS) Ack(ctx context.Context, ds []Delivery) error {
	entries := make([]types.DeleteMessageBatchRequestEntry, len(ds))
	for i, d := range ds {
		entries[i] = types.DeleteMessageBatchRequestEntry{Id: aws.String(strconv.Itoa(i)), ReceiptHandle: aws.String(d.Receipt)}
	}
	return batch(len(entries), func(lo, hi int) (int, error) {
		out, err := q.client.DeleteMessageBatch(ctx, &sqs.DeleteMessageBatchInput{QueueUrl: &q.url, Entries: entries[lo:hi]})
		if err != nil {
			return 0, err
		}
		return len(out.Failed), nil
	})
}

// Hide makes messages invisible for d from now: a retry after back-off, or the heartbeat that
// keeps them while a build runs. SQS counts whole seconds; a part of one counts as a whole, so
// a back-off of 0.9 s is not a redelivery at once. d ≤ 0 makes them visible now.
func (q *SQS) Hide(ctx context.Context, ds []Delivery, d time.Duration) error {
	secs := int32((min(max(d, 0), 12*time.Hour) + time.Second - 1) / time.Second)
	entries := make([]types.ChangeMessageVisibilityBatchRequestEntry, len(ds))
	for i, dl := range ds {
		entries[i] = types.ChangeMessageVisibilityBatchRequestEntry{
			Id: aws.String(strconv.Itoa(i)), ReceiptHandle: aws.String(dl.Receipt), VisibilityTimeout: secs,
		}
	}
	return batch(len(entries), func(lo, hi int) (int, error) {
		out, err := q.client.ChangeMessageVisibilityBatch(ctx, &sqs.ChangeMessageVisibilityBatchInput{QueueUrl: &q.url, Entries: entries[lo:hi]})
		if err != nil {
			return 0, err
		}
		return len(out.Failed), nil
	})
}

// KeepHidden is the visibility heartbeat: until stop is called it extends the messages'
// visibility to visibility every third of it, so a slow build is not handed to a second
// consumer while a dead consumer's messages come back within one visibility window. Both the
// worker's loop and an event-driven driver use it around a build.
func (q *SQS) KeepHidden(ctx context.Context, ds []Delivery, visibility time.Duration) (stop func()) {
	ctx, cancel := context.WithCancel(ctx)
	var wg sync.WaitGroup
	wg.Go(func() {
		t := time.NewTicker(max(visibility/3, 100*time.Millisecond))
		defer t.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-t.C:
				if err := q.Hide(ctx, ds, visibility); err != nil && ctx.Err() == nil {
					q.log.WarnContext(ctx, "extend sync task visibility", "err", err)
				}
			}
		}
	})
	return func() { cancel(); wg.Wait() }
}

// batch runs call over [0, n) in slices of 10 (the SQS batch limit).
func batch(n int, call func(lo, hi int) (failed int, err error)) error {
	var errs []error
	for lo := 0; lo < n; lo += 10 {
		failed, err := call(lo, min(lo+10, n))
		if err != nil {
			errs = append(errs, err)
		} else if failed > 0 {
			errs = append(errs, fmt.Errorf("%d entries failed", failed))
		}
	}
	return errors.Join(errs...)
}

// UpdateDepthGauges reports the approximate depth of the queue and of its dead-letter queue.
// The task queue comes first, so a dead-letter queue that cannot be read does not keep its
// figures from being updated; the dead-letter series are then removed rather than left stale.
func (q *SQS) UpdateDepthGauges(ctx context.Context) error {
	if err := q.updateDepth(ctx, "main", q.url); err != nil {
		return err
	}
	dlq, err := q.DeadLetterQueue(ctx)
	if err == nil {
		if err = q.updateDepth(ctx, "dead_letter", dlq); err == nil {
			return nil
		}
	}
	q.metrics.QueueMessages.DeleteLabelValues("dead_letter", "visible")
	q.metrics.QueueMessages.DeleteLabelValues("dead_letter", "in_flight")
	if errors.Is(err, ErrNoDeadLetterQueue) {
		return nil
	}
	return err
}

func (q *SQS) updateDepth(ctx context.Context, name, url string) error {
	out, err := q.client.GetQueueAttributes(ctx, &sqs.GetQueueAttributesInput{
		QueueUrl: aws.String(url),
		AttributeNames: []types.QueueAttributeName{
			types.QueueAttributeNameApproximateNumberOfMessages, types.QueueAttributeNameApproximateNumberOfMessagesNotVisible,
		},
	})
	if err != nil {
		return fmt.Errorf("queue attributes of %s: %w", url, err)
	}
	visible, _ := strconv.Atoi(out.Attributes[string(types.QueueAttributeNameApproximateNumberOfMessages)])
	inFlight, _ := strconv.Atoi(out.Attributes[string(types.QueueAttributeNameApproximateNumberOfMessagesNotVisible)])
	q.metrics.QueueMessages.WithLabelValues(name, "visible").Set(float64(visible))
	q.metrics.QueueMessages.WithLabelValues(name, "in_flight").Set(float64(inFlight))
	return nil
}

// ErrNoDeadLetterQueue means the queue has no redrive policy naming a dead-letter queue.
var ErrNoDeadLetterQueue = errors.New("the sync queue has no redrive policy with a dead-letter queue")

// DeadLetterQueue returns the URL of the dead-letter queue named by the queue's redrive policy.
// A found URL is remembered; a failure is looked up again next time.
func (q *SQS) DeadLetterQueue(ctx context.Context) (string, error) {
	q.dlqMu.Lock()
	defer q.dlqMu.Unlock()
	if q.dlqURL != "" {
		return q.dlqURL, nil
	}
	url, err := q.lookUpDLQ(ctx)
	if err != nil {
		return "", err
	}
	q.dlqURL = url
	return url, nil
}

func (q *SQS) lookUpDLQ(ctx context.Context) (string, error) {
	out, err := q.client.GetQueueAttributes(ctx, &sqs.GetQueueAttributesInput{
		QueueUrl: &q.url, AttributeNames: []types.QueueAttributeName{types.QueueAttributeNameRedrivePolicy},
	})
	if err != nil {
		return "", fmt.Errorf("read the sync queue's attributes: %w", err)
	}
	policy := out.Attributes[string(types.QueueAttributeNameRedrivePolicy)]
	var p struct {
		DeadLetterTargetArn string `json:"deadLetterTargetArn"`
	}
	if policy == "" || json.Unmarshal([]byte(policy), &p) != nil || p.DeadLetterTargetArn == "" {
		return "", ErrNoDeadLetterQueue
	}
	// The ARN names the queue and the account that owns it, which need not be the caller's.
	target, err := arn.Parse(p.DeadLetterTargetArn)
	if err != nil || target.Resource == "" {
		return "", fmt.Errorf("%w: redrive policy names %q", ErrNoDeadLetterQueue, p.DeadLetterTargetArn)
	}
	in := &sqs.GetQueueUrlInput{QueueName: &target.Resource}
	if target.AccountID != "" {
		in.QueueOwnerAWSAccountId = &target.AccountID
	}
	url, err := q.client.GetQueueUrl(ctx, in)
	if err != nil {
		return "", fmt.Errorf("look up the dead-letter queue %s: %w", target.Resource, err)
	}
	return aws.ToString(url.QueueUrl), nil
}

// HasRedrive reports whether SQS itself moves repeatedly failing messages to a dead-letter
// queue.
func (q *SQS) HasRedrive(ctx context.Context) bool {
	_, err := q.DeadLetterQueue(ctx)
	if err != nil {
		q.log.WarnContext(ctx, "no dead-letter queue for the sync queue: undecodable messages are dropped after repeated receives", "err", err)
	}
	return err == nil
}

// Check is the readiness of the queue: it exists, and it has a dead-letter queue that exists.
// The error names which is missing.
func (q *SQS) Check(ctx context.Context) error {
	if _, err := q.client.GetQueueAttributes(ctx, &sqs.GetQueueAttributesInput{
		QueueUrl: &q.url, AttributeNames: []types.QueueAttributeName{types.QueueAttributeNameQueueArn},
	}); err != nil {
		return fmt.Errorf("queue %s: %w", q.url, err)
	}
	dlq, err := q.DeadLetterQueue(ctx)
	if err != nil {
		return fmt.Errorf("dead-letter queue: %w", err)
	}
	if _, err := q.client.GetQueueAttributes(ctx, &sqs.GetQueueAttributesInput{
		QueueUrl: &dlq, AttributeNames: []types.QueueAttributeName{types.QueueAttributeNameQueueArn},
	}); err != nil {
		q.dlqMu.Lock()
		q.dlqURL = ""
		q.dlqMu.Unlock()
		return fmt.Errorf("dead-letter queue %s: %w", dlq, err)
	}
	return nil
}
