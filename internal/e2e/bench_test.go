package e2e

import (
	"context"
	"fmt"
	"net/http"
	"runtime"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/bca-app/backend/gen/apiclient"
	"github.com/bca-app/backend/internal/config"
)

// Benchmarks of the whole request path (HTTP, middleware, validation, PostgreSQL, Redis) on a
// loopback server. They assert nothing about speed; record results with the machine and date:
//
//	go run ./cmd/bcactl with-services -- go test -run '^$' -bench . -benchtime 5s ./internal/e2e/

// benchEnv is a server with rate limits out of the way; opts adjust it further.
func benchEnv(b *testing.B, opts ...Option) *Env {
	b.Helper()
	return New(b, append([]Option{func(c *config.Config) {
		c.RateLimit = config.RateLimits{PerAddress: 1 << 30, PerAccount: 1 << 30}
	}}, opts...)...)
}

// benchClient is a generated client that, unlike the tests' clients, does not validate answers
// against the spec, so the figures are the server's. Its connection pool fits the concurrency.
func benchClient(b *testing.B, e *Env, token string) *apiclient.ClientWithResponses {
	b.Helper()
	tr := &http.Transport{MaxIdleConns: 256, MaxIdleConnsPerHost: 256}
	b.Cleanup(tr.CloseIdleConnections)
	c, err := apiclient.NewClientWithResponses(e.Server.URL+"/api/v1",
		apiclient.WithHTTPClient(&http.Client{Transport: tr, Timeout: 30 * time.Second}),
		apiclient.WithRequestEditorFn(func(_ context.Context, r *http.Request) error {
			if token != "" {
				r.Header.Set("Authorization", "Bearer "+token)
			}
			return nil
		}))
	if err != nil {
		b.Fatal(err)
	}
	return c
}

// measureParallel runs requests from b.RunParallel goroutines and reports throughput as unit
// and the latency percentiles of single requests. newWorker gives each goroutine its request.
func measureParallel(b *testing.B, unit string, newWorker func() func() error) {
	b.Helper()
	var (
		mu        sync.Mutex
		latencies []time.Duration
	)
	b.ResetTimer()
	start := time.Now()
	b.RunParallel(func(pb *testing.PB) {
		request := newWorker()
		local := make([]time.Duration, 0, 1024)
		for pb.Next() {
			t0 := time.Now()
			if err := request(); err != nil {
				b.Error(err)
				return
			}
			local = append(local, time.Since(t0))
		}
		mu.Lock()
		latencies = append(latencies, local...)
		mu.Unlock()
	})
	elapsed := time.Since(start)
	b.StopTimer()
	if len(latencies) == 0 {
		return
	}
	slices.Sort(latencies)
	b.ReportMetric(float64(len(latencies))/elapsed.Seconds(), unit)
	b.ReportMetric(ms(percentile(latencies, 50)), "p50-ms")
	b.ReportMetric(ms(percentile(latencies, 99)), "p99-ms")
}

// percentile returns the p-th percentile (nearest rank) of sorted latencies.
func percentile(sorted []time.Duration, p int) time.Duration {
	i := (len(sorted)*p + 99) / 100
	return sorted[max(i-1, 0)]
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

// BenchmarkSignIn signs in with the production argon2id cost; concurrent sign-ins use distinct
// accounts, as real traffic does, so they do not queue on one user row.
func BenchmarkSignIn(b *testing.B) {
	e := benchEnv(b, func(c *config.Config) { c.Password = config.Defaults().Password })
	accounts := make([]User, 4*runtime.GOMAXPROCS(0))
	for i := range accounts {
		accounts[i] = e.SignUp(b)
	}
	client := benchClient(b, e, "")
	var next atomic.Int64
	measureParallel(b, "signins/s", func() func() error {
		u := accounts[int(next.Add(1)-1)%len(accounts)]
		body := apiclient.SignInJSONRequestBody{Login: u.LoginID, Password: Password}
		return func() error {
			r, err := client.SignInWithResponse(ctx, nil, body)
			if err != nil {
				return err
			}
			if r.StatusCode() != http.StatusOK {
				return fmt.Errorf("sign in: %d %s", r.StatusCode(), r.Body)
			}
			return nil
		}
	})
}

// BenchmarkGetMyAccount reads the account with a bearer token: signature, Redis blacklist and
// session check in the middleware, then the account row — the cost every authenticated
// request pays. 8 clients per CPU keep the server busy.
func BenchmarkGetMyAccount(b *testing.B) {
	e := benchEnv(b)
	u := e.SignUp(b)
	client := benchClient(b, e, u.Token())
	b.SetParallelism(8)
	measureParallel(b, "req/s", func() func() error {
		return func() error {
			r, err := client.GetMyAccountWithResponse(ctx)
			if err != nil {
				return err
			}
			if r.StatusCode() != http.StatusOK {
				return fmt.Errorf("get my account: %d %s", r.StatusCode(), r.Body)
			}
			return nil
		}
	})
}
