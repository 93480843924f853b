//go:build topology

// The topology test (make test-topology): the service as it runs beyond one machine. Two bca-api
// and two bca-worker processes (the built binaries) share one PostgreSQL, a 3-master Redis
// Cluster, and S3 and SQS (moto). A scripted mixed load runs for TopologyDuration while faults
// happen: a worker is SIGKILLed and restarted, an API process gets SIGTERM, and every Redis node
// is paused for 2 s. At the end every user's sync file equals a fresh full build, every chat
// event reached every stream reader exactly once and in order (reconnects with Last-Event-ID
// included), and no request got a 5xx other than the documented answers of the faults.
package e2e

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	"github.com/aws/aws-sdk-go-v2/service/sqs/types"
	"github.com/redis/go-redis/v9"

	"github.com/bca-app/backend/gen/api"
	"github.com/bca-app/backend/gen/apiclient"
	"github.com/bca-app/backend/internal/app"
	"github.com/bca-app/backend/internal/config"
	"github.com/bca-app/backend/internal/devstack"
	"github.com/bca-app/backend/internal/syncfile"
	"github.com/bca-app/backend/internal/syncsvc"
	"github.com/bca-app/backend/internal/syncsvc/synctest"
	"github.com/bca-app/backend/internal/testenv"
)

// Load shape. The figures in the README's Scaling section come from this configuration.
const (
	topologyDuration = 60 * time.Second
	topologyUsers    = 8
	topologyPause    = 2 * time.Second
	// opGap is each load client's think time between requests; with topologyUsers clients it
	// keeps two cores busy without starving the servers under test.
	opGap = 20 * time.Millisecond
)

// apiProcess is a bca-api started as a real process on a free loopback port.
type apiProcess struct {
	srv      *Server
	cmd      *exec.Cmd
	out      *lockedBuffer
	done     chan struct{}
	termedAt atomic.Int64 // unix nanoseconds of the SIGTERM; 0 while serving
}

func startAPIProcess(t *testing.T, cfg config.Config, endpoint string) *apiProcess {
	t.Helper()
	bin, err := apiBinary()
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	proc := startProcess(t, "bca-api "+addr, bin,
		"HTTP_ADDR="+addr, "PUBLIC_BASE_URL=http://"+addr,
		"DATABASE_URL="+cfg.DatabaseURL, "REDIS_URL="+cfg.RedisURL, "REDIS_KEY_PREFIX="+cfg.RedisKeyPrefix,
		"SECRET_KEY="+string(cfg.SecretKey), "LOG_LEVEL=warn", "EMBEDDED_WORKER=false", "MIGRATE_ON_START=false",
		"PASSWORD_HASH_MEMORY_KIB=64", "PASSWORD_HASH_ITERATIONS=1", "PASSWORD_HASH_PARALLELISM=1",
		"RATE_LIMIT_PER_ADDRESS=100000", "RATE_LIMIT_PER_ACCOUNT=100000", "CHAT_HEARTBEAT=1s",
		"AWS_REGION=us-east-1", "AWS_ACCESS_KEY_ID=test", "AWS_SECRET_ACCESS_KEY=test", "AWS_ENDPOINT_URL="+endpoint,
		"AWS_S3_BUCKET_NAME="+cfg.AWS.S3Bucket, "AWS_S3_PATH_STYLE=true", "AWS_TASK_SQS_URL="+cfg.AWS.TaskSQSURL,
	)
	p := &apiProcess{srv: &Server{URL: "http://" + addr}, cmd: proc.cmd, out: proc.out, done: proc.done}
	deadline := time.Now().Add(60 * time.Second)
	for {
		resp, err := http.Get(p.srv.URL + "/readyz")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return p
			}
		}
		select {
		case <-p.done:
			t.Fatalf("bca-api exited before it was ready:\n%s", p.out.String())
		case <-time.After(100 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			t.Fatalf("bca-api not ready within a minute:\n%s", p.out.String())
		}
	}
}

// outcome is one load request's answer.
type outcome struct {
	api     int
	op      string
	status  int // 0: no HTTP answer (connection refused or reset)
	at      time.Time
	latency time.Duration
}

