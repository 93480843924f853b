package testenv

import (
	"context"
	"fmt"
	"net/http"
	"regexp"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/redis/go-redis/v9"
)

func TestMain(m *testing.M) { Main(m) }

func TestDatabasesAreMigratedAndIsolated(t *testing.T) {
	t.Parallel()
	first, second := Database(t), Database(t)
	if first == second {
		t.Fatalf("Database returned %s twice", first)
	}
	for _, url := range []string{first, second} {
		applied := queryValue[int64](t, url, "SELECT count(*) FROM goose_db_version WHERE version_id > 0 AND is_applied")
		if applied == 0 {
			t.Errorf("%s: no migrations applied", url)
		}
	}
	execSQL(t, first, "CREATE TABLE only_in_first (id int)")
	if queryValue[bool](t, second, "SELECT to_regclass('only_in_first') IS NOT NULL") {
		t.Error("a table created in one test database is visible in another")
	}
}

func TestDatabaseIsDroppedAfterTheTest(t *testing.T) {
	t.Parallel()
	var name string
	t.Run("user", func(t *testing.T) {
		url := Database(t)
		name = queryValue[string](t, url, "SELECT current_database()")
		// A connection left open must not keep the database alive.
		conn, err := pgx.Connect(t.Context(), url)
		if err != nil {
			t.Fatal(err)
		}
		_ = conn // deliberately not closed
	})
	admin, err := current().admin()
	if err != nil {
		t.Fatal(err)
	}
	var count int
	if err := admin.pool.QueryRow(t.Context(), "SELECT count(*) FROM pg_database WHERE datname = $1", name).Scan(&count); err != nil {
		t.Fatal(err)
	}
	if count != 0 {
		t.Errorf("database %s still exists after its test", name)
	}
}

func TestParallelDatabases(t *testing.T) {
	t.Parallel()
	for i := range 8 {
		t.Run("", func(t *testing.T) {
			t.Parallel()
			execSQL(t, Database(t), fmt.Sprintf("CREATE TABLE t (i int); INSERT INTO t VALUES (%d)", i))
		})
	}
}

// TestTemplateBuildersDoNotRace plays several test binaries sharing one
// server, each building the template at the same moment.
func TestTemplateBuildersDoNotRace(t *testing.T) {
	t.Parallel()
	adminURL := need(t, current().postgresURL, "PostgreSQL")
	var wg sync.WaitGroup
	names := make([]string, 4)
	errs := make([]error, len(names))
	for i := range names {
		wg.Go(func() {
			h := newHarness()
			h.postgresURL = func() (string, error) { return adminURL, nil }
			names[i], errs[i] = h.template()
			if err := h.shutdown(); err != nil {
				t.Error(err)
			}
		})
	}
	wg.Wait()
	for i := range names {
		if errs[i] != nil {
			t.Errorf("builder %d: %v", i, errs[i])
		} else if names[i] != names[0] {
			t.Errorf("builder %d built %s, builder 0 %s", i, names[i], names[0])
		}
	}
}

func TestRedisPrefixesAreUniqueAndCleanedUp(t *testing.T) {
	t.Parallel()
	var url, prefix string
	t.Run("user", func(t *testing.T) {
		var other string
		url, prefix = Redis(t)
		_, other = Redis(t)
		if prefix == other {
			t.Fatalf("Redis returned prefix %s twice", prefix)
		}
		if err := redisClient(t, url).Set(t.Context(), prefix+"k", "v", 0).Err(); err != nil {
			t.Fatal(err)
		}
	})
	n, err := redisClient(t, url).Exists(t.Context(), prefix+"k").Result()
	if err != nil {
		t.Fatal(err)
	}
	if n != 0 {
		t.Errorf("key %sk survived its test", prefix)
	}
}

func TestRedisServerRestartLosesData(t *testing.T) {
	t.Parallel()
	server := RedisServer(t)
	client := redisClient(t, server.URL())
	ctx := t.Context()
	if err := client.Set(ctx, "k", "v", 0).Err(); err != nil {
		t.Fatal(err)
	}
	if err := server.Restart(ctx); err != nil {
		t.Fatal(err)
	}
	// The client's pooled connection died with the server; go-redis retries
	// on a new one.
	n, err := client.Exists(ctx, "k").Result()
	if err != nil {
		t.Fatalf("after restart: %v", err)
	}
	if n != 0 {
		t.Error("an ephemeral Redis kept its data across a restart")
	}
}

func TestAWSEndpointAnswers(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, AWSEndpoint(t)+"/moto-api/data.json", nil)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Errorf("GET moto-api: %s", resp.Status)
	}
}

func TestUniqueName(t *testing.T) {
	t.Parallel()
	a, b := UniqueName("cards"), UniqueName("cards")
	if a == b {
		t.Errorf("UniqueName returned %s twice", a)
	}
	if !regexp.MustCompile(`^cards-[0-9a-f]{12}$`).MatchString(a) {
		t.Errorf("UniqueName = %q, want cards-<12 hex digits>", a)
	}
}

func redisClient(t *testing.T, url string) redis.UniversalClient {
	t.Helper()
	return RedisClient(t, url)
}

func execSQL(t *testing.T, url, sql string) {
	t.Helper()
	conn, err := pgx.Connect(t.Context(), url)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(context.Background())
	if _, err := conn.Exec(t.Context(), sql); err != nil {
		t.Fatal(err)
	}
}

func queryValue[T any](t *testing.T, url, sql string) T {
	t.Helper()
	conn, err := pgx.Connect(t.Context(), url)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(context.Background())
	var v T
	if err := conn.QueryRow(t.Context(), sql).Scan(&v); err != nil {
		t.Fatal(err)
	}
	return v
}
