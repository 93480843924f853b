package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"runtime"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/bca-app/backend/gen/db"
	"github.com/bca-app/backend/internal/app"
	"github.com/bca-app/backend/internal/config"
)

// The hot-path benchmarks measure the routes the app calls all day, each next to its reference
// in the SAME run (so the ratios hold on a busy machine): a bare net/http + pgx handler running
// the same query, and ping for the sync poll. The server runs as in production: log level info,
// JSON access log to a file, not to the test log.
//
//	go run ./cmd/bcactl with-services -- go test -run '^$' -bench 'HotPath' -benchmem ./internal/e2e/

// hotServer starts the service with the production logger (default level, buffered JSON lines)
// writing to a file.
func hotServer(b *testing.B, opts ...Option) (*Env, *app.App, string) {
	b.Helper()
	e := benchEnv(b, opts...)
	url, a := e.serveWithLog(b, config.Defaults().LogLevel)
	return e, a, url
}

// serveWithLog starts another instance of e's service whose production logger, at level, writes
// to a file; it returns its base URL.
func (e *Env) serveWithLog(b *testing.B, level string) (string, *app.App) {
	b.Helper()
	cfg := e.Config
	cfg.LogLevel = level
	logFile, err := os.Create(filepath.Join(b.TempDir(), "access.log"))
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = logFile.Close() })
	log := app.NewLoggerTo(logFile, level)
	ctx, cancel := context.WithCancel(context.Background())
	a, err := app.New(ctx, cfg, log)
	if err != nil {
		cancel()
		b.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		cancel()
		b.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- app.Serve(ctx, a, ln) }()
	b.Cleanup(func() {
		cancel()
		<-done
		a.Close()
	})
	return "http://" + ln.Addr().String(), a
}

// BenchmarkHotPathAccessLog measures what the access log costs: ping and getProfile on a server
// at the default level (a JSON line per request) next to the same service at warn (no request
// lines), in one run. Target: the log costs at most 5 % of throughput.
func BenchmarkHotPathAccessLog(b *testing.B) {
	e, _, logged := hotServer(b)
	quiet, _ := e.serveWithLog(b, "warn")
	viewer, owner := e.SignUp(b), e.SignUp(b)
	target := e.NewProfile(b, owner, map[string]any{"name": "Bench target", "private": false})
	acting := strconv.FormatInt(e.FirstProfile(b, viewer), 10)
	auth := "Bearer " + viewer.Token()
	book := &rateBook{rates: map[string][][3]float64{}}
	for range hotPathRounds { // alternate, so drift on a shared machine does not favour one side
		book.run(b, "ping-unlogged", benchRequest("GET", quiet+"/api/v1/ping", http.StatusOK))
		book.run(b, "ping-logged", benchRequest("GET", logged+"/api/v1/ping", http.StatusOK))
		book.run(b, "getProfile-unlogged", benchRequest("GET", fmt.Sprintf("%s/api/v1/profiles/%d", quiet, target.Id), http.StatusOK, "Authorization", auth, "X-Profile-Id", acting))
		book.run(b, "getProfile-logged", benchRequest("GET", fmt.Sprintf("%s/api/v1/profiles/%d", logged, target.Id), http.StatusOK, "Authorization", auth, "X-Profile-Id", acting))
	}
	book.summary(b, [][2]string{{"ping-logged", "ping-unlogged"}, {"getProfile-logged", "getProfile-unlogged"}})
}

