package syncsvc_test

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"

	"github.com/bca-app/backend/gen/db"
	"github.com/bca-app/backend/internal/outbox"
	"github.com/bca-app/backend/internal/storage"
	"github.com/bca-app/backend/internal/syncfile"
	"github.com/bca-app/backend/internal/syncsvc"
	"github.com/bca-app/backend/internal/syncsvc/synctest"
	"github.com/bca-app/backend/internal/testenv"
)

func mustSync(t *testing.T, svc *syncsvc.Service, userID int64, want syncsvc.Outcome) syncsvc.Result {
	t.Helper()
	res, err := svc.Sync(ctx, userID)
	if err != nil {
		t.Fatalf("sync user %d: %v", userID, err)
	}
	if res.Outcome != want {
		t.Fatalf("sync user %d: outcome %s, want %s", userID, res.Outcome, want)
	}
	return res
}

func TestSyncPublishesSkipsAndPushesOnlyChanges(t *testing.T) {
	e := synctest.New(t, synctest.Options{})
	w := e.NewWorld()
	u := w.User(t)
	p := w.Profile(t, u, synctest.ProfileSpec{Name: "first"})

	first := mustSync(t, e.Svc, u, syncsvc.Published)
	st := e.State(t, u)
	if st.BuiltVersion != st.WantedVersion || *st.Etag != first.ETag || st.StaleSince != nil {
		t.Fatalf("state after publishing: %+v", st)
	}
	pushes := e.Push.To(u)
	if len(pushes) != 1 || pushes[0].Data["type"] != "sync" || pushes[0].Data["etag"] != first.ETag {
		t.Fatalf("one push {type: sync, etag}: %+v", pushes)
	}
	mustSync(t, e.Svc, u, syncsvc.Skipped) // a duplicate message

	// A bump that changes nothing the file holds: the version is recorded, the bytes and the
	// ETag stay, nobody is woken up.
	if _, err := outbox.MarkStale(ctx, db.New(e.Pool), u); err != nil {
		t.Fatal(err)
	}
	same := mustSync(t, e.Svc, u, syncsvc.Unchanged)
	if same.ETag != first.ETag || e.State(t, u).BuiltVersion != same.Version || len(e.Push.To(u)) != 1 {
		t.Fatalf("unchanged build: %+v, state %+v, pushes %d", same, e.State(t, u), len(e.Push.To(u)))
	}

	w.Exec(t, []int64{p}, nil, `UPDATE profiles SET name = 'second', version = version + 1 WHERE id = $1`, p)
	second := mustSync(t, e.Svc, u, syncsvc.Published)
	if second.Mode != "incremental" || second.ETag == first.ETag {
		t.Fatalf("a change updates the current file: %+v", second)
	}
	if got := e.Published(t, u); got.Profiles[0].Name != "second" || got.Profiles[0].CommitID != "2" {
		t.Fatalf("updated file: %s", synctest.Describe(got))
	}
	if pushes := e.Push.To(u); len(pushes) != 2 || pushes[1].Data["etag"] != second.ETag {
		t.Fatalf("push after the change: %+v", pushes)
	}
}

// TestSyncIncrementalUpdatesEqualFullBuilds applies random changes and, after each, checks that the
// file the worker's incremental path produced holds exactly the rows of a fresh full build, and
// that a forced full rebuild gives the same rows.
func TestSyncIncrementalUpdatesEqualFullBuilds(t *testing.T) {
	e := synctest.New(t, synctest.Options{})
	w := e.NewWorld()
	rng := rand.New(rand.NewPCG(1, 2))
	users := []int64{w.User(t), w.User(t), w.User(t)}
	var profiles []int64
	var cards synctest.Cards
	for _, u := range users {
		for range 2 {
			profiles = append(profiles, w.Profile(t, u, synctest.ProfileSpec{Private: rng.IntN(2) == 0}))
		}
	}
	for _, u := range users {
		if _, err := e.Svc.Current(ctx, u); err != nil {
			t.Fatal(err)
		}
	}
	modes := map[string]int{}
	for step := range 40 {
		if err := w.RandomChange(ctx, rng, profiles, &cards); err != nil {
			t.Fatal(err)
		}
		for _, u := range users {
			res, err := e.Svc.Sync(ctx, u)
			if err != nil {
				t.Fatalf("step %d: %v", step, err)
			}
			modes[res.Mode]++
			want := e.Want(t, u)
			if got := e.Published(t, u); !synctest.Equal(got, want) {
				t.Fatalf("step %d, user %d (%s build): file differs from a full build\n got\n%s want\n%s", step, u, res.Mode,
					synctest.Describe(got), synctest.Describe(want))
			}
		}
	}
	if modes["incremental"] == 0 {
		t.Fatalf("the incremental path never ran: %v", modes)
	}
	for _, u := range users {
		before := e.Published(t, u)
		if _, err := e.Svc.Rebuild(ctx, u); err != nil {
			t.Fatal(err)
		}
		if after := e.Published(t, u); !synctest.Equal(before, after) {
			t.Fatalf("user %d: full rebuild differs from the incrementally kept file\n got\n%s want\n%s", u,
				synctest.Describe(after), synctest.Describe(before))
		}
	}
	t.Logf("builds by mode: %v", modes)
}

