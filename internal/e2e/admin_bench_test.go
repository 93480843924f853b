package e2e

import (
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/bca-app/backend/internal/config"
)

// BenchmarkAdminSearch measures searchUsers over 100,000 accounts: prefixes of login ids,
// nicknames and e-mails, upper case, through the whole stack with an admin's token.
func BenchmarkAdminSearch(b *testing.B) {
	e := benchEnv(b)
	adminUser := e.SignUp(b)
	e.setRole(b, adminUser, true)
	e.Exec(b, `INSERT INTO users (login_id, login_key, nickname, nickname_key, email, email_key, password_hash)
		SELECT 'Bench_' || i, 'bench_' || i, 'Nick ' || md5(i::text), 'nick ' || md5(i::text),
		       'm' || i || '@bench.example', 'm' || i || '@bench.example', 'x'
		FROM generate_series(1, 100000) AS i`)
	e.Exec(b, "ANALYZE users")
	queries := []string{"BENCH_4242", "Bench_99", "NICK A", "nick 0f", "M777", "m12345@", "bench_1", "zzz"}
	var n atomic.Int64
	tr := &http.Transport{MaxIdleConns: 256, MaxIdleConnsPerHost: 256}
	client := &http.Client{Transport: tr, Timeout: 30 * time.Second}
	measureParallel(b, "req/s", func() func() error {
		return func() error {
			q := queries[int(n.Add(1))%len(queries)]
			req, _ := http.NewRequest("GET", e.Server.URL+"/api/v1/admin/users?limit=20&q="+url.QueryEscape(q), nil)
			req.Header.Set("Authorization", "Bearer "+adminUser.Token())
			resp, err := client.Do(req)
			if err != nil {
				return err
			}
			resp.Body.Close()
			if resp.StatusCode != http.StatusOK {
				return fmt.Errorf("status %d", resp.StatusCode)
			}
			return nil
		}
	})
}

// BenchmarkPipelineFiguresUnderWriteLoad reads getPipelineFigures while writers keep changing
// relations between 40 users (each change bumps two sync files) and the embedded worker builds
// the files; it reports the write rate reached and the figures the last read saw.
func BenchmarkPipelineFiguresUnderWriteLoad(b *testing.B) {
	e := benchEnv(b, func(c *config.Config) { c.EmbeddedWorker = true })
	adminUser := e.SignUp(b)
	e.setRole(b, adminUser, true)
	var cast []chatter
	for range 40 {
		cast = append(cast, e.newChatter(b))
	}
	stop := make(chan struct{})
	var writes atomic.Int64
	var wg sync.WaitGroup
	tr := &http.Transport{MaxIdleConns: 64, MaxIdleConnsPerHost: 64}
	client := &http.Client{Transport: tr, Timeout: 30 * time.Second}
	for w := range 4 {
		wg.Go(func() {
			for i := 0; ; i++ {
				select {
				case <-stop:
					return
				default:
				}
				from, to := cast[(w*10+i)%len(cast)], cast[(w*10+i+1+i/len(cast))%len(cast)]
				if from.Profile == to.Profile {
					continue
				}
				status := []string{"FOLLOW", "HIDE"}[i%2]
				req, _ := http.NewRequest("PUT", fmt.Sprintf("%s/api/v1/profiles/%d/relation", e.Server.URL, to.Profile),
					strings.NewReader(`{"status":"`+status+`"}`))
				req.Header.Set("Authorization", "Bearer "+from.Token())
				req.Header.Set("X-Profile-Id", fmt.Sprint(from.Profile))
				req.Header.Set("Content-Type", "application/json")
				if resp, err := client.Do(req); err == nil {
					resp.Body.Close()
					if resp.StatusCode == http.StatusOK {
						writes.Add(1)
					}
				}
			}
		})
	}
	time.Sleep(time.Second) // wall time on purpose: let the load form a backlog and lag samples
	start, w0 := time.Now(), writes.Load()
	measureParallel(b, "req/s", benchGet(e.Server.URL+"/api/v1/admin/pipeline?minutes=1", "Authorization", "Bearer "+adminUser.Token()))
	b.ReportMetric(float64(writes.Load()-w0)/time.Since(start).Seconds(), "writes/s")
	close(stop)
	wg.Wait()
	f, err := e.As(adminUser.Token()).GetPipelineFiguresWithResponse(ctx, nil)
	if err == nil && f.JSON200 != nil {
		b.Logf("figures: outbox %d, queue %d, oldest %.3fs, lag samples %d p50 %v p99 %v, workers %d",
			f.JSON200.OutboxDepth, f.JSON200.QueueDepth, f.JSON200.OldestPendingSeconds, f.JSON200.Lag.Samples,
			deref(f.JSON200.Lag.P50Seconds), deref(f.JSON200.Lag.P99Seconds), len(f.JSON200.Workers))
	}
}

func deref(p *float64) float64 {
	if p == nil {
		return -1
	}
	return *p
}
