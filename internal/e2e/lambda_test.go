package e2e

import (
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/events"
	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	sqstypes "github.com/aws/aws-sdk-go-v2/service/sqs/types"

	"github.com/bca-app/backend/internal/app"
	"github.com/bca-app/backend/internal/config"
	"github.com/bca-app/backend/internal/syncfile"
	"github.com/bca-app/backend/internal/syncqueue"
	"github.com/bca-app/backend/internal/syncsvc/synctest"
	"github.com/bca-app/backend/internal/testenv"
)

// fakeLambda plays the Lambda service towards one function process: it serves the Lambda
// Runtime API (the function asks for the next invocation, then posts its response or error)
// on a loopback port.
type fakeLambda struct {
	t       *testing.T
	addr    string
	next    chan *invocation
	mu      sync.Mutex
	pending map[string]*invocation
	seq     atomic.Int64
	initErr chan string
}

// invocation is one event handed to the function and what it answered.
type invocation struct {
	id     string
	event  []byte
	answer chan invokeAnswer
}

type invokeAnswer struct {
	body   []byte
	failed bool // posted to /error
}

func newFakeLambda(t *testing.T) *fakeLambda {
	t.Helper()
	f := &fakeLambda{t: t, next: make(chan *invocation), pending: map[string]*invocation{}, initErr: make(chan string, 1)}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	f.addr = ln.Addr().String()
	mux := http.NewServeMux()
	mux.HandleFunc("GET /2018-06-01/runtime/invocation/next", func(w http.ResponseWriter, r *http.Request) {
		select {
		case inv := <-f.next:
			f.mu.Lock()
			f.pending[inv.id] = inv
			f.mu.Unlock()
			w.Header().Set("Lambda-Runtime-Aws-Request-Id", inv.id)
			w.Header().Set("Lambda-Runtime-Deadline-Ms", strconv.FormatInt(time.Now().Add(60*time.Second).UnixMilli(), 10))
			w.Header().Set("Lambda-Runtime-Invoked-Function-Arn", "arn:aws:lambda:us-east-1:123456789012:function:bca-sync-worker")
			w.Header().Set("Content-Type", "application/json")
			_, _ = w.Write(inv.event)
		case <-r.Context().Done():
		}
	})
	answer := func(failed bool) http.HandlerFunc {
		return func(w http.ResponseWriter, r *http.Request) {
			body, _ := io.ReadAll(r.Body)
			f.mu.Lock()
			inv := f.pending[r.PathValue("id")]
			delete(f.pending, r.PathValue("id"))
			f.mu.Unlock()
			if inv == nil {
				http.Error(w, "unknown invocation", http.StatusBadRequest)
				return
			}
			inv.answer <- invokeAnswer{body: body, failed: failed}
			w.WriteHeader(http.StatusAccepted)
		}
	}
	mux.HandleFunc("POST /2018-06-01/runtime/invocation/{id}/response", answer(false))
	mux.HandleFunc("POST /2018-06-01/runtime/invocation/{id}/error", answer(true))
	mux.HandleFunc("POST /2018-06-01/runtime/init/error", func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		select {
		case f.initErr <- string(body):
		default:
		}
		w.WriteHeader(http.StatusAccepted)
	})
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second}
	go func() { _ = srv.Serve(ln) }()
	t.Cleanup(func() { _ = srv.Close() })
	return f
}

// invoke hands event to the function and waits (bounded) for its answer.
func (f *fakeLambda) invoke(event any) invokeAnswer {
	f.t.Helper()
	body, err := json.Marshal(event)
	if err != nil {
		f.t.Fatal(err)
	}
	inv := &invocation{id: fmt.Sprintf("req-%d", f.seq.Add(1)), event: body, answer: make(chan invokeAnswer, 1)}
	timeout := time.After(90 * time.Second)
	select {
	case f.next <- inv:
	case msg := <-f.initErr:
		f.t.Fatalf("the function failed to start: %s", msg)
	case <-timeout:
		f.t.Fatal("the function never asked for the next invocation")
	}
	select {
	case a := <-inv.answer:
		return a
	case <-timeout:
		f.t.Fatalf("no answer to invocation %s", inv.id)
	}
	return invokeAnswer{}
}

