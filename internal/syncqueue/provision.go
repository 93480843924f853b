package syncqueue

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	"github.com/aws/aws-sdk-go-v2/service/sqs/types"
)

// QueueSpec is the task queue an operator provisions (docs/operations.md): a FIFO queue whose
// redrive policy moves a message to a FIFO dead-letter queue after MaxReceiveCount receives.
type QueueSpec struct {
	// Name is the queue's name, ending in .fifo; the dead-letter queue is Name with -dlq
	// before the suffix.
	Name string
	// Visibility is the queue's default visibility timeout, in whole seconds (workers ask for
	// SYNC_VISIBILITY on every receive anyway).
	VisibilitySeconds int
	// MaxReceiveCount receives move a message to the dead-letter queue. Builds are retried and
	// dead-lettered in PostgreSQL, and each retry or busy user is a receive, so it is generous.
	MaxReceiveCount int
}

// DefaultQueueSpec returns the production attributes for a queue called name.
func DefaultQueueSpec(name string) QueueSpec {
	return QueueSpec{Name: name, VisibilitySeconds: 15, MaxReceiveCount: 50}
}

// Provisioned names what ProvisionQueue made.
type Provisioned struct {
	QueueURL, DeadLetterURL string
}

// ProvisionQueue creates the dead-letter queue and the task queue, or brings existing ones to
// the spec's attributes: running it twice changes nothing.
func ProvisionQueue(ctx context.Context, client *sqs.Client, spec QueueSpec) (Provisioned, error) {
	if !strings.HasSuffix(spec.Name, ".fifo") || len(spec.Name) > 80 {
		return Provisioned{}, fmt.Errorf("queue name %q: must end in .fifo and have at most 80 characters", spec.Name)
	}
	if spec.MaxReceiveCount < 1 || spec.MaxReceiveCount > 1000 || spec.VisibilitySeconds < 0 || spec.VisibilitySeconds > 43200 {
		return Provisioned{}, errors.New("queue spec: MaxReceiveCount must be 1..1000 and visibility 0..43200 s")
	}
	dlqName := strings.TrimSuffix(spec.Name, ".fifo") + "-dlq.fifo"
	if len(dlqName) > 80 {
		return Provisioned{}, fmt.Errorf("dead-letter queue name %q is longer than 80 characters", dlqName)
	}
	var p Provisioned
	var err error
	if p.DeadLetterURL, err = ensureQueue(ctx, client, dlqName, map[string]string{
		"MessageRetentionPeriod": "1209600", // 14 days, the most SQS keeps: time to look at them
	}); err != nil {
		return p, err
	}
	attrs, err := client.GetQueueAttributes(ctx, &sqs.GetQueueAttributesInput{
		QueueUrl: &p.DeadLetterURL, AttributeNames: []types.QueueAttributeName{types.QueueAttributeNameQueueArn},
	})
	if err != nil {
		return p, fmt.Errorf("dead-letter queue %s: %w", dlqName, err)
	}
	redrive, _ := json.Marshal(map[string]string{
		"deadLetterTargetArn": attrs.Attributes[string(types.QueueAttributeNameQueueArn)],
		"maxReceiveCount":     strconv.Itoa(spec.MaxReceiveCount),
	})
	p.QueueURL, err = ensureQueue(ctx, client, spec.Name, map[string]string{
		"VisibilityTimeout":         strconv.Itoa(spec.VisibilitySeconds),
		"ContentBasedDeduplication": "false", // every message carries its deduplication id
		"RedrivePolicy":             string(redrive),
	})
	return p, err
}

// ensureQueue creates a FIFO queue with attrs, or sets attrs on the existing queue.
func ensureQueue(ctx context.Context, client *sqs.Client, name string, attrs map[string]string) (string, error) {
	create := map[string]string{"FifoQueue": "true"}
	for k, v := range attrs {
		create[k] = v
	}
	out, err := client.CreateQueue(ctx, &sqs.CreateQueueInput{QueueName: &name, Attributes: create})
	if err == nil {
		return aws.ToString(out.QueueUrl), nil
	}
	var exists *types.QueueNameExists
	if !errors.As(err, &exists) {
		return "", fmt.Errorf("create queue %s: %w", name, err)
	}
	// The queue exists with other attributes: bring them to the spec.
	got, err := client.GetQueueUrl(ctx, &sqs.GetQueueUrlInput{QueueName: &name})
	if err != nil {
		return "", fmt.Errorf("queue %s: %w", name, err)
	}
	if _, err := client.SetQueueAttributes(ctx, &sqs.SetQueueAttributesInput{QueueUrl: got.QueueUrl, Attributes: attrs}); err != nil {
		return "", fmt.Errorf("set attributes of queue %s: %w", name, err)
	}
	return aws.ToString(got.QueueUrl), nil
}
