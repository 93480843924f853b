package main

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"runtime/debug"

	"github.com/jackc/pgx/v5"

	"github.com/bca-app/backend/internal/app"
	"github.com/bca-app/backend/internal/config"
	"github.com/bca-app/backend/internal/devstack"
)

// dev runs the whole service on one machine: private PostgreSQL and Redis under the data root
// (reused by the next run), unless DATABASE_URL / REDIS_URL point at existing servers.
func dev(ctx context.Context) error {
	log := app.NewLogger(envOr("LOG_LEVEL", "info"))
	// A soft memory limit keeps the heap from growing with a burst's garbage: without one, a
	// 30 s sign-in storm at 64 connections took the process to 193 MiB; with it, 138 MiB
	// (README: hot path). Deployments set GOMEMLIMIT from the container's memory.
	if os.Getenv("GOMEMLIMIT") == "" {
		debug.SetMemoryLimit(devMemoryLimit)
	}
	root := devstack.DefaultDataRoot(".")
	if err := os.MkdirAll(root, 0o755); err != nil {
		return fmt.Errorf("data root: %w", err)
	}
	env := map[string]string{}
	if os.Getenv("DATABASE_URL") == "" {
		pg, err := devstack.StartPostgres(ctx, filepath.Join(root, "postgres"), devstack.Options{}, log)
		if err != nil {
			return err
		}
		defer pg.Stop()
		if err := ensureDatabase(ctx, pg.URL("postgres"), "bca"); err != nil {
			return err
		}
		env["DATABASE_URL"] = pg.URL("bca")
	}
	if os.Getenv("REDIS_URL") == "" {
		rd, err := devstack.StartRedis(ctx, filepath.Join(root, "redis"), devstack.Options{}, log)
		if err != nil {
			return err
		}
		defer rd.Stop()
		env["REDIS_URL"] = rd.URL()
	}
	if os.Getenv("SECRET_KEY") == "" {
		key, err := devSecret(filepath.Join(root, "secret_key"))
		if err != nil {
			return err
		}
		env["SECRET_KEY"] = key
	}
	if os.Getenv("STORAGE_DIR") == "" {
		env["STORAGE_DIR"] = filepath.Join(root, "objects")
	}
	cfg, err := config.Load(func(name string) string {
		if v := os.Getenv(name); v != "" {
			return v
		}
		return env[name]
	}, ".env")
	if err != nil {
		return fmt.Errorf("configuration:\n%w", err)
	}
	log = app.NewLogger(cfg.LogLevel)
	a, err := app.New(ctx, cfg, log)
	if err != nil {
		return err
	}
	defer a.Close()
	ln, err := net.Listen("tcp", cfg.HTTPAddr)
	if err != nil {
		return fmt.Errorf("listen on HTTP_ADDR %s: %w", cfg.HTTPAddr, err)
	}
	base := "http://" + ln.Addr().String()
	log.Info("B.Ca is running", "api", base+"/api/v1", "swagger_ui", base+"/docs/", "data", root)
	fmt.Fprintf(os.Stderr, "\n  B.Ca API:    %s/api/v1/ping\n  Swagger UI:  %s/docs/\n  Ctrl-C stops everything.\n\n", base, base)
	return app.Serve(ctx, a, ln)
}

func ensureDatabase(ctx context.Context, adminURL, name string) error {
	conn, err := pgx.Connect(ctx, adminURL)
	if err != nil {
		return fmt.Errorf("connect postgres: %w", err)
	}
	defer conn.Close(ctx)
	var exists bool
	if err := conn.QueryRow(ctx, "SELECT EXISTS (SELECT 1 FROM pg_database WHERE datname = $1)", name).Scan(&exists); err != nil {
		return fmt.Errorf("look up database: %w", err)
	}
	if exists {
		return nil
	}
	if _, err := conn.Exec(ctx, "CREATE DATABASE "+pgx.Identifier{name}.Sanitize()); err != nil {
		return fmt.Errorf("create database %s: %w", name, err)
	}
	return nil
}

// devSecret keeps one random signing key per data root, so sessions survive a restart.
// devMemoryLimit is make run's soft memory limit (GOMEMLIMIT) when the environment names none.
const devMemoryLimit = 96 << 20

func devSecret(path string) (string, error) {
	b, err := os.ReadFile(path)
	if err == nil && len(b) >= 32 {
		return string(b), nil
	}
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		return "", fmt.Errorf("read dev secret: %w", err)
	}
	key := rand.Text() + rand.Text()
	if err := os.WriteFile(path, []byte(key), 0o600); err != nil {
		return "", fmt.Errorf("write dev secret: %w", err)
	}
	return key, nil
}

func envOr(name, def string) string {
	if v := os.Getenv(name); v != "" {
		return v
	}
	return def
}
