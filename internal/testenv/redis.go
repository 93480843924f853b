package testenv

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
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

// RedisProcess is a private Redis server of one test, which the test may stop and restart.
type RedisProcess struct {
	dir  string
	mu   sync.Mutex
	cur  *devstack.Redis
	port int
	pid  int // the server's process id, for Freeze and Thaw
}

// URL is the server's redis:// URL; it stays the same across restarts.
func (r *RedisProcess) URL() string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.cur.URL()
}

// Stop shuts the server down.
func (r *RedisProcess) Stop() error {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.cur.Stop()
}

// Restart stops the server and starts it again on the same port, so clients see what a Redis
// restart in production looks like: dropped connections, then the same address answering again,
// with no data (the server is ephemeral).
func (r *RedisProcess) Restart(ctx context.Context) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if err := r.cur.Stop(); err != nil {
		return fmt.Errorf("restart redis: %w", err)
	}
	next, err := devstack.StartRedisOnPort(ctx, r.dir, r.port, devstack.Options{Ephemeral: true}, current().log)
	if err != nil {
		return fmt.Errorf("restart redis: %w", err)
	}
	r.cur = next
	if r.pid, err = serverPid(ctx, next.URL()); err != nil {
		return fmt.Errorf("restart redis: %w", err)
	}
	return nil
}

// RedisServer starts a Redis server for this test alone, stopped when the
// test ends, for tests that stop or restart Redis (outage and restart
// faults) without disturbing tests using the shared server. It is
// ephemeral: a restart loses every key, as a restarted cache would.
func RedisServer(t testing.TB) *RedisProcess {
	t.Helper()
	dir, err := os.MkdirTemp("", "bca-redis-*")
	if err != nil {
		t.Fatalf("testenv: %v", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), startTimeout)
	defer cancel()
	r := &RedisProcess{dir: filepath.Join(dir, "redis")}
	r.cur, err = devstack.StartRedis(ctx, r.dir, devstack.Options{Ephemeral: true}, current().log)
	if err != nil {
		os.RemoveAll(dir)
		t.Fatalf("testenv: start a private Redis (install it with scripts/ensure-deps.sh): %v", err)
	}
	u, err := url.Parse(r.cur.URL())
	if err == nil {
		r.port, err = strconv.Atoi(u.Port())
	}
	if err == nil {
		r.pid, err = serverPid(ctx, r.cur.URL())
	}
	if err != nil {
		r.cur.Stop()
		os.RemoveAll(dir)
		t.Fatalf("testenv: port and process id of private Redis: %v", err)
	}
	t.Cleanup(func() {
		if err := r.Stop(); err != nil {
			t.Errorf("testenv: stop private Redis: %v", err)
		}
		os.RemoveAll(dir)
	})
	return r
}

// Freeze stops the server with SIGSTOP: it keeps its port and connections but answers nothing,
// as a hung Redis does. Thaw resumes it.
func (r *RedisProcess) Freeze() error { return r.signal(syscall.SIGSTOP) }

// Thaw resumes a frozen server with SIGCONT.
func (r *RedisProcess) Thaw() error { return r.signal(syscall.SIGCONT) }

func (r *RedisProcess) signal(sig syscall.Signal) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if err := syscall.Kill(r.pid, sig); err != nil {
		return fmt.Errorf("signal redis (pid %d): %w", r.pid, err)
	}
	return nil
}

// serverPid asks the running server at url for its process id (INFO server), which Freeze and
// Thaw signal: a frozen server could not answer the question.
func serverPid(ctx context.Context, url string) (int, error) {
	client, err := redisconn.Open(url, 5*time.Second)
	if err != nil {
		return 0, err
	}
	defer client.Close()
	info, err := client.Info(ctx, "server").Result()
	if err != nil {
		return 0, fmt.Errorf("redis INFO server: %w", err)
	}
	for line := range strings.Lines(info) {
		if v, ok := strings.CutPrefix(strings.TrimSpace(line), "process_id:"); ok {
			return strconv.Atoi(v)
		}
	}
	return 0, errors.New("redis INFO server has no process_id")
}
