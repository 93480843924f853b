package main

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"os/user"
	"strconv"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/bca-app/backend/internal/moderation"
	"github.com/bca-app/backend/internal/postgres"
	"github.com/bca-app/backend/internal/redisconn"
	"github.com/bca-app/backend/internal/syncqueue"
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

// operator is the audit log's name for whoever runs bcactl: the OS account.
func operator() moderation.Actor {
	name := os.Getenv("USER")
	if u, err := user.Current(); err == nil && u.Username != "" {
		name = u.Username
	}
	if name == "" {
		name = "unknown"
	}
	return moderation.Actor{Name: "bcactl:" + name}
}

// moderationService connects to DATABASE_URL and, when set, REDIS_URL (needed to close a locked
// user's chat streams at once; without it they close when their session check fails) and
// builds the same moderation service the admin API uses.
func moderationService(ctx context.Context, wantRedis bool) (*moderation.Service, func(), error) {
	u, err := databaseURL()
	if err != nil {
		return nil, nil, err
	}
	pool, err := postgres.Open(ctx, u)
	if err != nil {
		return nil, nil, err
	}
	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	var rdb redis.UniversalClient
	if ru := os.Getenv("REDIS_URL"); ru != "" {
		var err error
		if rdb, err = redisconn.Open(ru, 5*time.Second); err != nil {
			pool.Close()
			return nil, nil, fmt.Errorf("REDIS_URL: %w", err)
		}
	} else if wantRedis {
		log.Warn("REDIS_URL is not set: running API processes see the change when their cached sessions expire (minutes), and open chat streams end at their next session check")
	}
	prefix := os.Getenv("REDIS_KEY_PREFIX")
	if prefix == "" {
		prefix = "bca:"
	}
	d := moderation.Deps{Pool: pool, Notifier: syncqueue.PGNotifier{Pool: pool, Log: log}, KeyPrefix: prefix, Log: log}
	if rdb != nil {
		d.Redis = rdb
	}
	closeAll := func() {
		if rdb != nil {
			_ = rdb.Close()
		}
		pool.Close()
	}
	s, err := moderation.New(d)
	if err != nil {
		closeAll()
		return nil, nil, err
	}
	return s, closeAll, nil
}

// setAdmin is the only way to grant the admin role: an operator with database access runs it.
// The change and its audit entry are one transaction.
func setAdmin(ctx context.Context, loginID string, grant bool) error {
	svc, done, err := moderationService(ctx, true)
	if err != nil {
		return err
	}
	defer done()
	if _, err := svc.SetRole(ctx, operator(), loginID, grant); err != nil {
		return fmt.Errorf("set role: %w", err)
	}
	role := "user"
	if grant {
		role = "admin"
	}
	fmt.Printf("%s is now %s\n", loginID, role)
	return nil
}

// moderate runs the moderation verbs: lock/unlock KIND ID REASON…, revoke-sessions USER_ID
// REASON…, rebuild USER_ID REASON….
func moderate(ctx context.Context, verb string, args []string) error {
	var kind string
	if verb == "lock" || verb == "unlock" {
		if len(args) < 1 {
			return errUsage
		}
		kind, args = args[0], args[1:]
		if kind != moderation.KindUser && kind != moderation.KindProfile && kind != moderation.KindCard {
			return fmt.Errorf("%s: the kind must be user, profile or card", verb)
		}
	}
	if len(args) < 2 {
		return errUsage
	}
	id, err := strconv.ParseInt(args[0], 10, 64)
	if err != nil || id < 1 {
		return fmt.Errorf("%s: %q is not an id", verb, args[0])
	}
	reason := strings.TrimSpace(strings.Join(args[1:], " "))
	svc, done, err := moderationService(ctx, true)
	if err != nil {
		return err
	}
	defer done()
	a := operator()
	switch verb {
	case "lock", "unlock":
		st, err := svc.SetLock(ctx, a, kind, id, verb == "lock", reason)
		if err != nil {
			return err
		}
		state := "unlocked"
		if st.LockedAt != nil {
			state = "locked"
		}
		if !st.Changed {
			state = "already " + state
		}
		fmt.Printf("%s %d %s\n", kind, id, state)
	case "revoke-sessions":
		n, err := svc.RevokeSessions(ctx, a, id, reason)
		if err != nil {
			return err
		}
		fmt.Printf("user %d: %d sessions revoked\n", id, n)
	case "rebuild":
		v, _, err := svc.Rebuild(ctx, a, id, reason)
		if err != nil {
			return err
		}
		fmt.Printf("user %d: sync file owed at version %d; the worker rebuilds it\n", id, v)
	default:
		return errUsage
	}
	return nil
}
