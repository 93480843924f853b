package e2e

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	sqstypes "github.com/aws/aws-sdk-go-v2/service/sqs/types"
	"github.com/jackc/pgx/v5"

	"github.com/bca-app/backend/internal/testenv"
)

// apiBinary builds cmd/bca-api once per test binary.
var apiBinary = sync.OnceValues(func() (string, error) { return buildCommand("bca-api") })

// buildCommand builds cmd/<name> into a temporary directory and returns the binary's path.
func buildCommand(name string) (string, error) {
	dir, err := os.MkdirTemp("", name+"-bin-*")
	if err != nil {
		return "", err
	}
	bin := filepath.Join(dir, name)
	out, err := exec.Command("go", "build", "-o", bin, "github.com/bca-app/backend/cmd/"+name).CombinedOutput()
	if err != nil {
		return "", fmt.Errorf("build %s: %v\n%s", name, err, out)
	}
	return bin, nil
}

// waitExit waits at most d for the process to end and returns its exit code.
func waitExit(t *testing.T, wp *workerProcess, d time.Duration) int {
	t.Helper()
	select {
	case <-wp.done:
		return wp.cmd.ProcessState.ExitCode()
	case <-time.After(d):
		t.Fatalf("pid %d did not exit within %v", wp.cmd.Process.Pid, d)
		return -1
	}
}

