package txn_test

import (
	"context"
	"errors"
	"net/url"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/bca-app/backend/internal/postgres"
	"github.com/bca-app/backend/internal/testenv"
	"github.com/bca-app/backend/internal/txn"
)

func TestMain(m *testing.M) { testenv.Main(m) }

func probe(t *testing.T) (context.Context, *pgxpool.Pool) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	t.Cleanup(cancel)
	pool, err := postgres.Open(ctx, testenv.Database(t))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(pool.Close)
	if _, err := pool.Exec(ctx, `CREATE TABLE txn_probe (attempt int NOT NULL)`); err != nil {
		t.Fatal(err)
	}
	return ctx, pool
}

func rows(ctx context.Context, t *testing.T, pool *pgxpool.Pool) []int {
	t.Helper()
	r, err := pool.Query(ctx, `SELECT attempt FROM txn_probe ORDER BY attempt`)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	var out []int
	for r.Next() {
		var a int
		if err := r.Scan(&a); err != nil {
			t.Fatal(err)
		}
		out = append(out, a)
	}
	return out
}

// TestRetryKeepsOnlyTheCommittedAttempt: a serialization failure or deadlock reruns the whole
// transaction; what an aborted attempt wrote and the hooks it registered are gone, and the hooks
// of the committed attempt run once, after the commit.
func TestRetryKeepsOnlyTheCommittedAttempt(t *testing.T) {
	for _, code := range []string{"40001", "40P01"} {
		t.Run(code, func(t *testing.T) {
			ctx, pool := probe(t)
			attempts, hooks := 0, []int{}
			err := txn.Do(ctx, pool, func(tx *txn.Tx) error {
				attempts++
				n := attempts
				if _, err := tx.Raw.Exec(ctx, `INSERT INTO txn_probe VALUES ($1)`, n); err != nil {
					return err
				}
				tx.AfterCommit(func(context.Context) { hooks = append(hooks, n) })
				if n == 1 {
					return &pgconn.PgError{Code: code}
				}
				return nil
			})
			if err != nil {
				t.Fatal(err)
			}
			if attempts != 2 {
				t.Fatalf("%d attempts, want 2", attempts)
			}
			if got := rows(ctx, t, pool); len(got) != 1 || got[0] != 2 {
				t.Fatalf("rows %v, want only the committed attempt's [2]", got)
			}
			if len(hooks) != 1 || hooks[0] != 2 {
				t.Fatalf("hooks ran for attempts %v, want [2]", hooks)
			}
		})
	}
}

// TestRetryIsBounded: a transaction that keeps colliding gives up after MaxAttempts with the
// retryable error (answered 503 by the HTTP layer), having written nothing and run no hook.
func TestRetryIsBounded(t *testing.T) {
	ctx, pool := probe(t)
	attempts, hooked := 0, false
	err := txn.Do(ctx, pool, func(tx *txn.Tx) error {
		attempts++
		if _, err := tx.Raw.Exec(ctx, `INSERT INTO txn_probe VALUES ($1)`, attempts); err != nil {
			return err
		}
		tx.AfterCommit(func(context.Context) { hooked = true })
		return &pgconn.PgError{Code: "40P01"}
	})
	if !txn.Retryable(err) || attempts != txn.MaxAttempts {
		t.Fatalf("err %v after %d attempts, want a retryable error after %d", err, attempts, txn.MaxAttempts)
	}
	if got := rows(ctx, t, pool); len(got) != 0 || hooked {
		t.Fatalf("rows %v, hook ran %v; want nothing", got, hooked)
	}
}

// TestOtherErrorsRollBackAtOnce: any other error is returned as it is, without a retry.
func TestOtherErrorsRollBackAtOnce(t *testing.T) {
	ctx, pool := probe(t)
	refused := errors.New("refused by a rule")
	attempts := 0
	err := txn.Do(ctx, pool, func(tx *txn.Tx) error {
		attempts++
		if _, err := tx.Raw.Exec(ctx, `INSERT INTO txn_probe VALUES (1)`); err != nil {
			return err
		}
		return refused
	})
	if !errors.Is(err, refused) || attempts != 1 {
		t.Fatalf("err %v after %d attempts, want the rule's error after 1", err, attempts)
	}
	if got := rows(ctx, t, pool); len(got) != 0 {
		t.Fatalf("rows %v after a rollback", got)
	}
}

// TestRollbackOfAHungDatabaseEnds: when the database stops answering in the middle of a
// transaction, the rollback after the failure gives up after its own deadline instead of
// waiting for ever, although the caller's context has none (docs/operations.md, "Deadlines").
func TestRollbackOfAHungDatabaseEnds(t *testing.T) {
	u, err := url.Parse(testenv.Database(t))
	if err != nil {
		t.Fatal(err)
	}
	proxy := testenv.NewHoldProxy(t, u.Host)
	u.Host = proxy.Addr
	pool, err := postgres.Open(context.Background(), u.String())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(pool.Close)
	refused := errors.New("refused by a rule")
	done := make(chan error, 1)
	go func() {
		done <- txn.Do(context.Background(), pool, func(tx *txn.Tx) error {
			if _, err := tx.Raw.Exec(context.Background(), `SELECT 1`); err != nil {
				return err
			}
			proxy.Hold() // the database hangs before the rollback
			return refused
		})
	}()
	// Released at the end either way: the pool's closing waits for the dropped connection's
	// goodbye, which the held proxy would keep for pgx's 15 s.
	defer proxy.Release()
	start := time.Now()
	select {
	case err := <-done:
		if !errors.Is(err, refused) {
			t.Fatalf("err %v, want the rule's error", err)
		}
		t.Logf("returned %v after the database hung (rollback deadline 5 s)", time.Since(start).Round(time.Millisecond))
	case <-time.After(30 * time.Second):
		t.Fatal("the transaction did not return within 30 s of the database hanging")
	}
}
