package worker

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	"github.com/aws/aws-sdk-go-v2/service/sqs/types"

	"github.com/bca-app/backend/internal/outbox"
	"github.com/bca-app/backend/internal/syncsvc"
)

// SQSQueue is the SQS FIFO task queue of docs/sync.md §4.2, both ends: the API's producer (an
// outbox.Notifier) and the worker's consumer. A message says "user U's file is owed version V";
// the data always comes from PostgreSQL.
type SQSQueue struct {
	client  *sqs.Client
	url     string
	metrics *syncsvc.Metrics
	log     *slog.Logger

	dlqOnce sync.Once
	dlqURL  string // from the queue's redrive policy; "" when it has none
}

// NewSQSQueue returns the queue at url (AWS_TASK_SQS_URL).
func NewSQSQueue(client *sqs.Client, url string, metrics *syncsvc.Metrics, log *slog.Logger) *SQSQueue {
	return &SQSQueue{client: client, url: url, metrics: metrics, log: log}
}

// message is the body of a task.
type message struct {
	UserID        int64 `json:"user_id"`
	WantedVersion int64 `json:"wanted_version"`
}

// notifyTimeout bounds the producer's wait for SQS after a commit: a send that fails or times
// out is logged, and the sweeper re-sends the work.
const notifyTimeout = 3 * time.Second

// Notify sends one message per bump after commit (docs/sync.md §4.2): group = user id, so one
// user's messages are ordered and never processed in parallel while different users proceed
// independently; deduplication id = user id and version, so a retried send is not a second
// task. Failures are logged and counted, never returned: the request has already succeeded.
func (q *SQSQueue) Notify(ctx context.Context, bumps []outbox.Bump) {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), notifyTimeout)
	defer cancel()
	claims := make([]syncsvc.Claim, len(bumps))
	for i, b := range bumps {
		claims[i] = syncsvc.Claim{UserID: b.UserID, Version: b.Version}
	}
	if err := q.Send(ctx, claims, ""); err != nil {
		q.log.WarnContext(ctx, "send sync tasks; the sweeper will re-send them", "users", len(bumps), "err", err)
	}
}

// Send enqueues one message per claim. dedupSuffix distinguishes a deliberate re-send (the
// sweeper's) from the original, which SQS would otherwise drop as a duplicate for five minutes.
func (q *SQSQueue) Send(ctx context.Context, claims []syncsvc.Claim, dedupSuffix string) error {
	var errs []error
	for start := 0; start < len(claims); start += 10 { // SendMessageBatch takes at most 10
		batch := claims[start:min(start+10, len(claims))]
		entries := make([]types.SendMessageBatchRequestEntry, len(batch))
		for i, c := range batch {
			body, _ := json.Marshal(message{UserID: c.UserID, WantedVersion: c.Version})
			user := strconv.FormatInt(c.UserID, 10)
			entries[i] = types.SendMessageBatchRequestEntry{
				Id:                     aws.String(strconv.Itoa(i)),
				MessageBody:            aws.String(string(body)),
				MessageGroupId:         aws.String(user),
				MessageDeduplicationId: aws.String(user + "-" + strconv.FormatInt(c.Version, 10) + dedupSuffix),
			}
		}
		out, err := q.client.SendMessageBatch(ctx, &sqs.SendMessageBatchInput{QueueUrl: &q.url, Entries: entries})
		if err != nil {
			q.metrics.NotifyFailures.Add(float64(len(batch)))
			errs = append(errs, err)
			continue
		}
		for _, f := range out.Failed {
			q.metrics.NotifyFailures.Inc()
			errs = append(errs, fmt.Errorf("entry %s: %s %s", aws.ToString(f.Id), aws.ToString(f.Code), aws.ToString(f.Message)))
		}
	}
	return errors.Join(errs...)
}

// delivery is one received message.
type delivery struct {
	receipt  string
	body     message
	valid    bool
	receives int // ApproximateReceiveCount
	id       string
}

// receive long-polls for up to 10 messages, hidden from other consumers for visibility.
func (q *SQSQueue) receive(ctx context.Context, wait, visibility time.Duration) ([]delivery, error) {
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
	ds := make([]delivery, len(out.Messages))
	for i, m := range out.Messages {
		d := delivery{receipt: aws.ToString(m.ReceiptHandle), id: aws.ToString(m.MessageId)}
		d.receives, _ = strconv.Atoi(m.Attributes[string(types.MessageSystemAttributeNameApproximateReceiveCount)])
		d.valid = json.Unmarshal([]byte(aws.ToString(m.Body)), &d.body) == nil && d.body.UserID > 0
		ds[i] = d
	}
	return ds, nil
}

