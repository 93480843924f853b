package e2e

import (
	"fmt"
	"net/http"
	"testing"

	"github.com/bca-app/backend/gen/apiclient"
)

// BenchmarkSyncHead is the app's poll: HEAD /sync answered from the stored ETag (token checks,
// one sync_states read, no storage). 8 clients per CPU keep the server busy.
func BenchmarkSyncHead(b *testing.B) {
	benchSyncPoll(b, false)
}

// BenchmarkSyncNotModified is GET /sync with the current ETag: a 304 without touching storage.
func BenchmarkSyncNotModified(b *testing.B) {
	benchSyncPoll(b, true)
}

func benchSyncPoll(b *testing.B, conditionalGet bool) {
	e := benchEnv(b)
	u := e.SignUp(b)
	client := benchClient(b, e, u.Token())
	head, err := client.HeadSyncFileWithResponse(ctx, &apiclient.HeadSyncFileParams{}) // builds the file
	if err != nil || head.StatusCode() != http.StatusOK {
		b.Fatalf("first HEAD: %v %d", err, head.StatusCode())
	}
	etag := head.HTTPResponse.Header.Get("ETag")
	b.SetParallelism(8)
	measureParallel(b, "req/s", func() func() error {
		return func() error {
			if conditionalGet {
				r, err := client.GetSyncFileWithResponse(ctx, &apiclient.GetSyncFileParams{IfNoneMatch: &etag})
				if err != nil {
					return err
				}
				if r.StatusCode() != http.StatusNotModified {
					return fmt.Errorf("get: %d", r.StatusCode())
				}
				return nil
			}
			r, err := client.HeadSyncFileWithResponse(ctx, &apiclient.HeadSyncFileParams{})
			if err != nil {
				return err
			}
			if r.StatusCode() != http.StatusOK || r.HTTPResponse.Header.Get("ETag") != etag {
				return fmt.Errorf("head: %d", r.StatusCode())
			}
			return nil
		}
	})
}
