// Package testenv gives every package's tests real services: PostgreSQL,
// Redis and moto (S3, SQS, SES).
//
// A package opts in with
//
//	func TestMain(m *testing.M) { testenv.Main(m) }
//
// Servers named by environment variables are used as they are:
//
//	BCA_TEST_POSTGRES_URL      postgres://… of a server, database "postgres", as a superuser
//	BCA_TEST_REDIS_URL         redis://… (or redis+cluster://…: every Redis test then runs on a cluster)
//	BCA_TEST_REDIS_CLUSTER_URL redis+cluster://… of a Redis Cluster (RedisCluster)
//	BCA_TEST_AWS_ENDPOINT_URL  http://… of moto (or another S3/SQS/SES endpoint)
//
// Otherwise the first test that needs a service starts a private one with
// internal/devstack, and Main stops it after the tests. Starting lazily
// means a package that only needs moto never waits for PostgreSQL. A service
// that cannot start fails every test that needs it with the reason; tests
// are never skipped for lack of a service.
package testenv

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/bca-app/backend/internal/devstack"
)

// Environment variables naming servers to use instead of starting them.
const (
	PostgresURLEnv = "BCA_TEST_POSTGRES_URL"
	RedisURLEnv    = "BCA_TEST_REDIS_URL"
	// RedisClusterURLEnv names a Redis Cluster; `make test` runs the Redis-touching packages a
	// second time with BCA_TEST_REDIS_URL set to it.
	RedisClusterURLEnv = "BCA_TEST_REDIS_CLUSTER_URL"
	AWSEndpointEnv     = "BCA_TEST_AWS_ENDPOINT_URL"
)

// startTimeout bounds starting one service, initdb included.
const startTimeout = 3 * time.Minute

// current is the harness of this test binary. It is process-wide because
// TestMain is: the servers outlive every single test.
var current = sync.OnceValue(newHarness)

// harness starts services on first use and stops them when Main ends.
type harness struct {
	log        *slog.Logger
	mainCalled atomic.Bool

	// Each is run at most once; a failure is remembered, so every later
	// test fails at once with the same message instead of retrying.
	dataRoot    func() (string, error)
	postgresURL func() (string, error) // admin URL, database "postgres"
	redisURL    func() (string, error)
	clusterURL  func() (string, error)
	awsEndpoint func() (string, error)
	admin       func() (*adminDB, error)
	template    func() (string, error)

	mu    sync.Mutex
	stops []func() error // run in reverse order by shutdown
}

func newHarness() *harness {
	h := &harness{
		log: slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn})),
	}
	h.dataRoot = sync.OnceValues(h.makeDataRoot)
	h.postgresURL = sync.OnceValues(h.startPostgres)
	h.redisURL = sync.OnceValues(h.startRedis)
	h.clusterURL = sync.OnceValues(h.startRedisCluster)
	h.awsEndpoint = sync.OnceValues(h.startMoto)
	h.admin = sync.OnceValues(h.openAdmin)
	h.template = sync.OnceValues(h.createTemplate)
	return h
}

// Main runs the package's tests, then stops the services they started and
// exits. Call it from TestMain.
func Main(m *testing.M) {
	h := current()
	h.mainCalled.Store(true)
	if err := h.privateTempDir(); err != nil {
		fmt.Fprintf(os.Stderr, "testenv: %v\n", err)
		os.Exit(1)
	}
	code := m.Run()
	if err := h.shutdown(); err != nil {
		fmt.Fprintf(os.Stderr, "testenv: stopping services: %v\n", err)
		if code == 0 {
			code = 1
		}
	}
	os.Exit(code)
}

// privateTempDir points $TMPDIR, for this process and every process it starts, at a new
// directory that shutdown removes last. What a test cannot clean up itself lands there: the
// temporary files of a service killed mid-work on purpose (a sync build, an S3 upload's
// spool), a goroutine still running when the binary exits, the binaries tests build.
func (h *harness) privateTempDir() error {
	dir, err := os.MkdirTemp("", "bca-tests-*")
	if err != nil {
		return fmt.Errorf("private temporary directory: %w", err)
	}
	prev, had := os.LookupEnv("TMPDIR")
	if err := os.Setenv("TMPDIR", dir); err != nil {
		return errors.Join(err, os.Remove(dir))
	}
	h.onShutdown(func() error {
		if had {
			_ = os.Setenv("TMPDIR", prev)
		} else {
			_ = os.Unsetenv("TMPDIR")
		}
		return os.RemoveAll(dir)
	})
	return nil
}

