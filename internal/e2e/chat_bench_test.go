package e2e

import (
	"bytes"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strconv"
	"sync/atomic"
	"testing"
	"time"

	"github.com/bca-app/backend/internal/config"
)

// Chat benchmarks: the whole path (HTTP, validation, auth, PostgreSQL, Redis publish) on
// loopback servers. They report figures and assert nothing about speed:
//
//	go run ./cmd/bcactl with-services -- go test -run '^$' -bench Chat -benchtime 5s ./internal/e2e/

func chatBenchEnv(b *testing.B) *Env {
	b.Helper()
	return New(b, func(c *config.Config) {
		c.RateLimit = config.RateLimits{PerAddress: 1 << 30, PerAccount: 1 << 30}
		c.LogLevel = "warn"
	})
}

// chatPoster posts without validating answers against the spec, so the figures are the server's.
type chatPoster struct {
	client *http.Client
	url    string
	c      chatter
}

func newChatPoster(srv *Server, c chatter, roomID int64) chatPoster {
	tr := &http.Transport{MaxIdleConnsPerHost: 64}
	return chatPoster{client: &http.Client{Transport: tr, Timeout: 30 * time.Second}, url: fmt.Sprintf("%s/api/v1/chats/%d/events", srv.URL, roomID), c: c}
}

func (p chatPoster) post(text string) error {
	req, err := http.NewRequest("POST", p.url, bytes.NewReader([]byte(`{"message":`+strconv.Quote(text)+`}`)))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Authorization", "Bearer "+p.c.Token())
	req.Header.Set("X-Profile-Id", strconv.FormatInt(p.c.Profile, 10))
	resp, err := p.client.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusCreated {
		return fmt.Errorf("post: %d %s", resp.StatusCode, body)
	}
	return nil
}

// runPosters posts b.N messages from parallel goroutines, each with its own poster, and
// reports messages per second.
func runPosters(b *testing.B, posters []chatPoster) {
	b.Helper()
	var next atomic.Int64
	b.SetParallelism(8)
	b.ResetTimer()
	start := time.Now()
	b.RunParallel(func(pb *testing.PB) {
		p := posters[int(next.Add(1)-1)%len(posters)]
		i := 0
		for pb.Next() {
			i++
			if err := p.post(fmt.Sprintf("bench %d", i)); err != nil {
				b.Error(err)
				return
			}
		}
	})
	b.StopTimer()
	b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "msgs/s")
}

// BenchmarkChatPostOneRoom: every message goes into one room, so every post waits for that
// room's row lock (the price of gap-free indexes).
func BenchmarkChatPostOneRoom(b *testing.B) {
	e := chatBenchEnv(b)
	owner := e.newChatter(b)
	members := make([]chatter, 16)
	for i := range members {
		members[i] = e.newChatter(b)
	}
	room := e.newRoom(b, owner, nil, members...).Room
	posters := make([]chatPoster, len(members))
	for i, m := range members {
		posters[i] = newChatPoster(e.Server, m, room.Id)
	}
	runPosters(b, posters)
}

// BenchmarkChatPostManyRooms: the same load spread over 32 rooms.
func BenchmarkChatPostManyRooms(b *testing.B) {
	e := chatBenchEnv(b)
	var posters []chatPoster
	for range 16 {
		owner, other := e.newChatter(b), e.newChatter(b)
		room := e.newRoom(b, owner, nil, other).Room
		posters = append(posters, newChatPoster(e.Server, owner, room.Id), newChatPoster(e.Server, other, room.Id))
	}
	runPosters(b, posters)
}

// BenchmarkChatStreamLatency: the time from starting a post on one API process until the event
// arrives on an SSE stream held on another (commit, Redis pub/sub, fan-out, write); p50/p99.
func BenchmarkChatStreamLatency(b *testing.B) {
	e := chatBenchEnv(b)
	second := e.StartServer(e.Config)
	ann, bob := e.newChatter(b), e.newChatter(b)
	room := e.newRoom(b, ann, nil, bob).Room
	s := e.openStream(b, second, bob, "")
	p := newChatPoster(e.Server, ann, room.Id)
	latencies := make([]time.Duration, 0, b.N)
	b.ResetTimer()
	for i := range b.N {
		start := time.Now()
		if err := p.post(fmt.Sprintf("latency %d", i)); err != nil {
			b.Fatal(err)
		}
		select {
		case <-s.events:
		case <-time.After(10 * time.Second):
			b.Fatal("event did not arrive")
		}
		latencies = append(latencies, time.Since(start))
	}
	b.StopTimer()
	slices.Sort(latencies)
	pct := func(q float64) float64 {
		return float64(latencies[min(len(latencies)-1, int(q*float64(len(latencies))))].Microseconds()) / 1000
	}
	b.ReportMetric(pct(0.50), "p50-ms")
	b.ReportMetric(pct(0.99), "p99-ms")
}
