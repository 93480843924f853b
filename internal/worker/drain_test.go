package worker_test

import (
	"context"
	"testing"
	"time"

	"github.com/bca-app/backend/internal/syncsvc"
	"github.com/bca-app/backend/internal/syncsvc/synctest"
	"github.com/bca-app/backend/internal/testenv"
	"github.com/bca-app/backend/internal/worker"
)

// TestSyncCutOffBuildReleasesItsClaim: in PostgreSQL-queue mode, a build that the draining
// worker cuts off at its deadline (syncsvc.ErrStopping, as app.RunWorker does at
// SHUTDOWN_TIMEOUT) ends its claim at once, as the SQS path hands its messages back: the claim
// row's not_before is cleared instead of holding the user for the lease (an hour here), and a
// second worker claims and builds the user.
func TestSyncCutOffBuildReleasesItsClaim(t *testing.T) {
	h := newHungBuild(t)
	p, u, opts := h.p, h.user, h.opts

	runCtx, abort := context.WithCancelCause(ctx)
	defer abort(nil)
	w := newWorker(t, p.deps, opts)
	done := make(chan error, 1)
	go func() { done <- w.Run(runCtx) }()
	h.startBuild(t)
	if st := p.e.State(t, u); st.NotBefore == nil || time.Until(*st.NotBefore) < 30*time.Minute {
		t.Fatalf("the building worker holds no lease on the user: not_before %v", st.NotBefore)
	}

	// The drain: no new work, the hanging build may finish within a short deadline, then it
	// is cut off with ErrStopping.
	sctx, cancel := context.WithTimeout(ctx, 300*time.Millisecond)
	err := w.Shutdown(sctx)
	cancel()
	if err == nil {
		t.Fatal("Shutdown returned although the build hangs")
	}
	abort(syncsvc.ErrStopping)
	select {
	case <-done:
	case <-time.After(15 * time.Second):
		t.Fatal("the worker did not stop after the build was cut off")
	}

	st := p.e.State(t, u)
	if st.BuiltVersion >= st.WantedVersion {
		t.Fatalf("the cut-off build was published: %+v", st)
	}
	if st.NotBefore != nil {
		t.Fatalf("the claim still holds the user until %v after the drain; want it released (not_before NULL)", st.NotBefore)
	}

	// Another worker takes the user now, although the first one's lease would hold it for an hour.
	p.store.SetHook(nil)
	rw := startWorker(t, p.deps, opts)
	testenv.Eventually(t, 30*time.Second, func() bool {
		st := p.e.State(t, u)
		return st.StorageKey != nil && st.BuiltVersion == st.WantedVersion
	}, "the second worker builds the released user")
	rw.stop(t)
}

// TestSyncKilledWorkerKeepsItsLease: a worker killed without a drain (its context cancelled
// without ErrStopping, as a crash) touches nothing; its claim lapses with the lease.
func TestSyncKilledWorkerKeepsItsLease(t *testing.T) {
	h := newHungBuild(t)
	p, u, opts := h.p, h.user, h.opts
	rw := startWorker(t, p.deps, opts)
	h.startBuild(t)
	rw.kill()
	select {
	case <-rw.done:
	case <-time.After(15 * time.Second):
		t.Fatal("the killed worker did not stop")
	}
	rw.done <- nil // for the cleanup's receive
	if st := p.e.State(t, u); st.NotBefore == nil || time.Until(*st.NotBefore) < 30*time.Minute {
		t.Fatalf("a crashed worker's claim changed: not_before %v, want the hour's lease", st.NotBefore)
	}
}

// hungBuild is a PostgreSQL-queue pipeline whose uploads hang (hangPuts), a user of it, and
// worker options of one build at a time under an hour's lease, so that only a release frees the
// user before a test ends.
type hungBuild struct {
	p     *pipeline
	world *synctest.World
	user  int64
	inPut <-chan struct{}
	opts  worker.Options
}

func newHungBuild(t *testing.T) *hungBuild {
	p := newPipeline(t, "postgres", 10)
	world := p.e.NewWorld()
	world.Notifier = p.producer
	opts := fastOptions()
	opts.Concurrency, opts.Lease = 1, time.Hour
	return &hungBuild{p: p, world: world, user: world.User(t), inPut: hangPuts(p), opts: opts}
}

// startBuild changes the user's data and waits until a worker's build of it hangs in its upload.
func (h *hungBuild) startBuild(t *testing.T) {
	t.Helper()
	h.world.Profile(t, h.user, synctest.ProfileSpec{})
	select {
	case <-h.inPut:
	case <-time.After(30 * time.Second):
		t.Fatal("the worker never started the build")
	}
}

// hangPuts makes the pipeline's object store hang every upload until the build's context ends;
// the channel receives when the first upload starts.
func hangPuts(p *pipeline) <-chan struct{} {
	inPut := make(chan struct{}, 1)
	p.store.SetHook(func(ctx context.Context, op, _ string) error {
		if op == "put" {
			select {
			case inPut <- struct{}{}:
			default:
			}
			<-ctx.Done() // the object store hangs until the build is cut off
			return ctx.Err()
		}
		return nil
	})
	return inPut
}