// topology holds the running system and what the load saw.
type topology struct {
	e       *Env
	apis    []*apiProcess
	down    []atomic.Bool // an API process a client found gone; later requests go elsewhere
	client  *http.Client
	room    int64
	users   []chatter
	cards   []int64
	mu      sync.Mutex
	results []outcome

	pauseFrom, pauseTo atomic.Int64 // unix nanoseconds of the Redis pause
}

func (tp *topology) record(o outcome) {
	tp.mu.Lock()
	tp.results = append(tp.results, o)
	tp.mu.Unlock()
}

// pick is the API process a client uses: its own, unless that one was found gone.
func (tp *topology) pick(pref int) int {
	if tp.down[pref%len(tp.apis)].Load() {
		return (pref + 1) % len(tp.apis)
	}
	return pref % len(tp.apis)
}

// do sends one request and records its outcome. A connection failure or a 503 from a process
// that got SIGTERM marks it gone, so the client fails over to the other one.
func (tp *topology) do(ctx context.Context, pref int, op string, token string, acting int64, method, path string, body any, headers ...string) (int, []byte) {
	i := tp.pick(pref)
	var rd io.Reader
	if body != nil {
		b, _ := json.Marshal(body)
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, tp.apis[i].srv.URL+path, rd)
	if err != nil {
		panic(err)
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	if acting != 0 {
		req.Header.Set("X-Profile-Id", strconv.FormatInt(acting, 10))
	}
	for j := 0; j+1 < len(headers); j += 2 {
		req.Header.Set(headers[j], headers[j+1])
	}
	start := time.Now()
	resp, err := tp.client.Do(req)
	o := outcome{api: i, op: op, at: start, latency: time.Since(start)}
	if err != nil {
		if ctx.Err() != nil {
			return 0, nil
		}
		tp.record(o)
		if tp.apis[i].termedAt.Load() != 0 {
			tp.down[i].Store(true)
		}
		return 0, nil
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	o.status, o.latency = resp.StatusCode, time.Since(start)
	tp.record(o)
	if resp.StatusCode == http.StatusServiceUnavailable && tp.apis[i].termedAt.Load() != 0 {
		tp.down[i].Store(true)
	}
	return resp.StatusCode, b
}

// loadClient is one user's scripted mix until ctx ends.
func (tp *topology) loadClient(ctx context.Context, n int, password string) {
	r := rand.New(rand.NewPCG(uint64(n), 42))
	u := tp.users[n]
	token := u.Token()
	subscribed := map[int64]bool{}
	for seq := 0; ctx.Err() == nil; seq++ {
		switch x := r.IntN(100); {
		case x < 5:
			code, b := tp.do(ctx, n, "sign-in", "", 0, "POST", "/api/v1/account/signin", map[string]any{"login": u.LoginID, "password": password})
			if code == http.StatusOK {
				var s apiclient.Session
				if json.Unmarshal(b, &s) == nil && s.AccessToken != "" {
					token = s.AccessToken
				}
			}
		case x < 30:
			tp.do(ctx, n, "profile", token, 0, "PATCH", fmt.Sprintf("/api/v1/profiles/%d", u.Profile),
				map[string]any{"team_name": fmt.Sprintf("Team %d.%d", n, seq)}, "If-Match", "*")
		case x < 50:
			tp.do(ctx, n, "card", token, u.Profile, "PATCH", fmt.Sprintf("/api/v1/cards/%d", tp.cards[n]),
				map[string]any{"name": fmt.Sprintf("Card %d.%d", n, seq)}, "If-Match", "*")
		case x < 70 && n > 0:
			// Everyone follows the room's owner, so the owner's card is the one every other
			// user may subscribe to (docs/product.md §6).
			other := tp.cards[0]
			method := "PUT"
			if subscribed[other] {
				method = "DELETE"
			}
			code, _ := tp.do(ctx, n, "subscription", token, u.Profile, method, fmt.Sprintf("/api/v1/cards/%d/subscription", other), nil)
			if code < 300 {
				subscribed[other] = method == "PUT"
			}
		default:
			tp.do(ctx, n, "chat", token, u.Profile, "POST", fmt.Sprintf("/api/v1/chats/%d/events", tp.room),
				map[string]any{"message": fmt.Sprintf("m %d.%d", n, seq)})
		}
		select {
		case <-ctx.Done():
		case <-time.After(opGap):
		}
	}
}

// reader is one participant's live chat stream, reconnecting (with Last-Event-ID) to the other
// API process when its stream ends.
type reader struct {
	tp      *topology
	n       int
	mu      sync.Mutex
	seen    []int64 // event indexes of the room, in arrival order
	first   api.ChatEvent
	last    string // the last SSE id: what Last-Event-ID resumes from
	opens   int
	refused map[int]int
}

func (rd *reader) run(ctx context.Context) {
	pref := rd.n
	rd.last = fmt.Sprintf("%d:-1", rd.tp.room) // from the room's first event
	for ctx.Err() == nil {
		i := rd.tp.pick(pref)
		err := rd.stream(ctx, i)
		if err != nil && ctx.Err() == nil {
			pref = i + 1 // fail over
		}
		select {
		case <-ctx.Done():
		case <-time.After(200 * time.Millisecond):
		}
	}
}

func (rd *reader) stream(ctx context.Context, i int) error {
	u := rd.tp.users[rd.n]
	req, _ := http.NewRequestWithContext(ctx, "GET", rd.tp.apis[i].srv.URL+"/api/v1/chats/stream", nil)
	req.Header.Set("Authorization", "Bearer "+u.Token())
	req.Header.Set("X-Profile-Id", strconv.FormatInt(u.Profile, 10))
	req.Header.Set("Accept", "text/event-stream")
	rd.mu.Lock()
	req.Header.Set("Last-Event-ID", rd.last)
	rd.mu.Unlock()
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		rd.mu.Lock()
		rd.refused[resp.StatusCode]++
		rd.mu.Unlock()
		return fmt.Errorf("status %d", resp.StatusCode)
	}
	rd.mu.Lock()
	rd.opens++
	rd.mu.Unlock()
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	var id, data string
	for sc.Scan() {
		line := sc.Text()
		switch {
		case line == "":
			if data != "" {
				var ev api.ChatEvent
				if err := json.Unmarshal([]byte(data), &ev); err == nil && ev.RoomId == rd.tp.room {
					rd.mu.Lock()
					if len(rd.seen) == 0 {
						rd.first = ev
					}
					rd.seen = append(rd.seen, ev.EventIndex)
					if id != "" {
						rd.last = id
					}
					rd.mu.Unlock()
				}
			}
			id, data = "", ""
		case strings.HasPrefix(line, "id: "):
			id = strings.TrimPrefix(line, "id: ")
		case strings.HasPrefix(line, "data: "):
			data = strings.TrimPrefix(line, "data: ")
		}
	}
	return sc.Err()
}

func (rd *reader) lastSeen() int64 {
	rd.mu.Lock()
	defer rd.mu.Unlock()
	if len(rd.seen) == 0 {
		return -1
	}
	return rd.seen[len(rd.seen)-1]
}

func TestTopology(t *testing.T) {
	// Redis: a cluster of this test's own, so the test can pause its nodes.
	root, err := devstack.TempDataRoot("bca-topology-*")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(root) })
	startCtx, cancelStart := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancelStart()
	cluster, err := devstack.StartRedisCluster(startCtx, filepath.Join(root, "redis"), devstack.Options{Ephemeral: true}, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	redisPIDs := clusterPIDs(t, cluster.URL())
	t.Cleanup(func() {
		for _, pid := range redisPIDs {
			_ = syscall.Kill(pid, syscall.SIGCONT)
		}
		_ = cluster.Stop()
	})
	res := provision(t)
	endpoint := testenv.AWSEndpoint(t)
	e := New(t, res.onAWS(endpoint), func(c *config.Config) { c.RedisURL = cluster.URL() })

	// Two API processes and two workers, all built binaries.
	tp := &topology{e: e, client: &http.Client{Timeout: 10 * time.Second}}
	for range 2 {
		tp.apis = append(tp.apis, startAPIProcess(t, e.Config, endpoint))
	}
	tp.down = make([]atomic.Bool, len(tp.apis))
	workers := []*workerProcess{startWorkerProcess(t, e.Config, endpoint), startWorkerProcess(t, e.Config, endpoint)}

	// Users, one card each, one room with everyone.
	for range topologyUsers {
		tp.users = append(tp.users, e.newChatter(t))
	}
	for _, u := range tp.users {
		tp.cards = append(tp.cards, e.NewCard(t, u.User, u.Profile, map[string]any{"name": "card of " + u.LoginID}).Id)
	}
	tp.room = e.newRoom(t, tp.users[0], map[string]any{"name": "topology"}, tp.users[1:]...).Room.Id

	readCtx, stopReaders := context.WithCancel(context.Background())
	defer stopReaders()
	readers := make([]*reader, len(tp.users))
	var readersDone sync.WaitGroup
	for n := range tp.users {
		readers[n] = &reader{tp: tp, n: n, refused: map[int]int{}}
		readersDone.Go(func() { readers[n].run(readCtx) })
	}
	loadCtx, stopLoad := context.WithTimeout(context.Background(), topologyDuration)
	defer stopLoad()
	var loadDone sync.WaitGroup
	for n := range tp.users {
		loadDone.Go(func() { tp.loadClient(loadCtx, n, Password) })
	}

	// The task queue's depth every second, to show where sync lag comes from (a backlog of
	// messages, or users waiting behind a fault).
	depthCtx, stopDepth := context.WithCancel(context.Background())
	defer stopDepth()
	var depth []queueDepth
	var depthDone sync.WaitGroup
	depthDone.Go(func() { depth = sampleQueueDepth(depthCtx, t, endpoint, res.queue.QueueURL, time.Second) })

	// The faults, at fixed points of the run.
	start := time.Now()
	at := func(d time.Duration) { time.Sleep(time.Until(start.Add(d))) } // wall time: the schedule of a real load
	at(topologyDuration / 6)
	t.Logf("%5.1fs SIGKILL worker 1", time.Since(start).Seconds())
	killedAt := time.Now()
	workers[0].kill(t)
	at(topologyDuration/6 + 5*time.Second)
	t.Logf("%5.1fs restart worker 1", time.Since(start).Seconds())
	workers[0] = startWorkerProcess(t, e.Config, endpoint)
	at(topologyDuration * 2 / 5)
	t.Logf("%5.1fs SIGTERM API 2", time.Since(start).Seconds())
	tp.apis[1].termedAt.Store(time.Now().UnixNano())
	_ = tp.apis[1].cmd.Process.Signal(syscall.SIGTERM)
	at(topologyDuration * 2 / 3)
	t.Logf("%5.1fs pause every Redis node for %v", time.Since(start).Seconds(), topologyPause)
	tp.pauseFrom.Store(time.Now().UnixNano())
	for _, pid := range redisPIDs {
		if err := syscall.Kill(pid, syscall.SIGSTOP); err != nil {
			t.Fatal(err)
		}
	}
	time.Sleep(topologyPause) // wall time: the length of the pause is the fault
	for _, pid := range redisPIDs {
		if err := syscall.Kill(pid, syscall.SIGCONT); err != nil {
			t.Fatal(err)
		}
	}
	tp.pauseTo.Store(time.Now().UnixNano())
	loadDone.Wait()
	elapsed := time.Since(start)
	stopDepth()
	depthDone.Wait()
	select {
	case <-tp.apis[1].done:
	case <-time.After(30 * time.Second):
		t.Error("the API process that got SIGTERM did not exit within 30 s")
	}

	// Chat: every reader reaches the room's last event, then has seen each event exactly once.
	var lastIndex int64
	if err := e.Server.App.Pool.QueryRow(ctx, "SELECT max(event_index) FROM chat_events WHERE room_id = $1", tp.room).Scan(&lastIndex); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(60 * time.Second)
	for _, rd := range readers {
		testenv.WaitFor(time.Until(deadline), func() bool { return rd.lastSeen() >= lastIndex })
	}
	stopReaders()
	readersDone.Wait()
	// A participant sees the room from its own arrival on (docs/product.md §8): the owner from
	// event 0, an invitee from its PARTICIPANT_IN.
	for n, rd := range readers {
		if len(rd.seen) == 0 {
			t.Errorf("reader %d saw no events", n)
			continue
		}
		from := rd.first.EventIndex
		if n == 0 && from != 0 || n > 0 && (rd.first.EventType != "PARTICIPANT_IN" || rd.first.TargetProfileId == nil || *rd.first.TargetProfileId != tp.users[n].Profile) {
			t.Errorf("reader %d's first event is %d:%s, not its own arrival", n, from, rd.first.EventType)
		}
		var want []int64
		for i := from; i <= lastIndex; i++ {
			want = append(want, i)
		}
		if !slices.Equal(rd.seen, want) {
			t.Errorf("reader %d (%d connections) saw %d events, not each of %d..%d exactly once in order; first difference at position %d",
				n, rd.opens, len(rd.seen), from, lastIndex, firstDiff(rd.seen, want))
		}
	}

	// Sync: every user's published file equals a fresh full build.
	converged := 0
	syncDeadline := time.Now().Add(2 * time.Minute)
	for _, u := range tp.users {
		var got, want syncfile.Contents
		if testenv.WaitFor(time.Until(syncDeadline), func() bool {
			var ok bool
			got, ok = publishedContents(t, e, tp.apis[0].srv, u)
			snap, err := e.Server.App.Sync.Snapshot(ctx, userID(u.User))
			if err != nil {
				t.Fatal(err)
			}
			want = snap.Contents
			return ok && synctest.Equal(got, want)
		}) {
			converged++
		} else {
			t.Errorf("user %d's sync file did not converge to a fresh build:\n got %s\nwant %s", userID(u.User), synctest.Describe(got), synctest.Describe(want))
		}
	}

	// 5xx: only the documented answers of the faults.
	pauseFrom, pauseTo := time.Unix(0, tp.pauseFrom.Load()), time.Unix(0, tp.pauseTo.Load()).Add(3*time.Second)
	termedAt := time.Unix(0, tp.apis[1].termedAt.Load())
	var latencies []time.Duration
	counts := map[string]int{}
	for _, o := range tp.results {
		latencies = append(latencies, o.latency)
		end := o.at.Add(o.latency)
		switch {
		case o.status >= 200 && o.status < 500:
			counts[o.op+" "+strconv.Itoa(o.status)]++
		case o.api == 1 && !end.Before(termedAt) && (o.status == 0 || o.status == http.StatusServiceUnavailable):
			counts["drained API answer (refused/503)"]++
		case o.status == http.StatusServiceUnavailable && !end.Before(pauseFrom) && o.at.Before(pauseTo):
			counts["503 during the Redis pause"]++
		default:
			counts["unexpected"]++
			t.Errorf("%s on API %d at %.1fs: status %d (0: no answer) outside the faults' documented answers",
				o.op, o.api+1, o.at.Sub(start).Seconds(), o.status)
		}
	}
	slices.Sort(latencies)
	p99 := time.Duration(0)
	if len(latencies) > 0 {
		p99 = latencies[len(latencies)*99/100]
	}
	lag, err := syncsvc.LagPercentiles(ctx, e.Server.App.Redis, e.Config.RedisKeyPrefix, 10*time.Minute)
	if err != nil {
		t.Errorf("sync lag samples: %v", err)
	}
	// Lag split: a sample is touched by a fault when the change it waited for was pending at the
	// worker's SIGKILL, the API's SIGTERM or during the Redis pause (its interval from change to
	// publication overlaps the fault); each user has at most one such sample per fault.
	samples, err := syncsvc.LagSamples(ctx, e.Server.App.Redis, e.Config.RedisKeyPrefix, 10*time.Minute)
	if err != nil {
		t.Errorf("sync lag samples: %v", err)
	}
	faults := [][2]time.Time{{killedAt, killedAt}, {termedAt, termedAt}, {time.Unix(0, tp.pauseFrom.Load()), time.Unix(0, tp.pauseTo.Load())}}
	var calm, touched []float64
	for _, s := range samples {
		from := s.At.Add(-time.Duration(s.Lag * float64(time.Second)))
		hit := false
		for _, f := range faults {
			hit = hit || !from.After(f[1]) && !s.At.Before(f[0])
		}
		if hit {
			touched = append(touched, s.Lag)
		} else {
			calm = append(calm, s.Lag)
		}
	}
	calmLag, touchedLag := syncsvc.LagStatsOf(calm), syncsvc.LagStatsOf(touched)
	maxDepth := queueDepth{}
	var timeline []string
	for _, d := range depth {
		if d.visible+d.inFlight > maxDepth.visible+maxDepth.inFlight {
			maxDepth = d
		}
		timeline = append(timeline, fmt.Sprintf("%.0fs:%d+%d", d.at.Sub(start).Seconds(), d.visible, d.inFlight))
	}
	dead := deadLettered(t, endpoint, res.queue.DeadLetterURL)
	t.Logf("topology: 2 API + 2 worker processes, Redis Cluster of %d masters, %d users, %v of load", len(cluster.Nodes), len(tp.users), elapsed.Round(time.Second))
	t.Logf("throughput %.0f requests/s (%d requests), p99 latency %v, sync lag p99 %.2fs (p50 %.2fs, %d samples), messages dead-lettered %d",
		float64(len(tp.results))/elapsed.Seconds(), len(tp.results), p99.Round(time.Millisecond), lag.P99, lag.P50, lag.Samples, dead)
	t.Logf("sync lag of publications untouched by a fault: p99 %.2fs, p50 %.2fs (%d samples); touched by a fault: p99 %.2fs, p50 %.2fs, max %.2fs (%d samples)",
		calmLag.P99, calmLag.P50, calmLag.Samples, touchedLag.P99, touchedLag.P50, maxOf(touched), touchedLag.Samples)
	t.Logf("task queue depth (visible+in flight): max %d+%d at %.0fs; every second: %s",
		maxDepth.visible, maxDepth.inFlight, maxDepth.at.Sub(start).Seconds(), strings.Join(timeline, " "))
	t.Logf("workers (the restarted one and the other, since their start): %s", workerFigures(workers))
	t.Logf("answers: %v; chat events %d, each seen by %d readers; sync files converged %d/%d", counts, lastIndex+1, len(readers), converged, len(tp.users))
	for n, rd := range readers {
		t.Logf("reader %d: %d connections, refusals %v", n, rd.opens, rd.refused)
	}
	if dead != 0 {
		t.Errorf("%d task messages were dead-lettered", dead)
	}
}

