package main

import (
	"context"
	"fmt"
	"os"

	"github.com/bca-app/backend/gen/db"
	"github.com/bca-app/backend/internal/bca"
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
	return nil
}
