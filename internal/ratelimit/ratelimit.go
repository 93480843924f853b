// Package ratelimit counts requests per key in fixed windows kept in Redis, so every API replica
// shares one budget per client address or account.
package ratelimit

import (
	"context"
	"fmt"
	"time"

	"github.com/redis/go-redis/v9"
)

// Limiter counts hits per key.
type Limiter struct {
	rdb    redis.UniversalClient
	prefix string
}

// New returns a Limiter whose keys start with prefix.
func New(rdb redis.UniversalClient, prefix string) *Limiter {
	return &Limiter{rdb: rdb, prefix: prefix + "rl:"}
}

// hit increments the window's counter and sets its expiry in one step, so a counter can never be
// left without an expiry.
var hit = redis.NewScript(`
local n = redis.call('INCR', KEYS[1])
if n == 1 then redis.call('PEXPIRE', KEYS[1], ARGV[1]) end
return {n, redis.call('PTTL', KEYS[1])}
`)

// Allow counts one hit for key and reports whether it is within limit per window; when not, it
// says how long until the window resets.
func (l *Limiter) Allow(ctx context.Context, key string, limit int, window time.Duration) (bool, time.Duration, error) {
	res, err := hit.Run(ctx, l.rdb, []string{l.prefix + key}, window.Milliseconds()).Int64Slice()
	if err != nil {
		return true, 0, fmt.Errorf("rate limit %s: %w", key, err)
	}
	count, ttl := res[0], time.Duration(res[1])*time.Millisecond
	if count > int64(limit) {
		return false, max(ttl, time.Second), nil
	}
	return true, 0, nil
}