// clusterPIDs asks every node of the cluster for its process id (INFO server), so the test can
// pause them with SIGSTOP: connections stay open and nothing answers, what a Redis stalled by a
// long fork or a network partition looks like to clients.
func clusterPIDs(t *testing.T, url string) []int {
	t.Helper()
	var pids []int
	for _, addr := range strings.Split(strings.TrimPrefix(url, "redis+cluster://"), ",") {
		c := redis.NewClient(&redis.Options{Addr: addr})
		info, err := c.Info(ctx, "server").Result()
		c.Close()
		if err != nil {
			t.Fatal(err)
		}
		_, rest, _ := strings.Cut(info, "process_id:")
		pid, err := strconv.Atoi(strings.TrimSpace(strings.SplitN(rest, "\n", 2)[0]))
		if err != nil {
			t.Fatalf("process_id of %s: %v", addr, err)
		}
		pids = append(pids, pid)
	}
	return pids
}

func firstDiff(a, b []int64) int {
	for i := range min(len(a), len(b)) {
		if a[i] != b[i] {
			return i
		}
	}
	return min(len(a), len(b))
}

// publishedContents downloads u's sync file through srv; ok is false while it is pending.
func publishedContents(t *testing.T, e *Env, srv *Server, u chatter) (_ syncfile.Contents, ok bool) {
	t.Helper()
	g := syncGet(t, e.Client(srv, u.Token()), "")
	if g.StatusCode() != http.StatusOK || g.HTTPResponse.Header.Get("Sync-Pending") != "false" {
		return syncfile.Contents{}, false
	}
	return checkFile(t, g.HTTPResponse.Header, g.Body), true
}

