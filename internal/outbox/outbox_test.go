package outbox_test

import (
	"context"
	"testing"
	"time"

	"github.com/bca-app/backend/gen/db"
	"github.com/bca-app/backend/internal/outbox"
	"github.com/bca-app/backend/internal/postgres"
	"github.com/bca-app/backend/internal/testenv"
	"github.com/bca-app/backend/internal/txn"
)

func TestMain(m *testing.M) { testenv.Main(m) }

// TestWriterBumpsInTheTransactionAndNotifiesAfterCommit: a write marks each user once, in its
// own transaction; a failed write leaves wanted_version alone and notifies nothing
// (docs/sync.md §4.1–§4.2).
func TestWriterBumpsInTheTransactionAndNotifiesAfterCommit(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	pool, err := postgres.Open(ctx, testenv.Database(t))
	if err != nil {
		t.Fatal(err)
	}
	defer pool.Close()
	var u int64
	if err := pool.QueryRow(ctx, `
		INSERT INTO users (login_id, login_key, nickname, nickname_key, email, email_key, password_hash)
		VALUES ('user', 'user', 'u', 'u', 'u@example.com', 'u@example.com', 'x') RETURNING id`).Scan(&u); err != nil {
		t.Fatal(err)
	}
	rec := &testenv.Bumps{}
	w := txn.Runner{Pool: pool, Notifier: rec}
	if err := w.Do(ctx, func(tx *outbox.Tx) error {
		b, err := outbox.MarkStale(ctx, tx.Q, u, u, u)
		tx.Add(b)
		return err
	}); err != nil {
		t.Fatal(err)
	}
	bumps := rec.All()
	if len(bumps) != 1 || bumps[0].UserID != u {
		t.Fatalf("one bump for the user, got %+v", bumps)
	}
	first := bumps[0].Version
	st, err := db.New(pool).GetSyncState(ctx, u)
	if err != nil || st.WantedVersion != first {
		t.Fatalf("stored wanted_version %d (%v), notified %d", st.WantedVersion, err, first)
	}

	failed := context.Canceled
	if err := w.Do(ctx, func(tx *outbox.Tx) error {
		b, err := outbox.MarkStale(ctx, tx.Q, u)
		tx.Add(b)
		if err != nil {
			return err
		}
		return failed
	}); err != failed {
		t.Fatalf("the write's error is returned: %v", err)
	}
	if bumps := rec.All(); len(bumps) != 1 {
		t.Fatalf("a rolled-back write notifies nothing: %+v", bumps)
	}
	if st, err := db.New(pool).GetSyncState(ctx, u); err != nil || st.WantedVersion != first {
		t.Fatalf("a rolled-back bump is not stored: %d, %v", st.WantedVersion, err)
	}
}
