package testenv

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"net/url"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/bca-app/backend/internal/postgres"
	"github.com/bca-app/backend/migrations"
)

// templateLockKey is the advisory lock that serialises building the
// template database among test binaries sharing a server ("bca_tmpl").
const templateLockKey int64 = 0x6263615f746d706c

// templateFormat is part of the template's name, so that a change to how
// templates are built here also gets a fresh template.
const templateFormat = "v1"

// Database creates a database for this test only, with every migration
// applied, and returns its URL. It is dropped when the test ends. Cloning a
// template that was migrated once per server makes this cheap enough to
// call in every test.
func Database(t testing.TB) string {
	t.Helper()
	h := current()
	need(t, h.postgresURL, "PostgreSQL")
	admin, err := h.admin()
	if err != nil {
		t.Fatalf("testenv: %v", err)
	}
	template, err := h.template()
	if err != nil {
		t.Fatalf("testenv: %v", err)
	}
	name := "test_" + randomHex(8)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if err := admin.exec(ctx, "CREATE DATABASE %s TEMPLATE %s", name, template); err != nil {
		t.Fatalf("testenv: create test database: %v", err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		// FORCE: connections the test left open must not keep it alive.
		if err := admin.exec(ctx, "DROP DATABASE IF EXISTS %s WITH (FORCE)", name); err != nil {
			t.Errorf("testenv: drop test database: %v", err)
		}
	})
	return admin.databaseURL(name)
}

// Pool opens a pool (postgres.Open, as the services do) on a database of this test only
// (Database), closed when the test ends.
func Pool(t testing.TB) *pgxpool.Pool {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	pool, err := postgres.Open(ctx, Database(t))
	if err != nil {
		t.Fatalf("testenv: %v", err)
	}
	t.Cleanup(pool.Close)
	return pool
}

// adminDB runs statements on the server as a superuser.
type adminDB struct {
	url  *url.URL // of database "postgres"
	pool *pgxpool.Pool
}

func (h *harness) openAdmin() (*adminDB, error) {
	raw, err := h.postgresURL()
	if err != nil {
		return nil, err
	}
	u, err := url.Parse(raw)
	if err != nil || (u.Scheme != "postgres" && u.Scheme != "postgresql") {
		return nil, fmt.Errorf("PostgreSQL admin URL %q: want postgres://… (%s)", raw, PostgresURLEnv)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	pool, err := pgxpool.New(ctx, raw)
	if err != nil {
		return nil, fmt.Errorf("connect to PostgreSQL: %w", err)
	}
	if err := pool.Ping(ctx); err != nil {
		pool.Close()
		return nil, fmt.Errorf("connect to PostgreSQL at %s: %w", u.Redacted(), err)
	}
	h.onShutdown(func() error { pool.Close(); return nil })
	return &adminDB{url: u, pool: pool}, nil
}

// exec runs a statement whose %s verbs are database names, which cannot be
// bound as parameters.
func (a *adminDB) exec(ctx context.Context, format string, names ...string) error {
	args := make([]any, len(names))
	for i, n := range names {
		args[i] = pgx.Identifier{n}.Sanitize()
	}
	sql := fmt.Sprintf(format, args...)
	if _, err := a.pool.Exec(ctx, sql); err != nil {
		return fmt.Errorf("%s: %w", sql, err)
	}
	return nil
}

// databaseURL is the admin URL with another database.
func (a *adminDB) databaseURL(name string) string {
	u := *a.url
	u.Path = "/" + name
	u.RawPath = ""
	return u.String()
}

// createTemplate makes sure the server has a template database with the
// current migrations applied, and returns its name. The name carries a hash
// of the migrations, so a changed migration gets a new template rather than
// a stale one. An advisory lock keeps test binaries sharing the server from
// building it at the same time.
func (h *harness) createTemplate() (string, error) {
	admin, err := h.admin()
	if err != nil {
		return "", err
	}
	sum, err := migrationsHash()
	if err != nil {
		return "", err
	}
	name := "bca_template_" + sum[:16]

	ctx, cancel := context.WithTimeout(context.Background(), startTimeout)
	defer cancel()
	// A dedicated connection: session advisory locks belong to a connection,
	// and closing it releases the lock even if we fail halfway.
	conn, err := pgx.Connect(ctx, admin.databaseURL("postgres"))
	if err != nil {
		return "", fmt.Errorf("template database: connect: %w", err)
	}
	defer conn.Close(context.Background())
	if _, err := conn.Exec(ctx, "SELECT pg_advisory_lock($1)", templateLockKey); err != nil {
		return "", fmt.Errorf("template database: lock: %w", err)
	}

	var complete bool
	err = conn.QueryRow(ctx, "SELECT datistemplate FROM pg_database WHERE datname = $1", name).Scan(&complete)
	switch {
	case err == nil && complete:
		return name, nil
	case err == nil:
		// Left half-built by a run that was killed while migrating.
		if err := admin.exec(ctx, "DROP DATABASE %s WITH (FORCE)", name); err != nil {
			return "", fmt.Errorf("template database: drop incomplete: %w", err)
		}
	case !errors.Is(err, pgx.ErrNoRows):
		return "", fmt.Errorf("template database: look up %s: %w", name, err)
	}
	if err := buildTemplate(ctx, admin, name); err != nil {
		return "", fmt.Errorf("template database %s: %w", name, err)
	}
	return name, nil
}

// buildTemplate creates the database, migrates it and only then marks it as
// a template, which is how createTemplate tells a complete one.
func buildTemplate(ctx context.Context, admin *adminDB, name string) error {
	if err := admin.exec(ctx, "CREATE DATABASE %s", name); err != nil {
		return err
	}
	if err := postgres.Migrate(ctx, admin.databaseURL(name)); err != nil {
		return fmt.Errorf("migrate: %w", err)
	}
	// No connections: a session left on a template makes cloning it fail.
	return admin.exec(ctx, "ALTER DATABASE %s WITH IS_TEMPLATE true ALLOW_CONNECTIONS false", name)
}

// migrationsHash identifies the migrations Migrate applies: the hash of
// every embedded file's name and content.
func migrationsHash() (string, error) {
	h := sha256.New()
	h.Write([]byte(templateFormat))
	err := fs.WalkDir(migrations.FS, ".", func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		content, err := fs.ReadFile(migrations.FS, path)
		if err != nil {
			return err
		}
		fmt.Fprintf(h, "\x00%s\x00%d\x00", path, len(content))
		h.Write(content)
		return nil
	})
	if err != nil {
		return "", fmt.Errorf("hash migrations: %w", err)
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}
