package ratelimit_test

import (
	"context"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/bca-app/backend/internal/ratelimit"
	"github.com/bca-app/backend/internal/redisconn"
	"github.com/bca-app/backend/internal/testenv"
)

func TestMain(m *testing.M) { testenv.Main(m) }

// shared returns a limiter over the shared Redis (a cluster in the second pass of `make test`),
// the client and the test's key prefix.
func shared(t *testing.T) (*ratelimit.Limiter, redis.UniversalClient, string) {
	t.Helper()
	url, prefix := testenv.Redis(t)
	rdb := testenv.RedisClient(t, url)
	l, err := ratelimit.New(ratelimit.Deps{Redis: rdb, KeyPrefix: prefix})
	if err != nil {
		t.Fatal(err)
	}
	return l, rdb, prefix
}

func allow(t *testing.T, l *ratelimit.Limiter, key string, limit int, window time.Duration) (bool, time.Duration) {
	t.Helper()
	ok, retry, err := l.Allow(context.Background(), key, limit, window)
	if err != nil {
		t.Fatalf("Allow(%s): %v", key, err)
	}
	return ok, retry
}

func TestAllowCountsHitsPerKeyAndWindow(t *testing.T) {
	l, rdb, prefix := shared(t)
	for i := range 3 {
		if ok, retry := allow(t, l, "signin:a", 3, time.Minute); !ok || retry != 0 {
			t.Fatalf("hit %d of 3: allowed %v, retry %v; want allowed, no retry", i+1, ok, retry)
		}
	}
	ok, retry := allow(t, l, "signin:a", 3, time.Minute)
	if ok {
		t.Fatal("the 4th hit of a limit of 3 was allowed")
	}
	if retry <= 50*time.Second || retry > time.Minute {
		t.Errorf("retry after %v; want the rest of the 1-minute window", retry)
	}
	// Another key has a budget of its own.
	if ok, _ := allow(t, l, "signin:b", 3, time.Minute); !ok {
		t.Error("a fresh key was refused")
	}
	// The counter lives under the key prefix and always carries its window's expiry.
	key := prefix + "rl:signin:a"
	if n, err := rdb.Get(context.Background(), key).Int(); err != nil || n != 4 {
		t.Errorf("counter %s = %d (%v); want 4", key, n, err)
	}
	if ttl, err := rdb.PTTL(context.Background(), key).Result(); err != nil || ttl <= 0 || ttl > time.Minute {
		t.Errorf("counter %s expires in %v (%v); want within the window", key, ttl, err)
	}
}

func TestANewWindowStartsAfterTheOldOneEnds(t *testing.T) {
	l, _, _ := shared(t)
	const window = 300 * time.Millisecond
	if ok, _ := allow(t, l, "k", 1, window); !ok {
		t.Fatal("the first hit was refused")
	}
	ok, retry := allow(t, l, "k", 1, window)
	if ok {
		t.Fatal("the second hit of a limit of 1 was allowed")
	}
	if retry != time.Second {
		t.Errorf("retry after %v; want the 1 s minimum a Retry-After can say", retry)
	}
	testenv.Eventually(t, 10*time.Second, func() bool {
		ok, _ := allow(t, l, "k", 1, window)
		return ok
	}, "a hit is allowed again once the window has expired")
}

// A storm of hits on one key lets exactly the limit through, in Redis and in the fallback alike.
func TestParallelHitsNeverExceedTheLimit(t *testing.T) {
	l, rdb, prefix := shared(t)
	local := ratelimit.NewLocal(100)
	const hits, limit = 64, 10
	var inRedis, inProcess atomic.Int32
	now := time.Now()
	testenv.AtOnce(hits, func(int) {
		if ok, _, err := l.Allow(context.Background(), "storm", limit, time.Minute); err != nil {
			t.Error(err)
		} else if ok {
			inRedis.Add(1)
		}
		if ok, _ := local.Allow("storm", limit, time.Minute, now); ok {
			inProcess.Add(1)
		}
	})
	if inRedis.Load() != limit || inProcess.Load() != limit {
		t.Errorf("allowed %d (Redis) and %d (in process) of %d hits; want exactly %d each", inRedis.Load(), inProcess.Load(), hits, limit)
	}
	if n, err := rdb.Get(context.Background(), prefix+"rl:storm").Int(); err != nil || n != hits {
		t.Errorf("counter = %d (%v); want every one of the %d hits counted", n, err, hits)
	}
}