// TestAPIDrainsOnSIGTERM starts the real bca-api binary, opens a live chat stream and a slow
// request (its body is still being sent), and sends SIGTERM: /readyz answers 503 at once while
// the process still serves, the stream ends with a `retry:` hint, the slow request completes,
// and the process exits 0 within SHUTDOWN_TIMEOUT.
func TestAPIDrainsOnSIGTERM(t *testing.T) {
	e := New(t)
	c := e.newChatter(t)
	bin, err := apiBinary()
	if err != nil {
		t.Fatal(err)
	}
	addr := testenv.FreeAddr(t)
	base := "http://" + addr
	const delay, timeout = 2 * time.Second, 15 * time.Second
	p := startProcess(t, "bca-api", bin,
		"HTTP_ADDR="+addr, "PUBLIC_BASE_URL="+base, "DATABASE_URL="+e.Config.DatabaseURL,
		"REDIS_URL="+e.Config.RedisURL, "REDIS_KEY_PREFIX="+e.Config.RedisKeyPrefix, "SECRET_KEY="+string(e.Config.SecretKey),
		"STORAGE_DIR="+t.TempDir(), "EMBEDDED_WORKER=false", "LOG_LEVEL=info",
		"SHUTDOWN_DELAY="+delay.String(), "SHUTDOWN_TIMEOUT="+timeout.String(),
	)
	client := &http.Client{Timeout: 5 * time.Second}
	readyz := func() int {
		r, err := client.Get(base + "/readyz")
		if err != nil {
			return 0
		}
		r.Body.Close()
		return r.StatusCode
	}
	testenv.Eventually(t, 60*time.Second, func() bool { return readyz() == http.StatusOK }, "bca-api becomes ready")

	// A live chat stream: everything it receives is kept.
	sctx, scancel := context.WithCancel(context.Background())
	defer scancel()
	req, _ := http.NewRequestWithContext(sctx, "GET", base+"/api/v1/chats/stream", nil)
	req.Header.Set("Authorization", "Bearer "+c.Token())
	req.Header.Set("X-Profile-Id", strconv.FormatInt(c.Profile, 10))
	req.Header.Set("Accept", "text/event-stream")
	stream, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	if stream.StatusCode != http.StatusOK {
		t.Fatalf("stream: status %d", stream.StatusCode)
	}
	var streamText strings.Builder
	streamEnded := make(chan struct{})
	connected := make(chan struct{})
	go func() {
		defer close(streamEnded)
		sc := bufio.NewScanner(stream.Body)
		once := sync.Once{}
		for sc.Scan() {
			streamText.WriteString(sc.Text() + "\n")
			if strings.HasPrefix(sc.Text(), ": connected") {
				once.Do(func() { close(connected) })
			}
		}
	}()
	select {
	case <-connected:
	case <-time.After(10 * time.Second):
		t.Fatal("the stream never said it is connected")
	}

	// A slow request: its body arrives in two halves, the second after SIGTERM.
	body := fmt.Sprintf(`{"name": "Drained %d", "data": {}}`, time.Now().UnixNano())
	pr, pw := io.Pipe()
	slowReq, _ := http.NewRequest("POST", base+"/api/v1/profiles", pr)
	slowReq.Header.Set("Authorization", "Bearer "+c.Token())
	slowReq.Header.Set("Content-Type", "application/json")
	slowReq.ContentLength = int64(len(body))
	type result struct {
		status int
		body   string
		err    error
	}
	slow := make(chan result, 1)
	go func() {
		r, err := (&http.Client{Timeout: 60 * time.Second}).Do(slowReq)
		if err != nil {
			slow <- result{err: err}
			return
		}
		b, _ := io.ReadAll(r.Body)
		r.Body.Close()
		slow <- result{status: r.StatusCode, body: string(b)}
	}()
	if _, err := io.WriteString(pw, body[:len(body)/2]); err != nil {
		t.Fatal(err)
	}

	if err := p.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	signalled := time.Now()
	// Not ready at once, while the listener still takes connections.
	sawNotReady := testenv.WaitFor(delay-time.Since(signalled), func() bool {
		if s := readyz(); s == http.StatusServiceUnavailable {
			return true
		} else if s != http.StatusOK {
			t.Fatalf("/readyz during the drain delay: status %d, want 503 (or 200 before the signal lands)", s)
		}
		return false
	})
	if !sawNotReady {
		t.Fatal("/readyz never answered 503 during SHUTDOWN_DELAY")
	}
	select {
	case <-streamEnded:
	case <-time.After(delay + 10*time.Second):
		t.Fatal("the chat stream did not end")
	}
	if time.Since(signalled) < delay {
		t.Errorf("the stream ended %v after SIGTERM, before SHUTDOWN_DELAY %v", time.Since(signalled), delay)
	}
	if !strings.Contains(streamText.String(), "retry: 1000\n") {
		t.Errorf("the stream ended without a retry hint:\n%s", streamText.String())
	}
	// The slow request is still in flight; its client finishes it now.
	if _, err := io.WriteString(pw, body[len(body)/2:]); err != nil {
		t.Fatalf("finish the slow request's body: %v", err)
	}
	pw.Close()
	select {
	case r := <-slow:
		if r.err != nil || r.status != http.StatusCreated {
			t.Fatalf("the in-flight request: status %d err %v body %s", r.status, r.err, r.body)
		}
	case <-time.After(timeout):
		t.Fatal("the in-flight request was not answered")
	}
	if code := waitExit(t, p, timeout+5*time.Second); code != 0 {
		t.Fatalf("bca-api exited %d after SIGTERM, want 0", code)
	}
	t.Logf("exited %v after SIGTERM", time.Since(signalled).Round(time.Millisecond))
	if _, err := client.Get(base + "/healthz"); err == nil {
		t.Error("the address still answers after the process exited")
	}
}

