package devstack

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	osexec "os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
)

func testLogger(*testing.T) *slog.Logger {
	if testing.Verbose() {
		return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	return slog.New(slog.NewTextHandler(io.Discard, nil))
}

func tempDataRoot(t *testing.T) string {
	t.Helper()
	dir, err := TempDataRoot("devstack-test-*")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	return dir
}

func testContext(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(t.Context(), 3*time.Minute)
	t.Cleanup(cancel)
	return ctx
}

func TestPostgresKeepsDataAcrossRestarts(t *testing.T) {
	t.Parallel()
	ctx := testContext(t)
	dataDir := filepath.Join(tempDataRoot(t), "postgres")
	log := testLogger(t)

	pg, err := StartPostgres(ctx, dataDir, Options{Ephemeral: true}, log)
	if err != nil {
		t.Fatal(err)
	}
	execSQL(t, ctx, pg.URL("postgres"), "CREATE TABLE kept (v int); INSERT INTO kept VALUES (42)")
	if got := queryString(t, ctx, pg.URL("postgres"), "SHOW max_connections"); got != "300" {
		t.Errorf("ephemeral max_connections = %s, want 300", got)
	}
	if got := queryString(t, ctx, pg.URL("postgres"), "SHOW listen_addresses"); got != "127.0.0.1" {
		t.Errorf("listen_addresses = %s, want 127.0.0.1", got)
	}
	if err := pg.Stop(); err != nil {
		t.Fatal(err)
	}
	if err := pg.Stop(); err != nil {
		t.Fatalf("second Stop: %v", err)
	}

	pg, err = StartPostgres(ctx, dataDir, Options{}, log)
	if err != nil {
		t.Fatal(err)
	}
	defer pg.Stop()
	if got := queryString(t, ctx, pg.URL("postgres"), "SELECT v::text FROM kept"); got != "42" {
		t.Errorf("after restart kept.v = %s, want 42", got)
	}
	if got := queryString(t, ctx, pg.URL("postgres"), "SHOW fsync"); got != "on" {
		t.Errorf("durable server fsync = %s, want on", got)
	}
}

func TestPostgresRefusesUnreachableDataDir(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("only root hands the server to another user")
	}
	t.Parallel()
	private := t.TempDir() // 0700, owned by root
	if err := os.Chmod(private, 0o700); err != nil {
		t.Fatal(err)
	}
	if ReachableByPostgres(filepath.Join(private, "pg")) {
		t.Fatalf("ReachableByPostgres(%s/pg) = true under a 0700 root directory", private)
	}
	_, err := StartPostgres(testContext(t), filepath.Join(private, "pg"), Options{Ephemeral: true}, testLogger(t))
	if err == nil || !strings.Contains(err.Error(), "cannot reach") {
		t.Fatalf("StartPostgres under a 0700 root directory: err = %v, want a 'cannot reach' error", err)
	}
}

func TestDefaultDataRoot(t *testing.T) {
	t.Parallel()
	reachableCheckout := tempDataRoot(t)
	if got, want := DefaultDataRoot(reachableCheckout), filepath.Join(reachableCheckout, ".data"); got != want {
		t.Errorf("DefaultDataRoot(reachable) = %s, want %s", got, want)
	}
	if os.Geteuid() != 0 {
		return
	}
	private := t.TempDir()
	if err := os.Chmod(private, 0o700); err != nil {
		t.Fatal(err)
	}
	got := DefaultDataRoot(private)
	if !strings.HasPrefix(got, "/var/tmp/bca-") {
		t.Errorf("DefaultDataRoot(unreachable) = %s, want /var/tmp/bca-…", got)
	}
	if again := DefaultDataRoot(private); again != got {
		t.Errorf("DefaultDataRoot not stable: %s then %s", got, again)
	}
}

// TestRedisStartsAgainOnItsPort: a server stopped and started on its port answers at the same
// URL (what testenv's Redis restart relies on).
func TestRedisStartsAgainOnItsPort(t *testing.T) {
	t.Parallel()
	ctx := testContext(t)
	dir := filepath.Join(tempDataRoot(t), "redis")
	first, err := StartRedis(ctx, dir, Options{Ephemeral: true}, testLogger(t))
	if err != nil {
		t.Fatal(err)
	}
	defer first.Stop()
	url := first.URL()
	addr := strings.TrimSuffix(strings.TrimPrefix(url, "redis://"), "/0")
	if err := pingRedis(ctx, addr); err != nil {
		t.Fatal(err)
	}
	if err := first.Stop(); err != nil {
		t.Fatal(err)
	}
	if err := pingRedis(ctx, addr); err == nil {
		t.Fatal("a stopped server answered")
	}
	_, portText, _ := strings.Cut(addr, ":")
	port, err := strconv.Atoi(portText)
	if err != nil {
		t.Fatal(err)
	}
	r, err := StartRedisOnPort(ctx, dir, port, Options{Ephemeral: true}, testLogger(t))
	if err != nil {
		t.Fatal(err)
	}
	defer r.Stop()
	if r.URL() != url {
		t.Errorf("URL changed across restart: %s then %s", url, r.URL())
	}
	if err := pingRedis(ctx, addr); err != nil {
		t.Fatalf("after restart: %v", err)
	}
	if err := r.Stop(); err != nil {
		t.Fatal(err)
	}
	if err := pingRedis(ctx, addr); err == nil {
		t.Fatal("redis still answers after Stop")
	}
}

func TestMoto(t *testing.T) {
	t.Parallel()
	ctx := testContext(t)
	m, err := StartMoto(ctx, testLogger(t))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(m.URL(), "http://127.0.0.1:") {
		t.Errorf("URL = %s, want a loopback http URL", m.URL())
	}
	resp, err := http.Get(m.URL() + "/moto-api/data.json")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if err := m.Stop(); err != nil {
		t.Fatal(err)
	}
	if _, err := http.Get(m.URL() + "/moto-api/data.json"); err == nil {
		t.Fatal("moto still answers after Stop")
	}
}

func execSQL(t *testing.T, ctx context.Context, url, sql string) {
	t.Helper()
	conn, err := pgx.Connect(ctx, url)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	if _, err := conn.Exec(ctx, sql); err != nil {
		t.Fatal(err)
	}
}

func queryString(t *testing.T, ctx context.Context, url, sql string) string {
	t.Helper()
	conn, err := pgx.Connect(ctx, url)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	var s string
	if err := conn.QueryRow(ctx, sql).Scan(&s); err != nil {
		t.Fatal(err)
	}
	return s
}

// TestTakenPortIsRecognised checks the signal startOnFreePort retries on:
// a server that loses the race for its port must report errPortTaken.
func TestTakenPortIsRecognised(t *testing.T) {
	t.Parallel()
	taken, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer taken.Close()
	bin, err := osexec.LookPath("redis-server")
	if err != nil {
		t.Fatal(err)
	}
	r := &Redis{dataDir: tempDataRoot(t), opts: Options{Ephemeral: true}, log: testLogger(t)}
	err = r.start(testContext(t), bin, taken.Addr().(*net.TCPAddr).Port)
	if !errors.Is(err, errPortTaken) {
		t.Fatalf("start on a taken port: err = %v, want errPortTaken", err)
	}
}
