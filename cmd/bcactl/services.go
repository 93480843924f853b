package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"

	"github.com/bca-app/backend/internal/devstack"
	"github.com/bca-app/backend/internal/testenv"
)

// withServices starts throw-away PostgreSQL, Redis, a 3-master Redis Cluster and moto, runs the
// command with BCA_TEST_* pointing at them, and stops them: `make test` shares one set across
// every test binary instead of each binary starting its own.
func withServices(ctx context.Context, args []string) error {
	if len(args) == 0 {
		return errUsage
	}
	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	root, err := devstack.TempDataRoot("bca-test-*")
	if err != nil {
		return err
	}
	defer os.RemoveAll(root)
	eph := devstack.Options{Ephemeral: true}
	env := os.Environ()
	if os.Getenv(testenv.PostgresURLEnv) == "" {
		pg, err := devstack.StartPostgres(ctx, filepath.Join(root, "postgres"), eph, log)
		if err != nil {
			return err
		}
		defer pg.Stop()
		env = append(env, testenv.PostgresURLEnv+"="+pg.URL("postgres"))
	}
	if os.Getenv(testenv.RedisURLEnv) == "" {
		rd, err := devstack.StartRedis(ctx, filepath.Join(root, "redis"), eph, log)
		if err != nil {
			return err
		}
		defer rd.Stop()
		env = append(env, testenv.RedisURLEnv+"="+rd.URL())
	}
	if os.Getenv(testenv.RedisClusterURLEnv) == "" {
		rc, err := devstack.StartRedisCluster(ctx, filepath.Join(root, "redis-cluster"), eph, log)
		if err != nil {
			return err
		}
		defer rc.Stop()
		env = append(env, testenv.RedisClusterURLEnv+"="+rc.URL())
	}
	if os.Getenv(testenv.AWSEndpointEnv) == "" {
		moto, err := devstack.StartMoto(ctx, log)
		if err != nil {
			return err
		}
		defer moto.Stop()
		env = append(env, testenv.AWSEndpointEnv+"="+moto.URL())
	}
	cmd := exec.CommandContext(ctx, args[0], args[1:]...)
	cmd.Env = env
	cmd.Stdin, cmd.Stdout, cmd.Stderr = os.Stdin, os.Stdout, os.Stderr
	if err := cmd.Run(); err != nil {
		var exit *exec.ExitError
		if errors.As(err, &exit) {
			return fmt.Errorf("%s exited with status %d", args[0], exit.ExitCode())
		}
		return fmt.Errorf("run %s: %w", args[0], err)
	}
	return nil
}
