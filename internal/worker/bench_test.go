package worker_test

import (
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"

	"github.com/bca-app/backend/internal/outbox"
	"github.com/bca-app/backend/internal/syncqueue"
	"github.com/bca-app/backend/internal/syncsvc/synctest"
	"github.com/bca-app/backend/internal/testenv"
	"github.com/bca-app/backend/internal/worker"
)

// BenchmarkSyncLag measures the sync lag from the commit of a change to the publication of a
// file holding it (docs/sync.md §4: p50/p99) under a steady write load, on both queues, with one
// worker of production options in this process. It asserts nothing; record the figures:
//
//	go run ./cmd/bcactl with-services -- go test -run '^$' -bench SyncLag -benchtime 1x ./internal/worker/
//
// It also reports the process's peak heap while the worker ran (worker memory). On the SQS path
// writes go through the API's background sender, and the "crash" runs have two workers of which
// one is killed (its context cancelled: in-flight builds abandoned, messages and locks left to
// lapse, as after SIGKILL) twice during the run and replaced.
func BenchmarkSyncLag(b *testing.B) {
	for _, mode := range []string{"postgres", "sqs"} {
		for _, rate := range []int{50, 200} {
			b.Run(fmt.Sprintf("%s/writes=%d_per_s", mode, rate), func(b *testing.B) {
				for range b.N {
					measureLag(b, mode, rate, 10*time.Second, 0)
				}
			})
			if mode == "sqs" {
				b.Run(fmt.Sprintf("%s/writes=%d_per_s/crash", mode, rate), func(b *testing.B) {
					for range b.N {
						measureLag(b, mode, rate, 10*time.Second, 2)
					}
				})
			}
		}
	}
}

type pendingWrite struct {
	user, version int64
	at            time.Time
}

