package syncqueue_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	"github.com/aws/aws-sdk-go-v2/service/sqs/types"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/bca-app/backend/internal/outbox"
	"github.com/bca-app/backend/internal/syncqueue"
	"github.com/bca-app/backend/internal/syncsvc"
	"github.com/bca-app/backend/internal/testenv"
)

func TestMain(m *testing.M) { testenv.Main(m) }

// newClient is the real SQS client against endpoint: moto, or a DelayProxy in front of it.
func newClient(endpoint string, opts ...func(*sqs.Options)) *sqs.Client {
	cfg := aws.Config{Region: "us-east-1", Credentials: credentials.NewStaticCredentialsProvider("test", "test", "")}
	opts = append([]func(*sqs.Options){func(o *sqs.Options) { o.BaseEndpoint = aws.String(endpoint) }}, opts...)
	return sqs.NewFromConfig(cfg, opts...)
}

// logBuffer collects a test's log lines; they are printed when the test fails.
type logBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *logBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *logBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// env is what a test of the package works with: a client straight to moto, fresh metrics on a
// registry of the test's own and a logger whose lines the test can read.
type env struct {
	client  *sqs.Client
	metrics *syncsvc.Metrics
	logs    *logBuffer
	log     *slog.Logger
}

func newEnv(t *testing.T) *env {
	t.Helper()
	e := &env{client: newClient(testenv.AWSEndpoint(t)), metrics: syncsvc.NewMetrics(prometheus.NewRegistry()), logs: &logBuffer{}}
	e.log = slog.New(slog.NewTextHandler(e.logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("log of the test:\n%s", e.logs.String())
		}
	})
	return e
}

// provision makes a task queue and its dead-letter queue the way an operator does.
func (e *env) provision(t *testing.T, visibilitySeconds int) syncqueue.Provisioned {
	t.Helper()
	spec := syncqueue.DefaultQueueSpec(testenv.UniqueName("syncqueue") + ".fifo")
	spec.VisibilitySeconds = visibilitySeconds
	p, err := syncqueue.ProvisionQueue(t.Context(), e.client, spec)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// queue is the package's queue at queueURL, reached through client (nil: straight to moto).
func (e *env) queue(t *testing.T, client *sqs.Client, queueURL string) *syncqueue.SQS {
	t.Helper()
	if client == nil {
		client = e.client
	}
	q, err := syncqueue.NewSQS(syncqueue.SQSDeps{Client: client, URL: queueURL, Metrics: e.metrics, Log: e.log})
	if err != nil {
		t.Fatal(err)
	}
	return q
}

// missingQueueURL is the URL a queue would have that was never created.
func missingQueueURL(t *testing.T) string {
	return strings.TrimSuffix(testenv.AWSEndpoint(t), "/") + "/123456789012/" + testenv.UniqueName("missing") + ".fifo"
}

// urlPath is the path of a queue URL: moto names the host the request came to.
func urlPath(t *testing.T, raw string) string {
	t.Helper()
	u, err := url.Parse(raw)
	if err != nil {
		t.Fatal(err)
	}
	return u.Path
}

// calls records the SQS calls that pass a DelayProxy, by action (SendMessageBatch, …): how many
// there were, the entries of each batch call and the last call's input, as the JSON protocol
// sends them.
type calls struct {
	mu      sync.Mutex
	n       map[string]int
	entries map[string][][]map[string]any
	last    map[string]map[string]any
}

// add records r, whose body is body, and returns its action and how many calls of that action
// there were, r included.
func (c *calls) add(r *http.Request, body []byte) (string, int) {
	action := strings.TrimPrefix(r.Header.Get("X-Amz-Target"), "AmazonSQS.")
	var in struct{ Entries []map[string]any }
	_ = json.Unmarshal(body, &in)
	var input map[string]any
	_ = json.Unmarshal(body, &input)
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.n == nil {
		c.n, c.entries, c.last = map[string]int{}, map[string][][]map[string]any{}, map[string]map[string]any{}
	}
	c.last[action] = input
	c.n[action]++
	if in.Entries != nil {
		c.entries[action] = append(c.entries[action], in.Entries)
	}
	return action, c.n[action]
}

func (c *calls) count(action string) int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.n[action]
}

// lastInput is the input of the last call of action.
func (c *calls) lastInput(action string) map[string]any {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.last[action]
}

// batchSizes are the numbers of entries of the action's calls, in order.
func (c *calls) batchSizes(action string) []int {
	c.mu.Lock()
	defer c.mu.Unlock()
	var sizes []int
	for _, es := range c.entries[action] {
		sizes = append(sizes, len(es))
	}
	return sizes
}

// field is the values of one field of the action's entries, over all its calls.
func (c *calls) field(action, name string) []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	var vs []string
	for _, es := range c.entries[action] {
		for _, e := range es {
			vs = append(vs, fmt.Sprint(e[name]))
		}
	}
	return vs
}

// recordedQueue provisions a queue (visibility 15 s) and returns it reached through a proxy
// that records the calls, with the calls and the provisioned URLs.
func (e *env) recordedQueue(t *testing.T) (*syncqueue.SQS, *calls, syncqueue.Provisioned) {
	t.Helper()
	p := e.provision(t, 15)
	_, c, client := proxy(t, nil)
	return e.queue(t, client, p.QueueURL), c, p
}

// proxy puts a DelayProxy in front of moto that records the SQS calls and holds each as long as
// hold says (nil: none), and returns it with an SQS client that goes through it.
func proxy(t *testing.T, hold func(r *http.Request, action string, n int) time.Duration, opts ...func(*sqs.Options)) (*testenv.DelayProxy, *calls, *sqs.Client) {
	t.Helper()
	p := testenv.NewDelayProxy(t, testenv.AWSEndpoint(t))
	c := &calls{}
	p.SetDelay(func(r *http.Request) time.Duration {
		body, err := io.ReadAll(r.Body) // DelayProxy read it already: this reads its copy
		if err != nil {
			return 0
		}
		r.Body = io.NopCloser(bytes.NewReader(body))
		action, n := c.add(r, body)
		if hold == nil {
			return 0
		}
		return hold(r, action, n)
	})
	return p, c, newClient(p.URL, opts...)
}

