package app_test

import (
	"strings"
	"testing"

	"github.com/bca-app/backend/internal/ratelimit"
	"github.com/bca-app/backend/internal/syncqueue"
	"github.com/bca-app/backend/internal/worker"
)

// TestConstructorsRefuseMissingDependencies: the pipeline's and the limiter's constructors name
// what is missing instead of handing out a value that fails later (docs/architecture.md).
func TestConstructorsRefuseMissingDependencies(t *testing.T) {
	for name, tc := range map[string]struct {
		err  error
		want []string
	}{
		"ratelimit": {err: second(ratelimit.New(ratelimit.Deps{})), want: []string{"Redis"}},
		"sqs":       {err: second(syncqueue.NewSQS(syncqueue.SQSDeps{URL: "http://127.0.0.1/q"})), want: []string{"Client", "Log", "Metrics"}},
		"sender":    {err: second(syncqueue.NewSender(syncqueue.SenderDeps{})), want: []string{"Log", "Metrics", "Queue"}},
		"worker":    {err: second(worker.New(worker.Deps{})), want: []string{"Log", "Notifier", "Pool", "Sync"}},
	} {
		if tc.err == nil {
			t.Errorf("%s: built without its dependencies", name)
			continue
		}
		for _, w := range tc.want {
			if !strings.Contains(tc.err.Error(), w) {
				t.Errorf("%s: %q does not name %s", name, tc.err, w)
			}
		}
	}
}

func second[T any](_ T, err error) error { return err }