func measureLag(b *testing.B, mode string, rate int, duration time.Duration, crashes int) {
	p := newPipeline(b, mode, 50)
	opts := worker.Defaults()
	// moto fixes, at the start of a long poll, which FIFO groups are in flight and does not
	// deliver their later messages until the poll ends; real SQS does not. A short poll keeps
	// that artefact from dominating the figures.
	opts.WaitTime = time.Second
	var workersMu sync.Mutex
	workers := []*runningWorker{startWorker(b, p.deps, opts)}
	if crashes > 0 {
		workers = append(workers, startWorker(b, p.deps, opts))
	}
	w := p.e.NewWorld()
	w.Notifier = p.producer
	if mode == "sqs" { // the API's producer: a background sender
		sender := newSender(b, p.deps.Queue, syncqueue.DefaultSenderOptions(), p.e)
		b.Cleanup(func() { _ = sender.Close(ctx) })
		w.Notifier = sender
	}
	const users = 50
	profileOf := map[int64]int64{}
	var ids []int64
	for range users {
		u := w.User(b)
		ids = append(ids, u)
		profileOf[u] = w.Profile(b, u, synctest.ProfileSpec{})
	}
	waitDrained(b, p.e, time.Minute)

	var (
		mu      sync.Mutex
		pending []pendingWrite
		lags    []time.Duration
	)
	stop := make(chan struct{})
	var bg sync.WaitGroup
	bg.Go(func() { // watch built_version, resolving writes as their version is published
		for {
			select {
			case <-stop:
				return
			case <-time.After(2 * time.Millisecond):
			}
			rows, err := p.e.Pool.Query(ctx, `SELECT user_id, built_version FROM sync_states`)
			if err != nil {
				continue
			}
			built := map[int64]int64{}
			for rows.Next() {
				var u, v int64
				if rows.Scan(&u, &v) == nil {
					built[u] = v
				}
			}
			rows.Close()
			now := time.Now()
			mu.Lock()
			pending = slices.DeleteFunc(pending, func(pw pendingWrite) bool {
				if built[pw.user] >= pw.version {
					lags = append(lags, now.Sub(pw.at))
					return true
				}
				return false
			})
			mu.Unlock()
		}
	})
	var peakHeap uint64
	bg.Go(func() {
		var m runtime.MemStats
		for {
			select {
			case <-stop:
				return
			case <-time.After(50 * time.Millisecond):
			}
			runtime.ReadMemStats(&m)
			peakHeap = max(peakHeap, m.HeapInuse)
		}
	})

	builds := p.e.Svc.Metrics().Builds.WithLabelValues("published")
	buildsBefore := counter(b, builds)
	b.ResetTimer()
	// Writes start on a fixed schedule, each in its own goroutine (at most 8 in flight), so a
	// slow commit or queue send does not lower the offered rate.
	rng := rand.New(rand.NewPCG(1, 2))
	tick := time.NewTicker(time.Second / time.Duration(rate))
	deadline := time.Now().Add(duration)
	for i := range crashes {
		time.AfterFunc(duration*time.Duration(i+1)/time.Duration(crashes+1), func() {
			workersMu.Lock()
			defer workersMu.Unlock()
			workers[0].kill()
			workers[0] = startWorker(b, p.deps, opts)
		})
	}
	inFlight := make(chan struct{}, 8)
	var writers sync.WaitGroup
	writes := 0
	for time.Now().Before(deadline) {
		<-tick.C
		u := ids[rng.IntN(len(ids))]
		prof := profileOf[u]
		name := "n" + strconv.Itoa(writes)
		writes++
		inFlight <- struct{}{}
		writers.Go(func() {
			defer func() { <-inFlight }()
			var bumps []outbox.Bump
			err := w.TryWrite(ctx, func(ctx context.Context, tx *outbox.Tx) error {
				if _, err := tx.Raw.Exec(ctx, `UPDATE profiles SET name = $2, version = version + 1, modified_at = now() WHERE id = $1`, prof, name); err != nil {
					return err
				}
				users, err := tx.Q.AudienceOfProfiles(ctx, []int64{prof})
				if err != nil {
					return err
				}
				bumps, err = outbox.MarkStale(ctx, tx.Q, users...)
				tx.Add(bumps)
				return err
			})
			if err != nil {
				b.Error(err)
				return
			}
			// Measured from the return of the write: after commit and the producer's send, as a
			// client sees it.
			at := time.Now()
			mu.Lock()
			for _, bp := range bumps {
				pending = append(pending, pendingWrite{user: bp.UserID, version: bp.Version, at: at})
			}
			mu.Unlock()
		})
	}
	writers.Wait()
	tick.Stop()
	waitDrained(b, p.e, time.Minute)
	// The lag observer matches the last writes to their builds on its next look.
	testenv.WaitFor(5*time.Second, func() bool { mu.Lock(); defer mu.Unlock(); return len(pending) == 0 })
	close(stop)
	bg.Wait()
	b.StopTimer()

	if len(pending) > 0 {
		b.Fatalf("%d writes never reached a file", len(pending))
	}
	slices.Sort(lags)
	pct := func(q int) float64 {
		i := (len(lags)*q + 99) / 100
		return float64(lags[max(i-1, 0)]) / float64(time.Millisecond)
	}
	b.ReportMetric(float64(writes)/duration.Seconds(), "writes/s")
	b.ReportMetric(pct(50), "lag-p50-ms")
	b.ReportMetric(pct(99), "lag-p99-ms")
	b.ReportMetric(float64(lags[len(lags)-1])/float64(time.Millisecond), "lag-max-ms")
	b.ReportMetric(float64(peakHeap)/(1<<20), "peak-heap-MiB")
	b.ReportMetric(peakRSS()/(1<<20), "peak-rss-MiB")
	b.ReportMetric((counter(b, builds)-buildsBefore)/float64(writes), "builds/write")
	b.Logf("outcomes: %s", outcomesOf(b, p.e.Svc))
	for _, mode := range []string{"full", "incremental"} {
		var m dto.Metric
		if err := p.e.Svc.Metrics().BuildSeconds.WithLabelValues(mode).(prometheus.Histogram).Write(&m); err == nil {
			h := m.GetHistogram()
			var bk []string
			for _, x := range h.GetBucket() {
				bk = append(bk, fmt.Sprintf("≤%gs:%d", x.GetUpperBound(), x.GetCumulativeCount()))
			}
			b.Logf("%s builds: %d, mean %.1f ms, %v", mode, h.GetSampleCount(), 1000*h.GetSampleSum()/float64(max(h.GetSampleCount(), 1)), bk)
		}
	}
}

// peakRSS is the process's peak resident set (VmHWM), 0 where /proc is missing.
func peakRSS() float64 {
	status, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return 0
	}
	for line := range strings.Lines(string(status)) {
		if rest, ok := strings.CutPrefix(line, "VmHWM:"); ok {
			kb, _ := strconv.ParseFloat(strings.TrimSuffix(strings.TrimSpace(rest), " kB"), 64)
			return kb * 1024
		}
	}
	return 0
}
