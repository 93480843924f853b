package files_test

import (
	"bytes"
	"context"
	"image"
	"image/png"
	"sync/atomic"
	"testing"
	"time"

	"github.com/bca-app/backend/internal/files"
	"github.com/bca-app/backend/internal/storage"
	"github.com/bca-app/backend/internal/syncsvc/synctest"
	"github.com/bca-app/backend/internal/testenv"
)

func TestMain(m *testing.M) { testenv.Main(m) }

// hungStore is an object store whose deletes never answer: each waits for its context.
type hungStore struct {
	storage.Store
	deletes atomic.Int64
}

func (h *hungStore) Delete(ctx context.Context, _ string) error {
	h.deletes.Add(1)
	<-ctx.Done()
	return ctx.Err()
}

// TestReleaseOutlivesAHungStore: releasing a file whose object the store never deletes costs
// DeleteTimeout per object, even under a context that has no deadline (or is cancelled), and
// the rows go all the same (docs/operations.md).
func TestReleaseOutlivesAHungStore(t *testing.T) {
	local, err := storage.NewLocal(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	store := &hungStore{Store: local}
	e := synctest.New(t, synctest.Options{Store: store})
	const timeout = 200 * time.Millisecond
	svc, err := files.New(files.Deps{Pool: e.Pool, Store: store, Log: e.Log, MaxBytes: 1 << 20, DeleteTimeout: timeout})
	if err != nil {
		t.Fatal(err)
	}
	user := e.NewWorld().User(t)
	var img bytes.Buffer
	if err := png.Encode(&img, image.NewGray(image.Rect(0, 0, 4, 4))); err != nil {
		t.Fatal(err)
	}
	var ids []int64
	for range 2 {
		f, err := svc.Upload(context.Background(), user, bytes.NewReader(img.Bytes()))
		if err != nil {
			t.Fatal(err)
		}
		ids = append(ids, f.ID)
	}
	cancelled, cancel := context.WithCancel(context.Background())
	cancel() // the caller has answered and gone
	done := make(chan time.Duration, 1)
	go func() {
		start := time.Now()
		svc.ReleaseAfterCommit(cancelled, ids...)
		done <- time.Since(start)
	}()
	select {
	case took := <-done:
		if took < 2*timeout {
			t.Fatalf("released in %v: the two deletes did not wait for the hung store", took)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("releasing two files from a hung store did not return within 10 s")
	}
	if n := store.deletes.Load(); n != 2 {
		t.Fatalf("%d deletes reached the store, want 2", n)
	}
	var left int
	if err := e.Pool.QueryRow(context.Background(), `SELECT count(*) FROM files WHERE id = ANY($1)`, ids).Scan(&left); err != nil {
		t.Fatal(err)
	}
	if left != 0 {
		t.Fatalf("%d file rows left after the release", left)
	}
}
