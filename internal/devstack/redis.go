package devstack

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
)

// Redis is a private redis-server on a loopback port.
type Redis struct {
	dataDir string
	opts    Options
	log     *slog.Logger

	// clusterBus is the cluster bus port of a Redis Cluster node (StartRedisCluster); 0 for a
	// standalone server.
	clusterBus int

	mu   sync.Mutex // serialises URL and Stop
	port int
	proc *process
}

// StartRedis starts redis-server with its working directory (snapshots,
// append-only file) in dataDir, on a free loopback port. Ephemeral servers
// persist nothing; others keep an append-only file, so a dev runner's data
// survives restarts. It returns once the server answers PING.
func StartRedis(ctx context.Context, dataDir string, opts Options, log *slog.Logger) (*Redis, error) {
	return startServerOnFreePort(ctx, func(ctx context.Context, port int) (*Redis, error) {
		return StartRedisOnPort(ctx, dataDir, port, opts, log)
	})
}

// StartRedisOnPort is StartRedis on a given port: a server stopped and
// started again on its port is what clients see of a Redis restart in
// production (dropped connections, then the same address answering, with no
// data for an ephemeral server).
func StartRedisOnPort(ctx context.Context, dataDir string, port int, opts Options, log *slog.Logger) (*Redis, error) {
	if err := os.MkdirAll(dataDir, 0o755); err != nil {
		return nil, fmt.Errorf("create redis data directory: %w", err)
	}
	bin, err := exec.LookPath("redis-server")
	if err != nil {
		return nil, fmt.Errorf("redis-server not found on PATH; run scripts/ensure-deps.sh: %w", err)
	}
	r := &Redis{dataDir: dataDir, opts: opts, log: log}
	if err := r.start(ctx, bin, port); err != nil {
		return nil, fmt.Errorf("start redis in %s on port %d: %w", dataDir, port, err)
	}
	log.Info("redis ready", "url", r.URL(), "data", dataDir)
	return r, nil
}

// URL is the server's redis:// URL (database 0).
func (r *Redis) URL() string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return fmt.Sprintf("redis://127.0.0.1:%d/0", r.port)
}

// Stop shuts the server down; a non-ephemeral server saves its data first.
func (r *Redis) Stop() error {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.proc.stop(syscall.SIGTERM, 10*time.Second)
}

func (r *Redis) start(ctx context.Context, bin string, port int) error {
	args := redisArgs(r.dataDir, port, r.opts)
	if r.clusterBus != 0 {
		args = append(args, clusterArgs(r.clusterBus)...)
	}
	cmd := exec.Command(bin, args...)
	cmd.Dir = r.dataDir
	proc, err := startProcess("redis", cmd, r.log)
	if err != nil {
		return err
	}
	r.proc, r.port = proc, port
	addr := net.JoinHostPort("127.0.0.1", strconv.Itoa(port))
	if err := waitReady(ctx, proc, func(ctx context.Context) error { return pingRedis(ctx, addr) }); err != nil {
		_ = proc.stop(syscall.SIGKILL, time.Second)
		return err
	}
	return nil
}

func redisArgs(dataDir string, port int, opts Options) []string {
	args := []string{
		"--bind", "127.0.0.1",
		"--port", strconv.Itoa(port),
		"--protected-mode", "yes",
		"--daemonize", "no",
		"--dir", dataDir,
		"--logfile", "",
	}
	if opts.Ephemeral {
		return append(args, "--save", "", "--appendonly", "no")
	}
	return append(args, "--appendonly", "yes")
}

// pingRedis speaks just enough RESP to know the server is serving: a
// loading server answers -LOADING instead of +PONG.
func pingRedis(ctx context.Context, addr string) error {
	var d net.Dialer
	conn, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		return err
	}
	defer conn.Close()
	stop := context.AfterFunc(ctx, func() { _ = conn.SetDeadline(time.Now()) })
	defer stop()
	if _, err := conn.Write([]byte("PING\r\n")); err != nil {
		return err
	}
	reply, err := bufio.NewReader(conn).ReadString('\n')
	if err != nil {
		return err
	}
	if reply = strings.TrimSpace(reply); reply != "+PONG" {
		return errors.New("redis answered PING with " + reply)
	}
	return nil
}