func deadLettered(t *testing.T, endpoint, queueURL string) int {
	t.Helper()
	awsCfg, err := app.AWSConfig(ctx, config.AWS{Region: "us-east-1", AccessKeyID: "test", SecretAccessKey: "test"})
	if err != nil {
		t.Fatal(err)
	}
	client := sqs.NewFromConfig(awsCfg, func(o *sqs.Options) { o.BaseEndpoint = aws.String(endpoint) })
	out, err := client.GetQueueAttributes(ctx, &sqs.GetQueueAttributesInput{QueueUrl: aws.String(queueURL),
		AttributeNames: []types.QueueAttributeName{types.QueueAttributeNameApproximateNumberOfMessages, types.QueueAttributeNameApproximateNumberOfMessagesNotVisible}})
	if err != nil {
		t.Fatalf("dead-letter queue attributes: %v", err)
	}
	n := 0
	for _, k := range []types.QueueAttributeName{types.QueueAttributeNameApproximateNumberOfMessages, types.QueueAttributeNameApproximateNumberOfMessagesNotVisible} {
		v, _ := strconv.Atoi(out.Attributes[string(k)])
		n += v
	}
	return n
}

// queueDepth is the task queue's approximate depth at one moment.
type queueDepth struct {
	at                time.Time
	visible, inFlight int
}

