package testenv

import (
	"context"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/bca-app/backend/internal/devstack"
	"github.com/bca-app/backend/internal/redisconn"
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

// RedisCluster returns the URL (redis+cluster://) of the shared 3-master Redis Cluster and a
// key prefix unique to this test, like Redis.
func RedisCluster(t testing.TB) (url, keyPrefix string) {
	t.Helper()
	url = need(t, current().clusterURL, "Redis Cluster")
	keyPrefix = "t" + randomHex(6) + ":"
	t.Cleanup(func() {
		if err := deleteKeys(url, keyPrefix); err != nil {
			t.Logf("testenv: delete Redis keys %s*: %v", keyPrefix, err)
		}
	})
	return url, keyPrefix
}

// RedisClient connects to url (redis:// or redis+cluster://), closed when the test ends.
func RedisClient(t testing.TB, url string) redis.UniversalClient {
	t.Helper()
	client, err := redisconn.Open(url, 0)
	if err != nil {
		t.Fatalf("testenv: %v", err)
	}
	t.Cleanup(func() { client.Close() })
	return client
}

// DeleteRedisKeys deletes every key under prefix, on every master of a cluster, and returns how
// many it deleted: what a Redis flush does to one test's key space.
func DeleteRedisKeys(ctx context.Context, client redis.UniversalClient, prefix string) (int, error) {
	// The prefix is letters, digits and a colon: nothing MATCH treats as a pattern.
	deleted := 0
	var mu sync.Mutex
	del := func(ctx context.Context, node redis.UniversalClient) error {
		iter := node.Scan(ctx, 0, prefix+"*", 1000).Iterator()
		var keys []string
		for iter.Next(ctx) {
			keys = append(keys, iter.Val())
		}
		if err := iter.Err(); err != nil {
			return err
		}
		// One key per command: on a cluster the keys of one node may still span slots.
		for _, k := range keys {
			if err := node.Unlink(ctx, k).Err(); err != nil {
				return err
			}
		}
		mu.Lock()
		deleted += len(keys)
		mu.Unlock()
		return nil
	}
	if cc, ok := client.(*redis.ClusterClient); ok {
		err := cc.ForEachMaster(ctx, func(ctx context.Context, node *redis.Client) error { return del(ctx, node) })
		return deleted, err
	}
	err := del(ctx, client)
	return deleted, err
}

// deleteKeys keeps a long-lived Redis named by BCA_TEST_REDIS_URL from
// filling up with test data.
func deleteKeys(url, prefix string) error {
	client, err := redisconn.Open(url, 0)
	if err != nil {
		return err
	}
	defer client.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	_, err = DeleteRedisKeys(ctx, client, prefix)
	return err
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