// TestWorkerDrainsOnSIGTERM starts the real bca-worker binary on SQS (moto) and gives it a
// build that cannot finish (the test holds the user's sync_states row locked), then sends
// SIGTERM: its /readyz answers 503 from then until it exits; after SHUTDOWN_TIMEOUT the worker
// hands the build back (its Redis lock released, its message visible again at once although
// SYNC_VISIBILITY is long) and exits 0.
func TestWorkerDrainsOnSIGTERM(t *testing.T) {
	res := provision(t)
	moto := testenv.AWSEndpoint(t)
	e := New(t, res.onAWS(moto))
	u := e.SignUp(t)
	userID := u.Session.User.UserId
	// A write owes the user a file: the task waits in the queue (no worker runs yet).
	e.NewProfile(t, u, map[string]any{"name": "Drain me"})

	// Hold the user's state row: the worker's build blocks on it.
	conn, err := pgx.Connect(ctx, e.Config.DatabaseURL)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	tx, err := conn.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = tx.Rollback(ctx) }()
	var one int
	if err := tx.QueryRow(ctx, "SELECT 1 FROM sync_states WHERE user_id = $1 FOR UPDATE", userID).Scan(&one); err != nil {
		t.Fatalf("lock user %d's sync state: %v", userID, err)
	}

	cfg := e.Config
	opsAddr := testenv.FreeAddr(t)
	w := startWorkerProcess(t, cfg, moto, "SHUTDOWN_TIMEOUT=2s", "SYNC_VISIBILITY=2m", "SYNC_WORKER_CONCURRENCY=1",
		"WORKER_HTTP_ADDR="+opsAddr)
	opsClient := &http.Client{Timeout: 2 * time.Second}
	readyz := func() (int, string) {
		r, err := opsClient.Get("http://" + opsAddr + "/readyz")
		if err != nil {
			return 0, err.Error()
		}
		defer r.Body.Close()
		b, _ := io.ReadAll(r.Body)
		return r.StatusCode, string(b)
	}
	lockKey := cfg.RedisKeyPrefix + "sync:lock:" + strconv.FormatInt(userID, 10)
	rdb := e.Server.App.Redis
	testenv.Eventually(t, 60*time.Second, func() bool {
		n, _ := rdb.Exists(ctx, lockKey).Result()
		return n == 1
	}, "the worker takes user %d's lock", userID)
	testenv.Eventually(t, 30*time.Second, func() bool {
		code, _ := readyz()
		return code == http.StatusOK
	}, "the worker's /readyz answers 200 before SIGTERM")
	if err := w.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	signalled := time.Now()
	// Not ready from the signal until the exit (the drain takes SHUTDOWN_TIMEOUT here).
	testenv.Eventually(t, 20*time.Second, func() bool {
		select {
		case <-w.done:
			t.Fatal("bca-worker exited before its /readyz answered 503")
		default:
		}
		switch code, body := readyz(); code {
		case http.StatusServiceUnavailable:
			if !strings.Contains(body, `"drain"`) {
				t.Errorf("/readyz during the drain names no drain: %s", body)
			}
			return true
		case http.StatusOK: // the signal has not landed yet
			return false
		default:
			t.Fatalf("/readyz during the drain: %d %s, want 503", code, body)
			return false
		}
	}, "the worker's /readyz answers 503 after SIGTERM")
	if code := waitExit(t, w, 20*time.Second); code != 0 {
		t.Fatalf("bca-worker exited %d after SIGTERM, want 0", code)
	}
	t.Logf("exited %v after SIGTERM", time.Since(signalled).Round(time.Millisecond))
	if n, err := rdb.Exists(ctx, lockKey).Result(); err != nil || n != 0 {
		t.Errorf("the user's lock is still held after the drain (exists %d, err %v)", n, err)
	}
	if !strings.Contains(w.out.String(), "did not drain in time") {
		t.Errorf("the worker did not report handing its build back")
	}
	// The message is visible again at once, not after the 2-minute visibility.
	client := sqsClient(t, moto)
	out, err := client.ReceiveMessage(ctx, &sqs.ReceiveMessageInput{
		QueueUrl: &res.queue.QueueURL, MaxNumberOfMessages: 10, WaitTimeSeconds: 2, VisibilityTimeout: 30,
		MessageSystemAttributeNames: []sqstypes.MessageSystemAttributeName{sqstypes.MessageSystemAttributeNameApproximateReceiveCount},
	})
	if err != nil {
		t.Fatal(err)
	}
	found := false
	for _, m := range out.Messages {
		if strings.Contains(aws.ToString(m.Body), fmt.Sprintf(`"user_id":%d`, userID)) {
			found = true
			if n := m.Attributes[string(sqstypes.MessageSystemAttributeNameApproximateReceiveCount)]; n == "1" {
				t.Errorf("the message was never received by the worker (receive count %s)", n)
			}
		}
	}
	if !found {
		t.Fatalf("user %d's task is not back in the queue after the drain (%d messages visible)", userID, len(out.Messages))
	}
	// Released, the work is done by the next worker once the row is free.
	if err := tx.Rollback(ctx); err != nil {
		t.Fatal(err)
	}
	for _, m := range out.Messages {
		_, _ = client.ChangeMessageVisibility(ctx, &sqs.ChangeMessageVisibilityInput{QueueUrl: &res.queue.QueueURL, ReceiptHandle: m.ReceiptHandle, VisibilityTimeout: 0})
	}
	startWorkerProcess(t, cfg, moto)
	waitForETag(t, e.As(u.Token()), "")
}
