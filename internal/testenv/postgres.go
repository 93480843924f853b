package testenv

import (
	"context"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"testing"

	"github.com/bca-app/backend/internal/devstack"
	"github.com/bca-app/backend/internal/postgres"
)

// PostgresProcess is a private PostgreSQL server of one test, which the test may stop and start
// again from one goroutine (its clients only need the URL, which does not change).
type PostgresProcess struct {
	dir  string
	port int
	cur  *devstack.Postgres
}

// Stop shuts the server down in fast mode (sessions are disconnected).
func (p *PostgresProcess) Stop() error { return p.cur.Stop() }

// Start starts a stopped server again on its port and data directory, so clients see what a
// database restart in production looks like: refused connections, then the same address
// answering with the same data.
func (p *PostgresProcess) Start(ctx context.Context) error {
	next, err := devstack.StartPostgresOnPort(ctx, p.dir, p.port, devstack.Options{Ephemeral: true}, current().log)
	if err != nil {
		return fmt.Errorf("start postgres again: %w", err)
	}
	p.cur = next
	return nil
}

// PostgresServer starts a PostgreSQL server for this test alone, with the migrations applied to
// its "postgres" database, stopped when the test ends: for tests that stop or restart the
// database (outage faults) without disturbing tests using the shared server. It returns the
// server and the database URL, which stays the same across restarts.
func PostgresServer(t testing.TB) (*PostgresProcess, string) {
	t.Helper()
	dir, err := devstack.TempDataRoot("bca-pg-*")
	if err != nil {
		t.Fatalf("testenv: %v", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), startTimeout)
	defer cancel()
	p := &PostgresProcess{dir: filepath.Join(dir, "postgres")}
	p.cur, err = devstack.StartPostgres(ctx, p.dir, devstack.Options{Ephemeral: true}, current().log)
	if err != nil {
		os.RemoveAll(dir)
		t.Fatalf("testenv: start a private PostgreSQL (install it with scripts/ensure-deps.sh): %v", err)
	}
	t.Cleanup(func() {
		if err := p.Stop(); err != nil {
			t.Errorf("testenv: stop private PostgreSQL: %v", err)
		}
		os.RemoveAll(dir)
	})
	dbURL := p.cur.URL("postgres")
	u, err := url.Parse(dbURL)
	if err == nil {
		p.port, err = strconv.Atoi(u.Port())
	}
	if err != nil {
		t.Fatalf("testenv: port of private PostgreSQL: %v", err)
	}
	if err := postgres.Migrate(ctx, dbURL); err != nil {
		t.Fatalf("testenv: migrate private PostgreSQL: %v", err)
	}
	return p, dbURL
}
