package syncsvc

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"strconv"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"
)

// ErrBusy means another builder holds the user's lock; the work is theirs, try again later.
var ErrBusy = errors.New("sync: another builder holds the user's lock")

// ErrLockLost means the lock expired or vanished (e.g. a Redis restart) while building. The
// build is abandoned; the compare-and-set on publish would have refused a stale result anyway.
var ErrLockLost = errors.New("sync: lost the user's lock while building")

// ErrStopping is the cause with which a stopping process cancels the builds it gives up on (a
// drain past its deadline, a Lambda invocation near its end). Unlike a crash, such a build
// releases its lock at once, so another builder need not wait for the lock to lapse.
var ErrStopping = errors.New("sync: the process is stopping; the build is handed back")

// releaseTimeout bounds the release of a lock given up while stopping.
const releaseTimeout = 2 * time.Second

// locker hands out per-user locks in Redis: SET NX PX with a random owner token, renewed while
// the holder works, released only by its owner. The expiry frees the lock of a crashed holder;
// the token keeps a holder whose lock expired from releasing or extending a successor's.
type locker struct {
	rdb    redis.UniversalClient
	prefix string
	ttl    time.Duration
	now    func() time.Time // the clock of the renewal's lease
}

// Scripts compare the owner token and act in one step, so a lock taken over by someone else is
// never extended or deleted.
var (
	renewScript = redis.NewScript(`
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('PEXPIRE', KEYS[1], ARGV[2]) end
return 0`)
	releaseScript = redis.NewScript(`
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0`)
)

// heldLock is one acquired lock.
type heldLock struct {
	l     *locker
	key   string
	token string

	stop    context.CancelFunc      // stops the renewal
	cancel  context.CancelCauseFunc // ends the context hold returned
	stopped sync.WaitGroup
}

func (l *locker) key(userID int64) string {
	return l.prefix + "sync:lock:" + strconv.FormatInt(userID, 10)
}

// tryAcquire takes the lock if it is free; ErrBusy if someone holds it.
func (l *locker) tryAcquire(ctx context.Context, userID int64) (*heldLock, error) {
	h := &heldLock{l: l, key: l.key(userID), token: rand.Text()}
	ok, err := l.rdb.SetNX(ctx, h.key, h.token, l.ttl).Result()
	if err != nil {
		return nil, fmt.Errorf("take sync lock of user %d: %w", userID, err)
	}
	if !ok {
		return nil, ErrBusy
	}
	return h, nil
}

// acquire waits up to wait for the lock, polling; ErrBusy when it stays taken.
func (l *locker) acquire(ctx context.Context, userID int64, wait time.Duration) (*heldLock, error) {
	deadline := time.Now().Add(wait)
	for {
		h, err := l.tryAcquire(ctx, userID)
		if !errors.Is(err, ErrBusy) || time.Now().After(deadline) {
			return h, err
		}
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-time.After(20 * time.Millisecond):
		}
	}
}

// hold keeps the lock alive while the returned context is in use. The context is cancelled with
// ErrLockLost as its cause once the lock is known to be gone (another owner, or Redis lost the
// key), or once renewal has failed for a whole TTL, after which someone else may hold it.
func (h *heldLock) hold(ctx context.Context) context.Context {
	ctx, cancel := context.WithCancelCause(ctx)
	renewCtx, stop := context.WithCancel(ctx)
	h.stop, h.cancel = stop, cancel
	h.stopped.Add(1)
	go func() {
		defer h.stopped.Done()
		interval := h.l.ttl / 3
		lastRenewed := h.l.now()
		t := time.NewTicker(interval)
		defer t.Stop()
		for {
			select {
			case <-renewCtx.Done():
				return
			case <-t.C:
			}
			n, err := renewScript.Run(renewCtx, h.l.rdb, []string{h.key}, h.token, h.l.ttl.Milliseconds()).Int64()
			switch {
			case err == nil && n == 1:
				lastRenewed = h.l.now()
			case err == nil:
				cancel(ErrLockLost)
				return
			case h.l.now().Sub(lastRenewed) >= h.l.ttl:
				cancel(fmt.Errorf("%w: renewal failing: %w", ErrLockLost, err))
				return
			}
		}
	}()
	return ctx
}

// release stops renewing and deletes the lock if it is still ours. With a cancelled context
// (a killed worker) it does nothing, and the lock lapses at its expiry, unless the cause of the
// cancellation is ErrStopping: then the lock is released within releaseTimeout.
func (h *heldLock) release(ctx context.Context) error {
	if ctx.Err() != nil && errors.Is(context.Cause(ctx), ErrStopping) {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(context.WithoutCancel(ctx), releaseTimeout)
		defer cancel()
	}
	if h.stop != nil {
		h.stop()
		h.stopped.Wait()
		h.cancel(nil)
	}
	if err := releaseScript.Run(ctx, h.l.rdb, []string{h.key}, h.token).Err(); err != nil {
		return fmt.Errorf("release sync lock %s: %w", h.key, err)
	}
	return nil
}
