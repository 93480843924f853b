package devstack

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

// RedisCluster is a private Redis Cluster of three masters (no replicas) on loopback ports, for
// tests that must hold against a cluster: keys spread over nodes, MOVED redirections, and
// pub/sub messages crossing the cluster bus.
type RedisCluster struct {
	Nodes []*Redis
}

// clusterNodes is the smallest cluster redis-cli --cluster create accepts.
const clusterNodes = 3

// clusterArgs make a server a cluster node. The bus port is given explicitly, because the default
// (port+10000) may be taken or beyond 65535 for a high free port. The node timeout outlasts a
// pause of a few seconds (a test's SIGSTOP) without the cluster marking the node failed.
func clusterArgs(busPort int) []string {
	return []string{
		"--cluster-enabled", "yes",
		"--cluster-config-file", "nodes.conf",
		"--cluster-port", strconv.Itoa(busPort),
		"--cluster-node-timeout", "15000",
	}
}

// StartRedisCluster starts three cluster-enabled servers under dataDir, joins them with
// redis-cli --cluster create, and returns once every node reports cluster_state:ok.
func StartRedisCluster(ctx context.Context, dataDir string, opts Options, log *slog.Logger) (_ *RedisCluster, err error) {
	bin, err := exec.LookPath("redis-server")
	if err != nil {
		return nil, fmt.Errorf("redis-server not found on PATH; run scripts/ensure-deps.sh: %w", err)
	}
	cli, err := exec.LookPath("redis-cli")
	if err != nil {
		return nil, fmt.Errorf("redis-cli not found on PATH; run scripts/ensure-deps.sh: %w", err)
	}
	c := &RedisCluster{}
	defer func() {
		if err != nil {
			_ = c.Stop()
		}
	}()
	for i := range clusterNodes {
		r := &Redis{dataDir: filepath.Join(dataDir, "node"+strconv.Itoa(i)), opts: opts, log: log}
		if err := os.MkdirAll(r.dataDir, 0o755); err != nil {
			return nil, fmt.Errorf("create redis data directory: %w", err)
		}
		err := startOnFreePort(ctx, func(ctx context.Context, port int) error {
			bus, err := freePort()
			if err != nil {
				return err
			}
			r.clusterBus = bus
			return r.start(ctx, bin, port)
		})
		if err != nil {
			return nil, fmt.Errorf("start redis cluster node %d: %w", i, err)
		}
		c.Nodes = append(c.Nodes, r)
	}
	args := []string{"--cluster", "create"}
	for _, n := range c.Nodes {
		args = append(args, n.addr())
	}
	args = append(args, "--cluster-replicas", "0", "--cluster-yes")
	createCtx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	if out, err := exec.CommandContext(createCtx, cli, args...).CombinedOutput(); err != nil {
		return nil, fmt.Errorf("redis-cli --cluster create: %w\n%s", err, out)
	}
	if err := c.waitOK(ctx, cli); err != nil {
		return nil, err
	}
	log.Info("redis cluster ready", "url", c.URL())
	return c, nil
}

// waitOK polls CLUSTER INFO on every node until all agree the cluster is serving.
func (c *RedisCluster) waitOK(ctx context.Context, cli string) error {
	ctx, cancel := context.WithTimeout(ctx, startTimeout)
	defer cancel()
	for _, n := range c.Nodes {
		for {
			host, port, _ := net.SplitHostPort(n.addr())
			attempt, cancelAttempt := context.WithTimeout(ctx, 2*time.Second)
			out, err := exec.CommandContext(attempt, cli, "-h", host, "-p", port, "cluster", "info").Output()
			cancelAttempt()
			if err == nil && strings.Contains(string(out), "cluster_state:ok") {
				break
			}
			select {
			case <-ctx.Done():
				return fmt.Errorf("redis cluster node %s not ok: %w (last answer: %s)", n.addr(), ctx.Err(), out)
			case <-time.After(100 * time.Millisecond):
			}
		}
	}
	return nil
}

// URL is the cluster's redis+cluster:// URL listing every node.
func (c *RedisCluster) URL() string {
	addrs := make([]string, len(c.Nodes))
	for i, n := range c.Nodes {
		addrs[i] = n.addr()
	}
	return "redis+cluster://" + strings.Join(addrs, ",")
}

// Stop stops every node.
func (c *RedisCluster) Stop() error {
	var errs []error
	for _, n := range c.Nodes {
		errs = append(errs, n.Stop())
	}
	return errors.Join(errs...)
}

func (r *Redis) addr() string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return net.JoinHostPort("127.0.0.1", strconv.Itoa(r.port))
}