// startLambdaBootstrap builds cmd/bca-worker as a Lambda function's bootstrap and starts it the
// way the provided.al2023 runtime does: AWS_LAMBDA_RUNTIME_API names the Runtime API, and the
// environment is the function's (as deploy/bca.yaml gives it).
func startLambdaBootstrap(t *testing.T, runtimeAPI string, cfg config.Config, endpoint string) *workerProcess {
	t.Helper()
	bootstrap := t.TempDir() + "/bootstrap"
	// The flags of `make dist` (bcactl dist): static, trimmed, without the RPC mode.
	build := exec.Command("go", "build", "-trimpath", "-ldflags", "-s -w", "-tags", "lambda.norpc", "-o", bootstrap, "github.com/bca-app/backend/cmd/bca-worker")
	build.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("build the bootstrap: %v\n%s", err, out)
	}
	return startProcess(t, "bootstrap", bootstrap,
		"AWS_LAMBDA_RUNTIME_API="+runtimeAPI, "AWS_LAMBDA_FUNCTION_NAME=bca-sync-worker", "AWS_LAMBDA_FUNCTION_MEMORY_SIZE=512",
		"DATABASE_URL="+cfg.DatabaseURL, "REDIS_URL="+cfg.RedisURL, "REDIS_KEY_PREFIX="+cfg.RedisKeyPrefix,
		"SECRET_KEY="+string(cfg.SecretKey), "LOG_LEVEL=info", "MIGRATE_ON_START=false",
		"AWS_REGION=us-east-1", "AWS_ACCESS_KEY_ID=test", "AWS_SECRET_ACCESS_KEY=test", "AWS_ENDPOINT_URL="+endpoint,
		"AWS_S3_BUCKET_NAME="+cfg.AWS.S3Bucket, "AWS_S3_PATH_STYLE=true", "AWS_TASK_SQS_URL="+cfg.AWS.TaskSQSURL,
	)
}

