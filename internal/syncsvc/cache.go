package syncsvc

import (
	"context"
	"crypto/rand"
	"strconv"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/bca-app/backend/internal/auth"
	"github.com/bca-app/backend/internal/outbox"
)

// The sync poll (HEAD /sync, 304 GET /sync) is answered from a copy of the user's published
// state in Redis, read by the authentication's one round trip (auth.SyncStateKey), so polling
// needs no PostgreSQL when nothing changed (docs/sync.md §3). The copy is "etag|size|pending|key".
//
// Every change of the state (a publish, a bump of wanted_version) overwrites the copy with a
// random "~…" mark after it commits. A request that missed fills the copy from PostgreSQL with a
// compare-and-set against the value it saw at authentication, so a fill that read rows from
// before a change can never overwrite that change's mark. Losing Redis data only causes misses.

const (
	stateCacheTTL = 10 * time.Minute
	staleMarkTTL  = time.Minute
)

// fillScript sets KEYS[1] to ARGV[2] only if it still holds ARGV[1] ("" = absent).
var fillScript = redis.NewScript(`
local cur = redis.call('GET', KEYS[1])
if (cur == false and ARGV[1] == '') or cur == ARGV[1] then
  redis.call('SET', KEYS[1], ARGV[2], 'PX', ARGV[3])
  return 1
end
return 0`)

// CurrentCached is Current answered from cached, the state the authentication read from Redis
// (read says the read happened). On a miss it reads PostgreSQL and fills the cache.
func (s *Service) CurrentCached(ctx context.Context, userID int64, cached string, read bool) (File, error) {
	if read {
		if f, ok := parseState(userID, cached); ok {
			return f, nil
		}
	}
	f, err := s.Current(ctx, userID)
	if err != nil || !read || s.rdb == nil {
		return f, err
	}
	val := strings.Join([]string{f.ETag, strconv.FormatInt(f.Size, 10), strconv.FormatBool(f.Pending), f.Key}, "|")
	if err := fillScript.Run(ctx, s.rdb, []string{auth.SyncStateKey(s.prefix, userID)}, cached, val, stateCacheTTL.Milliseconds()).Err(); err != nil {
		s.log.WarnContext(ctx, "cache sync state", "user_id", userID, "err", err)
	}
	return f, nil
}

func parseState(userID int64, v string) (File, bool) {
	if v == "" || v[0] == '~' {
		return File{}, false
	}
	parts := strings.SplitN(v, "|", 4)
	if len(parts) != 4 || parts[0] == "" || parts[3] == "" {
		return File{}, false
	}
	size, err := strconv.ParseInt(parts[1], 10, 64)
	if err != nil {
		return File{}, false
	}
	return File{UserID: userID, ETag: parts[0], Size: size, Pending: parts[2] == "true", Key: parts[3]}, true
}

// ForgetState marks the cached sync state of the users stale (after a commit that changed it).
func (s *Service) ForgetState(ctx context.Context, userIDs ...int64) {
	if s.rdb == nil || len(userIDs) == 0 {
		return
	}
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 2*time.Second)
	defer cancel()
	_, err := s.rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
		for _, id := range userIDs {
			p.Set(ctx, auth.SyncStateKey(s.prefix, id), "~"+rand.Text(), staleMarkTTL)
		}
		return nil
	})
	if err != nil {
		// The copies expire within stateCacheTTL; until then polls may answer the old state.
		s.log.ErrorContext(ctx, "mark cached sync state stale", "users", len(userIDs), "err", err)
	}
}

// StateNotifier marks the cached sync state of bumped users stale, then hands the bumps on.
// Every producer of bumps (the API's writes, the worker's sweeps) goes through it.
type StateNotifier struct {
	Sync *Service
	Next outbox.Notifier
}

// Notify implements outbox.Notifier.
func (n StateNotifier) Notify(ctx context.Context, bumps []outbox.Bump) {
	ids := make([]int64, 0, len(bumps))
	for _, b := range bumps {
		ids = append(ids, b.UserID)
	}
	n.Sync.ForgetState(ctx, ids...)
	if n.Next != nil {
		n.Next.Notify(ctx, bumps)
	}
}
