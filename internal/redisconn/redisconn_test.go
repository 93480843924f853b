package redisconn_test

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/bca-app/backend/internal/auth"
	"github.com/bca-app/backend/internal/redisconn"
	"github.com/bca-app/backend/internal/testenv"
)

func TestMain(m *testing.M) { testenv.Main(m) }

func TestClusterURLForms(t *testing.T) {
	for _, tc := range []struct {
		url   string
		addrs []string
		tls   bool
		user  string
	}{
		{"redis+cluster://10.0.0.1:6379,10.0.0.2:6380,10.0.0.3:6381", []string{"10.0.0.1:6379", "10.0.0.2:6380", "10.0.0.3:6381"}, false, ""},
		{"redis+cluster://127.0.0.1:7001?addr=127.0.0.1:7002&addr=127.0.0.1:7003", []string{"127.0.0.1:7001", "127.0.0.1:7002", "127.0.0.1:7003"}, false, ""},
		{"rediss+cluster://bca:s3cret@clustercfg.bca.example.cache.amazonaws.com:6379", []string{"clustercfg.bca.example.cache.amazonaws.com:6379"}, true, "bca"},
		{"rediss+cluster://a.example:6379,b.example:6379/", []string{"a.example:6379", "b.example:6379"}, true, ""},
	} {
		c, err := redisconn.Open(tc.url, time.Second)
		if err != nil {
			t.Fatalf("%s: %v", tc.url, err)
		}
		cc, ok := c.(*redis.ClusterClient)
		if !ok {
			t.Fatalf("%s opened %T, want a cluster client", tc.url, c)
		}
		o := cc.Options()
		got := slices.Clone(o.Addrs)
		slices.Sort(got)
		if !slices.Equal(got, tc.addrs) {
			t.Errorf("%s: addrs %v, want %v", tc.url, got, tc.addrs)
		}
		if (o.TLSConfig != nil) != tc.tls || o.Username != tc.user || o.ReadTimeout != time.Second || o.MaxRetries != -1 {
			t.Errorf("%s: tls %v user %q read timeout %v retries %d", tc.url, o.TLSConfig != nil, o.Username, o.ReadTimeout, o.MaxRetries)
		}
		c.Close()
	}
	c, err := redisconn.Open("redis://127.0.0.1:6379/2", time.Second)
	if err != nil {
		t.Fatal(err)
	}
	if n, ok := c.(*redis.Client); !ok || n.Options().DB != 2 {
		t.Errorf("redis:// opened %T, want a single-node client on database 2", c)
	}
	c.Close()
	for _, bad := range []string{
		"redis+cluster://10.0.0.1:6379/3", // a cluster has no database
		"redis+cluster://10.0.0.1:6379,,10.0.0.2:6379",
		"redis+cluster://10.0.0.1",
		"memcached://10.0.0.1:11211",
	} {
		if err := redisconn.Validate(bad); err == nil {
			t.Errorf("Validate(%q) accepted it", bad)
		}
	}
}