// ack deletes processed messages.
func (q *SQSQueue) ack(ctx context.Context, ds []delivery) error {
	entries := make([]types.DeleteMessageBatchRequestEntry, len(ds))
	for i, d := range ds {
		entries[i] = types.DeleteMessageBatchRequestEntry{Id: aws.String(strconv.Itoa(i)), ReceiptHandle: aws.String(d.receipt)}
	}
	return q.batch(ctx, len(entries), func(lo, hi int) (int, error) {
		out, err := q.client.DeleteMessageBatch(ctx, &sqs.DeleteMessageBatchInput{QueueUrl: &q.url, Entries: entries[lo:hi]})
		if err != nil {
			return 0, err
		}
		return len(out.Failed), nil
	})
}

// hide makes messages invisible for d from now: a retry after back-off, or keeping them while
// a build runs.
func (q *SQSQueue) hide(ctx context.Context, ds []delivery, d time.Duration) error {
	secs := int32(min(max(d, 0), 12*time.Hour) / time.Second)
	entries := make([]types.ChangeMessageVisibilityBatchRequestEntry, len(ds))
	for i, dl := range ds {
		entries[i] = types.ChangeMessageVisibilityBatchRequestEntry{
			Id: aws.String(strconv.Itoa(i)), ReceiptHandle: aws.String(dl.receipt), VisibilityTimeout: secs,
		}
	}
	return q.batch(ctx, len(entries), func(lo, hi int) (int, error) {
		out, err := q.client.ChangeMessageVisibilityBatch(ctx, &sqs.ChangeMessageVisibilityBatchInput{QueueUrl: &q.url, Entries: entries[lo:hi]})
		if err != nil {
			return 0, err
		}
		return len(out.Failed), nil
	})
}

// batch runs call over [0, n) in slices of 10 (the SQS batch limit).
func (q *SQSQueue) batch(ctx context.Context, n int, call func(lo, hi int) (failed int, err error)) error {
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

// updateDepthGauges reports the approximate depth of the queue and of its dead-letter queue.
func (q *SQSQueue) updateDepthGauges(ctx context.Context) error {
	q.dlqOnce.Do(func() { q.dlqURL = q.lookUpDLQ(ctx) })
	queues := map[string]string{"main": q.url}
	if q.dlqURL != "" {
		queues["dead_letter"] = q.dlqURL
	}
	for name, url := range queues {
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
	}
	return nil
}

// lookUpDLQ finds the dead-letter queue named by the queue's redrive policy.
func (q *SQSQueue) lookUpDLQ(ctx context.Context) string {
	out, err := q.client.GetQueueAttributes(ctx, &sqs.GetQueueAttributesInput{
		QueueUrl: &q.url, AttributeNames: []types.QueueAttributeName{types.QueueAttributeNameRedrivePolicy},
	})
	if err != nil {
		q.log.WarnContext(ctx, "read the sync queue's redrive policy", "err", err)
		return ""
	}
	policy := out.Attributes[string(types.QueueAttributeNameRedrivePolicy)]
	if policy == "" {
		q.log.WarnContext(ctx, "the sync queue has no redrive policy: undecodable messages are dropped after repeated receives")
		return ""
	}
	var p struct {
		DeadLetterTargetArn string `json:"deadLetterTargetArn"`
	}
	if err := json.Unmarshal([]byte(policy), &p); err != nil || p.DeadLetterTargetArn == "" {
		return ""
	}
	name := p.DeadLetterTargetArn[strings.LastIndex(p.DeadLetterTargetArn, ":")+1:]
	url, err := q.client.GetQueueUrl(ctx, &sqs.GetQueueUrlInput{QueueName: &name})
	if err != nil {
		q.log.WarnContext(ctx, "look up the sync dead-letter queue", "name", name, "err", err)
		return ""
	}
	return aws.ToString(url.QueueUrl)
}

// hasRedrive reports whether SQS itself moves repeatedly failing messages to a dead-letter
// queue.
func (q *SQSQueue) hasRedrive(ctx context.Context) bool {
	q.dlqOnce.Do(func() { q.dlqURL = q.lookUpDLQ(ctx) })
	return q.dlqURL != ""
}
