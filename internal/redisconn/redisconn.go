// Package redisconn turns a REDIS_URL into a client: a single node for redis:// and rediss://,
// a Redis Cluster for redis+cluster:// and rediss+cluster://.
//
// A cluster URL names one or more seed nodes, comma-separated in the host part or repeated as
// addr= query parameters (both forms may be mixed); the client discovers the rest of the
// cluster from any of them:
//
//	redis+cluster://10.0.0.1:6379,10.0.0.2:6379,10.0.0.3:6379
//	rediss+cluster://user:password@clustercfg.bca.example.cache.amazonaws.com:6379
//	redis+cluster://127.0.0.1:7001?addr=127.0.0.1:7002&addr=127.0.0.1:7003
//
// rediss+cluster:// speaks TLS (ElastiCache with in-transit encryption, as deploy/bca.yaml
// configures it). A cluster has no database number: a path other than "" or "/" is an error.
// The other query parameters are those of go-redis' ParseURL/ParseClusterURL.
//
// Callers hold redis.UniversalClient, so the same code runs on both. What keeps it correct on a
// cluster: every multi-key command or script keeps its keys in one hash slot (auth.UserKey's
// {u<id>} hash tag); pipelines that are not transactions may span slots (the client splits
// them by node); PUBLISH/SUBSCRIBE are cluster-wide.
package redisconn

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"
)

// IsCluster reports whether rawURL selects a Redis Cluster.
func IsCluster(rawURL string) bool {
	return strings.HasPrefix(rawURL, "redis+cluster://") || strings.HasPrefix(rawURL, "rediss+cluster://")
}

// Validate checks that rawURL is a usable REDIS_URL without connecting.
func Validate(rawURL string) error {
	if IsCluster(rawURL) {
		_, err := clusterOptions(rawURL)
		return err
	}
	_, err := redis.ParseURL(rawURL)
	return err
}

// Open returns a client for rawURL. A positive timeout bounds every dial, read and write (and
// twice that the wait for a pooled connection), and the client neither retries on its own nor
// outlives a caller's context deadline: a Redis that hangs costs a request timeout, not seconds.
// Open does not connect; the first command does.
func Open(rawURL string, timeout time.Duration) (redis.UniversalClient, error) {
	if IsCluster(rawURL) {
		opts, err := clusterOptions(rawURL)
		if err != nil {
			return nil, err
		}
		bounds{&opts.DialTimeout, &opts.ReadTimeout, &opts.WriteTimeout, &opts.PoolTimeout,
			&opts.ContextTimeoutEnabled, &opts.MaxRetries, &opts.DialerRetries}.set(timeout)
		preferRESP2(&opts.Protocol)
		return redis.NewClusterClient(opts), nil
	}
	opts, err := redis.ParseURL(rawURL)
	if err != nil {
		return nil, err
	}
	bounds{&opts.DialTimeout, &opts.ReadTimeout, &opts.WriteTimeout, &opts.PoolTimeout,
		&opts.ContextTimeoutEnabled, &opts.MaxRetries, &opts.DialerRetries}.set(timeout)
	preferRESP2(&opts.Protocol)
	return redis.NewClient(opts), nil
}

// preferRESP2 speaks RESP2 unless the URL asks for a protocol (protocol=3). Nothing here uses a
// RESP3 feature, and on RESP3 the client looks for push notifications around every command:
// about 4 % of the CPU of an authenticated request, whose one Redis read is the hot path.
func preferRESP2(protocol *int) {
	if *protocol == 0 {
		*protocol = 2
	}
}

// bounds points at the fields that redis.Options and redis.ClusterOptions both have, so Open
// bounds either kind of client in one place.
type bounds struct {
	dial, read, write, pool   *time.Duration
	contextTimeout            *bool
	maxRetries, dialerRetries *int
}

// set applies a positive timeout (0 leaves the client's defaults).
func (b bounds) set(timeout time.Duration) {
	if timeout <= 0 {
		return
	}
	*b.dial, *b.read, *b.write = timeout, timeout, timeout
	*b.pool = 2 * timeout
	*b.contextTimeout = true
	*b.maxRetries = -1
	// One dial attempt per call: the client's default of five attempts 100 ms apart made every
	// call to a stopped Redis cost half a second (found by TestDependencyFaultsUnderLoad).
	*b.dialerRetries = 1
}