// sampleQueueDepth reads the queue's depth every interval until ctx ends.
func sampleQueueDepth(ctx context.Context, t *testing.T, endpoint, queueURL string, interval time.Duration) []queueDepth {
	awsCfg, err := app.AWSConfig(ctx, config.AWS{Region: "us-east-1", AccessKeyID: "test", SecretAccessKey: "test"})
	if err != nil {
		t.Error(err)
		return nil
	}
	client := sqs.NewFromConfig(awsCfg, func(o *sqs.Options) { o.BaseEndpoint = aws.String(endpoint) })
	var out []queueDepth
	for ctx.Err() == nil {
		cctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		attrs, err := client.GetQueueAttributes(cctx, &sqs.GetQueueAttributesInput{QueueUrl: aws.String(queueURL),
			AttributeNames: []types.QueueAttributeName{types.QueueAttributeNameApproximateNumberOfMessages, types.QueueAttributeNameApproximateNumberOfMessagesNotVisible}})
		cancel()
		if err == nil {
			d := queueDepth{at: time.Now()}
			d.visible, _ = strconv.Atoi(attrs.Attributes[string(types.QueueAttributeNameApproximateNumberOfMessages)])
			d.inFlight, _ = strconv.Atoi(attrs.Attributes[string(types.QueueAttributeNameApproximateNumberOfMessagesNotVisible)])
			out = append(out, d)
		}
		select {
		case <-ctx.Done():
		case <-time.After(interval):
		}
	}
	return out
}

