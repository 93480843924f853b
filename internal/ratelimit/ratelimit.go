// Package ratelimit counts requests per key in fixed windows kept in Redis, so every API replica
// shares one budget per client address or account.
package ratelimit

import (
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/bca-app/backend/internal/domain"
)

// Limiter counts hits per key. When Redis cannot answer, it counts in this process instead: a
// limit never fails open (per replica, the budget is then the same as the shared one).
type Limiter struct {
	rdb    redis.UniversalClient
	prefix string
	local  *Local
	// Now is the clock the in-process fallback's windows are compared with; nil is time.Now.
	// (The shared windows expire on Redis's clock.)
	Now func() time.Time
}

// Deps are what a Limiter works with.
type Deps struct {
	Redis     redis.UniversalClient // the shared windows; required
	KeyPrefix string                // REDIS_KEY_PREFIX
}

// New returns a Limiter whose keys start with the key prefix; it refuses a missing Redis client.
func New(d Deps) (*Limiter, error) {
	if err := domain.RequireDeps("rate limiter", map[string]any{"Redis": d.Redis}); err != nil {
		return nil, err
	}
	return &Limiter{rdb: d.Redis, prefix: d.KeyPrefix + "rl:", local: NewLocal(100_000)}, nil
}

// hit increments the window's counter and sets its expiry in one step, so a counter can never be
// left without an expiry.
var hit = redis.NewScript(`
local n = redis.call('INCR', KEYS[1])
if n == 1 then redis.call('PEXPIRE', KEYS[1], ARGV[1]) end
return {n, redis.call('PTTL', KEYS[1])}
`)

// Allow counts one hit for key and reports whether it is within limit per window; when not, it
// says how long until the window resets. When Redis fails, the decision comes from the
// in-process fallback and err says why (for the log); the decision is valid either way.
func (l *Limiter) Allow(ctx context.Context, key string, limit int, window time.Duration) (bool, time.Duration, error) {
	res, err := hit.Run(ctx, l.rdb, []string{l.prefix + key}, window.Milliseconds()).Int64Slice()
	if err != nil {
		now := time.Now
		if l.Now != nil {
			now = l.Now
		}
		ok, retry := l.local.Allow(key, limit, window, now())
		return ok, retry, fmt.Errorf("rate limit %s (counted in process): %w", key, err)
	}
	count, ttl := res[0], time.Duration(res[1])*time.Millisecond
	if count > int64(limit) {
		return false, max(ttl, time.Second), nil
	}
	return true, 0, nil
}

// Local counts hits per key in fixed windows in this process: the fallback when Redis is
// unavailable. It holds at most max keys; when full, expired windows are dropped, and if none
// has expired every new key is refused (fail closed) until one does.
type Local struct {
	mu   sync.Mutex
	max  int
	keys map[string]*window
}

type window struct {
	count int
	ends  time.Time
}

// NewLocal returns an in-process limiter of at most max keys.
func NewLocal(max int) *Local { return &Local{max: max, keys: map[string]*window{}} }

// Allow counts one hit for key at now.
func (l *Local) Allow(key string, limit int, per time.Duration, now time.Time) (bool, time.Duration) {
	l.mu.Lock()
	defer l.mu.Unlock()
	w, ok := l.keys[key]
	if !ok || !now.Before(w.ends) {
		if !ok && len(l.keys) >= l.max {
			for k, old := range l.keys {
				if !now.Before(old.ends) {
					delete(l.keys, k)
				}
			}
			if len(l.keys) >= l.max {
				return false, time.Second
			}
		}
		w = &window{ends: now.Add(per)}
		l.keys[key] = w
	}
	w.count++
	if w.count > limit {
		return false, max(w.ends.Sub(now), time.Second)
	}
	return true, 0
}
