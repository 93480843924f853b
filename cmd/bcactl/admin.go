package main

import (
	"context"
	"fmt"
	"os"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/redis/go-redis/v9"

	"github.com/bca-app/backend/gen/db"
	"github.com/bca-app/backend/internal/auth"
	"github.com/bca-app/backend/internal/bca"
	"github.com/bca-app/backend/internal/config"
	"github.com/bca-app/backend/internal/postgres"
)

func databaseURL() (string, error) {
	u := os.Getenv("DATABASE_URL")
	if u == "" {
		return "", fmt.Errorf("DATABASE_URL is required")
	}
	return u, nil
}

func migrate(ctx context.Context) error {
	u, err := databaseURL()
	if err != nil {
		return err
	}
	if err := postgres.Migrate(ctx, u); err != nil {
		return err
	}
	fmt.Println("migrations applied")
	return nil
}

// setAdmin is the only way to grant the admin role: an operator with database access runs it.
func setAdmin(ctx context.Context, loginID string, grant bool) error {
	u, err := databaseURL()
	if err != nil {
		return err
	}
	pool, err := postgres.Open(ctx, u)
	if err != nil {
		return err
	}
	defer pool.Close()
	role := "user"
	if grant {
		role = "admin"
	}
	n, err := db.New(pool).SetUserRole(ctx, db.SetUserRoleParams{LoginKey: bca.Key(loginID), Role: role})
	if err != nil {
		return fmt.Errorf("set role: %w", err)
	}
	if n == 0 {
		return fmt.Errorf("no account with id %q", loginID)
	}
	fmt.Printf("%s is now %s\n", loginID, role)
	return forgetSessions(ctx, pool, loginID)
}

// forgetSessions makes the running API processes re-read the user's role: they cache it with
// the sessions in Redis (auth.Authenticator). Without REDIS_URL the change reaches them when
// their cached records expire (5 minutes).
func forgetSessions(ctx context.Context, pool *pgxpool.Pool, loginID string) error {
	redisURL := os.Getenv("REDIS_URL")
	if redisURL == "" {
		fmt.Println("REDIS_URL is not set: running API processes see the change within 5 minutes")
		return nil
	}
	opts, err := redis.ParseURL(redisURL)
	if err != nil {
		return fmt.Errorf("REDIS_URL: %w", err)
	}
	rdb := redis.NewClient(opts)
	defer rdb.Close()
	var userID int64
	if err := pool.QueryRow(ctx, "SELECT id FROM users WHERE login_key = $1", bca.Key(loginID)).Scan(&userID); err != nil {
		return fmt.Errorf("look up %q: %w", loginID, err)
	}
	prefix := config.Defaults().RedisKeyPrefix
	if p, ok := os.LookupEnv("REDIS_KEY_PREFIX"); ok {
		prefix = p
	}
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	return auth.ForgetUser(ctx, rdb, prefix, userID)
}