func open(t *testing.T, url string, timeout time.Duration) redis.UniversalClient {
	t.Helper()
	rdb, err := redisconn.Open(url, timeout)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { rdb.Close() })
	return rdb
}

// Without Redis the limit holds per process: never open, and a window still ends.
func TestWithoutRedisTheProcessCounts(t *testing.T) {
	l, err := ratelimit.New(ratelimit.Deps{Redis: open(t, "redis://"+testenv.FreeAddr(t), 500*time.Millisecond), KeyPrefix: "t:"})
	if err != nil {
		t.Fatal(err)
	}
	var clock testenv.Clock
	l.Now = clock.Now
	for i := range 2 {
		ok, retry, err := l.Allow(context.Background(), "k", 2, time.Minute)
		if err == nil {
			t.Fatal("Allow reported no error with Redis down")
		}
		if !ok || retry != 0 {
			t.Fatalf("hit %d of 2 with Redis down: allowed %v, retry %v", i+1, ok, retry)
		}
	}
	ok, retry, err := l.Allow(context.Background(), "k", 2, time.Minute)
	if ok || err == nil || retry <= 50*time.Second || retry > time.Minute {
		t.Fatalf("3rd hit of 2 with Redis down: allowed %v, retry %v, err %v; want refused for the rest of the window, with the reason", ok, retry, err)
	}
	clock.Advance(time.Minute)
	if ok, _, _ := l.Allow(context.Background(), "k", 2, time.Minute); !ok {
		t.Error("refused after the in-process window ended")
	}
}

// A Redis that accepts connections and answers nothing costs the client's timeout, then the
// in-process count decides: a limited request never hangs.
func TestAHungRedisCostsOneTimeout(t *testing.T) {
	server := testenv.RedisServer(t)
	l, err := ratelimit.New(ratelimit.Deps{Redis: open(t, server.URL(), 300*time.Millisecond), KeyPrefix: "t:"})
	if err != nil {
		t.Fatal(err)
	}
	if ok, _, err := l.Allow(context.Background(), "k", 5, time.Minute); !ok || err != nil {
		t.Fatalf("before the hang: allowed %v, err %v", ok, err)
	}
	if err := server.Freeze(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = server.Thaw() })
	type result struct {
		ok  bool
		err error
	}
	done := make(chan result, 1)
	go func() {
		ok, _, err := l.Allow(context.Background(), "k", 5, time.Minute)
		done <- result{ok, err}
	}()
	select {
	case r := <-done:
		if !r.ok || r.err == nil {
			t.Errorf("with Redis hung: allowed %v, err %v; want allowed by the in-process count, with the reason", r.ok, r.err)
		}
	case <-time.After(10 * time.Second): // a guard against a hang, not a measurement
		t.Fatal("Allow still waiting 10 s after Redis hung")
	}
}

func TestLocalRefusesNewKeysWhenFullUntilAWindowEnds(t *testing.T) {
	l := ratelimit.NewLocal(2)
	t0 := time.Now()
	for _, k := range []string{"a", "b"} {
		if ok, _ := l.Allow(k, 5, time.Minute, t0); !ok {
			t.Fatalf("key %s refused with room left", k)
		}
	}
	if ok, retry := l.Allow("c", 5, time.Minute, t0); ok || retry != time.Second {
		t.Fatalf("a 3rd key in a table of 2: allowed %v, retry %v; want refused (fail closed), retry 1 s", ok, retry)
	}
	if ok, _ := l.Allow("a", 5, time.Minute, t0.Add(time.Second)); !ok {
		t.Error("a known key was refused while the table was full")
	}
	// Once the windows end, their keys make room.
	if ok, _ := l.Allow("c", 5, time.Minute, t0.Add(time.Minute)); !ok {
		t.Error("a new key was refused after the other windows ended")
	}
}
