package syncqueue_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/bca-app/backend/internal/outbox"
	"github.com/bca-app/backend/internal/syncqueue"
	"github.com/bca-app/backend/internal/testenv"
)

// listener is a connection of its own that LISTENs on the workers' channel and on a sentinel
// channel the test signals to show that nothing came before it.
func listener(t *testing.T, dbURL string) *pgx.Conn {
	t.Helper()
	conn, err := pgx.Connect(t.Context(), dbURL)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close(context.Background()) })
	for _, ch := range []string{syncqueue.NotifyChannel, "syncqueue_test_sentinel"} {
		if _, err := conn.Exec(t.Context(), "LISTEN "+pgx.Identifier{ch}.Sanitize()); err != nil {
			t.Fatal(err)
		}
	}
	return conn
}

// next is the channel of the next notification conn gets, failing the test after 10 s.
func next(t *testing.T, conn *pgx.Conn) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	n, err := conn.WaitForNotification(ctx)
	if err != nil {
		t.Fatalf("no notification within 10 s: %v", err)
	}
	return n.Channel
}

// TestPGNotifierWakesTheWorkersOnlyForBumps: without SQS the producer NOTIFYs the workers' channel
// after a commit with bumps that are tasks (docs/sync.md §4.2); a commit without bumps, or with
// covered ones only (a task already stands for the user), sends nothing.
func TestPGNotifierWakesTheWorkersOnlyForBumps(t *testing.T) {
	e := newEnv(t)
	dbURL := testenv.Database(t)
	pool, err := pgxpool.New(t.Context(), dbURL)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(pool.Close)
	conn := listener(t, dbURL)
	n := syncqueue.PGNotifier{Pool: pool, Log: e.log}

	n.Notify(t.Context(), []outbox.Bump{{UserID: 1, Version: 2}})
	if ch := next(t, conn); ch != syncqueue.NotifyChannel {
		t.Fatalf("notification on %q; want %q", ch, syncqueue.NotifyChannel)
	}

	n.Notify(t.Context(), nil)
	n.Notify(t.Context(), []outbox.Bump{})
	n.Notify(t.Context(), []outbox.Bump{{UserID: 1, Version: 3, Covered: true}}) // a task stands for it
	if _, err := pool.Exec(t.Context(), "SELECT pg_notify('syncqueue_test_sentinel', '')"); err != nil {
		t.Fatal(err)
	}
	if ch := next(t, conn); ch != "syncqueue_test_sentinel" {
		t.Errorf("Notify without bumps, or with covered ones only, sent a notification on %q", ch)
	}
}

// TestPGNotifierLogsAFailedNotify: a notify that fails (here: the pool is closed) only delays the
// build to the next poll, so Notify logs it and returns.
func TestPGNotifierLogsAFailedNotify(t *testing.T) {
	e := newEnv(t)
	pool, err := pgxpool.New(t.Context(), testenv.Database(t))
	if err != nil {
		t.Fatal(err)
	}
	pool.Close()
	within(t, "Notify on a closed pool", func() {
		syncqueue.PGNotifier{Pool: pool, Log: e.log}.Notify(t.Context(), []outbox.Bump{{UserID: 1, Version: 1}})
	})
	if !strings.Contains(e.logs.String(), "notify sync workers") {
		t.Errorf("the failed notify was not logged; log:\n%s", e.logs.String())
	}
}