func maxOf(xs []float64) float64 {
	m := 0.0
	for _, x := range xs {
		m = max(m, x)
	}
	return m
}

// workerFigures sums the build counters and build times of the running worker processes, read
// from their /metrics (the address each logs at start).
func workerFigures(workers []*workerProcess) string {
	addrRE := regexp.MustCompile(`"msg":"sync worker listening for metrics"[^\n]*?"addr":"([^"]+)"`)
	sums := map[string]float64{}
	for _, w := range workers {
		m := addrRE.FindStringSubmatch(w.out.String())
		if m == nil {
			return "no metrics address in a worker's log"
		}
		resp, err := http.Get("http://" + m[1] + "/metrics")
		if err != nil {
			return err.Error()
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		for _, line := range strings.Split(string(b), "\n") {
			name, v, ok := strings.Cut(line, " ")
			if !ok || !strings.HasPrefix(name, "bca_sync_builds_total") && !strings.HasPrefix(name, "bca_sync_build_duration_seconds_sum") && !strings.HasPrefix(name, "bca_sync_build_duration_seconds_count") {
				continue
			}
			f, err := strconv.ParseFloat(v, 64)
			if err == nil {
				sums[name] += f
			}
		}
	}
	var parts []string
	for _, o := range []string{"published", "unchanged", "skipped", "superseded", "busy", "failed"} {
		parts = append(parts, fmt.Sprintf("%s %.0f", o, sums[`bca_sync_builds_total{outcome="`+o+`"}`]))
	}
	for _, mode := range []string{"full", "incremental"} {
		if n := sums[`bca_sync_build_duration_seconds_count{mode="`+mode+`"}`]; n > 0 {
			parts = append(parts, fmt.Sprintf("%s build mean %.0fms (%.0f)", mode, 1000*sums[`bca_sync_build_duration_seconds_sum{mode="`+mode+`"}`]/n, n))
		}
	}
	return "builds " + strings.Join(parts, ", ")
}