// benchRequest returns a worker factory issuing method url with the headers and expecting want.
func benchRequest(method, url string, want int, headers ...string) func() func() error {
	tr := &http.Transport{MaxIdleConns: 256, MaxIdleConnsPerHost: 256}
	client := &http.Client{Transport: tr, Timeout: 30 * time.Second,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	return func() func() error {
		return func() error {
			req, _ := http.NewRequest(method, url, nil)
			for i := 0; i+1 < len(headers); i += 2 {
				req.Header.Set(headers[i], headers[i+1])
			}
			resp, err := client.Do(req)
			if err != nil {
				return err
			}
			_, _ = io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			if resp.StatusCode != want {
				return fmt.Errorf("%s %s: status %d", method, url, resp.StatusCode)
			}
			return nil
		}
	}
}

// rateBook keeps the figures of every round of every sub-benchmark; the summary reports each
// figure's median over the rounds, and the ratios of those medians. The rounds interleave the
// routes, so a drift of a shared machine (another process, PostgreSQL's own background work)
// touches a route and its reference alike.
type rateBook struct {
	mu    sync.Mutex
	rates map[string][][3]float64 // per round: req/s, p50 ms, p99 ms
	// clients, when set, is how many client goroutines load each route whatever GOMAXPROCS is;
	// otherwise 8 per P.
	clients int
	// procs, when set, is the GOMAXPROCS the next routes run with (the testing package sets it
	// from -cpu for every sub-benchmark, so it is set inside it).
	procs int
}

// run measures name once; of the calls b.Run makes to size b.N, the last one is the measurement.
func (r *rateBook) run(b *testing.B, name string, factory func() func() error) {
	var last [3]float64
	ran := false
	b.Run(name, func(b *testing.B) {
		if r.procs > 0 {
			defer runtime.GOMAXPROCS(runtime.GOMAXPROCS(r.procs))
		}
		b.SetParallelism(8)
		if r.clients > 0 {
			b.SetParallelism(max(1, r.clients/runtime.GOMAXPROCS(0)))
		}
		last[0], last[1], last[2] = measureParallelRates(b, factory)
		ran = true
	})
	if !ran { // filtered out by -bench
		return
	}
	r.mu.Lock()
	r.rates[name] = append(r.rates[name], last)
	r.mu.Unlock()
}

// median returns the medians of name's figures over its rounds.
func (r *rateBook) median(name string) (m [3]float64, rounds int) {
	runs := r.rates[name]
	for i := range m {
		v := make([]float64, 0, len(runs))
		for _, run := range runs {
			v = append(v, run[i])
		}
		sort.Float64s(v)
		if len(v) > 0 {
			m[i] = v[len(v)/2]
		}
	}
	return m, len(runs)
}

func (r *rateBook) summary(b *testing.B, pairs [][2]string) {
	var sb strings.Builder
	names := make([]string, 0, len(r.rates))
	for n := range r.rates {
		names = append(names, n)
	}
	sort.Strings(names)
	fmt.Fprintf(&sb, "hot path, GOMAXPROCS=%d, medians:\n", runtime.GOMAXPROCS(0))
	for _, n := range names {
		v, rounds := r.median(n)
		fmt.Fprintf(&sb, "  %-22s %9.0f req/s  p50 %6.2f ms  p99 %6.2f ms  p99/p50 %5.1f  (%d rounds)\n", n, v[0], v[1], v[2], v[2]/v[1], rounds)
	}
	for _, p := range pairs {
		t, _ := r.median(p[0])
		ref, _ := r.median(p[1])
		if t[0] == 0 || ref[0] == 0 {
			continue
		}
		fmt.Fprintf(&sb, "  %-22s / %-22s req/s %.2f  p99 %.2f\n", p[0], p[1], t[0]/ref[0], t[2]/ref[2])
	}
	fmt.Print(sb.String())
}

// measureParallelRates is measureParallel that also returns its figures.
func measureParallelRates(b *testing.B, factory func() func() error) (rate, p50, p99 float64) {
	var (
		mu        sync.Mutex
		latencies []time.Duration
	)
	b.ResetTimer()
	start := time.Now()
	b.RunParallel(func(pb *testing.PB) {
		request := factory()
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
		return 0, 0, 0
	}
	sort.Slice(latencies, func(i, j int) bool { return latencies[i] < latencies[j] })
	rate, p50, p99 = float64(len(latencies))/elapsed.Seconds(), ms(percentile(latencies, 50)), ms(percentile(latencies, 99))
	b.ReportMetric(rate, "req/s")
	b.ReportMetric(p50, "p50-ms")
	b.ReportMetric(p99, "p99-ms")
	return rate, p50, p99
}

// bareHandler is the reference: net/http and pgx running the queries of ping, getProfile and
// getMyAccount, with no authentication, validation, logging or metrics.
func bareHandler(q *db.Queries) http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /ping", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(map[string]any{"message": "pong", "time": time.Now().UTC()})
	})
	mux.HandleFunc("GET /profiles/{id}", func(w http.ResponseWriter, r *http.Request) {
		id, _ := strconv.ParseInt(r.PathValue("id"), 10, 64)
		acting, _ := strconv.ParseInt(r.Header.Get("X-Profile-Id"), 10, 64)
		row, err := q.GetProfileView(r.Context(), db.GetProfileViewParams{ProfileID: id, ViewerProfileID: acting})
		if err != nil {
			http.Error(w, err.Error(), http.StatusNotFound)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(row.Profile)
	})
	mux.HandleFunc("GET /account/{id}", func(w http.ResponseWriter, r *http.Request) {
		id, _ := strconv.ParseInt(r.PathValue("id"), 10, 64)
		u, err := q.GetUserByID(r.Context(), id)
		if err != nil {
			http.Error(w, err.Error(), http.StatusNotFound)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(u)
	})
	return mux
}

// syncFileCards is how many cards the benchmark's sync file holds: 20 make it 36 KiB, the size
// the hot-path issue measured the full download with.
const syncFileCards = 20

// hotPathRounds is how many times the hot-path benchmarks measure each route, interleaved.
const hotPathRounds = 3

// BenchmarkHotPath measures ping, getProfile, getMyAccount, HEAD /sync, 304 GET /sync and a
// full GET /sync against their references in one run and prints the ratios of the targets.
func BenchmarkHotPath(b *testing.B) {
	e, a, url := hotServer(b)
	viewer, owner := e.SignUp(b), e.SignUp(b)
	target := e.NewProfile(b, owner, map[string]any{"name": "Bench target", "private": false,
		"data": map[string]any{"phone": map[string]any{"index": 0, "value": map[string]any{"m": map[string]any{"index": 0, "value": "+82"}}}}})
	acting := strconv.FormatInt(e.FirstProfile(b, viewer), 10)
	// Give the viewer's sync file some contents: cards of its own and saved ones.
	for i := range syncFileCards {
		e.NewCard(b, viewer, e.FirstProfile(b, viewer), map[string]any{"name": fmt.Sprintf("card %d", i),
			"data": map[string]any{"note": map[string]any{"index": 0, "value": strings.Repeat("lorem ipsum ", 40)}}})
	}
	if _, err := a.Sync.Rebuild(context.Background(), int64(e.Count(b, "SELECT id::int FROM users WHERE login_id = $1", viewer.LoginID))); err != nil {
		b.Fatal(err)
	}
	auth := "Bearer " + viewer.Token()
	head := benchRequest("HEAD", url+"/api/v1/sync", http.StatusOK, "Authorization", auth)
	if err := head()(); err != nil {
		b.Fatal(err)
	}
	req, _ := http.NewRequest("HEAD", url+"/api/v1/sync", nil)
	req.Header.Set("Authorization", auth)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		b.Fatal(err)
	}
	resp.Body.Close()
	etag := resp.Header.Get("ETag")
	fmt.Printf("sync file: %s bytes\n", resp.Header.Get("Content-Length"))

	bare := httptest.NewServer(bareHandler(db.New(a.Pool)))
	b.Cleanup(bare.Close)

	userID := e.Count(b, "SELECT id::int FROM users WHERE login_id = $1", viewer.LoginID)
	routes := []struct {
		name    string
		request func() func() error
	}{
		{"bare-ping", benchRequest("GET", bare.URL+"/ping", http.StatusOK)},
		{"ping", benchRequest("GET", url+"/api/v1/ping", http.StatusOK)},
		{"bare-getProfile", benchRequest("GET", fmt.Sprintf("%s/profiles/%d", bare.URL, target.Id), http.StatusOK, "X-Profile-Id", acting)},
		{"getProfile", benchRequest("GET", fmt.Sprintf("%s/api/v1/profiles/%d", url, target.Id), http.StatusOK, "Authorization", auth, "X-Profile-Id", acting)},
		{"bare-getMyAccount", benchRequest("GET", fmt.Sprintf("%s/account/%d", bare.URL, userID), http.StatusOK)},
		{"getMyAccount", benchRequest("GET", url+"/api/v1/account", http.StatusOK, "Authorization", auth)},
		{"headSync", head},
		{"getSync304", benchRequest("GET", url+"/api/v1/sync", http.StatusNotModified, "Authorization", auth, "If-None-Match", etag)},
		{"getSyncFull", benchRequest("GET", url+"/api/v1/sync", http.StatusOK, "Authorization", auth)},
	}
	book := &rateBook{rates: map[string][][3]float64{}}
	for range hotPathRounds {
		for _, r := range routes {
			book.run(b, r.name, r.request)
		}
	}
	book.summary(b, [][2]string{
		{"ping", "bare-ping"},
		{"getProfile", "bare-getProfile"},
		{"getMyAccount", "bare-getMyAccount"},
		{"headSync", "ping"},
		{"getSync304", "ping"},
		{"getSyncFull", "ping"},
	})
}