// TestWorkerOnLambda plays Lambda's SQS event source and the Lambda service around the real
// bootstrap binary: it receives from the task queue (moto), hands each batch to the function
// as an SQS event, and deletes what the function did not report as failed, as the event source
// does (docs/sync.md §4.6). The batches hold the API's tasks, a duplicate of one, a task for a
// user who does not exist and an undecodable message. Only the undecodable message is ever
// reported; it ends in the dead-letter queue through the redrive policy; every other message
// is deleted; every user's file equals a fresh full build.
//
// A scheduled event then runs one pass of both sweeps: an old upload attached to nothing is
// removed, an old attached one stays. Last, the same messages go through the long-running
// worker (the real bca-worker process, its receive loop on the same queue) after the users'
// files were reset, and the files it builds equal the function's by table content.
func TestWorkerOnLambda(t *testing.T) {
	moto := testenv.AWSEndpoint(t)
	res := provision(t)
	client := sqsClient(t, moto)
	// A queue of its own with a low receive limit, so the poison message reaches the
	// dead-letter queue within a few batches.
	spec := syncqueue.DefaultQueueSpec(testenv.UniqueName("lambda") + ".fifo")
	spec.MaxReceiveCount = 3
	queue, err := syncqueue.ProvisionQueue(ctx, client, spec)
	if err != nil {
		t.Fatal(err)
	}
	res.queue = queue
	e := New(t, res.onAWS(moto))

	// The API's writes send the users' tasks.
	a, b := e.SignUp(t), e.SignUp(t)
	e.NewProfile(t, a, map[string]any{"name": "Ada on Lambda"})
	e.NewProfile(t, b, map[string]any{"name": "Bob on Lambda"})
	e.NewProfile(t, b, map[string]any{"name": "Bob again"})
	aID := a.Session.User.UserId
	// Uploads older than UPLOAD_UNUSED_TTL (24 h, the function's default): one attached to a
	// card, one attached to nothing, for the scheduled sweep.
	unused, used := e.uploadPNG(t, a), e.uploadPNG(t, a)
	e.NewCard(t, a, e.FirstProfile(t, a), map[string]any{"name": "Card on Lambda", "preview_file_id": used.Id})
	e.Exec(t, "UPDATE files SET created_at = now() - interval '2 days' WHERE id = ANY($1)", []int64{unused.Id, used.Id})
	send := func(group, dedup, body string) string {
		out, err := client.SendMessage(ctx, &sqs.SendMessageInput{
			QueueUrl: &queue.QueueURL, MessageBody: &body, MessageGroupId: &group, MessageDeduplicationId: &dedup,
		})
		if err != nil {
			t.Fatal(err)
		}
		return aws.ToString(out.MessageId)
	}
	// A duplicate of a task (at-least-once delivery), a task for a user who does not exist, and
	// a message that is no task.
	send(strconv.FormatInt(aID, 10), "dup-"+testenv.UniqueName("d"), fmt.Sprintf(`{"user_id":%d,"wanted_version":1}`, aID))
	missing := send("987654321", "missing", `{"user_id":987654321,"wanted_version":3}`)
	poison := send("poison", "poison", `this is not a task`)

	fl := newFakeLambda(t)
	fn := startLambdaBootstrap(t, fl.addr, e.Config, moto)

	arn := "arn:aws:sqs:us-east-1:123456789012:" + spec.Name
	type sentTask struct{ group, body string }
	tasks := map[string]sentTask{} // message id → what it carried, to send again to the poller
	seen := map[string]int{}       // message id → receives
	deleted := map[string]bool{}   // message ids deleted after a successful batch
	failures := 0
	emptyRounds := 0
	for round := 0; emptyRounds < 3; round++ {
		if round > 60 {
			t.Fatalf("the queue did not drain in 60 rounds; seen %v", seen)
		}
		out, err := client.ReceiveMessage(ctx, &sqs.ReceiveMessageInput{
			QueueUrl: &queue.QueueURL, MaxNumberOfMessages: 10, WaitTimeSeconds: 1,
			MessageSystemAttributeNames: []sqstypes.MessageSystemAttributeName{sqstypes.MessageSystemAttributeNameAll},
		})
		if err != nil {
			t.Fatal(err)
		}
		if len(out.Messages) == 0 {
			if queueCount(t, client, queue.QueueURL) == 0 {
				emptyRounds++
			}
			continue
		}
		emptyRounds = 0
		ev := events.SQSEvent{}
		for _, m := range out.Messages {
			id := aws.ToString(m.MessageId)
			seen[id]++
			tasks[id] = sentTask{group: m.Attributes[string(sqstypes.MessageSystemAttributeNameMessageGroupId)], body: aws.ToString(m.Body)}
			ev.Records = append(ev.Records, events.SQSMessage{
				MessageId: id, ReceiptHandle: aws.ToString(m.ReceiptHandle), Body: aws.ToString(m.Body),
				Attributes: m.Attributes, EventSource: "aws:sqs", EventSourceARN: arn, AWSRegion: "us-east-1",
			})
		}
		ans := fl.invoke(ev)
		if ans.failed {
			t.Fatalf("the function failed the invocation: %s", ans.body)
		}
		var resp events.SQSEventResponse
		if err := json.Unmarshal(ans.body, &resp); err != nil {
			t.Fatalf("answer %s: %v", ans.body, err)
		}
		failed := map[string]bool{}
		for _, f := range resp.BatchItemFailures {
			failed[f.ItemIdentifier] = true
		}
		// Only the poison message is ever reported.
		for id := range failed {
			if id != poison {
				t.Errorf("message %s reported as failed; only the undecodable %s should be", id, poison)
			}
		}
		for _, r := range ev.Records {
			if r.MessageId == poison && !failed[poison] {
				t.Errorf("the undecodable message was not reported as failed: Lambda would delete it")
			}
			if failed[r.MessageId] {
				failures++
				continue
			}
			if _, err := client.DeleteMessage(ctx, &sqs.DeleteMessageInput{QueueUrl: &queue.QueueURL, ReceiptHandle: aws.String(r.ReceiptHandle)}); err != nil {
				t.Fatal(err)
			}
			deleted[r.MessageId] = true
		}
	}
	t.Logf("messages %d, receives %v, reported failures %d", len(seen), seen, failures)
	if !deleted[missing] {
		t.Error("the task for a missing user was not settled (it must be deleted, not retried)")
	}
	if deleted[poison] || seen[poison] < spec.MaxReceiveCount {
		t.Errorf("the poison message: deleted %v, received %d times, want never deleted and %d receives", deleted[poison], seen[poison], spec.MaxReceiveCount)
	}
	if len(deleted) != len(seen)-1 {
		t.Errorf("%d of %d messages deleted; every message but the poison one must be", len(deleted), len(seen))
	}
	// Nothing is lost: the poison message is in the dead-letter queue, nothing else is.
	dlq, err := client.ReceiveMessage(ctx, &sqs.ReceiveMessageInput{QueueUrl: &queue.DeadLetterURL, MaxNumberOfMessages: 10, WaitTimeSeconds: 2})
	if err != nil {
		t.Fatal(err)
	}
	var dlqIDs []string
	for _, m := range dlq.Messages {
		dlqIDs = append(dlqIDs, aws.ToString(m.MessageId))
	}
	if !slices.Equal(dlqIDs, []string{poison}) {
		t.Errorf("dead-letter queue holds %v, want only the poison message %s", dlqIDs, poison)
	}

	// Every user's file is current and holds what a fresh full build holds.
	users := []User{a, b}
	lambdaBuilt := map[int64]syncfile.Contents{}
	for _, u := range users {
		r := syncGet(t, e.As(u.Token()), "")
		Status(t, "sync file", r.StatusCode(), http.StatusOK, r.Body)
		if p := r.HTTPResponse.Header.Get("Sync-Pending"); p != "false" {
			t.Fatalf("user %d: Sync-Pending %q after the queue drained", u.Session.User.UserId, p)
		}
		got := checkFile(t, r.HTTPResponse.Header, r.Body)
		lambdaBuilt[u.Session.User.UserId] = got
		snap, err := e.Server.App.Sync.Snapshot(ctx, u.Session.User.UserId)
		if err != nil {
			t.Fatal(err)
		}
		if !synctest.Equal(got, snap.Contents) {
			t.Errorf("user %d: the Lambda-built file differs from a full build:\n%s\nwant\n%s",
				u.Session.User.UserId, synctest.Describe(got), synctest.Describe(snap.Contents))
		}
	}
	if !strings.Contains(fn.out.String(), "undecodable sync task messages") {
		t.Error("the function did not log the undecodable message")
	}

	// A scheduled event runs one pass of both sweeps: the sync sweep and the unused uploads'.
	ans := fl.invoke(map[string]any{"source": "aws.events", "detail-type": "Scheduled Event", "detail": map[string]any{}})
	var swept struct {
		Status         string `json:"status"`
		SyncSweep      string `json:"sync_sweep"`
		UploadsRemoved int    `json:"uploads_removed"`
	}
	if err := json.Unmarshal(ans.body, &swept); ans.failed || err != nil {
		t.Fatalf("scheduled event: failed %v, answer %s (%v)", ans.failed, ans.body, err)
	}
	if swept.Status != "swept" || swept.SyncSweep != "done" || swept.UploadsRemoved < 1 {
		t.Errorf("scheduled event answered %s; want both sweeps run and the unused upload removed", ans.body)
	}
	if n := e.Count(t, "SELECT count(*) FROM files WHERE id = $1", unused.Id); n != 0 {
		t.Error("the scheduled sweep left the old unused upload")
	}
	if r := getFile(t, e, a.Token(), unused.Url); r.StatusCode() != http.StatusNotFound {
		t.Errorf("the swept upload answers %d, want 404", r.StatusCode())
	}
	if r := getFile(t, e, a.Token(), used.Url); r.StatusCode() != http.StatusOK {
		t.Errorf("the upload attached to a card answers %d after the sweep, want 200", r.StatusCode())
	}
	// Anything else is an error of the invocation.
	if ans := fl.invoke(map[string]any{"hello": "world"}); !ans.failed {
		t.Errorf("an unknown event was answered %s, want an invocation error", ans.body)
	}

	// The same messages through the long-running worker: the users' files are reset (so it
	// builds them from scratch, as the function did), every message the function received is
	// sent again to the same queue, and a bca-worker process consumes them.
	ids := []int64{aID, b.Session.User.UserId}
	e.Exec(t, `UPDATE sync_states SET built_version = 0, etag = NULL, size = NULL, storage_key = NULL,
		builder_schema = NULL, built_at = NULL, stale_since = now(), not_before = NULL WHERE user_id = ANY($1)`, ids)
	e.Server.App.Sync.ForgetState(ctx, ids...)
	for id, m := range tasks {
		send(m.group, "poller-"+id, m.body)
	}
	poller := startWorkerProcess(t, e.Config, moto)
	testenv.Eventually(t, 90*time.Second, func() bool {
		built := e.Count(t, `SELECT count(*) FROM sync_states
			WHERE user_id = ANY($1) AND storage_key IS NOT NULL AND built_version = wanted_version`, ids)
		return built == len(ids) && queueCount(t, client, queue.QueueURL) == 0
	}, "the long-running worker builds the %d users and drains the queue", len(ids))
	poller.stop(t)
	e.Server.App.Sync.ForgetState(ctx, ids...)
	for _, u := range users {
		r := syncGet(t, e.As(u.Token()), "")
		Status(t, "sync file built by the long-running worker", r.StatusCode(), http.StatusOK, r.Body)
		// The file served is the one the worker published, not one built on request.
		etag := strings.Trim(r.HTTPResponse.Header.Get("ETag"), `"`)
		if e.Count(t, "SELECT count(*) FROM sync_states WHERE user_id = $1 AND etag = $2", u.Session.User.UserId, etag) != 1 {
			t.Fatalf("user %d: the file served (ETag %s) is not the one the long-running worker published", u.Session.User.UserId, etag)
		}
		got := checkFile(t, r.HTTPResponse.Header, r.Body)
		if want := lambdaBuilt[u.Session.User.UserId]; !synctest.Equal(got, want) {
			t.Errorf("user %d: the long-running worker's file differs from the function's:\n%s\nthe function built\n%s",
				u.Session.User.UserId, synctest.Describe(got), synctest.Describe(want))
		}
	}
}

func sqsClient(t *testing.T, endpoint string) *sqs.Client {
	t.Helper()
	awsCfg, err := app.AWSConfig(ctx, config.AWS{Region: "us-east-1", AccessKeyID: "test", SecretAccessKey: "test"})
	if err != nil {
		t.Fatal(err)
	}
	return sqs.NewFromConfig(awsCfg, func(o *sqs.Options) { o.BaseEndpoint = aws.String(endpoint) })
}

// queueCount is the number of messages in the queue, visible or in flight.
func queueCount(t *testing.T, client *sqs.Client, url string) int {
	t.Helper()
	out, err := client.GetQueueAttributes(ctx, &sqs.GetQueueAttributesInput{
		QueueUrl: &url,
		AttributeNames: []sqstypes.QueueAttributeName{
			sqstypes.QueueAttributeNameApproximateNumberOfMessages, sqstypes.QueueAttributeNameApproximateNumberOfMessagesNotVisible,
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	visible, _ := strconv.Atoi(out.Attributes[string(sqstypes.QueueAttributeNameApproximateNumberOfMessages)])
	inFlight, _ := strconv.Atoi(out.Attributes[string(sqstypes.QueueAttributeNameApproximateNumberOfMessagesNotVisible)])
	return visible + inFlight
}
