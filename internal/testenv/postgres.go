package testenv

import (
	"context"
	"os"
	"path/filepath"
	"testing"

	"github.com/bca-app/backend/internal/devstack"
	"github.com/bca-app/backend/internal/postgres"
)

// PostgresServer starts a PostgreSQL server for this test alone, with the migrations applied to
// its "postgres" database, stopped when the test ends: for tests that stop or restart the
// database (outage faults) without disturbing tests using the shared server. It returns the
// server and the database URL.
func PostgresServer(t testing.TB) (*devstack.Postgres, string) {
	t.Helper()
	dir, err := devstack.TempDataRoot("bca-pg-*")
	if err != nil {
		t.Fatalf("testenv: %v", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), startTimeout)
	defer cancel()
	server, err := devstack.StartPostgres(ctx, filepath.Join(dir, "postgres"), devstack.Options{Ephemeral: true}, current().log)
	if err != nil {
		os.RemoveAll(dir)
		t.Fatalf("testenv: start a private PostgreSQL (install it with scripts/ensure-deps.sh): %v", err)
	}
	t.Cleanup(func() {
		if err := server.Stop(); err != nil {
			t.Errorf("testenv: stop private PostgreSQL: %v", err)
		}
		os.RemoveAll(dir)
	})
	url := server.URL("postgres")
	if err := postgres.Migrate(ctx, url); err != nil {
		t.Fatalf("testenv: migrate private PostgreSQL: %v", err)
	}
	return server, url
}