// depth is the number of messages in the queue at queueURL, visible and in flight (moto's counts are
// exact).
func (e *env) depth(t *testing.T, queueURL string) (visible, inFlight int) {
	t.Helper()
	out, err := e.client.GetQueueAttributes(t.Context(), &sqs.GetQueueAttributesInput{
		QueueUrl: aws.String(queueURL),
		AttributeNames: []types.QueueAttributeName{
			types.QueueAttributeNameApproximateNumberOfMessages, types.QueueAttributeNameApproximateNumberOfMessagesNotVisible,
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	visible, _ = strconv.Atoi(out.Attributes[string(types.QueueAttributeNameApproximateNumberOfMessages)])
	inFlight, _ = strconv.Atoi(out.Attributes[string(types.QueueAttributeNameApproximateNumberOfMessagesNotVisible)])
	return visible, inFlight
}

// total is the number of messages in the queue at queueURL.
func (e *env) total(t *testing.T, queueURL string) int {
	t.Helper()
	v, f := e.depth(t, queueURL)
	return v + f
}

// receiveN receives until n deliveries came, hiding each for visibility, and fails the test
// after 10 s. It does not acknowledge them.
func receiveN(t *testing.T, q *syncqueue.SQS, n int, visibility time.Duration) []syncqueue.Delivery {
	t.Helper()
	var got []syncqueue.Delivery
	testenv.Eventually(t, 10*time.Second, func() bool {
		ds, err := q.Receive(t.Context(), time.Second, visibility)
		if err != nil {
			t.Fatal(err)
		}
		got = append(got, ds...)
		return len(got) >= n
	}, "%d deliveries (have %d)", n, len(got))
	if len(got) != n {
		t.Fatalf("received %d deliveries; want %d", len(got), n)
	}
	return got
}

// drain receives and acknowledges until n deliveries came, in the order SQS handed them out,
// and fails the test after 10 s.
func drain(t *testing.T, q *syncqueue.SQS, n int) []syncqueue.Delivery {
	t.Helper()
	var got []syncqueue.Delivery
	testenv.Eventually(t, 10*time.Second, func() bool {
		ds, err := q.Receive(t.Context(), time.Second, 30*time.Second)
		if err != nil {
			t.Fatal(err)
		}
		if len(ds) > 0 {
			if err := q.Ack(t.Context(), ds); err != nil {
				t.Fatal(err)
			}
		}
		got = append(got, ds...)
		return len(got) >= n
	}, "%d deliveries (have %d)", n, len(got))
	if len(got) != n {
		t.Fatalf("received %d deliveries; want %d", len(got), n)
	}
	return got
}

// tasks are the deliveries' tasks as "user:version", sorted.
func tasks(t *testing.T, ds []syncqueue.Delivery) []string {
	t.Helper()
	out := make([]string, len(ds))
	for i, d := range ds {
		if !d.Valid {
			t.Fatalf("delivery %s is not a valid task", d.ID)
		}
		out[i] = fmt.Sprintf("%d:%d", d.UserID, d.WantedVersion)
	}
	slices.Sort(out)
	return out
}

// bumpsOf returns one uncovered bump per user 1..n, user u owed version 10*u.
func bumpsOf(n int) (bumps []outbox.Bump, want []string) {
	for u := int64(1); u <= int64(n); u++ {
		bumps = append(bumps, outbox.Bump{UserID: u, Version: 10 * u})
		want = append(want, fmt.Sprintf("%d:%d", u, 10*u))
	}
	slices.Sort(want)
	return bumps, want
}

// queueAttributes returns every attribute of the queue at queueURL.
func (e *env) queueAttributes(t *testing.T, queueURL string) map[string]string {
	t.Helper()
	out, err := e.client.GetQueueAttributes(t.Context(), &sqs.GetQueueAttributesInput{
		QueueUrl: aws.String(queueURL), AttributeNames: []types.QueueAttributeName{types.QueueAttributeNameAll},
	})
	if err != nil {
		t.Fatal(err)
	}
	return out.Attributes
}

// redrive reads a queue's redrive policy: the dead-letter queue's ARN and maxReceiveCount.
func redrive(t *testing.T, attrs map[string]string) (arn, maxReceives string) {
	t.Helper()
	var p map[string]any
	if err := json.Unmarshal([]byte(attrs["RedrivePolicy"]), &p); err != nil {
		t.Fatalf("redrive policy %q: %v", attrs["RedrivePolicy"], err)
	}
	return fmt.Sprint(p["deadLetterTargetArn"]), fmt.Sprint(p["maxReceiveCount"])
}

// createFIFO creates a bare FIFO queue (no redrive policy) and returns its URL.
func (e *env) createFIFO(t *testing.T, name string) string {
	t.Helper()
	out, err := e.client.CreateQueue(t.Context(), &sqs.CreateQueueInput{
		QueueName: aws.String(name), Attributes: map[string]string{"FifoQueue": "true"},
	})
	if err != nil {
		t.Fatal(err)
	}
	return aws.ToString(out.QueueUrl)
}

// ---- ProvisionQueue ----

// TestProvisionQueueCreatesAFIFOQueueWithARedrivePolicyToItsDeadLetterQueue: the task queue of
// docs/sync.md §4.2 is FIFO with the spec's visibility, deduplicates by the ids the producer
// sets (not by content), and hands a message to the "-dlq.fifo" queue after MaxReceiveCount
// receives; the dead-letter queue keeps messages 14 days.
func TestProvisionQueueCreatesAFIFOQueueWithARedrivePolicyToItsDeadLetterQueue(t *testing.T) {
	e := newEnv(t)
	base := testenv.UniqueName("prov")
	spec := syncqueue.QueueSpec{Name: base + ".fifo", VisibilitySeconds: 7, MaxReceiveCount: 3}
	p, err := syncqueue.ProvisionQueue(t.Context(), e.client, spec)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasSuffix(p.QueueURL, "/"+base+".fifo") || !strings.HasSuffix(p.DeadLetterURL, "/"+base+"-dlq.fifo") {
		t.Fatalf("provisioned %+v; want queues %s.fifo and %s-dlq.fifo", p, base, base)
	}
	main, dlq := e.queueAttributes(t, p.QueueURL), e.queueAttributes(t, p.DeadLetterURL)
	if main["FifoQueue"] != "true" || main["VisibilityTimeout"] != "7" || main["ContentBasedDeduplication"] != "false" {
		t.Errorf("task queue attributes %v; want FIFO, visibility 7, no content-based deduplication", main)
	}
	arn, maxReceives := redrive(t, main)
	if arn != dlq["QueueArn"] || maxReceives != "3" {
		t.Errorf("redrive policy to %s after %s receives; want to %s after 3", arn, maxReceives, dlq["QueueArn"])
	}
	if dlq["FifoQueue"] != "true" || dlq["MessageRetentionPeriod"] != "1209600" {
		t.Errorf("dead-letter queue attributes %v; want FIFO, retention 1209600 s", dlq)
	}
}

// TestProvisionQueueTwiceChangesNothingAndAThirdRunAppliesANewSpec: running it again returns the
// same queues with the same attributes; a run with other attributes brings the existing queues
// to them instead of failing or making new ones.
func TestProvisionQueueTwiceChangesNothingAndAThirdRunAppliesANewSpec(t *testing.T) {
	e := newEnv(t)
	spec := syncqueue.DefaultQueueSpec(testenv.UniqueName("prov") + ".fifo")
	first, err := syncqueue.ProvisionQueue(t.Context(), e.client, spec)
	if err != nil {
		t.Fatal(err)
	}
	before := e.queueAttributes(t, first.QueueURL)
	second, err := syncqueue.ProvisionQueue(t.Context(), e.client, spec)
	if err != nil {
		t.Fatalf("second run: %v", err)
	}
	if second != first {
		t.Fatalf("second run provisioned %+v; want the first run's %+v", second, first)
	}
	after := e.queueAttributes(t, first.QueueURL)
	for _, k := range []string{"QueueArn", "VisibilityTimeout", "RedrivePolicy", "ContentBasedDeduplication", "FifoQueue"} {
		if before[k] != after[k] {
			t.Errorf("attribute %s changed from %q to %q by the second run", k, before[k], after[k])
		}
	}

	spec.VisibilitySeconds, spec.MaxReceiveCount = 9, 7
	third, err := syncqueue.ProvisionQueue(t.Context(), e.client, spec)
	if err != nil {
		t.Fatalf("run with a new spec: %v", err)
	}
	if third != first {
		t.Fatalf("run with a new spec provisioned %+v; want the existing %+v", third, first)
	}
	attrs := e.queueAttributes(t, first.QueueURL)
	_, maxReceives := redrive(t, attrs)
	if attrs["VisibilityTimeout"] != "9" || maxReceives != "7" {
		t.Errorf("after the new spec: visibility %s, maxReceiveCount %s; want 9 and 7", attrs["VisibilityTimeout"], maxReceives)
	}
}

// TestProvisionQueueRefusesAnInvalidSpecWithoutCreatingAnything: the name must end in .fifo and
// both names must fit SQS's 80 characters; MaxReceiveCount and visibility must be in SQS's
// ranges. The spec is checked before any SQS call, so a refused spec creates no queue.
func TestProvisionQueueRefusesAnInvalidSpecWithoutCreatingAnything(t *testing.T) {
	e := newEnv(t)
	_, c, client := proxy(t, nil)
	base := testenv.UniqueName("bad")
	long := base + strings.Repeat("x", 75-len(base)) // + ".fifo" = 80 characters; the DLQ's 84
	for _, spec := range []syncqueue.QueueSpec{
		{Name: base, VisibilitySeconds: 15, MaxReceiveCount: 5},
		{Name: base + strings.Repeat("x", 80) + ".fifo", VisibilitySeconds: 15, MaxReceiveCount: 5},
		{Name: long + ".fifo", VisibilitySeconds: 15, MaxReceiveCount: 5},
		{Name: base + ".fifo", VisibilitySeconds: 15, MaxReceiveCount: 0},
		{Name: base + ".fifo", VisibilitySeconds: 15, MaxReceiveCount: 1001},
		{Name: base + ".fifo", VisibilitySeconds: -1, MaxReceiveCount: 5},
		{Name: base + ".fifo", VisibilitySeconds: 43201, MaxReceiveCount: 5},
	} {
		if p, err := syncqueue.ProvisionQueue(t.Context(), client, spec); err == nil {
			t.Errorf("spec %+v was accepted: %+v", spec, p)
		}
		if n := c.count("CreateQueue"); n != 0 {
			t.Fatalf("spec %+v: %d CreateQueue calls before it was refused", spec, n)
		}
	}
	out, err := e.client.ListQueues(t.Context(), &sqs.ListQueuesInput{QueueNamePrefix: aws.String(base)})
	if err != nil {
		t.Fatal(err)
	}
	if len(out.QueueUrls) != 0 {
		t.Errorf("refused specs created queues %v", out.QueueUrls)
	}
}

// ---- DeadLetterQueue, HasRedrive, Check ----

// TestAProvisionedQueueHasItsDeadLetterQueueAndIsReady: DeadLetterQueue follows the redrive
// policy to the queue ProvisionQueue made, HasRedrive says so, and Check passes.
func TestAProvisionedQueueHasItsDeadLetterQueueAndIsReady(t *testing.T) {
	e := newEnv(t)
	p := e.provision(t, 15)
	q := e.queue(t, nil, p.QueueURL)
	dlq, err := q.DeadLetterQueue(t.Context())
	if err != nil || dlq != p.DeadLetterURL {
		t.Fatalf("DeadLetterQueue = %q, %v; want %q", dlq, err, p.DeadLetterURL)
	}
	if !q.HasRedrive(t.Context()) {
		t.Error("HasRedrive is false for a provisioned queue")
	}
	if err := q.Check(t.Context()); err != nil {
		t.Errorf("Check of a provisioned queue: %v", err)
	}
}

// TestDeadLetterQueueIsLookedUpOnceFoundAndAgainAfterAFailure: a found URL is remembered (one
// lookup for many calls); a queue without a redrive policy gives ErrNoDeadLetterQueue, and
// once the policy is set the next call finds it.
func TestDeadLetterQueueIsLookedUpOnceFoundAndAgainAfterAFailure(t *testing.T) {
	e := newEnv(t)
	name := testenv.UniqueName("nodlq")
	plainURL := e.createFIFO(t, name+".fifo")
	dlqURL := e.createFIFO(t, name+"-dlq.fifo")
	_, c, client := proxy(t, nil)
	q := e.queue(t, client, plainURL)

	if _, err := q.DeadLetterQueue(t.Context()); !errors.Is(err, syncqueue.ErrNoDeadLetterQueue) {
		t.Fatalf("DeadLetterQueue of a queue without redrive policy: %v; want ErrNoDeadLetterQueue", err)
	}
	if q.HasRedrive(t.Context()) {
		t.Error("HasRedrive is true without a redrive policy")
	}
	if !strings.Contains(e.logs.String(), "no dead-letter queue") {
		t.Errorf("HasRedrive logged no warning; log:\n%s", e.logs.String())
	}
	if err := q.Check(t.Context()); !errors.Is(err, syncqueue.ErrNoDeadLetterQueue) || !strings.Contains(err.Error(), "dead-letter queue") {
		t.Errorf("Check without a redrive policy: %v; want the dead-letter queue named as missing", err)
	}

	arn := e.queueAttributes(t, dlqURL)["QueueArn"]
	policy, _ := json.Marshal(map[string]string{"deadLetterTargetArn": arn, "maxReceiveCount": "5"})
	if _, err := e.client.SetQueueAttributes(t.Context(), &sqs.SetQueueAttributesInput{
		QueueUrl: aws.String(plainURL), Attributes: map[string]string{"RedrivePolicy": string(policy)},
	}); err != nil {
		t.Fatal(err)
	}
	lookups := c.count("GetQueueUrl")
	for i := range 3 {
		// Through the proxy moto answers with the proxy's host: compare the paths.
		if got, err := q.DeadLetterQueue(t.Context()); err != nil || urlPath(t, got) != urlPath(t, dlqURL) {
			t.Fatalf("call %d after the policy was set: %q, %v; want %q", i+1, got, err, dlqURL)
		}
	}
	if n := c.count("GetQueueUrl") - lookups; n != 1 {
		t.Errorf("3 calls looked the dead-letter queue up %d times; want once", n)
	}
	// The queue is looked up in the account its ARN names (arn:aws:sqs:region:account:name),
	// which need not be the caller's.
	in := c.lastInput("GetQueueUrl")
	if parts := strings.Split(arn, ":"); len(parts) != 6 || in["QueueName"] != parts[5] || in["QueueOwnerAWSAccountId"] != parts[4] {
		t.Errorf("GetQueueUrl input %v; want the name and the owner account of %s", in, arn)
	}
}

// TestCheckNamesTheMissingQueue: Check fails for a queue that does not exist, naming its URL,
// and for a dead-letter queue that was deleted, naming that one; it then forgets the
// remembered dead-letter URL, so DeadLetterQueue looks it up again and fails too.
func TestCheckNamesTheMissingQueue(t *testing.T) {
	e := newEnv(t)
	missing := missingQueueURL(t)
	if err := e.queue(t, nil, missing).Check(t.Context()); err == nil || !strings.Contains(err.Error(), missing) {
		t.Errorf("Check of a missing queue: %v; want an error naming %s", err, missing)
	}

	p := e.provision(t, 15)
	q := e.queue(t, nil, p.QueueURL)
	if err := q.Check(t.Context()); err != nil {
		t.Fatal(err)
	}
	if _, err := e.client.DeleteQueue(t.Context(), &sqs.DeleteQueueInput{QueueUrl: aws.String(p.DeadLetterURL)}); err != nil {
		t.Fatal(err)
	}
	err := q.Check(t.Context())
	if err == nil || !strings.Contains(err.Error(), "dead-letter queue "+p.DeadLetterURL) {
		t.Fatalf("Check with the dead-letter queue deleted: %v; want an error naming %s", err, p.DeadLetterURL)
	}
	if got, err := q.DeadLetterQueue(t.Context()); err == nil {
		t.Errorf("DeadLetterQueue after a failed Check = %q from memory; want a new lookup that fails", got)
	}
}

// TestNewSQSRefusesMissingDependencies: a queue without client, URL, metrics or log is refused
// at construction, not at the first call.
func TestNewSQSRefusesMissingDependencies(t *testing.T) {
	e := newEnv(t)
	if _, err := syncqueue.NewSQS(syncqueue.SQSDeps{URL: "http://q", Metrics: e.metrics, Log: e.log}); err == nil || !strings.Contains(err.Error(), "Client") {
		t.Errorf("without a client: %v; want an error naming Client", err)
	}
	if _, err := syncqueue.NewSQS(syncqueue.SQSDeps{Client: e.client, Metrics: e.metrics, Log: e.log}); err == nil {
		t.Error("without a URL: accepted")
	}
	if _, err := syncqueue.NewSQS(syncqueue.SQSDeps{Client: e.client, URL: "http://q"}); err == nil ||
		!strings.Contains(err.Error(), "Log") || !strings.Contains(err.Error(), "Metrics") {
		t.Errorf("without metrics and log: %v; want an error naming both", err)
	}
}

// ---- Send, Notify ----

// TestSendPutsOneMessagePerBumpInItsUsersGroup: the body is {user_id, wanted_version}, the
// group is the user id and the deduplication id is user id and version (docs/sync.md §4.2).
func TestSendPutsOneMessagePerBumpInItsUsersGroup(t *testing.T) {
	e := newEnv(t)
	p := e.provision(t, 15)
	q := e.queue(t, nil, p.QueueURL)
	if err := q.Send(t.Context(), []outbox.Bump{{UserID: 101, Version: 3}, {UserID: 102, Version: 7}}, ""); err != nil {
		t.Fatal(err)
	}
	want := map[string]struct{ group, dedup, body string }{
		"101": {"101", "101-3", `{"user_id":101,"wanted_version":3}`},
		"102": {"102", "102-7", `{"user_id":102,"wanted_version":7}`},
	}
	got := map[string]bool{}
	testenv.Eventually(t, 10*time.Second, func() bool {
		out, err := e.client.ReceiveMessage(t.Context(), &sqs.ReceiveMessageInput{
			QueueUrl: aws.String(p.QueueURL), MaxNumberOfMessages: 10, WaitTimeSeconds: 1, VisibilityTimeout: 30,
			MessageSystemAttributeNames: []types.MessageSystemAttributeName{types.MessageSystemAttributeNameAll},
		})
		if err != nil {
			t.Fatal(err)
		}
		for _, m := range out.Messages {
			group := m.Attributes["MessageGroupId"]
			w, ok := want[group]
			if !ok || got[group] {
				t.Fatalf("unexpected message in group %q: %s", group, aws.ToString(m.Body))
			}
			got[group] = true
			if aws.ToString(m.Body) != w.body || m.Attributes["MessageDeduplicationId"] != w.dedup {
				t.Errorf("group %s: body %s, deduplication id %q; want %s, %q", group, aws.ToString(m.Body), m.Attributes["MessageDeduplicationId"], w.body, w.dedup)
			}
		}
		return len(got) == len(want)
	}, "both messages")
	if n := e.total(t, p.QueueURL); n != 2 {
		t.Errorf("queue holds %d messages; want 2", n)
	}
}

// TestSendKeepsOneUsersVersionsInOrder: one user's messages form one FIFO group, so they come in
// the order they were sent.
func TestSendKeepsOneUsersVersionsInOrder(t *testing.T) {
	e := newEnv(t)
	p := e.provision(t, 15)
	q := e.queue(t, nil, p.QueueURL)
	if err := q.Send(t.Context(), []outbox.Bump{{UserID: 5, Version: 1}, {UserID: 6, Version: 1}, {UserID: 5, Version: 2}, {UserID: 5, Version: 3}}, ""); err != nil {
		t.Fatal(err)
	}
	var versions []int64
	for _, d := range drain(t, q, 4) {
		if d.UserID == 5 {
			versions = append(versions, d.WantedVersion)
		}
	}
	if !slices.Equal(versions, []int64{1, 2, 3}) {
		t.Errorf("user 5's versions came as %v; want [1 2 3]", versions)
	}
}

// TestSendSplitsIntoBatchesOfTen: 25 bumps are SendMessageBatch calls of 10, 10 and 5 entries
// (SQS takes at most 10 in one) and all 25 messages arrive.
func TestSendSplitsIntoBatchesOfTen(t *testing.T) {
	e := newEnv(t)
	q, c, p := e.recordedQueue(t)
	bumps, want := bumpsOf(25)
	if err := q.Send(t.Context(), bumps, ""); err != nil {
		t.Fatal(err)
	}
	if sizes := c.batchSizes("SendMessageBatch"); !slices.Equal(sizes, []int{10, 10, 5}) {
		t.Errorf("25 bumps went out in SendMessageBatch calls of %v entries; want [10 10 5]", sizes)
	}
	if got := tasks(t, drain(t, e.queue(t, nil, p.QueueURL), 25)); !slices.Equal(got, want) {
		t.Errorf("received %v; want %v", got, want)
	}
	if n := e.total(t, p.QueueURL); n != 0 {
		t.Errorf("%d messages left after receiving the 25", n)
	}
}

// TestSendDropsARepeatedSendButNotADeliberateResend: the deduplication id makes a retried send
// of the same bump no second task; a send with a dedup suffix (the sweeper's re-send) is one.
func TestSendDropsARepeatedSendButNotADeliberateResend(t *testing.T) {
	e := newEnv(t)
	p := e.provision(t, 15)
	q := e.queue(t, nil, p.QueueURL)
	b := []outbox.Bump{{UserID: 9, Version: 4}}
	for range 2 {
		if err := q.Send(t.Context(), b, ""); err != nil {
			t.Fatal(err)
		}
	}
	if n := e.total(t, p.QueueURL); n != 1 {
		t.Fatalf("the same bump sent twice is %d messages; want 1", n)
	}
	if err := q.Send(t.Context(), b, "-resend-1"); err != nil {
		t.Fatal(err)
	}
	if n := e.total(t, p.QueueURL); n != 2 {
		t.Fatalf("after a re-send with a suffix the queue holds %d messages; want 2", n)
	}
	if got := tasks(t, drain(t, q, 2)); !slices.Equal(got, []string{"9:4", "9:4"}) {
		t.Errorf("received %v; want the task twice", got)
	}
}

// TestSendReturnsAndCountsTheBumpsSQSDidNotTake: every bump of a failed batch is counted in
// bca_sync_notify_failures_total, and the error is returned.
func TestSendReturnsAndCountsTheBumpsSQSDidNotTake(t *testing.T) {
	e := newEnv(t)
	q := e.queue(t, nil, missingQueueURL(t))
	bumps, _ := bumpsOf(12)
	if err := q.Send(t.Context(), bumps, ""); err == nil {
		t.Fatal("Send to a missing queue succeeded")
	}
	if n := testutil.ToFloat64(e.metrics.NotifyFailures); n != 12 {
		t.Errorf("notify failures = %v; want 12", n)
	}
}

// TestNotifySendsOnlyTheBumpsThatAreTasks: covered bumps (docs/sync.md §4.2) send nothing; only
// the uncovered ones become messages, and a call with only covered bumps calls no SQS at all.
// Bumps are not merged otherwise: each uncovered bump is a message.
func TestNotifySendsOnlyTheBumpsThatAreTasks(t *testing.T) {
	e := newEnv(t)
	q, c, p := e.recordedQueue(t)

	q.Notify(t.Context(), []outbox.Bump{{UserID: 1, Version: 1, Covered: true}, {UserID: 3, Version: 2, Covered: true}})
	if n := c.count("SendMessageBatch"); n != 0 {
		t.Errorf("only covered bumps made %d SendMessageBatch calls; want none", n)
	}
	q.Notify(t.Context(), []outbox.Bump{
		{UserID: 1, Version: 2, Covered: true}, {UserID: 2, Version: 4}, {UserID: 3, Version: 3, Covered: true}, {UserID: 2, Version: 5},
	})
	if n := e.total(t, p.QueueURL); n != 2 {
		t.Fatalf("queue holds %d messages; want the 2 uncovered bumps", n)
	}
	if got := tasks(t, drain(t, e.queue(t, nil, p.QueueURL), 2)); !slices.Equal(got, []string{"2:4", "2:5"}) {
		t.Errorf("received %v; want [2:4 2:5]", got)
	}
}

// TestNotifyDoesNotWaitForAHungSQSForever: Notify waits for SQS at most its timeout (3 s), then
// logs and counts the bumps as failed; it returns no error.
func TestNotifyDoesNotWaitForAHungSQSForever(t *testing.T) {
	e := newEnv(t)
	p := e.provision(t, 15)
	_, _, client := proxy(t, func(_ *http.Request, action string, _ int) time.Duration {
		if action == "SendMessageBatch" {
			return time.Minute // longer than the test waits: only Notify's deadline ends it
		}
		return 0
	})
	q := e.queue(t, client, p.QueueURL)
	done := make(chan struct{})
	go func() {
		defer close(done)
		q.Notify(t.Context(), []outbox.Bump{{UserID: 1, Version: 1}, {UserID: 2, Version: 1}})
	}()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("Notify still waiting for a hung SQS after 10 s")
	}
	if n := testutil.ToFloat64(e.metrics.NotifyFailures); n != 2 {
		t.Errorf("notify failures = %v; want 2", n)
	}
	if !strings.Contains(e.logs.String(), "send sync tasks") {
		t.Errorf("the failure was not logged; log:\n%s", e.logs.String())
	}
}

// TestNotifySendsEvenAfterTheRequestContextEnds: Notify runs after commit, when the request may
// be gone; its send does not inherit the request's cancellation.
func TestNotifySendsEvenAfterTheRequestContextEnds(t *testing.T) {
	e := newEnv(t)
	p := e.provision(t, 15)
	q := e.queue(t, nil, p.QueueURL)
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	q.Notify(ctx, []outbox.Bump{{UserID: 4, Version: 8}})
	if n := e.total(t, p.QueueURL); n != 1 {
		t.Fatalf("queue holds %d messages; want 1", n)
	}
	if n := testutil.ToFloat64(e.metrics.NotifyFailures); n != 0 {
		t.Errorf("notify failures = %v; want 0", n)
	}
}

// ---- Receive, Decode, Ack, Hide, KeepHidden ----

// TestDecodeReadsATaskAndMarksAnythingElseInvalid: Decode keeps the message's id and receipt,
// reads the receive count, and marks a body valid only if it is JSON with a positive user id.
func TestDecodeReadsATaskAndMarksAnythingElseInvalid(t *testing.T) {
	d := syncqueue.Decode("id-1", "receipt-1", `{"user_id":42,"wanted_version":7}`, "3")
	if d != (syncqueue.Delivery{ID: "id-1", Receipt: "receipt-1", UserID: 42, WantedVersion: 7, Valid: true, Receives: 3}) {
		t.Errorf("Decode of a task = %+v", d)
	}
	if d := syncqueue.Decode("i", "r", `{"user_id":42,"wanted_version":7,"extra":true}`, ""); !d.Valid || d.UserID != 42 || d.Receives != 0 {
		t.Errorf("Decode with an unknown field and no receive count = %+v; want a valid task, 0 receives", d)
	}
	for _, body := range []string{
		"", "not json", "null", "{}", `[42, 7]`, `{"user_id":0,"wanted_version":7}`, `{"user_id":-3,"wanted_version":7}`,
		`{"user_id":"42","wanted_version":7}`, `{"user_id":4.5,"wanted_version":7}`, `{"user_id":42,"wanted_version":"7"}`,
	} {
		if d := syncqueue.Decode("id-2", "receipt-2", body, "x"); d.Valid || d.ID != "id-2" || d.Receipt != "receipt-2" {
			t.Errorf("Decode(%q) = %+v; want invalid, with its id and receipt", body, d)
		}
	}
}

// TestReceiveHandsOutWhatWasSentAndMarksAPoisonMessage: a delivery carries the sent task and its
// receive count; a body that is not a task arrives as an invalid delivery, not an error.
func TestReceiveHandsOutWhatWasSentAndMarksAPoisonMessage(t *testing.T) {
	e := newEnv(t)
	p := e.provision(t, 15)
	q := e.queue(t, nil, p.QueueURL)
	if err := q.Send(t.Context(), []outbox.Bump{{UserID: 77, Version: 12}}, ""); err != nil {
		t.Fatal(err)
	}
	if _, err := e.client.SendMessage(t.Context(), &sqs.SendMessageInput{
		QueueUrl: aws.String(p.QueueURL), MessageBody: aws.String("poison"),
		MessageGroupId: aws.String("poison"), MessageDeduplicationId: aws.String("poison-1"),
	}); err != nil {
		t.Fatal(err)
	}
	var valid, invalid []syncqueue.Delivery
	for _, d := range receiveN(t, q, 2, 30*time.Second) {
		if d.ID == "" || d.Receipt == "" || d.Receives != 1 {
			t.Errorf("delivery %+v; want an id, a receipt and 1 receive", d)
		}
		if d.Valid {
			valid = append(valid, d)
		} else {
			invalid = append(invalid, d)
		}
	}
	if len(valid) != 1 || valid[0].UserID != 77 || valid[0].WantedVersion != 12 || len(invalid) != 1 {
		t.Errorf("valid %+v, invalid %+v; want the task 77:12 and one poison message", valid, invalid)
	}
}

// TestAckDeletesTheAcknowledgedMessagesOnly: an acknowledged message never comes back, while one
// that was received and not acknowledged reappears when its visibility ends.
func TestAckDeletesTheAcknowledgedMessagesOnly(t *testing.T) {
	e := newEnv(t)
	p := e.provision(t, 15)
	q := e.queue(t, nil, p.QueueURL)
	if err := q.Send(t.Context(), []outbox.Bump{{UserID: 1, Version: 1}, {UserID: 2, Version: 1}}, ""); err != nil {
		t.Fatal(err)
	}
	ds := receiveN(t, q, 2, time.Second)
	acked, kept := ds[0], ds[1]
	if acked.UserID == kept.UserID {
		t.Fatalf("received user %d's message twice before the other one", acked.UserID)
	}
	if err := q.Ack(t.Context(), []syncqueue.Delivery{acked}); err != nil {
		t.Fatal(err)
	}
	var back []syncqueue.Delivery
	testenv.Eventually(t, 10*time.Second, func() bool {
		got, err := q.Receive(t.Context(), time.Second, 30*time.Second)
		if err != nil {
			t.Fatal(err)
		}
		back = append(back, got...)
		return len(back) > 0
	}, "the unacknowledged message back after its 1 s visibility")
	if len(back) != 1 || back[0].UserID != kept.UserID || back[0].Receives != 2 {
		t.Fatalf("after the visibility ended came %+v; want only user %d's message, received twice", back, kept.UserID)
	}
	if err := q.Ack(t.Context(), back); err != nil {
		t.Fatal(err)
	}
	if n := e.total(t, p.QueueURL); n != 0 {
		t.Errorf("%d messages left after both were acknowledged", n)
	}
}

// TestAckReportsAReceiptSQSRefused: entries SQS lists as failed make Ack fail.
func TestAckReportsAReceiptSQSRefused(t *testing.T) {
	e := newEnv(t)
	p := e.provision(t, 15)
	q := e.queue(t, nil, p.QueueURL)
	if err := q.Ack(t.Context(), []syncqueue.Delivery{{ID: "x", Receipt: "not-a-receipt"}}); err == nil {
		t.Error("Ack of an unknown receipt handle succeeded")
	}
	if err := q.Ack(t.Context(), nil); err != nil {
		t.Errorf("Ack of nothing: %v", err)
	}
}

// TestHideZeroOrLessMakesAMessageVisibleAgainAtOnce: Hide(0) (a build cut off by a stop,
// docs/sync.md §4.6) hands the message out again at once, as does a negative duration. SQS
// takes whole seconds, and a part of one counts as a whole: a back-off of 0.9 s must not come
// back at once, nor 1.5 s after 1 s.
func TestHideZeroOrLessMakesAMessageVisibleAgainAtOnce(t *testing.T) {
	e := newEnv(t)
	q, c, _ := e.recordedQueue(t)
	if err := q.Send(t.Context(), []outbox.Bump{{UserID: 3, Version: 1}}, ""); err != nil {
		t.Fatal(err)
	}
	ds := receiveN(t, q, 1, time.Minute)
	if again, err := q.Receive(t.Context(), 0, time.Minute); err != nil || len(again) != 0 {
		t.Fatalf("a hidden message was handed out again: %+v, %v", again, err)
	}
	for i, d := range []time.Duration{0, -time.Second} {
		if err := q.Hide(t.Context(), ds, d); err != nil {
			t.Fatal(err)
		}
		// Visible now: a receive without waiting gets it.
		again, err := q.Receive(t.Context(), 0, time.Minute)
		if err != nil {
			t.Fatal(err)
		}
		if len(again) != 1 || again[0].UserID != 3 || again[0].Receives != i+2 {
			t.Fatalf("after Hide(%v): %+v; want the message, receive %d", d, again, i+2)
		}
		ds = again
	}
	for _, d := range []time.Duration{900 * time.Millisecond, 1500 * time.Millisecond, time.Second} {
		if err := q.Hide(t.Context(), ds, d); err != nil {
			t.Fatal(err)
		}
	}
	if again, err := q.Receive(t.Context(), 0, time.Minute); err != nil || len(again) != 0 {
		t.Errorf("a message hidden for 1 s was handed out again at once: %+v, %v", again, err)
	}
	// SQS refuses a negative visibility (moto does not check): Hide sends 0 for both.
	if got := c.field("ChangeMessageVisibilityBatch", "VisibilityTimeout"); !slices.Equal(got, []string{"0", "0", "1", "2", "1"}) {
		t.Errorf("Hide(0), Hide(-1s), Hide(0.9s), Hide(1.5s) and Hide(1s) sent visibility timeouts %v; want [0 0 1 2 1]", got)
	}
}

// TestAckAndHideTakeMoreThanTenDeliveries: both split their calls into SQS's batches of 10.
func TestAckAndHideTakeMoreThanTenDeliveries(t *testing.T) {
	e := newEnv(t)
	q, c, p := e.recordedQueue(t)
	bumps, want := bumpsOf(15)
	if err := q.Send(t.Context(), bumps, ""); err != nil {
		t.Fatal(err)
	}
	ds := receiveN(t, q, 15, time.Minute)
	if err := q.Hide(t.Context(), ds, 0); err != nil {
		t.Fatalf("Hide 15 deliveries for 0: %v", err)
	}
	if v, f := e.depth(t, p.QueueURL); v != 15 || f != 0 {
		t.Fatalf("after Hide(0) of 15: %d visible, %d in flight; want 15 visible", v, f)
	}
	ds = receiveN(t, q, 15, time.Minute)
	if got := tasks(t, ds); !slices.Equal(got, want) {
		t.Errorf("received %v; want %v", got, want)
	}
	if err := q.Ack(t.Context(), ds); err != nil {
		t.Fatalf("Ack 15 deliveries: %v", err)
	}
	if n := e.total(t, p.QueueURL); n != 0 {
		t.Errorf("%d messages left after acknowledging all 15", n)
	}
	for _, action := range []string{"ChangeMessageVisibilityBatch", "DeleteMessageBatch"} {
		if sizes := c.batchSizes(action); !slices.Equal(sizes, []int{10, 5}) {
			t.Errorf("%s calls of %v entries; want [10 5]", action, sizes)
		}
	}
}

// TestKeepHiddenHoldsMessagesPastTheirVisibilityUntilStopped: the heartbeat keeps a message
// from a second consumer for more than twice its visibility; after stop it makes no more calls
// and the message comes back within one visibility window.
func TestKeepHiddenHoldsMessagesPastTheirVisibilityUntilStopped(t *testing.T) {
	e := newEnv(t)
	q, c, p := e.recordedQueue(t)
	other := e.queue(t, nil, p.QueueURL) // a second consumer
	if err := q.Send(t.Context(), []outbox.Bump{{UserID: 8, Version: 2}}, ""); err != nil {
		t.Fatal(err)
	}
	const visibility = 2 * time.Second
	ds := receiveN(t, q, 1, visibility)
	stop := q.KeepHidden(t.Context(), ds, visibility)
	watched := time.Now()
	testenv.WaitFor(5*time.Second, func() bool { // 2.5 visibility windows
		got, err := other.Receive(t.Context(), 0, visibility)
		if err != nil {
			t.Fatal(err)
		}
		if len(got) > 0 {
			stop()
			t.Fatalf("a second consumer received the message %v after it was received, while the heartbeat ran", time.Since(watched).Round(time.Millisecond))
		}
		return false
	})
	stop()
	beats := c.count("ChangeMessageVisibilityBatch")
	if beats < 3 {
		t.Errorf("%d heartbeats in 5 s; want one every third of the 2 s visibility", beats)
	}
	testenv.Eventually(t, 10*time.Second, func() bool {
		got, err := other.Receive(t.Context(), time.Second, time.Minute)
		if err != nil {
			t.Fatal(err)
		}
		return len(got) == 1 && got[0].UserID == 8
	}, "the message back after the heartbeat stopped")
	if n := c.count("ChangeMessageVisibilityBatch"); n != beats {
		t.Errorf("%d heartbeats after stop returned", n-beats)
	}
}

// ---- UpdateDepthGauges ----

// TestUpdateDepthGaugesReportsBothQueues: bca_sync_queue_messages carries the visible and in
// flight messages of the task queue and of its dead-letter queue.
func TestUpdateDepthGaugesReportsBothQueues(t *testing.T) {
	e := newEnv(t)
	p := e.provision(t, 15)
	q := e.queue(t, nil, p.QueueURL)
	bumps, _ := bumpsOf(3)
	if err := q.Send(t.Context(), bumps, ""); err != nil {
		t.Fatal(err)
	}
	if _, err := e.client.ReceiveMessage(t.Context(), &sqs.ReceiveMessageInput{
		QueueUrl: aws.String(p.QueueURL), MaxNumberOfMessages: 1, VisibilityTimeout: 60,
	}); err != nil {
		t.Fatal(err)
	}
	if _, err := e.client.SendMessage(t.Context(), &sqs.SendMessageInput{
		QueueUrl: aws.String(p.DeadLetterURL), MessageBody: aws.String("dead"),
		MessageGroupId: aws.String("g"), MessageDeduplicationId: aws.String("d"),
	}); err != nil {
		t.Fatal(err)
	}
	if err := q.UpdateDepthGauges(t.Context()); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		queue, state string
		want         float64
	}{{"main", "visible", 2}, {"main", "in_flight", 1}, {"dead_letter", "visible", 1}, {"dead_letter", "in_flight", 0}} {
		if got := testutil.ToFloat64(e.metrics.QueueMessages.WithLabelValues(c.queue, c.state)); got != c.want {
			t.Errorf("bca_sync_queue_messages{queue=%q,state=%q} = %v; want %v", c.queue, c.state, got, c.want)
		}
	}
}

// TestUpdateDepthGaugesDropsTheFiguresOfAnUnreadableDeadLetterQueue: the task queue's figures
// are still updated, and the dead-letter series go instead of staying at their last value.
func TestUpdateDepthGaugesDropsTheFiguresOfAnUnreadableDeadLetterQueue(t *testing.T) {
	e := newEnv(t)
	p := e.provision(t, 15)
	q := e.queue(t, nil, p.QueueURL)
	if err := q.UpdateDepthGauges(t.Context()); err != nil {
		t.Fatal(err)
	}
	if n := testutil.CollectAndCount(e.metrics.QueueMessages); n != 4 {
		t.Fatalf("%d queue depth series; want 4", n)
	}
	if _, err := e.client.DeleteQueue(t.Context(), &sqs.DeleteQueueInput{QueueUrl: aws.String(p.DeadLetterURL)}); err != nil {
		t.Fatal(err)
	}
	bumps, _ := bumpsOf(2)
	if err := q.Send(t.Context(), bumps, ""); err != nil {
		t.Fatal(err)
	}
	if err := q.UpdateDepthGauges(t.Context()); err == nil {
		t.Error("no error with the dead-letter queue gone")
	}
	if got := testutil.ToFloat64(e.metrics.QueueMessages.WithLabelValues("main", "visible")); got != 2 {
		t.Errorf("main visible = %v; want 2, updated although the dead-letter queue is gone", got)
	}
	if n := testutil.CollectAndCount(e.metrics.QueueMessages); n != 2 {
		t.Errorf("%d queue depth series; want the task queue's 2, the dead-letter ones dropped", n)
	}
}

// TestUpdateDepthGaugesWithoutDeadLetterQueueReportsTheQueueOnly: no dead_letter series for a
// queue without redrive policy, and an error for a queue that does not exist.
func TestUpdateDepthGaugesWithoutDeadLetterQueueReportsTheQueueOnly(t *testing.T) {
	e := newEnv(t)
	plainURL := e.createFIFO(t, testenv.UniqueName("plain")+".fifo")
	q := e.queue(t, nil, plainURL)
	if err := q.Send(t.Context(), []outbox.Bump{{UserID: 1, Version: 1}}, ""); err != nil {
		t.Fatal(err)
	}
	if err := q.UpdateDepthGauges(t.Context()); err != nil {
		t.Fatal(err)
	}
	if n := testutil.CollectAndCount(e.metrics.QueueMessages); n != 2 {
		t.Errorf("%d queue depth series; want the task queue's 2", n)
	}
	if got := testutil.ToFloat64(e.metrics.QueueMessages.WithLabelValues("main", "visible")); got != 1 {
		t.Errorf("main visible = %v; want 1", got)
	}
	if err := e.queue(t, nil, missingQueueURL(t)).UpdateDepthGauges(t.Context()); err == nil {
		t.Error("UpdateDepthGauges of a missing queue succeeded")
	}
}