// BenchmarkHotPathPingTail finds what makes ping's p99 several times its p50: it loads ping and
// the bare handler's ping with the same 16 client goroutines, once with the process on one P
// (GOMAXPROCS=1) and once on two, interleaved. With one P the Go scheduler runs the goroutines of
// client and server in turn on one thread; with two, more threads want to run than the machine
// has CPUs, and a request whose thread the kernel has set aside waits a whole time slice. If the
// tail were the server's own (logging, collection, allocation), it would show on one P as well.
func BenchmarkHotPathPingTail(b *testing.B) {
	_, _, url := hotServer(b)
	bare := httptest.NewServer(bareHandler(nil))
	b.Cleanup(bare.Close)
	book := &rateBook{rates: map[string][][3]float64{}, clients: 16}
	for range hotPathRounds {
		for _, p := range []int{1, 2} {
			book.procs = p
			book.run(b, fmt.Sprintf("bare-ping-%dP", p), benchRequest("GET", bare.URL+"/ping", http.StatusOK))
			book.run(b, fmt.Sprintf("ping-%dP", p), benchRequest("GET", url+"/api/v1/ping", http.StatusOK))
		}
	}
	book.summary(b, [][2]string{{"ping-1P", "bare-ping-1P"}, {"ping-2P", "bare-ping-2P"}})
}