// TestSyncPublishIsACompareAndSet shows the fencing that makes a builder whose lock expired
// harmless: it cannot publish a version older than the live one, nor replace a file of the same
// version that someone else published after it looked.
func TestSyncPublishIsACompareAndSet(t *testing.T) {
	e := synctest.New(t, synctest.Options{})
	w := e.NewWorld()
	u := w.User(t)
	w.Profile(t, u, synctest.ProfileSpec{})
	for range 4 {
		if _, err := outbox.MarkStale(ctx, db.New(e.Pool), u); err != nil {
			t.Fatal(err)
		}
	}
	q := db.New(e.Pool)
	publish := func(version int64, key string, expected *string) bool {
		t.Helper()
		etag, size, schema := "d41d8cd98f00b204e9800998ecf8427e", int64(1), int32(1)
		_, err := q.PublishSyncFile(ctx, db.PublishSyncFileParams{
			UserID: u, Version: version, Etag: &etag, Size: &size, StorageKey: &key, BuilderSchema: &schema,
			SnapshotAt: time.Now(), ExpectedKey: expected,
		})
		if errors.Is(err, pgx.ErrNoRows) {
			return false
		}
		if err != nil {
			t.Fatal(err)
		}
		return true
	}
	k4 := "sync/x/4"
	if !publish(4, k4, nil) {
		t.Fatal("a newer version is published")
	}
	if publish(3, "sync/x/3", &k4) {
		t.Fatal("an older version must not replace a newer one")
	}
	if publish(4, "sync/x/4b", nil) {
		t.Fatal("the same version with a stale expected pointer must not win")
	}
	if !publish(4, "sync/x/4c", &k4) {
		t.Fatal("a rebuild of the same version that saw the live pointer wins")
	}
	if st := e.State(t, u); st.BuiltVersion != 4 || *st.StorageKey != "sync/x/4c" || !(st.WantedVersion > 4) || st.StaleSince == nil {
		t.Fatalf("state: %+v", st)
	}
}

func TestSyncLockBusyAndExpiry(t *testing.T) {
	e := synctest.New(t, synctest.Options{Settings: func(s *syncsvc.Settings) { s.LockWait = 200 * time.Millisecond }})
	w := e.NewWorld()
	u := w.User(t)
	w.Profile(t, u, synctest.ProfileSpec{})
	key := fmt.Sprintf("%ssync:lock:%d", e.Prefix, u)

	// Another builder holds the user.
	if err := e.Redis.Set(ctx, key, "someone-else", 0).Err(); err != nil {
		t.Fatal(err)
	}
	if res, err := e.Svc.Sync(ctx, u); !errors.Is(err, syncsvc.ErrBusy) || res.Outcome != syncsvc.Busy {
		t.Fatalf("busy: %+v %v", res, err)
	}
	if _, err := e.Svc.Current(ctx, u); err == nil {
		t.Fatal("a request that must build reports the busy lock after waiting")
	}
	// A crashed builder's lock lapses: Redis expires it (PEXPIREAT in the past), no waiting.
	if err := e.Redis.Set(ctx, key, "crashed", time.Hour).Err(); err != nil {
		t.Fatal(err)
	}
	if err := e.Redis.PExpireAt(ctx, key, time.Now().Add(-time.Second)).Err(); err != nil {
		t.Fatal(err)
	}
	mustSync(t, e.Svc, u, syncsvc.Published)
	if n, _ := e.Redis.Exists(ctx, key).Result(); n != 0 {
		t.Fatal("the lock is released after building")
	}
}

