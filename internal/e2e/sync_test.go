package e2e

import (
	"context"
	"crypto/md5"
	"encoding/hex"
	"fmt"
	"io"
	"io/fs"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sqs"

	"github.com/bca-app/backend/gen/apiclient"
	"github.com/bca-app/backend/internal/app"
	"github.com/bca-app/backend/internal/config"
	"github.com/bca-app/backend/internal/push/fcmtest"
	"github.com/bca-app/backend/internal/storage"
	"github.com/bca-app/backend/internal/syncfile"
	"github.com/bca-app/backend/internal/syncfile/syncfiletest"
	"github.com/bca-app/backend/internal/testenv"
)

var md5ETag = regexp.MustCompile(`^"[0-9a-f]{32}"$`)

// syncHead answers HEAD /sync with If-None-Match when given.
func syncHead(t *testing.T, c *apiclient.ClientWithResponses, ifNoneMatch string) *apiclient.HeadSyncFileResponse {
	t.Helper()
	params := &apiclient.HeadSyncFileParams{}
	if ifNoneMatch != "" {
		params.IfNoneMatch = &ifNoneMatch
	}
	r, err := c.HeadSyncFileWithResponse(ctx, params)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

func syncGet(t *testing.T, c *apiclient.ClientWithResponses, ifNoneMatch string) *apiclient.GetSyncFileResponse {
	t.Helper()
	params := &apiclient.GetSyncFileParams{}
	if ifNoneMatch != "" {
		params.IfNoneMatch = &ifNoneMatch
	}
	r, err := c.GetSyncFileWithResponse(ctx, params)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

// checkFile checks that body is a sync file whose MD5 is the quoted etag, and returns its rows.
func checkFile(t *testing.T, h http.Header, body []byte) syncfile.Contents {
	t.Helper()
	etag := h.Get("ETag")
	sum := md5.Sum(body)
	if !md5ETag.MatchString(etag) || etag != `"`+hex.EncodeToString(sum[:])+`"` {
		t.Fatalf("ETag %q is not the quoted MD5 of the %d bytes", etag, len(body))
	}
	if ct := h.Get("Content-Type"); ct != "application/vnd.sqlite3" {
		t.Fatalf("Content-Type %q", ct)
	}
	if cl := h.Get("Content-Length"); cl != strconv.Itoa(len(body)) {
		t.Fatalf("Content-Length %q for %d bytes", cl, len(body))
	}
	path := filepath.Join(t.TempDir(), "user_db.sqlite")
	if err := os.WriteFile(path, body, 0o600); err != nil {
		t.Fatal(err)
	}
	c, err := syncfiletest.Read(ctx, path)
	if err != nil {
		t.Fatalf("the download is not a sync file: %v", err)
	}
	return c
}

func profileNames(c syncfile.Contents) []string {
	var names []string
	for _, p := range c.Profiles {
		names = append(names, p.Name)
	}
	return names
}

func TestSyncFileOverHTTP(t *testing.T) {
	e := New(t)
	u := e.SignUp(t)
	c := e.As(u.Token())

	// No file yet: HEAD builds it on the spot.
	head := syncHead(t, c, "")
	Status(t, "head", head.StatusCode(), http.StatusOK, head.Body)
	etag := head.HTTPResponse.Header.Get("ETag")
	if !md5ETag.MatchString(etag) || head.HTTPResponse.Header.Get("Sync-Pending") != "false" {
		t.Fatalf("HEAD headers: %v", head.HTTPResponse.Header)
	}
	get := syncGet(t, c, "")
	Status(t, "get", get.StatusCode(), http.StatusOK, nil)
	if got := get.HTTPResponse.Header.Get("ETag"); got != etag {
		t.Fatalf("GET ETag %s, HEAD said %s", got, etag)
	}
	if cl := head.HTTPResponse.Header.Get("Content-Length"); cl != strconv.Itoa(len(get.Body)) {
		t.Fatalf("HEAD Content-Length %s, file has %d bytes", cl, len(get.Body))
	}
	if names := profileNames(checkFile(t, get.HTTPResponse.Header, get.Body)); len(names) != 1 {
		t.Fatalf("the file holds the first profile: %v", names)
	}

	// The client's copy is current.
	for _, tag := range []string{etag, `W/` + etag, `"other", ` + etag} {
		if r := syncGet(t, c, tag); r.StatusCode() != http.StatusNotModified || r.HTTPResponse.Header.Get("ETag") != etag || len(r.Body) != 0 {
			t.Fatalf("GET If-None-Match %s: %d %v", tag, r.StatusCode(), r.HTTPResponse.Header)
		}
	}
	if r := syncHead(t, c, etag); r.StatusCode() != http.StatusNotModified {
		t.Fatalf("HEAD If-None-Match: %d", r.StatusCode())
	}
	if r := syncGet(t, c, `"0123456789abcdef0123456789abcdef"`); r.StatusCode() != http.StatusOK {
		t.Fatalf("a stale copy gets the file: %d", r.StatusCode())
	}

	// A change with no worker running: the file is owed a build.
	e.NewProfile(t, u, map[string]any{"name": "second"})
	head = syncHead(t, c, etag)
	if head.StatusCode() != http.StatusNotModified || head.HTTPResponse.Header.Get("Sync-Pending") != "true" {
		t.Fatalf("pending build: %d %v", head.StatusCode(), head.HTTPResponse.Header)
	}

	// Rebuild: built now, returned like GET.
	rb, err := c.RebuildSyncFileWithResponse(ctx)
	if err != nil {
		t.Fatal(err)
	}
	Status(t, "rebuild", rb.StatusCode(), http.StatusOK, nil)
	rebuilt := checkFile(t, rb.HTTPResponse.Header, rb.Body)
	newETag := rb.HTTPResponse.Header.Get("ETag")
	if newETag == etag || rb.HTTPResponse.Header.Get("Sync-Pending") != "false" || len(rebuilt.Profiles) != 2 {
		t.Fatalf("rebuilt file: ETag %s (was %s), pending %s, profiles %v", newETag, etag,
			rb.HTTPResponse.Header.Get("Sync-Pending"), profileNames(rebuilt))
	}

	// HEAD and 304 answer from the stored ETag: with every object gone from storage they still
	// answer, and GET builds the lost file again.
	removeObjects(t, e.Config.StorageDir)
	if r := syncHead(t, c, ""); r.StatusCode() != http.StatusOK || r.HTTPResponse.Header.Get("ETag") != newETag {
		t.Fatalf("HEAD without the object: %d %v", r.StatusCode(), r.HTTPResponse.Header)
	}
	if r := syncGet(t, c, newETag); r.StatusCode() != http.StatusNotModified {
		t.Fatalf("304 without the object: %d", r.StatusCode())
	}
	healed := syncGet(t, c, "")
	Status(t, "get a lost file", healed.StatusCode(), http.StatusOK, nil)
	if rows := checkFile(t, healed.HTTPResponse.Header, healed.Body); len(rows.Profiles) != 2 {
		t.Fatalf("healed file: %v", profileNames(rows))
	}

	// Rebuilds are rate-limited per user.
	var limited *apiclient.RebuildSyncFileResponse
	for range 10 {
		r, err := c.RebuildSyncFileWithResponse(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if r.StatusCode() == http.StatusTooManyRequests {
			limited = r
			break
		}
		Status(t, "rebuild", r.StatusCode(), http.StatusOK, nil)
	}
	if limited == nil || limited.HTTPResponse.Header.Get("Retry-After") == "" {
		t.Fatal("rebuilds are limited, with Retry-After")
	}

	// Not through the validating client: a HEAD answer has no body, so its problem document
	// cannot be checked.
	for _, method := range []string{"HEAD", "GET"} {
		req, err := http.NewRequest(method, e.Server.URL+"/api/v1/sync", nil)
		if err != nil {
			t.Fatal(err)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusUnauthorized {
			t.Fatalf("anonymous %s: %d", method, resp.StatusCode)
		}
	}
}

// removeObjects deletes every object of the local store under dir.
func removeObjects(t *testing.T, dir string) {
	t.Helper()
	err := filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err == nil && d.Type().IsRegular() {
			return os.Remove(path)
		}
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
}

// waitForETag polls HEAD until the file is current (not pending) and differs from old.
func waitForETag(t *testing.T, c *apiclient.ClientWithResponses, old string) string {
	t.Helper()
	var etag, pending string
	if !testenv.WaitFor(30*time.Second, func() bool {
		r := syncHead(t, c, "")
		Status(t, "head", r.StatusCode(), http.StatusOK, r.Body)
		etag, pending = r.HTTPResponse.Header.Get("ETag"), r.HTTPResponse.Header.Get("Sync-Pending")
		return etag != old && pending == "false"
	}) {
		t.Fatalf("the file never changed from %s (pending %s)", old, pending)
	}
	return etag
}

// TestSyncByEmbeddedWorker runs the worker inside the API process, as `make run`
// does: a change by one user reaches another user's file, and the FCM data message to the
// user's device (the real firebase client against a loopback FCM) carries the new ETag.
func TestSyncByEmbeddedWorker(t *testing.T) {
	fake := fcmtest.New(t)
	e := New(t, func(c *config.Config) {
		c.EmbeddedWorker = true
		c.FirebaseCertificate, c.FCMEndpoint = fake.Credentials(), fake.Endpoint()
	})
	alice, bob := e.SignUp(t), e.SignUp(t)
	phone := "alice-phone"
	signIn, err := e.Anon().SignInWithResponse(ctx, &apiclient.SignInParams{XClientToken: &phone},
		apiclient.SignInJSONRequestBody{Login: alice.LoginID, Password: Password})
	if err != nil {
		t.Fatal(err)
	}
	Status(t, "sign in on the phone", signIn.StatusCode(), http.StatusOK, signIn.Body)
	a := e.FirstProfile(t, alice)
	pub := e.NewProfile(t, bob, map[string]any{"name": "Bob", "private": false})
	status, _, body := e.call(t, alice.Token(), a, "PUT", fmt.Sprintf("/api/v1/profiles/%d/relation", pub.Id), map[string]any{"status": "FOLLOW"})
	Status(t, "follow", status, http.StatusOK, body)

	c := e.As(alice.Token())
	first := waitForETag(t, c, "")
	status, h, body := e.call(t, bob.Token(), 0, "PATCH", fmt.Sprintf("/api/v1/profiles/%d", pub.Id), map[string]any{"name": "Bob renamed"},
		"If-Match", `"`+strconv.FormatInt(pub.Version, 10)+`"`)
	Status(t, "rename", status, http.StatusOK, body)
	second := waitForETag(t, c, first)

	get := syncGet(t, c, first)
	Status(t, "get", get.StatusCode(), http.StatusOK, nil)
	rows := checkFile(t, get.HTTPResponse.Header, get.Body)
	var found bool
	for _, p := range rows.Profiles {
		if p.ID == pub.Id {
			found = true
			if p.Name != "Bob renamed" || `"`+p.CommitID+`"` != h.Get("ETag") {
				t.Fatalf("Bob's row: %+v, API ETag %s", p, h.Get("ETag"))
			}
		}
	}
	if !found {
		t.Fatalf("Bob's profile is in Alice's file: %v", profileNames(rows))
	}
	want := strings.Trim(second, `"`)
	fake.Wait(t, 10*time.Second, "the sync push", func(msgs []fcmtest.Message) bool {
		for _, m := range msgs {
			if m.Token == phone && m.Data["type"] == "sync" && m.Data["etag"] == want && m.Notification == nil {
				return true
			}
		}
		return false
	})
}

// TestSyncThroughSQSAndS3 is the production shape: writes go to the SQS FIFO queue, the worker
// consumes it and stores files in S3, and downloads redirect to presigned URLs whose bytes hash
// to the stored ETag.
func TestSyncThroughSQSAndS3(t *testing.T) {
	endpoint, bucket := testenv.AWSEndpoint(t), testenv.UniqueName("sync")
	store, err := storage.NewS3(ctx, storage.S3Config{
		Bucket: bucket, Region: "us-east-1", EndpointURL: endpoint, UsePathStyle: true, AccessKeyID: "test", SecretAccessKey: "test",
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := store.EnsureBucket(ctx); err != nil {
		t.Fatal(err)
	}
	queueURL := createTaskQueue(t)
	e := New(t, func(c *config.Config) {
		c.AWS = config.AWS{Region: "us-east-1", AccessKeyID: "test", SecretAccessKey: "test", EndpointURL: endpoint,
			S3Bucket: bucket, S3PathStyle: true, S3Redirect: true}
		c.AWS.TaskSQSURL = queueURL
		c.EmbeddedWorker = true
	})
	u := e.SignUp(t)
	c := e.As(u.Token())
	first := waitForETag(t, c, "")
	e.NewProfile(t, u, map[string]any{"name": "second"})
	second := waitForETag(t, c, first)

	r := syncGet(t, c, "")
	Status(t, "get", r.StatusCode(), http.StatusFound, nil)
	loc := r.HTTPResponse.Header.Get("Location")
	if r.HTTPResponse.Header.Get("ETag") != second || !strings.Contains(loc, "X-Amz-Signature=") {
		t.Fatalf("redirect: ETag %s (want %s), Location %s", r.HTTPResponse.Header.Get("ETag"), second, loc)
	}
	resp, err := http.Get(loc)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	if sum := md5.Sum(body); `"`+hex.EncodeToString(sum[:])+`"` != second {
		t.Fatalf("presigned download: MD5 %x, ETag %s", sum, second)
	}
}

// createTaskQueue creates a FIFO task queue in moto, as an operator would.
func createTaskQueue(t *testing.T) string {
	t.Helper()
	awsCfg, err := app.AWSConfig(ctx, config.AWS{Region: "us-east-1", AccessKeyID: "test", SecretAccessKey: "test"})
	if err != nil {
		t.Fatal(err)
	}
	client := sqs.NewFromConfig(awsCfg, func(o *sqs.Options) { o.BaseEndpoint = aws.String(testenv.AWSEndpoint(t)) })
	out, err := client.CreateQueue(context.Background(), &sqs.CreateQueueInput{
		QueueName:  aws.String(testenv.UniqueName("tasks") + ".fifo"),
		Attributes: map[string]string{"FifoQueue": "true", "VisibilityTimeout": "30"},
	})
	if err != nil {
		t.Fatal(err)
	}
	return aws.ToString(out.QueueUrl)
}
