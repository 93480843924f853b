package e2e

import (
	"context"
	"io"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/bca-app/backend/internal/config"
	"github.com/bca-app/backend/internal/testenv"
)

// TestRedisDownStreamAndRebuildAre503: with Redis stopped, opening a chat stream (its slot
// lives in Redis) and rebuildSyncFile (its build lock lives in Redis) answer 503 problems with
// Retry-After, fast, and work again once Redis is back (issue 9, item 7: they answered 500).
func TestRedisDownStreamAndRebuildAre503(t *testing.T) {
	rs := testenv.RedisServer(t)
	e := New(t, func(c *config.Config) { c.RedisURL = rs.URL() })
	c := e.newChatter(t)

	openStream := func() (int, http.Header, string) {
		ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
		defer cancel()
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, e.Server.URL+"/api/v1/chats/stream", nil)
		if err != nil {
			t.Fatal(err)
		}
		req.Header.Set("Authorization", "Bearer "+c.Token())
		req.Header.Set("X-Profile-Id", strconv.FormatInt(c.Profile, 10))
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatalf("open stream: %v", err)
		}
		defer resp.Body.Close()
		var body []byte
		if resp.StatusCode != http.StatusOK { // a live stream never ends: read only refusals
			body, _ = io.ReadAll(io.LimitReader(resp.Body, 1<<16))
		}
		return resp.StatusCode, resp.Header, string(body)
	}
	rebuild := func() (int, http.Header, string) {
		code, h, body := e.call(t, c.Token(), 0, http.MethodPost, "/api/v1/sync/rebuild", nil)
		return code, h, string(body)
	}

	if code, _, body := openStream(); code != http.StatusOK {
		t.Fatalf("stream with Redis up: %d %s", code, body)
	}
	if err := rs.Stop(); err != nil {
		t.Fatal(err)
	}
	for name, do := range map[string]func() (int, http.Header, string){"open stream": openStream, "rebuildSyncFile": rebuild} {
		start := time.Now()
		code, h, body := do()
		took := time.Since(start)
		if code != http.StatusServiceUnavailable || !strings.HasPrefix(h.Get("Content-Type"), "application/problem+json") || h.Get("Retry-After") == "" {
			t.Errorf("%s with Redis down: %d %q Retry-After %q: %s", name, code, h.Get("Content-Type"), h.Get("Retry-After"), body)
		}
		if took > time.Second {
			t.Errorf("%s with Redis down took %v (bound 1 s)", name, took)
		}
	}
	if err := rs.Restart(context.Background()); err != nil {
		t.Fatal(err)
	}
	var code int
	var body string
	if !testenv.WaitFor(10*time.Second, func() bool { code, _, body = rebuild(); return code == http.StatusOK }) {
		t.Fatalf("rebuild after Redis came back: %d %s", code, body)
	}
	if code, _, body := openStream(); code != http.StatusOK {
		t.Fatalf("stream after Redis came back: %d %s", code, body)
	}
}