// BenchmarkHotPathAllocs runs single requests through the handler in-process (no network, no
// client), so -benchmem reports the server's own allocations per request.
func BenchmarkHotPathAllocs(b *testing.B) {
	e, a, _ := hotServer(b)
	viewer, owner := e.SignUp(b), e.SignUp(b)
	target := e.NewProfile(b, owner, map[string]any{"name": "Bench target", "private": false})
	acting := strconv.FormatInt(e.FirstProfile(b, viewer), 10)
	if _, err := a.Sync.Rebuild(context.Background(), int64(e.Count(b, "SELECT id::int FROM users WHERE login_id = $1", viewer.LoginID))); err != nil {
		b.Fatal(err)
	}
	auth := "Bearer " + viewer.Token()
	serve := func(method, path string, want int, headers ...string) func(b *testing.B) {
		return func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				req := httptest.NewRequest(method, path, nil)
				req.RemoteAddr = "127.0.0.1:50000"
				for i := 0; i+1 < len(headers); i += 2 {
					req.Header.Set(headers[i], headers[i+1])
				}
				rec := httptest.NewRecorder()
				a.Handler.ServeHTTP(rec, req)
				if rec.Code != want {
					b.Fatalf("%s %s: %d %s", method, path, rec.Code, rec.Body)
				}
			}
		}
	}
	b.Run("ping", serve("GET", "/api/v1/ping", http.StatusOK))
	b.Run("getProfile", serve("GET", fmt.Sprintf("/api/v1/profiles/%d", target.Id), http.StatusOK, "Authorization", auth, "X-Profile-Id", acting))
	b.Run("getMyAccount", serve("GET", "/api/v1/account", http.StatusOK, "Authorization", auth))
	b.Run("headSync", serve("HEAD", "/api/v1/sync", http.StatusOK, "Authorization", auth))
}

// BenchmarkHotPathSignInStorm signs in from 64 connections at once with the production argon2id
// cost. Hashing runs at most GOMAXPROCS at a time; the rest is refused with 503 + Retry-After.
// It reports the answers and the peak RSS of the process during the storm (server, second
// test server and clients together: an upper bound of the server's).
//
//	go test -run '^$' -bench 'HotPathSignInStorm' -benchtime 30s ./internal/e2e/
func BenchmarkHotPathSignInStorm(b *testing.B) {
	e, _, url := hotServer(b, func(c *config.Config) { c.Password = config.Defaults().Password })
	accounts := make([]User, 64)
	for i := range accounts {
		accounts[i] = e.SignUp(b)
	}
	tr := &http.Transport{MaxIdleConns: 128, MaxIdleConnsPerHost: 128}
	client := &http.Client{Transport: tr, Timeout: 60 * time.Second}
	var ok, busy, next atomicCounter
	b.SetParallelism(32) // 64 goroutines on 2 CPUs
	// Reset the peak RSS (VmHWM) so it measures the storm, not the set-up's sign-ups.
	_ = os.WriteFile("/proc/self/clear_refs", []byte("5"), 0)
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		u := accounts[int(next.add())%len(accounts)]
		body := `{"login":"` + u.LoginID + `","password":"` + Password + `"}`
		for pb.Next() {
			resp, err := client.Post(url+"/api/v1/account/signin", "application/json", strings.NewReader(body))
			if err != nil {
				b.Error(err)
				return
			}
			_, _ = io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			switch {
			case resp.StatusCode == http.StatusOK:
				ok.add()
			case resp.StatusCode == http.StatusServiceUnavailable && resp.Header.Get("Retry-After") != "":
				busy.add()
			default:
				b.Errorf("sign in: %d", resp.StatusCode)
				return
			}
		}
	})
	b.StopTimer()
	b.ReportMetric(float64(ok.load()), "ok")
	b.ReportMetric(float64(busy.load()), "503s")
	b.ReportMetric(peakRSSMiB(), "peak-RSS-MiB")
}

type atomicCounter struct{ n atomic.Int64 }

func (c *atomicCounter) add() int64  { return c.n.Add(1) - 1 }
func (c *atomicCounter) load() int64 { return c.n.Load() }

// peakRSSMiB is the process's peak resident set size (VmHWM) in MiB.
func peakRSSMiB() float64 {
	data, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return 0
	}
	for line := range strings.SplitSeq(string(data), "\n") {
		if rest, ok := strings.CutPrefix(line, "VmHWM:"); ok {
			kb, _ := strconv.ParseFloat(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(rest), "kB")), 64)
			return kb / 1024
		}
	}
	return 0
}
