package app_test

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sqs"

	"github.com/bca-app/backend/internal/app"
	"github.com/bca-app/backend/internal/config"
	"github.com/bca-app/backend/internal/storage"
	"github.com/bca-app/backend/internal/syncqueue"
	"github.com/bca-app/backend/internal/testenv"
)

func TestMain(m *testing.M) { testenv.Main(m) }

// workerConfig is a worker's configuration on the test services with the given bucket and
// queue.
func workerConfig(t *testing.T, bucket, queueURL string) config.Config {
	t.Helper()
	redisURL, prefix := testenv.Redis(t)
	c := config.Defaults()
	c.DatabaseURL = testenv.Database(t)
	c.RedisURL, c.RedisKeyPrefix = redisURL, prefix
	c.SecretKey = []byte("test-secret-key-that-is-long-enough-0123456789")
	c.RunMigrations, c.EmbeddedWorker = false, false
	c.AWS = config.AWS{Region: "us-east-1", AccessKeyID: "test", SecretAccessKey: "test", EndpointURL: testenv.AWSEndpoint(t),
		S3Bucket: bucket, S3PathStyle: true, TaskSQSURL: queueURL}
	if err := c.Validate(); err != nil {
		t.Fatal(err)
	}
	return c
}

type readiness struct {
	code   int
	Status string            `json:"status"`
	Failed []string          `json:"failed"`
	Checks map[string]string `json:"checks"`
}

func ready(t *testing.T, cfg config.Config) readiness {
	t.Helper()
	ctx := context.Background()
	a, err := app.NewWorker(ctx, cfg, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	rec := httptest.NewRecorder()
	app.ReadyHandler(a.WorkerReadiness)(rec, httptest.NewRequest(http.MethodGet, "/readyz", nil))
	r := readiness{code: rec.Code}
	if err := json.Unmarshal(rec.Body.Bytes(), &r); err != nil {
		t.Fatalf("readyz body %q: %v", rec.Body.String(), err)
	}
	return r
}

// TestWorkerReadinessNamesWhatIsMissing: the worker's /readyz checks PostgreSQL, Redis, the
// queue with its dead-letter queue, and the bucket, and names each missing one.
func TestWorkerReadinessNamesWhatIsMissing(t *testing.T) {
	ctx := context.Background()
	cfg := workerConfig(t, testenv.UniqueName("bucket"), "")
	awsCfg, err := app.AWSConfig(ctx, cfg.AWS)
	if err != nil {
		t.Fatal(err)
	}
	client := sqs.NewFromConfig(awsCfg, func(o *sqs.Options) { o.BaseEndpoint = aws.String(cfg.AWS.EndpointURL) })
	store, err := storage.NewS3(ctx, storage.S3Config{Bucket: cfg.AWS.S3Bucket, Region: "us-east-1", EndpointURL: cfg.AWS.EndpointURL,
		UsePathStyle: true, AccessKeyID: "test", SecretAccessKey: "test"})
	if err != nil {
		t.Fatal(err)
	}
	if err := store.EnsureBucket(ctx); err != nil {
		t.Fatal(err)
	}
	spec := syncqueue.DefaultQueueSpec(testenv.UniqueName("ready") + ".fifo")
	good, err := syncqueue.ProvisionQueue(ctx, client, spec)
	if err != nil {
		t.Fatal(err)
	}
	// Provisioning again, even with another attribute, keeps the same queues.
	spec.MaxReceiveCount++
	if again, err := syncqueue.ProvisionQueue(ctx, client, spec); err != nil || again != good {
		t.Fatalf("second provision: %+v, %v; first %+v", again, err, good)
	}
	noDLQ, err := syncqueue.ProvisionQueue(ctx, client, syncqueue.DefaultQueueSpec(testenv.UniqueName("nodlq")+".fifo"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := client.DeleteQueue(ctx, &sqs.DeleteQueueInput{QueueUrl: &noDLQ.DeadLetterURL}); err != nil {
		t.Fatal(err)
	}
	missingQueue := good.QueueURL[:strings.LastIndex(good.QueueURL, "/")+1] + testenv.UniqueName("missing") + ".fifo"

	withQueue := func(url string) config.Config { c := cfg; c.AWS.TaskSQSURL = url; return c }
	withBucket := func(b string) config.Config { c := withQueue(good.QueueURL); c.AWS.S3Bucket = b; return c }
	for _, tc := range []struct {
		name      string
		cfg       config.Config
		failed    []string
		mentioned string
	}{
		{"everything there", withQueue(good.QueueURL), nil, ""},
		{"missing queue", withQueue(missingQueue), []string{"queue"}, "queue " + missingQueue},
		{"missing dead-letter queue", withQueue(noDLQ.QueueURL), []string{"queue"}, "dead-letter queue"},
		{"missing bucket", withBucket(testenv.UniqueName("nobucket")), []string{"storage"}, "bucket"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := ready(t, tc.cfg)
			for _, dep := range []string{"postgres", "redis", "queue", "storage"} {
				if _, ok := r.Checks[dep]; !ok {
					t.Errorf("readyz does not report %s: %+v", dep, r)
				}
			}
			if tc.failed == nil {
				if r.code != http.StatusOK || r.Status != "ok" || len(r.Failed) != 0 {
					t.Fatalf("readyz = %d %+v, want 200 ok", r.code, r)
				}
				return
			}
			if r.code != http.StatusServiceUnavailable || r.Status != "unavailable" || !slices.Equal(r.Failed, tc.failed) {
				t.Fatalf("readyz = %d %+v, want 503 naming %v", r.code, r, tc.failed)
			}
			if msg := r.Checks[tc.failed[0]]; !strings.Contains(msg, tc.mentioned) {
				t.Errorf("readyz says %q for %s; want it to mention %q", msg, tc.failed[0], tc.mentioned)
			}
		})
	}
}
