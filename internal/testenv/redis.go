package testenv

import (
	"context"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/bca-app/backend/internal/devstack"
)

// Redis returns the URL of the shared Redis server and a key prefix unique
// to this test; a test that keeps its keys under the prefix cannot see or
// disturb another's. Keys under the prefix are deleted when the test ends.
func Redis(t testing.TB) (url, keyPrefix string) {
	t.Helper()
	url = need(t, current().redisURL, "Redis")
	keyPrefix = "t" + randomHex(6) + ":"
	t.Cleanup(func() {
		if err := deleteKeys(url, keyPrefix); err != nil {
			t.Logf("testenv: delete Redis keys %s*: %v", keyPrefix, err)
		}
	})
	return url, keyPrefix
}

// deleteKeys keeps a long-lived Redis named by BCA_TEST_REDIS_URL from
// filling up with test data.
func deleteKeys(url, prefix string) error {
	opts, err := redis.ParseURL(url)
	if err != nil {
		return err
	}
	client := redis.NewClient(opts)
	defer client.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	// The prefix is letters, digits and a colon: nothing MATCH treats as a
	// pattern.
	iter := client.Scan(ctx, 0, prefix+"*", 1000).Iterator()
	var keys []string
	for iter.Next(ctx) {
		keys = append(keys, iter.Val())
	}
	if err := iter.Err(); err != nil {
		return err
	}
	if len(keys) == 0 {
		return nil
	}
	return client.Unlink(ctx, keys...).Err()
}

// RedisServer starts a Redis server for this test alone, stopped when the
// test ends, for tests that stop or restart Redis (outage and restart
// faults) without disturbing tests using the shared server. It is
// ephemeral: a restart loses every key, as a restarted cache would.
func RedisServer(t testing.TB) *devstack.Redis {
	t.Helper()
	dir, err := os.MkdirTemp("", "bca-redis-*")
	if err != nil {
		t.Fatalf("testenv: %v", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), startTimeout)
	defer cancel()
	server, err := devstack.StartRedis(ctx, filepath.Join(dir, "redis"), devstack.Options{Ephemeral: true}, current().log)
	if err != nil {
		os.RemoveAll(dir)
		t.Fatalf("testenv: start a private Redis (install it with scripts/ensure-deps.sh): %v", err)
	}
	t.Cleanup(func() {
		if err := server.Stop(); err != nil {
			t.Errorf("testenv: stop private Redis: %v", err)
		}
		os.RemoveAll(dir)
	})
	return server
}