// TestClusterKeepsUserKeysTogether runs what the service does on a real 3-master cluster: a
// user's keys share a slot (one MGET reads them), different users spread over the masters, and a
// message published through one node reaches a subscriber connected to another.
func TestClusterKeepsUserKeysTogether(t *testing.T) {
	url, prefix := testenv.RedisCluster(t)
	c, err := redisconn.Open(url, 2*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	cc := c.(*redis.ClusterClient)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()

	masters := map[string]bool{}
	for id := int64(1); id <= 64; id++ {
		keys := []string{auth.UserKey(prefix, id, "gen"), auth.UserKey(prefix, id, "s:1"), auth.SyncStateKey(prefix, id)}
		for _, k := range keys {
			if err := c.Set(ctx, k, k, time.Minute).Err(); err != nil {
				t.Fatal(err)
			}
		}
		vals, err := c.MGet(ctx, keys...).Result()
		if err != nil {
			t.Fatalf("MGET of user %d's keys: %v", id, err)
		}
		for i, v := range vals {
			if v != keys[i] {
				t.Fatalf("MGET[%d] = %v, want %s", i, v, keys[i])
			}
		}
		node, err := cc.MasterForKey(ctx, keys[0])
		if err != nil {
			t.Fatal(err)
		}
		masters[node.Options().Addr] = true
	}
	if len(masters) != 3 {
		t.Errorf("64 users' keys landed on %d masters, want all 3", len(masters))
	}
	// Keys of different users are in different slots: a multi-key command across them fails,
	// which is why every multi-key command stays within one user.
	if err := c.Do(ctx, "MGET", auth.UserKey(prefix, 1, "gen"), auth.UserKey(prefix, 2, "gen")).Err(); err == nil {
		t.Error("MGET across two users' slots succeeded; the test no longer proves slot separation")
	}

	// Pub/sub crosses nodes: subscribe on each master directly, publish through another.
	var nodes []*redis.Client
	var mu sync.Mutex // ForEachMaster calls concurrently
	if err := cc.ForEachMaster(ctx, func(_ context.Context, n *redis.Client) error {
		mu.Lock()
		defer mu.Unlock()
		nodes = append(nodes, redis.NewClient(&redis.Options{Addr: n.Options().Addr}))
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	for i, n := range nodes {
		defer n.Close()
		ch := prefix + "chat:events"
		sub := n.Subscribe(ctx, ch)
		if _, err := sub.Receive(ctx); err != nil {
			t.Fatal(err)
		}
		from := nodes[(i+1)%len(nodes)]
		msg := fmt.Sprintf("hello from %s", from.Options().Addr)
		if err := from.Publish(ctx, ch, msg).Err(); err != nil {
			t.Fatal(err)
		}
		select {
		case m := <-sub.Channel():
			if m.Payload != msg {
				t.Errorf("subscriber on %s got %q, want %q", n.Options().Addr, m.Payload, msg)
			}
		case <-ctx.Done():
			t.Fatalf("subscriber on %s got nothing published on %s", n.Options().Addr, from.Options().Addr)
		}
		sub.Close()
	}
}

// Open bounds a single-node and a cluster client alike.
func TestOpenBoundsBothKinds(t *testing.T) {
	const timeout = 3 * time.Second
	for _, url := range []string{"redis://127.0.0.1:6379/0", "redis+cluster://127.0.0.1:7001,127.0.0.1:7002"} {
		client, err := redisconn.Open(url, timeout)
		if err != nil {
			t.Fatalf("%s: %v", url, err)
		}
		var got [8]any
		switch c := client.(type) {
		case *redis.Client:
			o := c.Options()
			got = [8]any{o.DialTimeout, o.ReadTimeout, o.WriteTimeout, o.PoolTimeout, o.ContextTimeoutEnabled, o.MaxRetries <= 0, o.DialerRetries, o.Protocol}
		case *redis.ClusterClient:
			o := c.Options()
			got = [8]any{o.DialTimeout, o.ReadTimeout, o.WriteTimeout, o.PoolTimeout, o.ContextTimeoutEnabled, o.MaxRetries <= 0, o.DialerRetries, o.Protocol}
		default:
			t.Fatalf("%s: client %T", url, client)
		}
		client.Close()
		if want := [8]any{timeout, timeout, timeout, 2 * timeout, true, true, 1, 2}; got != want {
			t.Errorf("%s: dial, read, write, pool timeouts, context timeouts, no retries (go-redis keeps -1 as 0), dial retries, RESP version = %v, want %v", url, got, want)
		}
	}
}

// coalescerOn opens a client of url with timeout and a Coalescer over it, closed with the test.
func coalescerOn(t *testing.T, url string, timeout time.Duration) (redis.UniversalClient, *redisconn.Coalescer) {
	t.Helper()
	client, err := redisconn.Open(url, timeout)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { client.Close() })
	reads, err := redisconn.NewCoalescer(client)
	if err != nil {
		t.Fatal(err)
	}
	return client, reads
}

// Many callers at once share pipelines, and each still gets the reply to its own keys, on a
// single node and on a cluster (where a pipeline is split by node).
func TestCoalescerAnswersEachCaller(t *testing.T) {
	for name, open := range map[string]func(testing.TB) (string, string){"single": testenv.Redis, "cluster": testenv.RedisCluster} {
		t.Run(name, func(t *testing.T) {
			url, prefix := open(t)
			client, reads := coalescerOn(t, url, 2*time.Second)
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			const users, rounds = 48, 40
			for id := int64(1); id <= users; id++ {
				if err := client.Set(ctx, auth.UserKey(prefix, id, "gen"), fmt.Sprint("gen of ", id), time.Minute).Err(); err != nil {
					t.Fatal(err)
				}
			}
			var wg sync.WaitGroup
			errs := make(chan error, users)
			for id := int64(1); id <= users; id++ {
				wg.Go(func() {
					for range rounds {
						vals, err := reads.MGet(ctx, auth.UserKey(prefix, id, "gen"), auth.UserKey(prefix, id, "missing"))
						if err != nil {
							errs <- err
							return
						}
						if len(vals) != 2 || vals[0] != fmt.Sprint("gen of ", id) || vals[1] != nil {
							errs <- fmt.Errorf("user %d read %v", id, vals)
							return
						}
					}
				})
			}
			wg.Wait()
			close(errs)
			for err := range errs {
				t.Error(err)
			}
		})
	}
}

// A hung Redis costs a caller its own deadline, or at most the client's read timeout, however
// many batches are stuck before its own, and the shared engine serves again once Redis is back.
func TestCoalescerKeepsTheCallersDeadline(t *testing.T) {
	r := testenv.RedisServer(t)
	client, reads := coalescerOn(t, r.URL(), 5*time.Second)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := client.Set(ctx, "k", "v", time.Minute).Err(); err != nil {
		t.Fatal(err)
	}
	if err := r.Freeze(); err != nil {
		t.Fatal(err)
	}
	thawed := false
	defer func() {
		if !thawed {
			_ = r.Thaw()
		}
	}()
	short, stop := context.WithTimeout(ctx, 100*time.Millisecond)
	start := time.Now()
	_, err := reads.MGet(short, "k")
	stop()
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("read from a frozen Redis: %v, want the caller's deadline", err)
	}
	if waited := time.Since(start); waited > 2*time.Second {
		t.Errorf("read from a frozen Redis returned after %v; the caller's deadline was 100ms", waited)
	}
	// Without a deadline of its own, a caller waits no longer than the client's read timeout,
	// even with earlier batches stuck on the frozen server. The stuck callers come one by one:
	// the first four fill the batches that may be in flight, the rest queue behind them, so a
	// caller that waited for its own batch's reply would wait at least two read timeouts (3 s
	// and more, measured).
	const readTimeout = time.Second
	_, quick := coalescerOn(t, r.URL(), readTimeout)
	var stuck sync.WaitGroup
	for range 32 {
		stuck.Go(func() { _, _ = quick.MGet(context.Background(), "k") })
		time.Sleep(5 * time.Millisecond)
	}
	start = time.Now()
	if _, err := quick.MGet(context.Background(), "k"); err == nil {
		t.Fatal("a read from a frozen Redis succeeded")
	}
	if waited := time.Since(start); waited > 2*readTimeout {
		t.Errorf("a read without a deadline waited %v for a frozen Redis; the client's read timeout is %v", waited, readTimeout)
	}
	stuck.Wait()
	if err := r.Thaw(); err != nil {
		t.Fatal(err)
	}
	thawed = true
	var last string
	if !testenv.WaitFor(10*time.Second, func() bool {
		vals, err := reads.MGet(ctx, "k")
		last = fmt.Sprint(vals, err)
		return err == nil && len(vals) == 1 && vals[0] == "v"
	}) {
		t.Fatalf("no good read within 10s of the thaw; last: %s", last)
	}
}