// TestSyncRedisRestartLosesTheLock restarts Redis while a build is in progress: the renewal finds
// its key gone and the build is abandoned rather than racing a new holder.
func TestSyncRedisRestartLosesTheLock(t *testing.T) {
	rs := testenv.RedisServer(t)
	store, err := storage.NewLocal(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	faulty := synctest.NewFaultyStore(store)
	e := synctest.New(t, synctest.Options{RedisURL: rs.URL(), Store: faulty, Settings: func(s *syncsvc.Settings) { s.LockTTL = 600 * time.Millisecond }})
	w := e.NewWorld()
	u := w.User(t)
	w.Profile(t, u, synctest.ProfileSpec{})

	inPut := make(chan struct{})
	faulty.SetHook(func(ctx context.Context, op, _ string) error {
		if op != "put" {
			return nil
		}
		close(inPut)
		<-ctx.Done() // held until the lock is found lost
		return ctx.Err()
	})
	errc := make(chan error, 1)
	go func() { _, err := e.Svc.Sync(ctx, u); errc <- err }()
	<-inPut
	if err := rs.Restart(ctx); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-errc:
		if !errors.Is(err, syncsvc.ErrLockLost) {
			t.Fatalf("want ErrLockLost, got %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the build did not notice the lost lock")
	}
	faulty.SetHook(nil)
	mustSync(t, e.Svc, u, syncsvc.Published)
}

func TestSyncGarbageIsCollectedAfterItsGrace(t *testing.T) {
	e := synctest.New(t, synctest.Options{Settings: func(s *syncsvc.Settings) { s.ReplacedGrace = 0 }})
	w := e.NewWorld()
	u := w.User(t)
	p := w.Profile(t, u, synctest.ProfileSpec{})
	mustSync(t, e.Svc, u, syncsvc.Published)
	first := *e.State(t, u).StorageKey
	w.Exec(t, []int64{p}, nil, `UPDATE profiles SET name = 'x', version = version + 1 WHERE id = $1`, p)
	mustSync(t, e.Svc, u, syncsvc.Published)
	live := *e.State(t, u).StorageKey

	// A key that is live must survive even if it is (wrongly) listed as garbage.
	if err := db.New(e.Pool).AddSyncGarbage(ctx, db.AddSyncGarbageParams{StorageKey: live, AfterMs: 0}); err != nil {
		t.Fatal(err)
	}
	n, err := e.Svc.CollectGarbage(ctx, 100)
	if err != nil || n != 1 {
		t.Fatalf("collected %d (%v), want the replaced file", n, err)
	}
	if _, err := e.Store.Head(ctx, first); !errors.Is(err, storage.ErrNotFound) {
		t.Fatalf("replaced file still stored: %v", err)
	}
	if _, err := e.Store.Head(ctx, live); err != nil {
		t.Fatalf("live file: %v", err)
	}
}

// TestSyncAbandonedUploadIsCollected: a builder that dies between upload and publish leaves an
// object nobody points to; its upload entry expires and the sweeper deletes it.
func TestSyncAbandonedUploadIsCollected(t *testing.T) {
	store, err := storage.NewLocal(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	faulty := synctest.NewFaultyStore(store)
	e := synctest.New(t, synctest.Options{Store: faulty, Settings: func(s *syncsvc.Settings) { s.UploadGrace = 0 }})
	w := e.NewWorld()
	u := w.User(t)
	w.Profile(t, u, synctest.ProfileSpec{})

	var uploaded string
	kill, cancel := context.WithCancel(ctx)
	faulty.SetHook(func(_ context.Context, op, key string) error {
		if op != "put" {
			return nil
		}
		// The upload completes, then the builder "crashes" before publishing.
		uploaded = key
		if _, err := store.Put(context.Background(), key, strings.NewReader("partial"), ""); err != nil {
			return err
		}
		cancel()
		return context.Canceled
	})
	if _, err := e.Svc.Sync(kill, u); err == nil {
		t.Fatal("the killed build must not succeed")
	}
	faulty.SetHook(nil)
	if _, err := store.Head(ctx, uploaded); err != nil {
		t.Fatalf("the orphan exists before collection: %v", err)
	}
	if n, err := e.Svc.CollectGarbage(ctx, 100); err != nil || n != 1 {
		t.Fatalf("collected %d, %v", n, err)
	}
	if _, err := store.Head(ctx, uploaded); !errors.Is(err, storage.ErrNotFound) {
		t.Fatalf("orphan upload still stored: %v", err)
	}
}

func TestSyncFailuresBackOffAndDeadLetter(t *testing.T) {
	e := synctest.New(t, synctest.Options{})
	w := e.NewWorld()
	u := w.User(t)
	w.Profile(t, u, synctest.ProfileSpec{})
	p := syncsvc.RetryPolicy{MaxAttempts: 3, BaseBackoff: time.Second, MaxBackoff: time.Minute, Park: time.Hour}
	var last syncsvc.Failure
	for i := 1; i <= 3; i++ {
		f, err := e.Svc.RecordFailure(ctx, u, errors.New("boom"), p)
		if err != nil {
			t.Fatal(err)
		}
		if f.Attempts != i || f.DeadLettered != (i == 3) {
			t.Fatalf("failure %d: %+v", i, f)
		}
		if i > 1 && !f.DeadLettered && !f.RetryAt.After(last.RetryAt) {
			t.Fatalf("back-off grows: %v then %v", last.RetryAt, f.RetryAt)
		}
		last = f
	}
	if d := time.Until(last.RetryAt); d < 50*time.Minute {
		t.Fatalf("a dead-lettered user is parked, retry in %v", d)
	}
	if got := counterValue(t, e.Svc.Metrics().DeadLetters); got != 1 {
		t.Fatalf("dead letters metric %v", got)
	}
	if claims, err := e.Svc.ClaimStale(ctx, 0, time.Minute, 10); err != nil || len(claims) != 0 {
		t.Fatalf("a parked user is not claimed: %v %v", claims, err)
	}
	// A successful build (e.g. a rebuild on request) clears the dead letter.
	mustSync(t, e.Svc, u, syncsvc.Published)
	if st := e.State(t, u); st.DeadLetteredAt != nil || st.Attempts != 0 || st.NotBefore != nil {
		t.Fatalf("state after success: %+v", st)
	}
}

// TestSyncTimeStaleFiles: files change without a write when an own tombstone expires or the
// builder changes; the sweeper's look-up bumps those users.
func TestSyncTimeStaleFiles(t *testing.T) {
	e := synctest.New(t, synctest.Options{})
	w := e.NewWorld()
	u, v := w.User(t), w.User(t)
	w.Profile(t, u, synctest.ProfileSpec{})
	deleted := w.Profile(t, u, synctest.ProfileSpec{})
	w.Profile(t, v, synctest.ProfileSpec{})
	w.Exec(t, []int64{deleted}, nil, `UPDATE profiles SET deleted_at = now() - interval '29 days' WHERE id = $1`, deleted)
	mustSync(t, e.Svc, u, syncsvc.Published)
	mustSync(t, e.Svc, v, syncsvc.Published)
	if len(e.Published(t, u).Profiles) != 2 {
		t.Fatal("the tombstone is in the file")
	}
	bumps, err := e.Svc.MarkTimeStale(ctx, 7*24*time.Hour, 100)
	if err != nil || len(bumps) != 0 {
		t.Fatalf("nothing expired yet: %v %v", bumps, err)
	}
	// A day later (moved in the database, not on the clock): the tombstone expired.
	if _, err := e.Pool.Exec(ctx, `UPDATE profiles SET deleted_at = deleted_at - interval '1 day' WHERE id = $1`, deleted); err != nil {
		t.Fatal(err)
	}
	if _, err := e.Pool.Exec(ctx, `UPDATE sync_states SET built_at = built_at - interval '1 day' WHERE user_id = $1`, u); err != nil {
		t.Fatal(err)
	}
	if _, err := e.Pool.Exec(ctx, `UPDATE sync_states SET builder_schema = 0 WHERE user_id = $1`, v); err != nil {
		t.Fatal(err)
	}
	bumps, err = e.Svc.MarkTimeStale(ctx, 7*24*time.Hour, 100)
	if err != nil || len(bumps) != 2 {
		t.Fatalf("want bumps for the expired tombstone and the old builder: %v %v", bumps, err)
	}
	mustSync(t, e.Svc, u, syncsvc.Published)
	if got := e.Published(t, u); len(got.Profiles) != 1 {
		t.Fatalf("the expired tombstone left the file:\n%s", synctest.Describe(got))
	}
	// Same rows, so the same bytes here; what matters is a full build by this builder.
	if res := mustSync(t, e.Svc, v, syncsvc.Unchanged); res.Mode != "full" || *e.State(t, v).BuilderSchema != syncfile.SchemaVersion {
		t.Fatalf("a file of another builder is rebuilt in full: %+v, state %+v", res, e.State(t, v))
	}
}

func counterValue(t *testing.T, c prometheus.Counter) float64 {
	t.Helper()
	var m dto.Metric
	if err := c.Write(&m); err != nil {
		t.Fatal(err)
	}
	return m.GetCounter().GetValue()
}