// clusterOptions rewrites a redis+cluster:// URL into the form go-redis' ParseClusterURL reads
// (one host, the others as addr= parameters).
func clusterOptions(rawURL string) (*redis.ClusterOptions, error) {
	u, err := url.Parse(rawURL)
	if err != nil {
		return nil, fmt.Errorf("redis cluster URL: %w", err)
	}
	u.Scheme = strings.TrimSuffix(u.Scheme, "+cluster")
	if u.Path != "" && u.Path != "/" {
		return nil, errors.New("redis cluster URL: a cluster has no database number; drop the path")
	}
	u.Path = ""
	q := u.Query()
	hosts := strings.Split(u.Host, ",")
	for _, h := range hosts {
		if h == "" {
			return nil, errors.New("redis cluster URL: empty host in the host list")
		}
		if !strings.Contains(h, ":") {
			return nil, fmt.Errorf("redis cluster URL: host %q needs a port", h)
		}
	}
	u.Host = hosts[0]
	extra := append(hosts[1:], q["addr"]...)
	q.Del("addr")
	for _, h := range extra {
		q.Add("addr", h)
	}
	u.RawQuery = q.Encode()
	opts, err := redis.ParseClusterURL(u.String())
	if err != nil {
		return nil, fmt.Errorf("redis cluster URL: %w", err)
	}
	return opts, nil
}

// Coalescer sends commands that many goroutines issue at the same time as one pipeline: one
// write and one read on a connection for a whole wave of requests instead of one each, on the
// client and on the Redis server. It is what keeps the authentication read (one MGET per
// request) cheap under load; a lone command still costs exactly one round trip.
type Coalescer struct {
	ap *redis.AutoPipeliner
	// wait bounds how long a caller waits for its reply: the client's read timeout, as for a
	// command of its own. A shared batch may queue behind others stuck on a hung Redis, so
	// without it a caller could wait for several timeouts. 0: only the caller's context.
	wait time.Duration
}

// NewCoalescer returns a Coalescer over rdb. Commands run on rdb's connections with its read
// and write timeouts (Open's bounds); the engine is rdb's own and stops when rdb is closed.
func NewCoalescer(rdb redis.UniversalClient) (*Coalescer, error) {
	c, ok := rdb.(interface {
		AsyncAutoPipelineWithOptions(*redis.AutoPipelineOptions) (*redis.AutoPipeliner, error)
	})
	if !ok {
		return nil, fmt.Errorf("redis client %T cannot coalesce commands", rdb)
	}
	var wait time.Duration
	switch rdb := rdb.(type) {
	case *redis.Client:
		wait = rdb.Options().ReadTimeout
	case *redis.ClusterClient:
		wait = rdb.Options().ReadTimeout
	}
	opts := redis.DefaultAutoPipelineOptions()
	// The reads are independent of each other, so batches may run side by side (order is only
	// kept for one caller's own commands, and a caller issues one at a time).
	opts.Unordered, opts.MaxConcurrentBatches = true, 4
	ap, err := c.AsyncAutoPipelineWithOptions(opts)
	if err != nil {
		return nil, fmt.Errorf("redis coalescer: %w", err)
	}
	return &Coalescer{ap: ap, wait: max(wait, 0)}, nil
}

// MGet reads keys in the next pipeline. It returns when the reply is there, when ctx is done or
// when the client's read timeout has passed, whichever comes first, so a caller waits no longer
// than for a command of its own even though the batch is shared.
func (c *Coalescer) MGet(ctx context.Context, keys ...string) ([]any, error) {
	if c.wait > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, c.wait)
		defer cancel()
	}
	args := make([]any, 1, 1+len(keys))
	args[0] = "mget"
	for _, k := range keys {
		args = append(args, k)
	}
	cmd := redis.NewSliceCmd(ctx, args...)
	if err := c.ap.Submit(ctx, cmd).WaitContext(ctx); err != nil {
		return nil, err
	}
	return cmd.Result()
}
