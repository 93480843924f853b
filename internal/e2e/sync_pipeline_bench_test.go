package e2e

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/bca-app/backend/gen/apiclient"
	"github.com/bca-app/backend/internal/testenv"
)

// BenchmarkWriteLatencySlowSQS measures setRelation (a write whose commit bumps two users' sync
// files, so every request produces SQS messages) with SQS healthy and with every SQS call held
// for 2 s by a loopback proxy in front of moto. The producer sends in the background, so the
// write latency should not follow SQS's:
//
//	go run ./cmd/bcactl with-services -- go test -run '^$' -bench WriteLatencySlowSQS -benchtime 2000x ./internal/e2e/
func BenchmarkWriteLatencySlowSQS(b *testing.B) {
	for _, delay := range []time.Duration{0, 2 * time.Second} {
		b.Run(fmt.Sprintf("sqs_delay=%v", delay), func(b *testing.B) {
			res := provision(b)
			proxy := testenv.NewDelayProxy(b, testenv.AWSEndpoint(b))
			proxy.SetDelay(func(r *http.Request) time.Duration {
				if testenv.IsSQS(r) {
					return delay
				}
				return 0
			})
			e := benchEnv(b, res.onAWS(proxy.URL))
			owner := e.SignUp(b)
			var targets []int64
			for i := range 16 {
				targets = append(targets, e.NewProfile(b, owner, map[string]any{"name": fmt.Sprintf("t%d", i), "private": false}).Id)
			}
			var next atomic.Int64
			measureParallel(b, "writes/s", func() func() error {
				u := e.SignUp(b)
				acting := e.FirstProfile(b, u)
				c := benchClient(b, e, u.Token())
				statuses := []string{"FOLLOW", "HIDE"}
				i := int(next.Add(1))
				return func() error {
					i++
					body := strings.NewReader(`{"status":"` + statuses[i%2] + `"}`)
					resp, err := c.SetRelationWithBody(context.Background(), targets[i%len(targets)], &apiclient.SetRelationParams{XProfileId: acting}, "application/json", body)
					return okStatus(resp, err, http.StatusOK, http.StatusConflict)
				}
			})
		})
	}
}
