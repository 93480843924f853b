package e2e

import (
	"bytes"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sqs"

	"github.com/bca-app/backend/internal/app"
	"github.com/bca-app/backend/internal/config"
	"github.com/bca-app/backend/internal/storage"
	"github.com/bca-app/backend/internal/syncqueue"
	"github.com/bca-app/backend/internal/testenv"
)

// provisioned is a bucket and a task queue with its dead-letter queue, made by the same code
// as `bcactl provision`.
type provisioned struct {
	bucket string
	queue  syncqueue.Provisioned
}

func provision(t testing.TB) provisioned {
	t.Helper()
	endpoint := testenv.AWSEndpoint(t)
	p := provisioned{bucket: testenv.UniqueName("sync")}
	store, err := storage.NewS3(ctx, storage.S3Config{
		Bucket: p.bucket, Region: "us-east-1", EndpointURL: endpoint, UsePathStyle: true, AccessKeyID: "test", SecretAccessKey: "test",
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := store.EnsureBucket(ctx); err != nil {
		t.Fatal(err)
	}
	awsCfg, err := app.AWSConfig(ctx, config.AWS{Region: "us-east-1", AccessKeyID: "test", SecretAccessKey: "test"})
	if err != nil {
		t.Fatal(err)
	}
	client := sqs.NewFromConfig(awsCfg, func(o *sqs.Options) { o.BaseEndpoint = aws.String(endpoint) })
	if p.queue, err = syncqueue.ProvisionQueue(ctx, client, syncqueue.DefaultQueueSpec(testenv.UniqueName("tasks")+".fifo")); err != nil {
		t.Fatal(err)
	}
	return p
}

// onAWS points the configuration at the provisioned resources through endpoint.
func (p provisioned) onAWS(endpoint string) Option {
	return func(c *config.Config) {
		c.AWS = config.AWS{Region: "us-east-1", AccessKeyID: "test", SecretAccessKey: "test", EndpointURL: endpoint,
			S3Bucket: p.bucket, S3PathStyle: true, TaskSQSURL: p.queue.QueueURL}
	}
}

// workerBinary builds cmd/bca-worker once per test binary.
var workerBinary = sync.OnceValues(func() (string, error) { return buildCommand("bca-worker") })

// workerProcess is a bca-worker started by a test as a real process.
type workerProcess struct {
	cmd  *exec.Cmd
	out  *lockedBuffer
	done chan struct{}
}

type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// startWorkerProcess runs the built bca-worker with the environment a deployment would give it
// (cfg's database, Redis and AWS settings; endpoint as AWS_ENDPOINT_URL) and the defaults for
// everything else, then the extra variables. It is killed when the test ends.
func startWorkerProcess(t *testing.T, cfg config.Config, endpoint string, extra ...string) *workerProcess {
	t.Helper()
	bin, err := workerBinary()
	if err != nil {
		t.Fatal(err)
	}
	env := []string{
		"DATABASE_URL=" + cfg.DatabaseURL, "REDIS_URL=" + cfg.RedisURL, "REDIS_KEY_PREFIX=" + cfg.RedisKeyPrefix,
		"SECRET_KEY=" + string(cfg.SecretKey), "WORKER_HTTP_ADDR=127.0.0.1:0", "LOG_LEVEL=info",
		"AWS_REGION=us-east-1", "AWS_ACCESS_KEY_ID=test", "AWS_SECRET_ACCESS_KEY=test", "AWS_ENDPOINT_URL=" + endpoint,
		"AWS_S3_BUCKET_NAME=" + cfg.AWS.S3Bucket, "AWS_S3_PATH_STYLE=true", "AWS_TASK_SQS_URL=" + cfg.AWS.TaskSQSURL,
	}
	return startProcess(t, "bca-worker", bin, append(env, extra...)...)
}

// startProcess starts the binary bin in a directory of its own (so no .env, and its temporary
// files go there: the test removes them even when it kills the process mid-build) with PATH,
// HOME, TMPDIR and env as its whole environment, keeping its output. It is killed when the test
// ends, and its output logged when the test failed.
func startProcess(t *testing.T, name, bin string, env ...string) *workerProcess {
	t.Helper()
	cmd := exec.Command(bin)
	cmd.Dir = t.TempDir()
	cmd.Env = append([]string{"PATH=" + os.Getenv("PATH"), "HOME=" + os.Getenv("HOME"), "TMPDIR=" + cmd.Dir}, env...)
	p := &workerProcess{cmd: cmd, out: &lockedBuffer{}, done: make(chan struct{})}
	cmd.Stdout, cmd.Stderr = p.out, p.out
	if err := cmd.Start(); err != nil {
		t.Fatalf("start %s: %v", name, err)
	}
	go func() { _ = cmd.Wait(); close(p.done) }()
	t.Cleanup(func() {
		p.kill(t)
		if t.Failed() {
			t.Logf("%s pid %d output:\n%s", name, cmd.Process.Pid, p.out.String())
		}
	})
	return p
}

// kill sends SIGKILL and waits for the process to be gone.
func (wp *workerProcess) kill(t *testing.T) {
	t.Helper()
	_ = wp.cmd.Process.Signal(syscall.SIGKILL)
	select {
	case <-wp.done:
	case <-time.After(10 * time.Second):
		t.Fatalf("bca-worker pid %d did not die", wp.cmd.Process.Pid)
	}
}

// stop sends SIGTERM (graceful) and waits.
func (wp *workerProcess) stop(t *testing.T) {
	t.Helper()
	_ = wp.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-wp.done:
	case <-time.After(40 * time.Second):
		t.Fatalf("bca-worker pid %d did not stop", wp.cmd.Process.Pid)
	}
}

// currentETag is the user's file's ETag once it is not pending ("" while it is).
func currentETag(t *testing.T, e *Env, u User) string {
	t.Helper()
	r := syncHead(t, e.As(u.Token()), "")
	Status(t, "head", r.StatusCode(), http.StatusOK, r.Body)
	if r.HTTPResponse.Header.Get("Sync-Pending") != "false" {
		return ""
	}
	return r.HTTPResponse.Header.Get("ETag")
}

// TestWorkerCrashRecoversWithinVisibility: a bca-worker process is killed with SIGKILL while it
// holds the tasks of several users (their builds stalled in S3). With the default settings a
// second worker publishes every affected user's new file within the visibility window plus one
// build: at most 20 s after the kill, not the minutes of a long visibility timeout.
func TestWorkerCrashRecoversWithinVisibility(t *testing.T) {
	res := provision(t)
	moto := testenv.AWSEndpoint(t)
	e := New(t, res.onAWS(moto))
	const users = 4 // one per receive loop of the victim (SYNC_WORKER_CONCURRENCY)
	us := make([]User, users)
	for i := range us {
		us[i] = e.SignUp(t)
	}
	// A healthy worker builds everyone's first file, then stops.
	healthy := startWorkerProcess(t, e.Config, moto)
	before := make([]string, users)
	for i, u := range us {
		before[i] = waitForETag(t, e.As(u.Token()), "")
	}
	healthy.stop(t)

	// The victim reaches S3 through a proxy that holds its uploads: its builds stall while it
	// holds the users' messages (and its heartbeat keeps them hidden).
	stall := testenv.NewDelayProxy(t, moto)
	var extended atomic.Int64 // the victim's visibility heartbeats (ChangeMessageVisibility calls)
	stall.SetDelay(func(r *http.Request) time.Duration {
		if r.Method == http.MethodPut && strings.HasPrefix(r.URL.Path, "/"+res.bucket+"/") {
			return time.Hour
		}
		if strings.HasPrefix(r.Header.Get("X-Amz-Target"), "AmazonSQS.ChangeMessageVisibility") {
			extended.Add(1)
		}
		return 0
	})
	victim := startWorkerProcess(t, e.Config, stall.URL)
	for i, u := range us {
		e.NewProfile(t, u, map[string]any{"name": "after " + strconv.Itoa(i)})
	}
	testenv.Eventually(t, 60*time.Second, func() bool { return stall.Held() >= users }, "the victim holds %d stalled builds", users)
	// Wait until the heartbeats have extended the visibility (one call per receive loop), as in a
	// long build. The worker is another process on the real clock: the wait is for the event,
	// not for a fixed time.
	seen := extended.Load()
	testenv.Eventually(t, 30*time.Second, func() bool { return extended.Load() >= seen+users }, "%d visibility heartbeats of the victim", users)
	victim.kill(t)
	killed := time.Now()
	startWorkerProcess(t, e.Config, moto)

	var worst time.Duration
	pending := map[int]bool{}
	for i := range us {
		pending[i] = true
	}
	if !testenv.WaitFor(60*time.Second-time.Since(killed), func() bool {
		for i := range pending {
			if etag := currentETag(t, e, us[i]); etag != "" && etag != before[i] {
				lag := time.Since(killed)
				worst = max(worst, lag)
				t.Logf("user %d: new file %s after %v", i, etag, lag.Round(10*time.Millisecond))
				delete(pending, i)
			}
		}
		return len(pending) == 0
	}) {
		t.Fatalf("%d users still without a new file 60 s after the kill", len(pending))
	}
	if worst > 20*time.Second {
		t.Errorf("the last affected user's new file appeared %v after the kill; want at most 20 s (visibility 15 s + one build)", worst)
	}
}

// TestSlowSQSDoesNotSlowWrites: a proxy in front of moto first holds every SQS call, then
// answers them seconds late. Writes are answered while SQS holds the producer's calls (the
// producer sends in the background), and every user's file still converges. The write latency
// figures, healthy and slow, are in BenchmarkWriteLatencySlowSQS.
func TestSlowSQSDoesNotSlowWrites(t *testing.T) {
	res := provision(t)
	slow := testenv.NewDelayProxy(t, testenv.AWSEndpoint(t))
	gate := make(chan struct{})
	slow.SetDelay(func(r *http.Request) time.Duration {
		if !testenv.IsSQS(r) {
			return 0
		}
		select {
		case <-gate: // opened: SQS is slow, not stuck
		case <-r.Context().Done():
		}
		return 2 * time.Second
	})
	e := New(t, res.onAWS(slow.URL), func(c *config.Config) { c.EmbeddedWorker = true })
	const users = 4
	us := make([]User, users)
	for i := range us {
		us[i] = e.SignUp(t)
	}
	for round := range 3 {
		for i, u := range us {
			e.NewProfile(t, u, map[string]any{"name": fmt.Sprintf("p%d-%d", round, i)})
		}
	}
	// Every write above has been answered, yet SQS has not answered anything.
	if slow.Held() == 0 {
		t.Fatal("no SQS call is held: the test did not stall SQS")
	}
	close(gate)
	for i, u := range us {
		c := e.As(u.Token())
		testenv.Eventually(t, 90*time.Second, func() bool {
			r := syncGet(t, c, "")
			return r.StatusCode() == http.StatusOK && r.HTTPResponse.Header.Get("Sync-Pending") == "false" &&
				len(profileNames(checkFile(t, r.HTTPResponse.Header, r.Body))) >= 4
		}, "user %d's file converges behind a slow SQS", i)
	}
}