// AWSEndpoint is the URL of the shared moto server, for AWS clients with
// path-style S3 addressing. Tests share it, so they name their buckets and
// queues with UniqueName.
func AWSEndpoint(t testing.TB) string {
	t.Helper()
	return need(t, current().awsEndpoint, "moto")
}

// need returns a lazily started service's value or fails the test.
func need(t testing.TB, get func() (string, error), service string) string {
	t.Helper()
	h := current()
	if !h.mainCalled.Load() {
		t.Fatalf("testenv: %s needed but testenv.Main was not called; add func TestMain(m *testing.M) { testenv.Main(m) } to this package", service)
	}
	v, err := get()
	if err != nil {
		t.Fatalf("testenv: %v", err)
	}
	return v
}

// onShutdown registers stop to run when Main ends, after everything
// registered later.
func (h *harness) onShutdown(stop func() error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.stops = append(h.stops, stop)
}

func (h *harness) shutdown() error {
	h.mu.Lock()
	stops := slices.Clone(h.stops)
	h.stops = nil
	h.mu.Unlock()
	var errs []error
	for _, stop := range slices.Backward(stops) {
		errs = append(errs, stop())
	}
	return errors.Join(errs...)
}

// makeDataRoot creates the directory for the servers' data, which the
// postgres OS user must be able to reach; t.TempDir() is not (mode 0700).
func (h *harness) makeDataRoot() (string, error) {
	dir, err := devstack.TempDataRoot("bca-test-*")
	if err != nil {
		return "", err
	}
	h.onShutdown(func() error { return os.RemoveAll(dir) })
	return dir, nil
}

// start runs a devstack start function with the data root and a timeout,
// and registers the server's Stop.
func start[S interface{ Stop() error }](h *harness, service, envVar string, startFn func(ctx context.Context, root string) (S, error)) (S, error) {
	var zero S
	root, err := h.dataRoot()
	if err != nil {
		return zero, fmt.Errorf("start %s: %w", service, err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), startTimeout)
	defer cancel()
	server, err := startFn(ctx, root)
	if err != nil {
		return zero, fmt.Errorf("start %s (install it with scripts/ensure-deps.sh, or set %s to use a running one): %w", service, envVar, err)
	}
	h.onShutdown(server.Stop)
	return server, nil
}

func (h *harness) startPostgres() (string, error) {
	if url := os.Getenv(PostgresURLEnv); url != "" {
		return url, nil
	}
	pg, err := start(h, "PostgreSQL", PostgresURLEnv, func(ctx context.Context, root string) (*devstack.Postgres, error) {
		return devstack.StartPostgres(ctx, filepath.Join(root, "postgres"), devstack.Options{Ephemeral: true}, h.log)
	})
	if err != nil {
		return "", err
	}
	return pg.URL("postgres"), nil
}

func (h *harness) startRedis() (string, error) {
	if url := os.Getenv(RedisURLEnv); url != "" {
		return url, nil
	}
	r, err := start(h, "Redis", RedisURLEnv, func(ctx context.Context, root string) (*devstack.Redis, error) {
		return devstack.StartRedis(ctx, filepath.Join(root, "redis"), devstack.Options{Ephemeral: true}, h.log)
	})
	if err != nil {
		return "", err
	}
	return r.URL(), nil
}

func (h *harness) startRedisCluster() (string, error) {
	if url := os.Getenv(RedisClusterURLEnv); url != "" {
		return url, nil
	}
	c, err := start(h, "Redis Cluster", RedisClusterURLEnv, func(ctx context.Context, root string) (*devstack.RedisCluster, error) {
		return devstack.StartRedisCluster(ctx, filepath.Join(root, "redis-cluster"), devstack.Options{Ephemeral: true}, h.log)
	})
	if err != nil {
		return "", err
	}
	return c.URL(), nil
}

func (h *harness) startMoto() (string, error) {
	if url := os.Getenv(AWSEndpointEnv); url != "" {
		return url, nil
	}
	m, err := start(h, "moto", AWSEndpointEnv, func(ctx context.Context, _ string) (*devstack.Moto, error) {
		return devstack.StartMoto(ctx, h.log)
	})
	if err != nil {
		return "", err
	}
	return m.URL(), nil
}
